//! Numeric building blocks shared by functions and aggregations, with Prometheus's exact
//! arithmetic: Kahan-Neumaier summation, the quantile interpolation, and the linear
//! regression behind `deriv` and `predict_linear`.

use crate::model::Sample;

/// One step of Kahan-Neumaier summation: `sum + inc` with the running compensation `c`.
/// An infinite sum resets the compensation, as in Prometheus.
pub(in crate::promql::engine) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `q`-quantile of `values` by linear interpolation between closest ranks; NaN
/// sorts first. `q` outside `[0, 1]` gives -Inf/+Inf, NaN or no values NaN. Sorts
/// `values` in place.
pub(in crate::promql::engine) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Least-squares slope and intercept of `samples`, x in seconds relative to
/// `intercept_time` (ms). Constant y gives slope 0 (NaN for infinite y).
pub(in crate::promql::engine) fn linear_regression(
    samples: &[Sample],
    intercept_time: i64,
) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kahan_keeps_small_terms() {
        let mut s = (0.0, 0.0);
        for v in [1.0, 1e100, 1.0, -1e100] {
            s = kahan_inc(v, s.0, s.1);
        }
        assert_eq!(s.0 + s.1, 2.0);
        assert_eq!(kahan_inc(f64::INFINITY, 1.0, 0.5), (f64::INFINITY, 0.0));
    }

    #[test]
    fn quantile_interpolates_and_bounds() {
        let mut v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(-0.1, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile(1.1, &mut v), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
        let mut with_nan = [f64::NAN, 1.0, 2.0];
        assert!(quantile(0.0, &mut with_nan).is_nan(), "NaN sorts first");
    }

    #[test]
    fn regression_of_a_line() {
        let s: Vec<Sample> = (0..5)
            .map(|i| Sample {
                t: i * 10_000,
                v: 3.0 + 2.0 * (i * 10) as f64,
            })
            .collect();
        let (slope, icpt) = linear_regression(&s, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (icpt - 3.0).abs() < 1e-9);
        let c = [Sample { t: 0, v: 7.0 }, Sample { t: 1, v: 7.0 }];
        assert_eq!(linear_regression(&c, 0), (0.0, 7.0));
    }
}
