//! Choosing which blocks to merge next, with the semantics of Prometheus's
//! `LeveledCompactor.Plan`: overlapping blocks first; else, leaving out the newest block,
//! the first group of adjacent blocks that fills one of the larger ranges (or lies wholly
//! before the newest block); else one block whose tombstones make a rewrite worth it.
//! Also the ranges themselves (`ExponentialBlockRanges` capped as Prometheus's main
//! caps `--storage.tsdb.max-block-duration`). Pure functions of metas; no I/O.

use crate::tsdb::block::BlockMeta;

const DAY_MS: i64 = 24 * 3_600_000;

/// The compaction ranges: `min_block_ms` times 1, 3, 9, ... (ten steps, as Prometheus),
/// cut after the first one above the largest block allowed: 10% of `retention_ms`
/// (0: no time retention), at most 31 days, and never below `min_block_ms`.
pub fn exponential_ranges(min_block_ms: i64, retention_ms: i64) -> Vec<i64> {
    let mut max_block = 31 * DAY_MS;
    if retention_ms != 0 && retention_ms / 10 < max_block {
        max_block = retention_ms / 10;
    }
    max_block = max_block.max(min_block_ms);
    let mut out = Vec::with_capacity(10);
    let mut r = min_block_ms;
    for _ in 0..10 {
        if r > max_block {
            break;
        }
        out.push(r);
        r = r.saturating_mul(3);
    }
    out
}

/// The ULIDs of the blocks to merge next, oldest first, or `None` when there is nothing
/// to do. `ranges` comes from [`exponential_ranges`] (`ranges[0]` the head's block
/// range). Metas should carry current tombstone counts (`Block::meta_snapshot`).
///
/// Blocks of different resolutions are never merged together: each resolution is
/// planned on its own, raw first, then from the finest to the coarsest, and the first
/// plan found is returned (a downsampled copy always overlaps its raw block, which is
/// not an overlap to resolve).
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Option<Vec<String>> {
    let mut resolutions: Vec<i64> = metas.iter().map(|m| m.resolution).collect();
    resolutions.sort_unstable();
    resolutions.dedup();
    resolutions.into_iter().find_map(|res| {
        plan_class(
            metas.iter().filter(|m| m.resolution == res).collect(),
            ranges,
        )
    })
}

fn ulids(ms: &[&BlockMeta]) -> Vec<String> {
    ms.iter().map(|m| m.ulid.clone()).collect()
}

fn plan_class(mut ms: Vec<&BlockMeta>, ranges: &[i64]) -> Option<Vec<String>> {
    if ms.is_empty() {
        return None;
    }
    // The ULID breaks ties so that a plan does not depend on the order metas came in.
    ms.sort_by(|a, b| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
    let overlapping = select_overlapping(&ms);
    if !overlapping.is_empty() {
        return Some(ulids(&overlapping));
    }
    // The newest block (by min time) stays out: it was just cut from the head, and
    // Prometheus leaves users a full block range to back it up before it changes.
    ms.pop();
    let group = select_dirs(&ms, ranges);
    if !group.is_empty() {
        return Some(ulids(&group));
    }
    // A block large enough, with more than 5% of its series carrying tombstones (or a
    // small one deleted wholly), is rewritten on its own to drop them.
    let half = ranges.get(ranges.len() / 2).copied().unwrap_or(i64::MAX);
    for m in ms.iter().rev() {
        let s = &m.stats;
        if m.max_time - m.min_time < half {
            if s.num_tombstones > 0 && s.num_tombstones >= s.num_series {
                return Some(vec![m.ulid.clone()]);
            }
            break;
        }
        if s.num_tombstones as f64 / (s.num_series + 1) as f64 > 0.05 {
            return Some(vec![m.ulid.clone()]);
        }
    }
    None
}

/// The first run of blocks (sorted by min time) whose time ranges overlap, in order.
fn select_overlapping<'a>(ms: &[&'a BlockMeta]) -> Vec<&'a BlockMeta> {
    let mut out: Vec<&BlockMeta> = Vec::new();
    let Some(first) = ms.first() else {
        return out;
    };
    let mut global_maxt = first.max_time;
    for (i, m) in ms.iter().enumerate().skip(1) {
        if m.min_time < global_maxt {
            if out.is_empty() {
                out.push(ms[i - 1]);
            }
            out.push(m);
        } else if !out.is_empty() {
            break;
        }
        global_maxt = global_maxt.max(m.max_time);
    }
    out
}

