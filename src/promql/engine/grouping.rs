//! Grouping series by a subset of their labels (`by`, `without`, a histogram's buckets
//! without `le`): a series finds its group by hashing the labels it keeps and comparing
//! them in place with the group's, so only the first series of each group builds a
//! label set, however many series share it.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;

use crate::model::{Label, Labels};

/// Groups in order of first appearance, each with the labels its members keep.
pub(super) struct Groups {
    labels: Vec<Labels>,
    hashes: Vec<u64>,
    table: HashTable<usize>,
    // Seeded per process: label values come from outside.
    state: foldhash::fast::RandomState,
}

impl Groups {
    pub fn new() -> Self {
        Groups {
            labels: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::new(),
            state: foldhash::fast::RandomState::default(),
        }
    }

    /// The group of a series with `labels`, keeping those for which `keep` holds.
    pub fn group_of(&mut self, labels: &Labels, keep: impl Fn(&Label) -> bool) -> usize {
        let kept = || labels.iter().filter(|l| keep(l));
        let mut h = self.state.build_hasher();
        for l in kept() {
            // A separator no label string holds, so `a="bc"` and `ab="c"` differ.
            h.write(l.name.as_bytes());
            h.write_u8(0xff);
            h.write(l.value.as_bytes());
            h.write_u8(0xff);
        }
        let hash = h.finish();
        if let Some(&g) = self.table.find(hash, |&g| self.labels[g].iter().eq(kept())) {
            return g;
        }
        let g = self.labels.len();
        self.labels
            .push(Labels::from_sorted(kept().cloned().collect()));
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table.insert_unique(hash, g, |&g| hashes[g]);
        g
    }

    pub fn into_labels(self) -> Vec<Labels> {
        self.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_with_equal_kept_labels_share_a_group() {
        let l = |p: &[(&str, &str)]| Labels::from_pairs(p.iter().copied());
        let mut g = Groups::new();
        let by_job = |x: &Label| x.name == "job";
        assert_eq!(g.group_of(&l(&[("i", "1"), ("job", "a")]), by_job), 0);
        assert_eq!(g.group_of(&l(&[("i", "2"), ("job", "b")]), by_job), 1);
        assert_eq!(g.group_of(&l(&[("i", "3"), ("job", "a")]), by_job), 0);
        assert_eq!(g.group_of(&l(&[("i", "4")]), by_job), 2);
        // Boundaries between name and value count.
        let all = |_: &Label| true;
        assert_eq!(g.group_of(&l(&[("a", "bc")]), all), 3);
        assert_eq!(g.group_of(&l(&[("ab", "c")]), all), 4);
        let labels = g.into_labels();
        assert_eq!(labels.len(), 5);
        assert_eq!(labels[0], l(&[("job", "a")]));
        assert_eq!(labels[2], Labels::empty());
        assert_eq!(labels[4], l(&[("ab", "c")]));
    }
}
