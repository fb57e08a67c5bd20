//! The `cairn` binary: reads Prometheus-named flags, loads the configuration, opens the
//! database, starts discovery, scraping and the HTTP server, and handles SIGHUP (reload)
//! and SIGTERM/SIGINT (orderly shutdown). Everything is built here and passed down.

use anyhow::Context;
use cairn::app::{App, Loaded};
use cairn::model::time::{PromDuration, now_ms};
use cairn::model::units::ByteSize;
use cairn::{config, discovery, http, promql, scrape, tsdb};
use clap::Parser;
use parking_lot::{Mutex, RwLock};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A Prometheus-compatible monitoring server with its own time-series database.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, about, args_override_self = true)]
struct Flags {
    /// Configuration file path (Prometheus's schema).
    #[arg(long = "config.file", default_value = "config.yml")]
    config_file: PathBuf,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    tsdb_path: PathBuf,
    /// How long to retain samples in storage: raw blocks, and downsampled ones unless
    /// their own retention flags say otherwise.
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d")]
    retention_time: PromDuration,
    /// The most bytes blocks and WAL may take (units B, KB, MB, GB, TB, PB, EB, powers
    /// of 1024); the oldest blocks are deleted first. 0: no limit.
    #[arg(long = "storage.tsdb.retention.size", default_value = "0")]
    retention_size: ByteSize,
    /// Retention of raw samples (default: --storage.tsdb.retention.time).
    #[arg(long = "storage.tsdb.retention.raw")]
    retention_raw: Option<PromDuration>,
    /// Retention of the 5m-resolution copies (default: --storage.tsdb.retention.time).
    #[arg(long = "storage.tsdb.retention.5m")]
    retention_5m: Option<PromDuration>,
    /// Retention of the 1h-resolution copies (default: --storage.tsdb.retention.time).
    #[arg(long = "storage.tsdb.retention.1h")]
    retention_1h: Option<PromDuration>,
    /// The time range of a block cut from the head.
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h")]
    min_block_duration: PromDuration,
    /// The largest range compaction builds (default: 10% of retention, at most 31d).
    #[arg(long = "storage.tsdb.max-block-duration")]
    max_block_duration: Option<PromDuration>,
    /// How often the background maintenance runs (cut head blocks, compact,
    /// downsample, apply retention); 0s turns it off. Prometheus runs it every minute.
    #[arg(
        long = "storage.tsdb.maintenance-interval",
        default_value = "1m",
        hide = true
    )]
    maintenance_interval: PromDuration,
    /// Raw blocks ending this long before the newest sample get a 5m-resolution copy.
    #[arg(long = "storage.tsdb.downsample.5m-after", default_value = "40h")]
    downsample_5m_after: PromDuration,
    /// 5m blocks ending this long before the newest sample get a 1h-resolution copy.
    #[arg(long = "storage.tsdb.downsample.1h-after", default_value = "10d")]
    downsample_1h_after: PromDuration,
    /// How often the write-ahead log is fsynced; 0s fsyncs on every commit. Samples are
    /// written to the OS before they are acknowledged either way, so they survive a
    /// crash of cairn; this bounds what a power loss can take.
    #[arg(long = "storage.tsdb.wal-fsync-interval", default_value = "1s")]
    wal_fsync_interval: PromDuration,
    /// Address to listen on for the UI, API and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    listen_address: String,
    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
    /// Enable the admin endpoints under /api/v1/admin (delete_series,
    /// clean_tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Accepted for compatibility: cairn's remote write receiver is always on
    /// (Prometheus needs this flag to enable it).
    #[arg(long = "web.enable-remote-write-receiver")]
    enable_remote_write_receiver: bool,
    /// Largest remote write request body accepted, in bytes (compressed).
    #[arg(long = "web.remote-write.max-body-bytes", default_value_t = 32 << 20)]
    remote_write_max_bytes: usize,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    lookback_delta: PromDuration,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    query_timeout: PromDuration,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
}

impl Flags {
    /// Flag names and values for `/api/v1/status/flags`.
    fn as_pairs(&self) -> Vec<(String, String)> {
        vec![
            ("config.file".into(), self.config_file.display().to_string()),
            (
                "storage.tsdb.path".into(),
                self.tsdb_path.display().to_string(),
            ),
            (
                "storage.tsdb.retention.time".into(),
                self.retention_time.to_string(),
            ),
            (
                "storage.tsdb.retention.size".into(),
                self.retention_size.to_string(),
            ),
            (
                "storage.tsdb.min-block-duration".into(),
                self.min_block_duration.to_string(),
            ),
            (
                "web.enable-admin-api".into(),
                self.enable_admin_api.to_string(),
            ),
            (
                "storage.tsdb.wal-fsync-interval".into(),
                self.wal_fsync_interval.to_string(),
            ),
            ("web.listen-address".into(), self.listen_address.clone()),
            (
                "web.enable-lifecycle".into(),
                self.enable_lifecycle.to_string(),
            ),
            (
                "web.enable-remote-write-receiver".into(),
                self.enable_remote_write_receiver.to_string(),
            ),
            (
                "query.lookback-delta".into(),
                self.lookback_delta.to_string(),
            ),
            ("log.level".into(), self.log_level.clone()),
        ]
    }
}

