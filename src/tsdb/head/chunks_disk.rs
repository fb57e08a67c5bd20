//! Full head chunks on disk: the append-only segment files of `<data>/chunks_head/`,
//! memory-mapped read-only, and the byte handles ([`ChunkBytes`]) that queriers and block
//! writing read chunks through without copying. A series keeps only a closed chunk's
//! time range and its [`ChunkDiskMapper`] ref; the bytes live in the page cache. Layout:
//! `docs/format/chunks_head.md`.
//!
//! Writes are batched: a cut chunk's record goes into a buffer behind the mapper's lock,
//! written to the file (one `pwrite`) when the buffer fills, a new segment starts, or a
//! reader asks for a chunk still in the buffer. A chunk is therefore readable from the
//! moment it is cut. Nothing is fsynced: the WAL stays the record of truth, and the
//! files are discarded when the database is opened (replay rebuilds them), so a crash
//! can never leave a chunk here that disagrees with the WAL.
//!
//! The mapper's lock is the innermost lock of the head: it is taken under stripe locks
//! (cutting, snapshots) and takes none itself.

use parking_lot::Mutex;
use std::fs::{self, File};
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The size of a segment file (Prometheus uses the same), fixed when it is created.
pub const SEGMENT_SIZE: u64 = 128 << 20;
/// `CHKH`: the first four bytes of a segment.
const MAGIC: u32 = 0x4348_4B48;
const VERSION: u8 = 1;
/// Magic, version, three bytes of padding.
pub(crate) const HEADER_LEN: u64 = 8;
/// Series ref, mint, maxt, encoding: the fixed part of a record.
const RECORD_FIXED: usize = 8 + 8 + 8 + 1;
/// The XOR encoding, as in block chunk files.
pub const ENC_XOR: u8 = 1;
/// Buffered record bytes that trigger a write to the file.
const FLUSH_AT: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ChunkDiskError {
    #[error("head chunks {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a chunk of {0} bytes does not fit in a head chunks segment")]
    TooLarge(usize),
}

/// One segment file, mapped read-only over its whole preallocated length. Bytes below
/// `flushed` are written and never change again; only they are ever read.
pub struct Segment {
    seq: u32,
    map: memmap2::MmapRaw,
    flushed: AtomicU64,
}

impl Segment {
    /// The written bytes `[start, end)`, or `None` if they are not all written yet.
    fn bytes(&self, start: u64, end: u64) -> Option<&[u8]> {
        let flushed = self.flushed.load(Ordering::Acquire);
        if start > end || end > flushed || end > self.map.len() as u64 {
            return None;
        }
        // SAFETY: `[start, end)` lies inside the mapping and below `flushed`, which only
        // grows after the bytes below it were written (Release store after the write, Acquire
        // load above), and written bytes are never written again: the writer only appends
        // past `flushed`. The file keeps its length for the mapping's life (it is sized
        // before it is mapped, never truncated; deletion unlinks and leaves the pages),
        // and the mapping lives as long as `self`, which the returned borrow holds.
        Some(unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(start as usize),
                (end - start) as usize,
            )
        })
    }

    /// The chunk whose record starts at `off`, if the record is written and well formed.
    fn chunk(self: &Arc<Self>, off: u64) -> Option<ChunkBytes> {
        let flushed = self.flushed.load(Ordering::Acquire);
        let rest = self.bytes(off, flushed)?;
        let (start, len) = parse_record(rest)?;
        Some(ChunkBytes(Repr::Mapped {
            seg: self.clone(),
            start: u32::try_from(off + start as u64).ok()?,
            len: u32::try_from(len).ok()?,
        }))
    }
}

/// Where a record's chunk data lies within the record (offset, length); the record must
/// be complete (the CRC is not checked: this process wrote it).
fn parse_record(rec: &[u8]) -> Option<(usize, usize)> {
    let mut pos = RECORD_FIXED;
    let len = crate::tsdb::varint::get_uvarint(rec, &mut pos)? as usize;
    let end = pos.checked_add(len)?.checked_add(4)?;
    (end <= rec.len()).then_some((pos, len))
}

/// A chunk's bytes: shared heap bytes, or a range of a mapped segment (which stays
/// mapped while any handle to it lives, even after its file is deleted).
#[derive(Clone)]
pub struct ChunkBytes(Repr);

