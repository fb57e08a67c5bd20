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

mod admin;
pub mod block;
pub mod chunkenc;
pub mod compact;
pub(crate) mod fault;
pub mod head;
pub mod index;
mod maintenance;
mod metrics;
pub mod querier;
pub mod resolution;
pub use maintenance::{MaintenanceHandle, RoundReport};
pub mod varint;
pub mod wal;

use crate::storage::{Appender, Querier, Storage, StorageError};
use block::{Block, BlockQuerier};
use head::{Head, HeadAppender, HeadQuerier};
use parking_lot::RwLock;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wal::{Wal, WalError, WalMetrics};

/// How long blocks are kept, per resolution, and how much disk they may take.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionOptions {
    /// Raw blocks older than this (behind the newest block's end) are deleted.
    pub raw: Duration,
    pub res_5m: Duration,
    pub res_1h: Duration,
    /// Blocks plus WAL beyond this many bytes: oldest blocks go first. 0: no limit.
    pub max_bytes: u64,
}

/// How the database writes its WAL, cuts blocks, compacts, downsamples and retains.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// How often a background thread fsyncs the WAL; zero fsyncs on every commit.
    pub wal_fsync_interval: Duration,
    /// The size at which the WAL starts a new segment file.
    pub wal_segment_size: u64,
    /// The range of a block cut from the head (Prometheus's min-block-duration).
    pub min_block_duration: Duration,
    /// The largest range compaction builds; `None`: 10% of the longest retention,
    /// at most 31 days, as Prometheus.
    pub max_block_duration: Option<Duration>,
    pub retention: RetentionOptions,
    /// A raw block ending this long before the newest data gets a 5m copy.
    pub downsample_5m_after: Duration,
    /// A 5m block ending this long before the newest data gets a 1h copy.
    pub downsample_1h_after: Duration,
}

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            wal_fsync_interval: Duration::from_secs(1),
            wal_segment_size: 128 << 20,
            min_block_duration: 2 * HOUR,
            max_block_duration: None,
            retention: RetentionOptions {
                raw: 15 * DAY,
                res_5m: 15 * DAY,
                res_1h: 15 * DAY,
                max_bytes: 0,
            },
            downsample_5m_after: 40 * HOUR,
            downsample_1h_after: 10 * DAY,
        }
    }
}

