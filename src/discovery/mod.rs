//! Service discovery: providers that turn configuration into target groups, and a
//! manager that runs one set of providers per scrape job and publishes the merged,
//! debounced result. Each mechanism owns its configuration type, as in Prometheus, so the
//! `config` module only assembles them.

use crate::model::Labels;
use crate::model::time::PromDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `static_configs` entry: fixed targets and labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `file_sd_configs` entry: JSON or YAML target files named by globs in the last path
/// element, re-read when they change and every `refresh_interval`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    #[serde(default = "default_file_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_file_refresh() -> PromDuration {
    PromDuration::from_secs(300)
}

/// All discovery configuration of one scrape job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdConfigs {
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
}

/// A set of targets sharing labels, as one provider reports it. `source` identifies the
/// group within its provider (a file and index, `static/0`) so a later update replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub source: String,
    /// One label set per target; each has `__address__` and may have `__meta_*` labels.
    pub targets: Vec<Labels>,
    /// Labels common to all targets of the group (including `__meta_*` of the group).
    pub labels: Labels,
}
