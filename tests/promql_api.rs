//! PromQL over the HTTP API, against the real cairn binary: full-language queries
//! (aggregations, rate with Prometheus's extrapolation), warnings and infos in the
//! response, Prometheus's status codes and error types for parse errors (400), execution
//! errors (422) and limits, and `/api/v1/format_query` and `/api/v1/parse_query`. Data
//! comes in by remote write with fixed timestamps, so expected values are exact.

pub mod common;

use common::prompb::TimeSeries;
use common::{Cairn, Monitor, api_time, now_ms};
use serde_json::Value;

const CONFIG: &str = "global:\n  scrape_interval: 1m\nscrape_configs: []\n";

/// Two counters rising by one every 15 s over ten minutes, and a gauge. Returns the time
/// of the last sample.
async fn load(cairn: &Monitor) -> i64 {
    let base = (now_ms() / 1000 - 900) * 1000;
    let points: Vec<(i64, f64)> = (0..=40).map(|k| (base + k * 15_000, k as f64)).collect();
    let batch = vec![
        TimeSeries::new(
            &[
                ("__name__", "requests_total"),
                ("job", "a"),
                ("instance", "1"),
            ],
            &points,
        ),
        TimeSeries::new(
            &[
                ("__name__", "requests_total"),
                ("job", "a"),
                ("instance", "2"),
            ],
            &points,
        ),
        TimeSeries::new(&[("__name__", "temperature"), ("job", "a")], &points),
    ];
    let reply = cairn
        .remote_writer()
        .write(batch)
        .await
        .expect("remote write");
    assert_eq!(reply.status, 204, "{}", reply.body);
    base + 40 * 15_000
}

async fn query(cairn: &Monitor, q: &str, t: i64) -> (u16, Value) {
    let reply = cairn
        .api
        .get("/api/v1/query", &[("query", q), ("time", &api_time(t))])
        .await
        .expect("query");
    let json = reply.json().expect("json body");
    (reply.status, json)
}

#[tokio::test]
async fn full_language_queries_with_prometheus_semantics() {
    let cairn = Cairn::start(CONFIG).await;
    let t = load(&cairn).await;

    // Each counter rises 1 per 15 s: rate 1/15 after Prometheus's extrapolation, summed.
    let (status, body) = query(&cairn, "sum by (job) (rate(requests_total[5m]))", t).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(result[0]["metric"], serde_json::json!({"job": "a"}));
    let v: f64 = result[0]["value"][1]
        .as_str()
        .unwrap_or("NaN")
        .parse()
        .unwrap_or(f64::NAN);
    assert!((v - 2.0 / 15.0).abs() < 1e-9, "sum of rates = {v}");

    // Binary matching and comparison filtering keep Prometheus's label rules.
    let (_, body) = query(
        &cairn,
        "requests_total / on(job) group_left temperature > 0.5",
        t,
    )
    .await;
    assert_eq!(
        body["data"]["result"].as_array().map(Vec::len),
        Some(2),
        "{body}"
    );
    assert_eq!(
        body["data"]["result"][0]["metric"]["__name__"],
        Value::Null,
        "{body}"
    );

    // A range query of an aggregation: one series, one point per step.
    let reply = cairn
        .api
        .get(
            "/api/v1/query_range",
            &[
                ("query", "sum(requests_total)"),
                ("start", &api_time(t - 60_000)),
                ("end", &api_time(t)),
                ("step", "15"),
            ],
        )
        .await
        .expect("query_range");
    let body = reply.json().expect("json");
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");
    let values = body["data"]["result"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(values.len(), 5, "{body}");
    assert_eq!(values[4][1], "80", "{body}");
}

#[tokio::test]
async fn annotations_and_error_types() {
    let cairn = Cairn::start_with(CONFIG, &["--query.max-samples=20"]).await;
    let t = load(&cairn).await;

    // rate() over a name that does not look like a counter: an info, as Prometheus.
    let (status, body) = query(&cairn, "rate(temperature[1m])", t).await;
    assert_eq!(status, 200, "{body}");
    let infos = body["infos"].to_string();
    assert!(infos.contains("might not be a counter"), "infos: {body}");

    // Parse error: 400 bad_data with the position.
    let (status, body) = query(&cairn, "sum(requests_total", t).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"].as_str().unwrap_or("").contains("1:"),
        "{body}"
    );

    // Many-to-many matching: an execution error, 422.
    let (status, body) = query(&cairn, "requests_total + on(job) requests_total", t).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errorType"], "execution");

    // More samples than --query.max-samples: refused, and the server stays healthy.
    let (status, body) = query(&cairn, "requests_total[10m]", t).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("too many samples"),
        "{body}"
    );
    let (status, _) = query(&cairn, "temperature", t).await;
    assert_eq!(status, 200);

    // A range query of a range vector: 400, worded as Prometheus.
    let reply = cairn
        .api
        .get(
            "/api/v1/query_range",
            &[
                ("query", "temperature[1m]"),
                ("start", "1"),
                ("end", "2"),
                ("step", "1"),
            ],
        )
        .await
        .expect("query_range");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("invalid expression type \\\"range vector\\\""),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn format_and_parse_query() {
    let cairn = Cairn::start(CONFIG).await;
    let reply = cairn
        .api
        .get(
            "/api/v1/format_query",
            &[("query", "sum  by(job)(rate(x{a='b'}[5m]))")],
        )
        .await
        .expect("format_query");
    let body = reply.json().expect("json");
    assert_eq!(
        body["data"], r#"sum by (job) (rate(x{a="b"}[5m]))"#,
        "{body}"
    );

    let reply = cairn
        .api
        .post_form("/api/v1/parse_query", &[("query", "topk(3, x offset 1m)")])
        .await
        .expect("parse_query");
    let body = reply.json().expect("json");
    assert_eq!(body["data"]["type"], "aggregation", "{body}");
    assert_eq!(body["data"]["op"], "topk");
    assert_eq!(body["data"]["param"]["val"], "3");
    assert_eq!(body["data"]["expr"]["offset"], 60_000);

    let reply = cairn
        .api
        .get("/api/v1/parse_query", &[("query", "x +")])
        .await
        .expect("parse_query");
    assert_eq!(reply.status, 400, "{}", reply.body);
}
