//! Counters about scraping, exposed on cairn's `/metrics` under Prometheus's names
//! (`prometheus_target_*` becomes `cairn_target_*`).

use super::append::{AppendScrapeError, AppendStats};
use super::scraper::ScrapeError;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct ScrapeMetrics {
    scrapes: AtomicU64,
    samples: AtomicU64,
    out_of_order: AtomicU64,
    duplicates: AtomicU64,
    out_of_bounds: AtomicU64,
    sample_limit: AtomicU64,
    body_size_limit: AtomicU64,
    failed: AtomicU64,
}

impl ScrapeMetrics {
    pub fn count_scrape(&self, s: &AppendStats) {
        self.scrapes.fetch_add(1, Relaxed);
        self.samples.fetch_add(s.post_relabel as u64, Relaxed);
        self.out_of_order.fetch_add(s.out_of_order as u64, Relaxed);
        self.duplicates.fetch_add(s.duplicates as u64, Relaxed);
        self.out_of_bounds
            .fetch_add(s.out_of_bounds as u64, Relaxed);
    }

    pub fn count_append_error(&self, e: &AppendScrapeError) {
        self.failed.fetch_add(1, Relaxed);
        if matches!(e, AppendScrapeError::SampleLimit) {
            self.sample_limit.fetch_add(1, Relaxed);
        }
    }

    pub fn count_scrape_error(&self, e: &ScrapeError) {
        self.failed.fetch_add(1, Relaxed);
        if matches!(e, ScrapeError::BodySizeLimit) {
            self.body_size_limit.fetch_add(1, Relaxed);
        }
    }

    pub fn write(&self, out: &mut String) {
        let rows = [
            (
                "cairn_target_scrapes_total",
                "Scrapes attempted.",
                &self.scrapes,
            ),
            (
                "cairn_target_scrapes_failed_total",
                "Scrapes that failed.",
                &self.failed,
            ),
            (
                "cairn_target_scrape_samples_appended_total",
                "Samples appended by scrapes.",
                &self.samples,
            ),
            (
                "cairn_target_scrapes_sample_out_of_order_total",
                "Scraped samples rejected as out of order.",
                &self.out_of_order,
            ),
            (
                "cairn_target_scrapes_sample_duplicate_timestamp_total",
                "Scraped samples rejected for a duplicate timestamp with a different value.",
                &self.duplicates,
            ),
            (
                "cairn_target_scrapes_sample_out_of_bounds_total",
                "Scraped samples rejected as out of bounds.",
                &self.out_of_bounds,
            ),
            (
                "cairn_target_scrapes_exceeded_sample_limit_total",
                "Scrapes that hit the sample limit.",
                &self.sample_limit,
            ),
            (
                "cairn_target_scrapes_exceeded_body_size_limit_total",
                "Scrapes that hit the body size limit.",
                &self.body_size_limit,
            ),
        ];
        for (name, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
    }
}
