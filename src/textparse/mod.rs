//! Parsers for the two exposition formats cairn scrapes: the Prometheus text format
//! 0.0.4 and OpenMetrics 1.0 text. Both are zero-copy: every name, series and text an
//! [`Entry`] carries is a sub-slice of the scraped bytes, and [`Parser::next`] allocates
//! nothing for a well-formed line. What they accept and refuse is what Prometheus 2.42
//! accepts and refuses, quirks included, so a scrape succeeds or fails in cairn exactly
//! when it would in Prometheus. This module does no I/O and knows nothing of storage or
//! relabelling.
//!
//! ```
//! use cairn::model::LabelsBuilder;
//! use cairn::textparse::{Entry, Format, Parser, parse_series_labels};
//!
//! let body = b"# TYPE up gauge\nup{job=\"node\"} 1\n";
//! let mut parser = Parser::new(body, Format::Text);
//! let mut labels = LabelsBuilder::new();
//! while let Some(entry) = parser.next()? {
//!     if let Entry::Series(line) = entry {
//!         assert_eq!(line.series, b"up{job=\"node\"}");
//!         parse_series_labels(line.series, &mut labels)?;
//!         assert_eq!(labels.get("job"), Some("node"));
//!         assert_eq!(line.value, 1.0);
//!     }
//! }
//! # Ok::<(), cairn::textparse::ParseError>(())
//! ```

mod content_type;
mod error;
mod labels;
mod lex;
mod openmetrics;
mod promtext;
mod value;

#[cfg(test)]
mod fuzz_tests;

pub use content_type::{SCRAPE_ACCEPT_HEADER, format_for_content_type};
pub use error::ParseError;
pub use labels::{parse_exemplar_labels, parse_series_labels, unescape_help};
pub use value::NORMAL_NAN_BITS;

use crate::model::MetricType;

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`).
    OpenMetrics,
}

/// One line's worth of exposition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP`. `text` is still escaped as written; see [`unescape_help`]. In the text
    /// format it is the rest of the line less its first byte, as Prometheus reads it.
    Help { metric: &'a [u8], text: &'a [u8] },
    /// `# TYPE`. The text format's `untyped` is [`MetricType::Unknown`].
    Type { metric: &'a [u8], kind: MetricType },
    /// `# UNIT` (OpenMetrics only).
    Unit { metric: &'a [u8], unit: &'a [u8] },
    /// Any other `#` line (text format only; OpenMetrics has no free comments).
    Comment,
    /// A sample.
    Series(SeriesLine<'a>),
}

/// One sample line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesLine<'a> {
    /// The series exactly as written: metric name plus label block, e.g.
    /// `http_requests_total{method="GET",code="200"}` — the bytes from the start of the
    /// line up to (not including) the whitespace before the value. A sub-slice of the
    /// input, so it can key the scrape cache without a copy.
    pub series: &'a [u8],
    /// The value; every NaN is Prometheus's [`NORMAL_NAN_BITS`], never the staleness
    /// marker.
    pub value: f64,
    /// Milliseconds since the epoch. Text format: integer ms as written. OpenMetrics:
    /// float seconds converted to ms (truncated, as Prometheus does).
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics only.
    pub exemplar: Option<Exemplar<'a>>,
}

/// An OpenMetrics exemplar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar<'a> {
    /// The label block as written, braces included (`{trace_id="abc"}`); see
    /// [`parse_exemplar_labels`].
    pub labels: &'a [u8],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// A pull parser over one scraped body.
#[derive(Debug)]
pub struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    format: Format,
    state: State,
}

#[derive(Debug)]
enum State {
    Running,
    Done,
    Failed(ParseError),
}

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8], format: Format) -> Self {
        Parser {
            buf,
            pos: 0,
            format,
            state: State::Running,
        }
    }

    /// The format this parser reads.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Next entry, `Ok(None)` at the end. After an `Err` the parser is done: every later
    /// call returns the same error, so a failed scrape cannot be mistaken for a short one.
    #[allow(clippy::should_implement_trait)] // a fallible pull, not an Iterator
    #[inline]
    pub fn next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        match &self.state {
            State::Running => {}
            State::Done => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let result = match self.format {
            Format::Text => promtext::next_entry(self.buf, &mut self.pos),
            Format::OpenMetrics => openmetrics::next_entry(self.buf, &mut self.pos),
        };
        match &result {
            Ok(Some(_)) => {}
            Ok(None) => self.state = State::Done,
            Err(e) => self.state = State::Failed(e.clone()),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_repeat_and_the_end_is_sticky() {
        let mut p = Parser::new(b"a 1\nb x\nc 2\n", Format::Text);
        assert!(matches!(p.next(), Ok(Some(Entry::Series(_)))));
        let e = p.next().unwrap_err();
        assert_eq!((e.line, e.offset), (2, 6));
        assert_eq!(p.next(), Err(e));

        let mut p = Parser::new(b"# EOF\n", Format::OpenMetrics);
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.format(), Format::OpenMetrics);
    }

    #[test]
    fn same_body_both_formats() {
        // The text format treats `# EOF` as a comment; OpenMetrics requires it.
        let body = b"a_total{b=\"c\"} 1\n# EOF\n";
        let mut t = Parser::new(body, Format::Text);
        assert!(matches!(t.next(), Ok(Some(Entry::Series(_)))));
        assert_eq!(t.next(), Ok(Some(Entry::Comment)));
        assert_eq!(t.next(), Ok(None));
        let mut o = Parser::new(body, Format::OpenMetrics);
        assert!(matches!(o.next(), Ok(Some(Entry::Series(_)))));
        assert_eq!(o.next(), Ok(None));
        assert!(Parser::new(b"a 1\n", Format::OpenMetrics).next().is_ok());
        let mut o = Parser::new(b"a 1\n", Format::OpenMetrics);
        o.next().unwrap();
        assert_eq!(o.next().unwrap_err().msg, "data does not end with # EOF");
    }
}
