//! A zero-copy reader of the remote write 1.0 `WriteRequest` wire format: it walks the
//! snappy-decoded bytes once and records, into reusable vectors, where each series' labels
//! lie (byte spans of the buffer) and its samples, allocating nothing once the vectors
//! have grown. The receiver's hot path; `prompb.rs`'s prost structs stay the reference
//! shapes (and the tests check that both readings agree).
//!
//! Label strings are not checked for UTF-8 here: the receiver checks them only for series
//! its cache does not know, since a cached series' bytes were checked when first seen.
//! Exemplar labels and metadata strings are checked here (prost refused bad UTF-8 in
//! them too). Native histograms are only checked to be well-formed protobuf messages,
//! not field by field, since nothing of them is stored.

/// Why the bytes are not a `WriteRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unexpected end of message")]
    Truncated,
    #[error("invalid varint")]
    Varint,
    #[error("invalid tag value: 0")]
    ZeroTag,
    #[error("invalid wire type {0} for field {1}")]
    WireType(u8, u32),
    #[error("unbalanced or too deeply nested groups")]
    Group,
    #[error("invalid string value: data is not UTF-8 encoded")]
    Utf8,
}

/// A byte range of the decoded buffer (u32 is enough: bodies are capped far below 4 GiB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
}

/// One label as it came: name and value bytes, not yet checked.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawLabel {
    pub name: Span,
    pub value: Span,
}

/// One `TimeSeries`: ranges into [`Decoded::labels`] and [`Decoded::samples`], and the
/// bytes of all its `Label` fields when they are adjacent on the wire (every sender
/// writes them so), which identify the series for the receiver's cache.
#[derive(Clone, Copy, Debug)]
pub struct RawSeries {
    pub labels: (u32, u32),
    pub samples: (u32, u32),
    pub key: Option<Span>,
}

/// A decoded request, reused across requests: `decode` clears it first.
#[derive(Default)]
pub struct Decoded {
    pub series: Vec<RawSeries>,
    pub labels: Vec<RawLabel>,
    /// (timestamp in ms, value), in request order.
    pub samples: Vec<(i64, f64)>,
    pub exemplars: usize,
    pub histograms: usize,
    pub metadata: usize,
}

impl Decoded {
    pub fn series_labels(&self, s: &RawSeries) -> &[RawLabel] {
        &self.labels[s.labels.0 as usize..s.labels.1 as usize]
    }

    pub fn series_samples(&self, s: &RawSeries) -> &[(i64, f64)] {
        &self.samples[s.samples.0 as usize..s.samples.1 as usize]
    }

    /// Reads a whole `WriteRequest`; on error the contents are unspecified.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(), WireError> {
        self.series.clear();
        self.labels.clear();
        self.samples.clear();
        self.exemplars = 0;
        self.histograms = 0;
        self.metadata = 0;
        let mut r = Reader::new(buf, 0, buf.len());
        while let Some((field, wire)) = r.key()? {
            match field {
                1 => {
                    let (s, e) = r.len_field(wire, field)?;
                    self.time_series(buf, s, e)?;
                }
                3 => {
                    let (s, e) = r.len_field(wire, field)?;
                    metadata(buf, s, e)?;
                    self.metadata += 1;
                }
                _ => r.skip(wire, field)?,
            }
        }
        Ok(())
    }

    fn time_series(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), WireError> {
        let first_label = self.labels.len() as u32;
        let first_sample = self.samples.len() as u32;
        let mut key: Option<Span> = None;
        let mut contiguous = true;
        let mut r = Reader::new(buf, start, end);
        loop {
            let field_start = r.pos;
            let Some((field, wire)) = r.key()? else { break };
            match field {
                1 => {
                    let (s, e) = r.len_field(wire, field)?;
                    self.labels.push(label(buf, s, e)?);
                    match &mut key {
                        None => key = Some(Span::new(field_start, e)),
                        Some(k) if k.end as usize == field_start => k.end = e as u32,
                        Some(_) => contiguous = false,
                    }
                }
                2 => {
                    let (s, e) = r.len_field(wire, field)?;
                    self.samples.push(sample(buf, s, e)?);
                }
                3 => {
                    let (s, e) = r.len_field(wire, field)?;
                    exemplar(buf, s, e)?;
                    self.exemplars += 1;
                }
                4 => {
                    let (s, e) = r.len_field(wire, field)?;
                    well_formed(buf, s, e)?;
                    self.histograms += 1;
                }
                _ => r.skip(wire, field)?,
            }
        }
        self.series.push(RawSeries {
            labels: (first_label, self.labels.len() as u32),
            samples: (first_sample, self.samples.len() as u32),
            key: if contiguous { key } else { None },
        });
        Ok(())
    }
}

/// `Label { string name = 1; string value = 2; }`; a repeated field keeps the last, as
/// protobuf says.
fn label(buf: &[u8], start: usize, end: usize) -> Result<RawLabel, WireError> {
    let mut l = RawLabel {
        name: Span::new(start, start),
        value: Span::new(start, start),
    };
    let mut r = Reader::new(buf, start, end);
    while let Some((field, wire)) = r.key()? {
        match field {
            1 => {
                let (s, e) = r.len_field(wire, field)?;
                l.name = Span::new(s, e);
            }
            2 => {
                let (s, e) = r.len_field(wire, field)?;
                l.value = Span::new(s, e);
            }
            _ => r.skip(wire, field)?,
        }
    }
    Ok(l)
}

