//! Benchmarks of the TSDB head: appends (by ref and first-time by labels), XOR chunk
//! iteration, postings intersection and WAL replay (1M series from WAL segments and from
//! a checkpoint, reported as series/s), plus figures criterion cannot give: heap bytes
//! per series (up to 1M node-exporter-like series) and allocations per appended sample,
//! both measured with a counting global allocator. Blocks: bytes per sample on disk for
//! a day of 10k counter/gauge series at 15 s, and the mmap chunk read path against
//! reading each chunk into memory with `pread`. Compaction: samples/s merged (chunks
//! copied, and overlapping blocks decoded and merged), and downsampling throughput (raw
//! to 5m, 5m to 1h). Merged reads: a day of one series from a block and the head,
//! sample by sample against a chunk at a time.
//!
//! `cargo bench --bench tsdb -- --warm-up-time 1 --measurement-time 3`
//! (`CAIRN_BENCH_SERIES=100000` shrinks the 1M-series figures for a quick run;
//! `CAIRN_BENCH_FIGURES=0` skips the figures printed before the criterion benches,
//! `CAIRN_BENCH_FIGURES=heap` prints only the heap figures)

mod common;

use cairn::model::{Labels, Sample};
use cairn::storage::Storage;
use cairn::tsdb::block::chunks::ENC_XOR;
use cairn::tsdb::chunkenc::{XorAppender, XorIterator, packed};
use cairn::tsdb::head::Head;
use cairn::tsdb::index::intersect;
use cairn::tsdb::{Db, DbOptions};
use criterion::{BatchSize, Criterion, Throughput};
use roaring::RoaringBitmap;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: Duration::from_secs(3600),
        ..DbOptions::default()
    }
}

const MODES: [&str; 8] = [
    "user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice",
];

/// Series `i` of a node-exporter-like population: 100 metric names x 1000 instances, ten
/// labels each. With `unique_id`, one label is a per-series id (the worst case for the
/// index: a value shared by no other series).
fn labels(i: usize, unique_id: bool) -> Labels {
    let mut pairs: Vec<(&str, String)> = vec![
        ("__name__", format!("node_metric_{}_total", i % 100)),
        ("job", "node".into()),
        ("instance", format!("host-{:04}.example.org:9100", i / 100)),
        ("cpu", (i % 16).to_string()),
        ("mode", MODES[i % 8].into()),
        ("device", format!("sd{}", (b'a' + (i % 4) as u8) as char)),
        (
            "env",
            ["staging", "prod", "prod", "prod", "prod"][i % 5].into(),
        ),
        ("region", format!("eu-west-{}", i % 3)),
        ("team", format!("team-{}", i % 12)),
    ];
    if unique_id {
        pairs.push((
            "id",
            format!(
                "{:08x}-7c1e-4b7a-9f3e-{:012x}",
                i * 2_654_435_761 % (1 << 32),
                i
            ),
        ));
    } else {
        pairs.push(("zone", format!("z{}", i % 6)));
    }
    Labels::from_pairs(pairs)
}

