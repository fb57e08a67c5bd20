//! The head's inverted index: interned label strings ([`Symbols`]), each series' labels
//! as a compact list of symbol ids ([`SeriesLabels`]), and label name -> value -> series
//! postings ([`MemPostings`]) that answer matchers the way Prometheus's
//! `PostingsForMatchers` does. Nothing here knows about samples, chunks or locks.

mod postings;
mod symbols;

pub mod stats;
pub use postings::{MemPostings, Postings, PostingsParts};
pub use symbols::{IdPin, IdReaders, SeriesLabels, Symbols};

use roaring::RoaringBitmap;

/// Intersects two postings lists (the operation at the heart of every multi-matcher
/// select), exposed for the benchmark.
pub fn intersect(a: &RoaringBitmap, b: &RoaringBitmap) -> RoaringBitmap {
    a & b
}

/// Prometheus's `PostingsForMatchers`, for any index: matchers that cannot match the
/// empty string select series (their postings are intersected); the others remove the
/// series whose value they reject, since a missing label counts as "". With no selecting
/// matcher, `all()` is the base. `values_matching(m, want)` is the union of postings of
/// `m.name`'s values `v` with `m.matches(v) == want`.
pub fn select_postings(
    matchers: &[crate::model::Matcher],
    all: impl FnOnce() -> RoaringBitmap,
    values_matching: impl Fn(&crate::model::Matcher, bool) -> RoaringBitmap,
) -> RoaringBitmap {
    let mut base: Option<RoaringBitmap> = None;
    for m in matchers.iter().filter(|m| !m.matches_empty()) {
        let p = values_matching(m, true);
        let next = match base.take() {
            None => p,
            Some(acc) => acc & p,
        };
        if next.is_empty() {
            return next;
        }
        base = Some(next);
    }
    let mut result = base.unwrap_or_else(all);
    for m in matchers.iter().filter(|m| m.matches_empty()) {
        if result.is_empty() {
            break;
        }
        result -= values_matching(m, false);
    }
    result
}
