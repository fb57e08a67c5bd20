//! The harness as a remote-write 1.0 sender: it encodes `WriteRequest`s straight into
//! protobuf bytes (each series' labels encoded once, then copied; no message structs per
//! sample) and compresses them with snappy's block format, so the sender costs little
//! beside the systems it feeds. Two uses: [`backfill`] sends one ordered stream of history
//! with explicit timestamps to every system, and [`saturate`] drives one system with
//! several concurrent senders as fast as it acknowledges.

use crate::loadgen::{Rng, TargetModel};
use crate::procfs;
use anyhow::{Context, Result, bail};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// Seconds of model time between two rounds of the saturation stream: every series
/// gets one sample per round, as from a 15 s scrape.
const SATURATION_STEP_MS: i64 = 15_000;
/// How many rounds one saturation sender may run ahead of the slowest: Prometheus
/// refuses samples older than an hour behind its newest (out of bounds), so the
/// senders' clocks must stay together.
const MAX_LEAD_ROUNDS: u64 = 20;

/// Every series of a set of instances, labels encoded once as protobuf `Label` messages
/// (field 1 of `TimeSeries`), with `job` and `instance` added and names sorted.
pub struct SeriesTable {
    labels_pb: Vec<u8>,
    ends: Vec<usize>,
    /// Which instance (index into the models it was built from) each series belongs to.
    pub instance_of: Vec<usize>,
}

