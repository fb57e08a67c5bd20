//! OpenMetrics 1.0 text, read as Prometheus 2.42's parser reads it: single spaces as
//! the only separators, no blank lines or free comments, `# EOF` required and last,
//! float-second timestamps and one optional exemplar per sample. Like Prometheus it
//! does not check metric-family structure (suffixes, bucket order, `_created`), so those
//! lines come out as ordinary series. Never allocates on success.

use super::error::{ParseError, expected, invalid};
use super::lex::{Syntax, is_name_start, scan_label_block, scan_name};
use super::value::{parse_float, parse_seconds_timestamp};
use super::{Entry, Exemplar, SeriesLine};
use crate::model::MetricType;

/// Reads the next entry at `*pos`. `Ok(None)` once `# EOF` has been read.
pub(crate) fn next_entry<'a>(
    buf: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Entry<'a>>, ParseError> {
    let start = *pos;
    let Some(&c) = buf.get(start) else {
        return Err(missing_eof(buf));
    };
    if is_name_start(c) {
        return parse_series(buf, start, pos).map(Some);
    }
    if c != b'#' || buf.get(start + 1) != Some(&b' ') {
        return Err(expected(
            buf,
            start,
            "metric name, '# HELP', '# TYPE', '# UNIT' or '# EOF'",
        ));
    }
    let kw = start + 2;
    let rest = &buf[kw..];
    let keyword = if rest.starts_with(b"HELP ") {
        "HELP"
    } else if rest.starts_with(b"TYPE ") {
        "TYPE"
    } else if rest.starts_with(b"UNIT ") {
        "UNIT"
    } else if rest.starts_with(b"EOF") {
        let mut end = kw + 3;
        if buf.get(end) == Some(&b'\n') {
            end += 1;
        }
        if end != buf.len() {
            return Err(ParseError::at(
                buf,
                end,
                "unexpected data after # EOF".into(),
            ));
        }
        *pos = end;
        return Ok(None);
    } else {
        // Unlike the text format, OpenMetrics has no free-form comments.
        return Err(expected(buf, kw, "HELP, TYPE, UNIT or EOF after '# '"));
    };
    parse_metadata(buf, keyword, kw + 5, pos).map(Some)
}

#[cold]
fn missing_eof(buf: &[u8]) -> ParseError {
    ParseError::at(buf, buf.len(), "data does not end with # EOF".into())
}

/// `# HELP|TYPE|UNIT name text\n` with the name at `name_start`.
fn parse_metadata<'a>(
    buf: &'a [u8],
    keyword: &str,
    name_start: usize,
    pos: &mut usize,
) -> Result<Entry<'a>, ParseError> {
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
    if buf.get(name_end) != Some(&b' ') {
        return Err(expected(
            buf,
            name_end,
            &format!("' ' and text after {keyword} metric name"),
        ));
    }
    let text_start = name_end + 1;
    let Some(nl) = memchr::memchr(b'\n', &buf[text_start..]) else {
        return Err(missing_eof(buf));
    };
    let text_end = text_start + nl;
    let text = &buf[text_start..text_end];
    *pos = text_end + 1;
    match keyword {
        "HELP" => {
            if std::str::from_utf8(text).is_err() {
                return Err(invalid(
                    buf,
                    text_start,
                    text_end,
                    "help text is not valid UTF-8:",
                ));
            }
            Ok(Entry::Help { metric, text })
        }
        "TYPE" => {
            let kind = match text {
                b"counter" => MetricType::Counter,
                b"gauge" => MetricType::Gauge,
                b"histogram" => MetricType::Histogram,
                b"gaugehistogram" => MetricType::GaugeHistogram,
                b"summary" => MetricType::Summary,
                b"info" => MetricType::Info,
                b"stateset" => MetricType::StateSet,
                b"unknown" => MetricType::Unknown,
                _ => return Err(invalid(buf, text_start, text_end, "invalid metric type")),
            };
            Ok(Entry::Type { metric, kind })
        }
        _ => {
            // A non-empty unit must be the name's last `_`-separated part.
            let ok = text.is_empty()
                || (metric.len() > text.len()
                    && metric.ends_with(text)
                    && metric[metric.len() - text.len() - 1] == b'_');
            if !ok {
                return Err(ParseError::at(
                    buf,
                    text_start,
                    format!(
                        "unit {} is not a suffix of metric {}",
                        super::error::quote(text),
                        super::error::quote(metric)
                    ),
                ));
            }
            Ok(Entry::Unit { metric, unit: text })
        }
    }
}

