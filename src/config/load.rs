//! From config file text to a checked [`Config`]: parse with positions kept for every
//! section, then check and resolve each section in Prometheus's order (global first, as
//! jobs inherit from it), expand environment references in external labels, and make
//! relative paths relative to the config file's directory. Reading the file is the
//! caller's business.

use super::Config;
use super::alerting::{AlertingConfig, AlertmanagerConfig, apply_scheme};
use super::de::nullable;
use super::error::{ConfigError, Position, Problem};
use super::global::GlobalConfig;
use super::paths::{dir_of, is_valid_rule_path, join_dir};
use super::remote::{RemoteReadConfig, RemoteWriteConfig};
use super::scrape::ScrapeConfig;
use super::storage::StorageConfig;
use crate::relabel::RelabelConfig;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashSet;

/// The file as written. Sections are `Spanned` so checks that need several fields (or
/// several sections) can still point at a line. A key with no value counts as absent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    global: Option<Spanned<GlobalConfig>>,
    #[serde(default)]
    alerting: Option<Spanned<AlertingFile>>,
    #[serde(default)]
    rule_files: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    scrape_configs: Option<Vec<Spanned<ScrapeConfig>>>,
    #[serde(default)]
    storage: Option<StorageConfig>,
    #[serde(default)]
    remote_write: Option<Vec<Spanned<RemoteWriteConfig>>>,
    #[serde(default)]
    remote_read: Option<Vec<Spanned<RemoteReadConfig>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertingFile {
    #[serde(default, deserialize_with = "nullable")]
    alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    alertmanagers: Option<Vec<Spanned<AlertmanagerConfig>>>,
}

/// Parses and checks `text`; `filename` names the file in errors and anchors relative
/// paths. `env` looks up environment variables for external labels.
pub(crate) fn parse_with_env(
    text: &str,
    filename: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let doc: ConfigFile =
        serde_saphyr::from_str(text).map_err(|e| ConfigError::from_yaml(filename, &e))?;
    let mut global = GlobalConfig::default();
    if let Some(g) = doc.global {
        global = g.value;
        global
            .resolve()
            .map_err(at_section(filename, "global".into(), g.referenced))?;
    }
    global.expand_external_labels(env);
    let scheme = global.metric_name_validation_scheme;

    let mut rule_files = Vec::new();
    for (i, rf) in doc.rule_files.unwrap_or_default().into_iter().enumerate() {
        if !is_valid_rule_path(&rf.value) {
            let p = Problem::new("", format!("invalid rule file path {:?}", rf.value));
            return Err(at_section(
                filename,
                format!("rule_files[{i}]"),
                rf.referenced,
            )(p));
        }
        rule_files.push(rf.value);
    }

    let mut scrape_configs = Vec::new();
    let mut jobs = HashSet::new();
    for (i, sc) in doc
        .scrape_configs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let fail = at_section(filename, format!("scrape_configs[{i}]"), sc.referenced);
        let mut cfg = sc.value;
        cfg.resolve(&global).map_err(&fail)?;
        if !jobs.insert(cfg.job_name.clone()) {
            let message = format!(
                "found multiple scrape configs with job name {:?}",
                cfg.job_name
            );
            return Err(fail(Problem::new("job_name", message)));
        }
        scrape_configs.push(cfg);
    }

    let mut alerting = AlertingConfig::default();
    if let Some(a) = doc.alerting {
        let fail_here = at_section(filename, "alerting".into(), a.referenced);
        let AlertingFile {
            mut alert_relabel_configs,
            alertmanagers,
        } = a.value;
        apply_scheme("alert_relabel_configs", &mut alert_relabel_configs, scheme)
            .map_err(fail_here)?;
        alerting.alert_relabel_configs = alert_relabel_configs;
        for (i, am) in alertmanagers.unwrap_or_default().into_iter().enumerate() {
            let fail = at_section(
                filename,
                format!("alerting.alertmanagers[{i}]"),
                am.referenced,
            );
            let mut cfg = am.value;
            cfg.resolve(scheme).map_err(&fail)?;
            alerting.alertmanagers.push(cfg);
        }
    }

    let mut remote_write = Vec::new();
    let mut names = HashSet::new();
    for (i, rw) in doc.remote_write.unwrap_or_default().into_iter().enumerate() {
        let fail = at_section(filename, format!("remote_write[{i}]"), rw.referenced);
        let mut cfg = rw.value;
        // Unnamed queues get a name derived from their config elsewhere, so only
        // explicit names must be unique.
        if !cfg.name.is_empty() && !names.insert(cfg.name.clone()) {
            let message = format!(
                "found multiple remote write configs with job name {:?}",
                cfg.name
            );
            return Err(fail(Problem::new("name", message)));
        }
        cfg.resolve().map_err(&fail)?;
        apply_scheme(
            "write_relabel_configs",
            &mut cfg.write_relabel_configs,
            scheme,
        )
        .map_err(fail)?;
        remote_write.push(cfg);
    }

    let mut remote_read = Vec::new();
    let mut names = HashSet::new();
    for (i, rr) in doc.remote_read.unwrap_or_default().into_iter().enumerate() {
        let fail = at_section(filename, format!("remote_read[{i}]"), rr.referenced);
        let mut cfg = rr.value;
        if !cfg.name.is_empty() && !names.insert(cfg.name.clone()) {
            let message = format!(
                "found multiple remote read configs with job name {:?}",
                cfg.name
            );
            return Err(fail(Problem::new("name", message)));
        }
        cfg.resolve().map_err(&fail)?;
        remote_read.push(cfg);
    }

    let mut cfg = Config {
        global,
        alerting,
        rule_files,
        scrape_configs,
        storage: doc.storage.unwrap_or_default(),
        remote_write,
        remote_read,
    };
    resolve_paths(&mut cfg, &dir_of(filename));
    Ok(cfg)
}

