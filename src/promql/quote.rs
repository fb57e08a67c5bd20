//! PromQL string literals follow Go's quoting rules, so this file owns Go's rules: turning
//! a lexed literal (`"..."`, `'...'` or a raw `` `...` ``) into its value, and writing a
//! value back as Go's `strconv.Quote` does, which is how Prometheus prints strings, label
//! values and the runes in its error messages. It knows nothing about tokens or the AST.

use std::fmt::{self, Write};

/// Why a literal could not be unquoted. The lexer rejects bad escapes first, so only input
/// that bypassed the lexer (or the UTF-8 rule below) ends up here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquoteError {
    #[error("invalid syntax")]
    Syntax,
    /// `\xNN` and octal escapes produce raw bytes, as in Go; cairn keeps strings valid
    /// UTF-8 (Go would keep the invalid bytes), so bytes that do not form UTF-8 are an
    /// error here.
    #[error("escape sequences produce invalid UTF-8")]
    InvalidUtf8,
}

/// The value of a string literal as the lexer returned it, quotes included.
pub fn unquote(lit: &str) -> Result<String, UnquoteError> {
    let b = lit.as_bytes();
    let (Some(&q), Some(&last)) = (b.first(), b.last()) else {
        return Err(UnquoteError::Syntax);
    };
    if b.len() < 2 || q != last {
        return Err(UnquoteError::Syntax);
    }
    let body = &lit[1..lit.len() - 1];
    if q == b'`' {
        if body.contains('`') {
            return Err(UnquoteError::Syntax);
        }
        return Ok(body.to_string());
    }
    if q != b'"' && q != b'\'' {
        return Err(UnquoteError::Syntax);
    }
    if body.contains('\n') {
        return Err(UnquoteError::Syntax);
    }
    // Fast path: nothing to decode.
    if !body.contains('\\') && !body.as_bytes().contains(&q) {
        return Ok(body.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        if c == q as char {
            return Err(UnquoteError::Syntax);
        }
        if c != '\\' {
            let mut tmp = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (decoded, used) = unescape(&rest[1..], q)?;
        match decoded {
            Unescaped::Byte(byte) => out.push(byte),
            Unescaped::Char(ch) => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
        }
        rest = &rest[1 + used..];
    }
    String::from_utf8(out).map_err(|_| UnquoteError::InvalidUtf8)
}

enum Unescaped {
    Byte(u8),
    Char(char),
}

/// Decodes one escape after its backslash; returns the value and the bytes it used.
fn unescape(s: &str, quote: u8) -> Result<(Unescaped, usize), UnquoteError> {
    let b = s.as_bytes();
    let Some(&c) = b.first() else {
        return Err(UnquoteError::Syntax);
    };
    let simple = |v: u8| Ok((Unescaped::Byte(v), 1));
    match c {
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'\\' => simple(b'\\'),
        b'\'' | b'"' if c == quote => simple(c),
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = s.get(1..1 + n).ok_or(UnquoteError::Syntax)?;
            let v = u32::from_str_radix(digits, 16).map_err(|_| UnquoteError::Syntax)?;
            if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
                return Err(UnquoteError::Syntax);
            }
            if c == b'x' {
                return Ok((Unescaped::Byte(v as u8), 1 + n));
            }
            let ch = char::from_u32(v).ok_or(UnquoteError::Syntax)?;
            Ok((Unescaped::Char(ch), 1 + n))
        }
        b'0'..=b'7' => {
            let digits = s.get(..3).ok_or(UnquoteError::Syntax)?;
            if !digits.bytes().all(|d| (b'0'..=b'7').contains(&d)) {
                return Err(UnquoteError::Syntax);
            }
            let v = u32::from_str_radix(digits, 8).map_err(|_| UnquoteError::Syntax)?;
            let byte = u8::try_from(v).map_err(|_| UnquoteError::Syntax)?;
            Ok((Unescaped::Byte(byte), 3))
        }
        _ => Err(UnquoteError::Syntax),
    }
}

