//! The PromQL parser: recursive descent with precedence climbing over the lexer's
//! tokens into the syntax tree, then Prometheus's type checks on the finished tree. It
//! builds the whole Prometheus 3.x expression language: literals, selectors, ranges,
//! subqueries, `offset` and `@`, unary and binary operators with their modifiers,
//! aggregations and function calls. Duration arithmetic (`[5m * 2]`, `offset step()`)
//! and the experimental `anchored`/`smoothed` modifiers are recognised and rejected
//! with a [`ParseErrorKind::Unsupported`] error at their position. Errors read as
//! Prometheus's do (`1:5: parse error: unexpected ...`), with the message Prometheus
//! gives for the same input. Nesting is limited ([`MAX_DEPTH`]) so that no query can
//! exhaust the stack. It never evaluates anything.
//!
//! Files: `expr.rs` (operators, calls, aggregations), `selector.rs` (selectors and
//! postfix modifiers), `check.rs` (types), `literal.rs` (numbers, strings, durations).

use std::fmt;

use super::ast::*;
use super::lexer::{LexError, Lexer, Token, TokenKind};

mod check;
mod expr;
mod literal;
mod selector;

/// How deeply expressions may nest before the parser refuses the query, in units: each
/// nested expression (parenthesis, call or aggregation argument, operand) costs
/// [`NESTING_COST`], each link of an operator chain (`a or b or c`) and each stacked
/// subquery costs 1, as those deepen the tree but not the parser's recursion. So 100
/// nested parentheses, or a chain of about 400 operators, fit. Prometheus has no limit;
/// cairn has one so that parsing, checking, printing and dropping a tree never exhaust
/// a 2 MiB thread stack, even unoptimised (measured: ~150 nested calls overflow it).
pub const MAX_DEPTH: usize = 400;

/// What one level of recursive nesting costs against [`MAX_DEPTH`].
pub const NESTING_COST: usize = 4;

/// Whether the query is wrong or only asks for something cairn cannot do yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    Invalid,
    /// Valid PromQL that cairn's parser does not build yet (the conformance runner counts
    /// these as unsupported rather than failed).
    Unsupported,
}

/// A parse failure with its position, printed as Prometheus prints one:
/// `1:5: parse error: unexpected end of input inside braces`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// Byte offset where the offending part starts.
    pub pos: usize,
    /// 1-based line and byte column of `pos`; `None` for an empty query, which
    /// Prometheus reports at "unknown position".
    pub line_col: Option<(usize, usize)>,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line_col {
            Some((line, col)) => write!(f, "{line}:{col}: parse error: {}", self.msg),
            None => write!(f, "unknown position: parse error: {}", self.msg),
        }
    }
}

impl std::error::Error for ParseError {}
/// Parses one PromQL expression.
pub fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(input);
    let first = p.peek()?;
    if first.kind == TokenKind::Eof {
        return Err(p.error_at(0, "no expression found in input"));
    }
    let mut expr = p.parse_expr(0)?;
    let t = p.next()?;
    if t.kind != TokenKind::Eof {
        return Err(p.unexpected(&t, "", ""));
    }
    // Prometheus type-checks only a syntactically valid tree, so these come last.
    p.check(&mut expr)?;
    Ok(expr)
}

struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
    /// The token read ahead, comments already dropped.
    ahead: Option<Token<'a>>,
    /// End of the last `)`, `]`, `}`, number or duration consumed: where modifiers end.
    last_closing: usize,
    /// Current nesting, checked against [`MAX_DEPTH`].
    depth: usize,
}

/// The largest duration Prometheus can hold, in seconds (2^63 nanoseconds).
const MAX_DURATION_SECS: f64 = 9_223_372_036.854_775;

