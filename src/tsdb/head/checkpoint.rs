//! WAL checkpoints from the head's side: what goes into `checkpoint.<N>`. A checkpoint
//! stands in for every segment up to the one the WAL was writing when it started, so
//! it must hold whatever replaying those segments would restore. The head already holds
//! exactly that, applied, so the checkpoint is written from the head rather than by
//! filtering the old segments as Prometheus does: the min valid time, a series record
//! for every logged series, its chunks as they are (closed chunks whole, the open chunk
//! last), and its tombstones.
//!
//! Commits keep running while the series are written, so the checkpoint may also hold
//! samples that the segments after it log again. Replaying those is a no-op: a sample
//! at or before a series' newest one is dropped, and tombstones and bounds are
//! idempotent. So replay (checkpoint, then the later segments) gives the same head.

use super::series::ClosedChunk;
use super::{Head, STRIPES};
use crate::tsdb::index::SeriesLabels;
use crate::tsdb::wal::WalError;
use crate::tsdb::wal::checkpoint::{self, CheckpointWriter};
use crate::tsdb::wal::record::{self, RecordType, Tombstone};
use std::time::{Duration, Instant};

/// Records are cut at about this many body bytes.
const RECORD_BYTES: usize = 1 << 20;

/// What a checkpoint did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    /// The last segment the checkpoint covers (its name's number).
    pub segment: u32,
    pub series: u64,
    pub chunks: u64,
    pub tombstones: u64,
    /// Bytes written, framing included.
    pub bytes: u64,
    pub segments_deleted: usize,
    pub checkpoints_deleted: usize,
    /// The truncation the checkpoint did first, if `mint` was past the head's bound.
    pub truncated: Option<super::TruncateStats>,
    pub duration: Duration,
}

/// One series as copied under its stripe lock.
struct Copied {
    r: u32,
    labels: Box<[u8]>,
    chunks: Vec<ClosedChunk>,
    /// The open chunk's bytes and time range.
    open: Vec<u8>,
    open_range: (i64, i64),
}

/// Framed records on their way to the checkpoint.
struct Out<'w> {
    w: &'w mut CheckpointWriter,
    body: Vec<u8>,
    framed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Out<'_> {
    fn flush(&mut self, typ: RecordType) -> Result<(), WalError> {
        if self.body.is_empty() {
            return Ok(());
        }
        self.framed.clear();
        record::frame(&mut self.framed, typ, &self.body, &mut self.snappy)?;
        self.body.clear();
        self.w.write(&self.framed)
    }

    fn maybe_flush(&mut self, typ: RecordType) -> Result<(), WalError> {
        if self.body.len() >= RECORD_BYTES {
            self.flush(typ)?;
        }
        Ok(())
    }
}

impl Head {
    /// Checkpoints the WAL at `mint`: truncates the head to `mint` first if its bound is
    /// older, closes the segment being written (`N`), writes `checkpoint.<N>` from the
    /// head (through a `.tmp` directory, fsynced, renamed), then deletes segments up to
    /// `N` and older checkpoints. A crash at any point reopens to the same data (see
    /// `wal::replay`). A head without a WAL has nothing to checkpoint.
    pub fn checkpoint(&self, mint: i64) -> Result<CheckpointStats, WalError> {
        let start = Instant::now();
        let _m = self.maintenance.lock();
        let Some(wal) = &self.wal else {
            return Ok(CheckpointStats::default());
        };
        let mut stats = CheckpointStats::default();
        if mint > self.min_valid_time() {
            stats.truncated = Some(self.truncate_locked(mint)?);
        }
        let (n, dir, segment_size) = {
            let mut w = wal.lock();
            let n = w.cut()?;
            (n, w.dir().to_path_buf(), w.segment_size())
        };
        stats.segment = n;
        let mut cw = CheckpointWriter::create(&dir, n, segment_size)?;
        self.write_checkpoint(&mut cw, &mut stats)?;
        stats.bytes = cw.bytes;
        cw.finish()?;
        let d = checkpoint::delete_covered(&dir, n)?;
        stats.segments_deleted = d.segments;
        stats.checkpoints_deleted = d.checkpoints;
        stats.duration = start.elapsed();
        tracing::info!(
            checkpoint = n,
            series = stats.series,
            chunks = stats.chunks,
            bytes = stats.bytes,
            segments_deleted = d.segments,
            duration_ms = stats.duration.as_millis() as u64,
            "write-ahead log checkpoint written"
        );
        Ok(stats)
    }

