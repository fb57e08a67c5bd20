//! `histogram_quantile` over classic histograms: the `le` bucket series of each group
//! (labels without `le` and the name), per step, with Prometheus's handling of buckets:
//! equal bounds merged, counts forced monotonic (tiny float drifts ignored), NaN without
//! a `+Inf` bucket, linear interpolation inside the bucket. `histogram_quantiles` does
//! the same for several quantiles at once, naming each in a label; `histogram_fraction`
//! gives the share of observations between two bounds.

use super::super::EvalError;
use super::super::eval::{self, Eval, Output, Query, Steps};
use super::super::grouping::Groups;
use super::arg;
use crate::model::{METRIC_NAME, Sample};
use crate::promql::ast::{Call, Expr};
use crate::promql::quote::quote;

pub(in crate::promql::engine) fn eval(q: &mut Query<'_>, c: &Call) -> Result<Eval, EvalError> {
    // (histogram argument, quantile arguments, the label that names each quantile)
    let (hist_arg, phi_args, label): (&Expr, &[Expr], Option<String>) = match c.func.as_str() {
        "histogram_quantile" => (arg(c, 1)?, &c.args[..1], None),
        "histogram_quantiles" => {
            let label = match arg(c, 1)? {
                Expr::String(s) => s.value.clone(),
                other => {
                    return Err(EvalError::Execution(format!(
                        "expected a string label name, got {other}"
                    )));
                }
            };
            arg(c, 2)?;
            (arg(c, 0)?, &c.args[2..], Some(label))
        }
        _ => (arg(c, 2)?, &[][..], None),
    };
    // histogram_fraction's bounds, per step.
    let bounds = if c.func == "histogram_fraction" {
        Some((
            eval::eval_scalar(q, arg(c, 0)?)?,
            eval::eval_scalar(q, arg(c, 1)?)?,
        ))
    } else {
        None
    };
    let mut phis = Vec::with_capacity(phi_args.len());
    for e in phi_args {
        let phi = eval::eval_scalar(q, e)?;
        // Prometheus warns once per bad value, at the quantile argument.
        for &v in &phi {
            if v.is_nan() || !(0.0..=1.0).contains(&v) {
                q.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {} ({})",
                    super::format_float(v),
                    super::position(e.pos_range())
                ));
            }
        }
        phis.push(phi);
    }
    let input = eval::eval_vector(q, hist_arg)?;
    let hist_pos = super::position(hist_arg.pos_range());
    let mut grouping = Groups::new();
    // Per input series: (group, upper bound), or None without a usable `le`.
    let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
    for (l, points) in &input {
        let le = l.get("le").unwrap_or("");
        let Some(ub) = parse_le(le) else {
            if !points.is_empty() {
                q.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value \
                     of {} for metric name {} ({hist_pos})",
                    quote(le),
                    quote(l.get(METRIC_NAME).unwrap_or(""))
                ));
            }
            member.push(None);
            continue;
        };
        let g = grouping.group_of(l, |x| {
            x.name != "le" && x.name != METRIC_NAME && x.name != eval::DROP_NAME
        });
        member.push(Some((g, ub)));
    }
    let groups = grouping.into_labels();
    let mut buckets: Vec<Vec<(f64, f64)>> = vec![Vec::new(); groups.len()];
    let mut touched = Vec::new();
    let mut steps = Steps::new(input.len());
    let mut cur = Vec::new();
    let mut out: Output<(usize, usize, u64)> = Output::new();
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
            if let Some((lower, upper)) = &bounds {
                let v = bucket_fraction(lower[si], upper[si], &mut buckets[g]);
                let slot = out.slot((g, 0, 0), || groups[g].clone());
                out.push(slot, Sample { t, v })?;
            }
            for (qi, phi) in phis.iter().enumerate() {
                let phi = phi[si];
                let (v, forced) = bucket_quantile(phi, &mut buckets[g]);
                fixed |= forced;
                let slot = out.slot((g, qi, phi.to_bits()), || match &label {
                    None => groups[g].clone(),
                    Some(name) => {
                        let mut b = groups[g].builder();
                        b.set(name.clone(), format_quantile(phi));
                        b.into_labels()
                    }
                });
                out.push(slot, Sample { t, v })?;
            }
            buckets[g].clear();
        }
    }
    if fixed {
        q.info(format!(
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity \
             (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) ({hist_pos})"
        ));
    }
    Ok(Eval::Vector(out.into_series()))
}

