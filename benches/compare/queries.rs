//! The fixed query set, timed on every system, and the check that the answers agree.
//! Five shapes (a selector, rate, sum by, histogram_quantile, topk), each as an instant
//! query and as a range query, over the last hour and the last 24 hours of the
//! remote-written history. Answers are equal when the label sets are exactly the same
//! and every point's timestamp is equal and its value within a small relative tolerance.

use crate::systems::{Kind, Server};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;

/// Relative tolerance for values (Prometheus's own test runner uses 1e-6 too): engines
/// may sum in a different order.
const TOLERANCE: f64 = 1e-6;

/// One query as sent: an instant query at `end`, or a range query over `[start, end]`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Case {
    pub name: String,
    pub expr: String,
    /// Seconds since the epoch.
    pub start: Option<i64>,
    pub end: i64,
    pub step: Option<i64>,
}

/// The set, evaluated at `end` (seconds; a multiple of 300 so every range step lands on
/// the same instants in every system, VictoriaMetrics aligning them to the step).
pub fn cases(end: i64) -> Vec<Case> {
    let mut out = Vec::new();
    for (window, seconds, step, rate) in [("1h", 3600, 30, "5m"), ("24h", 86_400, 300, "10m")] {
        let shapes = |w: &str| {
            [
                ("selector", "app_queue_depth{queue=\"q3\"}".to_string()),
                (
                    "rate",
                    format!("rate(app_http_requests_total{{code=\"500\"}}[{w}])"),
                ),
                (
                    "sum by",
                    format!("sum by (code) (rate(app_http_requests_total[{w}]))"),
                ),
                (
                    "histogram_quantile",
                    format!(
                        "histogram_quantile(0.9, sum by (le) \
                         (rate(app_request_duration_seconds_bucket[{w}])))"
                    ),
                ),
                (
                    "topk",
                    format!(
                        "topk(5, sum by (instance, handler) \
                         (rate(app_http_requests_total[{w}])))"
                    ),
                ),
            ]
        };
        for (shape, expr) in shapes(window) {
            // The instant selector reads the window's raw samples: `m[1h]`.
            let expr = if shape == "selector" {
                format!("{expr}[{window}]")
            } else {
                expr
            };
            out.push(Case {
                name: format!("{shape}, instant {window}"),
                expr,
                start: None,
                end,
                step: None,
            });
        }
        for (shape, expr) in shapes(rate) {
            out.push(Case {
                name: format!("{shape}, range {window}"),
                expr,
                start: Some(end - seconds),
                end,
                step: Some(step),
            });
        }
    }
    out
}

/// One case's outcome on every system (in [`Kind::ALL`]'s order).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub case: Case,
    /// Median milliseconds, None where the system answered with an error.
    pub median_ms: [Option<f64>; 3],
    pub errors: [Option<String>; 3],
    /// Series and points in Prometheus's answer: the size of the work.
    pub series: usize,
    pub points: usize,
    pub cairn_equals_prometheus: bool,
    pub cairn_equals_victoriametrics: bool,
    pub prometheus_equals_victoriametrics: bool,
    /// The first difference between cairn's answer and Prometheus's, if any.
    pub difference: Option<String>,
}

/// Runs every case `runs` times on every system after one untimed warm-up, the systems
/// taking turns so that noise on the machine falls on all of them alike.
pub fn run(
    client: &reqwest::blocking::Client,
    servers: &[Server],
    cases: &[Case],
    runs: usize,
) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    for case in cases {
        let mut times: [Vec<f64>; 3] = Default::default();
        let mut answers: [Option<Answer>; 3] = Default::default();
        let mut errors: [Option<String>; 3] = Default::default();
        for run in 0..=runs {
            for server in servers {
                let k = index(server.kind);
                if errors[k].is_some() {
                    continue;
                }
                let t0 = Instant::now();
                match ask(client, server, case) {
                    Ok(answer) => {
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        if run > 0 {
                            times[k].push(ms);
                        }
                        answers[k] = Some(answer);
                    }
                    Err(e) => errors[k] = Some(format!("{e:#}")),
                }
            }
        }
        let median_ms = [0, 1, 2].map(|k| {
            let t = &mut times[k];
            t.sort_by(f64::total_cmp);
            (errors[k].is_none() && !t.is_empty()).then(|| t[t.len() / 2])
        });
        let [c, p, v] = [0, 1, 2].map(|k| answers[k].as_ref());
        let (series, points) = p.map_or((0, 0), |a| {
            (a.len(), a.values().map(Vec::len).sum::<usize>())
        });
        let difference = match (c, p) {
            (Some(c), Some(p)) => first_difference(c, p),
            _ => Some("no answer to compare".into()),
        };
        let equal = |a: Option<&Answer>, b: Option<&Answer>| match (a, b) {
            (Some(a), Some(b)) => first_difference(a, b).is_none(),
            _ => false,
        };
        out.push(Outcome {
            case: case.clone(),
            median_ms,
            errors,
            series,
            points,
            cairn_equals_prometheus: difference.is_none(),
            cairn_equals_victoriametrics: equal(c, v),
            prometheus_equals_victoriametrics: equal(p, v),
            difference,
        });
    }
    Ok(out)
}

