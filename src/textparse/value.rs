//! Sample values and timestamps as Prometheus reads them: Go's `strconv.ParseFloat`
//! grammar (minus hex floats and underscores, which Prometheus refuses), integer
//! millisecond timestamps for the text format and float-second timestamps for
//! OpenMetrics. Pure functions on byte slices; nothing here allocates.

/// The NaN Prometheus stores for every scraped NaN (`value.NormalNaN`, which is also
/// what Go's `strconv.ParseFloat("NaN")` yields). It differs from Rust's `f64::NAN` in
/// the low bit, and from the staleness marker, so chunk bytes match Prometheus's.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Powers of ten that are exact in an f64 (10^22 is the largest).
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a sample value. Accepts what Go's `strconv.ParseFloat` accepts after
/// Prometheus's filter: decimal floats with optional sign and exponent, `Inf`/`Infinity`
/// with optional sign and `NaN` without one (all case-insensitive). Rejects values that
/// overflow (Go reports a range error; Rust would quietly return infinity). Every NaN
/// comes back as [`NORMAL_NAN_BITS`].
#[inline]
pub fn parse_float(tok: &[u8]) -> Option<f64> {
    if let Some(v) = parse_simple_decimal(tok) {
        return Some(v);
    }
    parse_float_slow(tok)
}

/// Fast path for the common case: at most 18 significant digits, an optional fraction
/// and exponent whose combined power of ten is exact. Then `m * 10^e` or `m / 10^-e` is
/// one correctly rounded operation on exact operands, the same result a full decimal
/// conversion gives (Clinger's fast path). Anything else returns `None`.
#[inline]
fn parse_simple_decimal(tok: &[u8]) -> Option<f64> {
    let (neg, digits) = match tok.first()? {
        b'-' => (true, &tok[1..]),
        b'+' => (false, &tok[1..]),
        _ => (false, tok),
    };
    if digits.len() > 18 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut i = 0;
    while let Some(&b) = digits.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa * 10 + u64::from(d);
        i += 1;
    }
    let int_digits = i;
    let mut frac_digits = 0usize;
    if digits.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = digits.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            mantissa = mantissa * 10 + u64::from(d);
            frac_digits += 1;
            i += 1;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    let mut exp: i64 = -(frac_digits as i64);
    if let Some(&e) = digits.get(i) {
        if e | 0x20 != b'e' {
            return None;
        }
        i += 1;
        let exp_neg = match digits.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while let Some(&b) = digits.get(i) {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            e = e * 10 + i64::from(d);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp += if exp_neg { -e } else { e };
    }
    if mantissa > (1 << 53) || !(-22..=22).contains(&exp) {
        return None;
    }
    let m = mantissa as f64;
    let v = if exp >= 0 {
        m * EXACT_POW10[exp as usize]
    } else {
        m / EXACT_POW10[(-exp) as usize]
    };
    Some(if neg { -v } else { v })
}

#[cold]
fn parse_float_slow(tok: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(tok).ok()?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("nan") {
        // Go takes a sign only in front of Inf; Rust also takes "-nan".
        return (unsigned.len() == s.len()).then(|| f64::from_bits(NORMAL_NAN_BITS));
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite()
        && !(unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity"))
    {
        return None;
    }
    Some(v)
}

/// Parses the text format's timestamp: decimal digits only (the lexer admits no sign),
/// as milliseconds. `None` when it overflows an i64, as `strconv.ParseInt` fails then.
#[inline]
pub fn parse_ms_timestamp(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d))?;
    }
    Some(v)
}

