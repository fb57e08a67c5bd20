//! LEB128 varints (Go's `binary.PutUvarint` / `PutVarint` byte format), shared by the
//! index's label encoding and the WAL records. Reads are bounds-checked and reject
//! overlong encodings instead of panicking.

/// Appends `x` as an unsigned varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Reads an unsigned varint at `*pos`, advancing it; `None` if malformed or cut short.
#[inline]
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    let mut shift = 0u32;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if b < 0x80 {
            if i == 9 && b > 1 {
                return None;
            }
            return Some(x | (u64::from(b) << shift));
        }
        x |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    None
}

/// Appends `x` zigzag-encoded, so small negative numbers stay short.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let ux = get_uvarint(buf, pos)?;
    Some(((ux >> 1) as i64) ^ -((ux & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        let mut buf = Vec::new();
        for x in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            buf.clear();
            put_uvarint(&mut buf, x);
            let mut pos = 0;
            assert_eq!(get_uvarint(&buf, &mut pos), Some(x));
            assert_eq!(pos, buf.len());
        }
        for x in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            buf.clear();
            put_varint(&mut buf, x);
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), Some(x));
        }
        buf.clear();
        put_varint(&mut buf, -1);
        assert_eq!(buf, [1]);
    }

    #[test]
    fn rejects_garbage() {
        let mut pos = 0;
        assert_eq!(get_uvarint(&[0x80, 0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_uvarint(&[0xff; 11], &mut pos), None);
        // Ten bytes whose last carries more than the 64th bit.
        let mut pos = 0;
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert_eq!(get_uvarint(&over, &mut pos), None);
        let mut pos = 3;
        assert_eq!(get_uvarint(&[1, 2], &mut pos), None);
    }
}