/// Turns a problem found in one section into an error that points at the section.
fn at_section(
    file: &str,
    section: String,
    loc: serde_saphyr::Location,
) -> impl Fn(Problem) -> ConfigError + '_ {
    let at = Position::of(loc);
    move |p| p.within(&section).locate(file, at)
}

/// Makes every relative file path in `cfg` relative to `dir`, as Prometheus does after
/// loading.
fn resolve_paths(cfg: &mut Config, dir: &str) {
    let g = &mut cfg.global;
    for file in [&mut g.query_log_file, &mut g.scrape_failure_log_file]
        .into_iter()
        .flatten()
    {
        *file = join_dir(dir, file);
    }
    for file in &mut cfg.rule_files {
        *file = join_dir(dir, file);
    }
    for sc in &mut cfg.scrape_configs {
        sc.resolve_paths(dir);
    }
    for am in &mut cfg.alerting.alertmanagers {
        am.resolve_paths(dir);
    }
    for rw in &mut cfg.remote_write {
        rw.with_http_client_config(|h| h.resolve_paths(dir));
    }
    for rr in &mut cfg.remote_read {
        rr.with_http_client_config(|h| h.resolve_paths(dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, ScrapeProtocol};
    use crate::model::time::PromDuration;
    use crate::relabel::NameValidation;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_with_env(text, "/etc/prometheus/prometheus.yml", &|_| None)
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn secs(s: u64) -> PromDuration {
        PromDuration::from_secs(s)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        for text in [
            "",
            "\n\n",
            "# nothing here\n",
            "global:\n",
            "scrape_configs:\n",
        ] {
            let cfg = parse(text).unwrap();
            assert_eq!(cfg, Config::default(), "{text:?}");
        }
        let cfg = Config::default();
        assert_eq!(cfg.global.scrape_interval, secs(60));
        assert_eq!(cfg.global.scrape_timeout, secs(10));
        assert_eq!(cfg.global.evaluation_interval, secs(30));
    }

    #[test]
    fn stock_prometheus_yml_parses() {
        // The file Prometheus ships, with its commented-out list entries.
        let text = "\
# my global config
global:
  scrape_interval: 15s # Set the scrape interval to every 15 seconds.
  evaluation_interval: 15s # Evaluate rules every 15 seconds.
  # scrape_timeout is set to the global default (10s).

# Alertmanager configuration
alerting:
  alertmanagers:
    - static_configs:
        - targets:
          # - alertmanager:9093

# Load rules once and periodically evaluate them according to the global 'evaluation_interval'.
rule_files:
  # - \"first_rules.yml\"
  # - \"second_rules.yml\"

scrape_configs:
  - job_name: \"prometheus\"
    static_configs:
      - targets: [\"localhost:9090\"]
        labels:
          app: \"prometheus\"
";
        let cfg = parse(text).unwrap();
        assert_eq!(cfg.global.scrape_interval, secs(15));
        assert_eq!(cfg.global.scrape_timeout, secs(10));
        assert!(cfg.rule_files.is_empty());
        assert_eq!(cfg.alerting.alertmanagers.len(), 1);
        assert!(
            cfg.alerting.alertmanagers[0].static_configs[0]
                .targets
                .is_empty()
        );
        let job = cfg.scrape_config("prometheus").unwrap();
        assert_eq!(job.scrape_interval, secs(15));
        assert_eq!(job.static_configs[0].labels["app"], "prometheus");
    }

    #[test]
    fn inheritance_from_global() {
        let cfg = parse(
            "global:\n  scrape_interval: 5s\n  sample_limit: 100\n  label_limit: 30\n\
             scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 1m\n    sample_limit: 9\n",
        )
        .unwrap();
        let a = cfg.scrape_config("a").unwrap();
        assert_eq!((a.scrape_interval, a.scrape_timeout), (secs(5), secs(5)));
        assert_eq!((a.sample_limit, a.label_limit), (100, 30));
        let b = cfg.scrape_config("b").unwrap();
        // The global timeout was derived from the global interval (5s) and stays below
        // the job's own interval.
        assert_eq!((b.scrape_interval, b.scrape_timeout), (secs(60), secs(5)));
        assert_eq!((b.sample_limit, b.label_limit), (9, 30));
        assert_eq!(b.scrape_protocols, ScrapeProtocol::DEFAULT);
    }

    /// Every check reports the file, the line and column of the section, and the key.
    #[test]
    fn validation_errors_name_line_and_key() {
        let f = "/etc/prometheus/prometheus.yml";
        let cases = [
            (
                "scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n",
                format!(
                    r#"{f}:4:5: scrape_configs[2].job_name: found multiple scrape configs with job name "a""#
                ),
            ),
            (
                "scrape_configs:\n  - job_name: slow\n    scrape_interval: 10s\n    scrape_timeout: 20s\n",
                format!(
                    r#"{f}:2:5: scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name "slow""#
                ),
            ),
            (
                "scrape_configs:\n  - job_name: ''\n",
                format!("{f}:2:5: scrape_configs[0].job_name: job_name is empty"),
            ),
            (
                "scrape_configs:\n  - metrics_path: /m\n",
                format!("{f}:2:5: scrape_configs[0].job_name: job_name is empty"),
            ),
            (
                "scrape_configs:\n  - job_name: x\n    scheme: htp\n",
                format!(
                    r#"{f}:2:5: scrape_configs[0].scheme: invalid scheme "htp" for scrape config with job name "x": must be "http" or "https""#
                ),
            ),
            (
                "scrape_configs:\n  - job_name: x\n    bearer_token: t\n    bearer_token_file: f\n",
                format!(
                    "{f}:2:5: scrape_configs[0].bearer_token: at most one of bearer_token & bearer_token_file must be configured"
                ),
            ),
            (
                "scrape_configs:\n  - job_name: x\n    authorization: {credentials: c}\n    basic_auth: {username: u}\n",
                format!(
                    "{f}:2:5: scrape_configs[0].authorization: at most one of basic_auth, oauth2 & authorization must be configured"
                ),
            ),
            (
                "global:\n  external_labels:\n    '': x\n",
                format!(r#"{f}:2:3: global.external_labels: "" is not a valid label name"#),
            ),
            (
                "global:\n  metric_name_validation_scheme: legacy\n  external_labels:\n    dc-name: x\n",
                format!(r#"{f}:2:3: global.external_labels: "dc-name" is not a valid label name"#),
            ),
            (
                "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
                format!(
                    "{f}:2:3: global.scrape_timeout: global scrape timeout greater than scrape interval"
                ),
            ),
            (
                "rule_files:\n  - ok.yml\n  - 'rules/*/x.yml'\n",
                format!(r#"{f}:3:5: rule_files[1]: invalid rule file path "rules/*/x.yml""#),
            ),
            (
                "remote_write:\n  - url: http://a\n    name: q\n  - url: http://b\n    name: q\n",
                format!(
                    r#"{f}:4:5: remote_write[1].name: found multiple remote write configs with job name "q""#
                ),
            ),
            (
                "remote_read:\n  - read_recent: true\n",
                format!("{f}:2:5: remote_read[0].url: url for remote_read is empty"),
            ),
            (
                "alerting:\n  alertmanagers:\n    - api_version: v1\n",
                format!(
                    "{f}:3:7: alerting.alertmanagers[0].api_version: expected Alertmanager api version to be one of [v2] but got v1"
                ),
            ),
            (
                "global:\n  metric_name_validation_scheme: legacy\nremote_write:\n  - url: http://a\n    write_relabel_configs:\n      - target_label: a.b\n",
                format!(
                    r#"{f}:4:5: remote_write[0].write_relabel_configs[0]: "a.b" is invalid 'target_label' for replace action"#
                ),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text).to_string(), want, "\n{text}");
        }
        let e = err("scrape_configs:\n  - job_name: a\n  - job_name: a\n");
        assert_eq!(e.key(), Some("scrape_configs[1].job_name"));
        assert_eq!(e.position().map(|p| p.line), Some(3));
    }

    #[test]
    fn schema_errors_name_line_column_and_key() {
        let f = "/etc/prometheus/prometheus.yml";
        let e = err(
            "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: x\n    scrape_intervall: 5s\n",
        );
        let s = e.to_string();
        assert!(
            s.starts_with(&format!(
                r#"{f}:5:5: unknown field "scrape_intervall", expected one of job_name, "#
            )),
            "{s}"
        );
        assert_eq!(e.key(), Some("scrape_intervall"));
        let e = err("scrape_config:\n  - job_name: x\n");
        assert!(
            e.to_string()
                .starts_with(&format!(r#"{f}:1:1: unknown field "scrape_config""#)),
            "{e}"
        );
        let e = err("global:\n  scrape_interval: 15x\n");
        assert!(e.to_string().starts_with(&format!("{f}:2:20: ")), "{e}");
        assert!(e.to_string().contains("15x"), "{e}");
        let e = err("scrape_configs:\n  - job_name: x\n    sample_limit: many\n");
        assert_eq!(e.position().map(|p| p.line), Some(3));
        let e = err("scrape_configs:\n  - job_name: x\n    body_size_limit: 10kB\n");
        assert!(e.to_string().contains(r#"invalid byte size "10kB""#), "{e}");
        let e = err("global: [\n");
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
    }

    #[test]
    fn invalid_relabel_rule_points_at_the_rule() {
        let e = err(
            "scrape_configs:\n  - job_name: x\n    relabel_configs:\n      - source_labels: [a]\n        action: hashmod\n        target_label: h\n",
        );
        assert_eq!(
            e.to_string(),
            "/etc/prometheus/prometheus.yml:4:9: relabel configuration for hashmod requires non-zero modulus"
        );
        // A bad regex is reported at the regex itself.
        let e = err("alerting:\n  alert_relabel_configs:\n    - action: keep\n      regex: '('\n");
        assert_eq!(e.position().map(|p| p.line), Some(4));
        assert!(
            e.to_string().contains(r#"invalid regular expression "(""#),
            "{e}"
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let text = "\
global:
  query_log_file: logs/q.log
rule_files: [rules/*.yml, /abs/r.yml]
scrape_configs:
  - job_name: x
    file_sd_configs: [{files: [sd/*.json]}]
    basic_auth: {username: u, password_file: ../pw}
alerting:
  alertmanagers:
    - tls_config: {ca_file: ca.pem}
remote_write:
  - url: http://rw
    authorization: {credentials_file: tok}
";
        let cfg = parse(text).unwrap();
        assert_eq!(
            cfg.global.query_log_file.as_deref(),
            Some("/etc/prometheus/logs/q.log")
        );
        assert_eq!(
            cfg.rule_files,
            ["/etc/prometheus/rules/*.yml", "/abs/r.yml"]
        );
        let x = &cfg.scrape_configs[0];
        assert_eq!(x.file_sd_configs[0].files, ["/etc/prometheus/sd/*.json"]);
        let pw = x
            .basic_auth
            .as_ref()
            .and_then(|b| b.password_file.as_deref());
        assert_eq!(pw, Some("/etc/pw"));
        let ca = cfg.alerting.alertmanagers[0].tls_config.ca_file.as_deref();
        assert_eq!(ca, Some("/etc/prometheus/ca.pem"));
        let tok = cfg.remote_write[0].authorization.as_ref();
        assert_eq!(
            tok.and_then(|a| a.credentials_file.as_deref()),
            Some("/etc/prometheus/tok")
        );
        // A bare file name leaves paths relative to the working directory.
        let cfg = parse_with_env(text, "prometheus.yml", &|_| None).unwrap();
        assert_eq!(cfg.rule_files[0], "rules/*.yml");
    }

    #[test]
    fn external_labels_expand_environment() {
        let cfg = parse_with_env(
            "global:\n  external_labels:\n    dc: $DC\n    note: '$${DC}'\n    gone: ${NOPE}\n",
            "p.yml",
            &|n| (n == "DC").then(|| "eu-2".to_string()),
        )
        .unwrap();
        assert_eq!(cfg.global.external_labels["dc"], "eu-2");
        assert_eq!(cfg.global.external_labels["note"], "${DC}");
        assert!(!cfg.global.external_labels().has("gone"));
    }

    #[test]
    fn name_validation_reaches_relabel_rules() {
        let cfg = parse(
            "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n    relabel_configs: [{target_label: x}]\n  - job_name: b\n    metric_name_validation_scheme: utf8\n    relabel_configs: [{target_label: x.y}]\n",
        )
        .unwrap();
        assert_eq!(
            cfg.scrape_configs[0].relabel_configs[0].name_validation,
            NameValidation::Legacy
        );
        assert_eq!(
            cfg.scrape_configs[1].relabel_configs[0].name_validation,
            NameValidation::Utf8
        );
    }
}
