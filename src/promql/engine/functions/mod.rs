//! Function calls: the dispatch from a name to its evaluation, and the functions on
//! instant vectors and scalars that need no more than a map over each series (math,
//! trigonometry, clamping, rounding, dates) or nothing at all (`time`, `pi`, `vector`,
//! `scalar`, `absent`). Range-vector functions live in `range.rs`, label and sort
//! functions in `labels.rs`, classic histograms in `histogram.rs`.
//!
//! As in Prometheus 3.x, every function that changes a value drops the metric name (at
//! once, or at the end with delayed name removal); `last_over_time`, `first_over_time`,
//! the sort functions and the label functions keep it.

pub(super) mod histogram;
pub(super) mod labels;
pub(super) mod math;
pub(super) mod range;

use chrono::{DateTime, Datelike, Timelike};

use super::EvalError;
use super::eval::{self, Eval, Query, Series, drop_name, merge_series};
use crate::model::{Labels, METRIC_NAME, MatchType, Sample};
use crate::promql::ast::{Call, Expr};

pub(super) fn eval_call(q: &mut Query<'_>, c: &Call) -> Result<Eval, EvalError> {
    let args = &c.args;
    let name = c.func.as_str();
    if let Some(f) = elementwise(name) {
        let v = eval::eval_vector(q, arg(c, 0)?)?;
        return map_values(q, v, f);
    }
    match name {
        "time" => Ok(Eval::Scalar(q.times().map(|t| t as f64 / 1000.0).collect())),
        // An instant query has no step: Prometheus answers 0 there.
        "step" => {
            let step = if q.instant {
                0.0
            } else {
                q.step as f64 / 1000.0
            };
            Ok(Eval::Scalar(vec![step; q.steps]))
        }
        "min_of" | "max_of" => {
            let a = eval::eval_scalar(q, arg(c, 0)?)?;
            let b = eval::eval_scalar(q, arg(c, 1)?)?;
            let f = if name == "min_of" { go_min } else { go_max };
            Ok(Eval::Scalar(
                a.into_iter().zip(b).map(|(x, y)| f(x, y)).collect(),
            ))
        }
        "range" => Ok(Eval::Scalar(vec![
            (q.query_end - q.query_start) as f64
                / 1000.0;
            q.steps
        ])),
        "start" => Ok(Eval::Scalar(vec![q.query_start as f64 / 1000.0; q.steps])),
        "end" => Ok(Eval::Scalar(vec![q.query_end as f64 / 1000.0; q.steps])),
        "pi" => Ok(Eval::Scalar(vec![std::f64::consts::PI; q.steps])),
        "vector" => {
            let s = eval::eval_scalar(q, arg(c, 0)?)?;
            let points = q.times().zip(s).map(|(t, v)| Sample { t, v }).collect();
            Ok(Eval::Vector(vec![(Labels::empty(), points)]))
        }
        "scalar" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let mut out = vec![f64::NAN; q.steps];
            let mut count = vec![0u32; q.steps];
            for (_, points) in &v {
                for p in points {
                    let i = q.step_index(p.t);
                    out[i] = p.v;
                    count[i] += 1;
                }
            }
            for (o, n) in out.iter_mut().zip(count) {
                if n != 1 {
                    *o = f64::NAN;
                }
            }
            Ok(Eval::Scalar(out))
        }
        "timestamp" => {
            let v = match window::unwrap_parens(arg(c, 0)?) {
                Expr::VectorSelector(vs) => match eval::eval_vector_selector(q, vs, true)? {
                    Eval::Vector(v) => v,
                    _ => Vec::new(),
                },
                other => {
                    let mut v = eval::eval_vector(q, other)?;
                    for (_, points) in &mut v {
                        points.iter_mut().for_each(|p| p.v = p.t as f64 / 1000.0);
                    }
                    v
                }
            };
            map_values(q, v, |x| x)
        }
        "round" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let to = match args.get(1) {
                Some(e) => eval::eval_scalar(q, e)?,
                None => vec![1.0; q.steps],
            };
            map_with_scalars(q, v, &[&to], |x, s| {
                let inv = 1.0 / s[0];
                (x * inv + 0.5).floor() / inv
            })
        }
        "clamp" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let min = eval::eval_scalar(q, arg(c, 1)?)?;
            let max = eval::eval_scalar(q, arg(c, 2)?)?;
            // Steps where max < min give no result.
            let v: Vec<Series> = v
                .into_iter()
                .map(|(l, mut p)| {
                    p.retain(|s| {
                        let i = q.step_index(s.t);
                        max[i] >= min[i] || max[i].is_nan() || min[i].is_nan()
                    });
                    (l, p)
                })
                .filter(|(_, p)| !p.is_empty())
                .collect();
            map_with_scalars(q, v, &[&min, &max], |x, s| go_max(s[0], go_min(s[1], x)))
        }
        "clamp_min" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let min = eval::eval_scalar(q, arg(c, 1)?)?;
            map_with_scalars(q, v, &[&min], |x, s| go_max(s[0], x))
        }
        "clamp_max" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let max = eval::eval_scalar(q, arg(c, 1)?)?;
            map_with_scalars(q, v, &[&max], |x, s| go_min(s[0], x))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let v = match args.first() {
                Some(e) => eval::eval_vector(q, e)?,
                None => vec![(
                    Labels::empty(),
                    q.times()
                        .map(|t| Sample {
                            t,
                            v: t as f64 / 1000.0,
                        })
                        .collect(),
                )],
            };
            map_values(q, v, date_fn(name))
        }
        "absent" => {
            let v = eval::eval_vector(q, arg(c, 0)?)?;
            let mut present = vec![false; q.steps];
            for (_, points) in &v {
                for p in points {
                    present[q.step_index(p.t)] = true;
                }
            }
            Ok(absent_result(q, arg(c, 0)?, &present))
        }
        "absent_over_time" => {
            let mut w = window::eval_range(q, arg(c, 0)?)?;
            let mut present = vec![false; q.steps];
            let mut samples = Vec::new();
            while w.next_series(q, &mut samples)?.is_some() {
                let n = w.each(q, &samples, |win| {
                    present[win.step] |= !win.samples.is_empty()
                });
                w.count(q, n);
            }
            w.release(q);
            Ok(absent_result(q, arg(c, 0)?, &present))
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" | "label_replace"
        | "label_join" => labels::eval(q, c),
        "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
            histogram::eval(q, c)
        }
        _ => range::eval(q, c),
    }
}

