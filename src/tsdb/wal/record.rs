//! WAL record framing and bodies. A record is `length | crc32 | type | snappy payload`
//! (see `docs/format/wal.md`); bodies are series records (ref + labels), samples records
//! (ref, timestamp, value; refs and timestamps delta-encoded against the previous
//! sample), tombstones (deleted intervals), the head's min valid time (logged by a
//! truncation), and chunks (whole XOR chunks, written by checkpoints). Encoding appends
//! to caller-owned buffers and decoding fills caller-owned vectors, so neither allocates
//! per sample. Knows nothing about files or the head.

use crate::tsdb::varint::{get_uvarint, get_varint, put_uvarint, put_varint};

/// Bytes before the payload: length (u32 LE), CRC32 (u32 LE), type (u8).
pub const HEADER_LEN: usize = 9;

/// A decompressed body larger than this is treated as corruption rather than allocated.
pub const MAX_BODY_LEN: usize = 1 << 30;

/// Samples per samples record; a commit larger than this writes several records.
pub const MAX_SAMPLES_PER_RECORD: usize = 1 << 20;

/// Series per series record.
pub const MAX_SERIES_PER_RECORD: usize = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    Series = 1,
    Samples = 2,
    Tombstones = 3,
    MinValidTime = 4,
    Chunks = 5,
}

impl RecordType {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
            3 => Some(RecordType::Tombstones),
            4 => Some(RecordType::MinValidTime),
            5 => Some(RecordType::Chunks),
            _ => None,
        }
    }
}

/// Why a record's body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("record body ends inside a field")]
    Truncated,
    #[error("label name or value is not valid UTF-8")]
    BadUtf8,
    #[error("series ref 0 is reserved")]
    ZeroRef,
    #[error("invalid series: {0}")]
    BadSeries(&'static str),
    #[error("bytes left after the record's value")]
    Trailing,
}

/// The CRC stored in a header: over the type byte and the compressed payload.
pub fn checksum(typ: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[typ]);
    h.update(payload);
    h.finalize()
}

/// Compresses `body` and appends it to `out` as one framed record.
pub fn frame(
    out: &mut Vec<u8>,
    typ: RecordType,
    body: &[u8],
    snappy: &mut snap::raw::Encoder,
) -> Result<(), snap::Error> {
    let start = out.len();
    let max = snap::raw::max_compress_len(body.len());
    out.resize(start + HEADER_LEN + max, 0);
    let n = match snappy.compress(body, &mut out[start + HEADER_LEN..]) {
        Ok(n) => n,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    out.truncate(start + HEADER_LEN + n);
    let crc = checksum(typ as u8, &out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&(n as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out[start + 8] = typ as u8;
    Ok(())
}

/// A parsed record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub crc: u32,
    pub typ: u8,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            len: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            crc: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            typ: b[8],
        }
    }
}

/// One series entry: `uvarint ref, uvarint count, count × (uvarint len, name, uvarint
/// len, value)`. Labels are written in the order given (the head's sorted order).
pub fn encode_series<'a>(
    out: &mut Vec<u8>,
    series_ref: u64,
    labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) {
    put_uvarint(out, series_ref);
    put_uvarint(out, labels.len() as u64);
    for (n, v) in labels {
        put_uvarint(out, n.len() as u64);
        out.extend_from_slice(n.as_bytes());
        put_uvarint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
}

/// One decoded series entry; labels borrow the body.
#[derive(Debug, PartialEq)]
pub struct SeriesEntry<'a> {
    pub series_ref: u64,
    pub labels: Vec<(&'a str, &'a str)>,
}

/// Decodes a whole series record before anything is applied, so a malformed record
/// changes nothing.
pub fn decode_series(body: &[u8]) -> Result<Vec<SeriesEntry<'_>>, RecordError> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < body.len() {
        let series_ref = get_uvarint(body, &mut pos).ok_or(RecordError::Truncated)?;
        if series_ref == 0 {
            return Err(RecordError::ZeroRef);
        }
        let n = get_uvarint(body, &mut pos).ok_or(RecordError::Truncated)?;
        // Each label takes at least two bytes: cap the reservation by what is left.
        let mut labels = Vec::with_capacity((n as usize).min((body.len() - pos) / 2));
        for _ in 0..n {
            let name = get_str(body, &mut pos)?;
            let value = get_str(body, &mut pos)?;
            labels.push((name, value));
        }
        out.push(SeriesEntry { series_ref, labels });
    }
    Ok(out)
}

