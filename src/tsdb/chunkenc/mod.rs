//! Chunk encodings: how one series' samples are packed into bytes. Prometheus's XOR
//! (Gorilla) encoding, bit for bit compatible with `tsdb/chunkenc/xor.go`, is what the
//! head appends to, one sample at a time; cairn's packed encoding, built from a whole
//! chunk's samples at once and several times denser on real data, is what blocks hold.
//! This module knows nothing about series, locks or files; `docs/format/chunks.md`
//! describes the bytes of both.

mod bstream;
pub mod packed;
mod xor;

pub use packed::PackedEncoder;
pub use xor::{XorAppender, XorDecoder, XorIterator};

/// Prometheus cuts a head chunk after this many samples; so does cairn.
pub const SAMPLES_PER_CHUNK: u16 = 120;
