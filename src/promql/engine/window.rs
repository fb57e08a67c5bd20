//! Range vectors: a matrix selector or a subquery, cut into the left-open window
//! `(r - range, r]` of every step, where `r` is the step time pinned by `@` and shifted
//! by `offset`. Windows only move forward, so cutting is two cursors per series, whatever
//! the number of steps.
//!
//! A matrix selector's series are read one at a time into a buffer the caller reuses:
//! a range function over many series holds one series' samples at once, as Prometheus
//! does, not every selected sample of the query, and reading allocates nothing per
//! series once the buffer has grown.
//!
//! A subquery `expr[range:step]` evaluates `expr` on its own grid of absolute-time
//! aligned steps (multiples of `step` since the epoch), from the first such step after
//! the earliest window start to the latest window end, as Prometheus does.

use super::EvalError;
use super::eval::{self, Eval, Query, Series, check_extended, literal_millis};
use crate::model::{Labels, Sample, is_stale_nan};
use crate::promql::ast::{AtModifier, DurationValue, Expr, SubqueryExpr, VectorSelector};
use crate::storage;

/// A range vector for the whole query: its series, handed out one at a time by
/// [`Windows::next_series`], and how to window them per step.
pub(super) struct Windows {
    source: Source,
    pub range: i64,
    pub offset: i64,
    pub at: Option<AtModifier>,
    /// Samples of the series last handed out that `q.samples` holds for it.
    held: usize,
}

enum Source {
    /// A matrix selector's series, still to be read, over `[mint, last]`.
    Selector {
        series: std::vec::IntoIter<storage::Series>,
        mint: i64,
        last: i64,
    },
    /// A subquery's evaluated series (already charged by its evaluation).
    Evaluated(std::vec::IntoIter<Series>),
}

impl Windows {
    /// `(exclusive start, inclusive end)` of the window at step time `t`.
    pub fn bounds(&self, q: &Query<'_>, t: i64) -> (i64, i64) {
        self.shape().bounds(q, t)
    }

    /// How this range vector windows a series, apart from its series.
    pub fn shape(&self) -> Shape {
        Shape {
            range: self.range,
            offset: self.offset,
            at: self.at,
        }
    }

    /// The next series with samples: its labels, its samples over all windows put in
    /// `buf` (in time order, replacing what was there). A selector's samples are charged
    /// to `q` until the next call or [`Windows::release`]; a subquery's series are handed
    /// back the same way.
    pub fn next_series(
        &mut self,
        q: &mut Query<'_>,
        buf: &mut Vec<Sample>,
    ) -> Result<Option<Labels>, EvalError> {
        self.release(q);
        buf.clear();
        match &mut self.source {
            // Charged by the subquery's evaluation already; handed back as consumed.
            Source::Evaluated(series) => Ok(series.next().map(|(labels, points)| {
                *buf = points;
                self.held = buf.len();
                labels
            })),
            Source::Selector { series, mint, last } => {
                let (mint, last) = (*mint, *last);
                for mut s in series.by_ref() {
                    q.check_deadline()?;
                    read_series(&mut s, mint, last, buf);
                    if buf.is_empty() {
                        continue;
                    }
                    q.charge(buf.len())?;
                    self.held = buf.len();
                    return Ok(Some(s.labels));
                }
                Ok(None)
            }
        }
    }

    /// A matrix selector's series not handed out yet, to be read elsewhere (on several
    /// threads) with [`read_series`] over the `(mint, last)` returned; `None` for a
    /// subquery. This range vector has no series left afterwards.
    pub fn take_selected(&mut self) -> Option<(Vec<storage::Series>, i64, i64)> {
        match &mut self.source {
            Source::Selector { series, mint, last } => {
                let rest: Vec<storage::Series> = series.by_ref().collect();
                Some((rest, *mint, *last))
            }
            Source::Evaluated(_) => None,
        }
    }

    /// Series still to be handed out.
    pub fn remaining(&self) -> usize {
        match &self.source {
            Source::Selector { series, .. } => series.len(),
            Source::Evaluated(series) => series.len(),
        }
    }

    /// Whether the series come from a matrix selector: distinct, and in label order.
    pub fn is_selector(&self) -> bool {
        matches!(self.source, Source::Selector { .. })
    }

