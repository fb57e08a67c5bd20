//! Which blocks retention removes: time retention per resolution, measured back from the
//! newest block's end as Prometheus's `BeyondTimeRetention` does, then size retention
//! across every block, oldest first, as `BeyondSizeRetention` does (the caller adds what
//! else counts against the budget, the WAL and head chunks, as `extra_bytes`). A pure
//! selection over metas and sizes; the `Db` deletes what it names. The head is never
//! among the candidates.

use super::downsample::{DownsampleThresholds, RES_1H, RES_5M};
use crate::tsdb::block::BlockMeta;
use std::collections::HashSet;

/// How long each resolution is kept, and the size cap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Raw blocks (`--storage.tsdb.retention.raw`); 0 keeps them regardless of age.
    pub raw_ms: i64,
    /// 5m blocks (`--storage.tsdb.retention.5m`); 0: no limit.
    pub res_5m_ms: i64,
    /// 1h blocks (`--storage.tsdb.retention.1h`); 0: no limit.
    pub res_1h_ms: i64,
    /// `--storage.tsdb.retention.size`; `None` or 0: no limit.
    pub max_bytes: Option<u64>,
    /// The downsampling in force, if any. With it, a block past its time retention is
    /// kept while the copy downsampling owes it at the next coarser resolution does not
    /// exist yet, unless that copy would itself be past its retention already: so a raw
    /// retention shorter than the 5m threshold (say 1 d against 40 h) still leaves the
    /// 5m data it was configured for. Size retention does not wait: a full disk wins.
    pub downsample: Option<DownsampleThresholds>,
}

impl RetentionPolicy {
    /// The time retention of blocks of resolution `res` (0 when unlimited).
    pub fn for_resolution(&self, res: i64) -> i64 {
        if res >= RES_1H {
            self.res_1h_ms
        } else if res >= RES_5M {
            self.res_5m_ms
        } else {
            self.raw_ms
        }
    }
}

/// The ULIDs of the blocks to delete, oldest first. `blocks` pairs each block's meta
/// with its size on disk (`Block::size_bytes`); `extra_bytes` is counted against
/// `max_bytes` before any block.
///
/// A block goes when the newest block's end lies at least its resolution's retention
/// after its own end (Prometheus 3's `>=`), or when, walking from the newest block to
/// the oldest and summing sizes, the sum passes `max_bytes`: that block and every older
/// one go. Blocks ending together are ordered raw first, so under size pressure a raw
/// block is deleted before the downsampled copies of the same range.
pub fn expired(
    blocks: &[(BlockMeta, u64)],
    policy: &RetentionPolicy,
    extra_bytes: u64,
) -> Vec<String> {
    let Some(newest) = blocks.iter().map(|(m, _)| m.max_time).max() else {
        return Vec::new();
    };
    let mut gone: HashSet<&str> = HashSet::new();
    for (m, _) in blocks {
        let ret = policy.for_resolution(m.resolution);
        if ret > 0
            && newest.saturating_sub(m.max_time) >= ret
            && !awaits_copy(m, blocks, policy, newest)
        {
            gone.insert(&m.ulid);
        }
    }
    if let Some(max) = policy.max_bytes.filter(|&b| b > 0) {
        let mut left: Vec<&(BlockMeta, u64)> = blocks
            .iter()
            .filter(|(m, _)| !gone.contains(m.ulid.as_str()))
            .collect();
        // Newest first; at one end time, coarsest first, so raw is the first to go.
        left.sort_by(|a, b| {
            (b.0.max_time, b.0.resolution, &b.0.ulid).cmp(&(
                a.0.max_time,
                a.0.resolution,
                &a.0.ulid,
            ))
        });
        let mut total = extra_bytes;
        for (i, (_, size)) in left.iter().enumerate() {
            total = total.saturating_add(*size);
            if total > max {
                gone.extend(left[i..].iter().map(|(m, _)| m.ulid.as_str()));
                break;
            }
        }
    }
    let mut out: Vec<&BlockMeta> = blocks
        .iter()
        .map(|(m, _)| m)
        .filter(|m| gone.contains(m.ulid.as_str()))
        .collect();
    out.sort_by(|a, b| {
        (a.max_time, a.resolution, &a.ulid).cmp(&(b.max_time, b.resolution, &b.ulid))
    });
    out.into_iter().map(|m| m.ulid.clone()).collect()
}

