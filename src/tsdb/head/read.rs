//! Querying the head: selecting series by matchers, label names and values, and the
//! sample iterator over a snapshot of a series' chunks. A select holds each series'
//! stripe lock only long enough to clone its closed chunk handles and copy its open
//! chunk; labels are resolved afterwards in short turns of the symbol lock, the ids kept
//! alive by a pin on the head's id readers (a sweep spares them).

use super::chunks_disk::{ChunkBytes, ChunkReader};
use super::series::ClosedChunk;
use super::tombstones::{Interval, is_deleted};
use super::{Head, SeriesPages, locate};
use crate::model::{Label, Labels, Matcher, Sample};
use crate::storage::{Querier, SampleIterator, Series, StorageError};
use crate::tsdb::chunkenc::XorDecoder;
use crate::tsdb::index::SeriesLabels;
use parking_lot::MutexGuard;
use roaring::RoaringBitmap;
use std::sync::Arc;

/// A read view of the head over `[mint, maxt]` (both inclusive).
pub struct HeadQuerier {
    head: Arc<Head>,
    mint: i64,
    maxt: i64,
}

impl HeadQuerier {
    /// Nothing before the head's min valid time is served: after a truncation, blocks
    /// hold that data (and a chunk straddling the bound would otherwise show part of it).
    pub fn new(head: Arc<Head>, mint: i64, maxt: i64) -> Self {
        let mint = mint.max(head.min_valid_time());
        HeadQuerier { head, mint, maxt }
    }

    /// Whether every committed sample lies inside the range, so the index alone can
    /// answer label questions without looking at series time ranges.
    fn covers_head(&self) -> bool {
        let (hmin, hmax) = self.head.time_range();
        self.mint <= hmin && self.maxt >= hmax
    }

    /// Calls `f` with each series of `refs` that has samples in range, holding its
    /// stripe's lock (reused across consecutive refs of one stripe).
    fn for_each_in_range(&self, refs: &RoaringBitmap, mut f: impl FnMut(u32, &super::MemSeries)) {
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        for r in refs {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == st => g,
                _ => &mut held.insert((st, self.head.stripe(st))).1,
            };
            if let Some(s) = g.get(page, slot)
                && s.overlaps(self.mint, self.maxt)
            {
                f(r, s);
            }
        }
    }

    fn matching(&self, matchers: &[Matcher]) -> RoaringBitmap {
        let p = self.head.postings.read();
        if matchers.is_empty() {
            p.all().clone()
        } else {
            p.select(matchers)
        }
    }
}

