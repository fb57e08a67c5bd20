//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels` and
//! `/api/v1/label/<name>/values`: parameters checked with Prometheus's messages, the
//! engine or querier called off the async threads, results encoded as Prometheus does.

use super::AppState;
use super::json::{self, ApiError, ErrorType};
use super::params::{MAX_TIME, MIN_TIME, Params, parse_duration_param};
use crate::model::{Labels, Matcher};
use crate::promql::engine::{QueryResult, QueryStats};
use crate::promql::{self, EvalError, Value};
use axum::response::Response;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prometheus refuses range queries with more points than this per series.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub async fn query(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::param("query", "query must not be empty"))?
        .to_string();
    let t = p.time_now("time")?;
    let stats = wants_stats(&p);
    let expr = promql::parse_expr(&q).map_err(|e| ApiError::param("query", e))?;
    let exec = Instant::now();
    let _permit = admit(&state).await?;
    let queued = exec.elapsed();
    let r = blocking(move || state.engine.instant_query(state.storage.as_ref(), &expr, t)).await?;
    let exec = stats.then(|| ExecTimes {
        queue: queued,
        total: exec.elapsed(),
    });
    Ok(respond(&r, exec.as_ref()))
}

pub async fn query_range(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    let q = p
        .get("query")
        .ok_or_else(|| ApiError::param("query", "query must not be empty"))?
        .to_string();
    let start = required_time(&p, "start")?;
    let end = required_time(&p, "end")?;
    if end < start {
        return Err(ApiError::param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = p
        .get("step")
        .ok_or_else(|| ApiError::param("step", "cannot parse \"\" to a valid duration"))
        .and_then(|s| parse_duration_param(s).map_err(|e| ApiError::param("step", e)))?;
    if step <= 0 {
        return Err(ApiError::param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let stats = wants_stats(&p);
    let max_res = max_source_resolution(&p)?;
    let expr = promql::parse_expr(&q).map_err(|e| ApiError::param("query", e))?;
    let exec = Instant::now();
    let _permit = admit(&state).await?;
    let queued = exec.elapsed();
    let r = blocking(move || {
        state
            .engine
            .range_query_at(state.storage.as_ref(), &expr, start, end, step, max_res)
    })
    .await?;
    let exec = stats.then(|| ExecTimes {
        queue: queued,
        total: exec.elapsed(),
    });
    Ok(respond(&r, exec.as_ref()))
}

/// `max_source_resolution` (as Thanos names it): the coarsest downsampled resolution a
/// range query may read. Absent, empty or `auto`: cairn picks; `raw` or `0s`: raw data
/// only; else a duration such as `5m` or `1h`.
fn max_source_resolution(p: &Params) -> Result<Option<i64>, ApiError> {
    match p.get("max_source_resolution") {
        None | Some("") | Some("auto") => Ok(None),
        Some("raw") => Ok(Some(0)),
        Some(v) => parse_duration_param(v)
            .map(Some)
            .map_err(|e| ApiError::param("max_source_resolution", e)),
    }
}

/// Waits for one of `--query.max-concurrency` slots, as Prometheus queues queries.
async fn admit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .query_gate
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))
}

/// Whether the request asked for statistics: Prometheus takes any non-empty `stats`.
/// (`stats=all` also adds per-step sample counts there; cairn does not track those.)
fn wants_stats(p: &Params) -> bool {
    p.get("stats").is_some_and(|s| !s.is_empty())
}

/// The HTTP side of a query's timings: waiting for a `--query.max-concurrency` slot,
/// and everything from that wait to the engine's answer.
struct ExecTimes {
    queue: Duration,
    total: Duration,
}

/// The success envelope with the query's warnings and infos, as Prometheus adds them,
/// and with `exec` the statistics, which Prometheus puts inside `data` after `result`.
fn respond(r: &QueryResult, exec: Option<&ExecTimes>) -> Response {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":"#);
    // The value is an object; what cairn adds goes before its closing brace: the
    // resolution when downsampled data answered (raw answers are left exactly as
    // Prometheus's), then the statistics.
    encode_value_open(&mut out, &r.value);
    if r.resolution > 0 {
        out.push_str(",\"resolution\":");
        out.push_str(&r.resolution.to_string());
    }
    if let Some(exec) = exec {
        write_stats(&mut out, &r.stats, exec);
    }
    out.push('}');
    for (key, notes) in [("warnings", &r.warnings), ("infos", &r.infos)] {
        if notes.is_empty() {
            continue;
        }
        out.push_str(",\"");
        out.push_str(key);
        out.push_str("\":[");
        for (i, n) in notes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str(&mut out, n);
        }
        out.push(']');
    }
    out.push('}');
    json::json_response(axum::http::StatusCode::OK, out)
}

/// `,"stats":{...}` with Prometheus's keys in Prometheus's order; times in seconds.
fn write_stats(out: &mut String, s: &QueryStats, exec: &ExecTimes) {
    let t = &s.timings;
    out.push_str(r#","stats":{"timings":{"#);
    let timings = [
        ("evalTotalTime", t.eval_total),
        ("resultSortTime", t.result_sort),
        ("queryPreparationTime", t.query_preparation),
        ("innerEvalTime", t.inner_eval),
        ("execQueueTime", exec.queue),
        ("execTotalTime", exec.total),
    ];
    for (i, (key, d)) in timings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{key}\":{}", d.as_secs_f64());
    }
    let _ = write!(
        out,
        r#"}},"samples":{{"totalQueryableSamples":{},"peakSamples":{}}}}}"#,
        s.total_queryable_samples, s.peak_samples
    );
}

