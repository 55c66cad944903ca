//! Building `elasticsearch` clients from an [`ElasticsearchConfig`], and the
//! forwarder's endpoint rotation.
//!
//! Requests go through the official client's transport
//! ([`elasticsearch::http::transport::Transport`]), which adds the client's
//! `User-Agent` and `x-elastic-client-meta` headers. Environment proxy settings
//! are ignored (a node agent talks to Elasticsearch directly).

use crate::config::{parse_endpoints, Auth, ElasticsearchConfig, TlsConfig};
use crate::error::Error;
use base64::Engine as _;
use elasticsearch::auth::{ClientCertificate, Credentials};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderValue, AUTHORIZATION};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::Elasticsearch;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Builds one client for all of `config.endpoints` (the client's own
/// round-robin pool), with the configured authentication, TLS and request
/// timeout. For tools such as `logferry verify`; the forwarder keeps one client
/// per endpoint to cool failing endpoints down.
///
/// # Errors
///
/// [`Error::InvalidEndpoint`] for a URL that is not `http(s)://host[:port]`,
/// [`Error::InvalidConfig`] when there is no endpoint,
/// [`Error::ReadSecret`] for an unreadable or empty secret file,
/// [`Error::Tls`] for unreadable or invalid PEM files,
/// [`Error::BuildClient`] when the HTTP client cannot be built.
pub fn build_client(config: &ElasticsearchConfig) -> Result<Elasticsearch, Error> {
    let urls = parse_endpoints(&config.endpoints)?;
    let pool = MultiNodeConnectionPool::round_robin(urls, None);
    let settings = ClientSettings::load(config)?;
    settings.build(TransportBuilder::new(pool), &config.endpoints.join(","))
}

/// Reads a secret file: the whole content minus trailing `\r`/`\n`; an empty
/// secret is an error.
fn read_secret(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadSecret {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err(Error::ReadSecret {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty"),
        });
    }
    Ok(secret)
}

/// Authentication, TLS and timeout, loaded from files once.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    authorization: Option<HeaderValue>,
    client_cert: Option<Vec<u8>>,
    validation: Option<Validation>,
    timeout: Duration,
}

impl ClientSettings {
    pub(crate) fn load(config: &ElasticsearchConfig) -> Result<ClientSettings, Error> {
        let authorization = match &config.auth {
            None => None,
            Some(auth) => {
                let value = match auth {
                    Auth::Basic {
                        username,
                        password_file,
                    } => {
                        let password = read_secret(password_file)?;
                        let pair = format!("{username}:{password}");
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(pair)
                        )
                    }
                    Auth::ApiKey { api_key_file } => {
                        let key = read_secret(api_key_file)?;
                        if key.contains(':') {
                            format!(
                                "ApiKey {}",
                                base64::engine::general_purpose::STANDARD.encode(key)
                            )
                        } else {
                            format!("ApiKey {key}")
                        }
                    }
                    Auth::Bearer { token_file } => format!("Bearer {}", read_secret(token_file)?),
                };
                let mut header =
                    HeaderValue::from_str(&value).map_err(|_| Error::InvalidConfig {
                        field: "auth",
                        reason: "the secret contains characters not allowed in an HTTP header"
                            .into(),
                    })?;
                header.set_sensitive(true);
                Some(header)
            }
        };
        let (client_cert, validation) = match &config.tls {
            None => (None, None),
            Some(tls) => load_tls(tls)?,
        };
        if config.request_timeout.is_zero() {
            return Err(Error::InvalidConfig {
                field: "request_timeout",
                reason: "must be more than zero".into(),
            });
        }
        Ok(ClientSettings {
            authorization,
            client_cert,
            validation,
            timeout: config.request_timeout,
        })
    }

    pub(crate) fn build(
        &self,
        builder: TransportBuilder,
        endpoint: &str,
    ) -> Result<Elasticsearch, Error> {
        let mut builder = builder.disable_proxy().timeout(self.timeout);
        if let Some(auth) = &self.authorization {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        if let Some(pem) = &self.client_cert {
            builder = builder.auth(Credentials::Certificate(ClientCertificate::Pem(
                pem.clone(),
            )));
        }
        match &self.validation {
            None => {}
            Some(Validation::None) => {
                builder = builder.cert_validation(CertificateValidation::None)
            }
            Some(Validation::Full(pem)) => {
                let cert = Certificate::from_pem(pem).map_err(|e| Error::InvalidConfig {
                    field: "tls.ca_file",
                    reason: e.to_string(),
                })?;
                builder = builder.cert_validation(CertificateValidation::Full(cert));
            }
        }
        let transport = builder.build().map_err(|source| Error::BuildClient {
            endpoint: endpoint.to_owned(),
            source,
        })?;
        Ok(Elasticsearch::new(transport))
    }
}

