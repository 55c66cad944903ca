//! Forwarder configuration: typed, validated values (the daemon parses YAML
//! into these; see `elasticsearch:` in the README's configuration reference).

use crate::error::Error;
use crate::index::{sanitize_index_name, IndexNameTemplate, IndexTarget};
use elasticsearch::http::Url;
use logferry_core::ConfigProblem;
use std::path::PathBuf;
use std::time::Duration;

/// How requests authenticate. Secrets are read from files at
/// [`Forwarder::new`](crate::Forwarder::new), and again after a `401`
/// answer (a rotated Kubernetes Secret is picked up without a restart); a
/// trailing newline is removed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Auth {
    /// HTTP Basic: `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// File holding the password.
        password_file: PathBuf,
    },
    /// API key: `Authorization: ApiKey <encoded>`. The file holds either the
    /// `encoded` value Elasticsearch returns (base64 of `id:api_key`) or
    /// `id:api_key`, which is encoded here.
    ApiKey {
        /// File holding the key.
        api_key_file: PathBuf,
    },
    /// Bearer token (e.g. a service account token): `Authorization: Bearer <token>`.
    Bearer {
        /// File holding the token.
        token_file: PathBuf,
    },
}

/// TLS settings for `https://` endpoints.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. Dangerous; only for tests.
    pub insecure_skip_verify: bool,
}

/// When a bulk request is sent: whichever limit is reached first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BatchConfig {
    /// Most documents per bulk request (default 1,000).
    pub max_events: usize,
    /// Most bytes of uncompressed NDJSON body per bulk request (default 5 MiB).
    /// A single document larger than this is sent alone.
    pub max_bytes: usize,
    /// Longest time a document waits for its request to fill up (default 1 s).
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 1000,
            max_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(1),
        }
    }
}

/// Request body compression.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Compression {
    /// Plain NDJSON.
    None,
    /// gzip (RFC 1952) at [`ElasticsearchConfig::compression_level`], sent
    /// with `Content-Encoding: gzip`.
    #[default]
    Gzip,
}

/// The gzip levels [`ElasticsearchConfig::compression_level`] accepts: 1
/// (fastest) to 9 (smallest), as zlib counts them.
pub const COMPRESSION_LEVELS: std::ops::RangeInclusive<u32> = 1..=9;

/// Backoff for retryable failures. Retries never stop: the log files are the
/// buffer, so reading simply pauses while Elasticsearch is unavailable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RetryConfig {
    /// First delay (default 100 ms); doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Largest delay (default 30 s). Each delay gets full jitter between
    /// half and all of its value so that a DaemonSet does not retry in step.
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// The index template logferry installs when `install_template` is set
/// (see [`crate::template`]). Installing needs the `manage_index_templates`
/// cluster privilege; without it the forwarder logs one warning and ships
/// anyway.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TemplateOptions {
    /// Template name; `None` derives it from the target
    /// ([`crate::template::template_name`]) so that two releases writing to
    /// different targets never overwrite each other's template.
    pub name: Option<String>,
    /// Template priority (default 501: above Elasticsearch's built-in
    /// `logs-*-*` template at 100 and the 500 Elastic recommends exceeding
    /// for overlapping patterns).
    pub priority: u32,
    /// Component templates to compose (`composed_of`), applied before the
    /// template's own mappings.
    pub composed_of: Vec<String>,
    /// ILM policy for the indices (`index.lifecycle.name`).
    pub ilm_policy: Option<String>,
    /// Data stream lifecycle retention (`lifecycle.data_retention`, e.g.
    /// `30d`); data stream targets only.
    pub data_retention: Option<String>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        TemplateOptions {
            name: None,
            priority: 501,
            composed_of: Vec::new(),
            ilm_policy: None,
            data_retention: None,
        }
    }
}

