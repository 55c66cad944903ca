//! A *double* of the Kubernetes API server: just enough of the list/watch protocol for
//! pods and namespaces that the real `kube` client (kube-rs' runtime `watcher`) talks
//! to it over real HTTP, with fault injection. It is not an API server: no admission,
//! no RBAC rules, no persistence, no other resources.
//!
//! Protocol: <https://kubernetes.io/docs/reference/using-api/api-concepts/>
//! (lists with `metadata.resourceVersion`, `limit`/`continue`, watches as chunked JSON
//! lines `{"type":…,"object":…}`, bookmarks, `410 Gone`), and the selector syntax of
//! <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/> and
//! `field-selectors/`.
//!
//! # What it serves
//!
//! Plain HTTP on `127.0.0.1:<random port>` (or `DoubleOptions::listen`). Every
//! `/api/...` request needs `Authorization: Bearer <token>` (the token is written into
//! the kubeconfig the double writes, see [`KubeApiDouble::kubeconfig_path`]); otherwise
//! `401`.
//!
//! * `GET /api/v1/pods`, `GET /api/v1/namespaces/{ns}/pods`, `GET /api/v1/namespaces`:
//!   lists (`PodList`/`NamespaceList`) with `metadata.resourceVersion`. Query:
//!   `fieldSelector` (pods: `metadata.name`, `metadata.namespace`, `spec.nodeName`,
//!   `spec.restartPolicy`, `spec.schedulerName`, `spec.serviceAccountName`,
//!   `status.phase`, `status.podIP`; namespaces: `metadata.name`, `status.phase`;
//!   operators `=`, `==`, `!=`; an unsupported field answers `400 BadRequest`),
//!   `labelSelector` (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`),
//!   `limit` + `continue` (pages over the *current* state, ordered by namespace/name; a
//!   continue token from before an [expiry](KubeApiDouble::expire_history) answers
//!   `410`), `resourceVersion` (`""`/`"0"`: current state; an RV older than the
//!   retained history answers `410 Expired`, like a compacted etcd).
//! * `GET /api/v1/namespaces/{ns}/pods/{name}` and `GET /api/v1/namespaces/{name}`.
//! * The same list URLs with `watch=true` (or `watch=1`): a chunked stream of JSON lines
//!   `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}`. From
//!   `resourceVersion` N it replays the event log after N; without one (or `"0"`) it
//!   first sends `ADDED` for every matching object. An object that starts or stops
//!   matching the field/label selectors arrives as `ADDED`/`DELETED`, as the real server
//!   does. A watch from an RV older than the retained history gets one in-stream `ERROR`
//!   event carrying a `Status` with `code: 410, reason: "Expired"`, then the stream ends.
//!   `allowWatchBookmarks=true` adds a `BOOKMARK` with the current RV every
//!   `DoubleOptions::bookmark_interval`; `timeoutSeconds` ends the stream cleanly.
//!
//! Every change (create/update/delete of a pod or namespace) takes the next value of one
//! global resourceVersion counter and is appended to the event log.
//!
//! # Faults (test API and control API)
//!
//! * [`KubeApiDouble::expire_history`]: forget the event log (etcd compaction): watches
//!   and lists from older RVs get `410`.
//! * [`KubeApiDouble::freeze_watches`]: open watches stop receiving events (a stalled
//!   connection); [`KubeApiDouble::drop_watches`] ends every open watch response
//!   cleanly (as an API server does on timeout or restart) and lifts the freeze.
//! * [`KubeApiDouble::set_fault`]: answer every `/api` request with `403` (an RBAC
//!   `Status` body), `500`, or normally.
//! * [`KubeApiDouble::stop_listening`] / [`KubeApiDouble::start_listening`]: an outage:
//!   the listener is closed and every open connection aborted; later the double listens
//!   again on the same port with the same state.
//!
//! # Control API (for tests in another process, see the `kube-api-double` binary)
//!
//! Under `/_double/` on the same server, no authentication, JSON bodies:
//!
//! | Request | Effect |
//! |---|---|
//! | `POST /_double/pods` (Pod JSON) | create; `201` with the stored object, `409` if it exists |
//! | `PUT /_double/pods` (Pod JSON) | update (replace); `200`, `404` if absent |
//! | `DELETE /_double/namespaces/{ns}/pods/{name}` | delete; `200` with the object, `404` |
//! | `POST /_double/namespaces` (Namespace JSON) | create or update |
//! | `GET /_double/pods` | the current pods, a JSON array |
//! | `POST /_double/fault` `{"fault":"none"\|"forbidden"\|"server_error"}` | [`Fault`] |
//! | `POST /_double/expire` | [`KubeApiDouble::expire_history`] |
//! | `POST /_double/freeze-watches` | [`KubeApiDouble::freeze_watches`] |
//! | `POST /_double/drop-watches` | [`KubeApiDouble::drop_watches`] |
//! | `POST /_double/outage?seconds=N` | stop listening after answering, listen again after N s |
//! | `GET /_double/stats` | `{"resource_version":…,"lists":…,"watches":…}` |

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Body = BoxBody<Bytes, std::io::Error>;

/// What every `/api` request is answered with, besides normal service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Normal service.
    #[default]
    None,
    /// `403 Forbidden` with the `Status` body an RBAC denial carries.
    Forbidden,
    /// `500 Internal Server Error` with an `InternalError` `Status`.
    ServerError,
}

