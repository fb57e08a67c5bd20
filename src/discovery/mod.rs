//! Service discovery: providers that turn configuration into target groups, and a
//! manager that runs one set of providers per scrape job and publishes the merged,
//! debounced result. Each mechanism owns its configuration type, as in Prometheus, so the
//! `config` module only assembles them.
//!
//! A provider reports the full current list of its groups (not a diff) through a callback
//! whenever that list changes; the [`Manager`] keeps the latest list of every provider and
//! publishes the union per job as [`TargetSets`].
//!
//! ```no_run
//! use cairn::discovery::{FileSdConfig, Manager, SdConfigs};
//! # async fn run() {
//! let (mut manager, mut target_sets) = Manager::new();
//! let node = SdConfigs {
//!     file_sd_configs: vec![FileSdConfig {
//!         files: vec!["discovery/*.yml".into()],
//!         refresh_interval: cairn::model::time::PromDuration::from_secs(300),
//!     }],
//!     ..SdConfigs::default()
//! };
//! manager.apply(vec![("node".to_string(), node)]);
//! while target_sets.changed().await.is_ok() {
//!     let sets = target_sets.borrow_and_update().clone();
//!     let groups = sets.get("node").map_or(0, Vec::len);
//!     println!("node has {groups} target groups");
//! }
//! # }
//! ```

mod file;
mod manager;
mod static_sd;

pub use file::{FILEPATH_LABEL, FileDiscovery, FileSdError, POLL_INTERVAL, parse_target_groups};
pub use manager::{DEBOUNCE, Manager, TargetSets};
pub use static_sd::static_groups;

use crate::model::Labels;
use crate::model::time::PromDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

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
/// group within its provider (`<path>:<index>` for a file, `<index>` for static) so a
/// later update replaces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub source: String,
    /// One label set per target; each has `__address__` and may have `__meta_*` labels.
    pub targets: Vec<Labels>,
    /// Labels common to all targets of the group (including `__meta_*` of the group).
    pub labels: Labels,
}
