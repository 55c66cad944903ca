//! Fault injection and counters of the Elasticsearch double.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Faults the double injects. Every field defaults to "no fault". Faults
/// apply to `_bulk` requests only (so that `GET /`, templates and searches
/// keep working), except the outage, which refuses every connection.
///
/// Serialized as JSON for the control API (`PUT /_double/faults` merges the
/// given keys into the current configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Fraction (0..=1) of bulk requests answered with a whole-request error.
    pub request_error_rate: f64,
    /// Statuses for whole-request errors, drawn uniformly (default 429, 503).
    pub request_error_statuses: Vec<u16>,
    /// Fraction (0..=1) of bulk items answered with an item error.
    pub item_error_rate: f64,
    /// Statuses for item errors, drawn uniformly (default 429, 503).
    pub item_error_statuses: Vec<u16>,
    /// Documents whose source contains this text (byte-wise) are answered
    /// 400 `mapper_parsing_exception`.
    pub mapping_error_substring: Option<String>,
    /// Added latency before a bulk request is processed, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0..=1) of bulk requests whose connection is closed without
    /// a response. Half of them (at random) are applied to the store first,
    /// like a response lost on the way back.
    pub drop_connection_rate: f64,
    /// Largest accepted bulk body in bytes as received (compressed when
    /// gzipped); larger bodies are answered 413.
    pub max_body_bytes: Option<usize>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            request_error_rate: 0.0,
            request_error_statuses: vec![429, 503],
            item_error_rate: 0.0,
            item_error_statuses: vec![429, 503],
            mapping_error_substring: None,
            latency_ms: 0,
            drop_connection_rate: 0.0,
            max_body_bytes: None,
        }
    }
}

pub(crate) struct FaultState {
    pub config: FaultConfig,
    pub rng: StdRng,
    pub outage_until: Option<Instant>,
}

/// A handle to change the double's faults while it runs. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    pub(crate) state: Arc<Mutex<FaultState>>,
    pub(crate) outage: Arc<Notify>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig, seed: u64) -> Faults {
        Faults {
            state: Arc::new(Mutex::new(FaultState {
                config,
                rng: StdRng::seed_from_u64(seed),
                outage_until: None,
            })),
            outage: Arc::new(Notify::new()),
        }
    }

    /// The current configuration.
    pub fn get(&self) -> FaultConfig {
        self.state.lock().config.clone()
    }

    /// Replaces the configuration.
    pub fn set(&self, config: FaultConfig) {
        self.state.lock().config = config;
    }

    /// Changes the configuration in place.
    pub fn update(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut self.state.lock().config);
    }

    /// Removes every fault (an outage in progress ends too).
    pub fn clear(&self) {
        self.set(FaultConfig::default());
        self.end_outage();
    }

    /// Stops accepting connections for `duration` (clients get "connection
    /// refused"; open connections are closed), then listens again on the same
    /// address.
    pub fn outage(&self, duration: Duration) {
        self.state.lock().outage_until = Some(Instant::now() + duration);
        self.outage.notify_one();
    }

    /// Ends an outage early.
    pub fn end_outage(&self) {
        let mut s = self.state.lock();
        if s.outage_until.is_some() {
            s.outage_until = Some(Instant::now());
        }
        drop(s);
        self.outage.notify_one();
    }

    /// Whether an outage is in progress.
    pub fn in_outage(&self) -> bool {
        self.state
            .lock()
            .outage_until
            .is_some_and(|t| t > Instant::now())
    }

    pub(crate) fn chance(&self, rate: f64) -> bool {
        rate > 0.0 && self.state.lock().rng.random_bool(rate.clamp(0.0, 1.0))
    }
}

/// Counters of what the double saw. All counts since start (or the last reset).
#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub bulk_requests: AtomicU64,
    pub bulk_items: AtomicU64,
    pub created: AtomicU64,
    pub updated: AtomicU64,
    pub conflicts: AtomicU64,
    pub injected_item_errors: AtomicU64,
    pub mapping_errors: AtomicU64,
    pub injected_request_errors: AtomicU64,
    pub dropped_connections: AtomicU64,
    pub too_large: AtomicU64,
    pub gzip_requests: AtomicU64,
    pub body_bytes: AtomicU64,
    pub decoded_bytes: AtomicU64,
    pub searches: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
}

/// A snapshot of the double's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// HTTP requests of any kind.
    pub requests: u64,
    /// `_bulk` requests (including refused ones).
    pub bulk_requests: u64,
    /// Bulk items processed (in requests that were processed).
    pub bulk_items: u64,
    /// Documents created.
    pub created: u64,
    /// Documents overwritten (`index` op on an existing `_id`).
    pub updated: u64,
    /// `create` items answered 409 `version_conflict_engine_exception`.
    pub conflicts: u64,
    /// Items answered with an injected 429/503.
    pub injected_item_errors: u64,
    /// Items answered 400 `mapper_parsing_exception` (injected) or
    /// `document_parsing_exception` (invalid JSON).
    pub mapping_errors: u64,
    /// Bulk requests answered with an injected whole-request error.
    pub injected_request_errors: u64,
    /// Bulk requests whose connection was closed without a response.
    pub dropped_connections: u64,
    /// Bulk requests answered 413.
    pub too_large: u64,
    /// Bulk requests with `Content-Encoding: gzip`.
    pub gzip_requests: u64,
    /// Bulk body bytes as received.
    pub body_bytes: u64,
    /// Bulk body bytes after decompression.
    pub decoded_bytes: u64,
    /// `_search` and `_count` requests.
    pub searches: u64,
    /// Connections dropped because the TLS handshake failed (with
    /// [`EsDoubleConfig::tls`](super::EsDoubleConfig::tls) only).
    #[serde(default)]
    pub tls_handshake_failures: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            requests: g(&self.requests),
            bulk_requests: g(&self.bulk_requests),
            bulk_items: g(&self.bulk_items),
            created: g(&self.created),
            updated: g(&self.updated),
            conflicts: g(&self.conflicts),
            injected_item_errors: g(&self.injected_item_errors),
            mapping_errors: g(&self.mapping_errors),
            injected_request_errors: g(&self.injected_request_errors),
            dropped_connections: g(&self.dropped_connections),
            too_large: g(&self.too_large),
            gzip_requests: g(&self.gzip_requests),
            body_bytes: g(&self.body_bytes),
            decoded_bytes: g(&self.decoded_bytes),
            searches: g(&self.searches),
            tls_handshake_failures: g(&self.tls_handshake_failures),
        }
    }

    pub(crate) fn reset(&self) {
        for a in [
            &self.requests,
            &self.bulk_requests,
            &self.bulk_items,
            &self.created,
            &self.updated,
            &self.conflicts,
            &self.injected_item_errors,
            &self.mapping_errors,
            &self.injected_request_errors,
            &self.dropped_connections,
            &self.too_large,
            &self.gzip_requests,
            &self.body_bytes,
            &self.decoded_bytes,
            &self.searches,
            &self.tls_handshake_failures,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

pub(crate) fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}
