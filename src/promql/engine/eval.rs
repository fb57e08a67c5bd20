//! The evaluation core: a query's time grid and budgets ([`Query`]), the series-major
//! intermediate result ([`Eval`]), the node dispatch, and instant vector selectors with
//! lookback and staleness:
//!
//! - an instant vector selector at `t` takes each series' newest sample in
//!   `(t - lookback, t]` (left-open since Prometheus 3.0), none if that sample is a
//!   staleness marker;
//! - `offset` shifts the time back, `@` pins it (`start()`/`end()` are the query's);
//! - each series' iterator is walked once per query, seeking forward only, however many
//!   steps a range query has.

use std::collections::HashMap;
use std::time::Instant;

use super::{
    EvalError, QueryResult, QueryStats, QueryTimings, Value, aggregate, binary, functions,
    parallel, window,
};
use crate::model::{Label, Labels, METRIC_NAME, Sample, is_stale_nan};
use crate::promql::ast::{AtModifier, DurationValue, Expr, UnaryOp, VectorSelector};
use crate::storage::{Aggregate, SampleIterator, Storage};

/// One series of an intermediate result: labels and points in time order.
pub(super) type Series = (Labels, Vec<Sample>);

/// An evaluation result for every step of the query.
pub(super) enum Eval {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// Series with points at step times (steps without a value left out).
    Vector(Vec<Series>),
    /// Raw samples; only from an instant query's range selector or subquery.
    Matrix(Vec<Series>),
}

/// The time grid of one query (or subquery) and the budgets it draws on.
pub(super) struct Query<'s> {
    pub storage: &'s dyn Storage,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub steps: usize,
    /// Prometheus's delayed name removal: nodes mark series with [`DROP_NAME`] instead
    /// of dropping the name, and the result drops it ([`cleanup_names`]).
    pub delayed_name_removal: bool,
    /// Whether this is an instant query's grid (not a range query's, nor a subquery's):
    /// `step()` is 0 there.
    pub instant: bool,
    /// The outermost query's start and end: what `@ start()` and `@ end()` mean, also
    /// inside subqueries.
    pub query_start: i64,
    pub query_end: i64,
    pub lookback: i64,
    /// Samples held right now by the evaluation (selected, or in intermediate results
    /// not yet consumed), Prometheus's `currentSamples`: what `max_samples` limits.
    pub samples: usize,
    /// The most samples held at once: the query's `peakSamples`.
    pub peak: usize,
    /// Samples read from storage, summed over steps: `totalQueryableSamples`.
    pub total_queryable: u64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
    pub default_subquery_step: i64,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// The data resolution read (0: raw; see `downsample::choose`).
    pub resolution: i64,
    /// The aggregate a range selector reads at `resolution`, set by the range
    /// function around it; plain selectors read `Counter` (raw samples).
    pub aggregate: Aggregate,
}

impl Query<'_> {
    pub fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, step) = (self.start, self.step);
        (0..self.steps as i64).map(move |i| start + i * step)
    }

    /// The index of step time `t` on this grid.
    pub fn step_index(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }

    /// Takes `n` more samples into memory. Like Prometheus, the limit is on samples held
    /// at once (the peak), not on all samples a query ever touched: [`eval`] hands back
    /// a node's inputs once the node's output is built.
    pub fn charge(&mut self, n: usize) -> Result<(), EvalError> {
        self.samples = self.samples.saturating_add(n);
        self.peak = self.peak.max(self.samples);
        if self.samples > self.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }

    /// Counts samples read from storage for `totalQueryableSamples`.
    pub fn count_queryable(&mut self, n: usize) {
        self.total_queryable = self.total_queryable.saturating_add(n as u64);
    }

    pub fn check_deadline(&self) -> Result<(), EvalError> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(EvalError::Timeout("expression evaluation")),
            _ => Ok(()),
        }
    }

    /// Where a selector reads at step time `t`: pinned by `@`, then shifted by `offset`.
    pub fn ref_time(&self, t: i64, at: Option<AtModifier>, offset: i64) -> i64 {
        self.base_time(t, at).saturating_sub(offset)
    }

    pub fn base_time(&self, t: i64, at: Option<AtModifier>) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Timestamp(ts)) => ts,
            Some(AtModifier::Start) => self.query_start,
            Some(AtModifier::End) => self.query_end,
        }
    }

    /// Reads data at `resolution` (ms, 0 raw) where the storage has it. The lookback
    /// is not widened: at step times aligned to the resolution (Grafana aligns a query's
    /// start to its step), each window's last sample lies within it, so plain selectors
    /// see what they see over raw data; raw answers keep Prometheus's semantics exactly.
    pub fn set_resolution(&mut self, resolution: i64) {
        self.resolution = resolution;
    }

    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    pub fn finish(self, value: Value, timings: QueryTimings) -> QueryResult {
        QueryResult {
            value,
            warnings: self.warnings,
            infos: self.infos,
            stats: QueryStats {
                total_queryable_samples: self.total_queryable,
                peak_samples: self.peak,
                timings,
            },
            resolution: self.resolution,
        }
    }
}

