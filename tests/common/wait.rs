//! Bounded polling: tests wait for a condition instead of sleeping for a guessed time,
//! and a timeout panics with the last thing the probe saw.

use std::time::{Duration, Instant};

/// How often a probe runs: a tenth of the 1 s scrape interval the test configs use.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Runs `probe` until it returns `Ok`, at most for `timeout`; panics with the last
/// `Err` (the probe's description of what it saw instead) when time runs out.
pub async fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let outcome = probe().await;
        match outcome {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last saw: {last}")
            }
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// `Ok(())` when `condition` holds, else `Err(describe())`: the building block of probes.
pub fn ensure(condition: bool, describe: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(describe()) }
}
