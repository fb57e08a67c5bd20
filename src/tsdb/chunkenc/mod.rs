//! Chunk encodings: how one series' samples are packed into bytes. Only Prometheus's XOR
//! (Gorilla) encoding lives here, bit for bit compatible with `tsdb/chunkenc/xor.go`, so
//! chunks can later be written into Prometheus-format blocks unchanged. This module knows
//! nothing about series, locks or files; `docs/format/chunks.md` describes the bytes.

mod bstream;
mod xor;

pub use xor::{XorAppender, XorDecoder, XorIterator};

/// Prometheus cuts a head chunk after this many samples; so does cairn.
pub const SAMPLES_PER_CHUNK: u16 = 120;