impl Eval {
    /// The samples this result holds: Prometheus counts a scalar as one per step.
    fn samples(&self) -> usize {
        match self {
            Eval::Scalar(v) => v.len(),
            Eval::String(_) => 0,
            Eval::Vector(s) | Eval::Matrix(s) => s.iter().map(|(_, p)| p.len()).sum(),
        }
    }
}

/// Whether an instant query's vector keeps the order evaluation gave it: the sort
/// functions and `topk`/`bottomk` order their output, everything else is sorted by labels.
pub(super) fn keeps_order(expr: &Expr) -> bool {
    use crate::promql::ast::AggregateOp;
    match expr {
        Expr::Paren(p) => keeps_order(&p.expr),
        Expr::Call(c) => matches!(
            c.func.as_str(),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        ),
        Expr::Aggregate(a) => matches!(a.op, AggregateOp::Topk | AggregateOp::Bottomk),
        _ => false,
    }
}

/// Evaluates one node. What the node's inputs held is handed back once its output is
/// built, so `q.samples` afterwards is what was held before plus the output alone, as
/// Prometheus's evaluator releases its arguments' samples after each node. The output
/// is charged while the inputs are still held, so the peak sees both.
pub(super) fn eval(q: &mut Query<'_>, expr: &Expr) -> Result<Eval, EvalError> {
    let before = q.samples;
    let result = eval_node(q, expr)?;
    let out = result.samples();
    // Leaves charge their own output as they load it; for other nodes, whatever was
    // charged inside belongs to inputs that are now released.
    let own = match expr {
        Expr::Number(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Subquery(_)
        | Expr::Paren(_) => 0,
        _ => out,
    };
    q.charge(own)?;
    q.samples = before.saturating_add(out);
    Ok(result)
}

fn eval_node(q: &mut Query<'_>, expr: &Expr) -> Result<Eval, EvalError> {
    q.check_deadline()?;
    match expr {
        Expr::Number(n) => {
            q.charge(q.steps)?;
            Ok(Eval::Scalar(vec![n.value; q.steps]))
        }
        Expr::String(s) => Ok(Eval::String(s.value.clone())),
        Expr::Paren(p) => eval(q, &p.expr),
        Expr::Unary(u) => {
            let inner = eval(q, &u.expr)?;
            if u.op == UnaryOp::Plus {
                return Ok(inner);
            }
            match inner {
                Eval::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Eval::Scalar(v))
                }
                Eval::Vector(series) => {
                    let negated = series
                        .into_iter()
                        .map(|(labels, mut points)| {
                            points.iter_mut().for_each(|s| s.v = -s.v);
                            (drop_name(&labels, q.delayed_name_removal), points)
                        })
                        .collect();
                    Ok(Eval::Vector(merge_series(negated)?))
                }
                Eval::String(_) | Eval::Matrix(_) => Err(EvalError::Unsupported(
                    "unary operators on strings and range vectors",
                )),
            }
        }
        Expr::VectorSelector(vs) => eval_vector_selector(q, vs, false),
        Expr::MatrixSelector(_) | Expr::Subquery(_) => {
            if q.steps != 1 {
                return Err(EvalError::InvalidRangeQueryType("range vector"));
            }
            let mut w = window::eval_range(q, expr)?;
            let (lo, hi) = w.bounds(q, q.start);
            let (mut out, mut samples) = (Vec::new(), Vec::new());
            while let Some(labels) = w.next_series(q, &mut samples)? {
                let a = samples.partition_point(|s| s.t <= lo);
                let b = samples.partition_point(|s| s.t <= hi);
                // The window is what the result holds; the rest of what was read goes.
                w.release(q);
                w.count(q, b - a);
                if a < b {
                    q.charge(b - a)?;
                    out.push((labels, samples[a..b].to_vec()));
                }
            }
            Ok(Eval::Matrix(out))
        }
        Expr::Binary(b) => binary::eval_binary(q, b),
        Expr::Aggregate(a) => aggregate::eval_aggregate(q, a),
        Expr::Call(c) => functions::eval_call(q, c),
        Expr::Duration(_) => Err(EvalError::Unsupported("duration expressions")),
    }
}

pub(super) fn literal_millis(d: Option<&DurationValue>) -> Result<i64, EvalError> {
    match d {
        None => Ok(0),
        Some(DurationValue::Millis(ms)) => Ok(*ms),
        Some(DurationValue::Expr(_)) => Err(EvalError::Unsupported("duration expressions")),
    }
}

