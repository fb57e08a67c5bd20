//! The write-ahead log: numbered segment files (`00000000`, `00000001`, ...) of framed
//! records, a writer that rolls segments at a size limit, a background thread that fsyncs
//! the current segment, and the replay reader that cuts a torn or corrupt tail instead of
//! failing. It moves bytes only: what records mean is up to the head.

pub mod checkpoint;
pub mod record;

use parking_lot::{Condvar, Mutex, MutexGuard};
use record::{HEADER_LEN, Header, MAX_BODY_LEN, RecordType};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "write-ahead log is unusable after a failed write that could not be undone; \
         restart to replay it"
    )]
    Failed,
    #[error("encoding a write-ahead log record: {0}")]
    Encode(#[from] snap::Error),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of segment `n`: eight decimal digits, as Prometheus names them.
pub fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

/// The segments in `dir`, sorted by number. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, WalError> {
    let mut segs = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = name.parse::<u32>() {
            segs.push((n, entry.path()));
        }
    }
    segs.sort_unstable_by_key(|(n, _)| *n);
    Ok(segs)
}

/// Counters the WAL keeps for `/metrics`.
#[derive(Default)]
pub struct WalMetrics {
    pub fsync_count: AtomicU64,
    pub fsync_nanos: AtomicU64,
    pub segment_current: AtomicU64,
    pub corruptions: AtomicU64,
    pub writes_failed: AtomicU64,
}

impl WalMetrics {
    fn timed_sync(&self, f: &File) -> io::Result<()> {
        let start = Instant::now();
        let r = f.sync_data();
        self.fsync_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.fsync_count.fetch_add(1, Ordering::Relaxed);
        r
    }
}

/// State shared with the fsync thread.
struct SyncShared {
    file: Mutex<(Arc<File>, PathBuf)>,
    dirty: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
    metrics: Arc<WalMetrics>,
}

/// The writer's state, behind [`Wal::lock`].
pub struct Writer {
    dir: PathBuf,
    file: Arc<File>,
    path: PathBuf,
    index: u32,
    size: u64,
    segment_size: u64,
    failed: bool,
    shared: Arc<SyncShared>,
}

/// An open WAL, ready for writes.
pub struct Wal {
    writer: Mutex<Writer>,
    shared: Arc<SyncShared>,
    sync_every_write: bool,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub metrics: Arc<WalMetrics>,
}

impl Wal {
    /// Opens the WAL in `dir` for writing, continuing `last` (segment number and its valid
    /// length, as replay left it) or starting segment 0. With a zero `fsync_interval`
    /// every write is fsynced; otherwise a thread fsyncs that often.
    pub fn open(
        dir: &Path,
        last: Option<(u32, u64)>,
        segment_size: u64,
        fsync_interval: Duration,
        metrics: Arc<WalMetrics>,
    ) -> Result<Wal, WalError> {
        let (index, size) = last.unwrap_or((0, 0));
        let path = dir.join(segment_name(index));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if last.is_none() {
            sync_dir(dir)?;
        }
        let file = Arc::new(file);
        metrics
            .segment_current
            .store(u64::from(index), Ordering::Relaxed);
        let shared = Arc::new(SyncShared {
            file: Mutex::new((file.clone(), path.clone())),
            dirty: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            metrics: metrics.clone(),
        });
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            path,
            index,
            size,
            segment_size: segment_size.max(1),
            failed: false,
            shared: shared.clone(),
        };
        let sync_every_write = fsync_interval.is_zero();
        let thread = if sync_every_write {
            None
        } else {
            let s = shared.clone();
            let handle = std::thread::Builder::new()
                .name("cairn-wal-fsync".into())
                .spawn(move || fsync_loop(&s, fsync_interval))
                .map_err(io_err(dir))?;
            Some(handle)
        };
        Ok(Wal {
            writer: Mutex::new(writer),
            shared,
            sync_every_write,
            thread: Mutex::new(thread),
            metrics,
        })
    }

    /// Locks the writer. Commits hold this while they write and apply, so the order of
    /// records in the log is the order their samples reached the head.
    pub fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// Whether each commit must fsync (`wal_fsync_interval` of zero).
    pub fn sync_every_write(&self) -> bool {
        self.sync_every_write
    }

    /// Fsyncs the segment being written.
    pub fn sync(&self) -> Result<(), WalError> {
        let (file, path) = {
            let g = self.shared.file.lock();
            (g.0.clone(), g.1.clone())
        };
        self.shared.dirty.store(false, Ordering::Relaxed);
        self.metrics.timed_sync(&file).map_err(|e| {
            self.shared.dirty.store(true, Ordering::Relaxed);
            WalError::Io { path, source: e }
        })
    }

    /// Fsyncs and stops the background thread. Writes still work afterwards (and are
    /// fsynced on the next `close` or drop).
    pub fn close(&self) -> Result<(), WalError> {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
        self.sync()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, "final fsync of the write-ahead log failed");
        }
    }
}

