//! The running server as one value: the database, the query engine, the discovery and
//! scrape managers and the loaded configuration, plus the reload procedure that SIGHUP
//! and `POST /-/reload` share. `main.rs` builds it; the HTTP layer reads it.

use crate::config::{self, Config};
use crate::discovery;
use crate::model::time::now_ms;
use crate::promql::Engine;
use crate::scrape::ScrapeManager;
use crate::storage::Storage;
use crate::tsdb::Db;
use parking_lot::{Mutex, RwLock};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The configuration in force and when it was loaded.
pub struct Loaded {
    pub config: Config,
    pub yaml: String,
    pub loaded_at_ms: i64,
}

pub struct App {
    pub db: Db,
    pub storage: Arc<dyn Storage>,
    pub engine: Engine,
    /// `--query.max-concurrency` slots: queries beyond it wait their turn.
    pub query_gate: Arc<tokio::sync::Semaphore>,
    pub scrape: Arc<Mutex<ScrapeManager>>,
    pub discovery: Mutex<discovery::Manager>,
    pub config_path: PathBuf,
    pub current: RwLock<Loaded>,
    pub reload_ok: AtomicBool,
    pub last_reload_success_ms: AtomicI64,
    /// Flag names and values as `/api/v1/status/flags` reports them.
    pub flags: Vec<(String, String)>,
    pub started_at_ms: i64,
    pub lifecycle_enabled: bool,
    /// `--web.enable-admin-api`: the /api/v1/admin endpoints answer.
    pub admin_enabled: bool,
    pub ready: AtomicBool,
    /// Largest accepted remote-write body, compressed.
    pub remote_write_max_bytes: usize,
    /// The remote write receiver of `storage`, with its series cache.
    pub remote_write: crate::remote::Receiver,
    pub retention: String,
}

impl App {
    /// Applies a configuration to discovery and scraping.
    pub fn apply(&self, cfg: &Config) {
        self.scrape.lock().apply_config(&cfg.scrape_configs);
        let jobs = cfg
            .scrape_configs
            .iter()
            .map(|s| (s.job_name.clone(), s.sd_configs()))
            .collect();
        self.discovery.lock().apply(jobs);
    }

    /// Re-reads the config file. A bad file leaves the running configuration in place;
    /// the error names the file and is returned, logged and reflected in
    /// `cairn_config_last_reload_successful`.
    pub fn reload(&self) -> Result<(), String> {
        match config::load_file(&self.config_path) {
            Ok(cfg) => {
                self.apply(&cfg);
                let yaml = config::to_yaml(&cfg);
                *self.current.write() = Loaded {
                    config: cfg,
                    yaml,
                    loaded_at_ms: now_ms(),
                };
                self.reload_ok.store(true, Ordering::Relaxed);
                self.last_reload_success_ms
                    .store(now_ms(), Ordering::Relaxed);
                tracing::info!(file = %self.config_path.display(), "completed loading of configuration file");
                Ok(())
            }
            Err(e) => {
                self.reload_ok.store(false, Ordering::Relaxed);
                let msg = format!(
                    "error loading config from {:?}: {e}",
                    self.config_path.display().to_string()
                );
                tracing::error!("{msg}");
                Err(msg)
            }
        }
    }

    /// cairn's own metrics in the text format.
    pub fn write_metrics(&self, out: &mut String) {
        crate::process_metrics::write(out, self.started_at_ms);
        let _ = writeln!(
            out,
            "# HELP cairn_build_info A metric with a constant '1' value labeled by version.\n# TYPE cairn_build_info gauge\ncairn_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP cairn_config_last_reload_successful Whether the last configuration reload attempt was successful.\n# TYPE cairn_config_last_reload_successful gauge\ncairn_config_last_reload_successful {}",
            u8::from(self.reload_ok.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP cairn_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n# TYPE cairn_config_last_reload_success_timestamp_seconds gauge\ncairn_config_last_reload_success_timestamp_seconds {}",
            self.last_reload_success_ms.load(Ordering::Relaxed) / 1000
        );
        self.db.write_metrics(out);
        self.scrape.lock().metrics().write(out);
    }
}
