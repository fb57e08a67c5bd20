//! Interned label strings and the compact encoding of a series' labels as symbol ids.
//! Each distinct name or value is stored once; a series keeps only varint ids (about two
//! bytes per label name or value) instead of two `String`s per label. Each symbol counts
//! the series that use it; when the head collects series, [`Symbols::sweep`] frees the
//! strings no series uses any more and their ids are handed out again later, once no
//! reader that may have copied them ([`IdReaders`]) is still at work.

use crate::tsdb::varint::{get_uvarint, put_uvarint};
use hashbrown::HashTable;
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The string table. Ids are dense, in order of first use, and reused after a sweep.
pub struct Symbols {
    strs: Vec<Arc<str>>,
    /// Series using each id. Atomic so that series can be created and collected under
    /// the table's read lock; only [`Symbols::sweep`] (under the write lock) acts on zero.
    refs: Vec<AtomicU32>,
    lookup: HashTable<u32>,
    /// Swept ids with the epoch of the sweep that took them out of `lookup`: their
    /// strings are kept while a reader that began before that sweep may still resolve
    /// them, and at least until the next sweep.
    retired: Vec<(u64, u32)>,
    /// Ids ready to be handed out again.
    free: Vec<u32>,
    /// What a freed id resolves to.
    empty: Arc<str>,
    // Seeded per process: label values come from outside (remote write), so a fixed hash
    // would invite collision floods.
    state: foldhash::fast::RandomState,
}

impl Default for Symbols {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbols {
    pub fn new() -> Self {
        Symbols {
            strs: Vec::new(),
            refs: Vec::new(),
            lookup: HashTable::new(),
            retired: Vec::new(),
            free: Vec::new(),
            empty: Arc::from(""),
            state: foldhash::fast::RandomState::default(),
        }
    }

    /// Strings that can be looked up.
    pub fn len(&self) -> usize {
        self.lookup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lookup.is_empty()
    }

    /// The string for an id; the empty string for an id never handed out.
    pub fn get(&self, id: u32) -> &str {
        self.strs.get(id as usize).map_or("", |s| s)
    }

    /// The shared string for an id, to key the postings without copying it.
    pub fn get_arc(&self, id: u32) -> Option<&Arc<str>> {
        self.strs.get(id as usize)
    }

    pub fn lookup(&self, s: &str) -> Option<u32> {
        let h = self.state.hash_one(s);
        self.lookup
            .find(h, |&id| {
                self.strs.get(id as usize).is_some_and(|x| **x == *s)
            })
            .copied()
    }

