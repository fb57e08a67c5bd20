//! Property tests for both exposition parsers: arbitrary and near-valid bytes never
//! panic and every accepted series rebuilds its labels; generated valid expositions
//! round-trip names, labels, values and timestamps exactly.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use super::*;
use crate::model::LabelsBuilder;

/// Drives a parser to its end and checks what must hold for any input: errors point
/// inside the input with the right line, series are sub-slices whose labels rebuild.
fn check_any_input(buf: &[u8], format: Format) {
    let mut parser = Parser::new(buf, format);
    let mut labels = LabelsBuilder::new();
    // Every call consumes at least one byte or ends, so this bound is never reached
    // by a correct parser; reaching it means a loop.
    for _ in 0..=buf.len() + 1 {
        match parser.next() {
            Ok(Some(Entry::Series(s))) => {
                let start = s.series.as_ptr() as usize - buf.as_ptr() as usize;
                assert!(start + s.series.len() <= buf.len());
                parse_series_labels(s.series, &mut labels).expect("accepted series rebuilds");
                if let Some(e) = s.exemplar {
                    parse_exemplar_labels(e.labels, &mut labels).expect("accepted exemplar");
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                assert!(e.offset <= buf.len());
                let newlines = buf[..e.offset].iter().filter(|&&b| b == b'\n').count();
                assert_eq!(e.line, newlines + 1);
                assert_eq!(parser.next(), Err(e));
                return;
            }
        }
    }
    panic!("parser did not finish");
}

/// Bytes drawn mostly from the characters the grammars care about, so generated input
/// reaches deep into label blocks, values and exemplars instead of failing at byte 0.
fn near_exposition() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(&b"a"[..]),
        Just(&b"_total"[..]),
        Just(&b"_bucket"[..]),
        Just(&b"{"[..]),
        Just(&b"}"[..]),
        Just(&b"="[..]),
        Just(&b"\""[..]),
        Just(&b","[..]),
        Just(&b" "[..]),
        Just(&b"\t"[..]),
        Just(&b"\n"[..]),
        Just(&b"\\"[..]),
        Just(&b"#"[..]),
        Just(&b"# "[..]),
        Just(&b" # {"[..]),
        Just(&b"# HELP "[..]),
        Just(&b"# TYPE "[..]),
        Just(&b"# UNIT "[..]),
        Just(&b"# EOF"[..]),
        Just(&b"counter"[..]),
        Just(&b"1"[..]),
        Just(&b"1.5e3"[..]),
        Just(&b"+Inf"[..]),
        Just(&b"NaN"[..]),
        Just(&b"-"[..]),
        Just(&b"\0"[..]),
        Just(&b"\xc3\xbc"[..]),
        Just(&b"\xff"[..]),
        Just(&b"le"[..]),
        Just(&b"__name__"[..]),
    ];
    vec(pieces, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..300)) {
        check_any_input(&buf, Format::Text);
        check_any_input(&buf, Format::OpenMetrics);
        let mut b = LabelsBuilder::new();
        let _ = parse_series_labels(&buf, &mut b);
        let _ = parse_exemplar_labels(&buf, &mut b);
        let _ = unescape_help(&buf, Format::Text);
    }

    #[test]
    fn near_valid_bytes_never_panic(buf in near_exposition()) {
        check_any_input(&buf, Format::Text);
        check_any_input(&buf, Format::OpenMetrics);
        let mut b = LabelsBuilder::new();
        let _ = parse_series_labels(&buf, &mut b);
        let _ = parse_exemplar_labels(&buf, &mut b);
    }
}

/// One generated sample.
#[derive(Clone, Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
    /// Text format: any non-negative ms. OpenMetrics: a multiple of 250 ms, which is
    /// exact as float seconds, so truncation cannot lose a millisecond.
    timestamp_ms: Option<i64>,
    exemplar: Option<(BTreeMap<String, String>, f64, Option<i64>)>,
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}".prop_filter("reserved", |n| n != "__name__"),
        any::<String>().prop_map(|s| s.chars().take(12).collect::<String>()),
        0..6,
    )
}

fn sample_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (0u32..1_000_000).prop_map(f64::from),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ]
}

fn sample(openmetrics: bool) -> impl Strategy<Value = Sample> {
    let name = (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop_oneof!["", "_total", "_bucket", "_created"],
    )
        .prop_map(|(n, s)| format!("{n}{s}"));
    let ts = if openmetrics {
        prop::option::of((-4_000_000_000_000i64..4_000_000_000_000).prop_map(|q| q * 250)).boxed()
    } else {
        prop::option::of(0i64..=i64::MAX).boxed()
    };
    let exemplar = prop::option::of((
        label_map(),
        sample_value(),
        prop::option::of((-4_000_000_000i64..4_000_000_000).prop_map(|q| q * 250)),
    ));
    (name, label_map(), sample_value(), ts, exemplar).prop_map(
        move |(name, labels, value, timestamp_ms, exemplar)| {
            let exemplar_ok =
                openmetrics && (name.ends_with("_total") || name.ends_with("_bucket"));
            Sample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar: exemplar.filter(|_| exemplar_ok),
            }
        },
    )
}

/// How the text rendering spaces its tokens: indices into a small set of separators,
/// drawn per sample so one exposition mixes styles.
#[derive(Clone, Debug)]
struct Style {
    ws: [u8; 8],
    trailing_comma: bool,
    raw_newlines: bool,
    float_style: u8,
}

