//! Downsampling and retention through the real binary. Four days of history (counters
//! with resets, gauges; one sample a minute) are remote-written; the background
//! maintenance cuts and compacts blocks, makes 5m copies of blocks older than 6 h and 1h
//! copies of 5m blocks older than a day (thresholds lowered by flag from 40 h / 10 d so
//! that a test can reach them).
//!
//! Downsampled answers are compared with raw answers of the same range query
//! (`max_source_resolution=raw`): with steps aligned to the resolution, sum, count, min
//! and max over time and plain selectors are exact (each window is left-open like PromQL's
//! ranges), sum and avg_over_time equal up to float rounding, and rate/increase over the
//! counter stream equal too (it keeps each window's first and last sample and both sides
//! of every reset) — across counter resets.
//!
//! Retention: per resolution by time, then by size, oldest blocks first.

pub mod common;

use common::prompb::TimeSeries;
use common::wait::ensure;
use common::{Cairn, Monitor, now_ms, wait_until};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const STEP: i64 = 60_000;
const SERIES: usize = 6;

fn counter(i: usize, t: i64) -> f64 {
    // Resets every 7 h + i*13 min, at offsets that do not line up with windows.
    let period = 7 * HOUR + i as i64 * 780_000;
    let since = t.rem_euclid(period);
    (since / 1000) as f64 * (1.0 + i as f64 / 4.0)
}

fn gauge(i: usize, t: i64) -> f64 {
    ((t / STEP) as f64 / 17.0 + i as f64).sin() * 50.0 + (t / STEP % 7) as f64
}

async fn write_history(cairn: &Monitor, from: i64, to: i64) {
    let writer = cairn.remote_writer();
    let mut start = from;
    while start < to {
        let end = (start + 4 * HOUR).min(to);
        let ts: Vec<i64> = (start..end).step_by(STEP as usize).collect();
        let mut batch = Vec::new();
        for i in 0..SERIES {
            let id = i.to_string();
            let c: Vec<(i64, f64)> = ts.iter().map(|&t| (t, counter(i, t))).collect();
            let g: Vec<(i64, f64)> = ts.iter().map(|&t| (t, gauge(i, t))).collect();
            batch.push(TimeSeries::new(&[("__name__", "ds_total"), ("i", &id)], &c));
            batch.push(TimeSeries::new(&[("__name__", "ds_gauge"), ("i", &id)], &g));
        }
        let reply = writer.write(batch).await.expect("remote write");
        assert_eq!(reply.status, 204, "{}", reply.body);
        start = end;
    }
}

/// `query_range` data: series (by label text) -> points, and the reported resolution.
async fn range(
    cairn: &Monitor,
    q: &str,
    start: i64,
    end: i64,
    step_s: i64,
    max_res: &str,
) -> (BTreeMap<String, Vec<(i64, f64)>>, i64) {
    let (s, e, st) = (
        common::api_time(start),
        common::api_time(end),
        step_s.to_string(),
    );
    let data = cairn
        .api
        .get(
            "/api/v1/query_range",
            &[
                ("query", q),
                ("start", &s),
                ("end", &e),
                ("step", &st),
                ("max_source_resolution", max_res),
            ],
        )
        .await
        .and_then(|r| r.success_data())
        .unwrap_or_else(|err| panic!("{q}: {err}"));
    let mut out = BTreeMap::new();
    for series in data["result"].as_array().into_iter().flatten() {
        let points = series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                let v: f64 = p[1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
                (t, v)
            })
            .collect();
        out.insert(series["metric"].to_string(), points);
    }
    (out, data["resolution"].as_i64().unwrap_or(0))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

