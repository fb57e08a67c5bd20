//! Replacement templates (`$1`, `${1}`, `$name`, `${name}`, `$$`) expanded exactly as
//! Go's `Regexp.Expand` does, because relabel configs written for Prometheus rely on its
//! quirks: a reference takes the longest run of letters, digits and `_`, so `$1x` names
//! the group `1x` (which usually does not exist and expands to nothing); an unknown
//! group or one that did not take part in the match expands to nothing; a `$` not
//! followed by a name stays literal. The `regex` crate's own `expand` differs in these
//! corners, so it is not used.

use regex::{CaptureLocations, Regex};

/// A group reference in a template: `$1` / `${1}` or `$name` / `${name}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group<'t> {
    Index(usize),
    Name(&'t str),
}

/// Appends `template` to `dst` with every reference replaced by the text `group` gives
/// for it (nothing when it gives `None`). Allocates only if `dst` must grow.
pub(crate) fn expand<'h>(
    dst: &mut String,
    template: &str,
    group: impl Fn(Group<'_>) -> Option<&'h str>,
) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        dst.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            dst.push('$');
            rest = after;
            continue;
        }
        let Some(reference) = parse_reference(rest) else {
            dst.push('$');
            continue;
        };
        rest = reference.rest;
        let g = match reference.number {
            Some(n) => Group::Index(n),
            None => Group::Name(reference.name),
        };
        if let Some(text) = group(g) {
            dst.push_str(text);
        }
    }
    dst.push_str(rest);
}

/// The groups `re` captured into `caps` from `haystack`.
pub(crate) fn captured<'h>(
    re: &Regex,
    caps: &CaptureLocations,
    haystack: &'h str,
) -> impl Fn(Group<'_>) -> Option<&'h str> {
    move |g| {
        let index = match g {
            Group::Index(i) => i,
            Group::Name(name) => re.capture_names().position(|n| n == Some(name))?,
        };
        caps.get(index).map(|(start, end)| &haystack[start..end])
    }
}

/// The groups of the default relabel regex `(.*)` matched against `haystack`: groups 0
/// and 1 are the whole value, nothing else exists. Lets the most common rule skip the
/// capture machinery and its allocation.
pub(crate) fn whole_value<'h>(haystack: &'h str) -> impl Fn(Group<'_>) -> Option<&'h str> {
    move |g| matches!(g, Group::Index(0 | 1)).then_some(haystack)
}

struct Reference<'t> {
    name: &'t str,
    /// The group index when the name is a number without leading zeros below 10^8,
    /// as Go decides; otherwise the name is looked up among named groups.
    number: Option<usize>,
    rest: &'t str,
}

/// Parses what follows a `$`: `name` or `{name}`. `None` when malformed (empty name,
/// missing `}`), in which case Go keeps the `$` as text.
fn parse_reference(s: &str) -> Option<Reference<'_>> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    // Go accepts Unicode letters and digits here; `is_alphanumeric` is the nearest
    // std predicate (slightly broader for exotic numerals, which never name a group).
    let len = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let rest = if braced {
        body[len..].strip_prefix('}')?
    } else {
        &body[len..]
    };
    Some(Reference {
        name,
        number: group_number(name),
        rest,
    })
}

fn group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, template: &str, haystack: &str) -> String {
        let re = Regex::new(&format!("^(?s:{pattern})$")).unwrap();
        let mut caps = re.capture_locations();
        assert!(re.captures_read(&mut caps, haystack).is_some());
        let mut out = String::new();
        expand(&mut out, template, captured(&re, &caps, haystack));
        out
    }

    #[test]
    fn go_expand_semantics() {
        let cases = [
            ("(a)(b)", "$1-$2", "ab", "a-b"),
            ("(a)(b)", "${1}x", "ab", "ax"),
            // `$1x` names the group "1x", which does not exist.
            ("(a)(b)", "$1x", "ab", ""),
            ("(a)(b)", "$2$1", "ab", "ba"),
            ("(a)", "$0", "a", "a"),
            ("(a)", "$9", "a", ""),
            ("(a)", "$$1", "a", "$1"),
            ("(a)", "cost: $", "a", "cost: $"),
            ("(a)", "$-", "a", "$-"),
            ("(a)", "${1", "a", "${1"),
            ("(a)", "${}", "a", "${}"),
            ("(a)", "$01", "a", ""),
            (
                "(?P<host>[^:]+):(?P<port>\\d+)",
                "$port/${host}",
                "h:80",
                "80/h",
            ),
            ("(?P<host>[^:]+):(\\d+)", "$hostname", "h:80", ""),
            ("(a)|(b)", "[$1][$2]", "b", "[][b]"),
            ("(.*)", "no refs", "x", "no refs"),
            ("(é)", "${1}ü", "é", "éü"),
        ];
        for (pattern, template, haystack, want) in cases {
            assert_eq!(
                run(pattern, template, haystack),
                want,
                "{pattern} {template}"
            );
        }
    }

    #[test]
    fn whole_value_matches_the_default_regex() {
        for template in ["$1", "${1}", "$0-$1", "x$2y", "$$1", "$name", "${1}_total"] {
            let mut fast = String::new();
            expand(&mut fast, template, whole_value("v:1"));
            assert_eq!(fast, run("(.*)", template, "v:1"), "{template}");
        }
    }

    #[test]
    fn huge_group_number_is_a_name() {
        // Go stops counting once the value reaches 10^8, so nine digits still count.
        assert_eq!(group_number("123456789"), Some(123_456_789));
        assert_eq!(group_number("1234567890"), None);
        assert_eq!(group_number("12"), Some(12));
        assert_eq!(run("(a)", "$1234567890", "a"), "");
    }
}