fn read_pem(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Tls {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// How the server certificate is checked.
#[derive(Clone)]
enum Validation {
    /// Not at all (`insecure_skip_verify`).
    None,
    /// Against these PEM CA certificates.
    Full(Vec<u8>),
}

fn load_tls(tls: &TlsConfig) -> Result<(Option<Vec<u8>>, Option<Validation>), Error> {
    let validation = if tls.insecure_skip_verify {
        Some(Validation::None)
    } else if let Some(ca) = &tls.ca_file {
        let pem = read_pem(ca)?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Tls {
                path: ca.clone(),
                reason: "no PEM certificate found".into(),
            });
        }
        Certificate::from_pem(&pem).map_err(|e| Error::Tls {
            path: ca.clone(),
            reason: e.to_string(),
        })?;
        Some(Validation::Full(pem))
    } else {
        None
    };
    let client_cert = match (&tls.cert_file, &tls.key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let mut pem = read_pem(cert)?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::Tls {
                    path: cert.clone(),
                    reason: "no PEM certificate found".into(),
                });
            }
            let key_pem = read_pem(key)?;
            if !String::from_utf8_lossy(&key_pem).contains("PRIVATE KEY-----") {
                return Err(Error::Tls {
                    path: key.clone(),
                    reason: "no PEM private key found".into(),
                });
            }
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            Some(pem)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::InvalidConfig {
                field: "tls",
                reason: "cert_file and key_file must be given together".into(),
            })
        }
    };
    Ok((client_cert, validation))
}

/// One endpoint with its own client.
pub(crate) struct Endpoint {
    pub url: String,
    pub client: Elasticsearch,
    cool: CoolDown,
}

/// The forwarder's endpoints: round-robin, skipping endpoints that are
/// cooling down after a failure.
pub(crate) struct Endpoints {
    list: Vec<Endpoint>,
    next: AtomicUsize,
    cooldown: Duration,
}

impl Endpoints {
    pub(crate) fn new(config: &ElasticsearchConfig) -> Result<Endpoints, Error> {
        let urls = parse_endpoints(&config.endpoints)?;
        let settings = ClientSettings::load(config)?;
        let mut list = Vec::new();
        for (url, name) in urls.into_iter().zip(&config.endpoints) {
            let client = settings.build(
                TransportBuilder::new(SingleNodeConnectionPool::new(url)),
                name,
            )?;
            list.push(Endpoint {
                url: name.clone(),
                client,
                cool: CoolDown::default(),
            });
        }
        Ok(Endpoints {
            list,
            next: AtomicUsize::new(0),
            // Long enough to spread load away from a dead node, short enough
            // to come back quickly after a restart.
            cooldown: Duration::from_secs(5)
                .min(config.retry.max_backoff.max(Duration::from_millis(100))),
        })
    }

    /// The next endpoint to use: round-robin over the healthy ones; when all
    /// are cooling down, the one whose cool-down ends first.
    pub(crate) fn pick(&self) -> (usize, &Endpoint) {
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        for i in 0..n {
            let idx = (start + i) % n;
            if self.list[idx].cool.ready(now) {
                return (idx, &self.list[idx]);
            }
        }
        let idx = (0..n)
            .min_by_key(|&i| self.list[i].cool.until())
            .unwrap_or(0);
        (idx, &self.list[idx])
    }

    /// Marks an endpoint as failing: skipped for the cool-down period.
    pub(crate) fn failed(&self, idx: usize) {
        if self.list.len() > 1 {
            self.list[idx].cool.set(Instant::now() + self.cooldown);
        }
    }

    /// Marks an endpoint as working again.
    pub(crate) fn succeeded(&self, idx: usize) {
        self.list[idx].cool.clear();
    }
}

/// When an endpoint may be used again (`None`: now).
#[derive(Default)]
struct CoolDown(Mutex<Option<Instant>>);

impl CoolDown {
    fn ready(&self, now: Instant) -> bool {
        self.0
            .lock()
            .map(|g| g.is_none_or(|t| t <= now))
            .unwrap_or(true)
    }
    fn until(&self) -> Option<Instant> {
        self.0.lock().ok().and_then(|g| *g)
    }
    fn set(&self, t: Instant) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(t);
        }
    }
    fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            *g = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_endpoint;

    #[test]
    fn validates_endpoints() {
        assert!(parse_endpoint("http://127.0.0.1:9200").is_ok());
        assert_eq!(
            parse_endpoint("https://es/prefix").unwrap().path(),
            "/prefix/"
        );
        assert!(parse_endpoint("ftp://es").is_err());
        assert!(parse_endpoint("es:9200").is_err());
        assert!(parse_endpoint("http://user:pw@es:9200").is_err());
        assert!(parse_endpoints(&[]).is_err());
    }

    #[test]
    fn secret_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        assert_eq!(read_secret(&p).unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        let err = read_secret(&p).unwrap_err();
        assert!(err.to_string().contains("pw"));
        assert!(!err.is_retryable());
        assert!(read_secret(&dir.path().join("missing")).is_err());
    }
}