impl Querier for HeadQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        if self.mint > self.maxt {
            return Ok(Vec::new());
        }
        // Ids copied below are resolved after the stripe locks are gone. Without the pin,
        // the truncator could collect a series in between and two sweeps free its ids:
        // they then resolved to "" (an empty label value, which `Labels` rejects) or,
        // once reused, to another series' strings.
        let _pin = self.head.id_readers.pin();
        let refs = self.head.postings.read().select(matchers);
        // Under stripe locks: label ids (into one shared buffer) and chunk snapshots
        // (into one shared snapshot, open chunks copied into one buffer).
        let mut ids: Vec<u32> = Vec::new();
        let mut found: Vec<Found> = Vec::new();
        let mut snap = SnapshotBuilder::new(self.head.chunk_reader());
        self.for_each_in_range(&refs, |r, s| {
            let mut deleted = Vec::new();
            self.head.deleted_into(r, &mut deleted);
            if !deleted.is_empty()
                && let (Some(a), Some(b)) = (s.min_time(), s.max_time())
                && wholly_deleted(&deleted, a.max(self.mint), b.min(self.maxt))
            {
                // Every sample in range is deleted: the series is not there at all.
                return;
            }
            let first = snap.chunks.len();
            snap.add(s, self.mint, self.maxt);
            if snap.chunks.len() == first {
                return;
            }
            let start = ids.len();
            for (n, v) in SeriesLabels::pairs(&s.labels) {
                ids.push(n);
                ids.push(v);
            }
            found.push(Found {
                ids: (start as u32, ids.len() as u32),
                chunks: (first as u32, snap.chunks.len() as u32),
                deleted,
            });
        });
        let snap = Arc::new(snap.finish());
        let strings = LabelStrings::resolve(&self.head, &mut ids);
        // Rank slices compare as the labels do: pair by pair, a prefix first.
        let key = |f: &Found| &ids[f.ids.0 as usize..f.ids.1 as usize];
        found.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let mut out = Vec::with_capacity(found.len());
        for f in found {
            let pairs = &ids[f.ids.0 as usize..f.ids.1 as usize];
            let labels = pairs
                .chunks_exact(2)
                .map(|p| Label {
                    name: strings.get(p[0]).to_string(),
                    value: strings.get(p[1]).to_string(),
                })
                .collect();
            let chunks = SnapshotChunks {
                snap: snap.clone(),
                first: f.chunks.0 as usize,
                len: (f.chunks.1 - f.chunks.0) as usize,
            };
            out.push(Series {
                labels: Labels::from_sorted(labels),
                samples: Box::new(ChunkSeriesIterator::with_deleted(
                    chunks, self.mint, self.maxt, f.deleted,
                )),
            });
        }
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if self.mint > self.maxt {
            return Ok(Vec::new());
        }
        if matchers.is_empty() && self.covers_head() {
            let p = self.head.postings.read();
            return Ok(p.label_names().map(str::to_string).collect());
        }
        // As in `select`: the ids are resolved after the stripe locks are gone.
        let _pin = self.head.id_readers.pin();
        let refs = self.matching(matchers);
        let mut names = hashbrown::HashSet::<u32>::new();
        self.for_each_in_range(&refs, |_, s| {
            names.extend(SeriesLabels::pairs(&s.labels).map(|(n, _)| n));
        });
        let ids: Vec<u32> = names.into_iter().collect();
        let mut out = self.head.resolve(&ids);
        out.sort_unstable();
        Ok(out)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if self.mint > self.maxt {
            return Ok(Vec::new());
        }
        if matchers.is_empty() && self.covers_head() {
            // Clone the shared keys under the lock and build strings after it.
            let values: Vec<Arc<str>> = self.head.postings.read().label_values_shared(name);
            return Ok(values.iter().map(|v| v.to_string()).collect());
        }
        // As in `select` (and `name_id` must not be reused for another name meanwhile).
        let _pin = self.head.id_readers.pin();
        let Some(name_id) = self.head.symbols.read().lookup(name) else {
            return Ok(Vec::new());
        };
        let refs = self.matching(matchers);
        let mut values = hashbrown::HashSet::<u32>::new();
        self.for_each_in_range(&refs, |_, s| {
            if let Some((_, v)) = SeriesLabels::pairs(&s.labels).find(|(n, _)| *n == name_id) {
                values.insert(v);
            }
        });
        let ids: Vec<u32> = values.into_iter().collect();
        let mut out = self.head.resolve(&ids);
        out.sort_unstable();
        Ok(out)
    }
}

/// A selected series: its label ids and its chunks, as ranges of the select's buffers.
struct Found {
    ids: (u32, u32),
    chunks: (u32, u32),
    /// The series' deleted intervals (tombstones); usually empty, so no allocation.
    deleted: Vec<Interval>,
}

/// The distinct strings of a select's label ids, in string order. Each id is rewritten
/// as its string's rank, so series sort by comparing integer slices, not strings.
struct LabelStrings {
    /// The strings in order: rank `r` is `strs[r]`.
    strs: Vec<Arc<str>>,
}

impl LabelStrings {
    /// Resolves the distinct ids of `ids` and rewrites each id as its rank. The symbol
    /// lock is taken in short turns, as appends need it to create series.
    fn resolve(head: &Head, ids: &mut [u32]) -> Self {
        // Distinct ids in order of first use; each id becomes its index in `uniq`.
        let mut uniq: Vec<u32> = Vec::new();
        let max = ids.iter().copied().max().unwrap_or(0) as usize;
        if max < ids.len().saturating_mul(8).max(4096) {
            // Ids few and dense enough for a table indexed by id: no hashing, which is
            // most of this step for a select of many series.
            let mut slot = vec![u32::MAX; max + 1];
            for id in ids.iter_mut() {
                let s = &mut slot[*id as usize];
                if *s == u32::MAX {
                    uniq.push(*id);
                    *s = (uniq.len() - 1) as u32;
                }
                *id = *s;
            }
        } else {
            let mut index = hashbrown::HashMap::<u32, u32>::with_capacity(ids.len() / 4);
            for id in ids.iter_mut() {
                *id = *index.entry(*id).or_insert_with(|| {
                    uniq.push(*id);
                    (uniq.len() - 1) as u32
                });
            }
        }
        let mut strs: Vec<Arc<str>> = Vec::with_capacity(uniq.len());
        for batch in uniq.chunks(4096) {
            let sym = head.symbols.read();
            strs.extend(
                batch
                    .iter()
                    .map(|&id| sym.get_arc(id).cloned().unwrap_or_else(|| Arc::from(""))),
            );
        }
        let mut order: Vec<u32> = (0..strs.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| strs[a as usize].cmp(&strs[b as usize]));
        let mut rank = vec![0; strs.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        for id in ids.iter_mut() {
            *id = rank[*id as usize];
        }
        let strs = order.iter().map(|&i| strs[i as usize].clone()).collect();
        LabelStrings { strs }
    }

    fn get(&self, rank: u32) -> &str {
        &self.strs[rank as usize]
    }
}

/// Chunk snapshots of every series of one select, shared by their iterators: closed
/// chunks by handle (mapped from the chunk files), open ones copied into one buffer, so
/// a select allocates per call, not per series.
struct SnapshotBuilder<'h> {
    reader: ChunkReader<'h>,
    chunks: Vec<SnapChunk>,
    open: Vec<u8>,
    /// Indexes of the chunks whose bytes lie in `open`.
    opened: Vec<usize>,
    /// What those chunks point at until `open` is shared.
    placeholder: ChunkBytes,
}

