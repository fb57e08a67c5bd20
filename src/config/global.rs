//! The `global` section: defaults every scrape job inherits (interval, timeout, limits,
//! protocols, name validation), the rule evaluation interval and the external labels.
//! Defaults are Prometheus's except `evaluation_interval`, which is 30s in cairn.

use super::de::nullable;
use super::error::Problem;
use super::scrape::{ScrapeProtocol, validate_protocols};
use super::units::ByteSize;
use crate::model::Labels;
use crate::model::time::PromDuration;
use crate::relabel::NameValidation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_SCRAPE_INTERVAL: PromDuration = PromDuration(std::time::Duration::from_secs(60));
pub const DEFAULT_SCRAPE_TIMEOUT: PromDuration = PromDuration(std::time::Duration::from_secs(10));
/// cairn evaluates rules every 30s by default; Prometheus's default is 1m.
pub const DEFAULT_EVALUATION_INTERVAL: PromDuration =
    PromDuration(std::time::Duration::from_secs(30));

/// `global:`. After load every duration holds its effective value. Deserializing this
/// type alone gives the values as written (zero where absent); `config::parse` resolves
/// them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default = "GlobalConfig::as_written")]
pub struct GlobalConfig {
    pub scrape_interval: PromDuration,
    pub scrape_timeout: PromDuration,
    /// Protocols offered to targets, most preferred first; `None` leaves each job to its
    /// own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub evaluation_interval: PromDuration,
    #[serde(skip_serializing_if = "is_zero_duration")]
    pub rule_query_offset: PromDuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_failure_log_file: Option<String>,
    /// Labels added to every series and alert sent to the outside world. Values may use
    /// `$VAR`/`${VAR}` environment references, expanded at load.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub external_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub body_size_limit: ByteSize,
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
    pub metric_name_validation_scheme: NameValidation,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

pub(crate) fn is_zero_duration(d: &PromDuration) -> bool {
    d.0.is_zero()
}

impl Default for GlobalConfig {
    /// The effective defaults of an empty `global` section.
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            ..GlobalConfig::as_written()
        }
    }
}

impl GlobalConfig {
    /// Absent keys before resolution: zero durations mean "not set", as in Prometheus.
    fn as_written() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration::default(),
            scrape_timeout: PromDuration::default(),
            scrape_protocols: None,
            evaluation_interval: PromDuration::default(),
            rule_query_offset: PromDuration::default(),
            query_log_file: None,
            scrape_failure_log_file: None,
            external_labels: BTreeMap::new(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: NameValidation::default(),
        }
    }

    /// External labels as a label set (empty values dropped, as everywhere in cairn).
    pub fn external_labels(&self) -> Labels {
        Labels::from_pairs(
            self.external_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    /// Fills unset values with defaults and checks the section, as Prometheus does.
    pub(crate) fn resolve(&mut self) -> Result<(), Problem> {
        let scheme = self.metric_name_validation_scheme;
        if let Some(bad) = self
            .external_labels
            .keys()
            .find(|n| !scheme.is_valid_label_name(n))
        {
            return Err(Problem::new(
                "external_labels",
                format!("{bad:?} is not a valid label name"),
            ));
        }
        if self.scrape_interval.0.is_zero() {
            self.scrape_interval = DEFAULT_SCRAPE_INTERVAL;
        }
        if self.scrape_timeout > self.scrape_interval {
            return Err(Problem::new(
                "scrape_timeout",
                "global scrape timeout greater than scrape interval",
            ));
        }
        if self.scrape_timeout.0.is_zero() {
            self.scrape_timeout = DEFAULT_SCRAPE_TIMEOUT.min(self.scrape_interval);
        }
        if self.evaluation_interval.0.is_zero() {
            self.evaluation_interval = DEFAULT_EVALUATION_INTERVAL;
        }
        if let Some(protocols) = &self.scrape_protocols {
            validate_protocols(protocols)
                .map_err(|m| Problem::new("scrape_protocols", format!("{m} for global config")))?;
        }
        Ok(())
    }

    /// Expands environment references in external label values.
    pub(crate) fn expand_external_labels(&mut self, lookup: &dyn Fn(&str) -> Option<String>) {
        for value in self.external_labels.values_mut() {
            if value.contains('$') {
                *value = super::env::expand_env(value, lookup);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(yaml: &str) -> Result<GlobalConfig, Problem> {
        let mut g: GlobalConfig = serde_saphyr::from_str(yaml).unwrap();
        g.resolve().map(|()| g)
    }

    fn secs(s: u64) -> PromDuration {
        PromDuration::from_secs(s)
    }

    #[test]
    fn defaults() {
        let g = resolved("{}").unwrap();
        assert_eq!(g, GlobalConfig::default());
        assert_eq!(g.scrape_interval, secs(60));
        assert_eq!(g.scrape_timeout, secs(10));
        assert_eq!(g.evaluation_interval, secs(30));
        assert_eq!(g.metric_name_validation_scheme, NameValidation::Utf8);
    }

    #[test]
    fn timeout_follows_a_short_interval() {
        let g = resolved("scrape_interval: 5s").unwrap();
        assert_eq!(g.scrape_timeout, secs(5));
        let g = resolved("scrape_interval: 15s").unwrap();
        assert_eq!(g.scrape_timeout, secs(10));
        let e = resolved("scrape_interval: 5s\nscrape_timeout: 6s").unwrap_err();
        assert_eq!(
            e,
            Problem::new(
                "scrape_timeout",
                "global scrape timeout greater than scrape interval"
            )
        );
    }

    #[test]
    fn external_label_names() {
        let e = resolved("external_labels: {'': x}").unwrap_err();
        assert_eq!(e.message, r#""" is not a valid label name"#);
        assert!(resolved("external_labels: {a.b: x}").is_ok());
        let e = resolved("metric_name_validation_scheme: legacy\nexternal_labels: {a.b: x}");
        assert_eq!(e.unwrap_err().message, r#""a.b" is not a valid label name"#);
    }

    #[test]
    fn protocols() {
        let e = resolved("scrape_protocols: []").unwrap_err();
        assert_eq!(
            e.message,
            "scrape_protocols cannot be empty for global config"
        );
        let g = resolved("scrape_protocols: [PrometheusText0.0.4]").unwrap();
        assert_eq!(
            g.scrape_protocols,
            Some(vec![ScrapeProtocol::PrometheusText0_0_4])
        );
    }

    #[test]
    fn expands_environment_in_label_values() {
        let mut g = resolved("external_labels: {dc: '${DC}', cost: '$$1', plain: x}").unwrap();
        g.expand_external_labels(&|n| (n == "DC").then(|| "eu-1".to_string()));
        assert_eq!(g.external_labels["dc"], "eu-1");
        assert_eq!(g.external_labels["cost"], "$1");
        assert_eq!(g.external_labels().get("plain"), Some("x"));
    }
}
