//! Turning the byte slices the parser hands out into owned label sets: a series slice
//! into its `__name__` and labels, an exemplar's label block into its labels, and help
//! text into its unescaped form. This is the cold side of the scrape cache (called only
//! for series the cache has not seen), so it may allocate; it must never panic.

use std::borrow::Cow;

use super::Format;
use super::error::{ParseError, expected};
use super::lex::{
    LabelSpan, SeenNames, Syntax, is_name_start, scan_label_block, scan_name, skip_ws,
    unescape_into,
};
use crate::model::{LabelsBuilder, METRIC_NAME};

/// Builds the label set of a series slice returned in [`super::SeriesLine::series`]:
/// sets `__name__` and every label, unescaping `\\`, `\"` and `\n` in values (other
/// escapes stay as written, as in Prometheus). Clears `out` first.
///
/// Accepts the text format's series syntax, which contains the OpenMetrics one, so a
/// slice from either parser works. Labels with empty values are dropped, as
/// [`LabelsBuilder`] and Prometheus both do. Any other input gets an error (offsets
/// relative to `series`), never a panic.
pub fn parse_series_labels(series: &[u8], out: &mut LabelsBuilder) -> Result<(), ParseError> {
    out.reset();
    // One UTF-8 check for the whole slice (a valid series is all UTF-8), so each name
    // and value below is a plain `&str` slice.
    let text = utf8(series)?;
    match series.first() {
        Some(&b) if is_name_start(b) => {}
        _ => return Err(expected(series, 0, "metric name")),
    }
    let name_end = scan_name(series, 0);
    out.set(METRIC_NAME, &text[..name_end]);
    let open = skip_ws(series, name_end);
    if open == series.len() {
        return Ok(());
    }
    if series[open] != b'{' {
        return Err(expected(series, open, "'{' or end of series"));
    }
    let mut seen = SeenNames::new();
    let end = scan_label_block(series, open, Syntax::Text, Some(&mut seen), |label| {
        set_label(text, out, label)
    })?;
    let end = skip_ws(series, end);
    if end != series.len() {
        return Err(expected(series, end, "end of series after '}'"));
    }
    Ok(())
}

/// Builds the label set of an exemplar's label block ([`super::Exemplar::labels`],
/// braces included), unescaping values like [`parse_series_labels`]. Clears `out`
/// first. A repeated name keeps its last value.
///
/// Prometheus 2.42 keeps exemplar label values escaped as written; we unescape them
/// like series labels, which is what the exposition means.
pub fn parse_exemplar_labels(labels: &[u8], out: &mut LabelsBuilder) -> Result<(), ParseError> {
    out.reset();
    let text = utf8(labels)?;
    if labels.first() != Some(&b'{') {
        return Err(expected(labels, 0, "'{'"));
    }
    let end = scan_label_block(labels, 0, Syntax::OpenMetrics, None, |label| {
        set_label(text, out, label)
    })?;
    if end != labels.len() {
        return Err(expected(labels, end, "end of exemplar labels after '}'"));
    }
    Ok(())
}

/// Unescapes help text from [`super::Entry::Help`] as Prometheus does for its metadata:
/// the text format knows only `\\` and `\n`; OpenMetrics also `\"`. Borrows when there
/// is nothing to unescape. Invalid UTF-8 (which the parsers refuse) is replaced, not a
/// panic.
pub fn unescape_help(text: &[u8], format: Format) -> Cow<'_, str> {
    let s = String::from_utf8_lossy(text);
    if !s.contains('\\') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    match format {
        Format::OpenMetrics => unescape_into(&s, &mut out),
        Format::Text => {
            let mut rest: &str = &s;
            while let Some(p) = rest.find('\\') {
                out.push_str(&rest[..p]);
                let after = &rest[p + 1..];
                match after.as_bytes().first() {
                    Some(b'\\') => out.push('\\'),
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
    }
    Cow::Owned(out)
}

fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ParseError::at(bytes, e.valid_up_to(), "invalid UTF-8".into()))
}

