//! `/api/v1/parse_query`'s syntax tree as JSON, in the shape Prometheus's UI tree view
//! reads (node `type`s `vectorSelector`, `binaryExpr`, `aggregation`, ...; durations in
//! milliseconds).

use crate::model::MatchType;
use crate::promql::ast::{
    AtModifier, Cardinality, DurationValue, Expr, VectorMatching, VectorSelector,
};
use crate::promql::signatures::{self, Variadic};
use serde_json::{Value, json};

pub fn translate(e: &Expr) -> Value {
    match e {
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": translate(&a.expr),
            "param": a.param.as_deref().map(translate),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Binary(b) => json!({
            "type": "binaryExpr",
            "op": b.op.as_str(),
            "lhs": translate(&b.lhs),
            "rhs": translate(&b.rhs),
            "matching": b.matching.as_ref().map(matching),
            "bool": b.return_bool,
        }),
        Expr::Call(c) => {
            let func = signatures::function(&c.func).map(|f| {
                json!({
                    "name": f.name,
                    "argTypes": f.arg_types.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                    "variadic": match f.variadic {
                        Variadic::None => 0i64,
                        Variadic::UpTo(n) => n as i64,
                        Variadic::Unbounded => -1,
                    },
                    "returnType": value_type(f.return_type),
                })
            });
            json!({
                "type": "call",
                "func": func,
                "args": c.args.iter().map(translate).collect::<Vec<_>>(),
            })
        }
        Expr::MatrixSelector(m) => {
            let mut v = selector(&m.selector, "matrixSelector");
            v["range"] = json!(millis(&m.range));
            v
        }
        Expr::Subquery(s) => json!({
            "type": "subquery",
            "expr": translate(&s.expr),
            "range": millis(&s.range),
            "offset": s.offset.as_ref().map(millis).unwrap_or(0),
            "step": s.step.as_ref().map(millis).unwrap_or(0),
            "timestamp": timestamp(s.at),
            "startOrEnd": start_or_end(s.at),
        }),
        Expr::Number(n) => json!({ "type": "numberLiteral", "val": n.value.to_string() }),
        Expr::Paren(p) => json!({ "type": "parenExpr", "expr": translate(&p.expr) }),
        Expr::String(s) => json!({ "type": "stringLiteral", "val": s.value }),
        Expr::Unary(u) => json!({
            "type": "unaryExpr",
            "op": u.op.as_str(),
            "expr": translate(&u.expr),
        }),
        Expr::VectorSelector(vs) => selector(vs, "vectorSelector"),
        // Prometheus's tree view has no node for duration arithmetic; cairn names it.
        Expr::Duration(d) => json!({
            "type": "durationExpr",
            "op": d.op.as_str(),
            "lhs": d.lhs.as_deref().map(translate),
            "rhs": d.rhs.as_deref().map(translate),
        }),
    }
}

fn selector(vs: &VectorSelector, kind: &str) -> Value {
    let matchers: Vec<Value> = vs
        .matchers
        .iter()
        .map(|m| {
            let t = match m.kind {
                MatchType::Equal => "=",
                MatchType::NotEqual => "!=",
                MatchType::Regex => "=~",
                MatchType::NotRegex => "!~",
            };
            json!({ "name": m.name, "value": m.value, "type": t })
        })
        .collect();
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": vs.offset.as_ref().map(millis).unwrap_or(0),
        "matchers": matchers,
        "timestamp": timestamp(vs.at),
        "startOrEnd": start_or_end(vs.at),
        "anchored": vs.anchored,
        "smoothed": vs.smoothed,
    })
}

fn matching(m: &VectorMatching) -> Value {
    let card = match m.card {
        Cardinality::OneToOne => "one-to-one",
        Cardinality::ManyToOne => "many-to-one",
        Cardinality::OneToMany => "one-to-many",
        Cardinality::ManyToMany => "many-to-many",
    };
    json!({
        "card": card,
        "labels": m.matching_labels,
        "on": m.on,
        "include": m.include,
        "fillValues": { "lhs": m.fill.lhs, "rhs": m.fill.rhs },
    })
}

fn value_type(t: crate::promql::ast::ValueType) -> &'static str {
    use crate::promql::ast::ValueType::*;
    match t {
        Scalar => "scalar",
        String => "string",
        Vector => "vector",
        Matrix => "matrix",
    }
}

/// A literal duration in milliseconds; expression durations (evaluated per query) as 0.
fn millis(d: &DurationValue) -> i64 {
    match d {
        DurationValue::Millis(ms) => *ms,
        DurationValue::Expr(_) => 0,
    }
}

fn timestamp(at: Option<AtModifier>) -> Value {
    match at {
        Some(AtModifier::Timestamp(t)) => json!(t),
        _ => Value::Null,
    }
}

fn start_or_end(at: Option<AtModifier>) -> Value {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse_expr;

    #[test]
    fn shapes_like_prometheus() {
        let e = parse_expr(r#"sum by (job) (rate(x{a=~"b"}[5m] offset 1m)) > bool 1"#).unwrap();
        let v = translate(&e);
        assert_eq!(v["type"], "binaryExpr");
        assert_eq!(v["bool"], true);
        assert_eq!(v["lhs"]["type"], "aggregation");
        assert_eq!(v["lhs"]["grouping"], json!(["job"]));
        let call = &v["lhs"]["expr"];
        assert_eq!(call["func"]["name"], "rate");
        assert_eq!(call["func"]["argTypes"], json!(["matrix"]));
        let m = &call["args"][0];
        assert_eq!(m["type"], "matrixSelector");
        assert_eq!(m["range"], 300_000);
        assert_eq!(m["offset"], 60_000);
        assert_eq!(
            m["matchers"][0],
            json!({"name": "a", "value": "b", "type": "=~"})
        );
        assert_eq!(v["rhs"], json!({"type": "numberLiteral", "val": "1"}));
    }
}
