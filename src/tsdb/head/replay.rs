//! Rebuilding the head from the WAL: series records recreate series under their logged
//! refs (and index them), samples records are applied with the live append rules.
//! Rejections during replay are not counted again: they were counted when first seen.

use super::series::{Appended, MemSeries};
use super::{Head, STRIPES, SeriesPages, locate, table_hash, validate};
use crate::model::Labels;
use crate::storage::SeriesRef;
use crate::tsdb::index::SeriesLabels;
use crate::tsdb::wal::record::{self, RecordError, RecordType, RefSample, SeriesEntry};
use parking_lot::MutexGuard;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Replay's scratch state, carried from record to record.
#[derive(Default)]
pub struct ReplayState {
    samples: Vec<RefSample>,
    ids: Vec<u8>,
    /// Logged refs whose labels an earlier ref already has (both map to the first).
    duplicate_refs: HashMap<SeriesRef, SeriesRef>,
    pub series: u64,
    pub samples_applied: u64,
    /// Samples whose series record was missing or unusable.
    pub unknown_refs: u64,
    /// Series records skipped because their labels were unusable.
    pub bad_series: u64,
}

impl Head {
    /// Applies one WAL record. An error means the record body is malformed; the WAL
    /// reader then cuts the log there.
    pub fn replay_record(
        &self,
        typ: RecordType,
        body: &[u8],
        st: &mut ReplayState,
    ) -> Result<(), RecordError> {
        match typ {
            RecordType::Series => {
                for e in record::decode_series(body)? {
                    self.replay_series(&e, st);
                }
            }
            RecordType::Samples => {
                let mut samples = std::mem::take(&mut st.samples);
                record::decode_samples(body, &mut samples)?;
                self.replay_samples(&samples, st);
                st.samples = samples;
            }
        }
        Ok(())
    }

    fn replay_series(&self, e: &SeriesEntry<'_>, st: &mut ReplayState) {
        let labels = Labels::from_pairs(e.labels.iter().copied());
        match self.create_with_ref(e.series_ref, &labels, &mut st.ids) {
            Ok((r, _)) if r != e.series_ref => {
                // Same labels logged under two refs: samples of either go to the first.
                st.duplicate_refs.insert(e.series_ref, r);
            }
            Ok((_, created)) => st.series += u64::from(created),
            Err(why) => {
                st.bad_series += 1;
                tracing::warn!(series_ref = e.series_ref, labels = %labels, reason = why, "skipping series record in the write-ahead log");
            }
        }
    }

    /// Creates a logged, indexed series under ref `r` (`true`), or returns the ref of the
    /// series that already has these labels (`false`).
    fn create_with_ref(
        &self,
        r: SeriesRef,
        labels: &Labels,
        ids: &mut Vec<u8>,
    ) -> Result<(SeriesRef, bool), &'static str> {
        validate(labels).map_err(|_| "invalid label set")?;
        let (st, page, slot) = locate(r).ok_or("series ref out of range")?;
        let hash = labels.stable_hash();
        self.intern_ids(labels, ids);
        {
            let mut table = self.hashes[hash as usize % STRIPES].0.lock();
            if let Some(existing) = self.find_in(&table, hash, |s| *s.labels == **ids) {
                return Ok((existing, false));
            }
            let mut s = MemSeries::new(ids.as_slice().into());
            s.logged = true;
            if !self.stripe(st).insert(page, slot, s) {
                return Err("series ref already used by other labels");
            }
            let hi = hash >> 32;
            table.insert_unique(table_hash(hi), (hi << 32) | r, |&e| table_hash(e >> 32));
        }
        self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
        let sym = self.symbols.read();
        let pairs =
            SeriesLabels::pairs(ids).filter_map(|(n, v)| Some((sym.get_arc(n)?, sym.get_arc(v)?)));
        self.postings.write().add(r as u32, pairs);
        self.counters.series.fetch_add(1, Ordering::Relaxed);
        self.counters.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((r, true))
    }

    fn replay_samples(&self, samples: &[RefSample], st: &mut ReplayState) {
        let (mut applied, mut chunks) = (0u64, 0u64);
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        for s in samples {
            let r = match st.duplicate_refs.get(&s.series_ref) {
                Some(&r) => r,
                None => s.series_ref,
            };
            let Some((stripe, page, slot)) = locate(r) else {
                st.unknown_refs += 1;
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == stripe => g,
                _ => &mut held.insert((stripe, self.stripe(stripe))).1,
            };
            let Some(series) = g.get_mut(page, slot).filter(|s| s.logged) else {
                st.unknown_refs += 1;
                continue;
            };
            if let Ok(Appended::Sample { new_chunk }) = series.append(s.t, s.v) {
                applied += 1;
                chunks += u64::from(new_chunk);
                mint = mint.min(s.t);
                maxt = maxt.max(s.t);
            }
        }
        drop(held);
        st.samples_applied += applied;
        self.counters.chunks.fetch_add(chunks, Ordering::Relaxed);
        self.note_time_range(mint, maxt);
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
}
