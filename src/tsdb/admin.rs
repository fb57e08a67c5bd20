//! The database's side of the admin API: snapshots (every block hard-linked into
//! `snapshots/<name>/`, the head written as one more block unless skipped), and the
//! deletion of series (tombstones in the head and the blocks) and their cleaning.

use super::block::{self, BlockSeries};
use super::{Db, TsdbError};
use crate::model::Matcher;
use std::fs;
use std::path::{Path, PathBuf};

impl Db {
    /// Writes a consistent copy of the data into `dir` (created; must not exist): the
    /// blocks as hard links — they are immutable, so a link costs no space — and,
    /// unless `skip_head`, the head's samples as one more block. A directory that
    /// Prometheus-style tools and `--storage.tsdb.path` can open.
    pub fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<(), TsdbError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TsdbError::Dir { path, source }
        };
        fs::create_dir_all(dir).map_err(err(dir))?;
        for b in self.blocks() {
            let dst = dir.join(&b.meta().ulid);
            link_tree(b.dir(), &dst).map_err(err(&dst))?;
        }
        if !skip_head {
            let (mint, maxt) = self.inner.head.time_range();
            if mint <= maxt {
                let series = self
                    .inner
                    .head
                    .chunks_in_range(mint, maxt.saturating_add(1))
                    .into_iter()
                    .map(|(labels, chunks)| BlockSeries { labels, chunks })
                    .collect();
                block::write_block(dir, series, mint, maxt.saturating_add(1), 1, Vec::new())?;
            }
        }
        Ok(())
    }

    /// Marks the samples in `[mint, maxt]` of every series matching `matchers` as
    /// deleted, in the head (a WAL record) and in every block overlapping the range (its
    /// tombstones file). Queries stop returning them at once; the bytes go when the head
    /// is truncated, a compaction rewrites the block, or [`Db::clean_tombstones`] runs.
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<u64, TsdbError> {
        let _round = self.inner.maintenance.lock();
        let mut touched = self.inner.head.delete(matchers, mint, maxt)?;
        for b in self.blocks() {
            if b.overlaps(mint, maxt) {
                touched += b.delete(matchers, mint, maxt)?;
            }
        }
        Ok(touched)
    }

    /// Rewrites every block that has tombstones without the deleted samples (each
    /// block alone through compaction, keeping its time range), as Prometheus's
    /// clean_tombstones. Returns how many blocks were rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, TsdbError> {
        let _round = self.inner.maintenance.lock();
        let mut n = 0;
        for b in self.blocks() {
            if b.tombstone_count() == 0 {
                continue;
            }
            let meta = super::compact::compact(&self.inner.dir, std::slice::from_ref(&b))?;
            tracing::info!(block = %b.meta().ulid, rewritten_as = %meta.ulid,
                "rewrote a block without its deleted samples");
            self.replace_blocks(std::slice::from_ref(&b.meta().ulid), Some(&meta))?;
            n += 1;
        }
        Ok(n)
    }

    /// Where [`Db::snapshot`] puts a snapshot named `name`.
    pub fn snapshot_dir(&self, name: &str) -> PathBuf {
        self.inner.dir.join("snapshots").join(name)
    }
}

/// Recreates `src`'s tree at `dst`, hard-linking every file.
fn link_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let to = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &to)?;
        } else {
            fs::hard_link(entry.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::model::Matcher;
    use crate::storage::Storage;

    #[test]
    fn snapshot_opens_as_a_database_with_the_same_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let mut app = db.appender();
        let l = lbls(&[("__name__", "x"), ("job", "j")]);
        let r = app.append(&l, 0, 0.0).unwrap();
        for i in 1..2000 {
            app.append_ref(r, i * 15_000, i as f64).unwrap();
        }
        app.commit().unwrap();
        db.write_block(0, 7_200_000).unwrap();
        let want = dump(&db, i64::MIN, i64::MAX, &[Matcher::equal("job", "j")]);
        assert_eq!(want[0].1.len(), 2000);

        let snap = db.snapshot_dir("s1");
        db.snapshot(&snap, false).unwrap();
        let copy = open(&snap);
        assert_eq!(copy.stats().blocks_loaded, 2);
        assert_eq!(
            dump(&copy, i64::MIN, i64::MAX, &[Matcher::equal("job", "j")]),
            want
        );
        // Blocks are linked, not copied.
        let b = db.blocks()[0].dir().join("index");
        let linked = snap.join(db.blocks()[0].meta().ulid.clone()).join("index");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&b).unwrap().ino(),
            std::fs::metadata(&linked).unwrap().ino()
        );

        let snap2 = db.snapshot_dir("s2");
        db.snapshot(&snap2, true).unwrap();
        let copy2 = open(&snap2);
        assert_eq!(copy2.stats().blocks_loaded, 1);
        let got = dump(&copy2, i64::MIN, i64::MAX, &[Matcher::equal("job", "j")]);
        assert_eq!(got[0].1.len(), 480);
    }
}
