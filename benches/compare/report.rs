//! The comparison as people read it: one table of absolute figures per system, the
//! ratios cairn/Prometheus and cairn/VictoriaMetrics, the goal each row tracks and whether
//! this run meets it; the per-query detail below it; closing notes that say by how much
//! cairn is short where it is. The same content is written as JSON.

use crate::queries::Outcome;
use serde::Serialize;

/// What a row's goal asks of cairn's figure.
#[derive(Clone, Copy, Debug, Serialize)]
pub enum Goal {
    /// cairn's figure at most this many times Prometheus's.
    AtMostTimesPrometheus(f64),
    /// cairn's figure at most this many times VictoriaMetrics's.
    AtMostTimesVictoriaMetrics(f64),
    /// cairn's figure at least this much.
    AtLeast(f64),
    /// cairn's figure equal to this (a count out of a total).
    Equal(f64),
}

impl Goal {
    fn text(self) -> String {
        match self {
            Goal::AtMostTimesPrometheus(x) => format!("<= {x}x P"),
            Goal::AtMostTimesVictoriaMetrics(x) => format!("<= {x}x VM"),
            Goal::AtLeast(x) => format!(">= {}", human(x)),
            Goal::Equal(x) => format!("all {x:.0}"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub name: String,
    /// cairn, Prometheus, VictoriaMetrics.
    pub values: [Option<f64>; 3],
    pub goal: Option<Goal>,
    /// Whether cairn meets the goal; None without a goal or a figure.
    pub met: Option<bool>,
    /// cairn's figure over the goal's bound (above 1: short of it, for "at most" goals).
    pub versus_goal: Option<f64>,
}

impl Row {
    pub fn new(name: &str, values: [Option<f64>; 3], goal: Option<Goal>) -> Row {
        let ok = |v: Option<f64>| v.filter(|v| v.is_finite());
        let [c, p, v] = values.map(ok);
        let bound = goal.and_then(|g| match g {
            Goal::AtMostTimesPrometheus(x) => p.map(|p| p * x),
            Goal::AtMostTimesVictoriaMetrics(x) => v.map(|v| v * x),
            Goal::AtLeast(x) | Goal::Equal(x) => Some(x),
        });
        let (met, versus_goal) = match (goal, c, bound) {
            (Some(g), Some(c), Some(b)) => {
                let met = match g {
                    Goal::AtLeast(_) => c >= b,
                    Goal::Equal(_) => c == b,
                    _ => c <= b,
                };
                (Some(met), (b != 0.0).then_some(c / b))
            }
            _ => (None, None),
        };
        Row {
            name: name.into(),
            values,
            goal,
            met,
            versus_goal,
        }
    }

    /// A row of counts (answers equal) has no meaningful ratio.
    fn is_count(&self) -> bool {
        matches!(self.goal, Some(Goal::Equal(_)))
    }

    fn ratio(&self, other: usize) -> Option<f64> {
        if self.is_count() {
            return None;
        }
        let c = self.values[0]?;
        let o = self.values[other]?;
        (o != 0.0 && c.is_finite() && o.is_finite()).then_some(c / o)
    }
}

/// A number the way the table prints it: three significant digits, thousands as k/M.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), human)
}

/// The summary table, as text.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| {:50} | {:>8} | {:>8} | {:>8} | {:>7} | {:>7} | {:>10} | {:4} |\n",
        "", "cairn", "Prom", "VM", "c/Prom", "c/VM", "goal", "met"
    ));
    out.push_str(&format!(
        "|{}|{}:|{}:|{}:|{}:|{}:|{}:|{}|\n",
        "-".repeat(52),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(11),
        "-".repeat(6)
    ));
    for r in rows {
        let ratio = |k| r.ratio(k).map_or_else(|| "-".into(), |x| format!("{x:.2}"));
        let value = |v: Option<f64>| match v {
            Some(v) if r.is_count() => format!("{v:.0}"),
            v => cell(v),
        };
        out.push_str(&format!(
            "| {:50} | {:>8} | {:>8} | {:>8} | {:>7} | {:>7} | {:>10} | {:4} |\n",
            r.name,
            value(r.values[0]),
            value(r.values[1]),
            value(r.values[2]),
            ratio(1),
            ratio(2),
            r.goal.map_or_else(String::new, Goal::text),
            match r.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }
        ));
    }
    out
}

