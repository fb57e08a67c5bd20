//! The PromQL syntax tree, for the whole Prometheus 3.x language even where the parser
//! does not build a node yet: literals, vector and matrix selectors with `offset`, `@`,
//! `anchored` and `smoothed`, subqueries, unary and binary expressions with their matching
//! modifiers, aggregations, function calls, parentheses and duration expressions
//! (`step()`, `[5m * 2]`). Nodes carry byte positions for error messages. This file only
//! defines the shapes and their static types; printing lives in `printer.rs`, building in
//! `parser.rs`, meaning in `engine.rs`.

use crate::model::Matcher;

/// A byte offset into the query text.
pub type Pos = usize;

/// The bytes of the query a node was parsed from, `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosRange {
    pub start: Pos,
    pub end: Pos,
}

impl PosRange {
    pub fn new(start: Pos, end: Pos) -> Self {
        PosRange { start, end }
    }
}

/// The four PromQL value types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    String,
    Vector,
    Matrix,
}

impl ValueType {
    /// The name Prometheus's documentation and error messages use.
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Number(NumberLiteral),
    String(StringLiteral),
    VectorSelector(VectorSelector),
    MatrixSelector(MatrixSelector),
    Subquery(SubqueryExpr),
    Unary(UnaryExpr),
    Binary(BinaryExpr),
    Aggregate(AggregateExpr),
    Call(Call),
    Paren(ParenExpr),
    /// `step()`, `range()`, `start()`, `end()`, `min(a, b)`, `max(a, b)` and arithmetic on
    /// durations, where an expression stands for a duration (`offset`, ranges, subquery
    /// steps) or a scalar.
    Duration(DurationExpr),
}

impl Expr {
    /// The type the expression evaluates to. `None` only for a call to a function that
    /// is not in [`super::signatures`], which the parser never builds.
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Expr::Number(_) | Expr::Duration(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Unary(u) => return u.expr.value_type(),
            Expr::Paren(p) => return p.expr.value_type(),
            Expr::Binary(b) => match (b.lhs.value_type()?, b.rhs.value_type()?) {
                (ValueType::Scalar, ValueType::Scalar) => ValueType::Scalar,
                _ => ValueType::Vector,
            },
            Expr::Call(c) => return super::signatures::function(&c.func).map(|f| f.return_type),
        })
    }

    /// Where the expression sits in the query.
    pub fn pos_range(&self) -> PosRange {
        match self {
            Expr::Number(n) => n.pos,
            Expr::String(s) => s.pos,
            Expr::VectorSelector(v) => v.pos,
            Expr::MatrixSelector(m) => PosRange::new(m.selector.pos.start, m.end),
            Expr::Subquery(s) => PosRange::new(s.expr.pos_range().start, s.end),
            Expr::Unary(u) => PosRange::new(u.start, u.expr.pos_range().end),
            Expr::Binary(b) => PosRange::new(b.lhs.pos_range().start, b.rhs.pos_range().end),
            Expr::Aggregate(a) => a.pos,
            Expr::Call(c) => c.pos,
            Expr::Paren(p) => p.pos,
            Expr::Duration(d) => d.pos,
        }
    }
}

/// A number, or a duration written where a number is expected (`5m` is 300). Durations
/// keep their flag so they print back as durations.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberLiteral {
    pub value: f64,
    pub duration: bool,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StringLiteral {
    pub value: String,
    pub pos: PosRange,
}

/// The `@` modifier: an absolute time, or the query's start or end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtModifier {
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Start,
    End,
}

/// A duration argument: a literal (milliseconds, negative for `offset -5m`) or a
/// duration expression evaluated per query (`step()`, `[5m * 2]`).
#[derive(Clone, Debug, PartialEq)]
pub enum DurationValue {
    Millis(i64),
    Expr(Box<DurationExpr>),
}

/// `name{matchers} @ t offset d`. As in Prometheus, a name written outside the braces is
/// also the last matcher (`__name__="name"`), so evaluation only looks at `matchers`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    pub name: Option<String>,
    pub matchers: Vec<Matcher>,
    /// `None` when absent or zero, as Prometheus keeps it.
    pub offset: Option<DurationValue>,
    pub at: Option<AtModifier>,
    /// Experimental extended range selectors.
    pub anchored: bool,
    pub smoothed: bool,
    pub pos: PosRange,
}

/// `selector[range]`; offset and `@` live on the inner selector.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    pub selector: VectorSelector,
    pub range: DurationValue,
    pub end: Pos,
}

/// `expr[range:step] @ t offset d`; no step means the query's evaluation interval.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range: DurationValue,
    pub step: Option<DurationValue>,
    pub offset: Option<DurationValue>,
    pub at: Option<AtModifier>,
    pub end: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Plus,
    Minus,
}

impl UnaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Plus => "+",
            UnaryOp::Minus => "-",
        }
    }
}

