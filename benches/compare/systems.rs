//! The three systems under comparison and the node exporter, as child processes: where
//! each program is, how each is started (its own temporary data directory and loopback
//! port, Prometheus's flag names or VictoriaMetrics's), how to ask each to put what it
//! holds on disk, and how to stop it. A [`Server`] is killed when dropped, so a failing
//! run leaves nothing behind.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEPS_HINT: &str = "run `bash scripts/bench-deps.sh` \
    (apt-get install prometheus victoria-metrics prometheus-node-exporter)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cairn,
    Prometheus,
    VictoriaMetrics,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Cairn, Kind::Prometheus, Kind::VictoriaMetrics];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Cairn => "cairn",
            Kind::Prometheus => "prometheus",
            Kind::VictoriaMetrics => "victoriametrics",
        }
    }
}

/// Where the programs are and which versions they are.
pub struct Programs {
    pub cairn: PathBuf,
    pub prometheus: PathBuf,
    pub victoria_metrics: PathBuf,
    pub node_exporter: PathBuf,
    pub versions: Vec<(Kind, String)>,
    /// Whether this cairn has Prometheus's `--web.enable-admin-api` (and with it, one
    /// day, the snapshot endpoint the disk figure wants).
    cairn_admin_api: bool,
}

impl Programs {
    /// Finds every program; an error names the install step for what is missing.
    pub fn find(cairn: PathBuf) -> Result<Programs> {
        if !cairn.is_file() {
            bail!(
                "{} not found: run `cargo build --release --bin cairn` (cargo bench builds it)",
                cairn.display()
            );
        }
        let prometheus = on_path("prometheus")?;
        let victoria_metrics = on_path("victoria-metrics")?;
        let node_exporter = on_path("prometheus-node-exporter")?;
        let versions = vec![
            (Kind::Cairn, first_line(&cairn, "--version")),
            (Kind::Prometheus, first_line(&prometheus, "--version")),
            // Debian's build prints no version of its own; the package knows it.
            (Kind::VictoriaMetrics, package_version("victoria-metrics")),
        ];
        let cairn_admin_api = Command::new(&cairn)
            .arg("--help")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("web.enable-admin-api"));
        Ok(Programs {
            cairn_admin_api,
            cairn,
            prometheus,
            victoria_metrics,
            node_exporter,
            versions,
        })
    }
}

fn on_path(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .find(|c| c.is_file())
        })
        .with_context(|| format!("{program} not found: {DEPS_HINT}"))
}