async fn blocks(cairn: &Monitor) -> Vec<Value> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(cairn.data_dir())
        .expect("data dir")
        .flatten()
    {
        if !is_block(&e) {
            continue; // e.g. `<ulid>.tmp`, being written
        }
        if let Ok(bytes) = std::fs::read(e.path().join("meta.json")) {
            v.push(serde_json::from_slice::<Value>(&bytes).expect("meta.json"));
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downsampled_answers_equal_raw_answers() {
    let cairn = Cairn::start_with(
        CONFIG,
        &[
            "--storage.tsdb.maintenance-interval=1s",
            "--storage.tsdb.downsample.5m-after=6h",
            "--storage.tsdb.downsample.1h-after=1d",
        ],
    )
    .await;
    let end = now_ms() / HOUR * HOUR;
    let base = end - 4 * DAY;
    write_history(&cairn, base, end + STEP).await;
    // Settled: 5m and 1h copies exist for the old days.
    wait_until(Duration::from_secs(180), "downsampled copies", async || {
        let metas = blocks(&cairn).await;
        let res: Vec<i64> = metas
            .iter()
            .map(|m| m["resolution"].as_i64().unwrap_or(0))
            .collect();
        let n5 = res.iter().filter(|&&r| r == 300_000).count();
        let n1h = res.iter().filter(|&&r| r == HOUR).count();
        let d = cairn.self_metric_value("tsdb_downsamplings_total").await?;
        ensure(n5 >= 2 && n1h >= 1, || {
            format!("resolutions {res:?}, downsamplings {d}")
        })
    })
    .await;

    // Two days that lie wholly in downsampled blocks, at 1h steps: 5m data answers.
    let (from, to) = (base + 12 * HOUR, base + 60 * HOUR);
    for (q, tolerance) in [
        ("count_over_time(ds_gauge[1h])", 0.0),
        ("min_over_time(ds_gauge[2h])", 0.0),
        ("max_over_time(ds_total[3h])", 0.0),
        ("ds_gauge", 0.0),
        // A sum of window sums adds in another order than the sum of the samples.
        ("sum_over_time(ds_gauge[1h])", 1e-12),
        ("avg_over_time(ds_gauge[2h])", 1e-9),
        ("rate(ds_total[1h])", 1e-12),
        ("increase(ds_total[6h])", 1e-12),
        ("sum(rate(ds_total[2h]))", 1e-12),
    ] {
        let (raw, r0) = range(&cairn, q, from, to, 3600, "raw").await;
        let (down, r) = range(&cairn, q, from, to, 3600, "auto").await;
        assert_eq!((r0, r), (0, 300_000), "{q}: resolutions");
        assert!(!raw.is_empty(), "{q}: no answer");
        assert_eq!(
            down.keys().collect::<Vec<_>>(),
            raw.keys().collect::<Vec<_>>(),
            "{q}"
        );
        for (k, rp) in &raw {
            let dp = &down[k];
            assert_eq!(dp.len(), rp.len(), "{q} {k}");
            for (a, b) in rp.iter().zip(dp) {
                assert_eq!(a.0, b.0, "{q} {k}");
                assert!(
                    close(a.1, b.1, tolerance),
                    "{q} {k} at {}: raw {} vs {}",
                    a.0,
                    a.1,
                    b.1
                );
            }
        }
    }

    // 6h steps over the oldest day read the 1h copies.
    let (raw, _) = range(
        &cairn,
        "sum_over_time(ds_gauge[6h])",
        base + 6 * HOUR,
        base + 30 * HOUR,
        6 * 3600,
        "raw",
    )
    .await;
    let (down, r) = range(
        &cairn,
        "sum_over_time(ds_gauge[6h])",
        base + 6 * HOUR,
        base + 30 * HOUR,
        6 * 3600,
        "auto",
    )
    .await;
    assert_eq!(r, HOUR);
    for (k, rp) in &raw {
        for (a, b) in rp.iter().zip(&down[k]) {
            assert!(
                close(a.1, b.1, 1e-9),
                "{k} at {}: raw {} vs 1h {}",
                a.0,
                a.1,
                b.1
            );
        }
    }
    // A function that does not compose over windows reads raw data.
    let (_, r) = range(
        &cairn,
        "quantile_over_time(0.5, ds_gauge[6h])",
        from,
        to,
        6 * 3600,
        "auto",
    )
    .await;
    assert_eq!(r, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_per_resolution_then_by_size() {
    let mut cairn = Cairn::start_with(
        CONFIG,
        &[
            "--storage.tsdb.maintenance-interval=1s",
            "--storage.tsdb.downsample.5m-after=6h",
            "--storage.tsdb.downsample.1h-after=1d",
            // Blocks of at most 6 h, so that retention has whole blocks to take.
            "--storage.tsdb.max-block-duration=6h",
            "--storage.tsdb.retention.raw=1d",
            "--storage.tsdb.retention.5m=2d",
            "--storage.tsdb.retention.1h=30d",
        ],
    )
    .await;
    let end = now_ms() / HOUR * HOUR;
    let base = end - 4 * DAY;
    write_history(&cairn, base, end + STEP).await;
    let newest = |metas: &[Value]| {
        metas
            .iter()
            .map(|m| m["maxTime"].as_i64().unwrap_or(0))
            .max()
            .unwrap_or(0)
    };
    wait_until(
        Duration::from_secs(180),
        "retention per resolution",
        async || {
            let metas = blocks(&cairn).await;
            let top = newest(&metas);
            let mut oldest: BTreeMap<i64, i64> = BTreeMap::new();
            for m in &metas {
                let r = m["resolution"].as_i64().unwrap_or(0);
                let t = m["maxTime"].as_i64().unwrap_or(0);
                let e = oldest.entry(r).or_insert(t);
                *e = (*e).min(t);
            }
            let age = |r| oldest.get(&r).map(|t| top - t);
            let ok = age(0).is_some_and(|a| a < DAY)
                && age(300_000).is_some_and(|a| (DAY..2 * DAY).contains(&a))
                && age(HOUR).is_some_and(|a| a >= 2 * DAY);
            ensure(ok, || {
                format!(
                    "oldest block end behind the newest, by resolution: {:?}",
                    oldest
                        .iter()
                        .map(|(r, t)| (*r, (top - t) / HOUR))
                        .collect::<Vec<_>>()
                )
            })
        },
    )
    .await;
    let deleted = cairn
        .self_metric_value("tsdb_time_retentions_total")
        .await
        .expect("metric");
    assert!(deleted >= 1.0, "{deleted}");
    // The oldest day is still answered, from the 1h copies.
    let (old, r) = range(
        &cairn,
        "sum_over_time(ds_gauge[6h])",
        base + 6 * HOUR,
        base + 18 * HOUR,
        6 * 3600,
        "auto",
    )
    .await;
    assert_eq!(r, HOUR);
    assert_eq!(old.len(), SERIES, "{old:?}");

    // Size: half of what the blocks take now; the oldest go first.
    let metas = blocks(&cairn).await;
    let total: u64 = std::fs::read_dir(cairn.data_dir())
        .expect("data dir")
        .flatten()
        .filter(is_block)
        .map(|e| dir_bytes(&e.path()))
        .sum();
    let limit = total / 2;
    cairn.kill9();
    cairn
        .restart_with(&[&format!("--storage.tsdb.retention.size={limit}B")], &[])
        .await;
    wait_until(Duration::from_secs(60), "size retention", async || {
        let now: u64 = std::fs::read_dir(cairn.data_dir())
            .map_err(|e| e.to_string())?
            .flatten()
            .filter(is_block)
            .map(|e| dir_bytes(&e.path()))
            .sum::<u64>()
            + dir_bytes(&cairn.data_dir().join("wal"));
        ensure(now <= limit, || format!("{now} bytes > {limit}"))
    })
    .await;
    let left = blocks(&cairn).await;
    let kept_min = left
        .iter()
        .map(|m| m["maxTime"].as_i64().unwrap_or(0))
        .min()
        .unwrap_or(0);
    let gone_max = metas
        .iter()
        .filter(|m| !left.iter().any(|l| l["ulid"] == m["ulid"]))
        .map(|m| m["maxTime"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(i64::MIN);
    assert!(
        gone_max <= kept_min,
        "a newer block went before an older one"
    );
}

/// A published block directory (not one being written under `.tmp`).
fn is_block(e: &std::fs::DirEntry) -> bool {
    !e.file_name().to_string_lossy().ends_with(".tmp") && e.path().join("meta.json").exists()
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