/// `-expr` or `+expr` on anything but a number literal (`-1` is folded into the literal).
#[derive(Clone, Debug, PartialEq)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub expr: Box<Expr>,
    pub start: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::Eql => "==",
            BinaryOp::Neq => "!=",
            BinaryOp::Gtr => ">",
            BinaryOp::Lss => "<",
            BinaryOp::Gte => ">=",
            BinaryOp::Lte => "<=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }

    /// Binding strength, higher binds tighter: `or` < `and unless` < comparisons <
    /// `+ -` < `* / % atan2` < `^`. Unary minus binds like `*`.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And | BinaryOp::Unless => 2,
            BinaryOp::Eql
            | BinaryOp::Neq
            | BinaryOp::Gtr
            | BinaryOp::Lss
            | BinaryOp::Gte
            | BinaryOp::Lte => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod | BinaryOp::Atan2 => 5,
            BinaryOp::Pow => 6,
        }
    }

    /// Only `^` groups to the right.
    pub fn is_right_associative(self) -> bool {
        self == BinaryOp::Pow
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// How series on the two sides of a binary operator pair up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// `fill(v)`, `fill_left(v)`, `fill_right(v)`: values for a side's missing series.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FillValues {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

/// `on(...)`/`ignoring(...)`, `group_left(...)`/`group_right(...)` and fills.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// True for `on`, false for `ignoring` (or no clause).
    pub on: bool,
    pub matching_labels: Vec<String>,
    /// Extra labels taken from the "one" side by `group_left`/`group_right`.
    pub include: Vec<String>,
    pub fill: FillValues,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// `bool` on a comparison: 0/1 instead of filtering.
    pub return_bool: bool,
    /// Only between two instant vectors.
    pub matching: Option<VectorMatching>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Sum => "sum",
            AggregateOp::Avg => "avg",
            AggregateOp::Count => "count",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Group => "group",
            AggregateOp::Stddev => "stddev",
            AggregateOp::Stdvar => "stdvar",
            AggregateOp::Topk => "topk",
            AggregateOp::Bottomk => "bottomk",
            AggregateOp::CountValues => "count_values",
            AggregateOp::Quantile => "quantile",
            AggregateOp::Limitk => "limitk",
            AggregateOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the first argument is a parameter (`topk(5, x)`).
    pub fn takes_param(self) -> bool {
        matches!(
            self,
            AggregateOp::Topk
                | AggregateOp::Bottomk
                | AggregateOp::CountValues
                | AggregateOp::Quantile
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio
        )
    }
}

/// `op by|without (labels) (param, expr)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Box<Expr>,
    pub param: Option<Box<Expr>>,
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: PosRange,
}

/// `name(args)`. The parser only builds calls to functions in
/// [`super::signatures::FUNCTIONS`], with arguments of the types listed there.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub func: String,
    pub args: Vec<Expr>,
    pub pos: PosRange,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParenExpr {
    pub expr: Box<Expr>,
    pub pos: PosRange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Step,
    Range,
    /// The query's start and end time, as expressions (`end() - start()`).
    Start,
    End,
    Min,
    Max,
}

impl DurationOp {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationOp::Add => "+",
            DurationOp::Sub => "-",
            DurationOp::Mul => "*",
            DurationOp::Div => "/",
            DurationOp::Mod => "%",
            DurationOp::Pow => "^",
            DurationOp::Step => "step",
            DurationOp::Range => "range",
            DurationOp::Start => "start",
            DurationOp::End => "end",
            DurationOp::Min => "min",
            DurationOp::Max => "max",
        }
    }
}

/// A duration computed at query time. `step()`, `range()`, `start()` and `end()` have
/// no operands; a unary sign
/// has only `rhs`; arithmetic, `min` and `max` have both. Operands are number literals
/// (seconds) or other duration expressions.
#[derive(Clone, Debug, PartialEq)]
pub struct DurationExpr {
    pub op: DurationOp,
    pub lhs: Option<Box<Expr>>,
    pub rhs: Option<Box<Expr>>,
    /// Written in parentheses; kept so it prints back the same.
    pub wrapped: bool,
    pub pos: PosRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64) -> Expr {
        Expr::Number(NumberLiteral {
            value: v,
            duration: false,
            pos: PosRange::new(0, 1),
        })
    }

    #[test]
    fn static_types() {
        let s = Expr::String(StringLiteral {
            value: "x".into(),
            pos: PosRange::default(),
        });
        assert_eq!(s.value_type(), Some(ValueType::String));
        let neg = Expr::Unary(UnaryExpr {
            op: UnaryOp::Minus,
            expr: Box::new(num(1.0)),
            start: 0,
        });
        assert_eq!(neg.value_type(), Some(ValueType::Scalar));
        let call = Expr::Call(Call {
            func: "time".into(),
            args: vec![],
            pos: PosRange::default(),
        });
        assert_eq!(call.value_type(), Some(ValueType::Scalar));
        let unknown = Expr::Call(Call {
            func: "nope".into(),
            args: vec![],
            pos: PosRange::default(),
        });
        assert_eq!(unknown.value_type(), None);
        assert_eq!(ValueType::Matrix.documented(), "range vector");
    }

    #[test]
    fn operator_table() {
        assert!(BinaryOp::Pow.precedence() > BinaryOp::Mul.precedence());
        assert!(BinaryOp::Or.precedence() < BinaryOp::Unless.precedence());
        assert!(BinaryOp::Gte.is_comparison() && !BinaryOp::And.is_comparison());
        assert!(BinaryOp::Unless.is_set_operator());
        assert!(BinaryOp::Pow.is_right_associative() && !BinaryOp::Sub.is_right_associative());
        assert!(AggregateOp::CountValues.takes_param() && !AggregateOp::Sum.takes_param());
    }
}
