//! Deleted time ranges of head series (the admin API's `delete_series`), kept beside the
//! series rather than in them: few series ever have any, so the common series pays
//! nothing. Intervals are inclusive, sorted and merged. The lock here is a leaf: nothing
//! else is locked while it is held.

use hashbrown::HashMap;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// An inclusive range of deleted timestamps.
pub type Interval = (i64, i64);

#[derive(Default)]
pub(crate) struct Tombstones {
    map: RwLock<HashMap<u32, Vec<Interval>>>,
    /// Whether `map` may be non-empty: lets readers skip the lock in the common case.
    any: AtomicBool,
}

impl Tombstones {
    /// Records `[mint, maxt]` as deleted for series `r`.
    pub fn add(&self, r: u32, mint: i64, maxt: i64) {
        if mint > maxt {
            return;
        }
        let mut map = self.map.write();
        add_interval(map.entry(r).or_default(), (mint, maxt));
        self.any.store(true, Ordering::Release);
    }

    /// The deleted intervals of `r`, appended to `out` (sorted, merged).
    #[inline]
    pub fn get_into(&self, r: u32, out: &mut Vec<Interval>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        if let Some(iv) = self.map.read().get(&r) {
            out.extend_from_slice(iv);
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// Every series' intervals, sorted by ref.
    pub fn snapshot(&self) -> Vec<(u32, Vec<Interval>)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut v: Vec<(u32, Vec<Interval>)> = self
            .map
            .read()
            .iter()
            .map(|(r, iv)| (*r, iv.clone()))
            .collect();
        v.sort_unstable_by_key(|(r, _)| *r);
        v
    }

    /// Drops intervals wholly before `mint` and every interval of the `removed` series;
    /// returns how many intervals went.
    pub fn truncate(&self, mint: i64, removed: &[u32]) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut map = self.map.write();
        let mut n = 0;
        for r in removed {
            n += map.remove(r).map_or(0, |v| v.len() as u64);
        }
        map.retain(|_, iv| {
            let before = iv.len();
            iv.retain(|&(_, maxt)| maxt >= mint);
            n += (before - iv.len()) as u64;
            !iv.is_empty()
        });
        if map.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        n
    }
}

/// Inserts `new` into sorted, disjoint intervals, merging those it overlaps or touches.
pub fn add_interval(iv: &mut Vec<Interval>, new: Interval) {
    let (mut lo, mut hi) = new;
    // Intervals ending before `lo - 1` stay; those starting after `hi + 1` stay.
    let first = iv.partition_point(|&(_, b)| b < lo.saturating_sub(1));
    let mut last = first;
    while last < iv.len() && iv[last].0 <= hi.saturating_add(1) {
        lo = lo.min(iv[last].0);
        hi = hi.max(iv[last].1);
        last += 1;
    }
    iv.splice(first..last, [(lo, hi)]);
}

/// Whether `t` lies in one of the sorted intervals, starting the search at `*at` and
/// moving it forward: callers walk increasing timestamps, so each check is O(1)
/// amortised.
#[inline]
pub fn is_deleted(iv: &[Interval], at: &mut usize, t: i64) -> bool {
    while let Some(&(_, maxt)) = iv.get(*at) {
        if t <= maxt {
            return t >= iv[*at].0;
        }
        *at += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_when_they_overlap_or_touch() {
        let mut iv = Vec::new();
        add_interval(&mut iv, (10, 20));
        add_interval(&mut iv, (30, 40));
        assert_eq!(iv, [(10, 20), (30, 40)]);
        add_interval(&mut iv, (21, 22));
        assert_eq!(iv, [(10, 22), (30, 40)]);
        add_interval(&mut iv, (0, 5));
        add_interval(&mut iv, (50, 60));
        assert_eq!(iv, [(0, 5), (10, 22), (30, 40), (50, 60)]);
        add_interval(&mut iv, (15, 35));
        assert_eq!(iv, [(0, 5), (10, 40), (50, 60)]);
        add_interval(&mut iv, (i64::MIN, i64::MAX));
        assert_eq!(iv, [(i64::MIN, i64::MAX)]);
    }

    #[test]
    fn is_deleted_walks_forward() {
        let iv = [(10, 20), (30, 40)];
        let mut at = 0;
        let hits: Vec<i64> = [5, 10, 20, 21, 29, 30, 40, 41, 100]
            .into_iter()
            .filter(|&t| is_deleted(&iv, &mut at, t))
            .collect();
        assert_eq!(hits, [10, 20, 30, 40]);
        assert_eq!(at, 2);
        assert!(!is_deleted(&[], &mut 0, 1));
    }

    #[test]
    fn truncate_drops_old_intervals_and_removed_series() {
        let t = Tombstones::default();
        assert!(t.is_empty());
        t.add(1, 0, 10);
        t.add(1, 50, 60);
        t.add(2, 0, 5);
        t.add(3, 100, 200);
        t.add(4, 9, 8);
        let mut out = Vec::new();
        t.get_into(1, &mut out);
        assert_eq!(out, [(0, 10), (50, 60)]);
        assert_eq!(t.truncate(11, &[3]), 3);
        assert_eq!(t.snapshot(), vec![(1, vec![(50, 60)])]);
        assert_eq!(t.truncate(61, &[]), 1);
        assert!(t.is_empty());
    }
}
