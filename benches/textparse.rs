//! Throughput of the exposition parsers on a generated 100k-line scrape: counters and
//! gauges with ten labels per series plus classic histograms, in both formats. Measures
//! `Parser::next` alone (the scrape-cache-hit path) and `next` plus
//! `parse_series_labels` on every series (the no-cache worst case), as bytes/s and
//! samples/s.

use std::fmt::Write as _;
use std::hint::black_box;

use cairn::model::LabelsBuilder;
use cairn::textparse::{Entry, Format, Parser, parse_series_labels};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const TARGET_LINES: usize = 100_000;

/// A small deterministic generator, so every run parses the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
const REGIONS: [&str; 3] = ["eu-west-1", "us-east-1", "ap-south-1"];

/// Ten labels in the shape Kubernetes service exporters produce.
fn label_block(rng: &mut Lcg, series: usize, extra: Option<&str>) -> String {
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "{{job=\"api-server\",instance=\"10.0.{}.{}:9100\",namespace=\"prod-{}\",pod=\"api-{:08x}-{}\",\
         container=\"app\",region=\"{}\",method=\"{}\",code=\"{}\",handler=\"/api/v1/items/{}\",\
         service=\"items\"",
        series % 250,
        series % 7,
        series % 5,
        rng.next(),
        series % 3,
        REGIONS[series % 3],
        METHODS[series % 4],
        CODES[series % 5],
        series % 40,
    );
    if let Some(e) = extra {
        s.push(',');
        s.push_str(e);
    }
    s.push('}');
    s
}

/// Returns the exposition and how many sample lines it has.
fn exposition(format: Format) -> (Vec<u8>, usize) {
    let om = format == Format::OpenMetrics;
    let mut rng = Lcg(42);
    let mut out = String::with_capacity(TARGET_LINES * 200);
    let (mut lines, mut samples, mut family) = (0, 0, 0);
    while lines < TARGET_LINES {
        let name = format!("app_requests_{family}");
        match family % 5 {
            0..=2 => {
                let sample_name = if om {
                    format!("{name}_total")
                } else {
                    name.clone()
                };
                let _ = writeln!(out, "# HELP {name} Requests served, by handler.");
                let _ = writeln!(out, "# TYPE {name} counter");
                lines += 2;
                for s in 0..50 {
                    let block = label_block(&mut rng, s, None);
                    let _ = writeln!(out, "{sample_name}{block} {}", rng.below(10_000_000));
                    lines += 1;
                    samples += 1;
                }
            }
            3 => {
                let _ = writeln!(out, "# HELP {name} In-flight requests.");
                let _ = writeln!(out, "# TYPE {name} gauge");
                lines += 2;
                for s in 0..50 {
                    let block = label_block(&mut rng, s, None);
                    let v = rng.below(1_000_000) as f64 / 1000.0;
                    let _ = writeln!(out, "{name}{block} {v}");
                    lines += 1;
                    samples += 1;
                }
            }
            _ => {
                let _ = writeln!(out, "# HELP {name} Request latency.");
                let _ = writeln!(out, "# TYPE {name} histogram");
                lines += 2;
                for s in 0..8 {
                    let mut count = 0;
                    for le in [
                        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
                        "10", "+Inf",
                    ] {
                        count += rng.below(100);
                        let block = label_block(&mut rng, s, Some(&format!("le=\"{le}\"")));
                        let exemplar = if om && rng.below(20) == 0 {
                            format!(
                                " # {{trace_id=\"{:016x}\"}} 0.042 1700000000.123",
                                rng.next()
                            )
                        } else {
                            String::new()
                        };
                        let _ = writeln!(out, "{name}_bucket{block} {count}{exemplar}");
                    }
                    let block = label_block(&mut rng, s, None);
                    let sum = rng.below(100_000_000) as f64 * 1.234e-5;
                    let _ = writeln!(out, "{name}_sum{block} {sum:e}");
                    let _ = writeln!(out, "{name}_count{block} {count}");
                    lines += 14;
                    samples += 14;
                }
            }
        }
        family += 1;
    }
    if om {
        out.push_str("# EOF\n");
    }
    (out.into_bytes(), samples)
}

fn next_only(buf: &[u8], format: Format) -> usize {
    let mut parser = Parser::new(buf, format);
    let mut n = 0;
    while let Some(entry) = parser.next().expect("generated exposition parses") {
        if let Entry::Series(line) = entry {
            black_box(line);
            n += 1;
        }
    }
    n
}

fn next_and_labels(buf: &[u8], format: Format, labels: &mut LabelsBuilder) -> usize {
    let mut parser = Parser::new(buf, format);
    let mut n = 0;
    while let Some(entry) = parser.next().expect("generated exposition parses") {
        if let Entry::Series(line) = entry {
            parse_series_labels(line.series, labels).expect("series labels parse");
            black_box(&*labels);
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("text", Format::Text, exposition(Format::Text)),
        (
            "openmetrics",
            Format::OpenMetrics,
            exposition(Format::OpenMetrics),
        ),
    ];
    for (unit, throughput) in [("bytes", true), ("samples", false)] {
        let mut group = c.benchmark_group(format!("textparse_{unit}"));
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
        for (name, format, (buf, samples)) in &inputs {
            assert_eq!(next_only(buf, *format), *samples);
            group.throughput(if throughput {
                Throughput::Bytes(buf.len() as u64)
            } else {
                Throughput::Elements(*samples as u64)
            });
            group.bench_function(format!("next/{name}"), |b| {
                b.iter(|| next_only(buf, *format))
            });
            let mut labels = LabelsBuilder::with_capacity(16);
            group.bench_function(format!("next+labels/{name}"), |b| {
                b.iter(|| next_and_labels(buf, *format, &mut labels))
            });
        }
        group.finish();
    }
    for (name, _, (buf, samples)) in &inputs {
        println!("{name}: {} bytes, {samples} samples", buf.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
