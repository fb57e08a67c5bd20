//! Deserialization helpers for YAML that Prometheus accepts and serde-saphyr would not
//! by default: a key with no value (or only commented-out entries, as in the stock
//! `prometheus.yml`) stands for an empty list, map or section, as in Go's YAML decoder.

use crate::discovery::StaticConfig;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// Deserializes `T`, taking a YAML null as `T::default()`.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `static_configs` with null tolerated at every level (`- targets:` with the targets
/// commented out is common), building `discovery`'s own type.
pub(crate) fn static_configs<'de, D>(d: D) -> Result<Vec<StaticConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StaticConfigYaml {
        #[serde(default, deserialize_with = "nullable")]
        targets: Vec<String>,
        #[serde(default, deserialize_with = "nullable")]
        labels: BTreeMap<String, String>,
    }
    let list: Option<Vec<Option<StaticConfigYaml>>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|s| StaticConfig {
            targets: s.targets,
            labels: s.labels,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default, deserialize_with = "nullable")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "static_configs")]
        static_configs: Vec<StaticConfig>,
    }

    #[test]
    fn null_is_empty() {
        let d: Doc = serde_saphyr::from_str("list:\n  # - a\n").unwrap();
        assert!(d.list.is_empty());
        let d: Doc = serde_saphyr::from_str("list: [a]").unwrap();
        assert_eq!(d.list, ["a"]);
    }

    #[test]
    fn static_configs_tolerate_commented_targets() {
        let d: Doc = serde_saphyr::from_str(
            "static_configs:\n  - targets:\n    # - alertmanager:9093\n  - targets: [a:1]\n    labels: {env: prod}\n",
        )
        .unwrap();
        assert_eq!(d.static_configs.len(), 2);
        assert!(d.static_configs[0].targets.is_empty());
        assert_eq!(d.static_configs[1].targets, ["a:1"]);
        assert_eq!(d.static_configs[1].labels["env"], "prod");
        let e = serde_saphyr::from_str::<Doc>("static_configs:\n  - target: [a]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `target`"), "{e}");
    }
}
