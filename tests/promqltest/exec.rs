//! Runs a parsed script against real cairn storage: a `tsdb::Db` in a temporary directory
//! (a fresh one on every `clear`), loaded through its `Appender`, queried with
//! `promql::{parse_expr, Engine}`. Each `eval` yields a [`Verdict`]; a panic in the parser
//! or the engine is caught and fails that case alone.
//!
//! Native histogram points cannot be stored yet: they are skipped at load, and a case
//! whose selectors match a series that had some (seen through a storage wrapper that
//! watches every `select`) is unsupported, whatever its result. So is a failing case
//! that names such a series' metric: it may have failed before selecting anything (a
//! function the parser does not know, such as `histogram_count`).
//!
//! Like Prometheus's runner, an instant case is also run as a range query from one minute
//! before to one minute after its time, and the middle step must give the same answer
//! (except for ordered cases, cases expecting a string or a range vector, and queries
//! using `start()`, `end()`, `range()` or `step()`). As in it, a passing instant case is
//! run again with `@` pinned to its time on every selector, at five other times (three
//! for time 0), unless it calls a function whose answer depends on the evaluation time.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn::model::{Labels, Matcher, Sample};
use cairn::promql::ast::AtModifier;
use cairn::promql::engine::QueryResult;
use cairn::promql::{Engine, EngineOptions, EvalError, Expr, ParseErrorKind, Value, parse_expr};
use cairn::storage::{Appender, Querier, Series, Storage, StorageError};
use cairn::tsdb::{Db, DbOptions};
use tempfile::TempDir;

use super::compare::{assert_sorted, compare};
use super::script::{Eval, EvalKind, Load, Point};

/// Why a case cannot be judged yet. Each is reported with the case's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gap {
    /// The case selects series with native histogram samples, or expects some.
    NativeHistograms,
    /// The parser answered `ParseErrorKind::Unsupported`.
    Parser,
    /// The engine answered `EvalError::Unsupported`.
    Engine,
}

impl Gap {
    pub fn describe(self) -> &'static str {
        match self {
            Gap::NativeHistograms => "native histograms",
            Gap::Parser => "parser: not supported yet",
            Gap::Engine => "engine: not supported yet",
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Unsupported(Gap, String),
}

struct Outcome {
    value: Value,
    warnings: Vec<String>,
    infos: Vec<String>,
}

enum QueryError {
    Unsupported(String),
    Failed(String),
}

/// The storage of one script between two `clear`s.
pub struct Env {
    db: Db,
    _dir: TempDir,
    /// Series with native histogram samples that could not be loaded.
    histogram_series: Vec<Labels>,
    /// The first load that failed since the last clear: every later case fails with it.
    load_error: Option<String>,
    engine: Engine,
}

impl Env {
    pub fn new() -> Result<Env, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let opts = DbOptions {
            // The suite needs no durability; an hour keeps the fsync thread idle.
            wal_fsync_interval: std::time::Duration::from_secs(3600),
            ..DbOptions::default()
        };
        let db = Db::open(dir.path(), opts).map_err(|e| format!("opening the database: {e}"))?;
        Ok(Env {
            db,
            _dir: dir,
            histogram_series: Vec::new(),
            load_error: None,
            // Prometheus's test engine runs with delayed name removal; so does this one.
            engine: Engine::new(EngineOptions {
                delayed_name_removal: true,
                ..EngineOptions::default()
            }),
        })
    }

    /// Appends a `load` block in one batch. Histogram points are skipped (the metric is
    /// remembered, so cases reading it are reported as unsupported); their time slots
    /// still count.
    pub fn load(&mut self, load: &Load) {
        if let Err(e) = self.try_load(load) {
            self.load_error
                .get_or_insert(format!("load at line {} failed: {e}", load.line));
        }
    }

    fn try_load(&mut self, load: &Load) -> Result<(), String> {
        let mut app = self.db.appender();
        // A later line for the same series replaces an earlier one, as in Prometheus.
        let mut seen = HashSet::new();
        let last: Vec<_> = load
            .series
            .iter()
            .rev()
            .filter(|s| seen.insert(s.labels.clone()))
            .collect();
        for s in last.into_iter().rev() {
            if load.with_nhcb
                && let Some(h) = nhcb_series(&s.labels)
            {
                self.histogram_series.push(h);
            }
            if s.points.contains(&Point::Histogram) {
                self.histogram_series.push(s.labels.clone());
            }
            let mut series_ref = None;
            for (i, p) in s.points.iter().enumerate() {
                let t = i as i64 * load.interval_ms;
                if let Point::Float(v) = *p {
                    append(&mut *app, &mut series_ref, &s.labels, t, v)?;
                }
            }
        }
        app.commit().map_err(|e| format!("commit: {e}"))
    }