/// Everything the [`Forwarder`](crate::Forwarder) needs to know about
/// Elasticsearch.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ElasticsearchConfig {
    /// `http(s)://host:port` URLs, used round-robin; an endpoint that fails
    /// (connection error, timeout, 5xx) is skipped for a cool-down period.
    pub endpoints: Vec<String>,
    /// Index or data stream.
    pub target: IndexTarget,
    /// Authentication, if any.
    pub auth: Option<Auth>,
    /// TLS settings, if any.
    pub tls: Option<TlsConfig>,
    /// Batching limits.
    pub batch: BatchConfig,
    /// Bulk requests in flight at once (default 4).
    pub concurrency: usize,
    /// Body compression.
    pub compression: Compression,
    /// gzip level, in [`COMPRESSION_LEVELS`] (default 1). In the benchmark's
    /// 50-file run, level 1 sends 13 % of the bulk body, level 3 10 % for
    /// +36 % of logferry's CPU, level 6 9 % for +63 %
    /// (crates/logferry-bench/README.md, "gzip"). Ignored with
    /// [`Compression::None`].
    pub compression_level: u32,
    /// Retry backoff.
    pub retry: RetryConfig,
    /// Timeout of one HTTP request, connect to last response byte (e.g. 60 s).
    pub request_timeout: Duration,
    /// Index that receives documents Elasticsearch refused for good
    /// (non-retryable item errors), with the error and the original document.
    pub dead_letter_index: String,
    /// Directory of the dead-letter file (`dead-letter.ndjson`), written when
    /// even the dead-letter index refuses a document. Normally `data_dir`.
    pub dead_letter_dir: PathBuf,
    /// Install the index template (or data stream template) at start.
    pub install_template: bool,
    /// The template's name, priority, components and lifecycle.
    pub template: TemplateOptions,
    /// Ingest pipeline for every document (`?pipeline=` on bulk requests).
    pub pipeline: Option<String>,
    /// Extra HTTP headers sent with every request (not `Authorization`).
    pub headers: Vec<(String, String)>,
    /// HTTP(S) proxy URL (`http://user:password@proxy:3128`); when `None`, the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` environment
    /// variables apply.
    pub proxy: Option<String>,
    /// Bounds of the dead-letter file on the node's disk.
    pub dead_letter_file: DeadLetterFileConfig,
}

/// Bounds of the dead-letter file (`dead-letter.ndjson` in `dead_letter_dir`).
///
/// The file is rotated when the next write would take it past `max_bytes`
/// (`dead-letter.ndjson.1` is the newest rotated copy, up to `.{max_files -
/// 1}`). Rotated copies are never deleted by logferry: when every slot is
/// taken the file is *full*, documents that need it are not acknowledged
/// (reading pauses, the log files stay the buffer) and a loud error says so
/// until an operator moves the copies away. At most `max_bytes × max_files`
/// bytes on disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DeadLetterFileConfig {
    /// Largest size of one file, in bytes (default 100 MiB).
    pub max_bytes: u64,
    /// Files kept, the current one included (default 5).
    pub max_files: usize,
}

impl Default for DeadLetterFileConfig {
    fn default() -> Self {
        DeadLetterFileConfig {
            max_bytes: 100 << 20,
            max_files: 5,
        }
    }
}

impl ElasticsearchConfig {
    /// A configuration with the documented defaults for one endpoint, writing
    /// to the data stream [`IndexTarget::default`].
    pub fn new(endpoint: impl Into<String>, dead_letter_dir: impl Into<PathBuf>) -> Self {
        ElasticsearchConfig {
            endpoints: vec![endpoint.into()],
            target: IndexTarget::default(),
            auth: None,
            tls: None,
            batch: BatchConfig::default(),
            concurrency: 4,
            compression: Compression::Gzip,
            compression_level: 1,
            retry: RetryConfig::default(),
            request_timeout: Duration::from_secs(60),
            dead_letter_index: "logferry-dead-letter".to_owned(),
            dead_letter_dir: dead_letter_dir.into(),
            install_template: true,
            template: TemplateOptions::default(),
            pipeline: None,
            headers: Vec::new(),
            proxy: None,
            dead_letter_file: DeadLetterFileConfig::default(),
        }
    }
}

