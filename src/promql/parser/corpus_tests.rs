//! Whole-parser tests that need more than one literal input: every query of the
//! conformance suite must parse, print and parse back to the same tree; random text and
//! token soups must never panic; absurd nesting must be an error, not a crash.

use proptest::prelude::*;

use super::{MAX_DEPTH, NESTING_COST, parse_expr};
use crate::promql::ast::*;

/// Zeroes every position so that trees parsed from differently spaced text compare.
fn strip(e: &mut Expr) {
    fn dv(d: &mut DurationValue) {
        if let DurationValue::Expr(de) = d {
            strip_duration(de);
        }
    }
    fn strip_duration(d: &mut DurationExpr) {
        d.pos = PosRange::default();
        for side in [&mut d.lhs, &mut d.rhs].into_iter().flatten() {
            strip(side);
        }
    }
    fn vs(v: &mut VectorSelector) {
        v.pos = PosRange::default();
        if let Some(o) = &mut v.offset {
            dv(o);
        }
    }
    match e {
        Expr::Number(n) => n.pos = PosRange::default(),
        Expr::String(s) => s.pos = PosRange::default(),
        Expr::VectorSelector(v) => vs(v),
        Expr::MatrixSelector(m) => {
            vs(&mut m.selector);
            dv(&mut m.range);
            m.end = 0;
        }
        Expr::Subquery(s) => {
            strip(&mut s.expr);
            dv(&mut s.range);
            for d in [&mut s.step, &mut s.offset].into_iter().flatten() {
                dv(d);
            }
            s.end = 0;
        }
        Expr::Unary(u) => {
            u.start = 0;
            strip(&mut u.expr);
        }
        Expr::Binary(b) => {
            strip(&mut b.lhs);
            strip(&mut b.rhs);
        }
        Expr::Aggregate(a) => {
            a.pos = PosRange::default();
            strip(&mut a.expr);
            if let Some(p) = &mut a.param {
                strip(p);
            }
        }
        Expr::Call(c) => {
            c.pos = PosRange::default();
            c.args.iter_mut().for_each(strip);
        }
        Expr::Paren(p) => {
            p.pos = PosRange::default();
            strip(&mut p.expr);
        }
        Expr::Duration(d) => strip_duration(d),
    }
}

/// `{:?}` of the position-free tree: NaN compares equal to NaN this way.
fn shape(e: &Expr) -> String {
    let mut e = e.clone();
    strip(&mut e);
    // The printer sorts matchers; their order carries no meaning.
    fn sort_matchers(e: &mut Expr) {
        match e {
            Expr::VectorSelector(v) => v.matchers.sort_by_key(|m| m.to_string()),
            Expr::MatrixSelector(m) => m.selector.matchers.sort_by_key(|m| m.to_string()),
            Expr::Subquery(s) => sort_matchers(&mut s.expr),
            Expr::Unary(u) => sort_matchers(&mut u.expr),
            Expr::Paren(p) => sort_matchers(&mut p.expr),
            Expr::Binary(b) => {
                sort_matchers(&mut b.lhs);
                sort_matchers(&mut b.rhs);
            }
            Expr::Aggregate(a) => {
                sort_matchers(&mut a.expr);
                if let Some(p) = &mut a.param {
                    sort_matchers(p);
                }
            }
            Expr::Call(c) => c.args.iter_mut().for_each(sort_matchers),
            Expr::Number(_) | Expr::String(_) | Expr::Duration(_) => {}
        }
    }
    sort_matchers(&mut e);
    format!("{e:?}")
}

/// Parses `q`, prints it, parses the print: the two trees must be equal and printing
/// must be a fixed point. Panics with the query otherwise.
fn round_trip(q: &str) -> Result<(), super::ParseError> {
    let first = parse_expr(q)?;
    let printed = first.to_string();
    let second =
        parse_expr(&printed).unwrap_or_else(|e| panic!("{q:?} printed as {printed:?}: {e}"));
    assert_eq!(
        shape(&first),
        shape(&second),
        "{q:?} printed as {printed:?}"
    );
    assert_eq!(second.to_string(), printed, "{q:?}");
    Ok(())
}

/// The query of an `eval` line, without `eval instant at T` / `eval range from A to B
/// step S`.
fn eval_query(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    let cmd = words.next()?;
    if !cmd.starts_with("eval") {
        return None;
    }
    let skip = match words.next()? {
        "instant" => 2, // at T
        "range" => 6,   // from A to B step S
        _ => return None,
    };
    let mut rest = line.trim_start();
    for _ in 0..skip + 2 {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace)?;
        rest = &rest[end..];
    }
    Some(rest.trim())
}

