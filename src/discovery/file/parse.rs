//! The file SD target file format: a JSON (`.json`) or YAML (`.yml`, `.yaml`) list of
//! `{targets: [...], labels: {...}}` turned into [`TargetGroup`]s with `__meta_filepath`
//! and `<path>:<index>` sources. Pure: it gets the bytes, it never touches the disk.

use super::FileSdError;
use crate::discovery::{ADDRESS_LABEL, TargetGroup};
use crate::model::{Labels, LabelsBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The group label naming the file a group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// One list item as written in the file. `null` targets, labels and label values are
/// accepted and mean "none", as Go's decoders treat them; unknown keys are errors, as
/// Prometheus decodes strictly.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Option<Vec<Option<String>>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Option<String>>>,
}

/// The file's format, chosen by its extension (any case, as Prometheus lowercases it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

impl Format {
    fn of_path(path: &str) -> Option<Format> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = name.rsplit_once('.')?.1;
        if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if ext.eq_ignore_ascii_case("yml") || ext.eq_ignore_ascii_case("yaml") {
            Some(Format::Yaml)
        } else {
            None
        }
    }
}

/// Parses a target file's content. `path` picks the format, names the groups' sources
/// (`<path>:<index>`) and becomes their `__meta_filepath`. An empty YAML document or a JSON
/// `null` is an empty list, as in Prometheus; a `null` list item is an error.
pub fn parse_target_groups(path: &str, content: &[u8]) -> Result<Vec<TargetGroup>, FileSdError> {
    let items: Option<Vec<Option<FileGroup>>> = match Format::of_path(path) {
        Some(Format::Json) => {
            serde_json::from_slice(content).map_err(|source| FileSdError::Json {
                path: path.to_string(),
                source,
            })?
        }
        Some(Format::Yaml) => serde_saphyr::from_slice_with_options(content, yaml_options())
            .map_err(|source| FileSdError::Yaml {
                path: path.to_string(),
                source: Box::new(source),
            })?,
        None => {
            return Err(FileSdError::UnknownExtension {
                path: path.to_string(),
            });
        }
    };
    let items = items.unwrap_or_default();
    let mut groups = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let item = item.ok_or_else(|| FileSdError::NullGroup {
            path: path.to_string(),
            index,
        })?;
        groups.push(to_target_group(path, index, item)?);
    }
    Ok(groups)
}

/// saphyr's defaults (strict duplicate keys, YAML 1.2 scalars), minus the source snippet:
/// errors end up in one log line, where `line L column C` says enough.
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.with_snippet = false;
    o
}

fn to_target_group(path: &str, index: usize, g: FileGroup) -> Result<TargetGroup, FileSdError> {
    let mut labels = LabelsBuilder::new();
    for (name, value) in g.labels.unwrap_or_default() {
        if !is_valid_label_name(&name) {
            return Err(FileSdError::InvalidLabelName {
                path: path.to_string(),
                index,
                name,
            });
        }
        labels.set(name, value.unwrap_or_default());
    }
    // Set last: the file's own path wins over a user label of the same name.
    labels.set(FILEPATH_LABEL, path);
    let targets = g
        .targets
        .unwrap_or_default()
        .into_iter()
        .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.unwrap_or_default())]))
        .collect();
    Ok(TargetGroup {
        source: format!("{path}:{index}"),
        targets,
        labels: labels.into_labels(),
    })
}

