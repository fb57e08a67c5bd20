//! The XOR chunk: Prometheus's variant of Facebook's Gorilla encoding. Timestamps are
//! stored as a varint, then a uvarint delta, then delta-of-deltas in four bucket sizes;
//! values as the XOR with the previous value, reusing the previous window of meaningful
//! bits when the new XOR fits in it. Owns the encoder (the open head chunk) and the
//! decoder; never allocates per sample except when the open chunk's buffer grows.

use super::bstream::{BitReader, BitWriter};

/// Bytes reserved for a chunk's first sample: header (2) + varint timestamp (up to 10,
/// 6 for today's millisecond clock) + value (8), rounded so the second sample usually fits.
const FIRST_SAMPLE_RESERVE: usize = 24;

/// The most one sample can add: a 68-bit timestamp delta-of-delta and a 77-bit value.
const MAX_SAMPLE_BYTES: usize = 19;

/// `leading` before any value has been XOR-encoded: forces a full window description.
const NO_WINDOW: u8 = 0xff;

/// Whether `x` fits the `nbits` bucket of the delta-of-delta encoding. Asymmetric on
/// purpose (as in Prometheus): the most negative value is left out because its bit
/// pattern reads back as the most positive one.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

/// The open, growing chunk of a series and the encoder state needed to extend it.
///
/// `bytes()` is always a complete, valid XOR chunk: the 2-byte big-endian sample count
/// is rewritten on every append.
#[derive(Clone, Debug)]
pub struct XorAppender {
    buf: Vec<u8>,
    t: i64,
    v: u64,
    t_delta: u64,
    num: u16,
    leading: u8,
    trailing: u8,
    /// Unused low bits of the last byte.
    free: u8,
}

impl Default for XorAppender {
    fn default() -> Self {
        Self::new()
    }
}

impl XorAppender {
    /// An empty chunk. Allocates nothing until the first append.
    pub fn new() -> Self {
        XorAppender {
            buf: Vec::new(),
            t: 0,
            v: 0,
            t_delta: 0,
            num: 0,
            leading: NO_WINDOW,
            trailing: 0,
            free: 0,
        }
    }

    pub fn num_samples(&self) -> u16 {
        self.num
    }

    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// The chunk's bytes (header included); empty before the first append.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes allocated for the chunk, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The newest sample's timestamp and value bits.
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.num > 0).then_some((self.t, self.v))
    }

    /// The oldest sample's timestamp (decoded from the chunk rather than stored, to keep
    /// every series a word smaller).
    pub fn first_t(&self) -> Option<i64> {
        first_timestamp(&self.buf)
    }

    /// Empties the chunk for reuse, keeping its buffer: the next chunk of an active series
    /// will need about as many bytes as this one did.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.free = 0;
        self.num = 0;
        self.t = 0;
        self.v = 0;
        self.t_delta = 0;
        self.leading = NO_WINDOW;
        self.trailing = 0;
    }

    /// The appender that would have produced `chunk`, ready to extend it: how a chunk
    /// read back from disk becomes a series' open chunk again without re-encoding its
    /// samples. `None` if the chunk does not decode to exactly its bytes.
    pub fn resume(chunk: &[u8]) -> Option<XorAppender> {
        let mut dec = XorDecoder::new(chunk);
        let n = dec.num_samples();
        if n == 0 {
            return (chunk.len() <= 2 && chunk.iter().all(|b| *b == 0)).then(XorAppender::new);
        }
        for _ in 0..n {
            dec.next(chunk)?;
        }
        let bits = dec.r.bit_pos();
        if bits.div_ceil(8) != chunk.len() {
            return None;
        }
        // A decoder that never read a window reports 0/0; the appender's "no window yet"
        // makes the next value describe its window in full, which reads back the same
        // either way.
        let leading = if n < 2 || (dec.leading == 0 && dec.trailing == 0) {
            NO_WINDOW
        } else {
            dec.leading
        };
        let mut buf = Vec::with_capacity(chunk.len() + MAX_SAMPLE_BYTES);
        buf.extend_from_slice(chunk);
        Some(XorAppender {
            buf,
            t: dec.t,
            v: dec.v,
            t_delta: if n < 2 { 0 } else { dec.t_delta },
            num: n,
            leading,
            trailing: dec.trailing,
            free: (chunk.len() * 8 - bits) as u8,
        })
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last timestamp
    /// (the head checks order) and that the chunk holds fewer than `u16::MAX` samples.
    pub fn append(&mut self, t: i64, v: f64) {
        let bits = v.to_bits();
        let len = self.buf.len();
        if self.buf.capacity() - len < MAX_SAMPLE_BYTES {
            // Grow by a quarter rather than doubling: the buffer is reused for every later
            // chunk of the series, so its slack is paid for as long as the series lives.
            let first = if len == 0 { FIRST_SAMPLE_RESERVE } else { 0 };
            self.buf
                .reserve_exact((len / 4).max(MAX_SAMPLE_BYTES).max(first));
        }
        let mut w = BitWriter {
            buf: &mut self.buf,
            free: &mut self.free,
        };
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                w.buf.extend_from_slice(&[0, 0]);
                let zigzag = ((t << 1) ^ (t >> 63)) as u64;
                write_uvarint(&mut w, zigzag);
                w.write_bits(bits, 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                write_uvarint(&mut w, t_delta);
                write_value(&mut w, bits ^ self.v, &mut self.leading, &mut self.trailing);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                // Prometheus widened Gorilla's buckets (seconds) for milliseconds; the
                // prefix and payload of each bucket go out in one write.
                if dod == 0 {
                    w.write_bit(false);
                } else if bit_range(dod, 14) {
                    w.write_bits((0b10 << 14) | (dod as u64 & 0x3fff), 16);
                } else if bit_range(dod, 17) {
                    w.write_bits((0b110 << 17) | (dod as u64 & 0x1_ffff), 20);
                } else if bit_range(dod, 20) {
                    w.write_bits((0b1110 << 20) | (dod as u64 & 0xf_ffff), 24);
                } else {
                    w.write_bits(0b1111, 4);
                    w.write_bits(dod as u64, 64);
                }
                write_value(&mut w, bits ^ self.v, &mut self.leading, &mut self.trailing);
            }
        }
        self.t = t;
        self.v = bits;
        self.t_delta = t_delta;
        self.num += 1;
        self.buf[..2].copy_from_slice(&self.num.to_be_bytes());
    }
}

