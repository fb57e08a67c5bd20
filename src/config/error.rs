//! Why a configuration was refused, always naming the file and, where known, the line,
//! column and key, so a user can go straight to the mistake. Turning the YAML parser's
//! errors into this shape also lives here.

use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};
use std::fmt;
use std::path::PathBuf;

/// A 1-based line and column in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl Position {
    pub(crate) fn of(loc: serde_saphyr::Location) -> Option<Position> {
        (loc.line() > 0).then(|| Position {
            line: loc.line(),
            column: loc.column(),
        })
    }
}

/// `:line:column` when known, for messages that read `file:line:column: ...`.
struct At(Option<Position>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ":{}:{}", p.line, p.column),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML, or does not fit the schema: an unknown or misspelled key,
    /// a value of the wrong type, a bad duration, an invalid relabel rule.
    #[error("{file}{}: {message}", At(*at))]
    Parse {
        file: String,
        at: Option<Position>,
        key: Option<String>,
        message: String,
    },
    /// The YAML fits the schema but breaks a rule that spans fields or sections
    /// (duplicate job names, a timeout longer than its interval, conflicting
    /// credentials). `key` is a path such as `scrape_configs[2].scrape_timeout`.
    #[error("{file}{}: {key}: {message}", At(*at))]
    Invalid {
        file: String,
        at: Option<Position>,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// Where in the file the problem is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { at, .. } | ConfigError::Invalid { at, .. } => *at,
        }
    }

    /// The key at fault, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
        }
    }

    /// Converts a YAML parser error, keeping its position.
    pub(crate) fn from_yaml(file: &str, err: &serde_saphyr::Error) -> ConfigError {
        use serde_saphyr::Error as E;
        let mut inner = err;
        while let E::WithSnippet { error, .. } | E::AliasError { error, .. } = inner {
            inner = error;
        }
        let (key, message) = match inner {
            E::SerdeUnknownField {
                field, expected, ..
            } => (
                Some(field.clone()),
                format!(
                    "unknown field {field:?}, expected one of {}",
                    expected.join(", ")
                ),
            ),
            E::SerdeMissingField { field, .. } => {
                (Some(field.to_string()), format!("missing field {field:?}"))
            }
            E::DuplicateMappingKey { key: Some(k), .. } => (
                Some(k.clone()),
                format!("key {k:?} is given more than once"),
            ),
            // The message may quote input text; keep it on one line.
            other => (
                None,
                DefaultMessageFormatter
                    .format_message(other)
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            ),
        };
        ConfigError::Parse {
            file: file.to_string(),
            at: err.location().and_then(Position::of),
            key,
            message,
        }
    }
}

/// A rule broken inside one section, before the caller adds the file, the position and
/// the path of the section.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Prefixes the key with the path of the section it was found in.
    pub fn within(mut self, section: &str) -> Problem {
        self.key = if self.key.is_empty() {
            section.to_string()
        } else {
            format!("{section}.{}", self.key)
        };
        self
    }

    pub fn locate(self, file: &str, at: Option<Position>) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_string(),
            at,
            key: self.key,
            message: self.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only the error matters here
    struct Doc {
        scrape_interval: Option<String>,
    }

    #[test]
    fn unknown_field_names_file_line_column_and_key() {
        let err = serde_saphyr::from_str::<Doc>("\nscrape_intervall: 5s\n").unwrap_err();
        let e = ConfigError::from_yaml("config.yml", &err);
        assert_eq!(
            e.to_string(),
            r#"config.yml:2:1: unknown field "scrape_intervall", expected one of scrape_interval"#
        );
        assert_eq!(e.key(), Some("scrape_intervall"));
        assert_eq!(e.position(), Some(Position { line: 2, column: 1 }));
    }

    #[test]
    fn other_parser_errors_keep_their_position() {
        let err = serde_saphyr::from_str::<Doc>("scrape_interval: [1]\n").unwrap_err();
        let e = ConfigError::from_yaml("c.yml", &err);
        let s = e.to_string();
        assert!(s.starts_with("c.yml:1:18: "), "{s}");
        assert!(!s.contains("at line"), "{s}");
        let err = serde_saphyr::from_str::<Doc>("a: [\n").unwrap_err();
        assert!(ConfigError::from_yaml("c.yml", &err).position().is_some());
    }

    #[test]
    fn invalid_display() {
        let e = Problem::new("scrape_timeout", "too long")
            .within("scrape_configs[0]")
            .locate("p.yml", Some(Position { line: 3, column: 5 }));
        assert_eq!(
            e.to_string(),
            "p.yml:3:5: scrape_configs[0].scrape_timeout: too long"
        );
        let e = Problem::new("", "empty")
            .within("rule_files")
            .locate("p.yml", None);
        assert_eq!(e.to_string(), "p.yml: rule_files: empty");
    }
}
