//! Writing a block: chunks first, then the index, then `meta.json`, all under
//! `<ulid>.tmp`; every file and directory is fsynced before the rename that publishes
//! the block, so a crash at any point leaves either a whole block or a `.tmp` directory.
//! [`BlockWriter`] is the one path every block takes (cut from the head, compacted,
//! downsampled); a writer dropped before [`BlockWriter::finish`] removes its `.tmp`.
//! Raw samples go in as packed chunks of up to [`MAX_CHUNK_SAMPLES`] (XOR where that
//! is shorter), each chunk's timestamps shared with an earlier chunk of the block that
//! has the very same ones (the series of one target usually do).

use super::chunks::{ChunkWriter, ENC_AGGR, ENC_PACKED, ENC_XOR, SEGMENT_MAX};
use super::index::{self, ChunkMeta};
use super::{BlockCompaction, BlockError, BlockMeta, BlockStats, META_VERSION, sync_dir, ulid};
use crate::model::{Labels, Sample};
use crate::tsdb::chunkenc::{PackedEncoder, XorAppender, XorDecoder, packed};
use crate::tsdb::head::ClosedChunk;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Raw chunks in blocks hold at most this many samples. Longer chunks spread each
/// chunk's fixed costs (header, CRC, index entry) thinner; a query decodes a whole
/// chunk, which at about a nanosecond a sample stays far below a query's other costs.
/// (Prometheus keeps its head's 120 samples in blocks too.)
pub const MAX_CHUNK_SAMPLES: usize = 1024;

/// Timestamp sections shorter than this are not worth a lookup (a regular series'
/// section is a few bytes; naming another chunk costs about as many).
const MIN_SHARED_TS: usize = 16;

/// Bytes of timestamp sections remembered for sharing, per block written: enough for
/// tens of thousands of targets' columns; past it, later columns are not shared.
const SHARED_TS_BUDGET: usize = 32 << 20;

/// One series to write: its labels and its chunks, in time order, not overlapping.
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<ClosedChunk>,
}

/// Writes `series` (any order; series without chunks are left out) as a new block in
/// `parent` covering `[mint, maxt)`, and returns its meta. `sources` empty means a
/// level-1 block, its own ULID its only source.
pub fn write_block(
    parent: &Path,
    mut series: Vec<BlockSeries>,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
) -> Result<BlockMeta, BlockError> {
    series.retain(|s| !s.chunks.is_empty());
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut w = BlockWriter::new(parent)?;
    let mut samples = Vec::new();
    for s in series {
        // The head's XOR chunks, decoded and packed again in longer chunks.
        samples.clear();
        for c in &s.chunks {
            let mut dec = XorDecoder::new(&c.data);
            while let Some((t, v)) = dec.next(&c.data) {
                samples.push(Sample { t, v });
            }
        }
        let mut metas = Vec::new();
        w.add_samples(&samples, &mut metas)?;
        w.add_series(s.labels, metas)?;
    }
    let id = w.ulid().to_string();
    w.finish(BlockMeta {
        ulid: id.clone(),
        min_time: mint,
        max_time: maxt,
        stats: BlockStats::default(),
        compaction: BlockCompaction {
            level,
            sources: if sources.is_empty() {
                vec![id]
            } else {
                sources
            },
            parents: Vec::new(),
        },
        version: META_VERSION,
        resolution: 0,
        downsampled_from: Vec::new(),
    })
}

/// A block being written under `<parent>/<ulid>.tmp`.
pub struct BlockWriter {
    parent: PathBuf,
    id: String,
    tmp: PathBuf,
    chunks: ChunkWriter,
    rows: Vec<(Labels, Vec<ChunkMeta>)>,
    stats: BlockStats,
    finished: bool,
    encoder: PackedEncoder,
    packed: Vec<u8>,
    shared: Vec<u8>,
    xor: XorAppender,
    /// Sample counts and timestamp sections written with chunks of their own, and
    /// those chunks' segments (high 32 bits) and ordinals among their segment's owners.
    ts_owners: HashMap<Box<[u8]>, u64>,
    ts_bytes: usize,
}

