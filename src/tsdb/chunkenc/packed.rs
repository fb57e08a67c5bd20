//! The packed chunk: cairn's own encoding for chunks written into blocks (the head keeps
//! XOR, which can grow one sample at a time). A packed chunk is encoded from all of its
//! samples at once: timestamps as one constant delta when they are regular, else as
//! bit-packed deltas or offsets from a regular grid; values, when each is a decimal
//! `m / 10^k` (integers, or the few decimals that exporters print), as bit-packed
//! deltas or delta-of-deltas of the integer mantissas `m`. Integers are packed in groups
//! of 64 with a base and a bit width per group (frame of reference) and the few
//! outliers of a group (a counter reset) stored on the side. Values that are not such
//! decimals (NaN, stale markers, -0.0, 0.1+0.2) ride along as exceptions with their
//! bits; a chunk with too many of them is not packed at all (the caller writes XOR).
//! Decoding yields every sample of the chunk into a caller's buffer in tight loops and
//! allocates nothing else. `docs/format/chunks.md` describes the bytes.

use crate::model::Sample;
use crate::tsdb::varint::{get_uvarint, get_varint, put_uvarint, put_varint};
use std::ops::Range;

/// Integers are bit-packed in groups of this many.
pub const GROUP: usize = 64;

/// The largest decimal scale `k`: `10^22` is the largest power of ten a double holds
/// exactly, so `m as f64 / 10^k` is then one correctly rounded division.
pub const MAX_SCALE: usize = 22;

/// The most samples one packed chunk may claim (a corrupt count must not make a reader
/// reserve gigabytes; writers stay far below).
pub const MAX_SAMPLES: usize = 1 << 16;

/// Mantissas stay below 2^53 in magnitude: every such integer is an exact double.
const MANTISSA_LIMIT: u64 = 1 << 53;

const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Timestamp layouts (the first byte of the timestamp section).
const TS_REGULAR: u8 = 0;
const TS_DELTAS: u8 = 1;
const TS_GRID: u8 = 2;
/// The timestamps are those of another chunk, named by a number its container defines
/// (in a block: that chunk's ordinal among its segment's owners). The long form, read
/// only: cairn now writes shared chunks in the short form (see [`share_timestamps`]).
const TS_SHARED: u8 = 3;

/// Flag bit of the value header byte: mantissas stored as delta-of-deltas.
const VAL_DOD: u8 = 0x80;

/// The mantissa of `v` at scale `k`, if `m / 10^k` gives back exactly `v`'s bits.
#[inline]
fn mantissa(v: f64, k: usize) -> Option<i64> {
    let m = (v * POW10[k]).round();
    // Also rejects NaN and infinities (NaN is not finite).
    if !m.is_finite() || m.abs() >= MANTISSA_LIMIT as f64 {
        return None;
    }
    let m = m as i64;
    let back = if k == 0 {
        m as f64
    } else {
        m as f64 / POW10[k]
    };
    (back.to_bits() == v.to_bits()).then_some(m)
}

/// The smallest scale at which `v` is an exact decimal, if any.
fn min_scale(v: f64) -> Option<usize> {
    if !v.is_finite() {
        return None;
    }
    (0..=MAX_SCALE).find(|&k| mantissa(v, k).is_some())
}

#[inline]
fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn uvarint_len(x: u64) -> u64 {
    u64::from((64 - (x | 1).leading_zeros()).div_ceil(7))
}

