//! What one running double shares between its connections: the store, the
//! privilege model, the fault handle and counters, the recorded requests and
//! TLS errors; and [`RecordedRequest`], one recorded request.

use super::faults::{Counters, Faults};
use super::security::Security;
use super::store::Store;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A request as the double received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query string.
    pub path: String,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body size as received, in bytes.
    pub body_bytes: usize,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The double's shared state (one per [`EsDouble`](super::EsDouble)).
pub(super) struct State {
    pub(super) security: Security,
    pub(super) store: Mutex<Store>,
    pub(super) faults: Faults,
    pub(super) counters: Counters,
    pub(super) requests: Mutex<VecDeque<RecordedRequest>>,
    pub(super) tls_errors: Mutex<VecDeque<String>>,
}

/// Forgets documents, templates, counters, recorded requests and faults.
pub(super) fn reset(state: &State) {
    *state.store.lock() = Store::default();
    state.counters.reset();
    state.requests.lock().clear();
    state.tls_errors.lock().clear();
    state.faults.clear();
}
