//! The remote-write receiver refuses what it cannot take, with 400 and a reason, and
//! stores nothing of a refused request; a valid request gets 204 and is queryable.

pub mod common;

use common::prompb::{TimeSeries, WriteRequest, snappy_block};
use common::remote_write::gzip_stored;
use common::{Cairn, Flavor, Monitor, Reply, now_ms};

const CONFIG: &str = "global:\n  scrape_interval: 1s\nscrape_configs: []\n";

/// cairn's cap on a remote-write body is at most this; Prometheus's senders stay far below
/// it (500 to 2000 samples per request).
const OVER_THE_LIMIT: usize = 33 << 20;

fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(
        reply.status, 400,
        "{what}: expected 400, got {}: {}",
        reply.status, reply.body
    );
    assert!(
        !reply.body.trim().is_empty(),
        "{what}: 400 without a reason"
    );
}

/// Every series whose name starts with `rw_bad_`, over all time.
async fn bad_series(cairn: &Monitor) -> Vec<common::Labels> {
    cairn
        .api
        .series(&[r#"{__name__=~"rw_bad_.*"}"#], None, None)
        .await
        .expect("series")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_400_with_a_reason_and_store_nothing() {
    let cairn = Cairn::start(CONFIG).await;
    let writer = cairn.remote_writer();
    let now = now_ms();
    let request = |name: &str| {
        WriteRequest::of(vec![
            TimeSeries::new(&[("__name__", name), ("n", "1")], &[(now, 1.0)]),
            TimeSeries::new(&[("__name__", name), ("n", "2")], &[(now, 2.0)]),
        ])
    };

    let garbage = writer
        .post_raw(b"this is not snappy at all".to_vec(), Some("snappy"))
        .await
        .expect("post garbage");
    assert_refused(&garbage, "garbage");
    assert!(
        garbage.body.to_lowercase().contains("snappy"),
        "names the layer: {}",
        garbage.body
    );

    // The first series decodes completely before the cut: a receiver that appends while
    // it decodes would store it.
    let mut protobuf = request("rw_bad_truncated").to_protobuf();
    protobuf.truncate(protobuf.len() - 3);
    let truncated = writer
        .post_raw(snappy_block(&protobuf), Some("snappy"))
        .await
        .expect("post truncated protobuf");
    assert_refused(&truncated, "truncated protobuf");

    let gzip = writer
        .post_raw(
            gzip_stored(&request("rw_bad_gzip").to_protobuf()),
            Some("gzip"),
        )
        .await
        .expect("post gzip");
    assert_refused(&gzip, "Content-Encoding: gzip");
    let reason = gzip.body.to_lowercase();
    assert!(
        reason.contains("snappy") || reason.contains("encoding"),
        "{}",
        gzip.body
    );

    // A snappy header that claims a 4 GiB output must not make the receiver allocate it.
    let mut lying = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    lying.extend_from_slice(b"\x00\x01\x02 not really compressed");
    let lying = writer
        .post_raw(lying, Some("snappy"))
        .await
        .expect("post lying header");
    assert_refused(&lying, "snappy header claiming 4 GiB");

    let empty = writer
        .post_raw(Vec::new(), Some("snappy"))
        .await
        .expect("post empty");
    assert_refused(&empty, "empty body");

    let good = writer
        .write(vec![TimeSeries::new(
            &[("__name__", "rw_good"), ("n", "1")],
            &[(now, 7.5)],
        )])
        .await
        .expect("post valid");
    assert_eq!(good.status, 204, "valid request: {}", good.body);
    assert!(good.body.is_empty(), "204 has no body: {:?}", good.body);

    // Writes are acknowledged after they are appended, so the query sees them at once.
    let stored = cairn
        .api
        .vector("rw_good", now_ms())
        .await
        .expect("query rw_good");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].sample.value, "7.5");
    assert_eq!(
        stored[0].metric,
        common::labels(&[("__name__", "rw_good"), ("n", "1")])
    );
    let leaked = bad_series(&cairn).await;
    assert!(
        leaked.is_empty(),
        "refused requests stored series: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused() {
    let cairn = Cairn::start(CONFIG).await;
    let now = now_ms();
    // Pseudo-random label values, which snappy cannot shrink, make a body over the limit
    // out of ordinary-looking series.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pad = || -> String {
        (0..16 << 10)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        [(state % 62) as usize],
                )
            })
            .collect()
    };
    let series: Vec<TimeSeries> = (0..OVER_THE_LIMIT / (16 << 10) + 1)
        .map(|i| {
            let (n, pad) = (i.to_string(), pad());
            TimeSeries::new(
                &[("__name__", "rw_bad_oversized"), ("n", &n), ("pad", &pad)],
                &[(now, 1.0)],
            )
        })
        .collect();
    let body = WriteRequest::of(series).to_body();
    assert!(
        body.len() > OVER_THE_LIMIT,
        "the body is {} bytes",
        body.len()
    );

    let reply = cairn
        .remote_writer()
        .post_raw(body, Some("snappy"))
        .await
        .expect("post");
    match cairn.flavor {
        // Prometheus 2.42 reads remote-write bodies of any size.
        Flavor::Prometheus => assert_eq!(reply.status, 204, "{}", reply.body),
        // cairn caps them (413 is what a generic body limit answers; both name the cause).
        Flavor::Cairn => {
            assert!(
                reply.status == 400 || reply.status == 413,
                "expected 400 or 413, got {}: {}",
                reply.status,
                reply.body
            );
            let reason = reply.body.to_lowercase();
            assert!(
                ["limit", "large", "size"]
                    .iter()
                    .any(|w| reason.contains(w)),
                "the reason names the size: {}",
                reply.body
            );
            let leaked = bad_series(&cairn).await;
            assert!(
                leaked.is_empty(),
                "{} series stored from a refused body",
                leaked.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_sample_is_refused_and_counted() {
    let cairn = Cairn::start(CONFIG).await;
    let writer = cairn.remote_writer();
    let now = now_ms();
    let series = |t: i64, v: f64| vec![TimeSeries::new(&[("__name__", "rw_ooo")], &[(t, v)])];

    let first = writer
        .write(series(now, 1.0))
        .await
        .expect("in-order write");
    assert_eq!(first.status, 204, "{}", first.body);
    let late = writer
        .write(series(now - 60_000, 2.0))
        .await
        .expect("out-of-order write");
    assert_refused(&late, "out-of-order sample");
    let reason = late.body.to_lowercase();
    assert!(reason.contains("out of order"), "{}", late.body);

    let counted = cairn
        .self_metric_value("tsdb_out_of_order_samples_total")
        .await
        .expect("the out-of-order counter");
    assert!(counted >= 1.0, "counter is {counted}");
    let samples = cairn
        .api
        .matrix("rw_ooo[5m]", now_ms())
        .await
        .expect("query");
    let values: Vec<&str> = samples
        .iter()
        .flat_map(|s| s.samples.iter().map(|x| x.value.as_str()))
        .collect();
    assert_eq!(values, vec!["1"], "only the in-order sample is stored");
}
