//! Compares one query result with a case's expectations, as Prometheus's runner does
//! (`compareResult`): label sets must match exactly, order matters only for an ordered
//! case, floats compare with a relative tolerance. The error is a short diff for the
//! report.

use cairn::model::{Labels, Sample};
use cairn::promql::Value;

use super::script::{Eval, EvalKind, Point, SeriesDef};

/// Prometheus's relative tolerance for sample values.
const EPSILON: f64 = 1e-6;

/// Float equality as Prometheus's `almost.Equal(a, b, 1e-6)`: NaN equals NaN, and values
/// near zero must be (almost) exactly equal. Where both values are integers, cairn's
/// README asks for exact equality; Prometheus would still allow a relative 1e-6, which
/// differs only for integers above a million.
pub fn float_eq(exp: f64, got: f64) -> bool {
    if exp.is_nan() && got.is_nan() {
        return true;
    }
    if exp == got {
        return true;
    }
    let exact = |v: f64| v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15;
    if exact(exp) && exact(got) {
        return false;
    }
    let min_normal = f64::MIN_POSITIVE;
    let abs_sum = exp.abs() + got.abs();
    let diff = (exp - got).abs();
    if exp == 0.0 || got == 0.0 || abs_sum < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

/// Prints a few points of a series for a diff.
fn points(samples: &[Sample]) -> String {
    const MAX: usize = 6;
    let mut s: String = samples
        .iter()
        .take(MAX)
        .map(|p| format!("{}@{}", p.v, p.t))
        .collect::<Vec<_>>()
        .join(" ");
    if samples.len() > MAX {
        s.push_str(&format!(" ... ({} points)", samples.len()));
    }
    format!("[{s}]")
}

fn find<'e>(eval: &'e Eval, labels: &Labels) -> Option<(usize, &'e SeriesDef)> {
    eval.series
        .iter()
        .enumerate()
        .find(|(_, s)| &s.labels == labels)
}

/// The time window expected points of a matrix are laid on: start, end, step.
fn window(eval: &Eval) -> Option<(i64, i64, i64)> {
    match eval.kind {
        EvalKind::Range { start, end, step } => Some((start, end, step)),
        EvalKind::Instant { .. } => eval.range_vector,
    }
}

/// Checks `value` against the case. `Err` is the diff.
pub fn compare(eval: &Eval, value: &Value) -> Result<(), String> {
    match value {
        Value::Matrix(m) => compare_matrix(eval, m),
        Value::Vector(v) => compare_vector(eval, v),
        Value::Scalar(s) => match eval.scalar {
            None => Err(format!(
                "expected vector or matrix result, but got scalar {}",
                s.v
            )),
            Some(exp) if !float_eq(exp, s.v) => {
                Err(format!("expected scalar {exp} but got {}", s.v))
            }
            Some(_) => Ok(()),
        },
        Value::String(s, _) => {
            let exp = eval.string.as_deref().unwrap_or("");
            if exp == s {
                Ok(())
            } else {
                Err(format!("expected string {exp:?} but got {s:?}"))
            }
        }
    }
}

/// Prometheus requires a matrix sorted by labels.
pub fn assert_sorted(m: &[(Labels, Vec<Sample>)]) -> Result<(), String> {
    match m.windows(2).position(|w| w[0].0 > w[1].0) {
        Some(i) => Err(format!(
            "matrix results should always be sorted by labels, but {} comes before {}",
            m[i].0,
            m[i + 1].0
        )),
        None => Ok(()),
    }
}

fn compare_matrix(eval: &Eval, m: &[(Labels, Vec<Sample>)]) -> Result<(), String> {
    if eval.expect.ordered {
        return Err("expected ordered result, but query returned a matrix".into());
    }
    if let Some(v) = eval.scalar {
        return Err(format!(
            "expected scalar {v}, but got a matrix of {} series",
            m.len()
        ));
    }
    assert_sorted(m)?;
    for (labels, got) in m {
        let Some((_, exp)) = find(eval, labels) else {
            return Err(format!(
                "unexpected metric {labels} in result, has {}",
                points(got)
            ));
        };
        let mut want = Vec::with_capacity(exp.points.len());
        for (i, p) in exp.points.iter().enumerate() {
            let Some((start, end, step)) = window(eval) else {
                return Err(format!(
                    "instant query returned a range vector for {labels}: the case needs \
                     'expect range vector'"
                ));
            };
            let t = start + i as i64 * step;
            if t > end {
                return Err(format!(
                    "expected {} points for {labels}, but the query range cannot return this many",
                    exp.points.len()
                ));
            }
            if let Point::Float(v) = p {
                want.push(Sample { t, v: *v });
            }
        }
        if want.len() != got.len() {
            return Err(format!(
                "expected {} points for {labels}, got {}: want {} got {}",
                want.len(),
                got.len(),
                points(&want),
                points(got)
            ));
        }
        for (w, g) in want.iter().zip(got) {
            if w.t != g.t || !float_eq(w.v, g.v) {
                return Err(format!(
                    "{labels}: expected {}@{} but got {}@{} (result {})",
                    w.v,
                    w.t,
                    g.v,
                    g.t,
                    points(got)
                ));
            }
        }
    }
    missing(eval, m.iter().map(|(l, _)| l))
}

