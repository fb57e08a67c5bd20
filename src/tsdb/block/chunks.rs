//! The `chunks/` directory of a block: numbered segment files (`000001`, ...) holding
//! chunks (packed or XOR raw chunks, or the aggregate chunks of downsampled blocks) back
//! to back, each with its encoding byte and its own CRC32. Owns the segment writer, the
//! mmap reader and decoding a raw chunk whichever its encoding (a packed chunk may take
//! its timestamps from an earlier chunk of its segment); knows nothing about series or
//! the index. `docs/format/block.md` has the bytes.

use super::BlockError;
use crate::model::Sample;
use crate::tsdb::chunkenc::{XorDecoder, packed};
use crate::tsdb::varint::{get_uvarint, put_uvarint};
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// First four bytes of every segment file.
pub const MAGIC: u32 = 0xCA12_C4C5;
/// Segment header: magic, version, three zero bytes.
pub const HEADER_LEN: usize = 8;
const VERSION: u8 = 1;
/// The encoding byte of an XOR chunk (Prometheus's `EncXOR`).
pub const ENC_XOR: u8 = 1;
/// The encoding byte of a packed chunk (cairn's own, `chunkenc::packed`): what blocks
/// hold since that encoding exists; its timestamps may be those of an earlier packed
/// chunk of the same segment, named by that chunk's offset.
pub const ENC_PACKED: u8 = 2;
/// The encoding byte of an aggregate chunk (see `aggr.rs`); Thanos marks its aggregate
/// chunks with 0xff too, though the bytes behind it are cairn's own.
pub const ENC_AGGR: u8 = 0xff;
/// A segment is closed once it reaches this size (Prometheus uses 512 MiB too).
pub const SEGMENT_MAX: u64 = 512 << 20;

/// A chunk's address: segment number (1-based) in the high 32 bits, byte offset of the
/// chunk's length field in the low 32.
pub fn chunk_ref(segment: u32, offset: u32) -> u64 {
    (u64::from(segment) << 32) | u64::from(offset)
}

pub fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:06}"))
}

/// Writes chunks into `dir`, cutting segments at `max` bytes.
pub struct ChunkWriter {
    dir: PathBuf,
    max: u64,
    seq: u32,
    file: Option<(BufWriter<File>, u64)>,
    scratch: Vec<u8>,
}

impl ChunkWriter {
    pub fn new(dir: &Path, max: u64) -> Self {
        ChunkWriter {
            dir: dir.to_path_buf(),
            max,
            seq: 0,
            file: None,
            scratch: Vec::with_capacity(16),
        }
    }

    /// Appends one XOR chunk and returns its ref.
    pub fn write(&mut self, data: &[u8]) -> Result<u64, BlockError> {
        self.write_enc(ENC_XOR, data)
    }

    /// Appends one chunk of encoding `enc` and returns its ref.
    pub fn write_enc(&mut self, enc: u8, data: &[u8]) -> Result<u64, BlockError> {
        self.scratch.clear();
        put_uvarint(&mut self.scratch, data.len() as u64);
        let need = (self.scratch.len() + 1 + data.len() + 4) as u64;
        let full = self
            .file
            .as_ref()
            .is_some_and(|(_, len)| *len + need > self.max && *len > HEADER_LEN as u64);
        if self.file.is_none() || full {
            self.cut()?;
        }
        let seq = self.seq;
        let Some((w, len)) = self.file.as_mut() else {
            return Err(BlockError::Corrupt("chunk segment not open".into()));
        };
        let offset = u32::try_from(*len)
            .map_err(|_| BlockError::Corrupt("chunk segment over 4 GiB".into()))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[enc]);
        crc.update(data);
        w.write_all(&self.scratch)?;
        w.write_all(&[enc])?;
        w.write_all(data)?;
        w.write_all(&crc.finalize().to_be_bytes())?;
        *len += need;
        Ok(chunk_ref(seq, offset))
    }

    /// The segment the next chunk of `len` data bytes would go to: chunks may name only
    /// chunks of their own segment.
    pub fn segment_for(&self, len: usize) -> u32 {
        let need = (len + 10 + 1 + 4) as u64;
        match &self.file {
            Some((_, cur)) if *cur + need <= self.max || *cur <= HEADER_LEN as u64 => self.seq,
            _ => self.seq + 1,
        }
    }

    fn cut(&mut self) -> Result<(), BlockError> {
        self.finish_segment()?;
        self.seq += 1;
        let mut w =
            BufWriter::with_capacity(1 << 20, File::create(segment_path(&self.dir, self.seq))?);
        w.write_all(&MAGIC.to_be_bytes())?;
        w.write_all(&[VERSION, 0, 0, 0])?;
        self.file = Some((w, HEADER_LEN as u64));
        Ok(())
    }

    fn finish_segment(&mut self) -> Result<(), BlockError> {
        if let Some((w, _)) = self.file.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the last segment.
    pub fn finish(mut self) -> Result<(), BlockError> {
        self.finish_segment()
    }
}

