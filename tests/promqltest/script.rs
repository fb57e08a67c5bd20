//! The PromQL test script language (Prometheus's `promql/promqltest`), read into commands:
//! `load` blocks with their series and points, `clear`, and `eval` cases with every form of
//! expectation the suite uses. Parsing only: nothing here touches storage or the engine.
//!
//! Lines are trimmed and `#` comments become blank lines before parsing, as Prometheus
//! does, so a comment ends a block. A malformed block is reported as a [`ScriptError`] at
//! its line and skipped; the rest of the file is still read.

use cairn::model::time::parse_duration_ms;
use cairn::model::{Labels, stale_nan};
use cairn::promql::unquote;
use regex::Regex;

/// One point of a series line: `_`, a float (a staleness marker is a float), or a native
/// histogram `{{...}}`, which cairn cannot store yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Point {
    Omitted,
    Float(f64),
    Histogram,
}

/// A series line: labels and the points at `start + i * interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDef {
    pub labels: Labels,
    pub points: Vec<Point>,
}

#[derive(Debug)]
pub struct Load {
    pub line: usize,
    pub interval_ms: i64,
    /// `load_with_nhcb`: classic histograms are also loaded as native ones.
    pub with_nhcb: bool,
    pub series: Vec<SeriesDef>,
}

/// How an expected annotation or error message is matched.
#[derive(Debug)]
pub enum TextMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl TextMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(m) => m == s,
            TextMatch::Regex(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for TextMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextMatch::Any => f.write_str("any message"),
            TextMatch::Exact(m) => write!(f, "message {m:?}"),
            TextMatch::Regex(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalKind {
    Instant { at: i64 },
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug, Default)]
pub struct Expectations {
    /// `expect fail` (at most one) or `eval_fail`, with `expected_fail_*` folded in.
    pub fail: Option<TextMatch>,
    pub ordered: bool,
    /// `expect warn` / `expect info` lines; `eval_warn` / `eval_info` add an `Any`.
    pub warn: Vec<TextMatch>,
    pub info: Vec<TextMatch>,
    pub no_warn: bool,
    pub no_info: bool,
}

#[derive(Debug)]
pub struct Eval {
    /// 1-based line of the `eval` command: the case's name is `file:line`.
    pub line: usize,
    pub query: String,
    pub kind: EvalKind,
    pub expect: Expectations,
    /// `expect range vector from .. to .. step ..`: an instant query at `end` whose raw
    /// matrix is compared with points at `start + i * step`.
    pub range_vector: Option<(i64, i64, i64)>,
    /// Expected series in file order; a later line for the same labels replaces an
    /// earlier one, keeping its position.
    pub series: Vec<SeriesDef>,
    /// A bare number line: the result must be a scalar.
    pub scalar: Option<f64>,
    /// `expect string "..."`.
    pub string: Option<String>,
}

impl Eval {
    /// Whether Prometheus's runner skips re-running this instant query as a range query.
    pub fn excluded_from_range_check(&self) -> bool {
        self.range_vector.is_some() || self.string.is_some()
    }

    pub fn uses_histograms(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.points.contains(&Point::Histogram))
    }
}

#[derive(Debug)]
pub enum Command {
    Load(Load),
    Clear,
    Eval(Box<Eval>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    pub line: usize,
    pub msg: String,
}

#[derive(Debug, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    pub errors: Vec<ScriptError>,
}

/// Parses a whole script. Never fails: bad blocks become [`Script::errors`].
pub fn parse_script(input: &str) -> Script {
    let lines: Vec<&str> = input
        .lines()
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') { "" } else { l }
        })
        .collect();
    let mut script = Script::default();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let (end, cmd) = if word == "clear" {
            (i, Ok(Command::Clear))
        } else if word.starts_with("load") {
            parse_load(&lines, i)
        } else if word.starts_with("eval") {
            parse_eval(&lines, i)
        } else {
            (i, Err(format!("invalid command {l:?}")))
        };
        match cmd {
            Ok(c) => script.commands.push(c),
            Err(msg) => {
                script.errors.push(ScriptError { line: i + 1, msg });
                // Skip the rest of the block.
                let mut j = end.max(i);
                while j + 1 < lines.len() && !lines[j + 1].is_empty() {
                    j += 1;
                }
                i = j;
            }
        }
        i = i.max(end) + 1;
    }
    script
}