/// The series count of the 1M-series figures (overridable for quick runs).
fn big_n() -> usize {
    // Under `cargo test --all-targets` (no `--bench`) the bench runs once as a smoke
    // test in a debug build: a million series there would take minutes.
    let default = if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        10_000
    };
    std::env::var("CAIRN_BENCH_SERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `n` series with `samples` samples each (15 s apart) into `db`, in commits of
/// 10k series as a large scrape would make; labels are built per commit so the caller's
/// memory figure holds only what the head keeps. Returns the refs.
fn fill_head(db: &Db, n: usize, samples: i64, unique_id: bool) -> Vec<u64> {
    let mut refs = vec![0u64; n];
    let t0 = 1_700_000_000_000i64;
    for s in 0..samples {
        for start in (0..n).step_by(10_000) {
            let end = (start + 10_000).min(n);
            let mut app = db.appender();
            if s == 0 {
                let ls: Vec<Labels> = (start..end).map(|i| labels(i, unique_id)).collect();
                for (i, l) in (start..end).zip(&ls) {
                    let t = t0 + (i % 7) as i64;
                    refs[i] = app.append(l, t, 0.0).expect("append");
                }
            } else {
                for (i, r) in refs.iter().enumerate().take(end).skip(start) {
                    let t = t0 + s * 15_000 + (i % 7) as i64;
                    app.append_ref(*r, t, (s * (i as i64 % 100)) as f64)
                        .expect("append_ref");
                }
            }
            app.commit().expect("commit");
        }
    }
    refs
}

/// Heap bytes per series for `n` series of ten labels holding one chunk each.
fn heap_per_series(n: usize, samples: i64, unique_id: bool) -> f64 {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = Db::open(tmp.path(), opts()).expect("open");
    let base = common::live_bytes();
    let refs = fill_head(&db, n, samples, unique_id);
    let used = common::live_bytes() - base - (refs.capacity() * 8) as isize;
    assert_eq!(db.stats().num_series, n as u64);
    drop(db);
    used as f64 / n as f64
}

/// Allocations per sample of a steady scrape: 10k known series, append_ref + commit.
fn allocs_per_sample() -> f64 {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = Db::open(tmp.path(), opts()).expect("open");
    let mut app = db.appender();
    let refs: Vec<u64> = (0..10_000)
        .map(|i| app.append(&labels(i, false), 0, 0.0).expect("append"))
        .collect();
    app.commit().expect("commit");
    drop(app);
    // Warm up past two chunk cuts so buffers reach their steady size, then measure one
    // chunk's worth of scrapes (which includes one cut per series).
    let scrape = |round: i64| {
        let mut app = db.appender();
        for (i, r) in refs.iter().enumerate() {
            app.append_ref(*r, round * 15_000, (round + i as i64) as f64)
                .expect("append_ref");
        }
        app.commit().expect("commit");
    };
    for round in 1..=240 {
        scrape(round);
    }
    let before = common::allocations();
    let rounds = 120;
    for round in 241..241 + rounds {
        scrape(round);
    }
    (common::allocations() - before) as f64 / (rounds as f64 * refs.len() as f64)
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_append");
    // append_ref + commit: one commit of 10k series x 10 samples.
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = Db::open(tmp.path(), opts()).expect("open");
    let mut app = db.appender();
    let refs: Vec<u64> = (0..10_000)
        .map(|i| app.append(&labels(i, false), 0, 0.0).expect("append"))
        .collect();
    app.commit().expect("commit");
    let mut t = 0i64;
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("append_ref_commit_10k_series_x10", |b| {
        b.iter(|| {
            for _ in 0..10 {
                t += 15_000;
                for (i, r) in refs.iter().enumerate() {
                    app.append_ref(*r, t, (t / 1000 + i as i64) as f64)
                        .expect("append_ref");
                }
            }
            app.commit().expect("commit");
        })
    });
    drop((app, db, tmp));

    // First-time appends: 1,000 new series (ten labels) per commit.
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = Db::open(tmp.path(), opts()).expect("open");
    let mut next = 0usize;
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("append_new_series_1k", |b| {
        b.iter_batched(
            || {
                let ls: Vec<Labels> = (next..next + 1_000).map(|i| labels(i, true)).collect();
                next += 1_000;
                ls
            },
            |ls| {
                let mut app = db.appender();
                for l in &ls {
                    app.append(l, 1, 1.0).expect("append");
                }
                app.commit().expect("commit");
                // Returned so that freeing the inputs is not timed.
                ls
            },
            BatchSize::PerIteration,
        )
    });
    // The remote-write path: append by labels to series that exist.
    let known: Vec<Labels> = (0..1_000).map(|i| labels(i, true)).collect();
    let mut t = 1i64;
    g.bench_function("append_existing_by_labels_1k", |b| {
        b.iter(|| {
            t += 1;
            let mut app = db.appender();
            for l in &known {
                app.append(l, t, 1.0).expect("append");
            }
            app.commit().expect("commit");
        })
    });
    g.finish();
}

fn bench_chunk(c: &mut Criterion) {
    let mut a = XorAppender::new();
    let mut v = 1000.0;
    for i in 0..120i64 {
        // A counter scraped every 15s with a little jitter.
        v += (i * 7 % 13) as f64;
        a.append(1_700_000_000_000 + i * 15_000 + (i * 31 % 5), v);
    }
    let bytes = a.bytes().to_vec();
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Elements(120));
    g.bench_function("xor_iterate_120", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for (t, v) in XorIterator::new(black_box(&bytes)) {
                sum += v + t as f64;
            }
            sum
        })
    });
    g.bench_function("xor_append_120", |b| {
        b.iter(|| {
            let mut a = XorAppender::new();
            for i in 0..120i64 {
                a.append(i * 15_000, (i * 3) as f64);
            }
            a.num_samples()
        })
    });
    g.finish();
}

