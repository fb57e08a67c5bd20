//! Literal values inside queries: numbers the way Go's `strconv` reads them (hex,
//! octal, `_` separators, `Inf`, `NaN`), durations in seconds, quoted strings, and the
//! reason a label-matcher regex does not compile, in Go's words. Pure functions and
//! small `Parser` helpers that turn one token into a value; no grammar.

use super::{ParseError, Parser};
use crate::model::time::parse_duration_ms;
use crate::promql::lexer::Token;
use crate::promql::quote::{quote, unquote};

impl Parser<'_> {
    pub(super) fn number(&self, t: &Token<'_>) -> Result<f64, ParseError> {
        parse_number(t.text).ok_or_else(|| {
            self.error_at(
                t.pos,
                format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: invalid syntax",
                    quote(t.text)
                ),
            )
        })
    }

    /// A duration token in seconds. Zero is refused, as Prometheus refuses it.
    pub(super) fn duration_secs(&self, t: &Token<'_>) -> Result<f64, ParseError> {
        let ms = parse_duration_ms(t.text).map_err(|e| self.error_at(t.pos, e.to_string()))?;
        if ms == 0 {
            return Err(self.error_at(t.pos, "duration must be greater than 0"));
        }
        Ok(ms as f64 / 1000.0)
    }

    pub(super) fn unquote(&self, t: &Token<'_>) -> Result<String, ParseError> {
        unquote(t.text).map_err(|e| {
            self.error_at(
                t.pos,
                format!("error unquoting string {}: {e}", quote(t.text)),
            )
        })
    }
}

/// Why a regex does not compile, in Go's `regexp/syntax` words where the two engines
/// agree on the cause (Prometheus users know those messages); Rust's wording otherwise.
/// Go prints the offending fragment after the reason, cairn the whole pattern.
pub(super) fn go_regexp_reason(pattern: &str, err: &regex::Error) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let go = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(e) => match e.kind() {
            K::GroupUnclosed => Some("missing closing )"),
            K::GroupUnopened => Some("unexpected )"),
            K::ClassUnclosed => Some("missing closing ]"),
            K::ClassRangeInvalid | K::ClassRangeLiteral => Some("invalid character class range"),
            K::ClassEscapeInvalid
            | K::EscapeUnrecognized
            | K::EscapeHexEmpty
            | K::EscapeHexInvalid
            | K::EscapeHexInvalidDigit
            | K::UnicodeClassInvalid => Some("invalid escape sequence"),
            K::EscapeUnexpectedEof => Some("trailing backslash at end of expression"),
            K::RepetitionMissing => Some("missing argument to repetition operator"),
            K::RepetitionCountInvalid
            | K::RepetitionCountUnclosed
            | K::RepetitionCountDecimalEmpty
            | K::DecimalEmpty
            | K::DecimalInvalid => Some("invalid repeat count"),
            K::GroupNameDuplicate { .. }
            | K::GroupNameEmpty
            | K::GroupNameInvalid
            | K::GroupNameUnexpectedEof => Some("invalid named capture"),
            K::NestLimitExceeded(_) => Some("expression nests too deeply"),
            K::FlagUnrecognized
            | K::FlagDanglingNegation
            | K::FlagDuplicate { .. }
            | K::FlagRepeatedNegation { .. }
            | K::FlagUnexpectedEof
            | K::UnsupportedLookAround
            | K::UnsupportedBackreference => Some("invalid or unsupported Perl syntax"),
            _ => None,
        },
        Ok(_) => None,
    };
    if let Some(reason) = go {
        return reason.to_string();
    }
    // Rust's messages span several lines around a caret; keep the line that says why.
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().next())
        .unwrap_or("invalid regular expression")
        .to_string()
}

/// A number token's value as Prometheus computes it: Go's `ParseInt(s, 0, 64)` first (so
/// `0x1f` is hexadecimal and, as in Prometheus, `010` is octal 8), then `ParseFloat`.
pub(super) fn parse_number(s: &str) -> Option<f64> {
    if let Some(v) = parse_go_int(s) {
        return Some(v as f64);
    }
    if s.contains('_') {
        if !underscores_ok(s) {
            return None;
        }
        return s.replace('_', "").parse().ok();
    }
    s.parse().ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)` for the unsigned texts the lexer produces.
fn parse_go_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (radix, digits) = if b.first() == Some(&b'0') && b.len() > 1 {
        match b[1].to_ascii_lowercase() {
            b'x' if b.len() >= 3 => (16, &s[2..]),
            b'o' if b.len() >= 3 => (8, &s[2..]),
            b'b' if b.len() >= 3 => (2, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() && s != "0" {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&digits, radix).ok()
}

/// Go's rule for `_` in number literals: only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    // '^' start, '0' digit or prefix, '_' underscore, '!' anything else.
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_parsing_follows_go() {
        assert_eq!(parse_number("1_0_0"), Some(100.0));
        assert_eq!(parse_number("1__0"), None);
        assert_eq!(parse_number("0x_1F"), Some(31.0));
        assert_eq!(parse_number("99999999999999999999"), Some(1e20));
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("0"), Some(0.0));
        assert_eq!(parse_number("010"), Some(8.0));
        assert!(parse_number("inF").is_some_and(|v| v == f64::INFINITY));
    }
}
