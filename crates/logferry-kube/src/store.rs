//! The pod store: small entries keyed by pod uid, tombstones with a grace period,
//! and the file → pod lookup.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use logferry_core::{ContainerMeta, KubeLogPath, MetadataOrigin, PodMeta};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::entry::PodInfo;
use crate::tombstones::{self, TombstoneOp};
use crate::{KubeConfig, KubeError, KubeEvents};

/// How many uids of evicted pods are remembered, so that late lookups answer
/// [`PathOnlyReason::Expired`] at once instead of waiting for a pod that will never come.
const EVICTED_MEMORY: usize = 4096;

/// The answer of [`PodStore::lookup`].
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// Full metadata from the API (`origin` [`MetadataOrigin::Api`]). The same `Arc` is
    /// returned for the same (pod uid, container, container id) until the pod changes,
    /// so `Arc::ptr_eq` tells the caller whether metadata changed.
    Found(Arc<PodMeta>),
    /// The pod or its namespace carries the exclude annotation with value `"true"`:
    /// its records must not be shipped.
    Excluded,
    /// Only what the path carries (`origin` [`MetadataOrigin::Path`]: namespace, pod,
    /// uid, container, container id), and why.
    PathOnly(Arc<PodMeta>, PathOnlyReason),
}

impl Lookup {
    /// The metadata to attach to records, `None` for [`Lookup::Excluded`].
    pub fn meta(&self) -> Option<&Arc<PodMeta>> {
        match self {
            Lookup::Found(m) | Lookup::PathOnly(m, _) => Some(m),
            Lookup::Excluded => None,
        }
    }
}

/// Why a lookup fell back to path-only metadata.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PathOnlyReason {
    /// The API server is unreachable, times out, or forbids the watch (RBAC), or the
    /// store is [disabled](PodStore::disabled).
    ApiUnavailable,
    /// The store is synced but the pod did not appear within
    /// [`KubeConfig::lookup_wait`].
    PodUnknown,
    /// A pod with this namespace and name is known, but with another uid (recreated
    /// pod), and the file's uid did not appear within [`KubeConfig::lookup_wait`].
    UidMismatch,
    /// The pod was deleted and its metadata evicted after the grace period.
    Expired,
}

impl PathOnlyReason {
    /// A bounded metric label: `api_unavailable`, `pod_unknown`, `uid_mismatch`, `expired`.
    pub fn as_label(self) -> &'static str {
        match self {
            PathOnlyReason::ApiUnavailable => "api_unavailable",
            PathOnlyReason::PodUnknown => "pod_unknown",
            PathOnlyReason::UidMismatch => "uid_mismatch",
            PathOnlyReason::Expired => "expired",
        }
    }
}

/// Memory held by the store's pod entries, measured as inline size plus heap
/// capacity of every field (see [`PodStore::memory_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Pod entries (live pods and tombstones).
    pub pods: usize,
    /// Bytes of the entries excluding label and annotation contents, in bytes.
    pub entry_bytes: usize,
    /// Bytes of label and allow-listed annotation keys and values (with map overhead).
    pub label_annotation_bytes: usize,
}

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
    pub allow: GlobSet,
    pub events: Arc<dyn KubeEvents>,
    pub state: Mutex<State>,
    /// Woken whenever pods, namespaces or availability change.
    pub changed: Notify,
    pub disabled: bool,
}

struct Entry {
    info: PodInfo,
    deleted_at: Option<Instant>,
    /// Metadata built for lookups of this pod version: (container, container id used, meta).
    metas: Vec<(String, Option<String>, Arc<PodMeta>)>,
}