fn first_line(program: &Path, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .ok()
        .map(|o| format!("{package} {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_default()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running system.
pub struct Server {
    pub kind: Kind,
    pub base: String,
    pub data: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `kind` with its data under `work/<name>-<phase>`, scraping what
    /// `scrape_config` lists (None: nothing), and waits until it answers.
    pub fn start(
        kind: Kind,
        programs: &Programs,
        work: &Path,
        phase: &str,
        scrape_config: Option<&Path>,
        client: &reqwest::blocking::Client,
    ) -> Result<Server> {
        let data = work.join(format!("{}-{phase}", kind.name()));
        std::fs::create_dir_all(&data)?;
        let log = work.join(format!("{}-{phase}.log", kind.name()));
        let port = free_port()?;
        let empty = work.join("empty.yml");
        std::fs::write(&empty, "scrape_configs: []\n")?;
        let mut cmd = match kind {
            Kind::Cairn | Kind::Prometheus => {
                let program = if kind == Kind::Cairn {
                    &programs.cairn
                } else {
                    &programs.prometheus
                };
                let mut cmd = Command::new(program);
                cmd.arg(format!(
                    "--config.file={}",
                    scrape_config.unwrap_or(&empty).display()
                ))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--log.level=warn");
                if kind == Kind::Prometheus || programs.cairn_admin_api {
                    // For the snapshot that puts the head on disk before it is measured.
                    cmd.arg("--web.enable-admin-api");
                }
                cmd
            }
            Kind::VictoriaMetrics => {
                let mut cmd = Command::new(&programs.victoria_metrics);
                cmd.arg(format!("-storageDataPath={}", data.display()))
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .arg("-loggerLevel=WARN")
                    // Answer from every sample ingested so far, as the others do, and
                    // compute every query: no response cache, which the others lack.
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache")
                    .arg("-retentionPeriod=10y");
                if let Some(cfg) = scrape_config {
                    cmd.arg(format!("-promscrape.config={}", cfg.display()));
                }
                cmd
            }
        };
        let out = File::create(&log)?;
        let child = cmd
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let server = Server {
            kind,
            base: format!("http://127.0.0.1:{port}"),
            data,
            log,
            child,
        };
        server.wait_ready(client)?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&self, client: &reqwest::blocking::Client) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if client
                .get(format!("{}/-/ready", self.base))
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!(
            "{} did not become ready in 60 s; its log:\n{}",
            self.kind.name(),
            self.log_tail()
        )
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// Asks the system to put what it holds into its long-term format where it can, and
    /// returns the bytes on disk that hold its samples, with a note of how they were
    /// measured.
    pub fn flush(&self, client: &reqwest::blocking::Client) -> Result<(u64, String)> {
        match self.kind {
            Kind::Prometheus => {
                // A snapshot writes the head as a block beside the persisted ones: its size
                // is what the data takes in Prometheus's block format.
                let r: serde_json::Value = client
                    .post(format!("{}/api/v1/admin/tsdb/snapshot", self.base))
                    .send()?
                    .error_for_status()?
                    .json()?;
                let name = r["data"]["name"]
                    .as_str()
                    .context("snapshot answer without data.name")?;
                let dir = self.data.join("snapshots").join(name);
                Ok((
                    crate::procfs::dir_bytes(&dir),
                    "snapshot (blocks incl. head)".into(),
                ))
            }
            Kind::VictoriaMetrics => {
                client
                    .get(format!("{}/internal/force_flush", self.base))
                    .send()?
                    .error_for_status()?;
                // force_flush makes the data searchable as in-memory parts; 1.79 writes
                // them to files some seconds later. Wait until the files hold what the
                // system says its parts hold (`vm_data_size_bytes`), 60 s at most.
                let on_disk = || {
                    crate::procfs::dir_bytes(&self.data.join("data"))
                        + crate::procfs::dir_bytes(&self.data.join("indexdb"))
                };
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let text = client
                        .get(format!("{}/metrics", self.base))
                        .send()?
                        .text()?;
                    let parts: f64 = text
                        .lines()
                        .filter(|l| l.starts_with("vm_data_size_bytes{"))
                        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .sum();
                    let bytes = on_disk();
                    if bytes as f64 >= 0.95 * parts {
                        return Ok((bytes, "force_flush, parts on disk (data + indexdb)".into()));
                    }
                    if Instant::now() > deadline {
                        return Ok((
                            parts as u64,
                            "force_flush, vm_data_size_bytes (parts not all on disk in 60 s)"
                                .into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Kind::Cairn => {
                // cairn has no flush or snapshot endpoint yet: try Prometheus's, and fall
                // back to the data directory as it is (WAL and whatever blocks exist).
                let snapshot = client
                    .post(format!("{}/api/v1/admin/tsdb/snapshot", self.base))
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
                    .and_then(|r| r.json::<serde_json::Value>().ok())
                    .and_then(|v| v["data"]["name"].as_str().map(str::to_string));
                match snapshot {
                    Some(name) => Ok((
                        crate::procfs::dir_bytes(&self.data.join("snapshots").join(name)),
                        "snapshot".into(),
                    )),
                    None => Ok((
                        crate::procfs::dir_bytes(&self.data),
                        "data dir as is (no flush endpoint yet: WAL)".into(),
                    )),
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real node exporter on a loopback port, killed when dropped.
pub struct NodeExporter {
    pub port: u16,
    child: Child,
}

impl NodeExporter {
    pub fn start(programs: &Programs) -> Result<NodeExporter> {
        let port = free_port()?;
        let child = Command::new(&programs.node_exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting prometheus-node-exporter")?;
        Ok(NodeExporter { port, child })
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
