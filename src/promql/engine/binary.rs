//! Binary operators: arithmetic, comparisons (filtering, or 0/1 with `bool`) and the set
//! operators `and`, `or`, `unless`, between scalars and instant vectors. Two vectors pair
//! up by their matching signature (`on(...)`/`ignoring(...)`, the name always ignored
//! by `ignoring`), one-to-one or, with `group_left`/`group_right`, many-to-one.
//!
//! Arithmetic and `bool` comparisons drop the metric name at once (Prometheus 3.x
//! without delayed name removal); filtering comparisons and set operators keep it.
//! Signatures and output label sets are computed once per series (pair), not per step.

use std::collections::{HashMap, HashSet};

use super::EvalError;
use super::eval::{self, DROP_NAME, Eval, Output, Query, Series, Steps, merge_series};
use crate::model::{Labels, METRIC_NAME, Sample};
use crate::promql::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};

pub(super) fn eval_binary(q: &mut Query<'_>, b: &BinaryExpr) -> Result<Eval, EvalError> {
    let lhs = eval::eval(q, &b.lhs)?;
    let rhs = eval::eval(q, &b.rhs)?;
    let op = b.op;
    match (lhs, rhs) {
        (Eval::Scalar(l), Eval::Scalar(r)) => Ok(Eval::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| {
                    let (v, keep) = apply(op, l, r);
                    if op.is_comparison() {
                        keep as u8 as f64
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Eval::Vector(v), Eval::Scalar(s)) => vector_scalar(q, v, &s, b, false),
        (Eval::Scalar(s), Eval::Vector(v)) => vector_scalar(q, v, &s, b, true),
        (Eval::Vector(l), Eval::Vector(r)) => {
            let default = VectorMatching {
                card: if op.is_set_operator() {
                    Cardinality::ManyToMany
                } else {
                    Cardinality::OneToOne
                },
                on: false,
                matching_labels: Vec::new(),
                include: Vec::new(),
                fill: Default::default(),
            };
            let m = b.matching.as_ref().unwrap_or(&default);
            if m.fill.lhs.is_some() || m.fill.rhs.is_some() {
                return Err(EvalError::Unsupported("fill modifiers"));
            }
            if op.is_set_operator() {
                set_op(q, op, l, r, m).map(Eval::Vector)
            } else {
                vector_vector(q, b, l, r, m).map(Eval::Vector)
            }
        }
        _ => Err(EvalError::Execution(format!(
            "binary operator \"{}\" is not defined on these operand types",
            op.as_str()
        ))),
    }
}

/// The value of `l op r`, and for comparisons whether it holds (the value is then `l`).
pub(super) fn apply(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eql => (l, l == r),
        BinaryOp::Neq => (l, l != r),
        BinaryOp::Gtr => (l, l > r),
        BinaryOp::Lss => (l, l < r),
        BinaryOp::Gte => (l, l >= r),
        BinaryOp::Lte => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (l, true),
    }
}

fn drops_name(op: BinaryOp, return_bool: bool) -> bool {
    return_bool || !(op.is_comparison() || op.is_set_operator())
}

fn vector_scalar(
    q: &mut Query<'_>,
    series: Vec<Series>,
    scalar: &[f64],
    b: &BinaryExpr,
    scalar_on_left: bool,
) -> Result<Eval, EvalError> {
    let drop = drops_name(b.op, b.return_bool);
    let mut out = Vec::with_capacity(series.len());
    for (labels, mut points) in series {
        points.retain_mut(|p| {
            let s = scalar[q.step_index(p.t)];
            let (l, r) = if scalar_on_left { (s, p.v) } else { (p.v, s) };
            let (v, keep) = apply(b.op, l, r);
            if b.return_bool {
                p.v = keep as u8 as f64;
                return true;
            }
            if !b.op.is_comparison() {
                p.v = v;
            }
            // A filtering comparison keeps the vector's value, on either side.
            keep
        });
        if !points.is_empty() {
            let labels = if drop {
                eval::drop_name(&labels, q.delayed_name_removal)
            } else {
                labels
            };
            out.push((labels, points));
        }
    }
    q.check_deadline()?;
    Ok(Eval::Vector(merge_series(out)?))
}

/// The matching signature of a label set: the `on` labels, or all but the `ignoring`
/// ones and the name.
pub(super) fn signature(labels: &Labels, on: bool, names: &[String]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for l in labels {
        let listed = names.contains(&l.name);
        let take = if on {
            listed
        } else {
            !listed && l.name != METRIC_NAME && l.name != DROP_NAME
        };
        if take {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
    }
    h.digest()
}

/// The labels a signature is made of, for error messages.
fn match_labels(labels: &Labels, on: bool, names: &[String]) -> Labels {
    let mut b = labels.builder();
    b.retain(|l| {
        let listed = names.contains(&l.name);
        if on {
            listed
        } else {
            !listed && l.name != METRIC_NAME && l.name != DROP_NAME
        }
    });
    b.into_labels()
}

/// Prometheus's `Labels.String()`: `{a="1", b="2"}`, the name as a plain label.
pub(super) fn labels_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, l) in l.iter().filter(|l| l.name != DROP_NAME).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&l.name);
        s.push('=');
        s.push_str(&format!("{:?}", l.value));
    }
    s.push('}');
    s
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    b: &BinaryExpr,
    m: &VectorMatching,
    delayed: bool,
) -> Labels {
    let mut lb = many.builder();
    if drops_name(b.op, b.return_bool) {
        if delayed {
            lb.set(DROP_NAME, "1");
        } else {
            lb.del(METRIC_NAME);
        }
    }
    if m.card == Cardinality::OneToOne {
        if m.on {
            lb.retain(|l| l.name == DROP_NAME || m.matching_labels.contains(&l.name));
        } else {
            lb.retain(|l| !m.matching_labels.contains(&l.name));
        }
    }
    for name in &m.include {
        match one.get(name) {
            Some(v) => lb.set(name.clone(), v.to_string()),
            None => lb.del(name),
        };
    }
    lb.into_labels()
}

