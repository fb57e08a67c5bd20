//! The seams between the parts that write samples (scrape, remote write, rules) and the
//! parts that read them (the API, PromQL) on one side, and the database on the other.
//! Everything here is a trait or a plain type; the TSDB implements them, and nothing in
//! this module knows how samples are stored.

use crate::model::{Labels, Matcher, Sample};

/// A series' number inside one storage. Never 0: 0 means "not known yet".
pub type SeriesRef = u64;

/// Why one sample was not appended. Every variant is counted by the storage; the caller
/// decides whether it fails the whole batch (remote write) or only that sample (scrape).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    /// The ref given to [`Appender::append_ref`] is no longer in the storage: call
    /// [`Appender::append`] with the labels instead.
    #[error("unknown series reference {0}")]
    UnknownSeries(SeriesRef),
    #[error("invalid series {0}: {1}")]
    InvalidSeries(String, &'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("write-ahead log: {0}")]
    Wal(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A batch of appends that becomes visible and durable on [`Appender::commit`].
///
/// After `commit` returns `Ok`, every sample in the batch is in the write-ahead log
/// (written, so it survives `kill -9`) and visible to new queriers. `rollback`, or
/// dropping the appender without committing, discards the batch.
pub trait Appender: Send {
    /// Appends a sample to the series with these labels, creating the series if needed.
    /// Returns its ref, which later calls may pass to [`Appender::append_ref`].
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError>;

    /// Appends a sample to a series known by ref: the hot path for a series seen before,
    /// which costs no label handling at all.
    fn append_ref(&mut self, series: SeriesRef, t: i64, v: f64) -> Result<(), AppendError>;

    /// Makes the batch durable and visible.
    fn commit(&mut self) -> Result<(), StorageError>;

    /// Discards the batch.
    fn rollback(&mut self);
}

/// Walks one series' samples in time order.
pub trait SampleIterator: Send {
    /// The next sample, or `None` at the end.
    fn next(&mut self) -> Option<Sample>;

    /// Advances to the first sample with timestamp `>= t` and returns it. Never moves
    /// backwards: seeking to a time before the current sample returns the current one.
    fn seek(&mut self, t: i64) -> Option<Sample>;

    /// Appends the samples that follow the current one to `out`, at least one unless the
    /// series has ended, and returns how many it appended; the last of them becomes the
    /// current sample. Iterators that decode a chunk at a time hand out the rest of it in
    /// one call, so a reader pays one dynamic call per chunk rather than per sample.
    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        match self.next() {
            Some(s) => {
                out.push(s);
                1
            }
            None => 0,
        }
    }

    /// The newest sample in `[mint, maxt]` among those not read yet, for a reader that
    /// wants that one sample and nothing after it (an instant query's selector). It
    /// leaves the iterator anywhere past the answer: read nothing more from it. A head
    /// series answers from the sample it holds in memory when that is the newest in
    /// range, decoding nothing.
    fn newest_in(&mut self, mint: i64, maxt: i64) -> Option<Sample> {
        read_newest_in(self, mint, maxt)
    }
}

/// [`SampleIterator::newest_in`] by reading: a seek to `mint`, then every sample up to
/// `maxt`. For iterators whose shortcut does not apply.
pub fn read_newest_in<I: SampleIterator + ?Sized>(
    it: &mut I,
    mint: i64,
    maxt: i64,
) -> Option<Sample> {
    let mut newest = None;
    let mut next = it.seek(mint);
    while let Some(s) = next
        && s.t <= maxt
    {
        newest = Some(s);
        next = it.next();
    }
    newest
}

/// One series returned by a select: its labels and its samples within the range asked.
pub struct Series {
    pub labels: Labels,
    pub samples: Box<dyn SampleIterator>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series")
            .field("labels", &self.labels)
            .finish()
    }
}

/// Which per-window aggregate a selection reads from downsampled data. A downsampled
/// block keeps, for every series and every window `(k*res, (k+1)*res]` (left-open, like
/// PromQL's range selection), the count, sum, min and max of the window's samples, each
/// stamped with the timestamp of the window's last sample, and a counter-aware
/// subsequence of the raw samples (see [`Aggregate::Counter`]).
///
/// Raw data read through an aggregate is each sample as a window of its own: `Count`
/// yields 1, the others the sample's value; stale markers are skipped for all but
/// `Counter`. So a function that composes (sum of sums, min of mins, sum of counts)
/// gives the same answer over raw and downsampled data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// Raw samples, unchanged: each window's first and last sample, plus the samples on
    /// both sides of every counter reset. Rate and increase over a range aligned to
    /// windows equal the raw answer, and a plain selector evaluated at window ends sees
    /// the same last value as over raw data.
    Counter,
    Count,
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Maps one raw sample to this aggregate's value; `None` drops it.
    #[inline]
    pub fn of_raw(self, v: f64) -> Option<f64> {
        if self != Aggregate::Counter && crate::model::is_stale_nan(v) {
            return None;
        }
        Some(match self {
            Aggregate::Count => 1.0,
            _ => v,
        })
    }
}

/// Raw samples read as an aggregate (see [`Aggregate`]): what a source without
/// downsampled data answers to [`Querier::select_aggregate`].
pub struct RawAsAggregate {
    inner: Box<dyn SampleIterator>,
    aggregate: Aggregate,
}