/// The first group of two or more blocks that spans a whole aligned range or ends before
/// the newest remaining block starts, trying the ranges from the second one up and,
/// within each, the groups oldest first.
fn select_dirs<'a>(ms: &[&'a BlockMeta], ranges: &[i64]) -> Vec<&'a BlockMeta> {
    let Some(newest) = ms.last() else {
        return Vec::new();
    };
    let high_time = newest.min_time;
    for &iv in ranges.iter().skip(1) {
        for group in split_by_range(ms, iv) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                continue;
            };
            let (mint, maxt) = (first.min_time, last.max_time);
            if (maxt - mint == iv || maxt <= high_time) && group.len() > 1 {
                return group;
            }
        }
    }
    Vec::new()
}

/// Groups blocks (sorted by min time) by the aligned range `[k*tr, (k+1)*tr)` their
/// start falls in; a block reaching past the end of its range belongs to no group.
/// E.g. blocks 0-10, 10-20, 50-60, 90-100 with `tr = 30` give [0-10, 10-20], [50-60],
/// [90-100].
fn split_by_range<'a>(ms: &[&'a BlockMeta], tr: i64) -> Vec<Vec<&'a BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < ms.len() {
        let t0 = ms[i].min_time.div_euclid(tr) * tr;
        if ms[i].max_time > t0 + tr {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < ms.len() && ms[i].max_time <= t0 + tr {
            group.push(ms[i]);
            i += 1;
        }
        out.push(group);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::block::{BlockCompaction, BlockStats, META_VERSION};

    const H: i64 = 3_600_000;

    fn meta(name: &str, mint: i64, maxt: i64) -> BlockMeta {
        BlockMeta {
            ulid: name.to_string(),
            min_time: mint,
            max_time: maxt,
            stats: BlockStats {
                num_series: 100,
                ..BlockStats::default()
            },
            compaction: BlockCompaction {
                level: 1,
                sources: vec![name.to_string()],
                parents: Vec::new(),
            },
            version: META_VERSION,
            resolution: 0,
            downsampled_from: Vec::new(),
        }
    }

    /// Blocks named by letter, ranges in hours.
    fn metas(spec: &[(i64, i64)]) -> Vec<BlockMeta> {
        spec.iter()
            .enumerate()
            .map(|(i, &(a, b))| meta(&((b'a' + i as u8) as char).to_string(), a * H, b * H))
            .collect()
    }

    fn run(spec: &[(i64, i64)], ranges: &[i64]) -> Option<String> {
        plan(&metas(spec), ranges).map(|v| v.concat())
    }

    #[test]
    fn exponential_ranges_follow_retention() {
        let d = 24 * H;
        let table: [(i64, i64, &[i64]); 6] = [
            // 15d: blocks up to 1.5d.
            (2 * H, 15 * d, &[2 * H, 6 * H, 18 * H]),
            // No time retention: up to 31d.
            (2 * H, 0, &[2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H]),
            // A year: still 31d at most.
            (
                2 * H,
                365 * d,
                &[2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H],
            ),
            // 1d: 2.4h allows the first range only.
            (2 * H, d, &[2 * H]),
            // Retention below the block range: the block range still applies.
            (2 * H, H, &[2 * H]),
            // 90d: 9d at most, so 243 h is one step too far.
            (H, 90 * d, &[H, 3 * H, 9 * H, 27 * H, 81 * H]),
        ];
        for (min, ret, want) in table {
            assert_eq!(
                exponential_ranges(min, ret),
                want,
                "min {min} retention {ret}"
            );
        }
    }

    #[test]
    fn plan_table() {
        let r = [2 * H, 6 * H, 18 * H, 54 * H];
        type Case<'a> = (&'a [(i64, i64)], Option<&'a str>);
        let table: [Case; 14] = [
            (&[], None),
            (&[(0, 2)], None),
            // The newest is left out, so two blocks never fill 0-6.
            (&[(0, 2), (2, 4)], None),
            (&[(0, 2), (2, 4), (4, 6)], None),
            // A fourth block starts the next range: 0-6 is complete.
            (&[(0, 2), (2, 4), (4, 6), (6, 8)], Some("abc")),
            // The group spans the whole 6h range, a gap inside it notwithstanding.
            (&[(0, 2), (4, 6), (6, 8)], Some("ab")),
            // Complete 6h groups fill 0-18 and go before the next 6h group.
            (
                &[(0, 6), (6, 12), (12, 18), (18, 20), (20, 22)],
                Some("abc"),
            ),
            // The smaller range's groups are tried first.
            (
                &[(0, 6), (6, 12), (12, 14), (14, 16), (16, 18), (18, 20)],
                Some("cde"),
            ),
            // A complete 18h range, however far the newest block is.
            (&[(0, 6), (6, 12), (12, 18), (54, 56)], Some("abc")),
            // Two 18h blocks neither fill 54h nor end before the newest one starts.
            (&[(0, 18), (18, 36), (54, 56)], None),
            // Overlaps come first, newest included, and only the first run of them.
            (&[(0, 2), (1, 3), (2, 4), (10, 12), (11, 13)], Some("abc")),
            (&[(0, 2), (2, 4), (4, 6), (5, 7)], Some("cd")),
            // A block spanning another's range overlaps it.
            (&[(0, 6), (2, 4), (6, 8)], Some("ab")),
            // Misaligned blocks that cross a range boundary join no group.
            (&[(1, 3), (3, 7), (7, 9), (9, 11)], None),
        ];
        for (spec, want) in table {
            assert_eq!(run(spec, &r).as_deref(), want, "{spec:?}");
        }
        // One range only: nothing but overlaps is ever merged.
        assert_eq!(run(&[(0, 2), (2, 4), (4, 6), (6, 8)], &[2 * H]), None);
        // Negative times align to the range below them.
        assert_eq!(
            run(&[(-6, -4), (-4, -2), (-2, 0), (0, 2)], &r).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn tombstones_trigger_a_rewrite_of_one_block() {
        let r = [2 * H, 6 * H, 18 * H];
        let mut ms = metas(&[(0, 18), (18, 36), (36, 38)]);
        assert_eq!(plan(&ms, &r), None);
        // 5 of 100 series: not more than 5%.
        ms[0].stats.num_tombstones = 5;
        assert_eq!(plan(&ms, &r), None);
        ms[0].stats.num_tombstones = 6;
        assert_eq!(plan(&ms, &r), Some(vec!["a".to_string()]));
        // The newest large block is looked at first.
        ms[1].stats.num_tombstones = 50;
        assert_eq!(plan(&ms, &r), Some(vec!["b".to_string()]));
        // The newest block itself is never rewritten, however deleted.
        ms[2].stats.num_tombstones = 1000;
        assert_eq!(plan(&ms, &r), Some(vec!["b".to_string()]));
        // A small block (under ranges[len/2] = 6h) only when deleted wholly, and the
        // search stops at the first small one.
        let mut small = metas(&[(0, 2), (2, 4), (18, 36)]);
        small[0].stats.num_tombstones = 100;
        small[1].stats.num_tombstones = 99;
        assert_eq!(plan(&small, &r), None);
        small[1].stats.num_tombstones = 100;
        assert_eq!(plan(&small, &r), Some(vec!["b".to_string()]));
    }

    #[test]
    fn resolutions_are_planned_apart() {
        let r = [2 * H, 6 * H];
        let mut ms = metas(&[(0, 2), (0, 2), (2, 4), (2, 4), (4, 6), (4, 6), (6, 8)]);
        // b, d, f: 5m copies of a, c, e; they overlap the raw blocks without being an
        // overlap to merge.
        for i in [1, 3, 5] {
            ms[i].resolution = 300_000;
        }
        assert_eq!(plan(&ms, &r).map(|v| v.concat()).as_deref(), Some("ace"));
        // With raw settled, the copies are planned: the newest copy (f) stays out.
        let copies: Vec<_> = ms.iter().filter(|m| m.resolution > 0).cloned().collect();
        assert_eq!(plan(&copies, &r), None);
        let mut more = copies.clone();
        more.push(meta("g", 6 * H, 8 * H));
        more[3].resolution = 300_000;
        assert_eq!(plan(&more, &r).map(|v| v.concat()).as_deref(), Some("bdf"));
    }
}