/// A quantile as `histogram_quantiles` writes it into its label: Prometheus's
/// OpenMetrics float form, where a whole number keeps a `.0` (`0.0`, `1.0`, `0.25`).
fn format_quantile(f: f64) -> String {
    let s = super::format_float(f);
    if f.is_finite() && f == f.floor() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// `le` as Go's `strconv.ParseFloat` reads it (no trimming; `+Inf`, `inf`, `NaN`).
fn parse_le(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// Sorts `(upper bound, cumulative count)` buckets, merges equal bounds and forces the
/// counts monotonic; None without a `+Inf` bucket, else whether counts had to be forced.
/// Doing it twice changes nothing, so several quantiles can share the buckets.
fn prepare(b: &mut Vec<(f64, f64)>) -> Option<bool> {
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return None;
    }
    b.dedup_by(|cur, prev| {
        if cur.0 == prev.0 {
            prev.1 += cur.1;
            true
        } else {
            false
        }
    });
    Some(ensure_monotonic(b, 1e-12))
}

/// `histogram_fraction` over classic buckets: the share of observations between `lower`
/// and `upper`, interpolating linearly inside the buckets the bounds fall into. The
/// lowest bucket starts at 0 when its upper bound is positive, else at -Inf, where
/// nothing can be interpolated and the whole bucket counts.
fn bucket_fraction(lower: f64, upper: f64, b: &mut Vec<(f64, f64)>) -> f64 {
    // Unlike a quantile, a fraction needs no finite bucket: `+Inf` alone gives 0 share
    // to any finite range (an infinitely wide bucket spreads nothing anywhere).
    if prepare(b).is_none() {
        return f64::NAN;
    }
    let count = b[b.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, None, None);
    let mut start = if b[0].0 > 0.0 { 0.0 } else { f64::NEG_INFINITY };
    for (i, &(end, cum)) in b.iter().enumerate() {
        if i > 0 {
            start = b[i - 1].0;
        }
        let at = |v: f64| {
            if start == f64::NEG_INFINITY {
                cum
            } else {
                rank + (cum - rank) * (v - start) / (end - start)
            }
        };
        // A bound at or below this bucket's start takes the rank below it; one inside
        // the bucket is interpolated.
        if lower_rank.is_none() && start >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && start >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_none() && start < lower && end > lower {
            lower_rank = Some(at(lower));
        }
        if upper_rank.is_none() && start < upper && end > upper {
            upper_rank = Some(at(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank = cum;
    }
    // Not `f64::min`: a NaN rank stays NaN, as in Prometheus.
    let cap = |r: Option<f64>| r.map_or(count, |r| if r > count { count } else { r });
    let (lower_rank, upper_rank) = (cap(lower_rank), cap(upper_rank));
    (upper_rank - lower_rank) / count
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
    let Some(forced) = prepare(b) else {
        return (f64::NAN, false);
    };
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

    #[test]
    fn quantiles_name_each_quantile_and_warn_about_bad_input() {
        use super::super::super::testutil::{engine, labels, storage, vector};
        let b = |le: &'static str| -> Vec<(&'static str, &'static str)> {
            vec![("__name__", "h_bucket"), ("le", le)]
        };
        let (b1, b2, b3) = (b("1"), b("2"), b("+Inf"));
        let bad: &[(&str, &str)] = &[("__name__", "other"), ("le", "x")];
        let st = storage(&[
            (&b1, &[(0, 5.0)]),
            (&b2, &[(0, 10.0)]),
            (&b3, &[(0, 10.0)]),
            (bad, &[(0, 1.0)]),
        ]);
        let run = |q: &str| {
            let e = crate::promql::parse_expr(q).unwrap();
            engine().instant_query(&st, &e, 0).unwrap()
        };
        let r = run(r#"histogram_quantiles({__name__=~"h_bucket|other"}, "q", 0, 0.5, 1.5)"#);
        let got = vector(&r.value);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (labels(&[("q", "0.0")]), 0.0));
        assert_eq!(got[1], (labels(&[("q", "0.5")]), 1.0));
        assert_eq!(got[2], (labels(&[("q", "1.5")]), f64::INFINITY));
        assert_eq!(
            r.warnings,
            [
                "PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:64)",
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"x\" \
                 for metric name \"other\" (1:21)",
            ]
        );
        assert_eq!(format_quantile(1.0), "1.0");
        assert_eq!(format_quantile(f64::NAN), "NaN");
    }

    #[test]
    fn fractions_interpolate_inside_buckets() {
        let b = || vec![(1.0, 2.0), (2.0, 6.0), (4.0, 8.0), (f64::INFINITY, 8.0)];
        // [0,1]: 2, (1,2]: 4, (2,4]: 2 observations.
        assert_eq!(bucket_fraction(0.0, 2.0, &mut b()), 0.75);
        assert_eq!(bucket_fraction(1.5, 3.0, &mut b()), 0.375);
        assert_eq!(
            bucket_fraction(f64::NEG_INFINITY, f64::INFINITY, &mut b()),
            1.0
        );
        assert_eq!(bucket_fraction(3.0, 2.0, &mut b()), 0.0);
        assert!(bucket_fraction(f64::NAN, 2.0, &mut b()).is_nan());
        assert!(bucket_fraction(0.0, 1.0, &mut vec![(1.0, 2.0)]).is_nan());
        assert_eq!(
            bucket_fraction(0.0, 1.0, &mut vec![(f64::INFINITY, 5.0)]),
            0.0
        );
        // A lowest bucket at or below 0 starts at -Inf and counts whole.
        let mut neg = vec![(-1.0, 2.0), (1.0, 4.0), (f64::INFINITY, 4.0)];
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, -2.0, &mut neg), 0.5);
    }
}
