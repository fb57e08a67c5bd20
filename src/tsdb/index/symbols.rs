//! Interned label strings and the compact encoding of a series' labels as symbol ids.
//! Each distinct name or value is stored once; a series keeps only varint ids (about two
//! bytes per label name or value) instead of two `String`s per label. Symbols are never
//! removed (the head has no garbage collection yet).

use crate::tsdb::varint::{get_uvarint, put_uvarint};
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::Arc;

/// The string table. Ids are dense, in order of first use.
pub struct Symbols {
    strs: Vec<Arc<str>>,
    lookup: HashTable<u32>,
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
            lookup: HashTable::new(),
            state: foldhash::fast::RandomState::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.strs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strs.is_empty()
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

    /// The id for `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.lookup(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        self.strs.push(Arc::from(s));
        let h = self.state.hash_one(s);
        let (strs, state) = (&self.strs, &self.state);
        self.lookup.insert_unique(h, id, |&i| {
            state.hash_one(strs.get(i as usize).map_or("", |s| &**s))
        });
        id
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