fn write_uvarint(w: &mut BitWriter<'_>, mut x: u64) {
    while x >= 0x80 {
        w.write_bits(u64::from(x as u8 | 0x80), 8);
        x >>= 7;
    }
    w.write_bits(x, 8);
}

/// Writes `delta`, the XOR of a value with the previous one, updating the window.
fn write_value(
    w: &mut BitWriter<'_>,
    delta: u64,
    window_leading: &mut u8,
    window_trailing: &mut u8,
) {
    if delta == 0 {
        w.write_bit(false);
        return;
    }
    // Five bits hold the leading-zero count, so it is clamped to 31.
    let leading = (delta.leading_zeros() as u8).min(31);
    let trailing = delta.trailing_zeros() as u8;
    if *window_leading != NO_WINDOW && leading >= *window_leading && trailing >= *window_trailing {
        let sig = 64 - u32::from(*window_leading) - u32::from(*window_trailing);
        w.write_bits(0b10, 2);
        w.write_bits(delta >> *window_trailing, sig);
    } else {
        *window_leading = leading;
        *window_trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit 6 bits: written as 0 and read back as 64.
        let header = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
        w.write_bits(header, 13);
        w.write_bits(delta >> trailing, sig);
    }
}

/// The first sample's timestamp of a chunk, read from its header without decoding values.
pub fn first_timestamp(chunk: &[u8]) -> Option<i64> {
    if chunk.len() < 3 || chunk[..2] == [0, 0] {
        return None;
    }
    let mut r = BitReader::at_byte(2);
    read_varint(&mut r, chunk)
}

fn read_uvarint(r: &mut BitReader, d: &[u8]) -> Option<u64> {
    let mut x = 0u64;
    let mut shift = 0u32;
    for i in 0..10 {
        let b = r.read(d, 8)?;
        if b < 0x80 {
            if i == 9 && b > 1 {
                return None;
            }
            return Some(x | (b << shift));
        }
        x |= (b & 0x7f) << shift;
        shift += 7;
    }
    None
}

fn read_varint(r: &mut BitReader, d: &[u8]) -> Option<i64> {
    let ux = read_uvarint(r, d)?;
    Some(((ux >> 1) as i64) ^ -((ux & 1) as i64))
}

