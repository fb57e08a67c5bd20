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
            let _ = write!(out, "{v}");
        }
    }
}

/// Milliseconds as seconds: `1435781451.781`, `1.500`, `12`, `-0.250`.
pub fn write_timestamp(out: &mut String, t_ms: i64) {
    let mut t = t_ms as i128;
    if t < 0 {
        out.push('-');
        t = -t;
    }
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
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

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u0001""#);
    }
}