/// Parses an OpenMetrics timestamp: float seconds, converted to milliseconds the way
/// Prometheus does (`int64(ts * 1000)`, truncating toward zero). NaN and infinities are
/// refused. Where the product does not fit an i64, Go's conversion on amd64 gives
/// `i64::MIN`; we return the same rather than Rust's saturation, so such a sample is
/// out of bounds in both.
#[inline]
pub fn parse_seconds_timestamp(tok: &[u8]) -> Option<i64> {
    let secs = parse_float(tok)?;
    if !secs.is_finite() {
        return None;
    }
    let ms = secs * 1000.0;
    // -2^63 is exact as an f64, so this is exactly the range an i64 holds.
    let min = i64::MIN as f64;
    if (min..-min).contains(&ms) {
        Some(ms as i64)
    } else {
        Some(i64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Option<f64> {
        parse_float(s.as_bytes())
    }

    #[test]
    fn decimal_forms() {
        assert_eq!(f("0"), Some(0.0));
        assert_eq!(f("-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(f("123"), Some(123.0));
        assert_eq!(f("+1.5"), Some(1.5));
        assert_eq!(f(".5"), Some(0.5));
        assert_eq!(f("5."), Some(5.0));
        assert_eq!(f("1e3"), Some(1000.0));
        assert_eq!(f("1E-3"), Some(0.001));
        assert_eq!(f("1.e2"), Some(100.0));
        assert_eq!(f("2.1e-05"), Some(2.1e-05));
        assert_eq!(f("0.1"), Some(0.1));
        assert_eq!(f("1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(
            f("123456789012345678901234567890"),
            Some(1.2345678901234568e29)
        );
        assert_eq!(f("1e-400"), Some(0.0));
    }

    #[test]
    fn specials_as_go_spells_them() {
        assert_eq!(f("+Inf"), Some(f64::INFINITY));
        assert_eq!(f("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(f("Inf"), Some(f64::INFINITY));
        assert_eq!(f("inf"), Some(f64::INFINITY));
        assert_eq!(f("+Infinity"), Some(f64::INFINITY));
        assert_eq!(f("INFINITY"), Some(f64::INFINITY));
        assert_eq!(f("NaN").map(f64::to_bits), Some(NORMAL_NAN_BITS));
        assert_eq!(f("nan").map(f64::to_bits), Some(NORMAL_NAN_BITS));
        assert_eq!(f("-NaN"), None);
        assert_eq!(f("+nan"), None);
        assert_eq!(f("infin"), None);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            "", "+", "-", ".", "e5", "1e", "1e+", "1_000", "0x1p3", "0x10", "1 ", " 1", "1,5",
            "--1", "1e400", "-1e400", "1.5.5", "1e5.5", "\u{0661}",
        ] {
            assert_eq!(f(s), None, "{s:?}");
        }
    }

    #[test]
    fn fast_path_matches_std_parsing() {
        for s in [
            "0.3",
            "9007199254740993",
            "900719925474099.3",
            "1.23e22",
            "4.35e-22",
            "0.000001",
            "123456789012345678",
            "1.5e-7",
            "99.99",
        ] {
            assert_eq!(f(s), s.parse::<f64>().ok(), "{s}");
        }
    }

    #[test]
    fn millisecond_timestamps() {
        assert_eq!(parse_ms_timestamp(b"1520879607789"), Some(1520879607789));
        assert_eq!(parse_ms_timestamp(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_ms_timestamp(b"9223372036854775808"), None);
        assert_eq!(parse_ms_timestamp(b""), None);
        assert_eq!(parse_ms_timestamp(b"-1"), None);
    }

    #[test]
    fn second_timestamps_truncate_like_go() {
        assert_eq!(
            parse_seconds_timestamp(b"1520879607.789"),
            Some(1520879607789)
        );
        assert_eq!(parse_seconds_timestamp(b"-1.5"), Some(-1500));
        assert_eq!(parse_seconds_timestamp(b"0.0009"), Some(0));
        assert_eq!(parse_seconds_timestamp(b"1e300"), Some(i64::MIN));
        assert_eq!(parse_seconds_timestamp(b"NaN"), None);
        assert_eq!(parse_seconds_timestamp(b"+Inf"), None);
        assert_eq!(parse_seconds_timestamp(b"x"), None);
    }
}
