//! Applying relabel rules to a label set, with Prometheus's semantics for every action.
//! This runs for every scraped sample that has `metric_relabel_configs`, so the paths
//! that change nothing allocate nothing: a `keep` that keeps, a `drop` that does not
//! drop, `keepequal`/`dropequal`, a `replace` whose regex does not match or whose
//! constant replacement is already there, `hashmod`/`lowercase`/`uppercase` that write
//! the value already there, and label actions that match no name. Source values are
//! joined into a reusable per-thread buffer and labels are only written when they change.
//! (A `replace` with `$` references and a regex other than the default `(.*)` needs
//! capture slots when it matches, which allocate.)

use super::expand::{Group, captured, expand, whole_value};
use super::rule::{Action, DEFAULT_PATTERN, RelabelConfig};
use crate::model::LabelsBuilder;
use md5::{Digest, Md5};
use std::cell::RefCell;
use std::fmt::Write as _;

/// Buffers reused across calls on one thread.
#[derive(Default)]
struct Scratch {
    joined: String,
    target: String,
    value: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Applies `cfgs` in order to `labels`. Returns false as soon as a rule drops the set
/// (`keep`, `drop`, `keepequal`, `dropequal`); `labels` is then partly rewritten and
/// should be discarded.
pub fn process(labels: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    if cfgs.is_empty() {
        return true;
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => apply_all(labels, cfgs, &mut scratch),
        // Only reachable if a caller relabels from inside relabeling; stay correct.
        Err(_) => apply_all(labels, cfgs, &mut Scratch::default()),
    })
}

fn apply_all(lb: &mut LabelsBuilder, cfgs: &[RelabelConfig], scratch: &mut Scratch) -> bool {
    cfgs.iter().all(|cfg| apply(cfg, lb, scratch))
}

fn apply(cfg: &RelabelConfig, lb: &mut LabelsBuilder, scratch: &mut Scratch) -> bool {
    let Scratch {
        joined,
        target,
        value,
    } = scratch;
    joined.clear();
    for (i, name) in cfg.source_labels.iter().enumerate() {
        if i > 0 {
            joined.push_str(&cfg.separator);
        }
        joined.push_str(lb.get(name).unwrap_or(""));
    }
    let val = joined.as_str();
    match cfg.action {
        Action::Drop => return !cfg.regex.is_match(val),
        Action::Keep => return cfg.regex.is_match(val),
        Action::DropEqual => return lb.get(&cfg.target_label).unwrap_or("") != val,
        Action::KeepEqual => return lb.get(&cfg.target_label).unwrap_or("") == val,
        Action::Replace => replace(cfg, lb, val, target, value),
        // Mapped per character, like Go's `strings.ToLower`/`ToUpper` (so a final Σ
        // becomes σ); Rust still expands the few characters Go maps one-to-one (ß → SS).
        Action::Lowercase => {
            value.clear();
            value.extend(val.chars().flat_map(char::to_lowercase));
            set_if_changed(lb, &cfg.target_label, value);
        }
        Action::Uppercase => {
            value.clear();
            value.extend(val.chars().flat_map(char::to_uppercase));
            set_if_changed(lb, &cfg.target_label, value);
        }
        Action::HashMod => {
            let digest = Md5::digest(val.as_bytes());
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&digest[8..]);
            // Validation guarantees a non-zero modulus; `max(1)` keeps a hand-built
            // config from dividing by zero.
            let m = u64::from_be_bytes(tail) % cfg.modulus.max(1);
            value.clear();
            let _ = write!(value, "{m}");
            set_if_changed(lb, &cfg.target_label, value);
        }
        Action::LabelMap => label_map(cfg, lb, value),
        Action::LabelDrop => {
            lb.retain(|l| !cfg.regex.is_match(&l.name));
        }
        Action::LabelKeep => {
            lb.retain(|l| cfg.regex.is_match(&l.name));
        }
    }
    true
}

fn replace(
    cfg: &RelabelConfig,
    lb: &mut LabelsBuilder,
    val: &str,
    target: &mut String,
    value: &mut String,
) {
    // The default `(.*)` matches everything. For other regexes, matching first keeps
    // the common "does not match" case free of the capture-slot allocation below.
    let default_regex = cfg.regex.as_str() == DEFAULT_PATTERN;
    if !default_regex && !cfg.regex.is_match(val) {
        return;
    }
    if !cfg.target_label.contains('$') && !cfg.replacement.contains('$') {
        // Nothing to expand. The target has no references, so load-time validation
        // already vouched for it.
        set_if_changed(lb, &cfg.target_label, &cfg.replacement);
        return;
    }
    if default_regex {
        expand_and_set(cfg, lb, whole_value(val), target, value);
        return;
    }
    let re = cfg.regex.compiled();
    let mut caps = re.capture_locations();
    if re.captures_read(&mut caps, val).is_some() {
        expand_and_set(cfg, lb, captured(re, &caps, val), target, value);
    }
}

