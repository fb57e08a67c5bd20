//! Prints a syntax tree back as canonical PromQL, byte for byte as Prometheus's `String()`
//! does: matchers sorted and joined by `,`, durations in Prometheus's units (`1h30m`,
//! `90d`), `@` timestamps with three decimals, strings quoted the Go way. Rule files,
//! the API's formatted queries and error messages rely on this; parsing the output gives
//! the same tree. Only formatting lives here.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::*;
use super::quote::write_quoted;
use crate::model::{METRIC_NAME, MatchType, Matcher};

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(n) => n.fmt(f),
            Expr::String(s) => write_quoted(f, &s.value),
            Expr::VectorSelector(v) => v.fmt(f),
            Expr::MatrixSelector(m) => m.fmt(f),
            Expr::Subquery(s) => s.fmt(f),
            Expr::Unary(u) => write!(f, "{}{}", u.op.as_str(), u.expr),
            Expr::Binary(b) => b.fmt(f),
            Expr::Aggregate(a) => a.fmt(f),
            Expr::Call(c) => {
                write!(f, "{}(", c.func)?;
                write_joined(f, &c.args)?;
                f.write_char(')')
            }
            Expr::Paren(p) => write!(f, "({})", p.expr),
            Expr::Duration(d) => d.fmt(f),
        }
    }
}

impl Display for NumberLiteral {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.duration {
            // Prometheus turns the seconds into nanoseconds, then prints milliseconds.
            let ms = ((self.value * 1e9) as i64) / 1_000_000;
            return write_duration(f, ms);
        }
        write_float(f, self.value)
    }
}

impl Display for VectorSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_selector_core(f, self)?;
        write_at(f, self.at)?;
        write_extended(f, self)?;
        write_offset(f, self.offset.as_ref())
    }
}

impl Display for MatrixSelector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let vs = &self.selector;
        write_selector_core(f, vs)?;
        f.write_char('[')?;
        write_duration_value(f, &self.range)?;
        f.write_char(']')?;
        write_extended(f, vs)?;
        write_at(f, vs.at)?;
        write_offset(f, vs.offset.as_ref())
    }
}

impl Display for SubqueryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.expr)?;
        write_duration_value(f, &self.range)?;
        f.write_char(':')?;
        match &self.step {
            None | Some(DurationValue::Millis(0)) => {}
            Some(step) => write_duration_value(f, step)?,
        }
        f.write_char(']')?;
        write_at(f, self.at)?;
        write_offset(f, self.offset.as_ref())
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &*self.lhs {
            // `^` binds tighter than a sign, so `+Inf ^ x` would read back as `+(Inf ^ x)`.
            // Prometheus prints `+Inf` here anyway; cairn prints `Inf`, which reads back
            // as the same tree.
            Expr::Number(n) if self.op == BinaryOp::Pow && n.value == f64::INFINITY => {
                f.write_str("Inf")?
            }
            lhs => write!(f, "{lhs}")?,
        }
        write!(f, " {}", self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(vm) = &self.matching {
            write_matching(f, vm)?;
        }
        write!(f, " {}", self.rhs)
    }
}

impl Display for AggregateExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if self.without || !self.grouping.is_empty() {
            f.write_str(if self.without { " without (" } else { " by (" })?;
            for (i, l) in self.grouping.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                // Prometheus quotes grouping labels that are not legacy metric names.
                if is_legacy_metric_name(l) {
                    f.write_str(l)?;
                } else {
                    write_quoted(f, l)?;
                }
            }
            f.write_str(") ")?;
        }
        f.write_char('(')?;
        if let Some(p) = &self.param {
            write!(f, "{p}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.wrapped {
            f.write_char('(')?;
        }
        match (self.op, &self.lhs, &self.rhs) {
            (DurationOp::Step | DurationOp::Range | DurationOp::Start | DurationOp::End, _, _) => {
                write!(f, "{}()", self.op.as_str())?
            }
            (DurationOp::Min | DurationOp::Max, Some(l), Some(r)) => {
                write!(f, "{}({l}, {r})", self.op.as_str())?
            }
            (DurationOp::Sub, None, Some(r)) => write!(f, "-{r}")?,
            (_, None, Some(r)) => write!(f, "{r}")?,
            (op, Some(l), Some(r)) => write!(f, "{l} {} {r}", op.as_str())?,
            // Other operators need operands, so the parser never builds this; print
            // the operator alone rather than fail.
            (op, _, _) => f.write_str(op.as_str())?,
        }
        if self.wrapped {
            f.write_char(')')?;
        }
        Ok(())
    }
}

