//! The `chunks/` directory of a block: numbered segment files (`000001`, ...) holding
//! chunks (packed or XOR raw chunks, or the aggregate chunks of downsampled blocks) back
//! to back, each with its length and encoding byte, and every few KiB a checksum record
//! covering the bytes since the previous one (segments of version 1, written before,
//! have a CRC32 per chunk instead, and stay readable). Owns the segment writer, the
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
/// Version 1: a CRC32 after every chunk; a shared-timestamps reference is the byte
/// offset of the chunk holding them.
const VERSION_1: u8 = 1;
/// Version 2: checksum records every [`CHECKSUM_SPAN`] bytes; a shared-timestamps
/// reference is the ordinal of the chunk holding them among the segment's packed
/// chunks with timestamps of their own.
const VERSION_2: u8 = 2;
/// Version 3 (what cairn writes): as version 2, with packed chunks that share
/// timestamps in the short form (no sample count of their own, see
/// `packed::share_timestamps`), which a reader of version 2 would reject.
const VERSION_3: u8 = 3;
/// The encoding byte of a checksum record (versions 2 and 3): its 4 data bytes are the CRC32
/// of the segment's bytes from the end of the previous checksum record (from the start
/// of the file for the first) to this record's length field.
pub const ENC_CHECKSUM: u8 = 0;
/// The encoding byte of an XOR chunk (Prometheus's `EncXOR`).
pub const ENC_XOR: u8 = 1;
/// The encoding byte of a packed chunk (cairn's own, `chunkenc::packed`): what blocks
/// hold since that encoding exists; its timestamps may be those of an earlier packed
/// chunk of the same segment.
pub const ENC_PACKED: u8 = 2;
/// The encoding byte of an aggregate chunk (see `aggr.rs`); Thanos marks its aggregate
/// chunks with 0xff too, though the bytes behind it are cairn's own.
pub const ENC_AGGR: u8 = 0xff;
/// A segment is closed once it reaches this size (Prometheus uses 512 MiB too).
pub const SEGMENT_MAX: u64 = 512 << 20;
/// A checksum record follows once this many bytes went unchecked. A CRC32 catches any
/// error burst of up to 32 bits (a flipped byte, a torn sector's edge) however long
/// the span; 16 KiB keeps its cost near 0.04% where a CRC per chunk of a 2 h block
/// cost about 2% of the block (Prometheus checksums every chunk).
pub const CHECKSUM_SPAN: u64 = 16 << 10;
/// Bytes of a checksum record: length 4 (one byte), encoding, CRC32.
const CHECKSUM_RECORD: u64 = 6;

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
    file: Option<OpenSegment>,
    scratch: Vec<u8>,
}

/// The segment being written.
struct OpenSegment {
    w: BufWriter<File>,
    len: u64,
    /// CRC32 of the bytes since the last checksum record, and how many.
    crc: crc32fast::Hasher,
    unchecked: u64,
    /// Packed chunks with timestamps of their own written so far.
    owners: u32,
}

impl OpenSegment {
    fn put(&mut self, b: &[u8]) -> Result<(), BlockError> {
        self.w.write_all(b)?;
        self.crc.update(b);
        self.len += b.len() as u64;
        self.unchecked += b.len() as u64;
        Ok(())
    }

    fn checksum(&mut self) -> Result<(), BlockError> {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.w.write_all(&[4, ENC_CHECKSUM])?;
        self.w.write_all(&crc.to_be_bytes())?;
        self.len += CHECKSUM_RECORD;
        self.unchecked = 0;
        Ok(())
    }
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

    /// The bytes a chunk of `len` data bytes may add to a segment, the checksum
    /// records it may cause included.
    fn need(len: usize) -> u64 {
        (10 + 1 + len) as u64 + 2 * CHECKSUM_RECORD
    }

