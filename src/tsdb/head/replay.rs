//! Rebuilding the head from the WAL: the newest checkpoint, then the segments after it.
//! One reader (the calling thread) reads and checks every record in log order, and
//! interns the label strings of series records (the symbol table has one writer). Series,
//! samples, chunks and tombstones are split by series stripe and handed to worker
//! threads, each owning a fixed set of stripes, so workers never wait on each other's
//! locks and each series is created before its samples arrive and sees its records in log
//! order. A min valid time record goes to every worker at its place in the log.
//!
//! The label-hash table is built at the end, in parallel per hash stripe, as the postings
//! are. Equal labels under two refs (a series collected by truncation and created again)
//! are found there: the earlier ref keeps the series and takes the other's samples.
//! Series left empty are collected once at the end, as the live head collects them at
//! truncation: collecting them at the record could drop a series that a later record (a
//! commit that was pending during that truncation) still appends to. Rejections are not
//! counted again: they were counted when first seen.

use super::series::{Appended, MemSeries};
use super::{Head, STRIPES, SeriesPages, hash_ids_into, locate, table_hash, validate_pairs};
use crate::tsdb::chunkenc::XorAppender;
use crate::tsdb::index::SeriesLabels;
use crate::tsdb::index::{MemPostings, Postings, Symbols};
use hashbrown::HashTable;
use roaring::RoaringBitmap;

/// The refs of one label pair while postings are built: most pairs of a
/// high-cardinality label have one series, which needs no allocation.
enum RefList {
    One(u32),
    Many(Vec<u32>),
}

impl RefList {
    fn push(&mut self, r: u32) {
        match self {
            RefList::One(first) => *self = RefList::Many(vec![*first, r]),
            RefList::Many(v) => v.push(r),
        }
    }
}

/// One thread's share of the postings: label names with sorted (value, postings).
type PostingsPart = Vec<(Arc<str>, Vec<(Arc<str>, Postings)>)>;
use crate::tsdb::wal::record::{
    self, ChunkEntry, ChunksDecoder, RecordError, RecordType, RefSample, Tombstone,
};
use crate::tsdb::wal::{self, WalError};
use hashbrown::HashMap;
use parking_lot::MutexGuard;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// Jobs queued per worker before the reader waits: bounds replay's extra memory.
const QUEUE: usize = 8;

/// What replay did.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    /// Series created.
    pub series: u64,
    /// Samples restored (those inside restored chunks included).
    pub samples: u64,
    /// Samples, chunks and tombstones whose series record was missing or unusable.
    pub unknown_refs: u64,
    /// Series records skipped because their labels were unusable.
    pub bad_series: u64,
    /// Series collected at the end because nothing at or after the min valid time
    /// was left in them.
    pub series_collected: u64,
    pub records: u64,
    pub corruptions: u64,
    /// The checkpoint replay started from.
    pub checkpoint: Option<u32>,
    /// Where writing continues: the last segment and its valid length.
    pub last_segment: Option<(u32, u64)>,
    pub workers: usize,
    /// Of `duration`: reading the log and applying it (series, samples, chunks).
    pub read_duration: Duration,
    /// Of `duration`: building the label-hash table at the end.
    pub hash_duration: Duration,
    /// Of `duration`: building the postings at the end.
    pub index_duration: Duration,
    pub duration: Duration,
}

/// Work for one replay worker, all about series it owns.
enum Job {
    Series(SeriesBatch),
    Samples(Vec<RefSample>),
    /// A chunks record's body and, per entry of this worker, its ref and byte range.
    Chunks(Arc<[u8]>, Vec<(u64, Range<usize>)>),
    Tombstones(Vec<Tombstone>),
    MinValidTime(i64),
}

/// Series of one record for one worker, in log order: each ref with the end of its
/// label ids in `ids` (interned and counted by the reader).
#[derive(Default)]
struct SeriesBatch {
    refs: Vec<(u64, u32)>,
    ids: Vec<u8>,
}

/// What one worker did.
#[derive(Default)]
struct WorkerStats {
    series_created: u64,
    /// Series records for refs that already had a series: their ids, whose symbol
    /// counts the reader took and the end gives back.
    rejected: Vec<Box<[u8]>>,
    /// Of `rejected`: refs already used by other labels.
    conflicts: u64,
    samples: u64,
    chunks_created: u64,
    chunks_removed: u64,
    unknown_refs: u64,
    mint: i64,
    maxt: i64,
}

/// The reader's state, carried from record to record.
struct Reader<'h> {
    head: &'h Head,
    txs: Vec<SyncSender<Job>>,
    samples: Vec<RefSample>,
    tombstones: Vec<Tombstone>,
    entries: Vec<(u64, Range<usize>)>,
    /// The min valid time so far: older samples are dropped here.
    bound: i64,
    /// The highest ref of a series record.
    max_ref: u64,
    bad_series: u64,
    unknown_refs: u64,
}

