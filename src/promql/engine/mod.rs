//! The PromQL engine: evaluates a parsed expression against a [`Storage`] with
//! Prometheus 3.x semantics, as an instant query (one time) or a range query (every step
//! from start to end). This file owns the public face (options, errors, results and the
//! two entry points); evaluation lives in the files beside it, one job each:
//!
//! - `eval.rs`: the query's time grid, the node dispatch, selectors, lookback and
//!   staleness;
//! - `window.rs`: range vectors (matrix selectors and subqueries) cut into per-step
//!   windows;
//! - `binary.rs`: arithmetic, comparison and set operators with vector matching;
//! - `aggregate.rs`: `sum`, `avg`, `topk`, `quantile` and the other aggregations;
//! - `grouping.rs`: series grouped by a subset of their labels;
//! - `parallel.rs`: large selections read and evaluated on several threads;
//! - `functions/`: every function, by the shape of its arguments.
//!
//! Intermediate results are series-major: each series carries its points at step times,
//! so a range query walks each stored series once, and labels are computed once per
//! series, not once per step.

mod aggregate;
mod binary;
pub mod downsample;
mod eval;
mod functions;
mod grouping;
mod parallel;
mod window;

#[cfg(test)]
mod testutil;

use std::time::{Duration, Instant};

use super::ast::{Expr, ValueType};
use crate::model::{Labels, Sample};
use crate::storage::{Storage, StorageError};

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

/// A value with the annotations Prometheus attaches to it: warnings (the result may be
/// wrong or incomplete) and infos (the query may not do what its author meant). Each is
/// worded as Prometheus words it, `PromQL warning: ...` / `PromQL info: ...`, without
/// duplicates, in the order first raised.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    pub stats: QueryStats,
    /// The data resolution that answered, in ms: 0 for raw samples, else the window of
    /// the downsampled data preferred (see [`downsample`]).
    pub resolution: i64,
}

/// What a query cost, with the meaning of Prometheus's `util/stats` (`stats=all`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryStats {
    /// Samples read from storage, summed over steps: an instant selector counts one per
    /// step that found a sample, a range selector every sample of every step's window
    /// (so overlapping windows count a sample more than once).
    pub total_queryable_samples: u64,
    /// The most samples the evaluation held at once; what `max_samples` limits.
    pub peak_samples: usize,
    pub timings: QueryTimings,
}

/// Where an engine query's time went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryTimings {
    /// The whole engine call: preparation, evaluation and sorting.
    pub eval_total: Duration,
    /// Evaluating the expression tree.
    pub inner_eval: Duration,
    /// Assembling and sorting the result.
    pub result_sort: Duration,
    /// Setting the query up before evaluation. cairn selects series lazily inside the
    /// evaluation (as Prometheus 3 does), so this is small.
    pub query_preparation: Duration,
}

