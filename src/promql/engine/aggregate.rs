//! Aggregations over an instant vector, per step and per group (`by` keeps the listed
//! labels, `without` drops them and the name): `sum` (Kahan-compensated), `avg` (Kahan
//! sum, switching to an incremental mean when the sum would overflow, as Prometheus
//! 3.x), `count`, `group`, `min`, `max`, `stddev`, `stdvar`, `quantile`,
//! `count_values`, and the selectors `topk`, `bottomk`, `limitk`, `limit_ratio` that
//! keep the input series' labels. Group membership is computed once per series.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::EvalError;
use super::eval::{self, DROP_NAME, Eval, Output, Query, Series, Steps};
use super::functions::math::{kahan_inc, quantile};
use super::grouping::Groups;
use crate::model::{Label, Labels, METRIC_NAME, Sample};
use crate::promql::ast::{AggregateExpr, AggregateOp};

/// One group's running state at one step.
#[derive(Clone, Default)]
struct Acc {
    seen: bool,
    count: f64,
    value: f64,
    kahan: f64,
    mean: f64,
    incremental: bool,
}

pub(super) fn eval_aggregate(q: &mut Query<'_>, a: &AggregateExpr) -> Result<Eval, EvalError> {
    let param = match &a.param {
        Some(p) => Some(eval::eval(q, p)?),
        None => None,
    };
    let input = eval::eval_vector(q, &a.expr)?;
    let (groups, group_of) = groups(&input, a);
    let out = match a.op {
        AggregateOp::Topk
        | AggregateOp::Bottomk
        | AggregateOp::Limitk
        | AggregateOp::LimitRatio => {
            let param = scalar_param(param)?;
            select(q, a.op, &input, &group_of, groups.len(), &param)?
        }
        AggregateOp::CountValues => {
            let Some(Eval::String(label)) = param else {
                return Err(EvalError::Execution(
                    "count_values needs a string parameter".into(),
                ));
            };
            count_values(q, &input, &groups, &group_of, &label)?
        }
        AggregateOp::Quantile => {
            let param = scalar_param(param)?;
            for &p in &param {
                if !(0.0..=1.0).contains(&p) {
                    q.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {} ({})",
                        super::functions::format_float(p),
                        super::functions::position(
                            a.param.as_ref().map_or(a.pos, |e| e.pos_range())
                        )
                    ));
                }
            }
            quantiles(q, &input, &groups, &group_of, &param)?
        }
        op => fold(q, op, &input, &groups, &group_of)?,
    };
    Ok(Eval::Vector(out))
}

fn scalar_param(param: Option<Eval>) -> Result<Vec<f64>, EvalError> {
    match param {
        Some(Eval::Scalar(v)) => Ok(v),
        _ => Err(EvalError::Execution(
            "expected a scalar parameter for the aggregation".into(),
        )),
    }
}

/// The group label sets, and each input series' group.
fn groups(input: &[Series], a: &AggregateExpr) -> (Vec<Labels>, Vec<usize>) {
    let keep = |x: &Label| {
        if a.without {
            x.name != METRIC_NAME && x.name != DROP_NAME && !a.grouping.contains(&x.name)
        } else {
            a.grouping.contains(&x.name)
        }
    };
    let mut grouping = Groups::new();
    let group_of = input
        .iter()
        .map(|(l, _)| grouping.group_of(l, keep))
        .collect();
    let mut groups = grouping.into_labels();
    // Delayed name removal: a group that keeps the name loses it at the end if any of
    // its members was to lose it.
    for ((l, _), &g) in input.iter().zip(&group_of) {
        let group: &mut Labels = &mut groups[g];
        if l.get(DROP_NAME).is_some()
            && group.get(DROP_NAME).is_none()
            && group.get(METRIC_NAME).is_some()
        {
            let mut b = group.builder();
            b.set(DROP_NAME, "1");
            *group = b.into_labels();
        }
    }
    (groups, group_of)
}

