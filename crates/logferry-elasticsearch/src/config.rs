//! Forwarder configuration: typed, validated values (the daemon parses YAML
//! into these; see `elasticsearch:` in SPEC.md).

use std::path::PathBuf;
use std::time::Duration;

/// Where documents go.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum IndexTarget {
    /// A regular index whose name is rendered per record from `template`:
    /// `strftime` specifiers (chrono, on the record's UTC time) and
    /// `{field.path}` placeholders naming a document field
    /// (`logs-{kubernetes.namespace}-%Y.%m.%d`). See [`crate::index`] for the
    /// rendering and the character replacement rule.
    Index {
        /// The template, e.g. `logs-k8s-%Y.%m.%d`.
        template: String,
    },
    /// A data stream named `<kind>-<dataset>-<namespace>`
    /// (Elastic's data stream naming scheme:
    /// <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/data-streams.html>),
    /// written with the `create` op.
    DataStream {
        /// Data stream type, normally `logs`.
        kind: String,
        /// Dataset, e.g. `kubernetes`.
        dataset: String,
        /// Namespace, e.g. `default`.
        namespace: String,
    },
}

/// How requests authenticate. Secrets are read from files once, at
/// [`Forwarder::new`](crate::Forwarder::new); a trailing newline is removed.
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
    /// gzip (fast level), sent with `Content-Encoding: gzip`.
    #[default]
    Gzip,
}

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
}

impl ElasticsearchConfig {
    /// A configuration with the documented defaults for one endpoint, writing
    /// to indices `logs-k8s-%Y.%m.%d`.
    pub fn new(endpoint: impl Into<String>, dead_letter_dir: impl Into<PathBuf>) -> Self {
        ElasticsearchConfig {
            endpoints: vec![endpoint.into()],
            target: IndexTarget::Index {
                template: "logs-k8s-%Y.%m.%d".to_owned(),
            },
            auth: None,
            tls: None,
            batch: BatchConfig::default(),
            concurrency: 4,
            compression: Compression::Gzip,
            retry: RetryConfig::default(),
            request_timeout: Duration::from_secs(60),
            dead_letter_index: "logferry-dead-letter".to_owned(),
            dead_letter_dir: dead_letter_dir.into(),
            install_template: true,
        }
    }
}