/// The mapped segments of one block, every chunk's CRC verified at open.
pub struct ChunkReader {
    segments: Vec<Mmap>,
}

impl ChunkReader {
    /// Maps and verifies `dir/000001...` (consecutive numbers from 1).
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let mut segments = Vec::new();
        for n in 1.. {
            let path = segment_path(dir, n);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(e.into()),
            };
            // SAFETY: block files are written once under `<ulid>.tmp`, fsynced and renamed
            // into place; cairn never opens them for writing again. Deleting or
            // renaming (retention, quarantine) leaves an existing mapping intact on Unix,
            // so the mapped bytes cannot change under the reader. The data directory is
            // locked against other cairn processes; outside tools editing a block in
            // place are not supported (as in Prometheus).
            let map = unsafe { Mmap::map(&file)? };
            verify_segment(&map)
                .map_err(|why| BlockError::Corrupt(format!("{}: {why}", path.display())))?;
            segments.push(map);
        }
        Ok(ChunkReader { segments })
    }

    /// The XOR bytes of the chunk at `r`, or `None` if the ref points nowhere valid.
    #[inline]
    pub fn chunk(&self, r: u64) -> Option<&[u8]> {
        let (seg, start, end) = self.locate(r)?;
        Some(self.slice(seg, start, end))
    }

    /// Where the chunk at `r` lies: (segment index, start, end), for [`Self::slice`].
    #[inline]
    pub fn locate(&self, r: u64) -> Option<(u32, u32, u32)> {
        let si = ((r >> 32) as usize).checked_sub(1)?;
        let seg = self.segments.get(si)?;
        let mut pos = (r & 0xffff_ffff) as usize;
        let len = get_uvarint(seg, &mut pos)? as usize;
        let start = pos.checked_add(1)?;
        let end = start.checked_add(len).filter(|&e| e <= seg.len())?;
        Some((si as u32, start as u32, end as u32))
    }

    /// Like [`Self::locate`], with the chunk's encoding byte first.
    #[inline]
    pub fn locate_enc(&self, r: u64) -> Option<(u8, u32, u32, u32)> {
        let (seg, start, end) = self.locate(r)?;
        let enc = *self.segments.get(seg as usize)?.get(start as usize - 1)?;
        Some((enc, seg, start, end))
    }

    /// The encoding and bytes of the chunk at `r`.
    #[inline]
    pub fn chunk_enc(&self, r: u64) -> Option<(u8, &[u8])> {
        let (enc, seg, start, end) = self.locate_enc(r)?;
        Some((enc, self.slice(seg, start, end)))
    }

    /// The bytes [`Self::locate`] found; empty if out of range.
    #[inline]
    pub fn slice(&self, seg: u32, start: u32, end: u32) -> &[u8] {
        self.segments
            .get(seg as usize)
            .and_then(|m| m.get(start as usize..end as usize))
            .unwrap_or(&[])
    }

    /// Appends the samples of the raw chunk at `seg`/`start..end` ([`Self::locate`])
    /// to `out`, whatever its encoding. A malformed XOR chunk gives the samples before
    /// the damage, a malformed packed chunk none; false in both cases.
    pub fn decode(&self, seg: u32, start: u32, end: u32, out: &mut Vec<Sample>) -> bool {
        let data = self.slice(seg, start, end);
        let enc = start
            .checked_sub(1)
            .and_then(|i| self.segments.get(seg as usize)?.get(i as usize).copied());
        match enc {
            Some(ENC_PACKED) => {
                let shared = match packed::shared_timestamps(data) {
                    None => None,
                    Some(off) => match u32::try_from(off)
                        .ok()
                        .and_then(|off| self.locate_enc(chunk_ref(seg + 1, off)))
                    {
                        Some((ENC_PACKED, s, a, b)) if s == seg => Some(self.slice(s, a, b)),
                        _ => return false,
                    },
                };
                packed::decode(data, shared, out).is_some()
            }
            Some(ENC_XOR) => {
                let mut dec = XorDecoder::new(data);
                out.reserve(usize::from(dec.num_samples()));
                let mut n = 0;
                while let Some((t, v)) = dec.next(data) {
                    out.push(Sample { t, v });
                    n += 1;
                }
                n == dec.num_samples()
            }
            _ => false,
        }
    }

    /// Like [`Self::decode`], for the chunk at ref `r`.
    pub fn decode_ref(&self, r: u64, out: &mut Vec<Sample>) -> bool {
        match self.locate(r) {
            Some((seg, start, end)) => self.decode(seg, start, end, out),
            None => false,
        }
    }

    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Bytes mapped, over all segments.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|m| m.len() as u64).sum()
    }
}

