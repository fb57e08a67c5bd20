//! A scrape target: the labels discovery gave it, the labels it ends up with after
//! relabeling, its URL and its health as the API reports it. `populate_labels` is
//! Prometheus's target-labeling procedure, step for step.

use crate::config::ScrapeConfig;
use crate::model::time::{format_duration, parse_duration};
use crate::model::{Labels, LabelsBuilder};
use crate::relabel;
use parking_lot::Mutex;
use std::time::Duration;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";

/// Health as the targets API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The outcome of the last scrape, updated by the target loop, read by the API.
#[derive(Clone, Debug, Default)]
pub struct TargetHealth {
    pub health: Health,
    pub last_error: String,
    /// Milliseconds since the epoch of the last scrape's start; 0 before the first.
    pub last_scrape_ms: i64,
    pub last_scrape_duration: Duration,
    pub last_samples: usize,
}

/// One target of a scrape pool.
#[derive(Debug)]
pub struct Target {
    /// Final labels: what every scraped series gets (no `__` labels).
    pub labels: Labels,
    /// Labels before relabeling, as discovery reported them (for the API).
    pub discovered_labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub health: Mutex<TargetHealth>,
}

impl Target {
    /// Stable identity of a target within its pool: its final labels and URL.
    pub fn hash(&self) -> u64 {
        self.labels.stable_hash() ^ xxhash_rust::xxh3::xxh3_64(self.url.as_bytes())
    }
}

/// A target relabeling dropped, kept for the API's droppedTargets.
#[derive(Clone, Debug)]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
}

/// What became of one discovered target.
#[derive(Debug)]
pub enum Populated {
    Active(Target),
    Dropped(DroppedTarget),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("invalid address {0:?}")]
    BadAddress(String),
    #[error("error parsing scrape interval: {0}")]
    BadInterval(String),
    #[error("error parsing scrape timeout: {0}")]
    BadTimeout(String),
    #[error("scrape timeout cannot be greater than scrape interval ({timeout} > {interval})")]
    TimeoutAboveInterval { timeout: String, interval: String },
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
}

/// Turns one discovered target (`group_labels` merged under `target_labels`) into a
/// scrape target: adds the job's defaults, applies `relabel_configs`, checks the result
/// and builds the URL. Mirrors Prometheus's `PopulateLabels`, except that no default port
/// is added to `__address__` (Prometheus 3 behaviour: the URL uses the scheme's port).
pub fn populate_labels(
    group_labels: &Labels,
    target_labels: &Labels,
    cfg: &ScrapeConfig,
) -> Result<Populated, TargetError> {
    let mut b = group_labels.builder();
    for l in target_labels {
        b.set(l.name.as_str(), l.value.as_str());
    }
    let defaults = [
        ("job", cfg.job_name.clone()),
        (
            SCRAPE_INTERVAL_LABEL,
            format_duration(cfg.scrape_interval.0),
        ),
        (SCRAPE_TIMEOUT_LABEL, format_duration(cfg.scrape_timeout.0)),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (name, value) in defaults {
        if b.get(name).is_none() {
            b.set(name, value);
        }
    }
    for (name, values) in &cfg.params {
        let label = format!("{PARAM_LABEL_PREFIX}{name}");
        if b.get(&label).is_none()
            && let Some(first) = values.first()
        {
            b.set(label, first.as_str());
        }
    }
    let discovered = b.labels();
    if !relabel::process(&mut b, &cfg.relabel_configs) {
        return Ok(Populated::Dropped(DroppedTarget {
            discovered_labels: discovered,
        }));
    }
    let address = b
        .get(ADDRESS_LABEL)
        .ok_or(TargetError::NoAddress)?
        .to_string();
    if address.contains('/') || address.contains(' ') {
        return Err(TargetError::BadAddress(address));
    }
    let interval = label_duration(&b, SCRAPE_INTERVAL_LABEL).map_err(TargetError::BadInterval)?;
    let timeout = label_duration(&b, SCRAPE_TIMEOUT_LABEL).map_err(TargetError::BadTimeout)?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval {
            timeout: format_duration(timeout),
            interval: format_duration(interval),
        });
    }
    let url = build_url(&b, cfg, &address);
    b.retain(|l| !l.name.starts_with(META_LABEL_PREFIX));
    if b.get("instance").is_none() {
        b.set("instance", address.as_str());
    }
    // Internal labels (`__address__`, `__param_*`, ...) shape the URL only.
    b.retain(|l| !l.name.starts_with("__"));
    Ok(Populated::Active(Target {
        labels: b.into_labels(),
        discovered_labels: discovered,
        url,
        interval,
        timeout,
        health: Mutex::new(TargetHealth::default()),
    }))
}

fn label_duration(b: &LabelsBuilder, name: &str) -> Result<Duration, String> {
    let v = b.get(name).unwrap_or_default();
    parse_duration(v).map_err(|e| e.to_string())
}

/// `scheme://address/path?params`: `__param_<name>` labels override the first value of
/// the config's `params` for that name, as in Prometheus.
fn build_url(b: &LabelsBuilder, cfg: &ScrapeConfig, address: &str) -> String {
    let scheme = b.get(SCHEME_LABEL).unwrap_or("http");
    let path = b.get(METRICS_PATH_LABEL).unwrap_or("/metrics");
    let mut url = format!("{scheme}://{address}{path}");
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, values) in &cfg.params {
        for v in values {
            pairs.push((name.clone(), v.clone()));
        }
    }
    for l in b.iter() {
        if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
            match pairs.iter_mut().find(|(n, _)| n == name) {
                Some(p) => p.1 = l.value.clone(),
                None => pairs.push((name.to_string(), l.value.clone())),
            }
        }
    }
    if !pairs.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        let q: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", query_escape(n), query_escape(v)))
            .collect();
        url.push_str(&q.join("&"));
    }
    url
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
