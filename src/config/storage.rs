//! The `storage` section: TSDB settings that can change on reload (out-of-order window,
//! retention) and the exemplar buffer size. Only the schema; the TSDB applies it.

use super::global::is_zero_duration;
use super::units::ByteSize;
use crate::model::time::PromDuration;
use serde::{Deserialize, Serialize};

/// `storage:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsdb: Option<TsdbConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exemplars: Option<ExemplarsConfig>,
}

impl StorageConfig {
    pub fn is_empty(&self) -> bool {
        self.tsdb.is_none() && self.exemplars.is_none()
    }

    /// How far back out-of-order samples are accepted; zero when not configured.
    pub fn out_of_order_time_window(&self) -> PromDuration {
        self.tsdb
            .as_ref()
            .map(|t| t.out_of_order_time_window)
            .unwrap_or_default()
    }
}

/// `storage.tsdb`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    #[serde(skip_serializing_if = "is_zero_duration")]
    pub out_of_order_time_window: PromDuration,
    /// Overrides the `--storage.tsdb.retention.*` flags when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionConfig>,
}

/// `storage.tsdb.retention`: zero means "not set here".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    #[serde(skip_serializing_if = "is_zero_duration")]
    pub time: PromDuration,
    #[serde(skip_serializing_if = "ByteSize::is_zero")]
    pub size: ByteSize,
}

/// `storage.exemplars`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Size of the in-memory exemplar ring; zero or less disables exemplar storage.
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig {
            max_exemplars: 100_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsdb_settings() {
        let s: StorageConfig = serde_saphyr::from_str(
            "tsdb:\n  out_of_order_time_window: 30m\n  retention: {time: 15d, size: 512GB}\n",
        )
        .unwrap();
        assert_eq!(s.out_of_order_time_window(), PromDuration::from_secs(1800));
        let r = s.tsdb.unwrap().retention.unwrap();
        assert_eq!(r.time, PromDuration::from_secs(15 * 86_400));
        assert_eq!(r.size, ByteSize(512 << 30));
        assert_eq!(
            StorageConfig::default().out_of_order_time_window(),
            PromDuration::default()
        );
        let e: ExemplarsConfig = serde_saphyr::from_str("{}").unwrap();
        assert_eq!(e.max_exemplars, 100_000);
        assert!(serde_saphyr::from_str::<StorageConfig>("tsdb: {ooo: 1m}").is_err());
    }
}
