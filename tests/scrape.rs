//! Scraping end to end: cairn scrapes an in-test target with known content and the real
//! node exporter, and the API returns exactly the scraped series and values plus the
//! synthetic `up` and `scrape_*` series; staleness, metric relabelling and honor_labels
//! behave as in Prometheus.

pub mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::wait::ensure;
use common::{Cairn, Exposition, Labels, Monitor, NodeExporter, Route, labels, now_ms, wait_until};

/// Waits are bounded by this; Prometheus itself applies new targets up to 5 s late.
const PATIENCE: Duration = Duration::from_secs(30);

/// The synthetic series a scrape writes besides the target's own samples.
const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// A config with a 1 s scrape interval and the given `scrape_configs` entries (YAML).
fn config(jobs: &str) -> String {
    format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}")
}

/// A job entry scraping `targets` at `/metrics`, with `extra` YAML lines of settings.
fn job(name: &str, targets: &[&str], extra: &str) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let mut entry = format!(
        "  - job_name: {name}\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    for line in extra.lines() {
        entry.push_str(&format!("    {line}\n"));
    }
    entry
}

/// Name and labels of each element of an instant query, mapped to its value string.
async fn values_now(cairn: &Monitor, expr: &str) -> Result<BTreeMap<Labels, String>, String> {
    let vector = cairn.api.vector(expr, now_ms()).await?;
    Ok(vector
        .into_iter()
        .map(|s| (s.metric, s.sample.value))
        .collect())
}