    /// The id for `s`, adding it if new. A new string starts with no users: the series
    /// that uses it calls [`Symbols::retain`] before the table's lock is released, or a
    /// sweep may free it.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.lookup(s) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.strs[id as usize] = Arc::from(s);
                id
            }
            None => {
                self.strs.push(Arc::from(s));
                self.refs.push(AtomicU32::new(0));
                (self.strs.len() - 1) as u32
            }
        };
        let h = self.state.hash_one(s);
        let (strs, state) = (&self.strs, &self.state);
        self.lookup.insert_unique(h, id, |&i| {
            state.hash_one(strs.get(i as usize).map_or("", |s| &**s))
        });
        id
    }

    /// Counts one more series using `id`.
    #[inline]
    pub fn retain(&self, id: u32) {
        if let Some(r) = self.refs.get(id as usize) {
            r.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`Symbols::retain`] without an atomic operation, for a writer that holds the
    /// table exclusively (replay creates a million series this way).
    #[inline]
    pub fn retain_mut(&mut self, id: u32) {
        if let Some(r) = self.refs.get_mut(id as usize) {
            *r.get_mut() += 1;
        }
    }

    /// Counts one series fewer using `id`.
    #[inline]
    pub fn release(&self, id: u32) {
        if let Some(r) = self.refs.get(id as usize) {
            // Saturating: a miscount must not wrap into "used forever".
            let _ = r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Series using `id`.
    pub fn users(&self, id: u32) -> u32 {
        self.refs
            .get(id as usize)
            .map_or(0, |r| r.load(Ordering::Relaxed))
    }

    /// Frees the strings no series uses: they leave the lookup now and their ids are
    /// reused from a later sweep on, once every reader pinned in `readers` before this
    /// one has finished (see `retired`). Strings interned but never retained (their
    /// series creation lost a race) are freed too. Returns how many left the lookup.
    pub fn sweep(&mut self, readers: &IdReaders) -> usize {
        let (epoch, oldest) = readers.next_epoch();
        let strs = &mut self.strs;
        let (empty, free) = (&self.empty, &mut self.free);
        self.retired.retain(|&(at, id)| {
            // A reader pinned in epoch `at` or later began after the sweep that retired
            // `id`, when no series had it any more: it cannot hold the id.
            if at < epoch && at <= oldest {
                strs[id as usize] = empty.clone();
                free.push(id);
                false
            } else {
                true
            }
        });
        let mut n = 0;
        for (id, r) in self.refs.iter().enumerate() {
            if r.load(Ordering::Relaxed) != 0 || Arc::ptr_eq(&self.strs[id], &self.empty) {
                continue;
            }
            let s = &self.strs[id];
            let h = self.state.hash_one(&**s);
            // Retired ids are already out of the lookup; this finds only live ones.
            if let Ok(e) = self.lookup.find_entry(h, |&x| x == id as u32) {
                e.remove();
                self.retired.push((epoch, id as u32));
                n += 1;
            }
        }
        n
    }
}

/// The readers that copy symbol ids out of series (under a series stripe lock) and
/// resolve them later in short turns of the symbol lock, so that a sweep can tell
/// whether one of them may still hold an id it is about to free. Each sweep starts an
/// epoch; a reader pins the epoch it begins in until it has resolved its ids.
#[derive(Default)]
pub struct IdReaders(Mutex<Epochs>);

#[derive(Default)]
struct Epochs {
    current: u64,
    /// The epoch of each pinned reader (a handful: one per running query).
    pinned: Vec<u64>,
}

/// Keeps the ids a reader copies resolvable until dropped.
pub struct IdPin<'a> {
    readers: &'a IdReaders,
    epoch: u64,
}

impl IdReaders {
    /// Pins the current epoch. Take it before copying ids out of any series.
    pub fn pin(&self) -> IdPin<'_> {
        let mut g = self.0.lock();
        let epoch = g.current;
        g.pinned.push(epoch);
        IdPin {
            readers: self,
            epoch,
        }
    }

    /// Starts a sweep's epoch: returns it and the oldest epoch still pinned (the new one
    /// when no reader is pinned).
    fn next_epoch(&self) -> (u64, u64) {
        let mut g = self.0.lock();
        g.current += 1;
        let oldest = g.pinned.iter().copied().min().unwrap_or(g.current);
        (g.current, oldest)
    }
}

impl Drop for IdPin<'_> {
    fn drop(&mut self) {
        let mut g = self.readers.0.lock();
        if let Some(i) = g.pinned.iter().position(|&e| e == self.epoch) {
            g.pinned.swap_remove(i);
        }
    }
}

/// A series' labels as varint symbol ids: `name, value, name, value, ...` in label order.
/// Two series with equal labels have equal encodings, so identity checks compare bytes.
pub struct SeriesLabels;

impl SeriesLabels {
    /// Appends one label's ids.
    #[inline]
    pub fn push(out: &mut Vec<u8>, name: u32, value: u32) {
        put_uvarint(out, u64::from(name));
        put_uvarint(out, u64::from(value));
    }

