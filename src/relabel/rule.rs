//! One `relabel_config` entry: its YAML shape, Prometheus's defaults, its load-time
//! validation (with Prometheus's error messages) and its regex, compiled once. Applying
//! rules to labels lives in `process.rs`; nothing here touches a label set.

use super::names::NameValidation;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::LazyLock;

/// What a relabel rule does. YAML names are lowercase; Prometheus also accepts any case
/// on input (`Replace`, `HASHMOD`), and so does cairn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name in any letter case.
    pub fn parse(s: &str) -> Result<Action, RelabelError> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| RelabelError::UnknownAction(s.to_string()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a relabel config is refused at load. Messages are Prometheus's.
#[derive(Debug, thiserror::Error)]
pub enum RelabelError {
    #[error("unknown relabel action {0:?}")]
    UnknownAction(String),
    #[error("invalid regular expression {pattern:?}: {source}")]
    BadRegex {
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("{0:?} is not a valid label name")]
    BadSourceLabel(String),
    #[error("relabel configuration for hashmod requires non-zero modulus")]
    ZeroModulus,
    #[error("relabel configuration for {0} action requires 'target_label' value")]
    MissingTargetLabel(Action),
    #[error("{label:?} is invalid 'target_label' for {action} action")]
    BadTargetLabel { label: String, action: Action },
    #[error("'replacement' can not be set for {0} action")]
    ReplacementNotAllowed(Action),
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    BadReplacement { replacement: String, action: Action },
    #[error("{0} action requires only 'source_labels' and `target_label`, and no other fields")]
    OnlySourceAndTarget(Action),
    #[error("{0} action requires only 'regex', and no other fields")]
    OnlyRegex(Action),
}

pub(crate) const DEFAULT_PATTERN: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

static DEFAULT_COMPILED: LazyLock<regex::Regex> =
    LazyLock::new(|| compile(DEFAULT_PATTERN).expect("the default relabel regex compiles"));

fn compile(pattern: &str) -> Result<regex::Regex, RelabelError> {
    // Fully anchored, and `.` matches newlines, as Prometheus compiles it. Note that
    // Rust's `\d`, `\w`, `\s` and `\b` are Unicode-aware where Go's are ASCII-only; cairn
    // uses the same dialect for label matchers, so the two stay consistent.
    regex::Regex::new(&format!("^(?s:{pattern})$")).map_err(|source| RelabelError::BadRegex {
        pattern: pattern.to_string(),
        source: Box::new(source),
    })
}

/// A relabel regex: the pattern as written plus its anchored compiled form. Equality and
/// serialization use the pattern as written.
#[derive(Clone, Debug)]
pub struct Regex {
    pattern: String,
    compiled: regex::Regex,
    /// False only for the default that applies when `regex` is absent. Prometheus treats
    /// an explicit `regex: (.*)` differently from an absent one (keepequal/dropequal
    /// reject the former, and the config printer omits only the latter).
    explicit: bool,
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, RelabelError> {
        Ok(Regex {
            pattern: pattern.to_string(),
            compiled: compile(pattern)?,
            explicit: true,
        })
    }

    /// The pattern as the user wrote it, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether this is the default `(.*)` that applies when no `regex` was given.
    pub fn is_default(&self) -> bool {
        !self.explicit
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.compiled.is_match(s)
    }

    pub(crate) fn compiled(&self) -> &regex::Regex {
        &self.compiled
    }
}

impl Default for Regex {
    fn default() -> Self {
        Regex {
            pattern: DEFAULT_PATTERN.to_string(),
            compiled: DEFAULT_COMPILED.clone(),
            explicit: false,
        }
    }
}

impl PartialEq for Regex {
    fn eq(&self, o: &Self) -> bool {
        self.pattern == o.pattern
    }
}

impl Eq for Regex {}

impl Serialize for Regex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.pattern)
    }
}

impl<'de> Deserialize<'de> for Regex {
    /// A YAML null (`regex:` with no value) is the empty pattern, which matches only the
    /// empty string; that is what Prometheus makes of it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = Option::<String>::deserialize(d)?.unwrap_or_default();
        Regex::new(&pattern).map_err(serde::de::Error::custom)
    }
}

