//! Writing a block: chunks first, then the index, then `meta.json`, all under
//! `<ulid>.tmp`; every file and directory is fsynced before the rename that publishes
//! the block, so a crash at any point leaves either a whole block or a `.tmp` directory.

use super::chunks::{ChunkWriter, SEGMENT_MAX};
use super::index::{self, ChunkMeta};
use super::{BlockCompaction, BlockError, BlockMeta, BlockStats, META_VERSION, sync_dir, ulid};
use crate::model::Labels;
use crate::tsdb::head::ClosedChunk;
use std::path::Path;

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
    let id = ulid::new();
    let tmp = parent.join(format!("{id}.tmp"));
    let dst = parent.join(&id);
    std::fs::create_dir_all(tmp.join("chunks"))?;

    let mut stats = BlockStats::default();
    let mut cw = ChunkWriter::new(&tmp.join("chunks"), SEGMENT_MAX);
    let mut rows = Vec::with_capacity(series.len());
    for s in series {
        let mut metas = Vec::with_capacity(s.chunks.len());
        for c in &s.chunks {
            let r = cw.write(&c.data)?;
            metas.push(ChunkMeta {
                mint: c.mint,
                maxt: c.maxt,
                r,
            });
            stats.num_samples += match &c.data[..] {
                [a, b, ..] => u64::from(u16::from_be_bytes([*a, *b])),
                _ => 0,
            };
        }
        stats.num_chunks += metas.len() as u64;
        rows.push((s.labels, metas));
    }
    cw.finish()?;
    stats.num_series = rows.len() as u64;
    index::write(&tmp.join("index"), &rows)?;

    let meta = BlockMeta {
        ulid: id.clone(),
        min_time: mint,
        max_time: maxt,
        stats,
        compaction: BlockCompaction {
            level,
            sources: if sources.is_empty() {
                vec![id]
            } else {
                sources
            },
        },
        version: META_VERSION,
        resolution: 0,
    };
    let f = std::fs::File::create(tmp.join("meta.json"))?;
    serde_json::to_writer_pretty(&f, &meta)?;
    f.sync_all()?;
    sync_dir(&tmp.join("chunks"))?;
    sync_dir(&tmp)?;
    std::fs::rename(&tmp, &dst)?;
    sync_dir(parent)?;
    Ok(meta)
}
