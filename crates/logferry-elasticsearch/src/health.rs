//! What the forwarder knows about its own health, for the binary's
//! `/readyz`: whether Elasticsearch refuses the credential, and whether the
//! templates were skipped for lack of privileges.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cheap, cloneable view of the forwarder's health
/// ([`Forwarder::health`](crate::Forwarder::health)). Every clone sees the
/// same state.
#[derive(Clone, Debug, Default)]
pub struct ForwarderHealth(Arc<Flags>);

#[derive(Debug, Default)]
struct Flags {
    credential_refused: AtomicBool,
    templates_skipped: AtomicBool,
}

impl ForwarderHealth {
    /// True while the last bulk request was refused for the credential (HTTP
    /// `401`/`403`, or items answering `401`/`403` `security_exception`):
    /// a configuration problem. Records wait (retried with backoff, files
    /// stay the buffer) until a request is accepted again.
    pub fn credential_refused(&self) -> bool {
        self.0.credential_refused.load(Ordering::Relaxed)
    }

    /// True when the index templates were not installed because the
    /// credential lacks `manage_index_templates` (shipping goes on).
    pub fn templates_skipped(&self) -> bool {
        self.0.templates_skipped.load(Ordering::Relaxed)
    }

    /// Why the forwarder is not healthy, if it is not: a short sentence for
    /// `/readyz`.
    pub fn problem(&self) -> Option<&'static str> {
        self.credential_refused().then_some(
            "Elasticsearch refuses the credential (401/403): check auth and the writer role's create_doc privilege",
        )
    }

    pub(crate) fn set_credential_refused(&self, refused: bool) {
        self.0.credential_refused.store(refused, Ordering::Relaxed);
    }

    pub(crate) fn set_templates_skipped(&self) {
        self.0.templates_skipped.store(true, Ordering::Relaxed);
    }
}
