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

/// A read view over a time range `[mint, maxt]` (milliseconds, both inclusive).
pub trait Querier: Send + Sync {
    /// The series matching all matchers, sorted by labels, with samples limited to the
    /// querier's range. At least one matcher must not match the empty string (the
    /// caller checks this; PromQL and the API require it).
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError>;

    /// Label names present on series matching `matchers` (all series when empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` on series matching `matchers` (all when empty), sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// A database: hands out appenders and queriers. Cheap to share behind an `Arc`.
pub trait Storage: Send + Sync + 'static {
    fn appender(&self) -> Box<dyn Appender>;
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError>;
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
}
