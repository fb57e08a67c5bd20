//! The HTTP API's contract with Grafana and other clients: Prometheus's JSON shapes,
//! status codes and error type for bad input, GET and form POST alike, and the status
//! endpoints. Data comes in by remote write with fixed timestamps, so every expected
//! value below is exact.

pub mod common;

use std::collections::BTreeSet;

use common::prompb::TimeSeries;
use common::{Cairn, Labels, Monitor, Reply, Sample, api_time, labels, now_ms};
use serde_json::Value;

const CONFIG: &str = "\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: api_job
    static_configs:
      - targets: ['127.0.0.1:1']
";

/// Samples every 15 s from `base` on, so that no range or lookback boundary in these
/// tests falls on a sample (Prometheus 2 and 3 differ on closed/open range starts).
const STEP_MS: i64 = 15_000;

/// Starts cairn and writes the fixed data set; returns it and `base`, a whole second ten
/// minutes ago. Series:
/// - `api_metric{a="x",b="1"}`: value `1.5 * k` at `base + k * 15s`, k = 0..=20
/// - `api_metric{a="y"}`: value `100 + k` at the same times
/// - `api_old{a="z"}`: one sample, 42, at `base - 90m`
/// - `api_float{case=...}`: one sample each at `base`, values chosen to test formatting
async fn start_with_data() -> (Monitor, i64) {
    let cairn = Cairn::start(CONFIG).await;
    let base = (now_ms() / 1000 - 600) * 1000;
    let writer = cairn.remote_writer();

    // The old sample goes first: a TSDB head may refuse samples far behind newer ones.
    let old = vec![TimeSeries::new(
        &[("__name__", "api_old"), ("a", "z")],
        &[(base - 90 * 60_000, 42.0)],
    )];
    let x: Vec<(i64, f64)> = (0..=20)
        .map(|k| (base + k * STEP_MS, 1.5 * k as f64))
        .collect();
    let y: Vec<(i64, f64)> = (0..=20)
        .map(|k| (base + k * STEP_MS, 100.0 + k as f64))
        .collect();
    let floats = [
        ("tiny", 1e-7),
        ("huge", 1e21),
        ("frac", 123_456_789.125),
        ("negzero", -0.0),
        ("nan", f64::NAN),
        ("posinf", f64::INFINITY),
        ("neginf", f64::NEG_INFINITY),
    ];
    let mut batch = vec![
        TimeSeries::new(&[("__name__", "api_metric"), ("a", "x"), ("b", "1")], &x),
        TimeSeries::new(&[("__name__", "api_metric"), ("a", "y")], &y),
    ];
    batch.extend(floats.iter().map(|(case, v)| {
        TimeSeries::new(&[("__name__", "api_float"), ("case", case)], &[(base, *v)])
    }));
    for request in [old, batch] {
        let reply = writer.write(request).await.expect("remote write");
        assert_eq!(reply.status, 204, "remote write refused: {}", reply.body);
    }
    (cairn, base)
}