/// Decodes a whole series record like [`decode_series`], but flat: each entry's ref and
/// the range of its labels in `labels` go to `entries`. Two allocations per record
/// instead of one per series. A label string equal to the previous entry's at the same
/// position is not checked for UTF-8 again: the previous entry's `&str` is reused, so a
/// caller can also tell repeats by pointer.
pub fn decode_series_flat<'a>(
    body: &'a [u8],
    entries: &mut Vec<(u64, std::ops::Range<usize>)>,
    labels: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), RecordError> {
    entries.clear();
    labels.clear();
    let mut pos = 0;
    while pos < body.len() {
        let series_ref = get_uvarint(body, &mut pos).ok_or(RecordError::Truncated)?;
        if series_ref == 0 {
            return Err(RecordError::ZeroRef);
        }
        let n = get_uvarint(body, &mut pos).ok_or(RecordError::Truncated)?;
        let start = labels.len();
        let prev = entries.last().map_or(0..0, |(_, r)| r.clone());
        for i in 0..n as usize {
            let before = prev.start.checked_add(i).filter(|j| *j < prev.end);
            let (pn, pv) = before.map_or(("", ""), |j| labels[j]);
            let name = get_str_like(body, &mut pos, pn)?;
            let value = get_str_like(body, &mut pos, pv)?;
            labels.push((name, value));
        }
        entries.push((series_ref, start..labels.len()));
    }
    Ok(())
}

/// [`get_str`], returning `like` itself when the bytes equal it (already checked).
fn get_str_like<'a>(
    body: &'a [u8],
    pos: &mut usize,
    like: &'a str,
) -> Result<&'a str, RecordError> {
    let len = get_uvarint(body, pos).ok_or(RecordError::Truncated)? as usize;
    let end = pos.checked_add(len).ok_or(RecordError::Truncated)?;
    let bytes = body.get(*pos..end).ok_or(RecordError::Truncated)?;
    *pos = end;
    if !like.is_empty() && bytes == like.as_bytes() {
        return Ok(like);
    }
    std::str::from_utf8(bytes).map_err(|_| RecordError::BadUtf8)
}

fn get_str<'a>(body: &'a [u8], pos: &mut usize) -> Result<&'a str, RecordError> {
    let len = get_uvarint(body, pos).ok_or(RecordError::Truncated)? as usize;
    let end = pos.checked_add(len).ok_or(RecordError::Truncated)?;
    let bytes = body.get(*pos..end).ok_or(RecordError::Truncated)?;
    *pos = end;
    std::str::from_utf8(bytes).map_err(|_| RecordError::BadUtf8)
}

/// One sample as logged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    pub series_ref: u64,
    pub t: i64,
    pub v: f64,
}

/// Encodes samples as `varint Δref, varint Δt, 8-byte LE value bits`, each delta against
/// the previous sample (the first against ref 0, t 0). A scrape's samples have
/// consecutive refs and one timestamp, so both deltas usually take one byte.
#[derive(Default)]
pub struct SamplesEncoder {
    prev_ref: u64,
    prev_t: i64,
}

impl SamplesEncoder {
    #[inline]
    pub fn push(&mut self, out: &mut Vec<u8>, series_ref: u64, t: i64, v: f64) {
        put_varint(out, series_ref.wrapping_sub(self.prev_ref) as i64);
        put_varint(out, t.wrapping_sub(self.prev_t));
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        self.prev_ref = series_ref;
        self.prev_t = t;
    }
}

/// Decodes a whole samples record into `out` (cleared first).
pub fn decode_samples(body: &[u8], out: &mut Vec<RefSample>) -> Result<(), RecordError> {
    out.clear();
    let mut pos = 0;
    let (mut r, mut t) = (0u64, 0i64);
    while pos < body.len() {
        let dr = get_varint(body, &mut pos).ok_or(RecordError::Truncated)?;
        let dt = get_varint(body, &mut pos).ok_or(RecordError::Truncated)?;
        let v = body.get(pos..pos + 8).ok_or(RecordError::Truncated)?;
        let mut bits = [0u8; 8];
        bits.copy_from_slice(v);
        pos += 8;
        r = r.wrapping_add(dr as u64);
        t = t.wrapping_add(dt);
        if r == 0 {
            return Err(RecordError::ZeroRef);
        }
        out.push(RefSample {
            series_ref: r,
            t,
            v: f64::from_bits(u64::from_le_bytes(bits)),
        });
    }
    Ok(())
}

