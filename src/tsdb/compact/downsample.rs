//! Downsampling: a copy of a block at a coarser resolution (5m from raw, 1h from raw or
//! from 5m), holding per series and per window `(k*res, (k+1)*res]` the aggregates that
//! `storage::Aggregate` defines: count, sum, min and max of the window's samples (stale
//! markers left out), stamped with the window's last such sample, and the Counter
//! stream, a subsequence of the raw samples that keeps rate and increase right across
//! counter resets. Also which blocks are due for a copy ([`downsample_due`]). The copy is
//! a new block of aggregate chunks (`block::aggr`), written beside its source; nothing
//! here deletes anything. `docs/format/downsampled.md` describes the result.
//!
//! A window that straddles two blocks (only a sample at exactly a block's `minTime` can
//! make one, block ranges being multiples of the resolutions) gets an entry in each
//! copy; sums, counts, minima and maxima over aligned ranges still come out right.

use super::CompactError;
use crate::model::{Labels, Sample, is_stale_nan, stale_nan};
use crate::storage::Aggregate;
use crate::tsdb::block::chunks::{ENC_AGGR, ENC_PACKED, ENC_XOR};
use crate::tsdb::block::tombstones::{self, Interval};
use crate::tsdb::block::{
    Block, BlockCompaction, BlockDesc, BlockMeta, BlockStats, BlockWriter, ChunkMeta, META_VERSION,
    aggr,
};
use crate::tsdb::chunkenc::{XorAppender, XorIterator};
use std::collections::HashSet;
use std::path::Path;

/// The 5-minute resolution, in milliseconds.
pub const RES_5M: i64 = 300_000;
/// The 1-hour resolution, in milliseconds.
pub const RES_1H: i64 = 3_600_000;

/// An aggregate chunk holds at most this many windows, as a raw chunk holds 120 samples.
const WINDOWS_PER_CHUNK: usize = 120;
/// A chunk is cut early when one of its streams reaches this many samples: a Counter
/// stream of a counter reset at every scrape grows by two samples per reset.
const MAX_STREAM_SAMPLES: u16 = 4096;

/// When blocks get downsampled copies: a block whose end lies more than the threshold
/// before the newest data gets one. 0 turns a resolution off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownsampleThresholds {
    /// Raw blocks get a 5m copy (the default: 40 h).
    pub res_5m_after_ms: i64,
    /// 5m blocks (raw blocks when 5m is off) get a 1h copy (default: 10 d).
    pub res_1h_after_ms: i64,
}

impl Default for DownsampleThresholds {
    fn default() -> Self {
        DownsampleThresholds {
            res_5m_after_ms: 40 * RES_1H,
            res_1h_after_ms: 240 * RES_1H,
        }
    }
}

impl DownsampleThresholds {
    /// The resolution a block of resolution `res` is downsampled to next, if any.
    pub fn next_resolution(&self, res: i64) -> Option<i64> {
        match res {
            0 if self.res_5m_after_ms > 0 => Some(RES_5M),
            0 | RES_5M if self.res_1h_after_ms > 0 => Some(RES_1H),
            _ => None,
        }
    }
}

/// The end of the window `(end - res, end]` holding timestamp `t`.
#[inline]
pub fn window_end(t: i64, res: i64) -> i64 {
    (t.saturating_sub(1).div_euclid(res) + 1).saturating_mul(res)
}

/// The blocks that need a downsampled copy, as `(ulid, resolution)`, oldest first: raw
/// blocks ending more than `res_5m_after_ms` before `now_max` (the newest sample's
/// time) for 5m, and 5m blocks (raw blocks when 5m is off) ending more than
/// `res_1h_after_ms` before it for 1h, unless copies at that resolution already hold
/// all of the block's data: a copy's meta carries the `compaction.sources` of its
/// source, so compacting a raw block after its copy was made does not make another.
pub fn downsample_due(
    metas: &[BlockMeta],
    now_max: i64,
    thresholds: &DownsampleThresholds,
) -> Vec<(String, i64)> {
    let mut due: Vec<(&BlockMeta, i64)> = Vec::new();
    for (target, after) in [
        (RES_5M, thresholds.res_5m_after_ms),
        (RES_1H, thresholds.res_1h_after_ms),
    ] {
        if after <= 0 {
            continue;
        }
        let covered: HashSet<&str> = metas
            .iter()
            .filter(|m| m.resolution == target)
            .flat_map(|m| m.compaction.sources.iter().map(String::as_str))
            .collect();
        for m in metas {
            let source = thresholds.next_resolution(m.resolution) == Some(target);
            let old = now_max.saturating_sub(m.max_time) > after;
            let done = m
                .compaction
                .sources
                .iter()
                .all(|s| covered.contains(s.as_str()));
            if source && old && !done {
                due.push((m, target));
            }
        }
    }
    due.sort_by(|a, b| (a.0.min_time, a.1, &a.0.ulid).cmp(&(b.0.min_time, b.1, &b.0.ulid)));
    due.into_iter().map(|(m, r)| (m.ulid.clone(), r)).collect()
}