/// Reads the block's lines after `start` up to the next blank line. Returns the index of
/// the block's last line.
fn block_end(lines: &[&str], start: usize) -> usize {
    let mut j = start;
    while j + 1 < lines.len() && !lines[j + 1].is_empty() {
        j += 1;
    }
    j
}

fn parse_load(lines: &[&str], i: usize) -> (usize, Result<Command, String>) {
    let end = block_end(lines, i);
    let mut words = lines[i].split_whitespace();
    let with_nhcb = match words.next() {
        Some("load") => false,
        Some("load_with_nhcb") => true,
        _ => {
            return (
                end,
                Err("invalid load command. (load[_with_nhcb] <step:duration>)".into()),
            );
        }
    };
    let interval_ms = match words.next().map(duration_ms) {
        Some(Ok(ms)) if words.next().is_none() => ms,
        Some(Err(e)) => return (end, Err(e)),
        _ => {
            return (
                end,
                Err("invalid load command. (load[_with_nhcb] <step:duration>)".into()),
            );
        }
    };
    let mut series = Vec::new();
    for (j, l) in lines.iter().enumerate().take(end + 1).skip(i + 1) {
        match parse_series(l) {
            Ok(s) => series.push(s),
            Err(e) => return (end, Err(format!("line {}: {e}", j + 1))),
        }
    }
    (
        end,
        Ok(Command::Load(Load {
            line: i + 1,
            interval_ms,
            with_nhcb,
            series,
        })),
    )
}

fn parse_eval(lines: &[&str], i: usize) -> (usize, Result<Command, String>) {
    let end = block_end(lines, i);
    match parse_eval_block(lines, i, end) {
        Ok((last, eval)) => (last, Ok(Command::Eval(Box::new(eval)))),
        Err(e) => (end, Err(e)),
    }
}

/// Splits off the first whitespace-delimited word.
fn next_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let cut = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..cut], s[cut..].trim_start()))
}

fn expect_word<'a>(s: &'a str, want: &str) -> Result<&'a str, String> {
    match next_word(s) {
        Some((w, rest)) if w == want => Ok(rest),
        _ => Err(format!("expected {want:?} in {s:?}")),
    }
}

