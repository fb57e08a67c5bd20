//! cairn's time-series database. Today it is the head: recent samples in memory as
//! Prometheus XOR chunks, found through an inverted index of roaring postings, made
//! durable by a write-ahead log that is replayed on open. [`Db`] implements
//! [`crate::storage::Storage`]; blocks, compaction and retention will build on it.
//!
//! ```no_run
//! use cairn::model::{Labels, Matcher};
//! use cairn::storage::Storage;
//! use cairn::tsdb::{Db, DbOptions};
//!
//! let db = Db::open(std::path::Path::new("data"), DbOptions::default())?;
//! let mut app = db.appender();
//! let r = app.append(&Labels::from_pairs([("__name__", "up"), ("job", "node")]), 1_000, 1.0)?;
//! app.append_ref(r, 16_000, 1.0)?;
//! app.commit()?;
//! let q = db.querier(0, 20_000)?;
//! let series = q.select(&[Matcher::equal("job", "node")])?;
//! assert_eq!(series.len(), 1);
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod chunkenc;
pub mod head;
pub mod index;
mod metrics;
pub mod varint;
pub mod wal;

use crate::storage::{Appender, Querier, Storage, StorageError};
use head::{Head, HeadAppender, HeadQuerier, ReplayState};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wal::{Wal, WalError, WalMetrics};

/// How the database writes its WAL.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// How often a background thread fsyncs the WAL; zero fsyncs on every commit.
    pub wal_fsync_interval: Duration,
    /// The size at which the WAL starts a new segment file.
    pub wal_segment_size: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            wal_fsync_interval: Duration::from_secs(1),
            wal_segment_size: 128 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data directory {0} is in use by another cairn process; stop it or point \
         --storage.tsdb.path elsewhere"
    )]
    Locked(PathBuf),
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// A snapshot of the head's size and counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadStats {
    pub num_series: u64,
    /// Chunks in the head, open ones included.
    pub num_chunks: u64,
    /// Oldest committed sample; `i64::MAX` when the head is empty.
    pub min_time: i64,
    /// Newest committed sample; `i64::MIN` when the head is empty.
    pub max_time: i64,
    /// Samples committed since start (replayed ones not included).
    pub samples_appended: u64,
    /// Series created since start, replayed ones included.
    pub series_created: u64,
    pub out_of_order_samples: u64,
    pub duplicate_samples: u64,
    pub out_of_bounds_samples: u64,
    pub wal_corruptions: u64,
    pub wal_segment_current: u64,
    pub wal_fsyncs: u64,
    /// Samples restored from the WAL when the database was opened.
    pub replayed_samples: u64,
    pub replay_duration: Duration,
}

struct DbInner {
    head: Arc<Head>,
    wal_metrics: Arc<WalMetrics>,
    replayed_samples: u64,
    replay_duration: Duration,
}

/// The database. Cheap to clone: clones share one head and WAL.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

impl Db {
    /// Opens or creates the database in `dir` (WAL in `dir/wal`), replaying the WAL. A
    /// damaged WAL tail is cut with a warning, never an error; I/O failures and a
    /// directory held by another process are errors.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Db, TsdbError> {
        let dir_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TsdbError::Dir { path, source }
        };
        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(dir_err(&wal_dir))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(dir_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(TsdbError::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(dir_err(&lock_path)(e)),
        }

        let start = Instant::now();
        let head = Head::new();
        let mut st = ReplayState::default();
        let outcome = wal::replay(&wal_dir, |typ, body| head.replay_record(typ, body, &mut st))?;
        if st.unknown_refs > 0 || st.bad_series > 0 {
            tracing::warn!(
                samples = st.unknown_refs,
                series_records = st.bad_series,
                "write-ahead log held samples of unknown series; they were dropped"
            );
        }
        let wal_metrics = Arc::new(WalMetrics::default());
        wal_metrics
            .corruptions
            .store(outcome.corruptions, Ordering::Relaxed);
        let wal = Wal::open(
            &wal_dir,
            outcome.last_segment,
            opts.wal_segment_size,
            opts.wal_fsync_interval,
            wal_metrics.clone(),
        )?;
        let head = Arc::new(head.with_wal(wal).with_dir_lock(lock));
        let replay_duration = start.elapsed();
        tracing::info!(
            series = st.series,
            samples = st.samples_applied,
            records = outcome.records,
            duration_ms = replay_duration.as_millis() as u64,
            "replayed the write-ahead log"
        );
        Ok(Db {
            inner: Arc::new(DbInner {
                head,
                wal_metrics,
                replayed_samples: st.samples_applied,
                replay_duration,
            }),
        })
    }

    /// The head, for components that read it directly (blocks, compaction).
    pub fn head(&self) -> &Arc<Head> {
        &self.inner.head
    }

    pub fn stats(&self) -> HeadStats {
        let c = &self.inner.head.counters;
        let w = &self.inner.wal_metrics;
        let (min_time, max_time) = self.inner.head.time_range();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        HeadStats {
            num_series: load(&c.series),
            num_chunks: load(&c.chunks),
            min_time,
            max_time,
            samples_appended: load(&c.samples_appended),
            series_created: load(&c.series_created),
            out_of_order_samples: load(&c.out_of_order),
            duplicate_samples: load(&c.duplicates),
            out_of_bounds_samples: load(&c.out_of_bounds),
            wal_corruptions: load(&w.corruptions),
            wal_segment_current: load(&w.segment_current),
            wal_fsyncs: load(&w.fsync_count),
            replayed_samples: self.inner.replayed_samples,
            replay_duration: self.inner.replay_duration,
        }
    }

    /// Appends Prometheus-style metrics text (HELP/TYPE/lines) about the head and WAL.
    pub fn write_metrics(&self, out: &mut String) {
        metrics::write(out, &self.stats(), &self.inner.wal_metrics);
    }

    /// Flushes and fsyncs the WAL (called on shutdown). The database stays usable.
    pub fn close(&self) -> Result<(), TsdbError> {
        if let Some(wal) = self.inner.head.wal() {
            wal.close()?;
        }
        Ok(())
    }
}