impl Head {
    /// Replays the WAL in `dir` into this (empty) head with one worker per available
    /// core; see [`Head::replay_wal_with`].
    pub fn replay_wal(&self, dir: &Path) -> Result<ReplayReport, WalError> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.replay_wal_with(dir, workers)
    }

    /// Replays the newest checkpoint and the segments after it with `workers` threads
    /// applying samples (at most one per stripe). A damaged tail is cut (see
    /// [`wal::replay`]); only I/O errors fail.
    pub fn replay_wal_with(&self, dir: &Path, workers: usize) -> Result<ReplayReport, WalError> {
        let start = Instant::now();
        let workers = workers.clamp(1, STRIPES);
        let mut rep = ReplayReport {
            workers,
            ..ReplayReport::default()
        };
        let (outcome, mut stats) = std::thread::scope(|scope| {
            let mut txs = Vec::with_capacity(workers);
            let mut handles = Vec::with_capacity(workers);
            for k in 0..workers {
                let (tx, rx) = sync_channel::<Job>(QUEUE);
                let spawned = std::thread::Builder::new()
                    .name(format!("cairn-replay-{k}"))
                    .spawn_scoped(scope, move || self.replay_worker(k, workers, rx));
                match spawned {
                    Ok(h) => {
                        txs.push(tx);
                        handles.push(h);
                    }
                    Err(source) => {
                        // The workers started so far end when their queues close.
                        drop(txs);
                        let path = dir.to_path_buf();
                        return (Err(WalError::Io { path, source }), Vec::new());
                    }
                }
            }
            let mut reader = Reader {
                head: self,
                txs,
                samples: Vec::new(),
                tombstones: Vec::new(),
                entries: Vec::new(),
                bound: self.min_valid_time(),
                max_ref: 0,
                bad_series: 0,
                unknown_refs: 0,
            };
            let outcome = wal::replay(dir, |typ, body| reader.record(typ, body));
            let Reader {
                txs,
                max_ref,
                bad_series,
                unknown_refs,
                ..
            } = reader;
            // Closing the queues lets the workers finish.
            drop(txs);
            self.next_ref.fetch_max(max_ref + 1, Ordering::Relaxed);
            rep.bad_series = bad_series;
            rep.unknown_refs = unknown_refs;
            let mut stats = Vec::with_capacity(workers);
            for h in handles {
                match h.join() {
                    Ok(s) => stats.push(s),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            (outcome, stats)
        });
        let outcome = outcome?;
        rep.read_duration = start.elapsed();
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let (mut created, mut removed) = (0u64, 0u64);
        let mut rejected = Vec::new();
        for s in &mut stats {
            rep.series += s.series_created;
            rep.bad_series += s.conflicts;
            rep.samples += s.samples;
            rep.unknown_refs += s.unknown_refs;
            created += s.chunks_created;
            removed += s.chunks_removed;
            mint = mint.min(s.mint);
            maxt = maxt.max(s.maxt);
            rejected.append(&mut s.rejected);
        }
        if !rejected.is_empty() {
            let sym = self.symbols.read();
            for ids in &rejected {
                super::release_ids(&sym, ids);
            }
        }
        self.counters
            .chunks
            .fetch_add(created.saturating_sub(removed), Ordering::Relaxed);
        let hash_start = Instant::now();
        let duplicates = self.hash_replayed(workers);
        rep.series -= self.merge_duplicates(&duplicates);
        rep.hash_duration = hash_start.elapsed();
        self.counters
            .series
            .fetch_add(rep.series, Ordering::Relaxed);
        self.counters
            .series_created
            .fetch_add(rep.series, Ordering::Relaxed);
        self.note_time_range(mint, maxt);
        let bound = self.min_valid_time();
        if bound > i64::MIN {
            rep.series_collected = self.gc(bound, true).series_removed;
            self.move_time_range(bound);
        }
        let index_start = Instant::now();
        self.index_replayed(workers);
        rep.index_duration = index_start.elapsed();
        rep.records = outcome.records;
        rep.corruptions = outcome.corruptions;
        rep.checkpoint = outcome.checkpoint;
        rep.last_segment = outcome.last_segment;
        if rep.unknown_refs > 0 || rep.bad_series > 0 {
            tracing::warn!(
                samples = rep.unknown_refs,
                series_records = rep.bad_series,
                "write-ahead log held data of unknown series; it was dropped"
            );
        }
        rep.duration = start.elapsed();
        Ok(rep)
    }

    /// Files every series in the label-hash table, in parallel: each thread hashes the
    /// series of its stripes into per-hash-stripe buckets, then fills the hash stripes it
    /// owns. Returns the refs whose labels a lower ref has (`(later, earlier)`); those are
    /// left out of the table.
    fn hash_replayed(&self, threads: usize) -> Vec<(u64, u64)> {
        let threads = threads.max(1);
        let sym = self.symbols.read();
        let sym = &*sym;
        let buckets: Vec<Vec<Vec<(u64, u32)>>> = run_parts(threads, "cairn-hash", |k| {
            let mut out: Vec<Vec<(u64, u32)>> = vec![Vec::new(); STRIPES];
            let mut buf = Vec::new();
            for st in (k..STRIPES).step_by(threads) {
                let g = self.stripe(st);
                for (page_no, page) in g.pages.iter().enumerate() {
                    for (slot, s) in page.iter().enumerate() {
                        if let Some(s) = s {
                            let h = hash_ids_into(sym, &s.labels, &mut buf);
                            let r = super::truncate::ref_of(st, page_no, slot);
                            out[h as usize % STRIPES].push((h, r));
                        }
                    }
                }
            }
            out
        });
        let buckets = &buckets;
        let dups: Vec<Vec<(u64, u64)>> = run_parts(threads, "cairn-hash", |k| {
            let mut dups = Vec::new();
            for hs in (k..STRIPES).step_by(threads) {
                let mut table = self.hashes[hs].0.lock();
                let n: usize = buckets.iter().map(|b| b[hs].len()).sum();
                table.reserve(n, |&e| table_hash(e >> 32));
                for &(h, r) in buckets.iter().flat_map(|b| &b[hs]) {
                    let hi = h >> 32;
                    let entry = (hi << 32) | u64::from(r);
                    if table.find(table_hash(hi), |&e| e >> 32 == hi).is_some()
                        && let Some(first) = self.same_labels_as(&table, h, r)
                    {
                        if first < u64::from(r) {
                            dups.push((u64::from(r), first));
                        } else {
                            // The lower ref is the earlier series: it takes the entry.
                            if let Ok(mut e) =
                                table.find_entry(table_hash(hi), |&e| e == (hi << 32) | first)
                            {
                                *e.get_mut() = entry;
                            }
                            dups.push((first, u64::from(r)));
                        }
                        continue;
                    }
                    table.insert_unique(table_hash(hi), entry, |&e| table_hash(e >> 32));
                }
            }
            dups
        });
        dups.into_iter().flatten().collect()
    }

    /// The ref filed under `hash` whose labels equal those of series `r`.
    fn same_labels_as(&self, table: &HashTable<u64>, hash: u64, r: u32) -> Option<u64> {
        let (st, page, slot) = locate(u64::from(r))?;
        let labels = self.stripe(st).get(page, slot)?.labels.clone();
        self.find_in(table, hash, |s| *s.labels == *labels)
    }

    /// Folds each later series of `dups` into the earlier one with the same labels: its
    /// samples are appended (in time order, by the append rules, so what the earlier one
    /// already covers is dropped) and it is removed. Returns how many were removed. In a
    /// log cairn wrote, the earlier series was collected by a truncation, so replay's
    /// bound has emptied it and nothing is dropped.
    fn merge_duplicates(&self, dups: &[(u64, u64)]) -> u64 {
        let mut removed = 0;
        let mut chunks = Vec::new();
        for &(later, first) in dups {
            let Some((st, page, slot)) = locate(later) else {
                continue;
            };
            let taken = self
                .stripe(st)
                .pages
                .get_mut(page)
                .and_then(|p| p.get_mut(slot))
                .and_then(Option::take);
            let Some(d) = taken else { continue };
            removed += 1;
            chunks.clear();
            d.snapshot(i64::MIN, i64::MAX, &mut self.chunk_reader(), &mut chunks);
            let mut dropped = d.chunks.len() as u64 + u64::from(!d.head.is_empty());
            let mut added = 0u64;
            if let Some((st, page, slot)) = locate(first) {
                let mut g = self.stripe(st);
                if let Some(f) = g.get_mut(page, slot) {
                    for c in &chunks {
                        let mut dec = crate::tsdb::chunkenc::XorDecoder::new(&c.data);
                        while let Some((t, v)) = dec.next(&c.data) {
                            if let Ok(Appended::Sample { new_chunk }) =
                                f.append(t, v, self.cutter(first))
                            {
                                added += u64::from(new_chunk);
                            }
                        }
                    }
                }
            }
            super::release_ids(&self.symbols.read(), &d.labels);
            dropped = dropped.min(self.counters.chunks.load(Ordering::Relaxed) + added);
            self.counters.chunks.fetch_add(added, Ordering::Relaxed);
            self.counters.chunks.fetch_sub(dropped, Ordering::Relaxed);
            tracing::warn!(
                series_ref = later,
                kept_ref = first,
                "the write-ahead log names one series under two refs; merged into the earlier"
            );
        }
        removed
    }

    /// Adds every logged series to the postings, built in parallel: thread `k` indexes
    /// the label pairs whose value id is `k` modulo the thread count, so each pair's
    /// postings are built whole by one thread and the parts merge without conflicts.
    fn index_replayed(&self, threads: usize) {
        let sym = self.symbols.read();
        if !self.postings.read().all().is_empty() {
            // Not a fresh head (never so when opening): index one by one.
            for st in 0..STRIPES {
                let g = self.stripe(st);
                let mut p = self.postings.write();
                for (page_no, page) in g.pages.iter().enumerate() {
                    for (slot, s) in page.iter().enumerate() {
                        if let Some(s) = s.as_ref().filter(|s| s.logged) {
                            let pairs = SeriesLabels::pairs(&s.labels)
                                .filter_map(|(n, v)| Some((sym.get_arc(n)?, sym.get_arc(v)?)));
                            p.add(super::truncate::ref_of(st, page_no, slot), pairs);
                        }
                    }
                }
            }
            return;
        }
        let pages = (0..STRIPES)
            .map(|st| self.stripe(st).pages.len())
            .max()
            .unwrap_or(0);
        let threads = threads.max(1);
        let sym = &*sym;
        let built: Vec<(PostingsPart, RoaringBitmap)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    std::thread::Builder::new()
                        .name(format!("cairn-index-{k}"))
                        .spawn_scoped(scope, move || self.index_part(sym, pages, k, threads))
                        .map_err(|_| k)
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => match h.join() {
                        Ok(p) => p,
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    // No thread to be had: build that share here.
                    Err(k) => self.index_part(sym, pages, k, threads),
                })
                .collect()
        });
        let mut all = RoaringBitmap::new();
        let mut parts = Vec::with_capacity(built.len());
        for (part, a) in built {
            all |= a;
            parts.push(part);
        }
        *self.postings.write() = MemPostings::from_parts(parts, all);
    }

    /// Thread `k` of [`Head::index_replayed`]: the postings of the label pairs whose
    /// value id is `k` modulo `threads`, keyed by ids while building (hashing two ids is
    /// far cheaper than descending a map of strings) and collected as sorted ref lists
    /// (appending is far cheaper than inserting into roaring containers), then sorted by
    /// value per name. Thread 0 also collects every ref.
    fn index_part(
        &self,
        sym: &Symbols,
        pages: usize,
        k: usize,
        threads: usize,
    ) -> (PostingsPart, RoaringBitmap) {
        // Refs come in increasing order, so each pair's list is sorted as it grows and
        // becomes its postings in one pass at the end.
        let mut by_pair: HashMap<u64, RefList> = HashMap::new();
        let mut all: Vec<u32> = Vec::new();
        for page_no in 0..pages {
            // Every thread walks refs in increasing order. Threads that meet on a stripe
            // fall into step one behind the other rather than queueing.
            for st in 0..STRIPES {
                let g = self.stripe(st);
                let Some(page) = g.pages.get(page_no) else {
                    continue;
                };
                for (slot, s) in page.iter().enumerate() {
                    let Some(s) = s.as_ref().filter(|s| s.logged) else {
                        continue;
                    };
                    let r = super::truncate::ref_of(st, page_no, slot);
                    if k == 0 {
                        all.push(r);
                    }
                    for (n, v) in SeriesLabels::pairs(&s.labels) {
                        if v as usize % threads == k {
                            by_pair
                                .entry((u64::from(n) << 32) | u64::from(v))
                                .and_modify(|l| l.push(r))
                                .or_insert(RefList::One(r));
                        }
                    }
                }
            }
        }
        let all = RoaringBitmap::from_sorted_iter(all.iter().copied())
            .unwrap_or_else(|_| all.iter().copied().collect());
        let mut by_name: HashMap<u32, Vec<(Arc<str>, Postings)>> = HashMap::new();
        for (pair, refs) in by_pair {
            let p = match refs {
                RefList::One(r) => Postings::One(r),
                RefList::Many(v) => Postings::from_sorted(&v),
            };
            if let Some(v) = sym.get_arc(pair as u32) {
                by_name
                    .entry((pair >> 32) as u32)
                    .or_default()
                    .push((v.clone(), p));
            }
        }
        let mut part = Vec::with_capacity(by_name.len());
        for (n, mut values) in by_name {
            values.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if let Some(name) = sym.get_arc(n) {
                part.push((name.clone(), values));
            }
        }
        (part, all)
    }

    fn replay_worker(&self, me: usize, workers: usize, rx: Receiver<Job>) -> WorkerStats {
        let mut w = WorkerStats {
            mint: i64::MAX,
            maxt: i64::MIN,
            ..WorkerStats::default()
        };
        let mut bound = i64::MIN;
        while let Ok(job) = rx.recv() {
            match job {
                Job::Series(b) => self.replay_series(b, &mut w),
                Job::Samples(samples) => self.replay_samples(&samples, &mut w),
                Job::Chunks(body, entries) => {
                    let mut chunks: Vec<ChunkEntry<'_>> = Vec::new();
                    for (r, range) in entries {
                        let mut dec = ChunksDecoder::new(&body[range]);
                        if let Some(Ok((_, last_open))) = dec.next_into(&mut chunks) {
                            self.install_chunks(r, last_open, &chunks, bound, &mut w);
                        }
                    }
                }
                Job::Tombstones(ts) => {
                    for t in ts {
                        let known = locate(t.series_ref).is_some_and(|(st, page, slot)| {
                            self.stripe(st).get(page, slot).is_some_and(|s| s.logged)
                        });
                        if known {
                            self.tombstones.add(t.series_ref as u32, t.mint, t.maxt);
                        } else {
                            w.unknown_refs += 1;
                        }
                    }
                }
                Job::MinValidTime(t) => {
                    bound = bound.max(t);
                    for st in (me..STRIPES).step_by(workers) {
                        let mut g = self.stripe(st);
                        for page in g.pages.iter_mut() {
                            for s in page.iter_mut().flatten() {
                                w.chunks_removed += s.truncate_chunks(bound);
                            }
                        }
                    }
                }
            }
        }
        w
    }

    /// Creates a batch's series (logged, not yet hashed or indexed) under their refs. A
    /// ref that already has a series keeps it: logged twice (two commits raced to log a
    /// new series), or, with other labels, a log cairn did not write.
    fn replay_series(&self, b: SeriesBatch, w: &mut WorkerStats) {
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        let mut start = 0;
        for &(r, end) in &b.refs {
            let ids = b.ids.get(start..end as usize).unwrap_or(&[]);
            start = end as usize;
            let Some((stripe, page, slot)) = locate(r) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == stripe => g,
                _ => &mut held.insert((stripe, self.stripe(stripe))).1,
            };
            if let Some(s) = g.get(page, slot) {
                if *s.labels != *ids {
                    w.conflicts += 1;
                    tracing::warn!(
                        series_ref = r,
                        reason = "series ref already used by other labels",
                        "skipping series record in the write-ahead log"
                    );
                }
                w.rejected.push(ids.into());
                continue;
            }
            let mut s = MemSeries::new(ids.into());
            s.logged = true;
            g.insert(page, slot, s);
            w.series_created += 1;
        }
    }

    fn replay_samples(&self, samples: &[RefSample], w: &mut WorkerStats) {
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        for s in samples {
            let Some((stripe, page, slot)) = locate(s.series_ref) else {
                w.unknown_refs += 1;
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == stripe => g,
                _ => &mut held.insert((stripe, self.stripe(stripe))).1,
            };
            let Some(series) = g.get_mut(page, slot).filter(|s| s.logged) else {
                w.unknown_refs += 1;
                continue;
            };
            if let Ok(Appended::Sample { new_chunk }) =
                series.append(s.t, s.v, self.cutter(s.series_ref))
            {
                w.samples += 1;
                w.chunks_created += u64::from(new_chunk);
                w.mint = w.mint.min(s.t);
                w.maxt = w.maxt.max(s.t);
            }
        }
    }

    /// Restores a series' chunks: taken over as they are when they follow everything the
    /// series holds (a checkpoint's chunks land in an empty series), otherwise sample by
    /// sample with the append rules. Chunks wholly before `bound` are skipped.
    fn install_chunks(
        &self,
        r: u64,
        last_open: bool,
        chunks: &[ChunkEntry<'_>],
        bound: i64,
        w: &mut WorkerStats,
    ) {
        let Some((st, page, slot)) = locate(r) else {
            w.unknown_refs += 1;
            return;
        };
        let mut g = self.stripe(st);
        let Some(s) = g.get_mut(page, slot).filter(|s| s.logged) else {
            w.unknown_refs += 1;
            return;
        };
        for (i, c) in chunks.iter().enumerate() {
            if c.maxt < bound || c.mint > c.maxt {
                continue;
            }
            let open = last_open && i + 1 == chunks.len();
            let n = match c.data {
                [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
                _ => 0,
            };
            let follows = s.head.is_empty() && s.chunks.last().is_none_or(|l| l.maxt < c.mint);
            let resumed = if !follows || n == 0 {
                None
            } else if open {
                XorAppender::resume(c.data)
            } else {
                // A closed chunk is kept as it is; decode it only to check it.
                XorAppender::resume(c.data).map(|_| XorAppender::new())
            };
            match resumed {
                Some(head) if open => s.head = head,
                Some(_) => s.push_closed(c.mint, c.maxt, c.data, self.cutter(r)),
                None => {
                    let mut dec = crate::tsdb::chunkenc::XorDecoder::new(c.data);
                    while let Some((t, v)) = dec.next(c.data) {
                        if let Ok(Appended::Sample { new_chunk }) = s.append(t, v, self.cutter(r)) {
                            w.samples += 1;
                            w.chunks_created += u64::from(new_chunk);
                            w.mint = w.mint.min(t);
                            w.maxt = w.maxt.max(t);
                        }
                    }
                    continue;
                }
            }
            w.samples += n;
            w.chunks_created += 1;
            w.mint = w.mint.min(c.mint);
            w.maxt = w.maxt.max(c.maxt);
        }
    }
}

impl Reader<'_> {
    /// Applies one record. An error means its body is malformed; nothing of it has been
    /// applied, and the WAL reader cuts the log there.
    fn record(&mut self, typ: RecordType, body: &[u8]) -> Result<(), RecordError> {
        match typ {
            RecordType::Series => {
                let mut labels = Vec::new();
                let mut entries = std::mem::take(&mut self.entries);
                record::decode_series_flat(body, &mut entries, &mut labels)?;
                self.series(&entries, &labels);
                self.entries = entries;
            }
            RecordType::Samples => {
                let mut samples = std::mem::take(&mut self.samples);
                record::decode_samples(body, &mut samples)?;
                let mut parts = self.split(&samples);
                for (k, part) in parts.drain(..).enumerate() {
                    if !part.is_empty() {
                        self.send(k, Job::Samples(part));
                    }
                }
                self.samples = samples;
            }
            RecordType::Tombstones => {
                let mut ts = std::mem::take(&mut self.tombstones);
                record::decode_tombstones(body, &mut ts)?;
                let mut parts = self.split(&ts);
                for (k, part) in parts.drain(..).enumerate() {
                    if !part.is_empty() {
                        self.send(k, Job::Tombstones(part));
                    }
                }
                self.tombstones = ts;
            }
            RecordType::MinValidTime => {
                let t = record::decode_min_valid_time(body)?;
                if t > self.bound {
                    self.bound = t;
                    self.head.min_valid_time.fetch_max(t, Ordering::Relaxed);
                    for k in 0..self.txs.len() {
                        self.send(k, Job::MinValidTime(t));
                    }
                }
            }
            RecordType::Chunks => self.chunks(body)?,
        }
        Ok(())
    }

    /// Interns the labels of one series record's entries (the symbol table is
    /// write-locked once for the record) and hands each series to the worker owning its
    /// ref, which creates it before any later record of it arrives.
    fn series(&mut self, entries: &[(u64, Range<usize>)], labels: &[(&str, &str)]) {
        let n = self.txs.len();
        let mut parts: Vec<SeriesBatch> = (0..n).map(|_| SeriesBatch::default()).collect();
        {
            let mut sym = self.head.symbols.write();
            // The previous entry's strings and ids by position: consecutive series mostly
            // share values (job, instance, ...), and the decoder hands out the very same
            // `&str` for a repeat, so a pointer comparison saves the lookup.
            let mut prev: Vec<(&str, &str, u32, u32)> = Vec::new();
            for (r, range) in entries {
                let pairs = &labels[range.clone()];
                let owner = validate_pairs(pairs)
                    .and_then(|()| self.owner(*r).ok_or("series ref out of range"));
                let k = match owner {
                    Ok(k) => k,
                    Err(why) => {
                        self.bad_series += 1;
                        let shown: Vec<String> =
                            pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
                        tracing::warn!(series_ref = r, labels = %shown.join(","), reason = why, "skipping series record in the write-ahead log");
                        continue;
                    }
                };
                let b = &mut parts[k];
                prev.truncate(pairs.len());
                for (i, &(n, v)) in pairs.iter().enumerate() {
                    let (ni, vi) = match prev.get(i) {
                        Some(&(pn, pv, ni, vi)) if std::ptr::eq(pn, n) && std::ptr::eq(pv, v) => {
                            (ni, vi)
                        }
                        Some(&(pn, _, ni, _)) if std::ptr::eq(pn, n) => (ni, sym.intern(v)),
                        _ => (sym.intern(n), sym.intern(v)),
                    };
                    if i < prev.len() {
                        prev[i] = (n, v, ni, vi);
                    } else {
                        prev.push((n, v, ni, vi));
                    }
                    sym.retain_mut(ni);
                    sym.retain_mut(vi);
                    SeriesLabels::push(&mut b.ids, ni, vi);
                }
                b.refs.push((*r, b.ids.len() as u32));
                self.max_ref = self.max_ref.max(*r);
            }
        }
        for (k, b) in parts.into_iter().enumerate() {
            if !b.refs.is_empty() {
                self.send(k, Job::Series(b));
            }
        }
    }

    #[inline]
    fn owner(&self, r: u64) -> Option<usize> {
        locate(r).map(|(st, _, _)| st % self.txs.len())
    }

    /// Splits items by the worker owning their ref; drops samples older than
    /// the bound and counts refs that cannot exist.
    fn split<T: Copy + Routed>(&mut self, items: &[T]) -> Vec<Vec<T>> {
        let n = self.txs.len();
        let mut parts: Vec<Vec<T>> = (0..n)
            .map(|_| Vec::with_capacity(items.len() / n + 16))
            .collect();
        for &it in items {
            let mut it = it;
            if it.time() < self.bound {
                continue;
            }
            match self.owner(*it.series_ref()) {
                Some(k) => parts[k].push(it),
                None => self.unknown_refs += 1,
            }
        }
        parts
    }

    fn chunks(&mut self, body: &[u8]) -> Result<(), RecordError> {
        let n = self.txs.len();
        let mut parts: Vec<Vec<(u64, Range<usize>)>> = vec![Vec::new(); n];
        let mut dec = ChunksDecoder::new(body);
        let mut chunks = Vec::new();
        loop {
            let start = dec.pos();
            let Some(e) = dec.next_into(&mut chunks) else {
                break;
            };
            let (r, _) = e?;
            match self.owner(r) {
                Some(k) => parts[k].push((r, start..dec.pos())),
                None => self.unknown_refs += 1,
            }
        }
        let body: Arc<[u8]> = Arc::from(body);
        for (k, part) in parts.into_iter().enumerate() {
            if !part.is_empty() {
                self.send(k, Job::Chunks(body.clone(), part));
            }
        }
        Ok(())
    }

    fn send(&self, k: usize, job: Job) {
        // A worker only stops early by panicking, which the join reports.
        let _ = self.txs[k].send(job);
    }
}

