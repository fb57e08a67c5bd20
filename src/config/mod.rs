//! The configuration file: Prometheus's `prometheus.yml` schema (`global`,
//! `scrape_configs`, `rule_files`, `alerting`, `remote_write`, `remote_read`, `storage`)
//! with the same names, defaults and checks, except that `evaluation_interval` defaults
//! to 30s. Loading refuses unknown keys and names the file, line, column and key of
//! every mistake; a loaded [`Config`] holds effective values (jobs have inherited from
//! `global`, relative paths are resolved), which is also what [`to_yaml`] prints for
//! `/api/v1/status/config`. This module only reads and checks text: watching the file,
//! reloading and applying a config belong to the callers.
//!
//! ```
//! let cfg = cairn::config::parse(
//!     "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    static_configs: [{targets: ['localhost:9100']}]\n",
//!     "prometheus.yml",
//! )
//! .unwrap();
//! let node = &cfg.scrape_configs[0];
//! assert_eq!(node.scrape_interval.to_string(), "15s");
//! assert_eq!(node.scrape_timeout.to_string(), "10s");
//! assert_eq!(cfg.global.evaluation_interval.to_string(), "30s");
//!
//! let err = cairn::config::parse("global:\n  scrape_intervall: 15s\n", "prometheus.yml").unwrap_err();
//! assert!(err.to_string().starts_with(r#"prometheus.yml:2:3: unknown field "scrape_intervall""#));
//! ```

mod alerting;
mod de;
mod env;
mod error;
mod global;
mod http;
mod load;
mod paths;
mod remote;
mod scrape;
mod storage;
mod units;

pub use alerting::{AlertingConfig, AlertmanagerConfig};
pub use error::{ConfigError, Position};
pub use global::{
    DEFAULT_EVALUATION_INTERVAL, DEFAULT_SCRAPE_INTERVAL, DEFAULT_SCRAPE_TIMEOUT, GlobalConfig,
};
pub use http::{Authorization, BasicAuth, HttpClientConfig, Secret, TlsConfig, TlsVersion};
pub use remote::{MetadataConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig};
pub use scrape::{ScrapeConfig, ScrapeProtocol};
pub use storage::{ExemplarsConfig, RetentionConfig, StorageConfig, TsdbConfig};
pub use units::{ByteSize, ByteSizeError, parse_byte_size};

use serde::Serialize;
use std::path::Path;

/// A loaded configuration, mirroring `prometheus.yml` one-to-one. Fields are printed in
/// the order Prometheus prints them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(skip_serializing_if = "AlertingConfig::is_empty")]
    pub alerting: AlertingConfig,
    /// Paths or globs (in the last element only), resolved against the config's
    /// directory.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(skip_serializing_if = "StorageConfig::is_empty")]
    pub storage: StorageConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
}

impl Config {
    /// The scrape config of `job_name`, if any.
    pub fn scrape_config(&self, job_name: &str) -> Option<&ScrapeConfig> {
        self.scrape_configs.iter().find(|s| s.job_name == job_name)
    }

    /// A copy with every inline credential replaced by `<secret>` and URL passwords by
    /// `xxxxx`, as Prometheus shows configs.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        for sc in &mut c.scrape_configs {
            sc.with_http_client_config(|h| h.redact());
        }
        for am in &mut c.alerting.alertmanagers {
            am.with_http_client_config(|h| h.redact());
        }
        for rw in &mut c.remote_write {
            rw.redact();
        }
        for rr in &mut c.remote_read {
            rr.redact();
        }
        c
    }
}

/// Reads and parses the config file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.to_string_lossy())
}

/// Parses config text. `filename` names the file in errors, and relative paths in the
/// config are resolved against its directory. An empty text is a valid config with
/// every default, as in Prometheus.
pub fn parse(text: &str, filename: &str) -> Result<Config, ConfigError> {
    load::parse_with_env(text, filename, &|name| std::env::var(name).ok())
}

/// The config as YAML with effective values and secrets redacted, for
/// `/api/v1/status/config`. Parsing it again gives the same config except for the
/// redacted secrets.
pub fn to_yaml(cfg: &Config) -> String {
    render(&cfg.redacted())
}

