//! The discovery manager: runs one set of providers per scrape job, keeps each provider's
//! latest groups and publishes them per job on a watch channel, at most once per
//! [`DEBOUNCE`]. Owns provider lifetimes across config reloads; it does not relabel,
//! deduplicate targets or know anything about scraping.

use super::{FileDiscovery, SdConfigs, TargetGroup, static_groups};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Everything discovered, per scrape job name.
pub type TargetSets = HashMap<String, Vec<TargetGroup>>;

/// The least time between two published updates. Prometheus waits 5 s; cairn waits 1 s
/// so that a new target appears within about two seconds of its file changing (one
/// poll, one debounce) while a burst of changes still costs the scrape manager one wake-up
/// per second.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

/// Runs discovery for every scrape job and publishes what it finds. Dropping it stops
/// all providers and closes the channel.
pub struct Manager {
    shared: Arc<Shared>,
    jobs: HashMap<String, RunningJob>,
    /// Kept until the first `apply` starts the publisher with it, so `new` needs no
    /// runtime.
    tx: Option<watch::Sender<Arc<TargetSets>>>,
    publisher: Option<AbortHandle>,
}

/// A job's config and the tasks running it. Static groups need no task.
struct RunningJob {
    config: SdConfigs,
    tasks: Vec<AbortHandle>,
}

impl RunningJob {
    fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What providers and the publisher share.
struct Shared {
    state: Mutex<State>,
    /// Woken after every change to `state`.
    changed: Notify,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, JobGroups>,
    /// Bumped on every change, so the publisher can tell a wake-up that changed nothing.
    version: u64,
    /// Provider ids are never reused, so a report from a stopped provider (one that was
    /// aborted while already running) finds no slot and is dropped.
    next_provider_id: u64,
}

/// The groups of one job, one slot per provider in config order: static first, then each
/// `file_sd_configs` entry.
struct JobGroups {
    providers: Vec<Slot>,
    /// What the job showed before its config last changed. It stays visible until every
    /// new provider has reported, so a reload does not blank the job's targets for the
    /// moment between starting a provider and its first read.
    previous: Vec<TargetGroup>,
}

struct Slot {
    id: u64,
    /// `None` until the provider first reports.
    groups: Option<Vec<TargetGroup>>,
}

impl JobGroups {
    fn current(&self) -> Vec<TargetGroup> {
        if self.providers.iter().any(|s| s.groups.is_none()) {
            return self.previous.clone();
        }
        self.providers
            .iter()
            .flat_map(|s| s.groups.iter().flatten().cloned())
            .collect()
    }
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_provider_id += 1;
        self.next_provider_id
    }

    /// Every job of the last `apply`, even one with no groups: its key tells the scrape
    /// manager the job exists. (Prometheus adds an empty static group for such a job to the
    /// same end.)
    fn target_sets(&self) -> TargetSets {
        self.jobs
            .iter()
            .map(|(name, job)| (name.clone(), job.current()))
            .collect()
    }
}

