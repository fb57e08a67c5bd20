//! A block's `index` file: the symbol table, the series (labels as symbol ids, chunk
//! metas), a series offset table (every 16th series' offset since version 3), postings per label pair as serialized
//! roaring bitmaps, the postings offset table and a table of contents, every section
//! CRC32-checked at open. Owns the writer and the mmap reader, and resolves matchers
//! against the postings with the head's semantics (`index::MemPostings::select`).
//! Series are numbered 0.. in label order; that number is the postings entry.
//! `docs/format/index.md` has the bytes.

use super::BlockError;
use crate::model::{Labels, MatchType, Matcher};
use crate::tsdb::varint::{get_uvarint, get_varint, put_uvarint, put_varint};
use memmap2::Mmap;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::Path;

pub const MAGIC: u32 = 0xCA12_1DE5;
/// Version 1: chunk metas with absolute first mints and refs.
const VERSION_1: u8 = 1;
/// Version 2: the series section starts with a base time; a
/// series' first mint is stored after it, its first chunk ref as segment and offset,
/// later refs as the step from the previous one (see index.md).
const VERSION_2: u8 = 2;
/// Version 3 (what cairn writes): as version 2, but the series offset table holds the
/// offset of every [`OFFSET_STRIDE`]th series only; a reader skips the entries in
/// between (see index.md).
const VERSION_3: u8 = 3;
/// Series per stored offset in version 3: 3.75 bytes a series fewer than one `u32` each,
/// for skipping at most 15 entries' varints on a lookup (a few hundred bytes read).
const OFFSET_STRIDE: usize = 16;
const HEADER_LEN: usize = 8;
const SECTIONS: usize = 5;
/// The table of contents: five u64 section offsets and their CRC32.
const TOC_LEN: usize = SECTIONS * 8 + 4;

/// Where a chunk lives and which samples it holds (both times inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    pub mint: i64,
    pub maxt: i64,
    pub r: u64,
}

/// Writes the index for `series`, which must be sorted by labels and unique.
pub fn write(path: &Path, series: &[(Labels, Vec<ChunkMeta>)]) -> Result<(), BlockError> {
    write_version(path, series, VERSION_3)
}

