//! `cargo bench --bench compare`: cairn beside Prometheus 2.42 and VictoriaMetrics 1.79
//! on the same load, in the same run. Three phases, each on fresh instances:
//!
//! 1. scrape: all three scrape the same synthetic targets (and the real node exporter)
//!    at the same interval for a fixed time; CPU per sample and RSS per active series from
//!    /proc, samples and series from each system's own `scrape_samples_scraped`, bytes on
//!    disk per sample after each system's flush;
//! 2. history: the same remote-write stream of 24 h of history with explicit timestamps
//!    goes to all three; bytes on disk per sample; then a fixed query set, timed, and
//!    whether the answers agree;
//! 3. remote write: each system alone, driven by several concurrent senders at
//!    saturation; acknowledged samples per second.
//!
//! It prints one table (absolute figures, ratios cairn/Prometheus and cairn/Victoria-
//! Metrics, the goal of each row and whether it is met) with a line describing the
//! machine, and writes the same as JSON. Run without `--bench` (as `cargo test
//! --all-targets` does) it only runs its self-checks, in milliseconds.
//!
//! Needs `prometheus`, `victoria-metrics` and `prometheus-node-exporter` on PATH:
//! `bash scripts/bench-deps.sh`.

mod loadgen;
mod procfs;
mod queries;
mod remote_write;
mod report;
mod systems;

use anyhow::{Context, Result};
use clap::Parser;
use report::{Goal, Row};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use systems::{Kind, NodeExporter, Programs, Server};

/// Series each scrape adds beside the target's own: up, scrape_duration_seconds,
/// scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added.
const SYNTHETIC_PER_SCRAPE: f64 = 5.0;

