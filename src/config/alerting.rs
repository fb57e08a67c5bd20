//! The `alerting` section: which Alertmanagers receive alerts (discovered like scrape
//! targets), how to reach them, and how alerts are relabeled on the way. Sending alerts
//! is the notifier's job; this is only the schema and its checks.

use super::de::{nullable, static_configs};
use super::error::Problem;
use super::http::{Authorization, BasicAuth, Secret, TlsConfig, impl_http_client_config};
use super::scrape::{check_file_sd, check_static_targets, is_false, resolve_file_sd_paths};
use crate::discovery::{FileSdConfig, SdConfigs, StaticConfig};
use crate::model::time::PromDuration;
use crate::relabel::{NameValidation, RelabelConfig};
use serde::{Deserialize, Serialize};

/// `alerting:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AlertingConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

impl AlertingConfig {
    pub fn is_empty(&self) -> bool {
        self.alert_relabel_configs.is_empty() && self.alertmanagers.is_empty()
    }
}

/// One `alertmanagers` entry: a set of Alertmanagers sharing settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
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

    pub scheme: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    pub timeout: PromDuration,
    pub api_version: String,

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
    pub alert_relabel_configs: Vec<RelabelConfig>,
}

impl_http_client_config!(AlertmanagerConfig);

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
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
            scheme: "http".to_string(),
            path_prefix: String::new(),
            timeout: PromDuration::from_secs(10),
            api_version: "v2".to_string(),
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            alert_relabel_configs: Vec::new(),
        }
    }
}

impl AlertmanagerConfig {
    /// The discovery configuration of this Alertmanager set.
    pub fn sd_configs(&self) -> SdConfigs {
        SdConfigs {
            static_configs: self.static_configs.clone(),
            file_sd_configs: self.file_sd_configs.clone(),
        }
    }

    pub(crate) fn resolve(&mut self, scheme: NameValidation) -> Result<(), Problem> {
        self.with_http_client_config(|h| h.validate())?;
        if self.api_version != "v2" {
            return Err(Problem::new(
                "api_version",
                format!(
                    "expected Alertmanager api version to be one of [v2] but got {}",
                    self.api_version
                ),
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(Problem::new(
                "scheme",
                format!(
                    "invalid scheme {:?}: must be \"http\" or \"https\"",
                    self.scheme
                ),
            ));
        }
        if self.relabel_configs.is_empty() {
            check_static_targets(&self.static_configs)?;
        }
        check_file_sd(&self.file_sd_configs)?;
        for (section, rules) in [
            ("relabel_configs", &mut self.relabel_configs),
            ("alert_relabel_configs", &mut self.alert_relabel_configs),
        ] {
            apply_scheme(section, rules, scheme)?;
        }
        Ok(())
    }

    pub(crate) fn resolve_paths(&mut self, dir: &str) {
        self.with_http_client_config(|h| h.resolve_paths(dir));
        resolve_file_sd_paths(&mut self.file_sd_configs, dir);
    }
}

/// Tells each rule which label names it may write, re-checking the rules when the
/// scheme is stricter than the one they were parsed under.
pub(crate) fn apply_scheme(
    section: &str,
    rules: &mut [RelabelConfig],
    scheme: NameValidation,
) -> Result<(), Problem> {
    for (i, rule) in rules.iter_mut().enumerate() {
        rule.validate(scheme)
            .map_err(|e| Problem::new(format!("{section}[{i}]"), e.to_string()))?;
        rule.name_validation = scheme;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<AlertmanagerConfig, Problem> {
        let mut c: AlertmanagerConfig = serde_saphyr::from_str(yaml).unwrap();
        c.resolve(NameValidation::Utf8).map(|()| c)
    }

    #[test]
    fn defaults() {
        let c = load("static_configs: [{targets: ['am:9093']}]").unwrap();
        assert_eq!(c.scheme, "http");
        assert_eq!(c.api_version, "v2");
        assert_eq!(c.timeout, PromDuration::from_secs(10));
        assert_eq!(c.sd_configs().static_configs[0].targets, ["am:9093"]);
    }

    #[test]
    fn checks() {
        let e = load("api_version: v1").unwrap_err();
        assert_eq!(
            e.message,
            "expected Alertmanager api version to be one of [v2] but got v1"
        );
        let e = load("static_configs: [{targets: ['http://am:9093']}]").unwrap_err();
        assert_eq!(e.key, "static_configs[0].targets");
        let e = load("bearer_token: a\nbasic_auth: {username: u}").unwrap_err();
        assert_eq!(e.key, "basic_auth");
        let mut c: AlertmanagerConfig =
            serde_saphyr::from_str("alert_relabel_configs: [{target_label: a.b}]").unwrap();
        let e = c.resolve(NameValidation::Legacy).unwrap_err();
        assert_eq!(e.key, "alert_relabel_configs[0]");
    }
}
