//! Deleted time ranges of head series (the admin API's `delete_series`): [`Head::delete`]
//! logs them to the WAL and records them here, beside the series rather than in them,
//! since few series ever have any and the common series should pay nothing. Intervals
//! are inclusive, sorted and merged. The lock here is a leaf: nothing else is locked
//! while it is held. Queriers and `chunks_in_range` leave deleted samples out.

use super::{Head, SeriesPages, locate};
use crate::model::Matcher;
use crate::tsdb::wal::WalError;
use crate::tsdb::wal::record::{self, RecordType, Tombstone};
use hashbrown::HashMap;
use parking_lot::{MutexGuard, RwLock};
use std::sync::atomic::{AtomicBool, Ordering};

/// Tombstones per record when logging a large delete.
const PER_RECORD: usize = 1 << 16;

impl Head {
    /// Deletes the samples in `[mint, maxt]` of every series the matchers select: each
    /// series gets that interval, clamped to the samples it holds now (as Prometheus
    /// does: later samples are not deleted), logged to the WAL as a tombstone before it
    /// takes effect. Returns how many series had samples in the interval.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64, WalError> {
        if mint > maxt {
            return Ok(0);
        }
        let refs = self.postings.read().select(matchers);
        let mut stones: Vec<Tombstone> = Vec::new();
        let mut held: Option<(usize, MutexGuard<'_, SeriesPages>)> = None;
        for r in &refs {
            let Some((st, page, slot)) = locate(u64::from(r)) else {
                continue;
            };
            let g = match &mut held {
                Some((i, g)) if *i == st => g,
                _ => &mut held.insert((st, self.stripe(st))).1,
            };
            let Some(s) = g.get(page, slot) else { continue };
            if let (Some(a), Some(b)) = (s.min_time(), s.max_time()) {
                let (lo, hi) = (mint.max(a), maxt.min(b));
                if lo <= hi {
                    stones.push(Tombstone {
                        series_ref: u64::from(r),
                        mint: lo,
                        maxt: hi,
                    });
                }
            }
        }
        drop(held);
        if stones.is_empty() {
            return Ok(0);
        }
        let mut out = Vec::new();
        let mut body = Vec::new();
        let mut snappy = snap::raw::Encoder::new();
        for part in stones.chunks(PER_RECORD) {
            body.clear();
            for t in part {
                record::encode_tombstone(&mut body, t);
            }
            record::frame(&mut out, RecordType::Tombstones, &body, &mut snappy)?;
        }
        // Logged and applied under the WAL lock, like a commit, so a checkpoint's cut
        // sees either both or neither.
        let _w = match &self.wal {
            Some(wal) => {
                let mut w = wal.lock();
                w.write(&out)?;
                Some(w)
            }
            None => None,
        };
        for t in &stones {
            self.tombstones.add(t.series_ref as u32, t.mint, t.maxt);
        }
        Ok(stones.len() as u64)
    }