fn write_joined(f: &mut Formatter<'_>, exprs: &[Expr]) -> fmt::Result {
    for (i, e) in exprs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

/// `name{a="b",c=~"d"}`: matchers sorted by their printed form, the name's own matcher
/// left out.
fn write_selector_core(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut printed: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == METRIC_NAME
                && m.kind == MatchType::Equal
                && m.value == name
                && !m.value.is_empty())
        })
        .map(matcher_string)
        .collect();
    f.write_str(name)?;
    if !printed.is_empty() {
        printed.sort();
        write!(f, "{{{}}}", printed.join(","))?;
    }
    Ok(())
}

/// A matcher as Prometheus prints one: names that are not legacy label names quoted.
pub(crate) fn matcher_string(m: &Matcher) -> String {
    let mut s = String::with_capacity(m.name.len() + m.value.len() + 6);
    if is_legacy_label_name(&m.name) {
        s.push_str(&m.name);
    } else {
        let _ = write_quoted(&mut s, &m.name);
    }
    s.push_str(m.kind.as_str());
    let _ = write_quoted(&mut s, &m.value);
    s
}

fn write_at(f: &mut Formatter<'_>, at: Option<AtModifier>) -> fmt::Result {
    match at {
        None => Ok(()),
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {:.3}", ms as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
    }
}

fn write_extended(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if vs.anchored {
        f.write_str(" anchored")
    } else if vs.smoothed {
        f.write_str(" smoothed")
    } else {
        Ok(())
    }
}

fn write_offset(f: &mut Formatter<'_>, offset: Option<&DurationValue>) -> fmt::Result {
    match offset {
        None | Some(DurationValue::Millis(0)) => Ok(()),
        Some(d) => {
            f.write_str(" offset ")?;
            write_duration_value(f, d)
        }
    }
}

fn write_duration_value(f: &mut Formatter<'_>, d: &DurationValue) -> fmt::Result {
    match d {
        DurationValue::Millis(ms) => write_duration(f, *ms),
        DurationValue::Expr(e) => write!(f, "{e}"),
    }
}

fn write_matching(f: &mut Formatter<'_>, vm: &VectorMatching) -> fmt::Result {
    if vm.on || !vm.matching_labels.is_empty() {
        f.write_str(if vm.on { " on (" } else { " ignoring (" })?;
        write_label_list(f, &vm.matching_labels)?;
        f.write_char(')')?;
        match vm.card {
            Cardinality::ManyToOne => f.write_str(" group_left (")?,
            Cardinality::OneToMany => f.write_str(" group_right (")?,
            _ => return write_fill(f, vm.fill),
        }
        write_label_list(f, &vm.include)?;
        f.write_char(')')?;
    }
    write_fill(f, vm.fill)
}

fn write_fill(f: &mut Formatter<'_>, fill: FillValues) -> fmt::Result {
    match (fill.lhs, fill.rhs) {
        (Some(l), Some(r)) if l.to_bits() == r.to_bits() => {
            f.write_str(" fill(")?;
            write_float(f, l)?;
            f.write_char(')')
        }
        (l, r) => {
            if let Some(l) = l {
                f.write_str(" fill_left(")?;
                write_float(f, l)?;
                f.write_char(')')?;
            }
            if let Some(r) = r {
                f.write_str(" fill_right(")?;
                write_float(f, r)?;
                f.write_char(')')?;
            }
            Ok(())
        }
    }
}