fn parse_eval_block(lines: &[&str], i: usize, end: usize) -> Result<(usize, Eval), String> {
    let header = lines[i];
    let (cmd, rest) = next_word(header).ok_or("empty eval")?;
    let modifier = match cmd {
        "eval" => "",
        "eval_fail" => "fail",
        "eval_warn" => "warn",
        "eval_info" => "info",
        "eval_ordered" => "ordered",
        _ => return Err(format!("invalid evaluation command {cmd:?}")),
    };
    let (mode, rest) = next_word(rest).ok_or("eval without instant/range")?;
    let (kind, query) = match mode {
        "instant" => {
            let rest = expect_word(rest, "at")?;
            let (at, query) = next_word(rest).ok_or("eval instant without a time")?;
            (
                EvalKind::Instant {
                    at: duration_ms(at)?,
                },
                query,
            )
        }
        "range" if modifier != "ordered" => {
            let (start, end, step, query) = parse_from_to_step(rest)?;
            (EvalKind::Range { start, end, step }, query)
        }
        _ => return Err(format!("invalid evaluation command {header:?}")),
    };
    if query.is_empty() {
        return Err("eval without a query".into());
    }
    let mut eval = Eval {
        line: i + 1,
        query: query.to_string(),
        kind,
        expect: Expectations::default(),
        range_vector: None,
        series: Vec::new(),
        scalar: None,
        string: None,
    };
    match modifier {
        "fail" => eval.expect.fail = Some(TextMatch::Any),
        "warn" => eval.expect.warn.push(TextMatch::Any),
        "info" => eval.expect.info.push(TextMatch::Any),
        "ordered" => eval.expect.ordered = true,
        _ => {}
    }
    let legacy_fail = modifier == "fail";
    let mut j = i + 1;
    while j <= end {
        let l = lines[j];
        if legacy_fail && let Some(m) = l.strip_prefix("expected_fail_message") {
            eval.expect.fail = Some(TextMatch::Exact(m.trim().to_string()));
            // Prometheus stops reading the block here.
            return Ok((j, eval));
        }
        if legacy_fail && let Some(p) = l.strip_prefix("expected_fail_regexp") {
            let re = Regex::new(p.trim()).map_err(|e| format!("bad expected_fail_regexp: {e}"))?;
            eval.expect.fail = Some(TextMatch::Regex(re));
            return Ok((j, eval));
        }
        if let Some(rest) = l.strip_prefix("expect range vector") {
            let (start, stop, step, tail) = parse_from_to_step(rest)?;
            if !tail.is_empty() {
                return Err(format!("invalid range vector definition {l:?}"));
            }
            eval.range_vector = Some((start, stop, step));
            if let EvalKind::Instant { at } = &mut eval.kind {
                *at = stop;
            }
        } else if let Some(rest) = l.strip_prefix("expect string") {
            let s = unquote(rest.trim()).map_err(|_| {
                format!("expected string literal not valid in {l:?}: a quoted string literal is required")
            })?;
            eval.string = Some(s);
        } else if l.split(' ').next() == Some("expect") {
            parse_expect(l, &mut eval.expect)?;
        } else if let Some(v) = parse_number(l) {
            eval.scalar = Some(v);
            eval.series.clear();
            // Prometheus stops reading the block after a scalar.
            return Ok((j, eval));
        } else {
            let s = parse_series(l).map_err(|e| format!("line {}: {e}", j + 1))?;
            if s.points.len() > 1
                && matches!(eval.kind, EvalKind::Instant { .. })
                && eval.range_vector.is_none()
            {
                return Err(format!(
                    "line {}: expecting multiple values in instant evaluation not allowed",
                    j + 1
                ));
            }
            eval.scalar = None;
            match eval.series.iter_mut().find(|e| e.labels == s.labels) {
                Some(e) => e.points = s.points,
                None => eval.series.push(s),
            }
        }
        j += 1;
    }
    Ok((end, eval))
}

/// `from <d> to <d> step <d> <rest>` (the `from` may be already stripped of nothing).
fn parse_from_to_step(s: &str) -> Result<(i64, i64, i64, &str), String> {
    let rest = expect_word(s, "from")?;
    let (from, rest) = next_word(rest).ok_or("missing start")?;
    let rest = expect_word(rest, "to")?;
    let (to, rest) = next_word(rest).ok_or("missing end")?;
    let rest = expect_word(rest, "step")?;
    let (step, rest) = next_word(rest).ok_or("missing step")?;
    let (start, end, step) = (duration_ms(from)?, duration_ms(to)?, duration_ms(step)?);
    if end < start {
        return Err(format!(
            "invalid test definition, end timestamp ({to}) is before start timestamp ({from})"
        ));
    }
    Ok((start, end, step, rest))
}

fn parse_expect(l: &str, e: &mut Expectations) -> Result<(), String> {
    let rest = l["expect".len()..].trim_start();
    let (kind, tail) = match rest.find(|c: char| c.is_whitespace()) {
        Some(p) => (&rest[..p], rest[p..].trim()),
        None => (rest, ""),
    };
    let text = if tail.is_empty() {
        TextMatch::Any
    } else if let Some(m) = tail.strip_prefix("msg:") {
        TextMatch::Exact(m.trim().to_string())
    } else if let Some(p) = tail.strip_prefix("regex:") {
        TextMatch::Regex(Regex::new(p.trim()).map_err(|err| format!("invalid regex {p}: {err}"))?)
    } else {
        return Err(format!("invalid expect statement {l:?}"));
    };
    let no_text = matches!(text, TextMatch::Any);
    match kind {
        "fail" if e.fail.is_none() => e.fail = Some(text),
        "fail" => return Err("multiple expect fail lines are not allowed".into()),
        "warn" => e.warn.push(text),
        "info" => e.info.push(text),
        "ordered" if no_text => e.ordered = true,
        "no_warn" if no_text => e.no_warn = true,
        "no_info" if no_text => e.no_info = true,
        _ => return Err(format!("invalid expect statement {l:?}")),
    }
    if (e.no_warn && !e.warn.is_empty()) || (e.no_info && !e.info.is_empty()) {
        return Err("warn/no_warn or info/no_info used together".into());
    }
    Ok(())
}

