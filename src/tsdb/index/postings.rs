//! Postings: for every label name and value, the set of series refs carrying it, plus the
//! set of all indexed series. Values per name are kept in a `BTreeMap` so prefix matchers
//! scan one key range. Matchers are resolved here with Prometheus's semantics (a label a
//! series lacks has the value ""): matchers that cannot match "" are intersected, the rest
//! are subtracted, so `{a!="x"}` keeps series without `a`.

use crate::model::{MatchType, Matcher};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;
use std::sync::Arc;

/// Lists up to this long stay a sorted array; longer ones become a roaring bitmap. A
/// roaring bitmap costs ~200 bytes even for one entry, and most values of high-cardinality
/// labels (pod, path, id) belong to one or a few series.
const LIST_MAX: usize = 32;

/// The series holding one label pair.
#[derive(Clone, Debug)]
pub enum Postings {
    One(u32),
    /// Sorted, unique, at most `LIST_MAX` long.
    List(Box<[u32]>),
    Bitmap(RoaringBitmap),
}

impl Postings {
    /// Postings of refs given in increasing order, built in one pass.
    pub fn from_sorted(refs: &[u32]) -> Postings {
        match refs {
            [one] => Postings::One(*one),
            _ if refs.len() <= LIST_MAX => Postings::List(refs.into()),
            _ => match RoaringBitmap::from_sorted_iter(refs.iter().copied()) {
                Ok(b) => Postings::Bitmap(b),
                // Not sorted after all: the slow way gives the same set.
                Err(_) => Postings::Bitmap(refs.iter().copied().collect()),
            },
        }
    }

    /// Adds `r` (a no-op if present).
    pub fn insert(&mut self, r: u32) {
        match self {
            Postings::One(x) if *x == r => {}
            Postings::One(x) => {
                let (a, b) = if *x < r { (*x, r) } else { (r, *x) };
                *self = Postings::List(Box::new([a, b]));
            }
            Postings::List(l) => {
                let Err(at) = l.binary_search(&r) else { return };
                if l.len() >= LIST_MAX {
                    let mut bm: RoaringBitmap = l.iter().copied().collect();
                    bm.insert(r);
                    *self = Postings::Bitmap(bm);
                } else {
                    let mut v = Vec::with_capacity(l.len() + 1);
                    v.extend_from_slice(&l[..at]);
                    v.push(r);
                    v.extend_from_slice(&l[at..]);
                    *l = v.into_boxed_slice();
                }
            }
            Postings::Bitmap(b) => {
                // Not `try_push`: a bitmap container finds its maximum by scanning back
                // from its end, which costs more than the insert.
                b.insert(r);
            }
        }
    }