/// One deleted interval of a series, as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// One tombstone entry: `uvarint ref, varint mint, varint maxt` (both inclusive).
pub fn encode_tombstone(out: &mut Vec<u8>, t: &Tombstone) {
    put_uvarint(out, t.series_ref);
    put_varint(out, t.mint);
    put_varint(out, t.maxt);
}

/// Decodes a whole tombstones record into `out` (cleared first).
pub fn decode_tombstones(body: &[u8], out: &mut Vec<Tombstone>) -> Result<(), RecordError> {
    out.clear();
    let mut pos = 0;
    while pos < body.len() {
        let series_ref = get_uvarint(body, &mut pos).ok_or(RecordError::Truncated)?;
        if series_ref == 0 {
            return Err(RecordError::ZeroRef);
        }
        let mint = get_varint(body, &mut pos).ok_or(RecordError::Truncated)?;
        let maxt = get_varint(body, &mut pos).ok_or(RecordError::Truncated)?;
        out.push(Tombstone {
            series_ref,
            mint,
            maxt,
        });
    }
    Ok(())
}

/// The body of a min valid time record: one `varint`.
pub fn encode_min_valid_time(out: &mut Vec<u8>, mint: i64) {
    put_varint(out, mint);
}

pub fn decode_min_valid_time(body: &[u8]) -> Result<i64, RecordError> {
    let mut pos = 0;
    let t = get_varint(body, &mut pos).ok_or(RecordError::Truncated)?;
    if pos != body.len() {
        return Err(RecordError::Trailing);
    }
    Ok(t)
}

/// Appends a framed min valid time record to `out`.
pub fn frame_min_valid_time(out: &mut Vec<u8>, mint: i64) -> Result<(), snap::Error> {
    let mut body = Vec::with_capacity(10);
    encode_min_valid_time(&mut body, mint);
    frame(
        out,
        RecordType::MinValidTime,
        &body,
        &mut snap::raw::Encoder::new(),
    )
}

/// One chunk of a chunks entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry<'a> {
    pub mint: i64,
    pub maxt: i64,
    /// A whole XOR chunk, its 2-byte sample count included.
    pub data: &'a [u8],
}

/// Starts a chunks entry: `uvarint ref, u8 flags, uvarint n`; `n` chunks follow, each
/// written by [`encode_chunk`]. Flag bit 0: the last chunk is the series' open chunk.
pub fn encode_chunks_header(out: &mut Vec<u8>, series_ref: u64, last_open: bool, n: usize) {
    put_uvarint(out, series_ref);
    out.push(u8::from(last_open));
    put_uvarint(out, n as u64);
}

/// One chunk: `varint mint, varint maxt − mint, uvarint len, len bytes`.
pub fn encode_chunk(out: &mut Vec<u8>, mint: i64, maxt: i64, data: &[u8]) {
    put_varint(out, mint);
    put_uvarint(out, maxt.wrapping_sub(mint) as u64);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Walks the entries of a chunks record, borrowing chunk bytes from the body.
pub struct ChunksDecoder<'a> {
    body: &'a [u8],
    pos: usize,
}

/// One series' entry in a chunks record.
pub struct ChunksEntry<'a> {
    pub series_ref: u64,
    pub last_open: bool,
    pub chunks: Vec<ChunkEntry<'a>>,
}

