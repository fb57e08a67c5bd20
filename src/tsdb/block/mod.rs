//! Blocks: directories named by a ULID holding every sample of a time range
//! `[minTime, maxTime)`: `meta.json`, `index`, `chunks/000001...` and, once series were
//! deleted from it, `tombstones`. Samples are immutable; only the tombstones (and the
//! count of them in `meta.json`) change, each file replaced atomically. A block is written
//! under `<ulid>.tmp`, fsynced (files, then directories) and renamed into place, so a
//! crash leaves either a whole block or a `.tmp` directory that the next open removes.
//! Readers map the files (no copy) after verifying every checksum; a block that fails is
//! quarantined by the caller. `docs/format/block.md`, `index.md`, `tombstones.md` and
//! `downsampled.md` describe the bytes.

pub mod aggr;
pub mod chunks;
pub mod index;
mod iter;
mod querier;
pub mod tombstones;
pub mod ulid;
mod writer;

pub use index::ChunkMeta;
pub use iter::{BlockSeriesIterator, LocatedChunk};
pub use querier::BlockQuerier;
pub use tombstones::{Interval, Tombstones};
pub use writer::{BlockSeries, BlockWriter, MAX_CHUNK_SAMPLES, write_block};

use crate::model::Matcher;
use chunks::ChunkReader;
use index::IndexReader;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `meta.json` version cairn writes (Prometheus's block meta is version 1 too).
pub const META_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("block is corrupt: {0}")]
    Corrupt(String),
    #[error("block meta.json: {0}")]
    Meta(#[from] serde_json::Error),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Samples in the block; for a downsampled block, the windows holding data (the
    /// samples of the Count aggregate).
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// Deleted intervals recorded in `tombstones` (Prometheus's name and meaning).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A block named in another block's meta: its ULID and time range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
}

impl BlockDesc {
    pub fn of(m: &BlockMeta) -> Self {
        BlockDesc {
            ulid: m.ulid.clone(),
            min_time: m.min_time,
            max_time: m.max_time,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCompaction {
    /// 1 for a block cut from the head, one more for each compaction.
    pub level: u32,
    /// The ULIDs of the level-1 blocks this block's data came from.
    pub sources: Vec<String>,
    /// The blocks merged into this one by compaction: once this block exists they are
    /// superseded and may be deleted (see `compact::superseded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
}

/// `meta.json`: Prometheus's field names, plus cairn's `resolution` (0 = raw samples,
/// else the downsampling window in milliseconds) and, for downsampled copies,
/// `downsampledFrom`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    /// First timestamp covered (inclusive).
    pub min_time: i64,
    /// End of the range covered (exclusive, as in Prometheus).
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: BlockCompaction,
    pub version: u32,
    #[serde(default)]
    pub resolution: i64,
    /// The finer blocks this downsampled copy was made from (empty for raw blocks).
    /// Which data a copy covers is told by `compaction.sources`; this names the inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downsampled_from: Vec<BlockDesc>,
}

impl BlockMeta {
    pub fn read(dir: &Path) -> Result<Self, BlockError> {
        let bytes = std::fs::read(dir.join("meta.json"))?;
        let m: BlockMeta = serde_json::from_slice(&bytes)?;
        if m.version != META_VERSION {
            return Err(BlockError::Corrupt(format!(
                "meta.json version {}",
                m.version
            )));
        }
        Ok(m)
    }

    /// Replaces `dir/meta.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), BlockError> {
        let bytes = serde_json::to_vec_pretty(self)?;
        replace_file(dir, "meta.json", &bytes)
    }
}

/// An open, verified block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    /// Deleted intervals; replaced whole (file first) by [`Block::delete`].
    tombstones: RwLock<Tombstones>,
}

