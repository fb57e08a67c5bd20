//! PromQL latency side by side with Prometheus 2.42 on the same data: both receive the
//! same remote-write stream (counters and classic histograms at 15 s), then answer
//! the same queries; the bench prints each query's median latency (request sent to
//! answer received) and the ratio cairn/Prometheus, and whether the answers agree. Only
//! under `cargo bench --bench query_side_by_side` (it starts processes); `cargo test`
//! skips it.
//!
//! Needs `prometheus` on PATH (`make test-deps`). Size: `CAIRN_BENCH_SERIES` counters
//! (default 2000) and a tenth as many 10-bucket histograms, over `CAIRN_BENCH_HOURS`
//! (default 2); the size is `CAIRN_BENCH_SERIES=10000 CAIRN_BENCH_HOURS=24`.
//! `CAIRN_BENCH_HOLD=<s>` keeps both servers up with the data that long before the
//! queries (to profile them). `CAIRN_BENCH_STEP=<s>` sets the range queries' step
//! (default 60) and `CAIRN_BENCH_RUNS` the runs per query (default 15): at the issue's
//! size a 60 s step makes `rate` answer 10k series x 1430 points (hundreds of MB of
//! JSON), so a coarser step or fewer runs keeps the bench to minutes.

use cairn::remote::prompb::{Label, Sample, TimeSeries, WriteRequest};
use prost::Message;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STEP_MS: i64 = 15_000;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_ready(client: &reqwest::blocking::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if client
            .get(format!("{base}/-/ready"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{base} did not become ready");
}

fn series(n: usize) -> Vec<(Vec<Label>, bool)> {
    let label = |n: &str, v: String| Label {
        name: n.into(),
        value: v,
    };
    let mut out = Vec::new();
    for i in 0..n {
        out.push((
            vec![
                label("__name__", "x_total".into()),
                label("instance", format!("i{}", i % 50)),
                label("job", format!("job{}", i % 10)),
                label("series", i.to_string()),
            ],
            false,
        ));
    }
    for h in 0..n / 10 {
        for le in [
            "0.005", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
        ] {
            out.push((
                vec![
                    label("__name__", "h_bucket".into()),
                    label("handler", format!("h{h}")),
                    label("le", le.into()),
                ],
                true,
            ));
        }
    }
    out
}

/// A counter-like value for series `i` at step `k`: rising at a series-specific rate;
/// histogram buckets rise more for larger `le` (the bucket index is `i % 10`).
fn value(i: usize, k: i64, bucket: bool) -> f64 {
    if bucket {
        (k * (1 + (i % 10) as i64)) as f64
    } else {
        (k * (1 + (i % 7) as i64)) as f64 + (i % 3) as f64 * 0.5
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("query_side_by_side: runs only under `cargo bench` (it starts Prometheus)");
        return;
    }
    let prometheus = which("prometheus");
    let n: usize = std::env::var("CAIRN_BENCH_SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let hours: i64 = std::env::var("CAIRN_BENCH_HOURS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let step_s: i64 = std::env::var("CAIRN_BENCH_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(60);
    let runs: usize = std::env::var("CAIRN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(15);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1m\nscrape_configs: []\n").expect("config");
    let (pp, cp) = (free_port(), free_port());
    let _prom = Proc(
        Command::new(prometheus)
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--storage.tsdb.path={}", dir.path().join("prom").display()),
                format!("--web.listen-address=127.0.0.1:{pp}"),
                "--web.enable-remote-write-receiver".into(),
                "--log.level=error".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let _cairn = Proc(
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--storage.tsdb.path={}", dir.path().join("cairn").display()),
                format!("--web.listen-address=127.0.0.1:{cp}"),
                "--log.level=error".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cairn"),
    );
    cairn::httpclient::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let systems = [
        ("prometheus-2.42", format!("http://127.0.0.1:{pp}")),
        ("cairn", format!("http://127.0.0.1:{cp}")),
    ];
    for (_, base) in &systems {
        wait_ready(&client, base);
    }

    // The same stream into both: one request per scrape time, all series.
    let all = series(n);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let steps = hours * 3600 * 1000 / STEP_MS;
    let start = (now - hours * 3600 * 1000) / STEP_MS * STEP_MS;
    for k in 0..=steps {
        let t = start + k * STEP_MS;
        let req = WriteRequest {
            timeseries: all
                .iter()
                .enumerate()
                .map(|(i, (labels, bucket))| TimeSeries {
                    labels: labels.clone(),
                    samples: vec![Sample {
                        value: value(i, k, *bucket),
                        timestamp: t,
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("snappy");
        for (name, base) in &systems {
            let r = client
                .post(format!("{base}/api/v1/write"))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body.clone())
                .send()
                .expect("remote write");
            assert!(
                r.status().is_success(),
                "{name} refused remote write: {}",
                r.status()
            );
        }
    }
    let end = start + steps * STEP_MS;
    if let Some(secs) = std::env::var("CAIRN_BENCH_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        // For profiling: both servers stay up with the data for this many seconds.
        println!(
            "holding {secs} s: prometheus {} cairn {} end {}",
            systems[0].1,
            systems[1].1,
            end as f64 / 1000.0
        );
        std::thread::sleep(Duration::from_secs(secs));
    }

    let queries = [
        "rate(x_total[5m])",
        "sum by (job) (rate(x_total[5m]))",
        "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        "topk(10, x_total)",
    ];
    println!(
        "{n} counters + {} bucket series, {hours} h at 15 s; range step {step_s} s; median of {runs} runs",
        n
    );
    println!(
        "{:62} {:>10} {:>10} {:>7} {:>6}",
        "query", "prom ms", "cairn ms", "ratio", "equal"
    );
    for q in queries {
        for (kind, params) in [
            (
                "instant",
                vec![
                    ("query", q.to_string()),
                    ("time", (end as f64 / 1000.0).to_string()),
                ],
            ),
            (
                "range",
                vec![
                    ("query", q.to_string()),
                    ("start", ((start + 600_000) as f64 / 1000.0).to_string()),
                    ("end", (end as f64 / 1000.0).to_string()),
                    ("step", step_s.to_string()),
                ],
            ),
        ] {
            let path = if kind == "instant" {
                "query"
            } else {
                "query_range"
            };
            let mut medians = Vec::new();
            let mut answers = Vec::new();
            for (name, base) in &systems {
                let mut times = Vec::new();
                let mut last = serde_json::Value::Null;
                for _ in 0..runs {
                    let t0 = Instant::now();
                    let r = client
                        .get(format!("{base}/api/v1/{path}"))
                        .query(&params)
                        .send()
                        .expect("query");
                    // Latency is until the whole answer has arrived; parsing it here
                    // is the client's work, not the server's.
                    let bytes = r.bytes().expect("body");
                    times.push(t0.elapsed());
                    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                    assert_eq!(body["status"], "success", "{name} {q}: {body}");
                    last = body["data"]["result"].clone();
                }
                times.sort();
                medians.push(times[runs / 2].as_secs_f64() * 1000.0);
                answers.push(last);
            }
            let equal = same_answer(&answers[0], &answers[1]);
            println!(
                "{:62} {:>10.1} {:>10.1} {:>7.2} {:>6}",
                format!("{q} [{kind}]"),
                medians[0],
                medians[1],
                medians[1] / medians[0],
                equal
            );
        }
    }
}

/// Same series and values within a relative 1e-6 (Prometheus's runner tolerance).
fn same_answer(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let key = |s: &serde_json::Value| s["metric"].to_string();
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    let mut a = a.clone();
    let mut b = b.clone();
    a.sort_by_key(key);
    b.sort_by_key(key);
    a.iter().zip(&b).all(|(x, y)| {
        let pts = |s: &serde_json::Value| -> Vec<(f64, f64)> {
            let list = if s["values"].is_array() {
                s["values"].clone()
            } else {
                serde_json::json!([s["value"]])
            };
            list.as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap_or(f64::NAN),
                        p[1].as_str()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(f64::NAN),
                    )
                })
                .collect()
        };
        let (px, py) = (pts(x), pts(y));
        key(x) == key(y)
            && px.len() == py.len()
            && px.iter().zip(&py).all(|((t1, v1), (t2, v2))| {
                t1 == t2
                    && (v1 == v2
                        || (v1.is_nan() && v2.is_nan())
                        || ((v1 - v2).abs() <= 1e-6 * v1.abs().max(v2.abs())))
            })
    })
}

fn which(program: &str) -> String {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|c| c.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| panic!("{program} not found: run `make test-deps`"))
}