/// Decoder state for one XOR chunk. It borrows nothing: every call is handed the chunk's
/// bytes, so an iterator can own both the bytes (an `Arc<[u8]>`) and this state.
/// A malformed chunk ends iteration early instead of panicking.
#[derive(Clone, Debug)]
pub struct XorDecoder {
    r: BitReader,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl XorDecoder {
    pub fn new(chunk: &[u8]) -> Self {
        let total = match chunk {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        XorDecoder {
            r: BitReader::at_byte(2),
            total,
            read: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
        }
    }

    pub fn num_samples(&self) -> u16 {
        self.total
    }

    /// The next sample, or `None` at the end (or at the first malformed bit).
    #[inline(always)]
    pub fn next(&mut self, chunk: &[u8]) -> Option<(i64, f64)> {
        if self.read >= self.total {
            return None;
        }
        let ok = match self.read {
            0 => self.read_first(chunk),
            1 => self.read_second(chunk),
            _ => self.read_later(chunk),
        };
        if ok.is_none() {
            // Stop for good rather than yield garbage after a bad bit.
            self.read = self.total;
            return None;
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }

    fn read_first(&mut self, d: &[u8]) -> Option<()> {
        self.t = read_varint(&mut self.r, d)?;
        self.v = self.r.read_wide(d, 64)?;
        Some(())
    }

    fn read_second(&mut self, d: &[u8]) -> Option<()> {
        self.t_delta = read_uvarint(&mut self.r, d)?;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value(d)
    }

    #[inline(always)]
    fn read_later(&mut self, d: &[u8]) -> Option<()> {
        let p = self.r.peek_padded(d, 4);
        let (prefix, size) = if p & 0b1000 == 0 {
            (1, 0)
        } else if p & 0b0100 == 0 {
            (2, 14)
        } else if p & 0b0010 == 0 {
            (3, 17)
        } else if p & 0b0001 == 0 {
            (4, 20)
        } else {
            (4, 64)
        };
        self.r.skip(d, prefix)?;
        let dod = match size {
            0 => 0,
            64 => self.r.read_wide(d, 64)? as i64,
            size => {
                let mut b = self.r.read(d, size)?;
                // Negative values come back as large unsigned ones.
                if b > 1 << (size - 1) {
                    b = b.wrapping_sub(1 << size);
                }
                b as i64
            }
        };
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_value(d)
    }

    #[inline(always)]
    fn read_value(&mut self, d: &[u8]) -> Option<()> {
        let p = self.r.peek_padded(d, 2);
        if p & 0b10 == 0 {
            return self.r.skip(d, 1);
        }
        self.r.skip(d, 2)?;
        if p == 0b11 {
            let lm = self.r.read(d, 11)?;
            let leading = (lm >> 6) as u8;
            let sig = match (lm & 63) as u8 {
                0 => 64,
                s => s,
            };
            self.trailing = 64u8.checked_sub(leading)?.checked_sub(sig)?;
            self.leading = leading;
        }
        let sig = 64u32
            .checked_sub(u32::from(self.leading) + u32::from(self.trailing))
            .filter(|s| *s > 0)?;
        let bits = self.r.read_wide(d, sig)?;
        self.v ^= bits << self.trailing;
        Some(())
    }
}

/// Iterates a chunk held as a slice: for tests, benchmarks and one-shot reads.
pub struct XorIterator<'a> {
    data: &'a [u8],
    dec: XorDecoder,
}

impl<'a> XorIterator<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        XorIterator {
            data,
            dec: XorDecoder::new(data),
        }
    }
}

