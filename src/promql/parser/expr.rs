//! Expressions: binary operators by precedence climbing (`or` < `and unless` <
//! comparisons < `+ -` < `* / % atan2` < `^`, only `^` grouping to the right), their
//! `bool`, `on`/`ignoring`, `group_left`/`group_right` and `fill` modifiers, unary signs
//! (binding like `*`), parentheses, literals, function calls and aggregations. Postfix
//! modifiers and selectors are in `selector.rs`.

use super::{NESTING_COST, ParseError, Parser};
use crate::promql::ast::*;
use crate::promql::lexer::{Token, TokenKind};
use crate::promql::quote::quote;
use crate::promql::signatures;

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

fn aggregate_op(kind: TokenKind) -> Option<AggregateOp> {
    use TokenKind as T;
    Some(match kind {
        T::Sum => AggregateOp::Sum,
        T::Avg => AggregateOp::Avg,
        T::Count => AggregateOp::Count,
        T::Min => AggregateOp::Min,
        T::Max => AggregateOp::Max,
        T::Group => AggregateOp::Group,
        T::Stddev => AggregateOp::Stddev,
        T::Stdvar => AggregateOp::Stdvar,
        T::Topk => AggregateOp::Topk,
        T::Bottomk => AggregateOp::Bottomk,
        T::CountValues => AggregateOp::CountValues,
        T::Quantile => AggregateOp::Quantile,
        T::Limitk => AggregateOp::Limitk,
        T::LimitRatio => AggregateOp::LimitRatio,
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

/// A word usable as a label name in `by (...)`, `on (...)` and the like: identifiers and
/// every keyword spelled as a legacy label name (`by (on, sum)` is fine in Prometheus).
fn is_label_word(t: &Token<'_>) -> bool {
    use TokenKind as T;
    !matches!(
        t.kind,
        T::Number | T::Duration | T::String | T::MetricIdentifier | T::Eof | T::Comment
    ) && crate::promql::printer::is_legacy_label_name(t.text)
}

impl<'a> Parser<'a> {
    /// An expression whose binary operators bind at least as tight as `min_prec`.
    pub(super) fn parse_expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let outer = self.depth;
        self.enter(NESTING_COST)?;
        let mut lhs = self.parse_unary()?;
        loop {
            let t = self.peek()?;
            let Some(op) = binary_op(t.kind) else { break };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.next()?;
            // Prometheus 3.14's native-histogram trim operators `>/` and `</`.
            let after = self.peek()?;
            if matches!(op, BinaryOp::Gtr | BinaryOp::Lss)
                && after.kind == TokenKind::Div
                && after.pos == t.end()
            {
                return Err(self.unsupported(t.pos, format!("operator \"{}/\"", t.text)));
            }
            let (return_bool, matching) = self.parse_bin_modifiers()?;
            // Each link of a chain (`a + b + c ...`) deepens the tree by one, so it
            // counts against the nesting limit like a parenthesis does.
            self.enter(1)?;
            let next_min = if op.is_right_associative() {
                prec
            } else {
                prec + 1
            };
            let rhs = self.parse_expr(next_min)?;
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching: Some(matching),
            });
        }
        self.depth = outer;
        Ok(lhs)
    }

    /// `bool`, `on (...)`/`ignoring (...)`, `group_left [(...)]`/`group_right [(...)]`,
    /// then `fill(v)`/`fill_left(v)`/`fill_right(v)`, each optional, in that order.
    fn parse_bin_modifiers(&mut self) -> Result<(bool, VectorMatching), ParseError> {
        use TokenKind as T;
        let mut vm = VectorMatching {
            card: Cardinality::OneToOne,
            on: false,
            matching_labels: Vec::new(),
            include: Vec::new(),
            fill: FillValues::default(),
        };
        let return_bool = self.peek()?.kind == T::Bool;
        if return_bool {
            self.next()?;
        }
        let t = self.peek()?;
        if matches!(t.kind, T::On | T::Ignoring) {
            self.next()?;
            vm.on = t.kind == T::On;
            vm.matching_labels = self.parse_grouping_labels()?;
            let g = self.peek()?;
            if matches!(g.kind, T::GroupLeft | T::GroupRight) {
                self.next()?;
                vm.card = if g.kind == T::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                // As in Prometheus, a `(` right after group_x opens its label list.
                if self.peek()?.kind == T::LeftParen {
                    vm.include = self.parse_grouping_labels()?;
                }
            }
        }
        loop {
            let t = self.peek()?;
            let slots: &[bool] = match t.kind {
                T::Fill => &[true, true],
                T::FillLeft => &[true, false],
                T::FillRight => &[false, true],
                _ => break,
            };
            self.next()?;
            let open = self.next()?;
            if open.kind != T::LeftParen {
                return Err(self.unexpected(&open, "fill modifier", "\"(\""));
            }
            let v = self.signed_literal("fill modifier", "number")?;
            let close = self.next()?;
            if close.kind != T::RightParen {
                return Err(self.unexpected(&close, "fill modifier", "\")\""));
            }
            if slots[0] {
                vm.fill.lhs = Some(v);
            }
            if slots[1] {
                vm.fill.rhs = Some(v);
            }
        }
        Ok((return_bool, vm))
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
            T::LeftBrace => self.parse_braces_selector(t),
            // `step()`, `range()`, `start()`, `end()` outside brackets are calls to the
            // (experimental) functions of the same names, as in Prometheus.
            T::Identifier | T::Step | T::Range | T::Start | T::End
                if self.peek()?.kind == T::LeftParen =>
            {
                self.parse_call(t)
            }
            k if k.is_aggregator()
                && matches!(self.peek()?.kind, T::LeftParen | T::By | T::Without) =>
            {
                self.parse_aggregate(t)
            }
            k if can_be_metric_name(k) => self.parse_named_selector(t),
            _ => Err(self.unexpected(&t, "", "")),
        }
    }

    /// `name(args)`, the name already consumed.
    fn parse_call(&mut self, name: Token<'a>) -> Result<Expr, ParseError> {
        // Function names are case-sensitive; only the keywords `step` ... are not.
        let func = if name.kind == TokenKind::Identifier {
            name.text.to_string()
        } else {
            name.text.to_ascii_lowercase()
        };
        self.next()?; // `(`
        let (args, end) = self.parse_args("")?;
        if signatures::function(&func).is_none() {
            return Err(self.error_at(
                name.pos,
                format!("unknown function with name {}", quote(name.text)),
            ));
        }
        Ok(Expr::Call(Call {
            func,
            args,
            pos: PosRange::new(name.pos, end),
        }))
    }

    /// Comma-separated expressions up to and including `)`, the `(` already consumed.
    /// Returns them and the end of the `)`.
    fn parse_args(&mut self, context: &str) -> Result<(Vec<Expr>, usize), ParseError> {
        let mut args = Vec::new();
        if self.peek()?.kind == TokenKind::RightParen {
            return Ok((args, self.next()?.end()));
        }
        loop {
            args.push(self.parse_expr(0)?);
            let sep = self.next()?;
            match sep.kind {
                TokenKind::RightParen => return Ok((args, sep.end())),
                TokenKind::Comma if self.peek()?.kind == TokenKind::RightParen => {
                    return Err(
                        self.error_at(sep.pos, "trailing commas not allowed in function call args")
                    );
                }
                TokenKind::Comma => {}
                _ => return Err(self.unexpected(&sep, context, "")),
            }
        }
    }

    /// `op [by|without (labels)] (args) [by|without (labels)]`, the operator consumed.
    fn parse_aggregate(&mut self, op_tok: Token<'a>) -> Result<Expr, ParseError> {
        use TokenKind as T;
        let Some(op) = aggregate_op(op_tok.kind) else {
            return Err(self.unexpected(&op_tok, "", ""));
        };
        let mut grouping = None;
        if matches!(self.peek()?.kind, T::By | T::Without) {
            grouping = Some(self.parse_aggregate_modifier()?);
        }
        let open = self.next()?;
        if open.kind != T::LeftParen {
            return Err(self.unexpected(&open, "aggregation", ""));
        }
        let (mut args, mut end) = self.parse_args("aggregation")?;
        if grouping.is_none() && matches!(self.peek()?.kind, T::By | T::Without) {
            grouping = Some(self.parse_aggregate_modifier()?);
            end = self.last_closing;
        }
        let (grouping, without) = grouping.unwrap_or_default();
        let pos = PosRange::new(op_tok.pos, end);
        if args.is_empty() {
            return Err(self.error_at(pos.start, "no arguments for aggregate expression provided"));
        }
        let want = if op.takes_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(self.error_at(
                pos.start,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected \
                     {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().map(Box::new);
        let param = args.pop().map(Box::new);
        let Some(expr) = expr else {
            return Err(self.error_at(pos.start, "no arguments for aggregate expression provided"));
        };
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            pos,
        }))
    }

    /// `by (labels)` or `without (labels)`; returns the labels and whether it is `without`.
    fn parse_aggregate_modifier(&mut self) -> Result<(Vec<String>, bool), ParseError> {
        let t = self.next()?;
        let labels = self.parse_grouping_labels()?;
        Ok((labels, t.kind == TokenKind::Without))
    }

    /// `(a, b, "c.d",)`: label names, possibly quoted, a trailing comma allowed.
    pub(super) fn parse_grouping_labels(&mut self) -> Result<Vec<String>, ParseError> {
        const CTX: &str = "grouping opts";
        let open = self.next()?;
        if open.kind != TokenKind::LeftParen {
            return Err(self.unexpected(&open, CTX, "\"(\""));
        }
        let mut labels = Vec::new();
        loop {
            let t = self.next()?;
            match t.kind {
                TokenKind::RightParen => return Ok(labels),
                TokenKind::String => labels.push(self.unquote(&t)?),
                _ if is_label_word(&t) => labels.push(t.text.to_string()),
                _ => return Err(self.unexpected(&t, CTX, "label")),
            }
            let sep = self.next()?;
            match sep.kind {
                TokenKind::Comma => {}
                TokenKind::RightParen => return Ok(labels),
                _ => return Err(self.unexpected(&sep, CTX, "\",\" or \")\"")),
            }
        }
    }
}
