//! Exposition parsing checked against an oracle: Prometheus 2.42 and cairn scrape the same
//! corpus of tricky expositions (text 0.0.4 and OpenMetrics 1.0, each served with its
//! Content-Type, each as its own job) and must store the same series with the same
//! values, and fail the same scrapes.

pub mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::diff::compare_maps;
use common::wait::ensure;
use common::{Cairn, Exposition, Labels, Monitor, Prometheus, Route, Sample, now_ms, wait_until};

/// One exposition of the corpus, served at `/<job>`.
struct Case {
    job: &'static str,
    route: Route,
    /// Every sample of the body carries its own timestamp, so stored timestamps must match
    /// too (the synthetic series still have each server's scrape times).
    explicit_timestamps: bool,
    /// Whether Prometheus 2.42 accepts the scrape (`up` 1): keeps the corpus honest.
    valid: bool,
}

fn text(job: &'static str, body: String) -> Case {
    Case {
        job,
        route: Route::text(body),
        explicit_timestamps: false,
        valid: true,
    }
}

fn openmetrics(job: &'static str, body: String) -> Case {
    Case {
        job,
        route: Route::openmetrics(body),
        explicit_timestamps: false,
        valid: true,
    }
}

impl Case {
    fn with_timestamps(self) -> Case {
        Case {
            explicit_timestamps: true,
            ..self
        }
    }

    fn invalid(self) -> Case {
        Case {
            valid: false,
            ..self
        }
    }
}

