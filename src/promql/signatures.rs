//! The PromQL function table: every function Prometheus 3.x knows, with its argument
//! types, how many trailing arguments are optional or repeat, its return type, and
//! whether Prometheus gates it behind `--enable-feature=promql-experimental-functions`.
//! The parser checks calls against it; the engine looks functions up by name in it. It
//! holds no evaluation code. Aggregations (`sum`, `topk`, `limitk`, `limit_ratio` ...)
//! are operators, not functions, and live in [`super::ast::AggregateOp`].

use super::ast::ValueType::{self, Matrix, Scalar, String, Vector};

/// How many arguments beyond the fixed ones a function takes. Prometheus's `Variadic`
/// field: `0`, `n > 0`, or `-1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variadic {
    /// Exactly the listed arguments.
    None,
    /// The last listed argument may be left out, or repeated up to this many times in
    /// all (`round(v)` or `round(v, 10)`).
    UpTo(usize),
    /// The last listed argument may be left out or repeated without limit
    /// (`label_join(v, "dst", ",", "a", "b", "c")`).
    Unbounded,
}

/// One function's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    /// Types of the arguments in order; for a variadic function the last one is the type
    /// of every optional or repeated argument.
    pub arg_types: &'static [ValueType],
    pub variadic: Variadic,
    pub return_type: ValueType,
    /// Prometheus only accepts it with experimental functions enabled; cairn accepts it
    /// always and tells the caller through this flag.
    pub experimental: bool,
}

impl Function {
    /// The fewest arguments a call may pass.
    pub fn min_args(&self) -> usize {
        match self.variadic {
            Variadic::None => self.arg_types.len(),
            Variadic::UpTo(_) | Variadic::Unbounded => self.arg_types.len().saturating_sub(1),
        }
    }

    /// The most arguments a call may pass; `None` for no limit.
    pub fn max_args(&self) -> Option<usize> {
        match self.variadic {
            Variadic::None => Some(self.arg_types.len()),
            Variadic::UpTo(n) => Some(self.min_args() + n),
            Variadic::Unbounded => None,
        }
    }

    /// The type argument `i` (0-based) must have, `None` past the last one allowed.
    pub fn arg_type(&self, i: usize) -> Option<ValueType> {
        if let Some(&t) = self.arg_types.get(i) {
            return Some(t);
        }
        match self.max_args() {
            Some(max) if i >= max => None,
            _ => self.arg_types.last().copied(),
        }
    }
}

/// The function called `name` (case-sensitive, as in Prometheus), if there is one.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