impl<'a> ChunksDecoder<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        ChunksDecoder { body, pos: 0 }
    }

    /// The offset of the next entry in the body.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next entry's chunks into `chunks` (cleared first), with its ref and flag;
    /// `None` at the end of the body.
    pub fn next_into(
        &mut self,
        chunks: &mut Vec<ChunkEntry<'a>>,
    ) -> Option<Result<(u64, bool), RecordError>> {
        if self.pos >= self.body.len() {
            return None;
        }
        Some(self.read_entry(chunks))
    }

    fn read_entry(&mut self, chunks: &mut Vec<ChunkEntry<'a>>) -> Result<(u64, bool), RecordError> {
        chunks.clear();
        let (body, pos) = (self.body, &mut self.pos);
        let series_ref = get_uvarint(body, pos).ok_or(RecordError::Truncated)?;
        if series_ref == 0 {
            return Err(RecordError::ZeroRef);
        }
        let flags = *body.get(*pos).ok_or(RecordError::Truncated)?;
        *pos += 1;
        let n = get_uvarint(body, pos).ok_or(RecordError::Truncated)?;
        for _ in 0..n {
            let mint = get_varint(body, pos).ok_or(RecordError::Truncated)?;
            let span = get_uvarint(body, pos).ok_or(RecordError::Truncated)?;
            let len = get_uvarint(body, pos).ok_or(RecordError::Truncated)? as usize;
            let end = pos.checked_add(len).ok_or(RecordError::Truncated)?;
            let data = body.get(*pos..end).ok_or(RecordError::Truncated)?;
            *pos = end;
            chunks.push(ChunkEntry {
                mint,
                maxt: mint.wrapping_add(span as i64),
                data,
            });
        }
        Ok((series_ref, flags & 1 == 1))
    }
}

