//! The synthetic service the systems scrape and the history they receive by remote write:
//! [`TargetModel`] is one instance of an HTTP service with request counters per handler,
//! method and code, a classic latency histogram per handler and a long tail of gauges.
//! Values move like a real service's: counters rise at rates that differ by four orders
//! of magnitude and drift over the day, the instance restarts now and then (all its
//! counters reset), most gauges random-walk while some hold a level for hours, histograms
//! observe a log-normal latency.
//!
//! Values are a function of the model's clock, not of who asks: [`Targets`] serves each
//! model over HTTP on its own loopback port and renders the exposition at most once per
//! wall-clock second, however many systems scrape it, so three scrapers see one service
//! and the generator stays cheap beside them.

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Instant;

/// Upper bounds of the latency buckets, seconds; the last bucket is `+Inf`.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BUCKET_LABELS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const METHODS: [&str; 2] = ["GET", "POST"];
const CODES: [&str; 3] = ["200", "404", "500"];
/// Series per handler: 6 counters and a histogram of 12 buckets, `_sum` and `_count`.
const SERIES_PER_HANDLER: usize = METHODS.len() * CODES.len() + BUCKET_LABELS.len() + 2;
/// On average one restart per instance per hour.
const RESTARTS_PER_SECOND: f64 = 1.0 / 3600.0;
/// A level gauge changes about four times a day.
const LEVEL_CHANGES_PER_SECOND: f64 = 4.0 / 86_400.0;

/// A small, fast, seedable generator (SplitMix64): the harness needs reproducible
/// streams, not cryptographic ones.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A non-negative integer with mean about `mean`, spread like arrivals.
    fn count(&mut self, mean: f64) -> f64 {
        (mean * (0.5 + self.unit()) + self.unit()).floor()
    }
}

struct Counter {
    value: f64,
    rate: f64,
    period: f64,
    phase: f64,
}

struct Histogram {
    rate: f64,
    /// Probability of an observation falling in each bucket (not cumulative).
    p: [f64; 12],
    /// A typical observation in each bucket, for `_sum`.
    typical: [f64; 12],
    cumulative: [f64; 12],
    sum: f64,
}

struct Gauge {
    value: f64,
    step: f64,
    kind: GaugeKind,
}

#[derive(Clone, Copy)]
enum GaugeKind {
    Whole,
    Fraction,
    Level,
}