/// A Prometheus duration as a time since the epoch (the suite's times are offsets from 0).
pub fn duration_ms(s: &str) -> Result<i64, String> {
    let ms = parse_duration_ms(s).map_err(|e| e.to_string())?;
    i64::try_from(ms).map_err(|_| format!("duration {s:?} out of range"))
}

/// A number as Go's `strconv.ParseInt(s, 0, 64)` then `ParseFloat` read it: decimal,
/// `0x`/`0o`/`0b` integers, floats, `Inf`, `NaN`, with an optional sign.
pub fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let radix = |p: &str, r: u32| {
        body.strip_prefix(p)
            .or_else(|| body.strip_prefix(&p.to_ascii_uppercase()))
            .and_then(|d| i64::from_str_radix(d, r).ok())
    };
    if let Some(n) = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
    {
        let v = n as f64;
        return Some(if neg { -v } else { v });
    }
    // Rust accepts "infinity" and "nan" as Go does; it refuses "1_000" as Go does
    // without a base prefix.
    if body.starts_with(['+', '-']) {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// One series line: `name{label="value", ...} <points>`, as `ParseSeriesDesc` reads it.
pub fn parse_series(line: &str) -> Result<SeriesDef, String> {
    let (labels, rest) = parse_labels(line)?;
    Ok(SeriesDef {
        labels,
        points: parse_points(rest)?,
    })
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Reads a quoted string at the start of `s`; returns its value and the rest.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let q = s.chars().next().ok_or("expected a string")?;
    if !matches!(q, '"' | '\'' | '`') {
        return Err(format!("expected a string at {s:?}"));
    }
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && q != '`' {
            escaped = true;
        } else if c == q {
            let lit = &s[..i + c.len_utf8()];
            let v = unquote(lit).map_err(|e| format!("bad string {lit}: {e}"))?;
            return Ok((v, &s[i + c.len_utf8()..]));
        }
    }
    Err(format!("unterminated string in {s:?}"))
}

fn parse_labels(line: &str) -> Result<(Labels, &str), String> {
    let mut s = line.trim_start();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let name_len = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
    if name_len > 0 {
        if !s.starts_with(is_name_start) {
            return Err(format!("invalid metric name in {line:?}"));
        }
        pairs.push(("__name__".into(), s[..name_len].into()));
        s = &s[name_len..];
    }
    if let Some(inner) = s.strip_prefix('{') {
        s = inner;
        loop {
            s = s.trim_start();
            if let Some(r) = s.strip_prefix('}') {
                s = r;
                break;
            }
            let (name, rest) = if s.starts_with(['"', '\'', '`']) {
                quoted(s)?
            } else {
                let n = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
                if n == 0 || !s.starts_with(is_name_start) {
                    return Err(format!("unexpected character in label list: {s:?}"));
                }
                (s[..n].to_string(), &s[n..])
            };
            let rest = rest.trim_start();
            s = if let Some(r) = rest.strip_prefix('=') {
                let (value, r) = quoted(r.trim_start())?;
                pairs.push((name, value));
                r
            } else {
                // A lone quoted string is the metric name (`{"my.metric", a="b"}`).
                pairs.push(("__name__".into(), name));
                rest
            };
            s = s.trim_start();
            if let Some(r) = s.strip_prefix(',') {
                s = r;
            } else if !s.starts_with('}') {
                return Err(format!("expected ',' or '}}' in label list: {s:?}"));
            }
        }
    } else if name_len == 0 {
        return Err(format!("expected a series in {line:?}"));
    }
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(format!("duplicate label name in {line:?}"));
    }
    Ok((Labels::from_pairs(pairs), s))
}

