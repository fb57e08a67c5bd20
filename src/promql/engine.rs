//! Evaluates a parsed expression against a [`Storage`] with Prometheus 3.x semantics, as an
//! instant query (one time) or a range query (every step from start to end). Today it
//! evaluates literals, parentheses, unary signs and selectors:
//!
//! - an instant vector selector at `t` takes each series' newest sample in
//!   `(t - lookback, t]` (left-open since Prometheus 3.0), none if that sample is a
//!   staleness marker;
//! - a range vector selector at `t` takes the samples in `(t - range, t]`, staleness
//!   markers dropped;
//! - `offset` shifts the time back, `@` pins it (`start()`/`end()` are the query's);
//! - each series' iterator is walked once per query, seeking forward only, however many
//!   steps a range query has.
//!
//! Other nodes (binary operators, functions, aggregations, subqueries, duration
//! expressions) answer [`EvalError::Unsupported`]. Results are sorted by labels.

use std::time::Duration;

use super::ast::{AtModifier, DurationValue, Expr, UnaryOp, ValueType, VectorSelector};
use crate::model::{Labels, METRIC_NAME, Sample, is_stale_nan};
use crate::storage::{SampleIterator, Storage, StorageError};

/// A query's result, as the HTTP API returns it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Sample),
    /// The string and the evaluation time (ms).
    String(String, i64),
    /// One sample per series, stamped with the evaluation time.
    Vector(Vec<(Labels, Sample)>),
    /// Raw samples of a range selector (instant query) or one point per step (range query).
    Matrix(Vec<(Labels, Vec<Sample>)>),
}

impl Value {
    /// The API's `resultType` for this value.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`);
    /// zero means the default five minutes, as in Prometheus.
    pub lookback_delta: Duration,
    /// The most samples one query may hold (`--query.max-samples`).
    pub max_samples: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Worded as Prometheus words it; the API returns it as `bad_data`.
    #[error("invalid expression type \"{0}\" for range query, must be Scalar or instant Vector")]
    InvalidRangeQueryType(&'static str),
    #[error(
        "zero or negative query resolution step widths are not accepted. Try a positive integer"
    )]
    BadStep,
    #[error("end timestamp must not be before start time")]
    EndBeforeStart,
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// A node the engine cannot evaluate yet (the parser does not build these today).
    #[error("{0} are not supported by the query engine yet")]
    Unsupported(&'static str),
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// The query engine. Holds only options; cheap to share.
#[derive(Clone, Debug)]
pub struct Engine {
    opts: EngineOptions,
}

/// An evaluation result for every step of the query.
enum Eval {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// Series with points at step times (steps without a value left out).
    Vector(Vec<(Labels, Vec<Sample>)>),
    /// Raw samples; only from an instant query's range selector.
    Matrix(Vec<(Labels, Vec<Sample>)>),
}

/// The time grid of one query and the sample budget it draws on.
struct Query<'s> {
    storage: &'s dyn Storage,
    start: i64,
    end: i64,
    step: i64,
    steps: usize,
    lookback: i64,
    samples: usize,
    max_samples: usize,
}

