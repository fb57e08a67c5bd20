//! The HTTP client settings Prometheus inlines into scrape, alertmanager, remote write and
//! remote read configs (`basic_auth`, `authorization`, `bearer_token[_file]`,
//! `tls_config`, `follow_redirects`, `enable_http2`, proxy settings), and their checks.
//! Each of those configs carries the fields itself, because serde cannot flatten into a
//! struct that refuses unknown keys; [`HttpClientConfig`] gathers them into one value
//! for validation here and for the one HTTP client builder elsewhere. Nothing here opens
//! a connection or reads a credential file.

use super::error::Problem;
use super::paths::join_dir;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A credential written in the config file. Debug output hides it; [`super::to_yaml`]
/// prints `<secret>` in its place, as Prometheus does.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub const REDACTED: &'static str = "<secret>";

    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The credential itself, for the code that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Secret::REDACTED)
    }
}

/// `basic_auth`: a username and a password given inline or in a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// `authorization`: an `Authorization: <type> <credentials>` header. `type` (here
/// `kind`) is `Bearer` once loaded if it was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// A TLS protocol version as Prometheus names it (`TLS12`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

/// `tls_config`: CA, client certificate and key (inline PEM or files), server name and
/// version bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// Whether nothing is set, so the printed config can leave the block out.
    pub fn is_empty(&self) -> bool {
        *self == TlsConfig::default()
    }

    fn validate(&mut self) -> Result<(), Problem> {
        let p = |m: &str| Err(Problem::new("tls_config", m));
        for field in [
            &mut self.ca,
            &mut self.cert,
            &mut self.ca_file,
            &mut self.cert_file,
        ] {
            drop_empty(field);
        }
        drop_empty(&mut self.key_file);
        drop_empty(&mut self.server_name);
        drop_empty_secret(&mut self.key);
        if self.ca.is_some() && self.ca_file.is_some() {
            return p("at most one of ca, ca_file & ca_ref must be configured");
        }
        if self.cert.is_some() && self.cert_file.is_some() {
            return p("at most one of cert, cert_file & cert_ref must be configured");
        }
        if self.key.is_some() && self.key_file.is_some() {
            return p("at most one of key and key_file must be configured");
        }
        let has_cert = self.cert.is_some() || self.cert_file.is_some();
        let has_key = self.key.is_some() || self.key_file.is_some();
        if has_cert && !has_key {
            return p(
                "exactly one of key or key_file must be configured when a client certificate is configured",
            );
        }
        if has_key && !has_cert {
            return p(
                "exactly one of cert or cert_file must be configured when a client key is configured",
            );
        }
        if let (Some(min), Some(max)) = (self.min_version, self.max_version)
            && max < min
        {
            return p(
                "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified",
            );
        }
        Ok(())
    }
}

/// The HTTP client settings of one scrape job, alertmanager set or remote endpoint,
/// gathered from the config that carries them (see `http_client_config()` on
/// [`super::ScrapeConfig`] and its siblings). After load, `bearer_token` and
/// `bearer_token_file` have become an `authorization` of type `Bearer`, as Prometheus
/// does, and empty strings have become `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: bool,
}

fn drop_empty(s: &mut Option<String>) {
    if s.as_deref() == Some("") {
        *s = None;
    }
}

fn drop_empty_secret(s: &mut Option<Secret>) {
    if s.as_ref().is_some_and(Secret::is_empty) {
        *s = None;
    }
}

