//! Block chunk encodings side by side: bytes per sample of XOR and packed chunks on the
//! side-by-side harness's history (its synthetic service, 24 h at 30 s with scrape
//! jitter, as `benches/compare` remote-writes it), and decode speed of both (samples/s).
//!
//! `cargo bench --bench chunk_encoding -- --warm-up-time 1 --measurement-time 3`
//! (`CAIRN_BENCH_FIGURES=0` skips the bytes-per-sample figures)

#[path = "compare/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

use cairn::model::Sample;
use cairn::tsdb::chunkenc::{PackedEncoder, XorAppender, XorIterator, packed};
use criterion::{Criterion, Throughput};
use std::hint::black_box;

const STEP_MS: i64 = 30_000;

/// Every series of `instances` synthetic services over `hours`, one sample per series
/// every 30 s plus the instance's jitter of 0..20 ms (as `compare/remote_write.rs`).
fn history(instances: usize, series: usize, hours: i64) -> Vec<Vec<Sample>> {
    let steps = hours * 3_600_000 / STEP_MS;
    let mut out = Vec::new();
    for i in 0..instances {
        let mut m = loadgen::TargetModel::new(1000 + i as u64, series);
        let first = out.len();
        out.resize_with(first + m.series_count(), Vec::new);
        for r in 0..=steps {
            m.advance(STEP_MS as f64 / 1000.0);
            let jitter = (loadgen::Rng::new(((i as u64) << 40) ^ r as u64).next_u64() % 20) as i64;
            let t = 1_700_000_000_000 + r * STEP_MS + jitter;
            m.for_each_value(|k, v| out[first + k].push(Sample { t, v }));
        }
    }
    out
}

fn xor_bytes(s: &[Sample]) -> usize {
    s.chunks(120)
        .map(|c| {
            let mut a = XorAppender::new();
            c.iter().for_each(|s| a.append(s.t, s.v));
            a.bytes().len()
        })
        .sum()
}

fn packed_bytes(enc: &mut PackedEncoder, s: &[Sample], per_chunk: usize) -> usize {
    let mut buf = Vec::new();
    s.chunks(per_chunk)
        .map(|c| {
            buf.clear();
            if enc.encode(c, &mut buf) { buf.len() } else { xor_bytes(c) }
        })
        .sum()
}

fn figures() {
    let data = history(10, 500, 24);
    let samples: usize = data.iter().map(Vec::len).sum();
    let mut enc = PackedEncoder::new();
    let xor: usize = data.iter().map(|s| xor_bytes(s)).sum();
    println!("history: {} series, {samples} samples", data.len());
    println!("  xor, 120/chunk:      {:.3} B/sample", xor as f64 / samples as f64);
    for per in [120, 240, 480, 1024] {
        let b: usize = data.iter().map(|s| packed_bytes(&mut enc, s, per)).sum();
        println!("  packed, {per:4}/chunk: {:.3} B/sample", b as f64 / samples as f64);
    }
    // The same without jitter: what the timestamps cost.
    let regular: Vec<Vec<Sample>> = data
        .iter()
        .map(|s| s.iter().map(|x| Sample { t: x.t / STEP_MS * STEP_MS, v: x.v }).collect())
        .collect();
    let b: usize = regular.iter().map(|s| packed_bytes(&mut enc, s, 1024)).sum();
    println!("  packed, 1024/chunk, regular timestamps: {:.3} B/sample", b as f64 / samples as f64);
}

fn main() {
    if std::env::var("CAIRN_BENCH_FIGURES").as_deref() != Ok("0") {
        figures();
    }
    let mut c = Criterion::default().configure_from_args();
    c.final_summary();
}
