//! The scrape cache of one target: maps a series exactly as the target wrote it (the
//! bytes of the line before the value) to its storage ref, so an unchanged series line
//! costs one hash lookup instead of a label parse, a relabel and an index lookup. It also
//! remembers which series metric relabeling dropped, and which series each scrape saw, so
//! the loop can write staleness markers for the ones that disappeared.

use crate::storage::SeriesRef;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Entries not seen for this many scrapes are forgotten, bounding the cache under churn.
const EVICT_AFTER_SCRAPES: u32 = 10;

/// What the cache knows about one series line.
#[derive(Clone, Copy, Debug)]
pub struct CacheEntry {
    /// The storage ref, or `None` when metric relabeling dropped the series.
    pub series: Option<SeriesRef>,
    /// The scrape iteration that last saw this line.
    pub last_seen: u32,
    /// The iteration that saw it before that (0: never), so a failed scrape can still
    /// tell which series the last committed scrape had.
    pub seen_before: u32,
    /// Whether the series gets a staleness marker when it disappears. Series exposed with
    /// their own timestamps do not, as in Prometheus.
    pub track_staleness: bool,
}

/// One entry as stored: 24 bytes, the line itself in the arena. A cache holds one per
/// series of its target, so at a million series every byte here is a megabyte; a
/// boxed key and a 40-byte entry cost about 60 bytes more per series.
#[derive(Clone, Copy)]
struct Slot {
    /// Where the line's bytes start in the arena.
    off: u32,
    /// The line's length; the top bit says whether the series tracks staleness.
    len_flags: u32,
    /// The storage ref; [`DROPPED`] when metric relabeling dropped the series.
    series: SeriesRef,
    last_seen: u32,
    seen_before: u32,
}

/// The `series` of a slot whose line metric relabeling dropped. Storage refs never
/// reach it (they count series created).
const DROPPED: SeriesRef = SeriesRef::MAX;
const TRACK_STALENESS: u32 = 1 << 31;

impl Slot {
    fn range(&self) -> std::ops::Range<usize> {
        let start = self.off as usize;
        start..start + (self.len_flags & !TRACK_STALENESS) as usize
    }

    fn entry(&self) -> CacheEntry {
        CacheEntry {
            series: (self.series != DROPPED).then_some(self.series),
            last_seen: self.last_seen,
            seen_before: self.seen_before,
            track_staleness: self.len_flags & TRACK_STALENESS != 0,
        }
    }
}

#[derive(Default)]
pub struct ScrapeCache {
    slots: HashTable<Slot>,
    /// The bytes of every cached line, back to back; slots point into it.
    arena: Vec<u8>,
    /// Arena bytes of lines no longer cached; the arena is rewritten when they are
    /// more than half of it.
    garbage: usize,
    hasher: foldhash::fast::RandomState,
    /// Incremented once per scrape attempt. A u32 lasts 136 years of 1 s scrapes.
    iter: u32,
    /// The iteration of the last scrape whose samples were committed, if any: its series
    /// are the ones that may need staleness markers.
    last_committed: Option<u32>,
}