/// How the double is started.
#[derive(Clone, Debug)]
pub struct DoubleOptions {
    /// Address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Where to write the kubeconfig; default a unique file in the temp dir, removed
    /// when the double is dropped.
    pub kubeconfig_out: Option<PathBuf>,
    /// Bearer token the kubeconfig carries and `/api` requests must present.
    pub token: String,
    /// Interval of `BOOKMARK` events on watches that allow them. Default 1 s.
    pub bookmark_interval: Duration,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        DoubleOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig_out: None,
            token: "kube-api-double-token".to_owned(),
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

/// Request counters, to check that a client re-listed or re-watched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DoubleStats {
    /// Current (last issued) resourceVersion.
    pub resource_version: u64,
    /// `GET` list requests answered (any status).
    pub lists: u64,
    /// Watch requests answered (any status).
    pub watches: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Pods,
    Namespaces,
}

impl Kind {
    fn list_kind(self) -> &'static str {
        match self {
            Kind::Pods => "PodList",
            Kind::Namespaces => "NamespaceList",
        }
    }
    fn object_kind(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::Namespaces => "Namespace",
        }
    }
    fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Namespaces => "namespaces",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EventType {
    Added,
    Modified,
    Deleted,
}

struct LogEvent {
    rv: u64,
    kind: Kind,
    ty: EventType,
    object: Arc<Value>,
    prev: Option<Arc<Value>>,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// Events with `rv > oldest_rv` are all in `log`.
    oldest_rv: u64,
    log: Vec<LogEvent>,
    /// (namespace, name) → pod.
    pods: BTreeMap<(String, String), Arc<Value>>,
    namespaces: BTreeMap<String, Arc<Value>>,
    fault: Fault,
    frozen: bool,
}

struct Server {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Inner {
    state: Mutex<State>,
    /// Current resourceVersion, for waking watches.
    rv_tx: watch::Sender<u64>,
    /// Generation of `drop_watches` commands.
    drop_tx: watch::Sender<u64>,
    /// Freeze flag changes.
    freeze_tx: watch::Sender<bool>,
    options: DoubleOptions,
    addr: SocketAddr,
    server: Mutex<Option<Server>>,
    lists: AtomicU64,
    watches: AtomicU64,
}

/// The Kubernetes API double. Dropping it stops the server and removes the kubeconfig
/// it wrote (unless written to `DoubleOptions::kubeconfig_out`).
pub struct KubeApiDouble {
    inner: Arc<Inner>,
    kubeconfig: PathBuf,
    remove_kubeconfig: bool,
}

impl KubeApiDouble {
    /// Starts the double on `127.0.0.1:<random port>` with default options.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or the kubeconfig not written.
    pub async fn start() -> anyhow::Result<KubeApiDouble> {
        Self::start_with(DoubleOptions::default()).await
    }

