//! The admin API and `/api/v1/status/tsdb` through the real binary: delete_series hides
//! exactly the samples asked for, in the head and in blocks, and keeps hiding them after
//! `kill -9`; clean_tombstones rewrites the blocks without changing an answer; a snapshot
//! opens as a data directory of its own with the same answers; with the admin API off,
//! each endpoint answers 503 `unavailable` as Prometheus does.

pub mod common;

use common::prompb::TimeSeries;
use common::wait::ensure;
use common::{Cairn, Monitor, now_ms, wait_until};
use std::time::Duration;

const CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";
const HOUR: i64 = 3_600_000;
const STEP: i64 = 60_000;

async fn write(cairn: &Monitor, from: i64, to: i64) {
    let ts: Vec<i64> = (from..to).step_by(STEP as usize).collect();
    let mut batch = Vec::new();
    for i in 0..3 {
        let id = i.to_string();
        let s: Vec<(i64, f64)> = ts
            .iter()
            .map(|&t| (t, (t / STEP) as f64 + i as f64))
            .collect();
        batch.push(TimeSeries::new(&[("__name__", "adm_x"), ("i", &id)], &s));
    }
    let reply = cairn
        .remote_writer()
        .write(batch)
        .await
        .expect("remote write");
    assert_eq!(reply.status, 204, "{}", reply.body);
}

/// Samples per series over the whole history, by `i`.
async fn counts(cairn: &Monitor, at: i64) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = cairn
        .api
        .vector("count_over_time(adm_x[13h])", at)
        .await
        .expect("count_over_time")
        .into_iter()
        .map(|s| {
            (
                s.metric.get("i").cloned().unwrap_or_default(),
                s.sample.f64(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_clean_and_snapshot() {
    let mut cairn = Cairn::start_with(
        CONFIG,
        &[
            "--web.enable-admin-api",
            "--storage.tsdb.maintenance-interval=1s",
        ],
    )
    .await;
    let end = now_ms() / STEP * STEP;
    let base = end - 12 * HOUR;
    write(&cairn, base, end + STEP).await;
    wait_until(Duration::from_secs(60), "blocks cut", async || {
        let b = cairn.self_metric_value("tsdb_blocks_loaded").await?;
        ensure(b >= 2.0, || format!("{b} blocks"))
    })
    .await;
    let all = 12 * 60 + 1;
    assert_eq!(
        counts(&cairn, end).await,
        [
            ("0".into(), all as f64),
            ("1".into(), all as f64),
            ("2".into(), all as f64)
        ]
    );

    // Delete 2 h that lie in blocks and the last 30 min that lie in the head.
    let (s1, e1) = (base + HOUR, base + 3 * HOUR - STEP);
    let (s2, e2) = (end - 30 * 60_000 + STEP, end);
    for (s, e) in [(s1, e1), (s2, e2)] {
        let reply = cairn
            .api
            .post_form(
                "/api/v1/admin/tsdb/delete_series",
                &[
                    ("match[]", "adm_x{i=\"1\"}"),
                    ("start", &common::api_time(s)),
                    ("end", &common::api_time(e)),
                ],
            )
            .await
            .expect("delete_series");
        assert_eq!(reply.status, 204, "{}", reply.body);
    }
    let left = (all - 120 - 30) as f64;
    let want = vec![
        ("0".to_string(), all as f64),
        ("1".to_string(), left),
        ("2".to_string(), all as f64),
    ];
    assert_eq!(counts(&cairn, end).await, want);
    // Inside the deleted range only the lookback of the sample before it answers.
    let inside = cairn
        .api
        .query_range("adm_x{i=\"1\"}", s1, e1, 60.0)
        .await
        .expect("range");
    assert!(
        inside
            .iter()
            .all(|s| s.samples.iter().all(|p| p.t_ms < s1 + 5 * 60_000)),
        "deleted samples still answered: {inside:?}"
    );

    // Tombstones survive a crash.
    cairn.kill9();
    cairn.restart().await;
    assert_eq!(counts(&cairn, end).await, want, "after kill -9");

    let before: Vec<String> = block_ulids(&cairn);
    let reply = cairn
        .api
        .post_empty("/api/v1/admin/tsdb/clean_tombstones")
        .await
        .expect("clean_tombstones");
    assert_eq!(reply.status, 204, "{}", reply.body);
    let after = block_ulids(&cairn);
    assert_ne!(before, after, "no block was rewritten");
    assert_eq!(counts(&cairn, end).await, want, "after clean_tombstones");
    for b in &after {
        let meta: serde_json::Value = serde_json::from_slice(
            &std::fs::read(cairn.data_dir().join(b).join("meta.json")).expect("meta.json"),
        )
        .expect("meta.json is JSON");
        let n = meta["stats"]["numTombstones"].as_u64().unwrap_or(0);
        assert_eq!(n, 0, "{b} still has tombstones: {meta}");
    }

    // A snapshot is a data directory of its own.
    let reply = cairn
        .api
        .post_empty("/api/v1/admin/tsdb/snapshot")
        .await
        .expect("snapshot");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let name = reply.success_data().expect("data")["name"]
        .as_str()
        .expect("name")
        .to_string();
    let snap = cairn.data_dir().join("snapshots").join(&name);
    assert!(snap.is_dir(), "{}", snap.display());
    let copy = Cairn::start_with(
        CONFIG,
        &[
            &format!("--storage.tsdb.path={}", snap.display()),
            "--storage.tsdb.maintenance-interval=0s",
        ],
    )
    .await;
    assert_eq!(counts(&copy, end).await, want, "from the snapshot");

    // Status: the head's series and the top metric names.
    let data = cairn
        .api
        .get("/api/v1/status/tsdb", &[])
        .await
        .and_then(|r| r.success_data())
        .expect("status/tsdb");
    assert_eq!(data["headStats"]["numSeries"], 3, "{data}");
    assert_eq!(
        data["seriesCountByMetricName"][0],
        serde_json::json!({"name": "adm_x", "value": 3}),
        "{data}"
    );
    assert_eq!(
        data["labelValueCountByLabelName"][0],
        serde_json::json!({"name": "i", "value": 3}),
        "{data}"
    );
}

fn block_ulids(cairn: &Monitor) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cairn.data_dir())
        .expect("data dir")
        .flatten()
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_are_off_by_default() {
    let cairn = Cairn::start(CONFIG).await;
    for path in [
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/admin/tsdb/clean_tombstones",
        "/api/v1/admin/tsdb/delete_series",
    ] {
        let reply = cairn.api.post_empty(path).await.expect(path);
        assert_eq!(reply.status, 503, "{path}: {}", reply.body);
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON");
        assert_eq!(
            body,
            serde_json::json!({"status": "error", "errorType": "unavailable",
                "error": "admin APIs disabled"}),
            "{path}"
        );
    }
    let data = cairn
        .api
        .get("/api/v1/status/tsdb", &[("limit", "0")])
        .await
        .expect("status/tsdb");
    assert_eq!(data.status, 400, "{}", data.body);
}
