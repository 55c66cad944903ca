//! # logferry-kube
//!
//! Pod metadata for logferry's records: a node-scoped watch of the Kubernetes API, a
//! small in-memory store whose entries outlive their pods, and the file → pod mapping.
//!
//! ## What it does
//!
//! * **Node-scoped watch.** [`PodStore::watch`] returns the store and the [`PodWatch`]
//!   future (the caller spawns it, so its shutdown sees every task), which runs kube's runtime
//!   [`watcher`](kube::runtime::watcher()) on pods with
//!   `fieldSelector=spec.nodeName=<node_name>` and on namespaces (for namespace-level
//!   opt-out, and the allow-listed namespace labels,
//!   [`KubeConfig::namespace_label_allowlist`]). Re-lists after `410 Gone`, dropped connections and API errors, with an
//!   exponential backoff capped at [`KubeConfig::backoff_max`] (default 5 s, so that
//!   the store catches up quickly after an outage). After any error the watch starts
//!   over with a full list; pods missing from it are treated as deleted.
//! * **Small store.** Only what logferry enriches records with is kept per pod
//!   (namespace, name, uid, IP, node, labels allowed by [`KubeConfig::label_allowlist`]
//!   and not denied by [`KubeConfig::label_denylist`], allow-listed annotations, controller
//!   owner, and per container — regular, init and ephemeral — name, image, runtime and
//!   container id), never whole Pod objects. [`PodStore::memory_usage`] measures it.
//! * **File → pod.** [`PodStore::lookup`] takes a parsed
//!   `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log` path and finds the pod by
//!   uid, so a pod recreated under the same name maps each file to its own pod.
//! * **Metadata that outlives the pod.** Deleted pods become tombstones, kept while
//!   any of their files is [pinned](PodStore::pin) and for
//!   [`KubeConfig::metadata_grace`] after the last [release](PodStore::release) (or
//!   after deletion when never pinned). A file seen before its pod's `ADDED` event
//!   waits up to [`KubeConfig::lookup_wait`] for it.
//! * **Metadata that outlives the process.** With [`KubeConfig::state_dir`], the
//!   future of [`PodStore::persist`] keeps every entry (live pods and tombstones,
//!   bounded) in `pods.json` and loads it at start, so lines read after a restart
//!   from files of pods deleted before it, or while no logferry ran, keep their
//!   metadata. Saved entries are used only for uids the API no longer lists.
//! * **Degraded mode.** While the API is unreachable, times out or forbids the watch,
//!   lookups of unknown pods answer at once with [`Lookup::PathOnly`] and the cause is
//!   logged once; known pods keep their metadata, and full metadata resumes when a
//!   re-list succeeds.
//! * **Exclusion** by the pod or namespace annotation
//!   [`KubeConfig::exclude_annotation`] = `"true"` ([`Lookup::Excluded`]).
//! * **Airflow.** [`airflow_task`] reads the task of KubernetesExecutor and
//!   KubernetesPodOperator pods, preferring the raw values of annotations over the
//!   sanitised labels ([`pod_generator.py`](https://github.com/apache/airflow/blob/main/providers/cncf/kubernetes/src/airflow/providers/cncf/kubernetes/pod_generator.py)).
//!
//! ## What it does not do
//!
//! It does not read files, decide include/exclude globs on `namespace/pod/container`
//! (the daemon does), GET single pods on a miss (a deleted pod answers 404, which is how
//! peers lose metadata), or count records: the daemon counts [`Lookup::PathOnly`]
//! answers by [`PathOnlyReason::as_label`]. It never depends on a metrics registry:
//! it reports through [`KubeEvents`].
//!
//! ## Protocol
//!
//! The Kubernetes list/watch protocol
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>),
//! spoken by `kube` 5 and `k8s-openapi` 0.29 (API v1.33).

#![deny(missing_docs)]

mod airflow;
mod config;
mod entry;
mod error;
mod events;
mod lookup;
mod snapshot;
mod state;
mod store;
mod watch;

pub use airflow::airflow_task;
pub use config::{KubeConfig, AIRFLOW_ANNOTATIONS};
pub use error::KubeError;
pub use events::{KubeEvents, NoopEvents, WATCHED_RESOURCES};
pub use lookup::{Lookup, PathOnlyReason, StoreMemory};
pub use snapshot::PodPersist;
pub use store::PodStore;
pub use watch::PodWatch;
