//! Child processes for the tests: finding programs, picking loopback ports, spawning a
//! server with its output captured to a file, waiting until it answers, and killing it.
//! A [`Server`] is killed when dropped, so a panicking test leaves no process behind.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to answer its readiness URL. cairn and Prometheus open an
/// empty or small TSDB in well under a second; the margin is for a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a server's output goes into a panic message.
const LOG_TAIL_BYTES: usize = 6000;

/// Returns the path of `program`, looked up in `PATH` unless it contains a `/`.
///
/// Panics, naming the install step, when it is missing: the tests never skip silently.
pub fn require(program: &str, install_hint: &str) -> PathBuf {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    found.unwrap_or_else(|| panic!("{program} not found: run `make test-deps` ({install_hint})"))
}

/// A loopback TCP port that was free a moment ago and that this test binary has not handed
/// out before. The port is released before the child binds it, so another process could
/// take it in between; [`crate::common::Monitor`] retries with a new port when that happens.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
        let port = listener
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        let mut seen = handed_out.lock().expect("port registry lock");
        if seen.insert(port) {
            return port;
        }
    }
}

/// Why a server did not come up.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
    /// The tail of the process's output.
    pub log: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n--- its output ---\n{}", self.message, self.log)
    }
}

/// A child process that serves HTTP, with stdout and stderr captured to a log file.
pub struct Server {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log_dir: PathBuf,
    ready_url: String,
    child: Option<Child>,
    runs: u32,
}

impl Server {
    /// Spawns `program args` and waits until `ready_url` answers 200; panics with the
    /// process's output if it exits or does not become ready in time.
    pub async fn start(
        name: &str,
        program: &Path,
        args: Vec<String>,
        log_dir: &Path,
        ready_url: String,
    ) -> Server {
        match Server::try_start(name, program, args, log_dir, ready_url).await {
            Ok(server) => server,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`Server::start`], but hands the failure back so the caller can retry.
    pub async fn try_start(
        name: &str,
        program: &Path,
        args: Vec<String>,
        log_dir: &Path,
        ready_url: String,
    ) -> Result<Server, StartError> {
        let mut server = Server {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            envs: Vec::new(),
            log_dir: log_dir.to_owned(),
            ready_url,
            child: None,
            runs: 0,
        };
        server.spawn_and_wait().await?;
        Ok(server)
    }

    /// Starts the same command again (same arguments, so the same port and data
    /// directory) after [`Server::kill9`].
    pub async fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "restart() of {} while it runs",
            self.name
        );
        if let Err(err) = self.spawn_and_wait().await {
            panic!("restart: {err}");
        }
    }

    /// Changes the command for the next [`Server::restart`]: `args` are added (a flag
    /// given twice takes its last value), `envs` replace the environment variables set
    /// before.
    pub fn reconfigure(&mut self, args: &[&str], envs: &[(&str, &str)]) {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self.envs = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// SIGKILL, then reap: nothing the process buffered gets a chance to be written.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error here means it already exited, which is as dead as we want it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...) with kill(1), which needs no `unsafe`.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid();
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name))
            .id()
    }

    /// The exit status if the process has ended, `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// The tail of the current (or last) run's stdout and stderr.
    pub fn log(&self) -> String {
        let text = std::fs::read(self.log_path()).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL_BYTES);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir
            .join(format!("{}.{}.log", self.name, self.runs))
    }

    async fn spawn_and_wait(&mut self) -> Result<(), StartError> {
        self.runs += 1;
        let log = File::create(self.log_path()).expect("create the log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        self.child = Some(child);

        let client = super::api::http_client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Err(StartError {
                    message: format!("{} exited with {status} before it was ready", self.name),
                    log: self.log(),
                });
            }
            let last = match client.get(&self.ready_url).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                self.kill9();
                return Err(StartError {
                    message: format!(
                        "{} was not ready at {} within {READY_TIMEOUT:?} (last: {last})",
                        self.name, self.ready_url
                    ),
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}
