//! Acknowledged samples survive `kill -9`: a writer remote-writes batches with increasing
//! timestamps and records which got 204; cairn is killed mid-stream and restarted on the
//! same data directory (twice), and every acknowledged sample is there exactly once, with
//! its value.

pub mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::prompb::TimeSeries;
use common::wait::ensure;
use common::{Cairn, Monitor, RemoteWriter, now_ms, wait_until};

const SERIES: usize = 10;
const SAMPLES_PER_BATCH: i64 = 20;

/// Batches acknowledged before the first kill; enough to span several WAL pages.
const ACKED_BEFORE_KILL: usize = 200;

const CONFIG: &str = "global:\n  scrape_interval: 1s\nscrape_configs: []\n";

/// The value of series `s` at `t`, so that a sample from the wrong series or time shows.
fn expected_value(base: i64, s: usize, t: i64) -> f64 {
    (t - base) as f64 + s as f64 / 4.0
}

/// Batch `index`: for each series, SAMPLES_PER_BATCH samples 1 ms apart after those of
/// batch `index - 1`.
fn batch(base: i64, index: i64) -> Vec<TimeSeries> {
    (0..SERIES)
        .map(|s| {
            let samples: Vec<(i64, f64)> = (0..SAMPLES_PER_BATCH)
                .map(|j| {
                    let t = base + index * SAMPLES_PER_BATCH + j;
                    (t, expected_value(base, s, t))
                })
                .collect();
            TimeSeries::new(
                &[("__name__", "crash_series"), ("s", &s.to_string())],
                &samples,
            )
        })
        .collect()
}

/// Writes batches from `first` on until a request fails at the transport level (the
/// server died); returns the first index not attempted. A non-204 answer from a live
/// server is a test failure.
async fn write_until_refused(
    writer: RemoteWriter,
    base: i64,
    first: i64,
    acked: Arc<Mutex<BTreeSet<i64>>>,
) -> i64 {
    let mut index = first;
    loop {
        let outcome = writer.write(batch(base, index)).await;
        index += 1;
        match outcome {
            Ok(reply) if reply.status == 204 => {
                acked.lock().expect("acked lock").insert(index - 1);
            }
            Ok(reply) => panic!(
                "batch {} answered {}: {}",
                index - 1,
                reply.status,
                reply.body
            ),
            Err(_) => return index,
        }
    }
}

/// Checks that every acknowledged batch is stored exactly once with the right values, and
/// that nothing after the last attempted batch is.
async fn verify(cairn: &Monitor, base: i64, acked: &BTreeSet<i64>, attempted: i64) {
    let end = base + attempted * SAMPLES_PER_BATCH;
    let range_s = (end - base) / 1000 + 2;
    let matrix = cairn
        .api
        .matrix(&format!("crash_series[{range_s}s]"), end)
        .await
        .unwrap_or_else(|e| panic!("query after restart: {e}\n{}", cairn.log()));
    assert_eq!(matrix.len(), SERIES, "series after restart");
    for series in &matrix {
        let s: usize = series.metric["s"].parse().expect("s label is a number");
        let times: Vec<i64> = series.samples.iter().map(|x| x.t_ms).collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "series {s}: timestamps repeat or go back (a sample stored twice?)"
        );
        for sample in &series.samples {
            let want = expected_value(base, s, sample.t_ms);
            assert_eq!(sample.f64(), want, "series {s} at {}", sample.t_ms - base);
        }
        let stored: BTreeSet<i64> = times
            .iter()
            .map(|t| (t - base) / SAMPLES_PER_BATCH)
            .collect();
        let missing: Vec<&i64> = acked.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "series {s}: acknowledged batches lost: {missing:?}"
        );
        // An unacknowledged batch (the one in flight at the kill) may be stored or not;
        // samples of batches never sent would be invented.
        let invented: Vec<&i64> = stored.iter().filter(|i| **i >= attempted).collect();
        assert!(
            invented.is_empty(),
            "series {s}: batches never sent: {invented:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_samples_survive_kill_9_exactly_once() {
    let mut cairn = Cairn::start(CONFIG).await;
    let base = now_ms() - 10 * 60_000;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));

    // First run: the writer posts back to back, so the kill lands in or between requests
    // of a live stream.
    let writer = tokio::spawn(write_until_refused(
        cairn.remote_writer(),
        base,
        0,
        Arc::clone(&acked),
    ));
    wait_until(
        Duration::from_secs(60),
        "batches to be acknowledged",
        async || {
            let count = acked.lock().expect("acked lock").len();
            ensure(count >= ACKED_BEFORE_KILL, || {
                format!("{count} acknowledged")
            })
        },
    )
    .await;
    cairn.kill9();
    let attempted = writer.await.expect("the writer task");
    cairn.restart().await;
    let snapshot = acked.lock().expect("acked lock").clone();
    verify(&cairn, base, &snapshot, attempted).await;

    // Second run: more writes on top of the replayed data, then kill and replay again.
    let writer = cairn.remote_writer();
    for index in attempted..attempted + 20 {
        let reply = writer
            .write(batch(base, index))
            .await
            .expect("write after restart");
        assert_eq!(
            reply.status, 204,
            "batch {index} after restart: {}",
            reply.body
        );
        acked.lock().expect("acked lock").insert(index);
    }
    cairn.kill9();
    cairn.restart().await;
    let snapshot = acked.lock().expect("acked lock").clone();
    verify(&cairn, base, &snapshot, attempted + 20).await;
}
