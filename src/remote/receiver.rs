//! The remote write receiver's fast path, one per storage: decompresses into a reused
//! buffer, reads the request with the zero-copy decoder, resolves every series through
//! the series cache (a known series costs no label check, no `Labels` and no head
//! lookup), checks the unknown ones exactly as `write.rs` does, then appends all samples
//! through one [`Appender`] and commits, or stores nothing. Buffers live in a small pool
//! shared by concurrent requests, so a request of known series allocates nothing per
//! sample or per series.

use super::cache::{Lookup, SeriesCache};
use super::decode::{Decoded, RawSeries, utf8};
use super::write::{RemoteWriteError, WriteStats, decompress, validate_labels};
use crate::model::Labels;
use crate::storage::{AppendError, Appender, SeriesRef, Storage};
use parking_lot::Mutex;
use std::time::Duration;

/// Series the cache remembers by default, and how long an unsent series stays.
const DEFAULT_MAX_SERIES: usize = 4 << 20;
const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Scratch sets kept for reuse (about the number of requests decoded at once), and the
/// largest decompression buffer kept (a rare huge request does not pin its memory).
const MAX_POOLED: usize = 8;
const MAX_POOLED_BUF: usize = 64 << 20;

/// What one request needs besides the body, reused across requests.
#[derive(Default)]
struct Scratch {
    buf: Vec<u8>,
    decoded: Decoded,
    lookups: Vec<Lookup>,
    /// The ref of each series of the request, 0 where not (yet) known.
    refs: Vec<SeriesRef>,
    /// The checked labels of each series the cache did not know.
    labels: Vec<Option<Labels>>,
    /// Series whose ref was learned in this request: `(series index, ref)`.
    fresh: Vec<(u32, SeriesRef)>,
}

/// Stores remote write requests into one storage; shared by all requests to it.
pub struct Receiver {
    cache: SeriesCache,
    pool: Mutex<Vec<Scratch>>,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver::new(DEFAULT_MAX_SERIES, DEFAULT_IDLE)
    }
}