/// Checks a segment's header and every chunk's CRC; the error says where it broke.
pub fn verify_segment(d: &[u8]) -> Result<usize, String> {
    if d.len() < HEADER_LEN || d[..4] != MAGIC.to_be_bytes() {
        return Err("bad segment header".into());
    }
    if d[4] != VERSION || d[5..8] != [0, 0, 0] {
        return Err(format!("unknown segment version {}", d[4]));
    }
    let mut pos = HEADER_LEN;
    let mut n = 0;
    // Offsets of the packed chunks with timestamps of their own: the ones a later
    // packed chunk may name.
    let mut owners: Vec<usize> = Vec::new();
    while pos < d.len() {
        let at = pos;
        let len = get_uvarint(d, &mut pos).ok_or(format!("bad chunk length at {at}"))? as usize;
        let end = pos
            .checked_add(1 + len)
            .filter(|&e| e + 4 <= d.len())
            .ok_or(format!("chunk at {at} runs past the end of the segment"))?;
        let want = u32::from_be_bytes([d[end], d[end + 1], d[end + 2], d[end + 3]]);
        if crc32fast::hash(&d[pos..end]) != want {
            return Err(format!("chunk at {at}: checksum mismatch"));
        }
        match d[pos] {
            ENC_XOR => {}
            ENC_PACKED => match packed::shared_timestamps(&d[pos + 1..end]) {
                None => owners.push(at),
                Some(off) if owners.binary_search(&(off as usize)).is_ok() => {}
                Some(off) => {
                    return Err(format!(
                        "chunk at {at}: timestamps of {off}, not an earlier packed chunk"
                    ));
                }
            },
            ENC_AGGR if super::aggr::verify(&d[pos + 1..end]) => {}
            ENC_AGGR => return Err(format!("chunk at {at}: malformed aggregate chunk")),
            enc => return Err(format!("chunk at {at}: unknown encoding {enc}")),
        }
        pos = end + 4;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_cuts_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(tmp.path(), 64);
        let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 20 + i as usize]).collect();
        let refs: Vec<u64> = chunks.iter().map(|c| w.write(c).unwrap()).collect();
        w.finish().unwrap();
        assert_eq!(refs[0], chunk_ref(1, 8));
        let r = ChunkReader::open(tmp.path()).unwrap();
        assert!(r.num_segments() >= 5, "{}", r.num_segments());
        for (c, rf) in chunks.iter().zip(&refs) {
            assert_eq!(r.chunk(*rf), Some(&c[..]));
        }
        assert_eq!(r.chunk(chunk_ref(99, 8)), None);
        assert_eq!(r.chunk(chunk_ref(1, 1 << 30)), None);
        assert_eq!(r.chunk(0), None);
    }

    #[test]
    fn flipped_byte_fails_verification() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(tmp.path(), SEGMENT_MAX);
        w.write(&[1, 2, 3, 4]).unwrap();
        w.write(&[5, 6, 7]).unwrap();
        w.finish().unwrap();
        let p = segment_path(tmp.path(), 1);
        let good = std::fs::read(&p).unwrap();
        assert_eq!(verify_segment(&good), Ok(2));
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert!(verify_segment(&bad).is_err(), "flip at {i} went unnoticed");
        }
        assert!(verify_segment(&good[..good.len() - 1]).is_err());
    }
}