    /// Hands back the samples of the series last read.
    pub fn release(&mut self, q: &mut Query<'_>) {
        q.samples = q.samples.saturating_sub(self.held);
        self.held = 0;
    }

    /// Calls `f` with the window of every step of one series ([`Shape::each`]).
    pub fn each(&self, q: &Query<'_>, samples: &[Sample], f: impl FnMut(Window<'_>)) -> usize {
        self.shape().each(q, samples, f)
    }

    /// Counts a selector's window samples (what [`Windows::each`] returned) as queryable:
    /// Prometheus counts every step's window, so a sample in two windows counts twice.
    /// A subquery's samples were counted where they were read.
    pub fn count(&self, q: &mut Query<'_>, window_samples: usize) {
        if self.is_selector() {
            q.count_queryable(window_samples);
        }
    }
}

/// The windowing of a range vector: its range, `offset` and `@`. Plain data, so the
/// threads of a parallel evaluation share it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub range: i64,
    pub offset: i64,
    pub at: Option<AtModifier>,
}

impl Shape {
    /// `(exclusive start, inclusive end)` of the window at step time `t`.
    pub fn bounds(&self, q: &Query<'_>, t: i64) -> (i64, i64) {
        let r = q.ref_time(t, self.at, self.offset);
        (r.saturating_sub(self.range), r)
    }

    /// Calls `f` with the window of every step of one series, in order, empty ones
    /// included, and returns how many samples the windows held together.
    pub fn each(&self, q: &Query<'_>, samples: &[Sample], mut f: impl FnMut(Window<'_>)) -> usize {
        let (mut a, mut b) = (0, 0);
        let mut total = 0;
        for (step, t) in q.times().enumerate() {
            let bounds = self.bounds(q, t);
            while a < samples.len() && samples[a].t <= bounds.0 {
                a += 1;
            }
            b = b.max(a);
            while b < samples.len() && samples[b].t <= bounds.1 {
                b += 1;
            }
            total += b - a;
            f(Window {
                step,
                t,
                offset: a,
                samples: &samples[a..b],
                bounds,
            });
        }
        total
    }
}

/// Reads a selected series' samples in `[mint, last]` into `buf` (cleared first),
/// leaving out staleness markers, which no range function sees.
pub(super) fn read_series(s: &mut storage::Series, mint: i64, last: i64, buf: &mut Vec<Sample>) {
    buf.clear();
    let Some(first) = s.samples.seek(mint) else {
        return;
    };
    if first.t > last {
        return;
    }
    if first.t >= mint && !is_stale_nan(first.v) {
        buf.push(first);
    }
    // A chunk's worth at a time: one dynamic call per chunk, not per sample.
    loop {
        let from = buf.len();
        if s.samples.next_batch(buf) == 0 {
            return;
        }
        let end = from + buf[from..].partition_point(|x| x.t <= last);
        let past_last = end < buf.len();
        buf.truncate(end);
        if buf[from..].iter().any(|x| is_stale_nan(x.v)) {
            let mut kept = from;
            for i in from..end {
                if !is_stale_nan(buf[i].v) {
                    buf[kept] = buf[i];
                    kept += 1;
                }
            }
            buf.truncate(kept);
        }
        if past_last {
            return;
        }
    }
}

/// One step's window of a series.
pub(super) struct Window<'a> {
    /// The step's index and time.
    pub step: usize,
    pub t: i64,
    /// Where the window starts in the series' samples.
    pub offset: usize,
    pub samples: &'a [Sample],
    /// `(exclusive start, inclusive end)`.
    pub bounds: (i64, i64),
}

/// Strips parentheses: `rate((x[5m]))` reads like `rate(x[5m])`.
pub(super) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Evaluates a range vector expression (matrix selector or subquery) for the query.
pub(super) fn eval_range(q: &mut Query<'_>, expr: &Expr) -> Result<Windows, EvalError> {
    match unwrap_parens(expr) {
        Expr::MatrixSelector(m) => {
            let range = range_millis(&m.range)?;
            load_matrix(q, &m.selector, range)
        }
        Expr::Subquery(s) => eval_subquery(q, s),
        other => Err(EvalError::Execution(format!(
            "expected type range vector, got {}",
            other
        ))),
    }
}

fn range_millis(d: &DurationValue) -> Result<i64, EvalError> {
    literal_millis(Some(d))
}