    /// Starts the double with `options`.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound or the kubeconfig not written.
    pub async fn start_with(options: DoubleOptions) -> anyhow::Result<KubeApiDouble> {
        let listener = TcpListener::bind(options.listen).await.with_context(|| {
            format!(
                "failed to bind the Kubernetes API double to {}",
                options.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let (kubeconfig, remove_kubeconfig) = match &options.kubeconfig_out {
            Some(p) => (p.clone(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "kube-api-double-{}-{}-{:x}.kubeconfig",
                    std::process::id(),
                    addr.port(),
                    rand::random::<u32>()
                )),
                true,
            ),
        };
        write_kubeconfig(&kubeconfig, addr, &options.token)?;
        let start_rv = 1000;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                rv: start_rv,
                oldest_rv: start_rv,
                ..State::default()
            }),
            rv_tx: watch::channel(start_rv).0,
            drop_tx: watch::channel(0).0,
            freeze_tx: watch::channel(false).0,
            options,
            addr,
            server: Mutex::new(None),
            lists: AtomicU64::new(0),
            watches: AtomicU64::new(0),
        });
        Inner::serve(&inner, listener);
        Ok(KubeApiDouble {
            inner,
            kubeconfig,
            remove_kubeconfig,
        })
    }

    /// The address the double listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// A kubeconfig (JSON, which is valid YAML) with one cluster `kube-api-double` at
    /// [`KubeApiDouble::url`], and a user with the bearer token. Point `KUBECONFIG` at it,
    /// or read it with `kube::config::Kubeconfig::read_from`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Loads every `Pod` and `Namespace` object (JSON, any file name) of `dir`; files
    /// holding other JSON (or no JSON) are skipped. Returns how many objects were loaded.
    ///
    /// # Errors
    ///
    /// If `dir` cannot be read, or a pod already exists.
    pub fn load_dir(&self, dir: &Path) -> anyhow::Result<usize> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("failed to read directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        // Namespaces first, so that pods land in existing namespaces.
        let mut objects = Vec::new();
        for path in paths {
            let text = std::fs::read(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            if let Ok(v) = serde_json::from_slice::<Value>(&text) {
                objects.push((path, v));
            }
        }
        objects.sort_by_key(|(_, v)| v["kind"] != "Namespace");
        let mut n = 0;
        for (path, v) in objects {
            match v["kind"].as_str() {
                Some("Namespace") => {
                    self.create_namespace(v)?;
                    n += 1;
                }
                Some("Pod") => {
                    self.create_pod(v)
                        .with_context(|| format!("failed to load pod {}", path.display()))?;
                    n += 1;
                }
                _ => {}
            }
        }
        Ok(n)
    }

    /// Creates a pod (a `serde_json::Value` or a `k8s_openapi` `Pod`): fills in
    /// `metadata.uid` (random v4 UUID), `namespace` (`default`) and `creationTimestamp`
    /// when missing, sets `metadata.resourceVersion`, creates the namespace if it does not
    /// exist, and emits `ADDED`. Returns the stored object.
    ///
    /// # Errors
    ///
    /// If the object has no `metadata.name` or a pod of that namespace/name exists.
    pub fn create_pod(&self, pod: impl Serialize) -> anyhow::Result<Value> {
        self.inner.create(Kind::Pods, serde_json::to_value(pod)?)
    }

    /// Replaces a pod (matched by namespace/name; `metadata.uid` is kept from the stored
    /// object when missing) and emits `MODIFIED`. Returns the stored object.
    ///
    /// # Errors
    ///
    /// If the pod does not exist.
    pub fn update_pod(&self, pod: impl Serialize) -> anyhow::Result<Value> {
        self.inner.update(Kind::Pods, serde_json::to_value(pod)?)
    }

    /// Deletes a pod and emits `DELETED` (with a new resourceVersion). Returns the pod.
    ///
    /// # Errors
    ///
    /// If the pod does not exist.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> anyhow::Result<Value> {
        self.inner.delete(Kind::Pods, namespace, name)
    }

    /// Creates a namespace (`ADDED`), or replaces it (`MODIFIED`) if it exists. A
    /// `serde_json::Value`, a `k8s_openapi` `Namespace`, or just a name as a JSON string.
    ///
    /// # Errors
    ///
    /// If the object has no `metadata.name`.
    pub fn create_namespace(&self, namespace: impl Serialize) -> anyhow::Result<Value> {
        let mut v = serde_json::to_value(namespace)?;
        if let Value::String(name) = v {
            v = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        }
        self.inner.upsert_namespace(v)
    }

    /// Deletes a namespace (`DELETED`). Its pods are left alone.
    ///
    /// # Errors
    ///
    /// If the namespace does not exist.
    pub fn delete_namespace(&self, name: &str) -> anyhow::Result<Value> {
        self.inner.delete(Kind::Namespaces, "", name)
    }

    /// The current pods, ordered by namespace/name.
    pub fn pods(&self) -> Vec<Value> {
        self.inner
            .state
            .lock()
            .pods
            .values()
            .map(|v| (**v).clone())
            .collect()
    }

    /// Sets the fault every `/api` request is answered with.
    pub fn set_fault(&self, fault: Fault) {
        self.inner.state.lock().fault = fault;
    }

    /// Forgets the event log, like an etcd compaction at the current revision: watches
    /// and lists from an older resourceVersion get `410 Gone`.
    pub fn expire_history(&self) {
        self.inner.expire();
    }

    /// Open watches stop receiving events until [`KubeApiDouble::drop_watches`].
    pub fn freeze_watches(&self) {
        self.inner.state.lock().frozen = true;
        self.inner.freeze_tx.send_replace(true);
    }

    /// Ends every open watch response and lifts a freeze.
    pub fn drop_watches(&self) {
        self.inner.drop_watches();
    }

    /// Stops listening and aborts every open connection (an outage). The state is kept.
    pub async fn stop_listening(&self) {
        self.inner.stop().await;
    }

    /// Listens again on the same port after [`KubeApiDouble::stop_listening`].
    ///
    /// # Errors
    ///
    /// If the port cannot be bound again.
    pub async fn start_listening(&self) -> anyhow::Result<()> {
        Inner::restart(&self.inner).await
    }

    /// Request counters and the current resourceVersion.
    pub fn stats(&self) -> DoubleStats {
        self.inner.stats()
    }
}

impl Drop for KubeApiDouble {
    fn drop(&mut self) {
        if let Some(server) = self.inner.server.lock().take() {
            server.stop.cancel();
        }
        if self.remove_kubeconfig {
            let _ = std::fs::remove_file(&self.kubeconfig);
        }
    }
}

fn write_kubeconfig(path: &Path, addr: SocketAddr, token: &str) -> anyhow::Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-api-double", "cluster": {"server": format!("http://{addr}")}}],
        "users": [{"name": "logferry", "user": {"token": token}}],
        "contexts": [{"name": "kube-api-double", "context": {"cluster": "kube-api-double", "user": "logferry", "namespace": "default"}}],
        "current-context": "kube-api-double",
        "preferences": {}
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("failed to write kubeconfig {}", path.display()))
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("metadata")?.get(key)?.as_str()
}

impl State {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        kind: Kind,
        ty: EventType,
        mut object: Value,
        prev: Option<Arc<Value>>,
    ) -> Arc<Value> {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let object = Arc::new(object);
        self.log.push(LogEvent {
            rv,
            kind,
            ty,
            object: Arc::clone(&object),
            prev,
        });
        object
    }

    fn ensure_namespace(&mut self, name: &str) {
        if !self.namespaces.contains_key(name) {
            let ns = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": now_rfc3339()},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
            });
            let stored = self.record(Kind::Namespaces, EventType::Added, ns, None);
            self.namespaces.insert(name.to_owned(), stored);
        }
    }
}

impl Inner {
    fn notify(&self, rv: u64) {
        self.rv_tx.send_replace(rv);
    }