/// Measures cairn against Prometheus and VictoriaMetrics on the same load.
#[derive(Parser, Debug, Serialize)]
#[command(name = "compare")]
struct Args {
    /// Synthetic scrape targets (and instances in the remote-write stream).
    #[arg(long, default_value_t = 50)]
    targets: usize,
    /// Series per synthetic target.
    #[arg(long, default_value_t = 2000)]
    series: usize,
    /// Scrape interval, seconds (the same for all three).
    #[arg(long, default_value_t = 10)]
    scrape_interval: u64,
    /// Seconds of scraping measured, after two intervals of warm-up.
    #[arg(long, default_value_t = 180)]
    duration: u64,
    /// Seconds of remote write measured per system at saturation.
    #[arg(long, default_value_t = 30)]
    remote_write_seconds: u64,
    /// Concurrent remote-write senders.
    #[arg(long, default_value_t = 4)]
    remote_write_senders: usize,
    /// Samples per remote-write request.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Hours of history backfilled by remote write for the queries.
    #[arg(long, default_value_t = 24)]
    history_hours: u64,
    /// Instances in the history.
    #[arg(long, default_value_t = 10)]
    history_targets: usize,
    /// Series per instance in the history.
    #[arg(long, default_value_t = 500)]
    history_series: usize,
    /// Seconds between two samples of a series in the history.
    #[arg(long, default_value_t = 30)]
    history_step: u64,
    /// Timed runs of each query per system (after one untimed).
    #[arg(long, default_value_t = 5)]
    query_runs: usize,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/compare.json")]
    json: PathBuf,
    /// The cairn binary (default: the release build cargo bench made).
    #[arg(long)]
    cairn: Option<PathBuf>,
    /// Phases to run, comma-separated: scrape, history, remote-write.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "scrape,history,remote-write"
    )]
    phases: Vec<String>,
    /// Profile cairn with `perf` during the scrape and remote-write measurements and
    /// print its top symbols (perf's sampling costs cairn a little CPU).
    #[arg(long)]
    perf: bool,
    /// Keep the working directory (data dirs, logs, profiles) instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        match self_checks() {
            Ok(n) => println!(
                "compare: {n} self-checks passed; the comparison runs only under \
                 `cargo bench --bench compare` (it starts Prometheus and VictoriaMetrics)"
            ),
            Err(e) => {
                eprintln!("compare: self-check failed: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("compare: {e:#}");
        std::process::exit(1);
    }
}

fn self_checks() -> Result<usize> {
    Ok(procfs::self_check()?
        + loadgen::self_check()?
        + remote_write::self_check()?
        + queries::self_check()?
        + report::self_check()?)
}

fn say(msg: impl AsRef<str>) {
    eprintln!("compare: {}", msg.as_ref());
}

fn run(args: &Args) -> Result<()> {
    let began = Instant::now();
    let machine = procfs::Machine::describe();
    let cairn = args
        .cairn
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cairn")));
    let programs = Programs::find(cairn)?;
    cairn::httpclient::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .context("HTTP client")?;
    let work = tempfile::Builder::new()
        .prefix("cairn-compare-")
        .tempdir()
        .context("working directory")?;
    say(machine.line());
    for (kind, version) in &programs.versions {
        say(format!("{}: {version}", kind.name()));
    }
    let phase = |name: &str| args.phases.iter().any(|p| p == name);
    let mut notes = Vec::new();
    let scrape = if phase("scrape") {
        Some(scrape_phase(
            args,
            &programs,
            &client,
            work.path(),
            &mut notes,
        )?)
    } else {
        None
    };
    let history = if phase("history") {
        Some(history_phase(
            args,
            &programs,
            &client,
            work.path(),
            &mut notes,
        )?)
    } else {
        None
    };
    let saturation = if phase("remote-write") {
        Some(saturation_phase(
            args,
            &programs,
            &client,
            work.path(),
            &machine,
            &mut notes,
        )?)
    } else {
        None
    };

    let rows = rows(args, scrape.as_ref(), history.as_ref(), saturation.as_ref());
    let mut closing = report::shortfalls(&rows);
    closing.append(&mut notes);
    let summary = report::table(&rows);
    let detail = history.as_ref().map(|h| report::query_table(&h.queries));
    let versions: Vec<String> = programs
        .versions
        .iter()
        .map(|(k, v)| format!("{}: {v}", k.name()))
        .collect();
    let took = began.elapsed().as_secs_f64();
    println!();
    println!("{}", machine.line());
    println!("{}", versions.join("; "));
    println!("{}", size_line(args));
    println!();
    print!("{summary}");
    if let Some(d) = &detail {
        println!();
        print!("{d}");
    }
    println!();
    for n in &closing {
        println!("- {n}");
    }
    println!(
        "- took {took:.0} s; load average {:.2} at the end",
        procfs::load_average()
    );
    let profiles = [
        ("scrape", scrape.as_ref().and_then(|s| s.profile.as_ref())),
        (
            "remote write",
            saturation.as_ref().and_then(|s| s.profile.as_ref()),
        ),
    ];
    for (name, profile) in profiles {
        if let Some(p) = profile {
            println!("\ncairn's profile during {name} (perf, flat, symbols over 1%):\n{p}");
        }
    }

    let out = json!({
        "machine": machine,
        "machine_line": machine.line(),
        "versions": versions,
        "args": args,
        "size": size_line(args),
        "rows": rows,
        "scrape": scrape,
        "history": history,
        "remote_write": saturation,
        "notes": closing,
        "table": summary,
        "query_table": detail,
        "seconds": took,
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("writing {}", args.json.display()))?;
    say(format!("wrote {}", args.json.display()));
    if args.keep {
        say(format!("kept {}", work.keep().display()));
    }
    Ok(())
}

fn size_line(args: &Args) -> String {
    format!(
        "load: {} targets x {} series every {} s for {} s (+ node exporter); \
         history {} h of {} x {} series every {} s; remote write {} s per system, \
         {} senders, {} samples per request",
        args.targets,
        args.series,
        args.scrape_interval,
        args.duration,
        args.history_hours,
        args.history_targets,
        args.history_series,
        args.history_step,
        args.remote_write_seconds,
        args.remote_write_senders,
        args.batch
    )
}

/// Per-system figures, in [`Kind::ALL`]'s order.
type PerSystem<T> = [T; 3];

#[derive(Debug, Default, Clone, Serialize)]
struct ScrapeFigures {
    cpu_seconds: f64,
    /// Samples due in the measured window: active series x window / interval.
    samples: f64,
    /// Samples the system itself counted in the window (`scrape_samples_scraped`).
    samples_counted: f64,
    cpu_seconds_per_million: f64,
    active_series: f64,
    /// Average of the readings taken every 5 s over the measured window.
    rss_bytes: u64,
    rss_max_bytes: u64,
    rss_bytes_per_series: f64,
    disk_bytes: u64,
    disk_how: String,
    samples_stored: f64,
    disk_bytes_per_sample: f64,
}

#[derive(Debug, Serialize)]
struct ScrapeResult {
    systems: PerSystem<ScrapeFigures>,
    seconds: f64,
    loadgen_cpu_share: f64,
    profile: Option<String>,
}

fn scrape_phase(
    args: &Args,
    programs: &Programs,
    client: &reqwest::blocking::Client,
    work: &Path,
    notes: &mut Vec<String>,
) -> Result<ScrapeResult> {
    say(format!(
        "scrape: {} targets x {} series every {} s, {} s measured",
        args.targets, args.series, args.scrape_interval, args.duration
    ));
    let targets = loadgen::Targets::serve(args.targets, args.series)?;
    let node = NodeExporter::start(programs)?;
    let list = |ports: &[u16]| {
        ports
            .iter()
            .map(|p| format!("'127.0.0.1:{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = work.join("scrape.yml");
    let interval = args.scrape_interval;
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n\
             scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]\n\
             \x20 - job_name: node\n    static_configs:\n      - targets: [{}]\n",
            list(&targets.ports),
            list(&[node.port])
        ),
    )?;
    let started_ms = remote_write::now_ms();
    let servers = Kind::ALL
        .iter()
        .map(|k| Server::start(*k, programs, work, "scrape", Some(&config), client))
        .collect::<Result<Vec<_>>>()?;
    // Two intervals for every target to be scraped (series created) at least once.
    std::thread::sleep(Duration::from_secs(2 * interval + 5));
    let cpu0 = servers
        .iter()
        .map(|s| procfs::cpu_seconds(s.pid()))
        .collect::<Result<Vec<_>>>()?;
    let self0 = procfs::cpu_seconds(0)?;
    let t0 = Instant::now();
    let t0_ms = remote_write::now_ms();
    let profiler = if args.perf {
        Profiler::start(
            servers[0].pid(),
            &work.join("perf-scrape.data"),
            args.duration,
        )
    } else {
        None
    };
    // RSS moves with every garbage collection and head cut: average a reading every
    // 5 s over the window rather than trust one.
    let mut rss_sum = [0.0; 3];
    let mut rss_max = [0u64; 3];
    let mut readings = 0;
    let window_end = t0 + Duration::from_secs(args.duration);
    loop {
        let left = window_end.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_secs(5)));
        for (k, s) in servers.iter().enumerate() {
            let rss = procfs::rss_bytes(s.pid())?;
            rss_sum[k] += rss as f64;
            rss_max[k] = rss_max[k].max(rss);
        }
        readings += 1;
        if left <= Duration::from_secs(5) {
            break;
        }
    }
    let cpu1 = servers
        .iter()
        .map(|s| procfs::cpu_seconds(s.pid()))
        .collect::<Result<Vec<_>>>()?;
    let self1 = procfs::cpu_seconds(0)?;
    let seconds = t0.elapsed().as_secs_f64();
    let t1_ms = remote_write::now_ms();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut figures: PerSystem<ScrapeFigures> = Default::default();
    for (k, s) in servers.iter().enumerate() {
        let f = &mut figures[k];
        f.rss_bytes = (rss_sum[k] / readings as f64) as u64;
        f.rss_max_bytes = rss_max[k];
        f.cpu_seconds = cpu1[k] - cpu0[k];
        f.active_series = active_series(client, s, t1_ms)?;
        f.rss_bytes_per_series = f.rss_bytes as f64 / f.active_series;
        // Every system scrapes the same series at the same interval, so each ingests
        // series x window / interval samples; what a system counted in the window can
        // be one scrape per target off either way, depending on where its scrapes fall.
        // The count checks that nothing was missed; the steady rate divides the CPU.
        let window = (t1_ms - t0_ms) / 1000;
        f.samples_counted = scraped_samples(client, s, window, t1_ms)?;
        f.samples = f.active_series * seconds / interval as f64;
        f.cpu_seconds_per_million = f.cpu_seconds / (f.samples / 1e6);
        let scrape = f.active_series;
        if (f.samples_counted - f.samples).abs() > scrape + 0.02 * f.samples {
            notes.push(format!(
                "scrape: {} stored {:.0} samples in the window where {:.0} were due: it \
                 missed scrapes (see its log)",
                s.kind.name(),
                f.samples_counted,
                f.samples
            ));
        }
    }
    let profile = profiler.map(|p| p.finish());
    for (k, s) in servers.iter().enumerate() {
        let f = &mut figures[k];
        let (bytes, how) = s.flush(client)?;
        let now = remote_write::now_ms();
        f.disk_bytes = bytes;
        f.disk_how = how;
        f.samples_stored = scraped_samples(client, s, (now - started_ms) / 1000 + 10, now)?;
        f.disk_bytes_per_sample = bytes as f64 / f.samples_stored;
        say(format!(
            "scrape: {:16} {:.2} CPU s for {:.0} samples = {:.3} s per 1M; RSS {:.0} MiB \
             for {:.0} series; disk {} bytes ({})",
            s.kind.name(),
            f.cpu_seconds,
            f.samples,
            f.cpu_seconds_per_million,
            f.rss_bytes as f64 / (1 << 20) as f64,
            f.active_series,
            f.disk_bytes,
            f.disk_how
        ));
    }
    let loadgen_cpu_share = (self1 - self0) / seconds / cores as f64;
    notes.push(format!(
        "scrape: the load generator (in the harness) used {:.1}% of the machine's CPU while \
         the three systems scraped it; cairn's disk figure is {}",
        loadgen_cpu_share * 100.0,
        figures[0].disk_how
    ));
    drop(servers);
    drop(node);
    drop(targets);
    Ok(ScrapeResult {
        systems: figures,
        seconds,
        loadgen_cpu_share,
        profile,
    })
}

