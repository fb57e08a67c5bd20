//! Byte-level pieces both exposition parsers share: character classes, metric and label
//! name scanning, quoted label values, label blocks and duplicate-name detection.
//!
//! Everything works on `(&[u8], index)` and returns indices, so callers slice the input
//! themselves and nothing is copied. Nothing here allocates except on the error path
//! and when a [`SeenNames`] grows (once per parser, in practice).

use std::ops::Range;

use hashbrown::HashTable;

use super::error::{ParseError, expected, invalid};

const NAME_START: u8 = 1; // [a-zA-Z_:]
const NAME_CONT: u8 = 2; // [a-zA-Z0-9_:]
const LNAME_START: u8 = 4; // [a-zA-Z_]
const LNAME_CONT: u8 = 8; // [a-zA-Z0-9_]
/// Bytes that continue a plain run inside a quoted label value: all but `"`, `\`,
/// newline and non-ASCII bytes (which send the value through UTF-8 validation).
const PLAIN_QUOTED: u8 = 16;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        if alpha || c == b':' {
            t[b] |= NAME_START | NAME_CONT;
        }
        if digit {
            t[b] |= NAME_CONT | LNAME_CONT;
        }
        if alpha {
            t[b] |= LNAME_START | LNAME_CONT;
        }
        if !(c == b'"' || c == b'\\' || c == b'\n' || c >= 0x80) {
            t[b] |= PLAIN_QUOTED;
        }
        b += 1;
    }
    t
}

#[inline(always)]
pub(crate) fn is_name_start(b: u8) -> bool {
    CLASS[b as usize] & NAME_START != 0
}

#[inline(always)]
fn is_lname_start(b: u8) -> bool {
    CLASS[b as usize] & LNAME_START != 0
}

/// How many leading bytes of `bytes` belong to `class`.
#[inline(always)]
fn run_len(bytes: &[u8], class: u8) -> usize {
    bytes
        .iter()
        .position(|&b| CLASS[b as usize] & class == 0)
        .unwrap_or(bytes.len())
}

/// The end of a metric name whose first byte (already checked) is at `start`.
#[inline]
pub(crate) fn scan_name(buf: &[u8], start: usize) -> usize {
    let rest = buf.get(start + 1..).unwrap_or_default();
    start + 1 + run_len(rest, NAME_CONT)
}

#[inline]
fn scan_lname(buf: &[u8], start: usize) -> usize {
    let rest = buf.get(start + 1..).unwrap_or_default();
    start + 1 + run_len(rest, LNAME_CONT)
}

/// Whether a space or tab is at `i`.
#[inline(always)]
pub(crate) fn is_ws(buf: &[u8], i: usize) -> bool {
    matches!(buf.get(i), Some(b' ' | b'\t'))
}

/// Skips spaces and tabs, the text format's whitespace between tokens.
#[inline]
pub(crate) fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t') = buf.get(i) {
        i += 1;
    }
    i
}

/// Where one label of a block lies in the scanned buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LabelSpan {
    pub(crate) name: Range<usize>,
    /// Without the quotes, still escaped.
    pub(crate) value: Range<usize>,
    /// Whether the value has a backslash (and so may need unescaping).
    pub(crate) escaped: bool,
}

/// Which grammar a label block follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Syntax {
    /// Text 0.0.4 as Prometheus's lexer reads it: spaces and tabs between any tokens,
    /// an optional trailing comma, a missing comma between pairs tolerated, raw
    /// newlines allowed inside values.
    Text,
    /// OpenMetrics: no whitespace, commas strictly between pairs, no raw newline in a
    /// value.
    OpenMetrics,
}

/// Label names already seen in one label block, to refuse duplicates without a
/// quadratic scan on every pair: a 128-bit Bloom filter answers "new" for almost every
/// name, and only a hit compares against the names kept so far, by hash first. Past
/// [`LINEAR_LIMIT`] names a hash table over the whole name takes over, so a hostile
/// line of a million labels costs linear time, not quadratic.
#[derive(Debug)]
pub(crate) struct SeenNames {
    bloom: u128,
    /// (hash, start, end) of the first names seen, as offsets into the scanned buffer.
    names: Vec<(u64, usize, usize)>,
    /// (full hash, start, end) of every name, once there are more than fit `names`.
    many: HashTable<(u64, usize, usize)>,
}

/// How many names a block may have before duplicates are looked up in a hash table.
const LINEAR_LIMIT: usize = 32;