pub(super) fn check_extended(vs: &VectorSelector) -> Result<(), EvalError> {
    if vs.anchored || vs.smoothed {
        return Err(EvalError::Unsupported("anchored and smoothed selectors"));
    }
    Ok(())
}

/// With delayed name removal (Prometheus's `EnableDelayedNameRemoval`), a node that
/// would drop the metric name keeps it and marks the series with this internal label;
/// the name and the mark go when the query's result is assembled ([`cleanup_names`]).
/// Prometheus carries a `DropName` flag beside each series; cairn keeps series as
/// (labels, points), so the flag rides in the labels, and the few places that look at
/// all labels treat it specially: matching signatures and `without` ignore it, `by
/// (__name__)` groups take it from their members, `label_replace`/`label_join` into
/// `__name__` clear it. It never reaches a query's result.
pub(super) const DROP_NAME: &str = "__cairn_drop_name__";

/// The labels without the metric name, or, with delayed name removal, marked to lose it.
pub(super) fn drop_name(labels: &Labels, delayed: bool) -> Labels {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    let mut b = labels.builder();
    if delayed {
        if labels.get(DROP_NAME).is_some() {
            return labels.clone();
        }
        b.set(DROP_NAME, "1");
    } else {
        b.del(METRIC_NAME);
    }
    b.into_labels()
}

/// [`drop_name`] for labels the caller owns: no label is copied.
pub(super) fn drop_name_owned(labels: Labels, delayed: bool) -> Labels {
    let mut v = labels.into_vec();
    if let Ok(i) = v.binary_search_by(|l| l.name.as_str().cmp(METRIC_NAME)) {
        if !delayed {
            v.remove(i);
        } else if let Err(j) = v.binary_search_by(|l| l.name.as_str().cmp(DROP_NAME)) {
            v.insert(j, Label::new(DROP_NAME, "1"));
        }
    }
    Labels::from_sorted(v)
}

/// The last step of delayed name removal: drops the name (and the mark) of every marked
/// series, then merges series that now share labels (two points at one time fail the
/// query, as in Prometheus). Keeps the order otherwise; unmarked input is returned as is.
pub(super) fn cleanup_names(mut series: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    if !series.iter().any(|(l, _)| l.get(DROP_NAME).is_some()) {
        return Ok(series);
    }
    for (l, _) in &mut series {
        if l.get(DROP_NAME).is_some() {
            let mut b = l.builder();
            b.del(DROP_NAME);
            b.del(METRIC_NAME);
            *l = b.into_labels();
        }
    }
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for (labels, points) in series {
        match index.get(&labels) {
            Some(&i) => {
                let merged = &mut out[i].1;
                merged.extend(points);
                merged.sort_by_key(|s| s.t);
                if merged.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(EvalError::DuplicateLabelset);
                }
            }
            None => {
                index.insert(labels.clone(), out.len());
                out.push((labels, points));
            }
        }
    }
    Ok(out)
}

/// Merges series that have the same labels (after a function dropped the name, say).
/// Two of them with a value at the same step make the result ambiguous and the query
/// fails, as in Prometheus; series that never overlap become one.
pub(super) fn merge_series(mut series: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    if series.windows(2).all(|w| w[0].0 < w[1].0) {
        return Ok(series);
    }
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for (labels, points) in series {
        match out.last_mut() {
            Some((last, merged)) if *last == labels => {
                merged.extend(points);
                merged.sort_by_key(|s| s.t);
                if merged.windows(2).any(|w| w[0].t == w[1].t) {
                    return Err(EvalError::DuplicateLabelset);
                }
            }
            _ => out.push((labels, points)),
        }
    }
    Ok(out)
}

/// Collects per-step output samples into series, looking each output label set up once:
/// callers key the series by something cheap (input series indexes) and only build the
/// labels the first time a key is seen.
pub(super) struct Output<K> {
    pub series: Vec<Series>,
    by_key: HashMap<K, usize>,
    by_labels: HashMap<Labels, usize>,
}

impl<K: std::hash::Hash + Eq> Output<K> {
    pub fn new() -> Self {
        Output {
            series: Vec::new(),
            by_key: HashMap::new(),
            by_labels: HashMap::new(),
        }
    }

    /// The output series for `key`, creating it with `labels()` the first time.
    pub fn slot(&mut self, key: K, labels: impl FnOnce() -> Labels) -> usize {
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        let l = labels();
        let i = match self.by_labels.get(&l) {
            Some(&i) => i,
            None => {
                let i = self.series.len();
                self.by_labels.insert(l.clone(), i);
                self.series.push((l, Vec::new()));
                i
            }
        };
        self.by_key.insert(key, i);
        i
    }

    /// Appends a point; a second point at the same time means two results share a
    /// label set, which Prometheus refuses.
    pub fn push(&mut self, slot: usize, s: Sample) -> Result<(), EvalError> {
        let points = &mut self.series[slot].1;
        if points.last().is_some_and(|p| p.t == s.t) {
            return Err(EvalError::DuplicateLabelset);
        }
        points.push(s);
        Ok(())
    }

