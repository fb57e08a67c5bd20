//! The Prometheus text format 0.0.4, read line by line exactly as Prometheus 2.42's
//! lexer reads it, quirks included (each quirk says so where it is handled). Produces
//! one [`Entry`] per call; never allocates on success.

use super::error::{ParseError, expected, invalid};
use super::lex::{Syntax, is_name_start, scan_label_block, scan_name, skip_ws};
use super::value::{parse_float, parse_ms_timestamp};
use super::{Entry, SeriesLine};
use crate::model::MetricType;

/// Reads the next entry at `*pos`, skipping blank lines. `Ok(None)` at the end.
pub(crate) fn next_entry<'a>(
    buf: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Entry<'a>>, ParseError> {
    loop {
        let start = *pos;
        let Some(&c) = buf.get(start) else {
            return Ok(None);
        };
        if is_name_start(c) {
            return parse_series(buf, start, pos).map(Some);
        }
        match c {
            b'\n' => *pos = start + 1,
            b'#' => return parse_comment(buf, start, pos),
            b' ' | b'\t' => {
                let i = skip_ws(buf, start);
                match buf.get(i) {
                    None => {
                        *pos = i;
                        return Ok(None);
                    }
                    Some(b'\n') => *pos = i + 1,
                    Some(b'#') => return parse_comment(buf, i, pos),
                    Some(0) => return Ok(None),
                    // Prometheus parses this and then fails the scrape because the metric
                    // name it builds starts with the whitespace ("invalid metric name").
                    Some(&b) if is_name_start(b) => {
                        return Err(ParseError::at(
                            buf,
                            start,
                            "metric name must start the line (leading whitespace)".into(),
                        ));
                    }
                    Some(_) => return Err(expected(buf, i, "metric name or comment")),
                }
            }
            // Prometheus's lexer takes a NUL where a line starts as the end of the input
            // and stops there without error; so do we.
            0 => return Ok(None),
            _ => return Err(expected(buf, start, "metric name, comment or blank line")),
        }
    }
}

/// A line starting with `#` at `hash`: `# HELP`, `# TYPE`, or any other comment.
/// `Ok(None)` where Prometheus's lexer reads a NUL in the comment as the end of input.
fn parse_comment<'a>(
    buf: &'a [u8],
    hash: usize,
    pos: &mut usize,
) -> Result<Option<Entry<'a>>, ParseError> {
    let line_end = memchr::memchr(b'\n', &buf[hash..]).map_or(buf.len(), |p| hash + p);
    *pos = (line_end + 1).min(buf.len());
    let kw = skip_ws(buf, hash + 1);
    // `#HELP` (no whitespace after `#`) is a plain comment, as is `# HELPER`. Where the
    // lexer scans such a comment without its NUL-skipping (no whitespace after `#`, or
    // a NUL right after it), a NUL ends the whole input, silently.
    let is_type = if kw == hash + 1 {
        if memchr::memchr(0, &buf[hash..line_end]).is_some() {
            return Ok(None);
        }
        return Ok(Some(Entry::Comment));
    } else if buf.get(kw) == Some(&0) {
        return Ok(None);
    } else if buf[kw..].starts_with(b"HELP") {
        false
    } else if buf[kw..].starts_with(b"TYPE") {
        true
    } else {
        return Ok(Some(Entry::Comment));
    };
    if !matches!(buf.get(kw + 4), Some(b' ' | b'\t')) {
        return Ok(Some(Entry::Comment));
    }
    let keyword = if is_type { "TYPE" } else { "HELP" };
    let name_start = skip_ws(buf, kw + 4);
    match buf.get(name_start) {
        Some(&b) if is_name_start(b) => {}
        _ => {
            return Err(expected(
                buf,
                name_start,
                &format!("metric name after {keyword}"),
            ));
        }
    }
    let name_end = scan_name(buf, name_start);
    let metric = &buf[name_start..name_end];
    // Prometheus's lexer takes the rest of the line as the text and drops its first byte
    // (meant to be the separating space, but it drops whatever is there); a rest that
    // is only whitespace gives empty text.
    let rest = &buf[name_end..line_end];
    if rest.first() == Some(&0) {
        // The lexer ends the text at a NUL there and then finds no line break.
        return Err(expected(buf, name_end, "end of line after metadata"));
    }
    let (text, text_start) = if rest.iter().all(|&b| b == b' ' || b == b'\t') {
        (&rest[..0], name_end)
    } else {
        (&rest[1..], name_end + 1)
    };
    if !is_type {
        if std::str::from_utf8(text).is_err() {
            return Err(invalid(
                buf,
                text_start,
                line_end,
                "help text is not valid UTF-8:",
            ));
        }
        return Ok(Some(Entry::Help { metric, text }));
    }
    // Exact words only: trailing whitespace or a second space makes the type invalid.
    let kind = match text {
        b"counter" => MetricType::Counter,
        b"gauge" => MetricType::Gauge,
        b"histogram" => MetricType::Histogram,
        b"summary" => MetricType::Summary,
        b"untyped" => MetricType::Unknown,
        _ => return Err(invalid(buf, text_start, line_end, "invalid metric type")),
    };
    Ok(Some(Entry::Type { metric, kind }))
}