    fn write_checkpoint(
        &self,
        w: &mut CheckpointWriter,
        stats: &mut CheckpointStats,
    ) -> Result<(), WalError> {
        let mut out = Out {
            w,
            body: Vec::new(),
            framed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        };
        let bound = self.min_valid_time();
        if bound > i64::MIN {
            record::encode_min_valid_time(&mut out.body, bound);
            out.flush(RecordType::MinValidTime)?;
        }
        let mut copied: Vec<Copied> = Vec::new();
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut reader = self.chunk_reader();
        for st in 0..STRIPES {
            copied.clear();
            {
                let g = self.stripe(st);
                for (page_no, page) in g.pages.iter().enumerate() {
                    for (slot, s) in page.iter().enumerate() {
                        let Some(s) = s.as_ref().filter(|s| s.logged) else {
                            continue;
                        };
                        copied.push(Copied {
                            r: super::truncate::ref_of(st, page_no, slot),
                            labels: s.labels.clone(),
                            chunks: s
                                .chunks
                                .iter()
                                .filter_map(|c| c.closed(&mut reader))
                                .collect(),
                            open: s.head.bytes().to_vec(),
                            open_range: (
                                s.head.first_t().unwrap_or(i64::MIN),
                                s.head.last().map_or(i64::MIN, |(t, _)| t),
                            ),
                        });
                    }
                }
            }
            if copied.is_empty() {
                continue;
            }
            {
                let sym = self.symbols.read();
                for c in &copied {
                    pairs.clear();
                    pairs.extend(SeriesLabels::pairs(&c.labels));
                    let labels = pairs.iter().map(|&(n, v)| (sym.get(n), sym.get(v)));
                    record::encode_series(&mut out.body, u64::from(c.r), labels);
                    out.maybe_flush(RecordType::Series)?;
                }
            }
            out.flush(RecordType::Series)?;
            stats.series += copied.len() as u64;
            for c in &copied {
                let open = !c.open.is_empty();
                let n = c.chunks.len() + usize::from(open);
                record::encode_chunks_header(&mut out.body, u64::from(c.r), open, n);
                for ch in &c.chunks {
                    record::encode_chunk(&mut out.body, ch.mint, ch.maxt, &ch.data);
                }
                if open {
                    let (mint, maxt) = c.open_range;
                    record::encode_chunk(&mut out.body, mint, maxt, &c.open);
                }
                stats.chunks += n as u64;
                out.maybe_flush(RecordType::Chunks)?;
            }
            out.flush(RecordType::Chunks)?;
        }
        for (r, intervals) in self.tombstones.snapshot() {
            for (mint, maxt) in intervals {
                let t = Tombstone {
                    series_ref: u64::from(r),
                    mint,
                    maxt,
                };
                record::encode_tombstone(&mut out.body, &t);
                stats.tombstones += 1;
                out.maybe_flush(RecordType::Tombstones)?;
            }
        }
        out.flush(RecordType::Tombstones)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Matcher;
    use crate::storage::Storage;
    use crate::tsdb::testing::*;
    use crate::tsdb::wal::checkpoint::{checkpoint_name, list_checkpoints};
    use crate::tsdb::wal::{list_segments, segment_name};
    use crate::tsdb::{Db, DbOptions};
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn small_segments() -> DbOptions {
        DbOptions {
            wal_segment_size: 4096,
            ..opts()
        }
    }

    /// Commits rounds `from..to` (t = round * 1000) for 30 series; series `i` stops
    /// after round `10 * i`, so some go quiet and are collected by a truncation.
    fn rounds(db: &Db, from: i64, to: i64) {
        for round in from..to {
            let mut app = db.appender();
            for i in 0..30i64 {
                if round > 10 * i + 10 && i < 20 {
                    continue;
                }
                let l = lbls(&[("__name__", "m"), ("i", &format!("{i:02}")), ("job", "x")]);
                app.append(&l, round * 1000, (round * i) as f64 * 0.5)
                    .unwrap();
            }
            app.commit().unwrap();
        }
    }

    fn all(db: &Db) -> Vec<(String, Vec<(i64, f64)>)> {
        dump(db, i64::MIN, i64::MAX, &[])
    }

    fn copy_dir(src: &Path, dst: &Path) {
        fs::create_dir_all(dst).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let to = dst.join(e.file_name());
            if e.path().is_dir() {
                copy_dir(&e.path(), &to);
            } else {
                fs::copy(e.path(), to).unwrap();
            }
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn checkpoint_replays_to_the_same_head() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        rounds(&db, 0, 300);
        let segs_before = list_segments(&tmp.path().join("wal")).unwrap().len();
        assert!(segs_before > 5);
        let st = db.head().checkpoint(150_000).unwrap();
        let tr = st.truncated.clone().unwrap();
        assert!(tr.series_removed > 0 && tr.chunks_removed > 0);
        assert_eq!(st.segments_deleted, segs_before);
        assert_eq!(st.series, db.stats().num_series);
        let wal = tmp.path().join("wal");
        assert_eq!(
            names_in(&wal),
            [segment_name(st.segment + 1), checkpoint_name(st.segment)]
        );
        rounds(&db, 300, 320);
        let before = all(&db);
        let stats = db.stats();
        drop(db);

        let db = Db::open(tmp.path(), small_segments()).unwrap();
        assert_eq!(all(&db), before);
        let s = db.stats();
        assert_eq!(
            (s.num_series, s.num_chunks, s.min_time, s.max_time),
            (
                stats.num_series,
                stats.num_chunks,
                stats.min_time,
                stats.max_time
            )
        );
        assert_eq!(db.head().min_valid_time(), 150_000);
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(q.label_values("i", &[]).unwrap().len() as u64, s.num_series);
        drop(q);

        // A second checkpoint replaces the first; writing after a reopen goes on.
        rounds(&db, 320, 330);
        let st2 = db.head().checkpoint(200_000).unwrap();
        assert_eq!(st2.checkpoints_deleted, 1);
        assert_eq!(list_checkpoints(&wal).unwrap().len(), 1);
        rounds(&db, 330, 340);
        let before = all(&db);
        drop(db);
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        assert_eq!(all(&db), before);
        // Only whole chunks past the bound, plus the straddling ones, were kept.
        assert!(db.stats().replayed_samples < 40 * 30 + 30 * 120);
    }

    #[test]
    fn checkpoint_of_an_idle_head_and_of_an_empty_one() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let st = db.head().checkpoint(0).unwrap();
        assert_eq!((st.segment, st.series, st.chunks), (0, 0, 0));
        let st = db.head().checkpoint(0).unwrap();
        assert_eq!((st.segment, st.checkpoints_deleted), (1, 1));
        drop(db);
        let db = open(tmp.path());
        assert!(all(&db).is_empty());
        rounds(&db, 0, 3);
        let before = all(&db);
        drop(db);
        let db = open(tmp.path());
        assert_eq!(all(&db), before);
        assert_eq!(db.stats().wal_segment_current, 2);
    }