/// Writes a copy of `block` at `resolution_ms` (coarser than the block's and a multiple
/// of it) in `dir` and returns its meta: same time range, level and sources,
/// `resolution` set and the source named in `downsampledFrom`. Deleted samples are left
/// out. A block without samples gives an empty copy, which still records that the
/// source has one.
pub fn downsample(
    dir: &Path,
    block: &Block,
    resolution_ms: i64,
) -> Result<BlockMeta, CompactError> {
    let src = block.meta();
    let from = src.resolution;
    if resolution_ms <= from || (from > 0 && resolution_ms % from != 0) {
        return Err(CompactError::Resolution {
            ulid: src.ulid.clone(),
            from,
            to: resolution_ms,
        });
    }
    let mut w = BlockWriter::new(dir)?;
    let ix = block.index();
    let (mut ids, mut chunks) = (Vec::new(), Vec::new());
    let mut input = Input::default();
    let mut folded: [Vec<(i64, f64)>; 5] = Default::default();
    for ord in 0..ix.num_series() {
        if !ix.series(ord, &mut ids, &mut chunks) {
            return Err(CompactError::Series(ord, src.ulid.clone()));
        }
        let deleted = block.deleted_intervals(ord);
        input.read(block, &chunks, &deleted, from == 0)?;
        for (slot, out) in folded.iter_mut().enumerate() {
            out.clear();
            input.fold(slot, resolution_ms, out);
        }
        let metas = encode_aggregate_series(&mut w, &folded, resolution_ms)?;
        let labels = Labels::from_pairs(ids.iter().map(|&(n, v)| (ix.symbol(n), ix.symbol(v))));
        w.add_series(labels, metas)?;
    }
    let meta = BlockMeta {
        ulid: String::new(),
        min_time: src.min_time,
        max_time: src.max_time,
        stats: BlockStats::default(),
        compaction: BlockCompaction {
            level: src.compaction.level,
            sources: src.compaction.sources.clone(),
            parents: Vec::new(),
        },
        version: META_VERSION,
        resolution: resolution_ms,
        downsampled_from: vec![BlockDesc::of(src)],
    };
    Ok(w.finish(meta)?)
}

/// One series of the source block, decoded: raw samples, or the five streams of a
/// downsampled block. Buffers are reused from series to series.
#[derive(Default)]
struct Input {
    raw: bool,
    samples: Vec<(i64, f64)>,
    streams: [Vec<(i64, f64)>; 5],
    decoded: Vec<Sample>,
}