fn write_label_list(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_legacy_label_name(l) {
            f.write_str(l)?;
        } else {
            write_quoted(f, l)?;
        }
    }
    Ok(())
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits that round-trip, never an
/// exponent, `+Inf`/`-Inf`/`NaN` for the special values.
pub(crate) fn write_float(f: &mut impl Write, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("NaN")
    } else if v == f64::INFINITY {
        f.write_str("+Inf")
    } else if v == f64::NEG_INFINITY {
        f.write_str("-Inf")
    } else {
        // Rust's Display for f64 is already shortest round-trip without an exponent.
        write!(f, "{v}")
    }
}

/// Prometheus's duration format (`model.Duration.String`): `0s` for zero; years and
/// weeks only when they divide the duration exactly (so 90 days prints as `90d`, not
/// `12w6d`); a leading `-` for negative durations (offsets). cairn's config-side
/// formatter prints `12w6d`; PromQL output must match Prometheus byte for byte.
pub(crate) fn write_duration(f: &mut impl Write, ms: i64) -> fmt::Result {
    if ms < 0 {
        f.write_char('-')?;
    }
    let mut ms = ms.unsigned_abs();
    if ms == 0 {
        return f.write_str("0s");
    }
    const UNITS: [(&str, u64, bool); 7] = [
        ("y", 365 * 24 * 3600 * 1000, true),
        ("w", 7 * 24 * 3600 * 1000, true),
        ("d", 24 * 3600 * 1000, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, size, exact) in UNITS {
        if exact && !ms.is_multiple_of(size) {
            continue;
        }
        let n = ms / size;
        if n > 0 {
            write!(f, "{n}{unit}")?;
            ms -= n * size;
        }
    }
    Ok(())
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: prints without quotes.
pub(crate) fn is_legacy_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_legacy_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64) -> Box<Expr> {
        Box::new(Expr::Number(NumberLiteral {
            value: v,
            duration: false,
            pos: PosRange::default(),
        }))
    }

    fn sel(name: &str) -> VectorSelector {
        VectorSelector {
            name: Some(name.into()),
            matchers: vec![Matcher::equal(METRIC_NAME, name)],
            offset: None,
            at: None,
            anchored: false,
            smoothed: false,
            pos: PosRange::default(),
        }
    }

    fn vs(name: &str) -> Box<Expr> {
        Box::new(Expr::VectorSelector(sel(name)))
    }

    fn dur(ms: i64) -> String {
        let mut s = String::new();
        write_duration(&mut s, ms).unwrap();
        s
    }

    #[test]
    fn durations_like_prometheus() {
        assert_eq!(dur(0), "0s");
        assert_eq!(dur(5_400_000), "1h30m");
        assert_eq!(dur(90 * 86_400_000), "90d");
        assert_eq!(dur(14 * 86_400_000), "2w");
        assert_eq!(dur(365 * 86_400_000), "1y");
        assert_eq!(dur(1_500), "1s500ms");
        assert_eq!(dur(-300_000), "-5m");
    }

    #[test]
    fn floats_like_go() {
        let p = |v: f64| {
            let mut s = String::new();
            write_float(&mut s, v).unwrap();
            s
        };
        assert_eq!(p(1.0), "1");
        assert_eq!(p(-0.0), "-0");
        assert_eq!(p(1e21), "1000000000000000000000");
        assert_eq!(p(1.5e-7), "0.00000015");
        assert_eq!(p(f64::INFINITY), "+Inf");
        assert_eq!(p(f64::NEG_INFINITY), "-Inf");
        assert_eq!(p(f64::NAN), "NaN");
    }

    #[test]
    fn selectors() {
        let mut s = sel("foo");
        s.matchers
            .insert(0, Matcher::new(MatchType::NotRegex, "b", "x\"y").unwrap());
        s.matchers.insert(0, Matcher::equal("a", "1"));
        s.matchers.push(Matcher::equal("label.name", "v"));
        s.at = Some(AtModifier::Timestamp(1_500));
        s.offset = Some(DurationValue::Millis(-60_000));
        assert_eq!(
            Expr::VectorSelector(s.clone()).to_string(),
            r#"foo{"label.name"="v",a="1",b!~"x\"y"} @ 1.500 offset -1m"#
        );
        let m = MatrixSelector {
            selector: s,
            range: DurationValue::Millis(300_000),
            end: 0,
        };
        assert_eq!(
            Expr::MatrixSelector(m).to_string(),
            r#"foo{"label.name"="v",a="1",b!~"x\"y"}[5m] @ 1.500 offset -1m"#
        );
        // A name given only inside braces prints as a matcher.
        let inner = VectorSelector {
            name: None,
            matchers: vec![Matcher::equal(METRIC_NAME, "my.metric")],
            ..sel("x")
        };
        assert_eq!(inner.to_string(), r#"{__name__="my.metric"}"#);
        let mut anchored = sel("x");
        anchored.anchored = true;
        anchored.at = Some(AtModifier::End);
        assert_eq!(anchored.to_string(), "x @ end() anchored");
    }

    #[test]
    fn operators_aggregations_calls_subqueries() {
        let bin = Expr::Binary(BinaryExpr {
            op: BinaryOp::Gtr,
            lhs: vs("a"),
            rhs: vs("b"),
            return_bool: true,
            matching: Some(VectorMatching {
                card: Cardinality::ManyToOne,
                on: true,
                matching_labels: vec!["job".into(), "x.y".into()],
                include: vec![],
                fill: FillValues {
                    lhs: None,
                    rhs: Some(0.0),
                },
            }),
        });
        assert_eq!(
            bin.to_string(),
            r#"a > bool on (job, "x.y") group_left () fill_right(0) b"#
        );
        let agg = Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Topk,
            expr: vs("a"),
            param: Some(num(5.0)),
            grouping: vec!["job".into(), "a.b".into()],
            without: false,
            pos: PosRange::default(),
        });
        assert_eq!(agg.to_string(), r#"topk by (job, "a.b") (5, a)"#);
        let sum = Expr::Aggregate(AggregateExpr {
            op: AggregateOp::Sum,
            expr: vs("a"),
            param: None,
            grouping: vec![],
            without: true,
            pos: PosRange::default(),
        });
        assert_eq!(sum.to_string(), "sum without () (a)");
        let call = Expr::Call(Call {
            func: "rate".into(),
            args: vec![Expr::MatrixSelector(MatrixSelector {
                selector: sel("x"),
                range: DurationValue::Millis(60_000),
                end: 0,
            })],
            pos: PosRange::default(),
        });
        assert_eq!(call.to_string(), "rate(x[1m])");
        let step = DurationExpr {
            op: DurationOp::Step,
            lhs: None,
            rhs: None,
            wrapped: false,
            pos: PosRange::default(),
        };
        let twice = DurationExpr {
            op: DurationOp::Mul,
            lhs: Some(Box::new(Expr::Duration(step))),
            rhs: Some(num(2.0)),
            wrapped: true,
            pos: PosRange::default(),
        };
        let sq = Expr::Subquery(SubqueryExpr {
            expr: Box::new(call),
            range: DurationValue::Millis(3_600_000),
            step: Some(DurationValue::Expr(Box::new(twice))),
            offset: Some(DurationValue::Millis(86_400_000)),
            at: Some(AtModifier::Start),
            end: 0,
        });
        assert_eq!(
            sq.to_string(),
            "rate(x[1m])[1h:(step() * 2)] @ start() offset 1d"
        );
        let neg = Expr::Unary(UnaryExpr {
            op: UnaryOp::Minus,
            expr: Box::new(Expr::Paren(ParenExpr {
                expr: vs("a"),
                pos: PosRange::default(),
            })),
            start: 0,
        });
        assert_eq!(neg.to_string(), "-(a)");
        let s = Expr::String(StringLiteral {
            value: "a\"\n".into(),
            pos: PosRange::default(),
        });
        assert_eq!(s.to_string(), r#""a\"\n""#);
        let d = Expr::Number(NumberLiteral {
            value: -90.0,
            duration: true,
            pos: PosRange::default(),
        });
        assert_eq!(d.to_string(), "-1m30s");
    }

    #[test]
    fn legacy_names() {
        assert!(is_legacy_label_name("_a1") && !is_legacy_label_name("1a"));
        assert!(!is_legacy_label_name("") && !is_legacy_label_name("a.b"));
        assert!(is_legacy_metric_name("a:b") && !is_legacy_label_name("a:b"));
    }
}