    pub fn into_series(self) -> Vec<Series> {
        self.series
    }
}

/// Walks series-major vectors step by step: at each step time it yields, for every
/// series with a point there, `(series index, value)`. Each series is walked once.
pub(super) struct Steps {
    pos: Vec<usize>,
}

impl Steps {
    pub fn new(n: usize) -> Self {
        Steps { pos: vec![0; n] }
    }

    pub fn at(&mut self, series: &[Series], t: i64, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, (_, points)) in series.iter().enumerate() {
            let p = &mut self.pos[i];
            while *p < points.len() && points[*p].t < t {
                *p += 1;
            }
            if let Some(s) = points.get(*p)
                && s.t == t
            {
                out.push((i, s.v));
            }
        }
    }
}

/// Evaluates an expression that must give an instant vector.
pub(super) fn eval_vector(q: &mut Query<'_>, expr: &Expr) -> Result<Vec<Series>, EvalError> {
    match eval(q, expr)? {
        Eval::Vector(v) => Ok(v),
        _ => Err(EvalError::Execution(format!(
            "expected instant vector, got {}",
            expr
        ))),
    }
}

/// Evaluates an expression that must give a scalar: one value per step.
pub(super) fn eval_scalar(q: &mut Query<'_>, expr: &Expr) -> Result<Vec<f64>, EvalError> {
    match eval(q, expr)? {
        Eval::Scalar(v) => Ok(v),
        _ => Err(EvalError::Execution(format!(
            "expected scalar, got {}",
            expr
        ))),
    }
}

/// An instant vector selector. With `timestamps`, each point's value is the time of
/// the sample it came from (in seconds), for `timestamp(selector)`.
pub(super) fn eval_vector_selector(
    q: &mut Query<'_>,
    vs: &VectorSelector,
    timestamps: bool,
) -> Result<Eval, EvalError> {
    check_extended(vs)?;
    let offset = literal_millis(vs.offset.as_ref())?;
    let first = q.ref_time(q.start, vs.at, offset);
    let last = q.ref_time(q.end, vs.at, offset);
    let querier = q.storage.querier_at_resolution(
        first.saturating_sub(q.lookback).saturating_add(1),
        last,
        q.resolution,
    )?;
    let selected = querier.select(&vs.matchers)?;
    let shared: &Query<'_> = q;
    // Each part in series order; a part's points are what it found, one per step.
    let parts = parallel::map_parts(selected, |part| {
        let mut out = Vec::with_capacity(part.len());
        // Reused across series; each series' points are copied out at their exact size.
        let mut points = Vec::new();
        let mut read_ahead = Vec::new();
        for series in part {
            shared.check_deadline()?;
            let mut cursor = LookbackCursor::new(series.samples, std::mem::take(&mut read_ahead));
            points.clear();
            if shared.steps == 1 {
                // One lookup: the storage may know the newest sample without reading.
                let r = shared.ref_time(shared.start, vs.at, offset);
                if let Some(s) = cursor.only_sample_at(r, shared.lookback) {
                    let v = if timestamps { s.t as f64 / 1000.0 } else { s.v };
                    points.push(Sample { t: shared.start, v });
                }
            } else {
                for t in shared.times() {
                    let r = shared.ref_time(t, vs.at, offset);
                    if let Some(s) = cursor.sample_at(r, shared.lookback) {
                        let v = if timestamps { s.t as f64 / 1000.0 } else { s.v };
                        points.push(Sample { t, v });
                    }
                }
            }
            read_ahead = cursor.into_buffer();
            if !points.is_empty() {
                out.push((series.labels, points.to_vec()));
            }
        }
        Ok::<_, EvalError>(out)
    });
    let mut out = Vec::new();
    for part in parts {
        let part = part?;
        let n = part.iter().map(|(_, p)| p.len()).sum();
        // Prometheus counts one queryable sample per step that found one.
        q.count_queryable(n);
        q.charge(n)?;
        if out.is_empty() {
            out = part;
        } else {
            out.extend(part);
        }
    }
    // Storage selects series sorted by labels: the vector is in label order already.
    Ok(Eval::Vector(out))
}

/// Answers "the newest sample in `(r - window, r]`" for non-decreasing `r`, reading one
/// series' samples once, forward only, a chunk's worth at a time. Long gaps are skipped
/// with `seek`, so a sparse range query over a long series does not decode what it does
/// not need.
struct LookbackCursor {
    it: Box<dyn SampleIterator>,
    started: bool,
    /// Newest sample at or before the last `r`.
    prev: Option<Sample>,
    /// First sample after the last `r`; `None` with `started` means the series ended.
    next: Option<Sample>,
    /// Samples read after `next`, from `pos` on; the iterator stands at the last one.
    ahead: Vec<Sample>,
    pos: usize,
}