/// Decodes a whole chunks record, for checking it before anything is applied.
pub fn decode_chunks(body: &[u8]) -> Result<Vec<ChunksEntry<'_>>, RecordError> {
    let mut dec = ChunksDecoder::new(body);
    let mut out = Vec::new();
    let mut chunks = Vec::new();
    while let Some(e) = dec.next_into(&mut chunks) {
        let (series_ref, last_open) = e?;
        out.push(ChunksEntry {
            series_ref,
            last_open,
            chunks: std::mem::take(&mut chunks),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_trip_compactly() {
        let mut body = Vec::new();
        let mut enc = SamplesEncoder::default();
        let input = [
            RefSample {
                series_ref: 7,
                t: 1_700_000_000_000,
                v: 1.5,
            },
            RefSample {
                series_ref: 8,
                t: 1_700_000_000_000,
                v: f64::NAN,
            },
            RefSample {
                series_ref: 3,
                t: 1_699_999_999_000,
                v: -0.0,
            },
            RefSample {
                series_ref: u64::from(u32::MAX),
                t: i64::MIN,
                v: f64::INFINITY,
            },
        ];
        for s in &input {
            enc.push(&mut body, s.series_ref, s.t, s.v);
        }
        let mut out = Vec::new();
        decode_samples(&body, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        for (a, b) in out.iter().zip(&input) {
            assert_eq!(
                (a.series_ref, a.t, a.v.to_bits()),
                (b.series_ref, b.t, b.v.to_bits())
            );
        }
        // Second sample: Δref 1 and Δt 0 are one byte each.
        let mut one = Vec::new();
        let mut e = SamplesEncoder {
            prev_ref: 7,
            prev_t: 5,
        };
        e.push(&mut one, 8, 5, 0.0);
        assert_eq!(one.len(), 10);
    }

    #[test]
    fn samples_reject_truncation_and_zero_ref() {
        let mut body = Vec::new();
        SamplesEncoder::default().push(&mut body, 1, 2, 3.0);
        let mut out = Vec::new();
        for cut in 1..body.len() {
            assert_eq!(
                decode_samples(&body[..cut], &mut out),
                Err(RecordError::Truncated)
            );
        }
        let mut zero = Vec::new();
        SamplesEncoder::default().push(&mut zero, 0, 2, 3.0);
        assert_eq!(decode_samples(&zero, &mut out), Err(RecordError::ZeroRef));
        decode_samples(&[], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn series_round_trip_with_odd_strings() {
        let mut body = Vec::new();
        let a = [("__name__", "up"), ("job", "a\"b\n\u{1F600}")];
        encode_series(&mut body, 1, a.iter().copied());
        let first = body.len();
        encode_series(&mut body, 300, [("x", "")].into_iter());
        let got = decode_series(&body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].series_ref, 1);
        assert_eq!(got[0].labels, a);
        assert_eq!(got[1].labels, [("x", "")]);
        for cut in (1..body.len()).filter(|c| *c != first) {
            assert!(decode_series(&body[..cut]).is_err(), "cut {cut}");
        }
        assert_eq!(decode_series(&body[..first]).unwrap().len(), 1);
        let (mut entries, mut labels) = (Vec::new(), Vec::new());
        decode_series_flat(&body, &mut entries, &mut labels).unwrap();
        assert_eq!(entries, [(1, 0..2), (300, 2..3)]);
        assert_eq!(&labels[..2], &a);
        assert!(decode_series_flat(&body[..first + 1], &mut entries, &mut labels).is_err());
        // A repeated string is the previous entry's, by pointer; a bad one still fails.
        let mut body = Vec::new();
        encode_series(&mut body, 1, [("job", "a\u{e9}")].into_iter());
        encode_series(&mut body, 2, [("job", "a\u{e9}"), ("x", "y")].into_iter());
        decode_series_flat(&body, &mut entries, &mut labels).unwrap();
        assert_eq!(labels[0], labels[1]);
        assert!(std::ptr::eq(labels[0].1, labels[1].1));
        let mut bad = Vec::new();
        encode_series(&mut bad, 1, [("job", "ok")].into_iter());
        bad.extend_from_slice(&[2, 1, 3, b'j', b'o', b'b', 1, 0xff]);
        assert_eq!(
            decode_series_flat(&bad, &mut entries, &mut labels),
            Err(RecordError::BadUtf8)
        );
    }

    #[test]
    fn series_reject_bad_utf8_and_zero_ref() {
        let body = [1u8, 1, 1, 0xff, 1, b'a'];
        assert_eq!(decode_series(&body), Err(RecordError::BadUtf8));
        assert_eq!(decode_series(&[0, 0]), Err(RecordError::ZeroRef));
        // A huge label count with no bytes behind it fails without a huge allocation.
        assert_eq!(
            decode_series(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(RecordError::Truncated)
        );
    }

    #[test]
    fn tombstones_and_min_valid_time_round_trip() {
        let ts = [
            Tombstone {
                series_ref: 5,
                mint: -10,
                maxt: 20,
            },
            Tombstone {
                series_ref: 1,
                mint: i64::MIN,
                maxt: i64::MAX,
            },
        ];
        let mut body = Vec::new();
        for t in &ts {
            encode_tombstone(&mut body, t);
        }
        let mut out = Vec::new();
        decode_tombstones(&body, &mut out).unwrap();
        assert_eq!(out, ts);
        for cut in 1..body.len() {
            let r = decode_tombstones(&body[..cut], &mut out);
            assert!(r.is_err() || cut == 3, "cut {cut}");
        }
        assert_eq!(
            decode_tombstones(&[0, 0, 0], &mut out),
            Err(RecordError::ZeroRef)
        );
        let mut b = Vec::new();
        encode_min_valid_time(&mut b, -7_200_000);
        assert_eq!(decode_min_valid_time(&b), Ok(-7_200_000));
        assert_eq!(decode_min_valid_time(&[]), Err(RecordError::Truncated));
        b.push(0);
        assert_eq!(decode_min_valid_time(&b), Err(RecordError::Trailing));
    }

    #[test]
    fn chunks_round_trip() {
        let mut body = Vec::new();
        encode_chunks_header(&mut body, 3, true, 2);
        encode_chunk(&mut body, 100, 200, b"abc");
        encode_chunk(&mut body, 300, 300, b"");
        encode_chunks_header(&mut body, 9, false, 0);
        let got = decode_chunks(&body).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].series_ref, got[0].last_open), (3, true));
        assert_eq!(
            got[0].chunks,
            [
                ChunkEntry {
                    mint: 100,
                    maxt: 200,
                    data: b"abc"
                },
                ChunkEntry {
                    mint: 300,
                    maxt: 300,
                    data: b""
                }
            ]
        );
        assert_eq!(
            (got[1].series_ref, got[1].last_open, got[1].chunks.len()),
            (9, false, 0)
        );
        let whole = body.len();
        for cut in 1..whole - 3 {
            assert!(decode_chunks(&body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn frame_layout() {
        let mut out = vec![0xaa];
        let mut snappy = snap::raw::Encoder::new();
        frame(
            &mut out,
            RecordType::Samples,
            b"hello hello hello",
            &mut snappy,
        )
        .unwrap();
        let h = Header::parse(out[1..1 + HEADER_LEN].try_into().unwrap());
        assert_eq!(h.typ, 2);
        assert_eq!(h.len as usize, out.len() - 1 - HEADER_LEN);
        let payload = &out[1 + HEADER_LEN..];
        assert_eq!(h.crc, checksum(2, payload));
        let body = snap::raw::Decoder::new().decompress_vec(payload).unwrap();
        assert_eq!(body, b"hello hello hello");
        assert_eq!(out[0], 0xaa);
    }
}
