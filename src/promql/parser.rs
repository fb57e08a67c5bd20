//! The PromQL parser: recursive descent over the lexer's tokens into the syntax tree,
//! then Prometheus's checks on the finished tree. It builds literals, parentheses, unary
//! signs, vector selectors (names outside or inside braces, quoted UTF-8 names), range
//! selectors, `offset` and `@`; binary operators, function calls, aggregations,
//! subqueries, duration arithmetic and the experimental `anchored`/`smoothed` modifiers
//! are recognised and rejected with a [`ParseErrorKind::Unsupported`] error at their
//! position. Errors read as Prometheus's do (`1:5: parse error: unexpected ...`), with
//! the message Prometheus gives for the same input wherever the construct is supported.
//! It never evaluates anything.

use std::fmt;

use super::ast::*;
use super::lexer::{LexError, Lexer, Token, TokenKind};
use super::quote::{quote, unquote};
use crate::model::{METRIC_NAME, MatchType, Matcher, time::parse_duration_ms};

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
    let expr = p.parse_expr(0)?;
    let t = p.next()?;
    if t.kind != TokenKind::Eof {
        return Err(p.unexpected(&t, "", ""));
    }
    // Prometheus type-checks only a syntactically valid tree, so these come last.
    p.check(&expr)?;
    Ok(expr)
}

struct Parser<'a> {
    input: &'a str,
    lexer: Lexer<'a>,
    /// The token read ahead, comments already dropped.
    ahead: Option<Token<'a>>,
    /// End of the last `)`, `]`, `}`, number or duration consumed: where modifiers end.
    last_closing: usize,
}

fn match_type(kind: TokenKind) -> Option<MatchType> {
    match kind {
        TokenKind::Eql => Some(MatchType::Equal),
        TokenKind::Neq => Some(MatchType::NotEqual),
        TokenKind::EqlRegex => Some(MatchType::Regex),
        TokenKind::NeqRegex => Some(MatchType::NotRegex),
        _ => None,
    }
}

fn binary_op(kind: TokenKind) -> Option<BinaryOp> {
    use TokenKind as T;
    Some(match kind {
        T::Add => BinaryOp::Add,
        T::Sub => BinaryOp::Sub,
        T::Mul => BinaryOp::Mul,
        T::Div => BinaryOp::Div,
        T::Mod => BinaryOp::Mod,
        T::Pow => BinaryOp::Pow,
        T::Atan2 => BinaryOp::Atan2,
        T::EqlC => BinaryOp::Eql,
        T::Neq => BinaryOp::Neq,
        T::Gtr => BinaryOp::Gtr,
        T::Lss => BinaryOp::Lss,
        T::Gte => BinaryOp::Gte,
        T::Lte => BinaryOp::Lte,
        T::And => BinaryOp::And,
        T::Or => BinaryOp::Or,
        T::Unless => BinaryOp::Unless,
        _ => return None,
    })
}

