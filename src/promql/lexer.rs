//! The PromQL lexer: splits a query into tokens, each with its byte position, for the whole
//! Prometheus 3.x language (operators, keywords, aggregators, durations, the three string
//! quotes, comments). It follows Prometheus's lexer state for state, because the states
//! decide which errors a user sees and where: keywords are plain identifiers inside
//! braces, numbers and durations share one scanner, and the inside of `[...]` is lexed as
//! a duration expression. It checks escapes but never builds values or an AST.

use super::quote::{quote, quote_rune, unicode_rune};

/// What a token is. Groups (and their order) follow Prometheus's item types, so a token's
/// description in an error message reads as Prometheus's does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    // Names and literals.
    Identifier,
    /// An identifier containing `:` (recording-rule style names), valid only as a metric name.
    MetricIdentifier,
    Number,
    Duration,
    /// A quoted string, quotes and escapes still in place.
    String,
    Comment,
    Eof,

    // Punctuation.
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Comma,
    /// `=`, the equality label matcher.
    Eql,
    Colon,
    DoubleColon,

    // Operators.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `==`
    EqlC,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    EqlRegex,
    NeqRegex,
    At,
    And,
    Or,
    Unless,
    Atan2,

    // Aggregators.
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,

    // Keywords.
    Offset,
    Smoothed,
    Anchored,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Fill,
    FillLeft,
    FillRight,
    Bool,

    // Preprocessors: `@ start()`, `@ end()`, `step()`, `range()`.
    Start,
    End,
    Step,
    Range,
}

impl TokenKind {
    pub fn is_operator(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Add | Sub
                | Mul
                | Div
                | Mod
                | Pow
                | EqlC
                | Neq
                | Lss
                | Lte
                | Gtr
                | Gte
                | EqlRegex
                | NeqRegex
                | At
                | And
                | Or
                | Unless
                | Atan2
        )
    }

    pub fn is_aggregator(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Sum | Avg
                | Count
                | Min
                | Max
                | Group
                | Stddev
                | Stdvar
                | Topk
                | Bottomk
                | CountValues
                | Quantile
                | Limitk
                | LimitRatio
        )
    }

    pub fn is_keyword(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Offset
                | Smoothed
                | Anchored
                | By
                | Without
                | On
                | Ignoring
                | GroupLeft
                | GroupRight
                | Fill
                | FillLeft
                | FillRight
                | Bool
        )
    }

    pub fn is_preprocessor(self) -> bool {
        matches!(
            self,
            TokenKind::Start | TokenKind::End | TokenKind::Step | TokenKind::Range
        )
    }

    /// Punctuation, operators, keywords, aggregators and preprocessors: the kinds that
    /// Prometheus names by their own text in error messages.
    fn has_fixed_text(self) -> bool {
        use TokenKind::*;
        !matches!(
            self,
            Identifier | MetricIdentifier | Number | Duration | String | Comment | Eof
        )
    }

    /// Prometheus's name for a kind, used before the token's text in error messages.
    fn noun(self) -> &'static str {
        match self {
            TokenKind::Eof => "end of input",
            TokenKind::Comment => "comment",
            TokenKind::Identifier => "identifier",
            TokenKind::MetricIdentifier => "metric identifier",
            TokenKind::String => "string",
            TokenKind::Number => "number",
            TokenKind::Duration => "duration",
            _ => "token",
        }
    }
}

/// The reserved words, looked up lower-cased: PromQL keywords are case-insensitive.
fn keyword(lower: &str) -> Option<TokenKind> {
    use TokenKind::*;
    Some(match lower {
        "and" => And,
        "or" => Or,
        "unless" => Unless,
        "atan2" => Atan2,
        "sum" => Sum,
        "avg" => Avg,
        "count" => Count,
        "min" => Min,
        "max" => Max,
        "group" => Group,
        "stddev" => Stddev,
        "stdvar" => Stdvar,
        "topk" => Topk,
        "bottomk" => Bottomk,
        "count_values" => CountValues,
        "quantile" => Quantile,
        "limitk" => Limitk,
        "limit_ratio" => LimitRatio,
        "offset" => Offset,
        "smoothed" => Smoothed,
        "anchored" => Anchored,
        "by" => By,
        "without" => Without,
        "on" => On,
        "ignoring" => Ignoring,
        "group_left" => GroupLeft,
        "group_right" => GroupRight,
        "fill" => Fill,
        "fill_left" => FillLeft,
        "fill_right" => FillRight,
        "bool" => Bool,
        "start" => Start,
        "end" => End,
        "step" => Step,
        "range" => Range,
        // `Inf` and `NaN` are numbers, in any case.
        "inf" | "nan" => Number,
        _ => return None,
    })
}