/// Runs `part(k)` for `k` in `0..threads` on scoped threads named `name-k` (on this
/// thread where none can be had); the results in order of `k`.
fn run_parts<T: Send>(threads: usize, name: &str, part: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let part = &part;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                std::thread::Builder::new()
                    .name(format!("{name}-{k}"))
                    .spawn_scoped(scope, move || part(k))
                    .map_err(|_| k)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => match h.join() {
                    Ok(p) => p,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(k) => part(k),
            })
            .collect()
    })
}

/// Logged items that belong to one series and to a time the min valid time applies to.
trait Routed {
    fn time(&self) -> i64;
    fn series_ref(&mut self) -> &mut u64;
}

impl Routed for RefSample {
    fn time(&self) -> i64 {
        self.t
    }
    fn series_ref(&mut self) -> &mut u64 {
        &mut self.series_ref
    }
}

impl Routed for Tombstone {
    /// A tombstone is kept if it reaches the bound.
    fn time(&self) -> i64 {
        self.maxt
    }
    fn series_ref(&mut self) -> &mut u64 {
        &mut self.series_ref
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Matcher;
    use crate::storage::Storage;
    use crate::tsdb::testing::*;
    use crate::tsdb::{Db, DbOptions};
    use std::fs;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    /// Writes commits `from..to`, each 20 series x 3 samples; returns what a query shows.
    fn fill(db: &Db, from: i64, to: i64) -> Vec<(String, Vec<(i64, f64)>)> {
        let mut app = db.appender();
        for c in from..to {
            for i in 0..20 {
                let l = lbls(&[
                    ("__name__", "m"),
                    ("i", &format!("{i:02}")),
                    ("odd", "x\"y\n"),
                ]);
                let r = app.append(&l, c * 1000, (c * i) as f64).unwrap();
                app.append_ref(r, c * 1000 + 1, f64::NAN).unwrap();
                app.append_ref(r, c * 1000 + 2, -0.0).unwrap();
            }
            app.commit().unwrap();
        }
        dump(db, i64::MIN, i64::MAX, &[])
    }

    fn bits(d: &[(String, Vec<(i64, f64)>)]) -> Vec<(String, Vec<(i64, u64)>)> {
        d.iter()
            .map(|(l, v)| {
                (
                    l.clone(),
                    v.iter().map(|(t, x)| (*t, x.to_bits())).collect(),
                )
            })
            .collect()
    }

    fn segment0(dir: &Path) -> std::path::PathBuf {
        dir.join("wal").join("00000000")
    }

    #[test]
    fn reopen_has_every_sample_once() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let before = fill(&db, 0, 5);
        assert_eq!(before.len(), 20);
        assert_eq!(before[0].1.len(), 15);
        db.close().unwrap();
        drop(db);
        let db = open(tmp.path());
        assert_eq!(bits(&dump(&db, i64::MIN, i64::MAX, &[])), bits(&before));
        let s = db.stats();
        assert_eq!(
            (s.num_series, s.replayed_samples, s.samples_appended),
            (20, 300, 0)
        );
        assert_eq!((s.min_time, s.max_time), (0, 4002));
        // Writing after replay continues the log; a second reopen sees both.
        let mut app = db.appender();
        app.append(&lbls(&[("__name__", "new")]), 9000, 1.0)
            .unwrap();
        app.commit().unwrap();
        drop((app, db));
        let db = open(tmp.path());
        assert_eq!(db.stats().num_series, 21);
        assert_eq!(names(&db, &[Matcher::equal("__name__", "new")]), ["new{}"]);
        // New series get fresh refs after replay.
        let mut app = db.appender();
        let r = app.append(&lbls(&[("__name__", "newer")]), 1, 1.0).unwrap();
        assert_eq!(r, 22);
    }