fn load_matrix(q: &mut Query<'_>, vs: &VectorSelector, range: i64) -> Result<Windows, EvalError> {
    check_extended(vs)?;
    let offset = literal_millis(vs.offset.as_ref())?;
    let first = q.ref_time(q.start, vs.at, offset);
    let last = q.ref_time(q.end, vs.at, offset);
    let mint = first.saturating_sub(range).saturating_add(1);
    let querier = q.storage.querier_at_resolution(mint, last, q.resolution)?;
    let series = querier.select_aggregate(&vs.matchers, q.aggregate)?;
    Ok(Windows {
        source: Source::Selector {
            series: series.into_iter(),
            mint,
            last,
        },
        range,
        offset,
        at: vs.at,
        held: 0,
    })
}

fn eval_subquery(q: &mut Query<'_>, s: &SubqueryExpr) -> Result<Windows, EvalError> {
    let range = range_millis(&s.range)?;
    let offset = literal_millis(s.offset.as_ref())?;
    let step = match &s.step {
        Some(d) => literal_millis(Some(d))?,
        None => q.default_subquery_step,
    };
    if step <= 0 {
        return Err(EvalError::BadStep);
    }
    let first = q.ref_time(q.start, s.at, offset);
    let last = q.ref_time(q.end, s.at, offset);
    let want = first.saturating_sub(range);
    // Go's integer division truncates toward zero; so does Rust's, and the correction
    // below then moves a start before `want` up by one step, as Prometheus does.
    let mut start = step * (want / step);
    if start < want {
        start += step;
    }
    let series = if start > last {
        Vec::new()
    } else {
        let steps = ((last - start) / step + 1) as usize;
        let mut sub = Query {
            storage: q.storage,
            start,
            end: last,
            step,
            steps,
            instant: false,
            delayed_name_removal: q.delayed_name_removal,
            query_start: q.query_start,
            query_end: q.query_end,
            lookback: q.lookback,
            samples: q.samples,
            peak: q.peak,
            total_queryable: q.total_queryable,
            max_samples: q.max_samples,
            deadline: q.deadline,
            default_subquery_step: q.default_subquery_step,
            warnings: std::mem::take(&mut q.warnings),
            infos: std::mem::take(&mut q.infos),
            resolution: q.resolution,
            aggregate: crate::storage::Aggregate::Counter,
        };
        let result = eval::eval(&mut sub, &s.expr);
        // The inner evaluation's samples count toward the query's, as Prometheus adds a
        // subquery's statistics to its parent's.
        q.samples = sub.samples;
        q.peak = sub.peak;
        q.total_queryable = sub.total_queryable;
        q.warnings = std::mem::take(&mut sub.warnings);
        q.infos = std::mem::take(&mut sub.infos);
        match result? {
            Eval::Vector(v) => v,
            Eval::Scalar(values) => vec![(
                Labels::empty(),
                sub.times()
                    .zip(values)
                    .map(|(t, v)| Sample { t, v })
                    .collect(),
            )],
            _ => {
                return Err(EvalError::Execution(
                    "subquery is only allowed on instant vector".into(),
                ));
            }
        }
    };
    Ok(Windows {
        source: Source::Evaluated(series.into_iter()),
        range,
        offset,
        at: s.at,
        held: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn subquery_steps_are_aligned_to_absolute_time() {
        let samples: Vec<(i64, f64)> = (0..20).map(|i| (i * 10, i as f64)).collect();
        let st = storage(&[(&[("__name__", "m")], &samples)]);
        // At t=95s, m[60s:20s] takes steps at multiples of 20s in (35, 95]: 40, 60, 80.
        let e = subquery(p("m"), 60_000, Some(20_000));
        match eval_instant(&st, &e, 95).unwrap() {
            crate::promql::Value::Matrix(m) => {
                let ts: Vec<i64> = m[0].1.iter().map(|s| s.t / 1000).collect();
                assert_eq!(ts, [40, 60, 80]);
                assert_eq!(m[0].1[0].v, 4.0);
            }
            other => panic!("{other:?}"),
        }
        let e = call(
            "count_over_time",
            vec![subquery(p("m"), 60_000, Some(20_000))],
        );
        let v = engine().range(&st, &e, 60_000, 100_000, 20_000).unwrap();
        assert_eq!(points(&v)[0].1, [(60, 3.0), (80, 3.0), (100, 3.0)]);
    }
}