impl Block {
    /// Opens the block in `dir`, verifying the index sections' and every chunk's CRC.
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let meta = BlockMeta::read(dir)?;
        let index = IndexReader::open(&dir.join("index"))?;
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        if u64::from(index.num_series()) != meta.stats.num_series {
            return Err(BlockError::Corrupt(format!(
                "index holds {} series, meta.json says {}",
                index.num_series(),
                meta.stats.num_series
            )));
        }
        let tombstones = Tombstones::read(dir)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones: RwLock::new(tombstones),
        })
    }

    /// The meta as read at open. Everything in it is fixed for the block's life except
    /// `stats.num_tombstones`; [`Block::meta_snapshot`] has the current count.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The meta with the current tombstone count: what `compact::plan` should be given.
    pub fn meta_snapshot(&self) -> BlockMeta {
        let mut m = self.meta.clone();
        m.stats.num_tombstones = self.tombstone_count();
        m
    }

    /// Deleted intervals recorded for this block (Prometheus's `numTombstones`).
    pub fn tombstone_count(&self) -> u64 {
        self.tombstones.read().count()
    }

    /// A copy of the block's tombstones: each series ordinal with deletions and its
    /// intervals.
    pub fn tombstones(&self) -> Tombstones {
        self.tombstones.read().clone()
    }

    /// The deleted intervals of series `ord`, copied (empty, without allocating, when
    /// there are none).
    pub fn deleted_intervals(&self, ord: u32) -> Vec<Interval> {
        let t = self.tombstones.read();
        let ivs = t.get(ord);
        if ivs.is_empty() {
            Vec::new()
        } else {
            ivs.to_vec()
        }
    }

    /// Marks the samples in `[mint, maxt]` (inclusive) of every series matching
    /// `matchers` as deleted, as Prometheus's `Block.Delete` does: each series with a
    /// chunk in the range gets the interval clamped to its own time span. The
    /// `tombstones` file, then `meta.json`'s count, are replaced before readers see the
    /// deletion; samples stay on disk until compaction rewrites the block. Returns the
    /// number of series that got an interval.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64, BlockError> {
        if mint > maxt || !self.overlaps(mint, maxt) {
            return Ok(0);
        }
        // Held for the whole update, so concurrent deletes apply one after the other.
        let mut current = self.tombstones.write();
        let mut next = current.clone();
        let (mut labels, mut chunks) = (Vec::new(), Vec::new());
        let mut touched = 0u64;
        for ord in &self.index.select(matchers) {
            if !self.index.series(ord, &mut labels, &mut chunks) {
                return Err(BlockError::Corrupt(format!("series {ord} unreadable")));
            }
            let (Some(first), Some(last)) = (chunks.first(), chunks.last()) else {
                continue;
            };
            if chunks.iter().any(|c| c.mint <= maxt && c.maxt >= mint) {
                next.add(ord, mint.max(first.mint), maxt.min(last.maxt));
                touched += 1;
            }
        }
        if touched == 0 {
            return Ok(0);
        }
        next.write(&self.dir)?;
        let mut meta = self.meta.clone();
        meta.stats.num_tombstones = next.count();
        meta.write(&self.dir)?;
        *current = next;
        Ok(touched)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn index(&self) -> &IndexReader {
        &self.index
    }

    pub fn chunks(&self) -> &ChunkReader {
        &self.chunks
    }

    /// Bytes on disk: index plus chunk segments (meta.json left out).
    pub fn size(&self) -> u64 {
        self.index.size() + self.chunks.size()
    }

    /// Bytes on disk of everything in the block's directory: index, chunk segments,
    /// `meta.json` and `tombstones` (what size retention counts, as Prometheus does).
    pub fn size_bytes(&self) -> u64 {
        let len = |name: &str| std::fs::metadata(self.dir.join(name)).map_or(0, |m| m.len());
        self.size() + len("meta.json") + len(tombstones::FILE)
    }

    /// Whether any of `[mint, maxt]` (inclusive) lies in the block's range.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && self.meta.max_time > mint
    }
}

