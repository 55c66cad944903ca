//! State shared by the forwarder's tasks: endpoints, events, settings and
//! the counters behind [`ForwarderSummary`].

use crate::client::Endpoints;
use crate::config::{Compression, RetryConfig};
use crate::events::ForwarderEvents;
use crate::health::ForwarderHealth;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// What [`Forwarder::run`](crate::Forwarder::run) did, counted in records unless named otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ForwarderSummary {
    /// Batches acknowledged.
    pub batches_acknowledged: u64,
    /// Records delivered (2xx, or 409 on `create`).
    pub records_delivered: u64,
    /// Of those, records that answered 409 (already indexed).
    pub duplicates: u64,
    /// Records written to the dead-letter index.
    pub dead_lettered: u64,
    /// Records written to the dead-letter file.
    pub dead_lettered_to_file: u64,
    /// Items sent again after an error.
    pub retried: u64,
    /// Bulk HTTP requests made (including failed ones).
    pub requests: u64,
    /// Whether `hard_stop` ended the run before everything was delivered.
    pub stopped_early: bool,
}

/// Running totals behind [`ForwarderSummary`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) acked: Arc<AtomicU64>,
    pub(crate) delivered: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dead_lettered_to_file: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) requests: AtomicU64,
}

impl Counters {
    pub(crate) fn summary(&self, stopped_early: bool) -> ForwarderSummary {
        ForwarderSummary {
            batches_acknowledged: self.acked.load(Ordering::Relaxed),
            records_delivered: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            dead_lettered_to_file: self.dead_lettered_to_file.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            stopped_early,
        }
    }
}

/// State shared by the shipping tasks.
pub(crate) struct Shared {
    pub(crate) health: ForwarderHealth,
    pub(crate) pipeline: Option<String>,
    pub(crate) endpoints: Endpoints,
    pub(crate) events: Arc<dyn ForwarderEvents>,
    pub(crate) retry: RetryConfig,
    pub(crate) compression: Compression,
    /// gzip level (1–9), checked by `ElasticsearchConfig::problems`.
    pub(crate) compression_level: u32,
    pub(crate) dead_letter_index: String,
    pub(crate) dead_letter_dir: PathBuf,
    pub(crate) dead_letter_file: crate::config::DeadLetterFileConfig,
    pub(crate) counters: Counters,
    pub(crate) in_flight: AtomicUsize,
}