    /// Judges one case.
    pub fn eval(&self, eval: &Eval) -> Verdict {
        if eval.uses_histograms() {
            return Verdict::Unsupported(Gap::NativeHistograms, String::new());
        }
        let storage = Watched {
            db: self.db.clone(),
            histograms: Arc::new(self.histogram_series.clone()),
            touched: Arc::new(AtomicBool::new(false)),
        };
        let verdict = self.judge(&storage, eval);
        let names_one = || {
            eval.query
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .any(|w| {
                    self.histogram_series
                        .iter()
                        .any(|l| l.metric_name() == Some(w))
                })
        };
        if storage.touched.load(Ordering::Relaxed)
            || matches!(verdict, Verdict::Fail(_)) && names_one()
        {
            return Verdict::Unsupported(Gap::NativeHistograms, String::new());
        }
        verdict
    }

    fn judge(&self, storage: &Watched, eval: &Eval) -> Verdict {
        if let Some(e) = &self.load_error {
            return Verdict::Fail(e.clone());
        }
        let expr = match catch_unwind(|| parse_expr(&eval.query)) {
            Err(p) => return Verdict::Fail(format!("parser panicked: {}", panic_msg(&p))),
            Ok(Err(e)) if e.kind == ParseErrorKind::Unsupported => {
                return Verdict::Unsupported(Gap::Parser, e.to_string());
            }
            Ok(r) => r.map_err(|e| e.to_string()),
        };
        let verdict = self.judge_query(storage, eval, &expr, eval.kind);
        let (Verdict::Pass, Ok(expr), EvalKind::Instant { at }) = (&verdict, &expr, eval.kind)
        else {
            return verdict;
        };
        // Prometheus's runner also runs an instant case with `@` pinned to its time on
        // every selector and subquery, at other evaluation times, where the answer must
        // stay the same; the query is printed and parsed again, as it does.
        let Some(pinned) = pin_at(expr, at) else {
            return verdict;
        };
        let text = pinned.to_string();
        let reparsed = match parse_expr(&text) {
            Ok(e) => Ok(e),
            Err(e) => return Verdict::Fail(format!("@ run: {text} does not parse: {e}")),
        };
        let times = if at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * at, 0, at / 5, at, 10 * at]
        };
        for t in times {
            match self.judge_query(storage, eval, &reparsed, EvalKind::Instant { at: t }) {
                Verdict::Pass => {}
                Verdict::Fail(e) => return Verdict::Fail(format!("{text} at {t}ms: {e}")),
                other => return other,
            }
        }
        verdict
    }

    /// Judges one run of a case's query.
    fn judge_query(
        &self,
        storage: &Watched,
        eval: &Eval,
        expr: &Result<Expr, String>,
        kind: EvalKind,
    ) -> Verdict {
        let run = || -> Result<Outcome, QueryError> {
            let expr = expr.as_ref().map_err(|e| QueryError::Failed(e.clone()))?;
            match kind {
                EvalKind::Instant { at } => self.instant(storage, expr, at),
                EvalKind::Range { start, end, step } => self.range(storage, expr, start, end, step),
            }
        };
        let outcome = match run() {
            Err(QueryError::Unsupported(m)) => return Verdict::Unsupported(Gap::Engine, m),
            Err(QueryError::Failed(msg)) => {
                return match &eval.expect.fail {
                    Some(want) if want.matches(&msg) => Verdict::Pass,
                    Some(want) => Verdict::Fail(format!("expected error {want}, got: {msg}")),
                    None => Verdict::Fail(format!("error: {msg}")),
                };
            }
            Ok(o) => o,
        };
        if eval.expect.fail.is_some() {
            return Verdict::Fail("expected an error, got none".into());
        }
        if let Err(e) = check_annotations(eval, &outcome) {
            return Verdict::Fail(e);
        }
        if let Err(diff) = compare(eval, &outcome.value) {
            return Verdict::Fail(diff);
        }
        if let (Ok(expr), EvalKind::Instant { at }) = (expr, kind) {
            match self.range_mode_check(storage, eval, expr, at, &outcome.value) {
                Ok(()) => {}
                Err(QueryError::Unsupported(m)) => return Verdict::Unsupported(Gap::Engine, m),
                Err(QueryError::Failed(e)) => return Verdict::Fail(format!("range mode: {e}")),
            }
        }
        Verdict::Pass
    }

    /// The instant result must equal the middle step of a range query around it.
    fn range_mode_check(
        &self,
        storage: &Watched,
        eval: &Eval,
        expr: &Expr,
        at: i64,
        instant: &Value,
    ) -> Result<(), QueryError> {
        let failed = QueryError::Failed;
        if eval.excluded_from_range_check()
            || eval.expect.ordered
            || uses_query_context(&eval.query)
        {
            return Ok(());
        }
        let m = match self.range(storage, expr, at - 60_000, at + 60_000, 60_000) {
            Ok(Outcome {
                value: Value::Matrix(m),
                ..
            }) => m,
            Ok(Outcome { value, .. }) => {
                return Err(failed(format!("got a {} result", value.result_type())));
            }
            Err(e) => return Err(e),
        };
        assert_sorted(&m).map_err(failed)?;
        let vector: Vec<(Labels, Sample)> = m
            .into_iter()
            .filter_map(|(l, points)| points.into_iter().find(|p| p.t == at).map(|p| (l, p)))
            .collect();
        let value = match instant {
            Value::Scalar(_) => match vector.first() {
                Some((_, s)) => Value::Scalar(*s),
                None => return Err(failed("no point at the evaluation time".into())),
            },
            _ => Value::Vector(vector),
        };
        compare(eval, &value).map_err(failed)
    }

    fn instant(&self, storage: &Watched, expr: &Expr, at: i64) -> Result<Outcome, QueryError> {
        guarded(|| self.engine.instant_query(storage, expr, at))
    }

    fn range(
        &self,
        storage: &Watched,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Outcome, QueryError> {
        guarded(|| self.engine.range_query(storage, expr, start, end, step))
    }
}

