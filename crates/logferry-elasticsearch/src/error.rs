//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Configuration problems ([`Error::InvalidEndpoint`], [`Error::ReadSecret`],
/// [`Error::Tls`], [`Error::InvalidIndexTemplate`], [`Error::InvalidConfig`],
/// [`Error::BuildClient`]) are found by [`Forwarder::new`](crate::Forwarder::new)
/// and are never retryable. Delivery problems ([`Error::Transport`],
/// [`Error::Status`], [`Error::InvalidResponse`]) are retried by the forwarder
/// itself and surface only in logs and through
/// [`ForwarderEvents`](crate::ForwarderEvents). Secrets never appear in a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint is not an `http://` or `https://` URL.
    #[error("invalid Elasticsearch endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A secret file (password, API key, token) could not be read or is empty.
    #[error("failed to read secret file {path}")]
    ReadSecret {
        /// The file.
        path: PathBuf,
        /// The I/O error (or `InvalidData` for an empty file).
        #[source]
        source: std::io::Error,
    },
    /// A TLS file (CA, client certificate, key) could not be read or parsed.
    #[error("failed to load TLS file {path}: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// The index name template does not parse.
    #[error("invalid index name template {template:?}: {reason}")]
    InvalidIndexTemplate {
        /// The template as configured.
        template: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Any other invalid setting.
    #[error("invalid elasticsearch configuration: {field}: {reason}")]
    InvalidConfig {
        /// The setting's key path (`batch.max_events`).
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// The `elasticsearch` client could not be built for an endpoint.
    #[error("failed to build the Elasticsearch client for {endpoint}")]
    BuildClient {
        /// The endpoint.
        endpoint: String,
        /// The client's error.
        #[source]
        source: elasticsearch::http::transport::BuildError,
    },
    /// A request could not be sent or its response not read (connection
    /// refused or reset, timeout, TLS failure).
    #[error("{operation} request to {endpoint} failed")]
    Transport {
        /// What was being done (`bulk`, `GET /`, `PUT _index_template`).
        operation: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The client's error.
        #[source]
        source: elasticsearch::Error,
    },
    /// Elasticsearch answered with an unexpected HTTP status.
    #[error("{operation} request to {endpoint} answered HTTP {status}: {body}")]
    Status {
        /// What was being done.
        operation: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most 512 bytes).
        body: String,
    },
    /// A response body was not what the API documents.
    #[error("{operation} response from {endpoint} is invalid: {reason}")]
    InvalidResponse {
        /// What was being done.
        operation: &'static str,
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// Writing the dead-letter file failed.
    #[error("failed to append to dead-letter file {path}")]
    DeadLetterFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The dead-letter file and every rotated copy are full: nothing more is
    /// written (and what needs it is not acknowledged) until an operator
    /// moves the copies away.
    #[error("dead-letter file {path} is full ({max_files} files of {max_bytes} bytes): move the rotated copies (.1, .2, …) away")]
    DeadLetterFull {
        /// The current file.
        path: PathBuf,
        /// `dead_letter_file.max_bytes`.
        max_bytes: u64,
        /// `dead_letter_file.max_files`.
        max_files: usize,
    },
}

impl Error {
    /// Whether trying the same thing again later can succeed: transport
    /// failures, `429`, `5xx`, `401`/`403` (credentials may be fixed while we
    /// wait) and invalid responses are; configuration errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::InvalidResponse { .. } => true,
            Error::Status { status, .. } => {
                matches!(*status, 401 | 403 | 408 | 429) || *status >= 500
            }
            Error::DeadLetterFile { .. } | Error::DeadLetterFull { .. } => true,
            Error::InvalidEndpoint { .. }
            | Error::ReadSecret { .. }
            | Error::Tls { .. }
            | Error::InvalidIndexTemplate { .. }
            | Error::InvalidConfig { .. }
            | Error::BuildClient { .. } => false,
        }
    }

    /// A short label from a closed set, for metrics.
    pub fn as_label(&self) -> &'static str {
        match self {
            Error::InvalidEndpoint { .. } => "invalid_endpoint",
            Error::ReadSecret { .. } => "read_secret",
            Error::Tls { .. } => "tls",
            Error::InvalidIndexTemplate { .. } => "invalid_index_template",
            Error::InvalidConfig { .. } => "invalid_config",
            Error::BuildClient { .. } => "build_client",
            Error::Transport { source, .. } if source.is_timeout() => "timeout",
            Error::Transport { .. } => "transport",
            Error::Status { .. } => "http_status",
            Error::InvalidResponse { .. } => "invalid_response",
            Error::DeadLetterFile { .. } => "dead_letter_file",
            Error::DeadLetterFull { .. } => "dead_letter_full",
        }
    }
}
