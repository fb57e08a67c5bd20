//! Remote write ingest, end to end from the snappy body to the commit into a real TSDB:
//! samples/s for a 10k-sample request of known series (10k series x 1 sample, the shape
//! Prometheus sends, and 1k series x 10 samples), through the prost path
//! (`decode_write_request` + `write`, the receiver before its rewrite) and through
//! [`Receiver`] (zero-copy decode, series cache, pooled buffers). Before the criterion
//! runs it prints allocation calls per request of each, counted with the allocator in
//! `common`. Bodies are encoded outside the timed part.
//!
//! `cargo bench --bench remote_write -- --warm-up-time 1 --measurement-time 5`

mod common;

use cairn::remote::{Receiver, decode_write_request, write};
use cairn::storage::Storage;
use cairn::tsdb::{Db, DbOptions};
use criterion::{Criterion, Throughput};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const MAX: usize = 256 << 20;
const MODES: [&str; 8] = [
    "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice",
];

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_field(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    push_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// Builds request bodies for a fixed set of node-exporter-like series (labels sorted,
/// ten per series), each series' `Label` fields encoded once.
struct Bodies {
    labels: Vec<Vec<u8>>,
    samples_per_series: usize,
    raw: Vec<u8>,
    ts: Vec<u8>,
}

impl Bodies {
    fn new(series: usize, samples_per_series: usize) -> Bodies {
        let labels = (0..series)
            .map(|i| {
                let mut pairs = vec![
                    ("__name__", format!("node_metric_{}_total", i % 100)),
                    ("cpu", (i % 16).to_string()),
                    ("device", format!("sd{}", (b'a' + (i % 4) as u8) as char)),
                    ("env", ["staging", "prod"][i % 2].to_string()),
                    ("instance", format!("host-{:04}.example.org:9100", i / 100)),
                    ("job", "node".to_string()),
                    ("mode", MODES[i % 8].to_string()),
                    ("region", format!("eu-west-{}", i % 3)),
                    ("series", i.to_string()),
                    ("team", format!("team-{}", i % 12)),
                ];
                pairs.sort();
                let mut out = Vec::new();
                for (n, v) in pairs {
                    let mut l = Vec::new();
                    push_field(&mut l, 0x0a, n.as_bytes());
                    push_field(&mut l, 0x12, v.as_bytes());
                    push_field(&mut out, 0x0a, &l);
                }
                out
            })
            .collect();
        Bodies {
            labels,
            samples_per_series,
            raw: Vec::new(),
            ts: Vec::new(),
        }
    }

    fn samples(&self) -> usize {
        self.labels.len() * self.samples_per_series
    }

    /// A snappy body whose samples start at `t` (ms), 1 s apart.
    fn body(&mut self, t: i64) -> Vec<u8> {
        self.raw.clear();
        for (i, l) in self.labels.iter().enumerate() {
            self.ts.clear();
            self.ts.extend_from_slice(l);
            for k in 0..self.samples_per_series {
                let mut s = vec![0x09];
                s.extend_from_slice(&((i + k) as f64).to_le_bytes());
                s.push(0x10);
                push_varint(&mut s, (t + 1000 * k as i64) as u64);
                push_field(&mut self.ts, 0x12, &s);
            }
            push_field(&mut self.raw, 0x0a, &self.ts);
        }
        snap::raw::Encoder::new()
            .compress_vec(&self.raw)
            .expect("snappy")
    }
}

/// One way of storing a body.
#[derive(Clone, Copy)]
enum Path {
    Prost,
    Receiver,
}

struct Sink {
    _dir: tempfile::TempDir,
    db: Db,
    receiver: Receiver,
    path: Path,
    next_t: i64,
}

impl Sink {
    fn new(path: Path) -> Sink {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = DbOptions {
            wal_fsync_interval: Duration::from_secs(3600),
            ..DbOptions::default()
        };
        let db = Db::open(dir.path(), opts).expect("open db");
        Sink {
            _dir: dir,
            db,
            receiver: Receiver::default(),
            path,
            next_t: 1_700_000_000_000,
        }
    }

    fn store(&self, body: &[u8]) {
        let storage: &dyn Storage = &self.db;
        let stats = match self.path {
            Path::Prost => write(
                storage,
                &decode_write_request(None, None, body, MAX).expect("decode"),
            ),
            Path::Receiver => self.receiver.receive(storage, None, None, body, MAX),
        };
        stats.expect("store");
    }

    fn next_body(&mut self, bodies: &mut Bodies) -> Vec<u8> {
        let b = bodies.body(self.next_t);
        self.next_t += 1000 * bodies.samples_per_series as i64;
        b
    }
}

fn allocations_per_request(bodies: &mut Bodies, path: Path) -> f64 {
    let mut sink = Sink::new(path);
    for _ in 0..3 {
        let b = sink.next_body(bodies);
        sink.store(&b);
    }
    let rounds = 10;
    let mut allocs = 0;
    for _ in 0..rounds {
        let b = sink.next_body(bodies);
        let before = common::allocations();
        sink.store(&b);
        allocs += common::allocations() - before;
    }
    allocs as f64 / rounds as f64
}

fn bench(c: &mut Criterion) {
    for (series, per) in [(10_000, 1), (1_000, 10)] {
        let mut bodies = Bodies::new(series, per);
        let name = format!("{series}x{per}");
        for (label, path) in [("prost", Path::Prost), ("receiver", Path::Receiver)] {
            let a = allocations_per_request(&mut bodies, path);
            println!(
                "remote_write/{name}/{label}: {a:.1} allocations per request of {} samples",
                bodies.samples()
            );
        }
        let mut g = c.benchmark_group(format!("remote_write/{name}"));
        g.throughput(Throughput::Elements(bodies.samples() as u64));
        for (label, path) in [("prost", Path::Prost), ("receiver", Path::Receiver)] {
            let mut sink = Sink::new(path);
            // The series exist and (for the receiver) are cached before timing.
            let b = sink.next_body(&mut bodies);
            sink.store(&b);
            g.bench_function(label, |bch| {
                bch.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let b = sink.next_body(&mut bodies);
                        let start = Instant::now();
                        sink.store(&b);
                        spent += start.elapsed();
                    }
                    spent
                })
            });
        }
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