/// Waits until `up{job=...,instance=...}` is 1.
async fn wait_up(cairn: &Monitor, job: &str, instance: &str) {
    let expr = format!(r#"up{{job="{job}",instance="{instance}"}}"#);
    wait_until(PATIENCE, &format!("{expr} == 1"), async || {
        let values = values_now(cairn, &expr).await?;
        let value = values.values().next().cloned();
        ensure(value.as_deref() == Some("1"), || {
            format!("{expr} is {values:?}")
        })
    })
    .await;
}

const KNOWN_BODY: &str = r#"# HELP known_requests_total Requests served.
# TYPE known_requests_total counter
known_requests_total{code="200",method="get"} 1027
known_requests_total{code="500",method="get"} 3
# HELP known_temperature_celsius Room temperature.
# TYPE known_temperature_celsius gauge
known_temperature_celsius 21.5
known_untyped{path="/a b"} -1.5e-3
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_series_are_exactly_the_body_plus_synthetic_series() {
    let target = Exposition::serving("/metrics", Route::text(KNOWN_BODY)).await;
    let instance = target.addr();
    let cairn = Cairn::start(&config(&job("known", &[&instance], ""))).await;
    let with_target = |pairs: &[(&str, &str)]| {
        let mut l = labels(pairs);
        l.insert("job".into(), "known".into());
        l.insert("instance".into(), instance.clone());
        l
    };

    // Two scrapes, so that scrape_series_added has both its first and a later value.
    wait_until(PATIENCE, "two scrapes of job known", async || {
        let matrix = cairn.api.matrix(r#"up{job="known"}[1m]"#, now_ms()).await?;
        let count = matrix.first().map_or(0, |s| s.samples.len());
        ensure(count >= 2, || format!("{count} samples of up: {matrix:?}"))
    })
    .await;

    // A scraper offers OpenMetrics and the text format, as Prometheus does.
    let headers = target
        .last_headers("/metrics")
        .expect("the target was scraped");
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        accept.contains("application/openmetrics-text") && accept.contains("text/plain"),
        "Accept: {accept:?}"
    );

    let series = cairn
        .api
        .series(&[r#"{job="known"}"#], None, None)
        .await
        .expect("series");
    let got: BTreeSet<Labels> = series.into_iter().collect();
    let mut want: BTreeSet<Labels> = [
        with_target(&[
            ("__name__", "known_requests_total"),
            ("code", "200"),
            ("method", "get"),
        ]),
        with_target(&[
            ("__name__", "known_requests_total"),
            ("code", "500"),
            ("method", "get"),
        ]),
        with_target(&[("__name__", "known_temperature_celsius")]),
        with_target(&[("__name__", "known_untyped"), ("path", "/a b")]),
    ]
    .into();
    want.extend(
        SYNTHETIC
            .iter()
            .map(|name| with_target(&[("__name__", name)])),
    );
    assert_eq!(got, want);

    let values = values_now(&cairn, r#"{job="known",__name__=~"known_.*"}"#)
        .await
        .expect("query");
    let printed: Vec<&str> = values.values().map(String::as_str).collect();
    // Ordered by labels: requests{200}, requests{500}, temperature, untyped.
    assert_eq!(printed, vec!["1027", "3", "21.5", "-0.0015"]);

    let synthetic = values_now(&cairn, r#"{job="known",__name__=~"up|scrape_samples_.*"}"#)
        .await
        .expect("synthetic");
    let by_name: BTreeMap<&str, &str> = synthetic
        .iter()
        .map(|(l, v)| (l["__name__"].as_str(), v.as_str()))
        .collect();
    assert_eq!(
        by_name,
        BTreeMap::from([
            ("scrape_samples_post_metric_relabeling", "4"),
            ("scrape_samples_scraped", "4"),
            ("up", "1"),
        ])
    );

    // scrape_series_added: 4 on the first scrape, 0 once the series are known.
    let added = cairn
        .api
        .matrix(r#"scrape_series_added{job="known"}[1m]"#, now_ms())
        .await
        .expect("scrape_series_added");
    let added: Vec<&str> = added
        .iter()
        .flat_map(|series| series.samples.iter().map(|s| s.value.as_str()))
        .collect();
    assert_eq!(added.first(), Some(&"4"), "{added:?}");
    assert!(added.iter().skip(1).all(|v| *v == "0"), "{added:?}");

    let duration = values_now(&cairn, r#"scrape_duration_seconds{job="known"}"#)
        .await
        .expect("duration");
    let seconds: f64 = duration
        .values()
        .next()
        .map_or(-1.0, |v| v.parse().unwrap_or(-1.0));
    assert!(
        seconds > 0.0 && seconds < 1.0,
        "scrape_duration_seconds = {seconds}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_series_and_removed_targets_go_stale() {
    let kept = Exposition::serving("/metrics", Route::text("stale_keep 1\nstale_gone 2\n")).await;
    let removed = Exposition::serving("/metrics", Route::text("stale_other 3\n")).await;
    let both = [kept.addr(), removed.addr()];
    let cairn = Cairn::start(&config(&job("stale", &[&both[0], &both[1]], ""))).await;
    wait_up(&cairn, "stale", &kept.addr()).await;
    wait_up(&cairn, "stale", &removed.addr()).await;
    wait_until(PATIENCE, "stale_gone scraped", async || {
        let v = values_now(&cairn, "stale_gone").await?;
        ensure(v.len() == 1, || format!("{v:?}"))
    })
    .await;

    // Without a staleness marker the last value would stay visible for the 5 m lookback.
    kept.set_body("/metrics", "stale_keep 1\n");
    wait_until(
        PATIENCE,
        "stale_gone to disappear after the next scrape",
        async || {
            let v = values_now(&cairn, "stale_gone").await?;
            ensure(v.is_empty(), || format!("still returned: {v:?}"))
        },
    )
    .await;
    let keep = values_now(&cairn, "stale_keep").await.expect("stale_keep");
    assert_eq!(
        keep.len(),
        1,
        "the series still in the body stays: {keep:?}"
    );

    // A target removed from the config gets staleness markers for all its series, `up` too.
    cairn.write_config(&config(&job("stale", &[&kept.addr()], "")));
    let reply = cairn.reload().await;
    assert_eq!(reply.status, 200, "reload: {}", reply.body);
    let up_removed = format!(r#"up{{instance="{}"}}"#, removed.addr());
    wait_until(
        PATIENCE,
        "the removed target's series to go stale",
        async || {
            let up = values_now(&cairn, &up_removed).await?;
            let other = values_now(&cairn, "stale_other").await?;
            ensure(up.is_empty() && other.is_empty(), || {
                format!("up: {up:?}, stale_other: {other:?}")
            })
        },
    )
    .await;
    let targets = cairn.api.targets().await.expect("targets");
    let instances: Vec<&str> = targets
        .iter()
        .map(|t| t.labels["instance"].as_str())
        .collect();
    assert_eq!(instances, vec![kept.addr().as_str()]);
    let up_kept = values_now(&cairn, &format!(r#"up{{instance="{}"}}"#, kept.addr())).await;
    assert_eq!(
        up_kept.map(|v| v.into_values().collect::<Vec<_>>()),
        Ok(vec!["1".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_relabel_configs_drop_a_series() {
    let target = Exposition::serving(
        "/metrics",
        Route::text(
            "relabel_kept{a=\"1\"} 1\nrelabel_dropped{a=\"1\"} 2\nrelabel_kept{a=\"2\"} 3\n",
        ),
    )
    .await;
    let relabel = "metric_relabel_configs:\n  - source_labels: [__name__]\n    regex: relabel_dropped\n    action: drop";
    let cairn = Cairn::start(&config(&job("relabel", &[&target.addr()], relabel))).await;
    wait_up(&cairn, "relabel", &target.addr()).await;
    wait_until(PATIENCE, "relabel_kept scraped", async || {
        let v = values_now(&cairn, "relabel_kept").await?;
        ensure(v.len() == 2, || format!("{v:?}"))
    })
    .await;

    let series = cairn
        .api
        .series(&[r#"{__name__=~"relabel_.*"}"#], None, None)
        .await
        .expect("series");
    let names: BTreeSet<&str> = series.iter().map(|l| l["__name__"].as_str()).collect();
    assert_eq!(names, BTreeSet::from(["relabel_kept"]));
    let counts = values_now(&cairn, r#"{job="relabel",__name__=~"scrape_samples_.*"}"#)
        .await
        .expect("counts");
    let by_name: BTreeMap<&str, &str> = counts
        .iter()
        .map(|(l, v)| (l["__name__"].as_str(), v.as_str()))
        .collect();
    assert_eq!(
        by_name,
        BTreeMap::from([
            ("scrape_samples_post_metric_relabeling", "2"),
            ("scrape_samples_scraped", "3")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_decides_who_wins_a_label_conflict() {
    let body = "honor_metric{job=\"from_target\",instance=\"elsewhere\",zone=\"a\"} 1\n";
    let target = Exposition::serving("/metrics", Route::text(body)).await;
    let instance = target.addr();
    let jobs = format!(
        "{}{}",
        job("honor_false", &[&instance], ""),
        job("honor_true", &[&instance], "honor_labels: true")
    );
    let cairn = Cairn::start(&config(&jobs)).await;
    wait_up(&cairn, "honor_false", &instance).await;
    wait_up(&cairn, "honor_true", &instance).await;

    let got = wait_until(PATIENCE, "honor_metric from both jobs", async || {
        let v = values_now(&cairn, "honor_metric").await?;
        ensure(v.len() == 2, || format!("{v:?}")).map(|()| v)
    })
    .await;
    let got: BTreeSet<Labels> = got.into_keys().collect();
    let want = BTreeSet::from([
        // The target's labels lose and are kept with an `exported_` prefix.
        labels(&[
            ("__name__", "honor_metric"),
            ("job", "honor_false"),
            ("instance", &instance),
            ("exported_job", "from_target"),
            ("exported_instance", "elsewhere"),
            ("zone", "a"),
        ]),
        // The target's labels win.
        labels(&[
            ("__name__", "honor_metric"),
            ("job", "from_target"),
            ("instance", "elsewhere"),
            ("zone", "a"),
        ]),
    ]);
    assert_eq!(got, want);
    // `up` always carries the target's own labels.
    let up = values_now(&cairn, r#"up{job="honor_true"}"#)
        .await
        .expect("up");
    assert_eq!(
        up.keys().next().map(|l| l["instance"].clone()),
        Some(instance)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_exporter_is_scraped() {
    let exporter = NodeExporter::start().await;
    let cairn = Cairn::start(&config(&job("node", &[&exporter.addr()], ""))).await;
    wait_up(&cairn, "node", &exporter.addr()).await;

    let cpu = wait_until(PATIENCE, "node_cpu_seconds_total", async || {
        let v = values_now(&cairn, r#"node_cpu_seconds_total{job="node"}"#).await?;
        ensure(!v.is_empty(), || "no node_cpu_seconds_total".to_owned()).map(|()| v)
    })
    .await;
    let modes: BTreeSet<&str> = cpu.keys().map(|l| l["mode"].as_str()).collect();
    assert!(
        modes.contains("idle") && modes.contains("user"),
        "modes: {modes:?}"
    );
    assert!(
        cpu.keys().all(|l| l.contains_key("cpu")),
        "every series has a cpu label"
    );
    assert!(
        cpu.values()
            .all(|v| v.parse::<f64>().is_ok_and(|s| s >= 0.0)),
        "{cpu:?}"
    );

    for name in [
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_exporter_build_info",
    ] {
        let v = values_now(&cairn, &format!(r#"{name}{{job="node"}}"#))
            .await
            .expect(name);
        assert_eq!(v.len(), 1, "{name}: {v:?}");
    }
    let scraped = values_now(&cairn, r#"scrape_samples_scraped{job="node"}"#)
        .await
        .expect("count");
    let scraped: f64 = scraped
        .values()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        scraped > 100.0,
        "the node exporter exposes hundreds of samples, got {scraped}"
    );
}
