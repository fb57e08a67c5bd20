//! The loop of one target: wait for the target's slot in the interval (a deterministic
//! offset from its hash, so a pool's load spreads over the interval as in Prometheus),
//! then scrape, append, report the synthetic series, repeat. When the target goes away
//! its series get staleness markers.

use super::append::{self, AppendOptions, AppendStats, Limits, Scratch};
use super::cache::ScrapeCache;
use super::metrics::ScrapeMetrics;
use super::scraper::Scraper;
use super::target::{Health, Target};
use crate::model::{Labels, METRIC_NAME, time::now_ms};
use crate::relabel::RelabelConfig;
use crate::storage::{AppendError, Appender, SeriesRef, Storage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a loop is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The target is gone: mark its series stale.
    Stale,
    /// The loop is being replaced (config reload): leave the series alone.
    Quiet,
}

/// Everything a loop needs; owned by the loop's task.
pub struct LoopContext {
    pub target: Arc<Target>,
    pub scraper: Scraper,
    pub storage: Arc<dyn Storage>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: Arc<Vec<RelabelConfig>>,
    pub limits: Limits,
    pub metrics: Arc<ScrapeMetrics>,
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// The synthetic series of one target: labels built once, refs cached.
struct Report {
    labels: Vec<Labels>,
    refs: [Option<SeriesRef>; 5],
}

impl Report {
    fn new(target: &Labels) -> Self {
        let labels = REPORT_NAMES
            .iter()
            .map(|n| {
                let mut b = target.builder();
                b.set(METRIC_NAME, *n);
                b.into_labels()
            })
            .collect();
        Report {
            labels,
            refs: [None; 5],
        }
    }

    fn append(&mut self, app: &mut dyn Appender, t: i64, values: [f64; 5]) {
        for (i, v) in values.into_iter().enumerate() {
            let done = match self.refs[i] {
                Some(r) => !matches!(app.append_ref(r, t, v), Err(AppendError::UnknownSeries(_))),
                None => false,
            };
            if !done {
                self.refs[i] = app.append(&self.labels[i], t, v).ok();
            }
        }
    }
}

/// Where in the interval this target scrapes: the same slot on every start, spread by
/// the target's hash.
pub fn scrape_offset(target_hash: u64, interval: Duration, now: std::time::SystemTime) -> Duration {
    let base = interval.as_nanos().max(1);
    let now_ns = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let slot = target_hash as u128 % base;
    let off = (slot + base - now_ns % base) % base;
    Duration::from_nanos(off as u64)
}

pub async fn run(ctx: LoopContext, mut stop: watch::Receiver<Option<Stop>>) {
    let target = ctx.target.clone();
    let interval = target.interval;
    let offset = scrape_offset(target.hash(), interval, std::time::SystemTime::now());
    let start = tokio::time::Instant::now() + offset;
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut state = LoopState {
        cache: ScrapeCache::new(),
        scratch: Scratch::default(),
        report: Report::new(&target.labels),
    };
    let mode = loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => {
                break if changed.is_err() { Stop::Stale } else { stop.borrow().unwrap_or(Stop::Stale) };
            }
        }
        state.scrape_once(&ctx).await;
    };
    if mode == Stop::Stale {
        state.end_of_run(&ctx);
    }
}

struct LoopState {
    cache: ScrapeCache,
    scratch: Scratch,
    report: Report,
}

impl LoopState {
    async fn scrape_once(&mut self, ctx: &LoopContext) {
        let started = Instant::now();
        let t = now_ms();
        let mut body = super::buffers::take();
        let fetched = ctx.scraper.scrape(&mut body).await;
        self.cache.begin();
        let mut app = ctx.storage.appender();
        let opts = AppendOptions {
            target_labels: &ctx.target.labels,
            honor_labels: ctx.honor_labels,
            honor_timestamps: ctx.honor_timestamps,
            metric_relabel: &ctx.metric_relabel,
            limits: ctx.limits,
        };
        let mut stats = AppendStats::default();
        let outcome = match fetched {
            Ok(format) => append::append_scrape(
                &mut self.cache,
                app.as_mut(),
                &mut self.scratch,
                &body,
                format,
                t,
                &opts,
                &mut stats,
            )
            .map_err(|e| {
                ctx.metrics.count_append_error(&e);
                e.to_string()
            }),
            Err(e) => {
                ctx.metrics.count_scrape_error(&e);
                Err(e.to_string())
            }
        };
        super::buffers::give(body);
        let error = match outcome {
            Ok(()) => None,
            Err(msg) => {
                // Nothing of a failed scrape is kept; its series go stale.
                app.rollback();
                append::append_all_stale(&self.cache, app.as_mut(), &mut self.scratch, t);
                Some(msg)
            }
        };
        let duration = started.elapsed();
        self.report.append(
            app.as_mut(),
            t,
            [
                if error.is_none() { 1.0 } else { 0.0 },
                duration.as_secs_f64(),
                stats.scraped as f64,
                stats.post_relabel as f64,
                stats.series_added as f64,
            ],
        );
        let error = match app.commit() {
            Ok(()) => error,
            Err(e) => {
                tracing::error!(target = %ctx.target.url, error = %e, "committing scrape");
                Some(format!("storage: {e}"))
            }
        };
        self.cache.finish(error.is_none());
        ctx.metrics.count_scrape(&stats);

        let mut h = ctx.target.health.lock();
        h.health = if error.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        h.last_error = error.unwrap_or_default();
        h.last_scrape_ms = t;
        h.last_scrape_duration = duration;
        h.last_samples = stats.scraped;
    }

    /// The target is gone: staleness markers for its series and its synthetic series.
    fn end_of_run(&mut self, ctx: &LoopContext) {
        let t = now_ms();
        let mut app = ctx.storage.appender();
        append::append_all_stale(&self.cache, app.as_mut(), &mut self.scratch, t);
        for r in self.report.refs.iter().flatten() {
            let _ = app.append_ref(*r, t, crate::model::stale_nan());
        }
        if let Err(e) = app.commit() {
            tracing::error!(target = %ctx.target.url, error = %e, "writing staleness markers");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn offset_is_deterministic_and_within_interval() {
        let iv = Duration::from_secs(15);
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let a = scrape_offset(42, iv, now);
        assert!(a < iv);
        // The slot is the same absolute phase whatever the start time.
        let later = now + Duration::from_millis(4_321);
        let b = scrape_offset(42, iv, later);
        let phase = |start: SystemTime, off: Duration| {
            (start + off).duration_since(UNIX_EPOCH).unwrap().as_nanos() % iv.as_nanos()
        };
        assert_eq!(phase(now, a), phase(later, b));
        assert_ne!(scrape_offset(43, iv, now), a);
    }
}