    /// Appends one chunk of encoding `enc` and returns its ref.
    pub fn write_enc(&mut self, enc: u8, data: &[u8]) -> Result<u64, BlockError> {
        if enc == ENC_CHECKSUM {
            return Err(BlockError::Corrupt(
                "chunk with the checksum encoding".into(),
            ));
        }
        if self.segment_for(data.len()) != self.seq {
            self.cut()?;
        }
        let seq = self.seq;
        let Some(f) = self.file.as_mut() else {
            return Err(BlockError::Corrupt("chunk segment not open".into()));
        };
        let offset = u32::try_from(f.len)
            .map_err(|_| BlockError::Corrupt("chunk segment over 4 GiB".into()))?;
        self.scratch.clear();
        put_uvarint(&mut self.scratch, data.len() as u64);
        self.scratch.push(enc);
        f.put(&self.scratch)?;
        f.put(data)?;
        if enc == ENC_PACKED && packed::shared_timestamps(data).is_none() {
            f.owners += 1;
        }
        if f.unchecked >= CHECKSUM_SPAN {
            f.checksum()?;
        }
        Ok(chunk_ref(seq, offset))
    }

    /// The packed chunks with timestamps of their own written to the current segment
    /// so far: after writing one, its ordinal (what a chunk sharing its timestamps
    /// names) is this minus one.
    pub fn owners(&self) -> u32 {
        self.file.as_ref().map_or(0, |f| f.owners)
    }

    /// The segment the next chunk of `len` data bytes would go to: chunks may name only
    /// chunks of their own segment.
    pub fn segment_for(&self, len: usize) -> u32 {
        match &self.file {
            Some(f) if f.len + Self::need(len) <= self.max || f.len <= HEADER_LEN as u64 => {
                self.seq
            }
            _ => self.seq + 1,
        }
    }

    fn cut(&mut self) -> Result<(), BlockError> {
        self.finish_segment()?;
        self.seq += 1;
        let w = BufWriter::with_capacity(1 << 20, File::create(segment_path(&self.dir, self.seq))?);
        let mut f = OpenSegment {
            w,
            len: 0,
            crc: crc32fast::Hasher::new(),
            unchecked: 0,
            owners: 0,
        };
        f.put(&MAGIC.to_be_bytes())?;
        f.put(&[VERSION_3, 0, 0, 0])?;
        self.file = Some(f);
        Ok(())
    }

