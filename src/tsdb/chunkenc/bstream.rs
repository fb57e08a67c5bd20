//! Bit streams for the XOR encoding: a writer that appends bits most significant first to a
//! growing byte vector, and a reader that walks the same bits in a borrowed slice. Neither
//! knows what the bits mean.

/// A mask of the `n` low bits (`n` in `0..=64`).
#[inline]
fn low_bits(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Appends bits to a byte vector, most significant bit first, as Go's `bstream` does: the
/// unused bits of the last byte are its low bits and stay zero. It borrows its state so
/// the owner can pack the free-bit count next to its other small fields.
pub struct BitWriter<'a> {
    pub buf: &'a mut Vec<u8>,
    /// Unused low bits in the last byte of `buf` (0 when byte aligned).
    pub free: &'a mut u8,
}

impl BitWriter<'_> {
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        if *self.free == 0 {
            self.buf.push(0);
            *self.free = 8;
        }
        *self.free -= 1;
        if bit && let Some(last) = self.buf.last_mut() {
            *last |= 1 << *self.free;
        }
    }

    /// Writes the `n` low bits of `v` (`n` in `1..=64`), most significant first.
    #[inline]
    pub fn write_bits(&mut self, v: u64, n: u32) {
        debug_assert!((1..=64).contains(&n));
        let mut n = n;
        let v = v & low_bits(n);
        if *self.free > 0 {
            let take = n.min(u32::from(*self.free));
            let chunk = (v >> (n - take)) & low_bits(take);
            *self.free -= take as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= (chunk << *self.free) as u8;
            }
            n -= take;
        }
        while n >= 8 {
            n -= 8;
            self.buf.push((v >> n) as u8);
        }
        if n > 0 {
            self.buf.push(((v & low_bits(n)) << (8 - n)) as u8);
            *self.free = (8 - n) as u8;
        }
    }
}

/// A cursor over a bit stream held elsewhere: the reader owns no bytes, so an iterator
/// can keep it next to the chunk it walks without borrowing. Bits are buffered 57 to 63
/// at a time from one unaligned 8-byte load; every read is bounds-checked and returns
/// `None` past the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct BitReader {
    /// The next byte of the slice not yet (fully) in `buf`.
    next: usize,
    /// Unread bits, most significant first. Bits below the `avail` valid ones are either
    /// zero or copies of the bytes that follow, so refills can OR over them.
    buf: u64,
    avail: u32,
}

impl BitReader {
    pub fn at_byte(byte: usize) -> Self {
        BitReader {
            next: byte,
            buf: 0,
            avail: 0,
        }
    }

    /// Tops the buffer up to at least 57 bits, or to the end of the data.
    #[inline(always)]
    fn refill(&mut self, d: &[u8]) {
        debug_assert!(self.avail <= 56);
        if let Some(w) = d.get(self.next..self.next + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.buf |= u64::from_be_bytes(b) >> self.avail;
            let bytes = (63 - self.avail) >> 3;
            self.next += bytes as usize;
            self.avail += bytes * 8;
        } else {
            while self.avail <= 56 {
                let Some(&b) = d.get(self.next) else { break };
                self.buf |= u64::from(b) << (56 - self.avail);
                self.avail += 8;
                self.next += 1;
            }
        }
    }

    /// Reads `n` bits (`1..=56`) as the low bits of the result.
    #[inline(always)]
    pub fn read(&mut self, d: &[u8], n: u32) -> Option<u64> {
        debug_assert!((1..=56).contains(&n));
        if self.avail < n {
            self.refill(d);
            if self.avail < n {
                return None;
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Some(v)
    }

    /// Reads up to 64 bits.
    #[inline(always)]
    pub fn read_wide(&mut self, d: &[u8], n: u32) -> Option<u64> {
        if n <= 56 {
            return self.read(d, n);
        }
        let hi = self.read(d, n - 32)?;
        let lo = self.read(d, 32)?;
        Some((hi << 32) | lo)
    }

    /// The next `n` bits (`1..=8`) without consuming them; bits past the end read as
    /// zero.
    #[inline(always)]
    pub fn peek_padded(&mut self, d: &[u8], n: u32) -> u8 {
        debug_assert!((1..=8).contains(&n));
        if self.avail < n {
            self.refill(d);
        }
        // Near the end only the `avail` top bits are data; keep those, pad with zeros.
        let valid = match self.avail {
            0 => 0,
            a if a < n => self.buf & !(u64::MAX >> a),
            _ => self.buf,
        };
        (valid >> (64 - n)) as u8
    }

    /// Bits consumed from the start of the data.
    pub fn bit_pos(&self) -> usize {
        self.next * 8 - self.avail as usize
    }

    /// Consumes `n` bits (`1..=56`) if that many remain.
    #[inline(always)]
    pub fn skip(&mut self, d: &[u8], n: u32) -> Option<()> {
        self.read(d, n).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_msb_first_across_bytes() {
        let (mut buf, mut free) = (Vec::new(), 0u8);
        let mut w = BitWriter {
            buf: &mut buf,
            free: &mut free,
        };
        w.write_bit(true);
        w.write_bits(0b011, 3);
        w.write_bits(0xABC, 12);
        w.write_bit(false);
        w.write_bit(true);
        // 1 011 1010 1011 1100 0 1 -> 1011_1010 1011_1100 01(000000)
        assert_eq!(buf, [0b1011_1010, 0b1011_1100, 0b0100_0000]);
        assert_eq!(free, 6);
    }

    #[test]
    fn sixty_four_bits_unaligned() {
        let (mut data, mut free) = (Vec::new(), 0u8);
        let mut w = BitWriter {
            buf: &mut data,
            free: &mut free,
        };
        w.write_bits(1, 3);
        w.write_bits(u64::MAX - 5, 64);
        let mut r = BitReader::default();
        assert_eq!(r.read(&data, 3), Some(1));
        assert_eq!(r.read_wide(&data, 64), Some(u64::MAX - 5));
        // Only the 5 padding bits remain.
        assert_eq!(r.read(&data, 5), Some(0));
        assert_eq!(r.read(&data, 1), None);
    }

    #[test]
    fn reader_matches_a_bit_by_bit_reference() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let bit = |i: usize| u64::from((data[i / 8] >> (7 - i % 8)) & 1);
        // Mixed read widths, so refills happen at every alignment.
        for start in [0usize, 1, 3] {
            let mut r = BitReader::at_byte(start);
            let mut pos = start * 8;
            let mut n = 1u32;
            while let Some(v) = r.read_wide(&data, n) {
                let want = (pos..pos + n as usize).fold(0u64, |acc, i| (acc << 1) | bit(i));
                assert_eq!(v, want, "start {start} pos {pos} n {n}");
                pos += n as usize;
                n = n % 64 + 7;
            }
            assert!(pos + n as usize > data.len() * 8);
        }
    }

    #[test]
    fn peek_pads_past_end() {
        let data = [0b1110_0000u8];
        let mut r = BitReader::default();
        assert_eq!(r.peek_padded(&data, 4), 0b1110);
        assert_eq!(r.peek_padded(&data, 4), 0b1110);
        assert_eq!(r.skip(&data, 7), Some(()));
        assert_eq!(r.peek_padded(&data, 4), 0);
        assert_eq!(r.skip(&data, 2), None);
        assert_eq!(r.read(&data, 1), Some(0));
        assert_eq!(r.read(&data, 1), None);
    }
}
