//! Truncation: cutting everything before a time out of the head once blocks hold it.
//! Raises the head's min valid time (logged, so a restart keeps it), drops chunks wholly
//! before it, and collects series left with no samples: out of the series stripes, the
//! label-hash table and the postings, releasing their symbols (unused strings are freed
//! by a sweep), and deletes chunk files that hold only chunks before it. Series with samples in appenders' uncommitted batches are kept.

use super::series::MemSeries;
use super::{HASH_LOCK_BATCH, Head, STRIPES, hash_ids, locate, table_hash};
use crate::tsdb::index::SeriesLabels;
use crate::tsdb::wal::WalError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a truncation did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TruncateStats {
    pub series_removed: u64,
    pub chunks_removed: u64,
    /// Label strings no remaining series uses.
    pub symbols_freed: u64,
    pub tombstones_removed: u64,
    /// Files of `chunks_head/` deleted: every chunk in them ended before the bound.
    pub chunk_files_removed: usize,
    pub duration: Duration,
}

impl Head {
    /// Drops every chunk that lies wholly before `mint` and collects series with no
    /// samples left at or after it. From now on appends older than `mint` fail with
    /// `OutOfBounds` (at commit too, for samples added before this call), and
    /// `append_ref` of a collected series fails with `UnknownSeries`. Queriers already
    /// holding chunks keep them; new ones see nothing before `mint`.
    ///
    /// The new bound is logged to the WAL first; if that fails nothing changes.
    pub fn truncate(&self, mint: i64) -> Result<TruncateStats, WalError> {
        let _m = self.maintenance.lock();
        self.truncate_locked(mint)
    }

    pub(super) fn truncate_locked(&self, mint: i64) -> Result<TruncateStats, WalError> {
        let start = Instant::now();
        if mint > self.min_valid_time() {
            match &self.wal {
                Some(wal) => {
                    let mut out = Vec::new();
                    crate::tsdb::wal::record::frame_min_valid_time(&mut out, mint)?;
                    let mut w = wal.lock();
                    w.write(&out)?;
                    // Under the WAL lock: every commit logged after this record checks
                    // its samples against the new bound.
                    self.min_valid_time.fetch_max(mint, Ordering::Relaxed);
                }
                None => {
                    self.min_valid_time.fetch_max(mint, Ordering::Relaxed);
                }
            }
        }
        let mut stats = self.gc(mint, true);
        // After `gc`: no series refers to a chunk that ended before `mint` any more.
        if let Some(disk) = &self.chunks_disk {
            stats.chunk_files_removed = disk.truncate(mint);
        }
        stats.tombstones_removed += self.tombstones.truncate(mint, &[]);
        self.move_time_range(mint);
        stats.duration = start.elapsed();
        Ok(stats)
    }

    /// Drops chunks before `mint` in every series and, with `collect`, removes series
    /// left empty without pending samples.
    pub(super) fn gc(&self, mint: i64, collect: bool) -> TruncateStats {
        let mut stats = TruncateStats::default();
        let mut candidates: Vec<u32> = Vec::new();
        for st in 0..STRIPES {
            let mut g = self.stripe(st);
            for (page_no, page) in g.pages.iter_mut().enumerate() {
                for (slot, s) in page.iter_mut().enumerate() {
                    let Some(s) = s else { continue };
                    stats.chunks_removed += s.truncate_chunks(mint);
                    if collect && s.is_empty() && s.pending == 0 {
                        candidates.push(ref_of(st, page_no, slot));
                    }
                }
            }
        }
        self.counters
            .chunks
            .fetch_sub(stats.chunks_removed, Ordering::Relaxed);
        if candidates.is_empty() {
            return stats;
        }
        let mut removed: Vec<u32> = Vec::new();
        for batch in candidates.chunks(HASH_LOCK_BATCH) {
            stats.series_removed += self.remove_series(batch, &mut removed);
        }
        stats.tombstones_removed = self.tombstones.truncate(mint, &removed);
        self.free_empty_pages();
        // Strings are freed under the write lock, which also waits out every creator
        // that looked them up; queries hold no lock between copying a series' ids and
        // resolving them, so they pin `id_readers` instead.
        stats.symbols_freed = self.symbols.write().sweep(&self.id_readers) as u64;
        stats
    }