const fn f(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: Variadic,
    return_type: ValueType,
    experimental: bool,
) -> Function {
    Function {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// Every function, sorted by name (lookups binary-search it; a test checks the order).
pub static FUNCTIONS: &[Function] = &[
    f("abs", &[Vector], Variadic::None, Vector, false),
    f("absent", &[Vector], Variadic::None, Vector, false),
    f("absent_over_time", &[Matrix], Variadic::None, Vector, false),
    f("acos", &[Vector], Variadic::None, Vector, false),
    f("acosh", &[Vector], Variadic::None, Vector, false),
    f("asin", &[Vector], Variadic::None, Vector, false),
    f("asinh", &[Vector], Variadic::None, Vector, false),
    f("atan", &[Vector], Variadic::None, Vector, false),
    f("atanh", &[Vector], Variadic::None, Vector, false),
    f("avg_over_time", &[Matrix], Variadic::None, Vector, false),
    f("ceil", &[Vector], Variadic::None, Vector, false),
    f("changes", &[Matrix], Variadic::None, Vector, false),
    f(
        "clamp",
        &[Vector, Scalar, Scalar],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "clamp_max",
        &[Vector, Scalar],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "clamp_min",
        &[Vector, Scalar],
        Variadic::None,
        Vector,
        false,
    ),
    f("cos", &[Vector], Variadic::None, Vector, false),
    f("cosh", &[Vector], Variadic::None, Vector, false),
    f("count_over_time", &[Matrix], Variadic::None, Vector, false),
    f("day_of_month", &[Vector], Variadic::UpTo(1), Vector, false),
    f("day_of_week", &[Vector], Variadic::UpTo(1), Vector, false),
    f("day_of_year", &[Vector], Variadic::UpTo(1), Vector, false),
    f("days_in_month", &[Vector], Variadic::UpTo(1), Vector, false),
    f("deg", &[Vector], Variadic::None, Vector, false),
    f("delta", &[Matrix], Variadic::None, Vector, false),
    f("deriv", &[Matrix], Variadic::None, Vector, false),
    f(
        "double_exponential_smoothing",
        &[Matrix, Scalar, Scalar],
        Variadic::None,
        Vector,
        true,
    ),
    f("end", &[], Variadic::None, Scalar, true),
    f("exp", &[Vector], Variadic::None, Vector, false),
    f("first_over_time", &[Matrix], Variadic::None, Vector, true),
    f("floor", &[Vector], Variadic::None, Vector, false),
    f("histogram_avg", &[Vector], Variadic::None, Vector, false),
    f("histogram_count", &[Vector], Variadic::None, Vector, false),
    f(
        "histogram_fraction",
        &[Scalar, Scalar, Vector],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "histogram_quantile",
        &[Scalar, Vector],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "histogram_quantiles",
        &[Vector, String, Scalar, Scalar],
        Variadic::UpTo(9),
        Vector,
        true,
    ),
    f("histogram_stddev", &[Vector], Variadic::None, Vector, false),
    f("histogram_stdvar", &[Vector], Variadic::None, Vector, false),
    f("histogram_sum", &[Vector], Variadic::None, Vector, false),
    f("hour", &[Vector], Variadic::UpTo(1), Vector, false),
    f("idelta", &[Matrix], Variadic::None, Vector, false),
    f("increase", &[Matrix], Variadic::None, Vector, false),
    f("info", &[Vector, Vector], Variadic::UpTo(1), Vector, true),
    f(
        "integral",
        &[Matrix, Scalar],
        Variadic::UpTo(1),
        Vector,
        true,
    ),
    f("irate", &[Matrix], Variadic::None, Vector, false),
    f(
        "label_join",
        &[Vector, String, String, String],
        Variadic::Unbounded,
        Vector,
        false,
    ),
    f(
        "label_replace",
        &[Vector, String, String, String, String],
        Variadic::None,
        Vector,
        false,
    ),
    f("last_over_time", &[Matrix], Variadic::None, Vector, false),
    f("ln", &[Vector], Variadic::None, Vector, false),
    f("log10", &[Vector], Variadic::None, Vector, false),
    f("log2", &[Vector], Variadic::None, Vector, false),
    f("mad_over_time", &[Matrix], Variadic::None, Vector, true),
    // min_of/max_of: scalar min/max, new in Prometheus 3.14 (used by its test suite).
    f("max_of", &[Scalar, Scalar], Variadic::None, Scalar, true),
    f("max_over_time", &[Matrix], Variadic::None, Vector, false),
    f("min_of", &[Scalar, Scalar], Variadic::None, Scalar, true),
    f("min_over_time", &[Matrix], Variadic::None, Vector, false),
    f("minute", &[Vector], Variadic::UpTo(1), Vector, false),
    f("month", &[Vector], Variadic::UpTo(1), Vector, false),
    f("pi", &[], Variadic::None, Scalar, false),
    f(
        "predict_linear",
        &[Matrix, Scalar],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "present_over_time",
        &[Matrix],
        Variadic::None,
        Vector,
        false,
    ),
    f(
        "quantile_over_time",
        &[Scalar, Matrix],
        Variadic::None,
        Vector,
        false,
    ),
    f("rad", &[Vector], Variadic::None, Vector, false),
    f("range", &[], Variadic::None, Scalar, true),
    f("rate", &[Matrix], Variadic::None, Vector, false),
    f("resets", &[Matrix], Variadic::None, Vector, false),
    f("round", &[Vector, Scalar], Variadic::UpTo(1), Vector, false),
    f("scalar", &[Vector], Variadic::None, Scalar, false),
    f("sgn", &[Vector], Variadic::None, Vector, false),
    f("sin", &[Vector], Variadic::None, Vector, false),
    f("sinh", &[Vector], Variadic::None, Vector, false),
    f("sort", &[Vector], Variadic::None, Vector, false),
    f(
        "sort_by_label",
        &[Vector, String],
        Variadic::Unbounded,
        Vector,
        true,
    ),
    f(
        "sort_by_label_desc",
        &[Vector, String],
        Variadic::Unbounded,
        Vector,
        true,
    ),
    f("sort_desc", &[Vector], Variadic::None, Vector, false),
    f("sqrt", &[Vector], Variadic::None, Vector, false),
    f("start", &[], Variadic::None, Scalar, true),
    f("stddev_over_time", &[Matrix], Variadic::None, Vector, false),
    f("stdvar_over_time", &[Matrix], Variadic::None, Vector, false),
    f("step", &[], Variadic::None, Scalar, true),
    f("sum_over_time", &[Matrix], Variadic::None, Vector, false),
    f("tan", &[Vector], Variadic::None, Vector, false),
    f("tanh", &[Vector], Variadic::None, Vector, false),
    f("time", &[], Variadic::None, Scalar, false),
    f("timestamp", &[Vector], Variadic::None, Vector, false),
    f(
        "ts_of_first_over_time",
        &[Matrix],
        Variadic::None,
        Vector,
        true,
    ),
    f(
        "ts_of_last_over_time",
        &[Matrix],
        Variadic::None,
        Vector,
        true,
    ),
    f(
        "ts_of_max_over_time",
        &[Matrix],
        Variadic::None,
        Vector,
        true,
    ),
    f(
        "ts_of_min_over_time",
        &[Matrix],
        Variadic::None,
        Vector,
        true,
    ),
    f("vector", &[Scalar], Variadic::None, Vector, false),
    f("year", &[Vector], Variadic::UpTo(1), Vector, false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        for w in FUNCTIONS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert_eq!(FUNCTIONS.len(), 90);
        for f in FUNCTIONS {
            assert_eq!(function(f.name), Some(f));
        }
        assert_eq!(function("Rate"), None);
        assert_eq!(function("sum"), None);
        assert_eq!(function(""), None);
    }

    #[test]
    fn signatures_match_prometheus() {
        let rate = function("rate").unwrap();
        assert_eq!((rate.arg_types, rate.return_type), (&[Matrix][..], Vector));
        assert!(!rate.experimental);
        let q = function("quantile_over_time").unwrap();
        assert_eq!(q.arg_types, &[Scalar, Matrix]);
        assert_eq!(function("time").unwrap().return_type, Scalar);
        assert_eq!(function("scalar").unwrap().return_type, Scalar);
        assert!(function("mad_over_time").unwrap().experimental);
        assert!(function("sort_by_label_desc").unwrap().experimental);
        assert!(
            function("double_exponential_smoothing")
                .unwrap()
                .experimental
        );
        for name in [
            "pi",
            "deg",
            "rad",
            "histogram_avg",
            "ts_of_last_over_time",
            "info",
        ] {
            assert!(function(name).is_some(), "{name}");
        }
    }

    #[test]
    fn argument_counts() {
        let round = function("round").unwrap();
        assert_eq!((round.min_args(), round.max_args()), (1, Some(2)));
        assert_eq!(round.arg_type(1), Some(Scalar));
        assert_eq!(round.arg_type(2), None);
        let hour = function("hour").unwrap();
        assert_eq!((hour.min_args(), hour.max_args()), (0, Some(1)));
        assert_eq!(hour.arg_type(0), Some(Vector));
        let join = function("label_join").unwrap();
        assert_eq!((join.min_args(), join.max_args()), (3, None));
        assert_eq!(join.arg_type(7), Some(String));
        let clamp = function("clamp").unwrap();
        assert_eq!((clamp.min_args(), clamp.max_args()), (3, Some(3)));
        assert_eq!(clamp.arg_type(3), None);
        let hq = function("histogram_quantiles").unwrap();
        assert_eq!((hq.min_args(), hq.max_args()), (3, Some(12)));
        assert_eq!(function("pi").unwrap().max_args(), Some(0));
    }
}
