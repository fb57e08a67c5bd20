//! Merging blocks into one (Prometheus's `LeveledCompactor.Compact`): series joined by
//! labels across the inputs, deleted samples dropped, overlapping data merged by
//! timestamp without duplicates. Raw series are decoded whatever their chunks'
//! encoding and written again as packed chunks (longer than the inputs', their
//! timestamps shared across series); aggregate chunks that overlap nothing and lose
//! nothing to a tombstone are copied byte for byte, the rest decoded and encoded again. Also [`superseded`]: the inputs a crash left behind after their merge. The new
//! block is written through `BlockWriter` (tmp, fsync, rename); deleting the inputs is
//! the caller's job.

use super::CompactError;
use super::downsample::{decode_aggregate, encode_aggregate_series};
use crate::model::{Labels, Sample};
use crate::tsdb::block::chunks::ENC_AGGR;
use crate::tsdb::block::tombstones::{self, Interval};
use crate::tsdb::block::{
    Block, BlockCompaction, BlockDesc, BlockMeta, BlockStats, BlockWriter, ChunkMeta, META_VERSION,
};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Merges `blocks` (one or more, all of one resolution) into a new block in `dir` and
/// returns its meta: the union of their time ranges, level one above the highest,
/// sources the union of theirs, parents the inputs. Where blocks overlap, a timestamp
/// present in several keeps the value of the block first in `(min time, ULID)` order,
/// as the `Db`'s querier answers. A result without samples is still written (an empty
/// block) so that its parents are superseded all the same. Compacting a single block
/// rewrites it without its tombstones (clean_tombstones).
pub fn compact(dir: &Path, blocks: &[Arc<Block>]) -> Result<BlockMeta, CompactError> {
    let mut order: Vec<&Block> = blocks.iter().map(|b| b.as_ref()).collect();
    order.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
    let Some(first) = order.first() else {
        return Err(CompactError::NoBlocks);
    };
    let resolution = first.meta().resolution;
    if let Some(b) = order.iter().find(|b| b.meta().resolution != resolution) {
        return Err(CompactError::MixedResolutions(
            resolution,
            b.meta().resolution,
        ));
    }
    let meta = merged_meta(&order);
    let mut w = BlockWriter::new(dir)?;
    let mut cursors: Vec<Cursor> = order.iter().map(|b| Cursor::new(b)).collect();
    for c in &mut cursors {
        c.load()?;
    }
    let mut scratch = Scratch::default();
    while let Some(labels) = cursors
        .iter()
        .filter_map(|c| c.labels.as_ref())
        .min()
        .cloned()
    {
        let mut parts: Vec<Part> = Vec::new();
        for c in &mut cursors {
            if c.labels.as_ref() == Some(&labels) {
                parts.push(Part {
                    block: c.block,
                    chunks: std::mem::take(&mut c.chunks),
                    deleted: c.block.deleted_intervals(c.ord),
                });
                c.ord += 1;
                c.load()?;
            }
        }
        let metas = if resolution == 0 {
            write_raw_series(&mut w, &parts, &mut scratch)?
        } else {
            write_aggregate_series(&mut w, &parts, resolution)?
        };
        w.add_series(labels, metas)?;
    }
    Ok(w.finish(meta)?)
}

/// The blocks that are a parent of another block present: merged already, left behind
/// by a crash between the merged block's rename and their deletion. Sorted, unique.
pub fn superseded(metas: &[BlockMeta]) -> Vec<String> {
    let present: HashSet<&str> = metas.iter().map(|m| m.ulid.as_str()).collect();
    let gone: BTreeSet<&str> = metas
        .iter()
        .flat_map(|m| {
            m.compaction
                .parents
                .iter()
                .map(|p| p.ulid.as_str())
                .filter(|p| *p != m.ulid && present.contains(p))
        })
        .collect();
    gone.into_iter().map(str::to_string).collect()
}

/// The meta of the merge of `order` (sorted); ULID and stats are filled in on write.
fn merged_meta(order: &[&Block]) -> BlockMeta {
    let metas: Vec<&BlockMeta> = order.iter().map(|b| b.meta()).collect();
    let sources: BTreeSet<&String> = metas.iter().flat_map(|m| &m.compaction.sources).collect();
    let mut downsampled_from: Vec<BlockDesc> = Vec::new();
    for d in metas.iter().flat_map(|m| &m.downsampled_from) {
        if !downsampled_from.iter().any(|x| x.ulid == d.ulid) {
            downsampled_from.push(d.clone());
        }
    }
    BlockMeta {
        ulid: String::new(),
        min_time: metas.iter().map(|m| m.min_time).min().unwrap_or(0),
        max_time: metas.iter().map(|m| m.max_time).max().unwrap_or(0),
        stats: BlockStats::default(),
        compaction: BlockCompaction {
            level: metas.iter().map(|m| m.compaction.level).max().unwrap_or(0) + 1,
            sources: sources.into_iter().cloned().collect(),
            parents: metas.iter().map(|m| BlockDesc::of(m)).collect(),
        },
        version: META_VERSION,
        resolution: metas.first().map_or(0, |m| m.resolution),
        downsampled_from,
    }
}

