//! Building `elasticsearch` clients from an [`ElasticsearchConfig`], and the
//! forwarder's endpoint rotation.
//!
//! Requests go through the official client's transport
//! ([`elasticsearch::http::transport::Transport`]), which adds the client's
//! `User-Agent` and `x-elastic-client-meta` headers, plus the configured
//! extra headers. The proxy is [`ElasticsearchConfig::proxy`] when set;
//! otherwise the standard `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` environment variables apply (reqwest's system proxy rules).
//!
//! The forwarder's `Authorization` header comes from `Credentials`, which
//! re-reads the secret files on demand (after a `401`), so a rotated Secret is
//! picked up without a restart.

use crate::config::{parse_endpoints, Auth, ElasticsearchConfig, TlsConfig};
use crate::error::Error;
use base64::Engine as _;
use elasticsearch::auth::{ClientCertificate, Credentials as EsCredentials};
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::Url;
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
    let mut builder = TransportBuilder::new(pool);
    if let Some(auth) = Credentials::load(config.auth.clone())?.header() {
        builder = builder.header(AUTHORIZATION, auth);
    }
    settings.build(builder, &config.endpoints.join(","))
}

/// The `Authorization` header value, loaded from the secret files and
/// re-loaded on demand ([`Credentials::reload`]).
pub(crate) struct Credentials {
    auth: Option<Auth>,
    header: std::sync::RwLock<Option<HeaderValue>>,
}

impl Credentials {
    /// Reads the secret files of `auth`.
    ///
    /// # Errors
    ///
    /// [`Error::ReadSecret`], or [`Error::InvalidConfig`] for a secret that
    /// cannot be an HTTP header value.
    pub(crate) fn load(auth: Option<Auth>) -> Result<Credentials, Error> {
        let header = auth.as_ref().map(authorization).transpose()?;
        Ok(Credentials {
            auth,
            header: std::sync::RwLock::new(header),
        })
    }

    /// The current header value, if any authentication is configured.
    pub(crate) fn header(&self) -> Option<HeaderValue> {
        self.header.read().ok().and_then(|h| h.clone())
    }

    /// Reads the secret files again. Returns whether the header changed.
    ///
    /// # Errors
    ///
    /// As [`Credentials::load`]; the previous value is kept.
    pub(crate) fn reload(&self) -> Result<bool, Error> {
        let Some(auth) = &self.auth else {
            return Ok(false);
        };
        let new = authorization(auth)?;
        let mut current = self
            .header
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = current.as_ref() != Some(&new);
        *current = Some(new);
        Ok(changed)
    }
}

/// The `Authorization` value for `auth`, from its secret file.
fn authorization(auth: &Auth) -> Result<HeaderValue, Error> {
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
    let mut header = HeaderValue::from_str(&value).map_err(|_| Error::InvalidConfig {
        field: "auth",
        reason: "the secret contains characters not allowed in an HTTP header".into(),
    })?;
    header.set_sensitive(true);
    Ok(header)
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

/// TLS, timeout, proxy and extra headers, loaded from files once.
#[derive(Clone)]
pub(crate) struct ClientSettings {
    headers: HeaderMap,
    proxy: Option<Url>,
    client_cert: Option<Vec<u8>>,
    validation: Option<Validation>,
    timeout: Duration,
}

impl ClientSettings {
    pub(crate) fn load(config: &ElasticsearchConfig) -> Result<ClientSettings, Error> {
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
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let invalid = |reason: &str| Error::InvalidConfig {
                field: "headers",
                reason: format!("{name:?}: {reason}"),
            };
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid HTTP header name"))?;
            if name == AUTHORIZATION {
                return Err(invalid("set authentication with auth, not a header"));
            }
            let value =
                HeaderValue::from_str(value).map_err(|_| invalid("not a valid header value"))?;
            headers.insert(name, value);
        }
        let proxy = config
            .proxy
            .as_deref()
            .map(|p| {
                let url = Url::parse(p).map_err(|e| Error::InvalidConfig {
                    field: "proxy",
                    reason: format!("{p:?}: {e}"),
                })?;
                if url.scheme() != "http" && url.scheme() != "https" {
                    return Err(Error::InvalidConfig {
                        field: "proxy",
                        reason: format!("{p:?}: expected an http:// or https:// URL"),
                    });
                }
                Ok(url)
            })
            .transpose()?;
        Ok(ClientSettings {
            headers,
            proxy,
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
        let mut builder = builder.timeout(self.timeout).headers(self.headers.clone());
        if let Some(proxy) = &self.proxy {
            let mut url = proxy.clone();
            let user = percent_decode(url.username());
            let password = url.password().map(percent_decode);
            let _ = url.set_username("");
            let _ = url.set_password(None);
            builder = match (user.is_empty(), password) {
                (false, Some(p)) => builder.proxy(url, Some(&user), Some(&p)),
                _ => builder.proxy(url, None, None),
            };
        }
        if let Some(pem) = &self.client_cert {
            builder = builder.auth(EsCredentials::Certificate(ClientCertificate::Pem(
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

/// `%XX` escapes of a URL's user info decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    /// The `Authorization` header sent with every request.
    pub credentials: Credentials,
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
            credentials: Credentials::load(config.auth.clone())?,
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

    /// Headers every request carries besides the transport's own: today
    /// `Authorization`.
    pub(crate) fn auth_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = self.credentials.header() {
            h.insert(AUTHORIZATION, v);
        }
        h
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