impl Manager {
    /// A manager with no jobs, and the receiver the scrape manager watches.
    pub fn new() -> (Manager, watch::Receiver<Arc<TargetSets>>) {
        let (tx, rx) = watch::channel(Arc::new(TargetSets::new()));
        let manager = Manager {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Notify::new(),
            }),
            jobs: HashMap::new(),
            tx: Some(tx),
            publisher: None,
        };
        (manager, rx)
    }

    /// Makes the running providers match `jobs`. A job whose SdConfigs are unchanged keeps
    /// its providers running and its targets untouched (a config reload must not disturb
    /// unchanged targets); changed or new jobs get new providers; removed jobs are stopped
    /// and disappear from the published TargetSets. Must be called inside a tokio runtime.
    pub fn apply(&mut self, jobs: Vec<(String, SdConfigs)>) {
        if let Some(tx) = self.tx.take() {
            let shared = Arc::clone(&self.shared);
            self.publisher = Some(tokio::spawn(publish(shared, tx)).abort_handle());
        }
        // A name given twice keeps its last config; the config loader rejects duplicates.
        let wanted: HashMap<String, SdConfigs> = jobs.into_iter().collect();
        let mut to_start = Vec::new();
        let changed = {
            let mut st = self.shared.state.lock();
            let before = st.jobs.len();
            self.jobs.retain(|name, job| {
                let keep = wanted.contains_key(name);
                if !keep {
                    job.stop();
                }
                keep
            });
            st.jobs.retain(|name, _| wanted.contains_key(name));
            let mut changed = st.jobs.len() != before;
            for (name, config) in wanted {
                if self.jobs.get(&name).is_some_and(|j| j.config == config) {
                    continue;
                }
                if let Some(old) = self.jobs.remove(&name) {
                    old.stop();
                }
                let previous = st
                    .jobs
                    .get(&name)
                    .map(JobGroups::current)
                    .unwrap_or_default();
                let mut providers = Vec::new();
                if !config.static_configs.is_empty() {
                    providers.push(Slot {
                        id: st.next_id(),
                        groups: Some(static_groups(&config.static_configs)),
                    });
                }
                let mut files = Vec::new();
                for fc in &config.file_sd_configs {
                    let id = st.next_id();
                    providers.push(Slot { id, groups: None });
                    files.push((id, FileDiscovery::new(fc)));
                }
                st.jobs.insert(
                    name.clone(),
                    JobGroups {
                        providers,
                        previous,
                    },
                );
                to_start.push((name, config, files));
                changed = true;
            }
            if changed {
                st.version += 1;
            }
            changed
        };
        // Spawned after the slots exist and the lock is released: a provider's first
        // report must find its slot, and must not wait on this thread.
        for (name, config, files) in to_start {
            let tasks = files
                .into_iter()
                .map(|(id, d)| {
                    let report = reporter(Arc::clone(&self.shared), name.clone(), id);
                    tokio::spawn(d.run(report)).abort_handle()
                })
                .collect();
            self.jobs.insert(name, RunningJob { config, tasks });
        }
        if changed {
            self.shared.changed.notify_one();
        }
    }

    /// The ids of a job's providers, to tell a kept provider from a restarted one.
    #[cfg(test)]
    fn provider_ids(&self, job: &str) -> Vec<u64> {
        let st = self.shared.state.lock();
        st.jobs
            .get(job)
            .map(|j| j.providers.iter().map(|s| s.id).collect())
            .unwrap_or_default()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        for job in self.jobs.values() {
            job.stop();
        }
        if let Some(p) = &self.publisher {
            p.abort();
        }
    }
}

/// The callback a provider reports through: stores the groups in the provider's slot if
/// that slot still exists and the groups differ, then wakes the publisher.
fn reporter(shared: Arc<Shared>, job: String, id: u64) -> impl FnMut(Vec<TargetGroup>) + Send {
    move |groups| {
        let mut st = shared.state.lock();
        let Some(slot) = st
            .jobs
            .get_mut(&job)
            .and_then(|j| j.providers.iter_mut().find(|s| s.id == id))
        else {
            return;
        };
        if slot.groups.as_ref() == Some(&groups) {
            return;
        }
        slot.groups = Some(groups);
        st.version += 1;
        drop(st);
        shared.changed.notify_one();
    }
}