#[derive(Default)]
struct Pin {
    count: u32,
    released_at: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct State {
    pods: HashMap<String, Entry>,
    /// Namespace name → excluded by annotation.
    namespaces: HashMap<String, bool>,
    pins: HashMap<String, Pin>,
    evicted: HashSet<String>,
    evicted_order: VecDeque<String>,
    /// Uids seen since the last `Init` of the pod watch (re-list in progress).
    pod_init: Option<HashSet<String>>,
    ns_init: Option<HashSet<String>>,
    pods_synced: bool,
    ns_synced: bool,
    reported_synced: bool,
    /// The cause label while the API is considered unavailable.
    unavailable: Option<&'static str>,
    /// Causes already logged during the current outage.
    warned: HashSet<&'static str>,
    /// Changes to the deleted pods kept on disk, applied after the lock is
    /// released; `None` without [`KubeConfig::state_dir`].
    tombstone_ops: Option<Vec<TombstoneOp>>,
}

/// What changed, for reporting through [`KubeEvents`] after the lock is released.
pub(crate) struct Report {
    store_size: Option<usize>,
    synced: Option<bool>,
}

impl State {
    fn report(&mut self, size_changed: bool) -> Report {
        let synced = self.pods_synced && self.ns_synced;
        let synced_changed = synced != self.reported_synced;
        self.reported_synced = synced;
        Report {
            store_size: size_changed.then_some(self.pods.len()),
            synced: synced_changed.then_some(synced),
        }
    }

    pub fn pod_init(&mut self) -> Report {
        self.pod_init = Some(HashSet::new());
        self.report(false)
    }

    fn persist(&mut self, op: impl FnOnce() -> TombstoneOp) {
        if let Some(ops) = &mut self.tombstone_ops {
            ops.push(op());
        }
    }

    pub fn pod_apply(&mut self, info: PodInfo) -> Report {
        if let Some(seen) = &mut self.pod_init {
            seen.insert(String::from(&*info.uid));
        }
        match self.pods.get_mut(&*info.uid) {
            Some(entry) => {
                if entry.info != info {
                    entry.info = info;
                    entry.metas.clear();
                }
                if entry.deleted_at.take().is_some() {
                    let uid = String::from(&*entry.info.uid);
                    self.persist(|| TombstoneOp::Remove(uid));
                }
                self.report(false)
            }
            None => {
                if self.evicted.remove(&*info.uid) {
                    self.evicted_order.retain(|u| **u != *info.uid);
                }
                self.pods.insert(
                    String::from(&*info.uid),
                    Entry {
                        info,
                        deleted_at: None,
                        metas: Vec::new(),
                    },
                );
                self.report(true)
            }
        }
    }

    pub fn pod_delete(&mut self, info: PodInfo, now: Instant) -> Report {
        let uid = String::from(&*info.uid);
        let size_changed = !self.pods.contains_key(&uid);
        let entry = self.pods.entry(uid).or_insert_with(|| Entry {
            info: info.clone(),
            deleted_at: None,
            metas: Vec::new(),
        });
        let changed = entry.info != info || entry.deleted_at.is_none();
        if entry.info != info {
            entry.info = info;
            entry.metas.clear();
        }
        entry.deleted_at.get_or_insert(now);
        if changed {
            let info = entry.info.clone();
            self.persist(|| TombstoneOp::Save(info));
        }
        self.report(size_changed)
    }

    /// End of a (re-)list: pods not listed are treated as deleted (tombstoned).
    pub fn pod_init_done(&mut self, now: Instant) -> Report {
        let seen = self.pod_init.take().unwrap_or_default();
        for (uid, entry) in self.pods.iter_mut() {
            if entry.deleted_at.is_none() && !seen.contains(uid) {
                entry.deleted_at = Some(now);
                if let Some(ops) = &mut self.tombstone_ops {
                    ops.push(TombstoneOp::Save(entry.info.clone()));
                }
            }
        }
        self.pods_synced = true;
        if self.unavailable.take().is_some() {
            tracing::info!("Kubernetes API reachable again: full pod metadata resumes");
            self.warned.clear();
        }
        self.report(false)
    }

    pub fn ns_init(&mut self) -> Report {
        self.ns_init = Some(HashSet::new());
        self.report(false)
    }

    pub fn ns_apply(&mut self, name: String, excluded: bool) -> Report {
        if let Some(seen) = &mut self.ns_init {
            seen.insert(name.clone());
        }
        self.namespaces.insert(name, excluded);
        self.report(false)
    }