/// The native histogram series `load_with_nhcb` makes of a classic histogram's series:
/// `x_bucket{le=..}`, `x_count` and `x_sum` become `x`.
fn nhcb_series(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name()?;
    let base = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))?;
    let mut b = labels.builder();
    b.set("__name__", base).del("le");
    Some(b.labels())
}

/// The database, watched: notes whether any select matches a series that had native
/// histogram samples.
struct Watched {
    db: Db,
    histograms: Arc<Vec<Labels>>,
    touched: Arc<AtomicBool>,
}

impl Storage for Watched {
    fn appender(&self) -> Box<dyn Appender> {
        self.db.appender()
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(WatchedQuerier {
            inner: self.db.querier(mint, maxt)?,
            histograms: self.histograms.clone(),
            touched: self.touched.clone(),
        }))
    }
}

struct WatchedQuerier {
    inner: Box<dyn Querier>,
    histograms: Arc<Vec<Labels>>,
    touched: Arc<AtomicBool>,
}

impl Querier for WatchedQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let selects = |l: &Labels| {
            matchers
                .iter()
                .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
        };
        if self.histograms.iter().any(selects) {
            self.touched.store(true, Ordering::Relaxed);
        }
        self.inner.select(matchers)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, matchers)
    }
}

fn append(
    app: &mut dyn Appender,
    series_ref: &mut Option<u64>,
    labels: &Labels,
    t: i64,
    v: f64,
) -> Result<(), String> {
    let res = match *series_ref {
        Some(r) => app.append_ref(r, t, v),
        None => app.append(labels, t, v).map(|r| *series_ref = Some(r)),
    };
    res.map_err(|e| format!("{labels} at {t}: {e}"))
}

/// Runs one evaluation, turning a panic into a failure and the engine's own answer into
/// an [`Outcome`]. The one place that knows the engine's result shape.
fn guarded(f: impl FnOnce() -> Result<QueryResult, EvalError>) -> Result<Outcome, QueryError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Err(p) => Err(QueryError::Failed(format!(
            "engine panicked: {}",
            panic_msg(&p)
        ))),
        Ok(Err(EvalError::Unsupported(what))) => Err(QueryError::Unsupported(format!(
            "{what} are not supported by the query engine yet"
        ))),
        Ok(Err(e)) => Err(QueryError::Failed(e.to_string())),
        Ok(Ok(r)) => Ok(Outcome {
            value: r.value,
            warnings: r.warnings,
            infos: r.infos,
        }),
    }
}