/// Sets one scanned label; `text` is the whole validated slice the spans index.
fn set_label(text: &str, out: &mut LabelsBuilder, label: LabelSpan) -> Result<(), ParseError> {
    // Spans start and end at ASCII delimiters, so these never miss a char boundary.
    let (Some(name), Some(raw)) = (text.get(label.name), text.get(label.value)) else {
        return Err(ParseError::at(
            text.as_bytes(),
            0,
            "label off a char boundary".into(),
        ));
    };
    if label.escaped {
        let mut value = String::with_capacity(raw.len());
        unescape_into(raw, &mut value);
        out.set(name, value);
    } else {
        out.set(name, raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &str) -> Result<Vec<(String, String)>, ParseError> {
        let mut b = LabelsBuilder::new();
        parse_series_labels(s.as_bytes(), &mut b)?;
        Ok(b.iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn name_only_and_empty_block() {
        assert_eq!(labels("up").unwrap(), pairs(&[("__name__", "up")]));
        assert_eq!(labels("up{}").unwrap(), pairs(&[("__name__", "up")]));
        assert_eq!(labels("up \t{ }").unwrap(), pairs(&[("__name__", "up")]));
    }

    #[test]
    fn sorted_and_unescaped() {
        let got =
            labels(r#"http_requests_total{method="GET",code="200",path="/a\"b\\c\nd\t"}"#).unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("__name__", "http_requests_total"),
                ("code", "200"),
                ("method", "GET"),
                ("path", "/a\"b\\c\nd\\t"),
            ])
        );
    }

    #[test]
    fn text_syntax_quirks_and_utf8() {
        let got = labels("a { b = \"ü,€}\" c=\"2\" , }").unwrap();
        assert_eq!(got, pairs(&[("__name__", "a"), ("b", "ü,€}"), ("c", "2")]));
    }

    #[test]
    fn empty_values_are_dropped() {
        assert_eq!(
            labels(r#"a{b="",c="1"}"#).unwrap(),
            pairs(&[("__name__", "a"), ("c", "1")])
        );
    }

    #[test]
    fn clears_the_builder_first() {
        let mut b = LabelsBuilder::new();
        b.set("stale", "x");
        parse_series_labels(b"a", &mut b).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.get("stale"), None);
    }

    #[test]
    fn errors_never_panic() {
        for bad in [
            "",
            "{a=\"b\"}",
            "1a",
            "a b",
            "a{",
            "a{b}",
            "a{b=\"c\"} 1",
            "a{b=\"c\"}x",
            "a{b=\"c\"",
            "a{b=\"c\",b=\"d\"}",
            "a{__name__=\"x\"}",
            "a{b=\"\\",
        ] {
            assert!(labels(bad).is_err(), "{bad:?}");
        }
        let mut b = LabelsBuilder::new();
        assert!(parse_series_labels(b"a{b=\"\xff\"}", &mut b).is_err());
        let e = labels("a{b=\"c\"} 1").unwrap_err();
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (9, r#"expected end of series after '}', got "1""#)
        );
    }

    #[test]
    fn exemplar_labels() {
        let mut b = LabelsBuilder::new();
        parse_exemplar_labels(br#"{trace_id="a\"b",x="1",x="2"}"#, &mut b).unwrap();
        let got: Vec<_> = b
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(got, [("trace_id", "a\"b"), ("x", "2")]);
        parse_exemplar_labels(b"{}", &mut b).unwrap();
        assert!(b.is_empty());
        for bad in [&b""[..], b"{", b"{}x", b"x{}", b"{a=\"1\",}"] {
            assert!(parse_exemplar_labels(bad, &mut b).is_err());
        }
    }

    #[test]
    fn help_unescaping_per_format() {
        assert!(matches!(
            unescape_help(b"plain", Format::Text),
            Cow::Borrowed("plain")
        ));
        assert_eq!(
            unescape_help(br#"a\\b\nc\"d"#, Format::Text),
            "a\\b\nc\\\"d"
        );
        assert_eq!(
            unescape_help(br#"a\\b\nc\"d"#, Format::OpenMetrics),
            "a\\b\nc\"d"
        );
        assert_eq!(unescape_help(b"\\", Format::Text), "\\");
        assert_eq!(unescape_help(b"\xff\\n", Format::Text), "\u{fffd}\n");
    }
}
