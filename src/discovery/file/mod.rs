//! File service discovery: target groups read from JSON/YAML files named by globs, kept
//! current by polling. Owns change detection and the per-file last-good groups; it knows
//! nothing of jobs or of the manager, it only reports its full list through a callback.
//!
//! Prometheus watches the directories with fsnotify and re-reads everything on any event
//! or every `refresh_interval`. cairn polls instead: every second it re-expands the globs
//! and compares each file's (mtime, length, inode), re-reading only files that changed,
//! and re-reads every file each `refresh_interval`. Polling costs a few `stat` calls per
//! second and behaves the same on every filesystem (fsnotify misses changes on NFS and
//! some container mounts).

mod glob;
mod parse;

pub use parse::{FILEPATH_LABEL, parse_target_groups};

use super::{FileSdConfig, TargetGroup};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};
use tokio::time::{Instant, MissedTickBehavior};

/// How often the globs are re-expanded and the files stat'ed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a file SD config or target file was rejected. File errors name the file first.
#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("file service discovery config must contain at least one path name")]
    NoFiles,
    #[error("path name {0:?} is not valid for file discovery")]
    InvalidPath(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: String,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("{path}: nil target group item found at index {index}")]
    NullGroup { path: String, index: usize },
    #[error("{path}: target group {index}: {name:?} is not a valid label name")]
    InvalidLabelName {
        path: String,
        index: usize,
        name: String,
    },
    #[error("{path}: unhandled file extension, want .json, .yml or .yaml")]
    UnknownExtension { path: String },
}

impl FileSdConfig {
    /// Checks the config as Prometheus does when loading it: at least one path, each a
    /// `.json`/`.yml`/`.yaml` name with `*` only in its last element.
    pub fn validate(&self) -> Result<(), FileSdError> {
        if self.files.is_empty() {
            return Err(FileSdError::NoFiles);
        }
        self.files
            .iter()
            .try_for_each(|f| glob::validate_pattern(f))
    }
}

/// What identifies one version of a file without reading it. The inode catches a file
/// replaced by `rename` with an identical size and an mtime within the clock's grain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    const MISSING: Stamp = Stamp {
        mtime: None,
        len: 0,
        inode: 0,
    };

    fn of(md: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(md);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            mtime: md.modified().ok(),
            len: md.len(),
            inode,
        }
    }
}

/// One listed file: the version last looked at (`None` before the first look) and the
/// groups of the last version that parsed (empty if none has yet).
struct Tracked {
    stamp: Option<Stamp>,
    groups: Vec<TargetGroup>,
}

/// One `file_sd_configs` entry at run time.
pub struct FileDiscovery {
    patterns: Vec<String>,
    refresh_interval: Duration,
    files: BTreeMap<String, Tracked>,
}

impl FileDiscovery {
    /// A provider for `cfg` that has read nothing yet; [`FileDiscovery::run`] starts it.
    pub fn new(cfg: &FileSdConfig) -> FileDiscovery {
        FileDiscovery {
            patterns: cfg.files.clone(),
            // tokio's interval panics on zero, and a refresh more often than the poll
            // would only repeat it, so the poll interval is the floor.
            refresh_interval: cfg.refresh_interval.0.max(POLL_INTERVAL),
            files: BTreeMap::new(),
        }
    }

