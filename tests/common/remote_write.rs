//! A remote-write 1.0 client for the tests: posts snappy-compressed protobuf bodies with
//! the headers Prometheus sends, and raw bodies with any Content-Encoding for the tests
//! of what a receiver must refuse.

use super::api::{Reply, http_client};
use super::prompb::{TimeSeries, WriteRequest};

/// The headers a Prometheus 2.42 sender puts on every request.
const PROTOBUF: &str = "application/x-protobuf";
const VERSION_HEADER: &str = "x-prometheus-remote-write-version";
const VERSION: &str = "0.1.0";

pub struct RemoteWriter {
    client: reqwest::Client,
    url: String,
}

impl RemoteWriter {
    /// `url` is the receiver's `/api/v1/write`.
    pub fn new(url: String) -> RemoteWriter {
        RemoteWriter {
            client: http_client(),
            url,
        }
    }

    /// Sends `timeseries` as one request. `Err` only for transport failures (connection
    /// refused, reset); an HTTP error status is an `Ok` reply for the test to judge.
    pub async fn write(&self, timeseries: Vec<TimeSeries>) -> Result<Reply, String> {
        let body = WriteRequest::of(timeseries).to_body();
        self.post_raw(body, Some("snappy")).await
    }

    /// Sends `body` as it is, with `Content-Encoding: <encoding>` when given.
    pub async fn post_raw(&self, body: Vec<u8>, encoding: Option<&str>) -> Result<Reply, String> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", PROTOBUF)
            .header(VERSION_HEADER, VERSION)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("POST {}: body: {e}", self.url))?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }
}

/// A valid gzip member holding `data` in stored (uncompressed) deflate blocks: enough to
/// send a real `Content-Encoding: gzip` body without a deflate implementation.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    // RFC 1952 header: magic, CM=deflate, no flags, no mtime, no extra flags, OS unknown.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(usize::from(u16::MAX)).peekable();
    if chunks.peek().is_none() {
        // An empty input still needs one final stored block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let is_final = chunks.peek().is_none();
        let len = u16::try_from(chunk.len()).expect("chunks are at most u16::MAX long");
        // RFC 1951 stored block: BFINAL bit, BTYPE=00, then LEN and its complement.
        out.push(u8::from(is_final));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    // ISIZE is the input length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}
