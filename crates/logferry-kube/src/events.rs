//! The events trait through which the store reports to the binary's metrics.

/// Every `resource` [`KubeEvents::watch_restarted`] reports, for
/// pre-registering metric series.
pub const WATCHED_RESOURCES: &[&str] = &["pods", "namespaces"];

/// Observations of the pod store, implemented by the binary (for Prometheus metrics).
///
/// Every method has a no-op default. Methods are called from the watch tasks, so they
/// must be cheap and must not block. Label arguments come from closed sets.
pub trait KubeEvents: Send + Sync + 'static {
    /// A watch was started again after an error (a full re-list follows).
    /// `resource` is `"pods"` or `"namespaces"`.
    fn watch_restarted(&self, resource: &'static str) {
        let _ = resource;
    }
    /// The number of pod entries in the store (live pods and tombstones) changed.
    fn store_size(&self, pods: usize) {
        let _ = pods;
    }
    /// The store became synced (both initial lists done, no error since) or stopped being so.
    fn synced(&self, synced: bool) {
        let _ = synced;
    }
    /// A save of the pod entries (`<state_dir>/pods.json`, see
    /// [`PodStore::persist`](crate::PodStore::persist)) was attempted: `ok`
    /// false when it failed (`ENOSPC`, `EIO`…). A failed save is retried with
    /// backoff (1 s doubling to 30 s) until one succeeds; the watch and lookups
    /// are not affected.
    fn snapshot_write(&self, ok: bool) {
        let _ = ok;
    }
    /// A list/watch call failed; `reason` is [`KubeError::as_label`](crate::KubeError::as_label):
    /// `"unreachable"`, `"timeout"`, `"unauthorized"`, `"forbidden"`, `"gone"`, `"throttled"`,
    /// `"server_error"`, `"api_error"`, `"decode"`, `"protocol"`.
    fn api_error(&self, reason: &'static str) {
        let _ = reason;
    }
}

/// A [`KubeEvents`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopEvents;

impl KubeEvents for NoopEvents {}