    /// Runs until the task is aborted: reports the groups once after the first read (even
    /// when there are none, so the manager knows this provider has spoken), then whenever
    /// they change.
    pub async fn run<F>(mut self, mut report: F)
    where
        F: FnMut(Vec<TargetGroup>) + Send + 'static,
    {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval_at(
            Instant::now() + self.refresh_interval,
            self.refresh_interval,
        );
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            // The first poll tick fires at once; make that first look a full read.
            let full = if first {
                poll.tick().await;
                true
            } else {
                tokio::select! {
                    _ = poll.tick() => false,
                    _ = refresh.tick() => true,
                }
            };
            // Directory listings, stats and reads block; keep them off the async workers.
            let scanned = tokio::task::spawn_blocking(move || {
                let changed = self.scan(full);
                (self, changed)
            })
            .await;
            let changed;
            (self, changed) = match scanned {
                Ok(v) => v,
                Err(err) => {
                    tracing::error!("file SD: scan task failed, provider stops: {err}");
                    return;
                }
            };
            if changed || first {
                report(self.groups());
            }
            first = false;
        }
    }

    /// Brings the tracked files up to date with the disk: drops files no longer listed,
    /// re-reads changed ones (all listed ones when `full`). Returns whether any file's
    /// groups changed. Blocking.
    fn scan(&mut self, full: bool) -> bool {
        let listed: BTreeSet<String> = glob::expand(&self.patterns);
        let before = self.files.len();
        // A deleted file takes its groups with it.
        self.files.retain(|path, _| listed.contains(path));
        let mut changed = self.files.len() != before;
        for path in listed {
            let tracked = self.files.entry(path.clone()).or_insert(Tracked {
                stamp: None,
                groups: Vec::new(),
            });
            // Stat before reading: a write that lands during the read then shows up as a
            // new stamp on the next poll rather than being missed. A file that cannot be
            // stat'ed (a dangling link) gets the same "missing" stamp each time, so it is
            // retried once per refresh rather than every second.
            let stamp = std::fs::metadata(&path).map_or(Stamp::MISSING, |md| Stamp::of(&md));
            if !full && tracked.stamp == Some(stamp) {
                continue;
            }
            tracked.stamp = Some(stamp);
            match read_file(&path) {
                Ok(groups) => {
                    if groups != tracked.groups {
                        tracked.groups = groups;
                        changed = true;
                    }
                }
                // As Prometheus does: keep the last good groups and say which file broke.
                // The stamp is kept, so a broken file is reported once per change and
                // once per refresh, not every second.
                Err(err) => tracing::error!(path = %path, "file SD: error reading file: {err}"),
            }
        }
        changed
    }

    /// All groups, ordered by file path then position in the file.
    fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|t| t.groups.iter().cloned())
            .collect()
    }
}