fn fsync_loop(shared: &SyncShared, interval: Duration) {
    loop {
        {
            let mut stop = shared.stop.lock();
            if !*stop {
                shared.wake.wait_for(&mut stop, interval);
            }
            if *stop {
                return;
            }
        }
        if !shared.dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        let (file, path) = {
            let g = shared.file.lock();
            (g.0.clone(), g.1.clone())
        };
        if let Err(e) = shared.metrics.timed_sync(&file) {
            shared.dirty.store(true, Ordering::Relaxed);
            tracing::warn!(segment = %path.display(), error = %e, "fsync of the write-ahead log failed");
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Writer {
    /// Writes framed records in one `write` call, first rolling to a new segment if they
    /// would overflow this one (a batch larger than a segment gets a segment of its own).
    ///
    /// On failure the segment is cut back to where it was, so no partial record is left
    /// for later records to hide behind; if even that fails the WAL refuses all writes.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        if buf.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.segment_size {
            self.roll()?;
        }
        if let Err(e) = (&*self.file).write_all(buf) {
            self.shared
                .metrics
                .writes_failed
                .fetch_add(1, Ordering::Relaxed);
            if self.file.set_len(self.size).is_err() {
                self.failed = true;
            }
            return Err(WalError::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        self.size += buf.len() as u64;
        self.shared.dirty.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Fsyncs the full segment and starts the next one.
    fn roll(&mut self) -> Result<(), WalError> {
        self.shared
            .metrics
            .timed_sync(&self.file)
            .map_err(io_err(&self.path))?;
        let index = self.index + 1;
        let path = self.dir.join(segment_name(index));
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        // Append mode is what `open` uses; a fresh, truncated file behaves the same.
        let file = Arc::new(file);
        *self.shared.file.lock() = (file.clone(), path.clone());
        self.file = file;
        self.path = path;
        self.index = index;
        self.size = 0;
        self.shared
            .metrics
            .segment_current
            .store(u64::from(index), Ordering::Relaxed);
        Ok(())
    }

    pub fn segment(&self) -> u32 {
        self.index
    }

    /// Closes the segment being written (fsynced) and starts the next one; returns the
    /// number of the closed segment, which a checkpoint can now cover.
    pub fn cut(&mut self) -> Result<u32, WalError> {
        if self.failed {
            return Err(WalError::Failed);
        }
        let closed = self.index;
        self.roll()?;
        Ok(closed)
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size at which segments roll (checkpoints use it too).
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }
}

/// Why a record could not be read.
#[derive(Debug)]
enum ReadError {
    /// The segment is damaged at this record: cut it here.
    Corrupt(String),
    Io(io::Error),
}

/// Reads records of one segment with reused buffers.
struct SegmentReader<R> {
    r: R,
    /// Bytes of the segment not read yet.
    remaining: u64,
    payload: Vec<u8>,
    body: Vec<u8>,
    snappy: snap::raw::Decoder,
}

impl<R: Read> SegmentReader<R> {
    /// The next record's type and total framed length, with its body in `self.body`;
    /// `None` at a clean end.
    fn next(&mut self) -> Result<Option<(RecordType, u64)>, ReadError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        if self.remaining < HEADER_LEN as u64 {
            return Err(ReadError::Corrupt(format!(
                "torn record header ({} bytes)",
                self.remaining
            )));
        }
        let mut hb = [0u8; HEADER_LEN];
        self.r.read_exact(&mut hb).map_err(ReadError::Io)?;
        let h = Header::parse(&hb);
        let left = self.remaining - HEADER_LEN as u64;
        if u64::from(h.len) > left {
            return Err(ReadError::Corrupt(format!(
                "record of {} bytes but only {left} left in the segment",
                h.len
            )));
        }
        let typ = RecordType::from_byte(h.typ)
            .ok_or_else(|| ReadError::Corrupt(format!("unknown record type {}", h.typ)))?;
        self.payload.resize(h.len as usize, 0);
        self.r
            .read_exact(&mut self.payload)
            .map_err(ReadError::Io)?;
        if record::checksum(h.typ, &self.payload) != h.crc {
            return Err(ReadError::Corrupt("checksum mismatch".into()));
        }
        let n = snap::raw::decompress_len(&self.payload)
            .map_err(|e| ReadError::Corrupt(format!("snappy: {e}")))?;
        if n > MAX_BODY_LEN {
            return Err(ReadError::Corrupt(format!("record body of {n} bytes")));
        }
        self.body.resize(n, 0);
        self.snappy
            .decompress(&self.payload, &mut self.body)
            .map_err(|e| ReadError::Corrupt(format!("snappy: {e}")))?;
        let framed = HEADER_LEN as u64 + u64::from(h.len);
        self.remaining -= framed;
        Ok(Some((typ, framed)))
    }
}

/// What replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayOutcome {
    /// The last segment kept and its length after any cut: where writing continues.
    pub last_segment: Option<(u32, u64)>,
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u32>,
    pub records: u64,
    pub corruptions: u64,
}

/// Reusable state for reading segments one after another.
struct Buffers {
    payload: Vec<u8>,
    body: Vec<u8>,
    snappy: snap::raw::Decoder,
}

/// Where reading one segment stopped.
enum SegmentEnd {
    /// Read to its end, this long.
    Clean(u64),
    /// Damaged at this offset, for this reason.
    Damaged(u64, String),
}

/// Reads one segment's records, handing each to `apply`; returns how it ended.
fn read_segment<E: std::fmt::Display>(
    path: &Path,
    bufs: &mut Buffers,
    out: &mut ReplayOutcome,
    apply: &mut impl FnMut(RecordType, &[u8]) -> Result<(), E>,
) -> Result<SegmentEnd, WalError> {
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    let mut seg = SegmentReader {
        r: BufReader::with_capacity(1 << 20, file),
        remaining: size,
        payload: std::mem::take(&mut bufs.payload),
        body: std::mem::take(&mut bufs.body),
        snappy: std::mem::replace(&mut bufs.snappy, snap::raw::Decoder::new()),
    };
    let mut offset = 0u64;
    let end = loop {
        match seg.next() {
            Ok(None) => break SegmentEnd::Clean(offset),
            Ok(Some((typ, framed))) => match apply(typ, &seg.body) {
                Ok(()) => {
                    out.records += 1;
                    offset += framed;
                }
                Err(e) => {
                    break SegmentEnd::Damaged(offset, format!("malformed {typ:?} record: {e}"));
                }
            },
            Err(ReadError::Corrupt(why)) => break SegmentEnd::Damaged(offset, why),
            Err(ReadError::Io(e)) => return Err(io_err(path)(e)),
        }
    };
    (bufs.payload, bufs.body, bufs.snappy) = (seg.payload, seg.body, seg.snappy);
    Ok(end)
}

/// Replays the WAL directory: the newest checkpoint first, then every segment after it,
/// in order, handing each record body to `apply`.
///
/// At the first damaged record of a segment (torn, bad checksum, bad snappy, unknown
/// type, or a body `apply` rejects) the segment is truncated there, later segments are
/// deleted, a warning names the file and offset, and replay ends successfully. Damage
/// inside a checkpoint (which was fsynced whole, so it is real disk damage) stops
/// reading the checkpoint with an error log; the segments after it are still read.
/// Leftovers of interrupted checkpoints are removed first, and files the checkpoint
/// covers (left by a crash before their deletion) are deleted after. Only I/O errors
/// fail replay.
pub fn replay<E: std::fmt::Display>(
    dir: &Path,
    mut apply: impl FnMut(RecordType, &[u8]) -> Result<(), E>,
) -> Result<ReplayOutcome, WalError> {
    checkpoint::remove_unfinished(dir)?;
    let mut out = ReplayOutcome::default();
    let mut bufs = Buffers {
        payload: Vec::new(),
        body: Vec::new(),
        snappy: snap::raw::Decoder::new(),
    };
    let mut first = 0u32;
    if let Some((n, cp)) = checkpoint::list_checkpoints(dir)?.pop() {
        out.checkpoint = Some(n);
        first = n.saturating_add(1);
        for (_, path) in list_segments(&cp)? {
            if let SegmentEnd::Damaged(offset, why) =
                read_segment(&path, &mut bufs, &mut out, &mut apply)?
            {
                out.corruptions += 1;
                tracing::error!(
                    checkpoint = %path.display(),
                    offset,
                    reason = %why,
                    "write-ahead log checkpoint is damaged; the data after this point in it is lost"
                );
                break;
            }
        }
    }
    let segs: Vec<(u32, PathBuf)> = list_segments(dir)?
        .into_iter()
        .filter(|(i, _)| *i >= first)
        .collect();
    for (i, (index, path)) in segs.iter().enumerate() {
        let expected = match out.last_segment {
            Some((prev, _)) => prev + 1,
            None => first,
        };
        if *index != expected && (out.last_segment.is_some() || out.checkpoint.is_some()) {
            tracing::warn!(segment = %path.display(), expected, "write-ahead log segments are not consecutive");
        }
        let end = read_segment(path, &mut bufs, &mut out, &mut apply)?;
        match end {
            SegmentEnd::Clean(len) => out.last_segment = Some((*index, len)),
            SegmentEnd::Damaged(offset, why) => {
                out.last_segment = Some((*index, offset));
                out.corruptions += 1;
                let later: Vec<&PathBuf> = segs[i + 1..].iter().map(|(_, p)| p).collect();
                tracing::warn!(
                    segment = %path.display(),
                    offset,
                    reason = %why,
                    deleted_later_segments = later.len(),
                    "write-ahead log is damaged; cutting it at the last good record"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(offset).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
                for p in later {
                    fs::remove_file(p).map_err(io_err(p))?;
                }
                sync_dir(dir)?;
                break;
            }
        }
    }
    if let Some(n) = out.checkpoint {
        if out.last_segment.is_none() {
            // Everything is in the checkpoint: writing starts on the segment after it.
            out.last_segment = Some((first, 0));
        }
        checkpoint::delete_covered(dir, n)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use record::frame;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(
            &mut out,
            RecordType::Samples,
            body,
            &mut snap::raw::Encoder::new(),
        )
        .unwrap();
        out
    }

    /// Bytes snappy cannot shrink, so record sizes are predictable.
    fn noise(seed: u8, n: usize) -> Vec<u8> {
        let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn collect(dir: &Path) -> (Vec<Vec<u8>>, ReplayOutcome) {
        let mut bodies = Vec::new();
        let o = replay(dir, |_, b| {
            bodies.push(b.to_vec());
            Ok::<(), String>(())
        })
        .unwrap();
        (bodies, o)
    }

    fn open(dir: &Path, last: Option<(u32, u64)>, seg: u64) -> Wal {
        Wal::open(dir, last, seg, Duration::ZERO, Arc::default()).unwrap()
    }

    #[test]
    fn segments_roll_and_replay_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = open(tmp.path(), None, 100);
        for i in 0..10u8 {
            wal.lock().write(&framed(&noise(i, 40))).unwrap();
        }
        assert!(wal.lock().segment() >= 4);
        drop(wal);
        let segs = list_segments(tmp.path()).unwrap();
        assert!(segs.len() >= 5);
        assert_eq!(segs[0].0, 0);
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies.len(), 10);
        for (i, b) in bodies.iter().enumerate() {
            assert_eq!(b, &noise(i as u8, 40));
        }
        assert_eq!(o.corruptions, 0);
        assert_eq!(o.last_segment.map(|l| l.0), Some(segs.last().unwrap().0));
    }

    #[test]
    fn torn_tail_is_cut_and_writing_continues() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = open(tmp.path(), None, 1 << 20);
        wal.lock().write(&framed(b"first")).unwrap();
        wal.lock().write(&framed(b"second")).unwrap();
        drop(wal);
        let path = tmp.path().join("00000000");
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies, vec![b"first".to_vec()]);
        assert_eq!(o.corruptions, 1);
        let (idx, size) = o.last_segment.unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        let wal = open(tmp.path(), Some((idx, size)), 1 << 20);
        wal.lock().write(&framed(b"third")).unwrap();
        drop(wal);
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(o.corruptions, 0);
    }

    #[test]
    fn damage_in_an_early_segment_drops_later_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = open(tmp.path(), None, 10);
        for i in 0..4u8 {
            wal.lock().write(&framed(&[i; 30])).unwrap();
        }
        drop(wal);
        assert_eq!(list_segments(tmp.path()).unwrap().len(), 4);
        // Flip a payload byte in segment 1.
        let p = tmp.path().join("00000001");
        let mut b = fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x40;
        fs::write(&p, b).unwrap();
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies, vec![vec![0u8; 30]]);
        assert_eq!(o.corruptions, 1);
        assert_eq!(o.last_segment, Some((1, 0)));
        assert_eq!(list_segments(tmp.path()).unwrap().len(), 2);
    }

    #[test]
    fn zeroed_tail_and_garbage_type_are_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("00000000");
        let mut b = framed(b"ok");
        let good = b.len() as u64;
        b.extend_from_slice(&[0u8; 64]);
        fs::write(&p, &b).unwrap();
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies.len(), 1);
        assert_eq!(o.last_segment, Some((0, good)));
        // A valid checksum over an unknown type is still cut.
        let mut b = framed(b"ok");
        let mut bad = framed(b"zz");
        bad[8] = 9;
        let crc = record::checksum(9, &bad[HEADER_LEN..]);
        bad[4..8].copy_from_slice(&crc.to_le_bytes());
        b.extend_from_slice(&bad);
        fs::write(&p, &b).unwrap();
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies.len(), 1);
        assert_eq!(o.corruptions, 1);
    }

    #[test]
    fn rejected_body_cuts_like_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = open(tmp.path(), None, 1 << 20);
        for body in [b"good", b"bad!", b"good"] {
            wal.lock().write(&framed(body)).unwrap();
        }
        drop(wal);
        let mut seen = 0;
        let o = replay(tmp.path(), |_, b| {
            seen += 1;
            if b == b"bad!" { Err("no") } else { Ok(()) }
        })
        .unwrap();
        assert_eq!((seen, o.records, o.corruptions), (2, 1, 1));
        let (bodies, _) = collect(tmp.path());
        assert_eq!(bodies, vec![b"good".to_vec()]);
    }

    #[test]
    fn ignores_foreign_files_and_empty_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("checkpoint.tmp"), b"x").unwrap();
        fs::write(tmp.path().join("123"), b"x").unwrap();
        let (bodies, o) = collect(tmp.path());
        assert!(bodies.is_empty());
        assert_eq!(o.last_segment, None);
    }

    #[test]
    fn replay_starts_at_the_newest_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let wal = open(tmp.path(), None, 1 << 20);
        wal.lock().write(&framed(b"covered")).unwrap();
        assert_eq!(wal.lock().cut().unwrap(), 0);
        let mut cw = checkpoint::CheckpointWriter::create(tmp.path(), 0, 1 << 20).unwrap();
        cw.write(&framed(b"from checkpoint")).unwrap();
        cw.finish().unwrap();
        wal.lock().write(&framed(b"after")).unwrap();
        drop(wal);
        // Segment 0 is still there, as after a crash before the deletion.
        assert!(tmp.path().join("00000000").exists());
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies, vec![b"from checkpoint".to_vec(), b"after".to_vec()]);
        assert_eq!((o.checkpoint, o.records), (Some(0), 2));
        assert_eq!(o.last_segment.map(|l| l.0), Some(1));
        assert!(!tmp.path().join("00000000").exists());
        // With nothing after the checkpoint, writing starts on the segment after it.
        fs::remove_file(tmp.path().join("00000001")).unwrap();
        let (bodies, o) = collect(tmp.path());
        assert_eq!(bodies.len(), 1);
        assert_eq!(o.last_segment, Some((1, 0)));
    }

    #[test]
    fn background_fsync_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let metrics = Arc::new(WalMetrics::default());
        let wal = Wal::open(
            tmp.path(),
            None,
            1 << 20,
            Duration::from_millis(5),
            metrics.clone(),
        )
        .unwrap();
        wal.lock().write(&framed(b"x")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while metrics.fsync_count.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(metrics.fsync_count.load(Ordering::Relaxed) >= 1);
        wal.close().unwrap();
    }
}