fn vector_vector(
    q: &mut Query<'_>,
    b: &BinaryExpr,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    m: &VectorMatching,
) -> Result<Vec<Series>, EvalError> {
    let swapped = m.card == Cardinality::OneToMany;
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let sig = |s: &[Series]| -> Vec<u64> {
        s.iter()
            .map(|(l, _)| signature(l, m.on, &m.matching_labels))
            .collect()
    };
    let (many_sig, one_sig) = (sig(&many), sig(&one));
    let (mut many_steps, mut one_steps) = (Steps::new(many.len()), Steps::new(one.len()));
    let (mut mv, mut ov) = (Vec::new(), Vec::new());
    let mut one_by_sig: HashMap<u64, (usize, f64)> = HashMap::new();
    let mut matched: HashSet<u64> = HashSet::new();
    let mut inserted: HashSet<(u64, usize)> = HashSet::new();
    let mut out: Output<(usize, usize)> = Output::new();
    let delayed = q.delayed_name_removal;
    for t in q.times() {
        one_steps.at(&one, t, &mut ov);
        many_steps.at(&many, t, &mut mv);
        if ov.is_empty() || mv.is_empty() {
            continue;
        }
        one_by_sig.clear();
        for &(i, v) in &ov {
            if let Some((prev, _)) = one_by_sig.insert(one_sig[i], (i, v)) {
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the \
                     operation: [{}, {}];many-to-many matching not allowed: matching labels \
                     must be unique on one side",
                    labels_string(&match_labels(&one[i].0, m.on, &m.matching_labels)),
                    if swapped { "left" } else { "right" },
                    labels_string(&one[prev].0),
                    labels_string(&one[i].0),
                )));
            }
        }
        matched.clear();
        inserted.clear();
        for &(mi, mval) in &mv {
            let s = many_sig[mi];
            let Some(&(oi, oval)) = one_by_sig.get(&s) else {
                continue;
            };
            // Checked before a comparison filters: an ambiguous match is an error even
            // when the filter would drop every candidate, as in Prometheus 3.x.
            if m.card == Cardinality::OneToOne && !matched.insert(s) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit \
                     (group_left/group_right)"
                        .into(),
                ));
            }
            let (l, r) = if swapped { (oval, mval) } else { (mval, oval) };
            let (mut v, keep) = apply(b.op, l, r);
            if b.return_bool {
                v = keep as u8 as f64;
            } else if !keep {
                continue;
            }
            let slot = out.slot((mi, oi), || {
                result_labels(&many[mi].0, &one[oi].0, b, m, delayed)
            });
            if m.card != Cardinality::OneToOne && !inserted.insert((s, slot)) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            out.push(slot, Sample { t, v })?;
        }
        q.check_deadline()?;
    }
    Ok(out.into_series())
}