    /// The deleted intervals of series `r`, appended to `out`.
    pub(super) fn deleted_into(&self, r: u32, out: &mut Vec<Interval>) {
        self.tombstones.get_into(r, out);
    }
}

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
    use crate::storage::Storage;
    use crate::tsdb::Db;
    use crate::tsdb::testing::*;

    /// Series `a` and `b` with samples every 10 ms over [0, 2990] (three chunks each:
    /// two closed, one open) and `c` over [0, 90].
    fn fixture(dir: &std::path::Path) -> Db {
        let db = open(dir);
        let mut app = db.appender();
        for name in ["a", "b"] {
            let l = lbls(&[("__name__", name), ("job", "j")]);
            for i in 0..300 {
                app.append(&l, i * 10, i as f64).unwrap();
            }
        }
        let c = lbls(&[("__name__", "c"), ("job", "j")]);
        for i in 0..10 {
            app.append(&c, i * 10, i as f64).unwrap();
        }
        app.commit().unwrap();
        db
    }

    fn times(db: &Db, name: &str) -> Vec<i64> {
        dump(db, i64::MIN, i64::MAX, &[Matcher::equal("__name__", name)])
            .into_iter()
            .flat_map(|(_, v)| v.into_iter().map(|(t, _)| t))
            .collect()
    }

    fn expected(deleted: &[(i64, i64)], n: i64) -> Vec<i64> {
        (0..n)
            .map(|i| i * 10)
            .filter(|t| !deleted.iter().any(|(a, b)| a <= t && t <= b))
            .collect()
    }

    #[test]
    fn deleted_samples_are_not_served() {
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        let h = db.head();
        assert_eq!(
            h.delete(&[Matcher::equal("__name__", "a")], 100, 155)
                .unwrap(),
            1
        );
        // Inside the open chunk, and a whole closed chunk plus a bit.
        assert_eq!(
            h.delete(&[Matcher::equal("__name__", "a")], 2500, 2600)
                .unwrap(),
            1
        );
        assert_eq!(
            h.delete(&[Matcher::equal("__name__", "a")], 1150, 2400)
                .unwrap(),
            1
        );
        let gone = [(100, 155), (1150, 2400), (2500, 2600)];
        assert_eq!(times(&db, "a"), expected(&gone, 300));
        assert_eq!(times(&db, "b"), expected(&[], 300));
        // Seeking lands past deleted samples.
        let q = db.querier(0, i64::MAX).unwrap();
        let mut s = q.select(&[Matcher::equal("__name__", "a")]).unwrap();
        assert_eq!(s[0].samples.seek(1200).map(|x| x.t), Some(2410));
        drop((s, q));
        // A series with every sample deleted is not selected; label values stay.
        assert_eq!(h.delete(&[Matcher::equal("job", "j")], 0, 95).unwrap(), 3);
        assert!(names(&db, &[Matcher::equal("__name__", "c")]).is_empty());
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        assert_eq!(q.label_values("__name__", &[]).unwrap(), ["a", "b", "c"]);
        // Nothing in range, or an inverted range, touches nothing.
        assert_eq!(
            h.delete(&[Matcher::equal("job", "j")], 5000, 6000).unwrap(),
            0
        );
        assert_eq!(h.delete(&[Matcher::equal("job", "j")], 10, 0).unwrap(), 0);
        assert_eq!(
            h.delete(&[Matcher::equal("job", "nope")], 0, 10).unwrap(),
            0
        );
    }

    #[test]
    fn blocks_leave_deleted_samples_out() {
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        db.head()
            .delete(&[Matcher::equal("__name__", "a")], 500, 1300)
            .unwrap();
        let got = db.head().chunks_in_range(0, 2000);
        let a = got
            .iter()
            .find(|(l, _)| l.metric_name() == Some("a"))
            .unwrap();
        let ts: Vec<i64> =
            a.1.iter()
                .flat_map(|c| crate::tsdb::chunkenc::XorIterator::new(&c.data).map(|(t, _)| t))
                .collect();
        assert_eq!(ts, expected(&[(500, 1300)], 200));
        for c in &a.1 {
            let first = crate::tsdb::chunkenc::XorIterator::new(&c.data)
                .next()
                .unwrap()
                .0;
            assert_eq!(first, c.mint);
        }
        // Through a block and the merged querier as well.
        db.write_block(0, 3000).unwrap();
        assert_eq!(times(&db, "a"), expected(&[(500, 1300)], 300));
    }

    #[test]
    fn tombstones_survive_restart_and_checkpoint_and_go_with_truncation() {
        let tmp = tempfile::tempdir().unwrap();
        let db = fixture(tmp.path());
        let h = db.head().clone();
        h.delete(&[Matcher::equal("__name__", "a")], 100, 200)
            .unwrap();
        h.delete(&[Matcher::equal("__name__", "b")], 2000, 2100)
            .unwrap();
        let want_a = expected(&[(100, 200)], 300);
        let want_b = expected(&[(2000, 2100)], 300);
        drop((h, db));
        let db = open(tmp.path());
        assert_eq!(
            (times(&db, "a"), times(&db, "b")),
            (want_a.clone(), want_b.clone())
        );
        let st = db.head().checkpoint(0).unwrap();
        assert_eq!(st.tombstones, 2);
        drop(db);
        let db = open(tmp.path());
        assert_eq!((times(&db, "a"), times(&db, "b")), (want_a, want_b.clone()));
        // A truncation past a's interval drops it; b's stays.
        let st = db.head().truncate(500).unwrap();
        assert_eq!(st.tombstones_removed, 1);
        assert_eq!(
            db.head().tombstones.snapshot(),
            vec![(2, vec![(2000, 2100)])]
        );
        let st = db.head().checkpoint(500).unwrap();
        assert_eq!(st.tombstones, 1);
        drop(db);
        let db = open(tmp.path());
        let after_bound: Vec<i64> = want_b.into_iter().filter(|t| *t >= 500).collect();
        assert_eq!(times(&db, "b"), after_bound);
        assert_eq!(
            db.head().tombstones.snapshot(),
            vec![(2, vec![(2000, 2100)])]
        );
    }

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