#[test]
fn eval_lines_are_split() {
    assert_eq!(eval_query("eval instant at 1m sum(x)"), Some("sum(x)"));
    assert_eq!(
        eval_query("eval range from 0 to 10s step 5s  a + b "),
        Some("a + b")
    );
    assert_eq!(eval_query("eval_fail instant at 0 foo"), Some("foo"));
    assert_eq!(eval_query("load 5m"), None);
}

#[test]
fn conformance_suite_round_trips() {
    let dir = std::env::var_os("PROMQLTEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/promqltest")
        });
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!(
            "conformance suite not found at {} (set PROMQLTEST_DIR)",
            dir.display()
        );
    };
    let (mut parsed, mut expected_failures, mut unsupported, mut total) = (0, 0, 0, 0);
    let mut unexpected = Vec::new();
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
    {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(q) = eval_query(line) else { continue };
            total += 1;
            let may_fail = line.trim_start().starts_with("eval_fail")
                || lines[i + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .take_while(|l| l.starts_with("expect"))
                    .any(|l| l.starts_with("expect fail"));
            match round_trip(q) {
                Ok(()) => parsed += 1,
                Err(_) if may_fail => expected_failures += 1,
                Err(e) if e.kind == super::ParseErrorKind::Unsupported => unsupported += 1,
                Err(e) => unexpected.push(format!(
                    "{}:{}: {q}: {e}",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    i + 1
                )),
            }
        }
    }
    println!(
        "{parsed} of {total} queries parse and round-trip; {expected_failures} fail as the \
         suite expects; {unsupported} use syntax cairn does not support yet; {} fail \
         unexpectedly",
        unexpected.len()
    );
    assert!(
        total > 1000,
        "only {total} queries found in {}",
        dir.display()
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

#[test]
fn absurd_nesting_is_an_error_not_a_crash() {
    let n = 100_000;
    let cases = [
        "(".repeat(n),
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1", "-".repeat(n)),
        format!("1{}", " + 1".repeat(n)),
        format!("2{}", " ^ 2".repeat(n)),
        format!("{}x{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}x{}", "sum(".repeat(n), ")".repeat(n)),
        format!("x{}", "[1m:]".repeat(n)),
    ];
    for q in &cases {
        let err = parse_expr(q).expect_err(&q[..20]);
        assert!(
            err.msg.contains("nests too deeply") || err.msg.contains("unclosed"),
            "{}: {err}",
            &q[..20]
        );
    }
    // Just under the limit still parses, checks and prints.
    let depth = MAX_DEPTH / NESTING_COST - 2;
    let q = format!("{}x{}", "(".repeat(depth), ")".repeat(depth));
    round_trip(&q).unwrap();
    let chain = format!("x{}", " or x".repeat(MAX_DEPTH - 2 * NESTING_COST));
    round_trip(&chain).unwrap();
}

/// Words and symbols PromQL is made of, to build token soups from.
const TOKENS: &[&str] = &[
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "!=",
    "=~",
    "!~",
    "==",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "<",
    ">",
    "<=",
    ">=",
    "@",
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "by",
    "without",
    "offset",
    "sum",
    "topk",
    "count_values",
    "quantile",
    "limitk",
    "rate",
    "abs",
    "label_join",
    "time",
    "vector",
    "info",
    "start()",
    "end()",
    "step()",
    "range()",
    "foo",
    "bar",
    "a",
    "\"x\"",
    "'y'",
    "`z`",
    "1",
    "0.5",
    "-1",
    "5m",
    "1h30m",
    "NaN",
    "Inf",
    "0x1f",
    "#c\n",
    "fill",
    "fill(0)",
    "anchored",
    "smoothed",
    "histogram_quantile",
    "min",
    "max",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,40}") {
        let _ = round_trip(&s);
    }

    #[test]
    fn token_soup_never_panics(idx in proptest::collection::vec(0..TOKENS.len(), 0..24)) {
        let q: Vec<&str> = idx.iter().map(|&i| TOKENS[i]).collect();
        let _ = round_trip(&q.join(" "));
        let _ = round_trip(&q.concat());
    }
}

#[test]
fn infinity_base_of_a_power_prints_back_to_the_same_tree() {
    // Found by the token-soup property test: `+Inf ^ x` reads as `+(Inf ^ x)`.
    for q in ["Inf ^ x", "+Inf ^ 2", "Inf ^ Inf ^ x"] {
        round_trip(q).unwrap();
    }
}