/// Prometheus 3 validates names with its UTF-8 scheme: any non-empty UTF-8 string is a
/// label name (a Rust `String` is always UTF-8, the decoders reject anything else). The
/// legacy `[a-zA-Z_][a-zA-Z0-9_]*` rule applies to scraped series only where a scrape
/// config asks for it, never to discovery.
fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(g: &TargetGroup) -> Vec<&str> {
        g.targets
            .iter()
            .map(|t| t.get(ADDRESS_LABEL).unwrap_or(""))
            .collect()
    }

    #[test]
    fn json_groups_get_source_and_filepath() {
        let src = br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}},
                       {"targets": []}]"#;
        let g = parse_target_groups("sd/x.json", src).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "sd/x.json:0");
        assert_eq!(g[1].source, "sd/x.json:1");
        assert_eq!(addrs(&g[0]), ["a:1", "b:2"]);
        assert_eq!(g[0].targets[0].len(), 1);
        assert_eq!(g[0].labels.get("env"), Some("prod"));
        assert_eq!(g[0].labels.get(FILEPATH_LABEL), Some("sd/x.json"));
        assert!(g[1].targets.is_empty());
        assert_eq!(g[1].labels.get(FILEPATH_LABEL), Some("sd/x.json"));
    }

    #[test]
    fn yaml_scalars_are_strings_and_nulls_are_absent() {
        let src = b"- targets: [1234, 'h:9100']\n  labels: {rack: 1.50, up: yes, gone: ~}\n";
        let g = parse_target_groups("x.YAML", src).unwrap();
        assert_eq!(addrs(&g[0]), ["1234", "h:9100"]);
        assert_eq!(g[0].labels.get("rack"), Some("1.50"));
        assert_eq!(g[0].labels.get("up"), Some("yes"));
        assert_eq!(g[0].labels.get("gone"), None);
    }

    #[test]
    fn empty_documents_are_empty_lists() {
        assert!(parse_target_groups("a.yml", b"").unwrap().is_empty());
        assert!(
            parse_target_groups("a.yml", b"# nothing\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_target_groups("a.json", b"null").unwrap().is_empty());
        assert!(parse_target_groups("a.json", b"[]").unwrap().is_empty());
        // An empty JSON file is not a document at all.
        assert!(parse_target_groups("a.json", b"").is_err());
    }

    #[test]
    fn filepath_label_cannot_be_overridden() {
        let src = br#"[{"targets": ["a"], "labels": {"__meta_filepath": "lie"}}]"#;
        let g = parse_target_groups("real.json", src).unwrap();
        assert_eq!(g[0].labels.get(FILEPATH_LABEL), Some("real.json"));
    }

    #[test]
    fn strictness_matches_prometheus() {
        let unknown_key = br#"[{"targets": ["a"], "lables": {}}]"#;
        assert!(matches!(
            parse_target_groups("a.json", unknown_key),
            Err(FileSdError::Json { .. })
        ));
        let numeric_target = br#"[{"targets": [80]}]"#;
        assert!(parse_target_groups("a.json", numeric_target).is_err());
        let null_item = b"[null]";
        assert!(matches!(
            parse_target_groups("a.json", null_item),
            Err(FileSdError::NullGroup { index: 0, .. })
        ));
        let empty_name = b"- targets: [a]\n  labels: {'': x}\n";
        let e = parse_target_groups("a.yml", empty_name).unwrap_err();
        assert!(matches!(e, FileSdError::InvalidLabelName { index: 0, .. }));
        let dup = b"- targets: [a]\n  labels: {k: 1, k: 2}\n";
        assert!(matches!(
            parse_target_groups("a.yml", dup),
            Err(FileSdError::Yaml { .. })
        ));
        let not_a_list = br#"{"targets": ["a"]}"#;
        assert!(parse_target_groups("a.json", not_a_list).is_err());
    }

    #[test]
    fn utf8_label_names_are_valid() {
        let src = "[{\"targets\": [\"a\"], \"labels\": {\"zone.name\": \"é\"}}]";
        let g = parse_target_groups("a.json", src.as_bytes()).unwrap();
        assert_eq!(g[0].labels.get("zone.name"), Some("é"));
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let e = parse_target_groups("dir/bad.yml", b"- targets: [a\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("dir/bad.yml: "), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        let e = parse_target_groups("bad.json", b"[{\"targets\": [}]").unwrap_err();
        assert!(e.to_string().contains("bad.json: "), "{e}");
        assert!(e.to_string().contains("column"), "{e}");
    }

    #[test]
    fn format_by_extension() {
        assert_eq!(Format::of_path("a/b.json"), Some(Format::Json));
        assert_eq!(Format::of_path("a/b.Yml"), Some(Format::Yaml));
        assert_eq!(Format::of_path("a.json/b"), None);
        assert_eq!(Format::of_path("json"), None);
        assert!(matches!(
            parse_target_groups("a.txt", b"[]"),
            Err(FileSdError::UnknownExtension { .. })
        ));
    }
}
