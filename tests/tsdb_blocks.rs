//! The head's life on disk, through the real binary: 14 hours of samples with explicit
//! timestamps are remote-written, answers recorded, then the background maintenance
//! cuts blocks from the head, truncates it, checkpoints the WAL and compacts blocks —
//! and every answer stays the same, also after a restart. Then `kill -9` at exact crash
//! points (mid block write, mid compaction, between a compaction's rename and the
//! deletion of its parents; `CAIRN_TEST_PAUSE_AT` parks the maintenance thread there):
//! each restart loses no sample, doubles none, and leaves no temporary directory.

pub mod common;

use common::prompb::TimeSeries;
use common::wait::ensure;
use common::{Cairn, Monitor, now_ms, wait_until};
use std::path::Path;
use std::time::Duration;

const CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";
const HOUR: i64 = 3_600_000;
const STEP: i64 = 30_000;
const SERIES: usize = 20;

/// Counter `i` at `t`: grows at a rate of its own and resets every few hours.
fn counter(i: usize, t: i64, base: i64) -> f64 {
    let period = 3 * HOUR + i as i64 * 420_000;
    let since_reset = (t - base).rem_euclid(period);
    (since_reset / 1000) as f64 * (0.5 + i as f64 / 8.0)
}

/// Gauge `i` at `t`: a slow wave with a per-series phase.
fn gauge(i: usize, t: i64) -> f64 {
    ((t / STEP) as f64 / 40.0 + i as f64).sin() * 100.0 + i as f64
}

/// Remote-writes `[from, to)` for every series, 30 minutes per request.
async fn write_history(cairn: &Monitor, base: i64, from: i64, to: i64) {
    let writer = cairn.remote_writer();
    let mut start = from;
    while start < to {
        let end = (start + HOUR / 2).min(to);
        let ts: Vec<i64> = (start..end).step_by(STEP as usize).collect();
        let mut batch = Vec::new();
        for i in 0..SERIES {
            let id = format!("{i:02}");
            let c: Vec<(i64, f64)> = ts.iter().map(|&t| (t, counter(i, t, base))).collect();
            let g: Vec<(i64, f64)> = ts.iter().map(|&t| (t, gauge(i, t))).collect();
            batch.push(TimeSeries::new(
                &[
                    ("__name__", "blk_requests_total"),
                    ("i", &id),
                    ("job", "blk"),
                ],
                &c,
            ));
            batch.push(TimeSeries::new(
                &[("__name__", "blk_temperature"), ("i", &id), ("job", "blk")],
                &g,
            ));
        }
        let reply = writer.write(batch).await.expect("remote write");
        assert_eq!(reply.status, 204, "remote write: {}", reply.body);
        start = end;
    }
}

/// The answers compared before and after: raw JSON of each query.
async fn answers(cairn: &Monitor, base: i64, end: i64) -> Vec<(String, String)> {
    let exprs = [
        "sum by (job) (rate(blk_requests_total[10m]))",
        "max_over_time(blk_temperature[1h])",
        "blk_temperature",
        "increase(blk_requests_total[3h])",
    ];
    let mut out = Vec::new();
    for e in exprs {
        let (s, t, st) = (
            common::api_time(base),
            common::api_time(end),
            "900".to_string(),
        );
        let data = cairn
            .api
            .get(
                "/api/v1/query_range",
                &[("query", e), ("start", &s), ("end", &t), ("step", &st)],
            )
            .await
            .and_then(|r| r.success_data())
            .unwrap_or_else(|err| panic!("{e}: {err}"));
        out.push((e.to_string(), data.to_string()));
    }
    for e in [
        "count_over_time(blk_requests_total[15h])",
        "count_over_time(blk_temperature[15h])",
        "sum_over_time(blk_temperature[15h])",
    ] {
        let data = cairn
            .api
            .query_data(e, end)
            .await
            .unwrap_or_else(|err| panic!("{e}: {err}"));
        out.push((e.to_string(), data.to_string()));
    }
    let values = cairn
        .api
        .label_values("i", &[])
        .await
        .expect("label values");
    out.push(("label values i".into(), values.join(",")));
    out
}

