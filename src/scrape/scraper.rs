//! Fetches one target's exposition: a GET with Prometheus's Accept header and scrape
//! timeout header, gzip, a body size limit enforced while reading, and the whole exchange
//! bounded by the scrape timeout. The body lands in a buffer the loop reuses.

use crate::config::HttpClientConfig;
use crate::httpclient::{self, ClientError};
use crate::textparse::{self, Format};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    // Prometheus's wordings, kept so existing alerts on lastError still match.
    #[error("Get \"{url}\": context deadline exceeded")]
    Timeout { url: String },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    #[error("Get \"{url}\": {reason}")]
    Http { url: String, reason: String },
    #[error("{0}")]
    Credentials(#[from] ClientError),
}

pub struct Scraper {
    pub client: reqwest::Client,
    pub url: String,
    pub timeout: Duration,
    /// 0: no limit.
    pub body_size_limit: usize,
    /// Credentials are taken from here on every request.
    pub http: Arc<HttpClientConfig>,
}

impl Scraper {
    /// Fetches into `buf` (cleared first) and returns the format to parse it with.
    pub async fn scrape(&self, buf: &mut Vec<u8>) -> Result<Format, ScrapeError> {
        buf.clear();
        match tokio::time::timeout(self.timeout, self.fetch(buf)).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout {
                url: self.url.clone(),
            }),
        }
    }

    async fn fetch(&self, buf: &mut Vec<u8>) -> Result<Format, ScrapeError> {
        let req = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, textparse::SCRAPE_ACCEPT_HEADER)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", self.timeout.as_secs_f64()),
            );
        let req = httpclient::authorize(req, &self.http)?;
        let mut resp = req.send().await.map_err(|e| self.http_error(e))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(resp.status().to_string()));
        }
        let format = textparse::format_for_content_type(
            resp.headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.http_error(e))? {
            if self.body_size_limit > 0 && buf.len() + chunk.len() > self.body_size_limit {
                return Err(ScrapeError::BodySizeLimit);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(format)
    }

    fn http_error(&self, e: reqwest::Error) -> ScrapeError {
        // reqwest's top-level message is terse; the cause chain says what happened
        // ("connection refused", "dns error", ...).
        let mut reason = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            src = s.source();
        }
        ScrapeError::Http {
            url: self.url.clone(),
            reason,
        }
    }
}
