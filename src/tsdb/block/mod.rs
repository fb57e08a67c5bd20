//! Blocks: immutable directories named by a ULID holding every sample of a time range
//! `[minTime, maxTime)`: `meta.json`, `index` and `chunks/000001...`. A block is written
//! under `<ulid>.tmp`, fsynced (files, then directories) and renamed into place, so a
//! crash leaves either a whole block or a `.tmp` directory that the next open removes.
//! Readers map the files (no copy) after verifying every checksum; a block that fails is
//! quarantined by the caller. `docs/format/block.md` and `index.md` describe the bytes.

pub mod chunks;
pub mod index;
mod querier;
pub mod ulid;
mod writer;

pub use index::ChunkMeta;
pub use querier::{BlockQuerier, BlockSeriesIterator};
pub use writer::{BlockSeries, write_block};

use chunks::ChunkReader;
use index::IndexReader;
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
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCompaction {
    /// 1 for a block cut from the head, one more for each compaction.
    pub level: u32,
    /// The ULIDs of the level-1 blocks this block's data came from.
    pub sources: Vec<String>,
}

/// `meta.json`: Prometheus's field names, plus cairn's `resolution` (0 = raw samples;
/// downsampled blocks will carry their step in milliseconds).
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
}

/// An open, verified block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
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
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
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

    /// Whether any of `[mint, maxt]` (inclusive) lies in the block's range.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && self.meta.max_time > mint
    }
}

/// Fsyncs a directory, making renames and creations inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