impl ElasticsearchConfig {
    /// Every problem of this configuration, with key paths as the daemon's
    /// `elasticsearch` section names them (`endpoints[1]`, `batch.max_events`,
    /// `data_stream.dataset`). Empty means [`Forwarder::new`](crate::Forwarder::new)
    /// accepts the configuration (it can still fail on unreadable secret or
    /// PEM files, which are read there).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        self.errors()
            .into_iter()
            .map(|(key, e)| {
                let message = match e {
                    Error::InvalidConfig { reason, .. } => reason,
                    Error::InvalidEndpoint { endpoint, reason } => {
                        format!("invalid endpoint {endpoint:?}: {reason}")
                    }
                    other => other.to_string(),
                };
                ConfigProblem::new(key, message)
            })
            .collect()
    }

    /// Every problem as the [`Error`] [`Forwarder::new`](crate::Forwarder::new)
    /// returns for it, with its key path.
    pub(crate) fn errors(&self) -> Vec<(String, Error)> {
        let mut out = Vec::new();
        let mut invalid = |field: &'static str, reason: &str| {
            out.push((
                field.to_owned(),
                Error::InvalidConfig {
                    field,
                    reason: reason.to_owned(),
                },
            ));
        };
        if self.endpoints.is_empty() {
            invalid("endpoints", "at least one endpoint is required");
        }
        if self.batch.max_events == 0 {
            invalid("batch.max_events", "must be at least 1");
        }
        if self.batch.max_bytes == 0 {
            invalid("batch.max_bytes", "must be at least 1 byte");
        }
        if self.concurrency == 0 {
            invalid("concurrency", "must be at least 1");
        }
        if !COMPRESSION_LEVELS.contains(&self.compression_level) {
            invalid(
                "compression_level",
                &format!(
                    "must be a gzip level from {} (fastest) to {} (smallest), got {}; use compression: none for no compression",
                    COMPRESSION_LEVELS.start(),
                    COMPRESSION_LEVELS.end(),
                    self.compression_level
                ),
            );
        }
        if self.retry.initial_backoff.is_zero() {
            invalid("retry.initial_backoff", "must be more than zero");
        }
        if self.retry.max_backoff < self.retry.initial_backoff {
            invalid(
                "retry.max_backoff",
                "must not be smaller than initial_backoff",
            );
        }
        if self.request_timeout.is_zero() {
            invalid("request_timeout", "must be more than zero");
        }
        if sanitize_index_name(&self.dead_letter_index) != self.dead_letter_index {
            invalid("dead_letter_index", "not a valid index name (lower-case, no \\ / * ? \" < > | , # : or space, not starting with - _ +)");
        }
        if let IndexTarget::DataStream {
            kind,
            dataset,
            namespace,
        } = &self.target
        {
            for (field, v) in [
                ("data_stream.type", kind),
                ("data_stream.dataset", dataset),
                ("data_stream.namespace", namespace),
            ] {
                if field == "data_stream.namespace" && v.contains('{') {
                    // Rendered per file, then sanitized like the reroute
                    // processor does (see `index::data_stream_part`).
                    if let Err(Error::InvalidIndexTemplate { reason, .. }) =
                        IndexNameTemplate::parse(v)
                    {
                        invalid(field, &reason);
                    }
                    continue;
                }
                if v.is_empty() || v.contains('-') {
                    invalid(field, "must be non-empty and contain no '-'");
                } else if sanitize_index_name(v) != *v {
                    invalid(field, "must be lower-case, without \\ / * ? \" < > | , # : or space, not starting with _ or +");
                }
            }
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                invalid(
                    "tls.key_file",
                    "cert_file and key_file must be given together",
                );
            }
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if let Err(err) = parse_endpoint(e) {
                out.push((format!("endpoints[{i}]"), err));
            }
        }
        out
    }
}

/// Parses every endpoint.
pub(crate) fn parse_endpoints(endpoints: &[String]) -> Result<Vec<Url>, Error> {
    if endpoints.is_empty() {
        return Err(Error::InvalidConfig {
            field: "endpoints",
            reason: "at least one endpoint is required".into(),
        });
    }
    endpoints.iter().map(|e| parse_endpoint(e)).collect()
}

pub(crate) fn parse_endpoint(endpoint: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let mut url = Url::parse(endpoint).map_err(|e| invalid(e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "scheme must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not allowed; use auth with a secret file".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("query and fragment are not allowed".into()));
    }
    // A path prefix (`https://proxy/es`) must end with `/` for `Url::join`.
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_level_outside_1_to_9_is_a_problem_naming_the_range() {
        for (level, ok) in [(0, false), (1, true), (6, true), (9, true), (10, false)] {
            let mut c = ElasticsearchConfig::new("http://127.0.0.1:9200", "/tmp");
            c.compression_level = level;
            let problems = c.problems();
            if ok {
                assert!(problems.is_empty(), "level {level}: {problems:?}");
            } else {
                assert_eq!(problems.len(), 1, "level {level}: {problems:?}");
                let text = problems[0].to_string();
                assert!(text.contains("compression_level"), "{text}");
                assert!(text.contains("from 1 (fastest) to 9 (smallest)"), "{text}");
            }
        }
    }
}