#[derive(Clone)]
enum Repr {
    Heap(Arc<[u8]>),
    Mapped {
        seg: Arc<Segment>,
        start: u32,
        len: u32,
    },
}

impl ChunkBytes {
    /// Whether the bytes are read through a segment mapping rather than from the heap.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }
}

impl Deref for ChunkBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Heap(b) => b,
            Repr::Mapped { seg, start, len } => {
                let start = u64::from(*start);
                seg.bytes(start, start + u64::from(*len)).unwrap_or(&[])
            }
        }
    }
}

impl AsRef<[u8]> for ChunkBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Arc<[u8]>> for ChunkBytes {
    fn from(b: Arc<[u8]>) -> Self {
        ChunkBytes(Repr::Heap(b))
    }
}

impl From<&[u8]> for ChunkBytes {
    fn from(b: &[u8]) -> Self {
        ChunkBytes(Repr::Heap(Arc::from(b)))
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(b: Vec<u8>) -> Self {
        ChunkBytes(Repr::Heap(Arc::from(b)))
    }
}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "heap" };
        write!(f, "ChunkBytes({kind}, {} bytes)", self.len())
    }
}

/// The writer of `chunks_head/` and the registry of its mapped segments.
pub struct ChunkDiskMapper {
    dir: PathBuf,
    segment_size: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Live segments, oldest first; the last is written to.
    segments: Vec<LiveSegment>,
    /// The file of the last segment, while it takes writes.
    file: Option<File>,
    /// Bytes of the last segment in its file (header included).
    written: u64,
    /// Records not yet in the file; they follow `written`.
    buf: Vec<u8>,
    next_seq: u32,
}

struct LiveSegment {
    seg: Arc<Segment>,
    /// The newest sample time of any chunk in it.
    maxt: i64,
}