/// One relabel rule, as in `relabel_configs`, `metric_relabel_configs`,
/// `alert_relabel_configs` and `write_relabel_configs`. A deserialized value has passed
/// [`RelabelConfig::validate`] under the UTF-8 scheme; `config` re-validates under
/// `legacy` where a scrape config asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RelabelConfigYaml")]
pub struct RelabelConfig {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "flow_sequence"
    )]
    pub source_labels: Vec<String>,
    pub separator: String,
    #[serde(skip_serializing_if = "Regex::is_default")]
    pub regex: Regex,
    #[serde(skip_serializing_if = "is_zero")]
    pub modulus: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
    /// The scheme that decides which label names a `replace` may write; set by `config`
    /// from the owning scrape config (or the global setting). Not part of the YAML.
    #[serde(skip)]
    pub name_validation: NameValidation,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// Prometheus prints `source_labels` in flow style: `[__meta_a, __meta_b]`.
fn flow_sequence<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    serde_saphyr::FlowSeq(v).serialize(s)
}

impl Default for RelabelConfig {
    /// Prometheus's defaults: `replace`, separator `;`, regex `(.*)`, replacement `$1`.
    /// Not valid by itself: `replace` needs a `target_label`.
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: Regex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
            name_validation: NameValidation::default(),
        }
    }
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does at load, with label names judged by `scheme`.
    pub fn validate(&self, scheme: NameValidation) -> Result<(), RelabelError> {
        use Action::*;
        let action = self.action;
        if let Some(bad) = self
            .source_labels
            .iter()
            .find(|n| !scheme.is_valid_label_name(n))
        {
            return Err(RelabelError::BadSourceLabel(bad.clone()));
        }
        if action == HashMod && self.modulus == 0 {
            return Err(RelabelError::ZeroModulus);
        }
        let writes_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if writes_target && self.target_label.is_empty() {
            return Err(RelabelError::MissingTargetLabel(action));
        }
        let bad_target = || RelabelError::BadTargetLabel {
            label: self.target_label.clone(),
            action,
        };
        let target_ok = match action {
            Replace if self.target_label.contains('$') => {
                scheme.is_valid_name_template(&self.target_label)
            }
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual => {
                scheme.is_valid_label_name(&self.target_label)
            }
            _ => true,
        };
        if !target_ok {
            return Err(bad_target());
        }
        let default_replacement = self.replacement == DEFAULT_REPLACEMENT;
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual) && !default_replacement {
            return Err(RelabelError::ReplacementNotAllowed(action));
        }
        if action == LabelMap && !scheme.is_valid_name_template(&self.replacement) {
            return Err(RelabelError::BadReplacement {
                replacement: self.replacement.clone(),
                action,
            });
        }
        let default_separator = self.separator == DEFAULT_SEPARATOR;
        if matches!(action, KeepEqual | DropEqual)
            && (!self.regex.is_default()
                || self.modulus != 0
                || !default_separator
                || !default_replacement)
        {
            return Err(RelabelError::OnlySourceAndTarget(action));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || !default_separator
                || !default_replacement)
        {
            return Err(RelabelError::OnlyRegex(action));
        }
        Ok(())
    }
}