/// One chunk of a snapshot: `data[start..end]`, where `data` is a closed chunk's bytes
/// or the snapshot's buffer of open chunks.
struct SnapChunk {
    maxt: i64,
    /// The value of the sample at `maxt`, for an open chunk (which keeps it in memory).
    last_v: Option<f64>,
    data: ChunkBytes,
    start: u32,
    end: u32,
}

impl<'h> SnapshotBuilder<'h> {
    fn new(reader: ChunkReader<'h>) -> Self {
        SnapshotBuilder {
            reader,
            chunks: Vec::new(),
            open: Vec::new(),
            opened: Vec::new(),
            placeholder: ChunkBytes::from(Vec::new()),
        }
    }

    /// Adds the chunks of `s` that overlap `[mint, maxt]`, as [`MemSeries::snapshot`].
    fn add(&mut self, s: &super::MemSeries, mint: i64, maxt: i64) {
        let first = s.chunks.partition_point(|c| c.maxt < mint);
        for c in &s.chunks[first..] {
            if c.mint > maxt {
                break;
            }
            let Some(c) = c.closed(&mut self.reader) else {
                continue;
            };
            let end = c.data.len() as u32;
            self.chunks.push(SnapChunk {
                maxt: c.maxt,
                last_v: None,
                data: c.data,
                start: 0,
                end,
            });
        }
        if let (Some(hmin), Some((hmax, last_v))) = (s.head.first_t(), s.head.last())
            && hmin <= maxt
            && hmax >= mint
        {
            let start = self.open.len() as u32;
            self.open.extend_from_slice(s.head.bytes());
            self.opened.push(self.chunks.len());
            self.chunks.push(SnapChunk {
                maxt: hmax,
                last_v: Some(f64::from_bits(last_v)),
                data: self.placeholder.clone(),
                start,
                end: self.open.len() as u32,
            });
        }
    }

    fn finish(mut self) -> Snapshot {
        let open = ChunkBytes::from(std::mem::take(&mut self.open));
        for &i in &self.opened {
            self.chunks[i].data = open.clone();
        }
        Snapshot {
            chunks: self.chunks,
        }
    }
}

struct Snapshot {
    chunks: Vec<SnapChunk>,
}

/// One series' chunks in a select's shared [`Snapshot`].
pub struct SnapshotChunks {
    snap: Arc<Snapshot>,
    first: usize,
    len: usize,
}

impl ChunkSet for SnapshotChunks {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn maxt(&self, i: usize) -> i64 {
        self.snap.chunks[self.first + i].maxt
    }
    #[inline]
    fn bytes(&self, i: usize) -> &[u8] {
        if i >= self.len {
            return &[];
        }
        let c = &self.snap.chunks[self.first + i];
        c.data.get(c.start as usize..c.end as usize).unwrap_or(&[])
    }
    #[inline]
    fn newest(&self) -> Option<Sample> {
        let c = &self.snap.chunks[self.first + self.len.checked_sub(1)?];
        Some(Sample {
            t: c.maxt,
            v: c.last_v?,
        })
    }
}