    #[test]
    fn truncating_the_last_record_by_every_length_keeps_what_came_before() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let kept = fill(&db, 0, 3);
        let good_len = fs::metadata(segment0(tmp.path())).unwrap().len();
        let mut app = db.appender();
        let r = app
            .append(&lbls(&[("__name__", "late")]), 99_000, 1.0)
            .unwrap();
        app.append_ref(r, 99_001, 2.0).unwrap();
        app.commit().unwrap();
        drop((app, db));
        let full = fs::read(segment0(tmp.path())).unwrap();
        let last_commit = full.len() as u64 - good_len;
        // The commit wrote a series record, then a samples record.
        let at = good_len as usize;
        let series_record = 9 + u64::from(u32::from_le_bytes(full[at..at + 4].try_into().unwrap()));
        assert_eq!(full[at + 8], 1);
        let samples_record = last_commit - series_record;
        assert!(samples_record > 9);
        for cut in 1..=last_commit {
            let t2 = tempfile::tempdir().unwrap();
            fs::create_dir_all(t2.path().join("wal")).unwrap();
            fs::write(segment0(t2.path()), &full[..full.len() - cut as usize]).unwrap();
            let db = open(t2.path());
            let got = dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("__name__", "m")]);
            assert_eq!(bits(&got), bits(&kept), "cut {cut}");
            assert!(
                names(&db, &[Matcher::equal("__name__", "late")]).is_empty(),
                "cut {cut}"
            );
            let s = db.stats();
            // A cut on a record boundary leaves no damage to report.
            let at_boundary = cut == last_commit || cut == samples_record;
            assert_eq!(s.wal_corruptions, u64::from(!at_boundary), "cut {cut}");
            drop(db);
            let len = fs::metadata(segment0(t2.path())).unwrap().len();
            assert!(len >= good_len && len < full.len() as u64, "cut {cut}");
        }
    }

    #[test]
    fn flipped_bytes_in_the_last_commit_are_cut_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let kept = fill(&db, 0, 2);
        let good_len = fs::metadata(segment0(tmp.path())).unwrap().len() as usize;
        fill(&db, 2, 3);
        drop(db);
        let full = fs::read(segment0(tmp.path())).unwrap();
        for pos in (good_len..full.len()).step_by(3) {
            let t2 = tempfile::tempdir().unwrap();
            fs::create_dir_all(t2.path().join("wal")).unwrap();
            let mut damaged = full.clone();
            damaged[pos] ^= 0x10;
            fs::write(segment0(t2.path()), &damaged).unwrap();
            let db = open(t2.path());
            let got = dump(&db, i64::MIN, 1500, &[]);
            assert_eq!(bits(&got), bits(&kept), "flip at {pos}");
            assert_eq!(db.stats().wal_corruptions, 1, "flip at {pos}");
        }
    }

    /// Collects what `tracing` prints while `f` runs on this thread.
    fn capture_logs(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(sub, f);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn damage_warning_names_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        fill(&db, 0, 1);
        let good_len = fs::metadata(segment0(tmp.path())).unwrap().len();
        fill(&db, 1, 2);
        drop(db);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(segment0(tmp.path()))
            .unwrap();
        f.set_len(good_len + 5).unwrap();
        let logs = capture_logs(|| drop(open(tmp.path())));
        assert!(logs.contains("WARN"), "{logs}");
        assert!(logs.contains("00000000"), "{logs}");
        assert!(logs.contains(&format!("offset={good_len}")), "{logs}");
        assert_eq!(fs::metadata(segment0(tmp.path())).unwrap().len(), good_len);
    }

    #[test]
    fn segments_roll_and_replay() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = DbOptions {
            wal_segment_size: 1024,
            ..opts()
        };
        let db = Db::open(tmp.path(), opts.clone()).unwrap();
        let before = fill(&db, 0, 40);
        let segs = crate::tsdb::wal::list_segments(&tmp.path().join("wal")).unwrap();
        assert!(segs.len() >= 4, "{} segments", segs.len());
        for (_, p) in &segs[..segs.len() - 1] {
            let len = fs::metadata(p).unwrap().len();
            assert!(len <= 1024, "{} is {len} bytes", p.display());
        }
        assert_eq!(
            db.stats().wal_segment_current,
            u64::from(segs.last().unwrap().0)
        );
        drop(db);
        let db = Db::open(tmp.path(), opts).unwrap();
        assert_eq!(bits(&dump(&db, i64::MIN, i64::MAX, &[])), bits(&before));
        assert_eq!(db.stats().replayed_samples, 40 * 60);
    }

    /// The index built at the end of replay answers like the one built live, with one
    /// worker or several.
    #[test]
    fn replayed_index_equals_the_live_one() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        for i in 0..20_000 {
            let l = lbls(&[
                ("__name__", &format!("m{}", i % 13)),
                ("id", &format!("{i:05}")),
                ("mod", &(i % 7).to_string()),
                ("rare", if i % 1000 == 0 { "yes" } else { "no" }),
            ]);
            app.append(&l, i, 1.0).unwrap();
        }
        app.commit().unwrap();
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let names_live = q.label_names(&[]).unwrap();
        let values_live: Vec<Vec<String>> = names_live
            .iter()
            .map(|n| q.label_values(n, &[]).unwrap())
            .collect();
        drop((q, app, db));
        for workers in [1, 3, 8] {
            let head = crate::tsdb::head::Head::new();
            let rep = head
                .replay_wal_with(&tmp.path().join("wal"), workers)
                .unwrap();
            assert_eq!(
                (rep.series, rep.samples, rep.workers),
                (20_000, 20_000, workers)
            );
            let p = head.postings.read();
            assert_eq!(p.all().len(), 20_000);
            let names: Vec<String> = p.label_names().map(str::to_string).collect();
            assert_eq!(names, names_live);
            for (n, want) in names.iter().zip(&values_live) {
                let got: Vec<&str> = p.label_values(n).collect();
                assert_eq!(&got, want);
            }
            let yes = p.get("rare", "yes").unwrap().to_bitmap();
            assert_eq!(
                yes.iter().collect::<Vec<_>>(),
                (0..20).map(|k| k * 1000 + 1).collect::<Vec<_>>()
            );
            assert_eq!(p.get("mod", "3").unwrap().len(), 2857);
        }
    }

    #[test]
    fn series_logged_twice_replays_once() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let l = lbls(&[("__name__", "shared")]);
        let mut a = db.appender();
        let mut b = db.appender();
        let r = a.append(&l, 1, 1.0).unwrap();
        assert_eq!(b.append(&l, 2, 2.0), Ok(r));
        // Both batches log the new series; the second commit's sample wins order.
        b.commit().unwrap();
        a.commit().unwrap();
        let live = dump(&db, 0, 10, &[]);
        assert_eq!(live, vec![("shared{}".to_string(), vec![(2, 2.0)])]);
        drop((a, b, db));
        let db = open(tmp.path());
        assert_eq!(dump(&db, 0, 10, &[]), live);
        assert_eq!(db.stats().num_series, 1);
    }

    /// A WAL naming one label set under two refs (what a truncation that collected the
    /// series, followed by its return, leaves), written record by record.
    fn two_refs_wal(dir: &Path, bound: Option<i64>) {
        use crate::tsdb::wal::record::{self, RecordType, SamplesEncoder};
        let mut out = Vec::new();
        let mut snappy = snap::raw::Encoder::new();
        let mut series = |out: &mut Vec<u8>, r: u64| {
            let mut body = Vec::new();
            record::encode_series(&mut body, r, [("__name__", "m"), ("job", "x")].into_iter());
            record::frame(out, RecordType::Series, &body, &mut snappy).unwrap();
        };
        let samples = |out: &mut Vec<u8>, r: u64, ts: &[i64]| {
            let mut body = Vec::new();
            let mut enc = SamplesEncoder::default();
            for &t in ts {
                enc.push(&mut body, r, t, t as f64);
            }
            record::frame(
                out,
                RecordType::Samples,
                &body,
                &mut snap::raw::Encoder::new(),
            )
            .unwrap();
        };
        series(&mut out, 1);
        samples(&mut out, 1, &[1, 2]);
        if let Some(b) = bound {
            record::frame_min_valid_time(&mut out, b).unwrap();
        }
        series(&mut out, 5);
        samples(&mut out, 5, &[5, 6]);
        fs::create_dir_all(dir.join("wal")).unwrap();
        fs::write(segment0(dir), out).unwrap();
    }

    #[test]
    fn one_label_set_under_two_refs_replays_as_one_series() {
        for (bound, want) in [(Some(3), vec![5, 6]), (None, vec![1, 2, 5, 6])] {
            let tmp = tempfile::tempdir().unwrap();
            two_refs_wal(tmp.path(), bound);
            let db = open(tmp.path());
            let got = dump(&db, i64::MIN, i64::MAX, &[]);
            assert_eq!(got.len(), 1, "{bound:?}");
            let ts: Vec<i64> = got[0].1.iter().map(|s| s.0).collect();
            assert_eq!(ts, want, "{bound:?}");
            let s = db.stats();
            assert_eq!((s.num_series, s.num_chunks), (1, 1), "{bound:?}");
            // The label-hash table finds the kept series; new series get fresh refs.
            let mut app = db.appender();
            let kept = app
                .append(&lbls(&[("__name__", "m"), ("job", "x")]), 10, 1.0)
                .unwrap();
            let fresh = app.append(&lbls(&[("__name__", "n")]), 10, 1.0).unwrap();
            assert_eq!((kept, fresh), (1, 6), "{bound:?}");
            app.commit().unwrap();
        }
    }
}