/// Bits needed to hold `x`.
#[inline]
fn bit_width(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Builds packed chunks, reusing its buffers from chunk to chunk.
#[derive(Default)]
pub struct PackedEncoder {
    ints: Vec<i64>,
    mantissas: Vec<i64>,
    scales: Vec<u8>,
    exceptions: Vec<(usize, u64)>,
    scale: u8,
    sorted: Vec<i64>,
    costs: Vec<u64>,
    alt: Vec<u8>,
    alt2: Vec<u8>,
    tmp: Vec<u8>,
}

impl PackedEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `samples` (at least one, at most [`MAX_SAMPLES`]; timestamps strictly
    /// increasing) as one packed chunk to `out` and returns where in `out` its
    /// timestamp section lies (for [`share_timestamps`]). Returns `None`, `out`
    /// untouched, when more than one value in eight is not an exact decimal: XOR suits
    /// those better.
    pub fn encode(&mut self, samples: &[Sample], out: &mut Vec<u8>) -> Option<Range<usize>> {
        let n = samples.len();
        if n == 0 || n > MAX_SAMPLES || !self.choose_mantissas(samples) {
            return None;
        }
        put_uvarint(out, n as u64);
        let ts = out.len();
        self.put_timestamps(samples, out);
        let ts = ts..out.len();
        self.put_values(out);
        Some(ts)
    }

    /// Fills `mantissas` and `exceptions` at the scale that suits most values; false if
    /// too many values are exceptions at any scale.
    fn choose_mantissas(&mut self, samples: &[Sample]) -> bool {
        let n = samples.len();
        // Tiny chunks may hold one exception: the caller keeps XOR if that is shorter.
        let limit = n / 8 + 1;
        self.scales.clear();
        let mut non_decimal = 0;
        let mut per_scale = [0usize; MAX_SCALE + 2];
        for s in samples {
            // 0xff: no scale fits, an exception whatever the chunk's scale.
            let k = min_scale(s.v).map_or(0xff, |k| k as u8);
            if k == 0xff {
                non_decimal += 1;
                if non_decimal > limit {
                    return false;
                }
                per_scale[MAX_SCALE + 1] += 1;
            } else {
                per_scale[usize::from(k)] += 1;
            }
            self.scales.push(k);
        }
        // The smallest scale that leaves at most one value in 64 (beyond the
        // non-decimal ones) as an exception: a lone 0.5 among integers should not widen
        // every mantissa.
        let allowed = n / 64;
        let mut above: usize = per_scale[..=MAX_SCALE].iter().sum();
        let mut scale = MAX_SCALE;
        for (k, c) in per_scale[..=MAX_SCALE].iter().enumerate() {
            above -= c;
            if above <= allowed {
                scale = k;
                break;
            }
        }
        self.mantissas.clear();
        self.exceptions.clear();
        let mut prev = 0i64;
        for (i, s) in samples.iter().enumerate() {
            let m = if usize::from(self.scales[i]) <= scale {
                mantissa(s.v, scale)
            } else {
                None
            };
            match m {
                Some(m) => prev = m,
                // The slot repeats the previous mantissa, which packs to nothing.
                None => self.exceptions.push((i, s.v.to_bits())),
            }
            self.mantissas.push(prev);
        }
        if self.exceptions.len() > limit {
            return false;
        }
        self.scale = scale as u8;
        true
    }

    fn put_timestamps(&mut self, samples: &[Sample], out: &mut Vec<u8>) {
        let n = samples.len();
        let t0 = samples[0].t;
        let delta = |i: usize| samples[i].t.wrapping_sub(samples[i - 1].t);
        if n == 1 || (2..n).all(|i| delta(i) == delta(1)) {
            out.push(TS_REGULAR);
            put_varint(out, t0);
            if n > 1 {
                put_uvarint(out, delta(1) as u64);
            }
            return;
        }
        // Deltas, and offsets from a grid of the median delta: scrape jitter costs the
        // former twice the range it costs the latter, a missed scrape the latter a shift
        // for the rest of the group. The shorter wins.
        self.ints.clear();
        self.ints.extend((1..n).map(delta));
        let mut deltas = std::mem::take(&mut self.alt);
        deltas.clear();
        put_ints(&self.ints, &mut deltas, &mut self.sorted, &mut self.costs);
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.ints);
        self.sorted.sort_unstable();
        // The grid's step: the median delta (robust to a missed scrape) or the mean one
        // (robust to jitter that leaves the median a little off), whichever packs
        // shorter.
        let median = self.sorted[self.sorted.len() / 2];
        let span = i128::from(samples[n - 1].t) - i128::from(t0);
        let mean = ((span + (n as i128 - 1) / 2) / (n as i128 - 1)) as i64;
        let mut grid = std::mem::take(&mut self.alt2);
        grid.clear();
        self.put_grid(samples, median, &mut grid);
        if mean != median {
            let mut other = std::mem::take(&mut self.tmp);
            other.clear();
            self.put_grid(samples, mean, &mut other);
            if other.len() < grid.len() {
                std::mem::swap(&mut other, &mut grid);
            }
            self.tmp = other;
        }
        if grid.len() < deltas.len() {
            out.push(TS_GRID);
            put_varint(out, t0);
            out.extend_from_slice(&grid);
        } else {
            out.push(TS_DELTAS);
            put_varint(out, t0);
            out.extend_from_slice(&deltas);
        }
        self.alt = deltas;
        self.alt2 = grid;
    }

    /// The grid layout with `step`: the step, then each timestamp's offset from
    /// `t0 + i * step`.
    fn put_grid(&mut self, samples: &[Sample], step: i64, out: &mut Vec<u8>) {
        let t0 = samples[0].t;
        self.ints.clear();
        self.ints
            .extend(samples.iter().enumerate().skip(1).map(|(i, s)| {
                s.t.wrapping_sub(t0)
                    .wrapping_sub((i as i64).wrapping_mul(step))
            }));
        put_uvarint(out, step as u64);
        put_ints(&self.ints, out, &mut self.sorted, &mut self.costs);
    }

    fn put_values(&mut self, out: &mut Vec<u8>) {
        let m = &self.mantissas;
        let n = m.len();
        let scale = self.scale;
        // Deltas suit counters with noisy rates and random walks; delta-of-deltas suit
        // steady rates. The shorter wins.
        let mut delta = std::mem::take(&mut self.alt);
        delta.clear();
        self.ints.clear();
        self.ints
            .extend((1..n).map(|i| m[i].wrapping_sub(m[i - 1])));
        put_ints(&self.ints, &mut delta, &mut self.sorted, &mut self.costs);
        let mut dod = std::mem::take(&mut self.alt2);
        dod.clear();
        if n > 2 {
            put_varint(&mut dod, self.ints[0]);
            for i in (1..self.ints.len()).rev() {
                self.ints[i] = self.ints[i].wrapping_sub(self.ints[i - 1]);
            }
            put_ints(&self.ints[1..], &mut dod, &mut self.sorted, &mut self.costs);
        }
        if n > 2 && dod.len() < delta.len() {
            out.push(scale | VAL_DOD);
            put_varint(out, m[0]);
            out.extend_from_slice(&dod);
        } else {
            out.push(scale);
            put_varint(out, m[0]);
            out.extend_from_slice(&delta);
        }
        self.alt = delta;
        self.alt2 = dod;
        put_uvarint(out, self.exceptions.len() as u64);
        let mut last = 0;
        for &(i, bits) in &self.exceptions {
            put_uvarint(out, (i - last) as u64);
            out.extend_from_slice(&bits.to_le_bytes());
            last = i;
        }
    }
}