/// One token: its kind, its byte offset in the query and its text as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: TokenKind,
    pub pos: usize,
    pub text: &'a str,
}

impl Token<'_> {
    /// Byte offset just past the token.
    pub fn end(&self) -> usize {
        self.pos + self.text.len()
    }

    /// How Prometheus names this token in "unexpected ..." messages: `"("`, `<op:+>`,
    /// `<aggr:sum>`, `<offset>`, `identifier "foo"`, `number "5"`, `end of input`.
    pub fn describe(&self) -> String {
        if self.kind == TokenKind::Eof {
            return self.kind.noun().to_string();
        }
        if self.kind.has_fixed_text() {
            return self.short();
        }
        format!("{} {}", self.kind.noun(), self.short())
    }

    fn short(&self) -> String {
        match self.kind {
            TokenKind::Identifier | TokenKind::MetricIdentifier => quote(self.text),
            k if k.is_keyword() => format!("<{}>", self.text),
            k if k.is_operator() => format!("<op:{}>", self.text),
            k if k.is_aggregator() => format!("<aggr:{}>", self.text),
            // Go's `%.10q...`: long literals are cut to ten characters before quoting.
            _ if self.text.len() > 10 => {
                let cut: String = self.text.chars().take(10).collect();
                format!("{}...", quote(&cut))
            }
            _ => quote(self.text),
        }
    }
}

/// A lexing failure: what and where (byte offset), worded as Prometheus words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct LexError {
    pub pos: usize,
    pub msg: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Statements,
    InsideBraces,
    /// Right after `[`: a range, a subquery's range and step, or arithmetic on durations.
    DurationExpr,
}

const DIGITS: &[u8] = b"0123456789";
const HEX_DIGITS: &[u8] = b"0123456789abcdefABCDEF";

fn is_space(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t' | '\n' | '\r'))
}

fn is_alpha(c: Option<char>) -> bool {
    matches!(c, Some(c) if c == '_' || c.is_ascii_alphabetic())
}

fn is_digit(c: Option<char>) -> bool {
    matches!(c, Some(c) if c.is_ascii_digit())
}

fn is_alnum(c: Option<char>) -> bool {
    is_alpha(c) || is_digit(c)
}

/// Go prints the end of input as the replacement character when quoting a rune.
fn rune(c: Option<char>) -> String {
    quote_rune(c.unwrap_or('\u{fffd}'))
}