fn expand_and_set<'h>(
    cfg: &RelabelConfig,
    lb: &mut LabelsBuilder,
    groups: impl Fn(Group<'_>) -> Option<&'h str>,
    target: &mut String,
    value: &mut String,
) {
    target.clear();
    expand(target, &cfg.target_label, &groups);
    if !cfg.name_validation.is_valid_label_name(target) {
        return;
    }
    value.clear();
    expand(value, &cfg.replacement, &groups);
    set_if_changed(lb, target, value);
}

/// Copies every label whose name matches to the name the replacement expands to. Like
/// Prometheus, it works from a snapshot taken before the rule starts, so labels it
/// creates are not mapped again. Prometheus visits labels added earlier in the pipeline
/// after the original ones; cairn visits them in name order, which only matters when
/// two labels map to the same new name.
fn label_map(cfg: &RelabelConfig, lb: &mut LabelsBuilder, new_name: &mut String) {
    let matching: Vec<(String, String)> = lb
        .iter()
        .filter(|l| cfg.regex.is_match(&l.name))
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    if matching.is_empty() {
        return;
    }
    let re = cfg.regex.compiled();
    let mut caps = re.capture_locations();
    for (name, value) in &matching {
        if re.captures_read(&mut caps, name).is_none() {
            continue;
        }
        new_name.clear();
        expand(new_name, &cfg.replacement, captured(re, &caps, name));
        // Prometheus would write a label with an empty name here; cairn's label sets
        // cannot hold one, so the copy is skipped.
        if !new_name.is_empty() {
            set_if_changed(lb, new_name, value);
        }
    }
}