/// `s` in double quotes, escaped as Go's `strconv.Quote` does.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String cannot fail.
    let _ = write_quoted(&mut out, s);
    out
}

/// Writes `s` as Go's `strconv.Quote` would.
pub fn write_quoted(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        write_escaped(out, c, '"')?;
    }
    out.write_char('"')
}

/// A rune as Go's `%q` prints it: `'x'`, `'\n'`, `'\''`.
pub fn quote_rune(c: char) -> String {
    let mut out = String::with_capacity(4);
    out.push('\'');
    let _ = write_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// A rune as Go's `%#U` prints it: `U+0071 'q'`, or `U+000A` when not printable.
pub fn unicode_rune(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

fn write_escaped(out: &mut impl Write, c: char, quote: char) -> fmt::Result {
    if c == quote || c == '\\' {
        out.write_char('\\')?;
        return out.write_char(c);
    }
    if is_print(c) {
        return out.write_char(c);
    }
    match c {
        '\u{07}' => out.write_str("\\a"),
        '\u{08}' => out.write_str("\\b"),
        '\u{0c}' => out.write_str("\\f"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\u{0b}' => out.write_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => write!(out, "\\x{:02x}", c as u32),
        c if (c as u32) < 0x10000 => write!(out, "\\u{:04x}", c as u32),
        c => write!(out, "\\U{:08x}", c as u32),
    }
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space. Without Unicode tables this treats unassigned code points as printable (Go
/// escapes them); controls, separators, format characters, private use and
/// noncharacters are escaped as Go does.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format = matches!(u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f);
    let private = matches!(u, 0xe000..=0xf8ff | 0xf0000..=0x10ffff);
    let nonchar = (0xfdd0..=0xfdef).contains(&u) || (u & 0xfffe) == 0xfffe;
    !(format || private || nonchar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_escapes() {
        assert_eq!(unquote(r#""a\nb""#).unwrap(), "a\nb");
        assert_eq!(unquote(r#""\x41\101\u00e9\U0001F600""#).unwrap(), "AAé😀");
        assert_eq!(unquote(r#"'it\'s'"#).unwrap(), "it's");
        assert_eq!(unquote(r#""say \"hi\"""#).unwrap(), "say \"hi\"");
        assert_eq!(
            unquote(r#""\a\b\f\r\t\v\\""#).unwrap(),
            "\u{7}\u{8}\u{c}\r\t\u{b}\\"
        );
        // Two byte escapes that together are UTF-8 for é, as in Go.
        assert_eq!(unquote(r#""\xc3\xa9""#).unwrap(), "é");
    }

    #[test]
    fn unquote_raw_keeps_backslashes_and_newlines() {
        assert_eq!(unquote("`a\\n\nb`").unwrap(), "a\\n\nb");
    }

    #[test]
    fn unquote_rejects_weird_input() {
        assert_eq!(unquote("\""), Err(UnquoteError::Syntax));
        assert_eq!(unquote(""), Err(UnquoteError::Syntax));
        assert_eq!(unquote("\"a'"), Err(UnquoteError::Syntax));
        assert_eq!(unquote("\"a\nb\""), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\'""#), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\q""#), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\777""#), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\uD800""#), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\xff""#), Err(UnquoteError::InvalidUtf8));
        assert_eq!(unquote("`a`b`"), Err(UnquoteError::Syntax));
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(quote("é😀"), "\"é😀\"");
        assert_eq!(quote("\u{a0}\u{200b}"), r#""\u00a0\u200b""#);
        assert_eq!(quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(quote("'"), "\"'\"");
    }

    #[test]
    fn runes_like_go() {
        assert_eq!(quote_rune('}'), "'}'");
        assert_eq!(quote_rune('\''), r"'\''");
        assert_eq!(quote_rune('"'), "'\"'");
        assert_eq!(quote_rune('\n'), r"'\n'");
        assert_eq!(unicode_rune('q'), "U+0071 'q'");
        assert_eq!(unicode_rune('\n'), "U+000A");
        assert_eq!(unicode_rune('é'), "U+00E9 'é'");
    }
}
