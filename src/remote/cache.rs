//! The remote write series cache: the bytes of a series' `Label` fields exactly as a
//! sender wrote them -> its storage ref, so a series seen before costs one hash lookup
//! instead of a label check, a `Labels` and a head lookup. Like the scrape cache, but
//! shared by all requests: sharded by the key's hash, and a request locks each shard
//! once for all its series of that shard. Memory is bounded: entries not seen for
//! `idle` are dropped by a sweep, and a shard over its cap is emptied (its series are
//! then simply looked up by labels again). The key bytes are kept, so two series whose
//! hashes collide never share a ref.

use crate::storage::SeriesRef;
use hashbrown::HashTable;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Shard count: a power of two, the top bits of the hash pick the shard.
const SHARDS: usize = 16;
/// A shard sweeps out idle entries at most this often.
const SWEEP_EVERY_SECS: u32 = 60;

struct Entry {
    hash: u64,
    key: Box<[u8]>,
    series: SeriesRef,
    /// Seconds since the cache was made, when a request last carried this series.
    seen: u32,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    last_sweep: u32,
}

/// Maps series bytes to refs; see the module docs.
pub struct SeriesCache {
    shards: Box<[Mutex<Shard>]>,
    max_per_shard: usize,
    idle_secs: u32,
    started: Instant,
}

/// A series of one request to look up: its key's hash and where the key is.
#[derive(Clone, Copy, Debug)]
pub struct Lookup {
    pub hash: u64,
    /// Index of the series in the request.
    pub series: u32,
}

impl SeriesCache {
    /// A cache of at most about `max_series` entries, forgetting series not sent for
    /// `idle`.
    pub fn new(max_series: usize, idle: Duration) -> SeriesCache {
        SeriesCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_per_shard: max_series.div_ceil(SHARDS).max(1),
            idle_secs: idle.as_secs().min(u64::from(u32::MAX)) as u32,
            started: Instant::now(),
        }
    }

    pub fn hash(key: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(key)
    }

    /// The clock entries are stamped with; read once per request.
    pub fn now(&self) -> u32 {
        self.started.elapsed().as_secs().min(u64::from(u32::MAX)) as u32
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().table.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn shard_of(hash: u64) -> usize {
        (hash >> 60) as usize % SHARDS
    }

    /// Resolves a request's lookups: `refs[l.series]` gets the cached ref, or stays 0.
    /// `lookups` is reordered (grouped by shard) so each shard is locked once; `key`
    /// gives the bytes of a series by its index.
    pub fn get_many<'k>(
        &self,
        lookups: &mut [Lookup],
        key: impl Fn(u32) -> &'k [u8],
        refs: &mut [SeriesRef],
        now: u32,
    ) {
        lookups.sort_unstable_by_key(|l| Self::shard_of(l.hash));
        let mut rest = &*lookups;
        while let Some(first) = rest.first() {
            let shard = Self::shard_of(first.hash);
            let n = rest
                .iter()
                .position(|l| Self::shard_of(l.hash) != shard)
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let mut g = self.shards[shard].lock();
            self.maybe_sweep(&mut g, now);
            for l in group {
                let k = key(l.series);
                if let Some(e) = g
                    .table
                    .find_mut(l.hash, |e| e.hash == l.hash && *e.key == *k)
                {
                    e.seen = now;
                    refs[l.series as usize] = e.series;
                }
            }
        }
    }

    /// Remembers (or re-points) one series.
    pub fn insert(&self, hash: u64, key: &[u8], series: SeriesRef, now: u32) {
        let mut g = self.shards[Self::shard_of(hash)].lock();
        if let Some(e) = g.table.find_mut(hash, |e| e.hash == hash && *e.key == *key) {
            e.series = series;
            e.seen = now;
            return;
        }
        if g.table.len() >= self.max_per_shard {
            self.sweep(&mut g, now);
            if g.table.len() >= self.max_per_shard {
                // Still full of live series: start over rather than track ages finely.
                g.table = HashTable::new();
            }
        }
        g.table.insert_unique(
            hash,
            Entry {
                hash,
                key: key.into(),
                series,
                seen: now,
            },
            |e| e.hash,
        );
    }

    fn maybe_sweep(&self, g: &mut Shard, now: u32) {
        if now.saturating_sub(g.last_sweep) >= SWEEP_EVERY_SECS {
            self.sweep(g, now);
        }
    }

    fn sweep(&self, g: &mut Shard, now: u32) {
        let idle = self.idle_secs;
        g.table.retain(|e| now.saturating_sub(e.seen) <= idle);
        g.last_sweep = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(c: &SeriesCache, keys: &[&[u8]], now: u32) -> Vec<SeriesRef> {
        let mut ls: Vec<Lookup> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Lookup {
                hash: SeriesCache::hash(k),
                series: i as u32,
            })
            .collect();
        let mut refs = vec![0; keys.len()];
        c.get_many(&mut ls, |i| keys[i as usize], &mut refs, now);
        refs
    }

    #[test]
    fn hits_misses_and_repointing() {
        let c = SeriesCache::new(1000, Duration::from_secs(600));
        let keys: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let ks: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        assert_eq!(lookup(&c, &ks, 0), vec![0; 100]);
        for (i, k) in ks.iter().enumerate() {
            c.insert(SeriesCache::hash(k), k, i as u64 + 1, 0);
        }
        let want: Vec<SeriesRef> = (1..=100).collect();
        assert_eq!(lookup(&c, &ks, 0), want);
        c.insert(SeriesCache::hash(ks[5]), ks[5], 77, 0);
        assert_eq!(lookup(&c, &ks[5..6], 0), [77]);
        assert_eq!(c.len(), 100);
    }

    #[test]
    fn same_hash_different_bytes_never_share_a_ref() {
        let c = SeriesCache::new(1000, Duration::from_secs(600));
        // Two keys filed under one (forced) hash.
        c.insert(42, b"a", 1, 0);
        c.insert(42, b"b", 2, 0);
        let mut refs = [0; 2];
        let mut ls = [
            Lookup {
                hash: 42,
                series: 0,
            },
            Lookup {
                hash: 42,
                series: 1,
            },
        ];
        let keys: [&[u8]; 2] = [b"b", b"c"];
        c.get_many(&mut ls, |i| keys[i as usize], &mut refs, 0);
        assert_eq!(refs, [2, 0]);
    }

    #[test]
    fn idle_entries_are_swept_and_size_is_capped() {
        let c = SeriesCache::new(SHARDS * 4, Duration::from_secs(100));
        c.insert(SeriesCache::hash(b"old"), b"old", 1, 0);
        c.insert(SeriesCache::hash(b"new"), b"new", 2, 150);
        // A lookup at t=200 sweeps: "old" was last seen 200 s ago, "new" 50 s ago.
        assert_eq!(lookup(&c, &[b"old", b"new"], 200), [0, 2]);
        // No shard ever holds more than its cap.
        for i in 0..10_000u32 {
            let k = i.to_le_bytes();
            c.insert(SeriesCache::hash(&k), &k, 1, 200);
        }
        assert!(c.len() <= SHARDS * 4, "{}", c.len());
    }
}
