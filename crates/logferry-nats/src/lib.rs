//! # logferry-nats
//!
//! NATS (<https://docs.nats.io/reference/reference-protocols/nats-protocol>)
//! on both sides of logferry's pipeline, through the `async-nats` client:
//!
//! * **Source** ([`NatsSource`]): subscribes to subject patterns (with an
//!   optional queue group), or reads a durable JetStream pull consumer, and
//!   turns each message into a [`RecordFlags::DOCUMENT`](logferry_core::RecordFlags::DOCUMENT)
//!   record: Fly.io log events mapped to ECS fields, logferry documents as
//!   they are, anything else as `message` ([`payload`]).
//! * **Publisher** ([`Publisher`]): publishes records to JetStream with
//!   `Nats-Msg-Id` set to the record's deterministic id and reports a batch
//!   done only when every PubAck arrived: the `nats` sink of a node logferry
//!   (DaemonSet → JetStream → aggregators → Elasticsearch).
//!
//! ## Guarantees
//!
//! * **Core NATS is at-most-once.** A subscriber gets what is published
//!   while it is connected and keeping up, nothing else: messages published
//!   during a disconnection, or discarded because the client's buffer was full
//!   (slow consumer), are lost. Both are counted
//!   ([`NatsEvents::dropped`], [`DropReason`]); neither is silent.
//! * **JetStream consumer mode is at-least-once, exactly-once in the index.**
//!   A message is acknowledged to JetStream only after the sink
//!   acknowledged its batch (Elasticsearch accepted the document); a message
//!   not acknowledged within `ack_wait` (crash, outage) is delivered again,
//!   and its identity (from `Nats-Msg-Id` or the stream sequence,
//!   [`message_identity`]) gives it the same document `_id`.
//! * **Publishing is at-least-once, deduplicated by JetStream** within the
//!   stream's duplicate window, and by the deterministic `_id` after it.
//!
//! ## What it does not do
//!
//! * It never depends on the tailer, the Kubernetes or the Elasticsearch
//!   crates: the binary wires them. Metrics go through [`NatsEvents`].
//! * It does not create the stream a consumer reads (the publisher can
//!   create the stream it writes to).
//! * Secrets are read once per connection attempt, not watched.

pub mod config;
mod connect;
pub mod error;
pub mod events;
pub mod payload;
mod publish;
mod source;
pub mod subject;

pub use config::{
    Auth, Backoff, Connection, Invalid, JetStreamConsumer, Secret, SinkConfig, SourceConfig,
    StreamSetup, TlsConfig,
};
pub use error::Error;
pub use events::{DropReason, NatsEvents, NoopEvents};
pub use payload::{PayloadFormat, PayloadOptions};
pub use publish::{Outgoing, Publisher};
pub use source::{message_identity, NatsSource, SourceSummary};
pub use subject::{SubjectFilter, SubjectTemplate};
/// Re-exported for [`NatsSource::run`] and [`Publisher::publish_all`].
pub use tokio_util::sync::CancellationToken;
