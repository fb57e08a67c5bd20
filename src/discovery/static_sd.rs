//! Static discovery: `static_configs` turned into target groups once, when a job starts.
//! Nothing here changes at run time, so no task runs for it.

use super::{ADDRESS_LABEL, StaticConfig, TargetGroup};
use crate::model::Labels;

/// One group per `static_configs` entry, in order: source `"<index>"`, one
/// `{__address__="<target>"}` label set per target, the entry's `labels` as group labels.
/// Label names are the config loader's to check; empty values mean "absent", as everywhere.
pub fn static_groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c
                .targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels: Labels::from_pairs(&c.labels),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn one_group_per_config_with_index_source() {
        let configs = vec![
            StaticConfig {
                targets: vec!["localhost:9090".into(), "[::1]:9100".into()],
                labels: BTreeMap::from([
                    ("env".into(), "prod".into()),
                    ("empty".into(), "".into()),
                ]),
            },
            StaticConfig {
                targets: vec![],
                labels: BTreeMap::new(),
            },
        ];
        let g = static_groups(&configs);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "0");
        assert_eq!(g[1].source, "1");
        assert_eq!(
            g[0].targets,
            [
                Labels::from_pairs([("__address__", "localhost:9090")]),
                Labels::from_pairs([("__address__", "[::1]:9100")]),
            ]
        );
        assert_eq!(g[0].labels, Labels::from_pairs([("env", "prod")]));
        assert!(g[1].targets.is_empty() && g[1].labels.is_empty());
    }

    #[test]
    fn no_configs_no_groups() {
        assert!(static_groups(&[]).is_empty());
    }
}
