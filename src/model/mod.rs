//! The vocabulary every other module speaks: label sets, matchers, samples, metric
//! types and Prometheus's duration and timestamp formats. Nothing here does I/O or knows
//! about storage, scraping or HTTP.

mod labels;
mod matcher;
mod sample;
pub mod time;
pub mod units;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchType, Matcher, MatcherError};
pub use sample::{MetricType, STALE_NAN_BITS, Sample, is_stale_nan, stale_nan};