    fn create(&self, kind: Kind, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("object has no metadata.name"))?
            .to_owned();
        if !object["metadata"].is_object() {
            bail!("object has no metadata");
        }
        let mut state = self.state.lock();
        let ns = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        let key = (ns.clone(), name.clone());
        if kind == Kind::Pods && state.pods.contains_key(&key) {
            bail!("pods \"{name}\" already exists in namespace {ns}");
        }
        let md = &mut object["metadata"];
        md["namespace"] = Value::String(ns.clone());
        if md
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            md["uid"] = Value::String(new_uid());
        }
        if md.get("creationTimestamp").is_none_or(Value::is_null) {
            md["creationTimestamp"] = Value::String(now_rfc3339());
        }
        object["kind"] = Value::String(kind.object_kind().to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        state.ensure_namespace(&ns);
        let stored = state.record(kind, EventType::Added, object, None);
        state.pods.insert(key, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    fn update(&self, kind: Kind, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .ok_or_else(|| anyhow!("object has no metadata.name"))?
            .to_owned();
        let ns = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        let mut state = self.state.lock();
        let key = (ns.clone(), name.clone());
        let prev = state
            .pods
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("pods \"{name}\" not found in namespace {ns}"))?;
        let md = &mut object["metadata"];
        md["namespace"] = Value::String(ns);
        if md.get("uid").and_then(Value::as_str).is_none() {
            md["uid"] = prev["metadata"]["uid"].clone();
        }
        if md.get("creationTimestamp").is_none() {
            md["creationTimestamp"] = prev["metadata"]["creationTimestamp"].clone();
        }
        object["kind"] = Value::String(kind.object_kind().to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        let stored = state.record(kind, EventType::Modified, object, Some(prev));
        state.pods.insert(key, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    fn upsert_namespace(&self, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("namespace has no metadata.name"))?
            .to_owned();
        let mut state = self.state.lock();
        let prev = state.namespaces.get(&name).cloned();
        let md = &mut object["metadata"];
        if md.get("uid").and_then(Value::as_str).is_none() {
            md["uid"] = prev.as_ref().map_or_else(
                || Value::String(new_uid()),
                |p| p["metadata"]["uid"].clone(),
            );
        }
        if md.get("creationTimestamp").is_none() {
            md["creationTimestamp"] = Value::String(now_rfc3339());
        }
        if let Some(m) = md.as_object_mut() {
            m.remove("namespace");
        }
        object["kind"] = Value::String("Namespace".to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        if object.get("status").is_none() {
            object["status"] = json!({"phase": "Active"});
        }
        let ty = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let stored = state.record(Kind::Namespaces, ty, object, prev);
        state.namespaces.insert(name, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    fn delete(&self, kind: Kind, ns: &str, name: &str) -> anyhow::Result<Value> {
        let mut state = self.state.lock();
        let prev = match kind {
            Kind::Pods => state.pods.remove(&(ns.to_owned(), name.to_owned())),
            Kind::Namespaces => state.namespaces.remove(name),
        }
        .ok_or_else(|| anyhow!("{} \"{name}\" not found", kind.plural()))?;
        let stored = state.record(kind, EventType::Deleted, (*prev).clone(), Some(prev));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    fn expire(&self) {
        let mut state = self.state.lock();
        state.log.clear();
        state.oldest_rv = state.rv;
    }

    fn drop_watches(&self) {
        self.state.lock().frozen = false;
        self.freeze_tx.send_replace(false);
        self.drop_tx.send_modify(|g| *g += 1);
    }

    fn stats(&self) -> DoubleStats {
        DoubleStats {
            resource_version: self.state.lock().rv,
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
        }
    }

    fn serve(inner: &Arc<Inner>, listener: TcpListener) {
        let stop = CancellationToken::new();
        let this = Arc::clone(inner);
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let this = Arc::clone(&this);
                let token = token.clone();
                tokio::spawn(async move {
                    let conn_token = token.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let this = Arc::clone(&this);
                        let token = conn_token.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, token).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        *inner.server.lock() = Some(Server { stop, task });
    }

    async fn stop(&self) {
        let server = self.server.lock().take();
        if let Some(server) = server {
            server.stop.cancel();
            let _ = server.task.await;
        }
    }

    async fn restart(inner: &Arc<Inner>) -> anyhow::Result<()> {
        if inner.server.lock().is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(inner.addr).await.with_context(|| {
            format!(
                "failed to bind the Kubernetes API double to {} again",
                inner.addr
            )
        })?;
        Inner::serve(inner, listener);
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn_stop: CancellationToken,
    ) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = parse_query(req.uri().query().unwrap_or(""));
        if let Some(rest) = path.strip_prefix("/_double/") {
            let rest = rest.to_owned();
            return self.control(req, &rest, &query).await;
        }
        if !path.starts_with("/api") {
            return status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            );
        }
        let expected = format!("Bearer {}", self.options.token);
        if req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(expected.as_str())
        {
            return status_response(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized",
                None,
            );
        }
        if req.method() != Method::GET {
            return status_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the double serves GET only",
                None,
            );
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // (kind, namespace scope, single object name)
        let route = match segs.as_slice() {
            ["api", "v1", "pods"] => Some((Kind::Pods, None, None)),
            ["api", "v1", "namespaces"] => Some((Kind::Namespaces, None, None)),
            ["api", "v1", "namespaces", name] => Some((Kind::Namespaces, None, Some(*name))),
            ["api", "v1", "namespaces", ns, "pods"] => Some((Kind::Pods, Some(*ns), None)),
            ["api", "v1", "namespaces", ns, "pods", name] => {
                Some((Kind::Pods, Some(*ns), Some(*name)))
            }
            _ => None,
        };
        let Some((kind, ns, name)) = route else {
            return status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            );
        };
        let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        if name.is_none() {
            if is_watch {
                self.watches.fetch_add(1, Ordering::Relaxed);
            } else {
                self.lists.fetch_add(1, Ordering::Relaxed);
            }
        }
        let fault = self.state.lock().fault;
        match fault {
            Fault::None => {}
            Fault::Forbidden => {
                let verb = if is_watch {
                    "watch"
                } else if name.is_some() {
                    "get"
                } else {
                    "list"
                };
                let scope = ns.map_or_else(
                    || "at the cluster scope".to_owned(),
                    |n| format!("in the namespace \"{n}\""),
                );
                return status_response(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!(
                        "{} is forbidden: User \"system:serviceaccount:logging:logferry\" cannot {verb} resource \"{}\" in API group \"\" {scope}",
                        kind.plural(),
                        kind.plural()
                    ),
                    Some(json!({"kind": kind.plural()})),
                );
            }
            Fault::ServerError => {
                return status_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "Internal error occurred: injected by the Kubernetes API double",
                    None,
                )
            }
        }
        let ns_scope = if kind == Kind::Namespaces { None } else { ns };
        if let Some(name) = name {
            return self.get_one(kind, ns_scope, name);
        }
        let field = match Selector::parse_fields(
            kind,
            query.get("fieldSelector").map_or("", String::as_str),
        ) {
            Ok(s) => s,
            Err(msg) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
        };
        let label =
            match Selector::parse_labels(query.get("labelSelector").map_or("", String::as_str)) {
                Ok(s) => s,
                Err(msg) => {
                    return status_response(StatusCode::BAD_REQUEST, "BadRequest", &msg, None)
                }
            };
        let filter = Filter {
            namespace: ns_scope.map(str::to_owned),
            field,
            label,
        };
        if is_watch {
            self.watch(kind, filter, &query, conn_stop)
        } else {
            self.list(kind, &filter, &query)
        }
    }

    fn get_one(&self, kind: Kind, ns: Option<&str>, name: &str) -> Response<Body> {
        let state = self.state.lock();
        let found = match kind {
            Kind::Pods => state
                .pods
                .get(&(ns.unwrap_or("default").to_owned(), name.to_owned())),
            Kind::Namespaces => state.namespaces.get(name),
        };
        match found {
            Some(v) => json_response(StatusCode::OK, &**v),
            None => status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", kind.plural()),
                Some(json!({"name": name, "kind": kind.plural()})),
            ),
        }
    }

    fn list(&self, kind: Kind, filter: &Filter, query: &HashMap<String, String>) -> Response<Body> {
        let state = self.state.lock();
        let requested_rv = query
            .get("resourceVersion")
            .map(String::as_str)
            .unwrap_or("");
        if !requested_rv.is_empty() && requested_rv != "0" {
            match requested_rv.parse::<u64>() {
                Ok(rv)
                    if rv < state.oldest_rv
                        && query.get("resourceVersionMatch").map(String::as_str)
                            == Some("Exact") =>
                {
                    return gone(rv, state.oldest_rv);
                }
                Ok(rv) if rv < state.oldest_rv && !query.contains_key("resourceVersionMatch") => {
                    return gone(rv, state.oldest_rv);
                }
                Ok(_) => {}
                Err(_) => {
                    return status_response(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        &format!("invalid resourceVersion {requested_rv:?}"),
                        None,
                    )
                }
            }
        }
        let mut offset = 0usize;
        if let Some(token) = query.get("continue").filter(|t| !t.is_empty()) {
            let parsed = token
                .split_once(':')
                .and_then(|(rv, off)| Some((rv.parse::<u64>().ok()?, off.parse::<usize>().ok()?)));
            match parsed {
                Some((rv, _)) if rv < state.oldest_rv => {
                    return status_response(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                        None,
                    )
                }
                Some((_, off)) => offset = off,
                None => return status_response(StatusCode::BAD_REQUEST, "BadRequest", "invalid continue token", None),
            }
        }
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let objects: Vec<&Arc<Value>> = match kind {
            Kind::Pods => state.pods.values().collect(),
            Kind::Namespaces => state.namespaces.values().collect(),
        };
        let matching: Vec<&Arc<Value>> =
            objects.into_iter().filter(|o| filter.matches(o)).collect();
        let end = limit.map_or(matching.len(), |l| (offset + l).min(matching.len()));
        let items: Vec<&Value> = matching
            .get(offset.min(end)..end)
            .unwrap_or(&[])
            .iter()
            .map(|v| &***v)
            .collect();
        let mut metadata = json!({"resourceVersion": state.rv.to_string()});
        if end < matching.len() {
            metadata["continue"] = Value::String(format!("{}:{end}", state.rv));
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        json_response(
            StatusCode::OK,
            &json!({"kind": kind.list_kind(), "apiVersion": "v1", "metadata": metadata, "items": items}),
        )
    }

    fn watch(
        self: &Arc<Self>,
        kind: Kind,
        filter: Filter,
        query: &HashMap<String, String>,
        conn_stop: CancellationToken,
    ) -> Response<Body> {
        let requested_rv = query.get("resourceVersion").cloned().unwrap_or_default();
        let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.run_watch(
                kind,
                filter,
                requested_rv,
                bookmarks,
                timeout,
                tx,
                conn_stop,
            )
            .await;
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked")
            .body(BodyExt::boxed(body))
            .expect("valid response")
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_watch(
        self: Arc<Self>,
        kind: Kind,
        filter: Filter,
        requested_rv: String,
        bookmarks: bool,
        timeout: Option<Duration>,
        tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
        conn_stop: CancellationToken,
    ) {
        let send = |line: Value| {
            let tx = tx.clone();
            async move {
                let mut bytes = serde_json::to_vec(&line).expect("serialisable");
                bytes.push(b'\n');
                tx.send(Ok(Frame::data(Bytes::from(bytes)))).await.is_ok()
            }
        };
        let mut rv_rx = self.rv_tx.subscribe();
        let mut drop_rx = self.drop_tx.subscribe();
        let mut freeze_rx = self.freeze_tx.subscribe();
        drop_rx.borrow_and_update();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        // Starting point.
        let mut cursor = {
            let state = self.state.lock();
            match requested_rv.as_str() {
                "" | "0" => None,
                rv => match rv.parse::<u64>() {
                    Ok(rv) if rv < state.oldest_rv => Some(Err((rv, state.oldest_rv))),
                    Ok(rv) => Some(Ok(rv.min(state.rv))),
                    Err(_) => Some(Err((0, state.oldest_rv))),
                },
            }
        };
        let mut initial = Vec::new();
        let start = {
            let state = self.state.lock();
            match cursor.take() {
                Some(Err((rv, oldest))) => {
                    let status = status_body(
                        410,
                        "Expired",
                        &format!("too old resource version: {rv} ({oldest})"),
                        None,
                    );
                    drop(state);
                    let _ = send(json!({"type": "ERROR", "object": status})).await;
                    return;
                }
                Some(Ok(rv)) => rv,
                None => {
                    let objects: Vec<&Arc<Value>> = match kind {
                        Kind::Pods => state.pods.values().collect(),
                        Kind::Namespaces => state.namespaces.values().collect(),
                    };
                    initial.extend(objects.into_iter().filter(|o| filter.matches(o)).cloned());
                    state.rv
                }
            }
        };
        for object in initial {
            if !send(json!({"type": "ADDED", "object": &*object})).await {
                return;
            }
        }
        let mut cursor = start;
        let mut bookmark_tick = tokio::time::interval(self.options.bookmark_interval);
        bookmark_tick.tick().await;
        loop {
            let frozen = *freeze_rx.borrow_and_update();
            if !frozen {
                // Everything after the cursor, in order.
                let (events, current) = {
                    let state = self.state.lock();
                    if cursor < state.oldest_rv {
                        // History was expired under an open watch: the real server ends
                        // such a watch with 410 too.
                        (Err(state.oldest_rv), state.rv)
                    } else {
                        let from = state.log.partition_point(|e| e.rv <= cursor);
                        let events: Vec<(EventType, Arc<Value>, Option<Arc<Value>>)> = state.log
                            [from..]
                            .iter()
                            .filter(|e| e.kind == kind)
                            .map(|e| (e.ty, Arc::clone(&e.object), e.prev.clone()))
                            .collect();
                        (Ok(events), state.rv)
                    }
                };
                match events {
                    Err(oldest) => {
                        let status = status_body(
                            410,
                            "Expired",
                            &format!("too old resource version: {cursor} ({oldest})"),
                            None,
                        );
                        let _ = send(json!({"type": "ERROR", "object": status})).await;
                        return;
                    }
                    Ok(events) => {
                        for (ty, object, prev) in events {
                            let now = filter.matches(&object);
                            let before = prev.as_ref().is_some_and(|p| filter.matches(p));
                            let ty = match (ty, before, now) {
                                (EventType::Deleted, true, _) => Some("DELETED"),
                                (EventType::Deleted, false, _) => None,
                                (_, false, true) => Some("ADDED"),
                                (EventType::Added, _, _) => None,
                                (EventType::Modified, true, true) => Some("MODIFIED"),
                                (EventType::Modified, true, false) => Some("DELETED"),
                                (EventType::Modified, false, false) => None,
                            };
                            if let Some(ty) = ty {
                                if !send(json!({"type": ty, "object": &*object})).await {
                                    return;
                                }
                            }
                        }
                        cursor = current;
                    }
                }
            }
            let sleep_until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = conn_stop.cancelled() => return,
                _ = tx.closed() => return,
                _ = drop_rx.changed() => return,
                _ = sleep_until_deadline => return,
                _ = rv_rx.changed() => {}
                _ = freeze_rx.changed() => {}
                _ = bookmark_tick.tick(), if bookmarks && !frozen => {
                    let bookmark = json!({
                        "type": "BOOKMARK",
                        "object": {"kind": kind.object_kind(), "apiVersion": "v1",
                                   "metadata": {"resourceVersion": cursor.to_string()}}
                    });
                    if !send(bookmark).await {
                        return;
                    }
                }
            }
        }
    }

    async fn control(
        self: Arc<Self>,
        req: Request<Incoming>,
        rest: &str,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    &format!("failed to read body: {e}"),
                )
            }
        };
        let parse = || {
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("invalid JSON body: {e}"))
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let result: Result<(StatusCode, Value), (StatusCode, String)> = match (
            &method,
            segs.as_slice(),
        ) {
            (&Method::POST, ["pods"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.create(Kind::Pods, v)
                        .map_err(|e| (StatusCode::CONFLICT, format!("{e:#}")))
                })
                .map(|v| (StatusCode::CREATED, v)),
            (&Method::PUT, ["pods"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.update(Kind::Pods, v)
                        .map_err(|e| (StatusCode::NOT_FOUND, format!("{e:#}")))
                })
                .map(|v| (StatusCode::OK, v)),
            (&Method::DELETE, ["namespaces", ns, "pods", name]) => self
                .delete(Kind::Pods, ns, name)
                .map(|v| (StatusCode::OK, v))
                .map_err(|e| (StatusCode::NOT_FOUND, format!("{e:#}"))),
            (&Method::POST, ["namespaces"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.upsert_namespace(v)
                        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e:#}")))
                })
                .map(|v| (StatusCode::OK, v)),
            (&Method::GET, ["pods"]) => {
                let pods: Vec<Value> = self
                    .state
                    .lock()
                    .pods
                    .values()
                    .map(|v| (**v).clone())
                    .collect();
                Ok((StatusCode::OK, Value::Array(pods)))
            }
            (&Method::POST, ["fault"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    let fault = match v["fault"].as_str() {
                        Some("none") => Fault::None,
                        Some("forbidden") => Fault::Forbidden,
                        Some("server_error") => Fault::ServerError,
                        other => {
                            return Err((
                                StatusCode::BAD_REQUEST,
                                format!("unknown fault {other:?}"),
                            ))
                        }
                    };
                    self.state.lock().fault = fault;
                    Ok((StatusCode::OK, json!({"fault": v["fault"]})))
                }),
            (&Method::POST, ["expire"]) => {
                self.expire();
                Ok((StatusCode::OK, json!({"expired": true})))
            }
            (&Method::POST, ["freeze-watches"]) => {
                self.state.lock().frozen = true;
                self.freeze_tx.send_replace(true);
                Ok((StatusCode::OK, json!({"frozen": true})))
            }
            (&Method::POST, ["drop-watches"]) => {
                self.drop_watches();
                Ok((StatusCode::OK, json!({"dropped": true})))
            }
            (&Method::POST, ["outage"]) => {
                match query.get("seconds").and_then(|s| s.parse::<f64>().ok()) {
                    Some(secs) if secs >= 0.0 => {
                        let this = Arc::clone(&self);
                        tokio::spawn(async move {
                            // Let this response leave first.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            this.stop().await;
                            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                            if let Err(e) = Inner::restart(&this).await {
                                tracing::error!(error = %e, "kube-api-double could not listen again");
                            }
                        });
                        Ok((StatusCode::OK, json!({"outage_seconds": secs})))
                    }
                    _ => Err((
                        StatusCode::BAD_REQUEST,
                        "outage needs ?seconds=N".to_owned(),
                    )),
                }
            }
            (&Method::GET, ["stats"]) => Ok((
                StatusCode::OK,
                serde_json::to_value(self.stats()).expect("serialisable"),
            )),
            _ => Err((
                StatusCode::NOT_FOUND,
                format!("no control endpoint {method} /_double/{rest}"),
            )),
        };
        match result {
            Ok((status, v)) => json_response(status, &v),
            Err((status, msg)) => text_response(status, &msg),
        }
    }
}