/// Fsyncs a directory, making renames and creations inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Replaces `dir/name` atomically: writes `dir/name.tmp`, fsyncs it, renames it over
/// `name` and fsyncs `dir`, so a crash leaves the old file or the new one.
pub(crate) fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BlockError> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MatchType, stale_nan};
    use crate::storage::{Aggregate, Querier};
    use crate::tsdb::compact::testing::{block, dump, dump_q};
    use crate::tsdb::testing::lbls;
    use std::sync::Arc;

    fn fixture(dir: &Path) -> Arc<Block> {
        let series: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                let s: Vec<(i64, f64)> = (0..400).map(|i| (i * 10, i as f64)).collect();
                (lbls(&[("__name__", "m"), ("x", n)]), s)
            })
            .collect();
        block(dir, &series, 0, 4000)
    }

    fn times(d: &[(String, Vec<(i64, u64)>)]) -> Vec<(String, usize, i64, i64)> {
        d.iter()
            .map(|(l, s)| (l.clone(), s.len(), s[0].0, s[s.len() - 1].0))
            .collect()
    }

    #[test]
    fn deleted_samples_are_skipped_and_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let b = fixture(tmp.path());
        let dir = b.dir().to_path_buf();
        let m = |v: &str| Matcher::new(MatchType::Regex, "x", v).unwrap();
        assert_eq!(b.delete(&[m("a|b")], 100, 1990).unwrap(), 2);
        // Clamped to the series' span, merged with the first.
        assert_eq!(b.delete(&[m("a")], 1500, i64::MAX).unwrap(), 1);
        // Nothing in range, nothing matching: no change.
        assert_eq!(b.delete(&[m("a")], 5000, 6000).unwrap(), 0);
        assert_eq!(b.delete(&[m("zzz")], 0, 10).unwrap(), 0);
        assert_eq!(b.tombstone_count(), 2);
        assert_eq!(b.tombstones().get(0), [(100, 3990)]);
        assert_eq!(b.meta().stats.num_tombstones, 0);
        assert_eq!(b.meta_snapshot().stats.num_tombstones, 2);
        let all = [Matcher::equal("__name__", "m")];
        let want = vec![
            (r#"m{x="a"}"#.to_string(), 10, 0, 90),
            (r#"m{x="b"}"#.to_string(), 210, 0, 3990),
            (r#"m{x="c"}"#.to_string(), 400, 0, 3990),
        ];
        assert_eq!(times(&dump(&b, &all)), want);
        // Seeks land past deleted samples; a range inside the deletion finds nothing.
        let q = BlockQuerier::new(b.clone(), 0, 4000);
        let mut s = q.select(&[Matcher::equal("x", "b")]).unwrap();
        assert_eq!(s[0].samples.seek(50).map(|x| x.t), Some(50));
        assert_eq!(s[0].samples.seek(500).map(|x| x.t), Some(2000));
        assert_eq!(s[0].samples.seek(10).map(|x| x.t), Some(2000));
        assert_eq!(s[0].samples.next().map(|x| x.t), Some(2010));
        let inside = BlockQuerier::new(b.clone(), 200, 1000);
        assert_eq!(inside.select(&[Matcher::equal("x", "b")]).unwrap().len(), 0);
        // Raw blocks answer aggregates by mapping samples.
        let counts = dump_q(&q, &[Matcher::equal("x", "a")], Some(Aggregate::Count));
        assert_eq!(counts[0].1.len(), 10);
        assert!(counts[0].1.iter().all(|s| s.1 == 1f64.to_bits()));

        drop((q, inside, s, b));
        let again = Arc::new(Block::open(&dir).unwrap());
        assert_eq!(again.meta().stats.num_tombstones, 2);
        assert_eq!(times(&dump(&again, &all)), want);
        assert!(again.size_bytes() > again.size());
        // A damaged tombstones file fails the open like any damaged block file.
        let mut bytes = std::fs::read(dir.join("tombstones")).unwrap();
        bytes[9] ^= 1;
        std::fs::write(dir.join("tombstones"), &bytes).unwrap();
        assert!(matches!(Block::open(&dir), Err(BlockError::Corrupt(_))));
    }

    #[test]
    fn meta_json_round_trips_with_and_without_optional_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let b = fixture(tmp.path());
        let text = std::fs::read_to_string(b.dir().join("meta.json")).unwrap();
        for absent in ["parents", "numTombstones", "downsampledFrom"] {
            assert!(!text.contains(absent), "{text}");
        }
        let mut m = b.meta().clone();
        m.stats.num_tombstones = 3;
        m.compaction.parents = vec![BlockDesc::of(b.meta())];
        m.downsampled_from = vec![BlockDesc::of(b.meta())];
        m.write(b.dir()).unwrap();
        let text = std::fs::read_to_string(b.dir().join("meta.json")).unwrap();
        assert!(
            text.contains(r#""numTombstones": 3"#) && text.contains(r#""parents""#),
            "{text}"
        );
        assert_eq!(BlockMeta::read(b.dir()).unwrap(), m);
        let _ = stale_nan();
    }
}