impl Input {
    fn read(
        &mut self,
        block: &Block,
        chunks: &[ChunkMeta],
        deleted: &[Interval],
        raw: bool,
    ) -> Result<(), CompactError> {
        self.raw = raw;
        self.samples.clear();
        self.streams.iter_mut().for_each(Vec::clear);
        let keep = |t: i64| !deleted.iter().any(|&(a, b)| a <= t && t <= b);
        for c in chunks {
            if tombstones::covers(deleted, c.mint, c.maxt) {
                continue;
            }
            let bad = || CompactError::Chunk(block.meta().ulid.clone(), c.r);
            let (enc, data) = block.chunks().chunk_enc(c.r).ok_or_else(bad)?;
            match (raw, enc) {
                (true, ENC_XOR | ENC_PACKED) => {
                    self.decoded.clear();
                    if !block.chunks().decode_ref(c.r, &mut self.decoded) {
                        return Err(bad());
                    }
                    let kept = self.decoded.iter().filter(|s| keep(s.t));
                    self.samples.extend(kept.map(|s| (s.t, s.v)));
                }
                (false, ENC_AGGR) => {
                    let streams = &mut self.streams;
                    decode_aggregate(data, |slot, t, v| {
                        if keep(t) {
                            streams[slot].push((t, v));
                        }
                    })
                }
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    /// Folds the input into windows of `res` for the aggregate at `slot`.
    fn fold(&self, slot: usize, res: i64, out: &mut Vec<(i64, f64)>) {
        let a = aggr::ORDER[slot];
        if self.raw {
            // Raw samples read as aggregates: each sample a window of its own.
            let it = self
                .samples
                .iter()
                .filter_map(|&(t, v)| a.of_raw(v).map(|v| (t, v)));
            fold_stream(a, it, res, out);
        } else {
            fold_stream(a, self.streams[slot].iter().copied(), res, out);
        }
    }
}

/// Folds one stream (strictly increasing timestamps) into windows of `res`.
fn fold_stream(
    a: Aggregate,
    it: impl Iterator<Item = (i64, f64)>,
    res: i64,
    out: &mut Vec<(i64, f64)>,
) {
    if a == Aggregate::Counter {
        return fold_counter(it, res, out);
    }
    let mut cur: Option<(i64, i64, f64)> = None; // (window end, last t, value)
    for (t, v) in it {
        // Timestamps only grow, so a sample at or before the window's end is in it; the
        // division is paid once per window, not per sample.
        match &mut cur {
            Some((we, lt, acc)) if t <= *we => {
                *lt = t;
                *acc = combine(a, *acc, v);
            }
            _ => {
                if let Some((_, lt, acc)) = cur {
                    out.push((lt, acc));
                }
                cur = Some((window_end(t, res), t, v));
            }
        }
    }
    if let Some((_, lt, acc)) = cur {
        out.push((lt, acc));
    }
}

/// Combines two values of one window, as PromQL's `*_over_time` would: counts and sums
/// add, and min/max let a number replace a NaN but not the other way round.
#[inline]
fn combine(a: Aggregate, acc: f64, v: f64) -> f64 {
    match a {
        Aggregate::Min if v < acc || acc.is_nan() => v,
        Aggregate::Max if v > acc || acc.is_nan() => v,
        Aggregate::Min | Aggregate::Max => acc,
        _ => acc + v,
    }
}

/// The Counter stream of a sequence of samples: each window's first and last sample,
/// both samples of every counter reset (a value below the previous one, stale markers
/// not counted), and a stale marker where a window ends with one (after that
/// window's last value). Rate and increase over it equal the raw answer up to the
/// extrapolation at a range's edges. Applied to a Counter stream it gives the same
/// result as applied to the raw samples, so 1h copies from 5m ones equal those from raw.
fn fold_counter(it: impl Iterator<Item = (i64, f64)>, res: i64, out: &mut Vec<(i64, f64)>) {
    fn push(out: &mut Vec<(i64, f64)>, s: (i64, f64)) {
        if out.last().is_none_or(|l| l.0 < s.0) {
            out.push(s);
        }
    }
    let mut prev: Option<(i64, f64)> = None;
    let mut window: Option<i64> = None;
    let mut last_value: Option<(i64, f64)> = None;
    let mut ends_stale: Option<i64> = None;
    let flush = |out: &mut Vec<(i64, f64)>, last: Option<(i64, f64)>, stale: Option<i64>| {
        if let Some(s) = last {
            push(out, s);
        }
        if let Some(t) = stale {
            push(out, (t, stale_nan()));
        }
    };
    let mut window_first = true;
    for (t, v) in it {
        if window.is_none_or(|w| t > w) {
            flush(out, last_value.take(), ends_stale.take());
            window = Some(window_end(t, res));
            window_first = true;
        }
        if is_stale_nan(v) {
            ends_stale = Some(t);
            continue;
        }
        ends_stale = None;
        match prev {
            Some(p) if v < p.1 => {
                push(out, p);
                push(out, (t, v));
            }
            // Each window's first sample: a range aligned to windows then starts at the
            // raw first sample, so rate's extrapolation matches the raw answer.
            _ if window_first => push(out, (t, v)),
            _ => {}
        }
        window_first = false;
        prev = Some((t, v));
        last_value = Some((t, v));
    }
    flush(out, last_value, ends_stale);
}

/// Calls `f(slot, t, v)` for every sample of every sub-chunk of an aggregate chunk.
pub(super) fn decode_aggregate(data: &[u8], mut f: impl FnMut(usize, i64, f64)) {
    for slot in 0..aggr::ORDER.len() {
        if let Some((a, b)) = aggr::sub_range(data, slot) {
            for (t, v) in XorIterator::new(&data[a..b]) {
                f(slot, t, v);
            }
        }
    }
}

/// Writes five folded streams (in `aggr::ORDER`, each with strictly increasing
/// timestamps) as aggregate chunks of up to 120 windows of `res`, cut where every
/// stream's samples before the cut precede all after it, and returns their metas.
pub(super) fn encode_aggregate_series(
    w: &mut BlockWriter,
    streams: &[Vec<(i64, f64)>; 5],
    res: i64,
) -> Result<Vec<ChunkMeta>, CompactError> {
    let mut out = Vec::new();
    let mut apps: [XorAppender; 5] = Default::default();
    let mut pos = [0usize; 5];
    let mut buf = Vec::new();
    // (mint, maxt, windows, last window) of the chunk being filled.
    let mut open: Option<(i64, i64, usize, i64)> = None;
    let mut emit =
        |apps: &mut [XorAppender; 5], mint: i64, maxt: i64| -> Result<(), CompactError> {
            buf.clear();
            aggr::encode(
                [
                    apps[0].bytes(),
                    apps[1].bytes(),
                    apps[2].bytes(),
                    apps[3].bytes(),
                    apps[4].bytes(),
                ],
                &mut buf,
            );
            out.push(w.add_chunk(ENC_AGGR, mint, maxt, &buf)?);
            apps.iter_mut().for_each(XorAppender::reset);
            Ok(())
        };
    while let Some(t) = (0..5)
        .filter_map(|i| streams[i].get(pos[i]).map(|s| s.0))
        .min()
    {
        let e = window_end(t, res);
        if let Some((mint, maxt, windows, last)) = open {
            let full = e != last && windows >= WINDOWS_PER_CHUNK;
            let crowded = apps.iter().any(|a| a.num_samples() >= MAX_STREAM_SAMPLES);
            if full || crowded {
                emit(&mut apps, mint, maxt)?;
                open = None;
            }
        }
        let (mint, _, windows, last) = open.unwrap_or((t, t, 0, i64::MIN));
        open = Some((mint, t, windows + usize::from(e != last), e));
        for i in 0..5 {
            if let Some(&(st, v)) = streams[i].get(pos[i])
                && st == t
            {
                apps[i].append(st, v);
                pos[i] += 1;
            }
        }
    }
    if let Some((mint, maxt, _, _)) = open {
        emit(&mut apps, mint, maxt)?;
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::testing::{Dump, block, dump_q};
    use super::*;
    use crate::model::{Matcher, Sample};
    use crate::promql::{Engine, EngineOptions, Value, parse_expr};
    use crate::storage::{AppendError, Appender, Querier, SeriesRef, Storage, StorageError};
    use crate::tsdb::block::BlockQuerier;
    use crate::tsdb::testing::lbls;
    use std::sync::Arc;

    const H: i64 = 3_600_000;

    /// Counter with resets, a gauge with gaps and stale markers (one window ending
    /// stale, one stale marker mid-window), a series with NaNs, over `[0, hours)`.
    pub(super) fn fixture(hours: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let mut counter = Vec::new();
        let mut gauge = Vec::new();
        let mut nan = Vec::new();
        let mut smooth = Vec::new();
        let mut c = 0.0;
        let mut sc = 0.0;
        let mut t = 7_000;
        let mut k = 0i64;
        while t < hours * H {
            // The rate swings by ±60% over 6 h, plus jitter; values stay multiples of
            // 1/4 so that sums are exact in any order. Resets every 97 minutes, and twice
            // in a row once.
            let phase = (k as f64) * std::f64::consts::TAU / 1440.0;
            let inc = ((20.0 + 12.0 * phase.sin()).round() + (k % 3) as f64) * 0.25;
            c += inc;
            sc += inc;
            smooth.push((t, sc));
            if k % 388 == 200 || k == 1001 || k == 1002 {
                c = (k % 7) as f64;
            }
            counter.push((t, c));
            let gap = (k / 60) % 5 == 2;
            let stale_window = k % 120 == 59;
            if stale_window {
                gauge.push((t, stale_nan()));
            } else if !gap {
                gauge.push((t, ((k * 13) % 31) as f64 * 0.5 - 3.0));
            }
            nan.push((
                t,
                if k % 11 == 3 {
                    f64::NAN
                } else {
                    (k % 9) as f64
                },
            ));
            t += 15_000;
            k += 1;
        }
        // A stale marker in the middle of a window, the series going on afterwards.
        gauge.retain(|s| s.0 != 7_000 + 15_000 * 7);
        gauge.push((7_000 + 15_000 * 7, stale_nan()));
        gauge.sort_by_key(|s| s.0);
        vec![
            (lbls(&[("__name__", "c")]), counter),
            (lbls(&[("__name__", "g")]), gauge),
            (lbls(&[("__name__", "n")]), nan),
            (lbls(&[("__name__", "s")]), smooth),
        ]
    }

    /// The raw computation of one aggregate per window, straight from the samples.
    fn by_window(samples: &[(i64, f64)], res: i64, a: Aggregate) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, i64, f64)> = Vec::new();
        for &(t, v) in samples.iter().filter(|s| !is_stale_nan(s.1)) {
            let e = window_end(t, res);
            let x = if a == Aggregate::Count { 1.0 } else { v };
            match out.last_mut() {
                Some(w) if w.0 == e => {
                    w.1 = t;
                    w.2 = match a {
                        Aggregate::Min if x < w.2 || w.2.is_nan() => x,
                        Aggregate::Max if x > w.2 || w.2.is_nan() => x,
                        Aggregate::Min | Aggregate::Max => w.2,
                        _ => w.2 + x,
                    };
                }
                _ => out.push((e, t, x)),
            }
        }
        out.into_iter().map(|w| (w.1, w.2.to_bits())).collect()
    }

    fn open(dir: &Path, meta: &BlockMeta) -> Arc<Block> {
        Arc::new(Block::open(&dir.join(&meta.ulid)).unwrap())
    }

    fn one(b: &Arc<Block>, name: &str, a: Aggregate) -> Vec<(i64, u64)> {
        let q = BlockQuerier::new(b.clone(), i64::MIN, i64::MAX);
        let d: Dump = dump_q(&q, &[Matcher::equal("__name__", name)], Some(a));
        d.into_iter().next().map(|s| s.1).unwrap_or_default()
    }

    #[test]
    fn windows_hold_exactly_the_raw_aggregates() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(26);
        let raw = block(tmp.path(), &data, 0, 26 * H);
        for res in [RES_5M, RES_1H] {
            let meta = downsample(tmp.path(), &raw, res).unwrap();
            assert_eq!(meta.resolution, res);
            assert_eq!((meta.min_time, meta.max_time), (0, 26 * H));
            assert_eq!(meta.compaction.sources, raw.meta().compaction.sources);
            assert_eq!(meta.downsampled_from[0].ulid, raw.meta().ulid);
            let d = open(tmp.path(), &meta);
            for (labels, samples) in &data {
                let name = labels.get("__name__").unwrap();
                for a in [
                    Aggregate::Count,
                    Aggregate::Sum,
                    Aggregate::Min,
                    Aggregate::Max,
                ] {
                    assert_eq!(
                        one(&d, name, a),
                        by_window(samples, res, a),
                        "{name} {a:?} {res}"
                    );
                }
            }
            // 26 h of 5m windows do not fit one chunk of 120.
            if res == RES_5M {
                assert!(d.meta().stats.num_chunks > 3, "{:?}", d.meta().stats);
            }
        }
    }

    #[test]
    fn counter_stream_is_a_subsequence_keeping_resets_and_window_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(8);
        let raw = block(tmp.path(), &data, 0, 8 * H);
        let d = open(tmp.path(), &downsample(tmp.path(), &raw, RES_5M).unwrap());
        for (labels, samples) in &data {
            let name = labels.get("__name__").unwrap();
            let got = one(&d, name, Aggregate::Counter);
            // Plain select reads the same stream.
            let plain = dump_q(
                &BlockQuerier::new(d.clone(), i64::MIN, i64::MAX),
                &[Matcher::equal("__name__", name)],
                None,
            );
            assert_eq!(plain[0].1, got);
            let raw_bits: Vec<(i64, u64)> = samples.iter().map(|s| (s.0, s.1.to_bits())).collect();
            // A subsequence of the raw samples...
            let mut it = raw_bits.iter();
            assert!(got.iter().all(|g| it.any(|r| r == g)), "{name}");
            assert_eq!(
                got.first(),
                raw_bits.iter().find(|s| !is_stale_nan(f64::from_bits(s.1)))
            );
            // ...with every window's last sample (the last value and, if the window ends
            // stale, the stale marker)...
            let mut i = 0;
            while i < samples.len() {
                let e = window_end(samples[i].0, RES_5M);
                let j = samples[i..]
                    .iter()
                    .position(|s| window_end(s.0, RES_5M) != e)
                    .map_or(samples.len(), |p| i + p);
                let w = &samples[i..j];
                let last = w.last().unwrap();
                assert!(
                    got.contains(&(last.0, last.1.to_bits())),
                    "{name} window {e}"
                );
                if let Some(v) = w.iter().rev().find(|s| !is_stale_nan(s.1)) {
                    assert!(got.contains(&(v.0, v.1.to_bits())), "{name} window {e}");
                }
                i = j;
            }
            // ...and both sides of every reset.
            let live: Vec<_> = samples.iter().filter(|s| !is_stale_nan(s.1)).collect();
            for p in live.windows(2).filter(|p| p[1].1 < p[0].1) {
                assert!(got.contains(&(p[0].0, p[0].1.to_bits())));
                assert!(got.contains(&(p[1].0, p[1].1.to_bits())));
            }
        }
        let c = one(&d, "c", Aggregate::Counter);
        // Two (the window's first and last) per window of 20 raw ones, plus resets.
        assert!(
            c.len() < data[0].1.len() / 8,
            "{} of {}",
            c.len(),
            data[0].1.len()
        );
        // The gauge's stale window ends stale; its mid-window marker is dropped.
        let g = one(&d, "g", Aggregate::Counter);
        assert!(g.iter().any(|s| is_stale_nan(f64::from_bits(s.1))));
        assert!(!g.contains(&(7_000 + 15_000 * 7, stale_nan().to_bits())));
    }

