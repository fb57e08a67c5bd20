//! Config reload by SIGHUP and by POST /-/reload: a bad config is refused with the error
//! naming the file while the old config keeps scraping; a good one adds and removes
//! targets, and a target in both configs keeps its scrape rhythm without a gap.

pub mod common;

use std::time::Duration;

use common::wait::ensure;
use common::{Cairn, Exposition, Monitor, Route, now_ms, wait_until};

const PATIENCE: Duration = Duration::from_secs(30);

/// Consecutive scrapes of a 1 s interval may drift apart by scheduling jitter; a missed
/// scrape makes a 2 s hole.
const MAX_SCRAPE_SPACING_MS: i64 = 1800;

fn config(steady: &str, churn: &str) -> String {
    format!(
        "\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: steady
    static_configs: [{{targets: ['{steady}']}}]
  - job_name: churn
    static_configs: [{{targets: ['{churn}']}}]
"
    )
}

/// YAML that does not parse: the list is never closed.
const BROKEN: &str = "global:\n  scrape_interval: 1s\nscrape_configs: [\n  - job_name: x\n";

async fn reload_successful(cairn: &Monitor) -> Result<f64, String> {
    cairn
        .self_metric_value("config_last_reload_successful")
        .await
}

/// The timestamp of the newest `up` sample of the steady job.
async fn newest_steady_scrape(cairn: &Monitor) -> Result<i64, String> {
    let m = cairn
        .api
        .matrix(r#"up{job="steady"}[10s]"#, now_ms())
        .await?;
    m.first()
        .and_then(|s| s.samples.last())
        .map(|s| s.t_ms)
        .ok_or_else(|| "no up{job=\"steady\"} yet".to_owned())
}

async fn wait_for_newer_scrape(cairn: &Monitor, what: &str) {
    let before = newest_steady_scrape(cairn)
        .await
        .expect("steady is scraped");
    wait_until(PATIENCE, what, async || {
        let latest = newest_steady_scrape(cairn).await?;
        ensure(latest > before, || {
            format!("newest steady scrape still at {latest}")
        })
    })
    .await;
}

async fn churn_instances(cairn: &Monitor) -> Result<Vec<String>, String> {
    let targets = cairn.api.targets().await?;
    Ok(targets
        .into_iter()
        .filter(|t| t.scrape_pool == "churn")
        .map(|t| t.labels["instance"].clone())
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reload_keeps_the_old_config_and_good_reload_swaps_targets() {
    let steady = Exposition::serving("/metrics", Route::text("steady_metric 1\n")).await;
    let old = Exposition::serving("/metrics", Route::text("old_metric 1\n")).await;
    let new = Exposition::serving("/metrics", Route::text("new_metric 1\n")).await;
    let cairn = Cairn::start(&config(&steady.addr(), &old.addr())).await;
    let started = now_ms();

    wait_until(PATIENCE, "both targets up", async || {
        let up = cairn.api.vector("up", now_ms()).await?;
        let ones = up.iter().filter(|s| s.sample.value == "1").count();
        ensure(ones == 2, || format!("{up:?}"))
    })
    .await;
    assert_eq!(reload_successful(&cairn).await, Ok(1.0));

    // SIGHUP with a broken file: refused, reported in /metrics, scraping goes on.
    cairn.write_config(BROKEN);
    cairn.sighup();
    wait_until(
        PATIENCE,
        "the failed SIGHUP reload to show in /metrics",
        async || {
            let ok = reload_successful(&cairn).await?;
            ensure(ok == 0.0, || {
                format!("config_last_reload_successful is {ok}")
            })
        },
    )
    .await;
    wait_for_newer_scrape(&cairn, "steady scrapes after the bad SIGHUP").await;

    // POST /-/reload with the same file: 500 with the error, naming the file.
    let reply = cairn.reload().await;
    assert_eq!(reply.status, 500, "bad reload: {}", reply.body);
    let path = cairn.config_path().display().to_string();
    assert!(
        reply.body.contains(&path),
        "the error names {path}: {}",
        reply.body
    );
    assert_eq!(reload_successful(&cairn).await, Ok(0.0));
    let runtime = cairn
        .api
        .get("/api/v1/status/runtimeinfo", &[])
        .await
        .expect("runtimeinfo");
    let runtime = runtime.success_data().expect("runtimeinfo data");
    assert_eq!(runtime["reloadConfigSuccess"], false, "{runtime}");
    assert_eq!(
        churn_instances(&cairn).await,
        Ok(vec![old.addr()]),
        "old config still runs"
    );
    wait_for_newer_scrape(&cairn, "steady scrapes after the bad POST reload").await;

    // A good config: `old` goes, `new` comes, `steady` is untouched.
    cairn.write_config(&config(&steady.addr(), &new.addr()));
    let reply = cairn.reload().await;
    assert_eq!(reply.status, 200, "good reload: {}", reply.body);
    assert_eq!(reload_successful(&cairn).await, Ok(1.0));
    wait_until(PATIENCE, "churn to hold only the new target", async || {
        let instances = churn_instances(&cairn).await?;
        ensure(instances == vec![new.addr()], || {
            format!("churn targets: {instances:?}")
        })
    })
    .await;
    wait_until(PATIENCE, "new_metric scraped", async || {
        let v = cairn.api.vector("new_metric", now_ms()).await?;
        ensure(v.len() == 1, || format!("{v:?}"))
    })
    .await;
    wait_for_newer_scrape(&cairn, "steady scrapes after the good reload").await;

    // Every steady scrape since the start, across three reloads: no hole. cairn applies
    // reloads within a second, so first let enough scrapes accumulate to judge spacing.
    wait_until(PATIENCE, "five steady scrapes", async || {
        let window_s = (now_ms() - started) / 1000 + 2;
        let m = cairn
            .api
            .matrix(&format!(r#"up{{job="steady"}}[{window_s}s]"#), now_ms())
            .await?;
        let n = m.first().map(|s| s.samples.len()).unwrap_or(0);
        ensure(n >= 5, || format!("{n} steady scrapes so far"))
    })
    .await;
    let now = now_ms();
    let window_s = (now - started) / 1000 + 2;
    let history = cairn
        .api
        .matrix(&format!(r#"up{{job="steady"}}[{window_s}s]"#), now)
        .await
        .expect("steady history");
    assert_eq!(history.len(), 1, "one steady series: {history:?}");
    let samples = &history[0].samples;
    let times: Vec<i64> = samples.iter().map(|s| s.t_ms).collect();
    let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(times.len() >= 5, "steady was scraped {} times", times.len());
    assert!(
        widest <= MAX_SCRAPE_SPACING_MS,
        "a {widest} ms hole in steady's scrapes: {times:?}"
    );
    assert!(samples.iter().all(|s| s.value == "1"), "{samples:?}");
}
