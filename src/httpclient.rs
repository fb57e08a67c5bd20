//! The one HTTP client builder: every outgoing HTTP connection cairn makes (scrapes, and
//! later service discovery and remote write) is configured here from Prometheus's
//! `http_config` fields (`config::HttpClientConfig`) — TLS, basic auth, authorization,
//! redirects — so they all behave alike. Credentials from files are re-read on every
//! request, as Prometheus does, so rotated tokens are picked up without a reload.

use crate::config::HttpClientConfig;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unable to read {what} {path:?}: {source}")]
    ReadFile {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what}: {source}")]
    BadPem {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("building HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// Installs the process-wide TLS crypto provider (ring) once. reqwest, and later kube
/// and lettre, all pick it up, so the binary carries one TLS stack.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for one job or endpoint. Connections are pooled and reused across requests.
pub fn build_client(cfg: &HttpClientConfig) -> Result<reqwest::Client, ClientError> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if !cfg.enable_http2 {
        b = b.http1_only();
    }
    if !cfg.proxy_from_environment {
        b = b.no_proxy();
    }
    if let Some(p) = &cfg.proxy_url {
        b = b.proxy(reqwest::Proxy::all(p.as_str())?);
    }
    let tls = &cfg.tls_config;
    let ca = match (&tls.ca, &tls.ca_file) {
        (Some(pem), _) => Some(pem.as_bytes().to_vec()),
        (None, Some(f)) => Some(read(f, "CA file")?),
        (None, None) => None,
    };
    if let Some(pem) = ca {
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::BadPem {
                what: "CA certificate",
                source,
            })?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    let cert = match (&tls.cert, &tls.cert_file) {
        (Some(pem), _) => Some(pem.as_bytes().to_vec()),
        (None, Some(f)) => Some(read(f, "certificate file")?),
        (None, None) => None,
    };
    let key = match (&tls.key, &tls.key_file) {
        (Some(pem), _) => Some(pem.expose().as_bytes().to_vec()),
        (None, Some(f)) => Some(read(f, "key file")?),
        (None, None) => None,
    };
    if let (Some(mut pem), Some(key)) = (cert, key) {
        pem.push(b'\n');
        pem.extend(key);
        let id = reqwest::Identity::from_pem(&pem).map_err(|source| ClientError::BadPem {
            what: "client certificate/key",
            source,
        })?;
        b = b.identity(id);
    }
    if tls.insecure_skip_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    Ok(b.build()?)
}

/// Adds the configured credentials to a request, reading credential files now.
pub fn authorize(
    req: reqwest::RequestBuilder,
    cfg: &HttpClientConfig,
) -> Result<reqwest::RequestBuilder, ClientError> {
    if let Some(ba) = &cfg.basic_auth {
        let user = match &ba.username_file {
            Some(f) => read_trimmed(f, "username file")?,
            None => ba.username.clone(),
        };
        let pw = match (&ba.password_file, &ba.password) {
            (Some(f), _) => Some(read_trimmed(f, "password file")?),
            (None, Some(p)) => Some(p.expose().to_string()),
            (None, None) => None,
        };
        return Ok(req.basic_auth(user, pw));
    }
    let (kind, secret) = if let Some(a) = &cfg.authorization {
        let kind = if a.kind.is_empty() {
            "Bearer"
        } else {
            a.kind.as_str()
        };
        let secret = match (&a.credentials_file, &a.credentials) {
            (Some(f), _) => read_trimmed(f, "credentials file")?,
            (None, Some(c)) => c.expose().to_string(),
            (None, None) => return Ok(req),
        };
        (kind.to_string(), secret)
    } else if let Some(f) = &cfg.bearer_token_file {
        ("Bearer".to_string(), read_trimmed(f, "bearer token file")?)
    } else if let Some(t) = &cfg.bearer_token {
        ("Bearer".to_string(), t.expose().to_string())
    } else {
        return Ok(req);
    };
    Ok(req.header(reqwest::header::AUTHORIZATION, format!("{kind} {secret}")))
}

fn read(path: &str, what: &'static str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::ReadFile {
        what,
        path: path.to_string(),
        source,
    })
}

fn read_trimmed(path: &str, what: &'static str) -> Result<String, ClientError> {
    let b = read(path, what)?;
    Ok(String::from_utf8_lossy(&b).trim().to_string())
}