    pub fn ns_delete(&mut self, name: &str) -> Report {
        self.namespaces.remove(name);
        self.report(false)
    }

    pub fn ns_init_done(&mut self) -> Report {
        let seen = self.ns_init.take().unwrap_or_default();
        self.namespaces.retain(|name, _| seen.contains(name));
        self.ns_synced = true;
        self.report(false)
    }

    /// A watch failed. Returns whether this cause should be logged (first time during
    /// the current outage).
    pub fn watch_failed(&mut self, resource: &'static str, err: &KubeError) -> (Report, bool) {
        let label = err.as_label();
        match resource {
            "pods" => {
                self.pods_synced = false;
                if err.is_unavailable() {
                    self.unavailable = Some(label);
                }
            }
            _ => self.ns_synced = false,
        }
        let first = self.warned.insert(label);
        (self.report(false), first)
    }

    /// The pod watch stopped (shutdown): lookups of unknown pods answer at once.
    pub fn stopped(&mut self) -> Report {
        self.pods_synced = false;
        self.unavailable = Some("shutdown");
        self.report(false)
    }

    fn is_expired(&self, uid: &str, entry: &Entry, now: Instant, grace: Duration) -> bool {
        let Some(deleted_at) = entry.deleted_at else {
            return false;
        };
        // Files of a static pod are pinned under the config hash in their path.
        let pins = [Some(uid), entry.info.mirror_hash.as_deref()];
        let mut since = deleted_at;
        for pin in pins.into_iter().flatten().filter_map(|k| self.pins.get(k)) {
            if pin.count > 0 {
                return false;
            }
            if let Some(released) = pin.released_at {
                since = since.max(released);
            }
        }
        now >= since + grace
    }

    /// Evicts tombstones whose grace has run out. Returns whether anything was evicted.
    pub fn sweep(&mut self, now: Instant, grace: Duration) -> Report {
        let expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(uid, e)| self.is_expired(uid, e, now, grace))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in &expired {
            if let Some(entry) = self.pods.remove(uid) {
                if let Some(hash) = entry.info.mirror_hash {
                    self.remember_evicted(hash.into());
                }
            }
            self.remember_evicted(uid.clone());
            self.persist(|| TombstoneOp::Remove(uid.clone()));
        }
        let pods = &self.pods;
        self.pins
            .retain(|uid, p| p.count > 0 || pods.contains_key(uid) || is_mirror(pods, uid));
        self.report(!expired.is_empty())
    }

    fn remember_evicted(&mut self, uid: String) {
        if self.evicted.insert(uid.clone()) {
            self.evicted_order.push_back(uid);
        }
        while self.evicted_order.len() > EVICTED_MEMORY {
            if let Some(old) = self.evicted_order.pop_front() {
                self.evicted.remove(&old);
            }
        }
    }

    fn resolve(
        &mut self,
        path: &KubeLogPath,
        container_id: Option<&str>,
        now: Instant,
        grace: Duration,
    ) -> Result<Lookup, PathOnlyReason> {
        if self.namespaces.get(&path.namespace) == Some(&true) {
            return Ok(Lookup::Excluded);
        }
        let uid = if self.pods.contains_key(&path.pod_uid) {
            Some(path.pod_uid.clone())
        } else {
            // Static pods: the directory carries the config hash, the mirror pod has its
            // own uid and the hash in an annotation.
            self.pods
                .iter()
                .find(|(_, e)| {
                    e.info.mirror_hash.as_deref() == Some(path.pod_uid.as_str())
                        && *e.info.namespace == *path.namespace
                        && *e.info.name == *path.pod_name
                })
                .map(|(uid, _)| uid.clone())
        };
        if let Some(uid) = uid {
            let expired = {
                let entry = &self.pods[&uid];
                self.is_expired(&uid, entry, now, grace)
            };
            if expired {
                return Err(PathOnlyReason::Expired);
            }
            let entry = self.pods.get_mut(&uid).expect("entry present");
            if entry.info.excluded {
                return Ok(Lookup::Excluded);
            }
            return Ok(Lookup::Found(entry.meta_for(&path.container, container_id)));
        }
        if self.evicted.contains(&path.pod_uid) {
            return Err(PathOnlyReason::Expired);
        }
        let same_name = self
            .pods
            .values()
            .any(|e| *e.info.namespace == *path.namespace && *e.info.name == *path.pod_name);
        Err(if same_name {
            PathOnlyReason::UidMismatch
        } else {
            PathOnlyReason::PodUnknown
        })
    }
}

