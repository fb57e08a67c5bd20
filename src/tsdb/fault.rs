//! Named crash points for the `kill -9` tests. When the environment variable
//! `CAIRN_TEST_PAUSE_AT` names a point, the thread that reaches it logs
//! `paused at <point>` and sleeps for good, so a test can kill the process at exactly
//! that moment (mid block write, mid compaction) instead of guessing with timers.
//! Unset, as in every real deployment, a point costs one cached comparison.

use std::sync::OnceLock;

/// Block files written, not yet renamed into place: a head block (level 1).
pub const BLOCK_WRITE: &str = "block-write";
/// Block files written, not yet renamed: a compaction's output (level 2 and up).
pub const COMPACTION: &str = "compaction";
/// Compaction output renamed into place, its parents not yet deleted.
pub const COMPACTION_PARENTS: &str = "compaction-parents";

fn wanted() -> Option<&'static str> {
    static WANT: OnceLock<Option<String>> = OnceLock::new();
    WANT.get_or_init(|| std::env::var("CAIRN_TEST_PAUSE_AT").ok())
        .as_deref()
}

/// Sleeps forever if `CAIRN_TEST_PAUSE_AT` is `point`.
pub fn pause_at(point: &str) {
    if wanted() == Some(point) {
        tracing::warn!("paused at {point} (CAIRN_TEST_PAUSE_AT)");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
