//! cairn: a Prometheus-compatible monitoring server with its own time-series database.
//!
//! The modules follow the data: `discovery` finds targets, `scrape` pulls samples through
//! `textparse` and `relabel`, `storage` is the seam to `tsdb`, `promql` answers queries and
//! `http` serves them. `main.rs` wires them together; no module reaches for a global.

pub mod model;
pub mod storage;