fn missing<'a>(eval: &Eval, got: impl Iterator<Item = &'a Labels> + Clone) -> Result<(), String> {
    for exp in &eval.series {
        if !got.clone().any(|l| l == &exp.labels) {
            return Err(format!("expected metric {} not found", exp.labels));
        }
    }
    Ok(())
}

fn compare_vector(eval: &Eval, v: &[(Labels, Sample)]) -> Result<(), String> {
    if let Some(s) = eval.scalar {
        return Err(format!(
            "expected scalar {s}, but got a vector of {} series",
            v.len()
        ));
    }
    for (pos, (labels, got)) in v.iter().enumerate() {
        let Some((exp_pos, exp)) = find(eval, labels) else {
            return Err(format!(
                "unexpected metric {labels} in result, has value {}",
                got.v
            ));
        };
        if eval.expect.ordered && exp_pos != pos {
            return Err(format!(
                "expected metric {labels} at position {} but was at {}",
                exp_pos + 1,
                pos + 1
            ));
        }
        // An omitted or missing point reads as 0, as in Prometheus.
        let want = match exp.points.first() {
            Some(Point::Float(f)) => *f,
            _ => 0.0,
        };
        if !float_eq(want, got.v) {
            return Err(format!("expected {want} for {labels} but got {}", got.v));
        }
    }
    missing(eval, v.iter().map(|(l, _)| l))
}

#[cfg(test)]
mod tests {
    use super::super::script::Command;
    use super::super::script::parse_script;
    use super::*;

    fn eval(src: &str) -> Eval {
        match parse_script(src).commands.pop() {
            Some(Command::Eval(e)) => *e,
            other => panic!("not an eval: {other:?}"),
        }
    }

    fn l(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name)])
    }

    #[test]
    fn floats_compare_as_prometheus() {
        assert!(float_eq(f64::NAN, f64::NAN));
        assert!(float_eq(1.0, 1.0 + 1e-9));
        assert!(!float_eq(1.0, 1.0 + 1e-5));
        assert!(!float_eq(0.0, 1e-300));
        assert!(float_eq(f64::INFINITY, f64::INFINITY));
        assert!(!float_eq(f64::INFINITY, f64::NEG_INFINITY));
        // Integers are exact, even where the relative difference is below 1e-6.
        assert!(!float_eq(10_000_000.0, 10_000_001.0));
    }

    #[test]
    fn vectors_match_by_labels_and_order_when_asked() {
        let e = eval("eval instant at 0 x\n  a 1\n  b 2\n");
        let v = |a: f64| {
            Value::Vector(vec![
                (l("b"), Sample { t: 0, v: 2.0 }),
                (l("a"), Sample { t: 0, v: a }),
            ])
        };
        assert_eq!(compare(&e, &v(1.0)), Ok(()));
        assert!(
            compare(&e, &v(1.1))
                .unwrap_err()
                .contains("expected 1 for a{} but got 1.1")
        );
        let e = eval("eval instant at 0 x\n  expect ordered\n  a 1\n  b 2\n");
        assert!(compare(&e, &v(1.0)).unwrap_err().contains("position"));
        let e = eval("eval instant at 0 x\n  a 1\n");
        assert!(
            compare(&e, &v(1.0))
                .unwrap_err()
                .contains("unexpected metric b{}")
        );
        let e = eval("eval instant at 0 x\n  a 1\n  b 2\n  c 3\n");
        assert!(compare(&e, &v(1.0)).unwrap_err().contains("c{} not found"));
        assert!(compare(&e, &Value::Scalar(Sample { t: 0, v: 1.0 })).is_err());
    }

    #[test]
    fn matrices_compare_points_on_the_step_grid() {
        let e = eval("eval range from 0 to 2m step 1m x\n  a 1 _ 3\n");
        let m = |t: i64| {
            Value::Matrix(vec![(
                l("a"),
                vec![Sample { t: 0, v: 1.0 }, Sample { t, v: 3.0 }],
            )])
        };
        assert_eq!(compare(&e, &m(120_000)), Ok(()));
        assert!(compare(&e, &m(60_000)).is_err());
        let unsorted = Value::Matrix(vec![(l("b"), vec![]), (l("a"), vec![])]);
        assert!(compare(&e, &unsorted).unwrap_err().contains("sorted"));
        let e = eval("eval instant at 0 x[1m]\n  a 1\n");
        assert!(
            compare(&e, &m(60_000))
                .unwrap_err()
                .contains("expect range vector")
        );
    }

    #[test]
    fn scalars_and_strings() {
        let e = eval("eval instant at 0 1\n  1\n");
        assert_eq!(compare(&e, &Value::Scalar(Sample { t: 0, v: 1.0 })), Ok(()));
        assert!(compare(&e, &Value::Scalar(Sample { t: 0, v: 2.0 })).is_err());
        let e = eval("eval instant at 0 \"a\"\n  expect string \"a\"\n");
        assert_eq!(compare(&e, &Value::String("a".into(), 0)), Ok(()));
        assert!(compare(&e, &Value::String("b".into(), 0)).is_err());
    }
}