/// Appends `xs` as groups of [`GROUP`] bit-packed integers.
fn put_ints(xs: &[i64], out: &mut Vec<u8>, sorted: &mut Vec<i64>, costs: &mut Vec<u64>) {
    for g in xs.chunks(GROUP) {
        put_group(g, out, sorted, costs);
    }
}

/// One group: a header byte (bit width in the low 7 bits, bit 7 set when exceptions
/// follow), the base as a signed varint, the exceptions (count, then position and
/// signed varint value each), then `len * width` bits of `x - base`, least significant
/// bit first. The base and width are those that make the group shortest, leaving out
/// the values that would widen it most (exceptions).
fn put_group(g: &[i64], out: &mut Vec<u8>, sorted: &mut Vec<i64>, costs: &mut Vec<u64>) {
    let n = g.len();
    sorted.clear();
    sorted.extend_from_slice(g);
    sorted.sort_unstable();
    let span = |a: i64, b: i64| b.wrapping_sub(a) as u64;
    let full = bit_width(span(sorted[0], sorted[n - 1]));
    // costs[i]: the bits of sorted[..i] written as exceptions.
    costs.clear();
    costs.push(0);
    for (i, &x) in sorted.iter().enumerate() {
        costs.push(costs[i] + 8 + 8 * uvarint_len(zigzag(x)));
    }
    let mut best = (u64::from(full) * n as u64, full, 0usize, n);
    for w in 0..full {
        let mut hi = 0;
        for lo in 0..n {
            hi = hi.max(lo);
            while hi + 1 < n && span(sorted[lo], sorted[hi + 1]) >> w == 0 {
                hi += 1;
            }
            let cost = u64::from(w) * n as u64 + costs[lo] + (costs[n] - costs[hi + 1]) + 8;
            if cost < best.0 {
                best = (cost, w, lo, hi + 1);
            }
        }
    }
    let (_, w, lo, _) = best;
    let base = sorted[lo];
    let fits = |x: i64| w == 64 || (x >= base && span(base, x) >> w == 0);
    let outliers = g.iter().filter(|&&x| !fits(x)).count();
    out.push(w as u8 | if outliers > 0 { 0x80 } else { 0 });
    put_varint(out, base);
    if outliers > 0 {
        out.push(outliers as u8);
        for (i, &x) in g.iter().enumerate() {
            if !fits(x) {
                out.push(i as u8);
                put_varint(out, x);
            }
        }
    }
    if w == 0 {
        return;
    }
    let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let mut acc = 0u128;
    let mut bits = 0u32;
    for &x in g {
        let u = if fits(x) { span(base, x) & mask } else { 0 };
        acc |= u128::from(u) << bits;
        bits += w;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Reads one group of `len` integers into `out[..len]`.
#[inline]
fn get_group(d: &[u8], pos: &mut usize, len: usize, out: &mut [i64; GROUP]) -> Option<()> {
    let h = *d.get(*pos)?;
    *pos += 1;
    let w = u32::from(h & 0x7f);
    if w > 64 || len > GROUP {
        return None;
    }
    let base = get_varint(d, pos)?;
    let mut outliers = 0usize;
    let exc_at = *pos;
    if h & 0x80 != 0 {
        outliers = usize::from(*d.get(*pos)?);
        *pos += 1;
        for _ in 0..outliers {
            *pos += 1;
            get_varint(d, pos)?;
        }
    }
    let nbytes = (len * w as usize).div_ceil(8);
    let end = pos.checked_add(nbytes).filter(|&e| e <= d.len())?;
    let out = &mut out[..len];
    if w == 0 {
        out.fill(base);
    } else if let Some(padded) = d.get(*pos..end + 16) {
        // The common case: enough bytes follow to load whole words anywhere.
        unpack(padded, w, base, out);
    } else {
        // Near the end of the chunk: a zero-padded copy gives the same loads.
        let mut buf = [0u8; GROUP * 8 + 16];
        buf[..nbytes].copy_from_slice(&d[*pos..end]);
        unpack(&buf, w, base, out);
    }
    *pos = end;
    if outliers > 0 {
        let mut at = exc_at + 1;
        for _ in 0..outliers {
            let i = usize::from(*d.get(at)?);
            at += 1;
            *out.get_mut(i)? = get_varint(d, &mut at)?;
        }
    }
    Some(())
}

/// `out[i] = base + bits [i*w, (i+1)*w)` of `p`, which holds 16 bytes past the last.
#[inline(always)]
fn unpack(p: &[u8], w: u32, base: i64, out: &mut [i64]) {
    let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    if w <= 56 {
        for (i, o) in out.iter_mut().enumerate() {
            let bit = i * w as usize;
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[bit >> 3..(bit >> 3) + 8]);
            let x = (u64::from_le_bytes(b) >> (bit & 7)) & mask;
            *o = base.wrapping_add(x as i64);
        }
    } else {
        for (i, o) in out.iter_mut().enumerate() {
            let bit = i * w as usize;
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[bit >> 3..(bit >> 3) + 16]);
            let x = (u128::from_le_bytes(b) >> (bit & 7)) as u64 & mask;
            *o = base.wrapping_add(x as i64);
        }
    }
}

