//! Which label names relabeling may write: Prometheus's two name validation schemes and
//! the checks each one implies. This file only answers "is this name acceptable"; it
//! never changes a label set.

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// How strictly label names are checked, as Prometheus's `metric_name_validation_scheme`
/// setting spells it. Prometheus 3 defaults to `utf8`, where any non-empty name is
/// valid; `legacy` keeps the classic `[a-zA-Z_][a-zA-Z0-9_]*` rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidation {
    Legacy,
    #[default]
    Utf8,
}

impl NameValidation {
    /// Whether `name` may be used as a label name under this scheme. Rust strings are
    /// always valid UTF-8, so under `utf8` only the empty name is refused.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(name),
        }
    }

    /// Whether a `target_label` or `labelmap` replacement that contains `$` references
    /// may expand to a valid name. Under `legacy` this is Prometheus's template pattern:
    /// letters, digits and `_`, with `$name`/`${name}` references standing in for
    /// characters, and never a leading digit.
    pub fn is_valid_name_template(self, template: &str) -> bool {
        match self {
            NameValidation::Utf8 => !template.is_empty(),
            NameValidation::Legacy => LEGACY_TEMPLATE.is_match(template),
        }
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the classic Prometheus label name.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

// `\w` is spelled as an ASCII class because Go's `\w` is ASCII-only and Rust's is not.
static LEGACY_TEMPLATE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
        .expect("constant pattern compiles")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        for ok in ["a", "_", "__name__", "A9_b"] {
            assert!(is_legacy_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a.b", "ä", " a"] {
            assert!(!is_legacy_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn utf8_accepts_anything_non_empty() {
        assert!(NameValidation::Utf8.is_valid_label_name("a.b-c ä"));
        assert!(!NameValidation::Utf8.is_valid_label_name(""));
        assert!(!NameValidation::Legacy.is_valid_label_name("a.b"));
    }

    #[test]
    fn legacy_templates() {
        let l = NameValidation::Legacy;
        for ok in ["$1", "${1}", "foo_${1}", "$1_$2", "x$name", "${a}b9"] {
            assert!(l.is_valid_name_template(ok), "{ok}");
        }
        for bad in ["", "1$1", "$", "${}", "a-$1", "${1", "$-"] {
            assert!(!l.is_valid_name_template(bad), "{bad}");
        }
        assert!(NameValidation::Utf8.is_valid_name_template("a-$1"));
    }

    #[test]
    fn scheme_yaml_names() {
        let v: NameValidation = serde_saphyr::from_str("legacy").unwrap();
        assert_eq!(v, NameValidation::Legacy);
        assert_eq!(
            serde_saphyr::to_string(&NameValidation::Utf8)
                .unwrap()
                .trim(),
            "utf8"
        );
        assert!(serde_saphyr::from_str::<NameValidation>("strict").is_err());
    }
}
