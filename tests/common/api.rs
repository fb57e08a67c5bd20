//! A client for the Prometheus HTTP API as cairn and Prometheus both serve it: typed
//! answers for query, query_range, series, labels, label values and targets, plus raw
//! GET and form POST for the tests that check shapes and error answers themselves.
//!
//! Typed calls return `Err(description)` instead of panicking, so they can be used inside
//! [`crate::common::wait_until`] probes with `?`.

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::api_time;

/// A label set, ordered by name as Prometheus prints it.
pub type Labels = BTreeMap<String, String>;

/// Builds a [`Labels`] from literal pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// A new HTTP client. Each runtime needs its own: a pooled connection must not outlive the
/// tokio runtime (one per `#[tokio::test]`) that drives it.
pub fn http_client() -> reqwest::Client {
    static PROVIDER: Once = Once::new();
    // reqwest is built with `rustls-no-provider`; it wants a process-wide provider even
    // though the tests only speak plain http.
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the reqwest client")
}

/// One raw HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    /// The body as JSON; `Err` says what came instead.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_str(&self.body).map_err(|e| {
            format!(
                "HTTP {} with a body that is not JSON ({e}): {}",
                self.status, self.body
            )
        })
    }

    /// The `data` member of a `{"status":"success"}` answer with status 200.
    pub fn success_data(&self) -> Result<Value, String> {
        let json = self.json()?;
        if self.status != 200 || json["status"] != "success" {
            return Err(format!(
                "expected 200 success, got HTTP {}: {}",
                self.status, self.body
            ));
        }
        Ok(json["data"].clone())
    }
}

/// One sample: timestamp in milliseconds and the value exactly as the API printed it
/// ("1", "NaN", "+Inf", "0.0015"), so tests also check cairn's float formatting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sample {
    pub t_ms: i64,
    pub value: String,
}

impl Sample {
    /// The value as a number; the API's "+Inf"/"-Inf"/"NaN" parse as Rust's.
    pub fn f64(&self) -> f64 {
        self.value
            .parse()
            .unwrap_or_else(|e| panic!("sample value {:?} is not a float: {e}", self.value))
    }
}

/// An element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub metric: Labels,
    pub sample: Sample,
}

/// A series of a matrix: from a range selector (raw samples) or from query_range.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub metric: Labels,
    pub samples: Vec<Sample>,
}

/// The `data` of a successful `/api/v1/query`, by `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Vector(Vec<VectorSample>),
    Matrix(Vec<RangeSeries>),
    Scalar(Sample),
    /// A string literal's value, with the evaluation time.
    String(Sample),
}

/// One of `/api/v1/targets`'s `activeTargets`, with the members cairn promises.
/// Deserialisation fails when one is missing, which checks the shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub health: String,
    pub last_error: String,
    pub last_scrape: String,
    pub last_scrape_duration: f64,
}