impl Query<'_> {
    fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, step) = (self.start, self.step);
        (0..self.steps as i64).map(move |i| start + i * step)
    }

    fn charge(&mut self, n: usize) -> Result<(), EvalError> {
        self.samples = self.samples.saturating_add(n);
        if self.samples > self.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }

    /// Where a selector reads at step time `t`: pinned by `@`, then shifted by `offset`.
    fn ref_time(&self, t: i64, at: Option<AtModifier>, offset: i64) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Timestamp(ts)) => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
        };
        base.saturating_sub(offset)
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `expr` at `t_ms`.
    pub fn instant(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<Value, EvalError> {
        let mut q = self.query(storage, t_ms, t_ms, 1)?;
        Ok(match eval(&mut q, expr)? {
            Eval::Scalar(v) => Value::Scalar(Sample {
                t: t_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            }),
            Eval::String(s) => Value::String(s, t_ms),
            Eval::Vector(series) => Value::Vector(
                series
                    .into_iter()
                    .filter_map(|(l, points)| points.first().map(|s| (l, *s)))
                    .collect(),
            ),
            Eval::Matrix(m) => Value::Matrix(m),
        })
    }

    /// Evaluates `expr` at every `step_ms` from `start_ms` to `end_ms` inclusive. The
    /// expression must be a scalar or an instant vector, as in Prometheus.
    pub fn range(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, EvalError> {
        if let Some(t @ (ValueType::Matrix | ValueType::String)) = expr.value_type() {
            return Err(EvalError::InvalidRangeQueryType(t.documented()));
        }
        let mut q = self.query(storage, start_ms, end_ms, step_ms)?;
        Ok(match eval(&mut q, expr)? {
            Eval::Scalar(values) => {
                let points = q
                    .times()
                    .zip(values)
                    .map(|(t, v)| Sample { t, v })
                    .collect();
                Value::Matrix(vec![(Labels::empty(), points)])
            }
            Eval::Vector(series) => Value::Matrix(series),
            Eval::String(_) => return Err(EvalError::InvalidRangeQueryType("string")),
            Eval::Matrix(_) => return Err(EvalError::InvalidRangeQueryType("range vector")),
        })
    }

    fn query<'s>(
        &self,
        storage: &'s dyn Storage,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Query<'s>, EvalError> {
        if step <= 0 {
            return Err(EvalError::BadStep);
        }
        if end < start {
            return Err(EvalError::EndBeforeStart);
        }
        let steps = ((end as i128 - start as i128) / step as i128 + 1) as u128;
        if steps > self.opts.max_samples as u128 {
            return Err(EvalError::TooManySamples);
        }
        Ok(Query {
            storage,
            start,
            end,
            step,
            steps: steps as usize,
            lookback: match self.opts.lookback_delta.as_millis() {
                0 => 300_000,
                ms => i64::try_from(ms).unwrap_or(i64::MAX),
            },
            samples: 0,
            max_samples: self.opts.max_samples,
        })
    }
}

fn eval(q: &mut Query<'_>, expr: &Expr) -> Result<Eval, EvalError> {
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
                Eval::Vector(series) => negate_vector(series),
                Eval::String(_) | Eval::Matrix(_) => Err(EvalError::Unsupported(
                    "unary operators on strings and range vectors",
                )),
            }
        }
        Expr::VectorSelector(vs) => eval_vector_selector(q, vs),
        Expr::MatrixSelector(m) => {
            if q.steps != 1 {
                return Err(EvalError::InvalidRangeQueryType("range vector"));
            }
            let range = literal_millis(Some(&m.range))?;
            eval_matrix_selector(q, &m.selector, range)
        }
        Expr::Subquery(_) => Err(EvalError::Unsupported("subqueries")),
        Expr::Binary(_) => Err(EvalError::Unsupported("binary expressions")),
        Expr::Aggregate(_) => Err(EvalError::Unsupported("aggregations")),
        Expr::Call(_) => Err(EvalError::Unsupported("function calls")),
        Expr::Duration(_) => Err(EvalError::Unsupported("duration expressions")),
    }
}

fn literal_millis(d: Option<&DurationValue>) -> Result<i64, EvalError> {
    match d {
        None => Ok(0),
        Some(DurationValue::Millis(ms)) => Ok(*ms),
        Some(DurationValue::Expr(_)) => Err(EvalError::Unsupported("duration expressions")),
    }
}

fn check_extended(vs: &VectorSelector) -> Result<(), EvalError> {
    if vs.anchored || vs.smoothed {
        return Err(EvalError::Unsupported("anchored and smoothed selectors"));
    }
    Ok(())
}