    #[test]
    fn an_hour_from_five_minutes_equals_an_hour_from_raw() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(30);
        let raw = block(tmp.path(), &data, 0, 30 * H);
        let m5 = open(tmp.path(), &downsample(tmp.path(), &raw, RES_5M).unwrap());
        let from_raw = open(tmp.path(), &downsample(tmp.path(), &raw, RES_1H).unwrap());
        let from_5m = open(tmp.path(), &downsample(tmp.path(), &m5, RES_1H).unwrap());
        assert_eq!(from_5m.meta().downsampled_from[0].ulid, m5.meta().ulid);
        for name in ["c", "g", "n", "s"] {
            for a in aggr::ORDER {
                // The fixture's values are multiples of 1/4: sums are exact either way.
                assert_eq!(
                    one(&from_5m, name, a),
                    one(&from_raw, name, a),
                    "{name} {a:?}"
                );
            }
        }
        // Nothing coarser than 1h, nothing finer than the source, no odd multiples.
        assert!(matches!(
            downsample(tmp.path(), &from_raw, RES_5M),
            Err(CompactError::Resolution { .. })
        ));
        assert!(downsample(tmp.path(), &m5, 7 * 60_000).is_err());
        assert!(downsample(tmp.path(), &m5, RES_5M).is_err());
    }

    #[test]
    fn deleted_samples_stay_out_of_the_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(4);
        let raw = block(tmp.path(), &data, 0, 4 * H);
        raw.delete(&[Matcher::equal("__name__", "c")], H + 1, 2 * H)
            .unwrap();
        let d = open(tmp.path(), &downsample(tmp.path(), &raw, RES_5M).unwrap());
        let kept: Vec<_> = data[0]
            .1
            .iter()
            .copied()
            .filter(|s| s.0 <= H || s.0 > 2 * H)
            .collect();
        assert_eq!(
            one(&d, "c", Aggregate::Sum),
            by_window(&kept, RES_5M, Aggregate::Sum)
        );
        // Tombstones on a copy hide its aggregates too.
        d.delete(&[Matcher::equal("__name__", "g")], 0, 3 * H)
            .unwrap();
        assert!(one(&d, "g", Aggregate::Max).iter().all(|s| s.0 > 3 * H));
    }

    #[test]
    fn compacting_copies_equals_copying_compacted_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(4);
        let part = |a: i64, b: i64| -> Vec<_> {
            data.iter()
                .map(|(l, s)| {
                    (
                        l.clone(),
                        s.iter().copied().filter(|x| x.0 >= a && x.0 < b).collect(),
                    )
                })
                .collect()
        };
        let r1 = block(tmp.path(), &part(0, 2 * H), 0, 2 * H);
        let r2 = block(tmp.path(), &part(2 * H, 4 * H), 2 * H, 4 * H);
        let c1 = open(tmp.path(), &downsample(tmp.path(), &r1, RES_5M).unwrap());
        let c2 = open(tmp.path(), &downsample(tmp.path(), &r2, RES_5M).unwrap());
        let joined = open(
            tmp.path(),
            &super::super::compact(tmp.path(), &[r1, r2]).unwrap(),
        );
        let want = open(
            tmp.path(),
            &downsample(tmp.path(), &joined, RES_5M).unwrap(),
        );
        // Adjacent copies: aggregate chunks copied as they are.
        let adjacent = open(
            tmp.path(),
            &super::super::compact(tmp.path(), &[c1.clone(), c2.clone()]).unwrap(),
        );
        assert_eq!(adjacent.meta().resolution, RES_5M);
        assert_eq!(adjacent.meta().downsampled_from.len(), 2);
        // An old copy overlapping a new one: merged stream by stream, no duplicates.
        let overlapping = open(
            tmp.path(),
            &super::super::compact(tmp.path(), &[want.clone(), c1]).unwrap(),
        );
        for name in ["c", "g", "n", "s"] {
            for a in aggr::ORDER {
                let w = one(&want, name, a);
                assert!(!w.is_empty());
                let mut w_adjacent = w.clone();
                if a == Aggregate::Counter {
                    // Each copy keeps its own first sample: the second block's is extra.
                    let first = one(&c2, name, a)[0];
                    if !w_adjacent.contains(&first) {
                        w_adjacent.push(first);
                        w_adjacent.sort_by_key(|s| s.0);
                    }
                }
                assert_eq!(one(&adjacent, name, a), w_adjacent, "{name} {a:?}");
                assert_eq!(one(&overlapping, name, a), w, "{name} {a:?}");
            }
        }
        assert_eq!(overlapping.meta().stats, want.meta().stats);
        // Fine enough for the planner: copies of one sources set are covered.
        let metas = [joined.meta().clone(), want.meta().clone()];
        assert!(
            downsample_due(&metas, i64::MAX / 2, &DownsampleThresholds::default())
                .iter()
                .all(|d| d.1 != RES_5M)
        );
    }

    /// A storage over one block, for the engine.
    struct OneBlock(Arc<Block>);
    struct NoAppends;
    impl Appender for NoAppends {
        fn append(&mut self, _: &Labels, _: i64, _: f64) -> Result<SeriesRef, AppendError> {
            Err(AppendError::OutOfBounds)
        }
        fn append_ref(&mut self, _: SeriesRef, _: i64, _: f64) -> Result<(), AppendError> {
            Err(AppendError::OutOfBounds)
        }
        fn commit(&mut self) -> Result<(), StorageError> {
            Ok(())
        }
        fn rollback(&mut self) {}
    }
    impl Storage for OneBlock {
        fn appender(&self) -> Box<dyn Appender> {
            Box::new(NoAppends)
        }
        fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
            Ok(Box::new(BlockQuerier::new(self.0.clone(), mint, maxt)))
        }
    }

    fn points(v: Value) -> Vec<Sample> {
        match v {
            Value::Matrix(m) => m.into_iter().next().map(|s| s.1).unwrap_or_default(),
            other => panic!("not a matrix: {other:?}"),
        }
    }

    /// Rate and increase over 12 windows through the PromQL engine, downsampled against
    /// raw, for a smooth counter (`s`, its rate swinging ±60% over 6 h) and one reset
    /// every 97 minutes (`c`).
    #[test]
    fn rate_over_the_counter_stream_matches_raw_rate() {
        let tmp = tempfile::tempdir().unwrap();
        let data = fixture(26);
        let raw = block(tmp.path(), &data, 0, 26 * H);
        let engine = Engine::new(EngineOptions::default());
        let raw_s = OneBlock(raw.clone());
        for res in [RES_5M, RES_1H] {
            let d = open(tmp.path(), &downsample(tmp.path(), &raw, res).unwrap());
            let down_s = OneBlock(d.clone());
            // Ranges of 12 windows, evaluated at window ends and half way between.
            let range = 12 * res;
            for (name, offset) in [("s", 0), ("s", res / 2), ("c", 0), ("c", res / 2)] {
                for f in ["rate", "increase"] {
                    let q = parse_expr(&format!("{f}({name}[{range}ms])")).unwrap();
                    let (start, end) = (range + offset, 26 * H - res + offset);
                    let a = points(engine.range(&raw_s, &q, start, end, res).unwrap());
                    let b = points(engine.range(&down_s, &q, start, end, res).unwrap());
                    assert_eq!(a.len(), b.len(), "{f} {res}");
                    assert!(a.len() > 10);
                    let mut worst = 0f64;
                    for (x, y) in a.iter().zip(&b) {
                        assert_eq!(x.t, y.t);
                        worst = worst.max((x.v - y.v).abs() / x.v.abs());
                    }
                    // The stated tolerances. Ranges aligned to windows start and end at
                    // a window's first and last raw sample: the raw answer exactly.
                    // Half a window off, the first sample sits up to half a window
                    // after the range's start and the per-window first samples shorten
                    // the average interval, which can stop Prometheus's extrapolation
                    // at half an interval.
                    let tol = match (res, name, offset) {
                        (_, _, 0) => 1e-12,
                        (RES_5M, "s", _) => 0.015,
                        (RES_5M, _, _) => 0.06,
                        (_, "s", _) => 0.06,
                        _ => 0.12,
                    };
                    assert!(
                        worst < tol,
                        "{f}({name}) at {res}+{offset}: worst error {worst}"
                    );
                }
            }
        }
    }

    #[test]
    fn due_blocks_by_threshold_and_coverage() {
        let th = DownsampleThresholds::default();
        let m = |id: &str, mint: i64, maxt: i64, res: i64, sources: &[&str]| BlockMeta {
            ulid: id.into(),
            min_time: mint * H,
            max_time: maxt * H,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: sources.iter().map(|s| s.to_string()).collect(),
                parents: Vec::new(),
            },
            version: META_VERSION,
            resolution: res,
            downsampled_from: Vec::new(),
        };
        let now = 300 * H;
        let metas = vec![
            // Raw, old enough for 5m (ends 46 h before now) and covered by a5.
            m("a", 0, 18, 0, &["a"]),
            m("a5", 0, 18, RES_5M, &["a"]),
            // Raw, 260 h old: needs 5m; its 5m copy will need 1h later.
            m("b", 18, 40, 0, &["b1", "b2"]),
            // Raw compacted after one of its sources got a copy: the rest is owed.
            m("c", 200, 254, 0, &["c1", "c2"]),
            m("c5", 200, 218, RES_5M, &["c1"]),
            // Exactly 40 h old: not more than the threshold yet.
            m("d", 254, 260, 0, &["d"]),
            // A 5m block ending 241 h before now: 1h due (a5 is old enough too).
            m("e5", 40, 59, RES_5M, &["e"]),
            m("f1", 40, 60, RES_1H, &["f"]),
        ];
        let due = downsample_due(&metas, now, &th);
        let want = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(u, r)| (u.to_string(), *r)).collect()
        };
        assert_eq!(
            due,
            want(&[("a5", RES_1H), ("b", RES_5M), ("e5", RES_1H), ("c", RES_5M)])
        );
        // 5m off: raw blocks go to 1h directly after 10 d (and old 5m blocks still do).
        let no5 = DownsampleThresholds {
            res_5m_after_ms: 0,
            ..th
        };
        assert_eq!(
            downsample_due(&metas, now, &no5),
            want(&[("a", RES_1H), ("a5", RES_1H), ("b", RES_1H), ("e5", RES_1H)])
        );
        assert!(
            downsample_due(
                &metas,
                now,
                &DownsampleThresholds {
                    res_5m_after_ms: 0,
                    res_1h_after_ms: 0
                }
            )
            .is_empty()
        );
        assert_eq!(window_end(1, RES_5M), RES_5M);
        assert_eq!(window_end(RES_5M, RES_5M), RES_5M);
        assert_eq!(window_end(RES_5M + 1, RES_5M), 2 * RES_5M);
        assert_eq!(window_end(0, RES_5M), 0);
        assert_eq!(window_end(-1, RES_5M), 0);
    }
}
