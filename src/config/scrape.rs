//! One `scrape_configs` entry: what to scrape (discovery), how (HTTP settings, path,
//! protocols, limits) and how to relabel. After load it holds effective values: unset
//! intervals, timeouts and limits are inherited from `global` as Prometheus does, so the
//! scrape module reads one struct and `/api/v1/status/config` prints what is in effect.

use super::de::{nullable, static_configs};
use super::error::Problem;
use super::global::{GlobalConfig, is_zero};
use super::http::{Authorization, BasicAuth, Secret, TlsConfig, impl_http_client_config};
use super::paths::{is_valid_file_sd_path, join_dir};
use super::units::ByteSize;
use crate::discovery::{FileSdConfig, SdConfigs, StaticConfig};
use crate::model::time::PromDuration;
use crate::relabel::{NameValidation, RelabelConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// An exposition format offered to targets in the `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScrapeProtocol {
    #[serde(rename = "PrometheusProto")]
    PrometheusProto,
    #[serde(rename = "PrometheusText0.0.4")]
    PrometheusText0_0_4,
    #[serde(rename = "PrometheusText1.0.0")]
    PrometheusText1_0_0,
    #[serde(rename = "OpenMetricsText0.0.1")]
    OpenMetricsText0_0_1,
    #[serde(rename = "OpenMetricsText1.0.0")]
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    /// Prometheus's default preference when nothing is configured.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// The media type and parameters this protocol is requested with.
    pub fn header_value(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }
}

/// Prometheus's checks on a `scrape_protocols` list (unknown names are refused earlier,
/// by the YAML parser). The caller says which section the list is in.
pub(crate) fn validate_protocols(list: &[ScrapeProtocol]) -> Result<(), String> {
    if list.is_empty() {
        return Err("scrape_protocols cannot be empty".to_string());
    }
    let mut seen = HashSet::new();
    if list.iter().any(|p| !seen.insert(*p)) {
        let names: Vec<&str> = list.iter().map(|p| p.as_str()).collect();
        return Err(format!(
            "duplicated protocol in scrape_protocols, got [{}]",
            names.join(" ")
        ));
    }
    Ok(())
}

/// `scrape_configs` entry. Field names and defaults are Prometheus's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default = "ScrapeConfig::as_written")]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub params: BTreeMap<String, Vec<String>>,
    /// Inherited from `global` when unset.
    pub scrape_interval: PromDuration,
    /// Inherited from `global` when unset, but never longer than `scrape_interval`.
    pub scrape_timeout: PromDuration,
    /// Inherited from `global`, else [`ScrapeProtocol::DEFAULT`].
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Used when a target's `Content-Type` is missing or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_failure_log_file: Option<String>,
    pub metrics_path: String,
    pub scheme: String,
    pub enable_compression: bool,
    /// Largest uncompressed body accepted; zero for no limit. Inherited from `global`.
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub body_size_limit: ByteSize,
    /// Limits below are zero for "no limit" and inherited from `global` when zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_value_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub keep_dropped_targets: u64,
    /// Always `Some` after load (inherited from `global`); see [`Self::name_validation`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<NameValidation>,

    // HTTP client settings, inlined as in Prometheus; see `http_client_config()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Legacy spelling of `authorization`; moved there at load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// Legacy spelling of `authorization.credentials_file`; moved there at load.
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

    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "static_configs"
    )]
    pub static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl_http_client_config!(ScrapeConfig);

impl ScrapeConfig {
    /// A job with Prometheus's defaults and everything else inherited from `global`,
    /// as if loaded from `- job_name: <name>`.
    pub fn new(job_name: impl Into<String>, global: &GlobalConfig) -> ScrapeConfig {
        let mut c = ScrapeConfig {
            job_name: job_name.into(),
            ..ScrapeConfig::as_written()
        };
        c.inherit(global);
        c
    }

    /// Absent keys before resolution; zero means "inherit".
    fn as_written() -> ScrapeConfig {
        ScrapeConfig {
            job_name: String::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            params: BTreeMap::new(),
            scrape_interval: PromDuration::default(),
            scrape_timeout: PromDuration::default(),
            scrape_protocols: Vec::new(),
            fallback_scrape_protocol: None,
            scrape_failure_log_file: None,
            metrics_path: "/metrics".to_string(),
            scheme: "http".to_string(),
            enable_compression: true,
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: None,
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
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
        }
    }

