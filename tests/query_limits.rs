//! Query statistics and limits over the HTTP API, against the real cairn binary:
//! `stats=all` adds Prometheus's `stats` object (inside `data`, after `result`, keys in
//! Prometheus's order) with sample counts that match the data read; `--query.timeout`
//! fails a heavy query with 503 `timeout` and leaves the server answering; and
//! `--query.max-concurrency` queues queries beyond its slots instead of refusing them.
//! Only outcomes are asserted, never durations.

pub mod common;

use common::prompb::TimeSeries;
use common::{Cairn, Monitor, api_time, now_ms};
use serde_json::Value;

const CONFIG: &str = "global:\n  scrape_interval: 1m\nscrape_configs: []\n";

/// Heavy without any stored data: a one-second subquery over thirty days evaluates
/// 2.6 million steps. The `+ 0` makes the engine look at its deadline after the heavy
/// part, so a tiny `--query.timeout` is always noticed.
const HEAVY: &str = "count_over_time(vector(1)[30d:1s]) + 0";

/// Two series with a sample every 15 s for ten minutes; returns the last sample's time.
async fn load(cairn: &Monitor) -> i64 {
    let base = (now_ms() / 1000 - 900) * 1000;
    let points: Vec<(i64, f64)> = (0..=40).map(|k| (base + k * 15_000, k as f64)).collect();
    let batch = ["1", "2"]
        .iter()
        .map(|i| TimeSeries::new(&[("__name__", "up_total"), ("instance", i)], &points))
        .collect();
    let reply = cairn
        .remote_writer()
        .write(batch)
        .await
        .expect("remote write");
    assert_eq!(reply.status, 204, "{}", reply.body);
    base + 40 * 15_000
}

async fn get(cairn: &Monitor, path: &str, params: &[(&str, &str)]) -> (u16, String, Value) {
    let reply = cairn.api.get(path, params).await.expect("request");
    let json = reply.json().expect("json body");
    (reply.status, reply.body, json)
}

/// `(totalQueryableSamples, peakSamples)` of an answer with stats.
fn samples(body: &Value) -> (u64, u64) {
    let s = &body["data"]["stats"]["samples"];
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {body}"));
    (n("totalQueryableSamples"), n("peakSamples"))
}

#[tokio::test]
async fn stats_all_reports_prometheus_shape_and_counts() {
    let cairn = Cairn::start(CONFIG).await;
    let t = load(&cairn).await;
    let time = api_time(t);

    // The shape, in Prometheus's key order.
    let (status, raw, body) = get(
        &cairn,
        "/api/v1/query",
        &[("query", "up_total"), ("time", &time), ("stats", "all")],
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    let order = [
        "\"resultType\"",
        "\"result\"",
        "\"stats\"",
        "\"timings\"",
        "\"evalTotalTime\"",
        "\"resultSortTime\"",
        "\"queryPreparationTime\"",
        "\"innerEvalTime\"",
        "\"execQueueTime\"",
        "\"execTotalTime\"",
        "\"samples\"",
        "\"totalQueryableSamples\"",
        "\"peakSamples\"",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| raw.find(k).unwrap_or_else(|| panic!("{k} missing: {raw}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {raw}");
    let timings = body["data"]["stats"]["timings"]
        .as_object()
        .expect("timings object");
    assert_eq!(timings.len(), 6, "{raw}");
    assert!(
        timings
            .values()
            .all(|v| v.as_f64().is_some_and(|s| s >= 0.0)),
        "{raw}"
    );
    // An instant selector reads one sample per series.
    assert_eq!(samples(&body), (2, 2));

    // A range selector reads its window: 20 samples per series in (t - 5m, t].
    let (_, _, body) = get(
        &cairn,
        "/api/v1/query",
        &[("query", "up_total[5m]"), ("time", &time), ("stats", "1")],
    )
    .await;
    assert_eq!(samples(&body), (40, 40));

    // A range query counts every step: five steps, two series.
    let start = api_time(t - 60_000);
    let (status, raw, body) = get(
        &cairn,
        "/api/v1/query_range",
        &[
            ("query", "up_total"),
            ("start", &start),
            ("end", &time),
            ("step", "15s"),
            ("stats", "all"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(body["data"]["result"].as_array().map(Vec::len), Some(2));
    assert_eq!(samples(&body), (10, 10));

    // Without the parameter, or with it empty, there are no stats.
    for params in [
        vec![("query", "up_total"), ("time", time.as_str())],
        vec![
            ("query", "up_total"),
            ("time", time.as_str()),
            ("stats", ""),
        ],
    ] {
        let (status, raw, body) = get(&cairn, "/api/v1/query", &params).await;
        assert_eq!(status, 200, "{raw}");
        assert!(body["data"].get("stats").is_none(), "{raw}");
    }
}

#[tokio::test]
async fn a_query_past_the_timeout_fails_and_the_server_goes_on() {
    let cairn = Cairn::start_with(CONFIG, &["--query.timeout=1ms"]).await;
    let (status, raw, body) = get(&cairn, "/api/v1/query", &[("query", HEAVY)]).await;
    assert_eq!(status, 503, "{raw}");
    assert_eq!(body["status"], "error", "{raw}");
    assert_eq!(body["errorType"], "timeout", "{raw}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("query timed out")),
        "{raw}"
    );

    let healthy = cairn.api.get("/-/healthy", &[]).await.expect("healthy");
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    let (status, raw, body) = get(&cairn, "/api/v1/query", &[("query", "1 + 1")]).await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(body["data"]["result"][1], "2", "{raw}");
}

#[tokio::test]
async fn queries_beyond_max_concurrency_wait_their_turn() {
    let cairn = Cairn::start_with(CONFIG, &["--query.max-concurrency=1"]).await;
    let time = api_time(now_ms());
    let params = [("query", HEAVY), ("time", time.as_str()), ("stats", "all")];
    let (a, b) = tokio::join!(
        get(&cairn, "/api/v1/query", &params),
        get(&cairn, "/api/v1/query", &params)
    );
    for (status, raw, _) in [&a, &b] {
        assert_eq!(*status, 200, "{raw}");
    }
    let result = |body: &Value| body["data"]["result"].clone();
    assert_eq!(result(&a.2), result(&b.2));
    let steps: f64 = a.2["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(steps >= 2_592_000.0, "{}", a.1);
}