/// `Sample { double value = 1; int64 timestamp = 2; }`.
fn sample(buf: &[u8], start: usize, end: usize) -> Result<(i64, f64), WireError> {
    let (mut t, mut v) = (0i64, 0f64);
    let mut r = Reader::new(buf, start, end);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 1) => v = f64::from_bits(r.fixed64()?),
            (2, 0) => t = r.varint()? as i64,
            (1 | 2, _) => return Err(WireError::WireType(wire, field)),
            _ => r.skip(wire, field)?,
        }
    }
    Ok((t, v))
}

/// `Exemplar { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }`:
/// checked, then dropped.
fn exemplar(buf: &[u8], start: usize, end: usize) -> Result<(), WireError> {
    let mut r = Reader::new(buf, start, end);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, _) => {
                let (s, e) = r.len_field(wire, field)?;
                let l = label(buf, s, e)?;
                utf8(l.name.of(buf))?;
                utf8(l.value.of(buf))?;
            }
            (2, 1) => {
                r.fixed64()?;
            }
            (3, 0) => {
                r.varint()?;
            }
            (2 | 3, _) => return Err(WireError::WireType(wire, field)),
            _ => r.skip(wire, field)?,
        }
    }
    Ok(())
}

/// `MetricMetadata { type = 1; metric_family_name = 2; help = 4; unit = 5; }`: checked,
/// then dropped.
fn metadata(buf: &[u8], start: usize, end: usize) -> Result<(), WireError> {
    let mut r = Reader::new(buf, start, end);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 0) => {
                r.varint()?;
            }
            (2 | 4 | 5, _) => {
                let (s, e) = r.len_field(wire, field)?;
                utf8(&buf[s..e])?;
            }
            (1, _) => return Err(WireError::WireType(wire, field)),
            _ => r.skip(wire, field)?,
        }
    }
    Ok(())
}

/// Checks that `buf[start..end]` is a sequence of well-formed fields.
fn well_formed(buf: &[u8], start: usize, end: usize) -> Result<(), WireError> {
    let mut r = Reader::new(buf, start, end);
    while let Some((field, wire)) = r.key()? {
        r.skip(wire, field)?;
    }
    Ok(())
}

pub fn utf8(b: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(b).map_err(|_| WireError::Utf8)
}

/// Groups nested deeper than this are refused (prost's recursion limit is 100 too).
const MAX_GROUP_DEPTH: usize = 100;

