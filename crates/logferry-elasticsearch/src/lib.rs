//! # logferry-elasticsearch
//!
//! Ships [`RecordBatch`](logferry_core::RecordBatch)es to Elasticsearch through
//! the bulk API
//! (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html>),
//! using the official `elasticsearch` crate's transport, and acknowledges each
//! batch once Elasticsearch has it.
//!
//! ## What it does
//!
//! * **Documents** ([`DocumentEncoder`]): each record becomes one JSON
//!   document, ECS or Fluentd field names, written straight into the outgoing
//!   body (no `serde_json::Value` per record), with a deterministic `_id`
//!   ([`DocumentEncoder::document_id`]: a hash of the file's identity and the
//!   record's start offset) and the `create` action.
//! * **JSON messages** ([`json_message`], off by default): a message that is
//!   a JSON object parsed under a key or merged at the root, bounded.
//! * **Index names** ([`index`]): a strftime + `{field.path}` template, or a
//!   data stream `<type>-<dataset>-<namespace>`.
//! * **Batching**: by count, bytes and time ([`BatchConfig`]), with
//!   `concurrency` requests in flight; gzip bodies optionally.
//! * **Item results**: 2xx and 409-on-`create` are delivered; 429 and 5xx
//!   items are retried (only those items) with exponential backoff and jitter,
//!   without limit; other 4xx items go to the dead-letter index with the error
//!   and the original document, and when that fails too, to a dead-letter file
//!   ([`dead_letter`]).
//! * **Request failures**: connection errors, timeouts, whole-request 429/5xx
//!   (and any other status) are retried; 413 splits the request in halves.
//!   Endpoints are used round-robin and a failing one is cooled down.
//! * **Start**: `GET /` until it answers (loud errors, never gives up), then
//!   optionally the index templates ([`template`]).
//! * **TLS**: `https://` endpoints with a custom CA, no verification, or a
//!   client certificate ([`TlsConfig`]); tested end to end (handshakes and
//!   refusals) against the Elasticsearch double serving HTTPS in
//!   `tests/tls.rs`.
//!
//! ## Where things are
//!
//! Imports go one way, top to bottom:
//!
//! | Module | Step |
//! |---|---|
//! | `forwarder` | [`Forwarder`]: reads batches, encodes them into bulk bodies, hands full bodies to shipping tasks |
//! | `startup` | `GET /` and the index templates, before the first bulk request |
//! | `ship` | one body until every item is finished: retries with backoff, the 413 split, item results, dead letter |
//! | `request` | one bulk request on the wire: gzip, HTTP status, response parsing, error chain |
//! | `response` | what each item's status means ([`ItemErrorReason`]) |
//! | `state`, [`health`], [`events`] | what the tasks share; what `/readyz` and the metrics read |
//! | [`document`], `tail`, `schema`, `owner`, `airflow`, [`json_message`], `log_id`, `meta`, `json` | documents, written straight into the body: the per-file part, field names, owner workloads, Airflow fields, JSON messages |
//! | [`index`], [`template`] | index and data stream names; template bodies |
//! | [`client`], [`cloud`], [`config`], [`dead_letter`], `batch`, `retry`, [`error`] | clients, credentials and endpoints (`cloud_id`), settings, refused documents, bodies and acknowledgement, backoff, errors |
//!
//! ## Guarantees
//!
//! * A batch is acknowledged exactly once, and only after every one of its
//!   records was delivered or dead-lettered. Nothing is dropped.
//! * A record sent twice (a retry after a lost response, or a replay after a
//!   crash) is indexed once: same `_id`, `create` op, 409 counted as delivered.
//! * Memory is bounded: at most `concurrency` bodies in flight and one being
//!   filled; while all slots are busy the input channel is not read, which
//!   pauses the tailer (the log files are the buffer).
//!
//! ## What it does not do
//!
//! * It does not order documents across retries: a retried item can be indexed
//!   after later ones.
//! * It reads secret files at start and again only after a `401` (a rotated
//!   Secret is picked up then, not on a timer).
//! * It reports measurements only through [`ForwarderEvents`]; it has no
//!   metrics registry.

#![deny(missing_docs)]

mod airflow;
pub mod client;
pub mod cloud;
pub mod config;
pub mod dead_letter;
pub mod document;
pub mod error;
pub mod events;
pub mod health;
pub mod index;
pub mod json_message;
pub mod template;

mod batch;
mod forwarder;
mod json;
mod log_id;
mod meta;
mod owner;
mod request;
mod response;
mod retry;
mod schema;
mod ship;
mod startup;
mod state;
mod tail;

pub use client::build_client;
pub use cloud::cloud_id_endpoint;
pub use config::{
    Auth, BatchConfig, Compression, DeadLetterFileConfig, ElasticsearchConfig, RetryConfig,
    TemplateOptions, TlsConfig, COMPRESSION_LEVELS,
};
pub use document::{AirflowOptions, DocumentEncoder, DocumentOptions};
/// The `elasticsearch` crate, re-exported for users of [`build_client`].
pub use elasticsearch;
pub use error::Error;
pub use events::{BulkOutcome, ForwarderEvents, ItemErrorReason, NoopEvents};
pub use forwarder::Forwarder;
pub use health::ForwarderHealth;
pub use index::{data_stream_name, IndexNameTemplate, IndexTarget};
pub use json_message::{JsonMessageOptions, JsonSkipReason, JsonTarget};
pub use log_id::LogIdTemplate;
pub use schema::Schema;
pub use state::ForwarderSummary;
/// Re-exported for [`Forwarder::run`].
pub use tokio_util::sync::CancellationToken;
