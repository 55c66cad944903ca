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
//!
//! # Layout
//!
//! `state` holds the objects and the event log, `store` the shared state and
//! its writes; `server` accepts connections and routes `/api` requests to
//! `list` (one object, lists) or `watch` (event streams), filtered by
//! `selector`; `control` serves `/_double/`; `http` builds the responses.

mod control;
mod http;
mod list;
mod selector;
mod server;
mod state;
mod store;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};
use state::Kind;
use store::Inner;
use tokio::net::TcpListener;

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
        let inner = Inner::new(options, addr);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
