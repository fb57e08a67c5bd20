//! Querying one block: postings intersection in the block's index, then each selected
//! series' chunk metas, keeping only chunks that overlap the query range; chunks outside
//! it are never located, let alone decoded. Samples are read straight from the mapped
//! segment files.

use super::Block;
use super::index::ChunkMeta;
use crate::model::{Label, Labels, Matcher};
use crate::storage::{Querier, Series, StorageError};
use crate::tsdb::head::{ChunkSeriesIterator, ChunkSet};
use std::sync::Arc;

/// One series' chunks in a block, located in the mapped segments.
pub struct BlockChunks {
    block: Arc<Block>,
    /// (maxt, segment, start, end) per chunk.
    chunks: Vec<(i64, u32, u32, u32)>,
}

impl ChunkSet for BlockChunks {
    #[inline]
    fn len(&self) -> usize {
        self.chunks.len()
    }
    #[inline]
    fn maxt(&self, i: usize) -> i64 {
        self.chunks[i].0
    }
    #[inline]
    fn bytes(&self, i: usize) -> &[u8] {
        match self.chunks.get(i) {
            Some(&(_, seg, start, end)) => self.block.chunks().slice(seg, start, end),
            None => &[],
        }
    }
}

pub type BlockSeriesIterator = ChunkSeriesIterator<BlockChunks>;

/// A read view of one block over `[mint, maxt]` (both inclusive).
pub struct BlockQuerier {
    block: Arc<Block>,
    mint: i64,
    maxt: i64,
}

impl BlockQuerier {
    pub fn new(block: Arc<Block>, mint: i64, maxt: i64) -> Self {
        BlockQuerier { block, mint, maxt }
    }

    fn covers_block(&self) -> bool {
        let m = self.block.meta();
        self.mint <= m.min_time && self.maxt >= m.max_time - 1
    }

    /// Calls `f` with the label ids and in-range chunk metas of each matching series
    /// that has a chunk in range.
    fn for_each(&self, matchers: &[Matcher], mut f: impl FnMut(u32, &[(u32, u32)], &[ChunkMeta])) {
        if self.mint > self.maxt || !self.block.overlaps(self.mint, self.maxt) {
            return;
        }
        let ix = self.block.index();
        let (mut labels, mut chunks) = (Vec::new(), Vec::new());
        for ord in &ix.select(matchers) {
            if !ix.series(ord, &mut labels, &mut chunks) {
                tracing::error!(block = %self.block.meta().ulid, series = ord, "unreadable series entry");
                continue;
            }
            chunks.retain(|c| c.mint <= self.maxt && c.maxt >= self.mint);
            if !chunks.is_empty() {
                f(ord, &labels, &chunks);
            }
        }
    }
}

impl Querier for BlockQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        let ix = self.block.index();
        let mut out = Vec::new();
        self.for_each(matchers, |_, labels, chunks| {
            let labels: Vec<Label> = labels
                .iter()
                .map(|&(n, v)| Label::new(ix.symbol(n), ix.symbol(v)))
                .collect();
            let located = chunks
                .iter()
                .filter_map(|c| {
                    let (seg, start, end) = self.block.chunks().locate(c.r)?;
                    Some((c.maxt, seg, start, end))
                })
                .collect();
            let set = BlockChunks {
                block: self.block.clone(),
                chunks: located,
            };
            out.push(Series {
                labels: Labels::from_sorted(labels),
                samples: Box::new(ChunkSeriesIterator::new(set, self.mint, self.maxt)),
            });
        });
        // Series are numbered in label order, so `out` is sorted already.
        Ok(out)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && self.covers_block() {
            return Ok(self.block.index().label_names());
        }
        let mut ids = std::collections::BTreeSet::new();
        self.for_each(matchers, |_, labels, _| {
            ids.extend(labels.iter().map(|l| l.0))
        });
        // Symbol ids are in string order.
        let ix = self.block.index();
        Ok(ids
            .into_iter()
            .map(|id| ix.symbol(id).to_string())
            .collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let ix = self.block.index();
        if matchers.is_empty() && self.covers_block() {
            return Ok(ix.label_values(name));
        }
        let Some(name_id) = ix.lookup(name) else {
            return Ok(Vec::new());
        };
        let mut ids = std::collections::BTreeSet::new();
        self.for_each(matchers, |_, labels, _| {
            ids.extend(labels.iter().filter(|l| l.0 == name_id).map(|l| l.1));
        });
        Ok(ids
            .into_iter()
            .map(|id| ix.symbol(id).to_string())
            .collect())
    }
}