impl Head {
    /// Every series' chunks holding samples in `[mint, maxt)`, for writing a block. Chunks
    /// that cross a boundary or hold deleted samples are re-encoded with only their
    /// samples inside the range and not deleted.
    pub fn chunks_in_range(&self, mint: i64, maxt: i64) -> Vec<(Labels, Vec<ClosedChunk>)> {
        let last = maxt.saturating_sub(1);
        let refs = self.postings.read().all().clone();
        let mut reader = self.chunk_reader();
        let mut ids: Vec<u32> = Vec::new();
        let mut found: Vec<(usize, usize, Vec<ClosedChunk>, Vec<Interval>)> = Vec::new();
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        for r in &refs {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == st => g,
                _ => &mut held.insert((st, self.stripe(st))).1,
            };
            let Some(s) = g.get(page, slot) else { continue };
            let mut chunks = Vec::new();
            s.snapshot(mint, last, &mut reader, &mut chunks);
            if chunks.is_empty() {
                continue;
            }
            let mut deleted = Vec::new();
            self.deleted_into(r, &mut deleted);
            let start = ids.len();
            for (n, v) in SeriesLabels::pairs(&s.labels) {
                ids.push(n);
                ids.push(v);
            }
            found.push((start, ids.len(), chunks, deleted));
        }
        drop(held);
        let mut strings = self.resolve(&ids).into_iter();
        let mut out = Vec::with_capacity(found.len());
        for (start, end, mut chunks, deleted) in found {
            let labels: Vec<Label> = (0..(end - start) / 2)
                .filter_map(|_| {
                    Some(Label {
                        name: strings.next()?,
                        value: strings.next()?,
                    })
                })
                .collect();
            chunks
                .iter_mut()
                .for_each(|c| trim_chunk(c, mint, last, &deleted));
            chunks.retain(|c| c.mint <= c.maxt);
            if !chunks.is_empty() {
                out.push((Labels::from_sorted(labels), chunks));
            }
        }
        out
    }
}

/// Whether sorted intervals cover all of `[mint, maxt]` (merged intervals never touch,
/// so one interval must).
fn wholly_deleted(deleted: &[Interval], mint: i64, maxt: i64) -> bool {
    deleted.iter().any(|&(a, b)| a <= mint && maxt <= b)
}

/// Re-encodes `c` with only its samples in `[mint, maxt]` and outside `deleted`, if it
/// has any others; an emptied chunk gets `mint > maxt`.
fn trim_chunk(c: &mut ClosedChunk, mint: i64, maxt: i64, deleted: &[Interval]) {
    let touches_deleted = deleted.iter().any(|&(a, b)| a <= c.maxt && b >= c.mint);
    if c.mint >= mint && c.maxt <= maxt && !touches_deleted {
        return;
    }
    let mut app = crate::tsdb::chunkenc::XorAppender::new();
    let mut dec = XorDecoder::new(&c.data);
    let mut at = 0;
    while let Some((t, v)) = dec.next(&c.data) {
        if t >= mint && t <= maxt && !is_deleted(deleted, &mut at, t) {
            app.append(t, v);
        }
    }
    match (app.first_t(), app.last()) {
        (Some(a), Some((b, _))) => {
            *c = ClosedChunk {
                mint: a,
                maxt: b,
                data: app.bytes().into(),
            }
        }
        _ => c.mint = c.maxt.saturating_add(1),
    }
}

/// The chunks one series iterator walks: in time order, not overlapping.
pub trait ChunkSet: Send {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The newest timestamp in chunk `i`.
    fn maxt(&self, i: usize) -> i64;
    /// Chunk `i`'s XOR bytes (empty if `i` is out of range).
    fn bytes(&self, i: usize) -> &[u8];
    /// The newest sample of the last chunk, where it is known without decoding.
    fn newest(&self) -> Option<Sample> {
        None
    }
}

impl ChunkSet for Vec<ClosedChunk> {
    #[inline]
    fn len(&self) -> usize {
        Vec::len(self)
    }
    #[inline]
    fn maxt(&self, i: usize) -> i64 {
        self[i].maxt
    }
    #[inline]
    fn bytes(&self, i: usize) -> &[u8] {
        self.get(i).map_or(&[], |c| &c.data)
    }
}

/// Walks a snapshot of one series' chunks, yielding samples within `[mint, maxt]`.
///
/// Each chunk is decoded whole into a buffer when the walk reaches it: one tight loop per
/// chunk rather than a decoder call per sample, and a seek inside a chunk is a binary
/// search. XOR chunks decode only front to back, so reaching any sample of a chunk costs
/// decoding the samples before it anyway.
pub struct ChunkSeriesIterator<S: ChunkSet> {
    chunks: S,
    /// The chunk whose samples are in `buf` (once `loaded`).
    idx: usize,
    loaded: bool,
    /// Chunk `idx`'s samples within the range.
    buf: Vec<Sample>,
    /// The next sample of `buf` to return.
    pos: usize,
    /// A decoded sample lay past `maxt`: no later chunk has anything in range.
    past_end: bool,
    mint: i64,
    maxt: i64,
    /// The sample last returned, which a backwards seek returns again.
    cur: Option<Sample>,
    /// Deleted intervals (sorted, merged) whose samples are skipped; usually empty.
    deleted: Vec<Interval>,
    /// The first interval that may still hold a sample to come.
    del_at: usize,
}