fn set_op(
    q: &mut Query<'_>,
    op: BinaryOp,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    m: &VectorMatching,
) -> Result<Vec<Series>, EvalError> {
    let sig = |s: &[Series]| -> Vec<u64> {
        s.iter()
            .map(|(l, _)| signature(l, m.on, &m.matching_labels))
            .collect()
    };
    let (lsig, rsig) = (sig(&lhs), sig(&rhs));
    let (mut ls, mut rs) = (Steps::new(lhs.len()), Steps::new(rhs.len()));
    let (mut lv, mut rv) = (Vec::new(), Vec::new());
    let mut sigs: HashSet<u64> = HashSet::new();
    // Keys: (0, lhs index) or (1, rhs index); labels pass through unchanged.
    let mut out: Output<(u8, usize)> = Output::new();
    for t in q.times() {
        ls.at(&lhs, t, &mut lv);
        rs.at(&rhs, t, &mut rv);
        sigs.clear();
        match op {
            BinaryOp::And | BinaryOp::Unless => {
                sigs.extend(rv.iter().map(|&(i, _)| rsig[i]));
                let want = op == BinaryOp::And;
                for &(i, v) in &lv {
                    if sigs.contains(&lsig[i]) == want {
                        let slot = out.slot((0, i), || lhs[i].0.clone());
                        out.push(slot, Sample { t, v })?;
                    }
                }
            }
            _ => {
                for &(i, v) in &lv {
                    sigs.insert(lsig[i]);
                    let slot = out.slot((0, i), || lhs[i].0.clone());
                    out.push(slot, Sample { t, v })?;
                }
                for &(i, v) in &rv {
                    if !sigs.contains(&rsig[i]) {
                        let slot = out.slot((1, i), || rhs[i].0.clone());
                        out.push(slot, Sample { t, v })?;
                    }
                }
            }
        }
    }
    q.check_deadline()?;
    Ok(out.into_series())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::promql::ast::{BinaryOp, Cardinality};

    fn data() -> MemStorage {
        storage(&[
            (&[("__name__", "a"), ("job", "x"), ("i", "1")], &[(0, 1.0)]),
            (&[("__name__", "a"), ("job", "x"), ("i", "2")], &[(0, 2.0)]),
            (&[("__name__", "b"), ("job", "x")], &[(0, 10.0)]),
        ])
    }

    #[test]
    fn arithmetic_drops_name_comparison_keeps_it() {
        let st = data();
        let e = bin(BinaryOp::Mul, p("a"), num(2.0));
        let v = vector(&eval_instant(&st, &e, 0).unwrap());
        assert_eq!(v[0], (labels(&[("i", "1"), ("job", "x")]), 2.0));
        let e = bin(BinaryOp::Gtr, p("a"), num(1.0));
        let v = vector(&eval_instant(&st, &e, 0).unwrap());
        assert_eq!(
            v,
            [(labels(&[("__name__", "a"), ("i", "2"), ("job", "x")]), 2.0)]
        );
        let e = with_bool(bin(BinaryOp::Gtr, num(1.5), p("a")));
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [1.0, 0.0]);
    }

    #[test]
    fn many_to_one_needs_group_left() {
        let st = data();
        let on = |card| bin_m(BinaryOp::Div, p("a"), p("b"), card, true, &["job"], &[]);
        let err = eval_instant(&st, &on(Cardinality::OneToOne), 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiple matches for labels: many-to-one matching must be explicit \
             (group_left/group_right)"
        );
        let v = vector(&eval_instant(&st, &on(Cardinality::ManyToOne), 0).unwrap());
        assert_eq!(v[1], (labels(&[("i", "2"), ("job", "x")]), 0.2));
        // The "one" side may not have duplicates.
        let e = bin_m(
            BinaryOp::Div,
            p("b"),
            p("a"),
            Cardinality::ManyToOne,
            true,
            &["job"],
            &[],
        );
        let err = eval_instant(&st, &e, 0).unwrap_err().to_string();
        assert!(
            err.starts_with(r#"found duplicate series for the match group {job="x"} on the right"#),
            "{err}"
        );
    }

    #[test]
    fn set_operators_match_on_labels_without_name() {
        let st = data();
        let e = bin_m(
            BinaryOp::And,
            p("a"),
            p("b"),
            Cardinality::ManyToMany,
            true,
            &["job"],
            &[],
        );
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [1.0, 2.0]);
        let e = bin_m(
            BinaryOp::Unless,
            p("a"),
            p("b"),
            Cardinality::ManyToMany,
            true,
            &["job"],
            &[],
        );
        assert!(values(&eval_instant(&st, &e, 0).unwrap()).is_empty());
        let e = bin(BinaryOp::Or, p(r#"a{i="1"}"#), p("b"));
        assert_eq!(values(&eval_instant(&st, &e, 0).unwrap()), [1.0, 10.0]);
    }
}
