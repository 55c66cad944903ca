//! # logferry-core
//!
//! The plain types that the logferry crates exchange, and nothing else: no I/O,
//! no async runtime work, no metrics. `logferry-tail` produces [`RecordBatch`]es,
//! `logferry-kube` produces [`PodMeta`], `logferry-elasticsearch` consumes both and
//! sends [`AckToken`]s back; the `logferry` binary wires them.
//!
//! ## The delivery contract these types carry
//!
//! * Every [`Record`] knows the byte range `[start, end)` of the file it came
//!   from. Together with the file's [`FileId`] that range is the record's
//!   identity: the forwarder derives the Elasticsearch `_id` from
//!   `(FileId, start)`, so a replayed record gets the same `_id`.
//! * Records travel in [`RecordBatch`]es of one file. A batch carries an
//!   [`AckToken`]; the sink sends it back through an [`Acker`] exactly once,
//!   after every record of the batch was accepted by the destination (or
//!   dead-lettered, or deliberately dropped by a filter). The tailer advances
//!   the file's checkpoint only over a contiguous prefix of acknowledged batches.
//! * [`KubeLogPath`] and [`ContainerLink`] parse kubelet's node log layout
//!   (`/var/log/pods/...` and `/var/log/containers/...`), which both the tailer and the
//!   metadata crate need.

#![deny(missing_docs)]

mod ack;
mod airflow;
mod config;
mod file;
mod level;
mod path;
mod pod;
mod record;

pub use ack::{AckToken, Acker};
pub use airflow::offset::next_offset;
pub use airflow::{AirflowTask, TaskFields};
pub use config::ConfigProblem;
pub use file::{DevIno, FileId, SourceId};
pub use level::Level;
pub use path::{ContainerLink, KubeLogPath};
pub use pod::{ContainerMeta, MetadataOrigin, PodMeta};
pub use record::{LogFormat, Record, RecordBatch, RecordFlags, Source, Stream};