fn panic_msg(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Checks `expect warn/info/no_warn/no_info` as Prometheus does: every expected
/// annotation must be found, and where any is expected, every one found must be expected.
fn check_annotations(eval: &Eval, got: &Outcome) -> Result<(), String> {
    let e = &eval.expect;
    for (kind, want, have, none) in [
        ("warn", &e.warn, &got.warnings, e.no_warn),
        ("info", &e.info, &got.infos, e.no_info),
    ] {
        if none && !have.is_empty() {
            return Err(format!("unexpected {kind} annotations: {have:?}"));
        }
        if want.is_empty() {
            continue;
        }
        if let Some(w) = want.iter().find(|w| !have.iter().any(|h| w.matches(h))) {
            return Err(format!(
                "expected {kind} annotation matching {w}, found {have:?}"
            ));
        }
        if let Some(h) = have.iter().find(|h| !want.iter().any(|w| w.matches(h))) {
            return Err(format!("unexpected {kind} annotation {h:?}"));
        }
    }
    Ok(())
}

/// The functions whose answer changes with the evaluation time even when their
/// arguments are pinned with `@`: Prometheus's runner skips the `@` runs for them.
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    // Newer than the list read in Prometheus's source; they answer the evaluation time
    // of an instant query, which `@` does not pin.
    "start",
    "end",
];

/// `expr` with `@ at` on every selector and subquery that has none, not looking inside
/// subqueries (they are pinned as a whole); None when it calls a function in
/// [`AT_UNSAFE_FUNCTIONS`].
fn pin_at(expr: &Expr, at: i64) -> Option<Expr> {
    fn walk(e: &mut Expr, at: i64) -> bool {
        let pin = |a: &mut Option<AtModifier>| {
            a.get_or_insert(AtModifier::Timestamp(at));
        };
        match e {
            Expr::VectorSelector(vs) => pin(&mut vs.at),
            Expr::MatrixSelector(m) => pin(&mut m.selector.at),
            // Pinned as a whole: nothing inside is looked at, functions included.
            Expr::Subquery(sq) => pin(&mut sq.at),
            Expr::Unary(u) => return walk(&mut u.expr, at),
            Expr::Paren(p) => return walk(&mut p.expr, at),
            Expr::Binary(b) => return walk(&mut b.lhs, at) & walk(&mut b.rhs, at),
            Expr::Aggregate(a) => {
                let param_ok = a.param.as_mut().is_none_or(|p| walk(p, at));
                return walk(&mut a.expr, at) & param_ok;
            }
            Expr::Call(c) => {
                let mut ok = !AT_UNSAFE_FUNCTIONS.contains(&c.func.as_str());
                for a in &mut c.args {
                    ok &= walk(a, at);
                }
                return ok;
            }
            Expr::Number(_) | Expr::String(_) | Expr::Duration(_) => {}
        }
        true
    }
    let mut pinned = expr.clone();
    walk(&mut pinned, at).then_some(pinned)
}

/// `start()`, `end()`, `range()`, `step()`: these answer differently in the range check.
fn uses_query_context(query: &str) -> bool {
    ["start()", "end()", "range()", "step()"]
        .iter()
        .any(|f| query.contains(f))
}

#[cfg(test)]
mod tests {
    use super::super::script::{Command, parse_script};
    use super::*;

    /// Runs a script, returning each case's verdict.
    fn run(src: &str) -> Vec<Verdict> {
        let mut env = Env::new().unwrap();
        let mut out = Vec::new();
        for c in parse_script(src).commands {
            match c {
                Command::Load(l) => env.load(&l),
                Command::Clear => env = Env::new().unwrap(),
                Command::Eval(e) => out.push(env.eval(&e)),
            }
        }
        out
    }