    fn finish_segment(&mut self) -> Result<(), BlockError> {
        if let Some(mut f) = self.file.take() {
            if f.unchecked > 0 {
                f.checksum()?;
            }
            let file = f.w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the last segment.
    pub fn finish(mut self) -> Result<(), BlockError> {
        self.finish_segment()
    }
}

/// The mapped segments of one block, every chunk's checksum verified at open.
pub struct ChunkReader {
    segments: Vec<Mmap>,
    /// Per segment of version 2 or 3, the offsets of its packed chunks with timestamps of
    /// their own, which shared-timestamps references number; `None` for version 1,
    /// whose references are offsets.
    owners: Vec<Option<Box<[u32]>>>,
}

impl ChunkReader {
    /// Maps and verifies `dir/000001...` (consecutive numbers from 1).
    pub fn open(dir: &Path) -> Result<Self, BlockError> {
        let mut segments = Vec::new();
        let mut owners = Vec::new();
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
            let checked = check_segment(&map)
                .map_err(|why| BlockError::Corrupt(format!("{}: {why}", path.display())))?;
            owners.push(checked.owners);
            segments.push(map);
        }
        Ok(ChunkReader { segments, owners })
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
                    Some(r) => match self
                        .owner_offset(seg, r)
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

    /// The offset of the chunk that shared-timestamps reference `r` of segment `seg`
    /// (0-based) names.
    #[inline]
    fn owner_offset(&self, seg: u32, r: u64) -> Option<u32> {
        match self.owners.get(seg as usize)? {
            Some(owners) => owners.get(usize::try_from(r).ok()?).copied(),
            None => u32::try_from(r).ok(),
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

/// What verifying a segment found.
struct CheckedSegment {
    chunks: usize,
    /// Versions 2 and 3: offsets of the packed chunks with timestamps of their own.
    owners: Option<Box<[u32]>>,
}

/// Checks a segment's header and every checksum; returns the number of chunks, or
/// where it broke.
pub fn verify_segment(d: &[u8]) -> Result<usize, String> {
    check_segment(d).map(|c| c.chunks)
}

fn check_segment(d: &[u8]) -> Result<CheckedSegment, String> {
    if d.len() < HEADER_LEN || d[..4] != MAGIC.to_be_bytes() {
        return Err("bad segment header".into());
    }
    let version = d[4];
    if !matches!(version, VERSION_1 | VERSION_2 | VERSION_3) || d[5..8] != [0, 0, 0] {
        return Err(format!("unknown segment version {version}"));
    }
    // Versions 2 and 3 frame records alike (checksum records, owner ordinals).
    let v2 = version != VERSION_1;
    let mut pos = HEADER_LEN;
    let mut n = 0;
    // Where the bytes not yet covered by a checksum record start (versions 2 and 3).
    let mut mark = 0;
    // Offsets of the packed chunks with timestamps of their own: the ones a later
    // packed chunk may name.
    let mut owners: Vec<u32> = Vec::new();
    while pos < d.len() {
        let at = pos;
        let len = get_uvarint(d, &mut pos).ok_or(format!("bad chunk length at {at}"))? as usize;
        let trailer = if v2 { 0 } else { 4 };
        let end = pos
            .checked_add(1 + len)
            .filter(|&e| e + trailer <= d.len())
            .ok_or(format!("chunk at {at} runs past the end of the segment"))?;
        if !v2 {
            let want = u32::from_be_bytes([d[end], d[end + 1], d[end + 2], d[end + 3]]);
            if crc32fast::hash(&d[pos..end]) != want {
                return Err(format!("chunk at {at}: checksum mismatch"));
            }
        }
        let data = &d[pos + 1..end];
        match d[pos] {
            ENC_CHECKSUM if v2 => {
                let want = <[u8; 4]>::try_from(data)
                    .map_err(|_| format!("checksum record at {at}: length {len}"))?;
                if crc32fast::hash(&d[mark..at]) != u32::from_be_bytes(want) {
                    return Err(format!("checksum mismatch in bytes {mark}..{at}"));
                }
                mark = end;
                pos = end;
                continue;
            }
            ENC_XOR => {}
            ENC_PACKED => match packed::shared_timestamps(data) {
                None => owners.push(u32::try_from(at).map_err(|_| "segment over 4 GiB")?),
                Some(r) if v2 && r < owners.len() as u64 => {}
                Some(r)
                    if !v2 && u32::try_from(r).is_ok_and(|r| owners.binary_search(&r).is_ok()) => {}
                Some(r) => {
                    return Err(format!(
                        "chunk at {at}: timestamps of {r}, not an earlier packed chunk"
                    ));
                }
            },
            ENC_AGGR if super::aggr::verify(data) => {}
            ENC_AGGR => return Err(format!("chunk at {at}: malformed aggregate chunk")),
            enc => return Err(format!("chunk at {at}: unknown encoding {enc}")),
        }
        pos = end + trailer;
        n += 1;
    }
    if v2 && mark != d.len() {
        return Err(format!("bytes {mark}.. not covered by a checksum"));
    }
    Ok(CheckedSegment {
        chunks: n,
        owners: v2.then(|| owners.into_boxed_slice()),
    })
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

    #[test]
    fn checksum_records_cover_every_byte_of_a_long_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(tmp.path(), SEGMENT_MAX);
        // Enough chunks for several checksum records.
        for i in 0..600u32 {
            w.write(&vec![i as u8; 100 + (i % 7) as usize]).unwrap();
        }
        w.finish().unwrap();
        let good = std::fs::read(segment_path(tmp.path(), 1)).unwrap();
        assert!(good.len() as u64 > 2 * CHECKSUM_SPAN);
        assert_eq!(verify_segment(&good), Ok(600));
        // Every record costs its length and encoding byte; checksums a few bytes.
        let framing = good.len() - 8 - (0..600).map(|i| 100 + i % 7).sum::<usize>();
        assert!(framing < 600 * 2 + 5 * 6, "{framing}");
        for i in (0..good.len())
            .step_by(97)
            .chain([good.len() - 1, good.len() - 6])
        {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(verify_segment(&bad).is_err(), "flip at {i} went unnoticed");
        }
        // Trailing bytes past the last checksum record fail too.
        let mut long = good.clone();
        long.extend_from_slice(&[1, ENC_XOR, 0]);
        assert!(verify_segment(&long).is_err());
    }

    /// A version 1 segment as cairn wrote it before: a CRC32 after every chunk, and
    /// shared timestamps in the long form named by the owner's offset.
    #[test]
    fn version_1_segments_stay_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 1000 + i % 3,
                v: (i * 2) as f64,
            })
            .collect();
        let mut own = Vec::new();
        let ts = packed::PackedEncoder::new()
            .encode(&samples, &mut own)
            .unwrap();
        // The long form of shared timestamps (count, layout 3, offset 8), as then.
        let mut shared = own[..ts.start].to_vec();
        shared.push(3);
        put_uvarint(&mut shared, 8);
        shared.extend_from_slice(&own[ts.end..]);
        assert_eq!(packed::shared_timestamps(&shared), Some(8));
        let mut seg = MAGIC.to_be_bytes().to_vec();
        seg.extend_from_slice(&[1, 0, 0, 0]);
        let mut refs = Vec::new();
        for data in [&own, &shared] {
            refs.push(chunk_ref(1, seg.len() as u32));
            put_uvarint(&mut seg, data.len() as u64);
            let start = seg.len();
            seg.push(ENC_PACKED);
            seg.extend_from_slice(data);
            let crc = crc32fast::hash(&seg[start..]);
            seg.extend_from_slice(&crc.to_be_bytes());
        }
        std::fs::write(segment_path(tmp.path(), 1), &seg).unwrap();
        let r = ChunkReader::open(tmp.path()).unwrap();
        for rf in refs {
            let mut out = Vec::new();
            assert!(r.decode_ref(rf, &mut out));
            assert_eq!(out, samples);
        }
        let mut bad = seg.clone();
        bad[12] ^= 0x40;
        assert!(verify_segment(&bad).is_err());
    }

    /// A version 2 segment: checksum records, and shared timestamps in the long form
    /// named by the owner's ordinal.
    #[test]
    fn version_2_segments_stay_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 1000 + i % 3,
                v: (i * 3) as f64,
            })
            .collect();
        let mut own = Vec::new();
        let ts = packed::PackedEncoder::new()
            .encode(&samples, &mut own)
            .unwrap();
        let mut shared = own[..ts.start].to_vec();
        shared.push(3);
        put_uvarint(&mut shared, 0);
        shared.extend_from_slice(&own[ts.end..]);
        let mut seg = MAGIC.to_be_bytes().to_vec();
        seg.extend_from_slice(&[VERSION_2, 0, 0, 0]);
        let mut refs = Vec::new();
        for data in [&own, &shared] {
            refs.push(chunk_ref(1, seg.len() as u32));
            put_uvarint(&mut seg, data.len() as u64);
            seg.push(ENC_PACKED);
            seg.extend_from_slice(data);
        }
        let crc = crc32fast::hash(&seg);
        seg.extend_from_slice(&[4, ENC_CHECKSUM]);
        seg.extend_from_slice(&crc.to_be_bytes());
        std::fs::write(segment_path(tmp.path(), 1), &seg).unwrap();
        let r = ChunkReader::open(tmp.path()).unwrap();
        for rf in refs {
            let mut out = Vec::new();
            assert!(r.decode_ref(rf, &mut out));
            assert_eq!(out, samples);
        }
    }
}
