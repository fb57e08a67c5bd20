//! Appending: the appender that scrape loops, rules and remote write use, and the commit
//! that logs a batch to the WAL and applies it to the series. Checks run against
//! committed state when a sample is added and again at commit, where samples of one batch
//! that conflict with each other are rejected and counted. Buffers are pooled, so a
//! steady scrape allocates nothing per sample.

use super::series::Appended;
use super::{Head, locate};
use crate::model::Labels;
use crate::storage::{AppendError, Appender, SeriesRef, StorageError};
use crate::tsdb::index::SeriesLabels;
use crate::tsdb::wal::WalError;
use crate::tsdb::wal::record::{
    self, MAX_SAMPLES_PER_RECORD, MAX_SERIES_PER_RECORD, RecordType, SamplesEncoder,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Appender buffers kept in the head's pool between appenders.
const POOL_MAX: usize = 32;
/// Buffers that grew past this many samples are dropped rather than pooled.
const POOL_MAX_SAMPLES: usize = 1 << 18;

#[derive(Clone, Copy, Debug)]
struct Pending {
    r: u32,
    t: i64,
    v: f64,
}

/// An appender's reusable memory.
pub(crate) struct AppendBuffers {
    samples: Vec<Pending>,
    /// The oldest timestamp in `samples`.
    min_t: i64,
    /// Series the batch touches that had no series record yet (may repeat).
    new_series: Vec<u32>,
    ids: Vec<u8>,
    pairs: Vec<(u32, u32)>,
    body: Vec<u8>,
    out: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl AppendBuffers {
    fn new() -> Self {
        AppendBuffers {
            samples: Vec::new(),
            min_t: i64::MAX,
            new_series: Vec::new(),
            ids: Vec::new(),
            pairs: Vec::new(),
            body: Vec::new(),
            out: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }

    fn clear(&mut self) {
        self.samples.clear();
        self.min_t = i64::MAX;
        self.new_series.clear();
    }
}

/// A batch of appends to the head; see [`crate::storage::Appender`].
pub struct HeadAppender {
    head: Arc<Head>,
    bufs: AppendBuffers,
}

impl HeadAppender {
    pub fn new(head: Arc<Head>) -> Self {
        let bufs = head.pool.lock().pop().unwrap_or_else(AppendBuffers::new);
        HeadAppender { head, bufs }
    }
}

impl HeadAppender {
    /// Forgets the batch, letting go of its series (see `MemSeries::pending`).
    fn discard(&mut self) {
        self.head.release_pending(&self.bufs.samples);
        self.bufs.clear();
    }
}

impl Drop for HeadAppender {
    fn drop(&mut self) {
        self.discard();
        if self.bufs.samples.capacity() > POOL_MAX_SAMPLES {
            return;
        }
        let mut pool = self.head.pool.lock();
        if pool.len() < POOL_MAX {
            let bufs = std::mem::replace(&mut self.bufs, AppendBuffers::new());
            pool.push(bufs);
        }
    }
}

impl Appender for HeadAppender {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        // Checked first so that a rejected sample creates no series.
        self.head.check_bounds(t)?;
        let mut tries = 0;
        loop {
            let r = self.head.get_or_create(labels, &mut self.bufs.ids)?;
            match self.append_ref(r, t, v) {
                // A truncation collected the series between the lookup and the append:
                // look it up again, which creates it afresh.
                Err(AppendError::UnknownSeries(_)) if tries < 16 => tries += 1,
                res => return res.map(|()| r),
            }
        }
    }

    fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let head = &*self.head;
        let Some((st, page, slot)) = locate(r) else {
            return Err(AppendError::UnknownSeries(r));
        };
        head.check_bounds(t)?;
        let logged = {
            let mut g = head.stripe(st);
            let s = g.get_mut(page, slot).ok_or(AppendError::UnknownSeries(r))?;
            match s.appendable(t, v) {
                Ok(true) => {
                    s.pending += 1;
                    s.logged
                }
                Ok(false) => return Ok(()),
                Err(e) => {
                    head.counters.count_rejection(&e);
                    return Err(e);
                }
            }
        };
        if !logged {
            self.bufs.new_series.push(r as u32);
        }
        self.bufs.samples.push(Pending { r: r as u32, t, v });
        self.bufs.min_t = self.bufs.min_t.min(t);
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if self.bufs.samples.is_empty() {
            self.bufs.clear();
            return Ok(());
        }
        let res = self.head.commit(&mut self.bufs);
        // A successful commit has released every sample; a failed one none.
        if res.is_err() {
            self.discard();
        }
        self.bufs.clear();
        res
    }

    fn rollback(&mut self) {
        self.discard();
    }
}

fn storage_err(e: WalError) -> StorageError {
    match e {
        WalError::Io { path, source } => StorageError::Wal(std::io::Error::new(
            source.kind(),
            format!("{}: {source}", path.display()),
        )),
        other => StorageError::Other(other.to_string()),
    }
}

impl Head {
    #[inline]
    fn check_bounds(&self, t: i64) -> Result<(), AppendError> {
        if t < self.min_valid_time.load(Ordering::Relaxed) {
            self.counters.count_rejection(&AppendError::OutOfBounds);
            return Err(AppendError::OutOfBounds);
        }
        Ok(())
    }

    /// Logs the batch (series records for series not logged yet, then the samples) in
    /// one write, then publishes new series and applies the samples, all under the WAL
    /// lock so that replay applies samples in exactly the order they were applied here.
    /// On success every sample's pending mark is released; on failure none is.
    fn commit(&self, b: &mut AppendBuffers) -> Result<(), StorageError> {
        let Some(wal) = &self.wal else {
            return Err(StorageError::Other(
                "the head has no write-ahead log attached".into(),
            ));
        };
        loop {
            self.encode_batch(b)
                .map_err(|e| StorageError::Other(format!("encoding WAL records: {e}")))?;
            let mut w = wal.lock();
            // A truncation since these samples were added moved the bound past some of
            // them: they are out of bounds now (counted), the rest is encoded again.
            let bound = self.min_valid_time.load(Ordering::Relaxed);
            if b.min_t < bound {
                drop(w);
                self.drop_out_of_bounds(b, bound);
                if b.samples.is_empty() {
                    return Ok(());
                }
                continue;
            }
            w.write(&b.out).map_err(storage_err)?;
            self.publish(&b.new_series);
            self.apply(&b.samples);
            break;
        }
        if wal.sync_every_write() {
            wal.sync().map_err(storage_err)?;
        }
        Ok(())
    }

    /// Removes (releasing and counting them) the samples of `b` older than `bound`.
    fn drop_out_of_bounds(&self, b: &mut AppendBuffers, bound: i64) {
        let mut old = Vec::new();
        b.samples.retain(|p| {
            let keep = p.t >= bound;
            if !keep {
                old.push(*p);
            }
            keep
        });
        self.release_pending(&old);
        self.counters
            .out_of_bounds
            .fetch_add(old.len() as u64, Ordering::Relaxed);
        b.min_t = b.samples.iter().map(|p| p.t).min().unwrap_or(i64::MAX);
        // Series left without samples in the batch are no longer the batch's to log.
        let mut kept: Vec<u32> = b.samples.iter().map(|p| p.r).collect();
        kept.sort_unstable();
        b.new_series.retain(|r| kept.binary_search(r).is_ok());
    }

    /// Lets go of the series of samples that will not be applied.
    fn release_pending(&self, samples: &[Pending]) {
        let mut held: Option<(usize, parking_lot::MutexGuard<'_, super::SeriesPages>)> = None;
        for p in samples {
            let Some((st, page, slot)) = locate(u64::from(p.r)) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == st => g,
                _ => &mut held.insert((st, self.stripe(st))).1,
            };
            if let Some(s) = g.get_mut(page, slot) {
                s.pending = s.pending.saturating_sub(1);
            }
        }
    }

    /// Frames the batch's WAL records into `b.out`.
    fn encode_batch(&self, b: &mut AppendBuffers) -> Result<(), snap::Error> {
        b.out.clear();
        b.new_series.sort_unstable();
        b.new_series.dedup();
        // Another commit may have logged some of them since they were added.
        b.new_series.retain(|&r| !self.is_logged(r));
        if !b.new_series.is_empty() {
            let sym = self.symbols.read();
            for chunk in b.new_series.chunks(MAX_SERIES_PER_RECORD) {
                b.body.clear();
                for &r in chunk {
                    b.pairs.clear();
                    if let Some((st, page, slot)) = locate(u64::from(r))
                        && let Some(s) = self.stripe(st).get(page, slot)
                    {
                        b.pairs.extend(SeriesLabels::pairs(&s.labels));
                    }
                    if b.pairs.is_empty() {
                        // Collected meanwhile (its samples were all out of bounds).
                        continue;
                    }
                    let labels = b.pairs.iter().map(|&(n, v)| (sym.get(n), sym.get(v)));
                    record::encode_series(&mut b.body, u64::from(r), labels);
                }
                record::frame(&mut b.out, RecordType::Series, &b.body, &mut b.snappy)?;
            }
        }
        for chunk in b.samples.chunks(MAX_SAMPLES_PER_RECORD) {
            b.body.clear();
            let mut enc = SamplesEncoder::default();
            for s in chunk {
                enc.push(&mut b.body, u64::from(s.r), s.t, s.v);
            }
            record::frame(&mut b.out, RecordType::Samples, &b.body, &mut b.snappy)?;
        }
        Ok(())
    }

    fn is_logged(&self, r: u32) -> bool {
        locate(u64::from(r)).is_some_and(|(st, page, slot)| {
            self.stripe(st).get(page, slot).is_some_and(|s| s.logged)
        })
    }

    /// Appends committed samples to their series, reusing a stripe's lock for runs of
    /// samples in it, and counts what was stored and what was rejected.
    fn apply(&self, samples: &[Pending]) {
        let (mut appended, mut chunks, mut ooo, mut dup) = (0u64, 0u64, 0u64, 0u64);
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let mut held: Option<(usize, parking_lot::MutexGuard<'_, super::SeriesPages>)> = None;
        for p in samples {
            let Some((st, page, slot)) = locate(u64::from(p.r)) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == st => g,
                _ => &mut held.insert((st, self.stripe(st))).1,
            };
            let Some(s) = g.get_mut(page, slot) else {
                continue;
            };
            s.pending = s.pending.saturating_sub(1);
            match s.append(p.t, p.v, self.cutter(u64::from(p.r))) {
                Ok(Appended::Sample { new_chunk }) => {
                    appended += 1;
                    chunks += u64::from(new_chunk);
                    mint = mint.min(p.t);
                    maxt = maxt.max(p.t);
                }
                Ok(Appended::Duplicate) => {}
                Err(AppendError::OutOfOrder) => ooo += 1,
                Err(_) => dup += 1,
            }
        }
        drop(held);
        let c = &self.counters;
        c.samples_appended.fetch_add(appended, Ordering::Relaxed);
        c.chunks.fetch_add(chunks, Ordering::Relaxed);
        if ooo > 0 {
            c.out_of_order.fetch_add(ooo, Ordering::Relaxed);
        }
        if dup > 0 {
            c.duplicates.fetch_add(dup, Ordering::Relaxed);
        }
        self.note_time_range(mint, maxt);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Matcher;
    use crate::storage::{AppendError, Storage};
    use crate::tsdb::testing::*;
    use crate::tsdb::{Db, DbOptions};
    use std::time::Duration;

    #[test]
    fn append_commit_query() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let up = lbls(&[("__name__", "up"), ("job", "a")]);
        let r = app.append(&up, 1000, 1.0).unwrap();
        assert_eq!(r, 1);
        app.append_ref(r, 2000, 0.0).unwrap();
        app.append(&lbls(&[("__name__", "up"), ("job", "b")]), 1000, 1.0)
            .unwrap();
        assert!(
            names(&db, &[Matcher::equal("__name__", "up")]).is_empty(),
            "visible before commit"
        );
        app.commit().unwrap();
        assert_eq!(
            dump(&db, 0, 10_000, &[Matcher::equal("__name__", "up")]),
            vec![
                (r#"up{job="a"}"#.to_string(), vec![(1000, 1.0), (2000, 0.0)]),
                (r#"up{job="b"}"#.to_string(), vec![(1000, 1.0)]),
            ]
        );
        // The appender is reusable after commit, and append() finds existing series.
        assert_eq!(app.append(&up, 3000, 5.0), Ok(r));
        app.commit().unwrap();
        assert_eq!(
            dump(&db, 2500, 3500, &[Matcher::equal("job", "a")])[0].1,
            vec![(3000, 5.0)]
        );
    }

    #[test]
    fn out_of_order_and_duplicates_are_rejected_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let r = app.append(&lbls(&[("__name__", "x")]), 10, 1.0).unwrap();
        app.commit().unwrap();
        assert_eq!(app.append_ref(r, 5, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            app.append_ref(r, 10, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        // Same timestamp, same value: accepted, stored once.
        assert_eq!(app.append_ref(r, 10, 1.0), Ok(()));
        app.commit().unwrap();
        let s = db.stats();
        assert_eq!(
            (
                s.out_of_order_samples,
                s.duplicate_samples,
                s.samples_appended
            ),
            (1, 1, 1)
        );
        assert_eq!(dump(&db, 0, 100, &[])[0].1, vec![(10, 1.0)]);
        let mut out = String::new();
        db.write_metrics(&mut out);
        assert!(out.contains("cairn_tsdb_out_of_order_samples_total 1\n"));
        assert!(out.contains("cairn_tsdb_duplicate_samples_total 1\n"));
    }

    #[test]
    fn conflicts_inside_one_batch_are_rejected_at_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let r = app.append(&lbls(&[("__name__", "x")]), 10, 1.0).unwrap();
        app.commit().unwrap();
        // Each is fine against committed state (t=10), but not against each other.
        app.append_ref(r, 30, 1.0).unwrap();
        app.append_ref(r, 20, 1.0).unwrap();
        app.append_ref(r, 30, 9.0).unwrap();
        app.append_ref(r, 30, 1.0).unwrap();
        app.commit().unwrap();
        let s = db.stats();
        assert_eq!((s.out_of_order_samples, s.duplicate_samples), (1, 1));
        assert_eq!(dump(&db, 0, 100, &[])[0].1, vec![(10, 1.0), (30, 1.0)]);
        // Replay rejects the same samples: the reopened head is identical.
        drop((app, db));
        let db = open(tmp.path());
        assert_eq!(dump(&db, 0, 100, &[])[0].1, vec![(10, 1.0), (30, 1.0)]);
    }

    #[test]
    fn rollback_and_drop_discard_the_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let r = app
            .append(&lbls(&[("__name__", "gone"), ("k", "v")]), 1, 1.0)
            .unwrap();
        app.rollback();
        app.commit().unwrap();
        assert!(names(&db, &[]).is_empty());
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert!(q.label_names(&[]).unwrap().is_empty());
        assert!(q.label_values("k", &[]).unwrap().is_empty());
        drop(q);
        {
            let mut app2 = db.appender();
            app2.append_ref(r, 2, 2.0).unwrap();
        }
        assert!(names(&db, &[]).is_empty());
        assert_eq!(db.stats().num_series, 0);
        // The series can still be written later, and then it is logged and visible.
        app.append_ref(r, 3, 3.0).unwrap();
        app.commit().unwrap();
        assert_eq!(
            dump(&db, 0, 10, &[]),
            vec![(r#"gone{k="v"}"#.to_string(), vec![(3, 3.0)])]
        );
        drop((app, db));
        let db = open(tmp.path());
        assert_eq!(dump(&db, 0, 10, &[]).len(), 1);
    }

    #[test]
    fn bad_refs_and_bad_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        assert_eq!(
            app.append_ref(0, 1, 1.0),
            Err(AppendError::UnknownSeries(0))
        );
        assert_eq!(
            app.append_ref(77, 1, 1.0),
            Err(AppendError::UnknownSeries(77))
        );
        assert_eq!(
            app.append_ref(1 << 40, 1, 1.0),
            Err(AppendError::UnknownSeries(1 << 40))
        );
        assert!(matches!(
            app.append(&crate::model::Labels::empty(), 1, 1.0),
            Err(AppendError::InvalidSeries(_, "empty label set"))
        ));
        // A series without __name__ is accepted, as remote write may send it.
        assert!(app.append(&lbls(&[("job", "x")]), 1, 1.0).is_ok());
        app.commit().unwrap();
        assert_eq!(
            names(&db, &[Matcher::equal("job", "x")]),
            vec![r#"{job="x"}"#]
        );
    }

    #[test]
    fn out_of_bounds_below_min_valid_time() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        db.head().set_min_valid_time(1000);
        let mut app = db.appender();
        let l = lbls(&[("__name__", "x")]);
        assert_eq!(app.append(&l, 999, 1.0), Err(AppendError::OutOfBounds));
        assert!(app.append(&l, 1000, 1.0).is_ok());
        app.commit().unwrap();
        assert_eq!(db.stats().out_of_bounds_samples, 1);
    }

    #[test]
    fn fsync_on_every_commit_when_interval_is_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = DbOptions {
            wal_fsync_interval: Duration::ZERO,
            ..DbOptions::default()
        };
        let db = Db::open(tmp.path(), opts).unwrap();
        let before = db.stats().wal_fsyncs;
        let mut app = db.appender();
        for t in 0..3 {
            app.append(&lbls(&[("__name__", "x")]), t, 1.0).unwrap();
            app.commit().unwrap();
        }
        assert_eq!(db.stats().wal_fsyncs - before, 3);
    }

    #[test]
    fn concurrent_appenders_share_series() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let threads: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut app = db.appender();
                    for round in 0..50i64 {
                        for i in 0..100 {
                            // Series i is written by every thread at its own timestamps.
                            let l = lbls(&[("__name__", "m"), ("i", &i.to_string())]);
                            app.append(&l, round * 4 + w, 1.0).unwrap_or_default();
                        }
                        app.commit().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = db.stats();
        assert_eq!(s.num_series, 100);
        assert_eq!(s.series_created, 100);
        let live = dump(&db, i64::MIN, i64::MAX, &[]);
        let stored: usize = live.iter().map(|(_, v)| v.len()).sum();
        assert_eq!(stored as u64, s.samples_appended);
        assert_eq!(s.samples_appended + s.out_of_order_samples, 4 * 50 * 100);
        for (_, v) in &live {
            assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        }
        drop(db);
        let db = open(tmp.path());
        assert_eq!(
            dump(&db, i64::MIN, i64::MAX, &[]),
            live,
            "replay must rebuild the same head"
        );
    }
}