pub fn index(kind: Kind) -> usize {
    match kind {
        Kind::Cairn => 0,
        Kind::Prometheus => 1,
        Kind::VictoriaMetrics => 2,
    }
}

/// An answer: each series' labels (canonical text) to its points.
type Answer = BTreeMap<String, Vec<(f64, f64)>>;

fn ask(client: &reqwest::blocking::Client, server: &Server, case: &Case) -> Result<Answer> {
    let mut params = vec![("query", case.expr.clone())];
    let path = match (case.start, case.step) {
        (Some(start), Some(step)) => {
            params.push(("start", start.to_string()));
            params.push(("end", case.end.to_string()));
            params.push(("step", step.to_string()));
            "query_range"
        }
        _ => {
            params.push(("time", case.end.to_string()));
            "query"
        }
    };
    let body: Value = client
        .get(format!("{}/api/v1/{path}", server.base))
        .query(&params)
        .send()?
        .json()
        .context("answer is not JSON")?;
    if body["status"] != "success" {
        bail!(
            "{}",
            body["error"].as_str().unwrap_or("error without a message")
        );
    }
    parse_answer(&body["data"])
}

/// Reads a `data` object of any result type into series → points.
fn parse_answer(data: &Value) -> Result<Answer> {
    let mut out = Answer::new();
    let result = &data["result"];
    if data["resultType"] == "scalar" {
        out.insert(String::new(), vec![point(result)?]);
        return Ok(out);
    }
    for series in result.as_array().context("result is not a list")? {
        let labels: BTreeMap<&str, &str> = series["metric"]
            .as_object()
            .context("series without metric")?
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
            .collect();
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let points = if let Some(values) = series["values"].as_array() {
            values.iter().map(point).collect::<Result<Vec<_>>>()?
        } else {
            vec![point(&series["value"])?]
        };
        out.insert(key, points);
    }
    Ok(out)
}

fn point(p: &Value) -> Result<(f64, f64)> {
    let t = p[0].as_f64().context("point without a timestamp")?;
    let v = p[1]
        .as_str()
        .context("point without a value string")?
        .parse::<f64>()
        .context("value is not a float")?;
    Ok((t, v))
}

fn first_difference(a: &Answer, b: &Answer) -> Option<String> {
    if a.len() != b.len() || a.keys().ne(b.keys()) {
        let only_a = a.keys().find(|k| !b.contains_key(*k));
        let only_b = b.keys().find(|k| !a.contains_key(*k));
        return Some(format!(
            "{} vs {} series; first only in one: {:?} / {:?}",
            a.len(),
            b.len(),
            only_a,
            only_b
        ));
    }
    for (key, pa) in a {
        let pb = &b[key];
        if pa.len() != pb.len() {
            return Some(format!("{{{key}}}: {} vs {} points", pa.len(), pb.len()));
        }
        for ((ta, va), (tb, vb)) in pa.iter().zip(pb) {
            let close = va == vb
                || (va.is_nan() && vb.is_nan())
                || (va - vb).abs() <= TOLERANCE * va.abs().max(vb.abs());
            if ta != tb || !close {
                return Some(format!("{{{key}}}: ({ta}, {va}) vs ({tb}, {vb})"));
            }
        }
    }
    None
}

// Self-checks, run by `cargo test --all-targets` (see main.rs).
pub fn self_check() -> Result<usize> {
    let all = cases(1_700_000_100);
    anyhow::ensure!(all.len() == 20, "20 cases, got {}", all.len());
    anyhow::ensure!(
        all.iter()
            .all(|c| c.start.is_none_or(|s| (c.end - s) % 300 == 0)),
        "ranges are whole steps"
    );
    let a = parse_answer(&serde_json::json!({
        "resultType": "vector",
        "result": [
            {"metric": {"b": "2", "a": "1"}, "value": [1.5, "10"]},
            {"metric": {}, "value": [1.5, "NaN"]}
        ]
    }))?;
    let b = parse_answer(&serde_json::json!({
        "resultType": "vector",
        "result": [
            {"metric": {}, "value": [1.5, "NaN"]},
            {"metric": {"a": "1", "b": "2"}, "value": [1.5, "10.0000000001"]}
        ]
    }))?;
    anyhow::ensure!(first_difference(&a, &b).is_none(), "order and tolerance");
    let c = parse_answer(&serde_json::json!({
        "resultType": "matrix",
        "result": [{"metric": {"a": "1", "b": "2"}, "values": [[1.5, "10.1"]]},
                   {"metric": {}, "values": [[1.5, "NaN"]]}]
    }))?;
    anyhow::ensure!(first_difference(&a, &c).is_some(), "a value differs");
    let d = parse_answer(&serde_json::json!({
        "resultType": "vector",
        "result": [{"metric": {"a": "1"}, "value": [1.5, "10"]},
                   {"metric": {}, "value": [1.5, "NaN"]}]
    }))?;
    anyhow::ensure!(first_difference(&a, &d).is_some(), "labels differ");
    Ok(4)
}