fn bench_postings(c: &mut Criterion) {
    // Two 100k-entry lists over 1M refs: one a dense run, one spread out.
    let a: RoaringBitmap = (0..1_000_000u32).filter(|x| x % 10 == 3).collect();
    let b: RoaringBitmap = (0..1_000_000u32)
        .map(|x| x.wrapping_mul(2_654_435_761) % 1_000_000)
        .take(100_000)
        .collect();
    let mut g = c.benchmark_group("postings");
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("intersect_100k_x_100k", |bn| {
        bn.iter(|| intersect(black_box(&a), black_box(&b)).len())
    });
    g.finish();
}

/// Replay of `n` series x 10 samples: from WAL segments, and from a checkpoint of the
/// same head, into a fresh head (what `Db::open` does). Throughput is in series, so
/// criterion's elem/s is series/s.
fn bench_replay_series(c: &mut Criterion) {
    let n = big_n();
    let mut g = c.benchmark_group("wal_replay_series");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    for checkpoint in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let wal_bytes = {
            let db = Db::open(tmp.path(), opts()).expect("open");
            fill_head(&db, n, 10, false);
            if checkpoint {
                db.head().checkpoint(0).expect("checkpoint");
            }
            db.close().expect("close");
            dir_bytes(&tmp.path().join("wal"))
        };
        let wal = tmp.path().join("wal");
        let name = if checkpoint {
            format!("checkpoint_{n}_series_x10")
        } else {
            format!("segments_{n}_series_x10")
        };
        let mut last = None;
        let (mut runs, mut cpu) = (0u32, 0.0f64);
        g.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let head = Head::new();
                    let (start, cpu0) = (Instant::now(), cpu_seconds());
                    let rep = head.replay_wal(&wal).expect("replay");
                    total += start.elapsed();
                    cpu += cpu_seconds() - cpu0;
                    runs += 1;
                    assert_eq!(rep.series, n as u64);
                    last = Some(rep);
                    // Freeing a big head is not part of replay.
                    drop(head);
                }
                total
            })
        });
        if let Some(r) = last {
            let secs = r.duration.as_secs_f64();
            println!(
                "{name}: {secs:.2} s ({:.0} series/s; reading and applying {:.2} s, \
                 label-hash table {:.2} s, postings {:.2} s; {} workers); {:.2} CPU s per \
                 run; {:.1} MiB on disk",
                n as f64 / secs,
                r.read_duration.as_secs_f64(),
                r.hash_duration.as_secs_f64(),
                r.index_duration.as_secs_f64(),
                r.workers,
                cpu / f64::from(runs.max(1)),
                wal_bytes as f64 / (1 << 20) as f64
            );
        }
    }
    g.finish();
}

/// User plus system CPU time of this process so far, from `/proc/self/stat` (in clock
/// ticks of 10 ms; replays take seconds). Unlike wall time it does not grow when other
/// processes share the cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime: fields 14 and 15 of the line, 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_bytes(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn bench_replay(c: &mut Criterion) {
    // A WAL of 10k series x 100 samples (1M samples).
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let db = Db::open(tmp.path(), opts()).expect("open");
        let mut app = db.appender();
        let refs: Vec<u64> = (0..10_000)
            .map(|i| app.append(&labels(i, false), 0, 0.0).expect("append"))
            .collect();
        app.commit().expect("commit");
        for round in 1..100i64 {
            for (i, r) in refs.iter().enumerate() {
                app.append_ref(*r, round * 15_000, (round * i as i64) as f64)
                    .expect("append_ref");
            }
            app.commit().expect("commit");
        }
    }
    let mut g = c.benchmark_group("wal");
    g.throughput(Throughput::Elements(1_000_000));
    g.sample_size(10);
    g.bench_function("replay_1m_samples", |b| {
        b.iter(|| {
            let db = Db::open(tmp.path(), opts()).expect("open");
            db.stats().replayed_samples
        })
    });
    g.finish();
}