/// Checks the error answer's exact shape and returns its `error` text.
fn bad_data(reply: &Reply, what: &str) -> String {
    assert_eq!(
        reply.status, 400,
        "{what}: expected 400, got {}: {}",
        reply.status, reply.body
    );
    assert!(
        reply.content_type.starts_with("application/json"),
        "{what}: Content-Type {:?}",
        reply.content_type
    );
    let json = reply.json().unwrap_or_else(|e| panic!("{what}: {e}"));
    let keys: BTreeSet<&str> = json
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["error", "errorType", "status"]),
        "{what}: {json}"
    );
    assert_eq!(json["status"], "error", "{what}: {json}");
    assert_eq!(json["errorType"], "bad_data", "{what}: {json}");
    let error = json["error"].as_str().unwrap_or_default().to_owned();
    assert!(!error.is_empty(), "{what}: empty error text: {json}");
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_bad_data_in_prometheus_shape() {
    let cairn = Cairn::start(CONFIG).await;
    let api = &cairn.api;
    let get = async |path: &str, params: &[(&str, &str)]| {
        api.get(path, params)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };

    let error = bad_data(
        &get("/api/v1/query", &[("query", "up{")]).await,
        "unclosed brace",
    );
    assert!(
        error.contains("parse error"),
        "the parser's message, got {error:?}"
    );
    bad_data(&get("/api/v1/query", &[]).await, "no query");
    bad_data(
        &get("/api/v1/query", &[("query", "sum(")]).await,
        "unclosed paren",
    );
    let error = bad_data(
        &get("/api/v1/query", &[("query", "up"), ("time", "abc")]).await,
        "bad time",
    );
    assert!(error.contains("time"), "names the parameter, got {error:?}");
    bad_data(
        &get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "10"),
                ("end", "5"),
                ("step", "1"),
            ],
        )
        .await,
        "end before start",
    );
    bad_data(
        &get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "10"),
                ("step", "0"),
            ],
        )
        .await,
        "zero step",
    );
    bad_data(
        &get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
        )
        .await,
        "more than 11000 points per series",
    );
    bad_data(
        &get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "x"),
                ("end", "10"),
                ("step", "1"),
            ],
        )
        .await,
        "bad start",
    );
    bad_data(&get("/api/v1/series", &[]).await, "series without match[]");
    bad_data(
        &get("/api/v1/series", &[("match[]", "up{")]).await,
        "series with a bad selector",
    );

    let posted = api
        .post_form("/api/v1/query", &[("query", "up{")])
        .await
        .expect("POST query");
    bad_data(&posted, "form POST of a bad query");

    let unknown = get("/api/v1/no_such_endpoint", &[]).await;
    assert_eq!(unknown.status, 404, "unknown endpoint: {}", unknown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_queries_select_the_latest_sample_raw_ranges_and_offsets() {
    let (cairn, base) = start_with_data().await;
    let api = &cairn.api;
    let at = base + 100_000;

    // Latest sample at or before `at` within the lookback: k = 6 at base + 90 s.
    let vector = api
        .vector(r#"api_metric{a="x"}"#, at)
        .await
        .expect("instant query");
    let want_metric = labels(&[("__name__", "api_metric"), ("a", "x"), ("b", "1")]);
    assert_eq!(vector.len(), 1, "{vector:?}");
    assert_eq!(vector[0].metric, want_metric);
    assert_eq!(
        vector[0].sample,
        Sample {
            t_ms: at,
            value: "9".into()
        },
        "stamped with the eval time"
    );

    // offset 1m evaluates at base + 40 s: k = 2.
    let offset = api
        .vector(r#"api_metric{a="x"} offset 1m"#, at)
        .await
        .expect("offset");
    assert_eq!(offset.len(), 1, "{offset:?}");
    assert_eq!(
        offset[0].sample,
        Sample {
            t_ms: at,
            value: "3".into()
        }
    );

    // A range selector returns the raw samples in (at - 1m, at]: k = 3..=6.
    let matrix = api
        .matrix(r#"api_metric{a="x"}[1m]"#, at)
        .await
        .expect("range selector");
    assert_eq!(matrix.len(), 1, "{matrix:?}");
    assert_eq!(matrix[0].metric, want_metric);
    let want: Vec<Sample> = [(3, "4.5"), (4, "6"), (5, "7.5"), (6, "9")]
        .iter()
        .map(|&(k, v)| Sample {
            t_ms: base + k * STEP_MS,
            value: v.into(),
        })
        .collect();
    assert_eq!(matrix[0].samples, want);

    // Both series of the name, and none before the data starts.
    let both = api.vector("api_metric", at).await.expect("by name");
    let metrics: BTreeSet<Labels> = both.into_iter().map(|s| s.metric).collect();
    assert_eq!(
        metrics,
        BTreeSet::from([
            want_metric.clone(),
            labels(&[("__name__", "api_metric"), ("a", "y")])
        ])
    );
    let before = api
        .vector("api_metric", base - 1000)
        .await
        .expect("before the data");
    assert!(
        before.is_empty(),
        "nothing before the first sample: {before:?}"
    );

    // Float formatting as Prometheus's JSON has it.
    let floats = api
        .vector("api_float", base + 1000)
        .await
        .expect("api_float");
    let got: BTreeSet<(String, String)> = floats
        .iter()
        .map(|s| (s.metric["case"].clone(), s.sample.value.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("tiny", "1e-07"),
        ("huge", "1e+21"),
        ("frac", "123456789.125"),
        // Prometheus prints negative zero as "0".
        ("negzero", "0"),
        ("nan", "NaN"),
        ("posinf", "+Inf"),
        ("neginf", "-Inf"),
    ]
    .iter()
    .map(|(c, v)| ((*c).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);

    // A form POST answers exactly what a GET answers.
    let time = api_time(at);
    for expr in [
        r#"api_metric{a="x"}"#,
        "api_metric[1m]",
        "api_metric offset 30s",
    ] {
        let params = [("query", expr), ("time", time.as_str())];
        let get = api.get("/api/v1/query", &params).await.expect("GET");
        let post = api.post_form("/api/v1/query", &params).await.expect("POST");
        assert_eq!(get.status, 200, "{expr}: {}", get.body);
        assert_eq!(get.json(), post.json(), "GET and POST of {expr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_range_takes_the_latest_sample_at_each_step() {
    let (cairn, base) = start_with_data().await;
    let series = cairn
        .api
        .query_range(r#"api_metric{a="y"}"#, base + 10_000, base + 100_000, 30.0)
        .await
        .expect("query_range");
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        series[0].metric,
        labels(&[("__name__", "api_metric"), ("a", "y")])
    );
    // Steps at base + 10, 40, 70, 100 s see k = 0, 2, 4, 6.
    let want: Vec<Sample> = [(10, "100"), (40, "102"), (70, "104"), (100, "106")]
        .iter()
        .map(|&(s, v)| Sample {
            t_ms: base + s * 1000,
            value: v.into(),
        })
        .collect();
    assert_eq!(series[0].samples, want);

    // Steps before the first sample are left out, not filled.
    let early = cairn
        .api
        .query_range(r#"api_metric{a="y"}"#, base - 20_000, base + 10_000, 10.0)
        .await
        .expect("query_range across the start");
    assert_eq!(early.len(), 1, "{early:?}");
    let times: Vec<i64> = early[0].samples.iter().map(|s| s.t_ms - base).collect();
    assert_eq!(times, vec![0, 10_000]);

    let posted = cairn
        .api
        .post_form(
            "/api/v1/query_range",
            &[
                ("query", r#"api_metric{a="y"}"#),
                ("start", &api_time(base + 10_000)),
                ("end", &api_time(base + 100_000)),
                ("step", "30"),
            ],
        )
        .await
        .expect("POST query_range");
    let data = posted.success_data().expect("POST query_range succeeds");
    assert_eq!(data["resultType"], "matrix");
    assert_eq!(
        data["result"][0]["values"].as_array().map(Vec::len),
        Some(4),
        "{data}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_labels_and_label_values_filter_by_match_and_time() {
    let (cairn, base) = start_with_data().await;
    let api = &cairn.api;
    let set = |v: Vec<Labels>| v.into_iter().collect::<BTreeSet<Labels>>();
    let x = labels(&[("__name__", "api_metric"), ("a", "x"), ("b", "1")]);
    let y = labels(&[("__name__", "api_metric"), ("a", "y")]);
    let old = labels(&[("__name__", "api_old"), ("a", "z")]);

    let by_name = api
        .series(&["api_metric"], None, None)
        .await
        .expect("series");
    assert_eq!(set(by_name), BTreeSet::from([x.clone(), y.clone()]));

    // Several match[] are a union.
    let union = api
        .series(&["api_old", r#"api_metric{a="y"}"#], None, None)
        .await
        .expect("series union");
    assert_eq!(set(union), BTreeSet::from([y.clone(), old.clone()]));

    // start/end keep series with samples in the range, far enough apart here that chunk
    // granularity (which Prometheus uses) and sample granularity agree.
    let recent = api
        .series(&[r#"{a=~"x|z"}"#], Some(base - 60_000), Some(now_ms()))
        .await
        .expect("recent series");
    assert_eq!(set(recent), BTreeSet::from([x.clone()]));
    let long_ago = api
        .series(
            &[r#"{a=~"x|z"}"#],
            Some(base - 91 * 60_000),
            Some(base - 89 * 60_000),
        )
        .await
        .expect("old series");
    assert_eq!(set(long_ago), BTreeSet::from([old.clone()]));

    let posted = api
        .post_form(
            "/api/v1/series",
            &[("match[]", "api_old"), ("match[]", "api_metric")],
        )
        .await
        .expect("POST series");
    let data = posted.success_data().expect("POST series succeeds");
    assert_eq!(data.as_array().map(Vec::len), Some(3), "{data}");

    let names = api.labels(&["api_metric"]).await.expect("labels");
    assert_eq!(
        names,
        vec!["__name__", "a", "b"],
        "sorted, only those of matching series"
    );
    let all_names = api.labels(&[]).await.expect("all labels");
    for name in ["__name__", "a", "b", "case"] {
        assert!(
            all_names.contains(&name.to_owned()),
            "{name} missing from {all_names:?}"
        );
    }
    assert!(
        all_names.windows(2).all(|w| w[0] < w[1]),
        "sorted and unique: {all_names:?}"
    );

    let values = api.label_values("a", &[]).await.expect("label values");
    assert_eq!(values, vec!["x", "y", "z"]);
    let filtered = api
        .label_values("a", &["api_metric"])
        .await
        .expect("filtered values");
    assert_eq!(filtered, vec!["x", "y"]);
    let metric_names = api
        .label_values("__name__", &[r#"{a=~".+"}"#])
        .await
        .expect("names");
    assert_eq!(metric_names, vec!["api_metric", "api_old"]);
    let none = api
        .label_values("no_such_label", &[])
        .await
        .expect("unknown label");
    assert!(
        none.is_empty(),
        "an unknown label has no values (and is no error): {none:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_endpoints_and_self_metrics_have_prometheus_shapes() {
    let cairn = Cairn::start(CONFIG).await;
    let api = &cairn.api;
    let data = async |path: &str| -> Value {
        let reply = api
            .get(path, &[])
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            reply.content_type.starts_with("application/json"),
            "{path}: {reply:?}"
        );
        reply
            .success_data()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };

    for path in ["/-/healthy", "/-/ready"] {
        let reply = api.get(path, &[]).await.expect(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }

    let config = data("/api/v1/status/config").await;
    let yaml = config["yaml"]
        .as_str()
        .unwrap_or_else(|| panic!("data.yaml is a string: {config}"));
    assert!(
        yaml.contains("scrape_configs") && yaml.contains("api_job"),
        "{yaml}"
    );

    let flags = data("/api/v1/status/flags").await;
    let flag = |name: &str| flags[name].as_str().map(str::to_owned);
    assert_eq!(
        flag("config.file"),
        Some(cairn.config_path().display().to_string()),
        "{flags}"
    );
    assert_eq!(
        flag("storage.tsdb.path"),
        Some(cairn.data_dir().display().to_string()),
        "{flags}"
    );
    assert_eq!(flag("web.listen-address"), Some(cairn.addr()), "{flags}");
    assert_eq!(
        flag("web.enable-lifecycle").as_deref(),
        Some("true"),
        "{flags}"
    );
    let all_strings = flags
        .as_object()
        .is_some_and(|o| o.values().all(Value::is_string));
    assert!(all_strings, "every flag value is a string: {flags}");

    // goVersion is left out on purpose: cairn is not a Go program.
    let build = data("/api/v1/status/buildinfo").await;
    for key in ["version", "revision", "branch", "buildUser", "buildDate"] {
        assert!(build[key].is_string(), "buildinfo.{key}: {build}");
    }
    assert!(
        !build["version"].as_str().unwrap_or_default().is_empty(),
        "{build}"
    );

    // Likewise the Go runtime's members (goroutineCount, GOMAXPROCS, GOGC, GODEBUG).
    let runtime = data("/api/v1/status/runtimeinfo").await;
    for key in ["startTime", "CWD", "lastConfigTime", "storageRetention"] {
        assert!(runtime[key].is_string(), "runtimeinfo.{key}: {runtime}");
    }
    assert_eq!(runtime["reloadConfigSuccess"], true, "{runtime}");
    assert!(runtime["corruptionCount"].is_number(), "{runtime}");
    let start_time = runtime["startTime"].as_str().unwrap_or_default();
    assert!(
        start_time.len() >= 20 && start_time.as_bytes()[10] == b'T' && start_time.ends_with('Z'),
        "startTime is RFC 3339 in UTC: {start_time:?}"
    );

    // Prometheus creates its out-of-order counter at the first append: write one sample.
    let one = TimeSeries::new(&[("__name__", "api_one")], &[(now_ms(), 1.0)]);
    let written = cairn
        .remote_writer()
        .write(vec![one])
        .await
        .expect("remote write");
    assert_eq!(written.status, 204, "{}", written.body);
    let metrics = api.get("/metrics", &[]).await.expect("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.content_type.starts_with("text/plain"),
        "{:?}",
        metrics.content_type
    );
    for suffix in [
        "config_last_reload_successful",
        "tsdb_head_series",
        "tsdb_out_of_order_samples_total",
    ] {
        let name = cairn.self_metric(suffix);
        assert!(
            common::api::exposition_value(&metrics.body, &name).is_some(),
            "{name} missing from /metrics"
        );
    }
    let reload_ok = cairn
        .self_metric_value("config_last_reload_successful")
        .await;
    assert_eq!(reload_ok, Ok(1.0));
}