    /// Removes `r`; true when nothing is left. A bitmap that shrinks to half the list
    /// limit becomes a list again (not at the limit, so churn does not flip it back and
    /// forth).
    fn remove(&mut self, r: u32) -> bool {
        match self {
            Postings::One(x) => *x == r,
            Postings::List(l) => {
                let Ok(at) = l.binary_search(&r) else {
                    return false;
                };
                if l.len() == 2 {
                    *self = Postings::One(l[1 - at]);
                } else {
                    let mut v = l.to_vec();
                    v.remove(at);
                    *l = v.into_boxed_slice();
                }
                false
            }
            Postings::Bitmap(b) => {
                b.remove(r);
                if b.len() <= (LIST_MAX / 2) as u64 {
                    let v: Vec<u32> = b.iter().collect();
                    *self = match v.as_slice() {
                        [] => return true,
                        [one] => Postings::One(*one),
                        _ => Postings::List(v.into_boxed_slice()),
                    };
                }
                false
            }
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Postings::One(_) => 1,
            Postings::List(l) => l.len() as u64,
            Postings::Bitmap(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds these series to `out`.
    pub fn union_into(&self, out: &mut RoaringBitmap) {
        match self {
            Postings::One(x) => {
                out.insert(*x);
            }
            Postings::List(l) => {
                for &x in l.iter() {
                    out.insert(x);
                }
            }
            Postings::Bitmap(b) => *out |= b,
        }
    }

    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Postings::Bitmap(b) => b.clone(),
            other => {
                let mut out = RoaringBitmap::new();
                other.union_into(&mut out);
                out
            }
        }
    }
}

type Values = BTreeMap<Arc<str>, Postings>;

/// Postings built apart: per part, label names with their (value, postings) pairs.
pub type PostingsParts = Vec<Vec<(Arc<str>, Vec<(Arc<str>, Postings)>)>>;

/// Label name -> value -> postings, and all indexed series.
#[derive(Default)]
pub struct MemPostings {
    names: BTreeMap<Arc<str>, Values>,
    all: RoaringBitmap,
}

impl MemPostings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes series `r` under each of its labels. Idempotent.
    pub fn add<'a>(
        &mut self,
        r: u32,
        labels: impl IntoIterator<Item = (&'a Arc<str>, &'a Arc<str>)>,
    ) {
        self.all.insert(r);
        for (name, value) in labels {
            self.add_pair(r, name, value);
        }
    }

    /// Indexes series `r` under one label pair (not in [`MemPostings::all`]).
    pub fn add_pair(&mut self, r: u32, name: &Arc<str>, value: &Arc<str>) {
        let values = match self.names.get_mut(&**name) {
            Some(v) => v,
            None => self.names.entry(name.clone()).or_default(),
        };
        // One descent of the (possibly huge) value map, found or not.
        match values.entry(value.clone()) {
            Entry::Occupied(mut e) => e.get_mut().insert(r),
            Entry::Vacant(e) => {
                e.insert(Postings::One(r));
            }
        }
    }

    /// Adds series `r` to [`MemPostings::all`] only.
    pub fn add_to_all(&mut self, r: u32) {
        self.all.insert(r);
    }

    /// Builds postings from parts made apart (in parallel), each a list of label names
    /// with their values and postings, values sorted within a part. No label pair may
    /// be in two parts. Sorting the concatenated runs merges them, and a sorted run
    /// builds each value map in one pass: far cheaper than inserting pair by pair.
    pub fn from_parts(parts: PostingsParts, all: RoaringBitmap) -> MemPostings {
        let mut by_name: BTreeMap<Arc<str>, Vec<(Arc<str>, Postings)>> = BTreeMap::new();
        for part in parts {
            for (name, values) in part {
                by_name.entry(name).or_default().extend(values);
            }
        }
        let names = by_name
            .into_iter()
            .map(|(name, mut values)| {
                // The parts' runs are sorted already; the sort merges them.
                values.sort_by(|a, b| a.0.cmp(&b.0));
                debug_assert!(values.windows(2).all(|w| w[0].0 != w[1].0));
                (name, values.into_iter().collect::<Values>())
            })
            .collect();
        MemPostings { names, all }
    }

    /// Takes series `r` out of the postings of each of its labels, dropping values and
    /// names no series has any more.
    pub fn remove<'a>(&mut self, r: u32, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
        if !self.all.remove(r) {
            return;
        }
        for (name, value) in labels {
            let Some(values) = self.names.get_mut(name) else {
                continue;
            };
            if values.get_mut(value).is_some_and(|p| p.remove(r)) {
                values.remove(value);
                if values.is_empty() {
                    self.names.remove(name);
                }
            }
        }
    }

    /// Every indexed series.
    pub fn all(&self) -> &RoaringBitmap {
        &self.all
    }

    /// Label names, sorted.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(|k| &**k)
    }

    /// Values of one label name, sorted.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.names
            .get(name)
            .into_iter()
            .flat_map(|v| v.keys().map(|k| &**k))
    }

    /// Values of one label name, sorted, as shared strings (cheap to collect under a lock).
    pub fn label_values_shared(&self, name: &str) -> Vec<Arc<str>> {
        self.names
            .get(name)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn get(&self, name: &str, value: &str) -> Option<&Postings> {
        self.names.get(name)?.get(value)
    }

    /// The series matching every matcher (Prometheus's `PostingsForMatchers`). Matchers
    /// that cannot match the empty string select series; the others remove the series
    /// whose value they reject. With no selecting matcher, all series are the base.
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        crate::tsdb::index::select_postings(
            matchers,
            || self.all.clone(),
            |m, want| self.values_matching(m, want),
        )
    }

    /// The union of postings of `m.name`'s values `v` with `m.matches(v) == want`, found
    /// without running the regex where the matcher is a literal, an alternation or a
    /// prefix.
    fn values_matching(&self, m: &Matcher, want: bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some(values) = self.names.get(m.name.as_str()) else {
            return out;
        };
        match (m.kind, want) {
            (MatchType::Equal, true) | (MatchType::NotEqual, false) => {
                if let Some(p) = values.get(m.value.as_str()) {
                    p.union_into(&mut out);
                }
            }
            (MatchType::Regex, true) => regex_values(m, values, &mut out),
            (MatchType::NotRegex, false) => {
                // The values a negated regex rejects are those its regex accepts.
                match Matcher::new(MatchType::Regex, m.name.clone(), m.value.clone()) {
                    Ok(inverse) => regex_values(&inverse, values, &mut out),
                    Err(_) => scan(values, |v| !m.matches(v), &mut out),
                }
            }
            (MatchType::Regex, false) if m.prefix() == Some("") => {}
            (MatchType::NotRegex, true) if m.value == ".*" => {}
            _ => scan(values, |v| m.matches(v) == want, &mut out),
        }
        out
    }
}