const HOUR: i64 = 3_600_000;

/// `n` series (half counters, half gauges) over `hours` at 15 s, cut into 2 h blocks.
fn day_of_blocks(dir: &std::path::Path, n: usize, hours: i64) -> Db {
    let db = Db::open(dir, opts()).expect("open");
    let mut app = db.appender();
    let refs: Vec<u64> = (0..n)
        .map(|i| {
            let l = Labels::from_pairs([
                (
                    "__name__",
                    if i % 2 == 0 {
                        "node_cpu_seconds_total"
                    } else {
                        "node_memory_free_bytes"
                    },
                ),
                ("cpu", &(i % 16).to_string()),
                ("instance", &format!("host-{:04}:9100", i / 16)),
                ("job", "node"),
                ("mode", MODES[i % 8]),
            ]);
            app.append(&l, 0, 0.0).expect("append")
        })
        .collect();
    app.commit().expect("commit");
    let mut t = 15_000;
    let mut counter = vec![0.0f64; n];
    while t < hours * HOUR {
        let mut app = db.appender();
        for (i, r) in refs.iter().enumerate() {
            let v = if i % 2 == 0 {
                counter[i] +=
                    15.0 * (0.2 + (i % 5) as f64 * 0.1) + ((t / 15_000) % 3) as f64 * 0.01;
                (counter[i] * 100.0).round() / 100.0
            } else {
                // A gauge that wanders in 4 KiB pages around 2 GiB.
                (2_000_000_000 + ((t / 15_000 * 7 + i as i64 * 13) % 1000) * 4096) as f64
            };
            app.append_ref(*r, t, v).expect("append");
        }
        app.commit().expect("commit");
        t += 15_000;
    }
    let mut k = 0;
    while k < hours / 2 {
        db.write_block(k * 2 * HOUR, (k + 1) * 2 * HOUR)
            .expect("block");
        k += 1;
    }
    db
}

fn bytes_per_sample() {
    let start = Instant::now();
    let tmp = tempfile::tempdir().expect("tmp");
    let db = day_of_blocks(tmp.path(), 10_000, 24);
    let blocks = db.blocks();
    let bytes: u64 = blocks.iter().map(|b| b.size()).sum();
    let samples: u64 = blocks.iter().map(|b| b.meta().stats.num_samples).sum();
    let chunk_bytes: u64 = blocks.iter().map(|b| b.chunks().size()).sum();
    println!(
        "block bytes/sample: {:.3} ({} samples, {} blocks, {:.1} MiB of which chunks {:.1} MiB; 10k series x 24 h at 15 s; {:.1}s)",
        bytes as f64 / samples as f64,
        samples,
        blocks.len(),
        bytes as f64 / (1 << 20) as f64,
        chunk_bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64()
    );
}