/// A sample line: name, optional label block, value, optional integer-ms timestamp.
#[inline]
fn parse_series<'a>(buf: &'a [u8], start: usize, pos: &mut usize) -> Result<Entry<'a>, ParseError> {
    let name_end = scan_name(buf, start);
    let mut series_end = name_end;
    let mut i = skip_ws(buf, name_end);
    if buf.get(i) == Some(&b'{') {
        series_end = scan_label_block(buf, i, Syntax::Text, None, |_| Ok(()))?;
        i = skip_ws(buf, series_end);
    }
    // The value is whatever runs up to whitespace, `{` or the line's end; no separator
    // is needed after the name or the block, so `up+1` is `up` with value 1.
    let value_start = i;
    while let Some(&b) = buf.get(i) {
        if matches!(b, b' ' | b'\t' | b'\n' | b'{' | 0) {
            break;
        }
        i += 1;
    }
    if i == value_start {
        return Err(expected(buf, i, "value after metric"));
    }
    let value = parse_float(&buf[value_start..i])
        .ok_or_else(|| invalid(buf, value_start, i, "invalid value"))?;
    i = skip_ws(buf, i);
    let mut timestamp_ms = None;
    if let Some(&b) = buf.get(i)
        && b.is_ascii_digit()
    {
        let ts_start = i;
        while buf.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        timestamp_ms = Some(
            parse_ms_timestamp(&buf[ts_start..i])
                .ok_or_else(|| invalid(buf, ts_start, i, "timestamp out of range:"))?,
        );
        i = skip_ws(buf, i);
    }
    match buf.get(i) {
        None => *pos = i,
        Some(b'\n') => *pos = i + 1,
        Some(_) if timestamp_ms.is_some() => return Err(expected(buf, i, "end of line")),
        Some(_) => return Err(expected(buf, i, "timestamp or end of line")),
    }
    Ok(Entry::Series(SeriesLine {
        series: &buf[start..series_end],
        value,
        timestamp_ms,
        exemplar: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::textparse::value::NORMAL_NAN_BITS;

    fn all(input: &str) -> Result<Vec<Entry<'_>>, ParseError> {
        all_bytes(input.as_bytes())
    }

    fn all_bytes(buf: &[u8]) -> Result<Vec<Entry<'_>>, ParseError> {
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(e) = next_entry(buf, &mut pos)? {
            out.push(e);
        }
        Ok(out)
    }

    fn series(e: &Entry<'_>) -> (String, f64, Option<i64>) {
        match e {
            Entry::Series(s) => (
                String::from_utf8_lossy(s.series).into_owned(),
                s.value,
                s.timestamp_ms,
            ),
            other => panic!("not a series: {other:?}"),
        }
    }

    fn err(input: &str) -> ParseError {
        match all(input) {
            Err(e) => e,
            Ok(v) => panic!("{input:?} parsed: {v:?}"),
        }
    }

    #[test]
    fn every_token_kind() {
        let input = "# HELP http_requests_total The total.\n\
                     # TYPE http_requests_total counter\n\
                     # some comment\n\
                     \n\
                     http_requests_total{method=\"GET\",code=\"200\"} 1027 1395066363000\n\
                     up 1\n";
        let got = all(input).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[0],
            Entry::Help {
                metric: b"http_requests_total",
                text: b"The total."
            }
        );
        assert_eq!(
            got[1],
            Entry::Type {
                metric: b"http_requests_total",
                kind: MetricType::Counter
            }
        );
        assert_eq!(got[2], Entry::Comment);
        assert_eq!(
            series(&got[3]),
            (
                r#"http_requests_total{method="GET",code="200"}"#.into(),
                1027.0,
                Some(1395066363000)
            )
        );
        assert_eq!(series(&got[4]), ("up".into(), 1.0, None));
    }

    #[test]
    fn series_is_a_subslice_of_the_input() {
        let input = "a{b=\"c\"} 1\n";
        let got = all(input).unwrap();
        let Entry::Series(s) = got[0] else { panic!() };
        assert_eq!(s.series.as_ptr(), input.as_ptr());
        assert_eq!(s.series.len(), 8);
    }

    #[test]
    fn types_and_untyped() {
        let got = all("# TYPE a untyped\n# TYPE b summary\n# TYPE c histogram\n# TYPE d gauge\n")
            .unwrap();
        let kinds: Vec<_> = got
            .iter()
            .map(|e| match e {
                Entry::Type { kind, .. } => *kind,
                _ => panic!(),
            })
            .collect();
        use MetricType::*;
        assert_eq!(kinds, [Unknown, Summary, Histogram, Gauge]);
        // OpenMetrics-only types and other spellings are errors in this format.
        for t in [
            "unknown",
            "info",
            "stateset",
            "gaugehistogram",
            "Counter",
            "counter ",
            "",
        ] {
            let e = err(&format!("# TYPE a {t}\n"));
            assert_eq!(e.line, 1);
            assert!(e.msg.starts_with("invalid metric type"), "{t}: {}", e.msg);
        }
        // Two spaces: the lexer keeps the second one in the text.
        assert_eq!(err("# TYPE a  counter\n").offset, 9);
    }

    #[test]
    fn help_text_quirks() {
        let help = |s: &str| match all(s).unwrap()[0] {
            Entry::Help { text, .. } => String::from_utf8_lossy(text).into_owned(),
            ref e => panic!("{e:?}"),
        };
        assert_eq!(help("# HELP a  two spaces\n"), " two spaces");
        assert_eq!(help("# HELP a\ttab\n"), "tab");
        assert_eq!(help("# HELP a\n"), "");
        assert_eq!(help("# HELP a   \n"), "");
        assert_eq!(help("# HELP a esc\\\\aped \\n\n"), "esc\\\\aped \\n");
        assert_eq!(help("#\t HELP \t a x"), "x");
        // Whatever follows the name loses its first byte.
        assert_eq!(help("# HELP a-b c\n"), "b c");
        assert_eq!(help("# HELP a ü€\n"), "ü€");
        let e = all_bytes(b"# HELP a \xff\n").unwrap_err();
        assert!(
            e.msg.starts_with("help text is not valid UTF-8"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn comments_that_look_like_metadata() {
        for c in [
            "#HELP a b",
            "# HELPER a b",
            "# help a b",
            "# EOF",
            "#",
            "# ",
            "#\t",
            "#TYPE a b",
        ] {
            assert_eq!(
                all(&format!("{c}\nx 1\n")).unwrap()[0],
                Entry::Comment,
                "{c}"
            );
        }
        let e = err("# HELP \n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (7, "expected metric name after HELP, got end of line")
        );
        assert!(
            err("# TYPE 1a counter\n")
                .msg
                .starts_with("expected metric name after TYPE")
        );
    }

    #[test]
    fn whitespace_between_tokens() {
        let got = all("a\t{ b = \"c\" , }\t 1 \t 2 \t\nd {} 3\n \t \n\t# comment\n").unwrap();
        assert_eq!(series(&got[0]), ("a\t{ b = \"c\" , }".into(), 1.0, Some(2)));
        assert_eq!(series(&got[1]), ("d {}".into(), 3.0, None));
        assert_eq!(got[2], Entry::Comment);
    }

    #[test]
    fn values_need_no_separator_after_name_or_block() {
        let got = all("a+1\nb{}2\nc-Inf\n").unwrap();
        assert_eq!(series(&got[0]), ("a".into(), 1.0, None));
        assert_eq!(series(&got[1]), ("b{}".into(), 2.0, None));
        assert_eq!(series(&got[2]), ("c".into(), f64::NEG_INFINITY, None));
    }

    #[test]
    fn value_spellings() {
        let v = |s: &str| series(&all(&format!("a {s}\n")).unwrap()[0]).1;
        assert_eq!(v("+Inf"), f64::INFINITY);
        assert_eq!(v("-Inf"), f64::NEG_INFINITY);
        assert_eq!(v("Inf"), f64::INFINITY);
        assert_eq!(v("inf"), f64::INFINITY);
        assert_eq!(v("NaN").to_bits(), NORMAL_NAN_BITS);
        assert_eq!(v("nan").to_bits(), NORMAL_NAN_BITS);
        assert_eq!(v("1.5e3"), 1500.0);
        assert_eq!(v("-0.25E-2"), -0.0025);
        assert_eq!(v("1e+2"), 100.0);
        for bad in ["-NaN", "0x1p3", "1_000", "1e400", "1,5", "one", "1.2.3"] {
            let e = err(&format!("a {bad}\n"));
            assert_eq!(
                (e.offset, e.msg.clone()),
                (2, format!("invalid value \"{bad}\""))
            );
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(series(&all("a 1 0\n").unwrap()[0]).2, Some(0));
        assert!(all("a 1 -0").is_err());
        let e = err("a 1 -5\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (4, r#"expected timestamp or end of line, got "-5""#)
        );
        let e = err("a 1 1.5\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (5, r#"expected end of line, got ".5""#)
        );
        let e = err("a 1 99999999999999999999\n");
        assert!(e.msg.starts_with("timestamp out of range"));
        let e = err("a 1 2 3\n");
        assert_eq!(e.offset, 6);
    }

    #[test]
    fn missing_final_newline_and_blank_lines() {
        let got = all("\n\n a 1").unwrap_err();
        assert_eq!(got.line, 3);
        let got = all("\n\na 1").unwrap();
        assert_eq!(series(&got[0]), ("a".into(), 1.0, None));
        assert!(all("").unwrap().is_empty());
        assert!(all("\n \t\n").unwrap().is_empty());
    }

    #[test]
    fn crlf_is_refused_like_prometheus() {
        let e = err("a 1\r\n");
        assert_eq!((e.line, e.offset), (1, 2));
        // A comment keeps its carriage return without harm.
        assert_eq!(all("# x\r\n").unwrap(), [Entry::Comment]);
    }

    #[test]
    fn nul_bytes_as_prometheus_lexes_them() {
        // Where a line starts, or in a comment the lexer scans raw, NUL ends the input.
        assert_eq!(all("a 1\n\0garbage {{{\n").unwrap().len(), 1);
        assert_eq!(all("a 1\n  \0garbage\n").unwrap().len(), 1);
        assert_eq!(all("a 1\n#x\0\nb{{ 2\n").unwrap().len(), 1);
        assert_eq!(all("a 1\n# \0\nb{{ 2\n").unwrap().len(), 1);
        // Elsewhere in a comment, in help text and in label values it is just a byte.
        assert_eq!(all("# x\0\na 1\n").unwrap().len(), 2);
        assert_eq!(all("# HELP a x\0y\n").unwrap().len(), 1);
        assert_eq!(series(&all("a{b=\"\0\"} 1\n").unwrap()[0]).0, "a{b=\"\0\"}");
        assert!(all("# HELP a\0x\n").is_err());
        assert!(all("a 1\0\n").is_err());
        assert!(all("a\0 1\n").is_err());
    }

    #[test]
    fn line_level_errors_with_positions() {
        let e = err("a 1\nb{c=\"d\"}\n");
        assert_eq!((e.line, e.offset), (2, 12));
        assert_eq!(e.msg, "expected value after metric, got end of line");
        let e = err("a 1\n  b 1\n");
        assert_eq!((e.line, e.offset), (2, 4));
        let e = err("a 1\n{b=\"c\"} 1\n");
        assert_eq!((e.line, e.offset), (2, 4));
        let e = err("a 1\nb{c=\"d\"} {e=\"f\"} 1\n");
        assert_eq!(e.offset, 13);
        // Duplicate names pass the line scan (Prometheus counts such a line as scraped)
        // and are refused when the labels are built.
        assert!(all("a{b=\"1\",b=\"2\"} 1\n").is_ok());
        let mut b = crate::model::LabelsBuilder::new();
        let e = crate::textparse::parse_series_labels(b"a{b=\"1\",b=\"2\"}", &mut b).unwrap_err();
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (8, r#"duplicate label name "b""#)
        );
        let e = crate::textparse::parse_series_labels(b"a{__name__=\"a\"}", &mut b).unwrap_err();
        assert_eq!(e.offset, 2);
        let e = err("a 1\nb{c=\"d} 1\n");
        assert_eq!((e.line, e.offset), (2, 8));
        assert_eq!(e.msg, "label value has no closing '\"'");
        let e = err("-1 2\n");
        assert_eq!(
            e.msg,
            r#"expected metric name, comment or blank line, got "-1""#
        );
    }

    #[test]
    fn label_values_may_span_lines() {
        let got = all("a{b=\"x\ny\"} 1\nc 2\n").unwrap();
        assert_eq!(series(&got[0]).0, "a{b=\"x\ny\"}");
        assert_eq!(series(&got[1]).0, "c");
        // Line numbers in later errors still count the newline inside the value.
        assert_eq!(err("a{b=\"x\ny\"} 1\nc x\n").line, 3);
    }

    #[test]
    fn created_and_bucket_series_are_ordinary() {
        let got = all("a_created 1.6e9\na_bucket{le=\"+Inf\"} 3\n").unwrap();
        assert_eq!(series(&got[0]), ("a_created".into(), 1.6e9, None));
        assert_eq!(series(&got[1]).0, "a_bucket{le=\"+Inf\"}");
    }
}