fn fold(
    q: &mut Query<'_>,
    op: AggregateOp,
    input: &[Series],
    groups: &[Labels],
    group_of: &[usize],
) -> Result<Vec<Series>, EvalError> {
    let mut accs = vec![Acc::default(); groups.len()];
    let mut touched: Vec<usize> = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<usize> = Output::new();
    for t in q.times() {
        steps.at(input, t, &mut cur);
        touched.clear();
        for &(i, f) in &cur {
            let g = group_of[i];
            let acc = &mut accs[g];
            if !acc.seen {
                *acc = Acc {
                    seen: true,
                    count: 1.0,
                    value: f,
                    mean: f,
                    ..Acc::default()
                };
                if matches!(op, AggregateOp::Stddev | AggregateOp::Stdvar) {
                    acc.value = if f.is_finite() { 0.0 } else { f64::NAN };
                }
                touched.push(g);
                continue;
            }
            match op {
                AggregateOp::Sum => {
                    (acc.value, acc.kahan) = kahan_inc(f, acc.value, acc.kahan);
                }
                AggregateOp::Avg => {
                    acc.count += 1.0;
                    if !acc.incremental {
                        let (v, c) = kahan_inc(f, acc.value, acc.kahan);
                        if !v.is_infinite() {
                            (acc.value, acc.kahan) = (v, c);
                            continue;
                        }
                        // The sum would overflow: continue as an incremental mean.
                        acc.incremental = true;
                        acc.mean = acc.value / (acc.count - 1.0);
                        acc.kahan /= acc.count - 1.0;
                    }
                    let r = (acc.count - 1.0) / acc.count;
                    (acc.mean, acc.kahan) = kahan_inc(f / acc.count, r * acc.mean, r * acc.kahan);
                }
                AggregateOp::Count | AggregateOp::Group => acc.count += 1.0,
                AggregateOp::Max if acc.value < f || acc.value.is_nan() => acc.value = f,
                AggregateOp::Min if acc.value > f || acc.value.is_nan() => acc.value = f,
                AggregateOp::Stddev | AggregateOp::Stdvar => {
                    acc.count += 1.0;
                    let delta = f - acc.mean;
                    acc.mean += delta / acc.count;
                    acc.value += delta * (f - acc.mean);
                }
                _ => {}
            }
        }
        for &g in &touched {
            let acc = &mut accs[g];
            acc.seen = false;
            let v = match op {
                AggregateOp::Sum => acc.value + acc.kahan,
                AggregateOp::Avg if acc.incremental => acc.mean + acc.kahan,
                AggregateOp::Avg => acc.value / acc.count + acc.kahan / acc.count,
                AggregateOp::Count => acc.count,
                AggregateOp::Group => 1.0,
                AggregateOp::Stdvar => acc.value / acc.count,
                AggregateOp::Stddev => (acc.value / acc.count).sqrt(),
                _ => acc.value,
            };
            let slot = out.slot(g, || groups[g].clone());
            out.push(slot, Sample { t, v })?;
        }
        q.check_deadline()?;
    }
    Ok(out.into_series())
}

fn quantiles(
    q: &mut Query<'_>,
    input: &[Series],
    groups: &[Labels],
    group_of: &[usize],
    param: &[f64],
) -> Result<Vec<Series>, EvalError> {
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
    let mut touched = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<usize> = Output::new();
    for (si, t) in q.times().enumerate() {
        steps.at(input, t, &mut cur);
        touched.clear();
        for &(i, f) in &cur {
            let g = group_of[i];
            if values[g].is_empty() {
                touched.push(g);
            }
            values[g].push(f);
        }
        for &g in &touched {
            let v = quantile(param[si], &mut values[g]);
            values[g].clear();
            let slot = out.slot(g, || groups[g].clone());
            out.push(slot, Sample { t, v })?;
        }
    }
    Ok(out.into_series())
}