/// Whether downsampling still owes `m` a copy that would outlive `m` itself.
fn awaits_copy(
    m: &BlockMeta,
    blocks: &[(BlockMeta, u64)],
    policy: &RetentionPolicy,
    newest: i64,
) -> bool {
    let Some(next) = policy
        .downsample
        .and_then(|t| t.next_resolution(m.resolution))
    else {
        return false;
    };
    let next_ret = policy.for_resolution(next);
    if next_ret > 0 && newest.saturating_sub(m.max_time) >= next_ret {
        return false;
    }
    let covered: HashSet<&str> = blocks
        .iter()
        .filter(|(b, _)| b.resolution == next)
        .flat_map(|(b, _)| b.compaction.sources.iter().map(String::as_str))
        .collect();
    !m.compaction
        .sources
        .iter()
        .all(|s| covered.contains(s.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::block::{BlockCompaction, BlockStats, META_VERSION};

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn m(id: &str, maxt_h: i64, res: i64, sources: &[&str]) -> BlockMeta {
        BlockMeta {
            ulid: id.into(),
            min_time: (maxt_h - 2) * H,
            max_time: maxt_h * H,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: sources.iter().map(|s| s.to_string()).collect(),
                parents: Vec::new(),
            },
            version: META_VERSION,
            resolution: res,
            downsampled_from: Vec::new(),
        }
    }

    fn policy(raw: i64, m5: i64, h1: i64) -> RetentionPolicy {
        RetentionPolicy {
            raw_ms: raw,
            res_5m_ms: m5,
            res_1h_ms: h1,
            ..RetentionPolicy::default()
        }
    }

    #[test]
    fn time_retention_per_resolution() {
        // Raw blocks ending at 2, 4, ..., 40 h; the newest ends at 40 h.
        let mut blocks: Vec<(BlockMeta, u64)> = (1..=20)
            .map(|k| {
                (
                    m(&format!("r{k:02}"), 2 * k, 0, &[&format!("r{k:02}")]),
                    100,
                )
            })
            .collect();
        blocks.push((m("a5", 4, RES_5M, &["r01", "r02"]), 10));
        blocks.push((m("b1", 4, RES_1H, &["r01", "r02"]), 1));
        let table: [(RetentionPolicy, &[&str]); 5] = [
            (policy(0, 0, 0), &[]),
            // 30 h: blocks ending at or before 10 h go (40 - 10 >= 30).
            (policy(30 * H, 0, 0), &["r01", "r02", "r03", "r04", "r05"]),
            (policy(30 * H + 1, 0, 0), &["r01", "r02", "r03", "r04"]),
            // Per resolution: the 5m copy goes at 36 h, raw is kept forever.
            (policy(0, 36 * H, 0), &["a5"]),
            (policy(36 * H, 30 * H, 0), &["r01", "r02", "a5"]),
        ];
        for (p, want) in table {
            assert_eq!(expired(&blocks, &p, 0), want, "{p:?}");
        }
        // The newest block is never old.
        assert!(expired(&blocks[19..20], &policy(1, 1, 1), 0).is_empty());
        assert!(expired(&[], &policy(1, 1, 1), 0).is_empty());
        assert_eq!(policy(1, 2, 3).for_resolution(RES_1H), 3);
    }

    #[test]
    fn size_retention_deletes_oldest_first_raw_before_its_copies() {
        let blocks = vec![
            (m("r1", 2, 0, &["r1"]), 100),
            (m("c1", 2, RES_5M, &["r1"]), 10),
            (m("r2", 4, 0, &["r2"]), 100),
            (m("c2", 4, RES_5M, &["r2"]), 10),
            (m("r3", 6, 0, &["r3"]), 100),
        ];
        let cap = |bytes: u64, extra: u64| {
            let p = RetentionPolicy {
                max_bytes: Some(bytes),
                ..RetentionPolicy::default()
            };
            expired(&blocks, &p, extra)
        };
        assert!(cap(320, 0).is_empty());
        assert_eq!(cap(319, 0), ["r1"]);
        // r3 + c2 + r2 = 210; c1 next.
        assert_eq!(cap(219, 0), ["r1", "c1"]);
        assert_eq!(cap(210, 0), ["r1", "c1"]);
        assert_eq!(cap(209, 0), ["r1", "c1", "r2"]);
        // WAL bytes count first.
        assert_eq!(cap(320, 1), ["r1"]);
        assert_eq!(cap(100, 1), ["r1", "c1", "r2", "c2", "r3"]);
        // 0 means no limit, as in Prometheus.
        assert!(cap(0, 1000).is_empty());
        // Blocks already gone by time do not count against the size: counting the 5m
        // copies would push r1 over 300.
        let p = RetentionPolicy {
            res_5m_ms: 2 * H,
            max_bytes: Some(300),
            ..RetentionPolicy::default()
        };
        assert_eq!(expired(&blocks, &p, 0), ["c1", "c2"]);
    }

    #[test]
    fn blocks_wait_for_their_downsampled_copy() {
        let th = DownsampleThresholds::default();
        // Raw kept 1 d, 5m kept 30 d: raw blocks wait for their 5m copy.
        let p = RetentionPolicy {
            raw_ms: D,
            res_5m_ms: 30 * D,
            res_1h_ms: 0,
            max_bytes: None,
            downsample: Some(th),
        };
        let blocks = vec![
            (m("old", 2, 0, &["old"]), 1),
            (m("old5", 2, RES_5M, &["old"]), 1),
            (m("owed", 4, 0, &["owed"]), 1),
            (m("new", 48, 0, &["new"]), 1),
        ];
        assert_eq!(expired(&blocks, &p, 0), ["old"]);
        // Without downsampling nothing is owed.
        let plain = RetentionPolicy {
            downsample: None,
            ..p.clone()
        };
        assert_eq!(expired(&blocks, &plain, 0), ["old", "owed"]);
        // A copy that would be past its own retention is not waited for (owed goes),
        // while old5, past its 44 h, waits for the 1h copy that 1h's unlimited
        // retention would keep.
        let short5 = RetentionPolicy {
            res_5m_ms: 44 * H,
            ..p.clone()
        };
        assert_eq!(expired(&blocks, &short5, 0), ["old", "owed"]);
        // A 5m block waits for its 1h copy the same way.
        let blocks = vec![
            (m("f5", 2, RES_5M, &["f"]), 1),
            (m("g5", 4, RES_5M, &["g"]), 1),
            (m("g1", 4, RES_1H, &["g"]), 1),
            (m("new", 400, 0, &["new"]), 1),
        ];
        let p = RetentionPolicy {
            res_5m_ms: 10 * D,
            ..p
        };
        assert_eq!(expired(&blocks, &p, 0), ["g5"]);
        // Size retention does not wait.
        let sized = RetentionPolicy {
            max_bytes: Some(1),
            ..p
        };
        assert_eq!(expired(&blocks, &sized, 0), ["f5", "g5", "g1"]);
    }
}