impl Iterator for XorIterator<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        self.dec.next(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn encode(samples: &[(i64, f64)]) -> XorAppender {
        let mut a = XorAppender::new();
        for &(t, v) in samples {
            a.append(t, v);
        }
        a
    }

    fn decode_bits(chunk: &[u8]) -> Vec<(i64, u64)> {
        XorIterator::new(chunk)
            .map(|(t, v)| (t, v.to_bits()))
            .collect()
    }

    fn round_trips(samples: &[(i64, f64)]) {
        let a = encode(samples);
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(decode_bits(a.bytes()), want);
    }

    #[test]
    fn resume_continues_a_chunk_as_if_never_stopped() {
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                (
                    1_700_000_000_000 + i * 15_000 + (i * 37 % 11),
                    (i * i % 17) as f64 * 0.5,
                )
            })
            .collect();
        for cut in [1, 2, 3, 7, 60, 119] {
            let whole = encode(&samples);
            let mut resumed = XorAppender::resume(encode(&samples[..cut]).bytes()).unwrap();
            for &(t, v) in &samples[cut..] {
                resumed.append(t, v);
            }
            assert_eq!(
                decode_bits(resumed.bytes()),
                decode_bits(whole.bytes()),
                "cut {cut}"
            );
            assert_eq!(resumed.last(), whole.last());
            assert_eq!(resumed.first_t(), whole.first_t());
        }
        // Bit-identical when a value window was in use.
        let s = [(1, 1.0), (2, 3.0), (3, 7.0), (4, 15.0)];
        let mut r = XorAppender::resume(encode(&s[..3]).bytes()).unwrap();
        r.append(4, 15.0);
        assert_eq!(r.bytes(), encode(&s).bytes());
        assert!(XorAppender::resume(&[]).unwrap().is_empty());
        let mut long = encode(&samples[..5]).bytes().to_vec();
        long.push(0);
        assert!(XorAppender::resume(&long).is_none(), "trailing byte");
        assert!(
            XorAppender::resume(&long[..long.len() - 3]).is_none(),
            "cut short"
        );
    }

    #[test]
    fn exact_bytes_of_a_hand_computed_chunk() {
        // t=1000 v=1.0: varint(1000) = zigzag 2000 = d0 0f, then 3ff0000000000000.
        // t=2000 v=1.0: uvarint(1000) = e8 07, value unchanged: bit 0.
        // t=3000 v=2.0: dod 0: bit 0; xor 7ff0000000000000 (1 leading, 52 trailing):
        //   1 1 00001 001011 11111111111  -> with the two 0 bits: 30 97 ff c0.
        let a = encode(&[(1000, 1.0), (2000, 1.0), (3000, 2.0)]);
        assert_eq!(
            a.bytes(),
            &[
                0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x30, 0x97, 0xff,
                0xc0
            ]
        );
    }

    #[test]
    fn exact_bytes_with_window_reuse_and_dod_buckets() {
        // t=0 v=0: 00 00(zigzag 0)=00, value 0 -> 8 zero bytes.
        // t=10 v=0: uvarint 10 = 0a, value bit 0.
        // t=30 v=0: dod 10 -> 10 + 14 bits 00000000001010, value bit 0.
        // t=31 v=0: dod -19 -> 10 + 14 bits of -19 = 11111111101101, value bit 0.
        // Bits after 0a: 0 | 10 00000000001010 0 | 10 11111111101101 0
        //  = 0100 0000 0000 0101 0010 1111 1111 1011 0100 -> 40 05 2f fb 40
        let a = encode(&[(0, 0.0), (10, 0.0), (30, 0.0), (31, 0.0)]);
        assert_eq!(
            a.bytes(),
            &[
                0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0x40, 0x05, 0x2f, 0xfb, 0x40
            ]
        );
        round_trips(&[(0, 0.0), (10, 0.0), (30, 0.0), (31, 0.0)]);
    }

    #[test]
    fn window_is_reused_when_xor_fits() {
        // xor(1.0, 3.0) = 7ff8000000000000: 1 leading, 51 trailing, 12 significant bits.
        // Sample 2: 11 00001 001100 + 12 ones. Sample 3 has the same xor, so it reuses the
        // window: dod 0, then 10 + 12 ones.
        let a = encode(&[(1, 1.0), (2, 3.0), (3, 1.0)]);
        assert_eq!(
            a.bytes(),
            &[
                0x00, 0x03, 0x02, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x01, 0xc2, 0x67, 0xff, 0xaf, 0xff
            ]
        );
    }

    #[test]
    fn special_values() {
        let vals = [
            f64::NAN,
            f64::from_bits(STALE_NAN_BITS),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            5e-324,
            1.0,
            f64::from_bits(STALE_NAN_BITS),
            -0.0,
        ];
        let samples: Vec<(i64, f64)> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000, v))
            .collect();
        round_trips(&samples);
        let got = decode_bits(encode(&samples).bytes());
        assert_eq!(got[1].1, STALE_NAN_BITS);
        assert_eq!(got[4].1, (-0.0f64).to_bits());
    }

    #[test]
    fn irregular_and_extreme_timestamps() {
        round_trips(&[
            (-5, 1.0),
            (0, 2.0),
            (1, 3.0),
            (8193, 4.0),
            (8194, 4.0),
            (8194 + 65_537, 5.0),
            (8194 + 65_537 + 524_289, 6.0),
            (1 << 40, 7.0),
            ((1 << 40) + 1, 8.0),
            (i64::MAX - 10, 9.0),
            (i64::MAX, 10.0),
        ]);
        round_trips(&[
            (i64::MIN, 1.0),
            (i64::MIN + 1, 1.0),
            (0, 1.0),
            (i64::MAX, 0.5),
        ]);
        // Exact bucket edges, both signs.
        let mut t = 1_000_000i64;
        let mut d = 100i64;
        let mut s = vec![(t, 0.0)];
        for dod in [8192, -8191, 65_536, -65_535, 524_288, -524_287, 8193, -8192] {
            d += dod;
            t += d;
            s.push((t, 0.0));
        }
        round_trips(&s);
    }

    #[test]
    fn first_timestamp_and_empty_chunks() {
        assert_eq!(first_timestamp(&[]), None);
        assert_eq!(first_timestamp(&[0, 0]), None);
        let a = encode(&[(-1234, 1.0), (5, 2.0)]);
        assert_eq!(a.first_t(), Some(-1234));
        assert_eq!(XorIterator::new(&[]).count(), 0);
        assert_eq!(XorIterator::new(&[0, 0]).count(), 0);
    }

    #[test]
    fn truncated_chunk_stops_without_panicking() {
        let a = encode(&[(1, 1.0), (2, 2.5), (4, -3.25), (8, 7.0), (9, 7.5)]);
        let full = a.bytes();
        for cut in 0..full.len() {
            let n = XorIterator::new(&full[..cut]).count();
            assert!(n <= 5);
        }
        // A header claiming more samples than the bits hold ends early too.
        let mut lying = full.to_vec();
        lying[1] = 200;
        assert!(XorIterator::new(&lying).count() < 200);
    }

    #[test]
    fn reset_keeps_capacity_and_starts_fresh() {
        let mut a = encode(&[(1, 1.0), (2, 2.0), (3, 3.0)]);
        let cap = a.capacity();
        a.reset();
        assert!(a.is_empty());
        assert_eq!(a.capacity(), cap);
        a.append(10, 4.0);
        assert_eq!(decode_bits(a.bytes()), vec![(10, 4.0f64.to_bits())]);
    }

    /// The bytes `rusty-chunkenc` (an independent port of Prometheus's chunkenc, tested
    /// against Go) writes for the same samples.
    fn oracle(samples: &[(i64, f64)]) -> Vec<u8> {
        let xs = samples
            .iter()
            .map(|&(timestamp, value)| rusty_chunkenc::XORSample { timestamp, value })
            .collect();
        let mut out = Vec::new();
        rusty_chunkenc::xor::XORChunk::new(xs)
            .write(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn matches_the_oracle_on_hand_picked_series() {
        let series: [&[(i64, f64)]; 5] = [
            &[(1000, 1.0), (2000, 1.0), (3000, 2.0)],
            &[(0, 0.0), (10, 0.0), (30, 0.0), (31, 0.0)],
            &[
                (1_700_000_000_000, 0.1),
                (1_700_000_015_000, 0.2),
                (1_700_000_030_001, 0.3),
                (1_700_000_045_000, 1e300),
            ],
            &[
                (5, f64::NAN),
                (6, f64::INFINITY),
                (7, -0.0),
                (8, f64::from_bits(STALE_NAN_BITS)),
                (9, f64::MIN_POSITIVE),
            ],
            &[(-100, 3.0), (1 << 40, -3.0), ((1 << 40) + 7, 12345.678)],
        ];
        for s in series {
            assert_eq!(encode(s).bytes(), oracle(s).as_slice(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn byte_for_byte_like_the_oracle(
            start in -1_000_000_000i64..2_000_000_000_000,
            steps in proptest::collection::vec((1i64..200_000, any::<u64>(), 0u8..4), 1..121),
        ) {
            let mut t = start;
            let mut prev = 1.0f64;
            let mut samples = Vec::new();
            for (dt, bits, kind) in steps {
                let v = match kind {
                    0 => prev,
                    1 => prev * 1.5 + 1.0,
                    2 => (bits % 100_000) as f64 / 100.0,
                    _ => f64::from_bits(bits),
                };
                samples.push((t, v));
                prev = v;
                t += dt;
            }
            let ours = encode(&samples).bytes().to_vec();
            prop_assert_eq!(ours, oracle(&samples));
        }

        #[test]
        fn random_series_round_trip(
            start in any::<i32>(),
            steps in proptest::collection::vec((1i64..100_000, any::<u64>(), 0u8..4), 1..300),
        ) {
            let mut t = i64::from(start);
            let mut prev = 0.0f64;
            let mut samples = Vec::new();
            for (dt, bits, kind) in steps {
                // Mix repeated values, nearby values and arbitrary bit patterns.
                let v = match kind {
                    0 => prev,
                    1 => prev + 1.0,
                    2 => (bits % 1000) as f64 / 8.0,
                    _ => f64::from_bits(bits),
                };
                samples.push((t, v));
                prev = v;
                t += dt;
            }
            let a = encode(&samples);
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            prop_assert_eq!(decode_bits(a.bytes()), want);
        }
    }
}