/// Unary minus on a vector: values negated, metric name dropped, as Prometheus does.
/// Series that end up with the same labels are merged; if two of them have a value at
/// the same step the result is ambiguous and the query fails, as in Prometheus.
fn negate_vector(series: Vec<(Labels, Vec<Sample>)>) -> Result<Eval, EvalError> {
    let mut negated: Vec<(Labels, Vec<Sample>)> = series
        .into_iter()
        .map(|(labels, mut points)| {
            points.iter_mut().for_each(|s| s.v = -s.v);
            let mut b = labels.builder();
            b.del(METRIC_NAME);
            (b.into_labels(), points)
        })
        .collect();
    negated.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(negated.len());
    for (labels, points) in negated {
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
    Ok(Eval::Vector(out))
}

fn eval_vector_selector(q: &mut Query<'_>, vs: &VectorSelector) -> Result<Eval, EvalError> {
    check_extended(vs)?;
    let offset = literal_millis(vs.offset.as_ref())?;
    let first = q.ref_time(q.start, vs.at, offset);
    let last = q.ref_time(q.end, vs.at, offset);
    let querier = q
        .storage
        .querier(first.saturating_sub(q.lookback).saturating_add(1), last)?;
    let mut out = Vec::new();
    for series in querier.select(&vs.matchers)? {
        let mut cursor = LookbackCursor::new(series.samples);
        let mut points = Vec::new();
        for t in q.times() {
            let r = q.ref_time(t, vs.at, offset);
            if let Some(v) = cursor.value_at(r, q.lookback) {
                points.push(Sample { t, v });
            }
        }
        if !points.is_empty() {
            q.charge(points.len())?;
            out.push((series.labels, points));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Eval::Vector(out))
}

fn eval_matrix_selector(
    q: &mut Query<'_>,
    vs: &VectorSelector,
    range: i64,
) -> Result<Eval, EvalError> {
    check_extended(vs)?;
    let offset = literal_millis(vs.offset.as_ref())?;
    let r = q.ref_time(q.start, vs.at, offset);
    let mint = r.saturating_sub(range).saturating_add(1);
    let querier = q.storage.querier(mint, r)?;
    let mut out = Vec::new();
    for mut series in querier.select(&vs.matchers)? {
        let mut points = Vec::new();
        let mut s = series.samples.seek(mint);
        while let Some(sample) = s {
            if sample.t > r {
                break;
            }
            if sample.t >= mint && !is_stale_nan(sample.v) {
                points.push(sample);
            }
            s = series.samples.next();
        }
        if !points.is_empty() {
            q.charge(points.len())?;
            out.push((series.labels, points));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Eval::Matrix(out))
}

/// Answers "the newest sample in `(r - window, r]`" for non-decreasing `r`, reading one
/// series' samples once, forward only. Long gaps are skipped with `seek`, so a sparse
/// range query over a long series does not decode what it does not need.
struct LookbackCursor {
    it: Box<dyn SampleIterator>,
    started: bool,
    /// Newest sample at or before the last `r`.
    prev: Option<Sample>,
    /// First sample after the last `r`; `None` with `started` means the series ended.
    next: Option<Sample>,
}

impl LookbackCursor {
    fn new(it: Box<dyn SampleIterator>) -> Self {
        LookbackCursor {
            it,
            started: false,
            prev: None,
            next: None,
        }
    }

    fn value_at(&mut self, r: i64, window: i64) -> Option<f64> {
        let low = r.saturating_sub(window); // exclusive
        if !self.started {
            self.started = true;
            self.next = self.it.seek(low.saturating_add(1));
        } else if self.next.is_some_and(|s| s.t <= low) {
            // Everything buffered is too old: jump instead of stepping.
            self.prev = None;
            self.next = self.it.seek(low.saturating_add(1));
        }
        while let Some(s) = self.next {
            if s.t > r {
                break;
            }
            self.prev = Some(s);
            self.next = self.it.next();
        }
        match self.prev {
            Some(s) if s.t > low && !is_stale_nan(s.v) => Some(s.v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Matcher, stale_nan};
    use crate::promql::parse_expr;
    use crate::storage::{
        AppendError, Appender, Querier, SeriesRef, StorageError, VecSampleIterator,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Read-only storage over literal series. Counts selects and iterator calls so tests
    /// can check that a range query reads each series once.
    struct MemStorage {
        series: Vec<(Labels, Vec<Sample>)>,
        selects: Arc<AtomicUsize>,
        reads: Arc<AtomicUsize>,
    }

    struct MemQuerier {
        series: Vec<(Labels, Vec<Sample>)>,
        selects: Arc<AtomicUsize>,
        reads: Arc<AtomicUsize>,
    }

    /// Counts every sample handed out, so a test can prove samples are read once.
    struct CountingIterator {
        inner: VecSampleIterator,
        reads: Arc<AtomicUsize>,
    }

    impl SampleIterator for CountingIterator {
        fn next(&mut self) -> Option<Sample> {
            let s = self.inner.next();
            self.reads
                .fetch_add(s.is_some() as usize, Ordering::Relaxed);
            s
        }
        fn seek(&mut self, t: i64) -> Option<Sample> {
            let s = self.inner.seek(t);
            self.reads
                .fetch_add(s.is_some() as usize, Ordering::Relaxed);
            s
        }
    }

    struct NoAppender;

    impl Appender for NoAppender {
        fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<SeriesRef, AppendError> {
            Err(AppendError::OutOfBounds)
        }
        fn append_ref(&mut self, _: SeriesRef, _: i64, _: f64) -> Result<(), AppendError> {
            Err(AppendError::OutOfBounds)
        }
        fn commit(&mut self) -> Result<(), StorageError> {
            Ok(())
        }
        fn rollback(&mut self) {}
    }

    impl Storage for MemStorage {
        fn appender(&self) -> Box<dyn Appender> {
            Box::new(NoAppender)
        }
        fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
            let series = self
                .series
                .iter()
                .map(|(l, s)| {
                    let s = s.iter().filter(|x| x.t >= mint && x.t <= maxt).copied();
                    (l.clone(), s.collect())
                })
                .collect();
            Ok(Box::new(MemQuerier {
                series,
                selects: self.selects.clone(),
                reads: self.reads.clone(),
            }))
        }
    }

    impl Querier for MemQuerier {
        fn select(
            &self,
            matchers: &[Matcher],
        ) -> Result<Vec<crate::storage::Series>, StorageError> {
            self.selects.fetch_add(1, Ordering::Relaxed);
            let mut out: Vec<_> = self
                .series
                .iter()
                .filter(|(l, _)| {
                    matchers
                        .iter()
                        .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
                })
                .map(|(l, s)| crate::storage::Series {
                    labels: l.clone(),
                    samples: Box::new(CountingIterator {
                        inner: VecSampleIterator::new(s.clone()),
                        reads: self.reads.clone(),
                    }),
                })
                .collect();
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
            Ok(out)
        }
        fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(Vec::new())
        }
        fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(Vec::new())
        }
    }

    fn labels(s: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(s.iter().copied())
    }

    /// `(labels, [(seconds, value)])`, like a promqltest `load` block.
    /// A series as a test writes it: labels and `(seconds, value)` samples.
    type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

    fn storage(data: &[TestSeries<'_>]) -> MemStorage {
        MemStorage {
            series: data
                .iter()
                .map(|(l, s)| {
                    let samples = s.iter().map(|&(t, v)| Sample { t: t * 1000, v }).collect();
                    (labels(l), samples)
                })
                .collect(),
            selects: Arc::new(AtomicUsize::new(0)),
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn engine() -> Engine {
        Engine::new(EngineOptions::default())
    }

    fn instant(st: &MemStorage, q: &str, t_secs: i64) -> Value {
        let e = parse_expr(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        engine()
            .instant(st, &e, t_secs * 1000)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn range(
        st: &MemStorage,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, EvalError> {
        let e = parse_expr(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        engine().range(st, &e, start * 1000, end * 1000, step * 1000)
    }

    /// The values of an instant vector, in result order.
    fn values(v: &Value) -> Vec<f64> {
        match v {
            Value::Vector(s) => s.iter().map(|(_, s)| s.v).collect(),
            other => panic!("not a vector: {other:?}"),
        }
    }

    /// The staleness.test data: `metric 0 1 stale 2` loaded every 10s.
    fn stale_metric() -> MemStorage {
        let m: &[(&str, &str)] = &[("__name__", "metric")];
        storage(&[(m, &[(0, 0.0), (10, 1.0), (20, stale_nan()), (30, 2.0)])])
    }

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

    #[test]
    fn unsupported_nodes_are_errors_not_panics() {
        use crate::promql::ast::{Call, PosRange};
        let call = Expr::Call(Call {
            func: "time".into(),
            args: vec![],
            pos: PosRange::default(),
        });
        let err = engine().instant(&storage(&[]), &call, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "function calls are not supported by the query engine yet"
        );
    }
}
