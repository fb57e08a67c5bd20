//! cairn as a remote-write receiver of the real Prometheus 2.42: Prometheus scrapes the
//! node exporter every second and remote-writes to cairn; for every series Prometheus
//! holds, cairn holds the same series with the same raw samples over a window both have
//! complete.

pub mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::diff::compare_maps;
use common::wait::ensure;
use common::{Cairn, Labels, Monitor, NodeExporter, Prometheus, Sample, now_ms, wait_until};

/// The compared window, ending a little before Prometheus's newest scrape so that remote
/// write (batch_send_deadline 1 s) has had time to deliver it. Its ends fall half-way
/// between two scrapes: Prometheus 2 counts a sample on the range's start, Prometheus 3
/// (and cairn) does not.
const WINDOW_S: i64 = 8;
const DELIVERY_LAG_MS: i64 = 2_500;

const EVERYTHING: &str = r#"{__name__=~".+"}"#;

fn prometheus_config(exporter: &str, cairn_write_url: &str) -> String {
    format!(
        "\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ['{exporter}']}}]
remote_write:
  - url: {cairn_write_url}
    queue_config:
      batch_send_deadline: 1s
"
    )
}

/// Series → raw samples of `{__name__=~".+"}[WINDOW_S s]` at `end_ms`.
async fn window(server: &Monitor, end_ms: i64) -> Result<BTreeMap<Labels, Vec<Sample>>, String> {
    let matrix = server
        .api
        .matrix(&format!("{EVERYTHING}[{WINDOW_S}s]"), end_ms)
        .await?;
    Ok(matrix.into_iter().map(|s| (s.metric, s.samples)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_holds_what_prometheus_remote_writes() {
    let exporter = NodeExporter::start().await;
    let cairn = Cairn::start("global:\n  scrape_interval: 1s\nscrape_configs: []\n").await;
    let prometheus = Prometheus::start(&prometheus_config(
        &exporter.addr(),
        &cairn.url("/api/v1/write"),
    ))
    .await;

    // About 15 s of scrapes.
    let newest_scrape = async || -> Result<i64, String> {
        let up = prometheus
            .api
            .matrix(r#"up{job="node"}[1m]"#, now_ms())
            .await?;
        let samples = up.first().map(|s| s.samples.as_slice()).unwrap_or_default();
        ensure(samples.len() >= 12, || {
            format!("{} scrapes so far", samples.len())
        })?;
        ensure(samples.iter().all(|s| s.value == "1"), || {
            format!("up: {samples:?}")
        })?;
        Ok(samples.last().map_or(0, |s| s.t_ms))
    };
    wait_until(
        Duration::from_secs(60),
        "Prometheus to scrape the node exporter 12 times",
        async || newest_scrape().await,
    )
    .await;

    let (series_count, sample_count) = wait_until(
        Duration::from_secs(30),
        "cairn to hold Prometheus's series and samples",
        async || {
            let end = newest_scrape().await? - DELIVERY_LAG_MS;
            let start = end - WINDOW_S * 1000;

            let as_map =
                |v: Vec<Labels>| v.into_iter().map(|l| (l, ())).collect::<BTreeMap<_, _>>();
            let want = as_map(
                prometheus
                    .api
                    .series(&[EVERYTHING], Some(start), Some(end))
                    .await?,
            );
            let got = as_map(
                cairn
                    .api
                    .series(&[EVERYTHING], Some(start), Some(end))
                    .await?,
            );
            compare_maps("series", &want, &got, 5)?;

            let want = window(&prometheus, end).await?;
            let got = window(&cairn, end).await?;
            compare_maps("raw samples", &want, &got, 5)?;
            Ok((want.len(), want.values().map(Vec::len).sum::<usize>()))
        },
    )
    .await;

    // The comparison is only worth something over a real exposition.
    assert!(series_count > 200, "only {series_count} series compared");
    assert!(
        sample_count >= series_count * (WINDOW_S as usize - 2),
        "{sample_count} samples over {series_count} series in {WINDOW_S} s"
    );
    let names: BTreeSet<String> = cairn
        .api
        .label_values("__name__", &[])
        .await
        .expect("metric names")
        .into_iter()
        .collect();
    for name in ["node_cpu_seconds_total", "up", "scrape_duration_seconds"] {
        assert!(
            names.contains(name),
            "{name} missing from cairn's metric names"
        );
    }
}
