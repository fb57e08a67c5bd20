//! `/api/v1/targets` and `/api/v1/status/*`: what the server is doing, in Prometheus's
//! shapes, so Grafana and existing tooling read them unchanged.

use super::AppState;
use super::json::{self, ApiError};
use super::params::Params;
use crate::model::Labels;
use crate::model::time::format_duration;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn labels_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for x in l {
        m.insert(x.name.clone(), Value::String(x.value.clone()));
    }
    Value::Object(m)
}

/// RFC 3339 with nanoseconds as Go prints times; Go's zero time before the first scrape.
pub fn rfc3339(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

pub async fn targets(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    let want = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let pools = state.scrape.lock().targets();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for pool in &pools {
        if want == "any" || want == "active" || want.is_empty() {
            let mut ts = pool.active.clone();
            ts.sort_by(|a, b| a.labels.cmp(&b.labels));
            for t in ts {
                let h = t.health.lock().clone();
                active.push(json!({
                    "discoveredLabels": labels_json(&t.discovered_labels),
                    "labels": labels_json(&t.labels),
                    "scrapePool": pool.job,
                    "scrapeUrl": t.url,
                    "globalUrl": t.url,
                    "lastError": h.last_error,
                    "lastScrape": rfc3339(h.last_scrape_ms),
                    "lastScrapeDuration": h.last_scrape_duration.as_secs_f64(),
                    "health": h.health.as_str(),
                    "scrapeInterval": format_duration(t.interval),
                    "scrapeTimeout": format_duration(t.timeout),
                }));
            }
        }
        if want == "any" || want == "dropped" || want.is_empty() {
            for d in &pool.dropped {
                dropped.push(json!({ "discoveredLabels": labels_json(&d.discovered_labels) }));
            }
        }
    }
    let mut data = Map::new();
    if want != "dropped" {
        data.insert("activeTargets".into(), Value::Array(active));
    }
    if want != "active" {
        data.insert("droppedTargets".into(), Value::Array(dropped));
    }
    json::success(&Value::Object(data))
}

pub async fn config(state: Arc<AppState>) -> Result<Response, ApiError> {
    json::success(&json!({ "yaml": state.current.read().yaml }))
}

pub async fn flags(state: Arc<AppState>) -> Result<Response, ApiError> {
    let m: Map<String, Value> = state
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json::success(&Value::Object(m))
}

pub async fn buildinfo() -> Result<Response, ApiError> {
    json::success(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("CAIRN_GIT_REVISION").unwrap_or("unknown"),
        "branch": option_env!("CAIRN_GIT_BRANCH").unwrap_or("unknown"),
        "buildUser": "",
        "buildDate": "",
        // The field Grafana reads is named for Go; cairn reports its compiler here.
        "goVersion": format!("rust (cairn {})", env!("CARGO_PKG_VERSION")),
    }))
}

pub async fn runtimeinfo(state: Arc<AppState>) -> Result<Response, ApiError> {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    json::success(&json!({
        "startTime": rfc3339(state.started_at_ms),
        "CWD": cwd,
        "reloadConfigSuccess": state.reload_ok.load(Ordering::Relaxed),
        "lastConfigTime": rfc3339(state.current.read().loaded_at_ms),
        "corruptionCount": 0,
        "goroutineCount": threads,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": state.retention,
    }))
}

/// `/api/v1/status/tsdb`: head statistics and the index's top cardinalities, in
/// Prometheus's shape (`limit`, default 10, as in Prometheus 3.x).
pub async fn tsdb(state: Arc<AppState>, p: Params) -> Result<Response, ApiError> {
    let limit = match p.get("limit") {
        None | Some("") => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::param("limit", "must be a positive number")),
        },
    };
    let db = state.db.clone();
    let (head, stats) =
        tokio::task::spawn_blocking(move || (db.stats(), db.head().postings_stats(limit)))
            .await
            .map_err(|e| ApiError::new(json::ErrorType::Internal, e.to_string()))?;
    let list = |v: &[crate::tsdb::index::stats::Stat]| {
        v.iter()
            .map(|s| json!({"name": s.name, "value": s.value}))
            .collect::<Vec<_>>()
    };
    json::success(&json!({
        "headStats": {
            "numSeries": head.num_series,
            "numLabelPairs": stats.num_label_pairs,
            "chunkCount": head.num_chunks,
            "minTime": head.min_time,
            "maxTime": head.max_time,
        },
        "seriesCountByMetricName": list(&stats.series_count_by_metric_name),
        "labelValueCountByLabelName": list(&stats.label_value_count_by_label_name),
        "memoryInBytesByLabelName": list(&stats.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": list(&stats.series_count_by_label_value_pair),
    }))
}