    #[test]
    fn judges_selector_cases_against_real_storage() {
        let v = run(concat!(
            "load 1m\n  m{a=\"1\"} 0+1x4\n  m{a=\"2\"} 5 _ stale\n\n",
            "eval instant at 2m m\n  m{a=\"1\"} 2\n\n",
            "eval instant at 2m m\n  m{a=\"1\"} 3\n\n",
            "eval range from 0 to 2m step 1m m\n  m{a=\"1\"} 0 1 2\n  m{a=\"2\"} 5 5\n\n",
            "eval instant at 1m m[1m]\n  expect range vector from 1m to 1m step 1m\n  m{a=\"1\"} 1\n\n",
            "clear\n\neval instant at 2m m\n\n",
            "eval instant at 0 m{\n  expect fail\n\n",
        ));
        assert_eq!(v[0], Verdict::Pass);
        assert!(
            matches!(&v[1], Verdict::Fail(d) if d.contains("expected 3")),
            "{:?}",
            v[1]
        );
        assert_eq!(v[2], Verdict::Pass);
        assert_eq!(v[3], Verdict::Pass);
        assert_eq!(v[4], Verdict::Pass, "clear empties the storage");
        assert_eq!(v[5], Verdict::Pass, "a parse error satisfies expect fail");
    }

    #[test]
    fn histogram_cases_are_unsupported() {
        let v = run(concat!(
            "load 1m\n  h {{schema:0 sum:1 count:1}}\n  f 1\n\n",
            "eval instant at 0 h\n\n",
            "eval instant at 0 f\n  f 1\n\n",
            "eval instant at 0 f\n  f {{sum:1}}\n\n",
            "eval instant at 0 {__name__=~\".+\"}\n  f 1\n\n",
            "clear\n\nload_with_nhcb 1m\n  c_bucket{le=\"1\"} 1\n  c_count 1\n\n",
            "eval instant at 0 c_bucket\n  c_bucket{le=\"1\"} 1\n\n",
            "eval instant at 0 c\n\n",
        ));
        assert!(matches!(
            v[0],
            Verdict::Unsupported(Gap::NativeHistograms, _)
        ));
        assert_eq!(v[1], Verdict::Pass);
        assert!(matches!(
            v[2],
            Verdict::Unsupported(Gap::NativeHistograms, _)
        ));
        assert!(
            matches!(v[3], Verdict::Unsupported(Gap::NativeHistograms, _)),
            "{:?}",
            v[3]
        );
        assert_eq!(v[4], Verdict::Pass);
        assert!(matches!(
            v[5],
            Verdict::Unsupported(Gap::NativeHistograms, _)
        ));
    }

    #[test]
    fn annotations_are_checked() {
        let v = run(concat!(
            "load 1m\n  f 1\n\n",
            "eval instant at 0 f\n  expect warn\n  f 1\n\n",
            "eval instant at 0 f\n  expect no_warn\n  expect no_info\n  f 1\n",
        ));
        assert!(
            matches!(&v[0], Verdict::Fail(d) if d.contains("expected warn")),
            "{:?}",
            v[0]
        );
        assert_eq!(v[1], Verdict::Pass);
    }

    #[test]
    fn nhcb_series_drop_suffix_and_le() {
        let l = Labels::from_pairs([("__name__", "x_bucket"), ("le", "1"), ("a", "b")]);
        assert_eq!(
            nhcb_series(&l),
            Some(Labels::from_pairs([("__name__", "x"), ("a", "b")]))
        );
        assert_eq!(nhcb_series(&Labels::from_pairs([("__name__", "x")])), None);
    }

    #[test]
    fn at_runs_pin_outer_selectors_and_skip_time_dependent_queries() {
        let pin = |q: &str| pin_at(&parse_expr(q).unwrap(), 60_000).map(|e| e.to_string());
        assert_eq!(
            pin("sum(rate(x[5m])) + y @ 10").as_deref(),
            Some("sum(rate(x[5m] @ 60.000)) + y @ 10.000")
        );
        // A subquery is pinned whole; what it wraps is left alone, functions included.
        assert_eq!(
            pin("max_over_time(vector(time())[5m:1m])").as_deref(),
            Some("max_over_time(vector(time())[5m:1m] @ 60.000)")
        );
        assert_eq!(pin("timestamp(x)"), None);
        assert_eq!(pin("x - time()"), None);
        // The pinned runs (at -10m, 0, 12s, 1m and 10m) all see `x` at 1m.
        let v = run(concat!(
            "load 1m\n  x 1 2\n\n",
            "eval instant at 1m x\n  x 2\n\n",
            "eval instant at 1m x @ 60\n  x 2\n",
        ));
        assert_eq!(v, [Verdict::Pass, Verdict::Pass]);
    }
}