/// Sets `name` to `value` (deleting it when `value` is empty) unless it already holds
/// exactly that, so unchanged labels cost no allocation.
fn set_if_changed(lb: &mut LabelsBuilder, name: &str, value: &str) {
    if value.is_empty() {
        lb.del(name);
    } else if lb.get(name) != Some(value) {
        lb.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::relabel::NameValidation;

    fn rule(yaml: &str) -> RelabelConfig {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    /// Runs `rules` over `input`; `None` when the set is dropped.
    fn run(rules: &[RelabelConfig], input: &[(&str, &str)]) -> Option<Labels> {
        let mut lb = Labels::from_pairs(input.iter().copied()).builder();
        process(&mut lb, rules).then(|| lb.labels())
    }

    fn labels(pairs: &[(&str, &str)]) -> Option<Labels> {
        Some(Labels::from_pairs(pairs.iter().copied()))
    }

    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        Option<&'a [(&'a str, &'a str)]>,
    );

    fn table(cases: &[Case<'_>]) {
        for (yaml, input, want) in cases {
            let got = run(&[rule(yaml)], input);
            let want = want.and_then(labels);
            assert_eq!(got, want, "rule {yaml:?} on {input:?}");
        }
    }

    #[test]
    fn replace() {
        table(&[
            // Defaults: regex (.*), replacement $1: copy a value.
            (
                "source_labels: [a]\ntarget_label: b",
                &[("a", "x")],
                Some(&[("a", "x"), ("b", "x")]),
            ),
            // Joined with the separator, then captured.
            (
                "source_labels: [a, b]\nregex: '(.*);(.*)'\ntarget_label: c\nreplacement: '$2-$1'",
                &[("a", "1"), ("b", "2")],
                Some(&[("a", "1"), ("b", "2"), ("c", "2-1")]),
            ),
            // Missing source labels join as empty strings.
            (
                "source_labels: [a, missing]\nseparator: '/'\ntarget_label: c",
                &[("a", "1")],
                Some(&[("a", "1"), ("c", "1/")]),
            ),
            // No match: nothing happens.
            (
                "source_labels: [a]\nregex: 'y'\ntarget_label: b\nreplacement: z",
                &[("a", "x")],
                Some(&[("a", "x")]),
            ),
            // An empty result deletes the target.
            (
                "source_labels: [a]\ntarget_label: b",
                &[("b", "old")],
                Some(&[]),
            ),
            // A constant replacement with no source labels: regex (.*) matches "".
            (
                "target_label: env\nreplacement: prod",
                &[],
                Some(&[("env", "prod")]),
            ),
            // Dynamic target name.
            (
                "source_labels: [k]\nregex: '(.+)'\ntarget_label: 'tag_${1}'\nreplacement: yes",
                &[("k", "web")],
                Some(&[("k", "web"), ("tag_web", "yes")]),
            ),
            // `$1x` is group "1x", which does not exist: an empty name does nothing.
            (
                "source_labels: [k]\nregex: '(.+)'\ntarget_label: '$1x'\nreplacement: v",
                &[("k", "web")],
                Some(&[("k", "web")]),
            ),
            // `${1}x` is group 1 then "x".
            (
                "source_labels: [k]\nregex: '(.+)'\ntarget_label: '${1}x'\nreplacement: v",
                &[("k", "web")],
                Some(&[("k", "web"), ("webx", "v")]),
            ),
            // Named groups.
            (
                "source_labels: [__address__]\nregex: '(?P<host>[^:]+):(?P<port>\\d+)'\ntarget_label: port\nreplacement: '$port'",
                &[("__address__", "h:9100")],
                Some(&[("__address__", "h:9100"), ("port", "9100")]),
            ),
            // Overwrites an existing value.
            (
                "source_labels: [a]\ntarget_label: b\nreplacement: 'x$1'",
                &[("a", "1"), ("b", "old")],
                Some(&[("a", "1"), ("b", "x1")]),
            ),
            // Dot matches newlines in values.
            (
                "source_labels: [a]\nregex: 'x.y'\ntarget_label: b\nreplacement: ok",
                &[("a", "x\ny")],
                Some(&[("a", "x\ny"), ("b", "ok")]),
            ),
        ]);
    }

    #[test]
    fn replace_target_must_expand_to_a_valid_name() {
        let mut r = rule("source_labels: [k]\nregex: '(.*)'\ntarget_label: '$1'\nreplacement: v");
        assert_eq!(
            run(&[r.clone()], &[("k", "a-b")]),
            labels(&[("k", "a-b"), ("a-b", "v")])
        );
        r.name_validation = NameValidation::Legacy;
        assert_eq!(run(&[r.clone()], &[("k", "a-b")]), labels(&[("k", "a-b")]));
        assert_eq!(
            run(&[r.clone()], &[("k", "ok_1")]),
            labels(&[("k", "ok_1"), ("ok_1", "v")])
        );
        // An empty expansion is invalid under either scheme.
        r.name_validation = NameValidation::Utf8;
        assert_eq!(run(&[r], &[("j", "x")]), labels(&[("j", "x")]));
    }

    #[test]
    fn keep_and_drop() {
        table(&[
            (
                "source_labels: [a]\nregex: 'x|y'\naction: keep",
                &[("a", "y")],
                Some(&[("a", "y")]),
            ),
            (
                "source_labels: [a]\nregex: 'x|y'\naction: keep",
                &[("a", "xy")],
                None,
            ),
            // A missing label is the empty string.
            (
                "source_labels: [a]\nregex: '.*'\naction: keep",
                &[],
                Some(&[]),
            ),
            ("source_labels: [a]\nregex: '.+'\naction: keep", &[], None),
            (
                "source_labels: [a]\nregex: 'x'\naction: drop",
                &[("a", "x")],
                None,
            ),
            (
                "source_labels: [a]\nregex: 'x'\naction: drop",
                &[("a", "xx")],
                Some(&[("a", "xx")]),
            ),
            (
                "source_labels: [a, b]\nregex: '1;2'\naction: drop",
                &[("a", "1"), ("b", "2")],
                None,
            ),
            // Without source labels the joined value is "".
            ("regex: ''\naction: drop", &[("a", "1")], None),
        ]);
    }

    #[test]
    fn keepequal_and_dropequal() {
        table(&[
            (
                "source_labels: [a]\ntarget_label: b\naction: keepequal",
                &[("a", "1"), ("b", "1")],
                Some(&[("a", "1"), ("b", "1")]),
            ),
            (
                "source_labels: [a]\ntarget_label: b\naction: keepequal",
                &[("a", "1"), ("b", "2")],
                None,
            ),
            // Both absent: "" == "".
            (
                "source_labels: [a]\ntarget_label: b\naction: keepequal",
                &[],
                Some(&[]),
            ),
            (
                "source_labels: [a]\ntarget_label: b\naction: dropequal",
                &[("a", "1"), ("b", "1")],
                None,
            ),
            (
                "source_labels: [a]\ntarget_label: b\naction: dropequal",
                &[("a", "1")],
                Some(&[("a", "1")]),
            ),
            // Joined values are compared.
            (
                "source_labels: [a, b]\ntarget_label: c\naction: keepequal",
                &[("a", "1"), ("b", "2"), ("c", "1;2")],
                Some(&[("a", "1"), ("b", "2"), ("c", "1;2")]),
            ),
        ]);
    }

    #[test]
    fn hashmod() {
        // Values computed independently: md5 of the joined value, last 8 bytes as a
        // big-endian u64, modulo the modulus.
        let r = rule("source_labels: [a]\nmodulus: 1000\ntarget_label: h\naction: hashmod");
        for (input, want) in [("foo", "696"), ("", "958"), ("10.0.0.1:9100", "645")] {
            let got = run(std::slice::from_ref(&r), &[("a", input)]);
            let got = got.as_ref().and_then(|l| l.get("h")).unwrap_or("");
            assert_eq!(got, want, "hashmod of {input:?}");
        }
        let r = rule("source_labels: [a]\nmodulus: 1\ntarget_label: h\naction: hashmod");
        assert_eq!(run(&[r], &[("a", "x")]), labels(&[("a", "x"), ("h", "0")]));
    }

    #[test]
    fn labelmap() {
        table(&[
            (
                "regex: '__meta_kubernetes_pod_label_(.+)'\naction: labelmap",
                &[("__meta_kubernetes_pod_label_app", "web"), ("job", "k")],
                Some(&[
                    ("__meta_kubernetes_pod_label_app", "web"),
                    ("app", "web"),
                    ("job", "k"),
                ]),
            ),
            (
                "regex: '__meta_(.+)_(.+)'\nreplacement: '${2}_$1'\naction: labelmap",
                &[("__meta_a_b", "v")],
                Some(&[("__meta_a_b", "v"), ("b_a", "v")]),
            ),
            // Overwrites an existing label of the new name.
            (
                "regex: 'x_(.+)'\naction: labelmap",
                &[("x_job", "new"), ("job", "old")],
                Some(&[("job", "new"), ("x_job", "new")]),
            ),
            // Labels created by the rule are not mapped again.
            (
                "regex: 'x(.+)'\naction: labelmap",
                &[("xxa", "1")],
                Some(&[("xa", "1"), ("xxa", "1")]),
            ),
            // An empty new name is skipped.
            (
                "regex: '(x)'\nreplacement: '$2'\naction: labelmap",
                &[("x", "1")],
                Some(&[("x", "1")]),
            ),
        ]);
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        table(&[
            (
                "regex: '__meta_.*'\naction: labeldrop",
                &[("__meta_a", "1"), ("__meta_b", "2"), ("job", "j")],
                Some(&[("job", "j")]),
            ),
            // Names must match fully.
            (
                "regex: 'job'\naction: labeldrop",
                &[("jobs", "1")],
                Some(&[("jobs", "1")]),
            ),
            (
                "regex: 'job|instance'\naction: labelkeep",
                &[("job", "j"), ("instance", "i"), ("x", "1")],
                Some(&[("instance", "i"), ("job", "j")]),
            ),
            (
                "regex: 'nothing'\naction: labelkeep",
                &[("a", "1")],
                Some(&[]),
            ),
        ]);
    }

    #[test]
    fn lowercase_and_uppercase() {
        table(&[
            (
                "source_labels: [a]\ntarget_label: a\naction: lowercase",
                &[("a", "MiXeD Ä")],
                Some(&[("a", "mixed ä")]),
            ),
            (
                "source_labels: [a, b]\ntarget_label: c\naction: uppercase",
                &[("a", "x"), ("b", "y")],
                Some(&[("a", "x"), ("b", "y"), ("c", "X;Y")]),
            ),
            // An empty result deletes the target.
            (
                "source_labels: [a]\ntarget_label: c\naction: lowercase",
                &[("c", "z")],
                Some(&[]),
            ),
        ]);
    }

    #[test]
    fn rules_apply_in_order_and_stop_at_a_drop() {
        let rules = [
            rule("source_labels: [a]\ntarget_label: b"),
            rule("source_labels: [b]\nregex: 'x'\naction: drop"),
            rule("target_label: never\nreplacement: set"),
        ];
        assert_eq!(run(&rules, &[("a", "x")]), None);
        assert_eq!(
            run(&rules, &[("a", "y")]),
            labels(&[("a", "y"), ("b", "y"), ("never", "set")])
        );
        assert_eq!(run(&[], &[("a", "1")]), labels(&[("a", "1")]));
    }
}
