//! Functions over range vectors, evaluated on each step's window `(r - range, r]`:
//! the rate family (`rate`, `increase`, `delta` with Prometheus's extrapolation;
//! `irate`, `idelta`), `changes`, `resets`, `deriv`, `predict_linear`,
//! `double_exponential_smoothing`, and the `*_over_time` family; over downsampled data,
//! the functions `downsample::plan_for` names read the aggregate that keeps them right.

use super::super::EvalError;
use super::super::eval::{self, Eval, Query, merge_series};
use super::super::parallel;
use super::super::window::{self, Shape, Windows};
use super::math::{kahan_inc, linear_regression, quantile};
use super::{arg, format_float};
use crate::model::{METRIC_NAME, Sample};
use crate::promql::ast::Call;
use crate::promql::engine::downsample::Plan;
use crate::storage::Aggregate;

/// What a window function sees besides the samples.
struct Ctx<'a> {
    /// The step time (ms).
    t: i64,
    /// The window, `(start, end]` (ms).
    bounds: (i64, i64),
    /// The window length (ms).
    range: i64,
    /// Per-step scalar arguments, at this step.
    args: &'a [f64],
    /// Where the window starts in the series' samples, and the positions in them of
    /// every counter reset (a value below the one before), for the functions that look
    /// for resets: found once per series instead of once per window.
    offset: usize,
    resets: &'a [usize],
}

impl Ctx<'_> {
    /// The resets inside a window of `len` samples: positions after its first sample.
    fn resets_in(&self, len: usize) -> &[usize] {
        let lo = self.resets.partition_point(|&i| i <= self.offset);
        let hi = self.resets.partition_point(|&i| i < self.offset + len);
        &self.resets[lo..hi.max(lo)]
    }
}

