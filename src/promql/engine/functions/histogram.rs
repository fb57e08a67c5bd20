//! `histogram_quantile` over classic histograms: the `le` bucket series of each group
//! (labels without `le` and the name), per step, with Prometheus's handling of buckets:
//! equal bounds merged, counts forced monotonic (tiny float drifts ignored), NaN without
//! a `+Inf` bucket, linear interpolation inside the bucket. `histogram_fraction` needs
//! native histograms and answers "not supported yet".

use std::collections::HashMap;

use super::super::EvalError;
use super::super::eval::{self, Eval, Output, Query, Steps};
use super::arg;
use crate::model::{Labels, METRIC_NAME, Sample};
use crate::promql::ast::Call;

pub(in crate::promql::engine) fn eval(q: &mut Query<'_>, c: &Call) -> Result<Eval, EvalError> {
    if c.func != "histogram_quantile" {
        return Err(EvalError::Unsupported(
            "histogram_fraction and native histograms",
        ));
    }
    let phi = eval::eval_scalar(q, arg(c, 0)?)?;
    let input = eval::eval_vector(q, arg(c, 1)?)?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    // Per input series: (group, upper bound), or None without a usable `le`.
    let member: Vec<Option<(usize, f64)>> = input
        .iter()
        .map(|(l, _)| {
            let ub = parse_le(l.get("le")?)?;
            let mut b = l.builder();
            b.del("le");
            b.del(METRIC_NAME);
            let g = b.into_labels();
            let gi = *index.entry(g.clone()).or_insert_with(|| {
                groups.push(g);
                groups.len() - 1
            });
            Some((gi, ub))
        })
        .collect();
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
    let mut touched = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<usize> = Output::new();
    let mut fixed = false;
    for (si, t) in q.times().enumerate() {
        steps.at(&input, t, &mut cur);
        touched.clear();
        for &(i, v) in &cur {
            if let Some((g, ub)) = member[i] {
                if buckets[g].is_empty() {
                    touched.push(g);
                }
                buckets[g].push((ub, v));
            }
        }
        for &g in &touched {
            let (v, forced) = bucket_quantile(phi[si], &mut buckets[g]);
            fixed |= forced;
            buckets[g].clear();
            let slot = out.slot(g, || groups[g].clone());
            out.push(slot, Sample { t, v })?;
        }
    }
    if fixed {
        q.info(format!(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity \
             (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) ({})",
            super::position(c.pos)
        ));
    }
    Ok(Eval::Vector(out.into_series()))
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The `q`-quantile of `(upper bound, cumulative count)` buckets, and whether the counts
/// had to be forced monotonic.
fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Merge buckets with the same bound.
    b.dedup_by(|cur, prev| {
        if cur.0 == prev.0 {
            prev.1 += cur.1;
            true
        } else {
            false
        }
    });
    let forced = ensure_monotonic(b, 1e-12);
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let n = b.len();
    let observations = b[n - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let i = b.partition_point(|x| x.1 < rank);
    if i == n - 1 {
        return (b[n - 2].0, forced);
    }
    if i == 0 && b[0].0 <= 0.0 {
        return (b[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, b[i].0, b[i].1);
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Raises any count below its predecessor to it; differences within `tolerance`
/// (relative) are float noise and are smoothed without counting as a fix.
fn ensure_monotonic(b: &mut [(f64, f64)], tolerance: f64) -> bool {
    let mut forced = false;
    let mut prev = b[0].1;
    for x in b.iter_mut().skip(1) {
        let cur = x.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, tolerance) {
            x.1 = prev;
            continue;
        }
        if cur < prev {
            x.1 = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    forced
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_bucket() {
        let mut b = vec![(f64::INFINITY, 100.0), (0.1, 50.0), (0.2, 100.0)];
        let (v, forced) = bucket_quantile(0.5, &mut b);
        assert!((v - 0.1).abs() < 1e-12 && !forced);
        let mut b = vec![(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert!((bucket_quantile(0.75, &mut b).0 - 0.15).abs() < 1e-12);
        // The last finite bound when the rank falls into +Inf.
        let mut b = vec![(1.0, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(bucket_quantile(0.9, &mut b).0, 1.0);
    }

    #[test]
    fn needs_inf_bucket_and_fixes_monotonicity() {
        let mut b = vec![(0.1, 5.0), (0.2, 10.0)];
        assert!(bucket_quantile(0.5, &mut b).0.is_nan());
        let mut b = vec![(1.0, 10.0), (2.0, 5.0), (f64::INFINITY, 10.0)];
        let (v, forced) = bucket_quantile(0.5, &mut b);
        assert!(forced);
        assert!((v - 0.5).abs() < 1e-12);
        assert_eq!(bucket_quantile(-1.0, &mut b).0, f64::NEG_INFINITY);
    }
}
