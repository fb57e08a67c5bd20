//! Prometheus's duration syntax (`1h30m`, `5m`, `90s`, `1d`, `1w`, `1y`, `10ms`) and the
//! API's timestamp syntax (RFC 3339 or float Unix seconds). One parser for the whole
//! program: config, flags, API parameters and PromQL all use these.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimeError {
    #[error("not a valid duration string: {0:?}")]
    BadDuration(String),
    #[error("cannot parse {0:?} to a valid timestamp")]
    BadTimestamp(String),
}

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds. Units must appear largest first, each
/// at most once, as Prometheus requires; `0` alone is allowed.
pub fn parse_duration_ms(s: &str) -> Result<u64, TimeError> {
    let bad = || TimeError::BadDuration(s.to_string());
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = None::<usize>;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(bad());
        }
        let n: u64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(bad());
        }
        last_unit = Some(idx);
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    parse_duration_ms(s).map(Duration::from_millis)
}

/// Formats milliseconds as Prometheus prints durations: `1h30m`, `15s`, `0s`.
pub fn format_duration_ms(mut ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (u, size) in UNITS {
        // Years and weeks only when exact, as Prometheus prints: `90d` reads better
        // than `12w6d`.
        let exact_only = u == "y" || u == "w";
        if exact_only && !ms.is_multiple_of(size) {
            continue;
        }
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(u);
            ms %= size;
        }
    }
    out
}

pub fn format_duration(d: Duration) -> String {
    format_duration_ms(d.as_millis() as u64)
}

/// Parses an API timestamp: float Unix seconds (`1700000000.123`) or RFC 3339. Returns
/// milliseconds since the epoch.
pub fn parse_timestamp_ms(s: &str) -> Result<i64, TimeError> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(TimeError::BadTimestamp(s.to_string()));
        }
        return Ok((f * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| TimeError::BadTimestamp(s.to_string()))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("10ms").unwrap(), 10);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration_ms("0").unwrap(), 0);
        assert!(parse_duration_ms("30m1h").is_err());
        assert!(parse_duration_ms("1x").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("m").is_err());
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
        assert_eq!(format_duration_ms(15_000), "15s");
        assert_eq!(format_duration_ms(90 * 86_400_000), "90d");
        assert_eq!(format_duration_ms(14 * 86_400_000), "2w");
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("1.5").unwrap(), 1500);
        assert_eq!(
            parse_timestamp_ms("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert!(parse_timestamp_ms("yesterday").is_err());
    }
}

/// A duration as written in Prometheus configuration (`15s`, `1m30s`): deserializes from
/// that syntax and serializes back to it, so `/api/v1/status/config` prints what a user
/// would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn from_secs(s: u64) -> Self {
        PromDuration(Duration::from_secs(s))
    }

    pub fn as_millis(self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl std::fmt::Display for PromDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl serde::Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PromDuration {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(PromDuration)
    }
}
