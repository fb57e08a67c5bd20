//! Prometheus's `checkAST`: the type rules that a syntactically valid tree must still
//! meet (argument types, operators' operand types, `bool`, vector matching, subqueries,
//! selectors that would match everything), with Prometheus's messages and positions.
//! It also normalises vector matching the way Prometheus does: set operators match
//! many-to-many, and an operator with a scalar side keeps no matching at all.

use super::{ParseError, Parser};
use crate::model::METRIC_NAME;
use crate::promql::ast::*;
use crate::promql::quote::quote;
use crate::promql::signatures;

/// How Go prints a `ValueType` with `%s` (one message uses it instead of the documented
/// name).
fn go_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
    }
}

impl Parser<'_> {
    /// Checks `e` and everything under it; returns its type. The first error found in
    /// Prometheus's order (children before their parent's own rules) wins.
    pub(super) fn check(&self, e: &mut Expr) -> Result<ValueType, ParseError> {
        Ok(match e {
            Expr::Number(_) | Expr::Duration(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::Paren(p) => self.check(&mut p.expr)?,
            Expr::VectorSelector(vs) => {
                self.check_selector(vs, false)?;
                ValueType::Vector
            }
            Expr::MatrixSelector(m) => {
                self.check_selector(&m.selector, false)?;
                ValueType::Matrix
            }
            Expr::Unary(u) => {
                let t = self.check(&mut u.expr)?;
                if matches!(t, ValueType::String | ValueType::Matrix) {
                    return Err(self.error_at(
                        u.start,
                        format!(
                            "unary expression only allowed on expressions of type scalar or \
                             instant vector, got {}",
                            quote(t.documented())
                        ),
                    ));
                }
                t
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr)?;
                if t != ValueType::Vector {
                    return Err(self.error_at(
                        s.expr.pos_range().start,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            go_name(t)
                        ),
                    ));
                }
                ValueType::Matrix
            }
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression")?;
                if let Some(param) = &mut a.param {
                    let want = if a.op == AggregateOp::CountValues {
                        ValueType::String
                    } else {
                        ValueType::Scalar
                    };
                    self.expect_type(param, want, "aggregation parameter")?;
                }
                ValueType::Vector
            }
            Expr::Call(c) => self.check_call(c)?,
            Expr::Binary(b) => self.check_binary(b)?,
        })
    }

    fn expect_type(&self, e: &mut Expr, want: ValueType, context: &str) -> Result<(), ParseError> {
        let got = self.check(e)?;
        if got != want {
            return Err(self.error_at(
                e.pos_range().start,
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented(),
                    got.documented()
                ),
            ));
        }
        Ok(())
    }

    fn check_call(&self, c: &mut Call) -> Result<ValueType, ParseError> {
        let Some(f) = signatures::function(&c.func) else {
            // The parser only builds known functions; keep the message if that changes.
            return Err(self.error_at(
                c.pos.start,
                format!("unknown function with name {}", quote(&c.func)),
            ));
        };
        let n = c.args.len();
        let count_error = if f.max_args() == Some(f.min_args()) && n != f.min_args() {
            Some(format!("expected {} argument(s)", f.min_args()))
        } else if n < f.min_args() {
            Some(format!("expected at least {} argument(s)", f.min_args()))
        } else {
            f.max_args()
                .filter(|&max| n > max)
                .map(|max| format!("expected at most {max} argument(s)"))
        };
        if let Some(expected) = count_error {
            return Err(self.error_at(
                c.pos.start,
                format!("{expected} in call to {}, got {n}", quote(f.name)),
            ));
        }
        // `info(v, {label selectors})`: the second argument only filters info series, so
        // it needs no metric name and may match the empty string.
        let info_selector = f.name == "info" && n > 1;
        if info_selector {
            let got = c.args[1].value_type();
            if got != Some(ValueType::Vector) {
                return Err(self.error_at(
                    c.pos.start,
                    format!(
                        "expected type instant vector in call to function \"info\", got {}",
                        got.map_or("none", ValueType::documented)
                    ),
                ));
            }
            match &c.args[1] {
                Expr::VectorSelector(vs) if vs.name.is_some() => {
                    return Err(self.error_at(
                        vs.pos.start,
                        "expected label selectors only, got vector selector instead",
                    ));
                }
                Expr::VectorSelector(_) => {}
                other => {
                    return Err(
                        self.error_at(other.pos_range().start, "expected label selectors only")
                    );
                }
            }
        }
        for (i, arg) in c.args.iter_mut().enumerate() {
            let Some(want) = f.arg_type(i) else { break };
            let got = match arg {
                Expr::VectorSelector(vs) if info_selector && i == 1 => {
                    self.check_selector(vs, true)?;
                    ValueType::Vector
                }
                _ => self.check(arg)?,
            };
            if got != want {
                return Err(self.error_at(
                    arg.pos_range().start,
                    format!(
                        "expected type {} in call to function {}, got {}",
                        want.documented(),
                        quote(f.name),
                        got.documented()
                    ),
                ));
            }
        }
        Ok(f.return_type)
    }

    /// Where the operator of `b` starts: the first non-space after the left operand.
    fn operator_pos(&self, b: &BinaryExpr) -> usize {
        let bytes = self.input.as_bytes();
        let mut p = b.lhs.pos_range().end;
        while p < bytes.len() && matches!(bytes[p], b' ' | b'\t' | b'\n' | b'\r') {
            p += 1;
        }
        p
    }

    fn check_binary(&self, b: &mut BinaryExpr) -> Result<ValueType, ParseError> {
        let lt = self.check(&mut b.lhs)?;
        let rt = self.check(&mut b.rhs)?;
        let op_pos = self.operator_pos(b);
        let start = b.lhs.pos_range().start;
        if b.return_bool && !b.op.is_comparison() {
            return Err(self.error_at(
                op_pos,
                "bool modifier can only be used on comparison operators",
            ));
        }
        if b.op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            return Err(self.error_at(op_pos, "comparisons between scalars must use BOOL modifier"));
        }
        if let Some(vm) = &mut b.matching {
            if b.op.is_set_operator() && vm.card == Cardinality::OneToOne {
                vm.card = Cardinality::ManyToMany;
            }
            if vm.on
                && let Some(l) = vm.matching_labels.iter().find(|l| vm.include.contains(l))
            {
                return Err(self.error_at(
                    op_pos,
                    format!(
                        "label {} must not occur in ON and GROUP clause at once",
                        quote(l)
                    ),
                ));
            }
        }
        for (t, side) in [(lt, &b.lhs), (rt, &b.rhs)] {
            if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                return Err(self.error_at(
                    side.pos_range().start,
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
        let fills = |vm: &VectorMatching| vm.fill.lhs.is_some() || vm.fill.rhs.is_some();
        if !both_vectors {
            if let Some(vm) = &b.matching {
                if !vm.matching_labels.is_empty() {
                    return Err(self.error_at(
                        start,
                        "vector matching only allowed between instant vectors",
                    ));
                }
                if fills(vm) {
                    return Err(self.error_at(
                        start,
                        "filling in missing series only allowed between instant vectors",
                    ));
                }
            }
            b.matching = None;
        } else if b.op.is_set_operator()
            && let Some(vm) = &b.matching
        {
            if matches!(vm.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                return Err(self.error_at(
                    start,
                    format!("no grouping allowed for {} operation", quote(b.op.as_str())),
                ));
            }
            if fills(vm) {
                return Err(self.error_at(
                    start,
                    "filling in missing series not allowed for set operators",
                ));
            }
        }
        if b.op.is_set_operator() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
            return Err(self.error_at(
                start,
                format!(
                    "set operator {} not allowed in binary scalar expression",
                    quote(b.op.as_str())
                ),
            ));
        }
        Ok(if lt == ValueType::Scalar && rt == ValueType::Scalar {
            ValueType::Scalar
        } else {
            ValueType::Vector
        })
    }

    /// `bypass_empty`: `info()`'s label selector may match everything.
    fn check_selector(&self, vs: &VectorSelector, bypass_empty: bool) -> Result<(), ParseError> {
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
        if !bypass_empty && !vs.matchers.iter().any(|m| !m.matches_empty()) {
            return Err(self.error_at(
                vs.pos.start,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }
}
