//! File paths in the config: relative ones are relative to the config file's directory,
//! joined and cleaned the way Go's `filepath.Join` does so that printed configs match
//! Prometheus's. Pure string work; nothing here touches the file system.

/// The directory part of `filename`, as Go's `filepath.Dir` gives it (`.` for a bare
/// name).
pub(crate) fn dir_of(filename: &str) -> String {
    match filename.rfind('/') {
        Some(i) => clean(&filename[..=i]),
        None => ".".to_string(),
    }
}

/// `path` unchanged when empty or absolute, else `dir/path` cleaned.
pub(crate) fn join_dir(dir: &str, path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        return path.to_string();
    }
    clean(&format!("{dir}/{path}"))
}

/// Lexical cleaning as Go's `path.Clean`: no empty or `.` elements, `..` folded into the
/// element before it, `/..` at the root dropped.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Prometheus's rule for `rule_files` entries: a glob may only appear in the last path
/// element (`^[^*]*(\*[^/]*)?$`).
pub(crate) fn is_valid_rule_path(path: &str) -> bool {
    match path.find('*') {
        None => true,
        Some(i) => !path[i + 1..].contains(['*', '/']),
    }
}

/// Prometheus's rule for `file_sd_configs` file names: a glob only in the last element,
/// and a `.json`, `.yml` or `.yaml` extension (any letter case as Prometheus lists).
pub(crate) fn is_valid_file_sd_path(path: &str) -> bool {
    let has_extension = ["json", "yml", "yaml", "JSON", "YML", "YAML"]
        .iter()
        .any(|ext| path.strip_suffix(ext).is_some_and(|p| p.ends_with('.')));
    has_extension && is_valid_rule_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_like_go() {
        assert_eq!(join_dir(".", "rules/a.yml"), "rules/a.yml");
        assert_eq!(
            join_dir("/etc/prometheus", "rules/*.yml"),
            "/etc/prometheus/rules/*.yml"
        );
        assert_eq!(join_dir("/etc/prometheus", "../x"), "/etc/x");
        assert_eq!(join_dir("/etc/prometheus", "/abs/x"), "/abs/x");
        assert_eq!(join_dir("/etc/prometheus", ""), "");
        assert_eq!(join_dir("conf", "./a//b/"), "conf/a/b");
        assert_eq!(join_dir("..", "../a"), "../../a");
        assert_eq!(join_dir("/", "../../a"), "/a");
    }

    #[test]
    fn dirs_like_go() {
        assert_eq!(dir_of("prometheus.yml"), ".");
        assert_eq!(dir_of("/etc/prometheus/prometheus.yml"), "/etc/prometheus");
        assert_eq!(dir_of("conf/p.yml"), "conf");
        assert_eq!(dir_of("/p.yml"), "/");
    }

    #[test]
    fn rule_and_sd_paths() {
        assert!(is_valid_rule_path("rules/*.yml"));
        assert!(is_valid_rule_path("a.yml"));
        assert!(!is_valid_rule_path("rules/*/a.yml"));
        assert!(!is_valid_rule_path("r*/*.yml"));
        assert!(is_valid_file_sd_path("targets/*.json"));
        assert!(is_valid_file_sd_path("t.YAML"));
        assert!(!is_valid_file_sd_path("t.txt"));
        assert!(!is_valid_file_sd_path("yml"));
        assert!(!is_valid_file_sd_path("*/t.json"));
    }
}
