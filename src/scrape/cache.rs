//! The scrape cache of one target: maps a series exactly as the target wrote it (the
//! bytes of the line before the value, by a 128-bit hash of them) to its storage ref, so an unchanged series line
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

/// One entry as stored: 32 bytes, and the line itself is not kept. A cache holds one per
/// series of its target, so at a million series every byte here is a megabyte: the line
/// bytes and a boxed key cost about 100 bytes per series more.
///
/// Prometheus keys its cache by the line's bytes. cairn keys it by a seeded 128-bit
/// XXH3 of them: two different lines of one target collide with probability about
/// n^2 / 2^129 (1e-27 at a million lines), far below the rate of memory errors, and a
/// collision could only mix up series of that one target (each cache is per target,
/// its seed random).
#[derive(Clone, Copy)]
struct Slot {
    line_hash: u128,
    /// The storage ref; [`DROPPED`] when metric relabeling dropped the series.
    series: SeriesRef,
    last_seen: u32,
    /// The iteration before `last_seen`; the top bit says whether the series tracks
    /// staleness.
    seen_before_flags: u32,
}

/// The `series` of a slot whose line metric relabeling dropped. Storage refs never
/// reach it (they count series created).
const DROPPED: SeriesRef = SeriesRef::MAX;
const TRACK_STALENESS: u32 = 1 << 31;
/// Iterations wrap at 2^31 (68 years of 1 s scrapes), leaving the top bit to the flag.
const ITER_MASK: u32 = TRACK_STALENESS - 1;

impl Slot {
    fn seen_before(&self) -> u32 {
        self.seen_before_flags & ITER_MASK
    }

    fn tracks_staleness(&self) -> bool {
        self.seen_before_flags & TRACK_STALENESS != 0
    }

    /// Marks it seen in scrape `iter`.
    fn see(&mut self, iter: u32) {
        if self.last_seen != iter {
            self.seen_before_flags = (self.seen_before_flags & TRACK_STALENESS) | self.last_seen;
            self.last_seen = iter;
        }
    }

    fn entry(&self) -> CacheEntry {
        CacheEntry {
            series: (self.series != DROPPED).then_some(self.series),
            last_seen: self.last_seen,
            seen_before: self.seen_before(),
            track_staleness: self.tracks_staleness(),
        }
    }
}

pub struct ScrapeCache {
    slots: HashTable<Slot>,
    seed: u64,
    /// Incremented once per scrape attempt, modulo 2^31.
    iter: u32,
    /// The iteration of the last scrape whose samples were committed, if any: its series
    /// are the ones that may need staleness markers.
    last_committed: Option<u32>,
}

impl Default for ScrapeCache {
    fn default() -> Self {
        ScrapeCache {
            slots: HashTable::new(),
            seed: foldhash::fast::RandomState::default().hash_one(0x5ca1_ab1e_u64),
            iter: 0,
            last_committed: None,
        }
    }
}

impl ScrapeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a scrape attempt and returns its iteration number (never 0, which means
    /// "never seen").
    pub fn begin(&mut self) -> u32 {
        self.iter = (self.iter + 1) & ITER_MASK;
        if self.iter == 0 {
            self.iter = 1;
        }
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

    #[inline]
    fn line_hash(&self, series: &[u8]) -> u128 {
        xxhash_rust::xxh3::xxh3_128_with_seed(series, self.seed)
    }

    /// Looks a line up and, on a hit, marks it seen in this scrape.
    #[inline]
    pub fn hit(&mut self, series: &[u8]) -> Option<CacheEntry> {
        let iter = self.iter;
        let h = self.line_hash(series);
        self.slots
            .find_mut(h as u64, |s| s.line_hash == h)
            .map(|s| {
                s.see(iter);
                s.entry()
            })
    }

    /// Records a line seen for the first time (or re-resolved) in this scrape.
    pub fn insert(&mut self, series: &[u8], r: Option<SeriesRef>, track_staleness: bool) {
        let iter = self.iter;
        let flag = if track_staleness { TRACK_STALENESS } else { 0 };
        let r = r.unwrap_or(DROPPED);
        let h = self.line_hash(series);
        if let Some(old) = self.slots.find_mut(h as u64, |s| s.line_hash == h) {
            old.see(iter);
            old.series = r;
            old.seen_before_flags = (old.seen_before_flags & ITER_MASK) | flag;
            return;
        }
        let slot = Slot {
            line_hash: h,
            series: r,
            last_seen: iter,
            seen_before_flags: flag,
        };
        self.slots
            .insert_unique(h as u64, slot, |s| s.line_hash as u64);
    }

    /// Forgets a line, e.g. when its ref is no longer known to the storage.
    pub fn remove(&mut self, series: &[u8]) {
        let h = self.line_hash(series);
        if let Ok(e) = self.slots.find_entry(h as u64, |s| s.line_hash == h) {
            e.remove();
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
            if !s.tracks_staleness() || s.series == DROPPED {
                continue;
            }
            let gone =
                s.last_seen == prev || (all && s.last_seen == self.iter && s.seen_before() == prev);
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
            self.slots
                .retain(|s| iter.wrapping_sub(s.last_seen) & ITER_MASK < EVICT_AFTER_SCRAPES);
        }
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
    fn flags_and_refs_survive_rescrapes_and_removal() {
        let mut c = ScrapeCache::new();
        c.begin();
        for i in 0..1000u64 {
            c.insert(format!("old{{i=\"{i}\"}}").as_bytes(), Some(i), true);
        }
        c.insert(b"dropped", None, false);
        c.finish(true);
        for _ in 0..2 * EVICT_AFTER_SCRAPES {
            c.begin();
            assert!(c.hit(b"dropped").is_some());
            c.insert(b"kept", Some(7), true);
            c.finish(true);
        }
        assert_eq!(c.len(), 2);
        let kept = c.hit(b"kept").unwrap();
        assert_eq!((kept.series, kept.track_staleness), (Some(7), true));
        let dropped = c.hit(b"dropped").unwrap();
        assert_eq!((dropped.series, dropped.track_staleness), (None, false));
        assert_eq!(dropped.seen_before, c.iter() - 1);
        c.insert(b"kept", Some(8), false);
        let kept = c.hit(b"kept").unwrap();
        assert_eq!((kept.series, kept.track_staleness), (Some(8), false));
        c.remove(b"kept");
        assert!(c.hit(b"kept").is_none());
        assert!(c.hit(b"dropped").is_some());
    }

    #[test]
    fn iterations_wrap_past_the_flag_bit() {
        let mut c = ScrapeCache::new();
        c.iter = ITER_MASK - 1;
        c.begin();
        c.insert(b"a", Some(1), true);
        c.finish(true);
        assert_eq!(c.begin(), 1, "0 is skipped: it means never seen");
        let mut out = vec![];
        c.vanished(false, &mut out);
        assert_eq!(out, vec![1]);
    }
}
