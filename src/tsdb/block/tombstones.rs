//! A block's `tombstones` file: the time intervals deleted from each of its series (by
//! series ordinal), written by the admin API's delete_series and honoured by every read
//! of the block until compaction rewrites it without them. Owns the in-memory set, its
//! byte format (checksummed) and the atomic replace of the file (`tombstones.tmp`,
//! fsync, rename, fsync of the block directory). `docs/format/tombstones.md` has the
//! bytes. Knows nothing about matchers or chunks.

use super::{BlockError, replace_file};
use crate::tsdb::varint::{get_uvarint, get_varint, put_uvarint, put_varint};
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE: &str = "tombstones";
pub const MAGIC: u32 = 0xCA12_DE1E;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;

/// A deleted time range, both ends inclusive (as Prometheus's `tombstones.Interval`).
pub type Interval = (i64, i64);

/// Deleted intervals per series ordinal, each list sorted, non-overlapping and with no
/// two intervals adjacent (they are merged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    series: BTreeMap<u32, Vec<Interval>>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Number of intervals over all series: Prometheus's `numTombstones`.
    pub fn count(&self) -> u64 {
        self.series.values().map(|v| v.len() as u64).sum()
    }

    /// The deleted intervals of series `ord` (empty when none).
    pub fn get(&self, ord: u32) -> &[Interval] {
        self.series.get(&ord).map_or(&[], |v| v.as_slice())
    }

    /// Every series with deletions and its intervals, by ordinal.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[Interval])> {
        self.series.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Adds `[mint, maxt]` to series `ord`, merging it with intervals it overlaps or
    /// touches. An empty interval (`mint > maxt`) is ignored.
    pub fn add(&mut self, ord: u32, mint: i64, maxt: i64) {
        if mint > maxt {
            return;
        }
        let list = self.series.entry(ord).or_default();
        list.push((mint, maxt));
        list.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
        for &(a, b) in list.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *list = merged;
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 16 * self.series.len() + 4);
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        put_uvarint(&mut out, self.series.len() as u64);
        for (ord, ivs) in &self.series {
            put_uvarint(&mut out, u64::from(*ord));
            put_uvarint(&mut out, ivs.len() as u64);
            for &(a, b) in ivs {
                put_varint(&mut out, a);
                put_uvarint(&mut out, b.wrapping_sub(a) as u64);
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses the file's bytes, checking the header, the checksum and that every list
    /// is well formed.
    pub fn decode(d: &[u8]) -> Result<Self, BlockError> {
        let bad = |why: &str| BlockError::Corrupt(format!("tombstones: {why}"));
        if d.len() < HEADER_LEN + 4 || d[..4] != MAGIC.to_be_bytes() {
            return Err(bad("bad header"));
        }
        if d[4] != VERSION || d[5..8] != [0, 0, 0] {
            return Err(bad(&format!("unknown version {}", d[4])));
        }
        let (body, crc) = d.split_at(d.len() - 4);
        if crc32fast::hash(body) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(bad("checksum mismatch"));
        }
        let mut pos = HEADER_LEN;
        let uvarint = |pos: &mut usize| get_uvarint(body, pos).ok_or_else(|| bad("truncated"));
        let n = uvarint(&mut pos)?;
        let mut t = Tombstones::default();
        let mut prev_ord: Option<u32> = None;
        for _ in 0..n {
            let ord = u32::try_from(uvarint(&mut pos)?).map_err(|_| bad("series ordinal"))?;
            if prev_ord.is_some_and(|p| p >= ord) {
                return Err(bad("series not in order"));
            }
            prev_ord = Some(ord);
            let k = uvarint(&mut pos)?;
            let mut list: Vec<Interval> = Vec::with_capacity(k.min(1024) as usize);
            for _ in 0..k {
                let a = get_varint(body, &mut pos).ok_or_else(|| bad("truncated"))?;
                let len = uvarint(&mut pos)?;
                let b = a.checked_add_unsigned(len).ok_or_else(|| bad("interval"))?;
                // Merged lists never touch: a gap of at least one millisecond.
                if list
                    .last()
                    .is_some_and(|&(_, pb)| pb.saturating_add(1) >= a)
                {
                    return Err(bad("intervals not in order"));
                }
                list.push((a, b));
            }
            if list.is_empty() {
                return Err(bad("empty interval list"));
            }
            t.series.insert(ord, list);
        }
        if pos != body.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(t)
    }

    /// Reads `dir/tombstones`; a block without the file has no deletions.
    pub fn read(dir: &Path) -> Result<Self, BlockError> {
        match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => Self::decode(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces `dir/tombstones` atomically: a crash leaves the old file or the new one.
    pub fn write(&self, dir: &Path) -> Result<(), BlockError> {
        replace_file(dir, FILE, &self.encode())
    }
}

/// Whether `[mint, maxt]` lies wholly inside one of `ivs`.
pub fn covers(ivs: &[Interval], mint: i64, maxt: i64) -> bool {
    ivs.iter().any(|&(a, b)| a <= mint && maxt <= b)
}

/// Whether any of `ivs` meets `[mint, maxt]`.
pub fn overlaps(ivs: &[Interval], mint: i64, maxt: i64) -> bool {
    ivs.iter().any(|&(a, b)| a <= maxt && mint <= b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_when_they_overlap_or_touch() {
        let mut t = Tombstones::default();
        t.add(3, 10, 20);
        t.add(3, 30, 40);
        assert_eq!(t.get(3), [(10, 20), (30, 40)]);
        t.add(3, 21, 25);
        assert_eq!(t.get(3), [(10, 25), (30, 40)]);
        t.add(3, 5, 35);
        assert_eq!(t.get(3), [(5, 40)]);
        t.add(3, 50, 49);
        assert_eq!(t.get(3), [(5, 40)]);
        t.add(1, i64::MIN, i64::MAX);
        assert_eq!(t.count(), 2);
        assert_eq!(t.get(2), []);
        assert!(covers(t.get(3), 5, 40) && !covers(t.get(3), 4, 40));
        assert!(overlaps(t.get(3), 40, 100) && !overlaps(t.get(3), 41, 100));
    }

    #[test]
    fn round_trip_through_a_file_and_flipped_bytes_are_caught() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(Tombstones::read(tmp.path()).unwrap().is_empty());
        let mut t = Tombstones::default();
        t.add(0, -5, 7);
        t.add(0, 100, 100);
        t.add(70_000, i64::MIN, i64::MAX);
        t.write(tmp.path()).unwrap();
        assert!(!tmp.path().join("tombstones.tmp").exists());
        assert_eq!(Tombstones::read(tmp.path()).unwrap(), t);
        let good = t.encode();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x08;
            assert!(
                Tombstones::decode(&bad).is_err(),
                "flip at {i} went unnoticed"
            );
        }
        assert!(Tombstones::decode(&good[..good.len() - 1]).is_err());
    }
}