/// Reading chunks of a block: through the mapped segments (no copy) against reading
/// each chunk into a reused buffer with `pread`, then decoding every sample either way.
fn bench_block_read(c: &mut Criterion) {
    use cairn::tsdb::block::ChunkMeta;
    use std::os::unix::fs::FileExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let db = day_of_blocks(tmp.path(), 1_000, 2);
    let block = db.blocks()[0].clone();
    let ix = block.index();
    let (mut l, mut metas) = (Vec::new(), Vec::new());
    let mut refs: Vec<ChunkMeta> = Vec::new();
    for ord in 0..ix.num_series() {
        ix.series(ord, &mut l, &mut metas);
        refs.extend_from_slice(&metas);
    }
    let seg = std::fs::File::open(block.dir().join("chunks/000001")).expect("segment");
    let samples: u64 = block.meta().stats.num_samples;
    let mut g = c.benchmark_group("block_read");
    g.throughput(Throughput::Elements(samples));
    g.bench_function("mmap", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            let mut out = Vec::new();
            for m in &refs {
                out.clear();
                block.chunks().decode_ref(m.r, &mut out);
                sum += out.iter().map(|s| s.v).sum::<f64>();
            }
            sum
        })
    });
    g.bench_function("pread_into_memory", |b| {
        let (mut buf, mut shared, mut out) = (Vec::new(), Vec::new(), Vec::new());
        // Length first (the chunk's uvarint, at most 10 bytes), then the encoding byte
        // and the chunk.
        let read = |off: u64, buf: &mut Vec<u8>| -> u8 {
            let mut head = [0u8; 11];
            let n = seg.read_at(&mut head, off).expect("read");
            let mut pos = 0;
            let len = cairn::tsdb::varint::get_uvarint(&head[..n], &mut pos).expect("len");
            buf.resize(len as usize, 0);
            seg.read_exact_at(buf, off + pos as u64 + 1).expect("read");
            head[pos]
        };
        b.iter(|| {
            let mut sum = 0.0;
            for m in &refs {
                out.clear();
                if read(m.r & 0xffff_ffff, &mut buf) == ENC_XOR {
                    out.extend(XorIterator::new(&buf).map(|(t, v)| Sample { t, v }));
                } else {
                    // A packed chunk may take its timestamps from another one.
                    let owner = packed::shared_timestamps(&buf).map(|off| {
                        read(off, &mut shared);
                        &shared[..]
                    });
                    packed::decode(&buf, owner, &mut out);
                }
                sum += out.iter().map(|s| s.v).sum::<f64>();
            }
            sum
        })
    });
    g.finish();
}