/// The points part of a series line: `_`, `_xN`, `stale`, `v`, `vxN`, `a+bxN`, `a-bxN`,
/// `{{...}}`, `{{...}}xN`, `{{...}}+{{...}}xN`, separated by whitespace.
fn parse_points(mut s: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(out);
        }
        if s.starts_with("{{") {
            s = histogram_item(s, &mut out)?;
            continue;
        }
        let cut = s.find(char::is_whitespace).unwrap_or(s.len());
        float_item(&s[..cut], &mut out)?;
        s = &s[cut..];
    }
}

/// Skips a histogram item, pushing as many [`Point::Histogram`]s as it stands for.
fn histogram_item<'a>(s: &'a str, out: &mut Vec<Point>) -> Result<&'a str, String> {
    let close = |from: &str| from.find("}}").map(|p| p + 2);
    let mut end = close(s).ok_or("unterminated histogram")?;
    if s[end..].starts_with("+{{") || s[end..].starts_with("-{{") {
        end += close(&s[end..]).ok_or("unterminated histogram")?;
    }
    let rest = &s[end..];
    let cut = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let n = match &rest[..cut] {
        "" => 1,
        t => {
            repeat_count(
                t.strip_prefix('x')
                    .ok_or(format!("bad histogram item {s:?}"))?,
            )? + 1
        }
    };
    out.extend(std::iter::repeat_n(Point::Histogram, n));
    Ok(&rest[cut..])
}

fn repeat_count(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| format!("invalid repeat count {s:?}"))
}

/// A value of a series line: a decimal float, `Inf`, `NaN` or `stale`. Never hex, as in
/// Prometheus's series lexer: `0x59` is 0 repeated.
fn value(s: &str) -> Result<f64, String> {
    if s == "stale" {
        return Ok(stale_nan());
    }
    let bad = || format!("invalid value {s:?}");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.starts_with(['+', '-']) {
        return Err(bad());
    }
    let v: f64 = body.parse().map_err(|_| bad())?;
    Ok(if neg { -v } else { v })
}

