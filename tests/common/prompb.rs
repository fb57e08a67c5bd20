//! The remote write 1.0 protobuf messages, written by hand with prost (field numbers from
//! Prometheus's `prompb/remote.proto` and `types.proto`), and the snappy block framing
//! the wire format uses. Only the fields a remote-write sender needs are declared.

use prost::Message;

/// `prometheus.WriteRequest`: field 1, repeated. (Field 3, metadata, is left out.)
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in timestamp order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample: the value (a double) and its timestamp in milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

impl TimeSeries {
    /// A series from literal labels (sorted here, as the spec requires of senders) and
    /// `(timestamp_ms, value)` samples.
    pub fn new(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        let mut labels: Vec<Label> = labels
            .iter()
            .map(|(name, value)| Label {
                name: (*name).to_owned(),
                value: (*value).to_owned(),
            })
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        TimeSeries {
            labels,
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }
}

impl WriteRequest {
    pub fn of(timeseries: Vec<TimeSeries>) -> WriteRequest {
        WriteRequest { timeseries }
    }

    /// The protobuf bytes, before compression.
    pub fn to_protobuf(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// The HTTP body remote write sends: protobuf, snappy block-compressed (not framed).
    pub fn to_body(&self) -> Vec<u8> {
        snappy_block(&self.to_protobuf())
    }
}

/// Snappy block format, as `Content-Encoding: snappy` means for remote write.
pub fn snappy_block(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("snappy compresses any input under 4 GiB")
}