/// [`write`] in the format of `version` (1 and 2 only for tests that old indexes stay
/// readable).
fn write_version(
    path: &Path,
    series: &[(Labels, Vec<ChunkMeta>)],
    version: u8,
) -> Result<(), BlockError> {
    if series.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(BlockError::Corrupt(
            "index series not sorted and unique".into(),
        ));
    }
    let mut strings = BTreeSet::<&str>::new();
    for (l, _) in series {
        for x in l {
            strings.insert(&x.name);
            strings.insert(&x.value);
        }
    }
    let ids: HashMap<&str, u32> = strings
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let id = |s: &str| ids.get(s).copied().unwrap_or(0);

    let mut symbols = Vec::new();
    put_uvarint(&mut symbols, strings.len() as u64);
    for s in &strings {
        put_uvarint(&mut symbols, s.len() as u64);
        symbols.extend_from_slice(s.as_bytes());
    }

    let base = series
        .iter()
        .filter_map(|(_, c)| c.first().map(|c| c.mint))
        .min()
        .unwrap_or(0);
    let mut body = Vec::new();
    if version != VERSION_1 {
        put_varint(&mut body, base);
    }
    let stride = if version == VERSION_3 {
        OFFSET_STRIDE
    } else {
        1
    };
    let mut offsets = Vec::with_capacity(series.len().div_ceil(stride) * 4 + 4);
    offsets.extend_from_slice(&(series.len() as u32).to_be_bytes());
    let mut postings = BTreeMap::<(u32, u32), RoaringBitmap>::new();
    for (ord, (labels, chunks)) in series.iter().enumerate() {
        let off = u32::try_from(body.len())
            .map_err(|_| BlockError::Corrupt("index series section over 4 GiB".into()))?;
        if ord % stride == 0 {
            offsets.extend_from_slice(&off.to_be_bytes());
        }
        put_uvarint(&mut body, labels.len() as u64);
        for l in labels {
            let (n, v) = (id(&l.name), id(&l.value));
            put_uvarint(&mut body, u64::from(n));
            put_uvarint(&mut body, u64::from(v));
            postings.entry((n, v)).or_default().insert(ord as u32);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        let mut prev: Option<&ChunkMeta> = None;
        for c in chunks {
            // Chunks are written series by series in this order, so a series' refs
            // are a few hundred bytes apart and its times close to the block's start.
            match prev {
                _ if version == VERSION_1 => {
                    let base = prev.map_or(0, |p| p.maxt);
                    put_varint(&mut body, c.mint.wrapping_sub(base));
                    put_uvarint(&mut body, c.maxt.wrapping_sub(c.mint) as u64);
                    put_uvarint(&mut body, c.r);
                }
                None => {
                    put_uvarint(&mut body, c.mint.wrapping_sub(base) as u64);
                    put_uvarint(&mut body, c.maxt.wrapping_sub(c.mint) as u64);
                    put_uvarint(&mut body, c.r >> 32);
                    put_uvarint(&mut body, c.r & 0xffff_ffff);
                }
                Some(p) => {
                    put_varint(&mut body, c.mint.wrapping_sub(p.maxt));
                    put_uvarint(&mut body, c.maxt.wrapping_sub(c.mint) as u64);
                    put_varint(&mut body, c.r.wrapping_sub(p.r) as i64);
                }
            }
            prev = Some(c);
        }
    }

    let mut post = Vec::new();
    let mut table = Vec::new();
    put_uvarint(&mut table, postings.len() as u64);
    for ((n, v), bm) in &mut postings {
        // Run containers: series are numbered in label order, so a metric name's or
        // a job's series are one run of ordinals (4 bytes instead of 2 per series).
        bm.optimize();
        let off = post.len();
        bm.serialize_into(&mut post)?;
        put_uvarint(&mut table, u64::from(*n));
        put_uvarint(&mut table, u64::from(*v));
        put_uvarint(&mut table, off as u64);
        put_uvarint(&mut table, (post.len() - off) as u64);
    }

    let mut out = Vec::with_capacity(
        HEADER_LEN + symbols.len() + body.len() + offsets.len() + post.len() + table.len() + 64,
    );
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&[version, 0, 0, 0]);
    let mut toc = Vec::with_capacity(TOC_LEN);
    for sec in [&symbols, &body, &offsets, &post, &table] {
        toc.extend_from_slice(&(out.len() as u64).to_be_bytes());
        let len = u32::try_from(sec.len())
            .map_err(|_| BlockError::Corrupt("index section over 4 GiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(sec);
        out.extend_from_slice(&crc32fast::hash(sec).to_be_bytes());
    }
    let crc = crc32fast::hash(&toc);
    out.extend_from_slice(&toc);
    out.extend_from_slice(&crc.to_be_bytes());
    let mut f = File::create(path)?;
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(())
}

/// One row of the postings offset table.
#[derive(Clone, Copy, Debug)]
struct PostingsEntry {
    name: u32,
    value: u32,
    off: u32,
    len: u32,
}

/// A mapped, verified index file.
pub struct IndexReader {
    map: Mmap,
    /// (offset, len) of each symbol's bytes in the file, in id (= sorted) order.
    symbols: Vec<(u32, u32)>,
    series: std::ops::Range<usize>,
    version: u8,
    /// Versions 2 and 3: the time first mints are stored after.
    base: i64,
    offsets: std::ops::Range<usize>,
    num_series: u32,
    postings: std::ops::Range<usize>,
    table: Vec<PostingsEntry>,
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Series per stored offset in an index of `version`.
fn stride_of(version: u8) -> usize {
    if version == VERSION_3 {
        OFFSET_STRIDE
    } else {
        1
    }
}

/// Moves `pos` past `n` varints without decoding them.
fn skip_varints(d: &[u8], pos: &mut usize, n: u64) -> Option<()> {
    for _ in 0..n {
        while *d.get(*pos)? >= 0x80 {
            *pos += 1;
        }
        *pos += 1;
    }
    Some(())
}

/// Moves `pos` past one version 2/3 series entry (labels, then chunk metas: four
/// varints for the first chunk, three for each later one).
fn skip_series(d: &[u8], pos: &mut usize) -> Option<()> {
    let nl = get_uvarint(d, pos)?;
    skip_varints(d, pos, nl.checked_mul(2)?)?;
    let nc = get_uvarint(d, pos)?;
    if nc > 0 {
        skip_varints(d, pos, (nc - 1).checked_mul(3)?.checked_add(4)?)?;
    }
    Some(())
}

fn corrupt(why: impl Into<String>) -> BlockError {
    BlockError::Corrupt(why.into())
}

impl IndexReader {
    pub fn open(path: &Path) -> Result<Self, BlockError> {
        let file = File::open(path)?;
        // SAFETY: as for chunk segments (see `chunks::ChunkReader::open`): a block's files
        // are complete and fsynced before the rename that publishes them, and nothing in
        // cairn writes to them afterwards; unlink/rename keep a live mapping intact.
        let map = unsafe { Mmap::map(&file)? };
        Self::from_map(map)
    }

    fn from_map(map: Mmap) -> Result<Self, BlockError> {
        let d: &[u8] = &map;
        if d.len() < HEADER_LEN + TOC_LEN || d[..4] != MAGIC.to_be_bytes() {
            return Err(corrupt("index: bad header"));
        }
        let version = d[4];
        if !matches!(version, VERSION_1 | VERSION_2 | VERSION_3) || d[5..8] != [0, 0, 0] {
            return Err(corrupt(format!("index: unknown version {}", d[4])));
        }
        let toc = &d[d.len() - TOC_LEN..];
        if crc32fast::hash(&toc[..SECTIONS * 8]) != be_u32(toc, SECTIONS * 8).unwrap_or(0) {
            return Err(corrupt("index: table of contents checksum mismatch"));
        }
        let names = [
            "symbols",
            "series",
            "series offsets",
            "postings",
            "postings table",
        ];
        let mut secs = Vec::with_capacity(SECTIONS);
        for (i, name) in names.iter().enumerate() {
            let off = u64::from_be_bytes(toc[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            let start = usize::try_from(off).ok().filter(|&o| o >= HEADER_LEN);
            let bad = || corrupt(format!("index: {name} section out of bounds"));
            let start = start.ok_or_else(bad)?;
            let len = be_u32(d, start).ok_or_else(bad)? as usize;
            let body = start + 4..start + 4 + len;
            if body.end + 4 > d.len() - TOC_LEN {
                return Err(bad());
            }
            if crc32fast::hash(&d[body.clone()]) != be_u32(d, body.end).unwrap_or(0) {
                return Err(corrupt(format!("index: {name} section checksum mismatch")));
            }
            secs.push(body);
        }

        let sym = &d[secs[0].clone()];
        let mut pos = 0;
        let n = get_uvarint(sym, &mut pos).ok_or_else(|| corrupt("index: symbols"))?;
        let mut symbols = Vec::with_capacity(n.min(sym.len() as u64) as usize);
        for _ in 0..n {
            let len = get_uvarint(sym, &mut pos).ok_or_else(|| corrupt("index: symbols"))? as usize;
            let s = sym
                .get(pos..pos + len)
                .ok_or_else(|| corrupt("index: symbols"))?;
            std::str::from_utf8(s).map_err(|_| corrupt("index: symbol not UTF-8"))?;
            symbols.push(((secs[0].start + pos) as u32, len as u32));
            pos += len;
        }

        let offs = &d[secs[2].clone()];
        let num_series = be_u32(offs, 0).ok_or_else(|| corrupt("index: series offsets"))?;
        if offs.len() != 4 + 4 * (num_series as usize).div_ceil(stride_of(version)) {
            return Err(corrupt("index: series offsets length"));
        }

        let tab = &d[secs[4].clone()];
        let mut pos = 0;
        let bad = || corrupt("index: postings table");
        let n = get_uvarint(tab, &mut pos).ok_or_else(bad)?;
        let mut table = Vec::with_capacity(n.min(tab.len() as u64) as usize);
        let mut next = || -> Option<u32> { u32::try_from(get_uvarint(tab, &mut pos)?).ok() };
        for _ in 0..n {
            let e = (|| {
                Some(PostingsEntry {
                    name: next()?,
                    value: next()?,
                    off: next()?,
                    len: next()?,
                })
            })()
            .ok_or_else(bad)?;
            let in_range = (e.off as usize + e.len as usize) <= secs[3].len()
                && (e.name as usize) < symbols.len()
                && (e.value as usize) < symbols.len();
            if !in_range {
                return Err(bad());
            }
            table.push(e);
        }
        if table
            .windows(2)
            .any(|w| (w[0].name, w[0].value) >= (w[1].name, w[1].value))
        {
            return Err(bad());
        }
        let base = if version != VERSION_1 {
            let mut pos = 0;
            get_varint(&d[secs[1].clone()], &mut pos).ok_or_else(|| corrupt("index: series"))?
        } else {
            0
        };
        Ok(IndexReader {
            symbols,
            series: secs[1].clone(),
            version,
            base,
            offsets: secs[2].start + 4..secs[2].end,
            num_series,
            postings: secs[3].clone(),
            table,
            map,
        })
    }

    pub fn num_series(&self) -> u32 {
        self.num_series
    }

    /// Symbol `id`; "" for an id out of range (never produced by a verified file).
    pub fn symbol(&self, id: u32) -> &str {
        let Some(&(off, len)) = self.symbols.get(id as usize) else {
            return "";
        };
        let b = &self.map[off as usize..off as usize + len as usize];
        // Checked at open; from_utf8 again costs little next to the allocation callers make.
        std::str::from_utf8(b).unwrap_or("")
    }

    /// The id of `s`, by binary search (symbols are sorted).
    pub fn lookup(&self, s: &str) -> Option<u32> {
        let mut lo = 0usize;
        let mut hi = self.symbols.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.symbol(mid as u32).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    /// Decodes series `ord` into label ids and chunk metas; false if it is malformed.
    pub fn series(
        &self,
        ord: u32,
        labels: &mut Vec<(u32, u32)>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> bool {
        labels.clear();
        chunks.clear();
        self.decode_series(ord, labels, chunks).is_some()
    }

    fn decode_series(
        &self,
        ord: u32,
        labels: &mut Vec<(u32, u32)>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Option<()> {
        if ord >= self.num_series {
            return None;
        }
        let stride = stride_of(self.version);
        let (group, skip) = (ord as usize / stride, ord as usize % stride);
        let off = be_u32(&self.map[self.offsets.clone()], group * 4)? as usize;
        let d = self.map.get(self.series.clone())?;
        let mut pos = off;
        for _ in 0..skip {
            skip_series(d, &mut pos)?;
        }
        let nl = get_uvarint(d, &mut pos)?;
        for _ in 0..nl {
            let n = u32::try_from(get_uvarint(d, &mut pos)?).ok()?;
            let v = u32::try_from(get_uvarint(d, &mut pos)?).ok()?;
            labels.push((n, v));
        }
        let nc = get_uvarint(d, &mut pos)?;
        if self.version == VERSION_1 {
            let mut prev_maxt = 0i64;
            for i in 0..nc {
                let base = if i == 0 { 0 } else { prev_maxt };
                let mint = get_varint(d, &mut pos)?.wrapping_add(base);
                let maxt = mint.wrapping_add(get_uvarint(d, &mut pos)? as i64);
                let r = get_uvarint(d, &mut pos)?;
                chunks.push(ChunkMeta { mint, maxt, r });
                prev_maxt = maxt;
            }
            return Some(());
        }
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..nc {
            let c = match prev {
                None => {
                    let mint = self.base.wrapping_add(get_uvarint(d, &mut pos)? as i64);
                    let maxt = mint.wrapping_add(get_uvarint(d, &mut pos)? as i64);
                    let seg = u32::try_from(get_uvarint(d, &mut pos)?).ok()?;
                    let off = u32::try_from(get_uvarint(d, &mut pos)?).ok()?;
                    ChunkMeta {
                        mint,
                        maxt,
                        r: super::chunks::chunk_ref(seg, off),
                    }
                }
                Some(p) => {
                    let mint = p.maxt.wrapping_add(get_varint(d, &mut pos)?);
                    let maxt = mint.wrapping_add(get_uvarint(d, &mut pos)? as i64);
                    let r = p.r.wrapping_add(get_varint(d, &mut pos)? as u64);
                    ChunkMeta { mint, maxt, r }
                }
            };
            chunks.push(c);
            prev = Some(c);
        }
        Some(())
    }

    fn read_postings(&self, e: &PostingsEntry, out: &mut RoaringBitmap) {
        let start = self.postings.start + e.off as usize;
        let bytes = &self.map[start..start + e.len as usize];
        match RoaringBitmap::deserialize_from(bytes) {
            Ok(bm) => *out |= bm,
            Err(e) => tracing::error!(error = %e, "block index: unreadable postings list"),
        }
    }

    /// The postings table rows of label `name`, sorted by value.
    fn values_of(&self, name: &str) -> &[PostingsEntry] {
        let Some(id) = self.lookup(name) else {
            return &[];
        };
        let lo = self.table.partition_point(|e| e.name < id);
        let hi = self.table.partition_point(|e| e.name <= id);
        &self.table[lo..hi]
    }

    /// Label names present in the block, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut last = None;
        for e in &self.table {
            if last != Some(e.name) {
                out.push(self.symbol(e.name).to_string());
                last = Some(e.name);
            }
        }
        out
    }

    /// Values of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.values_of(name)
            .iter()
            .map(|e| self.symbol(e.value).to_string())
            .collect()
    }

    /// The series matching every matcher, with the head's semantics (a missing label
    /// has the value ""): matchers that cannot match "" select and are intersected, the
    /// others subtract the series whose value they reject.
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        crate::tsdb::index::select_postings(
            matchers,
            || {
                let mut all = RoaringBitmap::new();
                all.insert_range(0..self.num_series);
                all
            },
            |m, want| self.values_matching(m, want),
        )
    }

    /// The union of postings of `m.name`'s values `v` with `m.matches(v) == want`.
    fn values_matching(&self, m: &Matcher, want: bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let values = self.values_of(&m.name);
        if values.is_empty() {
            return out;
        }
        let by_value = |v: &str| {
            let i = values.partition_point(|e| self.symbol(e.value) < v);
            values.get(i).filter(|e| self.symbol(e.value) == v)
        };
        match (m.kind, want) {
            (MatchType::Equal, true) | (MatchType::NotEqual, false) => {
                if let Some(e) = by_value(&m.value) {
                    self.read_postings(e, &mut out);
                }
            }
            (MatchType::Regex, true) if m.set_values().is_some() => {
                for v in m.set_values().unwrap_or(&[]) {
                    if let Some(e) = by_value(v) {
                        self.read_postings(e, &mut out);
                    }
                }
            }
            (MatchType::Regex, true) if m.prefix().is_some() => {
                let prefix = m.prefix().unwrap_or("");
                let i = values.partition_point(|e| self.symbol(e.value) < prefix);
                for e in values[i..]
                    .iter()
                    .take_while(|e| self.symbol(e.value).starts_with(prefix))
                {
                    if m.matches(self.symbol(e.value)) {
                        self.read_postings(e, &mut out);
                    }
                }
            }
            _ => {
                for e in values {
                    if m.matches(self.symbol(e.value)) == want {
                        self.read_postings(e, &mut out);
                    }
                }
            }
        }
        out
    }

    /// Bytes of the index file.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::testing::lbls;

    fn fixture(dir: &Path) -> Vec<(Labels, Vec<ChunkMeta>)> {
        let rows: [&[(&str, &str)]; 5] = [
            &[("__name__", "errors"), ("job", "db")],
            &[("__name__", "up"), ("job", "api"), ("path", "/a")],
            &[("__name__", "up"), ("job", "api"), ("path", "/b")],
            &[("__name__", "up"), ("job", "api_v2"), ("path", "/a")],
            &[("__name__", "up"), ("job", "db")],
        ];
        let series: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let i = i as i64;
                let c = vec![
                    ChunkMeta {
                        mint: -5 + i,
                        maxt: 100,
                        r: 8,
                    },
                    ChunkMeta {
                        mint: 101,
                        maxt: 200 + i,
                        r: (1 << 32) | 99,
                    },
                ];
                (lbls(r), c)
            })
            .collect();
        write(&dir.join("index"), &series).unwrap();
        series
    }

    fn names(ix: &IndexReader, ms: &[Matcher]) -> Vec<u32> {
        ix.select(ms).iter().collect()
    }

    #[test]
    fn round_trip_and_select() {
        let tmp = tempfile::tempdir().unwrap();
        let series = fixture(tmp.path());
        let ix = IndexReader::open(&tmp.path().join("index")).unwrap();
        assert_eq!(ix.num_series(), 5);
        let (mut l, mut c) = (Vec::new(), Vec::new());
        for (ord, (labels, chunks)) in series.iter().enumerate() {
            assert!(ix.series(ord as u32, &mut l, &mut c));
            let got: Vec<(&str, &str)> = l
                .iter()
                .map(|&(n, v)| (ix.symbol(n), ix.symbol(v)))
                .collect();
            let want: Vec<(&str, &str)> = labels.iter().map(|x| (&*x.name, &*x.value)).collect();
            assert_eq!(got, want);
            assert_eq!(&c, chunks);
        }
        assert!(!ix.series(5, &mut l, &mut c));
        assert_eq!(ix.label_names(), ["__name__", "job", "path"]);
        assert_eq!(ix.label_values("job"), ["api", "api_v2", "db"]);
        assert_eq!(ix.lookup("api_v2"), Some(4));
        assert_eq!(ix.lookup("zzz"), None);
        let m = |n: &str, k, v: &str| Matcher::new(k, n, v).unwrap();
        use MatchType::*;
        assert_eq!(names(&ix, &[m("__name__", Equal, "up")]), [1, 2, 3, 4]);
        assert_eq!(
            names(
                &ix,
                &[m("__name__", Equal, "up"), m("path", NotEqual, "/a")]
            ),
            [2, 4]
        );
        assert_eq!(names(&ix, &[m("job", Regex, "api.*")]), [1, 2, 3]);
        assert_eq!(
            names(&ix, &[m("job", Regex, "api|db"), m("path", Equal, "")]),
            [0, 4]
        );
        assert_eq!(names(&ix, &[m("job", NotRegex, "api.*")]), [0, 4]);
        assert_eq!(names(&ix, &[m("path", Regex, ".+")]), [1, 2, 3]);
        assert!(names(&ix, &[m("nope", Equal, "x")]).is_empty());
    }

    #[test]
    fn older_versions_read_and_each_is_shorter() {
        let tmp = tempfile::tempdir().unwrap();
        // Refs that step back (another segment's chunk) and far forward, times
        // around the epoch and far from it.
        let series: Vec<(Labels, Vec<ChunkMeta>)> = (0..50)
            .map(|i: i64| {
                let chunks = (0..3)
                    .map(|k: i64| ChunkMeta {
                        mint: 1_700_000_000_000 + i * 7 + k * 7_200_000,
                        maxt: 1_700_000_000_000 + i * 7 + k * 7_200_000 + 7_000_000,
                        r: match k {
                            0 => (2 << 32) | (8 + 300 * i as u64),
                            1 => (1 << 32) | 8,
                            _ => (5 << 32) | 0xffff_fff0,
                        },
                    })
                    .collect();
                (lbls(&[("i", &format!("{i:03}"))]), chunks)
            })
            // A series without chunks (the skip over it in version 3) before the last.
            .chain([(lbls(&[("i", "zz0")]), vec![])])
            .chain([(
                lbls(&[("i", "zzz")]),
                vec![ChunkMeta {
                    mint: -10,
                    maxt: i64::MAX,
                    r: 0,
                }],
            )])
            .collect();
        let mut sizes = Vec::new();
        for version in [VERSION_1, VERSION_2, VERSION_3] {
            let p = tmp.path().join(format!("index{version}"));
            write_version(&p, &series, version).unwrap();
            sizes.push(std::fs::metadata(&p).unwrap().len());
            let ix = IndexReader::open(&p).unwrap();
            let (mut l, mut c) = (Vec::new(), Vec::new());
            for (ord, (labels, chunks)) in series.iter().enumerate() {
                assert!(ix.series(ord as u32, &mut l, &mut c), "v{version} {ord}");
                assert_eq!(&c, chunks, "v{version} {ord}");
                let value = labels.iter().next().map(|x| &*x.value);
                assert_eq!(Some(ix.symbol(l[0].1)), value, "v{version} {ord}");
            }
            assert!(!ix.series(series.len() as u32, &mut l, &mut c));
        }
        assert!(sizes[2] < sizes[1] && sizes[1] < sizes[0], "{sizes:?}");
    }

    #[test]
    fn every_flipped_byte_is_caught_or_harmless() {
        let tmp = tempfile::tempdir().unwrap();
        fixture(tmp.path());
        let p = tmp.path().join("index");
        let good = std::fs::read(&p).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&p, &bad).unwrap();
            assert!(
                IndexReader::open(&p).is_err(),
                "flip at {i} of {} went unnoticed",
                good.len()
            );
        }
    }
}
