//! Which resolution answers a query, and which stored aggregate each range function
//! reads there. Downsampled data keeps per window the count, sum, min and max of the
//! raw samples and a counter-aware subsequence of them (see
//! [`crate::storage::Aggregate`]); a function can be answered from it only where it
//! composes over windows:
//!
//! | function                         | reads     | computes                     |
//! |----------------------------------|-----------|------------------------------|
//! | `sum_over_time`                  | `Sum`     | sum of sums                  |
//! | `count_over_time`                | `Count`   | sum of counts                |
//! | `min_over_time` / `max_over_time`| `Min`/`Max` | min of mins / max of maxes |
//! | `avg_over_time`                  | `Sum`, `Count` | sum of sums / sum of counts |
//! | `rate` `increase` `delta` `irate` `idelta` `resets` `changes` `deriv` `last_over_time` `present_over_time` `timestamp`, plain selectors | `Counter` | as over raw samples |
//!
//! A query using anything else over a range (quantile_over_time, stddev_over_time, ...)
//! is answered from raw data. Otherwise the coarsest resolution is picked that still
//! gives about five points per step and per range window (Thanos's rule of thumb); a
//! `max_source_resolution` parameter caps it (`0s` forces raw). Instant queries read raw
//! unless a resolution is asked for.

use crate::promql::ast::{DurationValue, Expr};
use crate::storage::Aggregate;

pub const RES_5M: i64 = 300_000;
pub const RES_1H: i64 = 3_600_000;

/// How many points per step (and per range window) a resolution must still give.
const POINTS_PER_STEP: i64 = 5;

/// What a range function reads at a downsampled resolution, and how it combines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Read this aggregate and apply the function unchanged.
    Same(Aggregate),
    /// `count_over_time`: read counts, sum them.
    SumOf(Aggregate),
    /// `avg_over_time`: sum of sums over sum of counts.
    Average,
}

/// The plan for range function `func`, or `None` if it does not compose over windows.
pub fn plan_for(func: &str) -> Option<Plan> {
    Some(match func {
        "sum_over_time" => Plan::Same(Aggregate::Sum),
        "min_over_time" => Plan::Same(Aggregate::Min),
        "max_over_time" => Plan::Same(Aggregate::Max),
        "count_over_time" => Plan::SumOf(Aggregate::Count),
        "avg_over_time" => Plan::Average,
        "rate" | "increase" | "delta" | "irate" | "idelta" | "resets" | "changes" | "deriv"
        | "last_over_time" | "present_over_time" => Plan::Same(Aggregate::Counter),
        _ => return None,
    })
}

/// The resolution to read for a query of `expr` at `step_ms` (0 for an instant
/// query), capped by `max_source_resolution` (`None`: automatic).
pub fn choose(expr: &Expr, step_ms: i64, max_source_resolution: Option<i64>) -> i64 {
    let cap = match max_source_resolution {
        Some(r) => r,
        None if step_ms == 0 => return 0,
        None => i64::MAX,
    };
    let mut shape = Shape {
        composable: true,
        min_window: i64::MAX,
    };
    shape.walk(expr, false);
    if !shape.composable {
        return 0;
    }
    let span = if step_ms == 0 {
        shape.min_window
    } else {
        step_ms.min(shape.min_window)
    };
    [RES_1H, RES_5M]
        .into_iter()
        .find(|&r| r <= cap && span / r >= POINTS_PER_STEP)
        .unwrap_or(0)
}

/// The longest range window in `expr` (0 without any): how far before a query's
/// start its selectors read.
pub fn max_window(expr: &Expr) -> i64 {
    fn walk(e: &Expr, m: &mut i64) {
        match e {
            Expr::MatrixSelector(x) => {
                if let DurationValue::Millis(ms) = x.range {
                    *m = (*m).max(ms);
                }
            }
            Expr::Subquery(s) => {
                if let DurationValue::Millis(ms) = s.range {
                    *m = (*m).max(ms);
                }
                walk(&s.expr, m);
            }
            Expr::Call(c) => c.args.iter().for_each(|a| walk(a, m)),
            Expr::Aggregate(a) => {
                walk(&a.expr, m);
                if let Some(p) = &a.param {
                    walk(p, m);
                }
            }
            Expr::Binary(b) => {
                walk(&b.lhs, m);
                walk(&b.rhs, m);
            }
            Expr::Unary(u) => walk(&u.expr, m),
            Expr::Paren(p) => walk(&p.expr, m),
            _ => {}
        }
    }
    let mut m = 0;
    walk(expr, &mut m);
    m
}