impl LookbackCursor {
    /// A cursor over `it`, reading ahead into `buffer` (a spare one, reused).
    fn new(it: Box<dyn SampleIterator>, mut buffer: Vec<Sample>) -> Self {
        buffer.clear();
        LookbackCursor {
            it,
            started: false,
            prev: None,
            next: None,
            ahead: buffer,
            pos: 0,
        }
    }

    fn into_buffer(self) -> Vec<Sample> {
        self.ahead
    }

    #[inline]
    fn read(&mut self) -> Option<Sample> {
        if let Some(&s) = self.ahead.get(self.pos) {
            self.pos += 1;
            return Some(s);
        }
        self.ahead.clear();
        self.pos = 0;
        if self.it.next_batch(&mut self.ahead) == 0 {
            return None;
        }
        self.pos = 1;
        self.ahead.first().copied()
    }

    /// The first sample at or after `t`; the samples before it are all older than `t`.
    fn seek(&mut self, t: i64) -> Option<Sample> {
        let rest = self.ahead.get(self.pos..).unwrap_or(&[]);
        if rest.last().is_some_and(|s| s.t >= t) {
            self.pos += rest.partition_point(|s| s.t < t);
            return self.read();
        }
        self.ahead.clear();
        self.pos = 0;
        self.it.seek(t)
    }

    fn sample_at(&mut self, r: i64, window: i64) -> Option<Sample> {
        let low = r.saturating_sub(window); // exclusive
        if !self.started {
            self.started = true;
            self.next = self.seek(low.saturating_add(1));
        } else if self.next.is_some_and(|s| s.t <= low) {
            // Everything buffered is too old: jump instead of stepping.
            self.prev = None;
            self.next = self.seek(low.saturating_add(1));
        }
        while let Some(s) = self.next {
            if s.t > r {
                break;
            }
            self.prev = Some(s);
            self.next = self.read();
        }
        match self.prev {
            Some(s) if s.t > low && !is_stale_nan(s.v) => Some(s),
            _ => None,
        }
    }

