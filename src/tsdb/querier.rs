//! The database's querier: one querier per source (each block overlapping the range, and
//! the head), their answers merged. Series come out sorted by labels; a series found in
//! several sources gets one iterator that merges their samples in time order, a
//! timestamp present in more than one source yielded once (the first source's value,
//! sources being in block order with the head last).

use crate::model::{Matcher, Sample};
use crate::storage::{Aggregate, Querier, SampleIterator, Series, StorageError};
use std::cmp::Ordering;

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

impl Querier for MergeQuerier {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        if self.parts.len() == 1 {
            return self.parts[0].select(matchers);
        }
        let mut all = Vec::new();
        for p in &self.parts {
            all.extend(p.select(matchers)?);
        }
        Ok(merge_series(all))
    }

    fn select_aggregate(
        &self,
        matchers: &[Matcher],
        aggregate: Aggregate,
    ) -> Result<Vec<Series>, StorageError> {
        if self.parts.len() == 1 {
            return self.parts[0].select_aggregate(matchers, aggregate);
        }
        let mut all = Vec::new();
        for p in &self.parts {
            all.extend(p.select_aggregate(matchers, aggregate)?);
        }
        Ok(merge_series(all))
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
    its: Vec<Box<dyn SampleIterator>>,
    heads: Vec<Option<Sample>>,
    started: bool,
    cur: Option<Sample>,
    /// The iterator that gave the last sample, and the earliest head of all the others
    /// then: while that iterator's samples stay before it, they come out without a scan
    /// of the others. Sources are mostly disjoint in time (blocks, then the head), so
    /// nearly every sample takes this path.
    lead: Option<(usize, i64)>,
}

impl MergeIterator {
    pub fn new(its: Vec<Box<dyn SampleIterator>>) -> Self {
        let heads = vec![None; its.len()];
        MergeIterator {
            its,
            heads,
            started: false,
            cur: None,
            lead: None,
        }
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            for (h, it) in self.heads.iter_mut().zip(&mut self.its) {
                *h = it.next();
            }
        }
    }

    /// Takes the earliest head sample, advancing every iterator that holds it.
    fn pop(&mut self) -> Option<Sample> {
        if let Some((i, bound)) = self.lead
            && let Some(h) = self.heads[i]
            && h.t < bound
        {
            self.heads[i] = self.its[i].next();
            self.cur = Some(h);
            return self.cur;
        }
        let mut best: Option<(usize, Sample)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(h) = h
                && best.is_none_or(|(_, b)| h.t.cmp(&b.t) == Ordering::Less)
            {
                best = Some((i, *h));
            }
        }
        let Some((lead, b)) = best else {
            self.lead = None;
            return None;
        };
        let mut bound = i64::MAX;
        for (h, it) in self.heads.iter_mut().zip(&mut self.its) {
            if h.is_some_and(|s| s.t == b.t) {
                *h = it.next();
            }
        }
        for (i, h) in self.heads.iter().enumerate() {
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
        self.start();
        self.pop()
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(c) = self.cur
            && c.t >= t
        {
            return Some(c);
        }
        if !self.started {
            self.started = true;
            for (h, it) in self.heads.iter_mut().zip(&mut self.its) {
                *h = it.seek(t);
            }
        } else {
            for (h, it) in self.heads.iter_mut().zip(&mut self.its) {
                if h.is_some_and(|s| s.t < t) {
                    *h = it.seek(t);
                }
            }
        }
        self.pop()
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