type WindowFn = fn(&[Sample], &Ctx<'_>) -> Option<f64>;

pub(in crate::promql::engine) fn eval(q: &mut Query<'_>, c: &Call) -> Result<Eval, EvalError> {
    let name = c.func.as_str();
    // (function, index of the range argument, keeps the name)
    let (f, range_arg, keeps_name): (WindowFn, usize, bool) = match name {
        "rate" => (|s, c| extrapolated(s, c, true, true), 0, false),
        "increase" => (|s, c| extrapolated(s, c, true, false), 0, false),
        "delta" => (|s, c| extrapolated(s, c, false, false), 0, false),
        "irate" => (|s, _| instant_value(s, true), 0, false),
        "idelta" => (|s, _| instant_value(s, false), 0, false),
        "changes" => (changes, 0, false),
        "resets" => (|s, c| Some(c.resets_in(s.len()).len() as f64), 0, false),
        "deriv" => (
            |s, _| (s.len() >= 2).then(|| linear_regression(s, s[0].t).0),
            0,
            false,
        ),
        "predict_linear" => (
            |s, c| {
                (s.len() >= 2).then(|| {
                    let (slope, icpt) = linear_regression(s, c.t);
                    slope * c.args[0] + icpt
                })
            },
            0,
            false,
        ),
        "double_exponential_smoothing" => (double_exponential_smoothing, 0, false),
        "avg_over_time" => (avg_over_time, 0, false),
        "sum_over_time" => (sum_over_time, 0, false),
        "count_over_time" => (|s, _| Some(s.len() as f64), 0, false),
        "min_over_time" => (|s, _| Some(extreme(s, |cur, best| cur < best)), 0, false),
        "max_over_time" => (|s, _| Some(extreme(s, |cur, best| cur > best)), 0, false),
        "stddev_over_time" => (|s, _| Some(variance(s).sqrt()), 0, false),
        "stdvar_over_time" => (|s, _| Some(variance(s)), 0, false),
        "quantile_over_time" => (
            |s, c| {
                let mut v: Vec<f64> = s.iter().map(|x| x.v).collect();
                Some(quantile(c.args[0], &mut v))
            },
            1,
            false,
        ),
        "mad_over_time" => (
            |s, _| {
                if s.iter().any(|x| x.v.is_nan()) {
                    return Some(f64::NAN);
                }
                let mut v: Vec<f64> = s.iter().map(|x| x.v).collect();
                let median = quantile(0.5, &mut v);
                let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
                Some(quantile(0.5, &mut dev))
            },
            0,
            false,
        ),
        "last_over_time" => (|s, _| s.last().map(|x| x.v), 0, true),
        "first_over_time" => (|s, _| s.first().map(|x| x.v), 0, true),
        "present_over_time" => (|_, _| Some(1.0), 0, false),
        "ts_of_last_over_time" => (|s, _| s.last().map(|x| secs(x.t)), 0, false),
        "ts_of_first_over_time" => (|s, _| s.first().map(|x| secs(x.t)), 0, false),
        "ts_of_min_over_time" => (|s, _| ts_of_extreme(s, |cur, best| cur <= best), 0, false),
        "ts_of_max_over_time" => (|s, _| ts_of_extreme(s, |cur, best| cur >= best), 0, false),
        _ => {
            return Err(EvalError::Execution(format!(
                "unknown function {:?}",
                c.func
            )));
        }
    };
    // Scalar arguments, evaluated per step.
    let mut scalars: Vec<Vec<f64>> = Vec::new();
    for (i, a) in c.args.iter().enumerate() {
        if i != range_arg {
            scalars.push(eval::eval_scalar(q, a)?);
        }
    }
    if name == "quantile_over_time" {
        for &p in &scalars[0] {
            if !(0.0..=1.0).contains(&p) {
                q.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {} ({})",
                    format_float(p),
                    super::position(c.args[0].pos_range())
                ));
            }
        }
    }
    if name == "double_exponential_smoothing" {
        check_factors(&scalars)?;
    }
    let counter_check = matches!(name, "rate" | "increase");
    let find_resets = matches!(name, "rate" | "increase" | "resets");
    let pos = super::position(arg(c, range_arg)?.pos_range());
    let check = counter_check.then_some(pos.as_str());
    let plan = (q.resolution > 0)
        .then(|| crate::promql::engine::downsample::plan_for(name))
        .flatten();
    let out = match plan {
        None => {
            let w = window::eval_range(q, arg(c, range_arg)?)?;
            apply(q, w, &scalars, f, keeps_name, find_resets, check)?
        }
        Some(Plan::Same(a)) => {
            let w = read_aggregate(q, arg(c, range_arg)?, a)?;
            apply(q, w, &scalars, f, keeps_name, find_resets, check)?
        }
        Some(Plan::SumOf(a)) => {
            let w = read_aggregate(q, arg(c, range_arg)?, a)?;
            apply(q, w, &scalars, sum_over_time, keeps_name, false, check)?
        }
        Some(Plan::Average) => {
            let sums = read_aggregate(q, arg(c, range_arg)?, Aggregate::Sum)?;
            let sums = apply(q, sums, &scalars, sum_over_time, keeps_name, false, check)?;
            let counts = read_aggregate(q, arg(c, range_arg)?, Aggregate::Count)?;
            let counts = apply(q, counts, &scalars, sum_over_time, keeps_name, false, check)?;
            divide(sums, counts)
        }
    };
    Ok(Eval::Vector(out))
}

/// The windows of a range argument read through `aggregate` (downsampled data).
fn read_aggregate(
    q: &mut Query<'_>,
    e: &crate::promql::ast::Expr,
    aggregate: Aggregate,
) -> Result<Windows, EvalError> {
    let saved = std::mem::replace(&mut q.aggregate, aggregate);
    let w = window::eval_range(q, e);
    q.aggregate = saved;
    w
}

