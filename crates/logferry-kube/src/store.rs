//! The pod store's handle: lookups, pins and measurements over the shared state that
//! the watch (see [`PodStore::watch`]) fills.

use std::sync::Arc;

use logferry_core::{KubeLogPath, PodMeta};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::KeyFilters;
use crate::state::{is_mirror, Entry, Report, State};
use crate::{KubeConfig, KubeEvents, Lookup, PathOnlyReason, StoreMemory};

/// The node's pods, kept small, with deleted pods kept as tombstones while their files
/// are pinned and for [`KubeConfig::metadata_grace`] after.
///
/// Cheap to clone (one `Arc`). See the [crate documentation](crate) for the guarantees.
#[derive(Clone)]
pub struct PodStore {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for PodStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodStore")
            .field("node_name", &self.shared.config.node_name)
            .field("disabled", &self.shared.disabled)
            .field("pods", &self.len())
            .field("synced", &self.is_synced())
            .finish()
    }
}

pub(crate) struct Shared {
    pub config: KubeConfig,
    pub filters: KeyFilters,
    pub events: Arc<dyn KubeEvents>,
    pub state: Mutex<State>,
    /// Woken whenever pods, namespaces or availability change.
    pub changed: Notify,
    pub disabled: bool,
}

impl Shared {
    /// Applies `f` to the state under the lock, then reports and wakes waiting lookups.
    pub fn update(&self, f: impl FnOnce(&mut State) -> Report) {
        let report = f(&mut self.state.lock());
        if let Some(n) = report.store_size {
            self.events.store_size(n);
        }
        if let Some(s) = report.synced {
            // Only on changes: once after the initial lists, then around watch
            // failures. A pod deleted before the first line (and absent from
            // `pods.json`) is one whose metadata nothing can give any more.
            if s {
                tracing::info!("pod metadata in sync with the API (initial list done)");
            } else {
                tracing::info!("pod metadata out of sync with the API (a watch restarts)");
            }
            self.events.synced(s);
        }
        self.changed.notify_waiters();
    }
}

impl PodStore {
    pub(crate) fn new(config: KubeConfig, events: Arc<dyn KubeEvents>, disabled: bool) -> PodStore {
        let (filters, errors) = KeyFilters::new(&config);
        for e in errors {
            tracing::warn!(error = %e, source = %std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(), "allowlist pattern matched literally");
        }
        let state = State::default();
        PodStore {
            shared: Arc::new(Shared {
                config,
                filters,
                events,
                state: Mutex::new(state),
                changed: Notify::new(),
                disabled,
            }),
        }
    }

    /// A store without API access: every lookup answers
    /// [`Lookup::PathOnly`] with [`PathOnlyReason::ApiUnavailable`] at once. Logs one
    /// warning. Use it when building the Kubernetes client failed.
    pub fn disabled(config: KubeConfig) -> PodStore {
        tracing::warn!(
            "Kubernetes API client unavailable: records carry only the metadata of their file path"
        );
        PodStore::new(config, Arc::new(crate::NoopEvents), true)
    }

    /// Metadata for one container log file (`path` parsed from
    /// `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`, `container_id` from its
    /// `/var/log/containers` link when known).
    ///
    /// The pod is found by uid (a pod recreated with the same name is another pod; a
    /// static pod is found through its mirror pod's `kubernetes.io/config.mirror`
    /// annotation), the container by name; image, runtime and container id come from
    /// the pod's spec and status (the file's own container id wins when it names an
    /// earlier container instance).
    ///
    /// If the pod is not in the store and the API is not known to be unavailable, the
    /// lookup waits for it up to [`KubeConfig::lookup_wait`], awaiting a notification
    /// from the watch (other lookups proceed meanwhile). Never fails: the fallback is
    /// [`Lookup::PathOnly`].
    pub async fn lookup(&self, path: &KubeLogPath, container_id: Option<&str>) -> Lookup {
        let path_only =
            |reason| Lookup::PathOnly(Arc::new(PodMeta::from_path(path, container_id)), reason);
        if self.shared.disabled {
            return path_only(PathOnlyReason::ApiUnavailable);
        }
        let grace = self.shared.config.metadata_grace;
        let deadline = Instant::now() + self.shared.config.lookup_wait;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let reason = {
                let mut state = self.shared.state.lock();
                match state.resolve(path, container_id, Instant::now(), grace) {
                    Ok(found) => return found,
                    Err(PathOnlyReason::Expired) => return path_only(PathOnlyReason::Expired),
                    Err(_) if state.unavailable.is_some() => {
                        return path_only(PathOnlyReason::ApiUnavailable)
                    }
                    Err(reason) => reason,
                }
            };
            if Instant::now() >= deadline
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                // One last look: the pod may have arrived with the final notification.
                let mut state = self.shared.state.lock();
                return match state.resolve(path, container_id, Instant::now(), grace) {
                    Ok(found) => found,
                    Err(_) if state.unavailable.is_some() => {
                        path_only(PathOnlyReason::ApiUnavailable)
                    }
                    Err(r) => path_only(if r == PathOnlyReason::Expired {
                        r
                    } else {
                        reason
                    }),
                };
            }
        }
    }

    /// Marks that a file of pod `pod_uid` is open or unread: the pod's entry survives its
    /// deletion until the matching [`PodStore::release`]. Pins are counted; pinning a
    /// pod not (yet) in the store is allowed.
    pub fn pin(&self, pod_uid: &str) {
        let mut state = self.shared.state.lock();
        state.pins.entry(pod_uid.to_owned()).or_default().count += 1;
    }

    /// Balances one [`PodStore::pin`]. When the count reaches 0 the grace period
    /// ([`KubeConfig::metadata_grace`]) of a deleted pod starts. An unbalanced release
    /// is ignored.
    pub fn release(&self, pod_uid: &str) {
        let mut state = self.shared.state.lock();
        let known = state.pods.contains_key(pod_uid) || is_mirror(&state.pods, pod_uid);
        let Some(pin) = state.pins.get_mut(pod_uid) else {
            tracing::debug!(pod_uid, "release without pin ignored");
            return;
        };
        pin.count = pin.count.saturating_sub(1);
        if pin.count == 0 {
            if known {
                pin.released_at = Some(Instant::now());
            } else {
                state.pins.remove(pod_uid);
            }
        }
    }

    /// Whether both watches completed their initial list and none failed since.
    pub fn is_synced(&self) -> bool {
        let state = self.shared.state.lock();
        state.pods_synced && state.ns_synced
    }

    /// Number of pod entries (live pods and tombstones).
    pub fn len(&self) -> usize {
        self.shared.state.lock().pods.len()
    }

    /// Whether the store holds no pod entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Measures the memory held by pod entries (inline size plus heap capacity of every
    /// field; cached `Arc<PodMeta>`s handed out to callers are not counted).
    pub fn memory_usage(&self) -> StoreMemory {
        let state = self.shared.state.lock();
        let mut m = StoreMemory {
            pods: state.pods.len(),
            ..StoreMemory::default()
        };
        for (uid, e) in &state.pods {
            m.entry_bytes += e.info.heap_bytes_without_maps()
                + std::mem::size_of::<Entry>()
                + uid.capacity()
                + std::mem::size_of::<String>();
            m.label_annotation_bytes += e.info.map_bytes();
        }
        m
    }
}
