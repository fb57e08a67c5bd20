//! Prometheus-compatible servers under test or used as oracles: cairn itself (or, in
//! reference mode, Prometheus standing in for it), the real Prometheus 2.42, and the node
//! exporter. Each runs in its own temporary directory (config file, TSDB, logs), on a
//! loopback port, and is killed when its handle is dropped.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::api::{Api, Reply};
use super::process::{Server, free_port, require};
use super::remote_write::RemoteWriter;

/// The environment variable that points the suite at another server (see the module docs
/// of `common`).
pub const AGAINST_VAR: &str = "CAIRN_TEST_AGAINST";

/// Which program serves the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Cairn,
    Prometheus,
}

impl Flavor {
    /// The server the suite tests: cairn, unless `CAIRN_TEST_AGAINST=prometheus`.
    pub fn under_test() -> Flavor {
        match std::env::var(AGAINST_VAR).as_deref() {
            Err(_) | Ok("") | Ok("cairn") => Flavor::Cairn,
            Ok("prometheus") => Flavor::Prometheus,
            Ok(other) => panic!("{AGAINST_VAR}={other:?}: expected `cairn` or `prometheus`"),
        }
    }

    /// The prefix of the server's own metrics: `cairn_config_last_reload_successful`
    /// is `prometheus_config_last_reload_successful` in Prometheus.
    pub fn metric_prefix(self) -> &'static str {
        match self {
            Flavor::Cairn => "cairn",
            Flavor::Prometheus => "prometheus",
        }
    }
}

/// The system under test, launched with Prometheus's command-line flags.
pub struct Cairn;

impl Cairn {
    /// Starts the server under test with `config_yaml` and `--web.enable-lifecycle`, and
    /// waits until `/-/ready` answers.
    pub async fn start(config_yaml: &str) -> Monitor {
        Monitor::launch(
            Flavor::under_test(),
            config_yaml,
            &["--web.enable-lifecycle"],
        )
        .await
    }

    /// Like [`Cairn::start`], with `args` after the config, storage and listen flags
    /// instead of `--web.enable-lifecycle`.
    pub async fn start_with(config_yaml: &str, args: &[&str]) -> Monitor {
        Monitor::launch(Flavor::under_test(), config_yaml, args).await
    }
}

/// The real Prometheus, as a peer or an oracle, whatever the suite tests.
pub struct Prometheus;

impl Prometheus {
    /// Starts `/usr/bin/prometheus` with `config_yaml` and `--web.enable-lifecycle`.
    pub async fn start(config_yaml: &str) -> Monitor {
        Monitor::launch(Flavor::Prometheus, config_yaml, &["--web.enable-lifecycle"]).await
    }
}

/// A running Prometheus-compatible server and its temporary directory.
pub struct Monitor {
    pub flavor: Flavor,
    pub api: Api,
    // Declared before `dir` so that the process dies before its directory is removed.
    server: Server,
    port: u16,
    dir: TempDir,
}

impl Monitor {
    async fn launch(flavor: Flavor, config_yaml: &str, extra_args: &[&str]) -> Monitor {
        let name = flavor.metric_prefix();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-test-"))
            .tempdir()
            .expect("create a temporary directory");
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config_yaml).expect("write the config file");
        let program = match flavor {
            Flavor::Cairn => PathBuf::from(env!("CARGO_BIN_EXE_cairn")),
            Flavor::Prometheus => require("prometheus", "apt-get install prometheus"),
        };

