//! Byte sizes as Prometheus's flags write them (`--storage.tsdb.retention.size=10GB`):
//! an integer and one of B, KB, MB, GB, TB, PB, EB, each 1024 times the one before
//! (Prometheus reads these units as powers of two).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size {0:?}: want an integer and a unit of B, KB, MB, GB, TB, PB or EB (e.g. 10GB)"
)]
pub struct ByteSizeError(String);

const UNITS: [&str; 7] = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ByteSizeError(s.to_string());
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        if unit.is_empty() {
            // A bare number is bytes, as a size of 0 (no limit) is usually written.
            return Ok(ByteSize(n));
        }
        let unit = unit.to_ascii_uppercase();
        let pow = UNITS.iter().position(|u| *u == unit).ok_or_else(bad)?;
        n.checked_mul(1u64 << (10 * pow))
            .map(ByteSize)
            .ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pow = 0;
        while pow + 1 < UNITS.len()
            && self.0 != 0
            && self.0.is_multiple_of(1u64 << (10 * (pow + 1)))
        {
            pow += 1;
        }
        write!(f, "{}{}", self.0 >> (10 * pow), UNITS[pow])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_prometheus_sizes() {
        let p = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(p("10GB"), Ok(10 << 30));
        assert_eq!(p("512mb"), Ok(512 << 20));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("7B"), Ok(7));
        assert!(p("10 GiB").is_err());
        assert!(p("GB").is_err());
        assert!(p("1.5GB").is_err());
        assert!(p("99999999999EB").is_err());
        assert_eq!(ByteSize(10 << 30).to_string(), "10GB");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }
}
