//! Vector selectors and what may follow any expression: `name{matchers}`, range
//! selectors `[5m]`, subqueries `[1h:5m]`, `offset` and `@`. Builds the nodes and
//! reports Prometheus's errors for modifiers in the wrong place; type checks on the
//! finished tree live in `check.rs`.

use super::literal::go_regexp_reason;
use super::{MAX_DURATION_SECS, ParseError, Parser, secs_to_millis};
use crate::model::{METRIC_NAME, MatchType, Matcher};
use crate::promql::ast::*;
use crate::promql::lexer::{Token, TokenKind};

fn match_type(kind: TokenKind) -> Option<MatchType> {
    match kind {
        TokenKind::Eql => Some(MatchType::Equal),
        TokenKind::Neq => Some(MatchType::NotEqual),
        TokenKind::EqlRegex => Some(MatchType::Regex),
        TokenKind::NeqRegex => Some(MatchType::NotRegex),
        _ => None,
    }
}

/// What a range or subquery bracket may hold, for error messages.
const RANGE_EXPECTED: &str = "number, duration, step(), or range()";

impl<'a> Parser<'a> {
    /// `{matchers}` with no name in front, the `{` already consumed.
    pub(super) fn parse_braces_selector(&mut self, open: Token<'a>) -> Result<Expr, ParseError> {
        let (matchers, end) = self.parse_label_matchers()?;
        Ok(Expr::VectorSelector(VectorSelector {
            name: None,
            matchers,
            offset: None,
            at: None,
            anchored: false,
            smoothed: false,
            pos: PosRange::new(open.pos, end),
        }))
    }

    /// `name` or `name{matchers}`; the name becomes the last matcher.
    pub(super) fn parse_named_selector(&mut self, name: Token<'a>) -> Result<Expr, ParseError> {
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

    pub(super) fn parse_postfix(&mut self, mut expr: Expr) -> Result<Expr, ParseError> {
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

    /// `[range]` or `[range:step]` after an expression.
    fn parse_range(&mut self, expr: Expr) -> Result<Expr, ParseError> {
        let open = self.next()?;
        let range = self.positive_duration("subquery or range selector", RANGE_EXPECTED)?;
        let close = self.next()?;
        match close.kind {
            TokenKind::RightBracket => {}
            TokenKind::Colon => return self.parse_subquery(expr, range),
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

    /// The rest of `expr[range:step]` after the colon. No step means the query's
    /// evaluation interval. The inner expression's type is checked later, with the tree.
    fn parse_subquery(&mut self, expr: Expr, range: i64) -> Result<Expr, ParseError> {
        // `x[1m:][1m:]...` deepens the tree without recursing here.
        self.enter(1)?;
        let step = if self.peek()?.kind == TokenKind::RightBracket {
            None
        } else {
            let ms = self.positive_duration(
                "subquery selector",
                "number, duration, step(), range(), or \"]\"",
            )?;
            Some(DurationValue::Millis(ms))
        };
        let close = self.next()?;
        if close.kind != TokenKind::RightBracket {
            return Err(self.unexpected(&close, "subquery selector", "\"]\""));
        }
        Ok(Expr::Subquery(SubqueryExpr {
            expr: Box::new(expr),
            range: DurationValue::Millis(range),
            step,
            offset: None,
            at: None,
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
    pub(super) fn signed_literal(
        &mut self,
        context: &str,
        expected: &str,
    ) -> Result<f64, ParseError> {
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
}
