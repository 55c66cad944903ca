//! Configuration of the NATS source and the JetStream publisher, with the
//! defaults and the checks (`validate`) that the binary's `source.nats` and
//! `nats` sections rely on.

use crate::payload::PayloadOptions;
use crate::subject::{check_pattern, SubjectTemplate};
use std::path::PathBuf;
use std::time::Duration;

/// One configuration problem: the key (relative to the section, e.g.
/// `subjects[1]`) and what is wrong.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Invalid {
    /// Key path relative to the section.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(out: &mut Vec<Invalid>, key: impl Into<String>, message: impl Into<String>) {
    out.push(Invalid {
        key: key.into(),
        message: message.into(),
    });
}

/// Where a secret is read from, at each connection attempt. Its value is
/// never logged (nor written into the configuration text).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Secret {
    /// A file (trailing newline ignored), e.g. a mounted Kubernetes Secret.
    File(PathBuf),
    /// An environment variable, by name (Fly.io passes secrets this way).
    Env(String),
}

/// How to authenticate. Secrets are read at connect time and never logged.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Auth {
    /// User and password (Fly: the organisation slug and an access token).
    UserPassword {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// A token.
    Token {
        /// The token.
        token: Secret,
    },
    /// An NKey: the seed (`SU…`) signs the server's nonce.
    NKey {
        /// File holding the seed.
        seed_file: PathBuf,
    },
    /// A `.creds` file (user JWT + NKey seed), as `nsc` writes it.
    Credentials {
        /// The credentials file.
        credentials_file: PathBuf,
    },
}

/// TLS to the server (`tls://` URLs, or a server that requires TLS).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TlsConfig {
    /// CA bundle (PEM) to verify the server; system roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM).
    pub key_file: Option<PathBuf>,
    /// Require TLS even when the URL is `nats://`.
    pub required: bool,
}