/// Samples ingested by scraping in the `window` seconds before `at_ms`, as the system
/// itself counts them: the sum of `scrape_samples_scraped` plus the synthetic series
/// each scrape adds.
fn scraped_samples(
    client: &reqwest::blocking::Client,
    s: &Server,
    window: i64,
    at_ms: i64,
) -> Result<f64> {
    let data = instant(
        client,
        s,
        &format!("scrape_samples_scraped[{window}s]"),
        at_ms,
    )?;
    let mut total = 0.0;
    for series in data["result"].as_array().context("result list")? {
        for p in series["values"].as_array().context("values")? {
            let v: f64 = p[1].as_str().context("value")?.parse()?;
            total += v + SYNTHETIC_PER_SCRAPE;
        }
    }
    Ok(total)
}

/// Series the scrapes keep active: the latest `scrape_samples_scraped` of every target
/// plus the synthetic series.
fn active_series(client: &reqwest::blocking::Client, s: &Server, at_ms: i64) -> Result<f64> {
    let data = instant(client, s, "scrape_samples_scraped", at_ms)?;
    let mut total = 0.0;
    for series in data["result"].as_array().context("result list")? {
        let v: f64 = series["value"][1].as_str().context("value")?.parse()?;
        total += v + SYNTHETIC_PER_SCRAPE;
    }
    Ok(total)
}