impl Receiver {
    /// A receiver whose cache holds about `max_series` series and forgets those not sent
    /// for `idle`.
    pub fn new(max_series: usize, idle: Duration) -> Receiver {
        Receiver {
            cache: SeriesCache::new(max_series, idle),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Series the cache knows now.
    pub fn cached_series(&self) -> usize {
        self.cache.len()
    }

    /// Checks the headers, decodes a snappy-compressed `WriteRequest` body and stores
    /// all of it or nothing. Same refusals and messages as
    /// [`super::decode_write_request`] followed by [`super::write`]. The cache must only
    /// ever be used with one `storage`, since it keeps that storage's refs.
    pub fn receive(
        &self,
        storage: &dyn Storage,
        content_encoding: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
        max_decoded_bytes: usize,
    ) -> Result<WriteStats, RemoteWriteError> {
        let mut sc = self.pool.lock().pop().unwrap_or_default();
        let res = self.receive_with(
            &mut sc,
            storage,
            content_encoding,
            content_type,
            body,
            max_decoded_bytes,
        );
        if sc.buf.capacity() <= MAX_POOLED_BUF {
            let mut pool = self.pool.lock();
            if pool.len() < MAX_POOLED {
                pool.push(sc);
            }
        }
        res
    }

    fn receive_with(
        &self,
        sc: &mut Scratch,
        storage: &dyn Storage,
        content_encoding: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
        max_decoded_bytes: usize,
    ) -> Result<WriteStats, RemoteWriteError> {
        let Scratch {
            buf,
            decoded: d,
            lookups,
            refs,
            labels,
            fresh,
        } = sc;
        let size = decompress(content_encoding, content_type, body, max_decoded_bytes, buf)?;
        let buf = &buf[..size];
        d.decode(buf)?;
        let n = d.series.len();
        let stats = WriteStats {
            series: n,
            samples: d.samples.len(),
            exemplars_dropped: d.exemplars,
            histograms_dropped: d.histograms,
            metadata_dropped: d.metadata,
        };

        refs.clear();
        refs.resize(n, 0);
        lookups.clear();
        lookups.extend(d.series.iter().enumerate().filter_map(|(i, s)| {
            s.key.map(|k| Lookup {
                hash: SeriesCache::hash(k.of(buf)),
                series: i as u32,
            })
        }));
        let now = self.cache.now();
        let series = &d.series;
        let key = |i: u32| series[i as usize].key.map_or(&[][..], |k| k.of(buf));
        self.cache.get_many(lookups, key, refs, now);

        // Every series the cache does not know is checked before anything is appended.
        labels.clear();
        labels.resize_with(n, || None);
        for (i, s) in d.series.iter().enumerate() {
            if refs[i] == 0 {
                labels[i] = Some(labels_of(buf, d, s)?);
            }
        }

        fresh.clear();
        let mut app = storage.appender();
        if let Err(e) = append_all(app.as_mut(), buf, d, refs, labels, fresh) {
            app.rollback();
            return Err(e);
        }
        app.commit()?;
        for &(i, r) in fresh.iter() {
            if let Some(k) = d.series[i as usize].key {
                let k = k.of(buf);
                self.cache.insert(SeriesCache::hash(k), k, r, now);
            }
        }
        Ok(stats)
    }
}

/// Appends every sample: by ref where known, by labels once per unknown series (and
/// again where the storage forgot a cached ref, as its contract asks).
fn append_all(
    app: &mut dyn Appender,
    buf: &[u8],
    d: &Decoded,
    refs: &[SeriesRef],
    labels: &mut [Option<Labels>],
    fresh: &mut Vec<(u32, SeriesRef)>,
) -> Result<(), RemoteWriteError> {
    for (i, s) in d.series.iter().enumerate() {
        let mut r = refs[i];
        for &(t, v) in d.series_samples(s) {
            let res = if r != 0 {
                match app.append_ref(r, t, v) {
                    Err(AppendError::UnknownSeries(_)) => {
                        let l = match &mut labels[i] {
                            Some(l) => l,
                            slot @ None => slot.insert(labels_of(buf, d, s)?),
                        };
                        app.append(l, t, v).map(|new| {
                            r = new;
                            fresh.push((i as u32, new));
                        })
                    }
                    other => other,
                }
            } else {
                match &labels[i] {
                    Some(l) => app.append(l, t, v).map(|new| {
                        r = new;
                        fresh.push((i as u32, new));
                    }),
                    // Unreachable: every series without a ref got its labels checked.
                    None => Err(AppendError::UnknownSeries(0)),
                }
            };
            if let Err(source) = res {
                let series = match &labels[i] {
                    Some(l) => l.to_string(),
                    None => labels_of(buf, d, s)?.to_string(),
                };
                return Err(RemoteWriteError::Append {
                    series,
                    timestamp: t,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// A series' labels, checked for UTF-8 and validity.
fn labels_of(buf: &[u8], d: &Decoded, s: &RawSeries) -> Result<Labels, RemoteWriteError> {
    let mut pairs = Vec::with_capacity(d.series_labels(s).len());
    for l in d.series_labels(s) {
        pairs.push((utf8(l.name.of(buf))?, utf8(l.value.of(buf))?));
    }
    validate_labels(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::write::tests::{MAX, TestStorage, body, req, stored, ts};

    #[test]
    fn known_series_are_served_from_the_cache() {
        let st = TestStorage::default();
        let rc = Receiver::default();
        let series = |t: i64| {
            req((0..50)
                .map(|i| {
                    ts(
                        &[("__name__", "m"), ("i", &i.to_string())],
                        &[(t, i as f64)],
                    )
                })
                .collect())
        };
        rc.receive(&st, None, None, &body(&series(1)), MAX).unwrap();
        assert_eq!(rc.cached_series(), 50);
        let stats = rc.receive(&st, None, None, &body(&series(2)), MAX).unwrap();
        assert_eq!((stats.series, stats.samples), (50, 50));
        assert_eq!(rc.cached_series(), 50);
        let db = stored(&st);
        assert_eq!(db.len(), 50);
        assert!(
            db.iter()
                .all(|(_, s)| s.len() == 2 && s[0].0 == 1 && s[1].0 == 2)
        );
        // A refused request of known series stores nothing and names the series.
        let mut bad = series(3);
        bad.timeseries[7]
            .samples
            .push(crate::remote::prompb::Sample {
                value: 0.0,
                timestamp: 1,
            });
        let e = rc.receive(&st, None, None, &body(&bad), MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "out of order sample: series m{i=\"7\"}, timestamp 1"
        );
        assert!(stored(&st).iter().all(|(_, s)| s.len() == 2));
    }

    #[test]
    fn a_failed_commit_caches_nothing() {
        let st = TestStorage {
            fail_commit: true,
            ..TestStorage::default()
        };
        let rc = Receiver::default();
        let r = req(vec![ts(&[("__name__", "m")], &[(1, 1.0)])]);
        assert!(rc.receive(&st, None, None, &body(&r), MAX).is_err());
        assert_eq!(rc.cached_series(), 0);
    }

    #[test]
    fn labels_split_by_other_fields_work_uncached() {
        // TimeSeries { labels: a="1", samples: (5, 0.0), labels: __name__="m" }.
        let field = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
        let label = |n: &str, v: &str| {
            field(
                0x0a,
                &[field(0x0a, n.as_bytes()), field(0x12, v.as_bytes())].concat(),
            )
        };
        let series = [
            label("a", "1"),
            field(0x12, &[0x10, 5]),
            label("__name__", "m"),
        ]
        .concat();
        let raw = field(0x0a, &series);
        let b = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let st = TestStorage::default();
        let rc = Receiver::default();
        rc.receive(&st, None, None, &b, MAX).unwrap();
        assert_eq!(stored(&st), [("m{a=\"1\"}".to_string(), vec![(5, 0.0)])]);
        assert_eq!(rc.cached_series(), 0);
    }

    #[test]
    fn label_bytes_that_are_not_utf8_are_refused() {
        // WriteRequest { timeseries { labels { name: 0xff } } }.
        let b = snap::raw::Encoder::new()
            .compress_vec(&[0x0a, 5, 0x0a, 3, 0x0a, 1, 0xff])
            .unwrap();
        let st = TestStorage::default();
        let e = Receiver::default()
            .receive(&st, None, None, &b, MAX)
            .unwrap_err();
        assert!(matches!(e, RemoteWriteError::Wire(_)), "{e}");
        assert_eq!(e.http_status(), 400);
        assert!(
            e.to_string()
                .starts_with("cannot decode WriteRequest protobuf")
        );
    }

    #[test]
    fn concurrent_requests_share_the_cache() {
        let st = TestStorage::default();
        let rc = Receiver::default();
        std::thread::scope(|s| {
            for th in 0..4 {
                let (st, rc) = (&st, &rc);
                s.spawn(move || {
                    for t in 1..=20 {
                        let r = req((0..30)
                            .map(|i| {
                                let id = format!("{th}-{i}");
                                ts(&[("__name__", "m"), ("id", &id)], &[(t, 1.0)])
                            })
                            .collect());
                        rc.receive(st, None, None, &body(&r), MAX).unwrap();
                    }
                });
            }
        });
        let db = stored(&st);
        assert_eq!(db.len(), 120);
        assert!(db.iter().all(|(_, s)| s.len() == 20));
        assert_eq!(rc.cached_series(), 120);
    }
}
