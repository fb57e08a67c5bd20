//! One series in memory: its labels (as symbol ids), its closed chunks (on disk through
//! the head's [`ChunkDiskMapper`], by ref) and its open XOR chunk, and the append rules
//! that compare a sample with the newest committed one. Callers hold the stripe lock;
//! nothing here locks (but the mapper's own innermost lock), logs or counts.

use super::chunks_disk::{ChunkBytes, ChunkDiskMapper, ChunkReader};
use crate::storage::AppendError;
use crate::tsdb::chunkenc::{SAMPLES_PER_CHUNK, XorAppender};
use std::sync::Arc;

/// A full chunk as handed out: immutable bytes shared with the queriers that snapshot
/// it (mapped from `chunks_head/`, or on the heap).
#[derive(Clone, Debug)]
pub struct ClosedChunk {
    pub mint: i64,
    pub maxt: i64,
    pub data: ChunkBytes,
}

/// A closed chunk as a series holds it: its time range and where its bytes are.
#[derive(Clone, Debug)]
pub struct HeadChunk {
    pub mint: i64,
    pub maxt: i64,
    at: ChunkAt,
}

#[derive(Clone, Debug)]
enum ChunkAt {
    /// A ref into the head's chunk files.
    Disk(u64),
    /// No mapper (a head without a data directory), or writing it failed.
    Mem(Arc<[u8]>),
}

impl HeadChunk {
    /// The chunk with its bytes; `None` if its ref resolves nowhere.
    pub(crate) fn closed(&self, reader: &mut ChunkReader<'_>) -> Option<ClosedChunk> {
        let data = match &self.at {
            ChunkAt::Disk(r) => reader.get(*r)?,
            ChunkAt::Mem(b) => ChunkBytes::from(b.clone()),
        };
        Some(ClosedChunk {
            mint: self.mint,
            maxt: self.maxt,
            data,
        })
    }

    #[cfg(test)]
    pub fn is_on_disk(&self) -> bool {
        matches!(self.at, ChunkAt::Disk(_))
    }
}

/// Where a series' closed chunks go: the head's chunk files under the series' ref, or
/// memory without them.
#[derive(Clone, Copy)]
pub struct Cutter<'a> {
    pub disk: Option<&'a ChunkDiskMapper>,
    pub series_ref: u64,
}

impl Cutter<'_> {
    /// Memory only, for tests.
    #[cfg(test)]
    pub const MEM: Cutter<'static> = Cutter {
        disk: None,
        series_ref: 0,
    };

    fn store(&self, mint: i64, maxt: i64, data: &[u8]) -> HeadChunk {
        let at = match self
            .disk
            .map(|d| d.write(self.series_ref, mint, maxt, data))
        {
            Some(Ok(r)) => ChunkAt::Disk(r),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "could not write a head chunk to disk; keeping it in memory");
                ChunkAt::Mem(Arc::from(data))
            }
            None => ChunkAt::Mem(Arc::from(data)),
        };
        HeadChunk { mint, maxt, at }
    }
}

/// What appending a sample did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored; `new_chunk` when it opened a chunk.
    Sample { new_chunk: bool },
    /// Same timestamp and same value bits as the newest sample: accepted, not stored.
    Duplicate,
}

pub struct MemSeries {
    /// Varint symbol ids (see `index::SeriesLabels`); equal label sets encode equally.
    pub labels: Box<[u8]>,
    pub chunks: Vec<HeadChunk>,
    pub head: XorAppender,
    /// Samples for it in appenders' uncommitted batches. A series with pending samples
    /// is never collected, so a batch cannot lose samples to a truncation between
    /// `append` and `commit` (Prometheus keeps such series the same way).
    pub pending: u32,
    /// Whether a series record for it is in the WAL (and so it is in the postings).
    pub logged: bool,
}

impl MemSeries {
    pub fn new(labels: Box<[u8]>) -> Self {
        MemSeries {
            labels,
            chunks: Vec::new(),
            head: XorAppender::new(),
            pending: 0,
            logged: false,
        }
    }

