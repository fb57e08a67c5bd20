//! The head block: every series written recently, held in memory and made durable by the
//! WAL. Owns the series table (refs -> series, striped), the label-hash lookup (striped),
//! the symbol table and postings, and the head's counters. Appending lives in `append`,
//! querying in `read`, WAL replay in `replay`; this file holds the shared structure and
//! the series lookup. Closed chunks live in `chunks_head/` files (`chunks_disk`).
//!
//! Lock order, outermost first, everywhere: WAL writer -> symbols -> postings -> hash
//! stripe -> series stripe -> chunk files. No path takes an earlier lock while holding a
//! later one.

mod append;
mod checkpoint;
pub mod chunks_disk;
mod read;
mod replay;
mod series;
mod tombstones;
mod truncate;

pub use append::HeadAppender;
pub use checkpoint::CheckpointStats;
pub use chunks_disk::{ChunkBytes, ChunkDiskMapper};
pub use read::{ChunkSeriesIterator, ChunkSet, HeadQuerier, HeadSeriesIterator};
pub use replay::ReplayReport;
pub use series::ClosedChunk;
pub use tombstones::Interval;
pub use truncate::TruncateStats;

use crate::model::Labels;
use crate::storage::{AppendError, SeriesRef};
use crate::tsdb::index::{IdReaders, MemPostings, SeriesLabels, Symbols};
use crate::tsdb::wal::Wal;
use append::AppendBuffers;
use chunks_disk::ChunkReader;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard, RwLock};
use series::{Cutter, MemSeries};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Series stripes. A power of two; 128 keeps concurrent scrape loops apart without
/// costing much for a small head (each stripe is one cache-line-aligned mutex).
const STRIPES: usize = 128;

/// Consecutive refs share a page and a stripe: a target's series are created together,
/// so a commit touches few stripes and reuses each lock for runs of samples.
const PAGE: usize = 64;

/// Series handled per turn of the symbol read lock when collecting series.
const HASH_LOCK_BATCH: usize = 4096;

/// Where a ref lives: stripe, page within the stripe, slot within the page.
#[inline]
fn locate(r: SeriesRef) -> Option<(usize, usize, usize)> {
    if r == 0 || r > u64::from(u32::MAX) {
        return None;
    }
    let i = (r - 1) as usize;
    let block = i / PAGE;
    Some((block % STRIPES, block / STRIPES, i % PAGE))
}

/// The series of one stripe, in pages of `PAGE` slots allocated as refs reach them. A
/// slot is empty until its series is created (refs are handed out before insertion, and
/// replay may leave holes where series were never logged).
#[derive(Default)]
pub(crate) struct SeriesPages {
    pages: Vec<Vec<Option<MemSeries>>>,
}

impl SeriesPages {
    #[inline]
    fn get(&self, page: usize, slot: usize) -> Option<&MemSeries> {
        self.pages.get(page)?.get(slot)?.as_ref()
    }

    #[inline]
    fn get_mut(&mut self, page: usize, slot: usize) -> Option<&mut MemSeries> {
        self.pages.get_mut(page)?.get_mut(slot)?.as_mut()
    }

    /// Puts a series in an empty slot; false if the slot is taken.
    fn insert(&mut self, page: usize, slot: usize, s: MemSeries) -> bool {
        if self.pages.len() <= page {
            self.pages.resize_with(page + 1, Vec::new);
        }
        let p = &mut self.pages[page];
        if p.capacity() == 0 {
            // Exactly one page: growth by doubling would waste up to half of it.
            p.reserve_exact(PAGE);
        }
        if p.len() <= slot {
            p.resize_with(slot + 1, || None);
        }
        if p[slot].is_some() {
            return false;
        }
        p[slot] = Some(s);
        true
    }
}

#[repr(align(128))]
struct Stripe(Mutex<SeriesPages>);

/// Label hash -> ref. Entries pack the hash's high 32 bits with the ref; the stripe is
/// chosen by the low bits. Equal hashes (collisions) are told apart by comparing labels.
#[repr(align(128))]
struct HashStripe(Mutex<HashTable<u64>>);

