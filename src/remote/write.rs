//! The remote write 1.0 receiver without its HTTP shell: checks the headers, decodes a
//! snappy block-compressed `WriteRequest`, validates every series, then stores all
//! samples through one [`Appender`] or nothing at all. Like Prometheus 2.42, a request
//! with an out-of-order or duplicate sample is refused whole (400, so the sender does not
//! retry) and nothing from it is kept. Exemplars, native histograms and metadata are
//! decoded and counted but not stored: cairn has no storage for them yet.

use prost::Message;

use super::prompb::{self, WriteRequest};
use crate::model::{Label, Labels};
use crate::storage::{AppendError, Appender, SeriesRef, Storage, StorageError};

/// The only media type remote write 1.0 uses.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// Why a remote write request was refused. Each message says what to fix; see
/// [`RemoteWriteError::http_status`] for the status to answer with.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("{0} encoding (compression) is not accepted by this server; only snappy is acceptable")]
    UnsupportedEncoding(String),
    #[error("expected {CONTENT_TYPE} as the first (media) part, got {0} content-type")]
    UnsupportedContentType(String),
    #[error(
        "{0} protobuf message is not accepted by this server; only prometheus.WriteRequest \
         (remote write 1.0) is"
    )]
    UnsupportedMessage(String),
    /// Not snappy block format (framed snappy is refused here too, as in Prometheus).
    #[error("{0}")]
    Snappy(#[from] snap::Error),
    #[error("decompressed body is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("cannot decode WriteRequest protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The same, from the zero-copy reader the receiver uses.
    #[error("cannot decode WriteRequest protobuf: {0}")]
    Wire(#[from] super::decode::WireError),
    #[error("invalid series {series}: {reason}")]
    InvalidSeries { series: String, reason: String },
    /// A sample the storage refused; nothing of the request was stored.
    #[error("{source}: series {series}, timestamp {timestamp}")]
    Append {
        series: String,
        timestamp: i64,
        #[source]
        source: AppendError,
    },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl RemoteWriteError {
    /// 400 for requests the sender must fix rather than retry (everything in the request
    /// is invalid or refused), 500 where the storage failed and a retry may succeed.
    /// Prometheus 3.x answers 415 for a wrong Content-Type or Content-Encoding; 2.42
    /// ignored both headers and failed such bodies with 400, which senders handle alike
    /// (no retry), so cairn keeps one client-error status.
    pub fn http_status(&self) -> u16 {
        match self {
            RemoteWriteError::Storage(_)
            | RemoteWriteError::Append {
                source: AppendError::UnknownSeries(_),
                ..
            } => 500,
            _ => 400,
        }
    }
}

/// What one stored request held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub series: usize,
    pub samples: usize,
    /// Decoded but not stored (no exemplar storage yet).
    pub exemplars_dropped: usize,
    /// Decoded but not stored (no native histogram storage yet).
    pub histograms_dropped: usize,
    /// Decoded but not stored (no metadata store yet).
    pub metadata_dropped: usize,
}

/// Decodes a snappy-compressed (block format, `snap::raw`) `WriteRequest` body.
///
/// Refuses a `Content-Encoding` other than snappy (absent counts as snappy, as in
/// Prometheus), a `Content-Type` other than `application/x-protobuf` (absent allowed;
/// `proto=prometheus.WriteRequest` allowed, the 2.0 message refused), garbage snappy,
/// garbage protobuf, and a body that would decompress to more than `max_decoded_bytes`
/// (checked from the snappy header before anything is allocated).
pub fn decode_write_request(
    content_encoding: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    max_decoded_bytes: usize,
) -> Result<WriteRequest, RemoteWriteError> {
    let mut buf = Vec::new();
    let size = decompress(
        content_encoding,
        content_type,
        body,
        max_decoded_bytes,
        &mut buf,
    )?;
    Ok(WriteRequest::decode(&buf[..size])?)
}

/// Checks the headers and decompresses `body` into `buf[..size]`, returning `size`.
/// `buf` is grown as needed and never shrunk, so a reused buffer costs no allocation (and
/// no zeroing) once it has reached the largest size seen.
pub(crate) fn decompress(
    content_encoding: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    max_decoded_bytes: usize,
    buf: &mut Vec<u8>,
) -> Result<usize, RemoteWriteError> {
    if let Some(enc) = content_encoding.map(str::trim).filter(|e| !e.is_empty())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return Err(RemoteWriteError::UnsupportedEncoding(enc.to_string()));
    }
    if let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) {
        check_content_type(ct)?;
    }
    let size = snap::raw::decompress_len(body)?;
    if size > max_decoded_bytes {
        return Err(RemoteWriteError::TooLarge {
            size,
            limit: max_decoded_bytes,
        });
    }
    if buf.len() < size {
        buf.resize(size, 0);
    }
    let n = snap::raw::Decoder::new().decompress(body, &mut buf[..size])?;
    Ok(n)
}