impl HttpClientConfig {
    /// Checks the settings as Prometheus's HTTP client config does (same messages) and
    /// normalizes them: legacy bearer token fields become `authorization`.
    pub(crate) fn validate(&mut self) -> Result<(), Problem> {
        drop_empty_secret(&mut self.bearer_token);
        drop_empty(&mut self.bearer_token_file);
        drop_empty(&mut self.proxy_url);
        drop_empty(&mut self.no_proxy);
        let has_bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(Problem::new(
                "bearer_token",
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if self.basic_auth.is_some() && has_bearer {
            return Err(Problem::new(
                "basic_auth",
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ));
        }
        if let Some(ba) = &mut self.basic_auth {
            drop_empty(&mut ba.username_file);
            drop_empty(&mut ba.password_file);
            drop_empty_secret(&mut ba.password);
            if !ba.username.is_empty() && ba.username_file.is_some() {
                return Err(Problem::new(
                    "basic_auth",
                    "at most one of basic_auth username, username_file & username_ref must be configured",
                ));
            }
            if ba.password.is_some() && ba.password_file.is_some() {
                return Err(Problem::new(
                    "basic_auth",
                    "at most one of basic_auth password, password_file & password_ref must be configured",
                ));
            }
        }
        match &mut self.authorization {
            Some(auth) => {
                let p = |m: &str| Err(Problem::new("authorization", m));
                if has_bearer {
                    return p(
                        "authorization is not compatible with bearer_token & bearer_token_file",
                    );
                }
                drop_empty_secret(&mut auth.credentials);
                drop_empty(&mut auth.credentials_file);
                if auth.credentials.is_some() && auth.credentials_file.is_some() {
                    return p(
                        "at most one of authorization credentials & credentials_file must be configured",
                    );
                }
                auth.kind = auth.kind.trim().to_string();
                if auth.kind.is_empty() {
                    auth.kind = "Bearer".to_string();
                }
                if auth.kind.eq_ignore_ascii_case("basic") {
                    return p(
                        r#"authorization type cannot be set to "basic", use "basic_auth" instead"#,
                    );
                }
                if self.basic_auth.is_some() {
                    return p(
                        "at most one of basic_auth, oauth2 & authorization must be configured",
                    );
                }
            }
            None if has_bearer => {
                self.authorization = Some(Authorization {
                    kind: "Bearer".to_string(),
                    credentials: self.bearer_token.take(),
                    credentials_file: self.bearer_token_file.take(),
                });
            }
            None => {}
        }
        self.validate_proxy()?;
        if let Some(url) = &self.proxy_url
            && !is_http_url(url)
        {
            return Err(Problem::new(
                "proxy_url",
                format!("invalid proxy URL {url:?}: must be an absolute http or https URL"),
            ));
        }
        self.tls_config.validate()
    }

    fn validate_proxy(&self) -> Result<(), Problem> {
        let p = |m: &str| Err(Problem::new("proxy_url", m));
        if self.proxy_from_environment && self.proxy_url.is_some() {
            return p("if proxy_from_environment is configured, proxy_url must not be configured");
        }
        if self.proxy_from_environment && self.no_proxy.is_some() {
            return p("if proxy_from_environment is configured, no_proxy must not be configured");
        }
        if self.proxy_url.is_none() && self.no_proxy.is_some() {
            return p("if no_proxy is configured, proxy_url must also be configured");
        }
        Ok(())
    }

    /// Makes relative credential and TLS file paths relative to `dir`.
    pub(crate) fn resolve_paths(&mut self, dir: &str) {
        let mut files: Vec<&mut Option<String>> = vec![
            &mut self.bearer_token_file,
            &mut self.tls_config.ca_file,
            &mut self.tls_config.cert_file,
            &mut self.tls_config.key_file,
        ];
        if let Some(ba) = &mut self.basic_auth {
            files.push(&mut ba.username_file);
            files.push(&mut ba.password_file);
        }
        if let Some(auth) = &mut self.authorization {
            files.push(&mut auth.credentials_file);
        }
        for file in files.into_iter().flatten() {
            *file = join_dir(dir, file);
        }
    }

    /// Replaces every inline credential with `<secret>` and hides passwords in URLs.
    pub(crate) fn redact(&mut self) {
        let secrets = [
            self.basic_auth.as_mut().and_then(|b| b.password.as_mut()),
            self.authorization
                .as_mut()
                .and_then(|a| a.credentials.as_mut()),
            self.bearer_token.as_mut(),
            self.tls_config.key.as_mut(),
        ];
        for secret in secrets.into_iter().flatten() {
            *secret = Secret::new(Secret::REDACTED);
        }
        if let Some(url) = &mut self.proxy_url {
            *url = redact_url(url);
        }
    }
}

/// Whether `url` looks like `http[s]://host...`. cairn has no URL parser of its own; the
/// HTTP client does the full parse when it connects.
pub(crate) fn is_http_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") && !host.is_empty()
}

/// Replaces the password in a URL's user info with `xxxxx`, as Prometheus prints URLs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:xxxxx@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// Implements the accessors between a config that inlines the HTTP client fields and
/// [`HttpClientConfig`]. Every such config spells the fields the same way.
macro_rules! impl_http_client_config {
    ($ty:ty) => {
        impl $ty {
            /// The HTTP client settings of this config as one value.
            pub fn http_client_config(&self) -> $crate::config::HttpClientConfig {
                $crate::config::HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    tls_config: self.tls_config.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                }
            }

            pub(crate) fn set_http_client_config(&mut self, h: $crate::config::HttpClientConfig) {
                self.basic_auth = h.basic_auth;
                self.authorization = h.authorization;
                self.bearer_token = h.bearer_token;
                self.bearer_token_file = h.bearer_token_file;
                self.tls_config = h.tls_config;
                self.follow_redirects = h.follow_redirects;
                self.enable_http2 = h.enable_http2;
                self.proxy_url = h.proxy_url;
                self.no_proxy = h.no_proxy;
                self.proxy_from_environment = h.proxy_from_environment;
            }

            /// Runs `f` on the HTTP client settings and stores the result back.
            pub(crate) fn with_http_client_config<R>(
                &mut self,
                f: impl FnOnce(&mut $crate::config::HttpClientConfig) -> R,
            ) -> R {
                let mut h = self.http_client_config();
                let r = f(&mut h);
                self.set_http_client_config(h);
                r
            }
        }
    };
}
pub(crate) use impl_http_client_config;

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
        }
    }

    fn problem(h: HttpClientConfig) -> String {
        let mut h = h;
        let p = h.validate().unwrap_err();
        format!("{}: {}", p.key, p.message)
    }

    #[test]
    fn bearer_token_becomes_authorization() {
        let mut h = HttpClientConfig {
            bearer_token: Some(Secret::new("t0k")),
            ..base()
        };
        h.validate().unwrap();
        let auth = h.authorization.unwrap();
        assert_eq!(auth.kind, "Bearer");
        assert_eq!(auth.credentials.unwrap().expose(), "t0k");
        assert!(h.bearer_token.is_none());

        let mut h = HttpClientConfig {
            bearer_token_file: Some("tok".into()),
            ..base()
        };
        h.validate().unwrap();
        assert_eq!(
            h.authorization.unwrap().credentials_file.as_deref(),
            Some("tok")
        );
    }

    #[test]
    fn authorization_type_defaults_to_bearer() {
        let mut h = HttpClientConfig {
            authorization: Some(Authorization {
                kind: "  ".into(),
                credentials: Some(Secret::new("x")),
                credentials_file: None,
            }),
            ..base()
        };
        h.validate().unwrap();
        assert_eq!(h.authorization.unwrap().kind, "Bearer");
    }

    #[test]
    fn conflicts_use_prometheus_wording() {
        let basic = Some(BasicAuth {
            username: "u".into(),
            password: Some(Secret::new("p")),
            ..BasicAuth::default()
        });
        let auth = Some(Authorization {
            credentials: Some(Secret::new("c")),
            ..Authorization::default()
        });
        let cases = [
            (
                HttpClientConfig {
                    bearer_token: Some(Secret::new("a")),
                    bearer_token_file: Some("f".into()),
                    ..base()
                },
                "bearer_token: at most one of bearer_token & bearer_token_file must be configured",
            ),
            (
                HttpClientConfig {
                    basic_auth: basic.clone(),
                    authorization: auth.clone(),
                    ..base()
                },
                "authorization: at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                HttpClientConfig {
                    basic_auth: basic.clone(),
                    bearer_token: Some(Secret::new("a")),
                    ..base()
                },
                "basic_auth: at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ),
            (
                HttpClientConfig {
                    basic_auth: Some(BasicAuth {
                        password: Some(Secret::new("p")),
                        password_file: Some("f".into()),
                        ..BasicAuth::default()
                    }),
                    ..base()
                },
                "basic_auth: at most one of basic_auth password, password_file & password_ref must be configured",
            ),
            (
                HttpClientConfig {
                    authorization: Some(Authorization {
                        kind: "Basic".into(),
                        ..Authorization::default()
                    }),
                    ..base()
                },
                r#"authorization: authorization type cannot be set to "basic", use "basic_auth" instead"#,
            ),
            (
                HttpClientConfig {
                    authorization: auth.clone(),
                    bearer_token_file: Some("f".into()),
                    ..base()
                },
                "authorization: authorization is not compatible with bearer_token & bearer_token_file",
            ),
            (
                HttpClientConfig {
                    no_proxy: Some("localhost".into()),
                    ..base()
                },
                "proxy_url: if no_proxy is configured, proxy_url must also be configured",
            ),
            (
                HttpClientConfig {
                    proxy_url: Some("socks://x".into()),
                    ..base()
                },
                "proxy_url: invalid proxy URL \"socks://x\": must be an absolute http or https URL",
            ),
            (
                HttpClientConfig {
                    tls_config: TlsConfig {
                        cert_file: Some("c.pem".into()),
                        ..TlsConfig::default()
                    },
                    ..base()
                },
                "tls_config: exactly one of key or key_file must be configured when a client certificate is configured",
            ),
            (
                HttpClientConfig {
                    tls_config: TlsConfig {
                        min_version: Some(TlsVersion::Tls13),
                        max_version: Some(TlsVersion::Tls12),
                        ..TlsConfig::default()
                    },
                    ..base()
                },
                "tls_config: tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified",
            ),
        ];
        for (h, want) in cases {
            assert_eq!(problem(h), want);
        }
    }

    #[test]
    fn empty_strings_mean_unset() {
        let mut h = HttpClientConfig {
            bearer_token: Some(Secret::new("")),
            bearer_token_file: Some("f".into()),
            ..base()
        };
        h.validate().unwrap();
        assert_eq!(
            h.authorization.unwrap().credentials_file.as_deref(),
            Some("f")
        );
    }

    #[test]
    fn paths_and_redaction() {
        let mut h = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password: Some(Secret::new("hunter2")),
                password_file: None,
                username_file: Some("/abs/user".into()),
            }),
            tls_config: TlsConfig {
                ca_file: Some("ca.pem".into()),
                key: Some(Secret::new("PEM")),
                ..TlsConfig::default()
            },
            proxy_url: Some("http://me:pw@proxy:3128/".into()),
            ..base()
        };
        h.resolve_paths("/etc/cairn");
        assert_eq!(h.tls_config.ca_file.as_deref(), Some("/etc/cairn/ca.pem"));
        let ba = h.basic_auth.as_ref().unwrap();
        assert_eq!(ba.username_file.as_deref(), Some("/abs/user"));
        h.redact();
        assert_eq!(h.basic_auth.unwrap().password.unwrap().expose(), "<secret>");
        assert_eq!(h.tls_config.key.unwrap().expose(), "<secret>");
        assert_eq!(h.proxy_url.as_deref(), Some("http://me:xxxxx@proxy:3128/"));
        assert_eq!(format!("{:?}", Secret::new("pw")), "<secret>");
    }

    #[test]
    fn urls() {
        assert!(is_http_url("http://h:9090/api/v1/write"));
        assert!(is_http_url("HTTPS://u:p@h"));
        assert!(!is_http_url("h:9090/write"));
        assert!(!is_http_url("ftp://h"));
        assert!(!is_http_url("http:///path"));
        assert_eq!(redact_url("https://u:p@h/x?y"), "https://u:xxxxx@h/x?y");
        assert_eq!(redact_url("https://u@h/x"), "https://u@h/x");
        assert_eq!(redact_url("https://h/a@b:c"), "https://h/a@b:c");
    }
}