fn sum_over_time(s: &[Sample], _: &Ctx<'_>) -> Option<f64> {
    let (mut sum, mut c) = (0.0, 0.0);
    for x in s {
        (sum, c) = kahan_inc(x.v, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// Point-wise `sums / counts` of two results with the same series:
/// `avg_over_time` over downsampled windows.
fn divide(mut sums: Vec<eval::Series>, mut counts: Vec<eval::Series>) -> Vec<eval::Series> {
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(sums.len());
    let mut counts = counts.into_iter().peekable();
    for (labels, points) in sums {
        while counts.peek().is_some_and(|(l, _)| *l < labels) {
            counts.next();
        }
        let Some((_, cp)) = counts.next_if(|(l, _)| *l == labels) else {
            continue;
        };
        let mut j = 0;
        let mut avg = Vec::with_capacity(points.len());
        for p in points {
            while j < cp.len() && cp[j].t < p.t {
                j += 1;
            }
            if let Some(c) = cp.get(j).filter(|c| c.t == p.t && c.v > 0.0) {
                avg.push(Sample {
                    t: p.t,
                    v: p.v / c.v,
                });
            }
        }
        if !avg.is_empty() {
            out.push((labels, avg));
        }
    }
    out
}

/// Runs `f` over every step's window of every series, one series at a time; a large
/// selection is split over threads ([`parallel`]), each reading its own series.
fn apply(
    q: &mut Query<'_>,
    mut w: Windows,
    scalars: &[Vec<f64>],
    f: WindowFn,
    keeps_name: bool,
    find_resets: bool,
    counter_check: Option<&str>,
) -> Result<Vec<eval::Series>, EvalError> {
    let is_selector = w.is_selector();
    let mut done = if is_selector && parallel::parts_for(w.remaining()) > 1 {
        apply_parallel(q, &mut w, scalars, f, find_resets, counter_check)?
    } else {
        apply_serial(q, &mut w, scalars, f, find_resets, counter_check)?
    };
    for (_, msg) in std::mem::take(&mut done.infos) {
        q.info(msg);
    }
    q.check_deadline()?;
    // Dropping one name common to all series keeps a selector's series distinct and in
    // label order, so only differing names need the merge (and its label comparisons).
    let uniform = done.uniform;
    let out: Vec<eval::Series> = done
        .out
        .into_iter()
        .map(|(labels, points)| {
            let labels = if keeps_name {
                labels
            } else {
                eval::drop_name_owned(labels, q.delayed_name_removal)
            };
            (labels, points)
        })
        .collect();
    if is_selector && (uniform || keeps_name) {
        return Ok(out);
    }
    merge_series(out)
}

/// What evaluating a run of series gave: their labels (names not dropped yet) and
/// points, the counter infos, and whether they all share one metric name.
struct Applied {
    out: Vec<eval::Series>,
    /// (metric name, message), one per run of series of that name.
    infos: Vec<(String, String)>,
    /// The metric name of the first series, once one was seen.
    first_name: Option<Option<String>>,
    /// Whether every series so far has `first_name`.
    uniform: bool,
    /// Window samples seen, for `totalQueryableSamples`.
    queryable: usize,
    /// Output points made.
    points: usize,
}

impl Applied {
    fn new() -> Self {
        Applied {
            out: Vec::new(),
            infos: Vec::new(),
            first_name: None,
            uniform: true,
            queryable: 0,
            points: 0,
        }
    }

    /// Appends `next`, the run of series that follows this one.
    fn extend(&mut self, next: Applied) {
        if self.out.is_empty() {
            self.out = next.out;
        } else {
            self.out.extend(next.out);
        }
        for (name, msg) in next.infos {
            if self.infos.last().is_none_or(|(last, _)| *last != name) {
                self.infos.push((name, msg));
            }
        }
        match (&self.first_name, next.first_name) {
            (_, None) => {}
            (None, Some(n)) => {
                self.first_name = Some(n);
                self.uniform = next.uniform;
            }
            (Some(mine), Some(theirs)) => {
                self.uniform = self.uniform && next.uniform && *mine == theirs;
            }
        }
        self.queryable += next.queryable;
        self.points += next.points;
    }
}

/// The per-series part of [`apply`], with buffers reused across series.
struct SeriesFn<'a> {
    scalars: &'a [Vec<f64>],
    f: WindowFn,
    find_resets: bool,
    counter_check: Option<&'a str>,
    args: Vec<f64>,
    points: Vec<Sample>,
    resets: Vec<usize>,
}

impl<'a> SeriesFn<'a> {
    fn new(
        scalars: &'a [Vec<f64>],
        f: WindowFn,
        find_resets: bool,
        counter_check: Option<&'a str>,
    ) -> Self {
        SeriesFn {
            scalars,
            f,
            find_resets,
            counter_check,
            args: vec![0.0; scalars.len()],
            points: Vec::new(),
            resets: Vec::new(),
        }
    }

    /// Evaluates one series' windows of `w` into `into`; returns how many window
    /// samples it saw and how many points it made.
    fn run(
        &mut self,
        q: &Query<'_>,
        w: Shape,
        labels: crate::model::Labels,
        samples: &[Sample],
        into: &mut Applied,
    ) -> (usize, usize) {
        self.points.clear();
        self.resets.clear();
        if self.find_resets {
            self.resets
                .extend((1..samples.len()).filter(|&i| samples[i].v < samples[i - 1].v));
        }
        let (f, scalars, range) = (self.f, self.scalars, w.range);
        let (args, points, resets) = (&mut self.args, &mut self.points, &self.resets);
        let n = w.each(q, samples, |win| {
            if win.samples.is_empty() {
                return;
            }
            for (a, s) in args.iter_mut().zip(scalars) {
                *a = s[win.step];
            }
            let ctx = Ctx {
                t: win.t,
                bounds: win.bounds,
                range,
                args,
                offset: win.offset,
                resets,
            };
            if let Some(v) = f(win.samples, &ctx) {
                points.push(Sample { t: win.t, v });
            }
        });
        into.queryable += n;
        if self.points.is_empty() {
            return (n, 0);
        }
        if let Some(pos) = self.counter_check
            && let Some(name) = labels.get(METRIC_NAME)
            && !["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|s| name.ends_with(s))
            // Series of one name are adjacent: one message per name, not per series.
            && into.infos.last().is_none_or(|(last, _)| last != name)
        {
            let msg = format!(
                "PromQL info: metric might not be a counter, name does not end in \
                 _total/_sum/_count/_bucket: {name:?} ({pos})"
            );
            into.infos.push((name.to_string(), msg));
        }
        if into.uniform {
            let name = labels.get(METRIC_NAME);
            match &into.first_name {
                None => into.first_name = Some(name.map(str::to_string)),
                Some(first) => into.uniform = first.as_deref() == name,
            }
        }
        into.points += self.points.len();
        into.out.push((labels, self.points.to_vec()));
        (n, self.points.len())
    }
}

/// [`apply`] on the caller's thread: one series' samples held at a time.
fn apply_serial(
    q: &mut Query<'_>,
    w: &mut Windows,
    scalars: &[Vec<f64>],
    f: WindowFn,
    find_resets: bool,
    counter_check: Option<&str>,
) -> Result<Applied, EvalError> {
    let mut done = Applied::new();
    // Output points are charged as they are made, so the peak sees them beside the
    // series being read; [`eval::eval`] charges the node's output again once it is done.
    let mut charged = 0;
    let mut samples = Vec::new();
    let mut run = SeriesFn::new(scalars, f, find_resets, counter_check);
    while let Some(labels) = w.next_series(q, &mut samples)? {
        let (n, made) = run.run(q, w.shape(), labels, &samples, &mut done);
        w.count(q, n);
        if made > 0 {
            q.charge(made)?;
            charged += made;
        }
    }
    w.release(q);
    q.samples = q.samples.saturating_sub(charged);
    Ok(done)
}

/// [`apply`] over a large selection: contiguous parts of its series read and evaluated
/// on their own threads. What the parts held at once (each its largest series, and
/// every output point) is charged when they are done.
fn apply_parallel(
    q: &mut Query<'_>,
    w: &mut Windows,
    scalars: &[Vec<f64>],
    f: WindowFn,
    find_resets: bool,
    counter_check: Option<&str>,
) -> Result<Applied, EvalError> {
    let Some((series, mint, last)) = w.take_selected() else {
        return apply_serial(q, w, scalars, f, find_resets, counter_check);
    };
    let (shared, shape): (&Query<'_>, Shape) = (q, w.shape());
    let parts = parallel::map_parts(series, |part| {
        let mut done = Applied::new();
        let mut run = SeriesFn::new(scalars, f, find_resets, counter_check);
        let (mut samples, mut held) = (Vec::new(), 0);
        for mut s in part {
            shared.check_deadline()?;
            window::read_series(&mut s, mint, last, &mut samples);
            if samples.is_empty() {
                continue;
            }
            held = held.max(samples.len());
            run.run(shared, shape, s.labels, &samples, &mut done);
        }
        Ok::<_, EvalError>((done, held))
    });
    let mut done = Applied::new();
    let mut held = 0;
    for part in parts {
        let (part, h) = part?;
        held += h;
        done.extend(part);
    }
    q.count_queryable(done.queryable);
    q.charge(held + done.points)?;
    q.samples = q.samples.saturating_sub(held + done.points);
    Ok(done)
}

fn secs(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// `rate`, `increase`, `delta`: the change over the window, extrapolated towards the
/// window's edges when the first/last sample is close enough to them (within 1.1 times
/// the average sample interval; otherwise by half an interval), and for counters never
/// below zero, as Prometheus does.
fn extrapolated(s: &[Sample], c: &Ctx<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        for &i in c.resets_in(s.len()) {
            result += s[i - c.offset - 1].v;
        }
    }
    let (range_start, range_end) = c.bounds;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (s.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= c.range as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate`, `idelta`: from the last two samples.
fn instant_value(s: &[Sample], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (prev, last) = (s[s.len() - 2], s[s.len() - 1]);
    let mut v = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

fn changes(s: &[Sample], _: &Ctx<'_>) -> Option<f64> {
    let n = s
        .windows(2)
        .filter(|w| w[0].v != w[1].v && !(w[0].v.is_nan() && w[1].v.is_nan()))
        .count();
    Some(n as f64)
}

/// Direct mean with Kahan summation, switching to an incremental mean if the sum would
/// overflow (Prometheus 3.x).
fn avg_over_time(s: &[Sample], _: &Ctx<'_>) -> Option<f64> {
    let (mut sum, mut count) = (s.first()?.v, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, x) in s[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(x.v, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let r = (count - 1.0) / count;
        (mean, c) = kahan_inc(x.v / count, r * mean, r * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

/// Population variance, with Kahan-compensated running mean and sum of squares.
fn variance(s: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for x in s {
        count += 1.0;
        let delta = x.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (x.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `min_over_time`/`max_over_time`: NaN only if every value is NaN.
fn extreme(s: &[Sample], better: fn(f64, f64) -> bool) -> f64 {
    let mut best = s[0].v;
    for x in s {
        if better(x.v, best) || best.is_nan() {
            best = x.v;
        }
    }
    best
}

/// The time of the last sample holding the minimum (maximum) value.
fn ts_of_extreme(s: &[Sample], better: fn(f64, f64) -> bool) -> Option<f64> {
    let mut best = *s.first()?;
    for x in s {
        if better(x.v, best.v) || best.v.is_nan() {
            best = *x;
        }
    }
    Some(secs(best.t))
}

fn check_factors(scalars: &[Vec<f64>]) -> Result<(), EvalError> {
    for (i, what) in [(0, "smoothing"), (1, "trend")] {
        if let Some(&bad) = scalars
            .get(i)
            .and_then(|v| v.iter().find(|&&f| f <= 0.0 || f >= 1.0 || f.is_nan()))
        {
            return Err(EvalError::Execution(format!(
                "invalid {what} factor. Expected: 0 < {} < 1, got: {bad:.6}",
                if i == 0 { "sf" } else { "tf" }
            )));
        }
    }
    Ok(())
}

fn double_exponential_smoothing(s: &[Sample], c: &Ctx<'_>) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (sf, tf) = (c.args[0], c.args[1]);
    let (mut s0, mut s1) = (0.0, s[0].v);
    let mut b = s[1].v - s[0].v;
    for (i, x) in s.iter().enumerate().skip(1) {
        let scaled = sf * x.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, scaled + y);
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::super::super::testutil::*;

    /// A counter scraped every 15s: 0, 15, 30, ... (1/s), with a reset at 60s.
    fn counter() -> MemStorage {
        storage(&[(
            &[("__name__", "c_total")],
            &[
                (0, 0.0),
                (15, 15.0),
                (30, 30.0),
                (45, 45.0),
                (60, 5.0),
                (75, 20.0),
            ],
        )])
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        let st = counter();
        // Window (15, 75]: samples 30, 45, 5, 20: increase 20 - 30 + 45 (the reset) = 35
        // over 45s sampled, extrapolated 15s to the start (within 1.1 intervals): 35 * 60/45.
        let v = values(&eval_instant(&st, &call("increase", vec![p("c_total[1m]")]), 75).unwrap());
        assert!((v[0] - 35.0 * 60.0 / 45.0).abs() < 1e-9, "{v:?}");
        let v = values(&eval_instant(&st, &call("rate", vec![p("c_total[1m]")]), 75).unwrap());
        assert!((v[0] - 35.0 / 45.0).abs() < 1e-9, "{v:?}");
        let v = values(&eval_instant(&st, &call("irate", vec![p("c_total[1m]")]), 75).unwrap());
        assert_eq!(v, [1.0]);
        let v = values(&eval_instant(&st, &call("resets", vec![p("c_total[5m]")]), 75).unwrap());
        assert_eq!(v, [1.0]);
        // One sample is not enough for a rate.
        let v = values(&eval_instant(&st, &call("rate", vec![p("c_total[10s]")]), 75).unwrap());
        assert!(v.is_empty());
    }

    /// Resets are found once per series; each sliding window sees only its own.
    #[test]
    fn resets_per_window_in_a_range_query() {
        let st = counter();
        let e = call("resets", vec![p("c_total[30s]")]);
        let v = engine().range(&st, &e, 30_000, 75_000, 15_000).unwrap();
        assert_eq!(
            points(&v)[0].1,
            [(30, 0.0), (45, 0.0), (60, 1.0), (75, 0.0)]
        );
        // (30, 60]: 45 then 5, a reset: 5 - 45 + 45 over 15s, extrapolated 15s back.
        // (45, 75]: 5 then 20: 15, extrapolated back only to where it would be zero.
        let e = call("increase", vec![p("c_total[30s]")]);
        let v = engine().range(&st, &e, 60_000, 75_000, 15_000).unwrap();
        assert_eq!(points(&v)[0].1, [(60, 10.0), (75, 20.0)]);
    }

    #[test]
    fn over_time_in_a_range_query_walks_windows() {
        let st = counter();
        let e = call("max_over_time", vec![p("c_total[30s]")]);
        let v = engine().range(&st, &e, 30_000, 75_000, 15_000).unwrap();
        let pts = &points(&v)[0];
        assert!(pts.0.is_empty(), "name dropped");
        assert_eq!(pts.1, [(30, 30.0), (45, 45.0), (60, 45.0), (75, 20.0)]);
        let e = call("last_over_time", vec![p("c_total[30s]")]);
        let v = engine().range(&st, &e, 30_000, 30_000, 15_000).unwrap();
        assert_eq!(points(&v)[0].0.metric_name(), Some("c_total"));
    }
}
