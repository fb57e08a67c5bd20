//! cairn's own PromQL: a lexer and a syntax tree for the whole Prometheus 3.x language,
//! a printer that writes canonical PromQL back, a parser that builds selectors, literals
//! and their modifiers today (and names what it does not build yet), and an engine that
//! evaluates them over a [`crate::storage::Storage`] with Prometheus 3.x semantics.
//!
//! ```
//! use cairn::promql::{Engine, EngineOptions, parse_expr};
//!
//! let expr = parse_expr(r#"http_requests_total{job="api", code!~"5.."}[5m] offset 1h"#)?;
//! assert_eq!(expr.to_string(), r#"http_requests_total{code!~"5..",job="api"}[5m] offset 1h"#);
//! let _engine = Engine::new(EngineOptions::default());
//!
//! let err = parse_expr("foo{").unwrap_err();
//! assert_eq!(err.to_string(), "1:5: parse error: unexpected end of input inside braces");
//! # Ok::<(), cairn::promql::ParseError>(())
//! ```

pub mod ast;
pub mod engine;
pub mod lexer;
pub mod parser;
mod printer;
mod quote;
pub mod signatures;

pub use ast::Expr;
pub use engine::{Engine, EngineOptions, EvalError, Value};
pub use parser::{ParseError, ParseErrorKind, parse_expr};
pub use quote::{UnquoteError, unquote};
