//! Which blocks answer a query at a given resolution. The same time range may be held
//! raw, downsampled to 5m and to 1h at once (a downsampled block is a copy of a raw
//! one, and raw retention may delete the original later); a querier must read each
//! instant from exactly one resolution, or windows would count samples twice.
//!
//! The rule: resolutions are tried in order of preference — the one asked for, then
//! finer ones down to raw (more exact), then coarser ones (better than nothing) — and a
//! block is used unless it overlaps a block already chosen at another resolution.
//! Blocks of one resolution may overlap each other (backfilled data before compaction
//! merges it); the merging querier removes duplicate timestamps.

/// What selection needs to know of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub min_time: i64,
    /// Exclusive, as in `meta.json`.
    pub max_time: i64,
    /// 0 for raw samples, else the window in milliseconds.
    pub resolution: i64,
}

/// The order in which resolutions are preferred when `want` is asked for.
pub fn preference(want: i64, available: &[i64]) -> Vec<i64> {
    let mut finer: Vec<i64> = available.iter().copied().filter(|&r| r <= want).collect();
    finer.sort_unstable_by(|a, b| b.cmp(a));
    finer.dedup();
    let mut coarser: Vec<i64> = available.iter().copied().filter(|&r| r > want).collect();
    coarser.sort_unstable();
    coarser.dedup();
    finer.extend(coarser);
    finer
}

/// Indexes (into `spans`) of the blocks a querier at resolution `want` reads, in the
/// order of `spans`. Only blocks overlapping `[mint, maxt]` (inclusive) are considered.
pub fn choose(spans: &[Span], want: i64, mint: i64, maxt: i64) -> Vec<usize> {
    let relevant: Vec<usize> = (0..spans.len())
        .filter(|&i| spans[i].min_time <= maxt && spans[i].max_time > mint)
        .collect();
    let available: Vec<i64> = relevant.iter().map(|&i| spans[i].resolution).collect();
    let mut chosen: Vec<usize> = Vec::new();
    for res in preference(want, &available) {
        let mut picked_now = Vec::new();
        for &i in &relevant {
            let s = spans[i];
            if s.resolution != res {
                continue;
            }
            let clash = chosen.iter().any(|&c| {
                let o = spans[c];
                o.min_time < s.max_time && s.min_time < o.max_time
            });
            if !clash {
                picked_now.push(i);
            }
        }
        chosen.extend(picked_now);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M5: i64 = 300_000;

    fn span(a: i64, b: i64, resolution: i64) -> Span {
        Span {
            min_time: a * H,
            max_time: b * H,
            resolution,
        }
    }

    #[test]
    fn preference_is_asked_then_finer_then_coarser() {
        assert_eq!(preference(M5, &[0, H, M5, 0]), [M5, 0, H]);
        assert_eq!(preference(0, &[H, M5, 0]), [0, M5, H]);
        assert_eq!(preference(H, &[0, M5]), [M5, 0]);
        assert_eq!(preference(M5, &[]), Vec::<i64>::new());
    }

    #[test]
    fn each_range_is_read_at_one_resolution() {
        // 0-24h raw and 5m copies; 24-48h raw only (not downsampled yet); 48-72h only
        // 5m and 1h (raw deleted by retention).
        let spans = [
            span(0, 24, 0),
            span(0, 24, M5),
            span(24, 48, 0),
            span(48, 72, M5),
            span(48, 72, H),
        ];
        let all = |want| choose(&spans, want, i64::MIN, i64::MAX);
        assert_eq!(all(0), [0, 2, 3]);
        assert_eq!(all(M5), [1, 2, 3]);
        assert_eq!(all(H), [1, 2, 4]);
        // A query range touching only the last day.
        assert_eq!(choose(&spans, 0, 50 * H, 60 * H), [3]);
        assert_eq!(choose(&spans, H, 50 * H, 60 * H), [4]);
        // The exclusive end: a query ending exactly at 24h does not read 24-48h.
        assert_eq!(choose(&spans, 0, 0, 24 * H - 1), [0]);
    }

    #[test]
    fn overlapping_blocks_of_one_resolution_are_all_read() {
        let spans = [span(0, 2, 0), span(1, 3, 0), span(0, 6, M5)];
        assert_eq!(choose(&spans, 0, i64::MIN, i64::MAX), [0, 1]);
        // The 5m block overlaps both raw ones: at 5m it wins and they are left out.
        assert_eq!(choose(&spans, M5, i64::MIN, i64::MAX), [2]);
    }
}