/// Whether `uid` is the config hash of a static pod whose mirror pod is stored.
fn is_mirror(pods: &HashMap<String, Entry>, uid: &str) -> bool {
    pods.values()
        .any(|e| e.info.mirror_hash.as_deref() == Some(uid))
}

impl Entry {
    fn meta_for(&mut self, container: &str, container_id: Option<&str>) -> Arc<PodMeta> {
        let known = self.info.containers.iter().find(|c| &*c.name == container);
        // The status' id is the current container; a file of an earlier restart names
        // its own (possibly truncated) id in the /var/log/containers link.
        let id = match (known.and_then(|c| c.id.as_deref()), container_id) {
            (Some(status), Some(file)) if !status.starts_with(file) => Some(file),
            (Some(status), _) => Some(status),
            (None, file) => file,
        };
        if let Some((_, _, meta)) = self
            .metas
            .iter()
            .find(|(c, i, _)| c == container && i.as_deref() == id)
        {
            return Arc::clone(meta);
        }
        let info = &self.info;
        let meta = Arc::new(PodMeta {
            origin: MetadataOrigin::Api,
            namespace: info.namespace.to_string(),
            pod_name: info.name.to_string(),
            pod_uid: info.uid.to_string(),
            pod_ip: info.ip.as_deref().map(str::to_owned),
            node_name: info.node.as_deref().map(str::to_owned),
            labels: info.labels.clone(),
            annotations: info.annotations.clone(),
            owner: info
                .owner
                .as_ref()
                .map(|(k, n)| (k.to_string(), n.to_string())),
            container: ContainerMeta {
                name: container.to_owned(),
                image: known.and_then(|c| c.image.as_deref()).map(str::to_owned),
                id: id.map(str::to_owned),
                runtime: known.and_then(|c| c.runtime.as_deref()).map(str::to_owned),
            },
            airflow: info.airflow.as_deref().cloned(),
        });
        self.metas.push((
            container.to_owned(),
            id.map(str::to_owned),
            Arc::clone(&meta),
        ));
        meta
    }
}

/// Compiles the annotation allowlist. Invalid globs are reported and matched literally.
pub(crate) fn compile_allowlist(patterns: &[String]) -> (GlobSet, Vec<KubeError>) {
    let mut builder = GlobSetBuilder::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        match Glob::new(pattern) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(source) => {
                if let Ok(glob) = Glob::new(&globset::escape(pattern)) {
                    builder.add(glob);
                }
                errors.push(KubeError::AllowlistPattern {
                    pattern: pattern.clone(),
                    source,
                });
            }
        }
    }
    let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
    (set, errors)
}

