//! The integration-test harness shared by every file in `tests/`: real processes (cairn,
//! Prometheus 2.42, the node exporter) on loopback ports, an HTTP client for the
//! Prometheus API, a scrape target whose bodies the test controls, and a remote-write
//! client. It owns no assertions about cairn's behaviour; those live in the test files.
//!
//! Missing programs are never skipped over: [`require`] panics with the install step.
//! Run `scripts/test-deps.sh` once, then `cargo test --tests`.
//!
//! Reference mode: with `CAIRN_TEST_AGAINST=prometheus` in the environment, every
//! [`Cairn::start`] launches `/usr/bin/prometheus` (with the remote-write receiver on)
//! instead of cairn, so the suite's assertions can be checked against the server cairn
//! imitates. The few places where cairn is meant to differ from Prometheus 2.42 branch on
//! [`Flavor`] and say why.
//!
//! Test files declare it `pub mod common;`: each uses a different part of it, and `pub`
//! keeps the rest from counting as dead code in that test binary.

pub mod api;
pub mod diff;
pub mod exposition;
pub mod monitor;
pub mod process;
pub mod prompb;
pub mod remote_write;
pub mod wait;

pub use api::{Api, Labels, QueryResult, RangeSeries, Reply, Sample, Target, VectorSample, labels};
pub use exposition::{Exposition, Route};
pub use monitor::{Cairn, Flavor, Monitor, NodeExporter, Prometheus};
pub use process::{Server, free_port, require};
pub use remote_write::RemoteWriter;
pub use wait::wait_until;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the unit of every sample timestamp.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_millis()).expect("the clock fits in i64 milliseconds")
}

/// A timestamp as the Prometheus API takes it: seconds with millisecond precision.
pub fn api_time(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}