/// Keywords that Prometheus also accepts as metric names (`sum`, `by`, `offset` ...),
/// when what follows does not make them something else.
fn can_be_metric_name(kind: TokenKind) -> bool {
    use TokenKind as T;
    kind.is_aggregator()
        || matches!(
            kind,
            T::Identifier
                | T::MetricIdentifier
                | T::By
                | T::Without
                | T::Offset
                | T::And
                | T::Or
                | T::Unless
                | T::Start
                | T::End
                | T::Step
                | T::Range
                | T::Anchored
                | T::Smoothed
        )
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
        }
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

    // --- expressions ------------------------------------------------------------------

    /// An expression whose binary operators bind at least as tight as `min_prec`.
    fn parse_expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let lhs = self.parse_unary()?;
        let t = self.peek()?;
        if let Some(op) = binary_op(t.kind)
            && op.precedence() >= min_prec
        {
            return Err(self.unsupported(t.pos, format!("binary operator {}", quote(t.text))));
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek()?;
        let op = match t.kind {
            TokenKind::Add => UnaryOp::Plus,
            TokenKind::Sub => UnaryOp::Minus,
            _ => {
                let primary = self.parse_primary()?;
                return self.parse_postfix(primary);
            }
        };
        self.next()?;
        // A sign binds like `*`: only `^` (and the postfix modifiers) bind tighter.
        let operand = self.parse_expr(BinaryOp::Pow.precedence())?;
        Ok(match operand {
            Expr::Number(mut n) => {
                if op == UnaryOp::Minus {
                    n.value = -n.value;
                }
                n.pos.start = t.pos;
                Expr::Number(n)
            }
            e => Expr::Unary(UnaryExpr {
                op,
                expr: Box::new(e),
                start: t.pos,
            }),
        })
    }

    fn parse_primary(&mut self) -> Result<Expr, ParseError> {
        use TokenKind as T;
        let t = self.next()?;
        match t.kind {
            T::Number => Ok(Expr::Number(NumberLiteral {
                value: self.number(&t)?,
                duration: false,
                pos: PosRange::new(t.pos, t.end()),
            })),
            T::Duration => Ok(Expr::Number(NumberLiteral {
                value: self.duration_secs(&t)?,
                duration: true,
                pos: PosRange::new(t.pos, t.end()),
            })),
            T::String => Ok(Expr::String(StringLiteral {
                value: self.unquote(&t)?,
                pos: PosRange::new(t.pos, t.end()),
            })),
            T::LeftParen => {
                let inner = self.parse_expr(0)?;
                let close = self.next()?;
                if close.kind != T::RightParen {
                    return Err(self.unexpected(&close, "", ""));
                }
                Ok(Expr::Paren(ParenExpr {
                    expr: Box::new(inner),
                    pos: PosRange::new(t.pos, close.end()),
                }))
            }
            T::LeftBrace => {
                let (matchers, end) = self.parse_label_matchers()?;
                Ok(Expr::VectorSelector(VectorSelector {
                    name: None,
                    matchers,
                    offset: None,
                    at: None,
                    anchored: false,
                    smoothed: false,
                    pos: PosRange::new(t.pos, end),
                }))
            }
            T::Identifier if self.peek()?.kind == T::LeftParen => {
                Err(self.unsupported(t.pos, format!("function call {}", quote(t.text))))
            }
            k if k.is_aggregator()
                && matches!(self.peek()?.kind, T::LeftParen | T::By | T::Without) =>
            {
                Err(self.unsupported(t.pos, format!("aggregation {}", quote(t.text))))
            }
            T::Step | T::Range | T::Start | T::End if self.peek()?.kind == T::LeftParen => {
                Err(self.unsupported(t.pos, format!("{}()", t.text)))
            }
            k if can_be_metric_name(k) => self.parse_named_selector(t),
            _ => Err(self.unexpected(&t, "", "")),
        }
    }

    /// `name` or `name{matchers}`; the name becomes the last matcher.
    fn parse_named_selector(&mut self, name: Token<'a>) -> Result<Expr, ParseError> {
        let (mut matchers, end) = if self.peek()?.kind == TokenKind::LeftBrace {
            self.next()?;
            self.parse_label_matchers()?
        } else {
            (Vec::new(), name.end())
        };
        matchers.push(Matcher::equal(METRIC_NAME, name.text));
        Ok(Expr::VectorSelector(VectorSelector {
            name: Some(name.text.to_string()),
            matchers,
            offset: None,
            at: None,
            anchored: false,
            smoothed: false,
            pos: PosRange::new(name.pos, end),
        }))
    }

    /// The matchers after `{`, up to and including `}`; returns them and the end offset.
    fn parse_label_matchers(&mut self) -> Result<(Vec<Matcher>, usize), ParseError> {
        use TokenKind as T;
        const CTX: &str = "label matching";
        let mut matchers = Vec::new();
        let mut t = self.next()?;
        if t.kind == T::RightBrace {
            return Ok((matchers, t.end()));
        }
        loop {
            let m = match t.kind {
                T::Identifier => {
                    let op = self.next()?;
                    let kind = match_type(op.kind)
                        .ok_or_else(|| self.unexpected(&op, CTX, "label matching operator"))?;
                    self.label_matcher(t.text, t.pos, kind)?
                }
                T::String => {
                    let name = self.unquote(&t)?;
                    match match_type(self.peek()?.kind) {
                        Some(kind) => {
                            self.next()?;
                            self.label_matcher(&name, t.pos, kind)?
                        }
                        // A quoted name alone is the metric name: `{"my.metric"}`.
                        None => Matcher::equal(METRIC_NAME, name),
                    }
                }
                _ => return Err(self.unexpected(&t, CTX, "identifier or \"}\"")),
            };
            matchers.push(m);
            let sep = self.next()?;
            match sep.kind {
                T::RightBrace => return Ok((matchers, sep.end())),
                T::Comma => {
                    t = self.next()?;
                    if t.kind == T::RightBrace {
                        return Ok((matchers, t.end()));
                    }
                }
                _ => return Err(self.unexpected(&sep, CTX, "\",\" or \"}\"")),
            }
        }
    }

    /// The value string after `name op`, made into a matcher.
    fn label_matcher(
        &mut self,
        name: &str,
        name_pos: usize,
        kind: MatchType,
    ) -> Result<Matcher, ParseError> {
        let v = self.next()?;
        if v.kind != TokenKind::String {
            return Err(self.unexpected(&v, "label matching", "string"));
        }
        let value = self.unquote(&v)?;
        Matcher::new(kind, name, value).map_err(|e| {
            let reason = go_regexp_reason(&e.pattern, &e.source);
            self.error_at(
                name_pos,
                format!("error parsing regexp: {reason}: `{}`", e.pattern),
            )
        })
    }

    // --- postfix modifiers ------------------------------------------------------------

    fn parse_postfix(&mut self, mut expr: Expr) -> Result<Expr, ParseError> {
        loop {
            let t = self.peek()?;
            expr = match t.kind {
                TokenKind::LeftBracket => self.parse_range(expr)?,
                TokenKind::Offset => self.parse_offset(expr)?,
                TokenKind::At => self.parse_at(expr)?,
                TokenKind::Anchored | TokenKind::Smoothed => {
                    return Err(self.unsupported(t.pos, format!("the {:?} modifier", t.text)));
                }
                _ => return Ok(expr),
            };
        }
    }

    /// `[range]` after an expression. Subqueries (`[range:step]`) are not built yet.
    fn parse_range(&mut self, expr: Expr) -> Result<Expr, ParseError> {
        let open = self.next()?;
        let range = self.positive_duration(
            "subquery or range selector",
            "number, duration, step(), or range()",
        )?;
        let close = self.next()?;
        match close.kind {
            TokenKind::RightBracket => {}
            TokenKind::Colon => return Err(self.unsupported(open.pos, "subquery")),
            _ => {
                return Err(self.unexpected(&close, "subquery or range", "\":\" or \"]\""));
            }
        }
        let Expr::VectorSelector(selector) = expr else {
            return Err(self.error_at(open.pos, "ranges only allowed for vector selectors"));
        };
        if selector.offset.is_some() {
            return Err(self.error_at(open.pos, "no offset modifiers allowed before range"));
        }
        if selector.at.is_some() {
            return Err(self.error_at(open.pos, "no @ modifiers allowed before range"));
        }
        Ok(Expr::MatrixSelector(MatrixSelector {
            selector,
            range: DurationValue::Millis(range),
            end: close.end(),
        }))
    }

    /// A range inside brackets: a literal that must be positive, in milliseconds.
    fn positive_duration(&mut self, context: &str, expected: &str) -> Result<i64, ParseError> {
        let start = self.peek()?.pos;
        let secs = self.signed_literal(context, expected)?;
        let t = self.peek()?;
        if matches!(
            t.kind,
            TokenKind::Add
                | TokenKind::Sub
                | TokenKind::Mul
                | TokenKind::Div
                | TokenKind::Mod
                | TokenKind::Pow
        ) {
            return Err(self.unsupported(t.pos, "duration arithmetic"));
        }
        if secs <= 0.0 {
            return Err(self.error_at(start, "duration must be greater than 0"));
        }
        if secs > MAX_DURATION_SECS {
            return Err(self.error_at(start, "duration out of range"));
        }
        Ok(secs_to_millis(secs))
    }

    /// `[+-]* (number | duration)` in seconds, where a duration expression may stand.
    fn signed_literal(&mut self, context: &str, expected: &str) -> Result<f64, ParseError> {
        let mut negative = false;
        loop {
            let t = self.next()?;
            match t.kind {
                TokenKind::Add => {}
                TokenKind::Sub => negative = !negative,
                TokenKind::Number | TokenKind::Duration => {
                    let v = if t.kind == TokenKind::Number {
                        self.number(&t)?
                    } else {
                        self.duration_secs(&t)?
                    };
                    return Ok(if negative { -v } else { v });
                }
                TokenKind::Step
                | TokenKind::Range
                | TokenKind::Min
                | TokenKind::Max
                | TokenKind::LeftParen => {
                    return Err(self.unsupported(t.pos, "duration expression"));
                }
                _ => return Err(self.unexpected(&t, context, expected)),
            }
        }
    }

    fn parse_offset(&mut self, mut expr: Expr) -> Result<Expr, ParseError> {
        self.next()?;
        let start = self.peek()?.pos;
        let secs = self.signed_literal("offset", "number, duration, step(), or range()")?;
        if secs.abs() > MAX_DURATION_SECS {
            return Err(self.error_at(start, "duration out of range"));
        }
        let ms = secs_to_millis(secs);
        let expr_start = expr.pos_range().start;
        let end = self.last_closing;
        let (slot, end_slot) = match &mut expr {
            Expr::VectorSelector(vs) => (&mut vs.offset, &mut vs.pos.end),
            Expr::MatrixSelector(m) => (&mut m.selector.offset, &mut m.end),
            Expr::Subquery(s) => (&mut s.offset, &mut s.end),
            _ => {
                return Err(self.error_at(
                    expr_start,
                    "offset modifier must be preceded by an instant vector selector or range \
                     vector selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error_at(expr_start, "offset may not be set multiple times"));
        }
        // Prometheus keeps a zero offset as "no offset".
        if ms != 0 {
            *slot = Some(DurationValue::Millis(ms));
        }
        *end_slot = end;
        Ok(expr)
    }

    fn parse_at(&mut self, mut expr: Expr) -> Result<Expr, ParseError> {
        use TokenKind as T;
        self.next()?;
        let t = self.next()?;
        let at = match t.kind {
            T::Number | T::Duration | T::Add | T::Sub => {
                let (negative, num) = match t.kind {
                    T::Add | T::Sub => (t.kind == T::Sub, self.next()?),
                    _ => (false, t),
                };
                let secs = match num.kind {
                    T::Number => self.number(&num)?,
                    T::Duration => self.duration_secs(&num)?,
                    _ => return Err(self.unexpected(&num, "@", "timestamp")),
                };
                let ts = if negative { -secs } else { secs };
                if !ts.is_finite() || ts >= i64::MAX as f64 || ts <= i64::MIN as f64 {
                    let shown = if ts.is_nan() {
                        "NaN".to_string()
                    } else if ts.is_infinite() {
                        if ts > 0.0 { "+Inf" } else { "-Inf" }.to_string()
                    } else {
                        format!("{ts:.6}")
                    };
                    return Err(self.error_at(
                        expr.pos_range().start,
                        format!("timestamp out of bounds for @ modifier: {shown}"),
                    ));
                }
                AtModifier::Timestamp((ts * 1000.0).round() as i64)
            }
            T::Start | T::End => {
                for want in [T::LeftParen, T::RightParen] {
                    let p = self.next()?;
                    if p.kind != want {
                        return Err(self.unexpected(&p, "@", "timestamp"));
                    }
                }
                if t.kind == T::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            _ => return Err(self.unexpected(&t, "@", "timestamp")),
        };
        let expr_start = expr.pos_range().start;
        let end = self.last_closing;
        let (slot, end_slot) = match &mut expr {
            Expr::VectorSelector(vs) => (&mut vs.at, &mut vs.pos.end),
            Expr::MatrixSelector(m) => (&mut m.selector.at, &mut m.end),
            Expr::Subquery(s) => (&mut s.at, &mut s.end),
            _ => {
                return Err(self.error_at(
                    expr_start,
                    "@ modifier must be preceded by an instant vector selector or range vector \
                     selector or a subquery",
                ));
            }
        };
        if slot.is_some() {
            return Err(self.error_at(expr_start, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        *end_slot = end;
        Ok(expr)
    }

    // --- literals ---------------------------------------------------------------------

    fn number(&self, t: &Token<'_>) -> Result<f64, ParseError> {
        parse_number(t.text).ok_or_else(|| {
            self.error_at(
                t.pos,
                format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: invalid syntax",
                    quote(t.text)
                ),
            )
        })
    }

    /// A duration token in seconds. Zero is refused, as Prometheus refuses it.
    fn duration_secs(&self, t: &Token<'_>) -> Result<f64, ParseError> {
        let ms = parse_duration_ms(t.text).map_err(|e| self.error_at(t.pos, e.to_string()))?;
        if ms == 0 {
            return Err(self.error_at(t.pos, "duration must be greater than 0"));
        }
        Ok(ms as f64 / 1000.0)
    }

    fn unquote(&self, t: &Token<'_>) -> Result<String, ParseError> {
        unquote(t.text).map_err(|e| {
            self.error_at(
                t.pos,
                format!("error unquoting string {}: {e}", quote(t.text)),
            )
        })
    }

    // --- checks on the finished tree --------------------------------------------------

    /// Prometheus's `checkAST` for the nodes this parser builds; returns the type.
    fn check(&self, e: &Expr) -> Result<Option<ValueType>, ParseError> {
        match e {
            Expr::Paren(p) => self.check(&p.expr),
            Expr::Unary(u) => {
                let t = self.check(&u.expr)?;
                if let Some(t @ (ValueType::String | ValueType::Matrix)) = t {
                    return Err(self.error_at(
                        u.start,
                        format!(
                            "unary expression only allowed on expressions of type scalar or \
                             instant vector, got {}",
                            quote(t.documented())
                        ),
                    ));
                }
                Ok(t)
            }
            Expr::VectorSelector(vs) => {
                self.check_selector(vs)?;
                Ok(Some(ValueType::Vector))
            }
            Expr::MatrixSelector(m) => {
                self.check_selector(&m.selector)?;
                Ok(Some(ValueType::Matrix))
            }
            other => Ok(other.value_type()),
        }
    }

    fn check_selector(&self, vs: &VectorSelector) -> Result<(), ParseError> {
        if let Some(name) = &vs.name {
            // The last matcher is the name's own; any other `__name__` sets it twice.
            let others = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
            if let Some(m) = others.iter().find(|m| m.name == METRIC_NAME) {
                return Err(self.error_at(
                    vs.pos.start,
                    format!(
                        "metric name must not be set twice: {} or {}",
                        quote(name),
                        quote(&m.value)
                    ),
                ));
            }
            return Ok(());
        }
        // Refuse selectors that would match every series, usually a typo.
        if !vs.matchers.iter().any(|m| !m.matches_empty()) {
            return Err(self.error_at(
                vs.pos.start,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }
}

/// Why a regex does not compile, in Go's `regexp/syntax` words where the two engines
/// agree on the cause (Prometheus users know those messages); Rust's wording otherwise.
/// Go prints the offending fragment after the reason, cairn the whole pattern.
fn go_regexp_reason(pattern: &str, err: &regex::Error) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let go = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(e) => match e.kind() {
            K::GroupUnclosed => Some("missing closing )"),
            K::GroupUnopened => Some("unexpected )"),
            K::ClassUnclosed => Some("missing closing ]"),
            K::ClassRangeInvalid | K::ClassRangeLiteral => Some("invalid character class range"),
            K::ClassEscapeInvalid
            | K::EscapeUnrecognized
            | K::EscapeHexEmpty
            | K::EscapeHexInvalid
            | K::EscapeHexInvalidDigit
            | K::UnicodeClassInvalid => Some("invalid escape sequence"),
            K::EscapeUnexpectedEof => Some("trailing backslash at end of expression"),
            K::RepetitionMissing => Some("missing argument to repetition operator"),
            K::RepetitionCountInvalid
            | K::RepetitionCountUnclosed
            | K::RepetitionCountDecimalEmpty
            | K::DecimalEmpty
            | K::DecimalInvalid => Some("invalid repeat count"),
            K::GroupNameDuplicate { .. }
            | K::GroupNameEmpty
            | K::GroupNameInvalid
            | K::GroupNameUnexpectedEof => Some("invalid named capture"),
            K::NestLimitExceeded(_) => Some("expression nests too deeply"),
            K::FlagUnrecognized
            | K::FlagDanglingNegation
            | K::FlagDuplicate { .. }
            | K::FlagRepeatedNegation { .. }
            | K::FlagUnexpectedEof
            | K::UnsupportedLookAround
            | K::UnsupportedBackreference => Some("invalid or unsupported Perl syntax"),
            _ => None,
        },
        Ok(_) => None,
    };
    if let Some(reason) = go {
        return reason.to_string();
    }
    // Rust's messages span several lines around a caret; keep the line that says why.
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().next())
        .unwrap_or("invalid regular expression")
        .to_string()
}

/// A number token's value as Prometheus computes it: Go's `ParseInt(s, 0, 64)` first (so
/// `0x1f` is hexadecimal and, as in Prometheus, `010` is octal 8), then `ParseFloat`.
fn parse_number(s: &str) -> Option<f64> {
    if let Some(v) = parse_go_int(s) {
        return Some(v as f64);
    }
    if s.contains('_') {
        if !underscores_ok(s) {
            return None;
        }
        return s.replace('_', "").parse().ok();
    }
    s.parse().ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)` for the unsigned texts the lexer produces.
fn parse_go_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (radix, digits) = if b.first() == Some(&b'0') && b.len() > 1 {
        match b[1].to_ascii_lowercase() {
            b'x' if b.len() >= 3 => (16, &s[2..]),
            b'o' if b.len() >= 3 => (8, &s[2..]),
            b'b' if b.len() >= 3 => (2, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() && s != "0" {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(&digits, radix).ok()
}

/// Go's rule for `_` in number literals: only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    // '^' start, '0' digit or prefix, '_' underscore, '!' anything else.
    let mut saw = b'^';
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

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
                r#"{"foo", __name__="bar"} + 1"#,
                "1:25: parse error: binary operator \"+\" is not supported yet",
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
                "foo #c\n  + 1",
                "2:3: parse error: binary operator \"+\" is not supported yet",
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
                "foo + bar",
                "1:5: parse error: binary operator \"+\" is not supported yet",
            ),
            (
                "foo and bar",
                "1:5: parse error: binary operator \"and\" is not supported yet",
            ),
            (
                "-1 ^ 2",
                "1:4: parse error: binary operator \"^\" is not supported yet",
            ),
            (
                "rate(foo[5m])",
                "1:1: parse error: function call \"rate\" is not supported yet",
            ),
            (
                "sum(foo)",
                "1:1: parse error: aggregation \"sum\" is not supported yet",
            ),
            (
                "sum by (a) (foo)",
                "1:1: parse error: aggregation \"sum\" is not supported yet",
            ),
            (
                "foo[5m:1m]",
                "1:4: parse error: subquery is not supported yet",
            ),
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
            ("step()", "1:1: parse error: step() is not supported yet"),
            ("end() - 1", "1:1: parse error: end() is not supported yet"),
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

    #[test]
    fn number_parsing_follows_go() {
        assert_eq!(parse_number("1_0_0"), Some(100.0));
        assert_eq!(parse_number("1__0"), None);
        assert_eq!(parse_number("0x_1F"), Some(31.0));
        assert_eq!(parse_number("99999999999999999999"), Some(1e20));
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("0"), Some(0.0));
        assert!(parse_number("inF").is_some_and(|v| v == f64::INFINITY));
    }
}