/// The head's series iterator: over shared closed chunks and a copy of the open one.
pub type HeadSeriesIterator = ChunkSeriesIterator<Vec<ClosedChunk>>;

impl<S: ChunkSet> ChunkSeriesIterator<S> {
    pub fn new(chunks: S, mint: i64, maxt: i64) -> Self {
        Self::with_deleted(chunks, mint, maxt, Vec::new())
    }

    /// An iterator that also skips samples inside the sorted, merged `deleted`
    /// intervals (a series' tombstones).
    pub fn with_deleted(chunks: S, mint: i64, maxt: i64, deleted: Vec<Interval>) -> Self {
        ChunkSeriesIterator {
            chunks,
            idx: 0,
            loaded: false,
            buf: Vec::new(),
            pos: 0,
            past_end: false,
            mint,
            maxt,
            cur: None,
            deleted,
            del_at: 0,
        }
    }

    /// Decodes chunk `idx` into `buf`; false past the last chunk or the range's end.
    fn load(&mut self, idx: usize) -> bool {
        self.idx = idx;
        self.buf.clear();
        self.pos = 0;
        if idx >= self.chunks.len() || self.past_end {
            self.loaded = false;
            return false;
        }
        self.loaded = true;
        let bytes = self.chunks.bytes(idx);
        let mut dec = XorDecoder::new(bytes);
        if self.buf.capacity() == 0 {
            self.buf = take_buffer();
        }
        self.buf.reserve(usize::from(dec.num_samples()));
        while let Some((t, v)) = dec.next(bytes) {
            if t > self.maxt {
                self.past_end = true;
                break;
            }
            if t >= self.mint
                && (self.deleted.is_empty() || !is_deleted(&self.deleted, &mut self.del_at, t))
            {
                self.buf.push(Sample { t, v });
            }
        }
        true
    }

    /// The next chunk to load: the current one if it is not loaded yet.
    fn next_idx(&self) -> usize {
        if self.loaded { self.idx + 1 } else { self.idx }
    }
}

impl<S: ChunkSet> Drop for ChunkSeriesIterator<S> {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.buf));
    }
}

