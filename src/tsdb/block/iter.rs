//! Walking one series' chunks in a block: each chunk, whatever its encoding (packed or
//! XOR raw chunks, or the XOR sub-chunk of an aggregate chunk), is decoded whole into a
//! buffer when the walk reaches it, and chunks that end before a seek's target are
//! skipped without being decoded. Knows nothing about tombstones (the querier wraps
//! the iterator) or about how the chunks were chosen.

use super::Block;
use crate::model::Sample;
use crate::storage::SampleIterator;
use crate::tsdb::chunkenc::XorDecoder;
use std::sync::Arc;

/// Where one chunk of the walk lies in the block's mapped segments.
#[derive(Clone, Copy, Debug)]
pub struct LocatedChunk {
    /// The newest timestamp in the chunk (an upper bound of it, for a sub-chunk).
    pub maxt: i64,
    pub seg: u32,
    pub start: u32,
    pub end: u32,
    /// The bytes are an XOR sub-chunk of an aggregate chunk, not a whole raw chunk
    /// (which carries its encoding byte before `start`).
    pub sub_chunk: bool,
}

/// Walks a series' chunks (in time order, not overlapping) over `[mint, maxt]`.
pub struct BlockSeriesIterator {
    block: Arc<Block>,
    chunks: Vec<LocatedChunk>,
    /// The chunk whose samples are in `buf` (once `loaded`).
    idx: usize,
    loaded: bool,
    /// Chunk `idx`'s samples within the range.
    buf: Vec<Sample>,
    /// The next sample of `buf` to return.
    pos: usize,
    /// A decoded sample lay past `maxt`: no later chunk has anything in range.
    past_end: bool,
    mint: i64,
    maxt: i64,
    /// The sample last returned, which a backwards seek returns again.
    cur: Option<Sample>,
}

impl BlockSeriesIterator {
    pub fn new(block: Arc<Block>, chunks: Vec<LocatedChunk>, mint: i64, maxt: i64) -> Self {
        BlockSeriesIterator {
            block,
            chunks,
            idx: 0,
            loaded: false,
            buf: Vec::new(),
            pos: 0,
            past_end: false,
            mint,
            maxt,
            cur: None,
        }
    }

    /// Decodes chunk `idx` into `buf`, keeping only its samples in range; false past
    /// the last chunk or the range's end.
    fn load(&mut self, idx: usize) -> bool {
        self.idx = idx;
        self.buf.clear();
        self.pos = 0;
        let Some(c) = self.chunks.get(idx).copied().filter(|_| !self.past_end) else {
            self.loaded = false;
            return false;
        };
        self.loaded = true;
        if self.buf.capacity() == 0 {
            self.buf = take_buffer();
        }
        let reader = self.block.chunks();
        let ok = if c.sub_chunk {
            let data = reader.slice(c.seg, c.start, c.end);
            let mut dec = XorDecoder::new(data);
            self.buf.reserve(usize::from(dec.num_samples()));
            while let Some((t, v)) = dec.next(data) {
                self.buf.push(Sample { t, v });
            }
            true
        } else {
            reader.decode(c.seg, c.start, c.end, &mut self.buf)
        };
        if !ok {
            tracing::error!(block = %self.block.meta().ulid, segment = c.seg + 1, offset = c.start,
                "malformed chunk: its samples are skipped");
        }
        // Trim to the range: a binary search each side rather than a test per sample.
        let end = self.buf.partition_point(|s| s.t <= self.maxt);
        if end < self.buf.len() {
            self.past_end = true;
            self.buf.truncate(end);
        }
        self.pos = self.buf.partition_point(|s| s.t < self.mint);
        true
    }

    /// The next chunk to load: the current one if it is not loaded yet.
    fn next_idx(&self) -> usize {
        if self.loaded { self.idx + 1 } else { self.idx }
    }
}

impl Drop for BlockSeriesIterator {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.buf));
    }
}

thread_local! {
    /// Sample buffers of dropped iterators, for the next ones: a query reads its series
    /// one after another, so a few buffers serve all of them.
    static BUFFERS: std::cell::RefCell<Vec<Vec<Sample>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many buffers wait per thread, each at most [`MAX_POOLED`] samples
/// (two whole chunks).
const POOLED: usize = 8;
const MAX_POOLED: usize = 2 * super::writer::MAX_CHUNK_SAMPLES;

fn take_buffer() -> Vec<Sample> {
    BUFFERS
        .try_with(|b| b.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn give_buffer(mut buf: Vec<Sample>) {
    if buf.capacity() == 0 || buf.capacity() > MAX_POOLED {
        return;
    }
    buf.clear();
    let _ = BUFFERS.try_with(|b| {
        let mut pool = b.borrow_mut();
        if pool.len() < POOLED {
            pool.push(buf);
        }
    });
}

impl SampleIterator for BlockSeriesIterator {
    #[inline]
    fn next(&mut self) -> Option<Sample> {
        loop {
            if let Some(&s) = self.buf.get(self.pos) {
                self.pos += 1;
                self.cur = Some(s);
                return self.cur;
            }
            if !self.load(self.next_idx()) {
                return None;
            }
        }
    }

    fn seek(&mut self, t: i64) -> Option<Sample> {
        if let Some(c) = self.cur
            && c.t >= t
        {
            return Some(c);
        }
        // The loaded chunk holds the target unless its last sample is before it.
        let in_buffer = self.pos < self.buf.len() && self.buf.last().is_some_and(|s| s.t >= t);
        if !in_buffer {
            // Skip whole chunks that end before the target without decoding them.
            let from = self.next_idx().min(self.chunks.len());
            let lo = from + self.chunks[from..].partition_point(|c| c.maxt < t);
            if !self.load(lo) {
                return None;
            }
        }
        let rest = &self.buf[self.pos..];
        self.pos += rest.partition_point(|s| s.t < t);
        self.next()
    }

    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        loop {
            if let Some(rest) = self.buf.get(self.pos..)
                && let Some(&last) = rest.last()
            {
                out.extend_from_slice(rest);
                self.pos = self.buf.len();
                self.cur = Some(last);
                return rest.len();
            }
            if !self.load(self.next_idx()) {
                return 0;
            }
        }
    }
}
