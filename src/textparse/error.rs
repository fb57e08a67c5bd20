//! The one error type both exposition parsers return, and the cold-path helpers that
//! build it. Errors are the only place the parsers allocate, so everything here is
//! marked `#[cold]` and kept off the per-sample path.

use std::fmt::Write as _;

/// Why an exposition could not be parsed, and where.
///
/// `line` is 1-based; `offset` is the 0-based byte offset of the offending byte in the
/// whole input (for "unexpected end of input" it is the input's length). `msg` says what
/// was expected and what was found.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("line {line}, byte {offset}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub offset: usize,
    pub msg: String,
}

impl ParseError {
    /// An error at `offset` of `buf`. The line number is counted here rather than
    /// tracked while parsing, so the hot path never pays for it.
    #[cold]
    pub(crate) fn at(buf: &[u8], offset: usize, msg: String) -> ParseError {
        let offset = offset.min(buf.len());
        let line = 1 + memchr::memchr_iter(b'\n', &buf[..offset]).count();
        ParseError { line, offset, msg }
    }
}

/// "expected {what}, got {what is at `at`}".
#[cold]
pub(crate) fn expected(buf: &[u8], at: usize, what: &str) -> ParseError {
    ParseError::at(
        buf,
        at,
        format!("expected {what}, got {}", describe(buf, at)),
    )
}

/// An error about a whole token, quoting it: "{what} \"{token}\"".
#[cold]
pub(crate) fn invalid(buf: &[u8], start: usize, end: usize, what: &str) -> ParseError {
    let token = buf.get(start..end).unwrap_or_default();
    ParseError::at(buf, start, format!("{what} {}", quote(token)))
}

/// Names what sits at `at` for an error message: the token that starts there (cut at
/// whitespace or the line's end, at most 24 bytes), or the end of the line or input.
fn describe(buf: &[u8], at: usize) -> String {
    match buf.get(at) {
        None => "end of input".to_string(),
        Some(b'\n') => "end of line".to_string(),
        Some(_) => {
            let rest = &buf[at..];
            let mut end = rest
                .iter()
                .position(|&b| matches!(b, b' ' | b'\t' | b'\n'))
                .unwrap_or(rest.len())
                .clamp(1, 24);
            end = end.min(rest.len());
            quote(&rest[..end])
        }
    }
}

/// Quotes bytes for a message: printable ASCII as is, everything else escaped, so a
/// message never carries raw control bytes or invalid UTF-8.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(s, "{}", c.escape_default());
                }
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_offset_are_counted_from_the_input() {
        let buf = b"a 1\nb 2\nc x\n";
        let e = expected(buf, 10, "value");
        assert_eq!(e.line, 3);
        assert_eq!(e.offset, 10);
        assert_eq!(e.to_string(), r#"line 3, byte 10: expected value, got "x""#);
    }

    #[test]
    fn describes_end_of_line_and_input() {
        assert_eq!(expected(b"a\n", 1, "x").msg, "expected x, got end of line");
        assert_eq!(expected(b"a", 1, "x").msg, "expected x, got end of input");
        // An offset past the end is clamped rather than panicking.
        assert_eq!(expected(b"a", 9, "x").offset, 1);
    }

    #[test]
    fn quote_escapes_control_and_invalid_bytes() {
        assert_eq!(quote(b"a\"b\\\t\xff\xc3\xa9"), r#""a\"b\\\t\xffé""#);
        assert_eq!(
            invalid(b"x 1e", 2, 4, "invalid value").msg,
            r#"invalid value "1e""#
        );
    }

    #[test]
    fn long_tokens_are_cut() {
        let buf = [b'a'; 100];
        assert_eq!(describe(&buf, 0).len(), 24 + 2);
    }
}
