//! The API's JSON, byte for byte as Prometheus writes it: the success and error
//! envelopes, sample values as strings (`"NaN"`, `"+Inf"`), timestamps as seconds with
//! exactly three decimals when there is a fraction. Query results are written straight
//! into a `String` rather than through a JSON tree, since a matrix can hold millions of
//! points.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

/// Prometheus's error types and the status code each maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Internal,
    /// A feature switched off or not ready (Prometheus's `unavailable`, 503).
    Unavailable,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An API failure: `{"status":"error","errorType":...,"error":...}` with its status code.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// `invalid parameter "name": reason`, Prometheus's wording for a bad parameter.
    pub fn param(name: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter {name:?}: {reason}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Written by hand to keep Prometheus's key order.
        let mut body = String::from(r#"{"status":"error","errorType":""#);
        body.push_str(self.kind.as_str());
        body.push_str(r#"","error":"#);
        write_str(&mut body, &self.message);
        body.push('}');
        json_response(self.kind.status(), body)
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `{"status":"success","data":<data>}` around already-encoded data.
pub fn success_raw(data: &str) -> Response {
    let mut s = String::with_capacity(data.len() + 32);
    s.push_str(r#"{"status":"success","data":"#);
    s.push_str(data);
    s.push('}');
    json_response(StatusCode::OK, s)
}

pub fn success<T: serde::Serialize>(data: &T) -> Result<Response, ApiError> {
    let data = serde_json::to_string(data)
        .map_err(|e| ApiError::new(ErrorType::Internal, e.to_string()))?;
    Ok(success_raw(&data))
}

/// A sample value as Prometheus writes it.
pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let abs = v.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // Go's 'e' format, which Prometheus switches to outside [1e-6, 1e21): a signed
            // exponent of at least two digits (`1e-07`, `1.5e+21`).
            let e = format!("{v:e}");
            let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
        } else {
            write_positional(out, v);
        }
    }
}

/// A finite `v` as Go's `FormatFloat(v, 'f', -1, 64)` writes it: the shortest digits
/// that read back as `v`, without an exponent. A matrix can hold millions of values, so
/// the common magnitudes take ryu's shortest digits (which it writes without exponent
/// in `[1e-5, 1e16)`); the rest take `Display`, which gives the same digits, slower.
fn write_positional(out: &mut String, v: f64) {
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    if s.contains('e') {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// The decimal digits of `n`, without going through `fmt`.
fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| b as char));
}

/// Milliseconds as seconds: `1435781451.781`, `1.500`, `12`, `-0.250`.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    if t_ms < 0 {
        out.push('-');
    }
    let t = t_ms.unsigned_abs();
    write_u64(out, t / 1000);
    let frac = (t % 1000) as u16;
    if frac != 0 {
        out.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
    }
}

/// A JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Fast path: label names and values rarely need escaping, and a response can hold
    // millions of them.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{"name":"value",...}` for a label set.
pub fn write_labels(out: &mut String, labels: &crate::model::Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// `[<ts>,"<value>"]`
pub fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_like_prometheus() {
        let f = |t| {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            s
        };
        assert_eq!(f(1_435_781_451_781), "1435781451.781");
        assert_eq!(f(1_500), "1.500");
        assert_eq!(f(12_000), "12");
        assert_eq!(f(-250), "-0.250");
        assert_eq!(f(5), "0.005");
        assert_eq!(f(-1_000), "-1");
        assert_eq!(f(i64::MIN), "-9223372036854775.808");
        assert_eq!(f(1_763_800_012_340), "1763800012.340");
    }

    #[test]
    fn values_like_prometheus() {
        let f = |v| {
            let mut s = String::new();
            write_value(&mut s, v);
            s
        };
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(-1.5e300), "-1.5e+300");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(123456789012.5), "123456789012.5");
        assert_eq!(f(0.0), "0");
    }

    /// The fast path gives the digits of `Display` (Go's `'f'` form in this range), over
    /// values of every magnitude the API prints positionally, except where two shortest
    /// forms tie, which Go rounds to even.
    #[test]
    fn positional_values_match_display() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut checked = 0;
        while checked < 200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            // Random bit patterns, and short decimals as counters and rates give.
            for v in [v, (x % 1_000_000) as f64 / 1000.0, (x % 97) as f64 / 3.0] {
                if !v.is_finite() || (v != 0.0 && !(1e-6..1e21).contains(&v.abs())) {
                    continue;
                }
                let mut s = String::new();
                write_value(&mut s, v);
                let display = format!("{v}");
                if s != display {
                    // A tie between two shortest forms: Go (and ryu) round it to an even
                    // last digit, Rust's `Display` up. Both read back as `v`.
                    let last = s.as_bytes()[s.len() - 1];
                    assert_eq!(s.len(), display.len(), "{:x}", v.to_bits());
                    assert_eq!(s[..s.len() - 1], display[..s.len() - 1]);
                    assert_eq!((last - b'0') % 2, 0, "{s} for {:x}", v.to_bits());
                    assert_eq!(s.parse::<f64>(), Ok(v));
                }
                checked += 1;
            }
        }
        let f = |v| {
            let mut s = String::new();
            write_value(&mut s, v);
            s
        };
        assert_eq!(f(-0.0), "-0");
        // Exactly 1658206780088562.25: Go's FormatFloat gives the even neighbour.
        assert_eq!(
            f(f64::from_bits(0x4317_9085_685d_83c9)),
            "1658206780088562.2"
        );
        assert_eq!(f(123456.0), "123456");
        assert_eq!(f(0.000012), "0.000012");
        assert_eq!(f(0.0000012), "0.0000012");
        assert_eq!(f(1e20), "100000000000000000000");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    }
}