/// Removes a block written by a benchmark iteration when dropped, outside the timing.
struct Written(std::path::PathBuf);

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compaction and downsampling throughput over 2k series x 6 h at 15 s (three 2 h
/// blocks), in raw samples read per second; each iteration writes (and fsyncs) a whole
/// block. `TMPDIR=/dev/shm` leaves the disk (and the fsyncs) out of the figures.
fn bench_compact(c: &mut Criterion) {
    use cairn::tsdb::compact;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let db = day_of_blocks(dir, 2_000, 6);
    let blocks = db.blocks();
    let samples: u64 = blocks.iter().map(|b| b.meta().stats.num_samples).sum();
    // The first block again: an overlap in which every sample is a duplicate.
    db.write_block(0, 2 * HOUR).expect("block");
    let overlap: Vec<_> = db
        .blocks()
        .into_iter()
        .filter(|b| b.meta().min_time == 0)
        .collect();
    let overlap_samples: u64 = overlap.iter().map(|b| b.meta().stats.num_samples).sum();
    let merged = compact::compact(dir, &blocks).expect("compact");
    let merged = std::sync::Arc::new(
        cairn::tsdb::block::Block::open(&dir.join(&merged.ulid)).expect("open"),
    );
    let m5 = compact::downsample(dir, &merged, compact::RES_5M).expect("downsample");
    let m5 = cairn::tsdb::block::Block::open(&dir.join(&m5.ulid)).expect("open");

    let mut g = c.benchmark_group("compact");
    g.sample_size(10);
    g.throughput(Throughput::Elements(samples));
    g.bench_function("three_2h_blocks_copied", |b| {
        b.iter_batched(
            || (),
            |()| {
                let m = compact::compact(dir, &blocks).expect("compact");
                Written(dir.join(m.ulid))
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(overlap_samples));
    g.bench_function("two_overlapping_blocks_merged", |b| {
        b.iter_batched(
            || (),
            |()| {
                let m = compact::compact(dir, &overlap).expect("compact");
                Written(dir.join(m.ulid))
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("downsample");
    g.sample_size(10);
    g.throughput(Throughput::Elements(samples));
    g.bench_function("raw_to_5m", |b| {
        b.iter_batched(
            || (),
            |()| {
                let m = compact::downsample(dir, &merged, compact::RES_5M).expect("downsample");
                Written(dir.join(m.ulid))
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(m5.meta().stats.num_samples));
    g.bench_function("5m_to_1h_per_window", |b| {
        b.iter_batched(
            || (),
            |()| {
                let m = compact::downsample(dir, &m5, compact::RES_1H).expect("downsample");
                Written(dir.join(m.ulid))
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn main() {
    match std::env::var("CAIRN_BENCH_FIGURES").as_deref() {
        Ok("0") => {}
        Ok("heap") => heap_figures(),
        _ => figures(),
    }
    let mut c = Criterion::default().configure_from_args();
    bench_append(&mut c);
    bench_chunk(&mut c);
    bench_postings(&mut c);
    bench_replay(&mut c);
    bench_replay_series(&mut c);
    bench_block_read(&mut c);
    bench_compact(&mut c);
    bench_merge_read(&mut c);
    c.final_summary();
}

fn figures() {
    let start = Instant::now();
    bytes_per_sample();
    heap_figures();
    println!(
        "allocations per sample (steady scrape, append_ref + commit): {:.4}",
        allocs_per_sample()
    );
    println!(
        "(figures above took {:.1}s)\n",
        start.elapsed().as_secs_f64()
    );
}

fn heap_figures() {
    let big = big_n();
    for (n, samples, unique) in [
        (100_000, 1, false),
        (100_000, 120, false),
        (100_000, 1, true),
        (100_000, 120, true),
        (big, 4, false),
        (big, 4, true),
        // Three closed chunks and an open one per series: what a head holds after
        // 90 minutes of 15 s scrapes, where closed chunks dominate.
        (big, 365, false),
    ] {
        let b = heap_per_series(n, samples, unique);
        println!(
            "heap bytes/series: {b:.0} ({n} series, 10 labels{}, {samples} sample{}: {})",
            if unique {
                ", one label unique per series"
            } else {
                ""
            },
            if samples == 1 { "" } else { "s" },
            // A chunk is cut when its 121st sample arrives.
            match (samples - 1) / 120 {
                0 => "one open chunk".to_string(),
                1 => "a closed chunk and an open one".to_string(),
                k => format!("{k} closed chunks and an open one"),
            },
        );
    }
}

/// A source that hands out 120-sample chunks, as the head and block iterators do.
struct Chunked {
    samples: Vec<Sample>,
    pos: usize,
}

impl cairn::storage::SampleIterator for Chunked {
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied();
        self.pos += usize::from(s.is_some());
        s
    }
    fn seek(&mut self, t: i64) -> Option<Sample> {
        let from = self.pos.saturating_sub(1);
        self.pos = from + self.samples[from..].partition_point(|s| s.t < t);
        self.next()
    }
    fn next_batch(&mut self, out: &mut Vec<Sample>) -> usize {
        let end = (self.pos + 120).min(self.samples.len());
        out.extend_from_slice(&self.samples[self.pos..end]);
        let n = end - self.pos;
        self.pos = end;
        n
    }
}

fn bench_merge_read(c: &mut Criterion) {
    use cairn::storage::SampleIterator;
    use cairn::tsdb::querier::MergeIterator;
    // A day at 15 s: 22 h in a block, the last 2 h in the head.
    let all: Vec<Sample> = (0..5760)
        .map(|i| Sample {
            t: i * 15_000,
            v: i as f64,
        })
        .collect();
    let merged = || {
        let src = |r: std::ops::Range<usize>| -> Box<dyn SampleIterator> {
            Box::new(Chunked {
                samples: all[r].to_vec(),
                pos: 0,
            })
        };
        MergeIterator::new(vec![src(0..5280), src(5280..5760)])
    };
    let mut g = c.benchmark_group("merge_read");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("next_per_sample", |b| {
        b.iter_batched(
            merged,
            |mut m| {
                let mut sum = 0.0;
                while let Some(s) = m.next() {
                    sum += s.v;
                }
                black_box(sum)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("next_batch", |b| {
        let mut buf = Vec::with_capacity(all.len());
        b.iter_batched(
            merged,
            |mut m| {
                buf.clear();
                while m.next_batch(&mut buf) > 0 {}
                black_box(buf.iter().map(|s| s.v).sum::<f64>())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}