/// The Prometheus HTTP API of one server.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// `base` is `http://host:port`, without a trailing slash.
    pub fn new(base: String) -> Api {
        Api {
            client: http_client(),
            base,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` with URL-encoded query parameters (repeat a name for `match[]`).
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Reply, String> {
        let mut url = format!("{}{path}", self.base);
        if !params.is_empty() {
            url.push('?');
            url.push_str(&form_encode(params));
        }
        self.send(self.client.get(&url), &url).await
    }

    /// POST `path` with an `application/x-www-form-urlencoded` body.
    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let request = self
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(params));
        self.send(request, &url).await
    }

    /// POST `path` with no body (`/-/reload`, `/-/quit`).
    pub async fn post_empty(&self, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.post(&url), &url).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Reply, String> {
        let resp = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = resp.text().await.map_err(|e| format!("{url}: body: {e}"))?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    /// Instant query at `at_ms`; returns the raw `data` member.
    pub async fn query_data(&self, expr: &str, at_ms: i64) -> Result<Value, String> {
        let time = api_time(at_ms);
        self.get("/api/v1/query", &[("query", expr), ("time", &time)])
            .await?
            .success_data()
            .map_err(|e| format!("query {expr:?}: {e}"))
    }

    /// Instant query at `at_ms`, typed by its `resultType`.
    pub async fn query(&self, expr: &str, at_ms: i64) -> Result<QueryResult, String> {
        let data = self.query_data(expr, at_ms).await?;
        let result = &data["result"];
        match data["resultType"].as_str() {
            Some("vector") => Ok(QueryResult::Vector(parse_vector(result)?)),
            Some("matrix") => Ok(QueryResult::Matrix(parse_matrix(result)?)),
            Some("scalar") => Ok(QueryResult::Scalar(parse_sample(result)?)),
            Some("string") => Ok(QueryResult::String(parse_sample(result)?)),
            _ => Err(format!("query {expr:?}: unknown resultType in {data}")),
        }
    }

    /// Instant query that must yield a vector.
    pub async fn vector(&self, expr: &str, at_ms: i64) -> Result<Vec<VectorSample>, String> {
        match self.query(expr, at_ms).await? {
            QueryResult::Vector(vector) => Ok(vector),
            other => Err(format!("query {expr:?}: expected a vector, got {other:?}")),
        }
    }

    /// Instant query of a range selector (`x[1m]`): the raw samples of each series.
    pub async fn matrix(&self, expr: &str, at_ms: i64) -> Result<Vec<RangeSeries>, String> {
        match self.query(expr, at_ms).await? {
            QueryResult::Matrix(matrix) => Ok(matrix),
            other => Err(format!("query {expr:?}: expected a matrix, got {other:?}")),
        }
    }

    /// `/api/v1/query_range` with times in milliseconds and `step` in seconds.
    pub async fn query_range(
        &self,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_s: f64,
    ) -> Result<Vec<RangeSeries>, String> {
        let (start, end, step) = (api_time(start_ms), api_time(end_ms), step_s.to_string());
        let params = [
            ("query", expr),
            ("start", &start),
            ("end", &end),
            ("step", &step),
        ];
        let data = self
            .get("/api/v1/query_range", &params)
            .await?
            .success_data()
            .map_err(|e| format!("query_range {expr:?}: {e}"))?;
        if data["resultType"] != "matrix" {
            return Err(format!(
                "query_range {expr:?}: expected a matrix, got {data}"
            ));
        }
        parse_matrix(&data["result"])
    }

    /// `/api/v1/series` for one or more `match[]` selectors, optionally bounded in time.
    pub async fn series(
        &self,
        matches: &[&str],
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<Labels>, String> {
        let params = with_matches_and_range(matches, start_ms, end_ms);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = self
            .get("/api/v1/series", &borrowed)
            .await?
            .success_data()?;
        as_array(&data)?.iter().map(parse_labels).collect()
    }

    /// `/api/v1/labels`, optionally filtered by `match[]`.
    pub async fn labels(&self, matches: &[&str]) -> Result<Vec<String>, String> {
        let params = with_matches_and_range(matches, None, None);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = self
            .get("/api/v1/labels", &borrowed)
            .await?
            .success_data()?;
        parse_strings(&data)
    }

    /// `/api/v1/label/<name>/values`, optionally filtered by `match[]`.
    pub async fn label_values(&self, name: &str, matches: &[&str]) -> Result<Vec<String>, String> {
        let params = with_matches_and_range(matches, None, None);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = format!("/api/v1/label/{name}/values");
        let data = self.get(&path, &borrowed).await?.success_data()?;
        parse_strings(&data)
    }

    /// `/api/v1/targets`' active targets.
    pub async fn targets(&self) -> Result<Vec<Target>, String> {
        let data = self.get("/api/v1/targets", &[]).await?.success_data()?;
        serde_json::from_value(data["activeTargets"].clone())
            .map_err(|e| format!("activeTargets has the wrong shape ({e}): {data}"))
    }

    /// The active target whose labels include `job` and `instance`.
    pub async fn target(&self, job: &str, instance: &str) -> Result<Target, String> {
        let targets = self.targets().await?;
        targets
            .iter()
            .find(|t| {
                t.labels.get("job").map(String::as_str) == Some(job)
                    && t.labels.get("instance").map(String::as_str) == Some(instance)
            })
            .cloned()
            .ok_or_else(|| {
                format!("no active target job={job} instance={instance} in {targets:#?}")
            })
    }

    /// The server's own `/metrics` exposition.
    pub async fn metrics_text(&self) -> Result<String, String> {
        let reply = self.get("/metrics", &[]).await?;
        if reply.status != 200 {
            return Err(format!(
                "/metrics answered {}: {}",
                reply.status, reply.body
            ));
        }
        Ok(reply.body)
    }

    /// The value of the first sample named `name` (with any labels) in `/metrics`.
    pub async fn metric_value(&self, name: &str) -> Result<f64, String> {
        let text = self.metrics_text().await?;
        exposition_value(&text, name).ok_or_else(|| format!("{name} is not in /metrics"))
    }
}

/// The value of the first sample named exactly `name` in a text exposition.
pub fn exposition_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = if rest.starts_with('{') {
            &rest[rest.find('}')? + 1..]
        } else if rest.starts_with(' ') {
            rest
        } else {
            return None;
        };
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn with_matches_and_range(
    matches: &[&str],
    start_ms: Option<i64>,
    end_ms: Option<i64>,
) -> Vec<(&'static str, String)> {
    let mut params: Vec<(&'static str, String)> = matches
        .iter()
        .map(|m| ("match[]", (*m).to_owned()))
        .collect();
    if let Some(start) = start_ms {
        params.push(("start", api_time(start)));
    }
    if let Some(end) = end_ms {
        params.push(("end", api_time(end)));
    }
    params
}

/// `application/x-www-form-urlencoded`, which is also what a URL query string takes.
pub fn form_encode(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(name, &mut out);
        out.push('=');
        percent_encode_into(value, &mut out);
    }
    out
}

fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
}

fn as_array(value: &Value) -> Result<&Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("expected a JSON array, got {value}"))
}

fn parse_strings(value: &Value) -> Result<Vec<String>, String> {
    as_array(value)?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a string, got {v}"))
        })
        .collect()
}

/// A `{"name":"value",...}` object.
pub fn parse_labels(value: &Value) -> Result<Labels, String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("expected a label object, got {value}"))?;
    object
        .iter()
        .map(|(name, v)| match v.as_str() {
            Some(s) => Ok((name.clone(), s.to_owned())),
            None => Err(format!("label {name} has a non-string value {v}")),
        })
        .collect()
}

/// A `[<seconds as number>, "<value as string>"]` pair.
pub fn parse_sample(value: &Value) -> Result<Sample, String> {
    let pair = as_array(value)?;
    let (Some(t), Some(v), 2) = (pair.first(), pair.get(1), pair.len()) else {
        return Err(format!("expected [time, value], got {value}"));
    };
    let seconds = t
        .as_f64()
        .ok_or_else(|| format!("sample time must be a JSON number, got {t}"))?;
    let value = v
        .as_str()
        .ok_or_else(|| format!("sample value must be a JSON string, got {v}"))?;
    Ok(Sample {
        // Seconds with at most millisecond precision: rounding undoes the float error.
        t_ms: (seconds * 1000.0).round() as i64,
        value: value.to_owned(),
    })
}

fn parse_vector(result: &Value) -> Result<Vec<VectorSample>, String> {
    as_array(result)?
        .iter()
        .map(|item| {
            Ok(VectorSample {
                metric: parse_labels(&item["metric"])?,
                sample: parse_sample(&item["value"])?,
            })
        })
        .collect()
}

fn parse_matrix(result: &Value) -> Result<Vec<RangeSeries>, String> {
    as_array(result)?
        .iter()
        .map(|item| {
            Ok(RangeSeries {
                metric: parse_labels(&item["metric"])?,
                samples: as_array(&item["values"])?
                    .iter()
                    .map(parse_sample)
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}