/// What [`choose`] learns from the expression tree.
struct Shape {
    /// No range function that needs raw samples.
    composable: bool,
    /// The shortest range window (range selectors and subqueries).
    min_window: i64,
}

impl Shape {
    fn window(&mut self, d: &DurationValue) {
        match d {
            DurationValue::Millis(ms) => self.min_window = self.min_window.min(*ms),
            // A computed range: not known before evaluation, so read raw.
            DurationValue::Expr(_) => self.composable = false,
        }
    }

    /// `in_range_call`: `e` is the argument of a function that takes a range.
    fn walk(&mut self, e: &Expr, in_range_call: bool) {
        match e {
            Expr::MatrixSelector(m) => {
                if !in_range_call {
                    // A bare range selector returns raw samples.
                    self.composable = false;
                }
                self.window(&m.range);
            }
            Expr::Subquery(s) => {
                if !in_range_call {
                    self.composable = false;
                }
                self.window(&s.range);
                self.walk(&s.expr, false);
            }
            Expr::Call(c) => {
                let takes_range = c
                    .args
                    .iter()
                    .any(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)));
                if takes_range && plan_for(&c.func).is_none() {
                    self.composable = false;
                }
                for a in &c.args {
                    self.walk(a, takes_range);
                }
            }
            Expr::Aggregate(a) => {
                self.walk(&a.expr, false);
                if let Some(p) = &a.param {
                    self.walk(p, false);
                }
            }
            Expr::Binary(b) => {
                self.walk(&b.lhs, false);
                self.walk(&b.rhs, false);
            }
            Expr::Unary(u) => self.walk(&u.expr, false),
            Expr::Paren(p) => self.walk(&p.expr, in_range_call),
            Expr::Number(_) | Expr::String(_) | Expr::VectorSelector(_) | Expr::Duration(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(q: &str, step_ms: i64, cap: Option<i64>) -> i64 {
        choose(&crate::promql::parse_expr(q).unwrap(), step_ms, cap)
    }

    const M: i64 = 60_000;
    const H: i64 = 60 * M;

    #[test]
    fn coarsest_resolution_with_five_points_per_step_and_window() {
        assert_eq!(res("sum(rate(x[1d]))", H, None), RES_5M);
        assert_eq!(res("sum(rate(x[1d]))", 6 * H, None), RES_1H);
        assert_eq!(res("rate(x[1h])", 6 * H, None), RES_5M);
        assert_eq!(res("rate(x[10m])", 6 * H, None), 0);
        assert_eq!(
            res("max_over_time(x[2h]) - min_over_time(x[2h])", H, None),
            RES_5M
        );
        assert_eq!(res("avg_over_time(x[5h])", 5 * H, None), RES_1H);
        assert_eq!(res("x", 30 * M, None), RES_5M);
        assert_eq!(res("x", 5 * M, None), 0);
    }

    #[test]
    fn functions_that_need_raw_samples_read_raw() {
        assert_eq!(res("quantile_over_time(0.9, x[1d])", 6 * H, None), 0);
        assert_eq!(res("stddev_over_time(x[1d])", 6 * H, None), 0);
        assert_eq!(
            res("sum(rate(x[1d])) / stddev_over_time(y[1d])", 6 * H, None),
            0
        );
        assert_eq!(
            res("max_over_time(rate(x[1h])[1d:1h])", 6 * H, None),
            RES_5M
        );
    }

    #[test]
    fn max_source_resolution_caps_and_instant_queries_read_raw() {
        assert_eq!(res("rate(x[1d])", 6 * H, Some(RES_5M)), RES_5M);
        assert_eq!(res("rate(x[1d])", 6 * H, Some(0)), 0);
        assert_eq!(res("rate(x[1d])", 0, None), 0);
        assert_eq!(res("rate(x[1d])", 0, Some(RES_1H)), RES_1H);
        assert_eq!(
            plan_for("count_over_time"),
            Some(Plan::SumOf(Aggregate::Count))
        );
        assert_eq!(plan_for("mad_over_time"), None);
    }
}