    /// The discovery configuration of this job, for the discovery manager.
    pub fn sd_configs(&self) -> SdConfigs {
        SdConfigs {
            static_configs: self.static_configs.clone(),
            file_sd_configs: self.file_sd_configs.clone(),
        }
    }

    /// `body_size_limit` as a buffer length; zero means no limit.
    pub fn body_size_limit_bytes(&self) -> usize {
        usize::try_from(self.body_size_limit.bytes()).unwrap_or(usize::MAX)
    }

    /// The label name scheme in effect for this job.
    pub fn name_validation(&self) -> NameValidation {
        self.metric_name_validation_scheme.unwrap_or_default()
    }

    /// Checks the job and fills unset values from `global`, in Prometheus's order.
    pub(crate) fn resolve(&mut self, global: &GlobalConfig) -> Result<(), Problem> {
        if self.job_name.is_empty() {
            return Err(Problem::new("job_name", "job_name is empty"));
        }
        self.with_http_client_config(|h| h.validate())?;
        // Prometheus only refuses a bad scheme per target, after relabeling; refusing a
        // bad configured default at load catches the typo sooner.
        if self.scheme != "http" && self.scheme != "https" {
            return Err(Problem::new(
                "scheme",
                format!(
                    "invalid scheme {:?} for scrape config with job name {:?}: must be \"http\" or \"https\"",
                    self.scheme, self.job_name
                ),
            ));
        }
        if self.relabel_configs.is_empty() {
            check_static_targets(&self.static_configs)?;
        }
        check_file_sd(&self.file_sd_configs)?;
        let explicit_timeout = self.scrape_timeout;
        self.inherit(global);
        if explicit_timeout > self.scrape_interval {
            return Err(Problem::new(
                "scrape_timeout",
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    self.job_name
                ),
            ));
        }
        validate_protocols(&self.scrape_protocols).map_err(|m| {
            Problem::new(
                "scrape_protocols",
                format!("{m} for scrape config with job name {:?}", self.job_name),
            )
        })?;
        let scheme = self.name_validation();
        for (section, rules) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (i, rule) in rules.iter().enumerate() {
                rule.validate(scheme)
                    .map_err(|e| Problem::new(format!("{section}[{i}]"), e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Fills every unset value from `global` (or the built-in default).
    fn inherit(&mut self, g: &GlobalConfig) {
        if self.scrape_interval.0.is_zero() {
            self.scrape_interval = g.scrape_interval;
        }
        if self.scrape_timeout.0.is_zero() {
            self.scrape_timeout = g.scrape_timeout.min(self.scrape_interval);
        }
        let limits = [
            (&mut self.sample_limit, g.sample_limit),
            (&mut self.target_limit, g.target_limit),
            (&mut self.label_limit, g.label_limit),
            (&mut self.label_name_length_limit, g.label_name_length_limit),
            (
                &mut self.label_value_length_limit,
                g.label_value_length_limit,
            ),
            (&mut self.keep_dropped_targets, g.keep_dropped_targets),
        ];
        for (mine, global) in limits {
            if *mine == 0 {
                *mine = global;
            }
        }
        if self.body_size_limit.is_zero() {
            self.body_size_limit = g.body_size_limit;
        }
        if self.scrape_failure_log_file.is_none() {
            self.scrape_failure_log_file = g.scrape_failure_log_file.clone();
        }
        if self.scrape_protocols.is_empty() {
            self.scrape_protocols = match &g.scrape_protocols {
                Some(p) => p.clone(),
                None => ScrapeProtocol::DEFAULT.to_vec(),
            };
        }
        let scheme = *self
            .metric_name_validation_scheme
            .get_or_insert(g.metric_name_validation_scheme);
        for rule in self
            .relabel_configs
            .iter_mut()
            .chain(self.metric_relabel_configs.iter_mut())
        {
            rule.name_validation = scheme;
        }
    }

    pub(crate) fn resolve_paths(&mut self, dir: &str) {
        self.with_http_client_config(|h| h.resolve_paths(dir));
        if let Some(f) = &mut self.scrape_failure_log_file {
            *f = join_dir(dir, f);
        }
        resolve_file_sd_paths(&mut self.file_sd_configs, dir);
    }
}

/// Catches URLs written where `host:port` belongs, as Prometheus does when no relabel
/// rule could rewrite them.
pub(crate) fn check_static_targets(configs: &[StaticConfig]) -> Result<(), Problem> {
    for (i, sc) in configs.iter().enumerate() {
        if let Some(t) = sc.targets.iter().find(|t| t.contains('/')) {
            return Err(Problem::new(
                format!("static_configs[{i}].targets"),
                format!("{t:?} is not a valid hostname"),
            ));
        }
    }
    Ok(())
}

/// Prometheus's checks on `file_sd_configs` (the `discovery` types do not check).
pub(crate) fn check_file_sd(configs: &[FileSdConfig]) -> Result<(), Problem> {
    for (i, fc) in configs.iter().enumerate() {
        let key = format!("file_sd_configs[{i}].files");
        if fc.files.is_empty() {
            return Err(Problem::new(
                key,
                "file service discovery config must contain at least one path name",
            ));
        }
        if let Some(bad) = fc.files.iter().find(|f| !is_valid_file_sd_path(f)) {
            return Err(Problem::new(
                key,
                format!("path name {bad:?} is not valid for file discovery"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn resolve_file_sd_paths(configs: &mut [FileSdConfig], dir: &str) {
    for file in configs.iter_mut().flat_map(|c| c.files.iter_mut()) {
        *file = join_dir(dir, file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(yaml: &str) -> GlobalConfig {
        let mut g: GlobalConfig = serde_saphyr::from_str(yaml).unwrap();
        g.resolve().unwrap();
        g
    }

    fn load(yaml: &str, g: &GlobalConfig) -> Result<ScrapeConfig, Problem> {
        let mut c: ScrapeConfig = serde_saphyr::from_str(yaml).unwrap();
        c.resolve(g).map(|()| c)
    }

    fn secs(s: u64) -> PromDuration {
        PromDuration::from_secs(s)
    }

    #[test]
    fn defaults() {
        let c = load("job_name: j", &GlobalConfig::default()).unwrap();
        assert_eq!(c, ScrapeConfig::new("j", &GlobalConfig::default()));
        assert!(!c.honor_labels);
        assert!(c.honor_timestamps);
        assert_eq!(c.metrics_path, "/metrics");
        assert_eq!(c.scheme, "http");
        assert!(c.follow_redirects && c.enable_http2 && c.enable_compression);
        assert_eq!(c.scrape_interval, secs(60));
        assert_eq!(c.scrape_timeout, secs(10));
        assert_eq!(c.scrape_protocols, ScrapeProtocol::DEFAULT);
        assert_eq!(c.sample_limit, 0);
        assert_eq!(c.name_validation(), NameValidation::Utf8);
    }

    #[test]
    fn inherits_from_global() {
        let g = global(
            "scrape_interval: 20s\nscrape_timeout: 15s\nsample_limit: 1000\nbody_size_limit: 1MB\n\
             scrape_protocols: [PrometheusText0.0.4]\nmetric_name_validation_scheme: legacy",
        );
        let c = load("job_name: j", &g).unwrap();
        assert_eq!(c.scrape_interval, secs(20));
        assert_eq!(c.scrape_timeout, secs(15));
        assert_eq!(c.sample_limit, 1000);
        assert_eq!(c.body_size_limit, ByteSize(1 << 20));
        assert_eq!(c.body_size_limit_bytes(), 1 << 20);
        assert_eq!(c.scrape_protocols, [ScrapeProtocol::PrometheusText0_0_4]);
        assert_eq!(c.name_validation(), NameValidation::Legacy);
        // A job's own values win; a short job interval caps the inherited timeout.
        let c = load("job_name: j\nscrape_interval: 5s\nsample_limit: 7", &g).unwrap();
        assert_eq!(c.scrape_timeout, secs(5));
        assert_eq!(c.sample_limit, 7);
    }

    #[test]
    fn timeout_longer_than_interval() {
        let e = load(
            "job_name: node\nscrape_interval: 5s\nscrape_timeout: 6s",
            &GlobalConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e.key, "scrape_timeout");
        assert_eq!(
            e.message,
            r#"scrape timeout greater than scrape interval for scrape config with job name "node""#
        );
        // The inherited interval counts too.
        let e = load(
            "job_name: node\nscrape_timeout: 2m",
            &GlobalConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e.key, "scrape_timeout");
    }

    #[test]
    fn job_checks() {
        let g = GlobalConfig::default();
        let cases = [
            ("honor_labels: true", "job_name", "job_name is empty"),
            (
                "job_name: j\nscheme: ftp",
                "scheme",
                r#"invalid scheme "ftp" for scrape config with job name "j": must be "http" or "https""#,
            ),
            (
                "job_name: j\nbearer_token: a\nbearer_token_file: b",
                "bearer_token",
                "at most one of bearer_token & bearer_token_file must be configured",
            ),
            (
                "job_name: j\nbasic_auth: {username: u}\nauthorization: {credentials: c}",
                "authorization",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                "job_name: j\nstatic_configs: [{targets: ['http://h:80/metrics']}]",
                "static_configs[0].targets",
                r#""http://h:80/metrics" is not a valid hostname"#,
            ),
            (
                "job_name: j\nfile_sd_configs: [{files: ['t.txt']}]",
                "file_sd_configs[0].files",
                r#"path name "t.txt" is not valid for file discovery"#,
            ),
            (
                "job_name: j\nfile_sd_configs: [{files: []}]",
                "file_sd_configs[0].files",
                "file service discovery config must contain at least one path name",
            ),
            (
                "job_name: j\nscrape_protocols: [PrometheusProto, PrometheusProto]",
                "scrape_protocols",
                r#"duplicated protocol in scrape_protocols, got [PrometheusProto PrometheusProto] for scrape config with job name "j""#,
            ),
            (
                "job_name: j\nmetric_name_validation_scheme: legacy\nrelabel_configs: [{target_label: a.b}]",
                "relabel_configs[0]",
                r#""a.b" is invalid 'target_label' for replace action"#,
            ),
        ];
        for (yaml, key, message) in cases {
            assert_eq!(load(yaml, &g), Err(Problem::new(key, message)), "{yaml}");
        }
        // A relabel rule may rewrite a URL-looking address, so it is allowed then.
        assert!(
            load(
                "job_name: j\nstatic_configs: [{targets: ['http://h']}]\nrelabel_configs: [{target_label: a}]",
                &g
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_protocol_is_refused_by_the_parser() {
        let e = serde_saphyr::from_str::<ScrapeConfig>("job_name: j\nscrape_protocols: [Carrier]")
            .unwrap_err();
        assert!(e.to_string().contains("Carrier"), "{e}");
    }

    #[test]
    fn relabel_rules_get_the_job_scheme() {
        let c = load(
            "job_name: j\nmetric_name_validation_scheme: legacy\nmetric_relabel_configs: [{target_label: a}]",
            &GlobalConfig::default(),
        )
        .unwrap();
        assert_eq!(
            c.metric_relabel_configs[0].name_validation,
            NameValidation::Legacy
        );
    }

    #[test]
    fn sd_configs_and_paths() {
        let mut c = load(
            "job_name: j\nstatic_configs: [{targets: [a:1]}]\nfile_sd_configs: [{files: [t/*.json]}]\n\
             bearer_token_file: tok\ntls_config: {ca_file: ca.pem}",
            &GlobalConfig::default(),
        )
        .unwrap();
        c.resolve_paths("/etc/cairn");
        let sd = c.sd_configs();
        assert_eq!(sd.static_configs[0].targets, ["a:1"]);
        assert_eq!(sd.file_sd_configs[0].files, ["/etc/cairn/t/*.json"]);
        let auth = c.authorization.as_ref().unwrap();
        assert_eq!(auth.credentials_file.as_deref(), Some("/etc/cairn/tok"));
        assert_eq!(c.tls_config.ca_file.as_deref(), Some("/etc/cairn/ca.pem"));
        assert!(c.bearer_token_file.is_none());
    }
}