/// The end of a space-free token starting at `start`: the value and timestamp tokens
/// are "everything up to a space or the line's end".
#[inline]
fn token_end(buf: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = buf.get(i) {
        if b == b' ' || b == b'\n' {
            break;
        }
        i += 1;
    }
    i
}

/// True when an exemplar (` # {`) starts at `i`.
#[inline]
fn exemplar_starts(buf: &[u8], i: usize) -> bool {
    buf.get(i..i + 4) == Some(b" # {")
}

#[inline]
fn parse_series<'a>(buf: &'a [u8], start: usize, pos: &mut usize) -> Result<Entry<'a>, ParseError> {
    let name_end = scan_name(buf, start);
    let mut series_end = name_end;
    if buf.get(name_end) == Some(&b'{') {
        series_end = scan_label_block(buf, name_end, Syntax::OpenMetrics, None, |_| Ok(()))?;
    }
    if buf.get(series_end) != Some(&b' ') {
        return Err(expected(buf, series_end, "' ' and value after metric"));
    }
    let value_start = series_end + 1;
    let mut i = token_end(buf, value_start);
    if i == value_start {
        return Err(expected(buf, i, "value after metric"));
    }
    let value = parse_float(&buf[value_start..i])
        .ok_or_else(|| invalid(buf, value_start, i, "invalid value"))?;
    let mut timestamp_ms = None;
    if buf.get(i) == Some(&b' ') && !exemplar_starts(buf, i) {
        let ts_start = i + 1;
        i = token_end(buf, ts_start);
        if i == ts_start {
            return Err(expected(buf, i, "timestamp, exemplar or end of line"));
        }
        timestamp_ms = Some(
            parse_seconds_timestamp(&buf[ts_start..i])
                .ok_or_else(|| invalid(buf, ts_start, i, "invalid timestamp"))?,
        );
    }
    let mut exemplar = None;
    if exemplar_starts(buf, i) {
        let metric = &buf[start..name_end];
        // Prometheus 2.42 takes exemplars only on `_total` and `_bucket` series and fails
        // the scrape otherwise; 2.43 lifted this, we keep the 2.42 behaviour.
        if !(metric.ends_with(b"_total") || metric.ends_with(b"_bucket")) {
            return Err(invalid(
                buf,
                start,
                name_end,
                "exemplars are not supported on metric",
            ));
        }
        let (e, end) = parse_exemplar(buf, i + 3)?;
        exemplar = Some(e);
        i = end;
    }
    match buf.get(i) {
        Some(b'\n') => *pos = i + 1,
        None => return Err(missing_eof(buf)),
        Some(_) => return Err(expected(buf, i, "end of line")),
    }
    Ok(Entry::Series(SeriesLine {
        series: &buf[start..series_end],
        value,
        timestamp_ms,
        exemplar,
    }))
}