impl DbOptions {
    /// The longest block compaction may build: the flag, else 10% of the longest
    /// retention capped at 31 days; never below the head's block range.
    pub fn max_block_duration(&self) -> Duration {
        let r = &self.retention;
        let longest = r.raw.max(r.res_5m).max(r.res_1h);
        self.max_block_duration
            .unwrap_or_else(|| (longest / 10).min(31 * DAY))
            .max(self.min_block_duration)
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
    #[error(transparent)]
    Block(#[from] block::BlockError),
    #[error(transparent)]
    Compact(#[from] compact::CompactError),
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
    /// Blocks on disk being served.
    pub blocks_loaded: u64,
    /// Blocks moved to `quarantine/` because they failed verification, since start.
    pub blocks_quarantined: u64,
    /// Blocks cut from the head since start.
    pub head_blocks_written: u64,
    /// Compactions (merges and tombstone cleanings) done since start.
    pub compactions: u64,
    /// Maintenance rounds that failed since start.
    pub compactions_failed: u64,
    /// Maintenance rounds finished (failed ones included) since start.
    pub maintenance_rounds: u64,
    /// Downsampled copies made since start.
    pub downsamplings: u64,
    /// Blocks deleted by retention since start.
    pub retention_deletions: u64,
    /// Bytes of the blocks being served.
    pub blocks_bytes: u64,
}

struct DbInner {
    dir: PathBuf,
    opts: DbOptions,
    head: Arc<Head>,
    /// Held by a maintenance step (head cut, compaction, downsampling, retention,
    /// tombstone cleaning): one at a time.
    maintenance: parking_lot::Mutex<()>,
    head_blocks_written: AtomicU64,
    compactions: AtomicU64,
    compactions_failed: AtomicU64,
    maintenance_rounds: AtomicU64,
    downsamplings: AtomicU64,
    retention_deletions: AtomicU64,
    /// Open blocks, sorted by min time.
    blocks: RwLock<Vec<Arc<Block>>>,
    blocks_quarantined: AtomicU64,
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

        let (blocks, quarantined) = load_blocks(dir)?;

        let start = Instant::now();
        let chunks_dir = dir.join("chunks_head");
        let disk = head::ChunkDiskMapper::open(&chunks_dir, head::chunks_disk::SEGMENT_SIZE)
            .map_err(|e| TsdbError::Dir {
                path: chunks_dir,
                source: std::io::Error::other(e),
            })?;
        let head = Head::new().with_chunks_disk(disk);
        let outcome = head.replay_wal(&wal_dir)?;
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
            series = outcome.series,
            samples = outcome.samples,
            records = outcome.records,
            checkpoint = outcome.checkpoint,
            workers = outcome.workers,
            index_ms = outcome.index_duration.as_millis() as u64,
            duration_ms = replay_duration.as_millis() as u64,
            "replayed the write-ahead log"
        );
        Ok(Db {
            inner: Arc::new(DbInner {
                dir: dir.to_path_buf(),
                opts,
                head,
                maintenance: parking_lot::Mutex::new(()),
                head_blocks_written: AtomicU64::new(0),
                compactions: AtomicU64::new(0),
                compactions_failed: AtomicU64::new(0),
                maintenance_rounds: AtomicU64::new(0),
                downsamplings: AtomicU64::new(0),
                retention_deletions: AtomicU64::new(0),
                blocks: RwLock::new(blocks),
                blocks_quarantined: AtomicU64::new(quarantined),
                wal_metrics,
                replayed_samples: outcome.samples,
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
            blocks_loaded: self.inner.blocks.read().len() as u64,
            blocks_quarantined: load(&self.inner.blocks_quarantined),
            head_blocks_written: load(&self.inner.head_blocks_written),
            compactions: load(&self.inner.compactions),
            compactions_failed: load(&self.inner.compactions_failed),
            maintenance_rounds: load(&self.inner.maintenance_rounds),
            downsamplings: load(&self.inner.downsamplings),
            retention_deletions: load(&self.inner.retention_deletions),
            blocks_bytes: self
                .inner
                .blocks
                .read()
                .iter()
                .map(|b| b.size_bytes())
                .sum(),
        }
    }

    /// The blocks being served, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.inner.blocks.read().clone()
    }

    /// Writes the head's samples in `[mint, maxt)` as a level-1 block and starts serving
    /// it; `None` when the head has no sample there (no empty block is written, as in
    /// Prometheus). The head keeps its copy until [`Head::truncate`]; the querier returns
    /// each timestamp once either way.
    pub fn write_block(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Option<block::BlockMeta>, block::BlockError> {
        let series: Vec<block::BlockSeries> = self
            .inner
            .head
            .chunks_in_range(mint, maxt)
            .into_iter()
            .map(|(labels, chunks)| block::BlockSeries { labels, chunks })
            .collect();
        if series.is_empty() {
            return Ok(None);
        }
        let meta = block::write_block(&self.inner.dir, series, mint, maxt, 1, Vec::new())?;
        let b = Arc::new(Block::open(&self.inner.dir.join(&meta.ulid))?);
        let mut blocks = self.inner.blocks.write();
        blocks.push(b);
        blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
        Ok(Some(meta))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
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
        self.querier_at_resolution(mint, maxt, 0)
    }

    fn downsampled_resolutions(&self, mint: i64, maxt: i64) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .inner
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().resolution > 0 && b.overlaps(mint, maxt))
            .map(|b| b.meta().resolution)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Blocks chosen by [`resolution::choose`] (raw where it exists when `resolution_ms`
    /// is 0), then the head, which is always raw and always read.
    fn querier_at_resolution(
        &self,
        mint: i64,
        maxt: i64,
        resolution_ms: i64,
    ) -> Result<Box<dyn Querier>, StorageError> {
        let head = Box::new(HeadQuerier::new(self.inner.head.clone(), mint, maxt));
        let blocks = self.inner.blocks.read();
        let spans: Vec<resolution::Span> = blocks
            .iter()
            .map(|b| resolution::Span {
                min_time: b.meta().min_time,
                max_time: b.meta().max_time,
                resolution: b.meta().resolution,
            })
            .collect();
        let mut parts: Vec<Box<dyn Querier>> =
            resolution::choose(&spans, resolution_ms, mint, maxt)
                .into_iter()
                .map(|i| {
                    Box::new(BlockQuerier::new(blocks[i].clone(), mint, maxt)) as Box<dyn Querier>
                })
                .collect();
        if parts.is_empty() {
            return Ok(head);
        }
        parts.push(head);
        Ok(Box::new(querier::MergeQuerier::new(parts)))
    }
}

/// Removes leftover `<ulid>.tmp` directories (a crash mid-write), then opens every block
/// directory; one that fails verification is moved to `quarantine/` with an error log,
/// and the rest are served. Returns the blocks sorted by min time and the number
/// quarantined.
fn load_blocks(dir: &Path) -> Result<(Vec<Arc<Block>>, u64), TsdbError> {
    let dir_err = |source| TsdbError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut blocks = Vec::new();
    let mut quarantined = 0;
    for entry in fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if let Some(stem) = name.strip_suffix(".tmp")
            && block::ulid::is_ulid(stem)
        {
            tracing::info!(dir = %path.display(), "removing an unfinished block");
            fs::remove_dir_all(&path).map_err(dir_err)?;
            continue;
        }
        if !block::ulid::is_ulid(name) {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) => {
                quarantined += 1;
                let q = dir.join("quarantine");
                fs::create_dir_all(&q).map_err(dir_err)?;
                let dst = q.join(name);
                tracing::error!(
                    block = name,
                    error = %e,
                    moved_to = %dst.display(),
                    "block failed verification; quarantined, the rest of the data is served"
                );
                fs::rename(&path, &dst).map_err(dir_err)?;
            }
        }
    }
    // A crash between a compaction's rename and the deletion of its parents leaves both:
    // the parents go now (the merged block holds all of their data).
    let metas: Vec<block::BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
    let gone = compact::superseded(&metas);
    if !gone.is_empty() {
        blocks.retain(|b| !gone.contains(&b.meta().ulid));
        for ulid in &gone {
            tracing::info!(block = %ulid, "removing a block already merged into another");
            fs::remove_dir_all(dir.join(ulid)).map_err(dir_err)?;
        }
    }
    blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
    Ok((blocks, quarantined))
}

/// Helpers shared by the tsdb's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::model::{Labels, Matcher};

    pub fn opts() -> DbOptions {
        DbOptions {
            wal_fsync_interval: Duration::from_secs(3600),
            ..Default::default()
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
    use crate::model::Matcher;

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

    const H: i64 = 3_600_000;

    /// 30 series over 10.5 h at 15 s with explicit timestamps: counters, gauges and a
    /// series that stops half way, appended through the Appender.
    fn ten_hours(db: &Db) {
        let mut app = db.appender();
        let mut refs = Vec::new();
        for i in 0..30 {
            let kind = if i % 2 == 0 { "counter" } else { "gauge" };
            let l = lbls(&[("__name__", kind), ("i", &format!("{i:02}")), ("job", "j")]);
            refs.push(app.append(&l, 0, 0.0).unwrap());
        }
        let mut t = 15_000;
        while t < 10 * H + H / 2 {
            for (i, r) in refs.iter().enumerate() {
                if i == 7 && t > 5 * H {
                    continue;
                }
                let v = if i % 2 == 0 {
                    (t / 1000 * (i as i64 + 1)) as f64
                } else {
                    ((t / 15_000 + i as i64) % 17) as f64 * 0.25
                };
                app.append_ref(*r, t, v).unwrap();
            }
            t += 15_000;
        }
        app.commit().unwrap();
    }

    fn matcher_sets() -> Vec<Vec<Matcher>> {
        use crate::model::MatchType;
        let m = |n: &str, k, v: &str| Matcher::new(k, n, v).unwrap();
        vec![
            vec![m("job", MatchType::Equal, "j")],
            vec![m("__name__", MatchType::Equal, "gauge")],
            vec![
                m("i", MatchType::Regex, "0[0-7]"),
                m("__name__", MatchType::NotEqual, "gauge"),
            ],
            vec![m("i", MatchType::Equal, "07")],
        ]
    }

    fn ranges() -> Vec<(i64, i64)> {
        vec![
            (i64::MIN, i64::MAX),
            (0, 2 * H - 1),
            (2 * H - 1, 2 * H),
            (H + 7, 7 * H + 3),
            (5 * H, 5 * H + 15_000),
            (9 * H, 11 * H),
            (20 * H, 30 * H),
        ]
    }

    #[test]
    fn querier_over_blocks_and_head_answers_like_the_head_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        ten_hours(&db);
        let want: Vec<_> = ranges()
            .into_iter()
            .flat_map(|(a, b)| matcher_sets().into_iter().map(move |ms| (a, b, ms)))
            .map(|(a, b, ms)| dump(&db, a, b, &ms))
            .collect();
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let names_before = q.label_values("i", &[]).unwrap();
        drop(q);
        for k in 0..4 {
            let meta = db.write_block(k * 2 * H, (k + 1) * 2 * H).unwrap().unwrap();
            assert_eq!(meta.stats.num_series, if k < 3 { 30 } else { 29 });
            assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);
        }
        assert_eq!(db.stats().blocks_loaded, 4);
        let got: Vec<_> = ranges()
            .into_iter()
            .flat_map(|(a, b)| matcher_sets().into_iter().map(move |ms| (a, b, ms)))
            .map(|(a, b, ms)| dump(&db, a, b, &ms))
            .collect();
        assert_eq!(got, want);
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(q.label_values("i", &[]).unwrap(), names_before);
        assert_eq!(q.label_names(&[]).unwrap(), ["__name__", "i", "job"]);

        // Each block alone holds exactly the head's samples of its range.
        for b in db.blocks() {
            let (mint, maxt) = (b.meta().min_time, b.meta().max_time);
            let bq = BlockQuerier::new(b.clone(), i64::MIN, i64::MAX);
            let all = [Matcher::equal("job", "j")];
            let from_block: Vec<_> = bq
                .select(&all)
                .unwrap()
                .into_iter()
                .map(|mut s| {
                    let v: Vec<_> = std::iter::from_fn(|| s.samples.next())
                        .map(|x| (x.t, x.v))
                        .collect();
                    (s.labels.to_string(), v)
                })
                .collect();
            let mut from_head = Vec::new();
            let hq = HeadQuerier::new(db.head().clone(), mint, maxt - 1);
            for mut s in hq.select(&all).unwrap() {
                let v: Vec<_> = std::iter::from_fn(|| s.samples.next())
                    .map(|x| (x.t, x.v))
                    .collect();
                from_head.push((s.labels.to_string(), v));
            }
            assert_eq!(from_block, from_head);
            let samples: usize = from_block.iter().map(|(_, v)| v.len()).sum();
            assert_eq!(samples as u64, b.meta().stats.num_samples);
        }

        // Reopened: blocks and replayed head together, still the same answers.
        drop(q);
        drop(db);
        let db = open(tmp.path());
        assert_eq!(db.stats().blocks_loaded, 4);
        let again: Vec<_> = ranges()
            .into_iter()
            .flat_map(|(a, b)| matcher_sets().into_iter().map(move |ms| (a, b, ms)))
            .map(|(a, b, ms)| dump(&db, a, b, &ms))
            .collect();
        assert_eq!(again, want);
    }

    #[test]
    fn crash_mid_write_leaves_a_tmp_dir_that_open_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        ten_hours(&db);
        db.write_block(0, 2 * H).unwrap();
        let want = dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("job", "j")]);
        // A second block interrupted before its rename: a torn copy under `.tmp`.
        let done = db.blocks()[0].dir().to_path_buf();
        let torn = tmp.path().join(format!("{}.tmp", block::ulid::new()));
        fs::create_dir_all(torn.join("chunks")).unwrap();
        let seg = fs::read(done.join("chunks/000001")).unwrap();
        fs::write(torn.join("chunks/000001"), &seg[..seg.len() / 2]).unwrap();
        // Dropped without close(): like kill -9 after the last commit.
        drop(db);
        let db = open(tmp.path());
        assert!(!torn.exists());
        assert_eq!(db.stats().blocks_loaded, 1);
        assert_eq!(db.stats().blocks_quarantined, 0);
        assert_eq!(
            dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("job", "j")]),
            want
        );
    }

    #[test]
    fn flipped_bytes_quarantine_the_block_and_the_server_keeps_serving() {
        for file in ["chunks/000001", "index"] {
            let tmp = tempfile::tempdir().unwrap();
            let db = open(tmp.path());
            ten_hours(&db);
            let meta = db.write_block(0, 2 * H).unwrap().unwrap();
            db.write_block(2 * H, 4 * H).unwrap();
            drop(db);
            let path = tmp.path().join(&meta.ulid).join(file);
            let mut bytes = fs::read(&path).unwrap();
            let at = bytes.len() / 3;
            bytes[at] ^= 0x20;
            fs::write(&path, &bytes).unwrap();

            let db = open(tmp.path());
            let s = db.stats();
            assert_eq!((s.blocks_loaded, s.blocks_quarantined), (1, 1), "{file}");
            assert!(
                tmp.path()
                    .join("quarantine")
                    .join(&meta.ulid)
                    .join(file)
                    .exists()
            );
            assert!(!tmp.path().join(&meta.ulid).exists());
            let mut out = String::new();
            db.write_metrics(&mut out);
            assert!(
                out.contains("cairn_tsdb_blocks_quarantined_total 1\n"),
                "{out}"
            );
            // The head still holds everything, so nothing is lost from the answer.
            let got = dump(&db, 0, 2 * H - 1, &[Matcher::equal("i", "03")]);
            assert_eq!(got[0].1.len(), 480);
            // A quarantined block stays out on the next open too.
            drop(db);
            let db = open(tmp.path());
            assert_eq!(
                (db.stats().blocks_loaded, db.stats().blocks_quarantined),
                (1, 0)
            );
        }
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