    /// The `(name, value)` id pairs of an encoding.
    pub fn pairs(enc: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let n = get_uvarint(enc, &mut pos)?;
            let v = get_uvarint(enc, &mut pos)?;
            Some((n as u32, v as u32))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intern_is_idempotent_and_dense() {
        let mut s = Symbols::new();
        assert_eq!(s.lookup("a"), None);
        let a = s.intern("a");
        let b = s.intern("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.intern("a"), 0);
        assert_eq!(s.lookup("b"), Some(1));
        assert_eq!(s.get(1), "b");
        assert_eq!(s.get(99), "");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn survives_table_growth_and_odd_strings() {
        let mut s = Symbols::new();
        let strs: Vec<String> = (0..5000).map(|i| format!("v{i}\u{e9}\n")).collect();
        for (i, x) in strs.iter().enumerate() {
            assert_eq!(s.intern(x), i as u32);
        }
        s.intern("");
        for (i, x) in strs.iter().enumerate() {
            assert_eq!(s.lookup(x), Some(i as u32));
        }
        assert_eq!(s.lookup(""), Some(5000));
    }

    #[test]
    fn sweep_frees_unused_strings_and_reuses_ids_one_sweep_later() {
        let mut s = Symbols::new();
        let readers = IdReaders::default();
        let (a, b, c) = (s.intern("a"), s.intern("b"), s.intern("c"));
        s.retain(a);
        s.retain(b);
        s.retain_mut(b);
        s.release(b);
        // c was never retained: it goes too.
        assert_eq!(s.sweep(&readers), 1);
        assert_eq!(
            (s.lookup("c"), s.get(c)),
            (None, "c"),
            "kept for late readers"
        );
        assert_eq!(s.len(), 2);
        s.release(b);
        s.release(b);
        assert_eq!(s.users(b), 0, "release saturates at zero");
        assert_eq!(s.sweep(&readers), 1);
        assert_eq!(s.get(c), "", "freed on the second sweep");
        assert_eq!((s.lookup("b"), s.get(b)), (None, "b"));
        // c's id is reused; b's only after one more sweep.
        assert_eq!(s.intern("d"), c);
        s.retain(c);
        assert_eq!(s.intern("e"), 3);
        s.retain(3);
        s.sweep(&readers);
        assert_eq!(s.intern("f"), b);
        assert_eq!(s.lookup("a"), Some(a));
        assert_eq!(s.lookup("d"), Some(c));
        assert_eq!(s.lookup("b"), None);
        // A string interned again after it was freed gets a working id.
        let b2 = s.intern("b");
        assert_eq!((s.lookup("b"), s.get(b2)), (Some(b2), "b"));
    }

    #[test]
    fn a_pinned_reader_keeps_ids_it_may_hold_until_it_is_done() {
        let mut s = Symbols::new();
        let readers = IdReaders::default();
        let a = s.intern("a");
        s.retain(a);
        // The reader copies `a` out of its series; then the series goes.
        let early = readers.pin();
        s.release(a);
        assert_eq!(s.sweep(&readers), 1);
        // A reader that begins now cannot see `a`'s series: it holds nothing back.
        let late = readers.pin();
        s.sweep(&readers);
        s.sweep(&readers);
        assert_eq!(s.get(a), "a", "the early reader may still resolve it");
        assert_eq!(s.intern("b"), 1, "not reused either");
        s.retain(1);
        drop(early);
        s.sweep(&readers);
        assert_eq!(s.get(a), "");
        assert_eq!(s.intern("c"), a);
        drop(late);
        assert!(readers.0.lock().pinned.is_empty());
    }

    #[test]
    fn series_labels_pairs() {
        let mut enc = Vec::new();
        SeriesLabels::push(&mut enc, 0, 300);
        SeriesLabels::push(&mut enc, 2, 1);
        assert_eq!(enc.len(), 5);
        let p: Vec<_> = SeriesLabels::pairs(&enc).collect();
        assert_eq!(p, vec![(0, 300), (2, 1)]);
        assert_eq!(SeriesLabels::pairs(&[]).count(), 0);
    }
}