/// A cursor over one message's bytes, `buf[pos..end]`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], pos: usize, end: usize) -> Self {
        Reader { buf, pos, end }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf[..self.end].get(self.pos) else {
                return Err(WireError::Truncated);
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte may only carry the top bit.
                if i == 9 && b > 1 {
                    return Err(WireError::Varint);
                }
                return Ok(v);
            }
        }
        Err(WireError::Varint)
    }

    /// The next field's number and wire type, `None` at the end of the message.
    #[inline]
    fn key(&mut self) -> Result<Option<(u32, u8)>, WireError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return Err(WireError::Varint);
        }
        let field = (k >> 3) as u32;
        if field == 0 {
            return Err(WireError::ZeroTag);
        }
        Ok(Some((field, (k & 7) as u8)))
    }

    /// A length-delimited field's bytes as `(start, end)`.
    #[inline]
    fn len_field(&mut self, wire: u8, field: u32) -> Result<(usize, usize), WireError> {
        if wire != 2 {
            return Err(WireError::WireType(wire, field));
        }
        let len = self.varint()?;
        let start = self.pos;
        if len > (self.end - start) as u64 {
            return Err(WireError::Truncated);
        }
        self.pos = start + len as usize;
        Ok((start, self.pos))
    }

    #[inline]
    fn fixed(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.end - self.pos < n {
            return Err(WireError::Truncated);
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    #[inline]
    fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.fixed(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips one field's value; a group is skipped to its matching end.
    fn skip(&mut self, wire: u8, field: u32) -> Result<(), WireError> {
        let mut open: Vec<u32> = Vec::new();
        let (mut wire, mut field) = (wire, field);
        loop {
            match wire {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.fixed(8)?;
                }
                2 => {
                    self.len_field(wire, field)?;
                }
                5 => {
                    self.fixed(4)?;
                }
                3 => {
                    if open.len() >= MAX_GROUP_DEPTH {
                        return Err(WireError::Group);
                    }
                    open.push(field);
                }
                4 => {
                    if open.pop() != Some(field) {
                        return Err(WireError::Group);
                    }
                }
                _ => return Err(WireError::WireType(wire, field)),
            }
            if open.is_empty() {
                return Ok(());
            }
            match self.key()? {
                Some((f, w)) => (field, wire) = (f, w),
                None => return Err(WireError::Truncated),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::prompb::{self, WriteRequest};
    use prost::Message;

    fn pl(n: &str, v: &str) -> prompb::Label {
        prompb::Label {
            name: n.into(),
            value: v.into(),
        }
    }

    fn sample_request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![
                prompb::TimeSeries {
                    labels: vec![pl("__name__", "up"), pl("job", "é\"x")],
                    samples: vec![
                        prompb::Sample {
                            value: 1.5,
                            timestamp: -5,
                        },
                        prompb::Sample {
                            value: f64::INFINITY,
                            timestamp: i64::MAX,
                        },
                    ],
                    exemplars: vec![prompb::Exemplar {
                        labels: vec![pl("trace_id", "t")],
                        value: 1.0,
                        timestamp: 3,
                    }],
                    histograms: vec![prompb::Histogram {
                        positive_deltas: vec![1, -1],
                        ..Default::default()
                    }],
                },
                prompb::TimeSeries::default(),
                prompb::TimeSeries {
                    labels: vec![pl("a", "")],
                    samples: vec![prompb::Sample::default()],
                    ..Default::default()
                },
            ],
            metadata: vec![prompb::MetricMetadata {
                help: "h".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn agrees_with_prost() {
        let req = sample_request();
        let bytes = req.encode_to_vec();
        let mut d = Decoded::default();
        d.decode(&bytes).unwrap();
        assert_eq!(d.series.len(), req.timeseries.len());
        assert_eq!((d.exemplars, d.histograms, d.metadata), (1, 1, 1));
        for (s, want) in d.series.iter().zip(&req.timeseries) {
            let labels: Vec<(&[u8], &[u8])> = d
                .series_labels(s)
                .iter()
                .map(|l| (l.name.of(&bytes), l.value.of(&bytes)))
                .collect();
            let want_labels: Vec<(&[u8], &[u8])> = want
                .labels
                .iter()
                .map(|l| (l.name.as_bytes(), l.value.as_bytes()))
                .collect();
            assert_eq!(labels, want_labels);
            let samples: Vec<(i64, f64)> = want
                .samples
                .iter()
                .map(|s| (s.timestamp, s.value))
                .collect();
            assert_eq!(d.series_samples(s), &samples[..]);
            // The key is exactly the encoded label fields.
            let mut key = Vec::new();
            for l in &want.labels {
                prost::encoding::message::encode(1, l, &mut key);
            }
            assert_eq!(
                s.key.map(|k| k.of(&bytes)),
                (!key.is_empty()).then_some(&key[..])
            );
        }
        // Decoding again into the same scratch gives the same result.
        let n = d.samples.len();
        d.decode(&bytes).unwrap();
        assert_eq!(d.samples.len(), n);
    }

    #[test]
    fn broken_bytes_are_refused_like_prost_refuses_them() {
        let bytes = sample_request().encode_to_vec();
        let mut d = Decoded::default();
        // Every truncation of a valid request either still decodes (cut between two
        // top-level fields) or fails, and prost agrees on which.
        for cut in 0..bytes.len() {
            let ours = d.decode(&bytes[..cut]).is_ok();
            let prost = WriteRequest::decode(&bytes[..cut]).is_ok();
            assert_eq!(ours, prost, "cut at {cut}");
        }
        for bad in [
            &[0xff; 16][..],
            &[0x00],
            &[0x0a, 0x05],
            &[0x08, 0x01],                      // field 1 as a varint
            &[0x0a, 5, 0x0a, 3, 0x0a, 1, 0xff], // label value not UTF-8? name: checked later
            &[0x0b, 0x0c],                      // group of field 1 where a message goes
            &[0x1b, 0x08, 0x01, 0x24],          // group end of another field
            &[0x0a, 0x03, 0x12, 0x01, 0x08],    // sample: value as varint
            &[0x1a, 0x03, 0x12, 0x01, 0xff],    // metadata name not UTF-8
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
        ] {
            let ours = d.decode(bad);
            let prost = WriteRequest::decode(bad);
            // Label UTF-8 is the receiver's check, not the decoder's.
            if bad == [0x0a, 5, 0x0a, 3, 0x0a, 1, 0xff] {
                assert!(ours.is_ok() && prost.is_err());
                assert!(utf8(d.labels[0].name.of(bad)).is_err());
                continue;
            }
            assert!(ours.is_err(), "{bad:x?}");
            assert!(prost.is_err(), "{bad:x?}");
        }
        // Unknown fields of every wire type, groups included, are skipped like prost does.
        let unknown = [
            0x20, 0x01, // field 4 varint
            0x29, 0, 0, 0, 0, 0, 0, 0, 0, // field 5 fixed64
            0x35, 0, 0, 0, 0, // field 6 fixed32
            0x3a, 0x01, 0x00, // field 7 bytes
            0x43, 0x48, 0x01, 0x4b, 0x4c, 0x44, // group 8 { 9: 1, group 9 {} }
        ];
        assert!(WriteRequest::decode(&unknown[..]).is_ok());
        d.decode(&unknown).unwrap();
        assert!(d.series.is_empty());
    }
}