    /// [`LookbackCursor::sample_at`] for a cursor asked only this once.
    fn only_sample_at(&mut self, r: i64, window: i64) -> Option<Sample> {
        let low = r.saturating_sub(window);
        self.started = true;
        let s = self.it.newest_in(low.saturating_add(1), r)?;
        (!is_stale_nan(s.v)).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Engine, EngineOptions, EvalError, Value};
    use crate::model::Sample;
    use crate::promql::parse_expr;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    #[test]
    fn lookback_is_left_open() {
        let st = stale_metric();
        assert_eq!(values(&instant(&st, "metric", 10)), [1.0]);
        assert_eq!(values(&instant(&st, "metric", 15)), [1.0]);
        assert_eq!(values(&instant(&st, "metric", 329)), [2.0]);
        // Exactly five minutes after the last sample it is gone.
        assert!(values(&instant(&st, "metric", 330)).is_empty());
        assert!(values(&instant(&st, "metric", -1)).is_empty());
        // The sample carries the evaluation time and the series its name.
        match instant(&st, "metric", 35) {
            Value::Vector(v) => {
                assert_eq!(v[0].1, Sample { t: 35_000, v: 2.0 });
                assert_eq!(v[0].0.metric_name(), Some("metric"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn staleness_marker_hides_the_series() {
        let st = stale_metric();
        assert!(values(&instant(&st, "metric", 20)).is_empty());
        assert!(values(&instant(&st, "metric", 29)).is_empty());
        assert_eq!(values(&instant(&st, "metric", 30)), [2.0]);
    }

    #[test]
    fn matrix_selector_takes_left_open_window_without_stale_markers() {
        let st = stale_metric();
        let count = |q: &str, t: i64| match instant(&st, q, t) {
            Value::Matrix(m) => m.iter().map(|(_, s)| s.len()).sum::<usize>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(count("metric[1m]", 30), 3);
        assert_eq!(count("metric[1s]", 10), 1);
        assert_eq!(count("metric[1s]", 20), 0);
        assert_eq!(count("metric[10s]", 20), 0);
        assert_eq!(count("metric[20s]", 20), 1);
        assert_eq!(count("metric[10]", 20), 0);
        match instant(&st, "metric[30s] offset 10s", 40) {
            Value::Matrix(m) => {
                assert_eq!(m.len(), 1);
                let ts: Vec<i64> = m[0].1.iter().map(|s| s.t).collect();
                assert_eq!(ts, [10_000, 30_000]);
            }
            other => panic!("{other:?}"),
        }
        // A window with no samples at all leaves the series out.
        assert_eq!(instant(&st, "metric[5s]", 1000), Value::Matrix(vec![]));
    }

    #[test]
    fn offset_and_at_move_the_evaluation_time() {
        let st = stale_metric();
        assert_eq!(values(&instant(&st, "metric offset 20s", 30)), [1.0]);
        assert!(values(&instant(&st, "metric offset 10s", 30)).is_empty());
        assert_eq!(values(&instant(&st, "metric offset -20s", 10)), [2.0]);
        assert_eq!(values(&instant(&st, "metric @ 10", 100_000)), [1.0]);
        assert_eq!(values(&instant(&st, "metric @ 40 offset 30s", 0)), [1.0]);
        // In an instant query start() and end() are the evaluation time.
        assert_eq!(values(&instant(&st, "metric @ end()", 10)), [1.0]);
        match instant(&st, "metric @ 40", 0) {
            Value::Vector(v) => assert_eq!(v[0].1.t, 0, "stamped with eval time"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn range_query_gives_a_point_per_step_with_a_value() {
        let st = stale_metric();
        let Value::Matrix(m) = range(&st, "metric", 0, 40, 5).unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 1);
        let got: Vec<(i64, f64)> = m[0].1.iter().map(|s| (s.t / 1000, s.v)).collect();
        assert_eq!(
            got,
            [
                (0, 0.0),
                (5, 0.0),
                (10, 1.0),
                (15, 1.0),
                (30, 2.0),
                (35, 2.0),
                (40, 2.0)
            ]
        );
        // Steps past the lookback leave the series out entirely.
        assert_eq!(
            range(&st, "metric", 1000, 2000, 100).unwrap(),
            Value::Matrix(vec![])
        );
    }

    #[test]
    fn range_query_with_at_start_and_end() {
        let st = stale_metric();
        let points = |q: &str| match range(&st, q, 10, 30, 10).unwrap() {
            Value::Matrix(m) => m[0].1.iter().map(|s| (s.t / 1000, s.v)).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            points("metric @ start()"),
            [(10, 1.0), (20, 1.0), (30, 1.0)]
        );
        assert_eq!(points("metric @ end()"), [(10, 2.0), (20, 2.0), (30, 2.0)]);
        assert_eq!(points("metric @ 0"), [(10, 0.0), (20, 0.0), (30, 0.0)]);
    }

    #[test]
    fn scalars_strings_and_unary() {
        let st = storage(&[]);
        assert_eq!(
            instant(&st, "-1.5", 7),
            Value::Scalar(Sample { t: 7000, v: -1.5 })
        );
        assert_eq!(
            instant(&st, "-(2)", 7),
            Value::Scalar(Sample { t: 7000, v: -2.0 })
        );
        assert_eq!(
            instant(&st, "+(5m)", 7),
            Value::Scalar(Sample { t: 7000, v: 300.0 })
        );
        assert_eq!(
            instant(&st, r#""Foo""#, 7),
            Value::String("Foo".into(), 7000)
        );
        let Value::Matrix(m) = range(&st, "(3)", 0, 20, 10).unwrap() else {
            panic!()
        };
        assert_eq!(m.len(), 1);
        assert!(m[0].0.is_empty());
        assert_eq!(
            m[0].1,
            [
                Sample { t: 0, v: 3.0 },
                Sample { t: 10_000, v: 3.0 },
                Sample { t: 20_000, v: 3.0 }
            ]
        );
    }

    #[test]
    fn unary_minus_drops_the_name_and_refuses_collisions() {
        let a: &[(&str, &str)] = &[("__name__", "a"), ("x", "1")];
        let b: &[(&str, &str)] = &[("__name__", "b"), ("x", "2")];
        let st = storage(&[(a, &[(0, 1.0)]), (b, &[(0, 2.0)])]);
        match instant(&st, r#"-{__name__=~"a|b"}"#, 0) {
            Value::Vector(v) => {
                assert_eq!(v[0], (labels(&[("x", "1")]), Sample { t: 0, v: -1.0 }));
                assert_eq!(v[1].0, labels(&[("x", "2")]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(values(&instant(&st, "+a", 0)), [1.0]);
        // Same labels after dropping the name, values at the same time: ambiguous.
        let c: &[(&str, &str)] = &[("__name__", "c"), ("x", "1")];
        let st = storage(&[(a, &[(0, 1.0)]), (c, &[(0, 3.0)])]);
        let e = parse_expr(r#"-{x="1"}"#).unwrap();
        let err = engine().instant(&st, &e, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "vector cannot contain metrics with the same labelset"
        );
    }

    /// operators.test: series that share labels once the name is gone merge when they
    /// never have a value at the same step.
    #[test]
    fn unary_minus_merges_series_that_do_not_overlap() {
        let req: &[(&str, &str)] = &[("__name__", "http_requests"), ("job", "api")];
        let err: &[(&str, &str)] = &[("__name__", "http_errors"), ("job", "api")];
        let st = storage(&[(req, &[(0, 2.0)]), (err, &[(1200, 4.0)])]);
        let Value::Matrix(m) = range(&st, r#"-{job="api"}"#, 0, 1200, 1200).unwrap() else {
            panic!()
        };
        assert_eq!(
            m,
            [(
                labels(&[("job", "api")]),
                vec![
                    Sample { t: 0, v: -2.0 },
                    Sample {
                        t: 1_200_000,
                        v: -4.0
                    }
                ]
            )]
        );
        assert_eq!(values(&instant(&st, r#"-{job="api"}"#, 1200)), [-4.0]);
    }

    #[test]
    fn results_are_sorted_by_labels() {
        let st = storage(&[
            (&[("__name__", "m"), ("i", "b")], &[(0, 2.0)]),
            (&[("__name__", "m"), ("i", "a")], &[(0, 1.0)]),
            (&[("__name__", "m"), ("i", "c"), ("j", "x")], &[(0, 3.0)]),
        ]);
        assert_eq!(values(&instant(&st, "m", 0)), [1.0, 2.0, 3.0]);
        assert_eq!(values(&instant(&st, r#"m{i!="b"}"#, 0)), [1.0, 3.0]);
    }

    #[test]
    fn range_query_reads_each_sample_once() {
        let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15, i as f64)).collect();
        let st = storage(&[(&[("__name__", "m")], &samples)]);
        let Value::Matrix(m) = range(&st, "m", 0, 14_985, 15).unwrap() else {
            panic!()
        };
        assert_eq!(m[0].1.len(), 1000);
        assert!(m[0].1.iter().all(|s| s.v == (s.t / 15_000) as f64));
        assert_eq!(st.selects.load(Ordering::Relaxed), 1);
        assert_eq!(st.reads.load(Ordering::Relaxed), 1000);
        // A sparse query seeks over the gaps instead of reading everything.
        st.reads.store(0, Ordering::Relaxed);
        let Value::Matrix(m) = range(&st, "m", 0, 15_000, 3000).unwrap() else {
            panic!()
        };
        assert_eq!(m[0].1.len(), 6);
        // Each step reads only its own five-minute window (20 samples).
        assert!(st.reads.load(Ordering::Relaxed) <= 6 * 21);
    }

    #[test]
    fn range_query_errors() {
        let st = stale_metric();
        let err = range(&st, "metric[5m]", 0, 10, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
        );
        let err = range(&st, "(\"x\")", 0, 10, 5).unwrap_err();
        assert!(matches!(err, EvalError::InvalidRangeQueryType("string")));
        assert!(matches!(
            range(&st, "metric", 0, 10, 0),
            Err(EvalError::BadStep)
        ));
        assert!(matches!(
            range(&st, "metric", 10, 0, 1),
            Err(EvalError::EndBeforeStart)
        ));
    }

    #[test]
    fn sample_limit_is_enforced() {
        let samples: Vec<(i64, f64)> = (0..100).map(|i| (i, 1.0)).collect();
        let st = storage(&[(&[("__name__", "m")], &samples)]);
        let e = parse_expr("m").unwrap();
        let small = Engine::new(EngineOptions {
            max_samples: 10,
            ..EngineOptions::default()
        });
        assert!(matches!(
            small.range(&st, &e, 0, 99_000, 1000),
            Err(EvalError::TooManySamples)
        ));
        assert!(small.instant(&st, &e, 50_000).is_ok());
        // A zero lookback means the default five minutes.
        let zero = Engine::new(EngineOptions {
            lookback_delta: Duration::ZERO,
            ..EngineOptions::default()
        });
        let v = zero.instant(&st, &e, 398_000).unwrap();
        assert_eq!((v.result_type(), values(&v)), ("vector", vec![1.0]));
        assert!(matches!(
            small.range(&st, &e, 0, i64::MAX, 1),
            Err(EvalError::TooManySamples)
        ));
    }

    /// Prometheus limits the samples held at once, not the sum over the query: three
    /// sums over ten series each hold at most one selector's samples plus two results.
    #[test]
    fn sample_limit_is_on_the_peak_not_the_sum() {
        const IDS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        let owned: Vec<[(&str, &str); 2]> =
            IDS.iter().map(|i| [("__name__", "m"), ("i", i)]).collect();
        let series: Vec<TestSeries<'_>> = owned.iter().map(|l| (&l[..], &[(0, 1.0)][..])).collect();
        let st = storage(&series);
        let e = parse_expr("sum(m) + sum(m) + sum(m)").unwrap();
        let limited = |max_samples| {
            Engine::new(EngineOptions {
                max_samples,
                ..EngineOptions::default()
            })
        };
        let r = limited(13).instant_query(&st, &e, 0).unwrap();
        assert_eq!(values(&r.value), [30.0]);
        // Held at the peak: two sums' results and the third selector's ten samples.
        assert_eq!(r.stats.peak_samples, 12);
        assert_eq!(r.stats.total_queryable_samples, 30);
        assert!(matches!(
            limited(11).instant_query(&st, &e, 0),
            Err(EvalError::TooManySamples)
        ));
        // One selector alone is over a limit of nine.
        assert!(matches!(
            limited(9).instant_query(&st, &parse_expr("sum(m)").unwrap(), 0),
            Err(EvalError::TooManySamples)
        ));
    }

    #[test]
    fn stats_count_queryable_samples_per_step() {
        let samples: Vec<(i64, f64)> = (0..10).map(|i| (i * 10, i as f64)).collect();
        let st = storage(&[(&[("__name__", "m")], &samples)]);
        let run = |q: &str, t: i64| {
            engine()
                .instant_query(&st, &parse_expr(q).unwrap(), t * 1000)
                .unwrap()
                .stats
        };
        // An instant selector reads one sample per step.
        let s = run("m", 95);
        assert_eq!((s.total_queryable_samples, s.peak_samples), (1, 1));
        // A range selector reads its window: (40, 90] holds 50..90.
        let s = run("m[50s]", 90);
        assert_eq!((s.total_queryable_samples, s.peak_samples), (5, 5));
        // A function over it holds the window and its one-sample result at once.
        let s = run("sum_over_time(m[50s])", 90);
        assert_eq!((s.total_queryable_samples, s.peak_samples), (5, 6));
        // A range query counts every step: ten steps of one sample each ...
        let e = parse_expr("m").unwrap();
        let r = engine().range_query(&st, &e, 0, 90_000, 10_000).unwrap();
        assert_eq!(r.stats.total_queryable_samples, 10);
        assert_eq!(r.stats.peak_samples, 10);
        // ... and overlapping windows count a sample once per window it is in: windows
        // (t-20, t] at t = 20, 40, 60, 80 each hold two samples.
        let e = parse_expr("count_over_time(m[20s])").unwrap();
        let r = engine()
            .range_query(&st, &e, 20_000, 80_000, 20_000)
            .unwrap();
        assert_eq!(r.stats.total_queryable_samples, 8);
        let t = &r.stats.timings;
        assert!(t.eval_total >= t.inner_eval + t.result_sort);
    }

    #[test]
    fn delayed_name_removal_keeps_the_name_until_the_result() {
        let a: &[(&str, &str)] = &[("__name__", "a_total"), ("env", "1")];
        let b: &[(&str, &str)] = &[("__name__", "b_total"), ("env", "1")];
        let st = storage(&[(a, &[(0, 0.0), (60, 60.0)]), (b, &[(0, 0.0), (60, 120.0)])]);
        let delayed = Engine::new(EngineOptions {
            delayed_name_removal: true,
            ..EngineOptions::default()
        });
        let run = |eng: &Engine, q: &str| eng.instant(&st, &parse_expr(q).unwrap(), 60_000);
        // Dropped at once, the two names collide; delayed, they stay apart to the end.
        let q = r#"rate({env="1"}[2m])"#;
        assert!(matches!(
            run(&engine(), q),
            Err(EvalError::DuplicateLabelset)
        ));
        assert!(matches!(
            run(&delayed, q),
            Err(EvalError::DuplicateLabelset)
        ));
        let q = r#"sum by (env) (rate({env="1"}[2m]))"#;
        assert_eq!(vector(&run(&delayed, q).unwrap()).len(), 1);
        // An outer label function still reads the name, and writing it keeps it.
        let q = r#"label_replace(rate({env="1"}[2m]), "n", "$1", "__name__", "(.+)")"#;
        let got = vector(&run(&delayed, q).unwrap());
        let names: Vec<_> = got.iter().map(|(l, _)| l.get("n").unwrap_or("")).collect();
        assert_eq!(names, ["a_total", "b_total"]);
        assert!(got.iter().all(|(l, _)| l.len() == 2));
        let q = r#"label_replace(-{env="1"}, "__name__", "x_$1", "__name__", "(.+)")"#;
        let got = vector(&run(&delayed, q).unwrap());
        assert_eq!(got[0].0.metric_name(), Some("x_a_total"));
        // A group by name is dropped at the end if any member was to lose it.
        let q = r#"sum by (__name__) (a_total or -b_total)"#;
        assert_eq!(
            vector(&run(&delayed, q).unwrap())[0].0.metric_name(),
            Some("a_total")
        );
        let q = r#"sum by (__name__) (-a_total or b_total)"#;
        assert_eq!(vector(&run(&delayed, q).unwrap())[0].0.len(), 0);
        // Series that end up alike merge when they never share a step.
        let e = parse_expr("-a_total offset 1m or -b_total").unwrap();
        let r = delayed.range(&st, &e, 60_000, 120_000, 60_000).unwrap();
        let env = labels(&[("env", "1")]);
        assert_eq!(points(&r), [(env, vec![(60, -0.0), (120, -60.0)])]);
    }
}
