//! A 7-day range query at a 1 h step with and without downsampling: the same
//! `tsdb::Db` holds 7 days of `CAIRN_BENCH_SERIES` counters (default 2000, one sample a
//! minute, resets now and then), cut into blocks, compacted and downsampled by the
//! database's own maintenance (thresholds lowered so that the whole week has 5m and 1h
//! copies). Each query runs with `max_source_resolution=raw` (every raw sample read) and
//! automatic (the engine picks 5m for a 1 h step); the bench also checks that both give
//! the same answer (rate exactly at aligned steps, sums to float rounding).
//!
//! `cargo bench --bench downsampling`; under `cargo test --all-targets` it runs once on
//! 50 series.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cairn::model::Labels;
use cairn::promql::{Engine, EngineOptions, Value, parse_expr};
use cairn::storage::Storage;
use cairn::tsdb::{Db, DbOptions};
use criterion::Criterion;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAYS: i64 = 7;

const QUERIES: [(&str, &str); 3] = [
    ("sum_rate", "sum by (job) (rate(x[1h]))"),
    ("max_over_time", "max(max_over_time(x[1h]))"),
    ("increase_6h", "sum(increase(x[6h]))"),
];

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn build(series: usize) -> (Db, tempfile::TempDir, i64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = DbOptions {
        wal_fsync_interval: Duration::from_secs(3600),
        downsample_5m_after: Duration::from_secs(3600),
        downsample_1h_after: Duration::from_secs(3 * 3600),
        ..DbOptions::default()
    };
    let db = Db::open(dir.path(), opts).expect("open the database");
    let end = DAYS * 24 * HOUR;
    let started = Instant::now();
    let mut app = db.appender();
    let mut refs = Vec::with_capacity(series);
    for i in 0..series {
        let l = Labels::from_pairs([
            ("__name__", "x".to_string()),
            ("job", format!("job-{}", i % 10)),
            ("instance", format!("host-{i:05}:9100")),
        ]);
        refs.push(app.append(&l, 0, 0.0).expect("append"));
    }
    let mut t = MINUTE;
    while t <= end {
        for (i, r) in refs.iter().enumerate() {
            // A per-series rate, and a reset every 29 h + i minutes.
            let period = 29 * HOUR + i as i64 * MINUTE;
            let v = (t % period) as f64 / 1000.0 * (1.0 + (i % 7) as f64);
            app.append_ref(*r, t, v).expect("append");
        }
        t += MINUTE;
        if t % (6 * HOUR) == 0 {
            app.commit().expect("commit");
        }
    }
    app.commit().expect("commit");
    let appended = started.elapsed();
    let round = db.maintain().expect("maintenance");
    eprintln!(
        "{series} series x {DAYS} days appended in {appended:.1?}, maintenance {:.1?}: {round:?}",
        started.elapsed() - appended
    );
    (db, dir, end)
}

fn matrix(v: Value) -> Vec<(String, Vec<(i64, f64)>)> {
    match v {
        Value::Matrix(m) => m
            .into_iter()
            .map(|(l, p)| (l.to_string(), p.into_iter().map(|s| (s.t, s.v)).collect()))
            .collect(),
        _ => Vec::new(),
    }
}

fn main() {
    let full = full_run();
    let series = if full {
        std::env::var("CAIRN_BENCH_SERIES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000)
    } else {
        50
    };
    let (db, _dir, end) = build(series);
    let engine = Engine::new(EngineOptions::default());
    let (start, step) = (12 * HOUR, HOUR);
    let mut c = Criterion::default().configure_from_args();
    if full {
        c = c
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(10));
    }
    let mut g = c.benchmark_group("7d_at_1h_step");
    for (name, q) in QUERIES {
        let expr = parse_expr(q).expect("query parses");
        let raw = engine
            .range_query_at(&db, &expr, start, end, step, Some(0))
            .expect("raw query");
        let auto = engine
            .range_query_at(&db, &expr, start, end, step, None)
            .expect("downsampled query");
        assert_eq!(raw.resolution, 0);
        assert_eq!(auto.resolution, 300_000, "{q} did not read 5m data");
        let (a, b) = (matrix(raw.value), matrix(auto.value));
        assert_eq!(a.len(), b.len(), "{q}");
        for ((la, pa), (lb, pb)) in a.iter().zip(&b) {
            assert_eq!(la, lb);
            assert_eq!(pa.len(), pb.len(), "{q} {la}");
            for (x, y) in pa.iter().zip(pb) {
                let close = x.1 == y.1 || (x.1 - y.1).abs() <= 1e-9 * x.1.abs().max(y.1.abs());
                assert!(close, "{q} {la} at {}: raw {} vs 5m {}", x.0, x.1, y.1);
            }
        }
        g.bench_function(format!("{name}/raw"), |bch| {
            bch.iter(|| {
                black_box(
                    engine
                        .range_query_at(&db, &expr, start, end, step, Some(0))
                        .expect("query"),
                )
            })
        });
        g.bench_function(format!("{name}/downsampled"), |bch| {
            bch.iter(|| {
                black_box(
                    engine
                        .range_query_at(&db, &expr, start, end, step, None)
                        .expect("query"),
                )
            })
        });
    }
    g.finish();
    c.final_summary();
}
