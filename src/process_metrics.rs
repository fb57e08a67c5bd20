//! The standard `process_*` metrics, read from `/proc/self` (Linux only; elsewhere only
//! the start time is reported).

use std::fmt::Write;

pub fn write(out: &mut String, started_at_ms: i64) {
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}",
        started_at_ms as f64 / 1000.0
    );
    if let Some((cpu, vsize, rss)) = read_stat() {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {vsize}\n# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}",
            fds.count()
        );
    }
}

/// (cpu seconds, virtual bytes, resident bytes) from `/proc/self`.
fn read_stat() -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may contain spaces: fields start after ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    // After the name: state(0) ... utime(11) stime(12). /proc counts in USER_HZ, which
    // Linux fixes at 100 for userspace on every architecture.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((
        (utime + stime) / 100.0,
        kb("VmSize:")? * 1024,
        kb("VmRSS:")? * 1024,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_cpu_and_rss_on_linux() {
        let mut s = String::new();
        super::write(&mut s, 1_000);
        assert!(s.contains("process_start_time_seconds 1\n"));
        if cfg!(target_os = "linux") {
            assert!(s.contains("process_resident_memory_bytes "));
            assert!(s.contains("process_cpu_seconds_total "));
        }
    }
}