impl SeenNames {
    pub(crate) fn new() -> Self {
        SeenNames {
            bloom: NAME_LABEL_BIT,
            names: Vec::new(),
            many: HashTable::new(),
        }
    }

    /// Records the name at `buf[start..end]`; false if the block already had it.
    #[inline(always)]
    fn insert(&mut self, buf: &[u8], start: usize, end: usize) -> bool {
        if self.names.len() >= LINEAR_LIMIT {
            return self.insert_many(buf, start, end);
        }
        let hash = name_hash(buf, start, end);
        let bit = 1u128 << (hash >> 57);
        if self.bloom & bit != 0 && self.seen_before(buf, hash, start, end) {
            return false;
        }
        self.bloom |= bit;
        self.names.push((hash, start, end));
        true
    }

    #[cold]
    #[inline(never)]
    fn seen_before(&self, buf: &[u8], hash: u64, start: usize, end: usize) -> bool {
        let name = &buf[start..end];
        name == b"__name__"
            || self
                .names
                .iter()
                .any(|&(h, s, e)| h == hash && &buf[s..e] == name)
    }

    /// The path for blocks with more than [`LINEAR_LIMIT`] names. Hashes whole names
    /// (the fast hash sees only their ends, which an adversary can hold constant).
    #[cold]
    #[inline(never)]
    fn insert_many(&mut self, buf: &[u8], start: usize, end: usize) -> bool {
        let full_hash = |s: usize, e: usize| xxhash_rust::xxh3::xxh3_64(&buf[s..e]);
        if self.many.is_empty() {
            for &(_, s, e) in &self.names {
                let h = full_hash(s, e);
                self.many.insert_unique(h, (h, s, e), |v| v.0);
            }
        }
        let name = &buf[start..end];
        if name == b"__name__" {
            return false;
        }
        let hash = full_hash(start, end);
        if self
            .many
            .find(hash, |&(h, s, e)| h == hash && &buf[s..e] == name)
            .is_some()
        {
            return false;
        }
        self.many.insert_unique(hash, (hash, start, end), |v| v.0);
        true
    }
}

/// The Bloom bit of `__name__`, whose bytes read as one little-endian word.
const NAME_LABEL_BIT: u128 =
    1u128 << (hash_words(0x5f5f_656d_616e_5f5f, 0x5f5f_656d_616e_5f5f, 8) >> 57);

/// A hash of the name at `buf[start..end]` from its first and last eight bytes and its
/// length, which covers the whole of names up to 16 bytes. Loads whole words where the
/// buffer allows, so it costs a handful of instructions per name.
#[inline(always)]
fn name_hash(buf: &[u8], start: usize, end: usize) -> u64 {
    let len = end - start;
    let keep = if len >= 8 { 8 } else { len };
    let first = match buf.get(start..start + 8) {
        Some(w) => word(w) & (u64::MAX >> (64 - 8 * keep)),
        None => word_slow(&buf[start..start + keep]),
    };
    let last = match end.checked_sub(8).and_then(|s| buf.get(s..end)) {
        Some(w) => word(w) >> (64 - 8 * keep),
        None => word_slow(&buf[end - keep..end]),
    };
    hash_words(first, last, len)
}