/// Walks one input block's series in ordinal (= label) order.
struct Cursor<'a> {
    block: &'a Block,
    ord: u32,
    labels: Option<Labels>,
    ids: Vec<(u32, u32)>,
    chunks: Vec<ChunkMeta>,
}

impl<'a> Cursor<'a> {
    fn new(block: &'a Block) -> Self {
        Cursor {
            block,
            ord: 0,
            labels: None,
            ids: Vec::new(),
            chunks: Vec::new(),
        }
    }

    /// Decodes series `ord` (or clears `labels` past the last one).
    fn load(&mut self) -> Result<(), CompactError> {
        let ix = self.block.index();
        if self.ord >= ix.num_series() {
            self.labels = None;
            return Ok(());
        }
        if !ix.series(self.ord, &mut self.ids, &mut self.chunks) {
            return Err(CompactError::Series(
                self.ord,
                self.block.meta().ulid.clone(),
            ));
        }
        self.labels = Some(Labels::from_pairs(
            self.ids.iter().map(|&(n, v)| (ix.symbol(n), ix.symbol(v))),
        ));
        Ok(())
    }
}

/// One input block's share of a series.
struct Part<'a> {
    block: &'a Block,
    chunks: Vec<ChunkMeta>,
    deleted: Vec<Interval>,
}

/// Buffers reused across series.
#[derive(Default)]
struct Scratch {
    /// Every kept sample of the series: timestamp, input index, value.
    tagged: Vec<(i64, usize, f64)>,
    decoded: Vec<Sample>,
    merged: Vec<Sample>,
}

fn chunk<'b>(block: &'b Block, c: &ChunkMeta) -> Result<(u8, &'b [u8]), CompactError> {
    block
        .chunks()
        .chunk_enc(c.r)
        .ok_or_else(|| CompactError::Chunk(block.meta().ulid.clone(), c.r))
}

/// Whether the parts' chunks, taken in order, follow one another without overlapping.
fn disjoint(parts: &[Part]) -> bool {
    let mut last: Option<i64> = None;
    for c in parts.iter().flat_map(|p| &p.chunks) {
        if last.is_some_and(|l| l >= c.mint) {
            return false;
        }
        last = Some(c.maxt);
    }
    true
}

/// Decodes every chunk of the series (packed or XOR), drops deleted samples and, where
/// blocks overlap, keeps the first block's sample of each timestamp; writes the rest as
/// new chunks. Chunks are never copied as they are: merging makes them longer, and a
/// packed chunk may name another chunk of its own block for its timestamps.
fn write_raw_series(
    w: &mut BlockWriter,
    parts: &[Part],
    scratch: &mut Scratch,
) -> Result<Vec<ChunkMeta>, CompactError> {
    let ordered = disjoint(parts);
    let Scratch {
        tagged,
        decoded,
        merged,
    } = scratch;
    tagged.clear();
    merged.clear();
    for (i, p) in parts.iter().enumerate() {
        for c in &p.chunks {
            if tombstones::covers(&p.deleted, c.mint, c.maxt) {
                continue;
            }
            decoded.clear();
            if !p.block.chunks().decode_ref(c.r, decoded) {
                return Err(CompactError::Chunk(p.block.meta().ulid.clone(), c.r));
            }
            let kept = decoded.iter().filter(|s| !deleted(&p.deleted, s.t));
            if ordered {
                merged.extend(kept);
            } else {
                tagged.extend(kept.map(|s| (s.t, i, s.v)));
            }
        }
    }
    if !ordered {
        tagged.sort_by_key(|s| (s.0, s.1));
        tagged.dedup_by_key(|s| s.0);
        merged.extend(tagged.iter().map(|&(t, _, v)| Sample { t, v }));
    }
    let mut out = Vec::new();
    w.add_samples(merged, &mut out)?;
    Ok(out)
}

#[inline]
fn deleted(ivs: &[Interval], t: i64) -> bool {
    ivs.iter().any(|&(a, b)| a <= t && t <= b)
}

