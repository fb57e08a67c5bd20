//! What the harness reads from the operating system rather than from the systems it
//! measures: a process's CPU time and resident memory (`/proc/PID/stat`, `/proc/PID/status`),
//! the bytes a data directory holds, and a one-line description of the machine. Nothing
//! here starts or stops anything.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`. Asked of `getconf`
/// once (no FFI needed); Linux has used 100 on every common architecture for decades.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User plus system CPU seconds the process has used so far, all threads together.
/// `pid` 0 means this process.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_string()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&stat).with_context(|| format!("parsing {path}"))
}

/// utime and stime are fields 14 and 15; the command name (field 2) may hold spaces and
/// parentheses, so counting starts after its last `)`.
fn parse_stat_cpu(stat: &str) -> Result<f64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("no `)` after the command name");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state), so field N is fields[N - 3].
    let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
        bail!("fewer than 15 fields");
    };
    let ticks = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_rss(&status).with_context(|| format!("no VmRSS in {path}"))
}

fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes held by the regular files under `dir` (their lengths, not the blocks the
/// filesystem rounds them up to, so a store of many small files is not charged for
/// the filesystem's block size). Files that vanish while walking (a system compacting
/// or truncating its WAL) are skipped.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_bytes(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// The machine the figures come from, as one line for the table and as fields for JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub mem_total_bytes: u64,
    pub kernel: String,
    /// The 1-minute load average when the run started: a hint of how quiet the machine was.
    pub load_at_start: f64,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_bytes = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown kernel".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_bytes,
            kernel,
            load_at_start: load_average(),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "machine: {} cores, {}, {:.1} GiB RAM, Linux {}, load average {:.2} at start",
            self.cores,
            self.cpu_model,
            self.mem_total_bytes as f64 / (1u64 << 30) as f64,
            self.kernel,
            self.load_at_start
        )
    }
}

/// The 1-minute load average, 0 where it cannot be read.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

// Self-checks, run by `cargo test --all-targets` (see main.rs): literal inputs only.
pub fn self_check() -> Result<usize> {
    let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
    let cpu = parse_stat_cpu(stat)?;
    anyhow::ensure!(
        (cpu - 300.0 / clock_ticks()).abs() < 1e-9,
        "stat cpu parsed as {cpu}"
    );
    anyhow::ensure!(parse_stat_cpu("1234 (x) S 1 2").is_err(), "short stat");
    let status = "Name:\tcairn\nVmPeak:\t  100 kB\nVmRSS:\t   2048 kB\nThreads: 9\n";
    anyhow::ensure!(parse_status_rss(status) == Some(2048 * 1024), "VmRSS");
    anyhow::ensure!(parse_status_rss("Name: x\n").is_none(), "missing VmRSS");
    anyhow::ensure!(cpu_seconds(0)? >= 0.0, "own cpu");
    Ok(4)
}