fn count_values(
    q: &mut Query<'_>,
    input: &[Series],
    groups: &[Labels],
    group_of: &[usize],
    label: &str,
) -> Result<Vec<Series>, EvalError> {
    if !crate::promql::engine::functions::labels::valid_label_name(label) {
        return Err(EvalError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let mut counts: HashMap<(usize, String), f64> = HashMap::new();
    let mut order: Vec<(usize, String)> = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<(usize, String)> = Output::new();
    for t in q.times() {
        steps.at(input, t, &mut cur);
        counts.clear();
        order.clear();
        for &(i, f) in &cur {
            let key = (group_of[i], super::functions::format_float(f));
            let c = counts.entry(key.clone()).or_insert(0.0);
            if *c == 0.0 {
                order.push(key);
            }
            *c += 1.0;
        }
        for key in order.drain(..) {
            let v = counts[&key];
            let (g, value) = (key.0, key.1.clone());
            let slot = out.slot(key, || {
                let mut b = groups[g].builder();
                b.set(label, value);
                b.into_labels()
            });
            out.push(slot, Sample { t, v })?;
        }
    }
    Ok(out.into_series())
}

/// `topk`, `bottomk`, `limitk`, `limit_ratio`: pick input series per group and step.
fn select(
    q: &mut Query<'_>,
    op: AggregateOp,
    input: &[Series],
    group_of: &[usize],
    n_groups: usize,
    param: &[f64],
) -> Result<Vec<Series>, EvalError> {
    let mut members: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n_groups];
    let mut order: Vec<usize> = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<usize> = Output::new();
    let offsets: Vec<f64> = if op == AggregateOp::LimitRatio {
        // Prometheus samples by the label set's hash over the u64 range; cairn's hash is
        // xxh3, not Prometheus's xxhash64, so the chosen series differ from Prometheus's
        // while keeping its properties (stable, complementary for r and r-1).
        input
            .iter()
            .map(|(l, _)| l.stable_hash() as f64 / u64::MAX as f64)
            .collect()
    } else {
        Vec::new()
    };
    // Largest (smallest) first, NaN last; ties keep input order, which is the order of
    // the series indexes.
    let ranked = matches!(op, AggregateOp::Topk | AggregateOp::Bottomk);
    let by = |a: &(usize, f64), b: &(usize, f64)| {
        let by_value = if op == AggregateOp::Topk {
            desc_nan_last(a.1, b.1)
        } else {
            asc_nan_last(a.1, b.1)
        };
        by_value.then(a.0.cmp(&b.0))
    };
    for (si, t) in q.times().enumerate() {
        let p = param[si];
        if p.is_nan() {
            return Err(EvalError::Execution(
                if op == AggregateOp::LimitRatio {
                    "Ratio value is NaN"
                } else {
                    "Parameter value is NaN"
                }
                .into(),
            ));
        }
        steps.at(input, t, &mut cur);
        if op == AggregateOp::LimitRatio {
            if !(-1.0..=1.0).contains(&p) {
                q.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}",
                    super::functions::format_float(p)
                ));
            }
            let r = p.clamp(-1.0, 1.0);
            for &(i, v) in &cur {
                let o = offsets[i];
                if (r >= 0.0 && o < r) || (r < 0.0 && o >= 1.0 + r) {
                    let slot = out.slot(i, || input[i].0.clone());
                    out.push(slot, Sample { t, v })?;
                }
            }
            continue;
        }
        let k = if p >= 9.2e18 { i64::MAX } else { p as i64 };
        if k < 1 {
            continue;
        }
        let k = k as usize;
        // Small k: each group keeps its k best, sorted, while the step is scanned, so
        // most series cost one comparison with the group's worst kept.
        let bounded = ranked && k <= 64;
        order.clear();
        for &(i, v) in &cur {
            let g = group_of[i];
            let m = &mut members[g];
            if m.is_empty() {
                order.push(g);
            }
            if !bounded {
                m.push((i, v));
                continue;
            }
            let x = (i, v);
            if m.len() == k {
                if by(&x, &m[k - 1]) != Ordering::Less {
                    continue;
                }
                m.pop();
            }
            let at = m.partition_point(|y| by(y, &x) == Ordering::Less);
            m.insert(at, x);
        }
        for &g in &order {
            let m = &mut members[g];
            if ranked && !bounded {
                // Only the k best are sorted: picking them is linear in the group's size.
                if k < m.len() {
                    m.select_nth_unstable_by(k - 1, by);
                    m.truncate(k);
                }
                m.sort_unstable_by(by);
            }
            for &(i, v) in m.iter().take(k) {
                let slot = out.slot(i, || input[i].0.clone());
                out.push(slot, Sample { t, v })?;
            }
            m.clear();
        }
    }
    Ok(out.into_series())
}

fn desc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.total_cmp(&a),
    }
}

