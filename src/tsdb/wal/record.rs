//! WAL record framing and bodies. A record is `length | crc32 | type | snappy payload`
//! (see `docs/format/wal.md`); bodies are series records (ref + labels) and samples
//! records (ref, timestamp, value; refs and timestamps delta-encoded against the previous
//! sample). Encoding appends to caller-owned buffers and decoding fills caller-owned
//! vectors, so neither allocates per sample. Knows nothing about files or the head.

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
}

impl RecordType {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(RecordType::Series),
            2 => Some(RecordType::Samples),
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
