//! The PromQL conformance runner: reads every `.test` script of Prometheus's suite (see
//! `../shared/promqltest/README.md`), loads its data into a real `tsdb::Db`, evaluates each
//! `eval` case with cairn's parser and engine, and compares as Prometheus's runner does.
//!
//! ```text
//! cargo test --test promqltest                                   # regressions only
//! PROMQLTEST_STRICT=1 cargo test --test promqltest               # every failure counts
//! PROMQLTEST_UPDATE_BASELINE=1 cargo test --test promqltest      # rewrite the baseline
//! PROMQLTEST_DIR=/path/to/promqltest PROMQLTEST_FILES=functions,operators \
//!     PROMQLTEST_VERBOSE=1 cargo test --test promqltest
//! ```
//!
//! - `PROMQLTEST_DIR`: the suite's folder; default `../shared/promqltest` beside the crate.
//! - A case is named `file:line` (the line of its `eval`). Each is passed, failed, or
//!   unsupported: it loads, queries or expects native histograms, the parser answers
//!   `ParseErrorKind::Unsupported`, the engine answers `EvalError::Unsupported`, or its
//!   result is right but it expects an annotation the engine does not report yet.
//!   Unsupported cases are listed by name, never hidden.
//! - The report goes to stderr (uncaptured): per file `<file>: P passed, F failed, U
//!   unsupported`, the failed cases with query and a short diff (the first 40 unless
//!   `PROMQLTEST_VERBOSE=1`), and a last line `N passed, M failed`.
//! - The test FAILS when a case listed in `tests/promqltest_baseline.txt` (cases known to
//!   pass) does not pass: a regression. Other failures do not fail it while the engine is
//!   being completed, unless `PROMQLTEST_STRICT=1`. `PROMQLTEST_UPDATE_BASELINE=1`
//!   rewrites the baseline with the cases passing now (for the files run; entries of other
//!   files are kept) and does not fail on regressions.
//! - Engine or parser errors and panics fail their case only; a malformed script block
//!   fails as a case named by its line.

mod promqltest {
    pub mod compare;
    pub mod exec;
    pub mod script;
}

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use promqltest::exec::{Env, Gap, Verdict};
use promqltest::script::{Command, parse_script};

/// Failed cases printed with their diff unless `PROMQLTEST_VERBOSE=1`.
const MAX_DETAILED: usize = 40;
/// A diff longer than this is cut in the report.
const MAX_DIFF: usize = 400;

struct Failure {
    line: usize,
    query: String,
    diff: String,
}

#[derive(Default)]
struct FileReport {
    name: String,
    passed: Vec<usize>,
    failed: Vec<Failure>,
    unsupported: BTreeMap<Gap, Vec<usize>>,
}

impl FileReport {
    fn unsupported_count(&self) -> usize {
        self.unsupported.values().map(Vec::len).sum()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn suite_dir() -> PathBuf {
    match std::env::var_os("PROMQLTEST_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/promqltest"),
    }
}

fn baseline_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promqltest_baseline.txt")
}

/// Runs one script file.
fn run_file(name: &str, text: &str) -> FileReport {
    let script = parse_script(text);
    let mut report = FileReport {
        name: name.to_string(),
        ..FileReport::default()
    };
    for e in script.errors {
        report.failed.push(Failure {
            line: e.line,
            query: "(script)".into(),
            diff: format!("malformed block: {}", e.msg),
        });
    }
    let mut env = match Env::new() {
        Ok(env) => env,
        Err(e) => {
            report.failed.push(Failure {
                line: 0,
                query: "(storage)".into(),
                diff: e,
            });
            return report;
        }
    };
    for cmd in script.commands {
        match cmd {
            Command::Load(l) => env.load(&l),
            Command::Clear => match Env::new() {
                Ok(fresh) => env = fresh,
                Err(e) => {
                    report.failed.push(Failure {
                        line: 0,
                        query: "(storage)".into(),
                        diff: e,
                    });
                    return report;
                }
            },
            Command::Eval(e) => match env.eval(&e) {
                Verdict::Pass => report.passed.push(e.line),
                Verdict::Fail(diff) => report.failed.push(Failure {
                    line: e.line,
                    query: e.query.clone(),
                    diff,
                }),
                Verdict::Unsupported(gap, _) => {
                    report.unsupported.entry(gap).or_default().push(e.line)
                }
            },
        }
    }
    report.failed.sort_by_key(|f| f.line);
    report
}

/// `lines` as `12, 15, 40`, wrapped.
fn line_list(lines: &[usize]) -> String {
    let parts: Vec<String> = lines.iter().map(usize::to_string).collect();
    let mut out = String::new();
    let mut width = 0;
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            out.push(',');
            if width > 80 {
                out.push_str("\n      ");
                width = 0;
            } else {
                out.push(' ');
            }
        }
        out.push_str(p);
        width += p.len() + 2;
    }
    out
}

fn cut(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None => one_line,
    }
}

