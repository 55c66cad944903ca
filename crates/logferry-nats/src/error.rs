//! The crate's error type.

use std::path::PathBuf;

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid (see [`crate::Invalid`]).
    #[error("invalid NATS configuration: {0}")]
    Config(String),
    /// A secret (password, token, NKey seed, credentials) could not be read.
    #[error("cannot read the {what} from {path}")]
    Secret {
        /// What the secret is.
        what: &'static str,
        /// The file, or `$NAME` for an environment variable.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the credentials (authorization violation,
    /// authentication failure). Retrying cannot help.
    #[error("NATS server {servers} refused the credentials: {reason}")]
    Auth {
        /// The configured servers.
        servers: String,
        /// The client's description of the refusal.
        reason: String,
    },
    /// No server could be reached.
    #[error("cannot connect to NATS server {servers}")]
    Connect {
        /// The configured servers.
        servers: String,
        /// The cause.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A JetStream API call (stream or consumer lookup/creation) failed.
    #[error("JetStream {operation} failed")]
    JetStream {
        /// What was attempted, e.g. `consumer create on stream LOGS`.
        operation: String,
        /// The cause.
        #[source]
        source: async_nats::Error,
    },
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}")]
    Subscribe {
        /// The subject pattern.
        subject: String,
        /// The cause.
        #[source]
        source: async_nats::SubscribeError,
    },
    /// Stopped (shutdown or drain timeout) before the operation finished.
    #[error("stopped before the operation finished")]
    Cancelled,
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::JetStream { .. } | Error::Subscribe { .. }
        )
    }

    /// Whether the configuration (including credentials) is at fault: the
    /// daemon exits 1 for these.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::Config(_) | Error::Secret { .. } | Error::Auth { .. }
        )
    }

    /// A bounded label for metrics.
    pub fn as_label(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Secret { .. } => "secret",
            Error::Auth { .. } => "auth",
            Error::Connect { .. } => "connect",
            Error::JetStream { .. } => "jetstream",
            Error::Subscribe { .. } => "subscribe",
            Error::Cancelled => "cancelled",
        }
    }
}