impl Flags {
    fn db_options(&self) -> tsdb::DbOptions {
        let or_time = |d: &Option<PromDuration>| d.map_or(self.retention_time.0, |d| d.0);
        tsdb::DbOptions {
            wal_fsync_interval: self.wal_fsync_interval.0,
            min_block_duration: self.min_block_duration.0,
            max_block_duration: self.max_block_duration.map(|d| d.0),
            retention: tsdb::RetentionOptions {
                raw: or_time(&self.retention_raw),
                res_5m: or_time(&self.retention_5m),
                res_1h: or_time(&self.retention_1h),
                max_bytes: self.retention_size.0,
            },
            downsample_5m_after: self.downsample_5m_after.0,
            downsample_1h_after: self.downsample_1h_after.0,
            ..Default::default()
        }
    }
}

fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!("cairn={0},{0}", flags.log_level))
        .with_context(|| format!("invalid --log.level {:?}", flags.log_level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cairn")
        .build()
        .context("starting the async runtime")?
        .block_on(run(flags))
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    cairn::httpclient::install_crypto_provider();
    let cfg = config::load_file(&flags.config_file)
        .with_context(|| format!("error loading config from {:?}", flags.config_file))?;
    std::fs::create_dir_all(&flags.tsdb_path)
        .with_context(|| format!("creating {}", flags.tsdb_path.display()))?;
    let started = std::time::Instant::now();
    let db = tsdb::Db::open(&flags.tsdb_path, flags.db_options())
        .with_context(|| format!("opening storage at {}", flags.tsdb_path.display()))?;
    tracing::info!(elapsed = ?started.elapsed(), series = db.stats().num_series, "storage ready");

    let _maintenance = if flags.maintenance_interval.0.is_zero() {
        None
    } else {
        Some(
            db.start_maintenance(flags.maintenance_interval.0)
                .context("starting the storage maintenance thread")?,
        )
    };
    let storage: Arc<dyn cairn::storage::Storage> = Arc::new(db.clone());
    let (disc, mut targets_rx) = discovery::Manager::new();
    let scrape = Arc::new(Mutex::new(scrape::ScrapeManager::new(storage.clone())));
    let yaml = config::to_yaml(&cfg);
    let app = Arc::new(App {
        db: db.clone(),
        storage,
        engine: promql::Engine::new(promql::EngineOptions {
            lookback_delta: flags.lookback_delta.0,
            timeout: flags.query_timeout.0,
            max_samples: flags.query_max_samples,
            ..Default::default()
        }),
        query_gate: Arc::new(tokio::sync::Semaphore::new(
            flags.query_max_concurrency.max(1),
        )),
        scrape: scrape.clone(),
        discovery: Mutex::new(disc),
        config_path: flags.config_file.clone(),
        current: RwLock::new(Loaded {
            config: cfg,
            yaml,
            loaded_at_ms: now_ms(),
        }),
        reload_ok: AtomicBool::new(true),
        last_reload_success_ms: AtomicI64::new(now_ms()),
        flags: flags.as_pairs(),
        started_at_ms: now_ms(),
        lifecycle_enabled: flags.enable_lifecycle,
        admin_enabled: flags.enable_admin_api,
        ready: AtomicBool::new(false),
        remote_write_max_bytes: flags.remote_write_max_bytes,
        remote_write: cairn::remote::Receiver::default(),
        retention: flags.retention_time.to_string(),
    });
    {
        let cfg = app.current.read().config.clone();
        app.apply(&cfg);
    }

    // Discovery results flow to the scrape manager.
    tokio::spawn(async move {
        while targets_rx.changed().await.is_ok() {
            let sets = targets_rx.borrow_and_update().clone();
            scrape.lock().sync(sets);
        }
    });

    // SIGHUP reloads the configuration.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let reload_app = app.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let a = reload_app.clone();
            let _ = tokio::task::spawn_blocking(move || a.reload()).await;
        }
    });

    let listener = tokio::net::TcpListener::bind(&flags.listen_address)
        .await
        .with_context(|| format!("listening on {}", flags.listen_address))?;
    tracing::info!(address = %flags.listen_address, "listening");
    app.ready.store(true, Ordering::Relaxed);
    axum::serve(listener, http::router(app.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;

    tracing::info!("shutting down");
    app.scrape.lock().stop_all();
    app.db.close().context("closing storage")?;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