    /// Removes the series of `refs` that are still empty and unwanted; returns how many.
    fn remove_series(&self, refs: &[u32], removed: &mut Vec<u32>) -> u64 {
        let sym = self.symbols.read();
        // Hashes first (under the series lock only), since the hash stripe must be
        // locked before the series stripe.
        let mut hashed: Vec<(u32, u64)> = Vec::with_capacity(refs.len());
        for &r in refs {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            if let Some(s) = self.stripe(st).get(page, slot) {
                hashed.push((r, hash_ids(&sym, &s.labels)));
            }
        }
        let mut gone: Vec<(u32, MemSeries)> = Vec::with_capacity(hashed.len());
        for (r, hash) in hashed {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            let mut table = self.hashes[hash as usize % STRIPES].0.lock();
            let mut g = self.stripe(st);
            // An appender may have added a sample since the scan.
            let Some(cell) = g.pages.get_mut(page).and_then(|p| p.get_mut(slot)) else {
                continue;
            };
            if !cell
                .as_ref()
                .is_some_and(|s| s.is_empty() && s.pending == 0)
            {
                continue;
            }
            let Some(s) = cell.take() else { continue };
            drop(g);
            let hi = hash >> 32;
            let entry = (hi << 32) | u64::from(r);
            if let Ok(e) = table.find_entry(table_hash(hi), |&e| e == entry) {
                e.remove();
            }
            gone.push((r, s));
        }
        if gone.is_empty() {
            return 0;
        }
        let mut logged = 0;
        {
            let mut postings = self.postings.write();
            for (r, s) in &gone {
                if s.logged {
                    logged += 1;
                    let pairs =
                        SeriesLabels::pairs(&s.labels).map(|(n, v)| (sym.get(n), sym.get(v)));
                    postings.remove(*r, pairs);
                }
            }
        }
        for (r, s) in &gone {
            for (n, v) in SeriesLabels::pairs(&s.labels) {
                sym.release(n);
                sym.release(v);
            }
            removed.push(*r);
        }
        self.counters.series.fetch_sub(logged, Ordering::Relaxed);
        self.counters
            .series_removed
            .fetch_add(gone.len() as u64, Ordering::Relaxed);
        gone.len() as u64
    }

    /// Gives back the memory of pages whose series are all gone (refs are never reused,
    /// so such a page would stay empty for good).
    fn free_empty_pages(&self) {
        for st in 0..STRIPES {
            let mut g = self.stripe(st);
            for p in g.pages.iter_mut() {
                if p.capacity() > 0 && p.iter().all(Option::is_none) {
                    *p = Vec::new();
                }
            }
        }
    }

    /// The head's time range after truncating at `mint`: it starts at `mint`, or is empty
    /// when nothing at or after `mint` remains.
    pub(super) fn move_time_range(&self, mint: i64) {
        // Commits note their samples' times under the WAL lock; holding it keeps this
        // read-modify-write from losing theirs.
        let _w = self.wal.as_ref().map(|w| w.lock());
        if self.max_time.load(Ordering::Relaxed) < mint {
            self.min_time.store(i64::MAX, Ordering::Relaxed);
            self.max_time.store(i64::MIN, Ordering::Relaxed);
        } else {
            self.min_time.fetch_max(mint, Ordering::Relaxed);
        }
    }
}

