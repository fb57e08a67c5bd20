//! Series-parallel evaluation: a selector's series split into contiguous parts, each part
//! read and evaluated on its own thread, the parts' results joined back in order.
//!
//! Reading a series (decoding its chunks) and computing its points depend on that
//! series alone, so a selection of many series spreads over the machine's cores and a
//! query's latency falls with them. Prometheus evaluates a query's series on one
//! goroutine; cairn parallelises only selections large enough to repay starting a
//! thread ([`MIN_SERIES_PER_PART`] series a part), so small queries (and the conformance
//! suite) run exactly as before, on the caller's thread.

use std::sync::OnceLock;

/// The fewest series worth a thread of their own: a part is ~100 µs of work or more.
pub(super) const MIN_SERIES_PER_PART: usize = 256;

/// The most threads one query uses, whatever the machine: queries run side by side
/// (`--query.max-concurrency`), and each one's share of the cores is what counts.
const MAX_PARTS: usize = 8;

/// Threads one selection of `n` series is evaluated on: one per core, at most
/// [`MAX_PARTS`], and never so many that a part gets fewer than
/// [`MIN_SERIES_PER_PART`] series.
pub(super) fn parts_for(n: usize) -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    (n / MIN_SERIES_PER_PART).clamp(1, cores.clamp(1, MAX_PARTS))
}

/// Splits `items` into [`parts_for`] contiguous parts and runs `f` on each, all but the
/// last on scoped threads and the last on the caller's; results come back in the
/// items' order. One part runs on the caller's thread alone.
pub(super) fn map_parts<I, O, F>(mut items: Vec<I>, f: F) -> Vec<O>
where
    I: Send,
    O: Send,
    F: Fn(Vec<I>) -> O + Sync,
{
    let parts = parts_for(items.len());
    if parts <= 1 {
        return vec![f(items)];
    }
    // Contiguous parts of near-equal size, taken from the back so each split is O(part).
    let size = items.len().div_ceil(parts);
    let mut split: Vec<Vec<I>> = Vec::with_capacity(parts);
    while items.len() > size {
        let tail = items.split_off(items.len() - size);
        split.push(tail);
    }
    split.push(items);
    split.reverse();
    let last = split.pop().unwrap_or_default();
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = split
            .into_iter()
            .map(|part| s.spawn(move || f(part)))
            .collect();
        let mine = f(last);
        let mut out: Vec<O> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        out.push(mine);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs_stay_on_one_part() {
        assert_eq!(parts_for(0), 1);
        assert_eq!(parts_for(MIN_SERIES_PER_PART - 1), 1);
        assert!(parts_for(MIN_SERIES_PER_PART * 100) <= MAX_PARTS);
        let out = map_parts(vec![1, 2, 3], |p| p.iter().sum::<i32>());
        assert_eq!(out, [6]);
    }

    #[test]
    fn parts_keep_order_and_cover_every_item() {
        for n in [MIN_SERIES_PER_PART * 2, MIN_SERIES_PER_PART * 3 + 7, 10_001] {
            let items: Vec<usize> = (0..n).collect();
            let parts = map_parts(items, |p| p);
            assert_eq!(parts.len(), parts_for(n));
            let joined: Vec<usize> = parts.into_iter().flatten().collect();
            assert_eq!(joined, (0..n).collect::<Vec<_>>());
        }
    }
}
