//! The aggregate chunk of downsampled blocks: five XOR sub-chunks back to back, one per
//! [`Aggregate`] (count, sum, min, max, counter, in that order), each prefixed by its
//! byte length. Owns that layout (building one from five encoded streams, finding a
//! sub-chunk's bytes without decoding, checking the framing) and nothing else: what the
//! streams hold is the downsampler's business. `docs/format/downsampled.md` has the
//! bytes.

use crate::storage::Aggregate;
use crate::tsdb::varint::{get_uvarint, put_uvarint};

/// The sub-chunks in their on-disk order.
pub const ORDER: [Aggregate; 5] = [
    Aggregate::Count,
    Aggregate::Sum,
    Aggregate::Min,
    Aggregate::Max,
    Aggregate::Counter,
];

/// Position of `a`'s sub-chunk in an aggregate chunk.
#[inline]
pub fn slot(a: Aggregate) -> usize {
    match a {
        Aggregate::Count => 0,
        Aggregate::Sum => 1,
        Aggregate::Min => 2,
        Aggregate::Max => 3,
        Aggregate::Counter => 4,
    }
}

/// Appends an aggregate chunk made of `subs` (XOR chunk bytes, in [`ORDER`]; an empty
/// slice is a sub-chunk without samples) to `out`.
pub fn encode(subs: [&[u8]; 5], out: &mut Vec<u8>) {
    for s in subs {
        put_uvarint(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// The byte range of sub-chunk `slot` within the aggregate chunk `data`, or `None` if the
/// framing is broken.
#[inline]
pub fn sub_range(data: &[u8], slot: usize) -> Option<(usize, usize)> {
    let mut pos = 0usize;
    for i in 0..ORDER.len() {
        let len = usize::try_from(get_uvarint(data, &mut pos)?).ok()?;
        let end = pos.checked_add(len).filter(|&e| e <= data.len())?;
        if i == slot {
            return Some((pos, end));
        }
        pos = end;
    }
    None
}

/// Checks that `data` is exactly five length-prefixed sub-chunks.
pub fn verify(data: &[u8]) -> bool {
    let mut pos = 0usize;
    for _ in 0..ORDER.len() {
        let Some(len) = get_uvarint(data, &mut pos).and_then(|l| usize::try_from(l).ok()) else {
            return false;
        };
        match pos.checked_add(len).filter(|&e| e <= data.len()) {
            Some(e) => pos = e,
            None => return false,
        }
    }
    pos == data.len()
}

/// Samples in the Count sub-chunk: the windows the chunk holds data for.
pub fn num_windows(data: &[u8]) -> u16 {
    match sub_range(data, 0).and_then(|(a, _)| data.get(a..a + 2)) {
        Some(b) => u16::from_be_bytes([b[0], b[1]]),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_chunks_are_found_and_framing_is_checked() {
        let subs: [&[u8]; 5] = [&[0, 2, 9], &[], &[1; 200], &[7], &[0, 1, 5, 5]];
        let mut data = Vec::new();
        encode(subs, &mut data);
        assert!(verify(&data));
        for (i, s) in subs.iter().enumerate() {
            let (a, b) = sub_range(&data, i).unwrap();
            assert_eq!(&data[a..b], *s, "slot {i}");
        }
        assert_eq!(slot(Aggregate::Counter), 4);
        assert_eq!(ORDER[slot(Aggregate::Min)], Aggregate::Min);
        assert_eq!(num_windows(&data), 2);
        assert!(!verify(&data[..data.len() - 1]));
        let mut longer = data.clone();
        longer.push(0);
        assert!(!verify(&longer));
        assert_eq!(sub_range(&data[..3], 1), None);
    }
}
