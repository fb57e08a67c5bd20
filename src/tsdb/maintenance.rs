//! The database's background work, in the order one round runs it: cut the head's
//! oldest range into a block (and truncate the head and checkpoint the WAL), merge
//! blocks into larger ranges, make downsampled copies, and delete what retention says is
//! expired. Each step is a `Db` method the tests call directly; `start_maintenance` runs
//! rounds on a thread of its own at low priority, so scrapes and queries keep their
//! latency while a compaction runs (the throttle: the kernel schedules the thread after
//! the server's, and only one round runs at a time).

use super::block::{Block, BlockMeta};
use super::compact;
use super::{Db, TsdbError};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Milliseconds in a duration, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What one round did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub head_blocks: usize,
    pub compactions: usize,
    pub downsampled: usize,
    pub deleted: usize,
}

impl Db {
    /// Runs one full round. Rounds are serialised: a second caller waits.
    pub fn maintain(&self) -> Result<RoundReport, TsdbError> {
        let _round = self.inner.maintenance.lock();
        let mut r = RoundReport {
            head_blocks: self.compact_head_locked()?,
            ..Default::default()
        };
        r.compactions = self.compact_blocks_locked()?;
        r.downsampled = self.downsample_locked()?;
        r.deleted = self.apply_retention_locked()?;
        Ok(r)
    }

    /// Cuts blocks from the head while it spans more than 1.5 block ranges (as
    /// Prometheus: the newest half range stays in memory for late samples), each
    /// `[mint, next range boundary)`; then truncates the head and checkpoints the WAL.
    pub fn compact_head(&self) -> Result<usize, TsdbError> {
        let _round = self.inner.maintenance.lock();
        self.compact_head_locked()
    }

    fn compact_head_locked(&self) -> Result<usize, TsdbError> {
        let range = ms(self.inner.opts.min_block_duration).max(1);
        let head = &self.inner.head;
        let (mut mint, hmax) = head.time_range();
        let mut cut = 0;
        let mut truncate_at = None;
        // Every due range first, then one truncation and one checkpoint: a head holding
        // days (a backfill) is not rewritten into a checkpoint once per block.
        while mint <= hmax && hmax - mint > range / 2 * 3 {
            let maxt = (mint.div_euclid(range) + 1) * range;
            if let Some(m) = self.write_block(mint, maxt)? {
                tracing::info!(block = %m.ulid, mint = m.min_time, maxt = m.max_time,
                    series = m.stats.num_series, samples = m.stats.num_samples,
                    "wrote a block from the head");
                self.inner
                    .head_blocks_written
                    .fetch_add(1, Ordering::Relaxed);
                cut += 1;
            }
            truncate_at = Some(maxt);
            mint = maxt;
        }
        if let Some(maxt) = truncate_at {
            // Truncates the head to `maxt`, then writes the checkpoint.
            let c = head.checkpoint(maxt)?;
            if let Some(t) = &c.truncated {
                tracing::info!(
                    mint = maxt,
                    removed_series = t.series_removed,
                    chunks = t.chunks_removed,
                    "truncated the head"
                );
            }
            tracing::info!(
                segment = c.segment,
                series = c.series,
                "checkpointed the write-ahead log"
            );
        }
        Ok(cut)
    }

    /// Merges blocks as the planner says, until it has nothing to do.
    pub fn compact_blocks(&self) -> Result<usize, TsdbError> {
        let _round = self.inner.maintenance.lock();
        self.compact_blocks_locked()
    }

