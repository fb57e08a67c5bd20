//! Format negotiation for scrapes: the `Accept` header cairn sends and the choice of
//! parser from the response's `Content-Type`, both as Prometheus 2.42 does them. Knows
//! nothing about HTTP beyond these two strings.

use super::Format;

/// The `Accept` header Prometheus 2.42 sends on scrapes (without protobuf negotiation):
/// OpenMetrics 1.0.0 first, then OpenMetrics 0.0.1, then text 0.0.4, then anything.
pub const SCRAPE_ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,\
text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Picks the parser for a response's `Content-Type` as Prometheus does: a media type of
/// `application/openmetrics-text` (any case, any version) whose parameters parse means
/// OpenMetrics; anything else, a missing header, or one Go's `mime.ParseMediaType`
/// refuses, means the text format.
pub fn format_for_content_type(content_type: Option<&str>) -> Format {
    let Some(ct) = content_type else {
        return Format::Text;
    };
    let (base, params) = ct.split_once(';').map_or((ct, ""), |(b, p)| (b, p));
    if !base
        .trim()
        .eq_ignore_ascii_case("application/openmetrics-text")
    {
        return Format::Text;
    }
    if media_params_ok(params) {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// Whether `params` (what follows the media type's first `;`) parses as Go's
/// `mime.ParseMediaType` parses parameters: `name=value` pairs of tokens or quoted
/// strings, separated by `;`, whitespace around them, a trailing `;` tolerated, no
/// name twice.
fn media_params_ok(params: &str) -> bool {
    // The first `;` was consumed by the caller's split; put it back in the loop's terms.
    let mut rest = params;
    let mut first = true;
    let mut names: Vec<String> = Vec::new();
    loop {
        if !first {
            rest = rest.trim_start();
            if rest.is_empty() {
                return true;
            }
            let Some(r) = rest.strip_prefix(';') else {
                return false;
            };
            rest = r;
        }
        first = false;
        rest = rest.trim_start();
        if rest.is_empty() {
            // A trailing `;` (or nothing after the media type's `;`) is no error.
            return true;
        }
        let (name, r) = take_token(rest);
        if name.is_empty() {
            return false;
        }
        let r = r.trim_start();
        let Some(r) = r.strip_prefix('=') else {
            return false;
        };
        let r = r.trim_start();
        let Some(r) = take_value(r) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        if names.contains(&name) {
            return false;
        }
        names.push(name);
        rest = r;
    }
}

fn is_tspecial(c: char) -> bool {
    "()<>@,;:\\\"/[]?=".contains(c)
}

fn is_token_char(c: char) -> bool {
    c > ' ' && c < '\x7f' && !is_tspecial(c)
}

fn take_token(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// A parameter value: a non-empty token, or a quoted string (possibly empty) without
/// raw CR or LF. Returns what follows it.
fn take_value(s: &str) -> Option<&str> {
    let Some(quoted) = s.strip_prefix('"') else {
        let (tok, rest) = take_token(s);
        return (!tok.is_empty()).then_some(rest);
    };
    let mut chars = quoted.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&quoted[i + 1..]),
            '\r' | '\n' => return None,
            // Go escapes only a special character; before anything else the
            // backslash is literal.
            '\\' if chars.peek().is_some_and(|&(_, n)| is_tspecial(n)) => {
                chars.next();
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_is_prometheus_242s() {
        assert_eq!(
            SCRAPE_ACCEPT_HEADER,
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        );
    }

    #[test]
    fn openmetrics_content_types() {
        for ct in [
            "application/openmetrics-text",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "Application/OpenMetrics-Text;version=0.0.1",
            "  application/openmetrics-text  ;  version = \"1.0.0\" ; ",
            "application/openmetrics-text;",
            "application/openmetrics-text; version=2.0.0",
            "application/openmetrics-text; a=\"x\\\"y\"",
        ] {
            assert_eq!(
                format_for_content_type(Some(ct)),
                Format::OpenMetrics,
                "{ct}"
            );
        }
    }

    #[test]
    fn everything_else_is_text() {
        for ct in [
            None,
            Some(""),
            Some("text/plain; version=0.0.4"),
            Some("text/plain"),
            Some("application/json"),
            Some("application/openmetrics-text; version"),
            Some("application/openmetrics-text; version=1.0.0 charset=utf-8"),
            Some("application/openmetrics-text; version=1; version=2"),
            Some("application/openmetrics-text; version=\"1.0.0"),
            Some("application/openmetrics-text; =1"),
            Some("application/openmetrics-text/x"),
            Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"),
        ] {
            assert_eq!(format_for_content_type(ct), Format::Text, "{ct:?}");
        }
    }
}