/// Postings of the values a `=~` matcher accepts.
fn regex_values(m: &Matcher, values: &Values, out: &mut RoaringBitmap) {
    if let Some(set) = m.set_values() {
        for v in set {
            if let Some(p) = values.get(v.as_str()) {
                p.union_into(out);
            }
        }
    } else if let Some(prefix) = m.prefix() {
        let range = values.range::<str, _>((Bound::Included(prefix), Bound::Unbounded));
        for (_, p) in range.take_while(|(k, _)| k.starts_with(prefix)) {
            p.union_into(out);
        }
    } else if m.value == ".+" {
        // Any non-empty value, and stored values are never empty.
        for p in values.values() {
            p.union_into(out);
        }
    } else {
        scan(values, |v| m.matches(v), out);
    }
}

fn scan(values: &Values, keep: impl Fn(&str) -> bool, out: &mut RoaringBitmap) {
    for (v, p) in values {
        if keep(v) {
            p.union_into(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    /// Series 1..=6:
    /// 1 {__name__=up, job=api, path=/a}
    /// 2 {__name__=up, job=api, path=/b}
    /// 3 {__name__=up, job=db}
    /// 4 {__name__=up, job=api_v2, path=/a}
    /// 5 {__name__=errors, job=db, path=}        (no path)
    /// 6 {__name__=errors, job=apix, path=/c\n}
    fn fixture() -> MemPostings {
        let rows: [&[(&str, &str)]; 6] = [
            &[("__name__", "up"), ("job", "api"), ("path", "/a")],
            &[("__name__", "up"), ("job", "api"), ("path", "/b")],
            &[("__name__", "up"), ("job", "db")],
            &[("__name__", "up"), ("job", "api_v2"), ("path", "/a")],
            &[("__name__", "errors"), ("job", "db")],
            &[("__name__", "errors"), ("job", "apix"), ("path", "/c\n")],
        ];
        let mut p = MemPostings::new();
        for (i, row) in rows.iter().enumerate() {
            let pairs: Vec<(Arc<str>, Arc<str>)> =
                row.iter().map(|(n, v)| (arc(n), arc(v))).collect();
            p.add(i as u32 + 1, pairs.iter().map(|(n, v)| (n, v)));
        }
        p
    }

    fn sel(p: &MemPostings, ms: &[(&str, MatchType, &str)]) -> Vec<u32> {
        let ms: Vec<Matcher> = ms
            .iter()
            .map(|(n, k, v)| Matcher::new(*k, *n, *v).unwrap())
            .collect();
        p.select(&ms).iter().collect()
    }

    use MatchType::{Equal as EQ, NotEqual as NE, NotRegex as NRE, Regex as RE};

    #[test]
    fn matcher_table() {
        let p = fixture();
        type Case<'a> = (&'a [(&'a str, MatchType, &'a str)], &'a [u32]);
        let cases: &[Case] = &[
            (&[("__name__", EQ, "up")], &[1, 2, 3, 4]),
            (&[("__name__", EQ, "nope")], &[]),
            (&[("nolabel", EQ, "x")], &[]),
            (&[("__name__", EQ, "up"), ("job", EQ, "api")], &[1, 2]),
            (&[("__name__", EQ, "up"), ("job", NE, "api")], &[3, 4]),
            // != keeps series without the label.
            (&[("__name__", EQ, "up"), ("path", NE, "/a")], &[2, 3]),
            (&[("job", NE, "db")], &[1, 2, 4, 6]),
            // ="" selects series lacking the label.
            (&[("__name__", EQ, "up"), ("path", EQ, "")], &[3]),
            // !="" selects series having it.
            (&[("path", NE, "")], &[1, 2, 4, 6]),
            // Alternation, answered from the index.
            (&[("job", RE, "api|db")], &[1, 2, 3, 5]),
            (&[("job", RE, "api|nope")], &[1, 2]),
            // Alternation including "" matches series without the label.
            (&[("__name__", EQ, "up"), ("path", RE, "/b|")], &[2, 3]),
            (&[("job", NRE, "api|db")], &[4, 6]),
            // Prefix, answered from a key range.
            (&[("job", RE, "api.*")], &[1, 2, 4, 6]),
            (&[("job", RE, "api_.*")], &[4]),
            (&[("job", NRE, "api.*")], &[3, 5]),
            (&[("path", RE, "/c.*")], &[6]),
            // General regexes.
            (&[("job", RE, "a.i")], &[1, 2]),
            (&[("job", RE, "(?i)DB")], &[3, 5]),
            (&[("job", NRE, "a.i|d.")], &[4, 6]),
            (&[("path", RE, "/.")], &[1, 2, 4]),
            (&[("path", RE, ".+")], &[1, 2, 4, 6]),
            (&[("path", RE, ".*")], &[1, 2, 3, 4, 5, 6]),
            (&[("__name__", EQ, "up"), ("path", NRE, ".+")], &[3]),
            (&[("path", NRE, ".*")], &[]),
            (&[("__name__", EQ, "errors"), ("path", NRE, "")], &[6]),
            (&[("path", RE, "")], &[3, 5]),
            // Only empty-matching matchers: the base is every series.
            (&[("path", NE, "/a")], &[2, 3, 5, 6]),
            (&[], &[1, 2, 3, 4, 5, 6]),
            // Contradictions.
            (&[("job", EQ, "api"), ("job", EQ, "db")], &[]),
            (&[("job", EQ, "api"), ("job", NE, "api")], &[]),
        ];
        for (ms, want) in cases {
            assert_eq!(sel(&p, ms), *want, "matchers {ms:?}");
        }
    }

    #[test]
    fn index_agrees_with_brute_force() {
        let p = fixture();
        let series: Vec<Vec<(&str, &str)>> = vec![
            vec![("__name__", "up"), ("job", "api"), ("path", "/a")],
            vec![("__name__", "up"), ("job", "api"), ("path", "/b")],
            vec![("__name__", "up"), ("job", "db")],
            vec![("__name__", "up"), ("job", "api_v2"), ("path", "/a")],
            vec![("__name__", "errors"), ("job", "db")],
            vec![("__name__", "errors"), ("job", "apix"), ("path", "/c\n")],
        ];
        let patterns = [
            "", "api", "api|db", "api.*", ".*", ".+", "a.*x", "/a|", "(db)", "x|y|",
        ];
        for name in ["job", "path", "missing"] {
            for pat in patterns {
                for kind in [EQ, NE, RE, NRE] {
                    let m = Matcher::new(kind, name, pat).unwrap();
                    let want: Vec<u32> = series
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| {
                            let v = s.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v);
                            m.matches(v)
                        })
                        .map(|(i, _)| i as u32 + 1)
                        .collect();
                    let got: Vec<u32> = p.select(std::slice::from_ref(&m)).iter().collect();
                    assert_eq!(got, want, "{m}");
                }
            }
        }
    }

    #[test]
    fn postings_grow_from_one_to_bitmap() {
        let mut p = Postings::One(10);
        p.insert(10);
        assert!(matches!(p, Postings::One(10)));
        p.insert(5);
        assert!(matches!(&p, Postings::List(l) if **l == [5, 10]));
        for r in (100..100 + LIST_MAX as u32).rev() {
            p.insert(r);
        }
        assert!(matches!(p, Postings::Bitmap(_)));
        assert_eq!(p.len(), 2 + LIST_MAX as u64);
        let b = p.to_bitmap();
        assert!(b.contains(5) && b.contains(100) && !b.contains(6));
    }

    #[test]
    fn from_sorted_picks_the_smallest_shape() {
        assert!(matches!(Postings::from_sorted(&[7]), Postings::One(7)));
        assert!(matches!(Postings::from_sorted(&[1, 5]), Postings::List(l) if *l == [1, 5]));
        let many: Vec<u32> = (0..100).map(|i| i * 3).collect();
        let p = Postings::from_sorted(&many);
        assert!(matches!(p, Postings::Bitmap(_)));
        assert_eq!(p.to_bitmap().iter().collect::<Vec<_>>(), many);
        let unsorted: Vec<u32> = (0..40).rev().collect();
        assert_eq!(Postings::from_sorted(&unsorted).len(), 40);
    }

    #[test]
    fn postings_shrink_back_as_series_leave() {
        let mut p = Postings::One(1);
        for r in 2..=40 {
            p.insert(r);
        }
        assert!(matches!(p, Postings::Bitmap(_)));
        assert!(!p.remove(99));
        for r in 1..=24 {
            assert!(!p.remove(r), "{r}");
        }
        assert!(matches!(&p, Postings::List(l) if l.len() == 16 && l[0] == 25));
        for r in 25..=39 {
            assert!(!p.remove(r));
        }
        assert!(matches!(p, Postings::One(40)));
        assert!(!p.remove(39));
        assert!(p.remove(40));
    }

    #[test]
    fn parts_built_apart_make_one_index() {
        let mut parts: Vec<BTreeMap<Arc<str>, Values>> = vec![BTreeMap::new(); 3];
        let mut all = RoaringBitmap::new();
        let mut whole = MemPostings::new();
        for r in (1..200u32).rev() {
            let labels = [
                (arc("job"), arc(&format!("j{}", r % 7))),
                (arc("id"), arc(&format!("{r:04}"))),
            ];
            whole.add(r, labels.iter().map(|(n, v)| (n, v)));
            all.insert(r);
            for (n, v) in &labels {
                // Partitioned by value: every series of a pair lands in one part.
                let k = v.bytes().map(usize::from).sum::<usize>() % 3;
                let values = parts[k].entry(n.clone()).or_default();
                match values.get_mut(v) {
                    Some(p) => p.insert(r),
                    None => {
                        values.insert(v.clone(), Postings::One(r));
                    }
                }
            }
        }
        let parts: PostingsParts = parts
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|(n, values)| (n, values.into_iter().collect()))
                    .collect()
            })
            .collect();
        let merged = MemPostings::from_parts(parts, all);
        assert_eq!(merged.all(), whole.all());
        assert_eq!(
            merged.label_names().collect::<Vec<_>>(),
            whole.label_names().collect::<Vec<_>>()
        );
        for name in ["job", "id"] {
            let got: Vec<_> = merged.label_values(name).collect();
            assert_eq!(got, whole.label_values(name).collect::<Vec<_>>());
            for v in got {
                assert_eq!(
                    merged.get(name, v).map(Postings::to_bitmap),
                    whole.get(name, v).map(Postings::to_bitmap)
                );
            }
        }
    }

    #[test]
    fn remove_drops_empty_values_and_names() {
        let mut p = MemPostings::new();
        let (job, a, b, x, y) = (arc("job"), arc("a"), arc("b"), arc("x"), arc("y"));
        p.add(1, [(&job, &a), (&x, &y)]);
        p.add(2, [(&job, &a)]);
        p.add(3, [(&job, &b)]);
        p.remove(1, [("job", "a"), ("x", "y")]);
        assert_eq!(p.label_names().collect::<Vec<_>>(), ["job"]);
        assert_eq!(p.label_values("job").collect::<Vec<_>>(), ["a", "b"]);
        p.remove(2, [("job", "a")]);
        assert_eq!(p.label_values("job").collect::<Vec<_>>(), ["b"]);
        // Removing twice, or a series never added, changes nothing.
        p.remove(2, [("job", "b")]);
        assert_eq!(p.get("job", "b").map(Postings::len), Some(1));
        assert_eq!(p.all().iter().collect::<Vec<_>>(), [3]);
        p.remove(3, [("job", "b")]);
        assert_eq!(p.label_names().count(), 0);
        assert!(p.all().is_empty());
    }

    #[test]
    fn names_and_values_sorted() {
        let p = fixture();
        assert_eq!(
            p.label_names().collect::<Vec<_>>(),
            ["__name__", "job", "path"]
        );
        assert_eq!(
            p.label_values("job").collect::<Vec<_>>(),
            ["api", "api_v2", "apix", "db"]
        );
        assert_eq!(p.label_values("nope").count(), 0);
        assert_eq!(p.get("job", "db").map(Postings::len), Some(2));
        assert_eq!(p.all().len(), 6);
    }
}