use super::window;

pub(super) fn arg(c: &Call, i: usize) -> Result<&Expr, EvalError> {
    c.args.get(i).ok_or_else(|| {
        EvalError::Execution(format!(
            "expected at least {} argument(s) in call to {:?}, got {}",
            i + 1,
            c.func,
            c.args.len()
        ))
    })
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else {
        a.min(b)
    }
}

/// The functions that map each value on its own.
fn elementwise(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |x: f64| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
        "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

/// Maps every value, drops the name, and merges series that now collide.
fn map_values(q: &Query<'_>, v: Vec<Series>, f: impl Fn(f64) -> f64) -> Result<Eval, EvalError> {
    let out = v
        .into_iter()
        .map(|(l, mut points)| {
            points.iter_mut().for_each(|p| p.v = f(p.v));
            (drop_name(&l, q.delayed_name_removal), points)
        })
        .collect();
    Ok(Eval::Vector(merge_series(out)?))
}

/// Like [`map_values`], with per-step scalar arguments.
fn map_with_scalars(
    q: &Query<'_>,
    v: Vec<Series>,
    scalars: &[&Vec<f64>],
    f: impl Fn(f64, &[f64]) -> f64,
) -> Result<Eval, EvalError> {
    let mut args = vec![0.0; scalars.len()];
    let out = v
        .into_iter()
        .map(|(l, mut points)| {
            for p in &mut points {
                let i = q.step_index(p.t);
                for (a, s) in args.iter_mut().zip(scalars) {
                    *a = s[i];
                }
                p.v = f(p.v, &args);
            }
            (drop_name(&l, q.delayed_name_removal), points)
        })
        .collect();
    Ok(Eval::Vector(merge_series(out)?))
}

fn date_fn(name: &str) -> fn(f64) -> f64 {
    fn at(v: f64) -> Option<DateTime<chrono::Utc>> {
        if !v.is_finite() {
            return None;
        }
        DateTime::from_timestamp(v as i64, 0)
    }
    match name {
        "day_of_month" => |v| at(v).map_or(f64::NAN, |d| d.day() as f64),
        "day_of_week" => |v| at(v).map_or(f64::NAN, |d| d.weekday().num_days_from_sunday() as f64),
        "day_of_year" => |v| at(v).map_or(f64::NAN, |d| d.ordinal() as f64),
        "days_in_month" => |v| {
            at(v).map_or(f64::NAN, |d| {
                let (y, m) = (d.year(), d.month());
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let first = chrono::NaiveDate::from_ymd_opt(y, m, 1);
                let next = chrono::NaiveDate::from_ymd_opt(ny, nm, 1);
                match (first, next) {
                    (Some(a), Some(b)) => (b - a).num_days() as f64,
                    _ => f64::NAN,
                }
            })
        },
        "hour" => |v| at(v).map_or(f64::NAN, |d| d.hour() as f64),
        "minute" => |v| at(v).map_or(f64::NAN, |d| d.minute() as f64),
        "month" => |v| at(v).map_or(f64::NAN, |d| d.month() as f64),
        _ => |v| at(v).map_or(f64::NAN, |d| d.year() as f64),
    }
}

/// `absent`/`absent_over_time`: 1 at the steps where the argument had nothing, labelled
/// with the argument selector's equality matchers (names set twice are left out).
fn absent_result(q: &Query<'_>, arg: &Expr, present: &[bool]) -> Eval {
    let points: Vec<Sample> = q
        .times()
        .zip(present)
        .filter(|(_, p)| !**p)
        .map(|(t, _)| Sample { t, v: 1.0 })
        .collect();
    if points.is_empty() {
        return Eval::Vector(Vec::new());
    }
    let matchers = match window::unwrap_parens(arg) {
        Expr::VectorSelector(vs) => Some(&vs.matchers),
        Expr::MatrixSelector(m) => Some(&m.selector.matchers),
        _ => None,
    };
    let mut b = crate::model::LabelsBuilder::new();
    if let Some(ms) = matchers {
        // A name constrained by more than one matcher has no single value to report.
        let repeated = |name: &str| ms.iter().filter(|m| m.name == name).count() > 1;
        for m in ms {
            if m.name != METRIC_NAME && m.kind == MatchType::Equal && !repeated(&m.name) {
                b.set(m.name.clone(), m.value.clone());
            }
        }
    }
    Eval::Vector(vec![(b.into_labels(), points)])
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (`+Inf`, `NaN`).
pub(super) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// Where a node starts, as Prometheus appends it to annotations: `line:column`. The
/// engine does not see the query text, so this assumes a one-line query (multi-line
/// queries get the byte offset as the column).
pub(super) fn position(pos: crate::promql::ast::PosRange) -> String {
    format!("1:{}", pos.start + 1)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn min_of_and_max_of_are_go_min_and_max() {
        let st = storage(&[]);
        let scalar = |q: &str| match instant(&st, q, 0) {
            super::super::Value::Scalar(s) => s.v,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(scalar("min_of(5, 3)"), 3.0);
        assert_eq!(scalar("max_of(-2, -5)"), -2.0);
        assert!(scalar("max_of(NaN, 3)").is_nan());
        assert!(scalar("min_of(0, -0)").is_sign_negative());
        assert!(scalar("max_of(-0, 0)").is_sign_positive());
    }

    #[test]
    fn step_is_zero_in_an_instant_query() {
        let st = storage(&[]);
        assert!(matches!(
            instant(&st, "step()", 10),
            super::super::Value::Scalar(s) if s.v == 0.0
        ));
        let r = range(&st, "vector(step())", 0, 30, 15).unwrap();
        assert_eq!(points(&r)[0].1, [(0, 15.0), (15, 15.0), (30, 15.0)]);
        // A subquery has its own step.
        let r = instant(&st, "max_over_time(vector(step())[1m:20s])", 60);
        assert_eq!(values(&r), [20.0]);
    }
}
