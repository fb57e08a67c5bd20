//! ULIDs for block directory names: 48 bits of Unix milliseconds then 80 random bits,
//! written as 26 Crockford base32 characters, so names sort by creation time. The random
//! part comes from xxh3 over the clock's nanoseconds, the process id and a counter: block
//! names must be unique within one data directory, not unguessable, so no RNG crate is
//! pulled in for them (a choice of cairn's; Prometheus uses a crypto-seeded source).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID for the current time.
pub fn new() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = [now.as_nanos() as u64, u64::from(std::process::id()), n];
    let mut bytes = [0u8; 24];
    for (i, s) in seed.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&s.to_le_bytes());
    }
    let r = xxhash_rust::xxh3::xxh3_128(&bytes);
    encode(now.as_millis() as u64, r)
}

/// Formats a ULID from its time (low 48 bits used) and randomness (low 80 bits used).
pub fn encode(ms: u64, random: u128) -> String {
    let v: u128 = (u128::from(ms & 0xffff_ffff_ffff) << 80) | (random & ((1u128 << 80) - 1));
    (0..26)
        .map(|i| {
            let shift = 5 * (25 - i);
            char::from(ALPHABET[((v >> shift) & 31) as usize])
        })
        .collect()
}

/// Whether `s` looks like a ULID (26 Crockford base32 characters, first one at most '7').
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26 && s.as_bytes()[0] <= b'7' && s.bytes().all(|c| ALPHABET.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        assert_eq!(encode(0, 0), "00000000000000000000000000");
        assert_eq!(encode(u64::MAX, u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        // The spec's example time prefix: 1469918176385 ms is "01ARYZ6S41".
        assert!(encode(1_469_918_176_385, 0).starts_with("01ARYZ6S41"));
    }

    #[test]
    fn new_ids_are_valid_unique_and_time_ordered() {
        let a = new();
        let b = new();
        assert!(is_ulid(&a) && is_ulid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(a[..10] <= b[..10]);
        assert!(!is_ulid("01ARYZ6S41") && !is_ulid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
        assert!(!is_ulid("01ARYZ6S41IIIIIIIIIIIIIIII"));
    }
}