/// `/api/v1/format_query`: the query printed canonically. (Prometheus also breaks long
/// queries over lines; cairn prints them on one line.)
pub async fn format_query(p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").unwrap_or_default();
    let expr = promql::parse_expr(q).map_err(|e| ApiError::param("query", e))?;
    json::success(&expr.to_string())
}

/// `/api/v1/parse_query`: the syntax tree as JSON.
pub async fn parse_query(p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").unwrap_or_default();
    let expr = promql::parse_expr(q).map_err(|e| ApiError::param("query", e))?;
    json::success(&super::ast_json::translate(&expr))
}

fn required_time(p: &Params, name: &str) -> Result<i64, ApiError> {
    match p.get(name) {
        None | Some("") => Err(ApiError::param(
            name,
            "cannot parse \"\" to a valid timestamp",
        )),
        Some(_) => p.time_or(name, 0),
    }
}

/// Runs engine work on the blocking pool so a heavy query doesn't stall scrapes.
async fn blocking<F>(f: F) -> Result<QueryResult, ApiError>
where
    F: FnOnce() -> Result<QueryResult, EvalError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?
        .map_err(eval_error)
}

/// Prometheus's error types for evaluation failures: timeouts 503, bad requests 400,
/// storage trouble 500, everything else 422.
fn eval_error(e: EvalError) -> ApiError {
    let kind = match &e {
        EvalError::Timeout(_) => ErrorType::Timeout,
        EvalError::InvalidRangeQueryType(_) | EvalError::BadStep | EvalError::EndBeforeStart => {
            ErrorType::BadData
        }
        EvalError::Storage(_) => ErrorType::Internal,
        _ => ErrorType::Execution,
    };
    ApiError::new(kind, e.to_string())
}

/// `{"resultType":...,"result":...}`
pub fn encode_value(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    encode_value_open(&mut out, v);
    out.push('}');
    out
}

/// [`encode_value`] without its closing brace, written onto `out`: a response can be
/// large, and the envelope around it is written in the same buffer, not copied.
fn encode_value_open(out: &mut String, v: &Value) {
    match v {
        Value::Scalar(s) => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            json::write_point(out, s.t, s.v);
        }
        Value::String(s, t) => {
            out.push_str(r#"{"resultType":"string","result":["#);
            json::write_timestamp(out, *t);
            out.push(',');
            json::write_str(out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, (labels, s)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json::write_labels(out, labels);
                out.push_str(r#","value":"#);
                json::write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, (labels, points)) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                json::write_labels(out, labels);
                out.push_str(r#","values":["#);
                for (j, s) in points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::write_point(out, s.t, s.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
}

fn storage_error(e: crate::storage::StorageError) -> ApiError {
    ApiError::new(ErrorType::Internal, e.to_string())
}

pub async fn series(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    let sets = p.matchers()?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    let found: BTreeSet<Labels> = tokio::task::spawn_blocking(move || {
        let q = state.storage.querier(start, end).map_err(storage_error)?;
        let mut found = BTreeSet::new();
        for matchers in &sets {
            for s in q.select(matchers).map_err(storage_error)? {
                found.insert(s.labels);
            }
        }
        Ok::<_, ApiError>(found)
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))??;
    let mut out = String::from("[");
    for (i, l) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_labels(&mut out, l);
    }
    out.push(']');
    Ok(json::success_raw(&out))
}

pub async fn labels(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    label_query(state, p, None).await
}

pub async fn label_values(
    state: Arc<AppState>,
    p: Params,
    name: String,
) -> Result<Response, ApiError> {
    if !valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    label_query(state, p, Some(name)).await
}

/// Label names (`name` None) or one label's values, over all match[] sets (or all series).
async fn label_query(
    state: Arc<AppState>,
    p: Params,
    name: Option<String>,
) -> Result<Response, ApiError> {
    let sets = p.matchers()?;
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    let values = tokio::task::spawn_blocking(move || {
        let q = state.storage.querier(start, end).map_err(storage_error)?;
        let sets: Vec<Vec<Matcher>> = if sets.is_empty() { vec![vec![]] } else { sets };
        let mut all = BTreeSet::new();
        for m in &sets {
            let found = match &name {
                None => q.label_names(m),
                Some(n) => q.label_values(n, m),
            }
            .map_err(storage_error)?;
            all.extend(found);
        }
        Ok::<_, ApiError>(all)
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))??;
    json::success(&values.into_iter().collect::<Vec<_>>())
}

pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::engine::QueryTimings;

    #[test]
    fn stats_use_prometheus_keys_in_order_inside_data() {
        let r = QueryResult {
            value: Value::Vector(vec![]),
            warnings: vec![],
            infos: vec![],
            resolution: 0,
            stats: QueryStats {
                total_queryable_samples: 7,
                peak_samples: 3,
                timings: QueryTimings {
                    eval_total: Duration::from_millis(1500),
                    ..QueryTimings::default()
                },
            },
        };
        let exec = ExecTimes {
            queue: Duration::from_millis(250),
            total: Duration::from_secs(2),
        };
        let mut out = String::from("{");
        write_stats(&mut out, &r.stats, &exec);
        out.push('}');
        assert_eq!(
            out,
            r#"{,"stats":{"timings":{"evalTotalTime":1.5,"resultSortTime":0,"queryPreparationTime":0,"innerEvalTime":0,"execQueueTime":0.25,"execTotalTime":2},"samples":{"totalQueryableSamples":7,"peakSamples":3}}}"#
        );
    }
}
