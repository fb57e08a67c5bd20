//! What happens to blocks after they are cut from the head: which blocks to merge
//! ([`plan`], Prometheus's leveled compaction), merging them into one ([`compact`]),
//! which blocks a crash left behind after their merge ([`superseded`]), which blocks
//! retention removes ([`retention::expired`]) and which need a downsampled copy
//! ([`downsample_due`]) and making it ([`downsample`]). Every function here is either
//! pure (metas in, ULIDs out) or writes one new block beside the others through
//! `block::BlockWriter`; none deletes, loads or swaps blocks: that is the `Db`'s job,
//! which calls them from its background loop.
//!
//! ```no_run
//! use cairn::tsdb::compact;
//! # fn run(db: &cairn::tsdb::Db) -> Result<(), compact::CompactError> {
//! let ranges = compact::exponential_ranges(2 * 3_600_000, 15 * 86_400_000);
//! let metas: Vec<_> = db.blocks().iter().map(|b| b.meta_snapshot()).collect();
//! if let Some(ulids) = compact::plan(&metas, &ranges) {
//!     let parts: Vec<_> = db.blocks().into_iter().filter(|b| ulids.contains(&b.meta().ulid)).collect();
//!     let merged = compact::compact(db.dir(), &parts)?;
//!     // The Db now loads `merged.ulid` and deletes `ulids` (compact::superseded names
//!     // them again at open if a crash comes first).
//! #   let _ = merged;
//! }
//! # Ok(()) }
//! ```

pub mod downsample;
mod merge;
mod planner;
pub mod retention;

pub use downsample::{DownsampleThresholds, RES_1H, RES_5M, downsample, downsample_due};
pub use merge::{compact, superseded};
pub use planner::{exponential_ranges, plan};

use crate::tsdb::block::BlockError;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error("compaction needs at least one block")]
    NoBlocks,
    #[error(
        "blocks of different resolutions ({0} ms and {1} ms) cannot be merged; compact each \
         resolution on its own"
    )]
    MixedResolutions(i64, i64),
    #[error(
        "block {ulid} has resolution {from} ms and cannot be downsampled to {to} ms (the \
         target must be a coarser multiple of it)"
    )]
    Resolution { ulid: String, from: i64, to: i64 },
    #[error("series {0} in block {1} is unreadable")]
    Series(u32, String),
    #[error("block {0}: chunk {1:#x} is unreadable or of the wrong encoding")]
    Chunk(String, u64),
}

/// Helpers shared by the compaction tests: blocks written from literal samples.
#[cfg(test)]
pub(crate) mod testing {
    use crate::model::{Labels, Matcher};
    use crate::storage::{Aggregate, Querier};
    use crate::tsdb::block::{Block, BlockQuerier, BlockSeries, write_block};
    use crate::tsdb::chunkenc::{SAMPLES_PER_CHUNK, XorAppender};
    use crate::tsdb::head::ClosedChunk;
    use std::path::Path;
    use std::sync::Arc;

    pub type Dump = Vec<(String, Vec<(i64, u64)>)>;

    /// Writes `series` (samples in time order) as a level-1 block of `[mint, maxt)`,
    /// in chunks of 120 samples, and opens it.
    pub fn block(
        dir: &Path,
        series: &[(Labels, Vec<(i64, f64)>)],
        mint: i64,
        maxt: i64,
    ) -> Arc<Block> {
        let series = series
            .iter()
            .map(|(labels, samples)| BlockSeries {
                labels: labels.clone(),
                chunks: samples
                    .chunks(usize::from(SAMPLES_PER_CHUNK))
                    .map(|part| {
                        let mut a = XorAppender::new();
                        for &(t, v) in part {
                            a.append(t, v);
                        }
                        ClosedChunk {
                            mint: part[0].0,
                            maxt: part[part.len() - 1].0,
                            data: a.bytes().into(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let meta = write_block(dir, series, mint, maxt, 1, Vec::new()).unwrap();
        Arc::new(Block::open(&dir.join(&meta.ulid)).unwrap())
    }

    /// Every series of `q` matching `ms`, with value bits (so NaNs compare).
    pub fn dump_q(q: &dyn Querier, ms: &[Matcher], a: Option<Aggregate>) -> Dump {
        let series = match a {
            None => q.select(ms).unwrap(),
            Some(a) => q.select_aggregate(ms, a).unwrap(),
        };
        series
            .into_iter()
            .map(|mut s| {
                let v = std::iter::from_fn(|| s.samples.next())
                    .map(|x| (x.t, x.v.to_bits()))
                    .collect();
                (s.labels.to_string(), v)
            })
            .collect()
    }

    /// Every series of one block over all time.
    pub fn dump(b: &Arc<Block>, ms: &[Matcher]) -> Dump {
        dump_q(&BlockQuerier::new(b.clone(), i64::MIN, i64::MAX), ms, None)
    }
}
