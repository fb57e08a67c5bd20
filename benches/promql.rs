//! Benchmarks of PromQL: parse throughput over every query of the conformance suite
//! (queries/s), and instant and range evaluation of four dashboard queries over a
//! `tsdb::Db`: `x` is 10k counter series and `h_bucket` 1k classic histograms of 10
//! buckets (10k series), one day at 15 s. The range query covers the whole day at a
//! 5 min step (288 steps), the instant query its last moment.
//!
//! `cargo bench --bench promql -- --warm-up-time 1 --measurement-time 5`
//!
//! Size: `CAIRN_BENCH_SERIES` (default 10000) and `CAIRN_BENCH_HOURS` (default 24). Under
//! `cargo test --all-targets` criterion runs each bench once; then the data is 200 series
//! over one hour unless those variables say otherwise. A query the engine cannot run yet
//! is skipped with a printed note.

#[allow(dead_code)]
#[path = "../tests/promqltest/script.rs"]
mod script;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::model::Labels;
use cairn::promql::{Engine, EngineOptions, parse_expr};
use cairn::storage::Storage;
use cairn::tsdb::{Db, DbOptions};
use criterion::{Criterion, Throughput};
use script::{Command, parse_script};

const SCRAPE_MS: i64 = 15_000;
const LE: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
];

const QUERIES: [(&str, &str); 4] = [
    ("rate", "rate(x[5m])"),
    ("sum_by_job_rate", "sum by (job) (rate(x[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
    ),
    ("topk", "topk(10, x)"),
];

/// Whether criterion runs for real (`cargo bench` passes `--bench`), not once as a test.
fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every `eval` query of the suite; a few stand-ins when the suite is not beside the crate.
fn suite_queries() -> Vec<String> {
    let dir = std::env::var_os("PROMQLTEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/promqltest"));
    let mut queries = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
    {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for c in parse_script(&text).commands {
            if let Command::Eval(e) = c {
                queries.push(e.query);
            }
        }
    }
    if queries.is_empty() {
        println!(
            "note: no suite at {}; parsing stand-in queries",
            dir.display()
        );
        queries = QUERIES.iter().map(|(_, q)| q.to_string()).collect();
        queries.push(r#"http_requests_total{job="api", code!~"5.."}[5m] offset 1h"#.into());
    }
    queries
}

fn bench_parse(c: &mut Criterion) {
    let queries = suite_queries();
    let ok = queries.iter().filter(|q| parse_expr(q).is_ok()).count();
    println!("parse: {} suite queries, {ok} parse today", queries.len());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("suite_queries", |b| {
        b.iter(|| {
            for q in &queries {
                let _ = black_box(parse_expr(black_box(q)));
            }
        })
    });
    g.finish();
}

/// The database of the evaluation benches and the time range it holds.
struct Data {
    db: Db,
    _dir: tempfile::TempDir,
    end: i64,
}

/// Appends `series` counters and `series / 10` ten-bucket histograms, scrape by scrape.
fn build(series: usize, hours: usize) -> Data {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = DbOptions {
        wal_fsync_interval: Duration::from_secs(3600),
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).expect("open the database");
    let started = Instant::now();
    let mut labels = Vec::with_capacity(series * 2);
    for i in 0..series {
        labels.push(Labels::from_pairs([
            ("__name__", "x".to_string()),
            ("job", format!("job-{}", i % 10)),
            ("instance", format!("host-{i:05}:9100")),
        ]));
    }
    for i in 0..series / LE.len() {
        for le in LE {
            labels.push(Labels::from_pairs([
                ("__name__", "h_bucket".to_string()),
                ("job", format!("job-{}", i % 10)),
                ("instance", format!("host-{i:05}:9100")),
                ("le", le.to_string()),
            ]));
        }
    }
    let steps = (hours as i64 * 3_600_000 / SCRAPE_MS) as usize;
    let mut app = db.appender();
    let refs: Vec<u64> = labels
        .iter()
        .map(|l| app.append(l, 0, 0.0).expect("append"))
        .collect();
    app.commit().expect("commit");
    for step in 1..steps {
        let t = step as i64 * SCRAPE_MS;
        for (i, r) in refs.iter().enumerate() {
            // Counters: x grows by 1..7 per scrape; a histogram's bucket k holds k+1
            // times its first bucket, so buckets stay cumulative.
            let v = if i < series {
                (step * (i % 7 + 1)) as f64
            } else {
                let k = (i - series) % LE.len();
                (step * (k + 1)) as f64
            };
            app.append_ref(*r, t, v).expect("append_ref");
        }
        app.commit().expect("commit");
    }
    println!(
        "eval data: {} series x {steps} samples ({hours} h at 15 s) built in {:.1}s",
        labels.len(),
        started.elapsed().as_secs_f64()
    );
    Data {
        db,
        _dir: dir,
        end: (steps as i64 - 1) * SCRAPE_MS,
    }
}

fn bench_eval(c: &mut Criterion) {
    let (series, hours) = if full_run() { (10_000, 24) } else { (200, 1) };
    let data = build(
        env_usize("CAIRN_BENCH_SERIES", series),
        env_usize("CAIRN_BENCH_HOURS", hours).max(1),
    );
    let engine = Engine::new(EngineOptions {
        // The range benches read every sample of the day: far more than a dashboard.
        max_samples: usize::MAX,
        ..EngineOptions::default()
    });
    let step = 300_000;
    let mut g = c.benchmark_group("eval");
    g.sample_size(10);
    for (name, query) in QUERIES {
        let expr = match parse_expr(query) {
            Ok(e) => e,
            Err(e) => {
                println!("skipping eval/{name}: {query} does not parse yet: {e}");
                continue;
            }
        };
        if let Err(e) = engine.instant(&data.db, &expr, data.end) {
            println!("skipping eval/{name}: the engine cannot run {query} yet: {e}");
            continue;
        }
        let storage: &dyn Storage = &data.db;
        g.bench_function(format!("instant/{name}"), |b| {
            b.iter(|| {
                engine
                    .instant(storage, &expr, data.end)
                    .expect("instant query")
            })
        });
        g.bench_function(format!("range/{name}"), |b| {
            b.iter(|| {
                engine
                    .range(storage, &expr, 0, data.end, step)
                    .expect("range query")
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_parse(&mut c);
    bench_eval(&mut c);
    c.final_summary();
}
