//! The head's inverted index: interned label strings ([`Symbols`]), each series' labels
//! as a compact list of symbol ids ([`SeriesLabels`]), and label name -> value -> series
//! postings ([`MemPostings`]) that answer matchers the way Prometheus's
//! `PostingsForMatchers` does. Nothing here knows about samples, chunks or locks.

mod postings;
mod symbols;

pub use postings::{MemPostings, Postings};
pub use symbols::{SeriesLabels, Symbols};

use roaring::RoaringBitmap;

/// Intersects two postings lists (the operation at the heart of every multi-matcher
/// select), exposed for the benchmark.
pub fn intersect(a: &RoaringBitmap, b: &RoaringBitmap) -> RoaringBitmap {
    a & b
}