/// The number of samples a packed chunk holds (0 if its header is unreadable, or if it
/// takes its timestamps, and so its count, from another chunk in the short form).
pub fn num_samples(chunk: &[u8]) -> usize {
    let mut pos = 0;
    get_uvarint(chunk, &mut pos).map_or(0, |n| n as usize)
}

/// Writes `chunk` (from [`PackedEncoder::encode`], its timestamp section at `ts`) to
/// `out` with the sample count and timestamps replaced by a reference to another chunk
/// whose timestamp section (and so count) is byte for byte the same: `shared` names
/// it, as the container defines. This is the short form: a zero where the count was,
/// then `shared`.
pub fn share_timestamps(chunk: &[u8], ts: Range<usize>, shared: u64, out: &mut Vec<u8>) {
    out.push(0);
    put_uvarint(out, shared);
    out.extend_from_slice(&chunk[ts.end..]);
}

/// The reference of a chunk whose timestamps are shared (see [`share_timestamps`]; the
/// long form, count then layout 3, is what cairn wrote before), `None` if it holds its
/// own.
pub fn shared_timestamps(chunk: &[u8]) -> Option<u64> {
    let mut pos = 0;
    if get_uvarint(chunk, &mut pos)? != 0 {
        if *chunk.get(pos)? != TS_SHARED {
            return None;
        }
        pos += 1;
    }
    get_uvarint(chunk, &mut pos)
}

