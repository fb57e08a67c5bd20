//! `remote_write` and `remote_read` entries: endpoint, headers, credentials, relabeling
//! and queue tuning, with Prometheus's defaults and checks. The remote module does the
//! sending and reading; this is only the schema.

use super::de::nullable;
use super::error::Problem;
use super::global::{is_zero, is_zero_duration};
use super::http::{
    Authorization, BasicAuth, Secret, TlsConfig, impl_http_client_config, is_http_url, redact_url,
};
use super::scrape::is_false;
use crate::model::time::PromDuration;
use crate::relabel::RelabelConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Headers cairn sets itself (or that describe the connection), which a config may not
/// override. Prometheus's list.
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

fn validate_headers(headers: &BTreeMap<String, String>) -> Result<(), Problem> {
    for name in headers.keys() {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            return Err(Problem::new(
                "headers",
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(Problem::new(
                "headers",
                format!("{name} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(())
}

fn validate_url(url: &str, section: &str) -> Result<(), Problem> {
    if url.is_empty() {
        return Err(Problem::new("url", format!("url for {section} is empty")));
    }
    if !is_http_url(url) {
        return Err(Problem::new(
            "url",
            format!(
                "invalid URL {:?}: must be an absolute http or https URL",
                redact_url(url)
            ),
        ));
    }
    Ok(())
}

/// `queue_config`: sharding and batching of one remote write queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    pub batch_send_deadline: PromDuration,
    pub min_backoff: PromDuration,
    pub max_backoff: PromDuration,
    #[serde(skip_serializing_if = "is_false")]
    pub retry_on_http_429: bool,
    #[serde(skip_serializing_if = "is_zero_duration")]
    pub sample_age_limit: PromDuration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: PromDuration::from_secs(5),
            min_backoff: PromDuration(std::time::Duration::from_millis(30)),
            max_backoff: PromDuration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: PromDuration::default(),
        }
    }
}

/// `metadata_config`: whether and how often metric metadata is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: PromDuration,
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: PromDuration::from_secs(60),
            max_samples_per_send: 2_000,
        }
    }
}

/// One `remote_write` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub remote_timeout: PromDuration,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Names the queue in metrics; must be unique when set.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub send_exemplars: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub send_native_histograms: bool,

    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(
        skip_serializing_if = "TlsConfig::is_empty",
        deserialize_with = "nullable"
    )]
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    /// Off by default for remote write, as in Prometheus.
    pub enable_http2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,

    #[serde(deserialize_with = "nullable")]
    pub queue_config: QueueConfig,
    #[serde(deserialize_with = "nullable")]
    pub metadata_config: MetadataConfig,
}

impl_http_client_config!(RemoteWriteConfig);

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            url: String::new(),
            remote_timeout: PromDuration::from_secs(30),
            headers: BTreeMap::new(),
            write_relabel_configs: Vec::new(),
            name: String::new(),
            send_exemplars: false,
            send_native_histograms: false,
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: false,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            queue_config: QueueConfig::default(),
            metadata_config: MetadataConfig::default(),
        }
    }
}

impl RemoteWriteConfig {
    pub(crate) fn resolve(&mut self) -> Result<(), Problem> {
        validate_url(&self.url, "remote_write")?;
        validate_headers(&self.headers)?;
        self.with_http_client_config(|h| h.validate())
    }

    pub(crate) fn redact(&mut self) {
        self.url = redact_url(&self.url);
        self.with_http_client_config(|h| h.redact());
    }
}

/// One `remote_read` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteReadConfig {
    pub url: String,
    pub remote_timeout: PromDuration,
    #[serde(skip_serializing_if = "is_zero")]
    pub chunked_read_limit: u64,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub read_recent: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,

    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(
        skip_serializing_if = "TlsConfig::is_empty",
        deserialize_with = "nullable"
    )]
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub proxy_from_environment: bool,

    /// Equality matchers a query must contain for this endpoint to be asked.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub required_matchers: BTreeMap<String, String>,
    /// Printed even when true (Prometheus omits `false`, which then reloads as `true`).
    pub filter_external_labels: bool,
}

impl_http_client_config!(RemoteReadConfig);

impl Default for RemoteReadConfig {
    fn default() -> Self {
        RemoteReadConfig {
            url: String::new(),
            remote_timeout: PromDuration::from_secs(60),
            chunked_read_limit: 50_000_000,
            headers: BTreeMap::new(),
            read_recent: false,
            name: String::new(),
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            required_matchers: BTreeMap::new(),
            filter_external_labels: true,
        }
    }
}

impl RemoteReadConfig {
    pub(crate) fn resolve(&mut self) -> Result<(), Problem> {
        validate_url(&self.url, "remote_read")?;
        validate_headers(&self.headers)?;
        self.with_http_client_config(|h| h.validate())
    }

    pub(crate) fn redact(&mut self) {
        self.url = redact_url(&self.url);
        self.with_http_client_config(|h| h.redact());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_write_defaults_and_checks() {
        let mut w: RemoteWriteConfig = serde_saphyr::from_str("url: http://rw:9201/write").unwrap();
        w.resolve().unwrap();
        assert_eq!(w.remote_timeout, PromDuration::from_secs(30));
        assert_eq!(w.queue_config.capacity, 10_000);
        assert_eq!(w.queue_config.min_backoff.as_millis(), 30);
        assert!(w.metadata_config.send);
        assert!(!w.enable_http2);

        let cases = [
            ("name: x", "url", "url for remote_write is empty"),
            (
                "url: rw:9201/write",
                "url",
                r#"invalid URL "rw:9201/write": must be an absolute http or https URL"#,
            ),
            (
                "url: http://rw\nheaders: {Authorization: x}",
                "headers",
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            ),
            (
                "url: http://rw\nheaders: {User-Agent: x}",
                "headers",
                "User-Agent is a reserved header. It must not be changed",
            ),
        ];
        for (yaml, key, message) in cases {
            let mut w: RemoteWriteConfig = serde_saphyr::from_str(yaml).unwrap();
            assert_eq!(w.resolve(), Err(Problem::new(key, message)), "{yaml}");
        }
    }

    #[test]
    fn queue_config_overrides() {
        let w: RemoteWriteConfig =
            serde_saphyr::from_str("url: http://rw\nqueue_config: {max_shards: 5}").unwrap();
        assert_eq!(w.queue_config.max_shards, 5);
        assert_eq!(w.queue_config.capacity, 10_000);
        let w: RemoteWriteConfig = serde_saphyr::from_str("url: http://rw\nqueue_config:").unwrap();
        assert_eq!(w.queue_config, QueueConfig::default());
    }

    #[test]
    fn remote_read_defaults_and_redaction() {
        let mut r: RemoteReadConfig =
            serde_saphyr::from_str("url: https://u:pw@rr/read\nrequired_matchers: {job: x}")
                .unwrap();
        r.resolve().unwrap();
        assert!(r.filter_external_labels);
        assert_eq!(r.remote_timeout, PromDuration::from_secs(60));
        assert_eq!(r.chunked_read_limit, 50_000_000);
        r.redact();
        assert_eq!(r.url, "https://u:xxxxx@rr/read");
        let mut r: RemoteReadConfig = serde_saphyr::from_str("read_recent: true").unwrap();
        assert_eq!(
            r.resolve().unwrap_err().message,
            "url for remote_read is empty"
        );
    }
}
