//! Checkpoints: a directory `checkpoint.<N>` in the WAL directory that stands in for
//! every segment up to and including `N`. It holds segment files of ordinary framed
//! records (`checkpoint.<N>/00000000`, ...), written under `checkpoint.<N>.tmp`, fsynced
//! and renamed, so a checkpoint either exists whole or not at all. Only then are the
//! segments it covers and older checkpoints deleted; a crash anywhere in between leaves
//! a directory that replays to the same data. What the records say is the head's
//! business.

use super::{WalError, io_err, list_segments, segment_name, sync_dir};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// The directory name of checkpoint `n`: `checkpoint.` and eight decimal digits.
pub fn checkpoint_name(n: u32) -> String {
    format!("{PREFIX}{n:08}")
}

/// The number in a checkpoint directory's name (`checkpoint.00000012` -> 12).
fn parse_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The finished checkpoints in `dir`, oldest first.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u32, PathBuf)>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(parse_name)
            && entry.path().is_dir()
        {
            out.push((n, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(n, _)| *n);
    Ok(out)
}

/// Removes `checkpoint.<N>.tmp` leftovers of a checkpoint interrupted by a crash;
/// returns how many there were.
pub fn remove_unfinished(dir: &Path) -> Result<usize, WalError> {
    let mut n = 0;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.strip_suffix(TMP_SUFFIX).and_then(parse_name).is_none() {
            continue;
        }
        let path = entry.path();
        tracing::info!(dir = %path.display(), "removing an unfinished write-ahead log checkpoint");
        if path.is_dir() {
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
        } else {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        n += 1;
    }
    if n > 0 {
        sync_dir(dir)?;
    }
    Ok(n)
}

/// Writes a checkpoint's records into its temporary directory, starting a new segment
/// file inside it when one would pass `segment_size`.
pub struct CheckpointWriter {
    wal_dir: PathBuf,
    n: u32,
    tmp: PathBuf,
    file: BufWriter<File>,
    path: PathBuf,
    index: u32,
    size: u64,
    segment_size: u64,
    /// Bytes written over all segment files.
    pub bytes: u64,
}

impl CheckpointWriter {
    /// Starts checkpoint `n` in `wal_dir` (replacing a leftover temporary directory).
    pub fn create(wal_dir: &Path, n: u32, segment_size: u64) -> Result<Self, WalError> {
        let tmp = wal_dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(n)));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let path = tmp.join(segment_name(0));
        let file = create_file(&path)?;
        Ok(CheckpointWriter {
            wal_dir: wal_dir.to_path_buf(),
            n,
            tmp,
            file,
            path,
            index: 0,
            size: 0,
            segment_size: segment_size.max(1),
            bytes: 0,
        })
    }

    /// Writes framed records (whole records only: they never straddle two files).
    pub fn write(&mut self, framed: &[u8]) -> Result<(), WalError> {
        if framed.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + framed.len() as u64 > self.segment_size {
            self.finish_file()?;
            self.index += 1;
            self.path = self.tmp.join(segment_name(self.index));
            self.file = create_file(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(framed).map_err(io_err(&self.path))?;
        self.size += framed.len() as u64;
        self.bytes += framed.len() as u64;
        Ok(())
    }

    fn finish_file(&mut self) -> Result<(), WalError> {
        self.file.flush().map_err(io_err(&self.path))?;
        self.file.get_ref().sync_all().map_err(io_err(&self.path))
    }

    /// Makes the checkpoint durable and visible: fsyncs its files and directory, then
    /// renames it into place and fsyncs the WAL directory. Returns its path.
    pub fn finish(mut self) -> Result<PathBuf, WalError> {
        self.finish_file()?;
        sync_dir(&self.tmp)?;
        let dst = self.wal_dir.join(checkpoint_name(self.n));
        fs::rename(&self.tmp, &dst).map_err(io_err(&dst))?;
        sync_dir(&self.wal_dir)?;
        Ok(dst)
    }
}

fn create_file(path: &Path) -> Result<BufWriter<File>, WalError> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

/// What deleting covered files removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub segments: usize,
    pub checkpoints: usize,
}

/// Deletes the segments numbered `n` or lower and the checkpoints older than `n`:
/// everything checkpoint `n` stands in for. Segments go oldest first, so a crash part
/// way leaves a suffix of them, which replay skips as covered.
pub fn delete_covered(wal_dir: &Path, n: u32) -> Result<Deleted, WalError> {
    let mut d = Deleted::default();
    for (i, path) in list_segments(wal_dir)? {
        if i > n {
            break;
        }
        fs::remove_file(&path).map_err(io_err(&path))?;
        d.segments += 1;
    }
    for (i, path) in list_checkpoints(wal_dir)? {
        if i < n {
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
            d.checkpoints += 1;
        }
    }
    if d != Deleted::default() {
        sync_dir(wal_dir)?;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_odd_names_are_ignored() {
        assert_eq!(checkpoint_name(12), "checkpoint.00000012");
        assert_eq!(parse_name("checkpoint.00000012"), Some(12));
        for bad in [
            "checkpoint.12",
            "checkpoint.0000001x",
            "checkpoint.tmp",
            "00000012",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("checkpoint.00000003")).unwrap();
        fs::create_dir(tmp.path().join("checkpoint.00000001")).unwrap();
        fs::create_dir(tmp.path().join("checkpoint.00000004.tmp")).unwrap();
        fs::write(tmp.path().join("checkpoint.00000009"), b"a file").unwrap();
        fs::write(tmp.path().join("checkpoint.tmp"), b"x").unwrap();
        let got: Vec<u32> = list_checkpoints(tmp.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(got, [1, 3]);
        assert_eq!(remove_unfinished(tmp.path()).unwrap(), 1);
        assert!(!tmp.path().join("checkpoint.00000004.tmp").exists());
        assert!(tmp.path().join("checkpoint.tmp").exists());
    }

    #[test]
    fn writer_rolls_files_and_renames_on_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = CheckpointWriter::create(tmp.path(), 7, 10).unwrap();
        let t = tmp.path().join("checkpoint.00000007.tmp");
        assert!(t.is_dir());
        for rec in [&b"0123456"[..], b"789", b"abcdefghijkl", b"m"] {
            w.write(rec).unwrap();
        }
        assert_eq!(w.bytes, 23);
        let dst = w.finish().unwrap();
        assert!(!t.exists());
        assert_eq!(dst, tmp.path().join("checkpoint.00000007"));
        let files: Vec<Vec<u8>> = list_segments(&dst)
            .unwrap()
            .into_iter()
            .map(|(_, p)| fs::read(p).unwrap())
            .collect();
        assert_eq!(
            files,
            [
                b"0123456789".to_vec(),
                b"abcdefghijkl".to_vec(),
                b"m".to_vec()
            ]
        );
    }

    #[test]
    fn delete_covered_keeps_later_segments_and_the_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..6 {
            fs::write(tmp.path().join(segment_name(i)), b"").unwrap();
        }
        for i in [1, 3] {
            fs::create_dir(tmp.path().join(checkpoint_name(i))).unwrap();
        }
        let d = delete_covered(tmp.path(), 3).unwrap();
        assert_eq!(
            d,
            Deleted {
                segments: 4,
                checkpoints: 1
            }
        );
        let left: Vec<u32> = list_segments(tmp.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(left, [4, 5]);
        assert_eq!(list_checkpoints(tmp.path()).unwrap().len(), 1);
    }
}
