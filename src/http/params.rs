//! Request parameters as Prometheus reads them: the URL query and, for a form POST, the
//! body, merged; repeated names (`match[]`) kept in order. Also the parsers for the
//! parameter types the API shares (times, durations, matcher lists).

use super::json::ApiError;
use crate::model::time::{parse_duration_ms, parse_timestamp_ms};
use crate::model::{Matcher, time::now_ms};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};

/// The smallest and largest times the API accepts as "unbounded".
pub const MIN_TIME: i64 = i64::MIN / 2;
pub const MAX_TIME: i64 = i64::MAX / 2;

#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Self {
        let mut v: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if *method == Method::POST && is_form {
            // Prometheus (Go's ParseForm) puts body values before the URL's.
            let mut body_params: Vec<(String, String)> =
                form_urlencoded::parse(body).into_owned().collect();
            body_params.append(&mut v);
            v = body_params;
        }
        Params(v)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when absent or empty.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s).map_err(|e| ApiError::param(name, e)),
        }
    }

    pub fn time_now(&self, name: &str) -> Result<i64, ApiError> {
        self.time_or(name, now_ms())
    }

    /// `match[]` selectors, each parsed as a PromQL vector selector.
    pub fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]")
            .into_iter()
            .map(parse_selector)
            .collect()
    }
}

/// A `match[]` value: a vector selector, nothing else.
fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    match crate::promql::parse_expr(s) {
        Ok(crate::promql::Expr::VectorSelector(vs)) => Ok(vs.matchers),
        Ok(_) => Err(ApiError::param(
            "match[]",
            format!("{s:?} is not a vector selector"),
        )),
        Err(e) => Err(ApiError::param("match[]", e)),
    }
}

/// Accepts the API's special min/max times as Prometheus prints them, too.
pub fn parse_time(s: &str) -> Result<i64, String> {
    match parse_timestamp_ms(s) {
        Ok(t) => Ok(t.clamp(MIN_TIME, MAX_TIME)),
        Err(e) => Err(e.to_string()),
    }
}

/// A step or timeout: float seconds (`15`, `0.5`) or a duration (`15s`), in ms.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    parse_duration_ms(s)
        .map(|ms| ms as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_and_query_merge() {
        let uri: Uri = "/api/v1/series?match[]=a&x=1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = Params::from_request(
            &Method::POST,
            &uri,
            &h,
            &Bytes::from("match[]=b%7Bc%3D%22d%22%7D"),
        );
        assert_eq!(p.all("match[]"), vec!["b{c=\"d\"}", "a"]);
        assert_eq!(p.get("x"), Some("1"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_param("15").unwrap(), 15_000);
        assert_eq!(parse_duration_param("0.5").unwrap(), 500);
        assert_eq!(parse_duration_param("1m").unwrap(), 60_000);
        assert!(parse_duration_param("x").is_err());
    }
}