fn tmp_dirs(data: &Path) -> Vec<String> {
    std::fs::read_dir(data)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn block_dirs(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("meta.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// 14 h of history ending at the last full 30 s before now, and the store's answers.
async fn loaded() -> (Monitor, i64, i64, Vec<(String, String)>) {
    let cairn = Cairn::start_with(CONFIG, &["--storage.tsdb.maintenance-interval=0s"]).await;
    let end = now_ms() / STEP * STEP;
    let base = end - 14 * HOUR;
    write_history(&cairn, base, base, end + STEP).await;
    let want = answers(&cairn, base, end).await;
    assert!(want[0].1.contains("\"job\":\"blk\""), "{:?}", want[0]);
    (cairn, base, end, want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_cut_and_compacted_answer_like_the_head() {
    let (mut cairn, base, end, want) = loaded().await;
    cairn.kill9();
    cairn
        .restart_with(&["--storage.tsdb.maintenance-interval=1s"], &[])
        .await;
    wait_until(
        Duration::from_secs(120),
        "blocks cut and compacted",
        async || {
            let compactions = cairn.self_metric_value("tsdb_compactions_total").await?;
            let blocks = cairn.self_metric_value("tsdb_blocks_loaded").await?;
            let head_min = cairn.self_metric_value("tsdb_head_min_time").await?;
            // Settled: no block being written.
            let tmp = tmp_dirs(&cairn.data_dir());
            ensure(
                compactions >= 1.0
                    && blocks >= 2.0
                    && head_min as i64 >= end - 4 * HOUR
                    && tmp.is_empty(),
                || {
                    format!(
                        "compactions {compactions}, blocks {blocks}, head min {head_min}, {tmp:?}"
                    )
                },
            )
        },
    )
    .await;
    let data = cairn.data_dir();
    let checkpoints: Vec<_> = std::fs::read_dir(data.join("wal"))
        .expect("wal dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("checkpoint."))
        .collect();
    assert!(
        !checkpoints.is_empty(),
        "no WAL checkpoint after truncation"
    );

    let got = answers(&cairn, base, end).await;
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "answer changed after compaction");
    }
    // And from disk alone after a crash: blocks, checkpoint and WAL tail.
    cairn.kill9();
    cairn.restart().await;
    let again = answers(&cairn, base, end).await;
    for (w, g) in want.iter().zip(&again) {
        assert_eq!(w, g, "answer changed after restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_block_write_and_mid_compaction_loses_and_doubles_nothing() {
    let (mut cairn, base, end, want) = loaded().await;
    let data = cairn.data_dir();
    let maint = "--storage.tsdb.maintenance-interval=1s";
    let mut seen_tmp = Vec::new();
    for point in ["block-write", "compaction", "compaction-parents"] {
        cairn.kill9();
        cairn
            .restart_with(&[maint], &[("CAIRN_TEST_PAUSE_AT", point)])
            .await;
        // Open removed what the last crash left half-written.
        for t in &seen_tmp {
            assert!(!data.join(t).exists(), "{t} survived a restart");
        }
        wait_until(Duration::from_secs(120), point, async || {
            ensure(cairn.log_contains(&format!("paused at {point}")), || {
                format!("blocks {:?}", block_dirs(&data))
            })
        })
        .await;
        let tmp = tmp_dirs(&data);
        if point == "compaction-parents" {
            assert!(tmp.is_empty(), "{tmp:?}");
        } else {
            assert!(!tmp.is_empty(), "paused at {point} with no .tmp directory");
        }
        seen_tmp.extend(tmp);
        // Answers while paused are already right: nothing is served twice.
        let mid = answers(&cairn, base, end).await;
        assert_eq!(mid, want, "answers while paused at {point}");
    }
    cairn.kill9();
    cairn.restart_with(&[maint], &[]).await;
    for t in &seen_tmp {
        assert!(!data.join(t).exists(), "{t} survived a restart");
    }
    // Whether one more compaction is due now depends on where the wall-clock hour puts
    // the 2 h block boundaries; what matters is that maintenance ran after the crashes
    // and left nothing half-written.
    wait_until(
        Duration::from_secs(120),
        "maintenance to settle",
        async || {
            let rounds = cairn
                .self_metric_value("tsdb_maintenance_rounds_total")
                .await?;
            let tmp = tmp_dirs(&data);
            ensure(rounds >= 2.0 && tmp.is_empty(), || {
                format!("rounds {rounds}, tmp {tmp:?}")
            })
        },
    )
    .await;
    let got = answers(&cairn, base, end).await;
    assert_eq!(got, want, "answers after the crashes");
    // No parent left beside the block that replaced it.
    let blocks = block_dirs(&data);
    let mut sources = std::collections::BTreeMap::new();
    for b in &blocks {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join(b).join("meta.json")).expect("meta.json"),
        )
        .expect("meta.json is JSON");
        if meta["resolution"].as_i64().unwrap_or(0) != 0 {
            continue;
        }
        for s in meta["compaction"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let prev = sources.insert(s.as_str().unwrap_or("").to_string(), b.clone());
            assert!(prev.is_none(), "source {s} in two raw blocks: {blocks:?}");
        }
    }
}