/// The per-query detail, as text.
pub fn query_table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| {:32} | {:>9} | {:>9} | {:>9} | {:>8} | {:>7} | {:>7} | {:3} | {:3} | {:3} |\n",
        "query (median ms)", "cairn", "Prom", "VM", "points", "c/Prom", "c/VM", "c=P", "c=V", "P=V"
    ));
    out.push_str(&format!(
        "|{}|{}:|{}:|{}:|{}:|{}:|{}:|{}|{}|{}|\n",
        "-".repeat(34),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(9),
        "-".repeat(8),
        "-".repeat(8),
        "-".repeat(5),
        "-".repeat(5),
        "-".repeat(5)
    ));
    let yes = |b: bool| if b { "yes" } else { "no" };
    for o in outcomes {
        let m = o.median_ms;
        let ratio = |k: usize| match (m[0], m[k]) {
            (Some(c), Some(x)) if x > 0.0 => format!("{:.2}", c / x),
            _ => "-".into(),
        };
        out.push_str(&format!(
            "| {:32} | {:>9} | {:>9} | {:>9} | {:>8} | {:>7} | {:>7} | {:3} | {:3} | {:3} |\n",
            o.case.name,
            cell(m[0]),
            cell(m[1]),
            cell(m[2]),
            o.points,
            ratio(1),
            ratio(2),
            yes(o.cairn_equals_prometheus),
            yes(o.cairn_equals_victoriametrics),
            yes(o.prometheus_equals_victoriametrics)
        ));
    }
    out
}

/// Geometric mean of each system's medians over the cases every system answered.
pub fn latency_geomeans(outcomes: &[Outcome]) -> [Option<f64>; 3] {
    let answered: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.median_ms.iter().all(|m| m.is_some_and(|m| m > 0.0)))
        .collect();
    if answered.is_empty() {
        return [None; 3];
    }
    [0, 1, 2].map(|k| {
        let logs: f64 = answered
            .iter()
            .filter_map(|o| o.median_ms[k])
            .map(f64::ln)
            .sum();
        Some((logs / answered.len() as f64).exp())
    })
}

/// One line per row whose goal this run misses: by how much.
pub fn shortfalls(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.met == Some(false))
        .filter_map(|r| {
            let x = r.versus_goal?;
            let goal = r.goal?;
            Some(match goal {
                Goal::AtLeast(_) => format!(
                    "{}: {} is {:.0}% of the goal {}; it needs {:.1}x more",
                    r.name,
                    cell(r.values[0]),
                    x * 100.0,
                    goal.text(),
                    1.0 / x
                ),
                Goal::Equal(x) => format!(
                    "{}: {:.0} of {x:.0} (the differences are listed below)",
                    r.name,
                    r.values[0].unwrap_or(0.0)
                ),
                _ => format!(
                    "{}: {:.2}x the goal's bound ({}); it needs {:.0}% less",
                    r.name,
                    x,
                    goal.text(),
                    (1.0 - 1.0 / x) * 100.0
                ),
            })
        })
        .collect()
}

// Self-checks, run by `cargo test --all-targets` (see main.rs).
pub fn self_check() -> anyhow::Result<usize> {
    let r = Row::new(
        "cpu",
        [Some(1.0), Some(2.0), Some(3.0)],
        Some(Goal::AtMostTimesPrometheus(0.4)),
    );
    anyhow::ensure!(r.met == Some(false), "1.0 > 0.4 x 2.0");
    anyhow::ensure!(
        r.versus_goal.is_some_and(|x| (x - 1.25).abs() < 1e-12),
        "1.25x"
    );
    anyhow::ensure!(
        r.ratio(2).is_some_and(|x| (x - 1.0 / 3.0).abs() < 1e-12),
        "ratio"
    );
    let r = Row::new("rw", [Some(3e6), None, None], Some(Goal::AtLeast(2e6)));
    anyhow::ensure!(r.met == Some(true), "3M >= 2M");
    let r = Row::new("x", [None, Some(1.0), None], Some(Goal::AtLeast(2e6)));
    anyhow::ensure!(r.met.is_none(), "no figure, no verdict");
    anyhow::ensure!(
        human(2_345_678.0) == "2.35M" && human(0.01234) == "0.012",
        "human"
    );
    let short = shortfalls(&[Row::new(
        "cpu",
        [Some(1.0), Some(2.0), None],
        Some(Goal::AtMostTimesPrometheus(0.4)),
    )]);
    anyhow::ensure!(
        short.len() == 1 && short[0].contains("20% less"),
        "{short:?}"
    );
    Ok(5)
}