impl Storage for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(HeadAppender::new(self.inner.head.clone()))
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        Ok(Box::new(HeadQuerier::new(
            self.inner.head.clone(),
            mint,
            maxt,
        )))
    }
}

/// Helpers shared by the tsdb's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::model::{Labels, Matcher};

    pub fn opts() -> DbOptions {
        DbOptions {
            wal_fsync_interval: Duration::from_secs(3600),
            wal_segment_size: 128 << 20,
        }
    }

    pub fn open(dir: &Path) -> Db {
        Db::open(dir, opts()).unwrap()
    }

    pub fn lbls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    /// Every selected series as its text form and its `(t, v)` samples.
    pub fn dump(db: &Db, mint: i64, maxt: i64, ms: &[Matcher]) -> Vec<(String, Vec<(i64, f64)>)> {
        let q = db.querier(mint, maxt).unwrap();
        q.select(ms)
            .unwrap()
            .into_iter()
            .map(|mut s| {
                let mut v = Vec::new();
                while let Some(x) = s.samples.next() {
                    v.push((x.t, x.v));
                }
                (s.labels.to_string(), v)
            })
            .collect()
    }

    /// The series names (text form) a select returns over all time.
    pub fn names(db: &Db, ms: &[Matcher]) -> Vec<String> {
        dump(db, i64::MIN, i64::MAX, ms)
            .into_iter()
            .map(|(l, _)| l)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn second_open_of_a_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        match Db::open(tmp.path(), opts()) {
            Err(TsdbError::Locked(p)) => assert_eq!(p, tmp.path()),
            other => panic!("expected Locked, got {:?}", other.err()),
        }
        drop(db);
        assert!(Db::open(tmp.path(), opts()).is_ok());
    }

    #[test]
    fn stats_and_metrics_track_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let empty = db.stats();
        assert_eq!(
            (empty.num_series, empty.min_time, empty.max_time),
            (0, i64::MAX, i64::MIN)
        );
        let mut app = db.appender();
        let r = app.append(&lbls(&[("__name__", "a")]), 100, 1.0).unwrap();
        app.append_ref(r, 200, 2.0).unwrap();
        app.append(&lbls(&[("__name__", "b")]), 50, 1.0).unwrap();
        app.commit().unwrap();
        let s = db.stats();
        assert_eq!((s.num_series, s.num_chunks, s.samples_appended), (2, 2, 3));
        assert_eq!((s.min_time, s.max_time), (50, 200));
        let mut out = String::new();
        db.write_metrics(&mut out);
        assert!(out.contains("cairn_tsdb_head_series 2\n"));
        assert!(out.contains("cairn_tsdb_head_samples_appended_total 3\n"));
        assert!(out.contains("cairn_tsdb_head_min_time 50\n"));
        assert!(out.contains("cairn_tsdb_wal_segment_current 0\n"));
        db.close().unwrap();
        assert!(db.stats().wal_fsyncs >= 1);
    }

    #[test]
    fn unusable_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            Db::open(&file, opts()),
            Err(TsdbError::Dir { .. })
        ));
    }
}