impl RawAsAggregate {
    pub fn wrap(inner: Box<dyn SampleIterator>, aggregate: Aggregate) -> Box<dyn SampleIterator> {
        if aggregate == Aggregate::Counter {
            return inner;
        }
        Box::new(RawAsAggregate { inner, aggregate })
    }
}

impl SampleIterator for RawAsAggregate {
    fn next(&mut self) -> Option<Sample> {
        loop {
            let s = self.inner.next()?;
            if let Some(v) = self.aggregate.of_raw(s.v) {
                return Some(Sample { t: s.t, v });
            }
        }
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        let s = self.inner.seek(t)?;
        match self.aggregate.of_raw(s.v) {
            Some(v) => Some(Sample { t: s.t, v }),
            None => self.next(),
        }
    }

    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        loop {
            let from = out.len();
            if self.inner.next_batch(out) == 0 {
                return 0;
            }
            // Map the new samples in place, dropping those the aggregate leaves out.
            let mut kept = from;
            for i in from..out.len() {
                let s = out[i];
                if let Some(v) = self.aggregate.of_raw(s.v) {
                    out[kept] = Sample { t: s.t, v };
                    kept += 1;
                }
            }
            out.truncate(kept);
            if kept > from {
                return kept - from;
            }
        }
    }
}

/// A read view over a time range `[mint, maxt]` (milliseconds, both inclusive).
pub trait Querier: Send + Sync {
    /// The series matching all matchers, sorted by labels, with samples limited to the
    /// querier's range. At least one matcher must not match the empty string (the
    /// caller checks this; PromQL and the API require it).
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError>;

    /// Like [`Querier::select`], reading `aggregate` where the querier serves
    /// downsampled data (see [`Storage::querier_at_resolution`]); raw sources answer with
    /// their raw samples mapped by [`Aggregate::of_raw`].
    fn select_aggregate(
        &self,
        matchers: &[Matcher],
        aggregate: Aggregate,
    ) -> Result<Vec<Series>, StorageError> {
        let mut out = self.select(matchers)?;
        if aggregate != Aggregate::Counter {
            for s in &mut out {
                let inner =
                    std::mem::replace(&mut s.samples, Box::new(VecSampleIterator::new(Vec::new())));
                s.samples = RawAsAggregate::wrap(inner, aggregate);
            }
        }
        Ok(out)
    }

    /// Label names present on series matching `matchers` (all series when empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` on series matching `matchers` (all when empty), sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// A database: hands out appenders and queriers. Cheap to share behind an `Arc`.
pub trait Storage: Send + Sync + 'static {
    fn appender(&self) -> Box<dyn Appender>;
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;

    /// The resolutions (ms) of downsampled data overlapping `[mint, maxt]`; empty for
    /// storages that do not downsample.
    fn downsampled_resolutions(&self, mint: i64, maxt: i64) -> Vec<i64> {
        let _ = (mint, maxt);
        Vec::new()
    }

    /// A querier that prefers data downsampled to `resolution_ms` (0: raw) where the
    /// storage has it, and falls back to finer data (raw first) where it has not; read it
    /// through [`Querier::select_aggregate`]. Storages without downsampling answer raw.
    fn querier_at_resolution(
        &self,
        mint: i64,
        maxt: i64,
        resolution_ms: i64,
    ) -> Result<Box<dyn Querier>, StorageError> {
        let _ = resolution_ms;
        self.querier(mint, maxt)
    }
}

/// A sample iterator over a vector, for tests and for small in-memory results.
pub struct VecSampleIterator {
    samples: Vec<Sample>,
    pos: usize,
}

impl VecSampleIterator {
    pub fn new(samples: Vec<Sample>) -> Self {
        VecSampleIterator { samples, pos: 0 }
    }
}

impl SampleIterator for VecSampleIterator {
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        s
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        // Never move backwards: a seek to the past returns the sample last returned.
        let from = self.pos.saturating_sub(1);
        let off = self.samples[from..].partition_point(|s| s.t < t);
        self.pos = from + off;
        self.next()
    }

    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        let rest = self.samples.get(self.pos..).unwrap_or(&[]);
        out.extend_from_slice(rest);
        self.pos = self.samples.len();
        rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;

    fn raw() -> Box<dyn SampleIterator> {
        let s = |t, v| Sample { t, v };
        Box::new(VecSampleIterator::new(vec![
            s(10, 5.0),
            s(20, stale_nan()),
            s(30, 7.0),
            s(40, 2.0),
        ]))
    }

    fn all(mut it: Box<dyn SampleIterator>) -> Vec<(i64, f64)> {
        std::iter::from_fn(|| it.next())
            .map(|s| (s.t, s.v))
            .collect()
    }

    #[test]
    fn raw_samples_read_as_aggregates() {
        assert_eq!(
            all(RawAsAggregate::wrap(raw(), Aggregate::Count)),
            [(10, 1.0), (30, 1.0), (40, 1.0)]
        );
        assert_eq!(
            all(RawAsAggregate::wrap(raw(), Aggregate::Max)),
            [(10, 5.0), (30, 7.0), (40, 2.0)]
        );
        let counter = all(RawAsAggregate::wrap(raw(), Aggregate::Counter));
        assert_eq!(counter.len(), 4);
        assert!(crate::model::is_stale_nan(counter[1].1));
        // A seek that lands on a stale marker moves past it.
        let mut it = RawAsAggregate::wrap(raw(), Aggregate::Sum);
        assert_eq!(it.seek(15).map(|s| (s.t, s.v)), Some((30, 7.0)));
    }
}