/// Appends every sample of the packed `chunk` to `out`; `shared` is the chunk that
/// [`shared_timestamps`] names, if it names one. On a malformed chunk (or a missing or
/// unfit `shared`) returns `None` with `out` as it was. Allocates only to grow `out`.
pub fn decode(chunk: &[u8], shared: Option<&[u8]>, out: &mut Vec<Sample>) -> Option<()> {
    let start = out.len();
    let r = decode_inner(chunk, shared, out, start);
    if r.is_none() {
        out.truncate(start);
    }
    r
}

fn decode_inner(
    d: &[u8],
    shared: Option<&[u8]>,
    out: &mut Vec<Sample>,
    start: usize,
) -> Option<()> {
    let mut pos = 0;
    let mut n = usize::try_from(get_uvarint(d, &mut pos)?).ok()?;
    // The short form of shared timestamps: the count is the other chunk's.
    let short = n == 0;
    let mut at = 0;
    if short {
        get_uvarint(d, &mut pos)?;
        n = usize::try_from(get_uvarint(shared?, &mut at)?).ok()?;
    }
    // Every group takes at least two bytes, so a short chunk cannot claim many samples.
    if n == 0 || n > MAX_SAMPLES || n > (d.len() + 1) * GROUP {
        return None;
    }
    out.reserve(n);
    if short {
        get_timestamps(shared?, &mut at, n, out)?;
    } else if *d.get(pos)? == TS_SHARED {
        pos += 1;
        get_uvarint(d, &mut pos)?;
        let ts = shared?;
        let mut at = 0;
        if get_uvarint(ts, &mut at)? != n as u64 {
            return None;
        }
        get_timestamps(ts, &mut at, n, out)?;
    } else {
        get_timestamps(d, &mut pos, n, out)?;
    }
    get_values(d, pos, &mut out[start..])
}

/// Reads a timestamp section of `n` timestamps, pushing a sample for each.
fn get_timestamps(d: &[u8], pos: &mut usize, n: usize, out: &mut Vec<Sample>) -> Option<()> {
    let mode = *d.get(*pos)?;
    *pos += 1;
    let t0 = get_varint(d, pos)?;
    out.push(Sample { t: t0, v: 0.0 });
    let mut g = [0i64; GROUP];
    match mode {
        TS_REGULAR => {
            if n > 1 {
                let step = get_uvarint(d, pos)? as i64;
                let mut t = t0;
                out.extend((1..n).map(|_| {
                    t = t.wrapping_add(step);
                    Sample { t, v: 0.0 }
                }));
            }
        }
        TS_DELTAS => {
            let mut t = t0;
            for first in (1..n).step_by(GROUP) {
                let len = GROUP.min(n - first);
                get_group(d, pos, len, &mut g)?;
                out.extend(g[..len].iter().map(|&x| {
                    t = t.wrapping_add(x);
                    Sample { t, v: 0.0 }
                }));
            }
        }
        TS_GRID => {
            let step = get_uvarint(d, pos)? as i64;
            for first in (1..n).step_by(GROUP) {
                let len = GROUP.min(n - first);
                get_group(d, pos, len, &mut g)?;
                let mut grid = t0.wrapping_add((first as i64).wrapping_mul(step));
                out.extend(g[..len].iter().map(|&r| {
                    let t = grid.wrapping_add(r);
                    grid = grid.wrapping_add(step);
                    Sample { t, v: 0.0 }
                }));
            }
        }
        _ => return None,
    }
    Some(())
}