fn style() -> impl Strategy<Value = Style> {
    (any::<[u8; 8]>(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        |(ws, trailing_comma, raw_newlines, float_style)| Style {
            ws,
            trailing_comma,
            raw_newlines,
            float_style,
        },
    )
}

fn ws(k: u8, allow_empty: bool) -> &'static str {
    const ALL: [&str; 5] = ["", " ", "\t", "  ", " \t "];
    let w = ALL[usize::from(k) % ALL.len()];
    if w.is_empty() && !allow_empty { " " } else { w }
}

fn render_value(v: f64, style: u8) -> String {
    if v.is_nan() {
        return if style == 1 {
            "nan".into()
        } else {
            "NaN".into()
        };
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    match style {
        0 => format!("{v}"),
        1 => format!("{v:e}"),
        _ => format!("{v:?}"),
    }
}

fn escape(value: &str, raw_newlines: bool) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' if raw_newlines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn render_text(samples: &[(Sample, Style)]) -> String {
    let mut out = String::new();
    for (i, (s, st)) in samples.iter().enumerate() {
        if i % 3 == 0 {
            out.push_str(&format!(
                "# HELP {} help for \\\\ {i}\n# TYPE {} counter\n",
                s.name, s.name
            ));
        }
        if i % 4 == 1 {
            out.push_str("\n# a comment\n");
        }
        out.push_str(&s.name);
        let has_block = !s.labels.is_empty() || st.ws[0] % 2 == 0;
        if has_block {
            out.push_str(ws(st.ws[1], true));
            out.push('{');
            let n = s.labels.len();
            for (j, (k, v)) in s.labels.iter().enumerate() {
                out.push_str(ws(st.ws[2], true));
                out.push_str(k);
                out.push_str(ws(st.ws[3], true));
                out.push('=');
                out.push_str(ws(st.ws[4], true));
                out.push('"');
                out.push_str(&escape(v, st.raw_newlines));
                out.push('"');
                if j + 1 < n || st.trailing_comma {
                    out.push_str(ws(st.ws[5], true));
                    out.push(',');
                }
            }
            out.push_str(ws(st.ws[2], true));
            out.push('}');
        }
        // After a bare name the value needs a separator, or `a1 2` reads as `a1`.
        out.push_str(ws(st.ws[6], has_block));
        out.push_str(&render_value(s.value, st.float_style));
        if let Some(t) = s.timestamp_ms {
            out.push_str(ws(st.ws[7], false));
            out.push_str(&t.to_string());
        }
        out.push_str(ws(st.ws[7], true));
        out.push('\n');
    }
    out
}

fn render_om_labels(labels: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v, false)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn render_om_ts(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

fn render_openmetrics(samples: &[(Sample, Style)]) -> String {
    let mut out = String::new();
    for (i, (s, st)) in samples.iter().enumerate() {
        if i % 3 == 0 {
            out.push_str(&format!(
                "# HELP {} help \\\"{i}\\\"\n# TYPE {} unknown\n# UNIT {} \n",
                s.name, s.name, s.name
            ));
        }
        out.push_str(&s.name);
        if !s.labels.is_empty() || st.ws[0] % 2 == 0 {
            out.push_str(&render_om_labels(&s.labels));
        }
        out.push(' ');
        out.push_str(&render_value(s.value, st.float_style));
        if let Some(t) = s.timestamp_ms {
            out.push(' ');
            out.push_str(&render_om_ts(t));
        }
        if let Some((labels, v, t)) = &s.exemplar {
            out.push_str(" # ");
            out.push_str(&render_om_labels(labels));
            out.push(' ');
            out.push_str(&render_value(*v, st.float_style));
            if let Some(t) = t {
                out.push(' ');
                out.push_str(&render_om_ts(*t));
            }
        }
        out.push('\n');
    }
    out.push_str("# EOF\n");
    out
}

fn expected_labels(s: &Sample) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s
        .labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.push(("__name__".into(), s.name.clone()));
    v.sort();
    v
}

fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        NORMAL_NAN_BITS
    } else {
        v.to_bits()
    }
}

fn check_round_trip(body: &str, format: Format, samples: &[(Sample, Style)]) {
    let mut parser = Parser::new(body.as_bytes(), format);
    let mut labels = LabelsBuilder::new();
    let mut got = 0;
    loop {
        let entry = match parser.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => panic!("{e} in:\n{body}"),
        };
        let Entry::Series(line) = entry else { continue };
        let (want, _) = &samples[got];
        got += 1;
        parse_series_labels(line.series, &mut labels).unwrap();
        let have: Vec<(String, String)> = labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        assert_eq!(have, expected_labels(want));
        assert_eq!(
            line.value.to_bits(),
            value_bits(want.value),
            "{}",
            want.value
        );
        assert_eq!(line.timestamp_ms, want.timestamp_ms);
        match (&line.exemplar, &want.exemplar) {
            (None, None) => {}
            (Some(e), Some((l, v, t))) => {
                parse_exemplar_labels(e.labels, &mut labels).unwrap();
                let have: BTreeMap<String, String> = labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                let want: BTreeMap<String, String> = l
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(have, want);
                assert_eq!(e.value.to_bits(), value_bits(*v));
                assert_eq!(e.timestamp_ms, *t);
            }
            (have, want) => panic!("exemplar mismatch: {have:?} vs {want:?}"),
        }
    }
    assert_eq!(got, samples.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn text_round_trips(samples in vec((sample(false), style()), 0..12)) {
        let body = render_text(&samples);
        check_round_trip(&body, Format::Text, &samples);
    }

    #[test]
    fn openmetrics_round_trips(samples in vec((sample(true), style()), 0..12)) {
        let body = render_openmetrics(&samples);
        check_round_trip(&body, Format::OpenMetrics, &samples);
    }
}