/// The corpus. `t0_ms` is a minute before the test started: explicit timestamps must be
/// recent enough for any TSDB head to take them.
fn corpus(t0_ms: i64) -> Vec<Case> {
    // OpenMetrics timestamps are seconds.
    let t0_s = format!("{}.{:03}", t0_ms / 1000, t0_ms % 1000);
    let t1_s = format!("{}.5", t0_ms / 1000 + 1);
    vec![
        text(
            "names",
            "\
# HELP rule:requests:rate5m A recording-rule style name.
# TYPE rule:requests:rate5m gauge
rule:requests:rate5m{path=\"/\"} 12.5
:leading_colon 1
_leading_underscore 2
metric_123_digits 3
"
            .into(),
        ),
        text(
            "escapes",
            "\
# HELP esc_metric Help with a backslash \\\\ and a newline \\n in it.
esc_metric{path=\"C:\\\\Program Files\\\\cairn\",quote=\"say \\\"hi\\\"\",nl=\"line1\\nline2\"} 1
esc_metric{path=\"ends with a backslash \\\\\",quote=\"\\\"\",nl=\"\\n\"} 2
"
            .into(),
        ),
        text(
            "utf8_commas",
            "utf8_metric{city=\"Zürich, CH\",emoji=\"🦀\",cjk=\"東京\",list=\"a,b,c\",braces=\"}{\",eq=\"a=b\",space=\" padded \"} 1\n"
                .into(),
        ),
        text(
            "special_values",
            "\
v_nan NaN
v_pos_inf +Inf
v_neg_inf -Inf
v_exp 1.5e+10
v_exp_upper 2E-5
v_neg_zero -0
v_big 12345678901234567890
v_tiny 1e-300
v_max 1.7976931348623157e308
v_int 42
"
            .into(),
        ),
        text("float_plus", "f_plus +1.5\n".into()),
        text("float_leading_dot", "f_dot .5\n".into()),
        text("float_trailing_dot", "f_trailing_dot 5.\n".into()),
        text("float_inf_word", "f_inf Inf\nf_infinity -Infinity\nf_nan_lower nan\n".into()),
        // Go's ParseFloat would take hex; Prometheus's parser refuses it.
        text("bad_float_hex", "f_hex 0x1p-2\n".into()).invalid(),
        text(
            "timestamps",
            format!(
                "ts_metric{{a=\"1\"}} 1 {t0_ms}\nts_metric{{a=\"2\"}} 2 {}\nts_metric{{a=\"3\"}} -3.5 {}\n",
                t0_ms + 1,
                t0_ms + 30_000
            ),
        )
        .with_timestamps(),
        text(
            "histogram_summary",
            "\
# HELP http_latency_seconds Latency.
# TYPE http_latency_seconds histogram
http_latency_seconds_bucket{le=\"0.05\"} 1
http_latency_seconds_bucket{le=\"0.5\"} 4
http_latency_seconds_bucket{le=\"+Inf\"} 5
http_latency_seconds_sum 1.25
http_latency_seconds_count 5
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile=\"0.5\"} 0.01
rpc_duration_seconds{quantile=\"0.99\"} 0.09
rpc_duration_seconds_sum 17.5
rpc_duration_seconds_count 1000
"
            .into(),
        ),
        text(
            "comments_and_blank_lines",
            "# a free comment\n\n# TYPE ws_metric gauge\n\nws_metric{a=\"b\",} 1\n#another comment\nws_other 2\n".into(),
        ),
        text("spaces_in_braces", "sp_metric{ a = \"b\" , c=\"d\" } 1\n".into()),
        text("tab_separators", "tab_metric\t1\ntab_labels{a=\"b\"}\t2\n".into()),
        text("trailing_spaces", format!("trail_metric 1   \ntrail_ts 2 {t0_ms} \n")),
        // A sample from 1970 is out of bounds: dropped, while the scrape stays up.
        text("ancient_timestamp", "ancient_metric 1 1000\nrecent_metric 2\n".into()),
        text("empty_labels", "empty_braces{} 1\nempty_value{a=\"\",b=\"x\"} 2\n".into()),
        text("duplicate_series", "dup_metric{a=\"1\"} 1\ndup_metric{a=\"1\"} 2\n".into()),
        Case {
            route: Route::text("plain_metric 1\n").with_content_type("text/plain"),
            ..text("plain_content_type", String::new())
        },
        Case {
            route: Route::text("octet_metric 1\n").with_content_type("application/octet-stream"),
            ..text("unknown_content_type", String::new())
        },
        text("bad_unterminated_value", "bad_metric{a=\"b} 1\n".into()).invalid(),
        text("bad_duplicate_label", "dup_label{a=\"1\",a=\"2\"} 1\n".into()).invalid(),
        text("bad_no_value", "novalue_metric\n".into()).invalid(),
        // Prometheus 2.42 takes a raw line feed inside a quoted label value.
        text("raw_newline_in_value", "raw_nl{a=\"x\ny\"} 1\n".into()),
        openmetrics(
            "om_counter_unit_created",
            format!(
                "\
# TYPE om_request_seconds counter
# UNIT om_request_seconds seconds
# HELP om_request_seconds Time spent.
om_request_seconds_total{{code=\"200\"}} 17.5 # {{trace_id=\"abc123\"}} 0.5 {t0_s}
om_request_seconds_created{{code=\"200\"}} 1700000000.25
# EOF
"
            ),
        ),
        openmetrics(
            "om_gauge_timestamps",
            format!(
                "\
# TYPE om_temp_celsius gauge
# UNIT om_temp_celsius celsius
om_temp_celsius{{room=\"a\"}} 20.5 {t0_s}
om_temp_celsius{{room=\"b\"}} 19 {t1_s}
# EOF
"
            ),
        )
        .with_timestamps(),
        openmetrics(
            "om_histogram_exemplars",
            "\
# TYPE om_latency_seconds histogram
om_latency_seconds_bucket{le=\"0.1\"} 3 # {trace_id=\"t1\"} 0.05
om_latency_seconds_bucket{le=\"1.0\"} 5 # {trace_id=\"t2\",span_id=\"s\"} 0.7
om_latency_seconds_bucket{le=\"+Inf\"} 6
om_latency_seconds_sum 4.5
om_latency_seconds_count 6
om_latency_seconds_created 1700000000.5
# EOF
"
            .into(),
        ),
        openmetrics(
            "om_info_stateset_unknown",
            "\
# TYPE om_build info
om_build_info{version=\"1.2.3\",revision=\"abc\"} 1
# TYPE om_feature stateset
om_feature{om_feature=\"a\"} 1
om_feature{om_feature=\"b\"} 0
# TYPE om_mystery unknown
om_mystery NaN
# EOF
"
            .into(),
        ),
        openmetrics(
            "om_summary",
            "\
# TYPE om_rpc_seconds summary
om_rpc_seconds{quantile=\"0.5\"} 0.01
om_rpc_seconds_sum 3.2
om_rpc_seconds_count 100
om_rpc_seconds_created 1700000000
# EOF
"
            .into(),
        ),
        openmetrics(
            "om_escapes_utf8",
            "om_esc{path=\"C:\\\\dir\",q=\"\\\"quoted\\\"\",nl=\"a\\nb\",city=\"Zürich, CH\"} 1\n# EOF\n".into(),
        ),
        openmetrics("om_bad_missing_eof", "om_no_eof 1\n".into()).invalid(),
        openmetrics("om_bad_data_after_eof", "om_after 1\n# EOF\nom_more 2\n".into()).invalid(),
        // A counter sample without `_total`: Prometheus 2.42 stores it as it is.
        openmetrics("om_counter_without_total", "# TYPE om_x counter\nom_x 1\n# EOF\n".into()),
    ]
}

/// The series every scrape adds, stamped with the scraper's own time.
const SYNTHETIC: [&str; 3] = [
    "up",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
];

fn config(target: &str, cases: &[Case]) -> String {
    let mut yaml =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for case in cases {
        yaml.push_str(&format!(
            "  - job_name: {job}\n    metrics_path: /{job}\n    static_configs: [{{targets: ['{target}']}}]\n",
            job = case.job
        ));
    }
    yaml
}

/// Number of `up` samples per job in the last minute.
async fn scrapes_per_job(server: &Monitor) -> Result<BTreeMap<String, usize>, String> {
    let matrix = server.api.matrix("up[1m]", now_ms()).await?;
    Ok(matrix
        .into_iter()
        .map(|s| {
            (
                s.metric.get("job").cloned().unwrap_or_default(),
                s.samples.len(),
            )
        })
        .collect())
}

/// What a case stored, comparable across servers: each series with its samples, or with
/// only its distinct values where the two servers' scrape times naturally differ.
async fn stored(server: &Monitor, case: &Case) -> Result<BTreeMap<Labels, Vec<Sample>>, String> {
    // Durations and "series added" legitimately differ between the two scrapers.
    let expr = format!(
        r#"{{job="{}",__name__!~"scrape_duration_seconds|scrape_series_added"}}[5m]"#,
        case.job
    );
    let matrix = server.api.matrix(&expr, now_ms()).await?;
    Ok(matrix
        .into_iter()
        .map(|series| {
            let mut samples = series.samples;
            let synthetic = SYNTHETIC.contains(&series.metric["__name__"].as_str());
            if synthetic || !case.explicit_timestamps {
                for s in &mut samples {
                    s.t_ms = 0;
                }
                samples.dedup();
            }
            (series.metric, samples)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_stores_what_prometheus_stores_for_every_exposition() {
    let cases = corpus(now_ms() - 60_000);
    let target = Exposition::start().await;
    for case in &cases {
        target.set(&format!("/{}", case.job), case.route.clone());
    }
    let config = config(&target.addr(), &cases);
    let prometheus = Prometheus::start(&config).await;
    let cairn = Cairn::start(&config).await;

    for (name, server) in [("Prometheus", &prometheus), ("cairn", &cairn)] {
        wait_until(
            Duration::from_secs(40),
            &format!("{name} to scrape every case twice"),
            async || {
                let counts = scrapes_per_job(server).await?;
                let behind: Vec<&str> = cases
                    .iter()
                    .filter(|c| counts.get(c.job).copied().unwrap_or(0) < 2)
                    .map(|c| c.job)
                    .collect();
                ensure(behind.is_empty(), || {
                    format!("not yet scraped twice: {behind:?}")
                })
            },
        )
        .await;
    }

    let mut failures = Vec::new();
    for case in &cases {
        let want = stored(&prometheus, case)
            .await
            .expect("Prometheus's samples");
        let up = want
            .iter()
            .find(|(l, _)| l["__name__"] == "up")
            .map(|(_, s)| s.iter().map(|x| x.value.clone()).collect::<Vec<_>>());
        let want_up = if case.valid { "1" } else { "0" };
        if up != Some(vec![want_up.to_owned()]) {
            failures.push(format!(
                "{}: the corpus expects up {want_up}, Prometheus has {up:?}",
                case.job
            ));
        }

        let got = stored(&cairn, case).await.expect("cairn's samples");
        if let Err(difference) = compare_maps(case.job, &want, &got, 20) {
            failures.push(difference);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