        // A port taken between free_port() and the child's bind is the only failure worth
        // a retry; anything else is the server's fault and ends the test.
        let mut attempts_left = 3;
        loop {
            let port = free_port();
            let mut args = vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ];
            if flavor == Flavor::Prometheus {
                // Prometheus 2.42 has the receiver off by default; cairn always has it on.
                args.push("--web.enable-remote-write-receiver".to_owned());
            }
            args.extend(extra_args.iter().map(|a| (*a).to_owned()));
            let base = format!("http://127.0.0.1:{port}");
            let ready = format!("{base}/-/ready");
            match Server::try_start(name, &program, args, dir.path(), ready).await {
                Ok(server) => {
                    return Monitor {
                        flavor,
                        api: Api::new(base),
                        server,
                        port,
                        dir,
                    };
                }
                Err(err) if attempts_left > 1 && port_was_taken(&err.log) => {
                    attempts_left -= 1;
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    /// `127.0.0.1:<port>`, as a scrape target or a URL authority.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The file given as `--config.file`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The directory given as `--storage.tsdb.path`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory that holds config, data and logs (a place for SD files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the config file; takes effect on [`Monitor::sighup`] or [`Monitor::reload`].
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).expect("write the config file");
    }

    pub fn sighup(&self) {
        self.server.signal("HUP");
    }

    /// POST `/-/reload` (needs `--web.enable-lifecycle`).
    pub async fn reload(&self) -> Reply {
        self.api
            .post_empty("/-/reload")
            .await
            .unwrap_or_else(|e| panic!("POST /-/reload: {e}"))
    }

    /// SIGKILL: no shutdown hook runs, nothing buffered is flushed.
    pub fn kill9(&mut self) {
        self.server.kill9();
    }

    /// Starts again on the same port, config and data directory; waits for `/-/ready`.
    pub async fn restart(&mut self) {
        self.server.restart().await;
    }

    /// Like [`Monitor::restart`], with `args` added to the command line and `envs` in
    /// the environment (for this and later restarts).
    pub async fn restart_with(&mut self, args: &[&str], envs: &[(&str, &str)]) {
        self.server.reconfigure(args, envs);
        self.server.restart().await;
    }

    /// Whether the tail of the current run's output contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.server.log().contains(needle)
    }

    /// The full name of one of the server's own metrics, e.g. `self_metric("tsdb_head_series")`.
    pub fn self_metric(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.flavor.metric_prefix())
    }

    /// The value of one of the server's own metrics, read from its `/metrics`.
    pub async fn self_metric_value(&self, suffix: &str) -> Result<f64, String> {
        self.api.metric_value(&self.self_metric(suffix)).await
    }

    /// A remote-write client for this server's `/api/v1/write`.
    pub fn remote_writer(&self) -> RemoteWriter {
        RemoteWriter::new(self.url("/api/v1/write"))
    }

    /// The tail of the server's output, for panic messages.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// Whether a server's output says its listen port was taken: Go prints "bind: address
/// already in use", Rust "Address already in use (os error 98)".
fn port_was_taken(log: &str) -> bool {
    log.to_lowercase().contains("address already in use")
}

/// The Debian `prometheus-node-exporter`, with the collectors that this harness does not
/// need and that can be slow in a container turned off.
pub struct NodeExporter {
    server: Server,
    port: u16,
    dir: TempDir,
}

impl NodeExporter {
    pub async fn start() -> NodeExporter {
        let program = require(
            "prometheus-node-exporter",
            "apt-get install prometheus-node-exporter",
        );
        let dir = tempfile::Builder::new()
            .prefix("node-exporter-test-")
            .tempdir()
            .expect("create a temporary directory");
        let mut attempts_left = 3;
        loop {
            let port = free_port();
            let args = vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                // Walks every mounted filesystem with statfs, which can block on
                // network or FUSE mounts in CI containers.
                "--no-collector.filesystem".to_owned(),
                // Reads the Debian textfile directory, which may hold stale files of the
                // host's own exporter.
                "--no-collector.textfile".to_owned(),
            ];
            let ready = format!("http://127.0.0.1:{port}/");
            match Server::try_start("node-exporter", &program, args, dir.path(), ready).await {
                Ok(server) => return NodeExporter { server, port, dir },
                Err(err) if attempts_left > 1 && port_was_taken(&err.log) => {
                    attempts_left -= 1;
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    /// `127.0.0.1:<port>`, the scrape target.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temporary directory that holds the exporter's log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.server.log()
    }
}
