//! A scrape pool: all targets of one job. It turns the job's discovered target groups
//! into targets, starts a loop for each new target, stops the loops of targets that went
//! away (with staleness markers) and leaves unchanged targets alone.

use super::append::Limits;
use super::metrics::ScrapeMetrics;
use super::scraper::Scraper;
use super::target::{DroppedTarget, Populated, Target, populate_labels};
use super::target_loop::{self, LoopContext, Stop};
use crate::config::HttpClientConfig;
use crate::config::ScrapeConfig;
use crate::discovery::TargetGroup;
use crate::httpclient::{self, ClientError};
use crate::storage::Storage;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

struct LoopHandle {
    target: Arc<Target>,
    stop: watch::Sender<Option<Stop>>,
}

pub struct ScrapePool {
    cfg: Arc<ScrapeConfig>,
    client: reqwest::Client,
    http: Arc<HttpClientConfig>,
    storage: Arc<dyn Storage>,
    metrics: Arc<ScrapeMetrics>,
    metric_relabel: Arc<Vec<crate::relabel::RelabelConfig>>,
    loops: HashMap<u64, LoopHandle>,
    dropped: Vec<DroppedTarget>,
}

impl ScrapePool {
    pub fn new(
        cfg: Arc<ScrapeConfig>,
        storage: Arc<dyn Storage>,
        metrics: Arc<ScrapeMetrics>,
    ) -> Result<Self, ClientError> {
        let http = Arc::new(cfg.http_client_config());
        let client = httpclient::build_client(&http)?;
        Ok(ScrapePool {
            http,
            metric_relabel: Arc::new(cfg.metric_relabel_configs.clone()),
            cfg,
            client,
            storage,
            metrics,
            loops: HashMap::new(),
            dropped: Vec::new(),
        })
    }

    pub fn config(&self) -> &ScrapeConfig {
        &self.cfg
    }

    /// Makes the running loops match the discovered groups.
    pub fn sync(&mut self, groups: &[TargetGroup]) {
        let mut wanted: HashMap<u64, Target> = HashMap::new();
        let mut dropped = Vec::new();
        for g in groups {
            for t in &g.targets {
                match populate_labels(&g.labels, t, &self.cfg) {
                    Ok(Populated::Active(target)) => {
                        wanted.entry(target.hash()).or_insert(target);
                    }
                    Ok(Populated::Dropped(d)) => dropped.push(d),
                    Err(e) => {
                        tracing::warn!(job = %self.cfg.job_name, source = %g.source, error = %e, "creating target failed");
                    }
                }
            }
        }
        self.dropped = dropped;
        self.loops.retain(|hash, handle| {
            let keep = wanted.contains_key(hash);
            if !keep {
                let _ = handle.stop.send(Some(Stop::Stale));
            }
            keep
        });
        for (hash, target) in wanted {
            if self.loops.contains_key(&hash) {
                continue;
            }
            let target = Arc::new(target);
            let (tx, rx) = watch::channel(None);
            let ctx = LoopContext {
                scraper: Scraper {
                    client: self.client.clone(),
                    url: target.url.clone(),
                    timeout: target.timeout,
                    body_size_limit: self.cfg.body_size_limit_bytes(),
                    http: self.http.clone(),
                },
                target: target.clone(),
                storage: self.storage.clone(),
                honor_labels: self.cfg.honor_labels,
                honor_timestamps: self.cfg.honor_timestamps,
                metric_relabel: self.metric_relabel.clone(),
                limits: Limits {
                    sample_limit: self.cfg.sample_limit as usize,
                    label_limit: self.cfg.label_limit as usize,
                    label_name_length_limit: self.cfg.label_name_length_limit as usize,
                    label_value_length_limit: self.cfg.label_value_length_limit as usize,
                },
                metrics: self.metrics.clone(),
            };
            tokio::spawn(target_loop::run(ctx, rx));
            self.loops.insert(hash, LoopHandle { target, stop: tx });
        }
    }

    /// Stops every loop; `stale` writes staleness markers (the job is gone) or not (the
    /// pool is being replaced by a reload).
    pub fn stop(&mut self, stale: bool) {
        let mode = if stale { Stop::Stale } else { Stop::Quiet };
        for (_, h) in self.loops.drain() {
            let _ = h.stop.send(Some(mode));
        }
    }

    pub fn active_targets(&self) -> Vec<Arc<Target>> {
        self.loops.values().map(|h| h.target.clone()).collect()
    }

    pub fn dropped_targets(&self) -> &[DroppedTarget] {
        &self.dropped
    }
}

impl Drop for ScrapePool {
    fn drop(&mut self) {
        // Loops whose sender is dropped stop with staleness; an explicit stop() came first
        // when the caller wanted otherwise.
        self.loops.clear();
    }
}
