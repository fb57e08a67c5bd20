//! Functions that work on labels or order: `label_replace`, `label_join`, `sort`,
//! `sort_desc`, `sort_by_label`, `sort_by_label_desc`. They keep the metric name
//! (unless they set `__name__` themselves). Sorting only means something in an instant
//! query, so a range query leaves the order alone, as Prometheus does.

use std::cmp::Ordering;

use super::super::EvalError;
use super::super::eval::{self, Eval, Query, Series, merge_series};
use super::arg;
use crate::model::{Labels, METRIC_NAME};
use crate::promql::ast::Call;

/// Any non-empty UTF-8 name is a valid label name in Prometheus 3.x.
pub(in crate::promql::engine) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
}

fn string_arg(q: &mut Query<'_>, c: &Call, i: usize) -> Result<String, EvalError> {
    match eval::eval(q, arg(c, i)?)? {
        Eval::String(s) => Ok(s),
        _ => Err(EvalError::Execution(format!(
            "expected a string as argument {} of {}",
            i + 1,
            c.func
        ))),
    }
}

pub(in crate::promql::engine) fn eval(q: &mut Query<'_>, c: &Call) -> Result<Eval, EvalError> {
    let v = eval::eval_vector(q, arg(c, 0)?)?;
    match c.func.as_str() {
        "label_replace" => {
            let dst = string_arg(q, c, 1)?;
            let repl = string_arg(q, c, 2)?;
            let src = string_arg(q, c, 3)?;
            let re_src = string_arg(q, c, 4)?;
            let re = regex::Regex::new(&format!("^(?s:{re_src})$")).map_err(|_| {
                EvalError::Execution(format!(
                    "invalid regular expression in label_replace(): {re_src}"
                ))
            })?;
            if !valid_label_name(&dst) {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let out = v
                .into_iter()
                .map(|(l, p)| {
                    let value = l.get(&src).unwrap_or("");
                    // No match, no change: a name to drop stays marked, as in Prometheus.
                    let Some(caps) = re.captures(value) else {
                        return (l, p);
                    };
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    let mut b = l.builder();
                    b.set(dst.clone(), res);
                    (keep_name_if(b.into_labels(), &dst), p)
                })
                .collect();
            Ok(Eval::Vector(merge_series(out)?))
        }
        "label_join" => {
            let dst = string_arg(q, c, 1)?;
            let sep = string_arg(q, c, 2)?;
            let mut srcs = Vec::new();
            for i in 3..c.args.len() {
                srcs.push(string_arg(q, c, i)?);
            }
            if !valid_label_name(&dst) {
                return Err(EvalError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let out = v
                .into_iter()
                .map(|(l, p)| {
                    let joined = srcs
                        .iter()
                        .map(|s| l.get(s).unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(&sep);
                    let mut b = l.builder();
                    b.set(dst.clone(), joined);
                    (keep_name_if(b.into_labels(), &dst), p)
                })
                .collect();
            Ok(Eval::Vector(merge_series(out)?))
        }
        name => {
            let mut names = Vec::new();
            for i in 1..c.args.len() {
                names.push(string_arg(q, c, i)?);
            }
            if q.steps != 1 {
                q.warn(format!(
                    "PromQL warning: sort is ineffective for range queries since results are \
                     always ordered by labels ({})",
                    super::position(c.pos)
                ));
                return Ok(Eval::Vector(v));
            }
            Ok(Eval::Vector(sort(v, name, &names)))
        }
    }
}

/// Writing `__name__` with `label_replace`/`label_join` keeps the name a function
/// before meant to drop (delayed name removal): the mark goes, as Prometheus clears
/// `DropName` there.
fn keep_name_if(l: Labels, dst: &str) -> Labels {
    if dst != METRIC_NAME || l.get(eval::DROP_NAME).is_none() {
        return l;
    }
    let mut b = l.builder();
    b.del(eval::DROP_NAME);
    b.into_labels()
}

fn first_value(s: &Series) -> f64 {
    s.1.first().map_or(f64::NAN, |p| p.v)
}

fn sort(mut v: Vec<Series>, func: &str, names: &[String]) -> Vec<Series> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    match func {
        "sort" | "sort_desc" => {
            let desc = func == "sort_desc";
            v.sort_by(|a, b| {
                let (x, y) = (first_value(a), first_value(b));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ if desc => y.total_cmp(&x),
                    _ => x.total_cmp(&y),
                }
            });
        }
        _ => {
            let desc = func == "sort_by_label_desc";
            v.sort_by(|a, b| {
                let o = by_labels(&a.0, &b.0, names);
                if desc { o.reverse() } else { o }
            });
        }
    }
    v
}

fn by_labels(a: &Labels, b: &Labels, names: &[String]) -> Ordering {
    for n in names {
        let o = natural_cmp(a.get(n).unwrap_or(""), b.get(n).unwrap_or(""));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.cmp(b)
}

/// Natural order: runs of digits compare by number, everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&a[si..i]);
            let nb = trim_zeros(&b[sj..j]);
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            let o = a[i].cmp(&b[j]);
            if o != Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("10", "9"), Ordering::Greater);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }
}
