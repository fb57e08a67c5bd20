//! Remote write 1.0's protobuf messages, `prometheus.WriteRequest` and everything it
//! holds, hand-written with prost's derive. Field numbers and types are exactly those of
//! Prometheus's `prompb/remote.proto` and `prompb/types.proto`, so cairn reads what
//! Prometheus, Grafana Alloy, vmagent and the OpenTelemetry exporter send. This file only
//! describes the wire shapes; what gets stored is `write.rs`'s decision.

/// The body of a remote write request (after snappy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    // Tag 2 is reserved upstream (Cortex used it for the request source).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its labels and any mix of float samples, exemplars and native histograms.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Optional, may be empty.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A native histogram, integer or float counts. Decoded so a request carrying them is
/// accepted, but cairn stores no native histograms yet (`write.rs` counts them dropped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    #[prost(oneof = "histogram::Count", tags = "1, 2")]
    pub count: Option<histogram::Count>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema, -4..=8 for exponential buckets (-53 for custom buckets).
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<histogram::ZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Integer histograms: each bucket's count as a delta to the previous bucket.
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Float histograms: absolute bucket counts.
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(enumeration = "histogram::ResetHint", tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Upper bounds of custom buckets (schema -53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

pub mod histogram {
    /// Observation count: integer for integer histograms, float for float histograms.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Count {
        #[prost(uint64, tag = "1")]
        CountInt(u64),
        #[prost(double, tag = "2")]
        CountFloat(f64),
    }

    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum ZeroCount {
        #[prost(uint64, tag = "6")]
        ZeroCountInt(u64),
        #[prost(double, tag = "7")]
        ZeroCountFloat(f64),
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ResetHint {
        /// Check for a counter reset explicitly.
        Unknown = 0,
        /// The first histogram after a counter reset.
        Yes = 1,
        /// No reset since the previous histogram.
        No = 2,
        /// A gauge histogram, where resets do not apply.
        Gauge = 3,
    }
}

/// A run of consecutive buckets: a gap to the previous span, then a length.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// TYPE/HELP/UNIT of a metric family, sent beside the series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(enumeration = "metric_metadata::MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

pub mod metric_metadata {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        Unknown = 0,
        Counter = 1,
        Gauge = 2,
        Histogram = 3,
        GaugeHistogram = 4,
        Summary = 5,
        Info = 6,
        StateSet = 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn field_numbers_on_the_wire() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: "b".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 2,
                }],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![MetricMetadata {
                r#type: metric_metadata::MetricType::Counter as i32,
                metric_family_name: "x".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        // Hand-assembled from types.proto / remote.proto: tag bytes are
        // (field << 3) | wire type.
        let want: Vec<u8> = vec![
            0x0a, 21, // WriteRequest.timeseries (1, length-delimited)
            0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b', // TimeSeries.labels: name=1, value=2
            0x12, 11, // TimeSeries.samples (2)
            0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // Sample.value (1, fixed64) = 1.0
            0x10, 2, // Sample.timestamp (2, varint) = 2
            0x1a, 8, // WriteRequest.metadata (3)
            0x08, 1, // MetricMetadata.type (1) = COUNTER
            0x12, 1, b'x', // metric_family_name (2)
            0x22, 1, b'h', // help (4)
        ];
        assert_eq!(req.encode_to_vec(), want);
        assert_eq!(WriteRequest::decode(&want[..]).unwrap(), req);
    }

    #[test]
    fn histogram_shape_decodes() {
        let h = Histogram {
            count: Some(histogram::Count::CountInt(5)),
            sum: 2.5,
            schema: -1,
            zero_threshold: 0.001,
            zero_count: Some(histogram::ZeroCount::ZeroCountInt(1)),
            negative_spans: vec![],
            negative_deltas: vec![],
            negative_counts: vec![],
            positive_spans: vec![BucketSpan {
                offset: -2,
                length: 2,
            }],
            positive_deltas: vec![3, -2],
            positive_counts: vec![],
            reset_hint: histogram::ResetHint::No as i32,
            timestamp: 1000,
            custom_values: vec![],
        };
        let bytes = h.encode_to_vec();
        // schema is sint32 (zigzag): -1 encodes as 1 after tag 4.
        assert!(bytes.windows(2).any(|w| w == [0x20, 0x01]));
        let back = Histogram::decode(&bytes[..]).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.reset_hint(), histogram::ResetHint::No);
    }
}