/// Like [`to_yaml`] but keeping secrets, so that parsing the output gives back an equal
/// config. Never serve this.
pub fn to_yaml_with_secrets(cfg: &Config) -> String {
    render(cfg)
}

fn render(cfg: &Config) -> String {
    serde_saphyr::to_string(cfg).unwrap_or_else(|e| format!("<error creating config string: {e}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::Action;

    const FILE: &str = "/etc/prometheus/prometheus.yml";

    /// A realistic production config touching most of the schema. Credentials come from
    /// files, so nothing is redacted when it is printed.
    const REALISTIC: &str = r#"
global:
  scrape_interval: 15s
  evaluation_interval: 15s
  external_labels:
    cluster: eu-1
    replica: "0"
  body_size_limit: 50MB

alerting:
  alert_relabel_configs:
    - regex: replica
      action: labeldrop
  alertmanagers:
    - scheme: https
      path_prefix: /am
      timeout: 5s
      static_configs:
        - targets: ['alertmanager-0:9093', 'alertmanager-1:9093']

rule_files:
  - "rules/*.yml"
  - /etc/prometheus/extra.rules.yml

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['localhost:9090']

  - job_name: node
    scrape_interval: 30s
    scrape_timeout: 20s
    file_sd_configs:
      - files: ['targets/node/*.json']
        refresh_interval: 1m
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+):\d+'
        target_label: instance
        replacement: '${1}'
      - source_labels: [__meta_env, __meta_zone]
        separator: '/'
        regex: 'staging/.*'
        action: drop
      - regex: '__meta_label_(.+)'
        action: labelmap
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_gc_.*'
        action: drop
      - regex: pod_template_hash
        action: labeldrop
      - source_labels: [mode]
        target_label: mode
        action: lowercase

  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
      - targets: ['https://example.com', 'https://example.org']
        labels: {team: web}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 'blackbox:9115'

  - job_name: secure
    scheme: https
    honor_labels: true
    basic_auth:
      username: admin
      password_file: secrets/pw
    tls_config:
      ca_file: ca.pem
      server_name: app.internal
      min_version: TLS12
    sample_limit: 5000
    body_size_limit: 10MB
    static_configs:
      - targets: ['app:8443']

  - job_name: shard
    bearer_token_file: /var/run/token
    relabel_configs:
      - source_labels: [__address__]
        modulus: 4
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        regex: '2'
        action: keep
      - source_labels: [a]
        target_label: b
        action: keepequal
    static_configs:
      - targets: [a:1, b:1]

remote_write:
  - url: https://rw.example.com/api/v1/write
    name: long-term
    headers: {X-Scope-OrgID: tenant1}
    queue_config:
      max_shards: 10
    write_relabel_configs:
      - source_labels: [__name__]
        regex: 'expensive_.*'
        action: drop

remote_read:
  - url: http://rr:9201/read
    read_recent: true
    required_matchers: {source: rr}

storage:
  tsdb:
    out_of_order_time_window: 10m
"#;

    #[test]
    fn realistic_config_loads_as_prometheus_would() {
        let cfg = parse(REALISTIC, FILE).unwrap();
        assert_eq!(cfg.scrape_configs.len(), 5);
        assert_eq!(cfg.rule_files[0], "/etc/prometheus/rules/*.yml");
        let node = cfg.scrape_config("node").unwrap();
        assert_eq!(node.relabel_configs[2].action, Action::LabelMap);
        assert_eq!(node.body_size_limit, ByteSize(50 << 20));
        let secure = cfg.scrape_config("secure").unwrap();
        assert_eq!(secure.body_size_limit, ByteSize(10 << 20));
        assert_eq!(
            secure.tls_config.ca_file.as_deref(),
            Some("/etc/prometheus/ca.pem")
        );
        let shard = cfg.scrape_config("shard").unwrap();
        let auth = shard.http_client_config().authorization.unwrap();
        assert_eq!(
            (auth.kind.as_str(), auth.credentials_file.as_deref()),
            ("Bearer", Some("/var/run/token"))
        );
        assert_eq!(cfg.remote_write[0].queue_config.max_shards, 10);
        assert_eq!(cfg.remote_write[0].queue_config.capacity, 10_000);
        assert_eq!(cfg.storage.out_of_order_time_window().to_string(), "10m");
        assert_eq!(cfg.global.external_labels["replica"], "0");
    }

    #[test]
    fn round_trip_through_yaml() {
        let cfg = parse(REALISTIC, FILE).unwrap();
        let printed = to_yaml(&cfg);
        let again = parse(&printed, FILE).unwrap_or_else(|e| panic!("{e}\n{printed}"));
        assert_eq!(again, cfg, "\n{printed}");
        // Printing is stable too.
        assert_eq!(to_yaml(&again), printed);
    }

    #[test]
    fn printed_config_shows_effective_values() {
        let cfg = parse(REALISTIC, FILE).unwrap();
        let printed = to_yaml(&cfg);
        for line in [
            "  scrape_timeout: 10s",
            "  evaluation_interval: 15s",
            "  metrics_path: /metrics",
            "  scheme: http",
            "  honor_timestamps: true",
            "  follow_redirects: true",
            "  body_size_limit: 10MiB",
            "    type: Bearer",
            "    credentials_file: /var/run/token",
            "  - source_labels: [__address__]",
        ] {
            assert!(printed.contains(line), "missing {line:?} in\n{printed}");
        }
        assert!(!printed.contains("bearer_token_file"), "{printed}");
    }

    #[test]
    fn odd_values_survive_printing() {
        let text = r##"
global:
  external_labels:
    a: "true"
    b: "null"
    c: "~"
    d: ""
    e: "x: y"
    f: "#hash"
    g: "'q'"
    h: "two\nlines"
    i: " padded "
scrape_configs:
  - job_name: "0"
    metrics_path: "/with space?x=1&y=#"
    relabel_configs:
      - source_labels: ["__meta_a"]
        separator: ""
        regex: "[\"']+|\\s*"
        target_label: "t"
        replacement: "- $1 -"
"##;
        let cfg = parse(text, FILE).unwrap();
        assert_eq!(cfg.global.external_labels["h"], "two\nlines");
        assert_eq!(cfg.scrape_configs[0].relabel_configs[0].separator, "");
        let printed = to_yaml(&cfg);
        assert_eq!(parse(&printed, FILE).unwrap(), cfg, "\n{printed}");
    }

    #[test]
    fn anchors_and_merge_keys() {
        let text = "\
scrape_configs:
  - &base
    job_name: a
    scrape_interval: 5s
    static_configs: [{targets: ['h:1']}]
  - <<: *base
    job_name: b
";
        let cfg = parse(text, FILE).unwrap();
        let b = cfg.scrape_config("b").unwrap();
        assert_eq!(b.scrape_interval.to_string(), "5s");
        assert_eq!(b.static_configs[0].targets, ["h:1"]);
    }

    #[test]
    fn secrets_are_redacted_for_display_only() {
        let text = "\
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: hunter2}
  - job_name: b
    bearer_token: s3cr3t
    tls_config: {cert: CERT, key: KEY}
remote_write:
  - url: https://user:pass@rw/write
";
        let cfg = parse(text, FILE).unwrap();
        let shown = to_yaml(&cfg);
        for secret in ["hunter2", "s3cr3t", "KEY", ":pass@"] {
            assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
        }
        assert!(shown.contains("<secret>"), "{shown}");
        assert!(shown.contains("https://user:xxxxx@rw/write"), "{shown}");
        assert!(!format!("{cfg:?}").contains("hunter2"));
        let full = to_yaml_with_secrets(&cfg);
        assert_eq!(parse(&full, FILE).unwrap(), cfg, "\n{full}");
    }

    #[test]
    fn load_file_reads_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prometheus.yml");
        std::fs::write(
            &path,
            "scrape_configs:\n  - job_name: x\n    file_sd_configs: [{files: [t.json]}]\n",
        )
        .unwrap();
        let cfg = load_file(&path).unwrap();
        let want = dir.path().join("t.json");
        assert_eq!(
            cfg.scrape_configs[0].file_sd_configs[0].files,
            [want.to_string_lossy()]
        );

        std::fs::write(&path, "global:\n  bogus: 1\n").unwrap();
        let e = load_file(&path).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2:3: ", path.display())),
            "{e}"
        );

        let e = load_file(&dir.path().join("missing.yml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.yml"), "{e}");
    }
}