impl KubeConfig {
    /// Checks the configuration (the annotation allowlist's globs).
    ///
    /// # Errors
    ///
    /// [`KubeError::AllowlistPattern`] for the first invalid glob.
    pub fn validate(&self) -> Result<(), KubeError> {
        match compile_allowlist(&self.annotation_allowlist)
            .1
            .into_iter()
            .next()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Shared {
    /// Applies `f` to the state under the lock, then reports and wakes waiting lookups.
    pub fn update(&self, f: impl FnOnce(&mut State) -> Report) {
        let (report, ops) = {
            let mut state = self.state.lock();
            let report = f(&mut state);
            (report, state.tombstone_ops.as_mut().map(std::mem::take))
        };
        if let (Some(dir), Some(ops)) = (&self.config.state_dir, ops) {
            if !ops.is_empty() {
                tombstones::apply(dir, ops);
            }
        }
        if let Some(n) = report.store_size {
            self.events.store_size(n);
        }
        if let Some(s) = report.synced {
            self.events.synced(s);
        }
        self.changed.notify_waiters();
    }
}

impl PodStore {
    fn new(config: KubeConfig, events: Arc<dyn KubeEvents>, disabled: bool) -> PodStore {
        let (allow, errors) = compile_allowlist(&config.annotation_allowlist);
        for e in errors {
            tracing::warn!(error = %e, source = %std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(), "annotation allowlist pattern matched literally");
        }
        let mut state = State::default();
        if let (Some(dir), false) = (&config.state_dir, disabled) {
            match tombstones::load(dir) {
                Ok(infos) => {
                    if !infos.is_empty() {
                        tracing::info!(pods = infos.len(), dir = %dir.display(),
                            "loaded deleted pods' metadata kept by the previous run");
                    }
                    let now = Instant::now();
                    for info in infos {
                        state.pods.insert(
                            String::from(&*info.uid),
                            Entry {
                                info,
                                deleted_at: Some(now),
                                metas: Vec::new(),
                            },
                        );
                    }
                    state.tombstone_ops = Some(Vec::new());
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e,
                        "cannot keep deleted pods' metadata on disk; it lives in memory only");
                }
            }
        }
        PodStore {
            shared: Arc::new(Shared {
                config,
                allow,
                events,
                state: Mutex::new(state),
                changed: Notify::new(),
                disabled,
            }),
        }
    }

    /// Starts the node-scoped pod watch (`fieldSelector=spec.nodeName=<node_name>`), the
    /// namespace watch and the tombstone sweep on the current tokio runtime, and returns
    /// the store they fill. The tasks stop when `shutdown` is cancelled.
    ///
    /// `client` is built by the caller, normally with `kube::Client::try_default()`
    /// (in-cluster config or the kubeconfig named by `KUBECONFIG`); if that failed, use
    /// [`PodStore::disabled`]. Watch errors never surface here: they are logged once per
    /// cause, reported through [`KubeEvents::api_error`], and followed by a re-list after
    /// an exponential backoff capped at [`KubeConfig::backoff_max`].
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    pub fn start(
        client: kube::Client,
        config: KubeConfig,
        events: Arc<dyn KubeEvents>,
        shutdown: CancellationToken,
    ) -> PodStore {
        if config.node_name.is_empty() {
            tracing::warn!("kubernetes node_name is empty: watching the pods of every node");
        }
        let store = PodStore::new(config, events, false);
        let shared = &store.shared;
        tokio::spawn(crate::watch::run_pods(
            Arc::clone(shared),
            client.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(crate::watch::run_namespaces(
            Arc::clone(shared),
            client,
            shutdown.clone(),
        ));
        tokio::spawn(crate::watch::run_sweep(Arc::clone(shared), shutdown));
        store
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::path::Path;

    fn info(v: serde_json::Value) -> PodInfo {
        let pod: Pod = serde_json::from_value(v).unwrap();
        let (allow, _) = compile_allowlist(&KubeConfig::default().annotation_allowlist);
        PodInfo::from_pod(&pod, &allow, "logferry.io/exclude").unwrap()
    }

    fn path(s: &str) -> KubeLogPath {
        KubeLogPath::parse(Path::new(s)).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(300);

    #[test]
    fn static_pods_are_found_and_pinned_through_their_config_hash() {
        let mut state = State::default();
        state.pod_apply(info(json!({
            "metadata": {"name": "etcd-node-a", "namespace": "kube-system", "uid": "mirror-uid",
                         "annotations": {"kubernetes.io/config.mirror": "3f1c0ffee"}},
            "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5"}]}
        })));
        let p = path("/var/log/pods/kube-system_etcd-node-a_3f1c0ffee/etcd/0.log");
        let now = Instant::now();
        let Ok(Lookup::Found(m)) = state.resolve(&p, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(
            (&*m.pod_uid, m.container.image.as_deref()),
            ("mirror-uid", Some("registry.k8s.io/etcd:3.5"))
        );

        // The tailer pins by the path's uid (the hash); that protects the mirror pod.
        state.pins.entry("3f1c0ffee".to_owned()).or_default().count = 1;
        let gone = info(
            json!({"metadata": {"name": "etcd-node-a", "namespace": "kube-system", "uid": "mirror-uid",
                                            "annotations": {"kubernetes.io/config.mirror": "3f1c0ffee"}}}),
        );
        state.pod_delete(gone, now);
        let later = now + GRACE * 3;
        state.sweep(later, GRACE);
        assert_eq!(state.pods.len(), 1, "pinned through the config hash");
        state.pins.get_mut("3f1c0ffee").unwrap().count = 0;
        state.pins.get_mut("3f1c0ffee").unwrap().released_at = Some(later);
        state.sweep(later + GRACE / 2, GRACE);
        assert_eq!(state.pods.len(), 1, "grace runs from the release");
        state.sweep(later + GRACE, GRACE);
        assert!(state.pods.is_empty() && state.pins.is_empty());
        assert_eq!(
            state.resolve(&p, None, later + GRACE, GRACE),
            Err(PathOnlyReason::Expired)
        );
    }

    #[test]
    fn container_ids_come_from_the_status_unless_the_file_names_another_instance() {
        let mut state = State::default();
        let current = "c".repeat(64);
        state.pod_apply(info(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "web:1"}],
                     "initContainers": [{"name": "init", "image": "init:1"}]},
            "status": {"containerStatuses": [{"name": "app", "image": "web:1", "imageID": "", "ready": true,
                                              "restartCount": 1, "containerID": format!("cri-o://{current}")}]}
        })));
        let now = Instant::now();
        let p = path("/var/log/pods/default_web_u1/app/1.log");
        let get = |state: &mut State, id: Option<&str>| match state.resolve(&p, id, now, GRACE) {
            Ok(Lookup::Found(m)) => m,
            other => panic!("{other:?}"),
        };
        let a = get(&mut state, None);
        assert_eq!(
            (a.container.id.as_deref(), a.container.runtime.as_deref()),
            (Some(current.as_str()), Some("cri-o"))
        );
        // A link name cut short by kubelet's 255-byte limit: a prefix of the status id.
        let b = get(&mut state, Some(&current[..20]));
        assert!(Arc::ptr_eq(&a, &b));
        // The previous instance's file (restart 0): its own id.
        let old = "0".repeat(64);
        let c = get(&mut state, Some(&old));
        assert_eq!(c.container.id.as_deref(), Some(old.as_str()));
        assert!(Arc::ptr_eq(&c, &get(&mut state, Some(&old))));
        // Init containers are known too; a container unknown to the spec keeps the path's name.
        let init = path("/var/log/pods/default_web_u1/init/0.log");
        let Ok(Lookup::Found(i)) = state.resolve(&init, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(i.container.image.as_deref(), Some("init:1"));
        let dbg = path("/var/log/pods/default_web_u1/debugger-x1/0.log");
        let Ok(Lookup::Found(d)) = state.resolve(&dbg, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(
            (d.container.name.as_str(), d.container.image.as_deref()),
            ("debugger-x1", None)
        );
    }

    #[test]
    fn a_relist_tombstones_pods_it_no_longer_lists_and_revives_listed_ones() {
        let mut state = State::default();
        let pod =
            |uid: &str| info(json!({"metadata": {"name": uid, "namespace": "ns", "uid": uid}}));
        let t0 = Instant::now();
        state.pod_init();
        state.pod_apply(pod("a"));
        state.pod_apply(pod("b"));
        state.pod_init_done(t0);
        state.pod_delete(pod("b"), t0);
        // Re-list: `a` is gone (missed DELETED), `b` is listed again (deletion was wrong).
        state.pod_init();
        state.pod_apply(pod("b"));
        state.pod_init_done(t0);
        assert!(state.pods["a"].deleted_at.is_some());
        assert!(state.pods["b"].deleted_at.is_none());
        state.sweep(t0 + GRACE, GRACE);
        assert_eq!(state.pods.keys().collect::<Vec<_>>(), ["b"]);
    }
}