impl SeriesTable {
    pub fn new(models: &[TargetModel], job: &str, instances: &[String]) -> SeriesTable {
        let mut t = SeriesTable {
            labels_pb: Vec::new(),
            ends: Vec::new(),
            instance_of: Vec::new(),
        };
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for (m, model) in models.iter().enumerate() {
            for i in 0..model.series_count() {
                labels.clear();
                labels.extend(model.labels(i).iter().map(|(k, v)| (*k, v.as_str())));
                labels.push(("job", job));
                labels.push(("instance", &instances[m]));
                labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (name, value) in &labels {
                    let len = field_len(name.len()) + field_len(value.len());
                    t.labels_pb.push(0x0a);
                    push_varint(&mut t.labels_pb, len as u64);
                    push_bytes_field(&mut t.labels_pb, 0x0a, name.as_bytes());
                    push_bytes_field(&mut t.labels_pb, 0x12, value.as_bytes());
                }
                t.ends.push(t.labels_pb.len());
                t.instance_of.push(m);
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn labels_pb(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.labels_pb[start..self.ends[i]]
    }
}

/// Encodes and compresses requests, reusing its buffers.
pub struct RequestEncoder {
    raw: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl RequestEncoder {
    pub fn new() -> RequestEncoder {
        RequestEncoder {
            raw: Vec::new(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// A request holding series `range` of `table`, each with one sample per round:
    /// `rounds[r]` holds every series' (timestamp, value) of round r. Returns the
    /// snappy-compressed body.
    pub fn encode(
        &mut self,
        table: &SeriesTable,
        range: Range<usize>,
        rounds: &[Vec<(i64, f64)>],
    ) -> Result<&[u8]> {
        self.raw.clear();
        for s in range {
            let labels = table.labels_pb(s);
            let samples_len: usize = rounds.iter().map(|r| field_len(sample_len(r[s].0))).sum();
            self.raw.push(0x0a);
            push_varint(&mut self.raw, (labels.len() + samples_len) as u64);
            self.raw.extend_from_slice(labels);
            for r in rounds {
                let (t, v) = r[s];
                self.raw.push(0x12);
                push_varint(&mut self.raw, sample_len(t) as u64);
                self.raw.push(0x09);
                self.raw.extend_from_slice(&v.to_le_bytes());
                self.raw.push(0x10);
                push_varint(&mut self.raw, t as u64);
            }
        }
        self.compressed
            .resize(snap::raw::max_compress_len(self.raw.len()), 0);
        let n = self
            .snappy
            .compress(&self.raw, &mut self.compressed)
            .context("snappy")?;
        Ok(&self.compressed[..n])
    }
}

/// Bytes of a `Sample` message: a fixed64 double and a varint timestamp, with tags.
fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + varint_len(t as u64)
}

/// Bytes of a length-delimited field of `len` bytes, tag included.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn push_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Scrape-like jitter of a few milliseconds, the same for every series of an instance.
fn jitter_ms(instance: usize, round: u64) -> i64 {
    (Rng::new(((instance as u64) << 40) ^ round).next_u64() % 20) as i64
}

/// Samples into `round` (one per series): every instance advanced by `dt` seconds, its
/// series stamped `t` plus the instance's jitter.
fn fill_round(
    models: &mut [TargetModel],
    table: &SeriesTable,
    dt: f64,
    t: i64,
    r: u64,
    round: &mut Vec<(i64, f64)>,
) {
    round.clear();
    for (m, model) in models.iter_mut().enumerate() {
        model.advance(dt);
        let ts = t + jitter_ms(m, r);
        model.for_each_value(|_, v| round.push((ts, v)));
    }
    debug_assert_eq!(round.len(), table.len());
}

/// Posts one compressed remote-write body; an error names the status and the answer.
pub fn post(client: &reqwest::blocking::Client, url: &str, body: Vec<u8>) -> Result<()> {
    let r = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .with_context(|| format!("POST {url}"))?;
    let status = r.status();
    if !status.is_success() {
        let text = r.text().unwrap_or_default();
        bail!("POST {url}: {status}: {}", text.trim());
    }
    Ok(())
}

/// Where a stream goes: a system's name and its remote-write URL.
pub struct Sink {
    pub name: String,
    pub url: String,
}

/// What one system made of the history stream.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BackfillResult {
    pub samples_acked: u64,
    pub requests_failed: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
}

/// When the history's samples fall: `steps + 1` rounds, `step_ms` apart from `start_ms`.
pub struct Schedule {
    pub start_ms: i64,
    pub step_ms: i64,
    pub steps: u64,
}

/// The history: every round of `schedule` for every series of `models`, in time order,
/// in requests of about `batch` samples, sent to every sink. One producer encodes each
/// request once; each sink has its own sending thread, so a slow system delays the
/// others by at most a few requests.
pub fn backfill(
    client: &reqwest::blocking::Client,
    mut models: Vec<TargetModel>,
    table: &SeriesTable,
    schedule: &Schedule,
    batch: usize,
    sinks: &[Sink],
) -> Result<Vec<BackfillResult>> {
    let Schedule {
        start_ms,
        step_ms,
        steps,
    } = *schedule;
    let n = table.len().max(1);
    let rounds_per_request = (batch / n).clamp(1, 120);
    let series_per_request = batch.clamp(1, n);
    std::thread::scope(|scope| -> Result<Vec<BackfillResult>> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for sink in sinks {
            let (tx, rx) = sync_channel::<Arc<(Vec<u8>, u64)>>(4);
            senders.push(tx);
            let client = client.clone();
            handles.push(scope.spawn(move || {
                let started = Instant::now();
                let mut res = BackfillResult::default();
                for msg in rx {
                    let (body, samples) = &*msg;
                    match post(&client, &sink.url, body.clone()) {
                        Ok(()) => res.samples_acked += samples,
                        Err(e) => {
                            res.requests_failed += 1;
                            res.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                res.seconds = started.elapsed().as_secs_f64();
                res
            }));
        }
        let mut encoder = RequestEncoder::new();
        let mut rounds: Vec<Vec<(i64, f64)>> = Vec::new();
        let mut k = 0;
        while k <= steps {
            let take = (rounds_per_request as u64).min(steps + 1 - k) as usize;
            rounds.resize_with(take, Vec::new);
            for (j, round) in rounds.iter_mut().enumerate() {
                let r = k + j as u64;
                let dt = step_ms as f64 / 1000.0;
                fill_round(
                    &mut models,
                    table,
                    dt,
                    start_ms + r as i64 * step_ms,
                    r,
                    round,
                );
            }
            let mut first = 0;
            while first < table.len() {
                let last = (first + series_per_request).min(table.len());
                let body = encoder.encode(table, first..last, &rounds)?.to_vec();
                let msg = Arc::new((body, ((last - first) * take) as u64));
                for tx in &senders {
                    // A sink thread ends only when its channel closes, so send fails
                    // only if that thread panicked: its join below reports it.
                    let _ = tx.send(msg.clone());
                }
                first = last;
            }
            k += take as u64;
        }
        drop(senders);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a backfill sender panicked"))
            })
            .collect()
    })
}

/// Remote-write ingest of one system at saturation.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SaturationResult {
    pub samples_per_second: f64,
    pub server_cpu_seconds_per_million: f64,
    /// The system's CPU seconds per second while measured: below the machine's cores
    /// with an idle sender, either the system cannot use them all or others took them.
    pub server_cores_used: f64,
    /// CPU the harness itself used while measuring, as a share of the machine's cores:
    /// the sender competes with the system for the same cores.
    pub sender_cpu_share: f64,
    pub samples_acked: u64,
    pub seconds: f64,
    pub requests_failed: u64,
    pub first_error: Option<String>,
}

/// Drives `url` with `senders` concurrent senders, each owning a share of the instances
/// of `models` and sending their rounds in order, in requests of about `batch` samples.
/// Measures for `seconds` after every sender has sent its first round (the series exist)
/// and a short settling time.
#[allow(clippy::too_many_arguments)]
pub fn saturate(
    client: &reqwest::blocking::Client,
    models: Vec<TargetModel>,
    instances: &[String],
    url: &str,
    server_pid: u32,
    senders: usize,
    batch: usize,
    seconds: u64,
    cores: usize,
) -> Result<SaturationResult> {
    let senders = senders.clamp(1, models.len().max(1));
    let start_ms = (now_ms() - 3_600_000) / SATURATION_STEP_MS * SATURATION_STEP_MS;
    let acked = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let first_error = parking_lot::Mutex::new(None::<String>);
    let stop = AtomicBool::new(false);
    let progress: Vec<AtomicU64> = (0..senders).map(|_| AtomicU64::new(0)).collect();
    // Split the instances round-robin among the senders.
    let mut shares: Vec<(Vec<TargetModel>, Vec<String>)> =
        (0..senders).map(|_| (Vec::new(), Vec::new())).collect();
    for (i, model) in models.into_iter().enumerate() {
        shares[i % senders].0.push(model);
        shares[i % senders].1.push(instances[i].clone());
    }
    std::thread::scope(|scope| -> Result<SaturationResult> {
        for (j, (mut models, names)) in shares.into_iter().enumerate() {
            let (acked, failed, first_error, stop, progress) =
                (&acked, &failed, &first_error, &stop, &progress);
            let client = client.clone();
            scope.spawn(move || {
                let table = SeriesTable::new(&models, "rw", &names);
                let n = table.len().max(1);
                let rounds_per_request = (batch / n).clamp(1, 120);
                let series_per_request = batch.clamp(1, n);
                let mut encoder = RequestEncoder::new();
                let mut rounds: Vec<Vec<(i64, f64)>> = Vec::new();
                let mut r = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Wait for the slowest sender rather than run ahead of it.
                    while r > slowest(progress) + MAX_LEAD_ROUNDS && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    rounds.resize_with(rounds_per_request, Vec::new);
                    for (k, round) in rounds.iter_mut().enumerate() {
                        let rr = r + k as u64;
                        let t = start_ms + rr as i64 * SATURATION_STEP_MS;
                        fill_round(&mut models, &table, 15.0, t, rr, round);
                    }
                    let mut first = 0;
                    while first < table.len() && !stop.load(Ordering::Relaxed) {
                        let last = (first + series_per_request).min(table.len());
                        let samples = ((last - first) * rounds.len()) as u64;
                        let sent = encoder
                            .encode(&table, first..last, &rounds)
                            .and_then(|body| post(&client, url, body.to_vec()));
                        match sent {
                            Ok(()) => {
                                acked.fetch_add(samples, Ordering::Relaxed);
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                first_error.lock().get_or_insert_with(|| format!("{e:#}"));
                            }
                        }
                        first = last;
                    }
                    r += rounds.len() as u64;
                    progress[j].store(r, Ordering::Relaxed);
                }
            });
        }
        let measured = (|| -> Result<SaturationResult> {
            // Settle: every sender past its first round (series created), then 3 s more.
            let deadline = Instant::now() + Duration::from_secs(300);
            while slowest(&progress) == 0 {
                if Instant::now() > deadline {
                    bail!("no sender finished its first round in 300 s");
                }
                if failed.load(Ordering::Relaxed) > 1000 {
                    bail!(
                        "remote write keeps failing: {}",
                        first_error.lock().clone().unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_secs(3));
            let (a0, c0, s0, t0) = (
                acked.load(Ordering::Relaxed),
                procfs::cpu_seconds(server_pid)?,
                procfs::cpu_seconds(0)?,
                Instant::now(),
            );
            std::thread::sleep(Duration::from_secs(seconds));
            let (a1, c1, s1, elapsed) = (
                acked.load(Ordering::Relaxed),
                procfs::cpu_seconds(server_pid)?,
                procfs::cpu_seconds(0)?,
                t0.elapsed().as_secs_f64(),
            );
            let samples = a1 - a0;
            Ok(SaturationResult {
                samples_per_second: samples as f64 / elapsed,
                server_cpu_seconds_per_million: if samples > 0 {
                    (c1 - c0) / (samples as f64 / 1e6)
                } else {
                    f64::NAN
                },
                server_cores_used: (c1 - c0) / elapsed,
                sender_cpu_share: (s1 - s0) / elapsed / cores.max(1) as f64,
                samples_acked: samples,
                seconds: elapsed,
                requests_failed: failed.load(Ordering::Relaxed),
                first_error: first_error.lock().clone(),
            })
        })();
        stop.store(true, Ordering::Relaxed);
        measured
    })
}

fn slowest(progress: &[AtomicU64]) -> u64 {
    progress
        .iter()
        .map(|p| p.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// Self-checks, run by `cargo test --all-targets` (see main.rs): the hand-made bytes
// decode, with prost, into exactly the request they mean.
pub fn self_check() -> Result<usize> {
    use cairn::remote::prompb::WriteRequest;
    use prost::Message;
    let models = vec![TargetModel::new(1, 40), TargetModel::new(2, 40)];
    let names = vec!["a:1".to_string(), "b:2".to_string()];
    let table = SeriesTable::new(&models, "app", &names);
    anyhow::ensure!(table.len() == 80, "series {}", table.len());
    let rounds = vec![
        (0..80)
            .map(|i| (1_700_000_000_000 + i, i as f64 * 0.5))
            .collect::<Vec<_>>(),
        (0..80).map(|i| (1_700_000_015_000 + i, 0.0)).collect(),
    ];
    let mut enc = RequestEncoder::new();
    let body = enc.encode(&table, 3..7, &rounds)?.to_vec();
    let raw = snap::raw::Decoder::new().decompress_vec(&body)?;
    let req = WriteRequest::decode(raw.as_slice())?;
    anyhow::ensure!(req.timeseries.len() == 4, "four series");
    let ts = &req.timeseries[0];
    let names_of: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
    anyhow::ensure!(
        names_of == ["__name__", "code", "handler", "instance", "job", "method"],
        "sorted label names: {names_of:?}"
    );
    anyhow::ensure!(
        ts.labels[3].value == "a:1" && ts.labels[4].value == "app",
        "job, instance"
    );
    anyhow::ensure!(ts.samples.len() == 2, "two rounds");
    anyhow::ensure!(
        ts.samples[0].timestamp == 1_700_000_000_003 && ts.samples[0].value == 1.5,
        "first sample {:?}",
        ts.samples[0]
    );
    anyhow::ensure!(ts.samples[1].value == 0.0, "zero is sent, not dropped");
    let mut v = Vec::new();
    push_varint(&mut v, 300);
    anyhow::ensure!(v == [0xac, 0x02] && varint_len(300) == 2, "varint");
    Ok(4)
}