impl ChunkDiskMapper {
    /// Opens `dir` (creating it) with segments of `segment_size` bytes. Files left by an
    /// earlier run are deleted: replay rebuilds every chunk from the WAL.
    pub fn open(dir: &Path, segment_size: u64) -> Result<Self, ChunkDiskError> {
        let io = |source| ChunkDiskError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut removed = 0;
        for e in fs::read_dir(dir).map_err(io)? {
            let p = e.map_err(io)?.path();
            if p.is_file() {
                fs::remove_file(&p).map_err(|source| ChunkDiskError::Io { path: p, source })?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(dir = %dir.display(), files = removed, "discarded head chunk files of the previous run; the WAL replay rewrites them");
        }
        Ok(ChunkDiskMapper {
            dir: dir.to_path_buf(),
            segment_size: segment_size.clamp(4096, u64::from(u32::MAX)),
            inner: Mutex::new(Inner {
                segments: Vec::new(),
                file: None,
                written: 0,
                buf: Vec::new(),
                next_seq: 1,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a closed chunk of series `series_ref` and returns its ref (segment number
    /// in the high 32 bits, the record's offset in the low 32). The chunk is readable
    /// through [`ChunkDiskMapper::chunk`] at once. An error leaves nothing referring to
    /// the chunk: the caller keeps it in memory.
    pub fn write(
        &self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        data: &[u8],
    ) -> Result<u64, ChunkDiskError> {
        let rec_len = RECORD_FIXED + uvarint_len(data.len() as u64) + data.len() + 4;
        if rec_len as u64 + HEADER_LEN > self.segment_size {
            return Err(ChunkDiskError::TooLarge(data.len()));
        }
        let mut g = self.inner.lock();
        if g.file.is_none() || g.written + (g.buf.len() + rec_len) as u64 > self.segment_size {
            self.start_segment(&mut g)?;
        } else if g.buf.len() >= FLUSH_AT {
            self.flush(&mut g)?;
        }
        let off = g.written + g.buf.len() as u64;
        let Some(last) = g.segments.last_mut() else {
            return Err(self.io_error(std::io::Error::other("no segment to write to")));
        };
        last.maxt = last.maxt.max(maxt);
        let seq = last.seg.seq;
        let buf = &mut g.buf;
        let at = buf.len();
        buf.extend_from_slice(&series_ref.to_le_bytes());
        buf.extend_from_slice(&mint.to_le_bytes());
        buf.extend_from_slice(&maxt.to_le_bytes());
        buf.push(ENC_XOR);
        crate::tsdb::varint::put_uvarint(buf, data.len() as u64);
        buf.extend_from_slice(data);
        let crc = crc32fast::hash(&buf[at..]);
        buf.extend_from_slice(&crc.to_le_bytes());
        Ok((u64::from(seq) << 32) | off)
    }

    /// The bytes of the chunk at `r`; `None` if no live segment holds it (a caller bug:
    /// segments go only when every chunk in them is dropped).
    pub fn chunk(&self, r: u64) -> Option<ChunkBytes> {
        let (seq, off) = ((r >> 32) as u32, r & 0xffff_ffff);
        let mut g = self.inner.lock();
        let i = g.segments.binary_search_by_key(&seq, |s| s.seg.seq).ok()?;
        let seg = g.segments[i].seg.clone();
        if let Some(b) = seg.chunk(off) {
            return Some(b);
        }
        if i + 1 != g.segments.len() || off < g.written {
            return None;
        }
        // Still in the buffer: write it out so it can be mapped, or, if the disk refuses,
        // hand out a copy.
        match self.flush(&mut g) {
            Ok(()) => seg.chunk(off),
            Err(e) => {
                tracing::warn!(error = %e, "writing head chunks failed; serving a copy from memory");
                let rec = g.buf.get((off - g.written) as usize..)?;
                let (start, len) = parse_record(rec)?;
                Some(ChunkBytes::from(&rec[start..start + len]))
            }
        }
    }

    /// Deletes the segment files (all but the one being written) whose chunks all end
    /// before `mint`; returns how many. Readers holding their chunks keep the mapping.
    pub fn truncate(&self, mint: i64) -> usize {
        let mut g = self.inner.lock();
        let last = g.segments.len().saturating_sub(1);
        let mut gone = Vec::new();
        let mut i = 0;
        g.segments.retain(|s| {
            let keep = i == last || s.maxt >= mint;
            i += 1;
            if !keep {
                gone.push(s.seg.seq);
            }
            keep
        });
        drop(g);
        for seq in &gone {
            let p = self.dir.join(segment_name(*seq));
            if let Err(e) = fs::remove_file(&p) {
                tracing::warn!(file = %p.display(), error = %e, "could not delete a head chunks segment");
            }
        }
        gone.len()
    }

    /// Live segment files.
    pub fn num_segments(&self) -> usize {
        self.inner.lock().segments.len()
    }

    /// Writes buffered records to the file.
    pub fn flush_buffer(&self) -> Result<(), ChunkDiskError> {
        self.flush(&mut self.inner.lock())
    }

    fn flush(&self, g: &mut Inner) -> Result<(), ChunkDiskError> {
        if g.buf.is_empty() {
            return Ok(());
        }
        let (Some(file), Some(last)) = (&g.file, g.segments.last()) else {
            return Ok(());
        };
        file.write_all_at(&g.buf, g.written)
            .map_err(|e| self.io_error(e))?;
        g.written += g.buf.len() as u64;
        last.seg.flushed.store(g.written, Ordering::Release);
        g.buf.clear();
        if g.buf.capacity() > 2 * FLUSH_AT {
            g.buf.shrink_to(FLUSH_AT);
        }
        Ok(())
    }

    /// Flushes the current segment and starts the next, sized and mapped.
    fn start_segment(&self, g: &mut Inner) -> Result<(), ChunkDiskError> {
        self.flush(g)?;
        let seq = g.next_seq;
        let path = self.dir.join(segment_name(seq));
        let io = |source| ChunkDiskError::Io {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        let made = file
            .write_all_at(&header, 0)
            .and_then(|()| file.set_len(self.segment_size))
            .and_then(|()| memmap2::MmapOptions::new().map_raw_read_only(&file));
        let map = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(io(e));
            }
        };
        g.next_seq += 1;
        g.segments.push(LiveSegment {
            seg: Arc::new(Segment {
                seq,
                map,
                flushed: AtomicU64::new(HEADER_LEN),
            }),
            maxt: i64::MIN,
        });
        g.file = Some(file);
        g.written = HEADER_LEN;
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> ChunkDiskError {
        ChunkDiskError::Io {
            path: self.dir.clone(),
            source,
        }
    }
}

impl Drop for ChunkDiskMapper {
    fn drop(&mut self) {
        // Complete files help whoever looks at them; the next open discards them anyway.
        let _ = self.flush_buffer();
    }
}

/// Bytes of `x` as an unsigned LEB128 varint.
fn uvarint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// A segment's file name: its number, six digits.
pub fn segment_name(seq: u32) -> String {
    format!("{seq:06}")
}

/// Resolves chunk refs for one reader, keeping the last segment it used so that most
/// refs resolve without the mapper's lock.
pub(crate) struct ChunkReader<'m> {
    disk: Option<&'m ChunkDiskMapper>,
    last: Option<Arc<Segment>>,
}

impl<'m> ChunkReader<'m> {
    pub fn new(disk: Option<&'m ChunkDiskMapper>) -> Self {
        ChunkReader { disk, last: None }
    }

    /// The bytes of the chunk at `r`; `None` without a mapper or for an unknown ref.
    pub fn get(&mut self, r: u64) -> Option<ChunkBytes> {
        let (seq, off) = ((r >> 32) as u32, r & 0xffff_ffff);
        if let Some(seg) = &self.last
            && seg.seq == seq
            && let Some(b) = seg.chunk(off)
        {
            return Some(b);
        }
        let b = self.disk?.chunk(r)?;
        if let Repr::Mapped { seg, .. } = &b.0 {
            self.last = Some(seg.clone());
        }
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(i: u8, len: usize) -> Vec<u8> {
        (0..len).map(|k| i.wrapping_add(k as u8)).collect()
    }

    #[test]
    fn written_chunks_read_back_at_once_and_after_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open(tmp.path(), SEGMENT_SIZE).unwrap();
        let refs: Vec<u64> = (0..100u8)
            .map(|i| {
                m.write(
                    u64::from(i) + 1,
                    i64::from(i),
                    i64::from(i) + 9,
                    &chunk(i, 100 + usize::from(i)),
                )
                .unwrap()
            })
            .collect();
        assert_eq!(refs[0], (1 << 32) | HEADER_LEN);
        // Still buffered: reading writes them out and maps them.
        let mut r = ChunkReader::new(Some(&m));
        for (i, &cr) in refs.iter().enumerate() {
            let b = r.get(cr).unwrap();
            assert!(b.is_mapped());
            assert_eq!(&*b, &chunk(i as u8, 100 + i)[..]);
        }
        assert!(m.inner.lock().buf.is_empty());
        // The file holds exactly the header and the records, checksummed.
        let f = fs::read(tmp.path().join("000001")).unwrap();
        assert_eq!(f.len() as u64, SEGMENT_SIZE);
        assert_eq!(&f[..5], &[b'C', b'H', b'K', b'H', 1]);
        let at = HEADER_LEN as usize;
        let (start, len) = parse_record(&f[at..]).unwrap();
        assert_eq!((start, len), (RECORD_FIXED + 1, 100));
        let crc = crc32fast::hash(&f[at..at + start + len]);
        assert_eq!(f[at + start + len..at + start + len + 4], crc.to_le_bytes());
        assert_eq!(u64::from_le_bytes(f[at..at + 8].try_into().unwrap()), 1);
        assert!(r.get((9 << 32) | 8).is_none());
        assert!(r.get((1 << 32) | (SEGMENT_SIZE - 2)).is_none());
        assert!(ChunkReader::new(None).get(refs[0]).is_none());
    }

    #[test]
    fn segments_roll_and_truncation_deletes_old_ones_while_readers_keep_them() {
        let tmp = tempfile::tempdir().unwrap();
        let m = ChunkDiskMapper::open(tmp.path(), 4096).unwrap();
        // 300-byte chunks: 13 records per 4 KiB segment.
        let refs: Vec<u64> = (0..40i64)
            .map(|i| {
                m.write(1, i * 10, i * 10 + 9, &chunk(i as u8, 300))
                    .unwrap()
            })
            .collect();
        let segs = m.num_segments();
        assert_eq!(segs, 4);
        assert_eq!(refs[13] >> 32, 2);
        let held = m.chunk(refs[0]).unwrap();
        // Segment 1 ends at 129, 2 at 259, 3 at 389; 4 is being written.
        assert_eq!(m.truncate(130), 1);
        assert!(!tmp.path().join("000001").exists());
        assert!(tmp.path().join("000002").exists());
        assert!(m.chunk(refs[0]).is_none());
        assert_eq!(&*held, &chunk(0, 300)[..], "a held chunk outlives its file");
        assert_eq!(&*m.chunk(refs[13]).unwrap(), &chunk(13, 300)[..]);
        // The segment being written stays, however old.
        assert_eq!(m.truncate(i64::MAX), 2);
        assert_eq!(m.num_segments(), 1);
        assert_eq!(&*m.chunk(refs[39]).unwrap(), &chunk(39, 300)[..]);
        assert!(matches!(
            m.write(1, 0, 0, &chunk(0, 5000)),
            Err(ChunkDiskError::TooLarge(5000))
        ));
    }

    #[test]
    fn open_discards_files_of_a_previous_run() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let m = ChunkDiskMapper::open(tmp.path(), 4096).unwrap();
            m.write(1, 0, 1, &[0, 1, 2]).unwrap();
        }
        fs::write(tmp.path().join("000007"), b"torn").unwrap();
        let m = ChunkDiskMapper::open(tmp.path(), 4096).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let r = m.write(1, 0, 1, &[0, 1, 2]).unwrap();
        assert_eq!(r >> 32, 1);
        assert_eq!(&*m.chunk(r).unwrap(), &[0, 1, 2]);
    }

    /// Series `m{i=".."}` x `n` samples each at 10 s; returns what a query shows.
    fn fill(
        db: &crate::tsdb::Db,
        series: usize,
        from: i64,
        n: i64,
    ) -> Vec<(String, Vec<(i64, f64)>)> {
        use crate::storage::Storage;
        use crate::tsdb::testing::*;
        let mut app = db.appender();
        for k in from..from + n {
            for i in 0..series {
                let l = lbls(&[("__name__", "m"), ("i", &format!("{i:02}"))]);
                app.append(&l, k * 10_000, (k * i as i64) as f64).unwrap();
            }
            if k % 50 == 0 {
                app.commit().unwrap();
            }
        }
        app.commit().unwrap();
        dump(db, i64::MIN, i64::MAX, &[])
    }

    /// A copy of `src` as `kill -9` would leave it: whatever is in the files now.
    fn crash_image(src: &Path, dst: &Path) {
        for sub in ["wal", "chunks_head"] {
            fs::create_dir_all(dst.join(sub)).unwrap();
            for e in fs::read_dir(src.join(sub)).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), dst.join(sub).join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn head_chunks_are_mapped_and_answer_queries() {
        let tmp = tempfile::tempdir().unwrap();
        let db = crate::tsdb::testing::open(tmp.path());
        let all = fill(&db, 10, 0, 500);
        assert_eq!(all.len(), 10);
        assert!(all.iter().all(|(_, v)| v.len() == 500));
        assert_eq!(all[3].1[499], (4_990_000, 499.0 * 3.0));
        assert!(tmp.path().join("chunks_head").join("000001").exists());
        let head = db.head();
        assert_eq!(head.chunks_disk().unwrap().num_segments(), 1);
        // Block writing reads the closed chunks through the mapping.
        let series = head.chunks_in_range(0, 5_000_000);
        assert_eq!(series.len(), 10);
        for (_, chunks) in &series {
            assert_eq!(chunks.len(), 5);
            assert!(chunks[..4].iter().all(|c| c.data.is_mapped()));
            assert!(!chunks[4].data.is_mapped(), "the open chunk is a copy");
        }
        assert_eq!(db.stats().num_chunks, 50);
    }

    #[test]
    fn truncation_deletes_old_files_and_held_queries_keep_reading() {
        use crate::storage::Querier;
        use crate::tsdb::head::Head;
        use crate::tsdb::wal::{Wal, WalMetrics};
        let tmp = tempfile::tempdir().unwrap();
        let wal_dir = tmp.path().join("wal");
        fs::create_dir_all(&wal_dir).unwrap();
        let disk = ChunkDiskMapper::open(&tmp.path().join("chunks_head"), 4096).unwrap();
        let wal = Wal::open(
            &wal_dir,
            None,
            1 << 20,
            std::time::Duration::from_secs(3600),
            Arc::new(WalMetrics::default()),
        )
        .unwrap();
        let head = Arc::new(Head::new().with_chunks_disk(disk).with_wal(wal));
        let mut app = crate::tsdb::head::HeadAppender::new(head.clone());
        let l = crate::tsdb::testing::lbls(&[("__name__", "m")]);
        // Random mantissas: about 1 KiB per chunk, so four chunks fill a segment.
        let v = |k: i64| {
            f64::from_bits((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 12 | 0x3ff0 << 48)
        };
        for k in 0..2400i64 {
            crate::storage::Appender::append(&mut app, &l, k * 1000, v(k)).unwrap();
        }
        crate::storage::Appender::commit(&mut app).unwrap();
        let files = || {
            fs::read_dir(tmp.path().join("chunks_head"))
                .unwrap()
                .count()
        };
        let before = files();
        let q = crate::tsdb::head::HeadQuerier::new(head.clone(), 0, i64::MAX);
        let mut held = q.select(&[]).unwrap();
        assert_eq!(held.len(), 1);
        let st = head.truncate(2_000_000).unwrap();
        assert!(
            before > 4 && st.chunk_files_removed > 2,
            "{before} files, {st:?}"
        );
        assert_eq!(files(), before - st.chunk_files_removed);
        assert!(!tmp.path().join("chunks_head").join("000001").exists());
        // The select made before the truncation still reads every sample.
        let got: Vec<(i64, f64)> = std::iter::from_fn(|| held[0].samples.next())
            .map(|s| (s.t, s.v))
            .collect();
        assert_eq!(got.len(), 2400);
        assert!(
            got.iter()
                .enumerate()
                .all(|(k, &s)| s == (k as i64 * 1000, v(k as i64)))
        );
        // A new one sees what is left, from the remaining files.
        let q = crate::tsdb::head::HeadQuerier::new(head.clone(), 0, i64::MAX);
        let mut now = q.select(&[]).unwrap();
        let left: Vec<i64> = std::iter::from_fn(|| now[0].samples.next())
            .map(|s| s.t)
            .collect();
        assert_eq!(left.first(), Some(&2_000_000));
        assert_eq!(left.len(), 400);
    }

    /// `kill -9` images taken with chunks still buffered, and with chunk files torn,
    /// damaged or holding chunks the WAL never got: each reopens to exactly the
    /// acknowledged samples, once.
    #[test]
    fn crash_images_reopen_to_the_acknowledged_samples() {
        use crate::tsdb::testing::*;
        let tmp = tempfile::tempdir().unwrap();
        let db = open(tmp.path());
        let acked = fill(&db, 8, 0, 400);
        let chunks = db.stats().num_chunks;
        type Damage = fn(&Path);
        let cases: [(&str, Damage); 5] = [
            ("as left", |_| {}),
            ("torn last chunk", |d| {
                let p = d.join("000001");
                let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(HEADER_LEN + 100).unwrap();
            }),
            ("flipped bytes", |d| {
                let p = d.join("000001");
                let mut b = fs::read(&p).unwrap();
                for i in (8..4000).step_by(7) {
                    b[i] ^= 0x5a;
                }
                fs::write(&p, b).unwrap();
            }),
            ("chunk written, WAL not", |d| {
                // A later run's chunk for series 1 that the WAL never logged.
                let m = ChunkDiskMapper {
                    dir: d.to_path_buf(),
                    segment_size: 1 << 20,
                    inner: Mutex::new(Inner {
                        segments: Vec::new(),
                        file: None,
                        written: 0,
                        buf: Vec::new(),
                        next_seq: 2,
                    }),
                };
                let mut a = crate::tsdb::chunkenc::XorAppender::new();
                a.append(9_000_000, 1.0);
                m.write(1, 9_000_000, 9_000_000, a.bytes()).unwrap();
            }),
            ("files gone", |d| {
                fs::remove_dir_all(d).unwrap();
            }),
        ];
        for (name, damage) in cases {
            let img = tempfile::tempdir().unwrap();
            crash_image(tmp.path(), img.path());
            damage(&img.path().join("chunks_head"));
            let db2 = open(img.path());
            assert_eq!(dump(&db2, i64::MIN, i64::MAX, &[]), acked, "{name}");
            assert_eq!(db2.stats().num_chunks, chunks, "{name}");
            // And it keeps working: more samples, another reopen.
            let more = fill(&db2, 8, 400, 130);
            drop(db2);
            let db3 = open(img.path());
            assert_eq!(dump(&db3, i64::MIN, i64::MAX, &[]), more, "{name}");
        }
        drop(db);
    }
}