fn instant(
    client: &reqwest::blocking::Client,
    s: &Server,
    expr: &str,
    at_ms: i64,
) -> Result<serde_json::Value> {
    let body: serde_json::Value = client
        .get(format!("{}/api/v1/query", s.base))
        .query(&[
            ("query", expr),
            ("time", &format!("{:.3}", at_ms as f64 / 1000.0)),
        ])
        .send()?
        .json()?;
    anyhow::ensure!(
        body["status"] == "success",
        "{} answered {expr}: {body}",
        s.kind.name()
    );
    Ok(body["data"].clone())
}

#[derive(Debug, Serialize)]
struct HistoryResult {
    series: usize,
    samples_sent: u64,
    backfill: Vec<remote_write::BackfillResult>,
    disk_bytes: PerSystem<u64>,
    disk_how: PerSystem<String>,
    disk_bytes_per_sample: PerSystem<f64>,
    queries: Vec<queries::Outcome>,
}

fn history_phase(
    args: &Args,
    programs: &Programs,
    client: &reqwest::blocking::Client,
    work: &Path,
    notes: &mut Vec<String>,
) -> Result<HistoryResult> {
    let servers = Kind::ALL
        .iter()
        .map(|k| Server::start(*k, programs, work, "history", None, client))
        .collect::<Result<Vec<_>>>()?;
    let models: Vec<_> = (0..args.history_targets)
        .map(|i| loadgen::TargetModel::new(1000 + i as u64, args.history_series))
        .collect();
    let instances: Vec<String> = (0..args.history_targets)
        .map(|i| format!("10.0.{}.{}:8080", i / 250, i % 250 + 1))
        .collect();
    let table = remote_write::SeriesTable::new(&models, "app", &instances);
    // Queries are evaluated at whole seconds (`end` a multiple of 300 s); samples sit
    // 17.655 s (plus jitter) before a multiple of the step, so no sample ever falls on a
    // window's edge, where Prometheus 2.42 (closed) and 3.x (open on the left) differ.
    let end = remote_write::now_ms() / 300_000 * 300;
    let step_ms = args.history_step as i64 * 1000;
    let span_ms = args.history_hours as i64 * 3_600_000 + 900_000;
    let steps = (span_ms / step_ms) as u64;
    let start_ms = end * 1000 - 17_655 - steps as i64 * step_ms;
    say(format!(
        "history: {} series, {} h every {} s = {} samples per system",
        table.len(),
        args.history_hours,
        args.history_step,
        table.len() as u64 * (steps + 1)
    ));
    let sinks: Vec<_> = servers
        .iter()
        .map(|s| remote_write::Sink {
            name: s.kind.name().into(),
            url: format!("{}/api/v1/write", s.base),
        })
        .collect();
    let schedule = remote_write::Schedule {
        start_ms,
        step_ms,
        steps,
    };
    let backfill = remote_write::backfill(client, models, &table, &schedule, args.batch, &sinks)?;
    let samples_sent = table.len() as u64 * (steps + 1);
    for (sink, b) in sinks.iter().zip(&backfill) {
        say(format!(
            "history: {:16} acknowledged {} samples in {:.1} s ({} requests failed)",
            sink.name, b.samples_acked, b.seconds, b.requests_failed
        ));
        if let Some(e) = &b.first_error {
            notes.push(format!(
                "history: {} refused {} requests; first: {e}",
                sink.name, b.requests_failed
            ));
        }
    }
    settle_prometheus(client, &servers[1], end * 1000)?;
    let mut disk_bytes = [0; 3];
    let mut disk_how: PerSystem<String> = Default::default();
    let mut disk_bytes_per_sample = [0.0; 3];
    for (k, s) in servers.iter().enumerate() {
        let (bytes, how) = s.flush(client)?;
        disk_bytes[k] = bytes;
        disk_bytes_per_sample[k] = bytes as f64 / backfill[k].samples_acked.max(1) as f64;
        disk_how[k] = how;
    }
    let cases = queries::cases(end);
    say(format!(
        "history: {} queries x {} runs on each system",
        cases.len(),
        args.query_runs
    ));
    let outcomes = queries::run(client, &servers, &cases, args.query_runs)?;
    for o in &outcomes {
        for (k, e) in o.errors.iter().enumerate() {
            if let Some(e) = e {
                notes.push(format!(
                    "query {:?} failed on {}: {e}",
                    o.case.expr,
                    Kind::ALL[k].name()
                ));
            }
        }
        if let Some(d) = &o.difference {
            notes.push(format!(
                "query {} ({}): cairn differs from Prometheus: {d}",
                o.case.name, o.case.expr
            ));
        }
    }
    Ok(HistoryResult {
        series: table.len(),
        samples_sent,
        backfill,
        disk_bytes,
        disk_how,
        disk_bytes_per_sample,
        queries: outcomes,
    })
}