/// Reconnect backoff: doubles from `initial` up to `max`, with jitter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Backoff {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based), with ±25 % jitter.
    pub fn delay(&self, attempt: usize) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = 0.75 + f64::from(nanos % 1000) / 2000.0;
        exp.mul_f64(jitter)
    }
}

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Connection {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`).
    pub servers: Vec<String>,
    /// Authentication.
    pub auth: Option<Auth>,
    /// TLS.
    pub tls: Option<TlsConfig>,
    /// Client name shown by the server (`connz`).
    pub name: String,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// When the first connection fails: keep trying with `reconnect` backoff
    /// (`true`, default) or give up with the error (`false`). Refused
    /// credentials are never retried at start.
    pub retry_on_start: bool,
    /// Backoff between connection attempts (at start and after a loss).
    pub reconnect: Backoff,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            servers: vec!["nats://127.0.0.1:4222".into()],
            auth: None,
            tls: None,
            name: "logferry".into(),
            connect_timeout: Duration::from_secs(5),
            retry_on_start: true,
            reconnect: Backoff::default(),
        }
    }
}

impl Connection {
    fn validate(&self, out: &mut Vec<Invalid>) {
        if self.servers.is_empty() {
            invalid(
                out,
                "servers",
                "at least one server URL like \"nats://127.0.0.1:4222\"",
            );
        }
        for (i, s) in self.servers.iter().enumerate() {
            let ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|h| !h.is_empty()));
            if !ok {
                invalid(
                    out,
                    format!("servers[{i}]"),
                    format!("expected a URL like \"nats://host:4222\" or \"tls://host:4222\", got {s:?}"),
                );
            }
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                invalid(out, "tls.key_file", "cert_file and key_file go together");
            }
        }
        if self.reconnect.max < self.reconnect.initial {
            invalid(
                out,
                "reconnect.max_backoff",
                "must not be smaller than initial_backoff",
            );
        }
        if self.connect_timeout.is_zero() {
            invalid(out, "connect_timeout", "must be more than 0");
        }
    }

    /// The servers as one string, for messages.
    pub fn servers_text(&self) -> String {
        self.servers.join(",")
    }
}

/// A durable JetStream pull consumer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JetStreamConsumer {
    /// The stream to read (it must exist).
    pub stream: String,
    /// The durable consumer's name, shared by every aggregator that should
    /// split the stream; created if missing.
    pub durable: String,
    /// How long JetStream waits for an acknowledgement before it delivers a
    /// message again (to this or another aggregator).
    pub ack_wait: Duration,
    /// Most messages delivered and not yet acknowledged (bounds memory and
    /// what an aggregator holds when it dies).
    pub max_ack_pending: usize,
}

impl JetStreamConsumer {
    /// A consumer with the default `ack_wait` (60 s) and `max_ack_pending` (20,000).
    pub fn new(stream: impl Into<String>, durable: impl Into<String>) -> Self {
        JetStreamConsumer {
            stream: stream.into(),
            durable: durable.into(),
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 20_000,
        }
    }
}

fn check_name(out: &mut Vec<Invalid>, key: &str, name: &str) {
    // Stream and consumer names become subject tokens of the JetStream API.
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        invalid(
            out,
            key,
            format!("expected a name without whitespace, '.', '*', '>', '/', got {name:?}"),
        );
    }
}

/// `source.nats`: what to read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SourceConfig {
    /// Connection.
    pub connection: Connection,
    /// Subject patterns to subscribe to (Fly: `logs.>`, `logs.myapp.>`, `logs.*.ord.*`).
    /// With `jetstream`, the consumer's filter (empty or `[">"]`: the whole stream).
    pub subjects: Vec<String>,
    /// Queue group: members share the messages (each goes to one member).
    /// Core NATS only.
    pub queue_group: Option<String>,
    /// Read a durable JetStream consumer instead of subscribing (at-least-once).
    pub jetstream: Option<JetStreamConsumer>,
    /// How payloads become documents.
    pub payload: PayloadOptions,
    /// Subject patterns of messages to ship (empty: all).
    pub include: Vec<String>,
    /// Subject patterns of messages not to ship.
    pub exclude: Vec<String>,
    /// Most records per batch handed to the pipeline.
    pub batch_max_records: usize,
    /// Messages the client buffers per subscription before it drops (core
    /// NATS; counted as `slow_consumer`).
    pub subscription_capacity: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            connection: Connection::default(),
            subjects: vec!["logs.>".into()],
            queue_group: None,
            jetstream: None,
            payload: PayloadOptions::default(),
            include: Vec::new(),
            exclude: Vec::new(),
            batch_max_records: 500,
            subscription_capacity: 65_536,
        }
    }
}

impl SourceConfig {
    /// Checks every value; returns every problem.
    ///
    /// # Errors
    /// The list of problems, keys relative to `source.nats`.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut out = Vec::new();
        self.connection.validate(&mut out);
        if self.subjects.is_empty() && self.jetstream.is_none() {
            invalid(
                &mut out,
                "subjects",
                "at least one subject pattern like \"logs.>\"",
            );
        }
        for (key, list) in [
            ("subjects", &self.subjects),
            ("include", &self.include),
            ("exclude", &self.exclude),
        ] {
            for (i, s) in list.iter().enumerate() {
                if let Err(m) = check_pattern(s) {
                    invalid(&mut out, format!("{key}[{i}]"), m);
                }
            }
        }
        if let Some(q) = &self.queue_group {
            if q.is_empty() || q.chars().any(char::is_whitespace) {
                invalid(
                    &mut out,
                    "queue",
                    format!("expected a queue group name without whitespace, got {q:?}"),
                );
            }
            if self.jetstream.is_some() {
                invalid(
                    &mut out,
                    "queue",
                    "not used with jetstream: aggregators share a durable consumer instead",
                );
            }
        }
        if let Some(js) = &self.jetstream {
            check_name(&mut out, "jetstream.stream", &js.stream);
            check_name(&mut out, "jetstream.durable", &js.durable);
            if js.ack_wait < Duration::from_secs(1) {
                invalid(&mut out, "jetstream.ack_wait", "must be at least 1s");
            }
            if js.max_ack_pending == 0 {
                invalid(&mut out, "jetstream.max_ack_pending", "must be at least 1");
            }
            if self.subjects.len() > 1 {
                invalid(
                    &mut out,
                    "subjects",
                    "with jetstream, at most one subject (the consumer's filter)",
                );
            }
        }
        if let Some(u) = &self.payload.extra_fields_under {
            if u.contains('.') || u.is_empty() {
                invalid(
                    &mut out,
                    "extra_fields_under",
                    format!("expected a field name without '.', got {u:?}"),
                );
            }
        }
        if self.batch_max_records == 0 {
            invalid(&mut out, "batch_max_records", "must be at least 1");
        }
        if self.subscription_capacity == 0 {
            invalid(&mut out, "subscription_capacity", "must be at least 1");
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

/// A stream the publisher creates when it is missing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StreamSetup {
    /// Stream name.
    pub name: String,
    /// Subjects the stream stores (e.g. `logs.>`).
    pub subjects: Vec<String>,
    /// JetStream's duplicate window: a `Nats-Msg-Id` seen within it is not
    /// stored again.
    pub duplicate_window: Duration,
}

/// The `nats` sink: publish to JetStream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SinkConfig {
    /// Connection.
    pub connection: Connection,
    /// Subject template (see [`SubjectTemplate`]).
    pub subject: String,
    /// Create this stream when it does not exist (`None`: it must exist).
    pub stream: Option<StreamSetup>,
    /// Publishes awaiting their PubAck at once.
    pub max_in_flight: usize,
    /// How long to wait for one PubAck before publishing again.
    pub ack_timeout: Duration,
    /// Backoff between publish rounds that failed.
    pub retry: Backoff,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            connection: Connection::default(),
            subject: "logs.{kubernetes.namespace}.{kubernetes.pod.name}".into(),
            stream: None,
            max_in_flight: 1024,
            ack_timeout: Duration::from_secs(5),
            retry: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(30),
            },
        }
    }
}

impl SinkConfig {
    /// Checks every value; returns every problem.
    ///
    /// # Errors
    /// The list of problems, keys relative to the `nats` section.
    pub fn validate(&self) -> Result<(), Vec<Invalid>> {
        let mut out = Vec::new();
        self.connection.validate(&mut out);
        if let Err(m) = SubjectTemplate::parse(&self.subject) {
            invalid(&mut out, "subject", m);
        }
        if let Some(s) = &self.stream {
            check_name(&mut out, "stream.name", &s.name);
            if s.subjects.is_empty() {
                invalid(
                    &mut out,
                    "stream.subjects",
                    "at least one subject pattern like \"logs.>\"",
                );
            }
            for (i, p) in s.subjects.iter().enumerate() {
                if let Err(m) = check_pattern(p) {
                    invalid(&mut out, format!("stream.subjects[{i}]"), m);
                }
            }
        }
        if self.max_in_flight == 0 {
            invalid(&mut out, "max_in_flight", "must be at least 1");
        }
        if self.ack_timeout.is_zero() {
            invalid(&mut out, "ack_timeout", "must be more than 0");
        }
        if self.retry.max < self.retry.initial {
            invalid(
                &mut out,
                "retry.max_backoff",
                "must not be smaller than initial_backoff",
            );
        }
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SourceConfig::default().validate(), Ok(()));
        assert_eq!(SinkConfig::default().validate(), Ok(()));
    }

    #[test]
    fn every_problem_has_its_key() {
        let c = SourceConfig {
            subjects: vec!["logs.>".into(), "logs..x".into()],
            exclude: vec!["a.>.b".into()],
            connection: Connection {
                servers: vec!["localhost:4222".into()],
                ..Connection::default()
            },
            ..SourceConfig::default()
        };
        let keys: Vec<String> = c
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(keys, ["servers[0]", "subjects[1]", "exclude[0]"]);
        let s = SinkConfig {
            subject: "logs.{pod}".into(),
            ..SinkConfig::default()
        };
        assert_eq!(s.validate().unwrap_err()[0].key, "subject");
    }

    #[test]
    fn backoff_grows_to_its_bound() {
        let b = Backoff::default();
        assert!(b.delay(0) <= Duration::from_millis(125));
        assert!(b.delay(30) <= Duration::from_millis(12_500));
        assert!(b.delay(30) >= Duration::from_millis(7_500));
    }
}