/// Produces the tokens of one query, one at a time. After the end or an error it keeps
/// returning `Eof`, so a parser may read one token too far without harm.
pub struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    /// Start of the token being scanned; errors are reported here, as Prometheus does.
    start: usize,
    mode: Mode,
    paren_depth: i32,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    done: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            start: 0,
            mode: Mode::Statements,
            paren_depth: 0,
            bracket_open: false,
            got_colon: false,
            got_duration: false,
            done: false,
        }
    }

    /// The next token, comments included.
    pub fn next_token(&mut self) -> Result<Token<'a>, LexError> {
        if self.done {
            return Ok(Token {
                kind: TokenKind::Eof,
                pos: self.input.len(),
                text: "",
            });
        }
        let r = match self.mode {
            Mode::Statements => self.lex_statements(),
            Mode::InsideBraces => self.lex_inside_braces(),
            Mode::DurationExpr => self.lex_duration_expr(),
        };
        match &r {
            Err(_) => self.done = true,
            Ok(t) if t.kind == TokenKind::Eof => self.done = true,
            Ok(_) => {}
        }
        r
    }

    // --- reading ----------------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes the next byte if it is one of `valid` (all ASCII).
    fn accept(&mut self, valid: &[u8]) -> bool {
        match self.input.as_bytes().get(self.pos) {
            Some(b) if valid.contains(b) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn is(&self, valid: &[u8]) -> bool {
        matches!(self.input.as_bytes().get(self.pos), Some(b) if valid.contains(b))
    }

    fn accept_run(&mut self, valid: &[u8]) {
        while self.accept(valid) {}
    }

    fn skip_spaces(&mut self) {
        while is_space(self.peek()) {
            self.next();
        }
        self.start = self.pos;
    }

    fn emit(&mut self, kind: TokenKind) -> Token<'a> {
        let t = Token {
            kind,
            pos: self.start,
            text: &self.input[self.start..self.pos],
        };
        self.start = self.pos;
        t
    }

    fn error<T>(&self, msg: String) -> Result<T, LexError> {
        Err(LexError {
            pos: self.start,
            msg,
        })
    }

    // --- states -----------------------------------------------------------------------

    fn lex_statements(&mut self) -> Result<Token<'a>, LexError> {
        use TokenKind::*;
        loop {
            if self.input[self.pos..].starts_with('#') {
                return Ok(self.lex_comment());
            }
            let c = self.next();
            let tok = match c {
                None => {
                    if self.paren_depth != 0 {
                        return self.error("unclosed left parenthesis".into());
                    }
                    if self.bracket_open {
                        return self.error("unclosed left bracket".into());
                    }
                    self.emit(Eof)
                }
                c if is_space(c) => {
                    self.skip_spaces();
                    continue;
                }
                Some(',') => self.emit(Comma),
                Some('*') => self.emit(Mul),
                Some('/') => self.emit(Div),
                Some('%') => self.emit(Mod),
                Some('+') => self.emit(Add),
                Some('-') => self.emit(Sub),
                Some('^') => self.emit(Pow),
                Some('=') => match self.peek() {
                    Some('=') => {
                        self.next();
                        self.emit(EqlC)
                    }
                    Some('~') => {
                        return self.error("unexpected character after '=': '~'".into());
                    }
                    _ => self.emit(Eql),
                },
                Some('!') => {
                    let t = self.next();
                    if t != Some('=') {
                        return self.error(format!("unexpected character after '!': {}", rune(t)));
                    }
                    self.emit(Neq)
                }
                Some('<') => {
                    if self.peek() == Some('=') {
                        self.next();
                        self.emit(Lte)
                    } else {
                        self.emit(Lss)
                    }
                }
                Some('>') => {
                    if self.peek() == Some('=') {
                        self.next();
                        self.emit(Gte)
                    } else {
                        self.emit(Gtr)
                    }
                }
                c if is_digit(c) || (c == Some('.') && is_digit(self.peek())) => {
                    self.pos = self.start;
                    return self.lex_number_or_duration();
                }
                Some(q @ ('"' | '\'')) => return self.lex_string(q),
                Some('`') => return self.lex_raw_string(),
                c if is_alpha(c) || c == Some(':') => {
                    if !self.bracket_open {
                        self.pos = self.start;
                        return Ok(self.lex_keyword_or_identifier());
                    }
                    return self.lex_in_open_bracket(c);
                }
                Some('(') => {
                    self.paren_depth += 1;
                    self.emit(LeftParen)
                }
                Some(')') => {
                    let t = self.emit(RightParen);
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.error("unexpected right parenthesis ')'".into());
                    }
                    t
                }
                Some('{') => {
                    self.mode = Mode::InsideBraces;
                    self.emit(LeftBrace)
                }
                Some('[') => {
                    if self.bracket_open {
                        return self.error("unexpected left bracket '['".into());
                    }
                    self.got_colon = false;
                    let t = self.emit(LeftBracket);
                    self.skip_spaces();
                    self.bracket_open = true;
                    self.mode = Mode::DurationExpr;
                    t
                }
                Some(']') => {
                    if !self.bracket_open {
                        return self.error("unexpected right bracket ']'".into());
                    }
                    self.bracket_open = false;
                    self.emit(RightBracket)
                }
                Some('@') => self.emit(At),
                c => return self.error(format!("unexpected character: {}", rune(c))),
            };
            return Ok(tok);
        }
    }

    /// Letters and `:` after a range's first duration (`[5m:1m]`): only the subquery
    /// colon and the duration keywords may appear.
    fn lex_in_open_bracket(&mut self, c: Option<char>) -> Result<Token<'a>, LexError> {
        match c {
            Some(':') => {
                if self.got_colon {
                    return self.error("unexpected colon ':'".into());
                }
                self.got_colon = true;
                if self.peek() == Some(':') {
                    self.next();
                    return Ok(self.emit(TokenKind::DoubleColon));
                }
                Ok(self.emit(TokenKind::Colon))
            }
            Some('s' | 'S' | 'm' | 'M') => {
                if let Some(t) = self.scan_duration_keyword() {
                    return Ok(t);
                }
                self.error(format!("unexpected character: {}, expected ':'", rune(c)))
            }
            _ => self.error(format!("unexpected character: {}, expected ':'", rune(c))),
        }
    }

    fn lex_inside_braces(&mut self) -> Result<Token<'a>, LexError> {
        use TokenKind::*;
        loop {
            if self.input[self.pos..].starts_with('#') {
                return Ok(self.lex_comment());
            }
            let c = self.next();
            let tok = match c {
                None => return self.error("unexpected end of input inside braces".into()),
                c if is_space(c) => {
                    self.skip_spaces();
                    continue;
                }
                c if is_alpha(c) => {
                    while is_alnum(self.peek()) {
                        self.next();
                    }
                    self.emit(Identifier)
                }
                Some(',') => self.emit(Comma),
                Some(q @ ('"' | '\'')) => return self.lex_string(q),
                Some('`') => return self.lex_raw_string(),
                Some('=') => {
                    if self.peek() == Some('~') {
                        self.next();
                        self.emit(EqlRegex)
                    } else {
                        self.emit(Eql)
                    }
                }
                Some('!') => match self.next() {
                    Some('~') => self.emit(NeqRegex),
                    Some('=') => self.emit(Neq),
                    nr => {
                        return self.error(format!(
                            "unexpected character after '!' inside braces: {}",
                            rune(nr)
                        ));
                    }
                },
                Some('{') => return self.error("unexpected left brace '{'".into()),
                Some('}') => {
                    self.mode = Mode::Statements;
                    self.emit(RightBrace)
                }
                c => {
                    return self.error(format!("unexpected character inside braces: {}", rune(c)));
                }
            };
            return Ok(tok);
        }
    }

    fn lex_duration_expr(&mut self) -> Result<Token<'a>, LexError> {
        use TokenKind::*;
        loop {
            let c = self.next();
            let tok = match c {
                None => {
                    return self.error("unexpected end of input in duration expression".into());
                }
                Some(']') => {
                    self.bracket_open = false;
                    self.got_colon = false;
                    self.mode = Mode::Statements;
                    self.emit(RightBracket)
                }
                Some(':') => {
                    let t = self.emit(Colon);
                    if !self.got_duration {
                        return self.error(
                            "unexpected colon before duration in duration expression".into(),
                        );
                    }
                    if self.got_colon {
                        return self
                            .error("unexpected repeated colon in duration expression".into());
                    }
                    self.got_colon = true;
                    t
                }
                Some('(') => {
                    self.paren_depth += 1;
                    self.emit(LeftParen)
                }
                Some(')') => {
                    let t = self.emit(RightParen);
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.error("unexpected right parenthesis ')'".into());
                    }
                    t
                }
                c if is_space(c) => {
                    self.skip_spaces();
                    continue;
                }
                Some('+') => self.emit(Add),
                Some('-') => self.emit(Sub),
                Some('*') => self.emit(Mul),
                Some('/') => self.emit(Div),
                Some('%') => self.emit(Mod),
                Some('^') => self.emit(Pow),
                Some(',') => self.emit(Comma),
                Some('s' | 'S' | 'm' | 'M' | 'r' | 'R') => {
                    if let Some(t) = self.scan_duration_keyword() {
                        return Ok(t);
                    }
                    return self.error(format!(
                        "unexpected character in duration expression: {}",
                        rune(c)
                    ));
                }
                c if is_digit(c) || (c == Some('.') && is_digit(self.peek())) => {
                    self.pos = self.start;
                    self.got_duration = true;
                    // A number leaves duration mode, as in Prometheus: what follows is
                    // lexed as statements with the bracket still open.
                    self.mode = Mode::Statements;
                    return self.lex_number_or_duration();
                }
                c => {
                    return self.error(format!(
                        "unexpected character in duration expression: {}",
                        rune(c)
                    ));
                }
            };
            return Ok(tok);
        }
    }

    /// `step`, `range`, `min` and `max` inside brackets. Leaves the position after the
    /// word either way; errors are reported at the word's start.
    fn scan_duration_keyword(&mut self) -> Option<Token<'a>> {
        while is_alpha(self.peek()) {
            self.next();
        }
        let kind = match self.input[self.start..self.pos]
            .to_ascii_lowercase()
            .as_str()
        {
            "step" => TokenKind::Step,
            "range" => TokenKind::Range,
            "min" => TokenKind::Min,
            "max" => TokenKind::Max,
            _ => return None,
        };
        Some(self.emit(kind))
    }

    fn lex_comment(&mut self) -> Token<'a> {
        self.pos += 1;
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.next();
        }
        self.emit(TokenKind::Comment)
    }

    fn lex_keyword_or_identifier(&mut self) -> Token<'a> {
        while is_alnum(self.peek()) || self.peek() == Some(':') {
            self.next();
        }
        let word = &self.input[self.start..self.pos];
        match keyword(&word.to_ascii_lowercase()) {
            // `fill(` is a modifier, but `fill` alone stays a usable metric name.
            Some(TokenKind::Fill | TokenKind::FillLeft | TokenKind::FillRight)
                if !self.followed_by_left_paren() =>
            {
                self.emit(TokenKind::Identifier)
            }
            Some(kind) => self.emit(kind),
            None if word.contains(':') => self.emit(TokenKind::MetricIdentifier),
            None => self.emit(TokenKind::Identifier),
        }
    }

    fn followed_by_left_paren(&self) -> bool {
        self.input[self.pos..]
            .chars()
            .find(|&c| !is_space(Some(c)))
            .is_some_and(|c| c == '(')
    }

    fn lex_string(&mut self, q: char) -> Result<Token<'a>, LexError> {
        loop {
            match self.next() {
                Some('\\') => self.lex_escape(q)?,
                None | Some('\n') => return self.error("unterminated quoted string".into()),
                Some(c) if c == q => return Ok(self.emit(TokenKind::String)),
                Some(_) => {}
            }
        }
    }

    fn lex_raw_string(&mut self) -> Result<Token<'a>, LexError> {
        loop {
            match self.next() {
                None => return self.error("unterminated raw string".into()),
                Some('`') => return Ok(self.emit(TokenKind::String)),
                Some(_) => {}
            }
        }
    }

    /// Checks one escape after its backslash, with Go's rules and Go's messages.
    fn lex_escape(&mut self, q: char) -> Result<(), LexError> {
        let c = self.next();
        let (mut n, base, max, mut ch) = match c {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == q => return Ok(()),
            Some('0'..='7') => (3, 8, 255, c),
            Some('x') => (2, 16, 255, self.next()),
            Some('u') => (4, 16, 0x10ffff, self.next()),
            Some('U') => (8, 16, 0x10ffff, self.next()),
            None => return self.error("escape sequence not terminated".into()),
            Some(c) => {
                return self.error(format!("unknown escape sequence {}", unicode_rune(c)));
            }
        };
        let mut x: u32 = 0;
        loop {
            let Some(d) = ch.and_then(|c| c.to_digit(16)).filter(|&d| d < base) else {
                return match ch {
                    None => self.error("escape sequence not terminated".into()),
                    Some(c) => self.error(format!(
                        "illegal character {} in escape sequence",
                        unicode_rune(c)
                    )),
                };
            };
            x = x.saturating_mul(base).saturating_add(d);
            n -= 1;
            if n == 0 {
                break;
            }
            ch = self.next();
        }
        if x > max || (0xd800..0xe000).contains(&x) {
            return self.error("escape sequence is an invalid Unicode code point".into());
        }
        Ok(())
    }

    fn lex_number_or_duration(&mut self) -> Result<Token<'a>, LexError> {
        if self.scan_number() {
            return Ok(self.emit(TokenKind::Number));
        }
        if self.accept_remaining_duration() {
            return Ok(self.emit(TokenKind::Duration));
        }
        self.error(format!(
            "bad number or duration syntax: {}",
            quote(&self.input[self.start..self.pos])
        ))
    }

    /// After a failed number scan: the rest of a duration (`5m`, `1h30m`, `10ms`). Bad
    /// unit orders are left for the duration parser; like Prometheus, a trailing letter
    /// or digit is consumed into the error text.
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept(b"smhdwy") {
            return false;
        }
        self.accept(b"s");
        while self.accept(DIGITS) {
            self.accept_run(DIGITS);
            if !self.accept(b"smhdw") {
                return false;
            }
            self.accept(b"s");
        }
        match self.peek() {
            c if is_alnum(c) => {
                self.next();
                false
            }
            _ => true,
        }
    }

    /// Decimal, hexadecimal (`0x1f`), fractions, exponents and `_` digit separators. The
    /// text is not necessarily a valid number; the parser converts it. Returns false (with
    /// the position wherever it stopped) when a letter or digit follows, so the caller
    /// can try a duration.
    fn scan_number(&mut self) -> bool {
        let initial = self.pos;
        let mut digits = DIGITS;
        if self.accept(b"0") && self.accept(b"xX") {
            self.accept(b"_");
            digits = HEX_DIGITS;
        }
        self.accept(b".");
        self.accept(digits);
        let (mut dot, mut exp) = (false, false);
        while self.is(digits) || self.is(b"._eE") {
            if self.is(b".") && dot {
                self.accept(b".");
                return false;
            }
            if self.is(b"eE") && exp {
                self.accept(b"eE");
                return false;
            }
            if self.accept(b".") {
                dot = true;
                if self.accept(b"_.") {
                    return false;
                }
                // Fractional hexadecimal literals are not allowed.
                if digits.len() > DIGITS.len() {
                    return false;
                }
                continue;
            }
            if self.accept(b"eE") {
                exp = true;
                self.accept(b"+-");
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept(b"_") {
                if self.accept(b"._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            self.accept_run(digits);
        }
        self.pos != initial && !is_alnum(self.peek())
    }
}

/// All tokens of `input` up to and including `Eof`, comments included.
pub fn tokenize(input: &str) -> Result<Vec<Token<'_>>, LexError> {
    let mut lx = Lexer::new(input);
    let mut out = Vec::new();
    loop {
        let t = lx.next_token()?;
        let eof = t.kind == TokenKind::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenKind::*;
    use super::*;

    fn kinds(input: &str) -> Vec<(TokenKind, usize, &str)> {
        tokenize(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e:?}"))
            .into_iter()
            .filter(|t| t.kind != Eof)
            .map(|t| (t.kind, t.pos, t.text))
            .collect()
    }

    fn err(input: &str) -> (usize, std::string::String) {
        let e = tokenize(input).expect_err(input);
        (e.pos, e.msg)
    }

    #[test]
    fn every_operator_and_punctuation() {
        let cases: &[(&str, TokenKind)] = &[
            ("+", Add),
            ("-", Sub),
            ("*", Mul),
            ("/", Div),
            ("%", Mod),
            ("^", Pow),
            ("==", EqlC),
            ("!=", Neq),
            (">", Gtr),
            ("<", Lss),
            (">=", Gte),
            ("<=", Lte),
            ("=", Eql),
            (",", Comma),
            ("@", At),
            ("(", LeftParen),
            (")", RightParen),
        ];
        for (text, kind) in cases {
            // Parentheses must balance to lex.
            let input = match *kind {
                LeftParen => "(x)",
                RightParen => "(x)",
                _ => text,
            };
            let toks = kinds(input);
            assert!(
                toks.iter().any(|(k, _, t)| k == kind && t == text),
                "{text}: {toks:?}"
            );
        }
        assert_eq!(
            kinds("{a=~\"x\", b!~\"y\", c!=\"z\"}")
                .iter()
                .map(|t| t.0)
                .collect::<Vec<_>>(),
            [
                LeftBrace, Identifier, EqlRegex, String, Comma, Identifier, NeqRegex, String,
                Comma, Identifier, Neq, String, RightBrace
            ]
        );
        assert_eq!(
            kinds("x[5m:1m]"),
            [
                (Identifier, 0, "x"),
                (LeftBracket, 1, "["),
                (Duration, 2, "5m"),
                (Colon, 4, ":"),
                (Duration, 5, "1m"),
                (RightBracket, 7, "]")
            ]
        );
    }

    #[test]
    fn every_keyword_any_case() {
        let table: &[(&str, TokenKind)] = &[
            ("and", And),
            ("or", Or),
            ("unless", Unless),
            ("atan2", Atan2),
            ("sum", Sum),
            ("avg", Avg),
            ("count", Count),
            ("min", Min),
            ("max", Max),
            ("group", Group),
            ("stddev", Stddev),
            ("stdvar", Stdvar),
            ("topk", Topk),
            ("bottomk", Bottomk),
            ("count_values", CountValues),
            ("quantile", Quantile),
            ("limitk", Limitk),
            ("limit_ratio", LimitRatio),
            ("offset", Offset),
            ("smoothed", Smoothed),
            ("anchored", Anchored),
            ("by", By),
            ("without", Without),
            ("on", On),
            ("ignoring", Ignoring),
            ("group_left", GroupLeft),
            ("group_right", GroupRight),
            ("bool", Bool),
            ("start", Start),
            ("end", End),
            ("step", Step),
            ("range", Range),
            ("inf", Number),
            ("nan", Number),
        ];
        for (word, kind) in table {
            for w in [word.to_string(), word.to_ascii_uppercase()] {
                assert_eq!(kinds(&w), [(*kind, 0, w.as_str())], "{w}");
            }
        }
        for (word, kind) in [
            ("fill", Fill),
            ("fill_left", FillLeft),
            ("fill_right", FillRight),
        ] {
            let input = format!("{word} (1)");
            assert_eq!(kinds(&input)[0], (kind, 0, word), "{word}");
            assert_eq!(kinds(word), [(Identifier, 0, word)]);
        }
        // Inside brackets after a duration: the subquery colons and duration keywords.
        let k: Vec<TokenKind> = kinds("x[5m::step]").iter().map(|t| t.0).collect();
        assert_eq!(
            k,
            [
                Identifier,
                LeftBracket,
                Duration,
                DoubleColon,
                Step,
                RightBracket
            ]
        );
        let k: Vec<TokenKind> = kinds("x[range()*2:MAX(1,2)]").iter().map(|t| t.0).collect();
        assert_eq!(
            k,
            [
                Identifier,
                LeftBracket,
                Range,
                LeftParen,
                RightParen,
                Mul,
                Number,
                Colon,
                Max,
                LeftParen,
                Number,
                Comma,
                Number,
                RightParen,
                RightBracket
            ]
        );
    }

    #[test]
    fn identifiers_keywords_and_metric_names() {
        assert_eq!(
            kinds("foo:bar_total sum by OFFSET Inf nan bool"),
            [
                (MetricIdentifier, 0, "foo:bar_total"),
                (Sum, 14, "sum"),
                (By, 18, "by"),
                (Offset, 21, "OFFSET"),
                (Number, 28, "Inf"),
                (Number, 32, "nan"),
                (Bool, 36, "bool"),
            ]
        );
        assert_eq!(kinds(":a")[0], (MetricIdentifier, 0, ":a"));
        // Keywords are identifiers inside braces.
        assert_eq!(kinds("{by=\"x\"}")[1], (Identifier, 1, "by"));
        // `fill` is only a keyword before `(`.
        let t = kinds("fill + fill (1)");
        assert_eq!((t[0].0, t[2].0), (Identifier, Fill));
        assert_eq!(kinds("step() range()")[0].0, Step);
    }

    #[test]
    fn numbers_and_durations() {
        let cases: &[(&str, TokenKind)] = &[
            ("1", Number),
            ("1.5", Number),
            (".5", Number),
            ("2.", Number),
            ("1e10", Number),
            ("1.5E-3", Number),
            ("0x1f", Number),
            ("0X_1F", Number),
            ("1_000", Number),
            ("5m", Duration),
            ("1h30m", Duration),
            ("10ms", Duration),
            ("1y2w3d4h5m6s7ms", Duration),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(text), [(*kind, 0, *text)], "{text}");
        }
        assert_eq!(
            err("1x"),
            (0, "bad number or duration syntax: \"1\"".into())
        );
        assert_eq!(
            err("5mx"),
            (0, "bad number or duration syntax: \"5mx\"".into())
        );
        assert_eq!(
            err("1.2.3"),
            (0, "bad number or duration syntax: \"1.2.\"".into())
        );
        assert_eq!(
            err("x 1e"),
            (2, "bad number or duration syntax: \"1e\"".into())
        );
        assert_eq!(
            err("0x1.5"),
            (0, "bad number or duration syntax: \"0x1.\"".into())
        );
    }

    #[test]
    fn strings_with_escapes_and_positions() {
        assert_eq!(kinds(r#""a\"b""#), [(String, 0, r#""a\"b""#)]);
        assert_eq!(kinds(r"'it\'s'"), [(String, 0, r"'it\'s'")]);
        assert_eq!(kinds(r#""\n\x41\101\u00e9\U0001F600""#)[0].0, String);
        assert_eq!(kinds("`raw \\q\nline`"), [(String, 0, "`raw \\q\nline`")]);
        assert_eq!(err(r#"x "abc"#), (2, "unterminated quoted string".into()));
        assert_eq!(err("\"ab\ncd\""), (0, "unterminated quoted string".into()));
        assert_eq!(err("  `abc"), (2, "unterminated raw string".into()));
        assert_eq!(
            err(r#""\q""#),
            (0, "unknown escape sequence U+0071 'q'".into())
        );
        assert_eq!(
            err(r#"'\"'"#),
            (0, "unknown escape sequence U+0022 '\"'".into())
        );
        assert_eq!(
            err(r#""\xZZ""#),
            (0, "illegal character U+005A 'Z' in escape sequence".into())
        );
        assert_eq!(
            err(r#""\8""#),
            (0, "unknown escape sequence U+0038 '8'".into())
        );
        assert_eq!(
            err(r#""\uD800""#),
            (0, "escape sequence is an invalid Unicode code point".into())
        );
        assert_eq!(
            err(r#""\U00110000""#),
            (0, "escape sequence is an invalid Unicode code point".into())
        );
        assert_eq!(err(r#""\x4"#), (0, "escape sequence not terminated".into()));
        assert_eq!(err("\"\\"), (0, "escape sequence not terminated".into()));
    }

    #[test]
    fn comments_run_to_end_of_line() {
        assert_eq!(
            kinds("foo # a comment\n+ 1"),
            [
                (Identifier, 0, "foo"),
                (Comment, 4, "# a comment"),
                (Add, 16, "+"),
                (Number, 18, "1")
            ]
        );
        assert_eq!(kinds("{a=\"b\" # c\n}")[4], (Comment, 7, "# c"));
    }

    #[test]
    fn structural_errors_and_positions() {
        assert_eq!(
            err("foo{"),
            (4, "unexpected end of input inside braces".into())
        );
        assert_eq!(err("foo}"), (3, "unexpected character: '}'".into()));
        assert_eq!(err("(foo"), (4, "unclosed left parenthesis".into()));
        assert_eq!(err("foo)"), (4, "unexpected right parenthesis ')'".into()));
        assert_eq!(err("foo]"), (3, "unexpected right bracket ']'".into()));
        assert_eq!(err("foo[5m"), (6, "unclosed left bracket".into()));
        assert_eq!(
            err("foo[ "),
            (5, "unexpected end of input in duration expression".into())
        );
        assert_eq!(
            err("foo[x]"),
            (4, "unexpected character in duration expression: 'x'".into())
        );
        assert_eq!(
            err("foo[5m x]"),
            (7, "unexpected character: 'x', expected ':'".into())
        );
        assert_eq!(
            err("a =~ b"),
            (2, "unexpected character after '=': '~'".into())
        );
        assert_eq!(
            err("a ! b"),
            (2, "unexpected character after '!': ' '".into())
        );
        assert_eq!(
            err("{a!b}"),
            (
                2,
                "unexpected character after '!' inside braces: 'b'".into()
            )
        );
        assert_eq!(err("{a{"), (2, "unexpected left brace '{'".into()));
        assert_eq!(
            err("{1}"),
            (1, "unexpected character inside braces: '1'".into())
        );
        assert_eq!(err("métric"), (1, "unexpected character: 'é'".into()));
        assert_eq!(
            err("a[1m][1m:[1m"),
            (9, "unexpected left bracket '['".into())
        );
        assert_eq!(
            err("a[:1m]"),
            (
                3,
                "unexpected colon before duration in duration expression".into()
            )
        );
    }

    #[test]
    fn eof_repeats_after_end_and_error() {
        let mut lx = Lexer::new("a");
        assert_eq!(lx.next_token().unwrap().kind, Identifier);
        assert_eq!(lx.next_token().unwrap().kind, Eof);
        assert_eq!(lx.next_token().unwrap().kind, Eof);
        let mut lx = Lexer::new("}");
        assert!(lx.next_token().is_err());
        assert_eq!(lx.next_token().unwrap().kind, Eof);
    }

    #[test]
    fn descriptions_match_prometheus() {
        let d = |s: &str| tokenize(s).unwrap()[0].describe();
        assert_eq!(d("foo"), "identifier \"foo\"");
        assert_eq!(d("a:b"), "metric identifier \"a:b\"");
        assert_eq!(d("5"), "number \"5\"");
        assert_eq!(d("5m"), "duration \"5m\"");
        assert_eq!(d("\"abc\""), "string \"\\\"abc\\\"\"");
        assert_eq!(d("\"abcdefghijkl\""), "string \"\\\"abcdefghi\"...");
        assert_eq!(d("sum"), "<aggr:sum>");
        assert_eq!(d("OFFSET"), "<OFFSET>");
        assert_eq!(d("+"), "<op:+>");
        assert_eq!(d("and"), "<op:and>");
        assert_eq!(d("start"), "\"start\"");
        assert_eq!(d(","), "\",\"");
        assert_eq!(d(""), "end of input");
    }
}