fn render(reports: &[FileReport], verbose: bool) -> String {
    let mut out = String::from("\nPromQL conformance\n");
    for r in reports {
        out.push_str(&format!(
            "{}: {} passed, {} failed, {} unsupported\n",
            r.name,
            r.passed.len(),
            r.failed.len(),
            r.unsupported_count()
        ));
        for (gap, lines) in &r.unsupported {
            out.push_str(&format!(
                "    unsupported, {} ({}): lines {}\n",
                gap.describe(),
                lines.len(),
                line_list(lines)
            ));
        }
    }
    let mut shown = 0;
    let total_failed: usize = reports.iter().map(|r| r.failed.len()).sum();
    if total_failed > 0 {
        out.push_str("\nfailed cases:\n");
    }
    for r in reports {
        for f in &r.failed {
            if shown == MAX_DETAILED && !verbose {
                break;
            }
            shown += 1;
            out.push_str(&format!(
                "  {}:{}: {}\n      {}\n",
                r.name,
                f.line,
                cut(&f.query, 160),
                cut(&f.diff, MAX_DIFF)
            ));
        }
    }
    if shown < total_failed {
        out.push_str(&format!(
            "  ... and {} more (PROMQLTEST_VERBOSE=1 shows all); by name:\n",
            total_failed - shown
        ));
        for r in reports.iter().filter(|r| !r.failed.is_empty()) {
            let lines: Vec<usize> = r.failed.iter().map(|f| f.line).collect();
            out.push_str(&format!("    {}: {}\n", r.name, line_list(&lines)));
        }
    }
    let passed: usize = reports.iter().map(|r| r.passed.len()).sum();
    let unsupported: usize = reports.iter().map(FileReport::unsupported_count).sum();
    out.push_str(&format!("{unsupported} unsupported\n"));
    out.push_str(&format!("{passed} passed, {total_failed} failed\n"));
    out
}

fn read_baseline(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn write_baseline(path: &Path, cases: &BTreeSet<String>) -> std::io::Result<()> {
    let mut text = String::from(
        "# PromQL conformance cases (file:line of the eval) known to pass. tests/promqltest.rs\n\
         # fails when one of them stops passing. Rewrite with the cases passing now:\n\
         #   PROMQLTEST_UPDATE_BASELINE=1 cargo test --test promqltest\n",
    );
    for c in cases {
        text.push_str(c);
        text.push('\n');
    }
    std::fs::write(path, text)
}

#[test]
fn conformance() {
    let dir = suite_dir();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .collect(),
        Err(e) => panic!(
            "cannot read the PromQL suite at {}: {e}; set PROMQLTEST_DIR to the folder of \
             .test files (CI clones it as ../shared/promqltest beside the crate)",
            dir.display()
        ),
    };
    files.sort();
    if let Ok(only) = std::env::var("PROMQLTEST_FILES") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        files.retain(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            only.contains(&stem)
        });
    }
    assert!(!files.is_empty(), "no .test files in {}", dir.display());

    // One thread per file: files are independent, each with its own storage.
    let reports: Vec<FileReport> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|path| {
                s.spawn(move || {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    let name = name.unwrap_or_default();
                    match std::fs::read_to_string(path) {
                        Ok(text) => run_file(&name, &text),
                        Err(e) => FileReport {
                            failed: vec![Failure {
                                line: 0,
                                query: "(file)".into(),
                                diff: format!("cannot read {}: {e}", path.display()),
                            }],
                            name,
                            ..FileReport::default()
                        },
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a runner thread panicked outside a case"))
            .collect()
    });

    let verbose = env_flag("PROMQLTEST_VERBOSE");
    let mut text = render(&reports, verbose);

    let passing: BTreeSet<String> = reports
        .iter()
        .flat_map(|r| r.passed.iter().map(move |l| format!("{}:{l}", r.name)))
        .collect();
    let run_files: BTreeSet<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    let in_run = |case: &String| {
        case.rsplit_once(':')
            .is_some_and(|(f, _)| run_files.contains(f))
    };
    let path = baseline_path();
    let baseline = read_baseline(&path);
    let regressions: Vec<String> = baseline
        .iter()
        .filter(|c| in_run(c) && !passing.contains(*c))
        .cloned()
        .collect();
    let failed: usize = reports.iter().map(|r| r.failed.len()).sum();

    if env_flag("PROMQLTEST_UPDATE_BASELINE") {
        let mut next: BTreeSet<String> = baseline.into_iter().filter(|c| !in_run(c)).collect();
        next.extend(passing.iter().cloned());
        let written = write_baseline(&path, &next);
        text.push_str(&format!(
            "baseline {}: {} cases ({} dropped that no longer pass){}\n",
            path.display(),
            next.len(),
            regressions.len(),
            written
                .as_ref()
                .err()
                .map(|e| format!(", WRITE FAILED: {e}"))
                .unwrap_or_default()
        ));
        // The summary line must stay last.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        written.expect("writing the baseline");
        return;
    }
    // Written to stderr directly so the report shows even when the test passes.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    assert!(
        regressions.is_empty(),
        "{} baseline case(s) no longer pass: {}",
        regressions.len(),
        regressions.join(", ")
    );
    if env_flag("PROMQLTEST_STRICT") {
        assert_eq!(failed, 0, "PROMQLTEST_STRICT=1: {failed} case(s) failed");
    }
}
