//! Byte sizes as Prometheus writes them in configuration (`body_size_limit: 10MB`,
//! `retention.size: 512GiB`). Prometheus parses these with base-2 multipliers whichever
//! spelling is used: `1KB` and `1KiB` are both 1024 bytes (the SI spelling `kB` is
//! refused). Every term needs a unit except a lone `0`; terms may be fractional and may
//! be chained (`1GB512MB`), all in one spelling.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A size in bytes; zero means "no limit" where Prometheus gives it that meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid byte size {0:?}: expected a number and a unit such as 512KB, 10MiB or 1GB")]
pub struct ByteSizeError(pub String);

const PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

/// The multiplier of `unit` when every unit is spelled with `suffix` (`iB` or `B`).
fn multiplier(unit: &str, suffix: &str) -> Option<f64> {
    if unit == "B" {
        return Some(1.0);
    }
    let prefix = unit.strip_suffix(suffix)?;
    let power = PREFIXES.iter().skip(1).position(|p| *p == prefix)? + 1;
    Some(1024f64.powi(power as i32))
}

/// Parses a Prometheus byte size (`0`, `512B`, `10MB`, `1.5KiB`, `1GB512MB`).
pub fn parse_byte_size(s: &str) -> Result<ByteSize, ByteSizeError> {
    let bad = || ByteSizeError(s.to_string());
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(ByteSize(0));
    }
    // Prometheus tries the `KiB` spelling for the whole string, then the `KB` one.
    ["iB", "B"]
        .into_iter()
        .find_map(|suffix| sum_terms(body, suffix))
        .ok_or_else(bad)
}

fn sum_terms(mut s: &str, suffix: &str) -> Option<ByteSize> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !s.is_empty() {
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, rest) = s.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        total += value * multiplier(unit, suffix)?;
        s = rest;
    }
    // Like Prometheus, a fractional byte count is truncated.
    (total < 2f64.powi(63)).then_some(ByteSize(total as u64))
}

/// Prints as Prometheus does: the largest units first, `iB` spelling, zero terms left
/// out (`10MiB`, `1KiB512B`, `0B`).
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let mut terms = [0u64; 7];
        let mut n = self.0;
        for term in &mut terms {
            *term = n % 1024;
            n /= 1024;
        }
        for (i, term) in terms.iter().enumerate().rev() {
            if *term != 0 {
                let suffix = if i == 0 { "B" } else { "iB" };
                write!(f, "{term}{}{suffix}", PREFIXES[i])?;
            }
        }
        Ok(())
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_byte_size(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_units() {
        let cases = [
            ("0", 0),
            ("0B", 0),
            ("512B", 512),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1.5KB", 1536),
            ("1GB512MB", (1 << 30) + (512 << 20)),
            ("2EB", 2 << 60),
            ("+1KB", 1024),
        ];
        for (s, want) in cases {
            assert_eq!(parse_byte_size(s), Ok(ByteSize(want)), "{s}");
        }
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for s in [
            "",
            "100",
            "10kB",
            "10mb",
            "1MiB512KB",
            "MB",
            ".MB",
            "1..5MB",
            "-1KB",
            "8EiB",
            "1 MB",
        ] {
            assert!(parse_byte_size(s).is_err(), "{s:?} should be refused");
        }
        let e = parse_byte_size("10kB").unwrap_err();
        assert!(e.to_string().contains("\"10kB\""));
    }

    #[test]
    fn prints_like_prometheus_and_round_trips() {
        let cases = [
            (0, "0B"),
            (512, "512B"),
            (1536, "1KiB512B"),
            (10 << 20, "10MiB"),
            (1 << 40, "1TiB"),
        ];
        for (n, want) in cases {
            assert_eq!(ByteSize(n).to_string(), want);
            assert_eq!(parse_byte_size(want), Ok(ByteSize(n)));
        }
    }

    #[test]
    fn yaml() {
        let b: ByteSize = serde_saphyr::from_str("100MB").unwrap();
        assert_eq!(b, ByteSize(100 << 20));
        assert_eq!(serde_saphyr::to_string(&b).unwrap().trim(), "100MiB");
        assert!(serde_saphyr::from_str::<ByteSize>("lots").is_err());
    }
}
