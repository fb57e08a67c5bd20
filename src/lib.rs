//! cairn: a Prometheus-compatible monitoring server with its own time-series database.
//!
//! The modules follow the data: `discovery` finds targets, `scrape` pulls samples through
//! `textparse` and `relabel`, `storage` is the seam to `tsdb`, `promql` answers queries and
//! `http` serves them. `app` holds the running server; `main.rs` wires it together and no
//! module reaches for a global.

pub mod app;
pub mod config;
pub mod discovery;
pub mod http;
pub mod httpclient;
pub mod model;
pub mod process_metrics;
pub mod promql;
pub mod relabel;
pub mod remote;
pub mod scrape;
pub mod storage;
pub mod textparse;
pub mod tsdb;