fn gone(rv: u64, oldest: u64) -> Response<Body> {
    status_response(
        StatusCode::GONE,
        "Expired",
        &format!("too old resource version: {rv} ({oldest})"),
        None,
    )
}

fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

fn status_response(
    status: StatusCode,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response<Body> {
    json_response(
        status,
        &status_body(status.as_u16(), reason, message, details),
    )
}

fn json_response(status: StatusCode, v: &impl Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(v).expect("serialisable");
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(text.to_owned()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Field or label selector terms, all of which must hold.
#[derive(Clone, Debug, Default)]
struct Selector {
    terms: Vec<Term>,
}

#[derive(Clone, Debug)]
enum Term {
    /// Field: JSON pointer, equals?, value.
    Field(&'static str, bool, String),
    Exists(String),
    NotExists(String),
    LabelEq(String, String),
    LabelNe(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

struct Filter {
    namespace: Option<String>,
    field: Selector,
    label: Selector,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace {
            if meta_str(object, "namespace") != Some(ns.as_str()) {
                return false;
            }
        }
        self.field.matches(object) && self.label.matches(object)
    }
}

impl Selector {
    fn parse_fields(kind: Kind, s: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let pointer = match (kind, key.trim()) {
                (_, "metadata.name") => "/metadata/name",
                (Kind::Pods, "metadata.namespace") => "/metadata/namespace",
                (Kind::Pods, "spec.nodeName") => "/spec/nodeName",
                (Kind::Pods, "spec.restartPolicy") => "/spec/restartPolicy",
                (Kind::Pods, "spec.schedulerName") => "/spec/schedulerName",
                (Kind::Pods, "spec.serviceAccountName") => "/spec/serviceAccountName",
                (Kind::Pods, "status.phase") | (Kind::Namespaces, "status.phase") => {
                    "/status/phase"
                }
                (Kind::Pods, "status.podIP") => "/status/podIP",
                (_, other) => {
                    return Err(format!("field label not supported: {other}"));
                }
            };
            terms.push(Term::Field(pointer, eq, value.trim().to_owned()));
        }
        Ok(Selector { terms })
    }

    fn parse_labels(s: &str) -> Result<Selector, String> {
        // Split on commas outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        let mut terms = Vec::new();
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("unable to parse requirement: '{part}'");
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            let term = if let Some(key) = part.strip_prefix('!') {
                Term::NotExists(key.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                Term::LabelNe(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==") {
                Term::LabelEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once('=') {
                Term::LabelEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Term::NotIn(k.trim().to_owned(), set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Term::In(k.trim().to_owned(), set(rest)?)
            } else if part.contains(' ') || part.contains('(') {
                return Err(bad());
            } else {
                Term::Exists(part.to_owned())
            };
            terms.push(term);
        }
        Ok(Selector { terms })
    }

    fn matches(&self, object: &Value) -> bool {
        let label = |k: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        self.terms.iter().all(|t| match t {
            Term::Field(pointer, eq, value) => {
                let actual = object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("");
                (actual == value) == *eq
            }
            Term::Exists(k) => label(k).is_some(),
            Term::NotExists(k) => label(k).is_none(),
            Term::LabelEq(k, v) => label(k) == Some(v.as_str()),
            Term::LabelNe(k, v) => label(k) != Some(v.as_str()),
            Term::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Term::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_follow_the_kubernetes_syntax() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let m = |s: &str| Selector::parse_labels(s).unwrap().matches(&pod);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("!missing"));
        assert!(m("tier in (front, back),app notin (db)"));
        assert!(!m("tier in (back)"));
        assert!(Selector::parse_labels("a in b").is_err());
    }

    #[test]
    fn field_selectors_reject_unsupported_fields() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "node-a"}});
        let m = |s: &str| Selector::parse_fields(Kind::Pods, s).unwrap().matches(&pod);
        assert!(m("spec.nodeName=node-a"));
        assert!(m("spec.nodeName=node-a,metadata.namespace!=kube-system"));
        assert!(!m("spec.nodeName==node-b"));
        assert!(Selector::parse_fields(Kind::Pods, "spec.hostname=x").is_err());
    }

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = parse_query(
            "fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app+in+%28a%2Cb%29&watch=true",
        );
        assert_eq!(q["fieldSelector"], "spec.nodeName=node-a");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["watch"], "true");
        assert_eq!(percent_decode("100%"), "100%");
    }

    /// A minimal HTTP/1.1 client over a raw socket (the testkit has no HTTP client):
    /// returns the status and the de-chunked body.
    async fn http(
        addr: SocketAddr,
        method: &str,
        path: &str,
        auth: bool,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let auth = if auth {
            "Authorization: Bearer kube-api-double-token\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, mut rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Ok((status, rest.to_owned()));
        }
        let mut out = String::new();
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        Ok((status, out))
    }

    #[tokio::test]
    async fn control_api_lists_watches_and_faults_over_plain_http() {
        let double = KubeApiDouble::start().await.unwrap();
        let addr = double.addr();
        let pod =
            json!({"metadata": {"name": "p1", "namespace": "ns1"}, "spec": {"nodeName": "n1"}});
        let (status, created) = http(addr, "POST", "/_double/pods", false, &pod.to_string())
            .await
            .unwrap();
        assert_eq!(status, 201, "{created}");
        let created: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
        let (status, _) = http(addr, "POST", "/_double/pods", false, &pod.to_string())
            .await
            .unwrap();
        assert_eq!(status, 409);

        assert_eq!(
            http(addr, "GET", "/api/v1/pods", false, "")
                .await
                .unwrap()
                .0,
            401
        );
        let (status, list) = http(
            addr,
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",
            true,
            "",
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        let list: Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list["kind"], "PodList");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let rv: u64 = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (_, other_node) = http(
            addr,
            "GET",
            "/api/v1/namespaces/ns1/pods?fieldSelector=spec.nodeName%3Dn2",
            true,
            "",
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&other_node).unwrap()["items"],
            json!([])
        );

        // A watch from the list's RV sees the deletion made through the control API.
        let watch = tokio::spawn(async move {
            http(
                addr,
                "GET",
                &format!("/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
                true,
                "",
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            http(addr, "DELETE", "/_double/namespaces/ns1/pods/p1", false, "")
                .await
                .unwrap()
                .0,
            200
        );
        let (status, events) = watch.await.unwrap().unwrap();
        assert_eq!(status, 200);
        let events: Vec<Value> = events
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["type"], "DELETED");
        assert_eq!(events[0]["object"]["metadata"]["name"], "p1");

        // History expired: in-stream ERROR 410 for a watch, HTTP 410 for a list.
        assert_eq!(
            http(addr, "POST", "/_double/expire", false, "")
                .await
                .unwrap()
                .0,
            200
        );
        let (_, err) = http(
            addr,
            "GET",
            &format!("/api/v1/pods?watch=1&resourceVersion={rv}"),
            true,
            "",
        )
        .await
        .unwrap();
        let err: Value = serde_json::from_str(err.trim()).unwrap();
        assert_eq!(
            (err["type"].as_str(), err["object"]["code"].as_u64()),
            (Some("ERROR"), Some(410))
        );
        let (status, _) = http(
            addr,
            "GET",
            &format!("/api/v1/pods?resourceVersion={rv}"),
            true,
            "",
        )
        .await
        .unwrap();
        assert_eq!(status, 410);

        // Faults.
        http(
            addr,
            "POST",
            "/_double/fault",
            false,
            r#"{"fault":"forbidden"}"#,
        )
        .await
        .unwrap();
        let (status, body) = http(addr, "GET", "/api/v1/namespaces", true, "")
            .await
            .unwrap();
        assert_eq!(status, 403);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["reason"],
            "Forbidden"
        );
        http(addr, "POST", "/_double/fault", false, r#"{"fault":"none"}"#)
            .await
            .unwrap();
        assert_eq!(
            http(addr, "GET", "/api/v1/namespaces", true, "")
                .await
                .unwrap()
                .0,
            200
        );

        // An outage through the control API: refused, then served again on the same port.
        assert_eq!(
            http(addr, "POST", "/_double/outage?seconds=0.5", false, "")
                .await
                .unwrap()
                .0,
            200
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(http(addr, "GET", "/_double/stats", false, "")
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, stats) = http(addr, "GET", "/_double/stats", false, "")
            .await
            .unwrap();
        assert_eq!(status, 200);
        let stats: Value = serde_json::from_str(&stats).unwrap();
        assert!(
            stats["watches"].as_u64().unwrap() >= 2 && stats["lists"].as_u64().unwrap() >= 4,
            "{stats}"
        );
    }

    #[test]
    fn uids_look_like_v4_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(u.matches('-').count(), 4);
    }
}