/// One instance of the synthetic service. Series are numbered: counters first, then each
/// handler's 12 buckets, `_sum` and `_count`, then the gauges.
pub struct TargetModel {
    rng: Rng,
    clock: f64,
    counters: Vec<Counter>,
    histograms: Vec<Histogram>,
    gauges: Vec<Gauge>,
    /// Each series' labels, `__name__` first, the rest sorted by name.
    labels: Vec<Vec<(&'static str, String)>>,
    /// Each series' exposition line up to the value (`name{labels} `), back to back.
    prefixes: Vec<u8>,
    prefix_ends: Vec<usize>,
}

impl TargetModel {
    /// A service with about `series` series (at least one handler's worth); `seed`
    /// makes each instance different and every run the same.
    pub fn new(seed: u64, series: usize) -> TargetModel {
        let mut rng = Rng::new(seed);
        let handlers = (series / 50).max(1);
        let gauges = series.saturating_sub(handlers * SERIES_PER_HANDLER);
        let mut m = TargetModel {
            rng: rng.clone(),
            clock: 0.0,
            counters: Vec::new(),
            histograms: Vec::new(),
            gauges: Vec::new(),
            labels: Vec::new(),
            prefixes: Vec::new(),
            prefix_ends: Vec::new(),
        };
        for h in 0..handlers {
            for method in METHODS {
                for code in CODES {
                    // Errors are rarer than successes; rates span 0.01/s to 100/s.
                    let scale = match code {
                        "200" => 1.0,
                        "404" => 0.05,
                        _ => 0.01,
                    };
                    m.counters.push(Counter {
                        value: 0.0,
                        rate: scale * 10f64.powf(rng.unit() * 4.0 - 2.0),
                        period: 600.0 + rng.unit() * 6600.0,
                        phase: rng.unit() * std::f64::consts::TAU,
                    });
                    m.labels.push(vec![
                        ("__name__", "app_http_requests_total".into()),
                        ("code", code.into()),
                        ("handler", format!("/api/v1/h{h}")),
                        ("method", method.into()),
                    ]);
                }
            }
        }
        for h in 0..handlers {
            let median = 0.01 * 2f64.powf(rng.unit() * 5.0);
            let sigma = 0.6 + rng.unit() * 0.6;
            m.histograms.push(Histogram::log_normal(
                10f64.powf(rng.unit() * 2.5 - 1.0),
                median,
                sigma,
            ));
            let handler = format!("/api/v1/h{h}");
            for le in BUCKET_LABELS {
                m.labels.push(vec![
                    ("__name__", "app_request_duration_seconds_bucket".into()),
                    ("handler", handler.clone()),
                    ("le", le.into()),
                ]);
            }
            for name in [
                "app_request_duration_seconds_sum",
                "app_request_duration_seconds_count",
            ] {
                m.labels.push(vec![
                    ("__name__", name.into()),
                    ("handler", handler.clone()),
                ]);
            }
        }
        for i in 0..gauges {
            // Half walk in whole steps (queue depths, connections), a fifth in fractions
            // (temperatures, load), the rest hold a level that changes a few times a day
            // (limits, sizes), as a real exporter's gauges do.
            let kind = match i % 10 {
                0..=4 => GaugeKind::Whole,
                5 | 6 => GaugeKind::Fraction,
                _ => GaugeKind::Level,
            };
            m.gauges.push(Gauge {
                value: match kind {
                    GaugeKind::Fraction => round3(20.0 + rng.unit() * 50.0),
                    _ => (rng.unit() * 100.0).floor(),
                },
                step: match kind {
                    GaugeKind::Fraction => 0.05 + rng.unit() * 0.5,
                    _ => 1.0 + (rng.unit() * 10.0).floor(),
                },
                kind,
            });
            m.labels.push(vec![
                ("__name__", "app_queue_depth".into()),
                ("queue", format!("q{i}")),
                ("shard", (i % 8).to_string()),
            ]);
        }
        m.rng = rng;
        for labels in &m.labels {
            write_prefix(labels, &mut m.prefixes);
            m.prefix_ends.push(m.prefixes.len());
        }
        m
    }

    pub fn series_count(&self) -> usize {
        self.labels.len()
    }

