//! One 10k-series target end to end: parse + cache lookup + relabel (on new series) +
//! append + commit into a real on-disk database. "cold" is a target's first scrape (every
//! line resolved from labels); "steady" is every later scrape (scrape cache hits). It
//! also prints the allocations per sample of a steady scrape, counted by the allocator.

mod common;

use cairn::model::Labels;
use cairn::relabel::RelabelConfig;
use cairn::scrape::append::{AppendOptions, Limits, Scratch, append_scrape};
use cairn::scrape::cache::ScrapeCache;
use cairn::storage::Storage;
use cairn::textparse::Format;
use cairn::tsdb::{Db, DbOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::fmt::Write;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const SERIES: usize = 10_000;

fn exposition() -> Vec<u8> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter"
    );
    for i in 0..SERIES {
        let _ = writeln!(
            s,
            "http_requests_total{{method=\"{}\",code=\"{}\",handler=\"/api/v1/item/{}\",instance_id=\"{}\"}} {}",
            ["GET", "POST", "PUT", "DELETE"][i % 4],
            [200, 404, 500][i % 3],
            i / 12,
            i % 7,
            i * 3
        );
    }
    s.into_bytes()
}

fn metric_relabel() -> Vec<RelabelConfig> {
    serde_saphyr::from_str(
        "- source_labels: [__name__]\n  regex: go_.*\n  action: drop\n- regex: instance_id\n  action: labeldrop\n",
    )
    .expect("valid relabel config")
}

fn bench(c: &mut Criterion) {
    let body = exposition();
    let relabel = metric_relabel();
    let target = Labels::from_pairs([("job", "bench"), ("instance", "localhost:9100")]);
    let opts = AppendOptions {
        target_labels: &target,
        honor_labels: false,
        honor_timestamps: true,
        metric_relabel: &relabel,
        limits: Limits::default(),
    };
    let mut g = c.benchmark_group("scrape_10k_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);

    g.bench_function("cold", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = Db::open(dir.path(), DbOptions::default()).expect("open db");
                (dir, db, ScrapeCache::new(), Scratch::default())
            },
            |(dir, db, mut cache, mut scratch)| {
                cache.begin();
                let mut app = db.appender();
                append_scrape(
                    &mut cache,
                    app.as_mut(),
                    &mut scratch,
                    &body,
                    Format::Text,
                    1_000,
                    &opts,
                    &mut Default::default(),
                )
                .expect("scrape");
                app.commit().expect("commit");
                (dir, db)
            },
            criterion::BatchSize::PerIteration,
        )
    });

    // One target's later scrapes: every line is a scrape cache hit.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), DbOptions::default()).expect("open db");
    let mut cache = ScrapeCache::new();
    let mut scratch = Scratch::default();
    let mut t = 0i64;
    let mut stats = Default::default();
    let mut steady_scrape = || {
        t += 15_000;
        cache.begin();
        let mut app = db.appender();
        append_scrape(
            &mut cache,
            app.as_mut(),
            &mut scratch,
            &body,
            Format::Text,
            t,
            &opts,
            &mut stats,
        )
        .expect("scrape");
        app.commit().expect("commit");
        cache.finish(true);
    };
    g.bench_function("steady", |b| b.iter(&mut steady_scrape));
    g.finish();

    // Allocations of steady scrapes, counted outside criterion's own bookkeeping, over
    // one full chunk cycle (120 samples per series), so chunk cuts are included.
    const SCRAPES: u64 = 120;
    let before = common::allocations();
    for _ in 0..SCRAPES {
        steady_scrape();
    }
    let per_sample = (common::allocations() - before) as f64 / (SCRAPES * SERIES as u64) as f64;
    println!(
        "allocations per sample (steady scrape of {SERIES} series, parse to commit): {per_sample:.4}"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
