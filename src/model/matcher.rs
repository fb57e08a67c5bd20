//! Label matchers (`=`, `!=`, `=~`, `!~`). Regexes are fully anchored as in Prometheus,
//! and a matcher knows when its regex is only a literal alternation or a literal prefix,
//! so the index can answer it without running the regex over every value.

use regex::Regex;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {source}")]
pub struct MatcherError {
    pub pattern: String,
    #[source]
    pub source: regex::Error,
}

/// What a regex matcher's pattern reduces to, found once at construction.
#[derive(Clone, Debug)]
enum Shape {
    /// Not a regex matcher, or a regex we must run.
    General,
    /// `a|b|c`: exactly one of these literals.
    Alternatives(Vec<String>),
    /// `abc.*`: any value starting with this literal.
    Prefix(String),
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: Option<Regex>,
    shape: Shape,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}

fn is_regex_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

fn shape_of(pattern: &str) -> Shape {
    if let Some(prefix) = pattern.strip_suffix(".*")
        && !prefix.chars().any(is_regex_meta)
    {
        return Shape::Prefix(prefix.to_string());
    }
    if !pattern.chars().any(|c| c != '|' && is_regex_meta(c)) {
        return Shape::Alternatives(pattern.split('|').map(str::to_string).collect());
    }
    Shape::General
}

impl Matcher {
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let (re, shape) = match kind {
            MatchType::Regex | MatchType::NotRegex => {
                let re = Regex::new(&format!("^(?s:{value})$")).map_err(|source| MatcherError {
                    pattern: value.clone(),
                    source,
                })?;
                (Some(re), shape_of(&value))
            }
            _ => (None, Shape::General),
        };
        Ok(Matcher {
            kind,
            name,
            value,
            re,
            shape,
        })
    }

    /// Shorthand for an equality matcher, which cannot fail.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            kind: MatchType::Equal,
            name: name.into(),
            value: value.into(),
            re: None,
            shape: Shape::General,
        }
    }

    /// Whether a label value satisfies the matcher. A missing label is the empty string.
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regex => self.regex_matches(v),
            MatchType::NotRegex => !self.regex_matches(v),
        }
    }

    fn regex_matches(&self, v: &str) -> bool {
        match &self.shape {
            Shape::Alternatives(alts) => alts.iter().any(|a| a == v),
            Shape::Prefix(p) => v.starts_with(p.as_str()),
            Shape::General => self.re.as_ref().is_some_and(|re| re.is_match(v)),
        }
    }

    /// Whether the empty string (an absent label) matches.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~"a|b"` (and `="a"`): the exact values that can match, so the index can look
    /// them up directly instead of scanning all values.
    pub fn set_values(&self) -> Option<&[String]> {
        match (&self.kind, &self.shape) {
            (MatchType::Regex, Shape::Alternatives(a)) => Some(a),
            _ => None,
        }
    }

    /// For `=~"abc.*"`: the literal prefix, so the index can scan only values with it.
    pub fn prefix(&self) -> Option<&str> {
        match (&self.kind, &self.shape) {
            (MatchType::Regex, Shape::Prefix(p)) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.kind.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchType::Regex, "a", "fo+").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches("foox"));
        let m = Matcher::new(MatchType::NotRegex, "a", "fo+").unwrap();
        assert!(m.matches("xfoo"));
    }

    #[test]
    fn shapes() {
        let m = Matcher::new(MatchType::Regex, "a", "x|yy|").unwrap();
        assert_eq!(m.set_values().unwrap(), ["x", "yy", ""]);
        assert!(m.matches("") && m.matches("yy") && !m.matches("y"));
        let m = Matcher::new(MatchType::Regex, "a", "api_.*").unwrap();
        assert_eq!(m.prefix(), Some("api_"));
        assert!(m.matches("api_x\nz"));
        assert!(!m.matches("ap"));
        let m = Matcher::new(MatchType::Regex, "a", "a.c").unwrap();
        assert!(m.set_values().is_none() && m.prefix().is_none());
        assert!(m.matches("abc"));
    }

    #[test]
    fn bad_regex_names_pattern() {
        let e = Matcher::new(MatchType::Regex, "a", "(").unwrap_err();
        assert!(e.to_string().contains("\"(\""));
    }
}