/// Waits (up to 3 minutes) until Prometheus has compacted the backfilled head into
/// blocks, as it would have in steady state, so that neither its disk figure nor its
/// query latencies catch it mid-compaction. Its compaction loop looks once a minute.
fn settle_prometheus(
    client: &reqwest::blocking::Client,
    prometheus: &Server,
    end_ms: i64,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut said = false;
    let metric = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut compactions = -1.0;
    loop {
        let text = client
            .get(format!("{}/metrics", prometheus.base))
            .send()?
            .text()?;
        let head_min = metric(&text, "prometheus_tsdb_head_min_time");
        let done = metric(&text, "prometheus_tsdb_compactions_total");
        // The head holds at most 3 h once compacted; then the blocks' own compactions
        // follow in the same pass: wait until their count stands still.
        if end_ms as f64 - head_min <= 3.5 * 3_600_000.0 && done == compactions {
            return Ok(());
        }
        compactions = done;
        if Instant::now() > deadline {
            say("history: Prometheus has not compacted its head in 3 minutes; measuring anyway");
            return Ok(());
        }
        if !said {
            say("history: waiting for Prometheus to compact the backfilled head");
            said = true;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

#[derive(Debug, Serialize)]
struct SaturationPhase {
    series: usize,
    systems: PerSystem<remote_write::SaturationResult>,
    profile: Option<String>,
}

fn saturation_phase(
    args: &Args,
    programs: &Programs,
    client: &reqwest::blocking::Client,
    work: &Path,
    machine: &procfs::Machine,
    notes: &mut Vec<String>,
) -> Result<SaturationPhase> {
    let mut systems: PerSystem<remote_write::SaturationResult> = Default::default();
    let mut profile = None;
    let mut series = 0;
    for (k, kind) in Kind::ALL.iter().enumerate() {
        let server = Server::start(*kind, programs, work, "remote-write", None, client)?;
        let models: Vec<_> = (0..args.targets)
            .map(|i| loadgen::TargetModel::new(5000 + i as u64, args.series))
            .collect();
        series = models.iter().map(|m| m.series_count()).sum();
        let instances: Vec<String> = (0..args.targets)
            .map(|i| format!("10.1.{}.{}:8080", i / 250, i % 250 + 1))
            .collect();
        say(format!(
            "remote write: {} alone, {series} series, {} senders, {} s",
            kind.name(),
            args.remote_write_senders,
            args.remote_write_seconds
        ));
        let profiler = (args.perf && *kind == Kind::Cairn)
            .then(|| {
                Profiler::start(
                    server.pid(),
                    &work.join("perf-remote-write.data"),
                    args.remote_write_seconds + 10,
                )
            })
            .flatten();
        let r = remote_write::saturate(
            client,
            models,
            &instances,
            &format!("{}/api/v1/write", server.base),
            server.pid(),
            args.remote_write_senders,
            args.batch,
            args.remote_write_seconds,
            machine.cores,
        );
        if let Some(p) = profiler {
            profile = Some(p.finish());
        }
        let r = r.with_context(|| format!("remote write to {}", kind.name()))?;
        say(format!(
            "remote write: {:16} {:.0} samples/s, {:.3} CPU s per 1M, sender {:.0}% of the \
             machine, {} requests failed",
            kind.name(),
            r.samples_per_second,
            r.server_cpu_seconds_per_million,
            r.sender_cpu_share * 100.0,
            r.requests_failed
        ));
        if let Some(e) = &r.first_error {
            notes.push(format!(
                "remote write: {} refused {} requests; first: {e}",
                kind.name(),
                r.requests_failed
            ));
        }
        systems[k] = r;
    }
    let used: Vec<String> = Kind::ALL
        .iter()
        .zip(&systems)
        .map(|(k, r)| format!("{} {:.2}", k.name(), r.server_cores_used))
        .collect();
    notes.push(format!(
        "remote write: the sender used {:.1}% of the machine's CPU while driving cairn; the \
         systems used these cores of {} while measured: {} (less than all of them with \
         an idle sender: other processes took the rest, or the system could not use them); \
         samples per CPU second is the figure that does not depend on that",
        systems[0].sender_cpu_share * 100.0,
        machine.cores,
        used.join(", ")
    ));
    Ok(SaturationPhase {
        series,
        systems,
        profile,
    })
}

fn rows(
    args: &Args,
    scrape: Option<&ScrapeResult>,
    history: Option<&HistoryResult>,
    saturation: Option<&SaturationPhase>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(s) = scrape {
        let f = |g: fn(&ScrapeFigures) -> f64| s.systems.each_ref().map(|x| Some(g(x)));
        rows.push(Row::new(
            "scrape: CPU seconds per 1M samples",
            f(|x| x.cpu_seconds_per_million),
            Some(Goal::AtMostTimesPrometheus(0.4)),
        ));
        rows.push(Row::new(
            "scrape: RSS bytes per active series",
            f(|x| x.rss_bytes_per_series),
            Some(Goal::AtMostTimesVictoriaMetrics(0.5)),
        ));
        rows.push(Row::new(
            "scrape: disk bytes per sample, after flush",
            f(|x| x.disk_bytes_per_sample),
            None,
        ));
    }
    if let Some(h) = history {
        rows.push(Row::new(
            &format!(
                "history {}h: disk bytes per sample, after flush",
                args.history_hours
            ),
            h.disk_bytes_per_sample.map(Some),
            Some(Goal::AtMostTimesVictoriaMetrics(1.0)),
        ));
        rows.push(Row::new(
            &format!("query latency, geomean of {} medians (ms)", h.queries.len()),
            report::latency_geomeans(&h.queries),
            Some(Goal::AtMostTimesPrometheus(0.5)),
        ));
        let count = |f: fn(&queries::Outcome) -> bool| {
            Some(h.queries.iter().filter(|o| f(o)).count() as f64)
        };
        rows.push(Row::new(
            &format!(
                "query answers equal to Prometheus's (of {})",
                h.queries.len()
            ),
            [
                count(|o| o.cairn_equals_prometheus),
                Some(h.queries.len() as f64),
                count(|o| o.prometheus_equals_victoriametrics),
            ],
            Some(Goal::Equal(h.queries.len() as f64)),
        ));
    }
    if let Some(r) = saturation {
        rows.push(Row::new(
            "remote write: samples/s at saturation",
            r.systems.each_ref().map(|x| Some(x.samples_per_second)),
            Some(Goal::AtLeast(2e6)),
        ));
        rows.push(Row::new(
            "remote write: CPU seconds per 1M samples",
            r.systems
                .each_ref()
                .map(|x| Some(x.server_cpu_seconds_per_million)),
            None,
        ));
        rows.push(Row::new(
            "remote write: samples per CPU second",
            r.systems
                .each_ref()
                .map(|x| Some(1e6 / x.server_cpu_seconds_per_million)),
            None,
        ));
    }
    rows
}

/// `perf record` attached to one process for a fixed time, if perf is installed.
struct Profiler {
    child: std::process::Child,
    data: PathBuf,
}

impl Profiler {
    fn start(pid: u32, data: &Path, seconds: u64) -> Option<Profiler> {
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "499", "-p", &pid.to_string(), "-o"])
            .arg(data)
            .args(["--", "sleep", &seconds.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => Some(Profiler {
                child,
                data: data.to_path_buf(),
            }),
            Err(e) => {
                say(format!("perf not started: {e}"));
                None
            }
        }
    }

    /// Waits for the recording to end and returns perf's flat profile, top symbols.
    fn finish(mut self) -> String {
        let _ = self.child.wait();
        let report = std::process::Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", "symbol"])
            .args(["--percent-limit", "1", "-i"])
            .arg(&self.data)
            .output();
        match report {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                // perf pads each line with empty columns ("-      -") to the terminal width.
                .map(|l| l.trim_end_matches([' ', '-']))
                .take(25)
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("perf report failed: {e}"),
        }
    }
}
