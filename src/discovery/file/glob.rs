//! File SD path patterns: which patterns a config may use, and their expansion into file
//! paths with the results Go's `filepath.Glob` gives Prometheus, so `__meta_filepath`
//! values (and relabel rules matching them) come out the same. Blocking I/O: call it off
//! the async threads.

use super::FileSdError;
use std::collections::BTreeSet;

/// Checks a `files` entry as Prometheus does: it names a `.json`, `.yml` or `.yaml` file
/// (extension all lower or all upper case), and `*` may appear in the last path element
/// only.
pub fn validate_pattern(pattern: &str) -> Result<(), FileSdError> {
    let invalid = || FileSdError::InvalidPath(pattern.to_string());
    let (stem, ext) = pattern.rsplit_once('.').ok_or_else(invalid)?;
    if !matches!(ext, "json" | "yml" | "yaml" | "JSON" | "YML" | "YAML") {
        return Err(invalid());
    }
    // A `*` is allowed only after the last `/` of the part before the extension.
    if let Some(star) = stem.find('*')
        && stem[star..].contains('/')
    {
        return Err(invalid());
    }
    Ok(())
}

/// Expands every pattern and returns the matching paths, deduplicated and sorted. A
/// pattern without glob metacharacters names its file verbatim (if it exists), as in Go;
/// glob matches come back lexically cleaned (`./a/../b/x.json` → `b/x.json`), as Go's
/// `filepath.Join` leaves them. Bad patterns and unreadable directories are logged and
/// skipped: one broken pattern must not hide the files of the others.
pub fn expand(patterns: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in patterns {
        if !has_meta(p) {
            if std::fs::symlink_metadata(p).is_ok() {
                out.insert(p.clone());
            }
            continue;
        }
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            // Go's `*` matches a leading dot too.
            require_literal_leading_dot: false,
        };
        let paths = match glob::glob_with(&to_glob_crate_syntax(p), opts) {
            Ok(paths) => paths,
            Err(err) => {
                tracing::error!(glob = %p, "file SD: error expanding glob {p:?}: {err}");
                continue;
            }
        };
        for entry in paths {
            match entry {
                Ok(path) => match path.to_str() {
                    Some(s) => {
                        out.insert(clean(s));
                    }
                    None => tracing::error!(
                        glob = %p,
                        "file SD: skipping non-UTF-8 path {}", path.display()
                    ),
                },
                // Go's Glob ignores I/O errors while reading directories; we say so.
                Err(err) => tracing::warn!(glob = %p, "file SD: {err}"),
            }
        }
    }
    out
}

fn has_meta(p: &str) -> bool {
    p.contains(['*', '?', '[', '\\'])
}

/// Rewrites Go `filepath.Match` syntax into the glob crate's: `[^...]` negation becomes
/// `[!...]`, `\x` escapes become `[x]` classes, and runs of `*` become one `*` (Go has no
/// recursive `**`; the crate would reject `**` inside a name).
fn to_glob_crate_syntax(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 4);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if in_class => out.push(e),
                Some(e @ ('*' | '?' | '[' | ']')) => {
                    out.push('[');
                    out.push(e);
                    out.push(']');
                }
                Some(e) => out.push(e),
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('!');
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '*' if !in_class => {
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push('*');
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `path.Clean`, lexically: collapses `//` and `.`, resolves `..` against earlier
/// elements, never touches the disk.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_like_prometheus() {
        for ok in [
            "a.json",
            "dir/*.yml",
            "/abs/dir/x*y.YAML",
            "d/[ab]?.json",
            "*.json",
        ] {
            assert!(validate_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a.txt",
            "*/x.json",
            "a.Json",
            "dir/*",
            "json",
            "targets/*/x.yml",
        ] {
            assert!(
                matches!(validate_pattern(bad), Err(FileSdError::InvalidPath(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn go_syntax_is_translated() {
        assert_eq!(to_glob_crate_syntax("a/[^x]*.json"), "a/[!x]*.json");
        assert_eq!(to_glob_crate_syntax("a/**.json"), "a/*.json");
        assert_eq!(to_glob_crate_syntax(r"a/\*x.json"), "a/[*]x.json");
        assert_eq!(to_glob_crate_syntax(r"a/\q.json"), "a/q.json");
        assert_eq!(to_glob_crate_syntax("a/[*]*.json"), "a/[*]*.json");
    }

    #[test]
    fn clean_is_lexical() {
        assert_eq!(clean("./a/../b//x.json"), "b/x.json");
        assert_eq!(clean("../x.json"), "../x.json");
        assert_eq!(clean("/../x.json"), "/x.json");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("/tmp/./sd/x.yml"), "/tmp/sd/x.yml");
    }

    #[test]
    fn expand_matches_files_and_keeps_literal_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        for f in ["a.json", "b.json", ".hidden.json", "c.yml", "sub.json.bak"] {
            std::fs::write(dir.path().join(f), "[]").unwrap();
        }
        let got = expand(&[
            format!("{d}/*.json"),
            format!("{d}/./c.yml"),
            format!("{d}/missing.json"),
            format!("{d}/[^a].json"),
        ]);
        let want: BTreeSet<String> = [
            format!("{d}/.hidden.json"),
            format!("{d}/a.json"),
            format!("{d}/b.json"),
            // Without metacharacters the name is used as written, `./` and all.
            format!("{d}/./c.yml"),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn bad_glob_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        let d = dir.path().to_str().unwrap();
        let got = expand(&[format!("{d}/[.json"), format!("{d}/*.json")]);
        assert_eq!(got.len(), 1);
    }
}