fn write_aggregate_series(
    w: &mut BlockWriter,
    parts: &[Part],
    resolution: i64,
) -> Result<Vec<ChunkMeta>, CompactError> {
    let untouched = parts.iter().all(|p| {
        p.chunks
            .iter()
            .all(|c| !tombstones::overlaps(&p.deleted, c.mint, c.maxt))
    });
    if disjoint(parts) && untouched {
        let mut out = Vec::new();
        for p in parts {
            for c in &p.chunks {
                let (enc, data) = chunk(p.block, c)?;
                if enc != ENC_AGGR {
                    return Err(CompactError::Chunk(p.block.meta().ulid.clone(), c.r));
                }
                out.push(w.add_chunk(ENC_AGGR, c.mint, c.maxt, data)?);
            }
        }
        return Ok(out);
    }
    // Each of the five streams merged on its own, as raw samples are above.
    let mut streams: [Vec<(i64, usize, f64)>; 5] = Default::default();
    for (i, p) in parts.iter().enumerate() {
        for c in &p.chunks {
            let (enc, data) = chunk(p.block, c)?;
            if enc != ENC_AGGR {
                return Err(CompactError::Chunk(p.block.meta().ulid.clone(), c.r));
            }
            decode_aggregate(data, |slot, t, v| {
                if !deleted(&p.deleted, t) {
                    streams[slot].push((t, i, v));
                }
            });
        }
    }
    let merged: [Vec<(i64, f64)>; 5] = streams.map(|mut s| {
        s.sort_by_key(|x| (x.0, x.1));
        s.dedup_by_key(|x| x.0);
        s.into_iter().map(|x| (x.0, x.2)).collect()
    });
    encode_aggregate_series(w, &merged, resolution)
}

#[cfg(test)]
mod tests {
    use super::super::planner::{exponential_ranges, plan};
    use super::super::testing::{Dump, block, dump, dump_q};
    use super::*;
    use crate::model::{MatchType, Matcher, stale_nan};
    use crate::storage::Querier;
    use crate::tsdb::block::BlockQuerier;
    use crate::tsdb::querier::MergeQuerier;
    use crate::tsdb::testing::lbls;

    const H: i64 = 3_600_000;