#[inline(always)]
const fn hash_words(first: u64, last: u64, len: usize) -> u64 {
    (first ^ last.rotate_left(29) ^ (len as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(w: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&w[..8]);
    u64::from_le_bytes(a)
}

/// Up to eight bytes, zero-extended, for a name too near either end of the buffer to
/// load a whole word.
fn word_slow(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Scans a label block whose `{` is at `open` and returns the index just past its `}`.
/// Calls `on_label(label)` for every pair, with the value still escaped and without
/// its quotes. With `seen`, a repeated label name (or `__name__`) is an error.
#[inline]
pub(crate) fn scan_label_block(
    buf: &[u8],
    open: usize,
    syntax: Syntax,
    mut seen: Option<&mut SeenNames>,
    mut on_label: impl FnMut(LabelSpan) -> Result<(), ParseError>,
) -> Result<usize, ParseError> {
    let text = syntax == Syntax::Text;
    let mut i = open + 1;
    if text {
        i = skip_ws(buf, i);
    }
    if buf.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        let name_start = i;
        match buf.get(i) {
            Some(&b) if is_lname_start(b) => {}
            _ => return Err(expected(buf, i, "label name")),
        }
        i = scan_lname(buf, i);
        let name_end = i;
        if let Some(seen) = seen.as_deref_mut()
            && !seen.insert(buf, name_start, name_end)
        {
            // Prometheus builds the label set and its storage refuses it ("label name
            // is not unique"), failing the scrape; refusing it here is the same outcome.
            return Err(invalid(buf, name_start, name_end, "duplicate label name"));
        }
        // The text format's whitespace is rare in practice: test for it before skipping.
        if text && is_ws(buf, i) {
            i = skip_ws(buf, i);
        }
        if buf.get(i) != Some(&b'=') {
            return Err(expected(buf, i, "'=' after label name"));
        }
        i += 1;
        if text && is_ws(buf, i) {
            i = skip_ws(buf, i);
        }
        if buf.get(i) != Some(&b'"') {
            return Err(expected(buf, i, "label value"));
        }
        let value_start = i + 1;
        let (value_end, escaped) = match scan_quoted(buf, value_start, text) {
            Ok(v) => v,
            Err(e) => return Err(e.into_parse_error(buf, value_start)),
        };
        on_label(LabelSpan {
            name: name_start..name_end,
            value: value_start..value_end,
            escaped,
        })?;
        i = value_end + 1;
        if text {
            // Prometheus's text lexer takes `,` as optional between pairs (a quirk it
            // documents) and allows one before `}`.
            if is_ws(buf, i) {
                i = skip_ws(buf, i);
            }
            match buf.get(i) {
                Some(b'}') => return Ok(i + 1),
                Some(b',') => {
                    i += 1;
                    if is_ws(buf, i) {
                        i = skip_ws(buf, i);
                    }
                    if buf.get(i) == Some(&b'}') {
                        return Ok(i + 1);
                    }
                }
                _ => {}
            }
        } else {
            match buf.get(i) {
                Some(b'}') => return Ok(i + 1),
                Some(b',') => i += 1,
                _ => return Err(expected(buf, i, "',' or '}' after label value")),
            }
        }
    }
}

/// Why a quoted label value is malformed; turned into a [`ParseError`] off the hot
/// path, so scanning returns a small value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuotedError {
    /// The input ends before the closing quote.
    Unclosed,
    /// A backslash at this index ends the input or precedes a newline.
    BadEscape(usize),
    /// A raw newline at this index, where the format forbids one.
    RawNewline(usize),
    /// The value up to this index is not UTF-8.
    NotUtf8(usize),
}

impl QuotedError {
    #[cold]
    fn into_parse_error(self, buf: &[u8], start: usize) -> ParseError {
        match self {
            // Point at the opening quote: the end of the input says nothing useful.
            QuotedError::Unclosed => {
                ParseError::at(buf, start - 1, "label value has no closing '\"'".into())
            }
            QuotedError::BadEscape(i) => invalid(buf, i, i + 1, "unfinished escape"),
            QuotedError::RawNewline(i) => expected(buf, i, "closing '\"' of label value"),
            QuotedError::NotUtf8(end) => {
                invalid(buf, start, end, "label value is not valid UTF-8:")
            }
        }
    }
}

/// Scans a quoted label value starting just after its opening quote; returns the index
/// of the closing quote and whether the value has a backslash. A backslash escapes any one byte but a newline (the lexer's
/// `\\.`); which escapes mean something is decided when unescaping. The value must be
/// valid UTF-8.
#[inline(always)]
fn scan_quoted(
    buf: &[u8],
    start: usize,
    allow_newline: bool,
) -> Result<(usize, bool), QuotedError> {
    let mut i = start;
    let mut ascii = true;
    let mut escaped = false;
    loop {
        i += plain_run(buf.get(i..).unwrap_or_default());
        let Some(&b) = buf.get(i) else {
            return Err(QuotedError::Unclosed);
        };
        match b {
            b'"' => break,
            b'\\' => match buf.get(i + 1) {
                None | Some(b'\n') => return Err(QuotedError::BadEscape(i)),
                Some(&e) => {
                    ascii &= e < 0x80;
                    escaped = true;
                    i += 2;
                }
            },
            b'\n' if !allow_newline => return Err(QuotedError::RawNewline(i)),
            b'\n' => i += 1,
            _ => {
                ascii = false;
                i += 1;
            }
        }
    }
    if !ascii && std::str::from_utf8(&buf[start..i]).is_err() {
        return Err(QuotedError::NotUtf8(i));
    }
    Ok((i, escaped))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks (high bit) the zero bytes of `x`. Bytes above the lowest zero byte may be
/// marked wrongly, so only the lowest mark is meaningful.
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// How many leading bytes of a label value need no attention: not `"`, `\`, newline or
/// non-ASCII. Eight bytes per step, since values are the bulk of a series line.
#[inline(always)]
fn plain_run(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = word(chunk);
        let special = (w & HIGHS)
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | zero_bytes(w ^ (ONES * u64::from(b'\n')));
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + run_len(&bytes[i..], PLAIN_QUOTED)
}

/// Unescapes a label value as Prometheus does: `\\`, `\"` and `\n` become `\`, `"` and
/// a newline; any other backslash is kept as written, with the byte after it.
pub(crate) fn unescape_into(raw: &str, out: &mut String) {
    let mut rest = raw;
    while let Some(p) = rest.find('\\') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        match after.as_bytes().first() {
            Some(b'\\') => out.push('\\'),
            Some(b'"') => out.push('"'),
            Some(b'n') => out.push('\n'),
            _ => {
                out.push('\\');
                rest = after;
                continue;
            }
        }
        rest = &after[1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &str, syntax: Syntax) -> Result<(usize, Vec<(String, String)>), ParseError> {
        let mut got = Vec::new();
        let mut seen = SeenNames::new();
        let b = s.as_bytes();
        let end = scan_label_block(b, 0, syntax, Some(&mut seen), |l| {
            assert_eq!(l.escaped, b[l.value.clone()].contains(&b'\\'));
            got.push((
                String::from_utf8_lossy(&b[l.name]).into_owned(),
                String::from_utf8_lossy(&b[l.value]).into_owned(),
            ));
            Ok(())
        })?;
        Ok((end, got))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn classes_match_prometheus_grammar() {
        assert!(is_name_start(b':') && is_name_start(b'_') && is_name_start(b'Z'));
        assert!(!is_name_start(b'0') && !is_name_start(b'{') && !is_name_start(0xc3));
        assert!(!is_lname_start(b':'));
        assert_eq!(scan_name(b"a:b_9{", 0), 5);
        assert_eq!(scan_lname(b"a:b", 0), 1);
    }

    #[test]
    fn text_blocks_take_whitespace_and_loose_commas() {
        let (end, got) = block(r#"{ a = "1" ,b="2",} x"#, Syntax::Text).unwrap();
        assert_eq!(end, 18);
        assert_eq!(got, pairs(&[("a", "1"), ("b", "2")]));
        let (_, got) = block(r#"{a="1" b="2"}"#, Syntax::Text).unwrap();
        assert_eq!(got, pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(block("{}", Syntax::Text).unwrap().0, 2);
        assert_eq!(block("{ \t}", Syntax::Text).unwrap().0, 4);
    }

    #[test]
    fn text_block_errors() {
        let e = block(r#"{,}"#, Syntax::Text).unwrap_err();
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (1, r#"expected label name, got ",}""#)
        );
        assert!(block(r#"{a="1",,b="2"}"#, Syntax::Text).is_err());
        assert!(block(r#"{a=1}"#, Syntax::Text).is_err());
        assert!(block(r#"{1a="1"}"#, Syntax::Text).is_err());
        assert!(block(r#"{a:b="1"}"#, Syntax::Text).is_err());
        assert!(block(r#"{a="1""#, Syntax::Text).is_err());
    }

    #[test]
    fn openmetrics_blocks_are_strict() {
        let (_, got) = block(r#"{a="1",b="2"}"#, Syntax::OpenMetrics).unwrap();
        assert_eq!(got, pairs(&[("a", "1"), ("b", "2")]));
        for bad in [
            r#"{a="1",}"#,
            r#"{ a="1"}"#,
            r#"{a ="1"}"#,
            r#"{a= "1"}"#,
            r#"{a="1" }"#,
            r#"{a="1"b="2"}"#,
            r#"{,}"#,
            "{a=\"x\ny\"}",
        ] {
            assert!(block(bad, Syntax::OpenMetrics).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_keep_escapes_commas_braces_and_utf8() {
        let (_, got) = block(r#"{a="x\"y\\z\n",b="1,2}{",c="ü€😀"}"#, Syntax::Text).unwrap();
        assert_eq!(
            got,
            pairs(&[("a", r#"x\"y\\z\n"#), ("b", "1,2}{"), ("c", "ü€😀")])
        );
        // The text lexer lets a raw newline into a value.
        let (_, got) = block("{a=\"x\ny\"}", Syntax::Text).unwrap();
        assert_eq!(got, pairs(&[("a", "x\ny")]));
    }

    #[test]
    fn escape_rules() {
        assert!(block(r#"{a="\q"}"#, Syntax::Text).is_ok());
        let e = block("{a=\"\\\n\"}", Syntax::Text).unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.msg.contains("unfinished escape"));
        assert!(block(r#"{a="\"#, Syntax::Text).is_err());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut buf = br#"{a="x"#.to_vec();
        buf.extend_from_slice(b"\xff\"}");
        let e = scan_label_block(&buf, 0, Syntax::Text, None, |_| Ok(())).unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.msg.starts_with("label value is not valid UTF-8"));
        // A backslash in front of the bad byte must not hide it.
        let buf = b"{a=\"\\\xff\"}";
        assert!(scan_label_block(buf, 0, Syntax::Text, None, |_| Ok(())).is_err());
    }

    #[test]
    fn duplicates_and_name_label_are_refused() {
        let e = block(r#"{a="1",b="2",a="3"}"#, Syntax::Text).unwrap_err();
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (13, r#"duplicate label name "a""#)
        );
        assert!(block(r#"{__name__="x"}"#, Syntax::Text).is_err());
        // Many distinct names: Bloom collisions must not raise false duplicates.
        let many: Vec<String> = (0..300).map(|i| format!("l{i}=\"v\"")).collect();
        let s = format!("{{{}}}", many.join(","));
        assert_eq!(block(&s, Syntax::OpenMetrics).unwrap().1.len(), 300);
        // Past the linear limit, and with names an end-only hash cannot tell apart.
        let many: Vec<String> = (0..5000)
            .map(|i| format!("prefix__{i:08}__suffix=\"\""))
            .collect();
        let s = format!("{{{},prefix__00004321__suffix=\"\"}}", many.join(","));
        let e = block(&s, Syntax::Text).unwrap_err();
        assert_eq!(e.msg, r#"duplicate label name "prefix__00004321__suffix""#);
        assert_eq!(
            block(&format!("{{{}}}", many.join(",")), Syntax::Text)
                .unwrap()
                .1
                .len(),
            5000
        );
        let s = format!("{{{},__name__=\"\"}}", many.join(","));
        assert!(block(&s, Syntax::Text).is_err());
        let mut seen = SeenNames::new();
        let b = br#"{a="1"}{a="2"}"#;
        scan_label_block(b, 0, Syntax::Text, Some(&mut seen), |_| Ok(())).unwrap();
        let mut seen = SeenNames::new();
        scan_label_block(b, 7, Syntax::Text, Some(&mut seen), |_| Ok(())).unwrap();
    }

    #[test]
    fn name_hash_is_position_independent() {
        // The same name hashes alike whether whole words can be loaded around it or not.
        let name = b"__name__";
        let padded = b"xxxxxxxx__name__xxxxxxxx";
        assert_eq!(name_hash(name, 0, 8), name_hash(padded, 8, 16));
        assert_eq!(NAME_LABEL_BIT, 1u128 << (name_hash(name, 0, 8) >> 57));
        for n in 1..=20 {
            let mut buf = vec![b'z'; 40];
            for (k, b) in buf[10..10 + n].iter_mut().enumerate() {
                *b = b'a' + k as u8;
            }
            let alone = buf[10..10 + n].to_vec();
            assert_eq!(name_hash(&buf, 10, 10 + n), name_hash(&alone, 0, n), "{n}");
        }
        assert_ne!(name_hash(b"ab", 0, 2), name_hash(b"ba", 0, 2));
    }

    #[test]
    fn plain_run_finds_the_first_special_byte() {
        for (s, want) in [
            (&b"abcdefghijklmnop"[..], 16),
            (b"abcdefgh\\ijk", 8),
            (b"abc\"x\"", 3),
            (b"abcdefghij\nk", 10),
            (b"\xc3\xbc", 0),
            (b"abcdefghijklmn\xff", 14),
            (b"\0\0\0\0\0\0\0\0\0\"", 9),
            (b"", 0),
        ] {
            assert_eq!(plain_run(s), want, "{s:?}");
        }
    }

    #[test]
    fn unescape_like_prometheus_replacer() {
        let u = |s: &str| {
            let mut o = String::new();
            unescape_into(s, &mut o);
            o
        };
        assert_eq!(u(r#"a\"b\\c\nd"#), "a\"b\\c\nd");
        assert_eq!(u(r#"\t\q\"#), r#"\t\q\"#);
        assert_eq!(u(r#"\\n"#), r#"\n"#);
        assert_eq!(u(r#"\\\n"#), "\\\n");
        assert_eq!(u("é\\é"), "é\\é");
        assert_eq!(u(""), "");
    }
}
