//! Scraping: the manager keeps one pool per scrape job in line with the configuration
//! and the discovered targets; each pool runs one loop per target; each loop fetches,
//! parses and appends through the scrape cache.
//!
//! A config reload replaces only the pools whose scrape settings changed; a change in a
//! job's discovery configuration alone only adds and removes targets, so targets that did
//! not change keep scraping through a reload without a gap.

pub mod append;
pub mod buffers;
pub mod cache;
pub mod metrics;
pub mod pool;
pub mod scraper;
pub mod target;
pub mod target_loop;

use crate::config::ScrapeConfig;
use crate::discovery::TargetSets;
use crate::storage::Storage;
use metrics::ScrapeMetrics;
use pool::ScrapePool;
use std::collections::HashMap;
use std::sync::Arc;
use target::{DroppedTarget, Target};

pub struct ScrapeManager {
    storage: Arc<dyn Storage>,
    pools: HashMap<String, ScrapePool>,
    /// Each pool's scrape settings without its discovery part, to tell whether a reload
    /// changed anything that needs the pool restarted.
    fingerprints: HashMap<String, String>,
    last_sets: Arc<TargetSets>,
    metrics: Arc<ScrapeMetrics>,
}

/// One pool's targets, for the API.
pub struct PoolTargets {
    pub job: String,
    pub scrape_interval: std::time::Duration,
    pub scrape_timeout: std::time::Duration,
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<DroppedTarget>,
}

fn fingerprint(cfg: &ScrapeConfig) -> String {
    let mut c = cfg.clone();
    c.static_configs.clear();
    c.file_sd_configs.clear();
    format!("{c:?}")
}

impl ScrapeManager {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        ScrapeManager {
            storage,
            pools: HashMap::new(),
            fingerprints: HashMap::new(),
            last_sets: Arc::new(TargetSets::new()),
            metrics: Arc::new(ScrapeMetrics::default()),
        }
    }

    /// Brings pools in line with `configs`. Must run inside the tokio runtime.
    pub fn apply_config(&mut self, configs: &[ScrapeConfig]) {
        let mut seen = Vec::new();
        for cfg in configs {
            let job = cfg.job_name.clone();
            seen.push(job.clone());
            let fp = fingerprint(cfg);
            if self.pools.contains_key(&job) && self.fingerprints.get(&job) == Some(&fp) {
                continue;
            }
            let pool = ScrapePool::new(
                Arc::new(cfg.clone()),
                self.storage.clone(),
                self.metrics.clone(),
            );
            let mut pool = match pool {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(job = %job, error = %e, "creating scrape pool");
                    continue;
                }
            };
            if let Some(mut old) = self.pools.remove(&job) {
                old.stop(false);
            }
            if let Some(groups) = self.last_sets.get(&job) {
                pool.sync(groups);
            }
            self.pools.insert(job.clone(), pool);
            self.fingerprints.insert(job, fp);
        }
        let gone: Vec<String> = self
            .pools
            .keys()
            .filter(|j| !seen.contains(j))
            .cloned()
            .collect();
        for job in gone {
            if let Some(mut p) = self.pools.remove(&job) {
                p.stop(true);
            }
            self.fingerprints.remove(&job);
        }
    }

    /// New discovery results: each pool syncs to its job's groups.
    pub fn sync(&mut self, sets: Arc<TargetSets>) {
        for (job, pool) in self.pools.iter_mut() {
            pool.sync(sets.get(job).map(Vec::as_slice).unwrap_or(&[]));
        }
        self.last_sets = sets;
    }

    pub fn targets(&self) -> Vec<PoolTargets> {
        let mut out: Vec<PoolTargets> = self
            .pools
            .iter()
            .map(|(job, p)| PoolTargets {
                job: job.clone(),
                scrape_interval: p.config().scrape_interval.0,
                scrape_timeout: p.config().scrape_timeout.0,
                active: p.active_targets(),
                dropped: p.dropped_targets().to_vec(),
            })
            .collect();
        out.sort_by(|a, b| a.job.cmp(&b.job));
        out
    }

    pub fn metrics(&self) -> &ScrapeMetrics {
        &self.metrics
    }

    /// Stops every loop without staleness markers (shutdown: the data simply ends).
    pub fn stop_all(&mut self) {
        for p in self.pools.values_mut() {
            p.stop(false);
        }
    }
}
