//! Bad targets beside a good one: a malformed exposition, a body over body_size_limit,
//! more samples than sample_limit, a target that hangs past scrape_timeout, and one that
//! answers 500. Each is down with the reason in lastError and `up` 0, nothing of its
//! scrape is stored, and the good target's samples keep arriving.

pub mod common;

use std::time::Duration;

use common::exposition::huge_body;
use common::wait::ensure;
use common::{Cairn, Exposition, Flavor, Monitor, Route, Target, now_ms, wait_until};

const PATIENCE: Duration = Duration::from_secs(30);

/// Line 3 is broken; lines 1 and 2 parse, and must not be stored either.
const MALFORMED: &str = "malformed_ok 1\nmalformed_ok2 2\nmalformed_bad{ 3\nmalformed_after 4\n";

fn limited_body() -> String {
    (0..5)
        .map(|i| format!("limited_sample{{i=\"{i}\"}} {i}\n"))
        .collect()
}

fn config(addr: &str) -> String {
    format!(
        "\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: good
    metrics_path: /good
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: malformed
    metrics_path: /malformed
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: oversized
    metrics_path: /oversized
    body_size_limit: 1MB
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: limited
    metrics_path: /limited
    sample_limit: 3
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: hanging
    metrics_path: /hanging
    scrape_timeout: 500ms
    static_configs: [{{targets: ['{addr}']}}]
  - job_name: erroring
    metrics_path: /erroring
    static_configs: [{{targets: ['{addr}']}}]
"
    )
}

/// Waits until the target of `job` has been scraped with the wanted health.
async fn wait_health(cairn: &Monitor, job: &str, health: &str) -> Target {
    wait_until(PATIENCE, &format!("job {job} to be {health}"), async || {
        let targets = cairn.api.targets().await?;
        let target = targets
            .iter()
            .find(|t| t.scrape_pool == job)
            .ok_or_else(|| format!("no target of {job} yet"))?;
        ensure(target.health == health, || format!("{target:?}"))?;
        Ok(target.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_down_with_the_reason_and_the_good_one_keeps_going() {
    let target = Exposition::start().await;
    target.set("/good", Route::text("good_metric 1\n"));
    target.set("/malformed", Route::text(MALFORMED));
    // Eight times the 1MB limit.
    target.set("/oversized", Route::text(huge_body(8 << 20)));
    target.set("/limited", Route::text(limited_body()));
    target.set(
        "/hanging",
        Route::text("hanging_metric 1\n").with_delay(Duration::from_secs(5)),
    );
    target.set(
        "/erroring",
        Route::text("erroring_metric 1\n").with_status(500),
    );
    let addr = target.addr();
    let cairn = Cairn::start(&config(&addr)).await;

    let good = wait_health(&cairn, "good", "up").await;
    assert_eq!(good.last_error, "", "{good:?}");
    assert_eq!(good.scrape_url, format!("http://{addr}/good"));

    let malformed = wait_health(&cairn, "malformed", "down").await;
    assert!(
        malformed.last_error.contains("label"),
        "says what was expected: {malformed:?}"
    );
    if cairn.flavor == Flavor::Cairn {
        // Prometheus 2.42 says only "expected label name, got \"INVALID\""; cairn also
        // says where.
        assert!(malformed.last_error.contains("line 3"), "{malformed:?}");
    }
    let oversized = wait_health(&cairn, "oversized", "down").await;
    assert!(
        oversized.last_error.contains("body size limit"),
        "{oversized:?}"
    );
    let limited = wait_health(&cairn, "limited", "down").await;
    assert!(limited.last_error.contains("sample limit"), "{limited:?}");
    let hanging = wait_health(&cairn, "hanging", "down").await;
    let error = hanging.last_error.to_lowercase();
    assert!(
        error.contains("deadline") || error.contains("timeout"),
        "{hanging:?}"
    );
    // The scrape gives up at scrape_timeout instead of waiting for the 5 s answer.
    assert!(hanging.last_scrape_duration < 2.0, "{hanging:?}");
    // Exporters that bound their own work read the timeout from this header.
    let headers = target
        .last_headers("/hanging")
        .expect("the hanging target was asked");
    let timeout = headers.get("x-prometheus-scrape-timeout-seconds");
    assert_eq!(
        timeout.and_then(|v| v.to_str().ok()),
        Some("0.5"),
        "{headers:?}"
    );
    let erroring = wait_health(&cairn, "erroring", "down").await;
    assert!(erroring.last_error.contains("500"), "{erroring:?}");
    for bad in [&malformed, &oversized, &limited, &hanging, &erroring] {
        assert!(!bad.last_scrape.is_empty(), "lastScrape is set: {bad:?}");
    }

    let up = cairn.api.vector("up", now_ms()).await.expect("up");
    let mut by_job: Vec<(String, String)> = up
        .into_iter()
        .map(|s| (s.metric["job"].clone(), s.sample.value))
        .collect();
    by_job.sort();
    let want: Vec<(String, String)> = [
        ("erroring", "0"),
        ("good", "1"),
        ("hanging", "0"),
        ("limited", "0"),
        ("malformed", "0"),
        ("oversized", "0"),
    ]
    .iter()
    .map(|(j, v)| ((*j).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(by_job, want);

    // A failed scrape is rolled back whole: not even the lines before the error stay.
    let stored = cairn
        .api
        .series(
            &[r#"{__name__=~"malformed_.*|huge_.*|limited_.*|hanging_.*|erroring_.*"}"#],
            None,
            None,
        )
        .await
        .expect("series");
    assert!(
        stored.is_empty(),
        "samples stored from failed scrapes: {stored:?}"
    );

    // The good target keeps being scraped: its newest sample moves on.
    let newest = async || -> Result<i64, String> {
        let m = cairn.api.matrix(r#"good_metric[10s]"#, now_ms()).await?;
        m.first()
            .and_then(|s| s.samples.last())
            .map(|s| s.t_ms)
            .ok_or_else(|| "no good_metric".to_owned())
    };
    let before = newest().await.expect("good_metric stored");
    wait_until(PATIENCE, "a newer good_metric sample", async || {
        let latest = newest().await?;
        ensure(latest > before, || format!("newest still at {latest}"))
    })
    .await;
}
