//! Test support for the engine's unit tests: a read-only in-memory [`Storage`] that
//! counts selects and sample reads, and small builders for syntax trees the parser does
//! not build yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Engine, EngineOptions, EvalError, Value};
use crate::model::{Labels, Matcher, Sample, stale_nan};
use crate::promql::ast::*;
use crate::promql::parse_expr;
use crate::storage::{
    AppendError, Appender, Querier, SampleIterator, SeriesRef, Storage, StorageError,
    VecSampleIterator,
};

/// Read-only storage over literal series. Counts selects and iterator calls so tests
/// can check that a range query reads each series once.
pub(crate) struct MemStorage {
    pub series: Vec<(Labels, Vec<Sample>)>,
    pub selects: Arc<AtomicUsize>,
    pub reads: Arc<AtomicUsize>,
}

pub(crate) struct MemQuerier {
    pub series: Vec<(Labels, Vec<Sample>)>,
    pub selects: Arc<AtomicUsize>,
    pub reads: Arc<AtomicUsize>,
}

/// Counts every sample handed out, so a test can prove samples are read once.
pub(crate) struct CountingIterator {
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

pub(crate) struct NoAppender;

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
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<crate::storage::Series>, StorageError> {
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

pub(crate) fn labels(s: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(s.iter().copied())
}

/// `(labels, [(seconds, value)])`, like a promqltest `load` block.
/// A series as a test writes it: labels and `(seconds, value)` samples.
pub(crate) type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

pub(crate) fn storage(data: &[TestSeries<'_>]) -> MemStorage {
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

pub(crate) fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

pub(crate) fn instant(st: &MemStorage, q: &str, t_secs: i64) -> Value {
    let e = parse_expr(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    engine()
        .instant(st, &e, t_secs * 1000)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

pub(crate) fn range(
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
pub(crate) fn values(v: &Value) -> Vec<f64> {
    match v {
        Value::Vector(s) => s.iter().map(|(_, s)| s.v).collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

/// The staleness.test data: `metric 0 1 stale 2` loaded every 10s.
pub(crate) fn stale_metric() -> MemStorage {
    let m: &[(&str, &str)] = &[("__name__", "metric")];
    storage(&[(m, &[(0, 0.0), (10, 1.0), (20, stale_nan()), (30, 2.0)])])
}

pub(crate) fn num(v: f64) -> Expr {
    Expr::Number(NumberLiteral {
        value: v,
        duration: false,
        pos: PosRange::default(),
    })
}

pub(crate) fn string(s: &str) -> Expr {
    Expr::String(StringLiteral {
        value: s.into(),
        pos: PosRange::default(),
    })
}

/// Parses what the parser already builds (selectors, literals).
pub(crate) fn p(s: &str) -> Expr {
    parse_expr(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(crate) fn bin(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching: None,
    })
}

/// A binary expression with a matching clause.
pub(crate) fn bin_m(
    op: BinaryOp,
    lhs: Expr,
    rhs: Expr,
    card: Cardinality,
    on: bool,
    labels: &[&str],
    include: &[&str],
) -> Expr {
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching: Some(VectorMatching {
            card,
            on,
            matching_labels: labels.iter().map(|s| s.to_string()).collect(),
            include: include.iter().map(|s| s.to_string()).collect(),
            fill: FillValues::default(),
        }),
    })
}

pub(crate) fn with_bool(mut e: Expr) -> Expr {
    if let Expr::Binary(b) = &mut e {
        b.return_bool = true;
    }
    e
}

pub(crate) fn agg(op: AggregateOp, param: Option<Expr>, expr: Expr, by: &[&str]) -> Expr {
    Expr::Aggregate(AggregateExpr {
        op,
        expr: Box::new(expr),
        param: param.map(Box::new),
        grouping: by.iter().map(|s| s.to_string()).collect(),
        without: false,
        pos: PosRange::default(),
    })
}

pub(crate) fn without(mut e: Expr) -> Expr {
    if let Expr::Aggregate(a) = &mut e {
        a.without = true;
    }
    e
}

pub(crate) fn call(func: &str, args: Vec<Expr>) -> Expr {
    Expr::Call(Call {
        func: func.into(),
        args,
        pos: PosRange::default(),
    })
}

pub(crate) fn subquery(expr: Expr, range_ms: i64, step_ms: Option<i64>) -> Expr {
    Expr::Subquery(SubqueryExpr {
        expr: Box::new(expr),
        range: DurationValue::Millis(range_ms),
        step: step_ms.map(DurationValue::Millis),
        offset: None,
        at: None,
        end: 0,
    })
}

pub(crate) fn eval_instant(st: &MemStorage, e: &Expr, t_secs: i64) -> Result<Value, EvalError> {
    engine().instant(st, e, t_secs * 1000)
}

/// `(labels, value)` pairs of an instant vector, in result order.
pub(crate) fn vector(v: &Value) -> Vec<(Labels, f64)> {
    match v {
        Value::Vector(s) => s.iter().map(|(l, s)| (l.clone(), s.v)).collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

/// A range query's points per series: `(labels, [(seconds, value)])`.
pub(crate) fn points(v: &Value) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match v {
        Value::Matrix(m) => m
            .iter()
            .map(|(l, s)| (l.clone(), s.iter().map(|s| (s.t / 1000, s.v)).collect()))
            .collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}
