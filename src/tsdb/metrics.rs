//! The database's self-metrics in the Prometheus text format, named as Prometheus names
//! them with `cairn_` in place of `prometheus_`. Formatting only: the numbers come from
//! the head's and the WAL's counters.

use super::HeadStats;
use super::wal::WalMetrics;
use std::fmt::Write;
use std::sync::atomic::Ordering;

fn family(out: &mut String, name: &str, typ: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {typ}");
    let _ = writeln!(out, "{name} {value}");
}

pub(super) fn write(out: &mut String, s: &HeadStats, wal: &WalMetrics) {
    family(
        out,
        "cairn_tsdb_blocks_loaded",
        "gauge",
        "Number of currently loaded data blocks.",
        s.blocks_loaded,
    );
    family(
        out,
        "cairn_tsdb_blocks_quarantined_total",
        "counter",
        "Blocks moved to quarantine/ because they failed verification.",
        s.blocks_quarantined,
    );
    family(
        out,
        "cairn_tsdb_head_blocks_written_total",
        "counter",
        "Blocks cut from the head.",
        s.head_blocks_written,
    );
    family(
        out,
        "cairn_tsdb_compactions_total",
        "counter",
        "Total number of compactions that were executed for the partition.",
        s.compactions,
    );
    family(
        out,
        "cairn_tsdb_compactions_failed_total",
        "counter",
        "Total number of maintenance rounds that failed.",
        s.compactions_failed,
    );
    family(
        out,
        "cairn_tsdb_maintenance_rounds_total",
        "counter",
        "Background maintenance rounds finished (head cut, compaction, downsampling, retention), failed ones included.",
        s.maintenance_rounds,
    );
    family(
        out,
        "cairn_tsdb_downsamplings_total",
        "counter",
        "Downsampled block copies made.",
        s.downsamplings,
    );
    family(
        out,
        "cairn_tsdb_time_retentions_total",
        "counter",
        "Blocks deleted because retention (time or size) expired them.",
        s.retention_deletions,
    );
    family(
        out,
        "cairn_tsdb_storage_blocks_bytes",
        "gauge",
        "The number of bytes that are currently used for local storage by all blocks.",
        s.blocks_bytes,
    );
    family(
        out,
        "cairn_tsdb_head_series",
        "gauge",
        "Total number of series in the head block.",
        s.num_series,
    );
    family(
        out,
        "cairn_tsdb_head_chunks",
        "gauge",
        "Total number of chunks in the head block.",
        s.num_chunks,
    );
    family(
        out,
        "cairn_tsdb_head_samples_appended_total",
        "counter",
        "Total number of appended samples.",
        s.samples_appended,
    );
    family(
        out,
        "cairn_tsdb_head_series_created_total",
        "counter",
        "Total number of series created in the head.",
        s.series_created,
    );
    family(
        out,
        "cairn_tsdb_out_of_order_samples_total",
        "counter",
        "Total number of out of order samples rejected.",
        s.out_of_order_samples,
    );
    family(
        out,
        "cairn_tsdb_duplicate_samples_total",
        "counter",
        "Total number of samples rejected for repeating a timestamp with a different value.",
        s.duplicate_samples,
    );
    family(
        out,
        "cairn_tsdb_out_of_bounds_samples_total",
        "counter",
        "Total number of out of bounds samples rejected.",
        s.out_of_bounds_samples,
    );
    family(
        out,
        "cairn_tsdb_head_min_time",
        "gauge",
        "Minimum time bound of the head block, in milliseconds.",
        s.min_time,
    );
    family(
        out,
        "cairn_tsdb_head_max_time",
        "gauge",
        "Maximum timestamp of the head block, in milliseconds.",
        s.max_time,
    );
    family(
        out,
        "cairn_tsdb_wal_corruptions_total",
        "counter",
        "Total number of WAL corruptions cut at replay.",
        s.wal_corruptions,
    );
    family(
        out,
        "cairn_tsdb_wal_writes_failed_total",
        "counter",
        "Total number of WAL writes that failed.",
        wal.writes_failed.load(Ordering::Relaxed),
    );
    let name = "cairn_tsdb_wal_fsync_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Duration of write log fsync.");
    let _ = writeln!(out, "# TYPE {name} summary");
    let secs = wal.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{name}_sum {secs}");
    let _ = writeln!(
        out,
        "{name}_count {}",
        wal.fsync_count.load(Ordering::Relaxed)
    );
    family(
        out,
        "cairn_tsdb_wal_segment_current",
        "gauge",
        "Write log segment index that TSDB is currently writing to.",
        s.wal_segment_current,
    );
    family(
        out,
        "cairn_tsdb_data_replay_duration_seconds",
        "gauge",
        "Time taken to replay the data on disk.",
        s.replay_duration.as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_a_value() {
        let mut out = String::new();
        let stats = HeadStats {
            num_series: 3,
            min_time: i64::MAX,
            max_time: i64::MIN,
            ..HeadStats::default()
        };
        let wal = WalMetrics::default();
        wal.fsync_count.store(2, Ordering::Relaxed);
        wal.fsync_nanos.store(1_500_000_000, Ordering::Relaxed);
        write(&mut out, &stats, &wal);
        assert!(out.contains("\ncairn_tsdb_head_series 3\n"));
        assert!(out.contains("cairn_tsdb_head_min_time 9223372036854775807\n"));
        assert!(out.contains("cairn_tsdb_wal_fsync_duration_seconds_sum 1.5\n"));
        assert!(out.contains("cairn_tsdb_wal_fsync_duration_seconds_count 2\n"));
        let helps = out.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = out.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types);
        assert_eq!(helps, 23);
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = l.split_once(' ').unwrap();
            assert!(name.starts_with("cairn_tsdb_"), "{l}");
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