/// The YAML form before defaults and validation. `Option`s tell an absent key from a
/// given one; `regex` also tells a null (`Some(None)`) from an absent key (`None`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelabelConfigYaml {
    #[serde(default)]
    source_labels: Option<Vec<String>>,
    #[serde(default)]
    separator: Option<String>,
    #[serde(default, deserialize_with = "present")]
    regex: Option<Regex>,
    #[serde(default)]
    modulus: Option<u64>,
    #[serde(default)]
    target_label: Option<String>,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    action: Option<Action>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl TryFrom<RelabelConfigYaml> for RelabelConfig {
    type Error = RelabelError;

    fn try_from(y: RelabelConfigYaml) -> Result<Self, RelabelError> {
        let d = RelabelConfig::default();
        let action = y.action.unwrap_or(d.action);
        // Prometheus refuses `source_labels: []` on labeldrop/labelkeep too: any
        // `source_labels` key counts as setting it.
        if matches!(action, Action::LabelDrop | Action::LabelKeep) && y.source_labels.is_some() {
            return Err(RelabelError::OnlyRegex(action));
        }
        let cfg = RelabelConfig {
            source_labels: y.source_labels.unwrap_or_default(),
            separator: y.separator.unwrap_or(d.separator),
            regex: y.regex.unwrap_or(d.regex),
            modulus: y.modulus.unwrap_or(d.modulus),
            target_label: y.target_label.unwrap_or(d.target_label),
            replacement: y.replacement.unwrap_or(d.replacement),
            action,
            name_validation: NameValidation::Utf8,
        };
        cfg.validate(NameValidation::Utf8)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<RelabelConfig, String> {
        serde_saphyr::from_str::<RelabelConfig>(y).map_err(|e| e.without_snippet().to_string())
    }

    #[test]
    fn defaults() {
        let c = parse("target_label: x").unwrap();
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.separator, ";");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert!(c.regex.is_default());
        assert!(c.source_labels.is_empty());
    }

    #[test]
    fn action_names_any_case() {
        assert_eq!(parse("action: DROP").unwrap().action, Action::Drop);
        assert_eq!(
            parse("action: HashMod\nmodulus: 2\ntarget_label: s")
                .unwrap()
                .action,
            Action::HashMod
        );
        let e = parse("action: explode").unwrap_err();
        assert!(e.contains(r#"unknown relabel action "explode""#), "{e}");
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let c = parse("regex: 'fo+'\naction: keep").unwrap();
        assert!(c.regex.is_match("foo"));
        assert!(!c.regex.is_match("xfoo"));
        assert!(!c.regex.is_match("foox"));
        let c = parse("regex: 'a.b'\naction: keep").unwrap();
        assert!(c.regex.is_match("a\nb"));
        // An alternation must not escape the anchors.
        let c = parse("regex: 'a|b'\naction: keep").unwrap();
        assert!(!c.regex.is_match("ab"));
    }

    #[test]
    fn null_regex_is_empty_pattern() {
        let c = parse("regex:\naction: keep").unwrap();
        assert_eq!(c.regex.as_str(), "");
        assert!(!c.regex.is_default());
        assert!(c.regex.is_match(""));
        assert!(!c.regex.is_match("a"));
    }

    #[test]
    fn validation_messages() {
        let cases = [
            (
                "regex: '('\naction: keep",
                "invalid regular expression \"(\"",
            ),
            (
                "action: hashmod\ntarget_label: x",
                "requires non-zero modulus",
            ),
            (
                "action: replace",
                "for replace action requires 'target_label' value",
            ),
            (
                "action: lowercase",
                "for lowercase action requires 'target_label' value",
            ),
            (
                "action: keepequal",
                "for keepequal action requires 'target_label' value",
            ),
            (
                "target_label: ''",
                "for replace action requires 'target_label' value",
            ),
            (
                "action: uppercase\ntarget_label: x\nreplacement: y",
                "'replacement' can not be set for uppercase action",
            ),
            (
                "action: keepequal\ntarget_label: x\nregex: '(.*)'",
                "keepequal action requires only 'source_labels' and `target_label`",
            ),
            (
                "action: dropequal\ntarget_label: x\nseparator: ','",
                "dropequal action requires only 'source_labels' and `target_label`",
            ),
            (
                "action: labeldrop\nregex: x\ntarget_label: y",
                "labeldrop action requires only 'regex', and no other fields",
            ),
            (
                "action: labelkeep\nsource_labels: []",
                "labelkeep action requires only 'regex', and no other fields",
            ),
            (
                "source_labels: ['']\ntarget_label: x",
                "\"\" is not a valid label name",
            ),
            ("bogus: 1", "unknown field `bogus`"),
        ];
        for (yaml, want) in cases {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn legacy_scheme_is_stricter() {
        let c = parse("target_label: 'a.b'").unwrap();
        assert!(c.validate(NameValidation::Legacy).is_err());
        let c = parse("target_label: 'x_${1}'").unwrap();
        assert!(c.validate(NameValidation::Legacy).is_ok());
        let c = parse("target_label: '1_${1}'").unwrap();
        let e = c.validate(NameValidation::Legacy).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""1_${1}" is invalid 'target_label' for replace action"#
        );
        let c = parse("action: labelmap\nregex: '__meta_(.+)'\nreplacement: 'x-$1'").unwrap();
        assert!(c.validate(NameValidation::Legacy).is_err());
        let c = parse("action: hashmod\nmodulus: 3\ntarget_label: 'a-b'").unwrap();
        assert!(c.validate(NameValidation::Legacy).is_err());
    }

    #[test]
    fn serializes_as_written() {
        let c = parse(
            "source_labels: [a, b]\nregex: 'x(.*)'\ntarget_label: t\nreplacement: ''\nseparator: ''",
        )
        .unwrap();
        let y = serde_saphyr::to_string(&c).unwrap();
        assert!(y.contains("source_labels: [a, b]"), "{y}");
        assert!(y.contains("regex: x(.*)"), "{y}");
        assert!(y.contains("action: replace"), "{y}");
        assert_eq!(parse(&y).unwrap(), c);
        // The default regex is left out, so it stays the default on reload.
        let y =
            serde_saphyr::to_string(&parse("action: keepequal\ntarget_label: t").unwrap()).unwrap();
        assert!(!y.contains("regex"), "{y}");
        assert!(parse(&y).is_ok(), "{y}");
    }
}