fn float_item(item: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if item == "_" {
        out.push(Point::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        out.extend(std::iter::repeat_n(Point::Omitted, repeat_count(n)?));
        return Ok(());
    }
    if let Ok(v) = value(item) {
        out.push(Point::Float(v));
        return Ok(());
    }
    let x = item
        .rfind('x')
        .ok_or_else(|| format!("invalid value {item:?}"))?;
    let n = repeat_count(&item[x + 1..])?;
    let head = &item[..x];
    // The sign that splits `a+b` / `a-b`: not the first character, not an exponent's.
    let split = head
        .char_indices()
        .skip(1)
        .find(|&(i, c)| (c == '+' || c == '-') && !matches!(head.as_bytes()[i - 1], b'e' | b'E'));
    let (mut v, delta) = match split {
        Some((i, _)) => (value(&head[..i])?, value(&head[i..])?),
        None => (value(head)?, 0.0),
    };
    // Accumulate as Prometheus does (`v += delta`), so loaded floats match bit for bit.
    for _ in 0..=n {
        out.push(Point::Float(v));
        v += delta;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(s: &str) -> Vec<f64> {
        parse_points(s)
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Point::Float(v) => v,
                Point::Omitted => -999.0,
                Point::Histogram => -555.0,
            })
            .collect()
    }

    #[test]
    fn expands_points() {
        assert_eq!(floats("0+10x3"), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(
            floats("5 -2-1x2 _ 1x2"),
            [5.0, -2.0, -3.0, -4.0, -999.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(
            floats("_x3 1e+3 -Inf"),
            [-999.0, -999.0, -999.0, 1000.0, f64::NEG_INFINITY]
        );
        assert_eq!(floats("0x2 3"), [0.0, 0.0, 0.0, 3.0]);
        assert_eq!(parse_number("0x10"), Some(16.0));
        assert_eq!(floats("1e-3+1e-3x1"), [0.001, 0.002]);
        assert!(cairn::model::is_stale_nan(floats("stale")[0]));
        assert!(floats("NaN")[0].is_nan());
        assert_eq!(
            floats("1 {{schema:0 sum:1 count:2 buckets:[1 1]}}x2 {{sum:1}}+{{sum:2}}x1 3"),
            [1.0, -555.0, -555.0, -555.0, -555.0, -555.0, 3.0]
        );
        assert!(parse_points("1+x").is_err());
        assert!(parse_points("abc").is_err());
    }

    #[test]
    fn reads_series_labels() {
        let s = parse_series(r#"foo{a="x\"y", b='z',} 1"#).unwrap();
        assert_eq!(
            s.labels,
            Labels::from_pairs([("__name__", "foo"), ("a", "x\"y"), ("b", "z")])
        );
        let s = parse_series(r#"{"my.metric", "utf8.label"="v"} 2"#).unwrap();
        assert_eq!(
            s.labels,
            Labels::from_pairs([("__name__", "my.metric"), ("utf8.label", "v")])
        );
        assert_eq!(parse_series("{} 3").unwrap().labels, Labels::empty());
        assert!(parse_series(r#"foo{a="1", a="2"} 1"#).is_err());
        assert!(parse_series(r#"foo{a=} 1"#).is_err());
    }

    #[test]
    fn reads_commands_and_expectations() {
        let script = parse_script(
            "# comment\nload 1m\n  m{a=\"1\"} 0+1x2\n\nclear\n\
             eval instant at 1m rate(m[5m])\n  expect no_warn\n  expect fail msg: boom\n\n\
             eval range from 0 to 2m step 1m m\n  expect warn regex: x.+\n  m{a=\"1\"} 0 _ 2\n\n\
             eval instant at 10s m[1m]\n  expect range vector from 0 to 10s step 10s\n  m 1 2\n\n\
             eval_fail instant at 0 foo\n  expected_fail_message some error\n\n\
             eval instant at 0 1\n  1.5\n\nbogus\n\neval instant at 0 \"a\"\n  expect string \"a\"\n",
        );
        assert_eq!(
            script.errors,
            [ScriptError {
                line: 24,
                msg: "invalid command \"bogus\"".into()
            }]
        );
        let evals: Vec<&Eval> = script
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Eval(e) => Some(&**e),
                _ => None,
            })
            .collect();
        assert_eq!(evals.len(), 6);
        assert!(matches!(
            script.commands[0],
            Command::Load(Load {
                interval_ms: 60_000,
                ..
            })
        ));
        assert!(matches!(script.commands[1], Command::Clear));
        let e = evals[0];
        assert_eq!((e.line, e.query.as_str()), (6, "rate(m[5m])"));
        assert!(e.expect.no_warn && e.expect.fail.as_ref().unwrap().matches("boom"));
        let e = evals[1];
        assert_eq!(
            e.kind,
            EvalKind::Range {
                start: 0,
                end: 120_000,
                step: 60_000
            }
        );
        assert!(e.expect.warn[0].matches("axb") && !e.expect.warn[0].matches("x"));
        assert_eq!(e.series[0].points[1], Point::Omitted);
        let e = evals[2];
        assert_eq!(e.range_vector, Some((0, 10_000, 10_000)));
        assert_eq!(e.kind, EvalKind::Instant { at: 10_000 });
        assert!(evals[3].expect.fail.as_ref().unwrap().matches("some error"));
        assert_eq!(evals[4].scalar, Some(1.5));
        assert_eq!(evals[5].string.as_deref(), Some("a"));
    }

    #[test]
    fn refuses_multiple_points_for_instant_queries() {
        let script = parse_script("eval instant at 0 m\n  m 1 2\n");
        assert_eq!(script.errors.len(), 1);
        assert!(script.commands.is_empty());
    }
}
