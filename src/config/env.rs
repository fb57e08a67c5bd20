//! `$VAR` / `${VAR}` expansion in external label values, with the rules of Go's
//! `os.Expand` that Prometheus uses (and `$$` for a literal `$`). The environment is
//! passed in as a lookup function so tests need not touch the process environment.

/// Expands references in `s`; an unset variable expands to the empty string.
pub(crate) fn expand_env(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[copied..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            match name {
                Some("$") => out.push('$'),
                Some(name) => out.push_str(&lookup(name).unwrap_or_default()),
                // `$` followed by something that is not a name stays as it is.
                None if width == 0 => out.push('$'),
                // Malformed `${...`: Go drops the characters it consumed.
                None => {}
            }
            j += width;
            copied = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[copied.min(s.len())..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// The variable name after a `$` and how many bytes it spans (Go's `getShellName`).
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        return match s.find('}') {
            Some(1) => (None, 2),
            Some(i) => (Some(&s[1..i]), i + 1),
            None => (None, 1),
        };
    }
    if is_special(b[0]) {
        return (Some(&s[..1]), 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db1".into()),
            "REGION_1" => Some("eu".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_like_os_expand() {
        let cases = [
            ("plain", "plain"),
            ("$HOST", "db1"),
            ("${HOST}-x", "db1-x"),
            ("$HOST-x", "db1-x"),
            ("$REGION_1/$HOST", "eu/db1"),
            ("$UNSET", ""),
            ("cost $$5", "cost $5"),
            ("trailing $", "trailing $"),
            ("$-", ""),
            ("$1x", "onex"),
            ("${}", ""),
            ("a${HOST", "aHOST"),
            ("$ x", "$ x"),
            ("ü$HOSTü", "üdb1ü"),
        ];
        for (input, want) in cases {
            assert_eq!(expand_env(input, &env), want, "{input:?}");
        }
    }
}
