//! Shared test harness: a Kubernetes API double, a real `kube::Client` pointed at it
//! through the kubeconfig the double writes, and a [`PodStore`] on top.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use logferry_core::KubeLogPath;
use logferry_kube::{KubeConfig, KubeEvents, PodStore};
use logferry_testkit::kubernetes::{DoubleOptions, KubeApiDouble};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub const NODE: &str = "node-a";

/// Records what the store reports, as the binary's metrics would.
#[derive(Default)]
pub struct Recorder {
    pub api_errors: Mutex<Vec<&'static str>>,
    pub restarts: Mutex<Vec<&'static str>>,
    pub synced: Mutex<Vec<bool>>,
    pub store_sizes: Mutex<Vec<usize>>,
}

impl KubeEvents for Recorder {
    fn watch_restarted(&self, resource: &'static str) {
        self.restarts.lock().push(resource);
    }
    fn store_size(&self, pods: usize) {
        self.store_sizes.lock().push(pods);
    }
    fn synced(&self, synced: bool) {
        self.synced.lock().push(synced);
    }
    fn api_error(&self, reason: &'static str) {
        self.api_errors.lock().push(reason);
    }
}

impl Recorder {
    pub fn errors(&self) -> Vec<&'static str> {
        self.api_errors.lock().clone()
    }
}

pub struct Harness {
    pub double: KubeApiDouble,
    pub store: PodStore,
    pub events: Arc<Recorder>,
    pub shutdown: CancellationToken,
    /// The watch and the persistence (`state_dir`), as the daemon runs them.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Harness {
    /// Stops the store as the daemon does: cancels, then awaits the watch and the
    /// final save.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for t in std::mem::take(&mut self.tasks) {
            t.await.expect("store task");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Test defaults: this node, short grace and backoff so tests stay fast.
pub fn config() -> KubeConfig {
    KubeConfig {
        node_name: NODE.to_owned(),
        metadata_grace: Duration::from_millis(300),
        lookup_wait: Duration::from_secs(2),
        backoff_max: Duration::from_millis(500),
        ..KubeConfig::default()
    }
}

pub async fn double() -> KubeApiDouble {
    KubeApiDouble::start_with(DoubleOptions {
        bookmark_interval: Duration::from_millis(200),
        ..DoubleOptions::default()
    })
    .await
    .expect("start the Kubernetes API double")
}

/// A real `kube::Client` configured from the double's kubeconfig file.
pub async fn client(double: &KubeApiDouble) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(double.kubeconfig_path()).expect("read kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}

pub async fn start(double: KubeApiDouble, config: KubeConfig) -> Harness {
    let events = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let client = client(&double).await;
    let (store, watch) = PodStore::watch(client, config, events.clone(), shutdown.clone());
    let tasks = vec![
        tokio::spawn(watch),
        tokio::spawn(store.persist(shutdown.clone())),
    ];
    Harness {
        double,
        store,
        events,
        shutdown,
        tasks,
    }
}

/// Starts and waits until the store is synced.
pub async fn start_synced(double: KubeApiDouble, config: KubeConfig) -> Harness {
    let h = start(double, config).await;
    wait_until("store synced", || h.store.is_synced()).await;
    h
}

/// Polls `cond` every 10 ms for up to 10 s; panics with `what` otherwise.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pods")
}

/// A containerd container id derived from a seed (64 hex digits).
pub fn container_id(seed: &str) -> String {
    let mut out = String::new();
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    for _ in 0..4 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push_str(&format!("{x:016x}"));
    }
    out
}

/// A running pod as the API server returns it: one container `app` (plus `extra`
/// containers), a containerd id per container in the status.
pub fn pod(ns: &str, name: &str, uid: &str, node: &str) -> Value {
    pod_with(ns, name, uid, node, &["app"])
}

pub fn pod_with(ns: &str, name: &str, uid: &str, node: &str, containers: &[&str]) -> Value {
    let specs: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": format!("registry.example/{c}:1.2.3")}))
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c, "image": format!("registry.example/{c}:1.2.3"), "imageID": "",
                "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-11-22T10:00:00Z"}},
                "containerID": format!("containerd://{}", container_id(&format!("{uid}/{c}"))),
            })
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid,
            "labels": {"app": name},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-rs"),
                                 "uid": "00000000-0000-4000-8000-00000000ffff", "controller": true}]
        },
        "spec": {"nodeName": node, "containers": specs},
        "status": {"phase": "Running", "podIP": "10.1.2.3", "hostIP": "192.168.0.10", "containerStatuses": statuses}
    })
}

/// kubelet's path of a container's log file.
pub fn log_path(ns: &str, name: &str, uid: &str, container: &str) -> KubeLogPath {
    KubeLogPath::parse(Path::new(&format!(
        "/var/log/pods/{ns}_{name}_{uid}/{container}/0.log"
    )))
    .expect("valid kubelet path")
}

/// Like [`wait_until`] for an async condition.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