    /// 120 series over `[from, to)` at 15 s: counters with resets, gauges, a series
    /// with a gap, one that ends with a stale marker half way, one that starts late.
    fn population(from: i64, to: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
        (0..120)
            .map(|i: i64| {
                let kind = ["counter", "gauge", "gappy", "stale"][(i % 4) as usize];
                let l = lbls(&[
                    ("__name__", kind),
                    ("i", &format!("{i:03}")),
                    ("job", if i % 3 == 0 { "db" } else { "api" }),
                ]);
                let mut s = Vec::new();
                let mut t = from + (i % 15) * 1000;
                while t < to {
                    let k = t / 15_000;
                    let v = match kind {
                        "counter" => ((k % 500) * (i + 1)) as f64,
                        "gauge" => ((k * 7 + i) % 23) as f64 - 11.5,
                        _ => (k + i) as f64 * 0.5,
                    };
                    let skip = kind == "gappy" && (k / 40) % 3 == 1;
                    let late = i == 5 && t < 7 * H;
                    if kind == "stale" && (k / 100) % 4 == 3 {
                        if (k % 100) == 0 {
                            s.push((t, stale_nan()));
                        }
                    } else if !skip && !late {
                        s.push((t, v));
                    }
                    t += 15_000;
                }
                (l, s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect()
    }

    fn matcher_sets() -> Vec<Vec<Matcher>> {
        let m = |n: &str, k, v: &str| Matcher::new(k, n, v).unwrap();
        vec![
            vec![m("__name__", MatchType::Regex, ".+")],
            vec![m("job", MatchType::Equal, "db")],
            vec![
                m("i", MatchType::Regex, "0[0-4].*"),
                m("__name__", MatchType::NotEqual, "gauge"),
            ],
        ]
    }

    fn ranges() -> Vec<(i64, i64)> {
        vec![
            (i64::MIN, i64::MAX),
            (0, 2 * H - 1),
            (2 * H - 1, 2 * H),
            (H + 7, 7 * H + 3),
            (5 * H, 5 * H + 15_000),
            (17 * H, 30 * H),
        ]
    }

    /// Every matcher set over every range, through a querier merging `blocks` as the
    /// Db's does.
    fn answers(blocks: &[Arc<Block>]) -> Vec<Dump> {
        let mut sorted = blocks.to_vec();
        sorted.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
        let mut out = Vec::new();
        for (a, b) in ranges() {
            let parts: Vec<Box<dyn Querier>> = sorted
                .iter()
                .filter(|x| x.overlaps(a, b))
                .map(|x| Box::new(BlockQuerier::new(x.clone(), a, b)) as Box<dyn Querier>)
                .collect();
            let q = MergeQuerier::new(parts);
            for ms in matcher_sets() {
                out.push(dump_q(&q, &ms, None));
            }
        }
        out
    }

    #[test]
    fn planned_compaction_through_three_levels_keeps_every_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let all = population(0, 20 * H);
        let mut blocks: Vec<Arc<Block>> = (0..10)
            .map(|k| {
                let part: Vec<_> = all
                    .iter()
                    .map(|(l, s)| {
                        let s = s
                            .iter()
                            .copied()
                            .filter(|x| x.0 >= k * 2 * H && x.0 < (k + 1) * 2 * H)
                            .collect::<Vec<_>>();
                        (l.clone(), s)
                    })
                    .filter(|(_, s)| !s.is_empty())
                    .collect();
                block(tmp.path(), &part, k * 2 * H, (k + 1) * 2 * H)
            })
            .collect();
        let want = answers(&blocks);
        let chunks_before: u64 = blocks.iter().map(|b| b.meta().stats.num_chunks).sum();
        let size_before: u64 = blocks.iter().map(|b| b.size()).sum();
        let samples_before: u64 = blocks.iter().map(|b| b.meta().stats.num_samples).sum();
        let ranges = exponential_ranges(2 * H, 15 * 24 * H);
        let mut rounds = 0;
        while let Some(ids) = plan(
            &blocks.iter().map(|b| b.meta_snapshot()).collect::<Vec<_>>(),
            &ranges,
        ) {
            let inputs: Vec<_> = blocks
                .iter()
                .filter(|b| ids.contains(&b.meta().ulid))
                .cloned()
                .collect();
            let meta = compact(tmp.path(), &inputs).unwrap();
            assert_eq!(meta.compaction.parents.len(), ids.len());
            let merged = Arc::new(Block::open(&tmp.path().join(&meta.ulid)).unwrap());
            blocks.retain(|b| !ids.contains(&b.meta().ulid));
            blocks.push(merged);
            assert_eq!(answers(&blocks), want, "after round {rounds}");
            rounds += 1;
        }
        // 9 level-1 blocks became 3 of 6 h and then one of 18 h; the newest stays.
        assert_eq!(rounds, 4);
        let mut shapes: Vec<_> = blocks
            .iter()
            .map(|b| {
                let m = b.meta();
                (
                    m.min_time / H,
                    m.max_time / H,
                    m.compaction.level,
                    m.compaction.sources.len(),
                )
            })
            .collect();
        shapes.sort();
        assert_eq!(shapes, [(0, 18, 3, 9), (18, 20, 1, 1)]);
        // Merged series are packed again in longer chunks: fewer of them, fewer bytes.
        let chunks_after: u64 = blocks.iter().map(|b| b.meta().stats.num_chunks).sum();
        let size_after: u64 = blocks.iter().map(|b| b.size()).sum();
        assert!(
            chunks_after < chunks_before,
            "{chunks_before} -> {chunks_after}"
        );
        assert!(size_after < size_before, "{size_before} -> {size_after}");
        let samples_after: u64 = blocks.iter().map(|b| b.meta().stats.num_samples).sum();
        assert_eq!(samples_after, samples_before);
    }

    #[test]
    fn overlapping_blocks_merge_without_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let s = |name: &str, pts: &[(i64, f64)]| (lbls(&[("__name__", name)]), pts.to_vec());
        let a = block(
            tmp.path(),
            &[
                s("x", &[(10, 1.0), (20, 2.0), (30, 3.0)]),
                s("y", &[(10, 1.0)]),
            ],
            0,
            100,
        );
        let b = block(
            tmp.path(),
            &[
                s("x", &[(5, 50.0), (20, 200.0), (25, 250.0), (120, 1.0)]),
                s("z", &[(60, 6.0)]),
            ],
            0,
            150,
        );
        let want = answers(&[a.clone(), b.clone()]);
        let meta = compact(tmp.path(), &[b.clone(), a.clone()]).unwrap();
        let m = Arc::new(Block::open(&tmp.path().join(&meta.ulid)).unwrap());
        assert_eq!(answers(std::slice::from_ref(&m)), want);
        let x = dump(&m, &[Matcher::equal("__name__", "x")]);
        let times: Vec<i64> = x[0].1.iter().map(|s| s.0).collect();
        assert_eq!(times, [5, 10, 20, 25, 30, 120]);
        assert_eq!((meta.min_time, meta.max_time), (0, 150));
        assert_eq!(meta.stats.num_samples, 8);
        assert_eq!(meta.compaction.level, 2);
        let mut src = vec![a.meta().ulid.clone(), b.meta().ulid.clone()];
        src.sort();
        assert_eq!(meta.compaction.sources, src);
    }

    #[test]
    fn tombstones_are_applied_and_not_carried() {
        let tmp = tempfile::tempdir().unwrap();
        let all = population(0, 2 * H);
        let b = block(tmp.path(), &all, 0, 2 * H);
        let ms = [Matcher::equal("job", "db")];
        // Half of one chunk, all of another, and a whole series.
        assert!(b.delete(&ms, 10 * 60_000, 40 * 60_000).unwrap() > 0);
        assert_eq!(
            b.delete(&[Matcher::equal("i", "003")], i64::MIN, i64::MAX)
                .unwrap(),
            1
        );
        let want = answers(std::slice::from_ref(&b));
        let before = dump(&b, &[Matcher::equal("job", "db")]);
        assert!(
            before
                .iter()
                .all(|(_, s)| s.iter().all(|x| x.0 < 10 * 60_000 || x.0 > 40 * 60_000))
        );
        let meta = compact(tmp.path(), std::slice::from_ref(&b)).unwrap();
        assert_eq!(meta.stats.num_tombstones, 0);
        assert_eq!(meta.stats.num_series, b.meta().stats.num_series - 1);
        let m = Arc::new(Block::open(&tmp.path().join(&meta.ulid)).unwrap());
        assert_eq!(m.tombstone_count(), 0);
        assert_eq!(answers(&[m]), want);
    }

    #[test]
    fn a_wholly_deleted_block_compacts_to_an_empty_one() {
        let tmp = tempfile::tempdir().unwrap();
        let b = block(tmp.path(), &population(0, 2 * H), 0, 2 * H);
        let all = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
        assert_eq!(
            b.delete(&all, i64::MIN, i64::MAX).unwrap(),
            b.meta().stats.num_series
        );
        assert!(dump(&b, &all).is_empty());
        let meta = compact(tmp.path(), std::slice::from_ref(&b)).unwrap();
        assert_eq!(meta.stats, BlockStats::default());
        assert_eq!((meta.min_time, meta.max_time), (0, 2 * H));
        assert_eq!(meta.compaction.parents[0].ulid, b.meta().ulid);
        let e = Arc::new(Block::open(&tmp.path().join(&meta.ulid)).unwrap());
        assert!(dump(&e, &all).is_empty());
        assert!(
            BlockQuerier::new(e, 0, H)
                .label_names(&[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn mixed_resolutions_and_nothing_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            compact(tmp.path(), &[]),
            Err(CompactError::NoBlocks)
        ));
        let a = block(
            tmp.path(),
            &[(lbls(&[("__name__", "x")]), vec![(1, 1.0)])],
            0,
            10,
        );
        let meta = super::super::downsample(tmp.path(), &a, super::super::RES_5M).unwrap();
        let d = Arc::new(Block::open(&tmp.path().join(&meta.ulid)).unwrap());
        assert!(matches!(
            compact(tmp.path(), &[a, d]),
            Err(CompactError::MixedResolutions(0, 300_000))
        ));
        // Nothing half-written is left behind.
        let tmps = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(tmps, 0);
    }

    #[test]
    fn superseded_names_parents_still_present() {
        let m = |id: &str, parents: &[&str]| {
            let mut meta = BlockMeta {
                ulid: id.into(),
                min_time: 0,
                max_time: 1,
                stats: BlockStats::default(),
                compaction: BlockCompaction {
                    level: 1,
                    sources: vec![id.into()],
                    parents: Vec::new(),
                },
                version: META_VERSION,
                resolution: 0,
                downsampled_from: Vec::new(),
            };
            meta.compaction.parents = parents
                .iter()
                .map(|p| BlockDesc {
                    ulid: p.to_string(),
                    min_time: 0,
                    max_time: 1,
                })
                .collect();
            meta
        };
        // x merged a and b (a already deleted), y merged x and c: b, c and x remain.
        let metas = [
            m("b", &[]),
            m("c", &[]),
            m("x", &["a", "b"]),
            m("y", &["x", "c"]),
            m("z", &[]),
        ];
        assert_eq!(superseded(&metas), ["b", "c", "x"]);
        assert!(superseded(&metas[..2]).is_empty());
    }
}