fn asc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::promql::ast::AggregateOp;

    fn data() -> MemStorage {
        storage(&[
            (&[("__name__", "m"), ("g", "a"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "m"), ("g", "a"), ("i", "2")], &[(0, 3.0)]),
            (
                &[("__name__", "m"), ("g", "b"), ("i", "3")],
                &[(0, f64::NAN)],
            ),
        ])
    }

    #[test]
    fn grouping_by_and_without() {
        let st = data();
        let e = agg(AggregateOp::Sum, None, p(r#"m{g="a"}"#), &["g"]);
        assert_eq!(
            vector(&eval_instant(&st, &e, 0).unwrap()),
            [(labels(&[("g", "a")]), 4.0)]
        );
        let e = without(agg(AggregateOp::Avg, None, p(r#"m{g="a"}"#), &["i"]));
        assert_eq!(
            vector(&eval_instant(&st, &e, 0).unwrap()),
            [(labels(&[("g", "a")]), 2.0)]
        );
        let e = agg(AggregateOp::Stddev, None, p(r#"m{g="a"}"#), &[]);
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [1.0]);
        let e = agg(AggregateOp::Max, None, p("m"), &[]);
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [3.0]);
    }

    #[test]
    fn topk_keeps_labels_and_orders_nan_last() {
        let st = data();
        let e = agg(AggregateOp::Topk, Some(num(2.0)), p("m"), &[]);
        let v = vector(&eval_instant(&st, &e, 0).unwrap());
        assert_eq!(v[0].0.get("i"), Some("2"));
        assert_eq!(v[1].0.get("i"), Some("1"));
        // Ties keep input (label) order, also when only some of them make the cut.
        let owned: Vec<[(&str, &str); 2]> = ["e", "d", "c", "b", "a", "f"]
            .iter()
            .map(|i| [("__name__", "t"), ("i", *i)])
            .collect();
        let vals = [1.0, 5.0, 5.0, 5.0, f64::NAN, 5.0];
        let samples: Vec<[(i64, f64); 1]> = vals.iter().map(|&v| [(0, v)]).collect();
        let series: Vec<TestSeries<'_>> = owned
            .iter()
            .zip(&samples)
            .map(|(l, s)| (&l[..], &s[..]))
            .collect();
        let ties = storage(&series);
        let pick = |op, k: f64| {
            let e = agg(op, Some(num(k)), p("t"), &[]);
            let v = vector(&eval_instant(&ties, &e, 0).unwrap());
            v.iter()
                .map(|(l, _)| l.get("i").unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(AggregateOp::Topk, 2.0), ["b", "c"]);
        assert_eq!(pick(AggregateOp::Topk, 5.0), ["b", "c", "d", "f", "e"]);
        assert_eq!(pick(AggregateOp::Topk, 9.0), ["b", "c", "d", "f", "e", "a"]);
        assert_eq!(pick(AggregateOp::Bottomk, 2.0), ["e", "b"]);
        // Large and small k take different paths to the same order: by value, then
        // by labels among equal values.
        let names: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
        let owned: Vec<[(&str, &str); 2]> = names
            .iter()
            .map(|n| [("__name__", "u"), ("i", n.as_str())])
            .collect();
        let samples: Vec<[(i64, f64); 1]> = (0..100).map(|i| [(0, (i * 37 % 7) as f64)]).collect();
        let series: Vec<TestSeries<'_>> = owned
            .iter()
            .zip(&samples)
            .map(|(l, s)| (&l[..], &s[..]))
            .collect();
        let many = storage(&series);
        let mut want: Vec<(f64, usize)> = (0..100).map(|i| ((i * 37 % 7) as f64, i)).collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for k in [3.0, 64.0, 65.0, 99.0] {
            let e = agg(AggregateOp::Topk, Some(num(k)), p("u"), &[]);
            let got: Vec<usize> = vector(&eval_instant(&many, &e, 0).unwrap())
                .iter()
                .map(|(l, _)| l.get("i").unwrap().parse().unwrap())
                .collect();
            let top: Vec<usize> = want.iter().take(k as usize).map(|w| w.1).collect();
            assert_eq!(got, top, "topk({k})");
        }
        let e = agg(AggregateOp::Topk, Some(num(f64::NAN)), p("m"), &[]);
        assert_eq!(
            eval_instant(&st, &e, 0).unwrap_err().to_string(),
            "Parameter value is NaN"
        );
        let e = agg(AggregateOp::Quantile, Some(num(0.5)), p(r#"m{g="a"}"#), &[]);
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [2.0]);
        let e = agg(
            AggregateOp::CountValues,
            Some(string("v")),
            p(r#"m{g="a"}"#),
            &[],
        );
        let v = vector(&eval_instant(&st, &e, 0).unwrap());
        assert_eq!(v[0], (labels(&[("v", "1")]), 1.0));
    }
}