fn check_content_type(ct: &str) -> Result<(), RemoteWriteError> {
    let mut parts = ct.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    if !media.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(RemoteWriteError::UnsupportedContentType(ct.to_string()));
    }
    for param in parts {
        if let Some((key, value)) = param.split_once('=')
            && key.trim().eq_ignore_ascii_case("proto")
        {
            let msg = value.trim().trim_matches('"');
            if msg != "prometheus.WriteRequest" {
                return Err(RemoteWriteError::UnsupportedMessage(msg.to_string()));
            }
        }
    }
    Ok(())
}

/// Validates every series first, then appends all samples in one [`Appender`] and
/// commits. Any refused sample rolls the whole batch back, so nothing from a rejected
/// request is stored.
///
/// A series is refused when it has no labels (after dropping empty values, which
/// Prometheus treats as absent), an empty label name, or a label name twice. Prometheus
/// 2.42's storage refuses an empty label set and duplicate names too, but answers 500;
/// cairn says 400, since retrying the same request cannot help. Label names are not
/// checked against the legacy character set (Prometheus 3 accepts UTF-8 names). Labels
/// may come in any order; they are sorted here.
pub fn write(storage: &dyn Storage, req: &WriteRequest) -> Result<WriteStats, RemoteWriteError> {
    let mut stats = WriteStats {
        series: req.timeseries.len(),
        metadata_dropped: req.metadata.len(),
        ..WriteStats::default()
    };
    let mut series_labels = Vec::with_capacity(req.timeseries.len());
    for ts in &req.timeseries {
        series_labels.push(labels_of(&ts.labels)?);
        stats.samples += ts.samples.len();
        stats.exemplars_dropped += ts.exemplars.len();
        stats.histograms_dropped += ts.histograms.len();
    }
    let mut app = storage.appender();
    for (ts, labels) in req.timeseries.iter().zip(&series_labels) {
        if let Err((timestamp, source)) = append_series(app.as_mut(), labels, &ts.samples) {
            app.rollback();
            return Err(RemoteWriteError::Append {
                series: labels.to_string(),
                timestamp,
                source,
            });
        }
    }
    app.commit()?;
    Ok(stats)
}

/// Appends one series' samples: by labels once, then by ref (no per-sample label work).
fn append_series(
    app: &mut dyn Appender,
    labels: &Labels,
    samples: &[prompb::Sample],
) -> Result<(), (i64, AppendError)> {
    let mut series: Option<SeriesRef> = None;
    for s in samples {
        let r = match series {
            Some(r) => match app.append_ref(r, s.timestamp, s.value) {
                Ok(()) => Ok(r),
                // The storage forgot the ref: its contract says to use the labels.
                Err(AppendError::UnknownSeries(_)) => app.append(labels, s.timestamp, s.value),
                Err(e) => Err(e),
            },
            None => app.append(labels, s.timestamp, s.value),
        };
        series = Some(r.map_err(|e| (s.timestamp, e))?);
    }
    Ok(())
}

/// The series' labels, sorted, or why they are not a valid series.
fn labels_of(raw: &[prompb::Label]) -> Result<Labels, RemoteWriteError> {
    let pairs: Vec<(&str, &str)> = raw
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    validate_labels(pairs)
}

