//! Block chunk encodings side by side: bytes per sample of XOR and packed chunks on the
//! side-by-side harness's history (its synthetic service, 24 h at 30 s with scrape
//! jitter, as `benches/compare` remote-writes it), and decode speed of both (samples/s).
//!
//! The bytes-per-sample figures come from blocks written through the real
//! `BlockWriter` (chunks, index and meta.json on disk, divided by the samples): XOR
//! chunks of 120 samples as cairn wrote them before, and what it writes now.
//!
//! `cargo bench --bench chunk_encoding -- --warm-up-time 1 --measurement-time 3`
//! (`CAIRN_BENCH_FIGURES=0` skips the bytes-per-sample figures)

#[path = "compare/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

use cairn::model::{Labels, Sample};
use cairn::tsdb::block::chunks::ENC_XOR;
use cairn::tsdb::block::{
    Block, BlockCompaction, BlockMeta, BlockStats, BlockWriter, META_VERSION,
};
use cairn::tsdb::chunkenc::{PackedEncoder, XorAppender, XorDecoder, packed};
use criterion::{Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;

const STEP_MS: i64 = 30_000;

/// Every series of `instances` synthetic services over `hours`, one sample per series
/// every 30 s plus the instance's jitter of 0..20 ms (as `compare/remote_write.rs`).
fn history(instances: usize, series: usize, hours: i64) -> Vec<(Labels, Vec<Sample>)> {
    let steps = hours * 3_600_000 / STEP_MS;
    let mut out = Vec::new();
    for i in 0..instances {
        let mut m = loadgen::TargetModel::new(1000 + i as u64, series);
        let first = out.len();
        for k in 0..m.series_count() {
            let instance = format!("10.0.0.{}:8080", i + 1);
            let mut pairs: Vec<(&str, &str)> =
                m.labels(k).iter().map(|(n, v)| (*n, v.as_str())).collect();
            pairs.push(("instance", &instance));
            pairs.push(("job", "app"));
            out.push((Labels::from_pairs(pairs), Vec::new()));
        }
        for r in 0..=steps {
            m.advance(STEP_MS as f64 / 1000.0);
            let jitter = (loadgen::Rng::new(((i as u64) << 40) ^ r as u64).next_u64() % 20) as i64;
            let t = 1_700_000_000_000 + r * STEP_MS + jitter;
            m.for_each_value(|k, v| out[first + k].1.push(Sample { t, v }));
        }
    }
    out
}

/// Writes `series` over `[from, to)` as one block in `dir`, XOR chunks of 120 samples
/// (`xor`) or as the block writer chooses, and returns its bytes on disk.
fn block_bytes(dir: &Path, series: &[(Labels, Vec<Sample>)], from: i64, to: i64, xor: bool) -> u64 {
    block_parts(dir, series, from, to, xor).iter().sum()
}

/// [`block_bytes`] in parts: index, chunk data, chunk framing (segment headers,
/// lengths, encoding bytes, checksums), meta.json.
fn block_parts(
    dir: &Path,
    series: &[(Labels, Vec<Sample>)],
    from: i64,
    to: i64,
    xor: bool,
) -> [u64; 4] {
    let mut refs = Vec::new();
    let mut w = BlockWriter::new(dir).expect("block writer");
    let mut sorted: Vec<_> = series.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (labels, samples) in sorted {
        let lo = samples.partition_point(|s| s.t < from);
        let hi = samples.partition_point(|s| s.t < to);
        let part = &samples[lo..hi];
        let mut metas = Vec::new();
        if xor {
            for c in part.chunks(120) {
                let mut a = XorAppender::new();
                c.iter().for_each(|s| a.append(s.t, s.v));
                let (mint, maxt) = (c[0].t, c[c.len() - 1].t);
                metas.push(w.add_chunk(ENC_XOR, mint, maxt, a.bytes()).expect("chunk"));
            }
        } else {
            w.add_samples(part, &mut metas).expect("samples");
        }
        refs.extend(metas.iter().map(|m| m.r));
        w.add_series(labels.clone(), metas).expect("series");
    }
    let meta = w
        .finish(BlockMeta {
            ulid: String::new(),
            min_time: from,
            max_time: to,
            stats: BlockStats::default(),
            compaction: BlockCompaction::default(),
            version: META_VERSION,
            resolution: 0,
            downsampled_from: Vec::new(),
        })
        .expect("finish");
    let path = dir.join(&meta.ulid);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let index = size(&path.join("index"));
    let meta_json = size(&path.join("meta.json"));
    let segments: u64 = walk(&path.join("chunks")).iter().map(|p| size(p)).sum();
    let block = Block::open(&path).expect("open block");
    let data: u64 = refs
        .iter()
        .map(|&r| block.chunks().chunk(r).map_or(0, |d| d.len() as u64))
        .sum();
    [index, data, segments - data, meta_json]
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn figures() {
    let data = history(10, 500, 24);
    let samples: usize = data.iter().map(|s| s.1.len()).sum();
    let (from, to) = (data[0].1[0].t, data[0].1[data[0].1.len() - 1].t + 1);
    println!(
        "history: {} series, {samples} samples, 24 h at 30 s",
        data.len()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let per = |b: u64| b as f64 / samples as f64;
    let hours = |h: i64| {
        let step = h * 3_600_000;
        (0..)
            .map(move |k| (from + k * step, (from + (k + 1) * step).min(to)))
            .take_while(move |(a, _)| *a < to)
    };
    for (name, h) in [("2 h blocks", 2), ("one 24 h block", 24)] {
        let xor: u64 = hours(h)
            .map(|(a, b)| block_bytes(tmp.path(), &data, a, b, true))
            .sum();
        let parts = hours(h)
            .map(|(a, b)| block_parts(tmp.path(), &data, a, b, false))
            .fold([0u64; 4], |mut acc, p| {
                acc.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                acc
            });
        let new: u64 = parts.iter().sum();
        println!(
            "  {name:15} xor {:.3} B/sample, packed {:.3} B/sample ({:.2}x smaller)",
            per(xor),
            per(new),
            xor as f64 / new as f64
        );
        println!(
            "  {:15} index {:.3}, chunk data {:.3}, chunk framing {:.3}, meta.json {:.4}",
            "",
            per(parts[0]),
            per(parts[1]),
            per(parts[2]),
            per(parts[3])
        );
    }
}

/// Decoding one series' chunks, XOR (120 samples a chunk) against packed (1024).
fn decode_speed(c: &mut Criterion) {
    let data = history(1, 500, 9);
    let mut xor = Vec::new();
    let mut packed_chunks = Vec::new();
    let mut enc = PackedEncoder::new();
    let mut n = 0;
    for (_, s) in &data {
        let s = &s[..1024];
        n += s.len();
        for c in s.chunks(120) {
            let mut a = XorAppender::new();
            c.iter().for_each(|s| a.append(s.t, s.v));
            xor.push(a.bytes().to_vec());
        }
        let mut out = Vec::new();
        if enc.encode(s, &mut out).is_some() {
            packed_chunks.push(out);
        }
    }
    assert_eq!(packed_chunks.len(), data.len(), "every series packs");
    let mut g = c.benchmark_group("decode_block_chunks");
    g.throughput(Throughput::Elements(n as u64));
    let mut buf: Vec<Sample> = Vec::with_capacity(2048);
    g.bench_function("xor_120", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for c in &xor {
                buf.clear();
                let mut d = XorDecoder::new(c);
                while let Some((t, v)) = d.next(c) {
                    buf.push(Sample { t, v });
                }
                sum += buf.iter().map(|s| s.v).sum::<f64>();
            }
            black_box(sum)
        })
    });
    g.bench_function("packed_1024", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for c in &packed_chunks {
                buf.clear();
                packed::decode(black_box(c), None, &mut buf);
                sum += buf.iter().map(|s| s.v).sum::<f64>();
            }
            black_box(sum)
        })
    });
    g.finish();
}

fn main() {
    if std::env::var("CAIRN_BENCH_FIGURES").as_deref() != Ok("0") {
        figures();
    }
    let mut c = Criterion::default().configure_from_args();
    decode_speed(&mut c);
    c.final_summary();
}