    /// Whether it holds no samples at all.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.head.is_empty()
    }

    /// Drops the chunks whose samples all lie before `mint` (the open one included);
    /// returns how many. A chunk that straddles `mint` is kept whole.
    pub fn truncate_chunks(&mut self, mint: i64) -> u64 {
        let n = self.chunks.partition_point(|c| c.maxt < mint);
        if n == 0 && self.head.last().is_none_or(|(t, _)| t >= mint) {
            return 0;
        }
        self.chunks.drain(..n);
        if self.chunks.is_empty() {
            self.chunks = Vec::new();
        }
        let mut dropped = n as u64;
        if self.head.last().is_some_and(|(t, _)| t < mint) {
            // Nothing recent: the series has likely stopped, so give its buffer back.
            self.head = XorAppender::new();
            dropped += 1;
        }
        dropped
    }

    /// Checks a sample against the newest stored one: `Ok(true)` to append, `Ok(false)`
    /// for an identical duplicate (a no-op, as in Prometheus).
    #[inline]
    pub fn appendable(&self, t: i64, v: f64) -> Result<bool, AppendError> {
        match self.head.last() {
            None => Ok(true),
            Some((lt, _)) if t > lt => Ok(true),
            Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder),
            Some((_, lv)) if lv == v.to_bits() => Ok(false),
            Some(_) => Err(AppendError::DuplicateTimestamp),
        }
    }

    /// Appends if the order rules allow, cutting a new chunk (to `cutter`) after
    /// [`SAMPLES_PER_CHUNK`] samples.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64, cutter: Cutter<'_>) -> Result<Appended, AppendError> {
        if !self.appendable(t, v)? {
            return Ok(Appended::Duplicate);
        }
        let mut new_chunk = self.head.is_empty();
        if self.head.num_samples() >= SAMPLES_PER_CHUNK {
            self.cut(cutter);
            new_chunk = true;
        }
        self.head.append(t, v);
        Ok(Appended::Sample { new_chunk })
    }

    /// Closes the open chunk: its bytes go to `cutter`, and the open buffer is kept for
    /// the next chunk, which will need about as much.
    #[cold]
    fn cut(&mut self, cutter: Cutter<'_>) {
        let (Some(mint), Some((maxt, _))) = (self.head.first_t(), self.head.last()) else {
            return;
        };
        let c = cutter.store(mint, maxt, self.head.bytes());
        self.chunks.push(c);
        self.head.reset();
    }

    /// Takes a closed chunk over as it is (replay of a checkpoint); the caller checked
    /// that it follows everything the series holds and that the open chunk is empty.
    pub fn push_closed(&mut self, mint: i64, maxt: i64, data: &[u8], cutter: Cutter<'_>) {
        let c = cutter.store(mint, maxt, data);
        self.chunks.push(c);
    }

    pub fn min_time(&self) -> Option<i64> {
        match self.chunks.first() {
            Some(c) => Some(c.mint),
            None => self.head.first_t(),
        }
    }

    pub fn max_time(&self) -> Option<i64> {
        self.head.last().map(|(t, _)| t)
    }

    /// Whether any sample lies in `[mint, maxt]` by the chunks' time ranges.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        match (self.min_time(), self.max_time()) {
            (Some(a), Some(b)) => a <= maxt && b >= mint,
            _ => false,
        }
    }

    /// Appends to `out` the chunks overlapping `[mint, maxt]`: closed ones by handle
    /// (through `reader`), the open one as a copy of its bytes (it keeps growing after
    /// the lock is released).
    pub(crate) fn snapshot(
        &self,
        mint: i64,
        maxt: i64,
        reader: &mut ChunkReader<'_>,
        out: &mut Vec<ClosedChunk>,
    ) {
        let first = self.chunks.partition_point(|c| c.maxt < mint);
        for c in &self.chunks[first..] {
            if c.mint > maxt {
                return;
            }
            out.extend(c.closed(reader));
        }
        if let (Some(hmin), Some((hmax, _))) = (self.head.first_t(), self.head.last())
            && hmin <= maxt
            && hmax >= mint
        {
            out.push(ClosedChunk {
                mint: hmin,
                maxt: hmax,
                data: self.head.bytes().into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::chunkenc::XorIterator;

    fn series() -> MemSeries {
        MemSeries::new(Box::new([0, 1]))
    }

    #[test]
    fn order_rules() {
        let mut s = series();
        assert_eq!(
            s.append(10, 1.0, Cutter::MEM),
            Ok(Appended::Sample { new_chunk: true })
        );
        assert_eq!(
            s.append(20, 2.0, Cutter::MEM),
            Ok(Appended::Sample { new_chunk: false })
        );
        assert_eq!(s.append(15, 2.0, Cutter::MEM), Err(AppendError::OutOfOrder));
        assert_eq!(
            s.append(20, 3.0, Cutter::MEM),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(s.append(20, 2.0, Cutter::MEM), Ok(Appended::Duplicate));
        // NaN duplicates compare by bits: the same NaN is a no-op, another NaN is not.
        s.append(30, f64::NAN, Cutter::MEM).unwrap();
        assert_eq!(s.append(30, f64::NAN, Cutter::MEM), Ok(Appended::Duplicate));
        assert_eq!(
            s.append(
                30,
                f64::from_bits(crate::model::STALE_NAN_BITS),
                Cutter::MEM
            ),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            s.append(40, -0.0, Cutter::MEM),
            Ok(Appended::Sample { new_chunk: false })
        );
        assert_eq!(
            s.append(40, 0.0, Cutter::MEM),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!((s.min_time(), s.max_time()), (Some(10), Some(40)));
    }

    #[test]
    fn cuts_at_120_samples() {
        let mut s = series();
        let mut new_chunks = 0;
        for i in 0..250 {
            if let Ok(Appended::Sample { new_chunk: true }) =
                s.append(i * 10, i as f64, Cutter::MEM)
            {
                new_chunks += 1;
            }
        }
        assert_eq!(new_chunks, 3);
        assert_eq!(s.chunks.len(), 2);
        assert_eq!((s.chunks[0].mint, s.chunks[0].maxt), (0, 1190));
        assert_eq!((s.chunks[1].mint, s.chunks[1].maxt), (1200, 2390));
        let data = s.chunks[1]
            .closed(&mut ChunkReader::new(None))
            .unwrap()
            .data;
        assert!(!data.is_mapped());
        assert_eq!(XorIterator::new(&data).count(), 120);
        assert_eq!(s.head.num_samples(), 10);
        assert_eq!((s.min_time(), s.max_time()), (Some(0), Some(2490)));
    }

    #[test]
    fn truncate_drops_only_chunks_wholly_before_mint() {
        let mut s = series();
        for i in 0..250 {
            s.append(i * 10, 0.0, Cutter::MEM).unwrap();
        }
        // Chunks: [0, 1190], [1200, 2390], open [2400, 2490].
        assert_eq!(s.truncate_chunks(0), 0);
        assert_eq!(s.truncate_chunks(1190), 0, "a straddling chunk stays");
        assert_eq!(s.truncate_chunks(1191), 1);
        assert_eq!(s.min_time(), Some(1200));
        assert_eq!(s.truncate_chunks(2490), 1);
        assert_eq!((s.chunks.len(), s.head.num_samples()), (0, 10));
        assert!(!s.is_empty());
        assert_eq!(s.truncate_chunks(2491), 1);
        assert!(s.is_empty() && s.max_time().is_none());
        // Appending after a full truncation starts a fresh chunk.
        assert_eq!(
            s.append(3000, 1.0, Cutter::MEM),
            Ok(Appended::Sample { new_chunk: true })
        );
    }

    #[test]
    fn snapshot_picks_overlapping_chunks() {
        let mut s = series();
        for i in 0..250 {
            s.append(i * 10, 0.0, Cutter::MEM).unwrap();
        }
        let ranges = |mint, maxt| {
            let mut out = Vec::new();
            s.snapshot(mint, maxt, &mut ChunkReader::new(None), &mut out);
            out.iter().map(|c| (c.mint, c.maxt)).collect::<Vec<_>>()
        };
        assert_eq!(ranges(0, 5), vec![(0, 1190)]);
        assert_eq!(ranges(1195, 1199), Vec::<(i64, i64)>::new());
        assert_eq!(
            ranges(1190, 2400),
            vec![(0, 1190), (1200, 2390), (2400, 2490)]
        );
        assert_eq!(ranges(2491, i64::MAX), Vec::<(i64, i64)>::new());
        assert_eq!(ranges(i64::MIN, -1), Vec::<(i64, i64)>::new());
        assert!(s.overlaps(2490, 3000) && !s.overlaps(2491, 3000));
        assert!(!series().overlaps(i64::MIN, i64::MAX));
    }

    #[test]
    fn cut_chunks_go_to_disk_and_read_back_mapped() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = ChunkDiskMapper::open(tmp.path(), 1 << 20).unwrap();
        let cutter = Cutter {
            disk: Some(&disk),
            series_ref: 7,
        };
        let mut on_disk = series();
        let mut in_mem = series();
        for i in 0..250 {
            on_disk.append(i * 10, i as f64, cutter).unwrap();
            in_mem.append(i * 10, i as f64, Cutter::MEM).unwrap();
        }
        assert!(on_disk.chunks.iter().all(HeadChunk::is_on_disk));
        assert!(!in_mem.chunks.iter().any(HeadChunk::is_on_disk));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        on_disk.snapshot(0, i64::MAX, &mut ChunkReader::new(Some(&disk)), &mut a);
        in_mem.snapshot(0, i64::MAX, &mut ChunkReader::new(None), &mut b);
        assert_eq!(a.len(), 3);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.mint, x.maxt, &*x.data), (y.mint, y.maxt, &*y.data));
        }
        assert!(a[0].data.is_mapped() && a[1].data.is_mapped() && !a[2].data.is_mapped());
        // A chunk taken over whole (replay) goes to disk too.
        let mut s = series();
        s.push_closed(0, 1190, &b[0].data, cutter);
        let mut c = Vec::new();
        s.snapshot(0, 5, &mut ChunkReader::new(Some(&disk)), &mut c);
        assert!(c[0].data.is_mapped());
        assert_eq!(XorIterator::new(&c[0].data).count(), 120);
    }
}