/// The ref stored at a stripe, page and slot (the inverse of [`locate`]).
pub(super) fn ref_of(stripe: usize, page: usize, slot: usize) -> u32 {
    (((page * STRIPES + stripe) * super::PAGE + slot) + 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Matcher;
    use crate::storage::{AppendError, Storage};
    use crate::tsdb::testing::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64};

    #[test]
    fn ref_of_inverts_locate() {
        for r in [1u64, 64, 65, 8192, 8193, 1 << 20, u64::from(u32::MAX)] {
            let (st, page, slot) = locate(r).unwrap();
            assert_eq!(u64::from(ref_of(st, page, slot)), r);
        }
    }

    /// `n` series `m{i="..", job="j"}`, each with samples at `ts`.
    fn fill(db: &crate::tsdb::Db, name: &str, n: usize, ts: &[i64]) -> Vec<u64> {
        let mut app = db.appender();
        let mut refs = Vec::new();
        for i in 0..n {
            let l = lbls(&[
                ("__name__", name),
                ("i", &format!("{name}-{i}")),
                ("job", "j"),
            ]);
            for &t in ts {
                let r = app.append(&l, t, t as f64).unwrap();
                if t == ts[0] {
                    refs.push(r);
                }
            }
        }
        app.commit().unwrap();
        refs
    }

    #[test]
    fn truncate_drops_old_data_and_collects_series() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let ts_old: Vec<i64> = (0..300).map(|i| i * 10).collect();
        let old = fill(&db, "old", 3, &ts_old);
        let both: Vec<i64> = (0..300).map(|i| i * 10 + 2000).collect();
        let kept = fill(&db, "kept", 2, &both);
        let symbols_before = db.head().symbols.read().len();
        assert_eq!(db.stats().num_series, 5);
        let chunks_before = db.stats().num_chunks;

        let st = db.head().truncate(3000).unwrap();
        assert_eq!(st.series_removed, 3);
        // old: 3 chunks each; kept: chunks [2000,3190] straddles and stays, so none.
        assert_eq!(st.chunks_removed, 9);
        assert_eq!(db.stats().num_chunks, chunks_before - 9);
        // "old", "old-0".."old-2" are no longer used by any series.
        assert_eq!(st.symbols_freed, 4);
        assert_eq!(db.head().symbols.read().len(), symbols_before - 4);
        let s = db.stats();
        assert_eq!((s.num_series, s.min_time, s.max_time), (2, 3000, 4990));
        assert_eq!(db.head().min_valid_time(), 3000);

        // Gone from selects, label names and values.
        assert!(names(&db, &[Matcher::equal("__name__", "old")]).is_empty());
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(q.label_values("__name__", &[]).unwrap(), ["kept"]);
        assert_eq!(q.label_values("i", &[]).unwrap(), ["kept-0", "kept-1"]);
        // Nothing before the bound is served, even from the straddling chunk.
        let got = dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("i", "kept-0")]);
        assert_eq!(got[0].1.first(), Some(&(3000, 3000.0)));
        assert_eq!(got[0].1.len(), 200);

        // Old samples are out of bounds; collected refs are unknown.
        let mut app = db.appender();
        assert_eq!(
            app.append_ref(kept[0], 2999, 1.0),
            Err(AppendError::OutOfBounds)
        );
        let l = lbls(&[("__name__", "new")]);
        assert_eq!(app.append(&l, 10, 1.0), Err(AppendError::OutOfBounds));
        assert_eq!(
            app.append_ref(old[0], 5000, 1.0),
            Err(AppendError::UnknownSeries(old[0]))
        );
        assert_eq!(db.stats().out_of_bounds_samples, 2);
        // The caller's fallback (append by labels) creates the series afresh.
        let l0 = lbls(&[("__name__", "old"), ("i", "old-0"), ("job", "j")]);
        let r = app.append(&l0, 5000, 1.0).unwrap();
        assert!(r > kept[1]);
        app.commit().unwrap();
        assert_eq!(
            dump(&db, 0, 10_000, &[Matcher::equal("i", "old-0")]),
            vec![(r#"old{i="old-0", job="j"}"#.to_string(), vec![(5000, 1.0)])]
        );
        // A truncation to an older time changes nothing.
        assert_eq!(db.head().truncate(100).unwrap().series_removed, 0);
        assert_eq!(db.head().min_valid_time(), 3000);
    }

    #[test]
    fn series_with_pending_samples_survive_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let refs = fill(&db, "a", 3, &[10]);
        let mut pending = db.appender();
        pending.append_ref(refs[0], 2000, 1.0).unwrap();
        let fresh = lbls(&[("__name__", "fresh")]);
        let fresh_ref = pending.append(&fresh, 2000, 2.0).unwrap();
        let mut rolled = db.appender();
        rolled.append_ref(refs[1], 2000, 3.0).unwrap();
        rolled.rollback();

        let st = db.head().truncate(1000).unwrap();
        // refs[1] and refs[2] go; refs[0] and the new series have pending samples.
        assert_eq!(st.series_removed, 2);
        pending.commit().unwrap();
        assert_eq!(
            dump(&db, i64::MIN, i64::MAX, &[]),
            vec![
                (r#"a{i="a-0", job="j"}"#.to_string(), vec![(2000, 1.0)]),
                (r#"fresh"#.to_string() + "{}", vec![(2000, 2.0)]),
            ]
        );
        assert_eq!(pending.append_ref(fresh_ref, 3000, 1.0), Ok(()));
        // Dropping an appender releases its series too.
        drop(pending);
        assert_eq!(db.head().truncate(2500).unwrap().series_removed, 2);
        assert_eq!(db.stats().num_series, 0);
        // What replay rebuilds is the same: nothing.
        drop((rolled, db));
        let db = open(tmp.path());
        assert_eq!(dump(&db, i64::MIN, i64::MAX, &[]), vec![]);
        assert_eq!(db.head().min_valid_time(), 2500);
        assert_eq!(db.stats().num_series, 0);
    }

    #[test]
    fn samples_a_truncation_overtakes_are_out_of_bounds_at_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let refs = fill(&db, "a", 1, &[10]);
        let mut app = db.appender();
        app.append_ref(refs[0], 500, 1.0).unwrap();
        app.append_ref(refs[0], 1500, 2.0).unwrap();
        // A new series whose only sample the truncation overtakes is neither logged
        // nor shown.
        app.append(&lbls(&[("__name__", "late")]), 600, 1.0)
            .unwrap();
        db.head().truncate(1000).unwrap();
        app.commit().unwrap();
        assert_eq!(db.stats().out_of_bounds_samples, 2);
        assert_eq!(db.stats().num_series, 1);
        let want = vec![(r#"a{i="a-0", job="j"}"#.to_string(), vec![(1500, 2.0)])];
        assert_eq!(dump(&db, i64::MIN, i64::MAX, &[]), want);
        assert_eq!(db.head().truncate(1000).unwrap().series_removed, 1);
        drop((app, db));
        let db = open(tmp.path());
        assert_eq!(dump(&db, i64::MIN, i64::MAX, &[]), want);
        assert_eq!(db.stats().num_series, 1);
    }

    #[test]
    fn reopen_after_truncation_replays_to_the_same_head() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let ts: Vec<i64> = (0..400).map(|i| i * 10).collect();
        fill(&db, "a", 5, &ts);
        fill(&db, "b", 5, &ts[..100]);
        db.head().truncate(2000).unwrap();
        let late: Vec<i64> = (400..450).map(|i| i * 10).collect();
        fill(&db, "a", 5, &late);
        let before = dump(&db, i64::MIN, i64::MAX, &[]);
        let stats = db.stats();
        drop(db);
        let db = open(tmp.path());
        assert_eq!(dump(&db, i64::MIN, i64::MAX, &[]), before);
        let s = db.stats();
        assert_eq!(
            (s.num_series, s.min_time, s.max_time),
            (stats.num_series, 2000, 4490)
        );
        assert_eq!(s.num_chunks, stats.num_chunks);
        assert_eq!(db.head().min_valid_time(), 2000);
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(q.label_values("__name__", &[]).unwrap(), ["a"]);
    }

    /// Appenders churn series while truncations and queries run: every acknowledged
    /// sample at or after the final bound is there, nothing is out of bounds (the
    /// truncations stay behind the appenders), and stopped series are collected.
    #[test]
    fn truncation_races_appenders_and_queriers() {
        const THREADS: usize = 3;
        const ROUNDS: i64 = 150;
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let progress: Arc<Vec<AtomicI64>> =
            Arc::new((0..THREADS).map(|_| AtomicI64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let mut appenders = Vec::new();
        for th in 0..THREADS {
            let (db, progress) = (db.clone(), progress.clone());
            appenders.push(std::thread::spawn(move || {
                let mut acked: Vec<(String, i64)> = Vec::new();
                let mut refs: std::collections::HashMap<String, u64> = Default::default();
                for round in 1..=ROUNDS {
                    let mut app = db.appender();
                    let t = round * 1000;
                    let mut batch = Vec::new();
                    // Ten series per generation; a generation lives for 20 rounds.
                    let generation = round / 20;
                    for i in 0..10 {
                        let id = format!("t{th}-g{generation}-{i}");
                        let l = lbls(&[("__name__", "m"), ("id", &id)]);
                        let res = match refs.get(&id) {
                            Some(&r) => match app.append_ref(r, t, t as f64) {
                                Err(AppendError::UnknownSeries(_)) => app.append(&l, t, t as f64),
                                other => other.map(|()| r),
                            },
                            None => app.append(&l, t, t as f64),
                        };
                        let r = res.unwrap();
                        refs.insert(id.clone(), r);
                        batch.push((format!(r#"m{{id="{id}"}}"#), t));
                    }
                    app.commit().unwrap();
                    acked.extend(batch);
                    progress[th].store(round, Ordering::Relaxed);
                    if round == ROUNDS / 2 {
                        // Halfway, wait for a truncation: on a busy machine the appenders
                        // could otherwise finish before the truncator first runs, and
                        // nothing would have raced.
                        while db.head().min_valid_time() <= 0 {
                            std::thread::yield_now();
                        }
                    }
                }
                acked
            }));
        }
        let truncator = {
            let (db, progress, stop) = (db.clone(), progress.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut removed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let slowest = progress
                        .iter()
                        .map(|p| p.load(Ordering::Relaxed))
                        .min()
                        .unwrap_or(0);
                    // Stay five rounds behind the slowest appender.
                    let mint = (slowest - 5) * 1000;
                    removed += db.head().truncate(mint).unwrap().series_removed;
                    std::thread::yield_now();
                }
                removed
            })
        };
        let querier = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    for (_, v) in dump(&db, i64::MIN, i64::MAX, &[]) {
                        assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
                    }
                    n += 1;
                }
                n
            })
        };
        let acked: Vec<Vec<(String, i64)>> =
            appenders.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        let mut removed = truncator.join().unwrap();
        assert!(querier.join().unwrap() > 0);
        assert!(db.head().min_valid_time() > 0);
        removed += db
            .head()
            .truncate((ROUNDS - 5) * 1000)
            .unwrap()
            .series_removed;
        assert_eq!(db.stats().out_of_bounds_samples, 0);
        let bound = db.head().min_valid_time();
        let mut want: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for (l, t) in acked.into_iter().flatten() {
            if t >= bound {
                want.entry(l).or_default().push(t);
            }
        }
        let got: std::collections::BTreeMap<String, Vec<i64>> = dump(&db, i64::MIN, i64::MAX, &[])
            .into_iter()
            .map(|(l, v)| (l, v.into_iter().map(|(t, _)| t).collect()))
            .collect();
        assert_eq!(got, want);
        // Only the last generation is left. (A series can also be collected between
        // its creation and its first append, which `append` retries: hence `>=`.)
        assert!(removed >= (THREADS * 10 * 7) as u64, "{removed}");
        assert_eq!(db.stats().num_series, (THREADS * 10) as u64);
        // And a reopen agrees.
        drop(db);
        let db = open(tmp.path());
        let again: std::collections::BTreeMap<String, Vec<i64>> =
            dump(&db, i64::MIN, i64::MAX, &[])
                .into_iter()
                .map(|(l, v)| (l, v.into_iter().map(|(t, _)| t).collect()))
                .collect();
        assert_eq!(again, got);
    }
}