    /// Series `i`'s labels: `__name__` first, the rest sorted by name.
    pub fn labels(&self, i: usize) -> &[(&'static str, String)] {
        &self.labels[i]
    }

    /// Moves the service's clock on by `dt` seconds.
    pub fn advance(&mut self, dt: f64) {
        let rng = &mut self.rng;
        if rng.unit() < RESTARTS_PER_SECOND * dt {
            for c in &mut self.counters {
                c.value = 0.0;
            }
            for h in &mut self.histograms {
                h.cumulative = [0.0; 12];
                h.sum = 0.0;
            }
        }
        self.clock += dt;
        let t = self.clock;
        for c in &mut self.counters {
            let drift = 1.0 + 0.5 * (t / c.period * std::f64::consts::TAU + c.phase).sin();
            c.value += rng.count(c.rate * drift * dt);
        }
        for h in &mut self.histograms {
            let n = rng.count(h.rate * dt);
            let mut below = 0.0;
            for i in 0..12 {
                let d = (n * h.p[i] + rng.unit()).floor();
                below += d;
                h.cumulative[i] += below;
                h.sum += d * h.typical[i] * (0.8 + 0.4 * rng.unit());
            }
            h.sum = round3(h.sum);
        }
        let root = dt.sqrt();
        for g in &mut self.gauges {
            let walk = (rng.unit() * 2.0 - 1.0) * g.step * root;
            g.value = match g.kind {
                GaugeKind::Whole => (g.value + walk.round()).max(0.0),
                GaugeKind::Fraction => round3((g.value + walk).max(0.0)),
                GaugeKind::Level if rng.unit() < LEVEL_CHANGES_PER_SECOND * dt => {
                    (rng.unit() * 100.0).floor() * g.step
                }
                GaugeKind::Level => g.value,
            };
        }
    }

    /// Calls `f` with every series' index and current value, in series order.
    pub fn for_each_value(&self, mut f: impl FnMut(usize, f64)) {
        let mut i = 0;
        for c in &self.counters {
            f(i, c.value);
            i += 1;
        }
        for h in &self.histograms {
            for v in h.cumulative {
                f(i, v);
                i += 1;
            }
            f(i, h.sum);
            f(i + 1, h.cumulative[11]);
            i += 2;
        }
        for g in &self.gauges {
            f(i, g.value);
            i += 1;
        }
    }

    /// The text exposition (format 0.0.4) of the current values.
    pub fn render(&self, out: &mut Vec<u8>) {
        out.clear();
        let families = [
            (0, "app_http_requests_total", "counter", "Requests served."),
            (
                self.counters.len(),
                "app_request_duration_seconds",
                "histogram",
                "Request latency.",
            ),
            (
                self.counters.len() + self.histograms.len() * 14,
                "app_queue_depth",
                "gauge",
                "Items waiting.",
            ),
        ];
        let mut start = 0;
        self.for_each_value(|i, v| {
            for (first, name, kind, help) in families {
                if first == i {
                    out.extend_from_slice(
                        format!("# HELP {name} {help}\n# TYPE {name} {kind}\n").as_bytes(),
                    );
                }
            }
            let end = self.prefix_ends[i];
            out.extend_from_slice(&self.prefixes[start..end]);
            start = end;
            push_value(out, v);
            out.push(b'\n');
        });
    }
}

impl Histogram {
    fn log_normal(rate: f64, median: f64, sigma: f64) -> Histogram {
        // The logistic approximation of the normal CDF is close enough for a synthetic
        // service and needs no erf.
        let cdf = |x: f64| 1.0 / (1.0 + (-1.702 * (x / median).ln() / sigma).exp());
        let mut p = [0.0; 12];
        let mut typical = [0.0; 12];
        let mut below = 0.0;
        let mut lower = median / 20.0;
        for (i, upper) in BUCKETS.iter().enumerate() {
            let c = cdf(*upper);
            p[i] = c - below;
            below = c;
            typical[i] = (lower * upper).sqrt();
            lower = *upper;
        }
        p[11] = 1.0 - below;
        typical[11] = BUCKETS[10] * 2.0;
        Histogram {
            rate,
            p,
            typical,
            cumulative: [0.0; 12],
            sum: 0.0,
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn write_prefix(labels: &[(&'static str, String)], out: &mut Vec<u8>) {
    out.extend_from_slice(labels[0].1.as_bytes());
    out.push(b'{');
    for (k, (name, value)) in labels[1..].iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"} ");
}

/// Writes an integer-valued float as an integer, anything else with three decimals
/// (every value the model makes is a multiple of 0.001, so the text parses back to the
/// very float the remote-write stream carries).
fn push_value(out: &mut Vec<u8>, v: f64) {
    let milli = (v * 1000.0).round();
    if !(0.0..9e15).contains(&milli) {
        out.extend_from_slice(format!("{v}").as_bytes());
        return;
    }
    let milli = milli as u64;
    push_u64(out, milli / 1000);
    let frac = milli % 1000;
    if frac != 0 {
        out.push(b'.');
        out.push(b'0' + (frac / 100) as u8);
        out.push(b'0' + (frac / 10 % 10) as u8);
        out.push(b'0' + (frac % 10) as u8);
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// One served instance: its model and the body rendered for the current second.
struct Served {
    epoch: Instant,
    state: Mutex<ServedState>,
}

struct ServedState {
    model: TargetModel,
    second: u64,
    text: Vec<u8>,
    body: Bytes,
}

impl Served {
    /// The exposition as of now. The model moves on in whole seconds, so scrapes within
    /// one second share one rendering.
    fn body(&self) -> Bytes {
        let now = self.epoch.elapsed().as_secs();
        let mut s = self.state.lock();
        if now > s.second || s.body.is_empty() {
            let dt = (now - s.second).max(1) as f64;
            s.model.advance(dt);
            s.second = now;
            let ServedState { model, text, .. } = &mut *s;
            model.render(text);
            s.body = Bytes::copy_from_slice(&s.text);
        }
        s.body.clone()
    }
}

/// The synthetic targets, served on loopback until dropped.
pub struct Targets {
    pub ports: Vec<u16>,
    _runtime: tokio::runtime::Runtime,
}

impl Targets {
    /// Serves `n` instances of about `series` series each on ports of their own.
    pub fn serve(n: usize, series: usize) -> Result<Targets> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loadgen")
            .enable_all()
            .build()
            .context("starting the load generator's runtime")?;
        let epoch = Instant::now();
        let mut ports = Vec::with_capacity(n);
        for i in 0..n {
            let model = TargetModel::new(i as u64 + 1, series);
            let served = Arc::new(Served {
                epoch,
                state: Mutex::new(ServedState {
                    model,
                    second: 0,
                    text: Vec::new(),
                    body: Bytes::new(),
                }),
            });
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .context("binding a loopback port for a synthetic target")?;
            listener.set_nonblocking(true)?;
            ports.push(listener.local_addr()?.port());
            let app = axum::Router::new()
                .route("/metrics", axum::routing::get(metrics))
                .with_state(served);
            runtime.spawn(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, app).await {
                            eprintln!("compare: synthetic target stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("compare: synthetic target cannot listen: {e}"),
                }
            });
        }
        Ok(Targets {
            ports,
            _runtime: runtime,
        })
    }
}

async fn metrics(State(served): State<Arc<Served>>) -> impl axum::response::IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        served.body(),
    )
}

// Self-checks, run by `cargo test --all-targets` (see main.rs).
pub fn self_check() -> Result<usize> {
    let mut m = TargetModel::new(7, 2000);
    anyhow::ensure!(m.series_count() == 2000, "series {}", m.series_count());
    let mut before = Vec::new();
    m.for_each_value(|_, v| before.push(v));
    // A counter never falls except at a restart; buckets stay cumulative.
    let mut restarts = 0;
    for _ in 0..2000 {
        m.advance(15.0);
        let mut now = Vec::new();
        m.for_each_value(|_, v| now.push(v));
        let counters = m.counters.len();
        if now[..counters].iter().zip(&before).any(|(a, b)| a < b) {
            restarts += 1;
        }
        let buckets = &now[counters..counters + 12];
        anyhow::ensure!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
        anyhow::ensure!(now[counters + 13] == buckets[11], "_count is +Inf");
        before = now;
    }
    // 2000 steps of 15 s is 8.3 h: a restart or more is all but certain.
    anyhow::ensure!((1..30).contains(&restarts), "restarts: {restarts}");
    let mut text = Vec::new();
    m.render(&mut text);
    let text = String::from_utf8(text)?;
    anyhow::ensure!(text.starts_with("# HELP app_http_requests_total"), "header");
    anyhow::ensure!(
        text.lines().filter(|l| !l.starts_with('#')).count() == 2000,
        "one line per series"
    );
    anyhow::ensure!(
        text.contains("app_request_duration_seconds_bucket{handler=\"/api/v1/h0\",le=\"+Inf\"} "),
        "bucket line"
    );
    let mut out = Vec::new();
    for (v, want) in [(0.0, "0"), (12.0, "12"), (12.5, "12.500"), (0.007, "0.007")] {
        out.clear();
        push_value(&mut out, v);
        anyhow::ensure!(out == want.as_bytes(), "{v} printed as {out:?}");
    }
    Ok(4)
}
