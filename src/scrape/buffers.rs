//! Scrape body buffers shared by every target loop. A loop holds a body only from its
//! fetch to the end of its append, and loops' scrapes are spread over the interval, so a
//! few buffers serve thousands of targets; one buffer per target would keep each
//! target's largest body resident between its scrapes (at 2,000 series a target, about
//! 70 bytes per series). Buffers are reused, never shrunk, so a steady scrape neither
//! allocates nor grows one.

use parking_lot::Mutex;

/// Idle buffers kept at most. Only as many exist as scrapes ever ran at once; past this
/// many, returned buffers are freed.
const KEPT: usize = 16;

static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer, the most recently returned one if any (its pages are the likeliest
/// to be resident).
pub fn take() -> Vec<u8> {
    IDLE.lock().pop().unwrap_or_default()
}

/// Hands a buffer back for the next scrape.
pub fn give(mut buf: Vec<u8>) {
    buf.clear();
    let mut idle = IDLE.lock();
    if idle.len() < KEPT {
        idle.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_with_their_capacity() {
        let mut b = take();
        b.extend_from_slice(&[7; 4096]);
        let ptr = b.as_ptr();
        give(b);
        // Another test may take it in between; when this one gets it back, it is empty
        // and keeps its capacity.
        let b = take();
        if b.as_ptr() == ptr {
            assert!(b.is_empty());
            assert!(b.capacity() >= 4096);
        }
        give(b);
        let held: Vec<_> = (0..KEPT + 4).map(|_| take()).collect();
        for b in held {
            give(b);
        }
        assert!(IDLE.lock().len() <= KEPT);
    }
}