#[inline]
fn table_hash(hi: u64) -> u64 {
    hi.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Counters and gauges of the head, exported as `cairn_tsdb_*`.
#[derive(Default)]
pub struct HeadCounters {
    pub series: AtomicU64,
    pub chunks: AtomicU64,
    pub samples_appended: AtomicU64,
    pub series_created: AtomicU64,
    pub out_of_order: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_bounds: AtomicU64,
    /// Series collected by truncation, since start.
    pub series_removed: AtomicU64,
}

impl HeadCounters {
    fn count_rejection(&self, e: &AppendError) {
        let c = match e {
            AppendError::OutOfOrder => &self.out_of_order,
            AppendError::DuplicateTimestamp => &self.duplicates,
            AppendError::OutOfBounds => &self.out_of_bounds,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Head {
    stripes: Box<[Stripe]>,
    hashes: Box<[HashStripe]>,
    symbols: RwLock<Symbols>,
    /// Queries holding symbol ids they have not resolved yet; sweeps spare those ids.
    id_readers: IdReaders,
    postings: RwLock<MemPostings>,
    next_ref: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    min_valid_time: AtomicI64,
    pub counters: HeadCounters,
    wal: Option<Wal>,
    /// The data directory's lock, released only when the last user of the head is gone.
    dir_lock: Option<std::fs::File>,
    pool: Mutex<Vec<AppendBuffers>>,
    /// Held by truncation and checkpoints, which must not interleave.
    maintenance: Mutex<()>,
    tombstones: tombstones::Tombstones,
    /// Where closed chunks go; without it (a head with no data directory) they stay in
    /// memory.
    chunks_disk: Option<ChunkDiskMapper>,
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    /// An empty head without a WAL (replay fills it before [`Head::with_wal`]).
    pub fn new() -> Self {
        Head {
            stripes: (0..STRIPES).map(|_| Stripe(Mutex::default())).collect(),
            hashes: (0..STRIPES)
                .map(|_| HashStripe(Mutex::new(HashTable::new())))
                .collect(),
            symbols: RwLock::new(Symbols::new()),
            id_readers: IdReaders::default(),
            postings: RwLock::new(MemPostings::new()),
            next_ref: AtomicU64::new(1),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            counters: HeadCounters::default(),
            wal: None,
            dir_lock: None,
            pool: Mutex::new(Vec::new()),
            maintenance: Mutex::new(()),
            tombstones: tombstones::Tombstones::default(),
            chunks_disk: None,
        }
    }

    /// Writes closed chunks to `disk` from now on (attach before replay, so replayed
    /// chunks go there too).
    pub fn with_chunks_disk(mut self, disk: ChunkDiskMapper) -> Self {
        self.chunks_disk = Some(disk);
        self
    }

    pub fn chunks_disk(&self) -> Option<&ChunkDiskMapper> {
        self.chunks_disk.as_ref()
    }

    /// Where series `r` puts the chunks it closes.
    #[inline]
    fn cutter(&self, r: u64) -> Cutter<'_> {
        Cutter {
            disk: self.chunks_disk.as_ref(),
            series_ref: r,
        }
    }

    fn chunk_reader(&self) -> ChunkReader<'_> {
        ChunkReader::new(self.chunks_disk.as_ref())
    }

    /// Attaches the WAL that commits write to.
    pub fn with_wal(mut self, wal: Wal) -> Self {
        self.wal = Some(wal);
        self
    }

    /// Holds the data directory's lock for as long as the head lives.
    pub fn with_dir_lock(mut self, lock: std::fs::File) -> Self {
        self.dir_lock = Some(lock);
        self
    }

    pub fn wal(&self) -> Option<&Wal> {
        self.wal.as_ref()
    }

    /// Oldest and newest committed sample timestamps; `(i64::MAX, i64::MIN)` when empty,
    /// as Prometheus reports an empty head.
    pub fn time_range(&self) -> (i64, i64) {
        (
            self.min_time.load(Ordering::Relaxed),
            self.max_time.load(Ordering::Relaxed),
        )
    }

    fn note_time_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::Relaxed);
            self.max_time.fetch_max(maxt, Ordering::Relaxed);
        }
    }

    /// Samples older than this are rejected as out of bounds. [`Head::truncate`] raises
    /// it (and logs it); this setter is for tests and does neither.
    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.store(t, Ordering::Relaxed);
    }

    /// The oldest timestamp the head accepts and serves: `i64::MIN` until a truncation.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Relaxed)
    }

    #[inline]
    fn stripe(&self, i: usize) -> MutexGuard<'_, SeriesPages> {
        self.stripes[i].0.lock()
    }

    /// Runs `f` on series `r` under its stripe lock; false if there is no such series.
    fn test_series(&self, r: SeriesRef, f: impl FnOnce(&MemSeries) -> bool) -> bool {
        let Some((st, page, slot)) = locate(r) else {
            return false;
        };
        self.stripe(st).get(page, slot).is_some_and(f)
    }

    /// The series filed under `hash` for which `same` holds. Entries whose hash differs
    /// in the stored 32 bits are skipped without looking at the series.
    fn find_in(
        &self,
        table: &HashTable<u64>,
        hash: u64,
        mut same: impl FnMut(&MemSeries) -> bool,
    ) -> Option<SeriesRef> {
        let hi = hash >> 32;
        table
            .find(table_hash(hi), |&e| {
                e >> 32 == hi && self.test_series(e & 0xffff_ffff, &mut same)
            })
            .map(|e| e & 0xffff_ffff)
    }

    fn intern_ids(&self, labels: &Labels, ids: &mut Vec<u8>) {
        ids.clear();
        let mut sym = self.symbols.write();
        for l in labels {
            let n = sym.intern(&l.name);
            let v = sym.intern(&l.value);
            SeriesLabels::push(ids, n, v);
        }
    }

    /// The ref of the series with these labels, creating it (unlogged, unindexed) if new.
    /// `ids` is scratch space for the encoded labels.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        ids: &mut Vec<u8>,
    ) -> Result<SeriesRef, AppendError> {
        validate(labels)?;
        let hash = labels.stable_hash();
        let stripe = &self.hashes[hash as usize % STRIPES].0;
        loop {
            {
                let sym = self.symbols.read();
                {
                    // Fast path for a known series: compare its stored ids with the
                    // labels' strings, instead of looking every string up.
                    let table = stripe.lock();
                    if let Some(r) =
                        self.find_in(&table, hash, |s| same_labels(&sym, &s.labels, labels))
                    {
                        return Ok(r);
                    }
                }
                // The ids stay valid while `sym` is held: only a sweep (write lock) frees.
                if known_ids(&sym, labels, ids) {
                    return self.insert_new(&sym, stripe, hash, labels, ids);
                }
            }
            // New strings: intern them, then look again under the read lock (a sweep in
            // between may have freed them, which only costs another turn).
            self.intern_ids(labels, ids);
        }
    }

    fn insert_new(
        &self,
        sym: &Symbols,
        stripe: &Mutex<HashTable<u64>>,
        hash: u64,
        labels: &Labels,
        ids: &[u8],
    ) -> Result<SeriesRef, AppendError> {
        let mut table = stripe.lock();
        // Another appender may have created it since the lookup above.
        if let Some(r) = self.find_in(&table, hash, |s| *s.labels == *ids) {
            return Ok(r);
        }
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let Some((st, page, slot)) = locate(r) else {
            return Err(AppendError::InvalidSeries(
                labels.to_string(),
                "the head is full (2^32 series)",
            ));
        };
        let inserted = self
            .stripe(st)
            .insert(page, slot, MemSeries::new(ids.into()));
        if !inserted {
            return Err(AppendError::InvalidSeries(
                labels.to_string(),
                "series ref in use",
            ));
        }
        retain_ids(sym, ids);
        let hi = hash >> 32;
        table.insert_unique(table_hash(hi), (hi << 32) | r, |&e| table_hash(e >> 32));
        Ok(r)
    }

    /// Adds committed series to the postings (once each), making them visible.
    fn publish(&self, refs: &[u32]) {
        if refs.is_empty() {
            return;
        }
        let sym = self.symbols.read();
        let mut postings = self.postings.write();
        let mut created = 0;
        for &r in refs {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            let mut g = self.stripe(st);
            let Some(s) = g.get_mut(page, slot) else {
                continue;
            };
            if s.logged {
                continue;
            }
            s.logged = true;
            let pairs = SeriesLabels::pairs(&s.labels)
                .filter_map(|(n, v)| Some((sym.get_arc(n)?, sym.get_arc(v)?)));
            postings.add(r, pairs);
            created += 1;
        }
        self.counters.series.fetch_add(created, Ordering::Relaxed);
        self.counters
            .series_created
            .fetch_add(created, Ordering::Relaxed);
    }

    /// Cardinality of the head's index for `/api/v1/status/tsdb`: top `limit` entries.
    pub fn postings_stats(&self, limit: usize) -> crate::tsdb::index::stats::PostingsStats {
        crate::tsdb::index::stats::postings_stats(&self.postings.read(), limit)
    }

    /// Resolves symbol ids to strings, taking the symbol lock in short turns so a large
    /// query never holds up series creation for long.
    fn resolve(&self, ids: &[u32]) -> Vec<String> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(4096) {
            let sym = self.symbols.read();
            out.extend(batch.iter().map(|&id| sym.get(id).to_string()));
        }
        out
    }
}

