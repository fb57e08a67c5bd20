//! The database's querier: one querier per source (each block overlapping the range, and
//! the head), their answers merged. Series come out sorted by labels; a series found in
//! several sources gets one iterator that merges their samples in time order, a
//! timestamp present in more than one source yielded once (the first source's value,
//! sources being in block order with the head last). Large selections ask the sources
//! on several threads.

use crate::model::{Matcher, Sample};
use crate::storage::{Aggregate, Querier, SampleIterator, Series, StorageError};

pub struct MergeQuerier {
    parts: Vec<Box<dyn Querier>>,
}

impl MergeQuerier {
    pub fn new(parts: Vec<Box<dyn Querier>>) -> Self {
        MergeQuerier { parts }
    }
}

/// Merges sorted, deduplicated string lists into one.
fn union(lists: Vec<Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// A first source's selection at least this large has the other sources selected on
/// several threads: each source's select (postings, labels, chunk lists) is independent
/// work, and a selection this size costs far more than starting a thread.
const PARALLEL_SELECT_SERIES: usize = 256;

impl MergeQuerier {
    /// `select` on every part, merged. The first part is asked on the caller's thread;
    /// when it found many series, the others are asked on up to one thread per core.
    fn select_parts(
        &self,
        select: impl Fn(&dyn Querier) -> Result<Vec<Series>, StorageError> + Sync,
    ) -> Result<Vec<Series>, StorageError> {
        let Some((first, rest)) = self.parts.split_first() else {
            return Ok(Vec::new());
        };
        let mut all = select(first.as_ref())?;
        if rest.is_empty() {
            return Ok(all);
        }
        let threads = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .min(rest.len());
        if all.len() < PARALLEL_SELECT_SERIES || threads <= 1 {
            for p in rest {
                all.extend(select(p.as_ref())?);
            }
        } else {
            // Contiguous runs of parts per thread, joined back in part order: the merge
            // below keeps the first source's sample where two have one timestamp.
            let per = rest.len().div_ceil(threads);
            let select = &select;
            let found = std::thread::scope(|s| {
                let handles: Vec<_> = rest
                    .chunks(per)
                    .map(|run| {
                        s.spawn(move || {
                            let mut out = Vec::new();
                            for p in run {
                                out.extend(select(p.as_ref())?);
                            }
                            Ok::<_, StorageError>(out)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Vec<_>>()
            });
            for f in found {
                all.extend(f?);
            }
        }
        Ok(merge_series(all))
    }
}

impl Querier for MergeQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        self.select_parts(|p| p.select(matchers))
    }

    fn select_aggregate(
        &self,
        matchers: &[Matcher],
        aggregate: Aggregate,
    ) -> Result<Vec<Series>, StorageError> {
        self.select_parts(|p| p.select_aggregate(matchers, aggregate))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut lists = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            lists.push(p.label_names(matchers)?);
        }
        Ok(union(lists))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut lists = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            lists.push(p.label_values(name, matchers)?);
        }
        Ok(union(lists))
    }
}

/// Sorts series by labels (stably: earlier sources first) and joins equal ones.
fn merge_series(mut all: Vec<Series>) -> Vec<Series> {
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    let mut group: Vec<Box<dyn SampleIterator>> = Vec::new();
    let mut it = all.into_iter().peekable();
    while let Some(s) = it.next() {
        if it.peek().is_some_and(|n| n.labels == s.labels) || !group.is_empty() {
            group.push(s.samples);
            if it.peek().is_none_or(|n| n.labels != s.labels) {
                let its = std::mem::take(&mut group);
                out.push(Series {
                    labels: s.labels,
                    samples: Box::new(MergeIterator::new(its)),
                });
            }
        } else {
            out.push(s);
        }
    }
    out
}

/// Merges sample iterators by timestamp; equal timestamps yield the first iterator's
/// sample once and advance the others past it.
pub struct MergeIterator {
    sources: Vec<Source>,
    started: bool,
    cur: Option<Sample>,
    /// The source that gave the last sample, and the earliest head of all the others
    /// then: while that source's samples stay before it, they come out without a scan
    /// of the others. Sources are mostly disjoint in time (blocks, then the head), so
    /// nearly every sample takes this path.
    lead: Option<(usize, i64)>,
}

/// One merged iterator with the samples it handed out in its last batch: the merge
/// reads each source a chunk at a time, so a sample costs no dynamic call.
struct Source {
    it: Box<dyn SampleIterator>,
    buf: Vec<Sample>,
    /// The source's head sample is `buf[pos]`.
    pos: usize,
    ended: bool,
}

impl Source {
    /// The earliest sample not taken yet.
    #[inline]
    fn peek(&mut self) -> Option<Sample> {
        if let Some(&s) = self.buf.get(self.pos) {
            return Some(s);
        }
        self.refill()
    }

    #[cold]
    fn refill(&mut self) -> Option<Sample> {
        self.buf.clear();
        self.pos = 0;
        if self.ended || self.it.next_batch(&mut self.buf) == 0 {
            self.ended = true;
            return None;
        }
        self.buf.first().copied()
    }

    /// Moves to the first sample at or after `t`. Only for a source never read, or
    /// whose head is before `t` (so the iterator itself stands before `t` too).
    fn seek(&mut self, t: i64) {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        if rest.last().is_some_and(|s| s.t >= t) {
            self.pos += rest.partition_point(|s| s.t < t);
            return;
        }
        self.buf.clear();
        self.pos = 0;
        if self.ended {
            return;
        }
        match self.it.seek(t) {
            Some(s) => self.buf.push(s),
            None => self.ended = true,
        }
    }
}

impl MergeIterator {
    pub fn new(its: Vec<Box<dyn SampleIterator>>) -> Self {
        MergeIterator {
            sources: its
                .into_iter()
                .map(|it| Source {
                    it,
                    buf: Vec::new(),
                    pos: 0,
                    ended: false,
                })
                .collect(),
            started: false,
            cur: None,
            lead: None,
        }
    }

    /// Takes the earliest head sample, advancing every source that holds it.
    fn pop(&mut self) -> Option<Sample> {
        self.started = true;
        if let Some((i, bound)) = self.lead
            && let Some(h) = self.sources[i].peek()
            && h.t < bound
        {
            self.sources[i].pos += 1;
            self.cur = Some(h);
            return self.cur;
        }
        let mut best: Option<(usize, Sample)> = None;
        for (i, src) in self.sources.iter_mut().enumerate() {
            if let Some(h) = src.peek()
                && best.is_none_or(|(_, b)| h.t < b.t)
            {
                best = Some((i, h));
            }
        }
        let Some((lead, b)) = best else {
            self.lead = None;
            return None;
        };
        let mut bound = i64::MAX;
        for (i, src) in self.sources.iter_mut().enumerate() {
            let mut h = src.peek();
            if h.is_some_and(|s| s.t == b.t) {
                src.pos += 1;
                h = src.peek();
            }
            if i != lead
                && let Some(h) = h
            {
                bound = bound.min(h.t);
            }
        }
        self.lead = Some((lead, bound));
        self.cur = Some(b);
        self.cur
    }
}

impl SampleIterator for MergeIterator {
    fn next(&mut self) -> Option<Sample> {
        self.pop()
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(c) = self.cur
            && c.t >= t
        {
            return Some(c);
        }
        if !self.started {
            // A source never read seeks itself, skipping chunks it would decode.
            for src in &mut self.sources {
                src.seek(t);
            }
        } else {
            for src in &mut self.sources {
                if src.peek().is_some_and(|s| s.t < t) {
                    src.seek(t);
                }
            }
        }
        self.pop()
    }

    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        let Some(first) = self.pop() else {
            return 0;
        };
        out.push(first);
        // The rest of the lead source's batch that stays before every other source.
        let Some((i, bound)) = self.lead else {
            return 1;
        };
        let src = &mut self.sources[i];
        let rest = src.buf.get(src.pos..).unwrap_or(&[]);
        let k = rest.partition_point(|s| s.t < bound);
        if k > 0 {
            out.extend_from_slice(&rest[..k]);
            self.cur = Some(rest[k - 1]);
            src.pos += k;
        }
        1 + k
    }

    fn newest_in(&mut self, mint: i64, maxt: i64) -> Option<Sample> {
        if self.started {
            return crate::storage::read_newest_in(self, mint, maxt);
        }
        // Each source's newest; the latest wins, the earliest source on a tie.
        let mut best: Option<Sample> = None;
        for src in &mut self.sources {
            if let Some(s) = src.it.newest_in(mint, maxt)
                && best.is_none_or(|b| s.t > b.t)
            {
                best = Some(s);
            }
        }
        self.started = true;
        for src in &mut self.sources {
            src.ended = true;
        }
        self.cur = best;
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::VecSampleIterator;

    fn it(ts: &[(i64, f64)]) -> Box<dyn SampleIterator> {
        Box::new(VecSampleIterator::new(
            ts.iter().map(|&(t, v)| Sample { t, v }).collect(),
        ))
    }

    fn drain(m: &mut MergeIterator) -> Vec<(i64, f64)> {
        std::iter::from_fn(|| m.next())
            .map(|s| (s.t, s.v))
            .collect()
    }

    #[test]
    fn merges_in_order_without_duplicates() {
        let mut m = MergeIterator::new(vec![
            it(&[(1, 1.0), (3, 3.0), (5, 5.0)]),
            it(&[(2, 20.0), (3, 30.0), (6, 60.0)]),
            it(&[]),
        ]);
        assert_eq!(
            drain(&mut m),
            [(1, 1.0), (2, 20.0), (3, 3.0), (5, 5.0), (6, 60.0)]
        );
        assert_eq!(m.next(), None);
    }

    /// Blocks, then the head, with an overlap and shared timestamps where they meet:
    /// every timestamp once, the first source's value where two have it.
    #[test]
    fn merges_mostly_disjoint_sources_like_a_sorted_union() {
        let a: Vec<(i64, f64)> = (0..100).map(|t| (t, 1.0)).collect();
        let b: Vec<(i64, f64)> = (95..200).step_by(5).map(|t| (t, 2.0)).collect();
        let c: Vec<(i64, f64)> = (150..300).map(|t| (t, 3.0)).collect();
        let mut m = MergeIterator::new(vec![it(&a), it(&b), it(&c)]);
        let mut want: Vec<(i64, f64)> = Vec::new();
        for &(t, v) in a.iter().chain(&b).chain(&c) {
            if !want.iter().any(|&(u, _)| u == t) {
                want.push((t, v));
            }
        }
        want.sort_by_key(|&(t, _)| t);
        assert_eq!(drain(&mut m), want);
        let mut m = MergeIterator::new(vec![it(&a), it(&b), it(&c)]);
        assert_eq!(m.next().map(|s| s.t), Some(0));
        assert_eq!(m.seek(97).map(|s| (s.t, s.v)), Some((97, 1.0)));
        assert_eq!(m.seek(101).map(|s| (s.t, s.v)), Some((105, 2.0)));
        assert_eq!(m.seek(152).map(|s| (s.t, s.v)), Some((152, 3.0)));
        assert_eq!(m.next().map(|s| (s.t, s.v)), Some((153, 3.0)));
    }

    /// A source holding series `i` in `ids`, each with one sample at `t` of value `v`.
    struct Fixed {
        ids: std::ops::Range<usize>,
        t: i64,
        v: f64,
    }

    impl Querier for Fixed {
        fn select(&self, _: &[Matcher]) -> Result<Vec<Series>, StorageError> {
            Ok(self
                .ids
                .clone()
                .map(|i| Series {
                    labels: crate::model::Labels::from_pairs([("i", format!("{i:04}"))]),
                    samples: it(&[(self.t, self.v)]),
                })
                .collect())
        }
        fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(Vec::new())
        }
        fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(Vec::new())
        }
    }

    /// Large enough to ask the later sources on threads: the answer is the same merge,
    /// the earlier source's value kept where two share a timestamp.
    #[test]
    fn large_selections_merge_like_small_ones() {
        let n = PARALLEL_SELECT_SERIES * 2;
        let parts: Vec<Box<dyn Querier>> = vec![
            Box::new(Fixed {
                ids: 0..n,
                t: 1,
                v: 1.0,
            }),
            Box::new(Fixed {
                ids: n / 2..n + 10,
                t: 1,
                v: 2.0,
            }),
            Box::new(Fixed {
                ids: 0..n,
                t: 2,
                v: 3.0,
            }),
            Box::new(Fixed {
                ids: n..n + 20,
                t: 3,
                v: 4.0,
            }),
        ];
        let mut got = MergeQuerier::new(parts).select(&[]).unwrap();
        assert_eq!(got.len(), n + 20);
        assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
        let samples = |s: &mut Series| {
            std::iter::from_fn(|| s.samples.next())
                .map(|x| (x.t, x.v))
                .collect::<Vec<_>>()
        };
        assert_eq!(samples(&mut got[0]), [(1, 1.0), (2, 3.0)]);
        assert_eq!(samples(&mut got[n + 5]), [(1, 2.0), (3, 4.0)]);
        assert_eq!(samples(&mut got[n + 15]), [(3, 4.0)]);
    }

    /// Batches give the same samples as single steps, and stop where another source
    /// takes over.
    #[test]
    fn batches_read_like_single_steps() {
        let a: Vec<(i64, f64)> = (0..100).map(|t| (t, 1.0)).collect();
        let b: Vec<(i64, f64)> = (90..200).step_by(3).map(|t| (t, 2.0)).collect();
        let mut one = MergeIterator::new(vec![it(&a), it(&b)]);
        let want = drain(&mut one);
        let mut m = MergeIterator::new(vec![it(&a), it(&b)]);
        assert_eq!(m.seek(5).map(|s| s.t), Some(5));
        let mut got = vec![Sample { t: 5, v: 1.0 }];
        let mut calls = 0;
        while m.next_batch(&mut got) > 0 {
            calls += 1;
        }
        let got: Vec<(i64, f64)> = got.iter().map(|s| (s.t, s.v)).collect();
        assert_eq!(got, want[5..]);
        // The first source's run up to 90 comes in one batch, not 85.
        assert!(calls < 30, "{calls} batches");
        assert_eq!(m.next(), None);
    }

    #[test]
    fn newest_in_prefers_the_latest_then_the_first_source() {
        let mut m = MergeIterator::new(vec![
            it(&[(1, 1.0), (10, 1.0)]),
            it(&[(5, 2.0), (10, 2.0), (12, 2.0)]),
        ]);
        assert_eq!(m.newest_in(0, 11).map(|s| (s.t, s.v)), Some((10, 1.0)));
        let mut m = MergeIterator::new(vec![it(&[(1, 1.0)]), it(&[(5, 2.0), (12, 2.0)])]);
        assert_eq!(m.newest_in(2, 20).map(|s| (s.t, s.v)), Some((12, 2.0)));
        let mut m = MergeIterator::new(vec![it(&[(1, 1.0)]), it(&[(5, 2.0)])]);
        assert_eq!(m.newest_in(6, 20), None);
    }

    #[test]
    fn seek_never_goes_back() {
        let mut m = MergeIterator::new(vec![
            it(&[(1, 1.0), (10, 1.0)]),
            it(&[(5, 2.0), (10, 2.0), (12, 2.0)]),
        ]);
        assert_eq!(m.seek(4).map(|s| s.t), Some(5));
        assert_eq!(m.seek(2).map(|s| s.t), Some(5));
        assert_eq!(m.next().map(|s| (s.t, s.v)), Some((10, 1.0)));
        assert_eq!(m.seek(11).map(|s| s.t), Some(12));
        assert_eq!(m.seek(13), None);
        let mut fresh = MergeIterator::new(vec![it(&[(1, 1.0)]), it(&[(7, 2.0)])]);
        assert_eq!(fresh.seek(7).map(|s| s.t), Some(7));
        assert_eq!(fresh.next(), None);
    }
}
