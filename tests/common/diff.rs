//! Readable differences between what an oracle (Prometheus) holds and what cairn holds,
//! for panic messages that say which series and samples differ instead of dumping both.

use std::collections::BTreeMap;
use std::fmt::Debug;

/// `Ok` when `got` equals `want`; otherwise `Err` with the counts of missing, extra and
/// differing keys and up to `show` examples of each.
pub fn compare_maps<K: Ord + Debug, V: PartialEq + Debug>(
    what: &str,
    want: &BTreeMap<K, V>,
    got: &BTreeMap<K, V>,
    show: usize,
) -> Result<(), String> {
    let missing: Vec<&K> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&K> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let differing: Vec<String> = want
        .iter()
        .filter_map(|(k, w)| {
            got.get(k)
                .filter(|g| *g != w)
                .map(|g| format!("{k:?}: want {w:?}, got {g:?}"))
        })
        .collect();
    if missing.is_empty() && extra.is_empty() && differing.is_empty() {
        return Ok(());
    }
    let mut report = format!(
        "{what}: {} of {} missing in cairn, {} extra, {} differ",
        missing.len(),
        want.len(),
        extra.len(),
        differing.len(),
    );
    let sections = [
        (
            "missing",
            missing.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>(),
        ),
        ("extra", extra.iter().map(|k| format!("{k:?}")).collect()),
        ("differ", differing),
    ];
    for (title, items) in sections {
        if !items.is_empty() {
            report.push_str(&format!("\n    {title}:"));
            for item in items.iter().take(show) {
                report.push_str(&format!("\n      {item}"));
            }
        }
    }
    Err(report)
}