/// [`Labels::stable_hash`] of the labels that encoded ids spell, hashed in one pass
/// over `buf` (one call instead of four streaming updates per label).
fn hash_ids_into(sym: &Symbols, enc: &[u8], buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    for (n, v) in SeriesLabels::pairs(enc) {
        buf.extend_from_slice(sym.get(n).as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(sym.get(v).as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// [`validate`] for label pairs as logged.
fn validate_pairs(labels: &[(&str, &str)]) -> Result<(), &'static str> {
    if labels.is_empty() {
        return Err("empty label set");
    }
    if labels.iter().any(|(n, v)| n.is_empty() || v.is_empty()) {
        return Err("empty label name or value");
    }
    if labels.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("label names not sorted and unique");
    }
    Ok(())
}

/// Encodes `labels` as symbol ids into `ids` if every string is already known.
fn known_ids(sym: &Symbols, labels: &Labels, ids: &mut Vec<u8>) -> bool {
    ids.clear();
    for l in labels {
        match (sym.lookup(&l.name), sym.lookup(&l.value)) {
            (Some(n), Some(v)) => SeriesLabels::push(ids, n, v),
            _ => return false,
        }
    }
    true
}

/// Counts a new series as a user of each of its symbols.
fn retain_ids(sym: &Symbols, ids: &[u8]) {
    for (n, v) in SeriesLabels::pairs(ids) {
        sym.retain(n);
        sym.retain(v);
    }
}

/// Counts a series fewer as a user of each of its symbols.
fn release_ids(sym: &Symbols, ids: &[u8]) {
    for (n, v) in SeriesLabels::pairs(ids) {
        sym.release(n);
        sym.release(v);
    }
}

/// [`Labels::stable_hash`] of the labels that encoded ids spell, without building them.
fn hash_ids(sym: &Symbols, enc: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in SeriesLabels::pairs(enc) {
        h.update(sym.get(n).as_bytes());
        h.update(&[0xff]);
        h.update(sym.get(v).as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// Whether encoded label ids spell exactly `labels`.
fn same_labels(sym: &Symbols, enc: &[u8], labels: &Labels) -> bool {
    let mut want = labels.iter();
    for (n, v) in SeriesLabels::pairs(enc) {
        match want.next() {
            Some(l) if sym.get(n) == l.name && sym.get(v) == l.value => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

/// Prometheus accepts any non-empty UTF-8 label set (names need not be classic
/// identifiers since 3.0); `Labels` already guarantees UTF-8, so only shape is checked.
fn validate(labels: &Labels) -> Result<(), AppendError> {
    let bad = |why| Err(AppendError::InvalidSeries(labels.to_string(), why));
    if labels.is_empty() {
        return bad("empty label set");
    }
    let s = labels.as_slice();
    if s.iter().any(|l| l.name.is_empty()) {
        return bad("empty label name");
    }
    if s.iter().any(|l| l.value.is_empty()) {
        return bad("empty label value");
    }
    if s.windows(2).any(|w| w[0].name >= w[1].name) {
        return bad("label names not sorted and unique");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Label;

    #[test]
    fn locate_spreads_pages_over_stripes() {
        assert_eq!(locate(0), None);
        assert_eq!(locate(1), Some((0, 0, 0)));
        assert_eq!(locate(64), Some((0, 0, 63)));
        assert_eq!(locate(65), Some((1, 0, 0)));
        assert_eq!(locate((PAGE * STRIPES) as u64 + 1), Some((0, 1, 0)));
        assert!(locate(u64::from(u32::MAX)).is_some());
        assert_eq!(locate(u64::from(u32::MAX) + 1), None);
    }

    #[test]
    fn same_labels_same_ref() {
        let h = Head::new();
        let mut ids = Vec::new();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "y")]);
        let ra = h.get_or_create(&a, &mut ids).unwrap();
        let rb = h.get_or_create(&b, &mut ids).unwrap();
        assert_eq!((ra, rb), (1, 2));
        assert_eq!(h.get_or_create(&a, &mut ids).unwrap(), 1);
        assert_eq!(h.get_or_create(&b.clone(), &mut ids).unwrap(), 2);
    }

    #[test]
    fn hashes_from_ids_and_pairs_equal_the_labels_hash() {
        let h = Head::new();
        let mut ids = Vec::new();
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\u{ff}b")]);
        h.intern_ids(&l, &mut ids);
        let sym = h.symbols.read();
        assert_eq!(hash_ids(&sym, &ids), l.stable_hash());
        let pairs: Vec<(&str, &str)> = l
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        assert_eq!(hash_ids_into(&sym, &ids, &mut Vec::new()), l.stable_hash());
        assert_eq!(validate_pairs(&pairs), Ok(()));
        assert_eq!(
            validate_pairs(&[("a", "")]),
            Err("empty label name or value")
        );
        assert!(validate_pairs(&[("b", "1"), ("a", "2")]).is_err());
        assert!(validate_pairs(&[]).is_err());
    }

    #[test]
    fn hash_collisions_are_told_apart() {
        let h = Head::new();
        let mut ids_a = Vec::new();
        let mut ids_b = Vec::new();
        let a = Labels::from_pairs([("a", "1")]);
        let b = Labels::from_pairs([("b", "2")]);
        let ra = h.get_or_create(&a, &mut ids_a).unwrap();
        let rb = h.get_or_create(&b, &mut ids_b).unwrap();
        // Two different label sets filed under one 64-bit hash.
        let hash = 0xdead_beef_0000_0001u64;
        let hi = hash >> 32;
        let mut t = HashTable::new();
        for r in [ra, rb] {
            t.insert_unique(table_hash(hi), (hi << 32) | r, |&e| table_hash(e >> 32));
        }
        let by_ids = |ids: &Vec<u8>| h.find_in(&t, hash, |s| *s.labels == **ids);
        assert_eq!(by_ids(&ids_a), Some(ra));
        assert_eq!(by_ids(&ids_b), Some(rb));
        let sym = h.symbols.read();
        let by_labels = |l: &Labels| h.find_in(&t, hash, |s| same_labels(&sym, &s.labels, l));
        assert_eq!(by_labels(&a), Some(ra));
        assert_eq!(by_labels(&b), Some(rb));
        let c = Labels::from_pairs([("c", "3")]);
        assert_eq!(by_labels(&c), None);
        // A prefix of a series' labels is not that series.
        assert_eq!(
            by_labels(&Labels::from_pairs([("a", "1"), ("b", "2")])),
            None
        );
    }

    #[test]
    fn rejects_malformed_label_sets() {
        let h = Head::new();
        let mut ids = Vec::new();
        let cases = [
            (Labels::empty(), "empty label set"),
            (
                Labels::from_sorted(vec![Label::new("", "x")]),
                "empty label name",
            ),
        ];
        for (l, why) in cases {
            match h.get_or_create(&l, &mut ids) {
                Err(AppendError::InvalidSeries(_, w)) => assert_eq!(w, why),
                other => panic!("{other:?}"),
            }
        }
        // Unicode names and values are fine.
        let ok = Labels::from_pairs([("__name__", "up"), ("ünïcode.name", "välue\n")]);
        assert!(h.get_or_create(&ok, &mut ids).is_ok());
    }

    #[test]
    fn pages_fill_out_of_order() {
        let mut p = SeriesPages::default();
        assert!(p.insert(2, 5, MemSeries::new(Box::new([1]))));
        assert!(!p.insert(2, 5, MemSeries::new(Box::new([2]))));
        assert!(p.insert(2, 1, MemSeries::new(Box::new([3]))));
        assert!(p.get(2, 0).is_none() && p.get(0, 0).is_none() && p.get(9, 9).is_none());
        assert_eq!(&*p.get(2, 5).unwrap().labels, &[1]);
        assert_eq!(p.pages[2].capacity(), PAGE);
    }
}