fn read_file(path: &str) -> Result<Vec<TargetGroup>, FileSdError> {
    let content = std::fs::read(path).map_err(|source| FileSdError::Io {
        path: path.to_string(),
        source,
    })?;
    parse_target_groups(path, &content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::ADDRESS_LABEL;
    use crate::model::time::PromDuration;
    use std::path::Path;
    use tokio::sync::mpsc;

    fn config(files: &[String], refresh_secs: u64) -> FileSdConfig {
        FileSdConfig {
            files: files.to_vec(),
            refresh_interval: PromDuration::from_secs(refresh_secs),
        }
    }

    fn addresses(groups: &[TargetGroup]) -> Vec<String> {
        groups
            .iter()
            .flat_map(|g| g.targets.iter())
            .map(|t| t.get(ADDRESS_LABEL).unwrap_or("").to_string())
            .collect()
    }

    fn write(path: &Path, content: &str) {
        std::fs::write(path, content).unwrap();
    }

    fn path_of(dir: &tempfile::TempDir, name: &str) -> String {
        dir.path().join(name).to_str().unwrap().to_string()
    }

    /// Starts a provider whose reports arrive on the returned channel.
    fn start(
        cfg: &FileSdConfig,
    ) -> (
        tokio::task::JoinHandle<()>,
        mpsc::UnboundedReceiver<Vec<TargetGroup>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(FileDiscovery::new(cfg).run(move |g| {
            let _ = tx.send(g);
        }));
        (task, rx)
    }

    async fn next(
        rx: &mut mpsc::UnboundedReceiver<Vec<TargetGroup>>,
        within: Duration,
    ) -> Vec<TargetGroup> {
        tokio::time::timeout(within, rx.recv())
            .await
            .expect("no report in time")
            .expect("provider stopped")
    }

    #[test]
    fn validate_config() {
        assert!(matches!(
            config(&[], 1).validate(),
            Err(FileSdError::NoFiles)
        ));
        assert!(config(&["a/*.json".into()], 1).validate().is_ok());
        let bad = config(&["a/*.json".into(), "b/*/c.yml".into()], 1);
        assert!(matches!(bad.validate(), Err(FileSdError::InvalidPath(p)) if p == "b/*/c.yml"));
    }

    #[test]
    fn scan_reads_json_and_yaml_through_globs() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("a.json"),
            r#"[{"targets": ["a:1"], "labels": {"x": "1"}}]"#,
        );
        write(
            &dir.path().join("b.yml"),
            "- targets: ['b:1', 'b:2']\n- targets: ['b:3']\n",
        );
        write(&dir.path().join("c.txt"), "not listed");
        let cfg = config(&[path_of(&dir, "*.json"), path_of(&dir, "*.yml")], 300);
        let mut d = FileDiscovery::new(&cfg);
        assert!(d.scan(true));
        let g = d.groups();
        assert_eq!(addresses(&g), ["a:1", "b:1", "b:2", "b:3"]);
        let b = path_of(&dir, "b.yml");
        assert_eq!(g[1].source, format!("{b}:0"));
        assert_eq!(g[2].source, format!("{b}:1"));
        assert_eq!(g[2].labels.get(FILEPATH_LABEL), Some(b.as_str()));
        // Nothing changed on disk: a poll finds nothing and a full re-read changes nothing.
        assert!(!d.scan(false));
        assert!(!d.scan(true));
    }

    #[test]
    fn scan_keeps_last_good_groups_of_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.json");
        write(&f, r#"[{"targets": ["good:1"]}]"#);
        let mut d = FileDiscovery::new(&config(&[path_of(&dir, "*.json")], 300));
        assert!(d.scan(true));
        write(&f, r#"[{"targets": ["half"#);
        assert!(!d.scan(false));
        assert!(!d.scan(true));
        assert_eq!(addresses(&d.groups()), ["good:1"]);
        // A file that never parsed contributes nothing, and breaks nothing else.
        write(&dir.path().join("u.json"), "{");
        assert!(!d.scan(false));
        assert_eq!(addresses(&d.groups()), ["good:1"]);
        write(&f, r#"[{"targets": ["fixed:1"]}]"#);
        assert!(d.scan(false));
        assert_eq!(addresses(&d.groups()), ["fixed:1"]);
    }

    #[test]
    fn scan_drops_deleted_files() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.json"), r#"[{"targets": ["a"]}]"#);
        write(&dir.path().join("b.json"), r#"[{"targets": ["b"]}]"#);
        let mut d = FileDiscovery::new(&config(&[path_of(&dir, "*.json")], 300));
        d.scan(true);
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        assert!(d.scan(false));
        assert_eq!(addresses(&d.groups()), ["b"]);
    }

    #[test]
    fn empty_file_list_and_empty_dir_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = FileDiscovery::new(&config(&[path_of(&dir, "nothing/*.json")], 0));
        assert_eq!(d.refresh_interval, POLL_INTERVAL);
        assert!(!d.scan(true));
        assert!(d.groups().is_empty());
    }

    #[tokio::test]
    async fn run_reports_first_read_then_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.yaml");
        write(&f, "- targets: ['one:1']\n");
        let (task, mut rx) = start(&config(&[path_of(&dir, "*.yaml")], 300));
        let first = next(&mut rx, Duration::from_secs(2)).await;
        assert_eq!(addresses(&first), ["one:1"]);

        write(&f, "- targets: ['one:1', 'two:2']\n");
        let second = next(&mut rx, Duration::from_millis(2500)).await;
        assert_eq!(addresses(&second), ["one:1", "two:2"]);

        // A new file matching the glob appears.
        write(&dir.path().join("u.yaml"), "- targets: ['three:3']\n");
        let third = next(&mut rx, Duration::from_millis(2500)).await;
        assert_eq!(addresses(&third), ["one:1", "two:2", "three:3"]);

        // Broken: no report, and the old groups stand.
        write(&f, "- targets: ['one:1'\n");
        assert!(
            tokio::time::timeout(Duration::from_millis(2200), rx.recv())
                .await
                .is_err()
        );

        std::fs::remove_file(&f).unwrap();
        let fourth = next(&mut rx, Duration::from_millis(2500)).await;
        assert_eq!(addresses(&fourth), ["three:3"]);
        task.abort();
    }

    #[tokio::test]
    async fn run_reports_empty_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let (task, mut rx) = start(&config(&[path_of(&dir, "*.json")], 300));
        assert!(next(&mut rx, Duration::from_secs(2)).await.is_empty());
        task.abort();
    }
}