/// Reads the value section at `pos` into `samples` (one per timestamp already read);
/// it must end the chunk.
fn get_values(d: &[u8], mut pos: usize, samples: &mut [Sample]) -> Option<()> {
    let n = samples.len();
    let mut g = [0i64; GROUP];
    let h = *d.get(pos)?;
    pos += 1;
    let scale = usize::from(h & !VAL_DOD);
    let p = *POW10.get(scale)?;
    let to_f64 = |m: i64| if scale == 0 { m as f64 } else { m as f64 / p };
    let mut m = get_varint(d, &mut pos)?;
    samples[0].v = to_f64(m);
    if h & VAL_DOD != 0 && n > 2 {
        let mut delta = get_varint(d, &mut pos)?;
        m = m.wrapping_add(delta);
        samples[1].v = to_f64(m);
        for first in (2..n).step_by(GROUP) {
            let len = GROUP.min(n - first);
            get_group(d, &mut pos, len, &mut g)?;
            for (s, &x) in samples[first..first + len].iter_mut().zip(&g[..len]) {
                delta = delta.wrapping_add(x);
                m = m.wrapping_add(delta);
                s.v = to_f64(m);
            }
        }
    } else if h & VAL_DOD != 0 {
        return None;
    } else {
        for first in (1..n).step_by(GROUP) {
            let len = GROUP.min(n - first);
            get_group(d, &mut pos, len, &mut g)?;
            for (s, &x) in samples[first..first + len].iter_mut().zip(&g[..len]) {
                m = m.wrapping_add(x);
                s.v = to_f64(m);
            }
        }
    }
    let exceptions = get_uvarint(d, &mut pos)?;
    let mut i = 0usize;
    for _ in 0..exceptions {
        i = i.checked_add(usize::try_from(get_uvarint(d, &mut pos)?).ok()?)?;
        let b = d.get(pos..pos + 8)?;
        pos += 8;
        let mut bits = [0u8; 8];
        bits.copy_from_slice(b);
        samples.get_mut(i)?.v = f64::from_bits(u64::from_le_bytes(bits));
    }
    (pos == d.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn samples(ts: &[i64], vs: &[f64]) -> Vec<Sample> {
        ts.iter().zip(vs).map(|(&t, &v)| Sample { t, v }).collect()
    }

    fn encode(s: &[Sample]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        PackedEncoder::new().encode(s, &mut out).map(|_| out)
    }

    fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
        s.iter().map(|s| (s.t, s.v.to_bits())).collect()
    }

    /// Encodes, decodes and compares bit for bit; returns the chunk's size.
    fn round_trip(s: &[Sample]) -> Option<usize> {
        let chunk = encode(s)?;
        let mut back = vec![Sample { t: 1, v: 2.0 }];
        decode(&chunk, None, &mut back).expect("decodes");
        assert_eq!(bits(&back[1..]), bits(s));
        assert_eq!(num_samples(&chunk), s.len());
        Some(chunk.len())
    }

    #[test]
    fn exact_bytes_of_a_regular_counter() {
        // 3 samples at 15 s from t=1000: n=3, TS_REGULAR, varint(1000) = d0 0f,
        // uvarint(15000) = 98 75. Values 5, 7, 9 (scale 0): delta beats dod
        // (dod needs the first delta, then a group anyway): header 00, varint(5) = 0a,
        // one group of two deltas (2, 2): width 0, base varint(2) = 04. No exceptions.
        let s = samples(&[1000, 16_000, 31_000], &[5.0, 7.0, 9.0]);
        assert_eq!(
            encode(&s).unwrap(),
            [3, 0, 0xd0, 0x0f, 0x98, 0x75, 0x00, 0x0a, 0x00, 0x04, 0x00]
        );
        round_trip(&s);
    }

    #[test]
    fn exact_bytes_of_decimals_with_jitter_and_an_exception() {
        // Timestamps 0, 10, 21, 30: deltas 10 11 9 -> one group, base 9, width 2:
        // 1, 2, 0 -> LSB first 0b00_10_01 = 09; header 02, varint(9) = 12: 3 bytes. The
        // grid (median delta 10: offsets 0 1 0) needs uvarint(10) and 3 bytes more, so
        // deltas win: TS_DELTAS, varint(0), 02 12 09.
        // Values 1.5, 1.25, NaN, 2.0 at scale 2: 150 125 (125) 200, the NaN an
        // exception: index 2, then its 8 bytes little-endian.
        let s = samples(&[0, 10, 21, 30], &[1.5, 1.25, f64::NAN, 2.0]);
        let c = encode(&s).unwrap();
        assert_eq!(&c[..6], &[4, TS_DELTAS, 0x00, 0x02, 0x12, 0x09]);
        assert_eq!(c[6] & !VAL_DOD, 2, "scale 2");
        assert_eq!(
            &c[c.len() - 10..c.len() - 8],
            &[1, 2],
            "one exception, at 2"
        );
        assert_eq!(c[c.len() - 8..], f64::NAN.to_bits().to_le_bytes());
        round_trip(&s);
    }

    #[test]
    fn jitter_packs_as_offsets_from_the_grid() {
        // Scrape jitter of 0..20 ms: offsets take 5 bits, deltas 6.
        let ts: Vec<i64> = (0..256).map(|i| i * 30_000 + (i * i * 7) % 20).collect();
        let s = samples(&ts, &vec![1.0; 256]);
        let c = encode(&s).unwrap();
        assert_eq!(c[2], TS_GRID);
        assert!(round_trip(&s).unwrap() < 256 * 5 / 8 + 30);
    }

    #[test]
    fn adversarial_values_round_trip_bit_exactly() {
        let odd = [
            f64::NAN,
            f64::from_bits(STALE_NAN_BITS),
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::from_bits(0xfff0_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            0.1 + 0.2,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            1e22,
            1e23,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            0.001,
            123_456.789,
            1e-22,
        ];
        // Mostly integers with one odd value each: packed, the odd one an exception.
        for &x in &odd {
            let mut vs: Vec<f64> = (0..100).map(|i| (i * 7 % 13) as f64).collect();
            vs[37] = x;
            let ts: Vec<i64> = (0..100).map(|i| i * 15_000).collect();
            assert!(round_trip(&samples(&ts, &vs)).is_some(), "{x:?}");
        }
        // All odd: not packed (XOR's job), never wrong.
        let ts: Vec<i64> = (0..odd.len() as i64).collect();
        assert!(encode(&samples(&ts, &odd)).is_none());
        // A lone value also packs.
        round_trip(&[Sample { t: -5, v: -0.0 }]);
        round_trip(&[Sample {
            t: i64::MIN,
            v: 3.0,
        }]);
    }

    #[test]
    fn counter_reset_is_an_exception_not_a_wide_group() {
        let ts: Vec<i64> = (0..128).map(|i| i * 30_000).collect();
        let mut v = 1_000_000.0;
        let vs: Vec<f64> = (0..128)
            .map(|i| {
                v = if i == 50 {
                    3.0
                } else {
                    v + (i * 13 % 7) as f64
                };
                v
            })
            .collect();
        let size = round_trip(&samples(&ts, &vs)).unwrap();
        // 127 deltas in 0..=6 take 3 bits each: about 48 bytes, plus the reset.
        assert!(size < 70, "{size} bytes");
    }

    #[test]
    fn lone_fine_decimal_does_not_widen_every_mantissa() {
        let ts: Vec<i64> = (0..640).map(|i| i * 15_000).collect();
        let mut vs: Vec<f64> = (0..640).map(|i| (i % 4) as f64).collect();
        let plain = round_trip(&samples(&ts, &vs)).unwrap();
        vs[300] = 1.000_001;
        let with = round_trip(&samples(&ts, &vs)).unwrap();
        assert!(with <= plain + 12, "{plain} -> {with}");
    }

    #[test]
    fn regular_timestamps_cost_constant_space() {
        let n = 1000;
        let ts: Vec<i64> = (0..n).map(|i| 1_700_000_000_000 + i * 15_000).collect();
        let vs = vec![42.0; n as usize];
        // count 2, mode 1, t0 6, step 3, value header 1 + 1, 16 groups of 2, count 1.
        assert!(round_trip(&samples(&ts, &vs)).unwrap() <= 50);
    }

    #[test]
    fn timestamps_shared_with_another_chunk() {
        let ts: Vec<i64> = (0..300).map(|i| i * 15_000 + (i * 7919) % 13).collect();
        let a = samples(&ts, &vec![3.0; 300]);
        let b = samples(&ts, &(0..300).map(|i| i as f64 * 0.5).collect::<Vec<_>>());
        let mut enc = PackedEncoder::new();
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        let ra = enc.encode(&a, &mut ca).unwrap();
        let rb = enc.encode(&b, &mut cb).unwrap();
        assert_eq!(ca[ra.clone()], cb[rb.clone()]);
        assert_eq!(shared_timestamps(&cb), None);
        let mut shared = Vec::new();
        share_timestamps(&cb, rb.clone(), 12_345, &mut shared);
        // The long form cairn wrote before: count, layout 3, reference.
        let mut long = cb[..rb.start].to_vec();
        long.push(TS_SHARED);
        put_uvarint(&mut long, 12_345);
        long.extend_from_slice(&cb[rb.end..]);
        assert_eq!(shared_timestamps(&long), Some(12_345));
        assert_eq!(shared.len() + 2, long.len(), "the count's two bytes");
        let mut out = Vec::new();
        decode(&long, Some(&ca), &mut out).unwrap();
        assert_eq!(bits(&out), bits(&b));
        assert!(
            shared.len() + 100 < cb.len(),
            "{} vs {}",
            shared.len(),
            cb.len()
        );
        assert_eq!(shared_timestamps(&shared), Some(12_345));
        out.clear();
        decode(&shared, Some(&ca), &mut out).unwrap();
        assert_eq!(bits(&out), bits(&b));
        // Without the chunk it names, nothing; the long form also checks that chunk's
        // count against its own (the short form has none: the container's checksums
        // and its check that the chunk named holds timestamps guard it).
        out.clear();
        assert!(decode(&shared, None, &mut out).is_none());
        assert!(decode(&long, None, &mut out).is_none());
        let mut short = Vec::new();
        enc.encode(&a[..299], &mut short).unwrap();
        assert!(decode(&long, Some(&short), &mut out).is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_chunks_fail_without_panicking() {
        let ts: Vec<i64> = (0..200).map(|i| i * 15_000 + (i * i) % 17).collect();
        let vs: Vec<f64> = (0..200).map(|i| (i * 31 % 1000) as f64 / 100.0).collect();
        let c = encode(&samples(&ts, &vs)).unwrap();
        let mut out = Vec::new();
        for cut in 0..c.len() {
            assert!(decode(&c[..cut], None, &mut out).is_none(), "cut {cut}");
            assert!(out.is_empty());
        }
        let mut longer = c.clone();
        longer.push(0);
        assert!(decode(&longer, None, &mut out).is_none());
        for i in 0..c.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = c.clone();
                bad[i] ^= flip;
                let _ = decode(&bad, None, &mut out);
                out.clear();
            }
        }
        assert!(decode(&[0xff, 0xff, 0xff, 0x7f], None, &mut out).is_none());
    }

    /// Values of every kind the property tests mix.
    fn value(kind: u8, bits: u64, prev: f64) -> f64 {
        match kind {
            0 => prev,
            1 => prev + (bits % 50) as f64,
            2 => (bits % 100_000) as f64 / 1000.0,
            3 => ((bits % 2_000_001) as f64 - 1_000_000.0) / 100.0,
            4 => f64::from_bits(bits),
            5 => [
                f64::NAN,
                f64::from_bits(STALE_NAN_BITS),
                -0.0,
                0.1 + 0.2,
                f64::INFINITY,
                1e300,
                5e-324,
            ][(bits % 7) as usize],
            _ => (bits >> 11) as f64,
        }
    }

    proptest! {
        #[test]
        fn random_and_adversarial_series_round_trip(
            start in any::<i64>(),
            steps in proptest::collection::vec(
                (prop_oneof![Just(15_000i64), 14_990i64..15_010, 1i64..1_000_000, any::<i64>()],
                 any::<u64>(),
                 prop_oneof![8 => 0u8..4, 1 => 4u8..7]),
                1..700),
        ) {
            let mut t = start;
            let mut prev = 0.0;
            let mut s = Vec::new();
            for (dt, bits, kind) in steps {
                let v = value(kind, bits, prev);
                s.push(Sample { t, v });
                prev = v;
                t = t.wrapping_add(dt);
            }
            if let Some(c) = encode(&s) {
                let mut back = Vec::new();
                prop_assert!(decode(&c, None, &mut back).is_some());
                prop_assert_eq!(bits(&back), bits(&s));
            }
        }

        #[test]
        fn decimals_always_pack(
            scale in 0u32..7,
            ms in proptest::collection::vec(-(1i64 << 40)..(1i64 << 40), 1..300),
        ) {
            let p = 10f64.powi(scale as i32);
            let s: Vec<Sample> = ms.iter().enumerate()
                .map(|(i, &m)| Sample { t: i as i64 * 1000, v: m as f64 / p })
                .collect();
            let c = encode(&s);
            prop_assert!(c.is_some());
            let mut back = Vec::new();
            prop_assert!(decode(&c.unwrap_or_default(), None, &mut back).is_some());
            prop_assert_eq!(bits(&back), bits(&s));
        }
    }
}