/// An exemplar whose `{` is at `open`: `{labels} value [timestamp]`. Returns it and the
/// index where the line should end.
fn parse_exemplar(buf: &[u8], open: usize) -> Result<(Exemplar<'_>, usize), ParseError> {
    // Duplicate exemplar label names only make Prometheus drop the exemplar, never the
    // scrape, so they are not checked here.
    let block_end = scan_label_block(buf, open, Syntax::OpenMetrics, None, |_| Ok(()))?;
    if buf.get(block_end) != Some(&b' ') {
        return Err(expected(
            buf,
            block_end,
            "' ' and value after exemplar labels",
        ));
    }
    let value_start = block_end + 1;
    let mut i = token_end(buf, value_start);
    if i == value_start {
        return Err(expected(buf, i, "exemplar value"));
    }
    let value = parse_float(&buf[value_start..i])
        .ok_or_else(|| invalid(buf, value_start, i, "invalid exemplar value"))?;
    let mut timestamp_ms = None;
    if buf.get(i) == Some(&b' ') {
        let ts_start = i + 1;
        i = token_end(buf, ts_start);
        if i == ts_start {
            return Err(expected(buf, i, "exemplar timestamp or end of line"));
        }
        timestamp_ms = Some(
            parse_seconds_timestamp(&buf[ts_start..i])
                .ok_or_else(|| invalid(buf, ts_start, i, "invalid exemplar timestamp"))?,
        );
    }
    let exemplar = Exemplar {
        labels: &buf[open..block_end],
        value,
        timestamp_ms,
    };
    Ok((exemplar, i))
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

    fn err(input: &str) -> ParseError {
        match all(input) {
            Err(e) => e,
            Ok(v) => panic!("{input:?} parsed: {v:?}"),
        }
    }

    fn line(e: &Entry<'_>) -> SeriesLine<'static> {
        match e {
            Entry::Series(s) => SeriesLine {
                series: s.series.to_vec().leak(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
                exemplar: s.exemplar.map(|x| Exemplar {
                    labels: x.labels.to_vec().leak(),
                    ..x
                }),
            },
            other => panic!("not a series: {other:?}"),
        }
    }

    #[test]
    fn every_token_kind() {
        let input = "# TYPE foo_seconds counter\n\
                     # UNIT foo_seconds seconds\n\
                     # HELP foo_seconds Some \\\"text\\\" and \\n.\n\
                     foo_seconds_total{a=\"b\",c=\"d\"} 17.0 1520879607.789 # {id=\"x\"} 5 1520879607.1\n\
                     foo_seconds_created 1520430000.123\n\
                     # EOF\n";
        let got = all(input).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[0],
            Entry::Type {
                metric: b"foo_seconds",
                kind: MetricType::Counter
            }
        );
        assert_eq!(
            got[1],
            Entry::Unit {
                metric: b"foo_seconds",
                unit: b"seconds"
            }
        );
        assert_eq!(
            got[2],
            Entry::Help {
                metric: b"foo_seconds",
                text: br#"Some \"text\" and \n."#
            }
        );
        let s = line(&got[3]);
        assert_eq!(s.series, br#"foo_seconds_total{a="b",c="d"}"#);
        assert_eq!((s.value, s.timestamp_ms), (17.0, Some(1520879607789)));
        let ex = s.exemplar.unwrap();
        assert_eq!(
            (ex.labels, ex.value, ex.timestamp_ms),
            (&br#"{id="x"}"#[..], 5.0, Some(1520879607100))
        );
        let s = line(&got[4]);
        assert_eq!(
            (s.series, s.value),
            (&b"foo_seconds_created"[..], 1520430000.123)
        );
    }

    #[test]
    fn all_openmetrics_types() {
        let mut input = String::new();
        for t in [
            "counter",
            "gauge",
            "histogram",
            "gaugehistogram",
            "summary",
            "info",
            "stateset",
            "unknown",
        ] {
            input.push_str(&format!("# TYPE a {t}\n"));
        }
        input.push_str("# EOF");
        let kinds: Vec<_> = all(&input)
            .unwrap()
            .iter()
            .map(|e| match e {
                Entry::Type { kind, .. } => kind.as_str(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "counter",
                "gauge",
                "histogram",
                "gaugehistogram",
                "summary",
                "info",
                "stateset",
                "unknown"
            ]
        );
        let e = err("# TYPE a untyped\n# EOF\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (9, r#"invalid metric type "untyped""#)
        );
    }

    #[test]
    fn stateset_and_info_are_plain_series() {
        let got = all("# TYPE s stateset\ns{s=\"a\"} 1\ns{s=\"b\"} 0\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n")
            .unwrap();
        assert_eq!(line(&got[1]).series, br#"s{s="a"}"#);
        assert_eq!(line(&got[4]).series, br#"i_info{v="1"}"#);
    }

    #[test]
    fn eof_rules() {
        assert!(all("# EOF").unwrap().is_empty());
        assert!(all("# EOF\n").unwrap().is_empty());
        let e = err("a 1\n");
        assert_eq!(
            (e.line, e.offset, e.msg.as_str()),
            (2, 4, "data does not end with # EOF")
        );
        assert_eq!(err("").msg, "data does not end with # EOF");
        let e = err("# EOF\n\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (6, "unexpected data after # EOF")
        );
        assert_eq!(err("# EOF\na 1\n").offset, 6);
        assert_eq!(err("# EOF ").offset, 5);
        assert_eq!(err("a 1").msg, "data does not end with # EOF");
        assert_eq!(err("a_total 1 # {} 1").msg, "data does not end with # EOF");
    }

    #[test]
    fn no_blank_lines_comments_or_loose_whitespace() {
        for bad in [
            "\n# EOF\n",
            "a 1\n\n# EOF\n",
            "# comment\n# EOF\n",
            "#HELP a b\n# EOF\n",
            " a 1\n# EOF\n",
            "a  1\n# EOF\n",
            "a\t1\n# EOF\n",
            "a 1 \n# EOF\n",
            "a 1  2\n# EOF\n",
            "a{b=\"c\",} 1\n# EOF\n",
            "a {b=\"c\"} 1\n# EOF\n",
            "a{b=\"c\"}1\n# EOF\n",
            "a 1\r\n# EOF\n",
            "# HELP a\n# EOF\n",
            "# HELP  a b\n# EOF\n",
            "a 1 2 3\n# EOF\n",
        ] {
            assert!(all(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_text() {
        let got = all("# HELP a \n# HELP b  x \n# UNIT c \n# EOF\n").unwrap();
        assert_eq!(
            got[0],
            Entry::Help {
                metric: b"a",
                text: b""
            }
        );
        assert_eq!(
            got[1],
            Entry::Help {
                metric: b"b",
                text: b" x "
            }
        );
        assert_eq!(
            got[2],
            Entry::Unit {
                metric: b"c",
                unit: b""
            }
        );
        let e = err("# UNIT a_seconds meters\n# EOF\n");
        assert_eq!(
            e.msg,
            r#"unit "meters" is not a suffix of metric "a_seconds""#
        );
        assert!(all("# UNIT seconds seconds\n# EOF\n").is_err());
        assert!(all("# UNIT xseconds seconds\n# EOF\n").is_err());
        assert!(all_bytes(b"# HELP a \xff\n# EOF\n").is_err());
        assert_eq!(err("# HELP a b").msg, "data does not end with # EOF");
    }

    #[test]
    fn float_timestamps_and_values() {
        let got = all("a 1 -1.5\nb NaN 1e3\nc +Inf 0\nd -1.5e-3\n# EOF\n").unwrap();
        assert_eq!(line(&got[0]).timestamp_ms, Some(-1500));
        assert_eq!(line(&got[1]).value.to_bits(), NORMAL_NAN_BITS);
        assert_eq!(line(&got[1]).timestamp_ms, Some(1_000_000));
        assert_eq!(line(&got[2]).value, f64::INFINITY);
        assert_eq!(line(&got[3]).value, -0.0015);
        let e = err("a 1 NaN\n# EOF\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (4, r#"invalid timestamp "NaN""#)
        );
        assert!(all("a 1 +Inf\n# EOF\n").is_err());
        assert!(all("a 1 x\n# EOF\n").is_err());
    }

    #[test]
    fn exemplars() {
        let got = all(
            "a_bucket{le=\"1\"} 2 # {} 0.5\na_total 3 1 # {t=\"\\\"q\\\"\",u=\"ü\"} 1 2\n# EOF\n",
        )
        .unwrap();
        let ex = line(&got[0]).exemplar.unwrap();
        assert_eq!(
            (ex.labels, ex.value, ex.timestamp_ms),
            (&b"{}"[..], 0.5, None)
        );
        let s = line(&got[1]);
        assert_eq!(s.timestamp_ms, Some(1000));
        let ex = s.exemplar.unwrap();
        assert_eq!(ex.labels, "{t=\"\\\"q\\\"\",u=\"ü\"}".as_bytes());
        assert_eq!(ex.timestamp_ms, Some(2000));
        let e = err("a 1 # {} 1\n# EOF\n");
        assert_eq!(
            (e.offset, e.msg.as_str()),
            (0, r#"exemplars are not supported on metric "a""#)
        );
        for bad in [
            "a_total 1 # {} \n# EOF\n",
            "a_total 1 # {}1\n# EOF\n",
            "a_total 1 # {} 1 2 3\n# EOF\n",
            "a_total 1 # {} x\n# EOF\n",
            "a_total 1 # {} 1 NaN\n# EOF\n",
            "a_total 1 # {a=\"1\",} 1\n# EOF\n",
            "a_total 1 #{} 1\n# EOF\n",
            "a_total 1 # {} 1 # {} 2\n# EOF\n",
        ] {
            assert!(all(bad).is_err(), "{bad:?}");
        }
        // Exemplar labels may repeat: Prometheus drops such an exemplar, not the scrape.
        assert!(all("a_total 1 # {x=\"1\",x=\"2\"} 1\n# EOF\n").is_ok());
    }

    #[test]
    fn errors_with_line_and_offset() {
        let e = err("# TYPE a gauge\na{b=x} 1\n# EOF\n");
        assert_eq!((e.line, e.offset), (2, 19));
        assert_eq!(e.msg, r#"expected label value, got "x}""#);
        assert!(all_bytes(b"a{b=\"1\",b=\"2\"} 1\n# EOF\n").is_ok());
        let e = err("a 1\nb{c=\"x\ny\"} 1\n# EOF\n");
        assert_eq!((e.line, e.offset), (2, 10));
        let e = err("a 1\n# HELP\n# EOF\n");
        assert_eq!(e.line, 2);
    }
}