    /// Every state a `kill -9` can leave between starting and finishing a checkpoint,
    /// built from copies of the WAL directory before and after one.
    #[test]
    fn every_crash_point_reopens_to_the_same_data() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = tmp.path().join("wal");
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        rounds(&db, 0, 100);
        // An older checkpoint, so that deleting it is one of the steps.
        db.head().checkpoint(20_000).unwrap();
        rounds(&db, 100, 250);
        db.head().truncate(120_000).unwrap();
        rounds(&db, 250, 260);
        let want = all(&db);
        let before = tmp.path().join("before");
        copy_dir(&wal, &before);
        let st = db.head().checkpoint(120_000).unwrap();
        assert!(st.truncated.is_none());
        let n = st.segment;
        let after = tmp.path().join("after");
        copy_dir(&wal, &after);
        drop(db);
        let old_cp = list_checkpoints(&before).unwrap()[0].clone();
        let covered: Vec<(u32, std::path::PathBuf)> = list_segments(&before).unwrap();
        assert!(covered.len() >= 3 && covered.last().unwrap().0 == n);
        let cp_dir = after.join(checkpoint_name(n));
        let cp_seg = fs::read(cp_dir.join(segment_name(0))).unwrap();

        type Build = Box<dyn Fn(&Path)>;
        let from_before: Build = Box::new({
            let before = before.clone();
            move |w| copy_dir(&before, w)
        });
        let cut_done = {
            let before = before.clone();
            move |w: &Path| {
                copy_dir(&before, w);
                fs::write(w.join(segment_name(n + 1)), b"").unwrap();
            }
        };
        let cases: Vec<(&str, Build)> = vec![
            ("before the segment cut", from_before),
            ("after the cut", Box::new(cut_done.clone())),
            ("checkpoint half written", {
                let (cut_done, cp_seg) = (cut_done.clone(), cp_seg.clone());
                Box::new(move |w: &Path| {
                    cut_done(w);
                    let t = w.join(format!("{}.tmp", checkpoint_name(n)));
                    fs::create_dir(&t).unwrap();
                    fs::write(t.join(segment_name(0)), &cp_seg[..cp_seg.len() / 2]).unwrap();
                })
            }),
            ("checkpoint written, not renamed", {
                let (cut_done, cp_dir) = (cut_done.clone(), cp_dir.clone());
                Box::new(move |w: &Path| {
                    cut_done(w);
                    copy_dir(&cp_dir, &w.join(format!("{}.tmp", checkpoint_name(n))));
                })
            }),
            ("renamed, nothing deleted", {
                let (after, covered, old_cp) = (after.clone(), covered.clone(), old_cp.clone());
                Box::new(move |w: &Path| {
                    copy_dir(&after, w);
                    for (i, p) in &covered {
                        fs::copy(p, w.join(segment_name(*i))).unwrap();
                    }
                    copy_dir(&old_cp.1, &w.join(checkpoint_name(old_cp.0)));
                })
            }),
            ("half the segments deleted", {
                let (after, covered, old_cp) = (after.clone(), covered.clone(), old_cp.clone());
                Box::new(move |w: &Path| {
                    copy_dir(&after, w);
                    for (i, p) in &covered[covered.len() / 2..] {
                        fs::copy(p, w.join(segment_name(*i))).unwrap();
                    }
                    copy_dir(&old_cp.1, &w.join(checkpoint_name(old_cp.0)));
                })
            }),
            ("segments deleted, old checkpoint not", {
                let (after, old_cp) = (after.clone(), old_cp.clone());
                Box::new(move |w: &Path| {
                    copy_dir(&after, w);
                    copy_dir(&old_cp.1, &w.join(checkpoint_name(old_cp.0)));
                })
            }),
            ("done", {
                let after = after.clone();
                Box::new(move |w: &Path| copy_dir(&after, w))
            }),
        ];
        for (k, (name, build)) in cases.into_iter().enumerate() {
            let renamed = k >= 4;
            let t2 = tempfile::tempdir().unwrap();
            build(&t2.path().join("wal"));
            let db = Db::open(t2.path(), small_segments()).unwrap();
            assert_eq!(all(&db), want, "{name}");
            assert_eq!(db.head().min_valid_time(), 120_000, "{name}");
            assert_eq!(db.stats().wal_corruptions, 0, "{name}");
            let left = names_in(&t2.path().join("wal"));
            assert!(
                !left.iter().any(|f| f.ends_with(".tmp")),
                "{name}: {left:?}"
            );
            let cps = list_checkpoints(&t2.path().join("wal")).unwrap();
            assert_eq!(cps.len(), 1, "{name}");
            if renamed {
                // Open finished the deletions the crash interrupted.
                assert_eq!(cps[0].0, n, "{name}");
                let segs = list_segments(&t2.path().join("wal")).unwrap();
                assert!(segs.iter().all(|(i, _)| *i > n), "{name}: {left:?}");
            }
            // Writing on and reopening again: nothing doubled, nothing lost.
            rounds(&db, 260, 262);
            let more = all(&db);
            drop(db);
            let db = Db::open(t2.path(), small_segments()).unwrap();
            assert_eq!(all(&db), more, "{name}, second reopen");
        }
    }

    #[test]
    fn commits_during_checkpoints_are_neither_lost_nor_doubled() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        rounds(&db, 0, 50);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 50;
                while !stop.load(Ordering::Relaxed) || round < 150 {
                    rounds(&db, round, round + 1);
                    round += 1;
                }
                round
            })
        };
        let mut cps = 0;
        for k in 0..6 {
            db.head().checkpoint(k * 10_000).unwrap();
            cps += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let last_round = writer.join().unwrap();
        assert!(cps == 6 && last_round >= 150);
        let before = all(&db);
        let samples: usize = before.iter().map(|(_, v)| v.len()).sum();
        drop(db);
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        let got = all(&db);
        assert_eq!(got.iter().map(|(_, v)| v.len()).sum::<usize>(), samples);
        assert_eq!(got, before);
        assert_eq!(
            names(&db, &[Matcher::equal("i", "29")]),
            [r#"m{i="29", job="x"}"#]
        );
    }

    #[test]
    fn damaged_checkpoint_is_logged_and_the_segments_after_it_still_replay() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        rounds(&db, 0, 50);
        let st = db.head().checkpoint(0).unwrap();
        let l = lbls(&[("__name__", "late")]);
        let mut app = db.appender();
        app.append(&l, 99_000, 1.0).unwrap();
        app.commit().unwrap();
        drop((app, db));
        let seg = tmp
            .path()
            .join("wal")
            .join(checkpoint_name(st.segment))
            .join(segment_name(0));
        let mut b = fs::read(&seg).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0x55;
        fs::write(&seg, b).unwrap();
        let db = Db::open(tmp.path(), small_segments()).unwrap();
        assert_eq!(db.stats().wal_corruptions, 1);
        assert_eq!(
            dump(
                &db,
                i64::MIN,
                i64::MAX,
                &[Matcher::equal("__name__", "late")]
            ),
            vec![("late{}".to_string(), vec![(99_000, 1.0)])]
        );
    }
}
