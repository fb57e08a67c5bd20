//! Querying one block: postings intersection in the block's index, then each selected
//! series' chunk metas, keeping only chunks that overlap the query range and are not
//! wholly deleted; chunks outside it are never located, let alone decoded. Samples are
//! read straight from the mapped segment files, deleted ones (tombstones) skipped. A
//! downsampled block answers [`Querier::select_aggregate`] from the matching sub-chunk
//! of its aggregate chunks, and a plain select with the Counter aggregate.

use super::chunks::ENC_AGGR;
use super::index::ChunkMeta;
use super::iter::{BlockSeriesIterator, LocatedChunk};
use super::tombstones::{self, Interval};
use super::{Block, aggr};
use crate::model::{Label, Labels, Matcher, Sample};
use crate::storage::{Aggregate, Querier, RawAsAggregate, SampleIterator, Series, StorageError};
use std::sync::Arc;

/// Skips the samples of an inner iterator that fall in deleted intervals.
struct SkipDeleted<I: SampleIterator> {
    inner: I,
    /// Sorted, non-overlapping.
    deleted: Vec<Interval>,
    /// First interval that may still contain a later sample.
    at: usize,
}

impl<I: SampleIterator> SkipDeleted<I> {
    /// Whether `t` is deleted; moves `at` forward (timestamps only grow).
    #[inline]
    fn is_deleted(&mut self, t: i64) -> bool {
        while self.deleted.get(self.at).is_some_and(|iv| iv.1 < t) {
            self.at += 1;
        }
        self.deleted.get(self.at).is_some_and(|iv| iv.0 <= t)
    }

    /// `s` if it is kept, else the first kept sample after it.
    #[inline]
    fn from(&mut self, mut s: Option<Sample>) -> Option<Sample> {
        loop {
            let x = s?;
            if !self.is_deleted(x.t) {
                return Some(x);
            }
            // Jump over the rest of the interval instead of walking it.
            let end = self.deleted[self.at].1;
            s = match end.checked_add(1) {
                Some(e) => self.inner.seek(e),
                None => None,
            };
        }
    }
}

impl<I: SampleIterator> SampleIterator for SkipDeleted<I> {
    fn next(&mut self) -> Option<Sample> {
        let s = self.inner.next();
        self.from(s)
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        let s = self.inner.seek(t);
        self.from(s)
    }
}

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

    /// Calls `f` with the label ids, in-range chunk metas and deleted intervals of each
    /// matching series that has a chunk in range not wholly deleted.
    fn for_each(
        &self,
        matchers: &[Matcher],
        mut f: impl FnMut(u32, &[(u32, u32)], &[ChunkMeta], Vec<Interval>),
    ) {
        if self.mint > self.maxt || !self.block.overlaps(self.mint, self.maxt) {
            return;
        }
        let ix = self.block.index();
        let (mut labels, mut chunks) = (Vec::new(), Vec::new());
        let mut probe = Vec::new();
        for ord in &ix.select(matchers) {
            if !ix.series(ord, &mut labels, &mut chunks) {
                tracing::error!(block = %self.block.meta().ulid, series = ord, "unreadable series entry");
                continue;
            }
            chunks.retain(|c| c.mint <= self.maxt && c.maxt >= self.mint);
            let deleted = self.block.deleted_intervals(ord);
            if !deleted.is_empty() {
                // Judged on the part of the chunk in range, as Prometheus does by adding
                // the range's outside to the deleted intervals: a series whose samples in
                // range are all deleted is not returned at all.
                chunks.retain(|c| {
                    !tombstones::covers(&deleted, c.mint.max(self.mint), c.maxt.min(self.maxt))
                });
            }
            if !chunks.is_empty() && self.has_samples_in_range(&chunks, &mut probe) {
                f(ord, &labels, &chunks, deleted);
            }
        }
    }

    /// Whether a series whose chunks in range are `chunks` has a sample in range. A
    /// chunk's mint and maxt are sample timestamps, so only a lone raw chunk that starts
    /// before the range and ends after it can hold none there (long block chunks make
    /// that common for short ranges); that one is decoded to know.
    fn has_samples_in_range(&self, chunks: &[ChunkMeta], probe: &mut Vec<Sample>) -> bool {
        let [c] = chunks else { return true };
        if c.mint >= self.mint || c.maxt <= self.maxt || self.block.meta().resolution != 0 {
            return true;
        }
        probe.clear();
        self.block.chunks().decode_ref(c.r, probe);
        let first = probe.partition_point(|s| s.t < self.mint);
        probe.get(first).is_some_and(|s| s.t <= self.maxt)
    }

    /// The series matching `matchers`, each iterator reading `aggregate`: from the
    /// aggregate chunks' sub-chunk in a downsampled block, mapped from raw samples in a
    /// raw one.
    fn select_as(&self, matchers: &[Matcher], aggregate: Aggregate) -> Vec<Series> {
        let ix = self.block.index();
        let raw = self.block.meta().resolution == 0;
        let slot = aggr::slot(aggregate);
        let mut out = Vec::new();
        self.for_each(matchers, |_, labels, chunks, deleted| {
            let labels: Vec<Label> = labels
                .iter()
                .map(|&(n, v)| Label::new(ix.symbol(n), ix.symbol(v)))
                .collect();
            let located = chunks
                .iter()
                .filter_map(|c| {
                    let (enc, seg, start, end) = self.block.chunks().locate_enc(c.r)?;
                    let whole = LocatedChunk {
                        maxt: c.maxt,
                        seg,
                        start,
                        end,
                        sub_chunk: false,
                    };
                    if enc != ENC_AGGR {
                        return Some(whole);
                    }
                    let data = self.block.chunks().slice(seg, start, end);
                    let (a, b) = aggr::sub_range(data, slot)?;
                    Some(LocatedChunk {
                        start: start + a as u32,
                        end: start + b as u32,
                        sub_chunk: true,
                        ..whole
                    })
                })
                .collect();
            let it = BlockSeriesIterator::new(self.block.clone(), located, self.mint, self.maxt);
            let mut samples: Box<dyn SampleIterator> = if deleted.is_empty() {
                Box::new(it)
            } else {
                Box::new(SkipDeleted {
                    inner: it,
                    deleted,
                    at: 0,
                })
            };
            if raw {
                samples = RawAsAggregate::wrap(samples, aggregate);
            }
            out.push(Series {
                labels: Labels::from_sorted(labels),
                samples,
            });
        });
        // Series are numbered in label order, so `out` is sorted already.
        out
    }
}

impl Querier for BlockQuerier {
    /// Raw samples from a raw block; from a downsampled block, the Counter aggregate (a
    /// subsequence of the raw samples that keeps every window's last value).
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self.select_as(matchers, Aggregate::Counter))
    }

    fn select_aggregate(
        &self,
        matchers: &[Matcher],
        aggregate: Aggregate,
    ) -> Result<Vec<Series>, StorageError> {
        Ok(self.select_as(matchers, aggregate))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if matchers.is_empty() && self.covers_block() {
            return Ok(self.block.index().label_names());
        }
        let mut ids = std::collections::BTreeSet::new();
        self.for_each(matchers, |_, labels, _, _| {
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
        self.for_each(matchers, |_, labels, _, _| {
            ids.extend(labels.iter().filter(|l| l.0 == name_id).map(|l| l.1));
        });
        Ok(ids
            .into_iter()
            .map(|id| ix.symbol(id).to_string())
            .collect())
    }
}
