//! Writing a block: chunks first, then the index, then `meta.json`, all under
//! `<ulid>.tmp`; every file and directory is fsynced before the rename that publishes
//! the block, so a crash at any point leaves either a whole block or a `.tmp` directory.
//! [`BlockWriter`] is the one path every block takes (cut from the head, compacted,
//! downsampled); a writer dropped before [`BlockWriter::finish`] removes its `.tmp`.

use super::chunks::{ChunkWriter, ENC_AGGR, ENC_XOR, SEGMENT_MAX};
use super::index::{self, ChunkMeta};
use super::{BlockCompaction, BlockError, BlockMeta, BlockStats, META_VERSION, sync_dir, ulid};
use crate::model::Labels;
use crate::tsdb::head::ClosedChunk;
use std::path::{Path, PathBuf};

/// One series to write: its labels and its chunks, in time order, not overlapping.
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<ClosedChunk>,
}

/// Writes `series` (any order; series without chunks are left out) as a new block in
/// `parent` covering `[mint, maxt)`, and returns its meta. `sources` empty means a
/// level-1 block, its own ULID its only source.
pub fn write_block(
    parent: &Path,
    mut series: Vec<BlockSeries>,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
) -> Result<BlockMeta, BlockError> {
    series.retain(|s| !s.chunks.is_empty());
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut w = BlockWriter::new(parent)?;
    for s in series {
        let mut metas = Vec::with_capacity(s.chunks.len());
        for c in &s.chunks {
            metas.push(w.add_chunk(ENC_XOR, c.mint, c.maxt, &c.data)?);
        }
        w.add_series(s.labels, metas)?;
    }
    let id = w.ulid().to_string();
    w.finish(BlockMeta {
        ulid: id.clone(),
        min_time: mint,
        max_time: maxt,
        stats: BlockStats::default(),
        compaction: BlockCompaction {
            level,
            sources: if sources.is_empty() {
                vec![id]
            } else {
                sources
            },
            parents: Vec::new(),
        },
        version: META_VERSION,
        resolution: 0,
        downsampled_from: Vec::new(),
    })
}

/// A block being written under `<parent>/<ulid>.tmp`.
pub struct BlockWriter {
    parent: PathBuf,
    id: String,
    tmp: PathBuf,
    chunks: ChunkWriter,
    rows: Vec<(Labels, Vec<ChunkMeta>)>,
    stats: BlockStats,
    finished: bool,
}

impl BlockWriter {
    /// Starts a block with a fresh ULID.
    pub fn new(parent: &Path) -> Result<Self, BlockError> {
        let id = ulid::new();
        let tmp = parent.join(format!("{id}.tmp"));
        std::fs::create_dir_all(tmp.join("chunks"))?;
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            chunks: ChunkWriter::new(&tmp.join("chunks"), SEGMENT_MAX),
            id,
            tmp,
            rows: Vec::new(),
            stats: BlockStats::default(),
            finished: false,
        })
    }

    /// The new block's ULID (its directory name once finished).
    pub fn ulid(&self) -> &str {
        &self.id
    }

    /// Writes one chunk (`enc` is [`ENC_XOR`] or [`ENC_AGGR`]) holding samples from
    /// `mint` to `maxt` (inclusive) and returns its meta for [`Self::add_series`].
    pub fn add_chunk(
        &mut self,
        enc: u8,
        mint: i64,
        maxt: i64,
        data: &[u8],
    ) -> Result<ChunkMeta, BlockError> {
        let r = self.chunks.write_enc(enc, data)?;
        self.stats.num_samples += u64::from(match (enc, data) {
            (ENC_AGGR, _) => super::aggr::num_windows(data),
            (_, [a, b, ..]) => u16::from_be_bytes([*a, *b]),
            _ => 0,
        });
        self.stats.num_chunks += 1;
        Ok(ChunkMeta { mint, maxt, r })
    }

    /// Records a series and its chunks (written by [`Self::add_chunk`], in time order).
    /// Series must come in strictly increasing label order; one without chunks is left
    /// out.
    pub fn add_series(&mut self, labels: Labels, chunks: Vec<ChunkMeta>) -> Result<(), BlockError> {
        if chunks.is_empty() {
            return Ok(());
        }
        if self.rows.last().is_some_and(|(last, _)| *last >= labels) {
            return Err(BlockError::Corrupt(format!(
                "series {labels} added out of label order"
            )));
        }
        self.rows.push((labels, chunks));
        Ok(())
    }

    /// Samples written so far (windows, for aggregate chunks).
    pub fn num_samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// Writes the index and `meta` (its `ulid` and `stats` are filled in here), fsyncs
    /// and publishes the block by renaming it into place. Returns the meta written.
    pub fn finish(mut self, mut meta: BlockMeta) -> Result<BlockMeta, BlockError> {
        let chunks = std::mem::replace(
            &mut self.chunks,
            ChunkWriter::new(&self.tmp.join("chunks"), SEGMENT_MAX),
        );
        chunks.finish()?;
        self.stats.num_series = self.rows.len() as u64;
        index::write(&self.tmp.join("index"), &self.rows)?;
        meta.ulid = self.id.clone();
        meta.stats = self.stats.clone();
        meta.version = META_VERSION;
        let f = std::fs::File::create(self.tmp.join("meta.json"))?;
        serde_json::to_writer_pretty(&f, &meta)?;
        f.sync_all()?;
        sync_dir(&self.tmp.join("chunks"))?;
        sync_dir(&self.tmp)?;
        if meta.resolution == 0 {
            crate::tsdb::fault::pause_at(if meta.compaction.parents.is_empty() {
                crate::tsdb::fault::BLOCK_WRITE
            } else {
                crate::tsdb::fault::COMPACTION
            });
        }
        let dst = self.parent.join(&self.id);
        std::fs::rename(&self.tmp, &dst)?;
        self.finished = true;
        sync_dir(&self.parent)?;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.finished {
            // An abandoned write: the `.tmp` would be removed at the next open anyway.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