impl BlockWriter {
    /// Starts a block with a fresh ULID.
    pub fn new(parent: &Path) -> Result<Self, BlockError> {
        let id = ulid::new();
        let tmp = parent.join(format!("{id}.tmp"));
        std::fs::create_dir_all(tmp.join("chunks"))?;
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            chunks: ChunkWriter::new(&tmp.join("chunks"), SEGMENT_MAX),
            id,
            tmp,
            rows: Vec::new(),
            stats: BlockStats::default(),
            finished: false,
            encoder: PackedEncoder::new(),
            packed: Vec::new(),
            shared: Vec::new(),
            xor: XorAppender::new(),
            ts_owners: HashMap::new(),
            ts_bytes: 0,
        })
    }

    /// The new block's ULID (its directory name once finished).
    pub fn ulid(&self) -> &str {
        &self.id
    }

    /// Writes a series' raw samples (strictly increasing timestamps) as chunks of at
    /// most [`MAX_CHUNK_SAMPLES`], all about the same length (so that series with the
    /// same timestamps are cut alike and share them), appending their metas to `out`.
    pub fn add_samples(
        &mut self,
        samples: &[Sample],
        out: &mut Vec<ChunkMeta>,
    ) -> Result<(), BlockError> {
        if samples.is_empty() {
            return Ok(());
        }
        let chunks = samples.len().div_ceil(MAX_CHUNK_SAMPLES);
        for c in samples.chunks(samples.len().div_ceil(chunks)) {
            out.push(self.add_raw_chunk(c)?);
        }
        Ok(())
    }

    /// Writes one raw chunk: packed, with shared timestamps where an earlier chunk has
    /// the same, unless XOR is shorter.
    fn add_raw_chunk(&mut self, samples: &[Sample]) -> Result<ChunkMeta, BlockError> {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Err(BlockError::Corrupt("empty chunk".into()));
        };
        let (mint, maxt) = (first.t, last.t);
        self.packed.clear();
        let ts = self.encoder.encode(samples, &mut self.packed);
        self.xor.reset();
        for s in samples {
            self.xor.append(s.t, s.v);
        }
        let Some(ts) = ts.filter(|_| self.packed.len() <= self.xor.bytes().len()) else {
            let r = self.chunks.write_enc(ENC_XOR, self.xor.bytes())?;
            return Ok(self.count(r, mint, maxt, samples.len()));
        };
        // The sample count is part of the key: a reader checks it, and sections for
        // different counts can be alike (a last group of width 0 has no bytes).
        let key = &self.packed[..ts.end];
        if ts.len() >= MIN_SHARED_TS
            && let Some(&owner) = self.ts_owners.get(key)
        {
            self.shared.clear();
            // The owner's ordinal among its segment's owners (see block.md).
            packed::share_timestamps(
                &self.packed,
                ts.clone(),
                owner & 0xffff_ffff,
                &mut self.shared,
            );
            if u64::from(self.chunks.segment_for(self.shared.len())) == owner >> 32 {
                let r = self.chunks.write_enc(ENC_PACKED, &self.shared)?;
                return Ok(self.count(r, mint, maxt, samples.len()));
            }
        }
        let r = self.chunks.write_enc(ENC_PACKED, &self.packed)?;
        let owner = (r >> 32 << 32) | u64::from(self.chunks.owners().saturating_sub(1));
        let key = &self.packed[..ts.end];
        if ts.len() >= MIN_SHARED_TS && self.ts_bytes + key.len() <= SHARED_TS_BUDGET {
            // A chunk in a new segment takes over as the owner of its timestamps.
            if self.ts_owners.insert(key.into(), owner).is_none() {
                self.ts_bytes += key.len();
            }
        }
        Ok(self.count(r, mint, maxt, samples.len()))
    }

    fn count(&mut self, r: u64, mint: i64, maxt: i64, samples: usize) -> ChunkMeta {
        self.stats.num_samples += samples as u64;
        self.stats.num_chunks += 1;
        ChunkMeta { mint, maxt, r }
    }

    /// Writes one chunk (`enc` is [`ENC_XOR`], [`ENC_PACKED`] or [`ENC_AGGR`]) holding samples from
    /// `mint` to `maxt` (inclusive) and returns its meta for [`Self::add_series`].
    pub fn add_chunk(
        &mut self,
        enc: u8,
        mint: i64,
        maxt: i64,
        data: &[u8],
    ) -> Result<ChunkMeta, BlockError> {
        let r = self.chunks.write_enc(enc, data)?;
        self.stats.num_samples += match (enc, data) {
            (ENC_AGGR, _) => u64::from(super::aggr::num_windows(data)),
            (ENC_PACKED, _) => packed::num_samples(data) as u64,
            (_, [a, b, ..]) => u64::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        };
        self.stats.num_chunks += 1;
        Ok(ChunkMeta { mint, maxt, r })
    }

    /// Records a series and its chunks (written by [`Self::add_chunk`], in time order).
    /// Series must come in strictly increasing label order; one without chunks is left
    /// out.
    pub fn add_series(&mut self, labels: Labels, chunks: Vec<ChunkMeta>) -> Result<(), BlockError> {
        if chunks.is_empty() {
            return Ok(());
        }
        if self.rows.last().is_some_and(|(last, _)| *last >= labels) {
            return Err(BlockError::Corrupt(format!(
                "series {labels} added out of label order"
            )));
        }
        self.rows.push((labels, chunks));
        Ok(())
    }

    /// Samples written so far (windows, for aggregate chunks).
    pub fn num_samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// Writes the index and `meta` (its `ulid` and `stats` are filled in here), fsyncs
    /// and publishes the block by renaming it into place. Returns the meta written.
    pub fn finish(mut self, mut meta: BlockMeta) -> Result<BlockMeta, BlockError> {
        let chunks = std::mem::replace(
            &mut self.chunks,
            ChunkWriter::new(&self.tmp.join("chunks"), SEGMENT_MAX),
        );
        chunks.finish()?;
        self.stats.num_series = self.rows.len() as u64;
        index::write(&self.tmp.join("index"), &self.rows)?;
        meta.ulid = self.id.clone();
        meta.stats = self.stats.clone();
        meta.version = META_VERSION;
        let f = std::fs::File::create(self.tmp.join("meta.json"))?;
        serde_json::to_writer_pretty(&f, &meta)?;
        f.sync_all()?;
        sync_dir(&self.tmp.join("chunks"))?;
        sync_dir(&self.tmp)?;
        if meta.resolution == 0 {
            crate::tsdb::fault::pause_at(if meta.compaction.parents.is_empty() {
                crate::tsdb::fault::BLOCK_WRITE
            } else {
                crate::tsdb::fault::COMPACTION
            });
        }
        let dst = self.parent.join(&self.id);
        std::fs::rename(&self.tmp, &dst)?;
        self.finished = true;
        sync_dir(&self.parent)?;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.finished {
            // An abandoned write: the `.tmp` would be removed at the next open anyway.
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::chunks::{ChunkReader, segment_path, verify_segment};
    use super::super::{Block, BlockQuerier};
    use super::*;
    use crate::model::{Matcher, STALE_NAN_BITS};
    use crate::storage::Querier;
    use crate::tsdb::testing::lbls;
    use std::sync::Arc;

    fn meta() -> BlockMeta {
        BlockMeta {
            ulid: String::new(),
            min_time: 0,
            max_time: i64::MAX,
            stats: BlockStats::default(),
            compaction: BlockCompaction::default(),
            version: META_VERSION,
            resolution: 0,
            downsampled_from: Vec::new(),
        }
    }

    #[test]
    fn series_of_one_target_share_timestamps_and_read_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let ts: Vec<i64> = (0..2500).map(|i| i * 15_000 + (i * 7919) % 19).collect();
        let series: Vec<(&str, Vec<Sample>)> = vec![
            (
                "a_counter",
                ts.iter()
                    .map(|&t| Sample {
                        t,
                        v: (t / 1000) as f64,
                    })
                    .collect(),
            ),
            (
                "b_gauge",
                ts.iter()
                    .map(|&t| Sample {
                        t,
                        v: (t % 997) as f64 / 100.0,
                    })
                    .collect(),
            ),
            // Arbitrary bit patterns: XOR's job.
            (
                "c_noise",
                ts.iter()
                    .map(|&t| Sample {
                        t,
                        v: f64::from_bits((t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2),
                    })
                    .collect(),
            ),
            (
                "d_stale",
                ts.iter()
                    .map(|&t| Sample {
                        t,
                        v: if (t / 15_000) % 20 == 0 {
                            f64::from_bits(STALE_NAN_BITS)
                        } else {
                            1.0
                        },
                    })
                    .collect(),
            ),
        ];
        let mut w = BlockWriter::new(tmp.path()).unwrap();
        let mut encs = Vec::new();
        for (name, s) in &series {
            let mut metas = Vec::new();
            w.add_samples(s, &mut metas).unwrap();
            // 2500 samples: three chunks of 834, 834 and 832.
            assert_eq!(metas.len(), 3);
            assert_eq!((metas[0].mint, metas[1].mint), (ts[0], ts[834]));
            encs.push(metas.iter().map(|m| m.r).collect::<Vec<_>>());
            w.add_series(lbls(&[("__name__", name)]), metas).unwrap();
        }
        let m = w.finish(meta()).unwrap();
        assert_eq!(m.stats.num_samples, 4 * 2500);
        let b = Arc::new(Block::open(&tmp.path().join(&m.ulid)).unwrap());
        let kind = |r: u64| {
            let (enc, data) = b.chunks().chunk_enc(r).unwrap();
            (enc, packed::shared_timestamps(data).is_some())
        };
        assert!(encs[0].iter().all(|&r| kind(r) == (ENC_PACKED, false)));
        assert!(encs[1].iter().all(|&r| kind(r) == (ENC_PACKED, true)));
        assert!(encs[2].iter().all(|&r| kind(r).0 == ENC_XOR));
        assert!(encs[3].iter().all(|&r| kind(r) == (ENC_PACKED, true)));
        let q = BlockQuerier::new(b.clone(), i64::MIN, i64::MAX);
        let got = q.select(&[Matcher::equal("__name__", "b_gauge")]).unwrap();
        assert_eq!(got.len(), 1);
        for (i, (name, want)) in series.iter().enumerate() {
            let mut s = q.select(&[Matcher::equal("__name__", *name)]).unwrap();
            let got: Vec<(i64, u64)> = std::iter::from_fn(|| s[0].samples.next())
                .map(|x| (x.t, x.v.to_bits()))
                .collect();
            let want: Vec<(i64, u64)> = want.iter().map(|x| (x.t, x.v.to_bits())).collect();
            assert_eq!(got, want, "series {i}");
        }
        // Seeks land inside and across chunks.
        let mut s = q
            .select(&[Matcher::equal("__name__", "a_counter")])
            .unwrap();
        assert_eq!(s[0].samples.seek(ts[900]).map(|x| x.t), Some(ts[900]));
        assert_eq!(s[0].samples.seek(ts[900] + 1).map(|x| x.t), Some(ts[901]));
        assert_eq!(s[0].samples.seek(ts[2499] + 1), None);
        let packed_size = b.size();
        drop((q, s, b));
        // The same samples as XOR chunks of 120 take several times the space.
        let mut w = BlockWriter::new(tmp.path()).unwrap();
        for (name, s) in &series {
            let metas = s
                .chunks(120)
                .map(|c| {
                    let mut a = XorAppender::new();
                    c.iter().for_each(|s| a.append(s.t, s.v));
                    w.add_chunk(ENC_XOR, c[0].t, c[c.len() - 1].t, a.bytes())
                        .unwrap()
                })
                .collect();
            w.add_series(lbls(&[("__name__", name)]), metas).unwrap();
        }
        let m = w.finish(meta()).unwrap();
        let xor = Block::open(&tmp.path().join(&m.ulid)).unwrap();
        assert!(
            packed_size * 2 < xor.size(),
            "{packed_size} vs {}",
            xor.size()
        );
    }

    #[test]
    fn shared_timestamps_must_name_an_earlier_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let s: Vec<Sample> = (0..100)
            .map(|i| Sample {
                t: i * 1000 + i % 3,
                v: i as f64,
            })
            .collect();
        let mut enc = PackedEncoder::new();
        let mut own = Vec::new();
        let ts = enc.encode(&s, &mut own).unwrap();
        let mut cw = ChunkWriter::new(tmp.path(), SEGMENT_MAX);
        let first = cw.write_enc(ENC_PACKED, &own).unwrap();
        assert_eq!(first, super::super::chunks::chunk_ref(1, 8));
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        assert_eq!(cw.owners(), 1);
        packed::share_timestamps(&own, ts.clone(), 0, &mut good);
        packed::share_timestamps(&own, ts, 1, &mut bad);
        let second = cw.write_enc(ENC_PACKED, &good).unwrap();
        cw.finish().unwrap();
        let r = ChunkReader::open(tmp.path()).unwrap();
        let mut out = Vec::new();
        assert!(r.decode_ref(second, &mut out));
        assert_eq!(out, s);
        // A reference to anything but an earlier owner fails verification.
        let mut cw = ChunkWriter::new(&tmp.path().join("x"), SEGMENT_MAX);
        std::fs::create_dir_all(tmp.path().join("x")).unwrap();
        cw.write_enc(ENC_PACKED, &own).unwrap();
        cw.write_enc(ENC_PACKED, &bad).unwrap();
        cw.finish().unwrap();
        let seg = std::fs::read(segment_path(&tmp.path().join("x"), 1)).unwrap();
        assert!(verify_segment(&seg).unwrap_err().contains("timestamps of"));
    }
}