/// The timings of a query that began, was prepared and was evaluated at these instants
/// and is sorted now.
fn timings(began: Instant, prepared: Instant, evaluated: Instant) -> QueryTimings {
    let done = Instant::now();
    QueryTimings {
        eval_total: done - began,
        inner_eval: evaluated - prepared,
        result_sort: done - evaluated,
        query_preparation: prepared - began,
    }
}

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`);
    /// zero means the default five minutes, as in Prometheus.
    pub lookback_delta: Duration,
    /// The most samples one query may hold in memory at once (`--query.max-samples`),
    /// as in Prometheus: the peak, not the sum over the query.
    pub max_samples: usize,
    /// How long one query may run (`--query.timeout`); zero means no limit.
    pub timeout: Duration,
    /// The step of a subquery written without one (`x[5m:]`): Prometheus uses the global
    /// evaluation interval, one minute by default.
    pub default_subquery_step: Duration,
    /// Prometheus's `EnableDelayedNameRemoval`: functions and operators that drop the
    /// metric name keep it until the query's result is assembled, so an outer
    /// `label_replace`/`label_join` can still read it, `by (__name__)` can group on it,
    /// and series that differ only by name do not collide midway. Off by default, as in
    /// Prometheus's server; its test suite runs with it on.
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: false,
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
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// A node or function the engine cannot evaluate yet.
    #[error("{0} are not supported by the query engine yet")]
    Unsupported(&'static str),
    /// A query that fails while it runs (bad matching, bad arguments), worded as
    /// Prometheus words it.
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// The query engine. Holds only options; cheap to share.
#[derive(Clone, Debug)]
pub struct Engine {
    opts: EngineOptions,
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
        self.instant_query(storage, expr, t_ms).map(|r| r.value)
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
        self.range_query(storage, expr, start_ms, end_ms, step_ms)
            .map(|r| r.value)
    }

    /// [`Engine::instant`] with the query's warnings and infos.
    pub fn instant_query(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        t_ms: i64,
    ) -> Result<QueryResult, EvalError> {
        let began = Instant::now();
        let mut q = self.query(storage, t_ms, t_ms, 1)?;
        q.instant = true;
        let prepared = Instant::now();
        let result = eval::eval(&mut q, expr)?;
        let evaluated = Instant::now();
        let keep_order = eval::keeps_order(expr);
        let value = match result {
            eval::Eval::Scalar(v) => Value::Scalar(Sample {
                t: t_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            }),
            eval::Eval::String(s) => Value::String(s, t_ms),
            eval::Eval::Vector(series) => {
                let mut v: Vec<(Labels, Sample)> = eval::cleanup_names(series)?
                    .into_iter()
                    .filter_map(|(l, points)| points.first().map(|s| (l, *s)))
                    .collect();
                if !keep_order {
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                }
                Value::Vector(v)
            }
            eval::Eval::Matrix(m) => {
                let mut m = eval::cleanup_names(m)?;
                m.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Matrix(m)
            }
        };
        Ok(q.finish(value, timings(began, prepared, evaluated)))
    }

    /// [`Engine::range`] with the query's warnings and infos; reads downsampled data
    /// where the step allows ([`downsample::choose`]).
    pub fn range_query(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, EvalError> {
        self.range_query_at(storage, expr, start_ms, end_ms, step_ms, None)
    }

    /// [`Engine::range_query`] with the resolution capped at `max_source_resolution`
    /// (ms; `Some(0)` reads raw data only, `None` picks automatically).
    pub fn range_query_at(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        max_source_resolution: Option<i64>,
    ) -> Result<QueryResult, EvalError> {
        if let Some(t @ (ValueType::Matrix | ValueType::String)) = expr.value_type() {
            return Err(EvalError::InvalidRangeQueryType(t.documented()));
        }
        let began = Instant::now();
        let mut q = self.query(storage, start_ms, end_ms, step_ms)?;
        let wanted = downsample::choose(expr, step_ms, max_source_resolution);
        if wanted > 0 {
            // Report (and read at) the coarsest resolution present up to the one wanted;
            // none present: raw, as if none had been wanted.
            let reach = downsample::max_window(expr).saturating_add(q.lookback);
            let have = storage
                .downsampled_resolutions(start_ms.saturating_sub(reach), end_ms)
                .into_iter()
                .filter(|&r| r > 0 && r <= wanted)
                .max()
                .unwrap_or(0);
            q.set_resolution(have);
        }
        let prepared = Instant::now();
        let result = eval::eval(&mut q, expr)?;
        let evaluated = Instant::now();
        let value = match result {
            eval::Eval::Scalar(values) => {
                let points = q
                    .times()
                    .zip(values)
                    .map(|(t, v)| Sample { t, v })
                    .collect();
                Value::Matrix(vec![(Labels::empty(), points)])
            }
            eval::Eval::Vector(series) => {
                let mut series = eval::cleanup_names(series)?;
                series.retain(|(_, p)| !p.is_empty());
                series.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Matrix(series)
            }
            eval::Eval::String(_) => return Err(EvalError::InvalidRangeQueryType("string")),
            eval::Eval::Matrix(_) => {
                return Err(EvalError::InvalidRangeQueryType("range vector"));
            }
        };
        Ok(q.finish(value, timings(began, prepared, evaluated)))
    }

    fn query<'s>(
        &self,
        storage: &'s dyn Storage,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<eval::Query<'s>, EvalError> {
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
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(eval::Query {
            storage,
            start,
            end,
            step,
            steps: steps as usize,
            instant: false,
            delayed_name_removal: self.opts.delayed_name_removal,
            query_start: start,
            query_end: end,
            lookback: match millis(self.opts.lookback_delta) {
                0 => 300_000,
                ms => ms,
            },
            samples: 0,
            peak: 0,
            total_queryable: 0,
            max_samples: self.opts.max_samples,
            deadline: (!self.opts.timeout.is_zero())
                .then(|| Instant::now().checked_add(self.opts.timeout))
                .flatten(),
            default_subquery_step: millis(self.opts.default_subquery_step).max(1),
            warnings: Vec::new(),
            infos: Vec::new(),
            resolution: 0,
            aggregate: crate::storage::Aggregate::Counter,
        })
    }
}