impl ScrapeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a scrape attempt and returns its iteration number.
    pub fn begin(&mut self) -> u32 {
        self.iter = self.iter.wrapping_add(1);
        self.iter
    }

    pub fn iter(&self) -> u32 {
        self.iter
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Looks a line up and, on a hit, marks it seen in this scrape.
    #[inline]
    pub fn hit(&mut self, series: &[u8]) -> Option<CacheEntry> {
        let iter = self.iter;
        let hash = self.hasher.hash_one(series);
        let arena = &self.arena;
        self.slots
            .find_mut(hash, |s| &arena[s.range()] == series)
            .map(|s| {
                if s.last_seen != iter {
                    s.seen_before = s.last_seen;
                    s.last_seen = iter;
                }
                s.entry()
            })
    }

    /// Records a line seen for the first time (or re-resolved) in this scrape.
    pub fn insert(&mut self, series: &[u8], r: Option<SeriesRef>, track_staleness: bool) {
        let iter = self.iter;
        let flag = if track_staleness { TRACK_STALENESS } else { 0 };
        let r = r.unwrap_or(DROPPED);
        let hash = self.hasher.hash_one(series);
        let arena = &self.arena;
        if let Some(old) = self.slots.find_mut(hash, |s| &arena[s.range()] == series) {
            if old.last_seen != iter {
                old.seen_before = old.last_seen;
            }
            old.series = r;
            old.last_seen = iter;
            old.len_flags = (old.len_flags & !TRACK_STALENESS) | flag;
            return;
        }
        // A line or an arena past what 31 and 32 bits address is not cached: such a
        // target is still scraped correctly, each of those lines resolved by labels.
        let (Ok(off), Ok(len)) = (u32::try_from(self.arena.len()), u32::try_from(series.len()))
        else {
            return;
        };
        if len >= TRACK_STALENESS || off.checked_add(len).is_none() {
            return;
        }
        self.arena.extend_from_slice(series);
        let slot = Slot {
            off,
            len_flags: len | flag,
            series: r,
            last_seen: iter,
            seen_before: 0,
        };
        let (arena, hasher) = (&self.arena, &self.hasher);
        self.slots
            .insert_unique(hash, slot, |s| hasher.hash_one(&arena[s.range()]));
    }

    /// Forgets a line, e.g. when its ref is no longer known to the storage.
    pub fn remove(&mut self, series: &[u8]) {
        let hash = self.hasher.hash_one(series);
        let arena = &self.arena;
        if let Ok(e) = self.slots.find_entry(hash, |s| &arena[s.range()] == series) {
            let (slot, _) = e.remove();
            self.garbage += slot.range().len();
        }
    }

    /// Refs of series the last committed scrape had that the current one (`self.iter`)
    /// does not: they need staleness markers. With `all`, every series of the last
    /// committed scrape (a failed scrape or the end of the target).
    pub fn vanished(&self, all: bool, out: &mut Vec<SeriesRef>) {
        out.clear();
        let Some(prev) = self.last_committed else {
            return;
        };
        for s in self.slots.iter() {
            if s.len_flags & TRACK_STALENESS == 0 || s.series == DROPPED {
                continue;
            }
            let gone =
                s.last_seen == prev || (all && s.last_seen == self.iter && s.seen_before == prev);
            if gone {
                out.push(s.series);
            }
        }
    }

    /// Ends a scrape attempt. `committed` says whether its samples were stored; then its
    /// series become the ones to watch for disappearance. Old entries are evicted.
    pub fn finish(&mut self, committed: bool) {
        if committed {
            self.last_committed = Some(self.iter);
        } else {
            // Everything the last good scrape had was just marked stale: nothing is live.
            self.last_committed = None;
        }
        let iter = self.iter;
        if iter.is_multiple_of(EVICT_AFTER_SCRAPES) {
            let mut freed = 0;
            self.slots.retain(|s| {
                let keep = iter.wrapping_sub(s.last_seen) < EVICT_AFTER_SCRAPES;
                if !keep {
                    freed += s.range().len();
                }
                keep
            });
            self.garbage += freed;
            if self.garbage > self.arena.len() / 2 {
                self.compact_arena();
            }
        }
    }

    /// Rewrites the arena with only the live lines. Hashes do not change, so the table
    /// keeps its layout; only offsets move.
    fn compact_arena(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for s in self.slots.iter_mut() {
            let range = s.range();
            // Lengths fit: the new arena is smaller than the old one.
            s.off = arena.len() as u32;
            arena.extend_from_slice(&self.arena[range]);
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_series_are_reported_once() {
        let mut c = ScrapeCache::new();
        c.begin();
        c.insert(b"a", Some(1), true);
        c.insert(b"b", Some(2), true);
        c.insert(b"c", Some(3), false);
        c.finish(true);

        c.begin();
        assert!(c.hit(b"a").is_some());
        let mut out = vec![];
        c.vanished(false, &mut out);
        assert_eq!(out, vec![2]); // c has its own timestamps: never stale
        c.finish(true);

        c.begin();
        c.hit(b"a");
        c.vanished(false, &mut out);
        assert!(out.is_empty(), "b was already marked: {out:?}");
        c.finish(true);
    }

    #[test]
    fn failed_scrape_marks_everything_of_last_good_one() {
        let mut c = ScrapeCache::new();
        c.begin();
        c.insert(b"a", Some(1), true);
        c.insert(b"x", None, true);
        c.finish(true);
        c.begin();
        c.hit(b"a"); // seen before the failure
        let mut out = vec![];
        c.vanished(true, &mut out);
        assert_eq!(out, vec![1]);
        c.finish(false);
        c.begin();
        c.vanished(true, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn eviction_bounds_the_cache() {
        let mut c = ScrapeCache::new();
        c.begin();
        c.insert(b"gone", Some(1), true);
        c.finish(true);
        // Eviction runs every EVICT_AFTER_SCRAPES scrapes, so within two rounds.
        for _ in 0..2 * EVICT_AFTER_SCRAPES {
            c.begin();
            c.insert(b"kept", Some(2), true);
            c.finish(true);
        }
        assert!(c.hit(b"gone").is_none());
        assert!(c.hit(b"kept").is_some());
    }

    #[test]
    fn arena_is_compacted_and_lines_still_found() {
        let mut c = ScrapeCache::new();
        c.begin();
        for i in 0..1000u64 {
            c.insert(format!("old{{i=\"{i}\"}}").as_bytes(), Some(i), true);
        }
        c.insert(b"dropped", None, false);
        c.finish(true);
        let full = c.arena.len();
        for _ in 0..2 * EVICT_AFTER_SCRAPES {
            c.begin();
            assert!(c.hit(b"dropped").is_some());
            c.insert(b"kept", Some(7), true);
            c.finish(true);
        }
        assert_eq!(c.len(), 2);
        assert!(
            c.arena.len() < full / 10,
            "arena not compacted: {}",
            c.arena.len()
        );
        let kept = c.hit(b"kept").unwrap();
        assert_eq!((kept.series, kept.track_staleness), (Some(7), true));
        let dropped = c.hit(b"dropped").unwrap();
        assert_eq!((dropped.series, dropped.track_staleness), (None, false));
        c.remove(b"kept");
        assert!(c.hit(b"kept").is_none());
        assert!(c.hit(b"dropped").is_some());
    }
}