/// Sorts and checks a series' labels as received, `(name, value)`, into `Labels`: the
/// one place both the prost path and the zero-copy receiver decide what a valid series is.
pub(crate) fn validate_labels(mut pairs: Vec<(&str, &str)>) -> Result<Labels, RemoteWriteError> {
    let invalid = |pairs: &[(&str, &str)], reason: String| RemoteWriteError::InvalidSeries {
        series: raw_labels_string(pairs),
        reason,
    };
    let received = pairs.clone();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    if pairs.iter().any(|l| l.0.is_empty()) {
        return Err(invalid(&received, "label name is empty".into()));
    }
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        let reason = format!("duplicate label name {:?}", w[0].0);
        return Err(invalid(&received, reason));
    }
    let labels: Vec<Label> = pairs
        .into_iter()
        .filter(|l| !l.1.is_empty())
        .map(|(n, v)| Label::new(n, v))
        .collect();
    if labels.is_empty() {
        return Err(invalid(&received, "empty label set".into()));
    }
    Ok(Labels::from_sorted(labels))
}

/// `{a="1", b="2"}` in the order received, for error messages about invalid series.
fn raw_labels_string(raw: &[(&str, &str)]) -> String {
    let inner: Vec<String> = raw.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Sample;
    use crate::remote::Receiver;
    use crate::storage::Querier;
    use parking_lot::Mutex;
    use prompb::{Label as PLabel, Sample as PSample, TimeSeries};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    type Db = BTreeMap<Labels, Vec<Sample>>;

    /// A storage that keeps committed samples in a map, refuses out-of-order and
    /// duplicate timestamps per series, and can be told to fail commits or forget refs.
    /// Refs are the storage's (shared by its appenders, one per label set), as the
    /// receiver's cache expects.
    #[derive(Default)]
    pub(crate) struct TestStorage {
        pub(crate) db: Arc<Mutex<Db>>,
        pub(crate) refs: Arc<Mutex<Vec<Labels>>>,
        pub(crate) fail_commit: bool,
        pub(crate) forget_refs: bool,
    }

    struct TestAppender {
        db: Arc<Mutex<Db>>,
        refs: Arc<Mutex<Vec<Labels>>>,
        pending: Vec<(Labels, Sample)>,
        fail_commit: bool,
        forget_refs: bool,
    }

    impl TestAppender {
        fn last_t(&self, l: &Labels) -> Option<i64> {
            let pending = self
                .pending
                .iter()
                .rev()
                .find(|(pl, _)| pl == l)
                .map(|p| p.1.t);
            pending.or_else(|| self.db.lock().get(l).and_then(|s| s.last()).map(|s| s.t))
        }
    }

    impl Appender for TestAppender {
        fn append(&mut self, l: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
            match self.last_t(l) {
                Some(last) if t < last => return Err(AppendError::OutOfOrder),
                Some(last) if t == last => return Err(AppendError::DuplicateTimestamp),
                _ => {}
            }
            self.pending.push((l.clone(), Sample { t, v }));
            let mut refs = self.refs.lock();
            let i = match refs.iter().position(|r| r == l) {
                Some(i) => i,
                None => {
                    refs.push(l.clone());
                    refs.len() - 1
                }
            };
            Ok(i as SeriesRef + 1)
        }
        fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
            if self.forget_refs {
                return Err(AppendError::UnknownSeries(r));
            }
            let l = self.refs.lock()[r as usize - 1].clone();
            self.append(&l, t, v).map(|_| ())
        }
        fn commit(&mut self) -> Result<(), StorageError> {
            if self.fail_commit {
                return Err(StorageError::Other("disk full".into()));
            }
            let mut db = self.db.lock();
            for (l, s) in self.pending.drain(..) {
                db.entry(l).or_default().push(s);
            }
            Ok(())
        }
        fn rollback(&mut self) {
            self.pending.clear();
        }
    }

    impl Storage for TestStorage {
        fn appender(&self) -> Box<dyn Appender> {
            Box::new(TestAppender {
                db: self.db.clone(),
                refs: self.refs.clone(),
                pending: Vec::new(),
                fail_commit: self.fail_commit,
                forget_refs: self.forget_refs,
            })
        }
        fn querier(&self, _: i64, _: i64) -> Result<Box<dyn Querier>, StorageError> {
            Err(StorageError::Other("write-only test storage".into()))
        }
    }

    pub(crate) fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| PLabel {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| PSample { value, timestamp })
                .collect(),
            exemplars: vec![],
            histograms: vec![],
        }
    }

    pub(crate) fn req(series: Vec<TimeSeries>) -> WriteRequest {
        WriteRequest {
            timeseries: series,
            metadata: vec![],
        }
    }

    pub(crate) fn body(r: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&r.encode_to_vec())
            .unwrap()
    }

    pub(crate) fn stored(st: &TestStorage) -> Vec<(String, Vec<(i64, f64)>)> {
        st.db
            .lock()
            .iter()
            .map(|(l, s)| (l.to_string(), s.iter().map(|s| (s.t, s.v)).collect()))
            .collect()
    }

    pub(crate) const MAX: usize = 1 << 20;

    /// The two ways to store a request: prost structs through [`write`], and the
    /// zero-copy [`Receiver`] (one per storage). Every test below runs both, so they
    /// behave alike.
    enum Writer {
        Prost,
        Fast(Receiver),
    }

    impl Writer {
        fn all() -> [Writer; 2] {
            [Writer::Prost, Writer::Fast(Receiver::default())]
        }

        fn write(
            &self,
            st: &TestStorage,
            r: &WriteRequest,
        ) -> Result<WriteStats, RemoteWriteError> {
            match self {
                Writer::Prost => write(st, r),
                Writer::Fast(rc) => rc.receive(st, None, None, &body(r), MAX),
            }
        }
    }

    #[test]
    fn round_trip_through_prost_and_snappy() {
        let mut r = req(vec![
            ts(
                &[("__name__", "up"), ("job", "a\"b")],
                &[(1000, 1.0), (2000, f64::NAN)],
            ),
            ts(&[("__name__", "é"), ("x", "")], &[]),
        ]);
        r.metadata.push(prompb::MetricMetadata {
            r#type: prompb::metric_metadata::MetricType::Gauge as i32,
            metric_family_name: "up".into(),
            help: "Whether the target is up.".into(),
            unit: String::new(),
        });
        r.timeseries[0].exemplars.push(prompb::Exemplar {
            labels: vec![PLabel {
                name: "trace_id".into(),
                value: "abc".into(),
            }],
            value: 1.0,
            timestamp: 1000,
        });
        let b = body(&r);
        for (enc, ct) in [
            (None, None),
            (Some("snappy"), Some("application/x-protobuf")),
            (
                Some(" SNAPPY "),
                Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            ),
            (
                Some(""),
                Some("Application/X-Protobuf; proto=\"prometheus.WriteRequest\""),
            ),
        ] {
            let got = decode_write_request(enc, ct, &b, MAX).unwrap();
            // NaN != NaN, so compare the bytes the decoded request encodes to.
            assert_eq!(got.encode_to_vec(), r.encode_to_vec(), "{enc:?} {ct:?}");
            assert!(got.timeseries[0].samples[1].value.is_nan());
        }
    }

    #[test]
    fn rejections_each_say_why() {
        let b = body(&req(vec![ts(&[("a", "b")], &[(1, 1.0)])]));
        let err = |enc, ct, body: &[u8], max| decode_write_request(enc, ct, body, max).unwrap_err();
        let e = err(Some("gzip"), None, &b, MAX);
        assert_eq!(
            e.to_string(),
            "gzip encoding (compression) is not accepted by this server; only snappy is acceptable"
        );
        let e = err(None, Some("text/plain"), &b, MAX);
        assert_eq!(
            e.to_string(),
            "expected application/x-protobuf as the first (media) part, got text/plain content-type"
        );
        let e = err(
            None,
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            &b,
            MAX,
        );
        assert!(
            matches!(e, RemoteWriteError::UnsupportedMessage(ref m) if m == "io.prometheus.write.v2.Request")
        );
        let e = err(None, None, b"definitely not snappy", MAX);
        assert!(matches!(e, RemoteWriteError::Snappy(_)), "{e}");
        assert!(e.to_string().starts_with("snappy: "));
        let e = err(None, None, b"", MAX);
        assert_eq!(e.to_string(), "snappy: corrupt input (empty)");
        // A label name that is not UTF-8: WriteRequest{timeseries{labels{name: 0xff}}}.
        let bad_utf8 = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 5, 0x0a, 3, 0x0a, 1, 0xff])
            .unwrap();
        let e = err(None, None, &bad_utf8, MAX);
        assert!(matches!(e, RemoteWriteError::Protobuf(_)), "{e}");
        let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 16]).unwrap();
        let e = err(None, None, &garbage, MAX);
        assert!(matches!(e, RemoteWriteError::Protobuf(_)), "{e}");
        let e = err(None, None, &b, 4);
        assert!(
            matches!(e, RemoteWriteError::TooLarge { limit: 4, .. }),
            "{e}"
        );
        // A header claiming a huge size is refused before any allocation.
        let e = err(None, None, &[0xff, 0xff, 0xff, 0xff, 0x0f], MAX);
        assert!(matches!(e, RemoteWriteError::TooLarge { .. }), "{e}");
        // Framed snappy (the other snappy format) is not what remote write speaks.
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&req(vec![]).encode_to_vec()).unwrap();
        }
        assert!(decode_write_request(None, None, &framed, MAX).is_err());
        for e in [err(Some("br"), None, &b, MAX), err(None, None, b"x", MAX)] {
            assert_eq!(e.http_status(), 400);
        }
    }

    #[test]
    fn write_stores_everything_and_counts() {
        for w in Writer::all() {
            let st = TestStorage::default();
            let mut r = req(vec![
                // Labels in any order, empty values dropped.
                ts(
                    &[("job", "j"), ("__name__", "up"), ("empty", "")],
                    &[(1, 1.0), (2, 0.0)],
                ),
                ts(&[("__name__", "other")], &[(5, 5.0)]),
            ]);
            r.timeseries[1]
                .histograms
                .push(prompb::Histogram::default());
            r.metadata.push(prompb::MetricMetadata::default());
            let stats = w.write(&st, &r).unwrap();
            assert_eq!(
                stats,
                WriteStats {
                    series: 2,
                    samples: 3,
                    exemplars_dropped: 0,
                    histograms_dropped: 1,
                    metadata_dropped: 1,
                }
            );
            assert_eq!(
                stored(&st),
                [
                    ("other{}".to_string(), vec![(5, 5.0)]),
                    ("up{job=\"j\"}".to_string(), vec![(1, 1.0), (2, 0.0)]),
                ]
            );
            // An empty request is fine and stores nothing.
            assert_eq!(w.write(&st, &req(vec![])).unwrap(), WriteStats::default());
        }
    }

    #[test]
    fn invalid_series_refuses_the_whole_request() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "invalid series {}: empty label set"),
            (&[("a", "")], "invalid series {a=\"\"}: empty label set"),
            (&[("", "x")], "invalid series {=\"x\"}: label name is empty"),
            (
                &[("job", "a"), ("__name__", "m"), ("job", "b")],
                "invalid series {job=\"a\", __name__=\"m\", job=\"b\"}: duplicate label name \"job\"",
            ),
        ];
        for ((labels, want), w) in cases.iter().flat_map(|c| Writer::all().map(|w| (c, w))) {
            let st = TestStorage::default();
            let r = req(vec![
                ts(&[("__name__", "good")], &[(1, 1.0)]),
                ts(labels, &[(1, 1.0)]),
            ]);
            let e = w.write(&st, &r).unwrap_err();
            assert_eq!(e.to_string(), *want);
            assert_eq!(e.http_status(), 400);
            assert!(stored(&st).is_empty(), "{want}");
        }
    }

    #[test]
    fn out_of_order_rolls_back_everything() {
        for w in Writer::all() {
            let st = TestStorage::default();
            w.write(&st, &req(vec![ts(&[("__name__", "m")], &[(10, 1.0)])]))
                .unwrap();
            let r = req(vec![
                ts(&[("__name__", "new")], &[(1, 1.0), (2, 2.0)]),
                ts(&[("__name__", "m")], &[(11, 1.0), (5, 2.0)]),
            ]);
            let e = w.write(&st, &r).unwrap_err();
            assert_eq!(
                e.to_string(),
                "out of order sample: series m{}, timestamp 5"
            );
            assert_eq!(e.http_status(), 400);
            assert_eq!(stored(&st), [("m{}".to_string(), vec![(10, 1.0)])]);
            // A duplicate timestamp inside one series is refused the same way.
            let r = req(vec![ts(&[("__name__", "d")], &[(1, 1.0), (1, 2.0)])]);
            let e = w.write(&st, &r).unwrap_err();
            assert!(matches!(
                e,
                RemoteWriteError::Append {
                    source: AppendError::DuplicateTimestamp,
                    ..
                }
            ));
            assert_eq!(stored(&st).len(), 1);
        }
    }

    #[test]
    fn forgotten_refs_fall_back_to_labels() {
        for w in Writer::all() {
            let st = TestStorage {
                forget_refs: true,
                ..TestStorage::default()
            };
            w.write(
                &st,
                &req(vec![ts(
                    &[("__name__", "m")],
                    &[(1, 1.0), (2, 2.0), (3, 3.0)],
                )]),
            )
            .unwrap();
            assert_eq!(
                stored(&st),
                [("m{}".to_string(), vec![(1, 1.0), (2, 2.0), (3, 3.0)])]
            );
        }
    }

    #[test]
    fn commit_failure_is_a_server_error() {
        for w in Writer::all() {
            let st = TestStorage {
                fail_commit: true,
                ..TestStorage::default()
            };
            let e = w
                .write(&st, &req(vec![ts(&[("__name__", "m")], &[(1, 1.0)])]))
                .unwrap_err();
            assert_eq!(e.http_status(), 500);
            assert_eq!(e.to_string(), "storage: disk full");
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Two request bodies captured from a real Prometheus 2.42 remote-writing a scrape of
    /// a two-metric exposition: a metadata-only request and a samples request.
    #[test]
    fn decodes_what_prometheus_2_42_sends() {
        let metadata = unhex(concat!(
            "45641a2508011210636169726e5f746573745f746f74616c220f4120010e3820636f756e7465722e1a1c0802",
            "120a11273c6d70220c54656d70657261747572652e",
        ));
        let samples = unhex(concat!(
            "ae05f0790a730a1c0a085f5f6e616d655f5f1210636169726e5f746573745f746f74616c0a0b0a04636f6465",
            "12033230300a1b0a08696e7374616e6365120f3132372e302e302e313a31393039320a0b0a036a6f62120474",
            "696e790a0a0a047061746812022f6112100900000000000045401092c7e28fa0340a540a160a1975000a1175",
            "046d70a6620008121009095604f8bf1156084c0a0e1dcb040275ce4e0004f03f114e08610a231d4e5c177363",
            "726170655f6475726174696f6e5f7365636f6e6473b2b10018b6ef59f005da5b156308600a221d6300160d63",
            "1c73616d706c65735f090f0064b26200291304004011c5086f0a311d6200250953156254706f73745f6d6574",
            "7269635f72656c6162656c696e67f27100085d0a1f1d71001311712065726965735f616464f6d000",
        ));
        let ct = Some("application/x-protobuf");
        let r = decode_write_request(Some("snappy"), ct, &metadata, MAX).unwrap();
        assert!(r.timeseries.is_empty());
        let m: Vec<_> = r
            .metadata
            .iter()
            .map(|m| (m.r#type(), m.metric_family_name.as_str(), m.help.as_str()))
            .collect();
        use prompb::metric_metadata::MetricType;
        assert_eq!(
            m,
            [
                (MetricType::Counter, "cairn_test_total", "A test counter."),
                (MetricType::Gauge, "cairn_temp", "Temperature."),
            ]
        );
        let r = decode_write_request(Some("snappy"), ct, &samples, MAX).unwrap();
        let st = TestStorage::default();
        assert_eq!(write(&st, &r).unwrap().samples, 7);
        let db = stored(&st);
        let t = 1_795_329_401_746;
        assert_eq!(db.len(), 7);
        assert!(db.contains(&(
            "cairn_test_total{code=\"200\", instance=\"127.0.0.1:19092\", job=\"tiny\", path=\"/a\"}"
                .to_string(),
            vec![(t, 42.0)]
        )));
        assert!(db.contains(&(
            "cairn_temp{instance=\"127.0.0.1:19092\", job=\"tiny\"}".to_string(),
            vec![(t, -1.5)]
        )));
        assert!(db.contains(&(
            "up{instance=\"127.0.0.1:19092\", job=\"tiny\"}".to_string(),
            vec![(t, 1.0)]
        )));
        // The receiver reads the captured bodies alike.
        let fast = TestStorage::default();
        let rc = Receiver::default();
        let stats = rc
            .receive(&fast, Some("snappy"), ct, &metadata, MAX)
            .unwrap();
        assert_eq!((stats.series, stats.metadata_dropped), (0, 2));
        assert_eq!(
            rc.receive(&fast, Some("snappy"), ct, &samples, MAX)
                .unwrap()
                .samples,
            7
        );
        assert_eq!(stored(&fast), db);
        assert_eq!(rc.cached_series(), 7);
    }
}