    fn compact_blocks_locked(&self) -> Result<usize, TsdbError> {
        // exponential_ranges caps at a tenth of the retention it is given.
        let ranges = compact::exponential_ranges(
            ms(self.inner.opts.min_block_duration),
            ms(self.inner.opts.max_block_duration()).saturating_mul(10),
        );
        let mut done = 0;
        loop {
            let blocks = self.blocks();
            let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta_snapshot()).collect();
            let Some(plan) = compact::plan(&metas, &ranges) else {
                break;
            };
            let inputs: Vec<Arc<Block>> = blocks
                .iter()
                .filter(|b| plan.contains(&b.meta().ulid))
                .cloned()
                .collect();
            let meta = compact::compact(&self.inner.dir, &inputs)?;
            tracing::info!(block = %meta.ulid, mint = meta.min_time, maxt = meta.max_time,
                level = meta.compaction.level, sources = inputs.len(), "compacted blocks");
            super::fault::pause_at(super::fault::COMPACTION_PARENTS);
            self.replace_blocks(&plan, Some(&meta))?;
            self.inner.compactions.fetch_add(1, Ordering::Relaxed);
            done += 1;
        }
        Ok(done)
    }

    /// Makes the downsampled copies that are due.
    pub fn downsample(&self) -> Result<usize, TsdbError> {
        let _round = self.inner.maintenance.lock();
        self.downsample_locked()
    }

    fn downsample_locked(&self) -> Result<usize, TsdbError> {
        let blocks = self.blocks();
        let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
        let newest = self.newest_time();
        let due = compact::downsample_due(&metas, newest, &self.thresholds());
        let mut done = 0;
        for (ulid, resolution) in due {
            let Some(src) = blocks.iter().find(|b| b.meta().ulid == ulid) else {
                continue;
            };
            let meta = compact::downsample(&self.inner.dir, src, resolution)?;
            tracing::info!(block = %meta.ulid, source = %ulid, resolution,
                "downsampled a block");
            self.replace_blocks(&[], Some(&meta))?;
            self.inner.downsamplings.fetch_add(1, Ordering::Relaxed);
            done += 1;
        }
        Ok(done)
    }

    /// Deletes whole blocks beyond the retention of their resolution, then the oldest
    /// blocks while blocks and WAL together exceed the size limit. The head is never
    /// deleted.
    pub fn apply_retention(&self) -> Result<usize, TsdbError> {
        let _round = self.inner.maintenance.lock();
        self.apply_retention_locked()
    }

    fn apply_retention_locked(&self) -> Result<usize, TsdbError> {
        let blocks = self.blocks();
        let sized: Vec<(BlockMeta, u64)> = blocks
            .iter()
            .map(|b| (b.meta().clone(), b.size_bytes()))
            .collect();
        let o = &self.inner.opts.retention;
        let policy = compact::retention::RetentionPolicy {
            raw_ms: ms(o.raw),
            res_5m_ms: ms(o.res_5m),
            res_1h_ms: ms(o.res_1h),
            max_bytes: (o.max_bytes > 0).then_some(o.max_bytes),
            downsample: Some(self.thresholds()),
        };
        let wal_bytes = dir_size(&self.inner.dir.join("wal"));
        let expired = compact::retention::expired(&sized, &policy, wal_bytes);
        if expired.is_empty() {
            return Ok(0);
        }
        tracing::info!(blocks = ?expired, "deleting blocks beyond retention");
        self.inner
            .retention_deletions
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        self.replace_blocks(&expired, None)?;
        Ok(expired.len())
    }

    fn thresholds(&self) -> compact::DownsampleThresholds {
        compact::DownsampleThresholds {
            res_5m_after_ms: ms(self.inner.opts.downsample_5m_after),
            res_1h_after_ms: ms(self.inner.opts.downsample_1h_after),
        }
    }

    /// The newest sample time the database holds: the head's, else the newest block's end.
    fn newest_time(&self) -> i64 {
        let (hmin, hmax) = self.inner.head.time_range();
        let blocks_max = self
            .blocks()
            .iter()
            .map(|b| b.meta().max_time - 1)
            .max()
            .unwrap_or(i64::MIN);
        if hmin <= hmax {
            hmax.max(blocks_max)
        } else {
            blocks_max
        }
    }

    /// Serves `added` (a block directory just written) and stops serving `removed`,
    /// in one swap, then deletes the removed directories. Queriers that already hold a
    /// removed block keep reading its mapped files until they finish.
    pub(super) fn replace_blocks(
        &self,
        removed: &[String],
        added: Option<&BlockMeta>,
    ) -> Result<(), TsdbError> {
        let opened = match added {
            Some(m) => Some(Arc::new(Block::open(&self.inner.dir.join(&m.ulid))?)),
            None => None,
        };
        {
            let mut blocks = self.inner.blocks.write();
            blocks.retain(|b| !removed.contains(&b.meta().ulid));
            if let Some(b) = opened {
                blocks.push(b);
            }
            blocks.sort_by_key(|b| (b.meta().min_time, b.meta().ulid.clone()));
        }
        for ulid in removed {
            let dir = self.inner.dir.join(ulid);
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(TsdbError::Dir {
                    path: dir,
                    source: e,
                });
            }
        }
        Ok(())
    }
}

/// Bytes in the files under `dir`, recursively; unreadable entries count 0.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Stops the maintenance thread when dropped (and waits for a round in progress).
pub struct MaintenanceHandle {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Db {
    /// Runs [`Db::maintain`] now and then every `every` on a thread of its own, at a
    /// lower scheduling priority than the server's threads. Errors are logged and the
    /// next round tries again (a failed compaction leaves only a `.tmp` directory,
    /// removed at the next open).
    pub fn start_maintenance(&self, every: Duration) -> std::io::Result<MaintenanceHandle> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let db = self.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-compact".into())
            .spawn(move || {
                lower_priority();
                loop {
                    match db.maintain() {
                        Ok(r) if r != RoundReport::default() => {
                            tracing::debug!(?r, "maintenance round")
                        }
                        Ok(_) => {}
                        Err(e) => {
                            db.inner.compactions_failed.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(error = %e, "maintenance round failed");
                        }
                    }
                    db.inner.maintenance_rounds.fetch_add(1, Ordering::Relaxed);
                    match rx.recv_timeout(every) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(MaintenanceHandle {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

/// Nice 10 for the calling thread: compaction and downsampling yield the CPU to
/// scrapes and queries when both want it.
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours;
    // on Linux PRIO_PROCESS with a thread id changes that thread only. A failure
    // (e.g. a sandbox forbidding it) leaves the priority as it was, which is harmless.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}