thread_local! {
    /// Sample buffers of dropped iterators, for the next ones. A query reads its
    /// series one after another, so a few buffers serve all of them instead of one
    /// allocation per series.
    static BUFFERS: std::cell::RefCell<Vec<Vec<Sample>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many buffers wait per thread, each at most [`MAX_POOLED`] samples.
const POOLED: usize = 8;
const MAX_POOLED: usize = 1024;

fn take_buffer() -> Vec<Sample> {
    BUFFERS
        .try_with(|b| b.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn give_buffer(mut buf: Vec<Sample>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_POOLED {
        return;
    }
    buf.clear();
    let _ = BUFFERS.try_with(|b| {
        let mut pool = b.borrow_mut();
        if pool.len() < POOLED {
            pool.push(buf);
        }
    });
}

impl<S: ChunkSet> SampleIterator for ChunkSeriesIterator<S> {
    #[inline]
    fn next(&mut self) -> Option<Sample> {
        loop {
            if let Some(&s) = self.buf.get(self.pos) {
                self.pos += 1;
                self.cur = Some(s);
                return self.cur;
            }
            if !self.load(self.next_idx()) {
                return None;
            }
        }
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(c) = self.cur
            && c.t >= t
        {
            return Some(c);
        }
        // The loaded chunk holds the target unless its last sample is before it.
        let in_buffer = self.pos < self.buf.len() && self.buf.last().is_some_and(|s| s.t >= t);
        if !in_buffer {
            // Skip whole chunks that end before the target without decoding them.
            let (mut lo, mut hi) = (self.next_idx(), self.chunks.len());
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.chunks.maxt(mid) < t {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            if !self.load(lo) {
                return None;
            }
        }
        let rest = &self.buf[self.pos..];
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }

    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        loop {
            if let Some(rest) = self.buf.get(self.pos..)
                && let Some(&last) = rest.last()
            {
                out.extend_from_slice(rest);
                self.pos = self.buf.len();
                self.cur = Some(last);
                return rest.len();
            }
            if !self.load(self.next_idx()) {
                return 0;
            }
        }
    }

    fn newest_in(&mut self, mint: i64, maxt: i64) -> Option<Sample> {
        // Untouched, and the series' newest sample is known: when it lies at or before
        // both ends, it is the answer (or nothing is, if it is before both starts).
        let fresh = !self.loaded && self.idx == 0 && self.cur.is_none();
        if fresh
            && self.deleted.is_empty()
            && let Some(s) = self.chunks.newest()
            && s.t <= maxt
            && s.t <= self.maxt
        {
            // Stand at the end: nothing after the newest sample remains.
            self.idx = self.chunks.len();
            self.past_end = true;
            if s.t < mint || s.t < self.mint {
                return None;
            }
            self.cur = Some(s);
            return Some(s);
        }
        crate::storage::read_newest_in(self, mint, maxt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchType;
    use crate::storage::Storage;
    use crate::tsdb::Db;
    use crate::tsdb::head::series::{Cutter, MemSeries};
    use crate::tsdb::testing::*;

    /// Six series, created in an order unlike their label order, each with samples at
    /// t = 10 * ref .. 10 * ref + 5.
    fn fixture(dir: &std::path::Path) -> Db {
        let db = open(dir);
        let rows: [&[(&str, &str)]; 6] = [
            &[("__name__", "up"), ("job", "db")],
            &[("__name__", "up"), ("job", "api"), ("path", "/b")],
            &[("__name__", "up"), ("job", "api"), ("path", "/a")],
            &[("__name__", "up"), ("job", "api_v2"), ("path", "/a")],
            &[("__name__", "errors"), ("job", "db")],
            &[("__name__", "errors"), ("job", "apix"), ("path", "/c")],
        ];
        let mut app = db.appender();
        for (i, row) in rows.iter().enumerate() {
            let t = 10 * (i as i64 + 1);
            let r = app.append(&lbls(row), t, 1.0).unwrap();
            app.append_ref(r, t + 5, 2.0).unwrap();
        }
        app.commit().unwrap();
        db
    }

    fn m(name: &str, kind: MatchType, value: &str) -> Matcher {
        Matcher::new(kind, name, value).unwrap()
    }

    #[test]
    fn select_matcher_table_sorted_by_labels() {
        use MatchType::{Equal as EQ, NotEqual as NE, NotRegex as NRE, Regex as RE};
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        type Case<'a> = (&'a [(&'a str, MatchType, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &[("__name__", EQ, "up")],
                &[
                    r#"up{job="api", path="/a"}"#,
                    r#"up{job="api", path="/b"}"#,
                    r#"up{job="api_v2", path="/a"}"#,
                    r#"up{job="db"}"#,
                ],
            ),
            (
                &[("__name__", EQ, "up"), ("path", NE, "/a")],
                &[r#"up{job="api", path="/b"}"#, r#"up{job="db"}"#],
            ),
            (
                &[("__name__", EQ, "up"), ("path", EQ, "")],
                &[r#"up{job="db"}"#],
            ),
            (
                &[("job", RE, "api|db"), ("__name__", EQ, "errors")],
                &[r#"errors{job="db"}"#],
            ),
            (
                &[("job", RE, "api_.*")],
                &[r#"up{job="api_v2", path="/a"}"#],
            ),
            (
                &[("job", NRE, "api.*"), ("__name__", RE, ".+")],
                &[r#"errors{job="db"}"#, r#"up{job="db"}"#],
            ),
            (
                &[("path", RE, "/[ac]|"), ("__name__", EQ, "errors")],
                &[r#"errors{job="apix", path="/c"}"#, r#"errors{job="db"}"#],
            ),
            (&[("__name__", EQ, "nope")], &[]),
        ];
        for (ms, want) in cases {
            let ms: Vec<Matcher> = ms.iter().map(|(n, k, v)| m(n, *k, v)).collect();
            assert_eq!(names(&db, &ms), *want, "{ms:?}");
        }
    }

    #[test]
    fn select_limits_samples_to_the_range() {
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        // Series 2 has samples at 20 and 25, series 3 at 30 and 35.
        let got = dump(&db, 25, 30, &[Matcher::equal("job", "api")]);
        assert_eq!(
            got,
            vec![
                (r#"up{job="api", path="/a"}"#.to_string(), vec![(30, 1.0)]),
                (r#"up{job="api", path="/b"}"#.to_string(), vec![(25, 2.0)]),
            ]
        );
        // Series without samples in range are left out; an inverted range is empty.
        assert_eq!(dump(&db, 26, 29, &[Matcher::equal("job", "api")]), vec![]);
        assert_eq!(dump(&db, 100, 0, &[Matcher::equal("job", "api")]), vec![]);
    }

    #[test]
    fn many_series_across_stripes_and_pages() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        // 20k refs: 313 pages, so every stripe holds two or three pages.
        for i in 0..20_000 {
            let l = lbls(&[
                ("__name__", "m"),
                ("i", &format!("{i:05}")),
                ("mod", &(i % 7).to_string()),
            ]);
            app.append(&l, i, i as f64).unwrap();
        }
        app.commit().unwrap();
        let q = db.querier(0, i64::MAX).unwrap();
        let sel = q.select(&[m("mod", MatchType::Equal, "3")]).unwrap();
        assert_eq!(sel.len(), 2857);
        assert!(sel.windows(2).all(|w| w[0].labels < w[1].labels));
        let mut s = q.select(&[m("i", MatchType::Regex, "1999.")]).unwrap();
        assert_eq!(s.len(), 10);
        assert_eq!(s[3].samples.next().map(|x| x.t), Some(19_993));
        assert_eq!(
            q.label_values("i", &[m("mod", MatchType::Equal, "0")])
                .unwrap()
                .len(),
            2858
        );
        // A range that cuts through the head: only series with samples inside.
        let q = db.querier(100, 199).unwrap();
        assert_eq!(q.label_values("i", &[]).unwrap().len(), 100);
        assert_eq!(
            q.select(&[m("__name__", MatchType::Equal, "m")])
                .unwrap()
                .len(),
            100
        );
    }

    /// Symbol ids are handed out in order of first use, unlike string order; label sets
    /// of different lengths, one a prefix of another, and names before `__name__` must
    /// still come out as `Labels` order them, with each series' own samples.
    #[test]
    fn select_orders_by_label_strings_not_symbol_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let mut rows: Vec<Labels> = Vec::new();
        let mut x = 7u64;
        for i in 0..300 {
            // A small linear congruential generator: varied, repeatable label sets.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut pairs = vec![("__name__", "m".to_string()), ("k", format!("{}", x >> 60))];
            if x & 1 == 0 {
                pairs.push(("z", format!("v{}", (x >> 40) % 5)));
            }
            if x & 2 == 0 {
                pairs.push(("A", format!("{}", (x >> 20) % 3)));
            }
            pairs.push(("i", i.to_string()));
            let l = Labels::from_pairs(pairs);
            app.append(&l, i, i as f64).unwrap();
            rows.push(l);
        }
        // Samples in the open chunk of some series, and after a cut in others.
        for (i, l) in rows.iter().enumerate().step_by(3) {
            for k in 1..130 {
                app.append(l, i as i64 + 1000 * k, k as f64).unwrap();
            }
        }
        app.commit().unwrap();
        let q = db.querier(0, i64::MAX).unwrap();
        let sel = q.select(&[m("__name__", MatchType::Equal, "m")]).unwrap();
        let mut want = rows.clone();
        want.sort();
        let got: Vec<Labels> = sel.iter().map(|s| s.labels.clone()).collect();
        assert_eq!(got, want);
        for mut s in sel {
            let i: i64 = s.labels.get("i").unwrap().parse().unwrap();
            let samples: Vec<_> = std::iter::from_fn(|| s.samples.next()).collect();
            assert_eq!(samples[0].t, i);
            let (n, last) = if i % 3 == 0 {
                (130, 129.0)
            } else {
                (1, i as f64)
            };
            assert_eq!(samples.len(), n, "{}", s.labels);
            assert_eq!(samples[n - 1].v, last);
        }
    }

    #[test]
    fn label_names_and_values_honour_matchers_and_range() {
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        let all = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(all.label_names(&[]).unwrap(), ["__name__", "job", "path"]);
        assert_eq!(
            all.label_values("job", &[]).unwrap(),
            ["api", "api_v2", "apix", "db"]
        );
        assert_eq!(all.label_values("nope", &[]).unwrap(), Vec::<String>::new());
        let errs = [Matcher::equal("__name__", "errors")];
        assert_eq!(all.label_values("job", &errs).unwrap(), ["apix", "db"]);
        assert_eq!(all.label_values("path", &errs).unwrap(), ["/c"]);
        let db_job = [Matcher::equal("job", "db")];
        assert_eq!(all.label_names(&db_job).unwrap(), ["__name__", "job"]);
        // Only series 1 (t 10..15) and 2 (t 20..25) have samples in [0, 20].
        let early = db.querier(0, 20).unwrap();
        assert_eq!(early.label_names(&[]).unwrap(), ["__name__", "job", "path"]);
        assert_eq!(early.label_values("job", &[]).unwrap(), ["api", "db"]);
        assert_eq!(early.label_values("path", &[]).unwrap(), ["/b"]);
        let none = db.querier(0, 5).unwrap();
        assert!(none.label_names(&[]).unwrap().is_empty());
        assert!(none.label_values("job", &db_job).unwrap().is_empty());
    }

    fn iter_over(n: i64, mint: i64, maxt: i64) -> HeadSeriesIterator {
        let mut s = MemSeries::new(Box::new([]));
        for i in 0..n {
            s.append(i * 10, i as f64, Cutter::MEM).unwrap();
        }
        let mut chunks = Vec::new();
        s.snapshot(mint, maxt, &mut ChunkReader::new(None), &mut chunks);
        HeadSeriesIterator::new(chunks, mint, maxt)
    }

    fn drain(it: &mut HeadSeriesIterator) -> Vec<i64> {
        std::iter::from_fn(|| it.next()).map(|s| s.t).collect()
    }

    #[test]
    fn yields_only_samples_in_range() {
        let mut it = iter_over(300, 1195, 2405);
        let ts = drain(&mut it);
        assert_eq!(ts.first(), Some(&1200));
        assert_eq!(ts.last(), Some(&2400));
        assert_eq!(ts.len(), 121);
        assert!(it.next().is_none());
        assert!(drain(&mut iter_over(300, 5000, 6000)).is_empty());
        assert!(drain(&mut iter_over(0, 0, 10)).is_empty());
    }

    /// A select's iterator knows its series' newest sample from the open chunk; an
    /// iterator without it reads. Both answer the same for every range.
    #[test]
    fn newest_in_answers_from_memory_like_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let l = Labels::from_pairs([("__name__", "m")]);
        for k in 0..300 {
            app.append(&l, k * 10, k as f64).unwrap();
        }
        app.commit().unwrap();
        let select = |mint, maxt| {
            let q = db.querier(mint, maxt).unwrap();
            let mut sel = q.select(&[Matcher::equal("__name__", "m")]).unwrap();
            sel.pop().map(|s| s.samples)
        };
        for (mint, maxt) in [
            (0, 5000),
            (2000, 2990),
            (2995, 9000),
            (0, 1234),
            (3000, 4000),
        ] {
            let Some(mut fast) = select(mint, maxt) else {
                continue;
            };
            let mut slow = select(mint, maxt).unwrap();
            for (a, b) in [
                (mint, maxt),
                (mint + 5, maxt - 5),
                (2985, 2995),
                (3000, 9000),
            ] {
                let got = select(mint, maxt).unwrap().newest_in(a, b);
                let want = crate::storage::read_newest_in(&mut *select(mint, maxt).unwrap(), a, b);
                assert_eq!(got, want, "[{mint}, {maxt}] asked [{a}, {b}]");
            }
            // Afterwards the iterator is past everything in range.
            if fast.newest_in(mint, maxt).is_some_and(|s| s.t == 2990) {
                assert_eq!(fast.next(), None);
            }
            let mut batch = Vec::new();
            while slow.next_batch(&mut batch) > 0 {}
            assert_eq!(batch.last().map(|s| s.t), Some(maxt.min(2990) / 10 * 10));
        }
    }

    #[test]
    fn seek_skips_chunks_and_never_goes_back() {
        let mut it = iter_over(300, 0, i64::MAX);
        assert_eq!(it.seek(2501).map(|s| s.t), Some(2510));
        assert_eq!(it.idx, 2);
        // Backwards or equal: the current sample again.
        assert_eq!(it.seek(100).map(|s| s.t), Some(2510));
        assert_eq!(it.seek(2510).map(|s| s.t), Some(2510));
        assert_eq!(it.next().map(|s| s.t), Some(2520));
        assert_eq!(it.seek(2990).map(|s| s.t), Some(2990));
        assert_eq!(it.next(), None);
        assert_eq!(it.seek(2990).map(|s| s.t), Some(2990));
        assert_eq!(it.seek(3000), None);
    }

    #[test]
    fn seek_before_first_next_and_past_range() {
        let mut it = iter_over(50, 100, 300);
        assert_eq!(it.seek(0).map(|s| s.t), Some(100));
        assert_eq!(it.seek(301), None);
        let mut it = iter_over(50, 100, 300);
        assert_eq!(it.seek(299).map(|s| s.t), Some(300));
        assert_eq!(it.next(), None);
    }
}