/// Seconds to whole milliseconds the way Prometheus gets there: round to nanoseconds,
/// then truncate to milliseconds.
fn secs_to_millis(secs: f64) -> i64 {
    ((secs * 1e9).round() as i64) / 1_000_000
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            input,
            lexer: Lexer::new(input),
            ahead: None,
            last_closing: 0,
            depth: 0,
        }
    }

    /// `cost` units deeper; an error once past [`MAX_DEPTH`], at the next token.
    fn enter(&mut self, cost: usize) -> Result<(), ParseError> {
        self.depth += cost;
        if self.depth > MAX_DEPTH {
            let pos = self.peek()?.pos;
            return Err(self.error_at(
                pos,
                format!("expression nests too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    // --- errors -----------------------------------------------------------------------

    fn line_col(&self, pos: usize) -> Option<(usize, usize)> {
        if self.input.is_empty() {
            return None;
        }
        let before = &self.input.as_bytes()[..pos.min(self.input.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let col = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        Some((line, col))
    }

    fn error_at(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            kind: ParseErrorKind::Invalid,
            pos,
            line_col: self.line_col(pos),
            msg: msg.into(),
        }
    }

    fn unsupported(&self, pos: usize, what: impl fmt::Display) -> ParseError {
        ParseError {
            kind: ParseErrorKind::Unsupported,
            ..self.error_at(pos, format!("{what} is not supported yet"))
        }
    }

    /// Prometheus's "unexpected <token> in <context>, expected <what>".
    fn unexpected(&self, t: &Token<'_>, context: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {}", t.describe());
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.error_at(t.pos, msg)
    }

    fn lex_error(&self, e: LexError) -> ParseError {
        self.error_at(e.pos, e.msg)
    }

    // --- tokens -----------------------------------------------------------------------

    fn peek(&mut self) -> Result<Token<'a>, ParseError> {
        if let Some(t) = self.ahead {
            return Ok(t);
        }
        loop {
            let t = self.lexer.next_token().map_err(|e| self.lex_error(e))?;
            if t.kind != TokenKind::Comment {
                self.ahead = Some(t);
                return Ok(t);
            }
        }
    }

    fn next(&mut self) -> Result<Token<'a>, ParseError> {
        let t = self.peek()?;
        self.ahead = None;
        if matches!(
            t.kind,
            TokenKind::RightBrace
                | TokenKind::RightParen
                | TokenKind::RightBracket
                | TokenKind::Number
                | TokenKind::Duration
        ) {
            self.last_closing = t.end();
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchType;

    fn must(input: &str) -> Expr {
        parse_expr(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    fn fails(input: &str) -> String {
        match parse_expr(input) {
            Ok(e) => panic!("{input:?} parsed as {e}"),
            Err(e) => e.to_string(),
        }
    }

    fn selector(e: &Expr) -> &VectorSelector {
        match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(m) => &m.selector,
            other => panic!("not a selector: {other:?}"),
        }
    }

    #[test]
    fn numbers_and_strings() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("12.34e6", 12_340_000.0),
            ("-0.2e-6", -0.000_000_2),
            ("+0.2", 0.2),
            (".2", 0.2),
            ("2.", 2.0),
            ("0x1f", 31.0),
            ("010", 8.0),
            ("09", 9.0),
            ("1_000", 1000.0),
            ("- - 1", 1.0),
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("(1)", 1.0),
        ];
        for (input, want) in cases {
            let got = match must(input) {
                Expr::Number(n) => n.value,
                Expr::Paren(p) => match *p.expr {
                    Expr::Number(n) => n.value,
                    other => panic!("{other:?}"),
                },
                other => panic!("{input}: {other:?}"),
            };
            assert_eq!(got, *want, "{input}");
        }
        for (input, inf) in [("Inf", f64::INFINITY), ("-inf", f64::NEG_INFINITY)] {
            assert!(matches!(must(input), Expr::Number(n) if n.value == inf));
        }
        assert!(matches!(must("NaN"), Expr::Number(n) if n.value.is_nan()));
        match must(r#""a\tb""#) {
            Expr::String(s) => assert_eq!(s.value, "a\tb"),
            other => panic!("{other:?}"),
        }
        match must("`raw\\n`") {
            Expr::String(s) => assert_eq!(s.value, "raw\\n"),
            other => panic!("{other:?}"),
        }
        // A folded sign moves the literal's start.
        match must("  -1") {
            Expr::Number(n) => assert_eq!(n.pos, PosRange::new(2, 4)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn selectors_and_matchers() {
        let e = must(r#"foo{a="b", c!~"d.*", e=~'f', g!=`h`}"#);
        let vs = selector(&e);
        assert_eq!(vs.name.as_deref(), Some("foo"));
        let got: Vec<(String, MatchType, String)> = vs
            .matchers
            .iter()
            .map(|m| (m.name.clone(), m.kind, m.value.clone()))
            .collect();
        let want = [
            ("a", MatchType::Equal, "b"),
            ("c", MatchType::NotRegex, "d.*"),
            ("e", MatchType::Regex, "f"),
            ("g", MatchType::NotEqual, "h"),
            ("__name__", MatchType::Equal, "foo"),
        ];
        assert_eq!(got.len(), want.len());
        for ((n, k, v), (wn, wk, wv)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), *k, v.as_str()), (wn, wk, wv));
        }
        assert_eq!(vs.pos, PosRange::new(0, 36));

        let e = must(r#"{"my.metric", "label.name"="x",}"#);
        let vs = selector(&e);
        assert_eq!(vs.name, None);
        assert_eq!(vs.matchers[0].to_string(), r#"__name__="my.metric""#);
        assert_eq!(vs.matchers[1].name, "label.name");

        // Keywords are metric names where nothing else fits, and label names in braces.
        for name in [
            "sum", "by", "offset", "and", "start", "step", "min", "anchored",
        ] {
            let e = must(&format!("{name}{{by=\"x\"}}"));
            assert_eq!(selector(&e).name.as_deref(), Some(name));
        }
        assert_eq!(selector(&must("foo:bar")).name.as_deref(), Some("foo:bar"));
        assert_eq!(selector(&must("foo{}")).matchers.len(), 1);
    }

    #[test]
    fn ranges_offsets_and_at() {
        let input = "foo[5m] offset -1h @ 1603774568.5";
        let e = must(input);
        let Expr::MatrixSelector(m) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(m.range, DurationValue::Millis(300_000));
        assert_eq!(m.selector.offset, Some(DurationValue::Millis(-3_600_000)));
        assert_eq!(
            m.selector.at,
            Some(AtModifier::Timestamp(1_603_774_568_500))
        );
        assert_eq!(e.pos_range(), PosRange::new(0, input.len()));

        let e = must("foo @ start() offset 5");
        let vs = selector(&e);
        assert_eq!(vs.at, Some(AtModifier::Start));
        assert_eq!(vs.offset, Some(DurationValue::Millis(5_000)));
        assert_eq!(selector(&must("foo @ end()")).at, Some(AtModifier::End));
        assert_eq!(
            selector(&must("foo @ -1m")).at,
            Some(AtModifier::Timestamp(-60_000))
        );
        // A number range is seconds; a zero offset is no offset.
        assert!(
            matches!(must("foo[1.5]"), Expr::MatrixSelector(m) if m.range == DurationValue::Millis(1_500))
        );
        assert_eq!(selector(&must("foo offset 0")).offset, None);
        assert!(matches!(
            must("foo offset 0 offset 1m"),
            Expr::VectorSelector(_)
        ));
    }

    #[test]
    fn unary_on_non_numbers() {
        match must("-foo") {
            Expr::Unary(u) => {
                assert_eq!(u.op, UnaryOp::Minus);
                assert!(matches!(*u.expr, Expr::VectorSelector(_)));
            }
            other => panic!("{other:?}"),
        }
        match must("+(1)") {
            Expr::Unary(u) => assert!(matches!(*u.expr, Expr::Paren(_))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_read_like_prometheus() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "unknown position: parse error: no expression found in input",
            ),
            (
                "  # only a comment",
                "1:1: parse error: no expression found in input",
            ),
            (
                "foo{",
                "1:5: parse error: unexpected end of input inside braces",
            ),
            ("foo}", "1:4: parse error: unexpected character: '}'"),
            (
                "{}",
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
            (
                r#"{x=""}"#,
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
            (
                r#"{__name__=~".*"}"#,
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
            (
                r#"foo{__name__="bar"}"#,
                r#"1:1: parse error: metric name must not be set twice: "foo" or "bar""#,
            ),
            (
                "some_metric{a=b}",
                r#"1:15: parse error: unexpected identifier "b" in label matching, expected string"#,
            ),
            (
                "foo{a}",
                r#"1:6: parse error: unexpected "}" in label matching, expected label matching operator"#,
            ),
            (
                r#"foo{a="b" c="d"}"#,
                r#"1:11: parse error: unexpected identifier "c" in label matching, expected "," or "}""#,
            ),
            (
                "foo{,}",
                r#"1:5: parse error: unexpected "," in label matching, expected identifier or "}""#,
            ),
            (
                r#"foo{"a"=}"#,
                r#"1:9: parse error: unexpected "}" in label matching, expected string"#,
            ),
            (
                r#"foo{a=~"("}"#,
                "1:5: parse error: error parsing regexp: missing closing ): `(`",
            ),
            (
                r#"foo{a!~"*x"}"#,
                "1:5: parse error: error parsing regexp: missing argument to repetition operator: `*x`",
            ),
            (
                r#"{a=~"[z-a]"}"#,
                "1:2: parse error: error parsing regexp: invalid character class range: `[z-a]`",
            ),
            (
                r#"{a=~"\\p{Foo}"}"#,
                "1:2: parse error: error parsing regexp: Unicode property not found: `\\p{Foo}`",
            ),
            (
                r#"{a=~"(?<n"}"#,
                "1:2: parse error: error parsing regexp: invalid named capture: `(?<n`",
            ),
            (
                "foo bar",
                r#"1:5: parse error: unexpected identifier "bar""#,
            ),
            ("1 2", r#"1:3: parse error: unexpected number "2""#),
            ("()", r#"1:2: parse error: unexpected ")""#),
            ("(foo", "1:5: parse error: unclosed left parenthesis"),
            ("foo)", "1:5: parse error: unexpected right parenthesis ')'"),
            ("-", "1:2: parse error: unexpected end of input"),
            ("on", "1:1: parse error: unexpected <on>"),
            ("foo[5m", "1:7: parse error: unclosed left bracket"),
            (
                "foo[]",
                r#"1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()"#,
            ),
            (
                "foo[5m 5m]",
                r#"1:8: parse error: unexpected duration "5m" in subquery or range, expected ":" or "]""#,
            ),
            (
                "foo[0s]",
                "1:5: parse error: duration must be greater than 0",
            ),
            (
                "foo[-5m]",
                "1:5: parse error: duration must be greater than 0",
            ),
            (
                "foo[0]",
                "1:5: parse error: duration must be greater than 0",
            ),
            (
                "foo[5y1hs]",
                r#"1:5: parse error: not a valid duration string: "5y1hs""#,
            ),
            (
                "foo[1.5m]",
                r#"1:5: parse error: not a valid duration string: "1.5m""#,
            ),
            (
                "(foo)[5m]",
                "1:6: parse error: ranges only allowed for vector selectors",
            ),
            (
                r#""x"[5m]"#,
                "1:4: parse error: ranges only allowed for vector selectors",
            ),
            (
                "foo offset 1m[5m]",
                "1:14: parse error: no offset modifiers allowed before range",
            ),
            (
                "foo @ 1 [5m]",
                "1:9: parse error: no @ modifiers allowed before range",
            ),
            (
                "foo[5m][5m]",
                "1:8: parse error: ranges only allowed for vector selectors",
            ),
            (
                "foo offset",
                "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()",
            ),
            (
                "foo offset bar",
                r#"1:12: parse error: unexpected identifier "bar" in offset, expected number, duration, step(), or range()"#,
            ),
            (
                "foo offset 1m offset 2m",
                "1:1: parse error: offset may not be set multiple times",
            ),
            (
                "foo[5m] offset 1m offset 2m",
                "1:1: parse error: offset may not be set multiple times",
            ),
            (
                "1 offset 1d",
                "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            ),
            (
                "-1 offset 1d",
                "1:2: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            ),
            (
                "foo @",
                "1:6: parse error: unexpected end of input in @, expected timestamp",
            ),
            (
                "foo @ bar",
                r#"1:7: parse error: unexpected identifier "bar" in @, expected timestamp"#,
            ),
            (
                "foo @ start",
                "1:12: parse error: unexpected end of input in @, expected timestamp",
            ),
            (
                "foo @ 1 @ 2",
                "1:1: parse error: @ <timestamp> may not be set multiple times",
            ),
            (
                "foo @ +Inf",
                "1:1: parse error: timestamp out of bounds for @ modifier: +Inf",
            ),
            (
                "foo @ NaN",
                "1:1: parse error: timestamp out of bounds for @ modifier: NaN",
            ),
            (
                "\"x\" @ 1",
                "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            ),
            (
                "-\"x\"",
                "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
            (
                "-foo[5m]",
                "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
            ),
            (
                "1x",
                r#"1:1: parse error: bad number or duration syntax: "1""#,
            ),
            (
                r#"foo{a="\q"}"#,
                "1:7: parse error: unknown escape sequence U+0071 'q'",
            ),
            (
                "foo{a=\"b\n\"}",
                "1:7: parse error: unterminated quoted string",
            ),
            (
                "foo\n  {",
                "2:4: parse error: unexpected end of input inside braces",
            ),
            (
                "foo #c\n  + bool 1",
                // Prometheus skips only whitespace to find the operator, not comments.
                "1:5: parse error: bool modifier can only be used on comparison operators",
            ),
            ("0s", "1:1: parse error: duration must be greater than 0"),
        ];
        for (input, want) in cases {
            assert_eq!(fails(input), *want, "{input:?}");
        }
    }

    #[test]
    fn unsupported_constructs_say_so() {
        let cases: &[(&str, &str)] = &[
            (
                "foo[5m+1m]",
                "1:7: parse error: duration arithmetic is not supported yet",
            ),
            (
                "foo[step()]",
                "1:5: parse error: duration expression is not supported yet",
            ),
            (
                "foo offset step()",
                "1:12: parse error: duration expression is not supported yet",
            ),
            (
                "foo[5m:(1m)]",
                "1:8: parse error: duration expression is not supported yet",
            ),
            (
                "foo[5m] anchored",
                "1:9: parse error: the \"anchored\" modifier is not supported yet",
            ),
        ];
        for (input, want) in cases {
            let err = parse_expr(input).expect_err(input);
            assert_eq!(err.to_string(), *want, "{input:?}");
            assert_eq!(err.kind, ParseErrorKind::Unsupported, "{input:?}");
        }
        assert_eq!(
            parse_expr("foo{").unwrap_err().kind,
            ParseErrorKind::Invalid
        );
    }

    #[test]
    fn print_is_canonical() {
        let cases: &[(&str, &str)] = &[
            ("foo", "foo"),
            (r#"foo{c!~"d.*", a="b"}"#, r#"foo{a="b",c!~"d.*"}"#),
            (r#"{__name__="foo"}"#, r#"{__name__="foo"}"#),
            (
                r#"{"my.metric", "label.name"="x"}"#,
                r#"{"label.name"="x",__name__="my.metric"}"#,
            ),
            ("foo OFFSET 90d", "foo offset 90d"),
            ("foo offset -5m", "foo offset -5m"),
            ("foo offset 1.5", "foo offset 1s500ms"),
            ("foo @ 100", "foo @ 100.000"),
            ("foo offset 5m @ start()", "foo @ start() offset 5m"),
            (
                "foo[1h30m] @ end() offset 1w",
                "foo[1h30m] @ end() offset 1w",
            ),
            ("foo[90]", "foo[1m30s]"),
            ("- 1", "-1"),
            ("+Inf", "+Inf"),
            ("nan", "NaN"),
            ("0x10", "16"),
            ("1e21", "1000000000000000000000"),
            ("5m", "5m"),
            ("-(5m)", "-(5m)"),
            ("'it\\'s'", r#""it's""#),
            ("`a\"b`", r#""a\"b""#),
            ("((foo))", "((foo))"),
            ("-foo", "-foo"),
            ("foo{a=\"\\u00e9\\n\"}", "foo{a=\"é\\n\"}"),
        ];
        for (input, want) in cases {
            let printed = must(input).to_string();
            assert_eq!(printed, *want, "{input:?}");
            // Printing is a fixed point: parse(print(x)) prints the same.
            assert_eq!(must(&printed).to_string(), printed, "{input:?}");
        }
    }

    /// Messages and positions checked against `promtool check rules` (Prometheus 2.42).
    #[test]
    fn grammar_and_type_errors_match_promtool() {
        let cases: &[(&str, &str)] = &[
            (
                "foo + bar[5m]",
                "1:7: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "rate(foo)",
                r#"1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
            ),
            (
                "1 == 1",
                "1:3: parse error: comparisons between scalars must use BOOL modifier",
            ),
            (
                "foo and 1",
                r#"1:1: parse error: set operator "and" not allowed in binary scalar expression"#,
            ),
            (
                "foo + on(a) group_left(a) bar",
                r#"1:5: parse error: label "a" must not occur in ON and GROUP clause at once"#,
            ),
            (
                "foo and on(a) group_left bar",
                r#"1:1: parse error: no grouping allowed for "and" operation"#,
            ),
            (
                "1 + on(a) foo",
                "1:1: parse error: vector matching only allowed between instant vectors",
            ),
            (
                "sum()",
                "1:1: parse error: no arguments for aggregate expression provided",
            ),
            (
                "topk(foo)",
                "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
            ),
            (
                "sum(1, foo)",
                "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2",
            ),
            (
                r#"topk("a", foo)"#,
                "1:6: parse error: expected type scalar in aggregation parameter, got string",
            ),
            (
                "count_values(1, foo)",
                "1:14: parse error: expected type string in aggregation parameter, got scalar",
            ),
            (
                "sum(foo[5m])",
                "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "unknown(foo)",
                r#"1:1: parse error: unknown function with name "unknown""#,
            ),
            (
                "rate(foo[5m], 1)",
                r#"1:1: parse error: expected 1 argument(s) in call to "rate", got 2"#,
            ),
            (
                "round(foo, 1, 2)",
                r#"1:1: parse error: expected at most 2 argument(s) in call to "round", got 3"#,
            ),
            (
                "label_join(foo)",
                r#"1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 1"#,
            ),
            (
                "rate(foo[5m],)",
                "1:13: parse error: trailing commas not allowed in function call args",
            ),
            (
                "foo[5m:1m][5m:]",
                "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
            ),
            (
                "foo[5m][1m:]",
                "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
            ),
            (
                "sum by (foo bar) (x)",
                r#"1:13: parse error: unexpected identifier "bar" in grouping opts, expected "," or ")""#,
            ),
            (
                "sum by foo (x)",
                r#"1:8: parse error: unexpected identifier "foo" in grouping opts, expected "(""#,
            ),
            (
                "foo + bool bar",
                "1:5: parse error: bool modifier can only be used on comparison operators",
            ),
            (
                "sum(foo) by",
                r#"1:12: parse error: unexpected end of input in grouping opts, expected "(""#,
            ),
            (
                "time() > 1",
                "1:8: parse error: comparisons between scalars must use BOOL modifier",
            ),
            (
                r#"1 + "a""#,
                "1:5: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "sum(foo,)",
                "1:8: parse error: trailing commas not allowed in function call args",
            ),
            (
                "sum(foo bar)",
                r#"1:9: parse error: unexpected identifier "bar" in aggregation"#,
            ),
            (
                "rate(foo bar)",
                r#"1:10: parse error: unexpected identifier "bar""#,
            ),
            (
                "-foo[5m]",
                r#"1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector""#,
            ),
            ("(foo", "1:5: parse error: unclosed left parenthesis"),
            ("foo +", "1:6: parse error: unexpected end of input"),
            (
                "avg by (a)",
                "1:11: parse error: unexpected end of input in aggregation",
            ),
            (
                r#""a" + 1"#,
                "1:1: parse error: binary expression must contain only scalar and instant vector types",
            ),
            (
                "1 and 1",
                r#"1:1: parse error: set operator "and" not allowed in binary scalar expression"#,
            ),
            (
                "scalar(foo) + on(a) bar",
                "1:1: parse error: vector matching only allowed between instant vectors",
            ),
            (
                "topk(1, foo) by (a",
                "1:19: parse error: unclosed left parenthesis",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(fails(input), *want, "{input:?}");
        }
    }
}

#[cfg(test)]
mod corpus_tests;
