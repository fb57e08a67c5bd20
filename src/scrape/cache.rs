//! The scrape cache of one target: maps a series exactly as the target wrote it (the
//! bytes of the line before the value) to its storage ref, so an unchanged series line
//! costs one hash lookup instead of a label parse, a relabel and an index lookup. It also
//! remembers which series metric relabeling dropped, and which series each scrape saw, so
//! the loop can write staleness markers for the ones that disappeared.

use crate::storage::SeriesRef;
use hashbrown::HashMap;

/// Entries not seen for this many scrapes are forgotten, bounding the cache under churn.
const EVICT_AFTER_SCRAPES: u64 = 10;

/// What the cache knows about one series line.
#[derive(Clone, Copy, Debug)]
pub struct CacheEntry {
    /// The storage ref, or `None` when metric relabeling dropped the series.
    pub series: Option<SeriesRef>,
    /// The scrape iteration that last saw this line.
    pub last_seen: u64,
    /// The iteration that saw it before that (0: never), so a failed scrape can still
    /// tell which series the last committed scrape had.
    pub seen_before: u64,
    /// Whether the series gets a staleness marker when it disappears. Series exposed with
    /// their own timestamps do not, as in Prometheus.
    pub track_staleness: bool,
}

#[derive(Default)]
pub struct ScrapeCache {
    entries: HashMap<Box<[u8]>, CacheEntry, foldhash::fast::RandomState>,
    /// Incremented once per scrape attempt.
    iter: u64,
    /// The iteration of the last scrape whose samples were committed, if any: its series
    /// are the ones that may need staleness markers.
    last_committed: Option<u64>,
}

impl ScrapeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a scrape attempt and returns its iteration number.
    pub fn begin(&mut self) -> u64 {
        self.iter += 1;
        self.iter
    }

    pub fn iter(&self) -> u64 {
        self.iter
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks a line up and, on a hit, marks it seen in this scrape.
    #[inline]
    pub fn hit(&mut self, series: &[u8]) -> Option<CacheEntry> {
        let iter = self.iter;
        self.entries.get_mut(series).map(|e| {
            if e.last_seen != iter {
                e.seen_before = e.last_seen;
                e.last_seen = iter;
            }
            *e
        })
    }

    /// Records a line seen for the first time (or re-resolved) in this scrape.
    pub fn insert(&mut self, series: &[u8], r: Option<SeriesRef>, track_staleness: bool) {
        match self.entries.get_mut(series) {
            Some(old) => {
                if old.last_seen != self.iter {
                    old.seen_before = old.last_seen;
                }
                old.series = r;
                old.last_seen = self.iter;
                old.track_staleness = track_staleness;
            }
            None => {
                let e = CacheEntry {
                    series: r,
                    last_seen: self.iter,
                    seen_before: 0,
                    track_staleness,
                };
                self.entries.insert(series.into(), e);
            }
        }
    }

    /// Forgets a line, e.g. when its ref is no longer known to the storage.
    pub fn remove(&mut self, series: &[u8]) {
        self.entries.remove(series);
    }

    /// Refs of series the last committed scrape had that the current one (`self.iter`)
    /// does not: they need staleness markers. With `all`, every series of the last
    /// committed scrape (a failed scrape or the end of the target).
    pub fn vanished(&self, all: bool, out: &mut Vec<SeriesRef>) {
        out.clear();
        let Some(prev) = self.last_committed else {
            return;
        };
        for e in self.entries.values() {
            if !e.track_staleness {
                continue;
            }
            let Some(r) = e.series else { continue };
            let gone =
                e.last_seen == prev || (all && e.last_seen == self.iter && e.seen_before == prev);
            if gone {
                out.push(r);
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
            self.entries
                .retain(|_, e| e.last_seen + EVICT_AFTER_SCRAPES > iter);
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
}