/// Publishes the state after each change, at most once per [`DEBOUNCE`]: the first change
/// after a quiet second goes out at once, later ones are gathered until a second has
/// passed since the last send. Sends nothing when the sets are unchanged.
async fn publish(shared: Arc<Shared>, tx: watch::Sender<Arc<TargetSets>>) {
    let mut seen_version = 0;
    let mut last_sent: Option<Instant> = None;
    loop {
        shared.changed.notified().await;
        if let Some(at) = last_sent {
            tokio::time::sleep_until(at + DEBOUNCE).await;
        }
        let sets = {
            let st = shared.state.lock();
            if st.version == seen_version {
                continue;
            }
            seen_version = st.version;
            st.target_sets()
        };
        let sent = tx.send_if_modified(|current| {
            if **current == sets {
                return false;
            }
            *current = Arc::new(sets);
            true
        });
        if sent {
            last_sent = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{ADDRESS_LABEL, FileSdConfig, StaticConfig};
    use crate::model::time::PromDuration;
    use std::collections::BTreeMap;

    type Rx = watch::Receiver<Arc<TargetSets>>;

    fn static_job(targets: &[&str]) -> SdConfigs {
        SdConfigs {
            static_configs: vec![StaticConfig {
                targets: targets.iter().map(|t| t.to_string()).collect(),
                labels: BTreeMap::new(),
            }],
            file_sd_configs: vec![],
        }
    }

    fn file_job(pattern: String) -> SdConfigs {
        SdConfigs {
            static_configs: vec![],
            file_sd_configs: vec![FileSdConfig {
                files: vec![pattern],
                refresh_interval: PromDuration::from_secs(300),
            }],
        }
    }

    fn addresses(sets: &TargetSets, job: &str) -> Option<Vec<String>> {
        sets.get(job).map(|groups| {
            groups
                .iter()
                .flat_map(|g| g.targets.iter())
                .map(|t| t.get(ADDRESS_LABEL).unwrap_or("").to_string())
                .collect()
        })
    }

    /// Waits for a published update that satisfies `ok`, failing after `within`.
    async fn wait_for(
        rx: &mut Rx,
        within: Duration,
        ok: impl Fn(&TargetSets) -> bool,
    ) -> Arc<TargetSets> {
        let deadline = Instant::now() + within;
        loop {
            let current = Arc::clone(&rx.borrow_and_update());
            if ok(&current) {
                return current;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("manager closed the channel"),
                Err(_) => panic!("no matching update within {within:?}; last: {current:?}"),
            }
        }
    }

    fn write(dir: &tempfile::TempDir, name: &str, content: &str) {
        std::fs::write(dir.path().join(name), content).unwrap();
    }

    fn pattern(dir: &tempfile::TempDir, glob: &str) -> String {
        dir.path().join(glob).to_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn static_job_is_published_at_once() {
        let (mut m, mut rx) = Manager::new();
        assert!(rx.borrow().is_empty());
        m.apply(vec![
            ("a".into(), static_job(&["h:1", "h:2"])),
            ("empty".into(), SdConfigs::default()),
        ]);
        let sets = wait_for(&mut rx, Duration::from_secs(2), |s| s.contains_key("a")).await;
        assert_eq!(addresses(&sets, "a").unwrap(), ["h:1", "h:2"]);
        assert_eq!(
            sets["a"],
            static_groups(&static_job(&["h:1", "h:2"]).static_configs)
        );
        // A job without any SD config still appears, with no groups.
        assert_eq!(sets.get("empty"), Some(&vec![]));
    }

    #[tokio::test]
    async fn file_job_follows_its_files() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "a.json", r#"[{"targets": ["a:1"]}]"#);
        write(&dir, "b.yml", "- targets: ['b:1']\n");
        let (mut m, mut rx) = Manager::new();
        let mut job = file_job(pattern(&dir, "*.json"));
        job.file_sd_configs[0].files.push(pattern(&dir, "*.yml"));
        m.apply(vec![("f".into(), job)]);
        let two = |s: &TargetSets| addresses(s, "f").is_some_and(|a| a.len() == 2);
        wait_for(&mut rx, Duration::from_secs(3), two).await;

        write(&dir, "a.json", r#"[{"targets": ["a:1", "a:2"]}]"#);
        let sets = wait_for(&mut rx, Duration::from_millis(2500), |s| {
            addresses(s, "f").is_some_and(|a| a.len() == 3)
        })
        .await;
        assert_eq!(addresses(&sets, "f").unwrap(), ["a:1", "a:2", "b:1"]);
    }

    #[tokio::test]
    async fn updates_are_at_least_a_debounce_apart() {
        let (mut m, mut rx) = Manager::new();
        m.apply(vec![("a".into(), static_job(&["x:1"]))]);
        wait_for(&mut rx, Duration::from_secs(2), |s| s.contains_key("a")).await;
        let first = Instant::now();
        m.apply(vec![("a".into(), static_job(&["x:2"]))]);
        m.apply(vec![("a".into(), static_job(&["x:3"]))]);
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .expect("no update")
            .expect("channel closed");
        assert!(first.elapsed() >= DEBOUNCE - Duration::from_millis(100));
        // The two applies inside one second went out as one update, with the last state.
        assert_eq!(addresses(&rx.borrow_and_update(), "a").unwrap(), ["x:3"]);
    }

    #[tokio::test]
    async fn unchanged_job_keeps_its_provider() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "t.json", r#"[{"targets": ["keep:1"]}]"#);
        let (mut m, mut rx) = Manager::new();
        let kept = file_job(pattern(&dir, "*.json"));
        m.apply(vec![
            ("kept".into(), kept.clone()),
            ("other".into(), static_job(&["o:1"])),
        ]);
        let before = wait_for(&mut rx, Duration::from_secs(3), |s| {
            addresses(s, "kept").is_some_and(|a| !a.is_empty())
        })
        .await;
        let ids = m.provider_ids("kept");
        assert_eq!(ids.len(), 1);

        // Break the file: the running provider keeps its last good groups, while a
        // restarted one would start from nothing and publish an empty job.
        write(&dir, "t.json", "[{");
        tokio::time::sleep(Duration::from_millis(1200)).await;

        // The same config again: nothing restarts, nothing is published.
        m.apply(vec![
            ("kept".into(), kept.clone()),
            ("other".into(), static_job(&["o:1"])),
        ]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!rx.has_changed().unwrap());
        assert_eq!(m.provider_ids("kept"), ids);

        // Another job changes: its update carries the kept job's groups untouched.
        m.apply(vec![
            ("kept".into(), kept),
            ("other".into(), static_job(&["o:2"])),
        ]);
        let after = wait_for(&mut rx, Duration::from_secs(3), |s| {
            addresses(s, "other").is_some_and(|a| a == ["o:2"])
        })
        .await;
        assert_eq!(after["kept"], before["kept"]);
        assert_eq!(m.provider_ids("kept"), ids);
    }

    #[tokio::test]
    async fn changed_job_gets_new_providers() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "a.json", r#"[{"targets": ["a:1"]}]"#);
        write(&dir, "b.yaml", "- targets: ['b:1']\n");
        let (mut m, mut rx) = Manager::new();
        m.apply(vec![("j".into(), file_job(pattern(&dir, "*.json")))]);
        wait_for(&mut rx, Duration::from_secs(3), |s| {
            addresses(s, "j").is_some_and(|a| a == ["a:1"])
        })
        .await;
        let old = m.provider_ids("j");
        m.apply(vec![("j".into(), file_job(pattern(&dir, "*.yaml")))]);
        wait_for(&mut rx, Duration::from_secs(3), |s| {
            addresses(s, "j").is_some_and(|a| a == ["b:1"])
        })
        .await;
        assert_ne!(m.provider_ids("j"), old);
    }

    #[tokio::test]
    async fn removed_job_disappears_and_stays_gone() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir, "gone.json", r#"[{"targets": ["g:1"]}]"#);
        let (mut m, mut rx) = Manager::new();
        m.apply(vec![
            ("stay".into(), static_job(&["s:1"])),
            ("gone".into(), file_job(pattern(&dir, "gone.json"))),
        ]);
        wait_for(&mut rx, Duration::from_secs(3), |s| {
            addresses(s, "gone").is_some_and(|a| !a.is_empty())
        })
        .await;
        let task = m.jobs["gone"].tasks[0].clone();
        m.apply(vec![("stay".into(), static_job(&["s:1"]))]);
        let sets = wait_for(&mut rx, Duration::from_secs(2), |s| !s.contains_key("gone")).await;
        assert_eq!(addresses(&sets, "stay").unwrap(), ["s:1"]);
        assert!(m.provider_ids("gone").is_empty());

        // Its provider is stopped: a change to its file resurrects nothing.
        write(&dir, "gone.json", r#"[{"targets": ["g:1", "g:2"]}]"#);
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert!(task.is_finished());
        assert!(!rx.borrow().contains_key("gone"));
    }

    #[test]
    fn manager_can_move_between_threads() {
        fn send<T: Send + 'static>() {}
        send::<Manager>();
    }

    #[tokio::test]
    async fn dropping_the_manager_closes_the_channel() {
        let (mut m, mut rx) = Manager::new();
        m.apply(vec![("a".into(), static_job(&["x:1"]))]);
        wait_for(&mut rx, Duration::from_secs(2), |s| s.contains_key("a")).await;
        drop(m);
        let closed = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
        assert!(matches!(closed, Ok(Err(_))));
    }
}
