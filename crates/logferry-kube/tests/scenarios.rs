//! The scenarios of issue 3, and a restart with kept metadata, each against the
//! Kubernetes API double over real HTTP with the real `kube` client.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use logferry_core::MetadataOrigin;
use logferry_kube::{KubeConfig, Lookup, PathOnlyReason};
use logferry_testkit::kubernetes::Fault;
use serde_json::json;
use tokio::time::Instant;

fn found(l: Lookup) -> Arc<logferry_core::PodMeta> {
    match l {
        Lookup::Found(m) => {
            assert_eq!(m.origin, MetadataOrigin::Api);
            m
        }
        other => panic!("expected full metadata, got {other:?}"),
    }
}

fn path_only(l: Lookup) -> (Arc<logferry_core::PodMeta>, PathOnlyReason) {
    match l {
        Lookup::PathOnly(m, r) => {
            assert_eq!(m.origin, MetadataOrigin::Path);
            (m, r)
        }
        other => panic!("expected path-only metadata, got {other:?}"),
    }
}

/// 1. Pod ADDED, then its file appears → full metadata (real Pod objects from the corpus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_pod_added_then_file_gets_full_metadata() {
    let double = double().await;
    assert_eq!(double.load_dir(&data_dir()).unwrap(), 3);
    let corpus_node = "ip-10-49-18-80.eu-west-1.compute.internal";
    let h = start_synced(
        double,
        KubeConfig {
            node_name: corpus_node.to_owned(),
            annotation_allowlist: vec!["prometheus.io/*".to_owned()],
            ..config()
        },
    )
    .await;
    // Node-scoped: the kairosdb pod runs on another node.
    assert_eq!(h.store.len(), 1);

    let uid = "e9f2963f-55f2-11e9-84c5-02e422b8a84a";
    let m = found(
        h.store
            .lookup(&log_path("core", "base", uid, "fluent-bit"), None)
            .await,
    );
    assert_eq!(
        (
            m.namespace.as_str(),
            m.pod_name.as_str(),
            m.pod_uid.as_str()
        ),
        ("core", "base", uid)
    );
    assert_eq!(m.pod_ip.as_deref(), Some("100.116.192.42"));
    assert_eq!(m.node_name.as_deref(), Some(corpus_node));
    assert_eq!(
        m.labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("fluent-bit")
    );
    assert_eq!(
        m.annotations.len(),
        3,
        "prometheus.io/* allow-listed: {:?}",
        m.annotations
    );
    assert_eq!(
        m.owner,
        Some(("DaemonSet".to_owned(), "fluentbit-max".to_owned()))
    );
    assert_eq!(m.container.name, "fluent-bit");
    assert_eq!(m.container.image.as_deref(), Some("fluent/fluent-bit"));
    assert_eq!(m.container.runtime.as_deref(), Some("docker"));
    assert_eq!(
        m.container.id.as_deref(),
        Some("c9898099f6d235126d564ed38a020007ea7a6fac6e25e718de683c9dd0076c16")
    );
    // Same pod version → the very same Arc.
    let again = found(
        h.store
            .lookup(&log_path("core", "base", uid, "fluent-bit"), None)
            .await,
    );
    assert!(Arc::ptr_eq(&m, &again));

    // A pod ADDED after the store synced; the lookup is ready as soon as the event is in.
    let new_uid = "3b0c6a52-0000-4000-8000-000000000001";
    h.double
        .create_pod(pod("core", "late", new_uid, corpus_node))
        .unwrap();
    let t = Instant::now();
    let m2 = found(
        h.store
            .lookup(&log_path("core", "late", new_uid, "app"), None)
            .await,
    );
    eprintln!("ADDED → lookup ready: {:?}", t.elapsed());
    assert_eq!(
        m2.container.image.as_deref(),
        Some("registry.example/app:1.2.3")
    );
    assert_eq!(
        m2.owner,
        Some(("ReplicaSet".to_owned(), "late-rs".to_owned()))
    );

    // A MODIFIED that changes nothing logferry keeps → same Arc; a label change → new Arc.
    let mut p = pod("core", "late", new_uid, corpus_node);
    p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
    h.double.update_pod(p.clone()).unwrap();
    p["metadata"]["labels"]["version"] = json!("v2");
    h.double.update_pod(p).unwrap();
    let path = log_path("core", "late", new_uid, "app");
    eventually("label change visible", || async {
        let m = found(h.store.lookup(&path, None).await);
        m.labels.get("version").map(String::as_str) == Some("v2")
    })
    .await;
    let changed = Some(found(h.store.lookup(&path, None).await));
    assert!(!Arc::ptr_eq(&m2, changed.as_ref().unwrap()));
}

/// 2. The file appears before the pod's ADDED → the lookup waits (without blocking other
/// lookups), then gets full metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_file_before_added_waits_then_gets_full_metadata() {
    let double = double().await;
    double
        .create_pod(pod("default", "known", "uid-known", NODE))
        .unwrap();
    let h = start_synced(double, config()).await;

    let store = h.store.clone();
    let waiting = tokio::spawn(async move {
        let t = Instant::now();
        let l = store
            .lookup(&log_path("default", "early", "uid-early", "app"), None)
            .await;
        (l, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another file's lookup is answered while the first one waits.
    let other = found(
        h.store
            .lookup(&log_path("default", "known", "uid-known", "app"), None)
            .await,
    );
    assert_eq!(other.pod_name, "known");
    assert!(
        !waiting.is_finished(),
        "the early lookup is still waiting for its pod"
    );

    h.double
        .create_pod(pod("default", "early", "uid-early", NODE))
        .unwrap();
    let (l, waited) = waiting.await.unwrap();
    let m = found(l);
    assert_eq!(m.pod_uid, "uid-early");
    assert_eq!(
        m.container.id.as_deref(),
        Some(container_id("uid-early/app").as_str())
    );
    assert!(
        waited < config().lookup_wait,
        "answered on ADDED, not at the deadline ({waited:?})"
    );

    // A pod that never comes: path-only after the bounded wait, with the path's fields.
    let cid = container_id("never");
    let (m, reason) = path_only(
        h.store
            .lookup(
                &log_path("default", "never", "uid-never", "app"),
                Some(&cid),
            )
            .await,
    );
    assert_eq!(reason, PathOnlyReason::PodUnknown);
    assert_eq!(
        (
            m.namespace.as_str(),
            m.pod_name.as_str(),
            m.pod_uid.as_str()
        ),
        ("default", "never", "uid-never")
    );
    assert_eq!(
        (m.container.name.as_str(), m.container.id.as_deref()),
        ("app", Some(cid.as_str()))
    );

    // After shutdown nothing can arrive any more: no waiting.
    h.shutdown.cancel();
    let never = log_path("default", "never", "uid-never", "app");
    eventually("lookups answer at once after shutdown", || async {
        matches!(
            h.store.lookup(&never, None).await,
            Lookup::PathOnly(_, PathOnlyReason::ApiUnavailable)
        )
    })
    .await;
}

/// 3. DELETED: late lines within the grace get full metadata; a pinned pod survives past
/// the grace; an unpinned one after the grace gets path-only metadata (reason
/// `expired`, which the daemon counts), and the entry is evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_deleted_pod_grace_and_pin() {
    let double = double().await;
    double
        .create_pod(pod("default", "pinned", "uid-pinned", NODE))
        .unwrap();
    double
        .create_pod(pod("default", "loose", "uid-loose", NODE))
        .unwrap();
    // A grace long enough that "right after deletion" holds on a loaded CI machine.
    let cfg = KubeConfig {
        metadata_grace: Duration::from_secs(1),
        ..config()
    };
    let grace = cfg.metadata_grace;
    let h = start_synced(double, cfg).await;
    let pinned = log_path("default", "pinned", "uid-pinned", "app");
    let loose = log_path("default", "loose", "uid-loose", "app");
    let before = found(h.store.lookup(&pinned, None).await);
    h.store.pin("uid-pinned");

    h.double.delete_pod("default", "pinned").unwrap();
    h.double.delete_pod("default", "loose").unwrap();
    // Late lines right after deletion: full metadata for both.
    found(h.store.lookup(&loose, None).await);
    let late = found(h.store.lookup(&pinned, None).await);
    assert!(
        Arc::ptr_eq(&before, &late),
        "a DELETED event with the same content keeps the Arc"
    );

    // Past the grace: the unpinned pod expires, the pinned one does not.
    tokio::time::sleep(grace).await;
    eventually("loose expired", || async {
        matches!(
            h.store.lookup(&loose, None).await,
            Lookup::PathOnly(_, PathOnlyReason::Expired)
        )
    })
    .await;
    let (m, reason) = path_only(h.store.lookup(&loose, None).await);
    assert_eq!(reason, PathOnlyReason::Expired);
    assert_eq!(reason.as_label(), "expired");
    assert_eq!(m.pod_name, "loose");
    found(h.store.lookup(&pinned, None).await);
    wait_until("loose evicted by the sweep", || h.store.len() == 1).await;

    // Release: the grace starts now, then the pinned pod expires and is evicted too.
    h.store.release("uid-pinned");
    found(h.store.lookup(&pinned, None).await);
    eventually("pinned expired after release + grace", || async {
        matches!(
            h.store.lookup(&pinned, None).await,
            Lookup::PathOnly(_, PathOnlyReason::Expired)
        )
    })
    .await;
    wait_until("store empty", || h.store.is_empty()).await;
    assert_eq!(h.events.store_sizes.lock().last(), Some(&0));
}

/// 4. Same name recreated with a new uid → each file maps to its own pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_recreated_pod_each_file_maps_to_its_own_uid() {
    let double = double().await;
    let mut first = pod("default", "web-0", "uid-gen1", NODE);
    first["metadata"]["labels"]["generation"] = json!("1");
    double.create_pod(first).unwrap();
    let h = start_synced(
        double,
        KubeConfig {
            lookup_wait: Duration::from_millis(300),
            ..config()
        },
    )
    .await;
    let old_path = log_path("default", "web-0", "uid-gen1", "app");
    found(h.store.lookup(&old_path, None).await);

    h.double.delete_pod("default", "web-0").unwrap();
    let mut second = pod("default", "web-0", "uid-gen2", NODE);
    second["metadata"]["labels"]["generation"] = json!("2");
    h.double.create_pod(second).unwrap();
    h.store.pin("uid-gen1"); // the old file is still being read

    let new = found(
        h.store
            .lookup(&log_path("default", "web-0", "uid-gen2", "app"), None)
            .await,
    );
    let old = found(h.store.lookup(&old_path, None).await);
    assert_eq!(
        (old.pod_uid.as_str(), old.labels["generation"].as_str()),
        ("uid-gen1", "1")
    );
    assert_eq!(
        (new.pod_uid.as_str(), new.labels["generation"].as_str()),
        ("uid-gen2", "2")
    );
    assert_eq!(
        old.container.id.as_deref(),
        Some(container_id("uid-gen1/app").as_str())
    );
    assert_eq!(
        new.container.id.as_deref(),
        Some(container_id("uid-gen2/app").as_str())
    );

    // A third uid under the same name that never appears: not the live pod's metadata.
    let (m, reason) = path_only(
        h.store
            .lookup(&log_path("default", "web-0", "uid-gen3", "app"), None)
            .await,
    );
    assert_eq!(reason, PathOnlyReason::UidMismatch);
    assert_eq!(m.pod_uid, "uid-gen3");
    h.store.release("uid-gen1");
}

/// 5. API down at start → path-only metadata at once (shipping continues); API back →
/// full metadata and a synced store. Also 403 (RBAC) and 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_api_down_at_start_then_back() {
    let double = double().await;
    double
        .create_pod(pod("default", "app-1", "uid-app-1", NODE))
        .unwrap();
    double.stop_listening().await;
    // A long lookup wait: an unreachable API must not make lookups wait for it.
    let cfg = KubeConfig {
        lookup_wait: Duration::from_secs(30),
        ..config()
    };
    let h = start(double, cfg).await;
    let path = log_path("default", "app-1", "uid-app-1", "app");
    wait_until("unreachable reported", || {
        h.events.errors().contains(&"unreachable")
    })
    .await;
    let t = Instant::now();
    let (m, reason) = path_only(h.store.lookup(&path, None).await);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "no wait while the API is unreachable"
    );
    assert_eq!(reason, PathOnlyReason::ApiUnavailable);
    assert_eq!(
        (m.pod_name.as_str(), m.container.name.as_str()),
        ("app-1", "app")
    );
    assert!(!h.store.is_synced());

    h.double.start_listening().await.unwrap();
    wait_until("synced after the API came back", || h.store.is_synced()).await;
    assert_eq!(
        found(h.store.lookup(&path, None).await).pod_ip.as_deref(),
        Some("10.1.2.3")
    );
    assert_eq!(h.events.synced.lock().last(), Some(&true));
    assert!(h.events.restarts.lock().contains(&"pods"));

    // RBAC forbids the watch: degraded again (known pods keep their metadata).
    h.double.set_fault(Fault::Forbidden);
    h.double.drop_watches();
    wait_until("forbidden reported", || {
        h.events.errors().contains(&"forbidden")
    })
    .await;
    assert!(!h.store.is_synced());
    found(h.store.lookup(&path, None).await);
    let unknown = log_path("default", "app-2", "uid-app-2", "app");
    // The namespaces watch may report the 403 before the pods watch does
    // (not synced, API not yet unavailable): wait for the pods watch.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let reason = path_only(h.store.lookup(&unknown, None).await).1;
        if reason == PathOnlyReason::ApiUnavailable {
            break;
        }
        assert!(Instant::now() < until, "still {reason:?} after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 500s: still degraded, with its own label.
    h.double.set_fault(Fault::ServerError);
    wait_until("server_error reported", || {
        h.events.errors().contains(&"server_error")
    })
    .await;

    h.double.set_fault(Fault::None);
    h.double
        .create_pod(pod("default", "app-2", "uid-app-2", NODE))
        .unwrap();
    wait_until("synced after the faults cleared", || h.store.is_synced()).await;
    assert_eq!(
        found(h.store.lookup(&unknown, None).await).pod_name,
        "app-2"
    );
}

/// 6. A watch dropped while history expired (410 in-stream) and an outage: the store
/// converges to the server's state with no leaked entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_dropped_watch_and_410_converge() {
    let double = double().await;
    for name in ["a", "b", "c"] {
        double
            .create_pod(pod("default", name, &format!("uid-{name}"), NODE))
            .unwrap();
    }
    double
        .create_pod(pod("default", "elsewhere", "uid-x", "node-b"))
        .unwrap();
    let h = start_synced(double, config()).await;
    assert_eq!(h.store.len(), 3);
    let lists_before = h.double.stats().lists;

    // The watch stalls while the world changes, history is compacted, the watch drops.
    h.double.freeze_watches();
    h.double.delete_pod("default", "a").unwrap();
    h.double
        .create_pod(pod("default", "d", "uid-d", NODE))
        .unwrap();
    let mut b = pod("default", "b", "uid-b", NODE);
    b["metadata"]["labels"]["version"] = json!("v2");
    h.double.update_pod(b).unwrap();
    h.double
        .create_pod(pod("default", "e", "uid-e", "node-b"))
        .unwrap();
    h.double.expire_history();
    h.double.drop_watches();

    wait_until("410 gone reported", || h.events.errors().contains(&"gone")).await;
    wait_until("re-listed and synced", || {
        h.double.stats().lists > lists_before && h.store.is_synced()
    })
    .await;
    let pb = log_path("default", "b", "uid-b", "app");
    assert_eq!(
        found(h.store.lookup(&pb, None).await)
            .labels
            .get("version")
            .map(String::as_str),
        Some("v2")
    );
    found(
        h.store
            .lookup(&log_path("default", "d", "uid-d", "app"), None)
            .await,
    );
    // `a` was missed as an event but is absent from the re-list: tombstoned, then evicted.
    wait_until("a evicted", || h.store.len() == 3).await;
    let pa = log_path("default", "a", "uid-a", "app");
    assert_eq!(
        path_only(h.store.lookup(&pa, None).await).1,
        PathOnlyReason::Expired
    );

    // An outage (connections aborted) while `c` goes away and `f` arrives.
    h.double.stop_listening().await;
    h.double.delete_pod("default", "c").unwrap();
    h.double
        .create_pod(pod("default", "f", "uid-f", NODE))
        .unwrap();
    h.double.start_listening().await.unwrap();
    let pf = log_path("default", "f", "uid-f", "app");
    eventually("f known", || async {
        matches!(h.store.lookup(&pf, None).await, Lookup::Found(_))
    })
    .await;
    wait_until("converged to b, d, f", || {
        h.store.len() == 3 && h.store.is_synced()
    })
    .await;
    tokio::time::sleep(config().metadata_grace * 2).await;
    assert_eq!(h.store.len(), 3, "no leaked entries");
    let server: Vec<String> = h
        .double
        .pods()
        .iter()
        .filter(|p| p["spec"]["nodeName"] == NODE)
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(server, ["uid-b", "uid-d", "uid-f"]);
    for uid in &server {
        let name = uid.trim_start_matches("uid-");
        found(
            h.store
                .lookup(&log_path("default", name, uid, "app"), None)
                .await,
        );
    }
}

/// 7. Pod and namespace opt-out by annotation → `Excluded` (no records); the key is
/// configurable, and a namespace annotated later excludes its pods from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_excluded_pod_and_namespace() {
    let double = double().await;
    let mut quiet_pod = pod("default", "quiet", "uid-quiet", NODE);
    quiet_pod["metadata"]["annotations"] = json!({"logferry.io/exclude": "true"});
    double.create_pod(quiet_pod).unwrap();
    let mut not_quiet = pod("default", "loud", "uid-loud", NODE);
    not_quiet["metadata"]["annotations"] = json!({"logferry.io/exclude": "false"});
    double.create_pod(not_quiet).unwrap();
    double
        .create_namespace(json!({"metadata": {"name": "sandbox", "annotations": {"logferry.io/exclude": "true"}}}))
        .unwrap();
    double
        .create_pod(pod("sandbox", "toy", "uid-toy", NODE))
        .unwrap();
    double
        .create_pod(pod("team", "svc", "uid-svc", NODE))
        .unwrap();
    let h = start_synced(double, config()).await;

    assert_eq!(
        h.store
            .lookup(&log_path("default", "quiet", "uid-quiet", "app"), None)
            .await,
        Lookup::Excluded
    );
    let loud = found(
        h.store
            .lookup(&log_path("default", "loud", "uid-loud", "app"), None)
            .await,
    );
    assert_eq!(
        loud.annotations
            .get("logferry.io/exclude")
            .map(String::as_str),
        Some("false")
    );
    assert_eq!(
        h.store
            .lookup(&log_path("sandbox", "toy", "uid-toy", "app"), None)
            .await,
        Lookup::Excluded
    );
    // Even a pod the store never saw, in an excluded namespace: excluded, without waiting.
    assert_eq!(
        h.store
            .lookup(&log_path("sandbox", "ghost", "uid-ghost", "app"), None)
            .await,
        Lookup::Excluded
    );

    let svc = log_path("team", "svc", "uid-svc", "app");
    found(h.store.lookup(&svc, None).await);
    h.double
        .create_namespace(
            json!({"metadata": {"name": "team", "annotations": {"logferry.io/exclude": "true"}}}),
        )
        .unwrap();
    eventually("namespace annotation applied", || async {
        h.store.lookup(&svc, None).await == Lookup::Excluded
    })
    .await;

    // A configurable key: Fluent Bit's annotation, from the corpus' `annotations-exclude_default`.
    let double = common::double().await;
    let mut fb = pod("default", "fb", "uid-fb", NODE);
    fb["metadata"]["annotations"] = json!({"fluentbit.io/exclude": "true"});
    double.create_pod(fb).unwrap();
    let h2 = start_synced(
        double,
        KubeConfig {
            exclude_annotation: "fluentbit.io/exclude".to_owned(),
            ..config()
        },
    )
    .await;
    assert_eq!(
        h2.store
            .lookup(&log_path("default", "fb", "uid-fb", "app"), None)
            .await,
        Lookup::Excluded
    );
}

/// 8. An Airflow KubernetesExecutor worker pod, built the way `PodGenerator` builds it
/// (sanitised and hashed labels, raw annotations) → the exact unsanitised task fields,
/// also for its last lines after the pod was deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_airflow_worker_pod_raw_task_fields() {
    let dag_id = "customer_data_warehouse_nightly_rebuild_with_an_extra_long_identifier_v2";
    let task_id = "extract.load_orders";
    let run_id = "manual__2025-08-12T15:05:57.691303+00:00";
    let date = "2025-08-12T15:05:57.691303+00:00";
    // Label values computed with Airflow's `make_safe_label_value` (strip, drop characters
    // outside [a-zA-Z0-9_.-], cut to 53 + "-" + md5[:9] when changed or > 63 chars) and
    // `datetime_to_label_safe_datestring`.
    let worker = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "customer-data-warehouse-nightly-rebuild-extract-load-orders-8f2k1x9q",
            "namespace": "airflow",
            "uid": "6f9c2d1e-4b7a-4c3d-9e8f-0a1b2c3d4e5f",
            "labels": {
                "airflow-worker": "2317",
                "airflow_version": "2.10.5",
                "dag_id": "customer_data_warehouse_nightly_rebuild_with_an_extra-46d4928b4",
                "task_id": "extract.load_orders",
                "run_id": "manual__2025-08-12T150557.6913030000-222778734",
                "try_number": "2",
                "map_index": "7",
                "execution_date": "2025-08-12T15_05_57.691303_plus_00_00",
                "kubernetes_executor": "True"
            },
            "annotations": {
                "dag_id": dag_id, "task_id": task_id, "run_id": run_id,
                "try_number": "2", "map_index": "7", "execution_date": date
            }
        },
        "spec": {
            "nodeName": NODE,
            "restartPolicy": "Never",
            "containers": [{
                "name": "base", "image": "apache/airflow:2.10.5-python3.12",
                "args": ["airflow", "tasks", "run", dag_id, task_id, run_id, "--local", "--map-index", "7"],
                "env": [{"name": "AIRFLOW_IS_K8S_EXECUTOR_POD", "value": "True"}]
            }]
        },
        "status": {"phase": "Running", "podIP": "10.4.0.17",
                   "containerStatuses": [{"name": "base", "image": "apache/airflow:2.10.5-python3.12", "imageID": "",
                                          "ready": true, "restartCount": 0, "state": {"running": {}},
                                          "containerID": format!("containerd://{}", container_id("airflow"))}]}
    });
    let double = double().await;
    let h = start_synced(double, config()).await;
    h.double.create_pod(worker).unwrap();
    let path = log_path(
        "airflow",
        "customer-data-warehouse-nightly-rebuild-extract-load-orders-8f2k1x9q",
        "6f9c2d1e-4b7a-4c3d-9e8f-0a1b2c3d4e5f",
        "base",
    );
    h.store.pin("6f9c2d1e-4b7a-4c3d-9e8f-0a1b2c3d4e5f"); // the tailer has the file open
    let m = found(h.store.lookup(&path, None).await);
    let t = m.airflow.clone().expect("an Airflow worker pod");
    assert_eq!(t.dag_id, dag_id);
    assert_eq!(t.task_id, task_id);
    assert_eq!(t.run_id, run_id);
    assert_eq!(t.try_number, "2");
    assert_eq!(t.map_index, "7");
    assert_eq!(t.logical_date.as_deref(), Some(date));
    // The default allowlist keeps Airflow's annotations (raw values) on the records.
    assert_eq!(
        m.annotations.get("run_id").map(String::as_str),
        Some(run_id)
    );
    assert_eq!(
        format!(
            "{}-{}-{}-{}-{}",
            t.dag_id, t.task_id, t.run_id, t.map_index, t.try_number
        ),
        format!("{dag_id}-{task_id}-{run_id}-7-2")
    );

    // The scheduler deletes the finished worker pod; the final burst still gets the task.
    h.double
        .delete_pod(
            "airflow",
            "customer-data-warehouse-nightly-rebuild-extract-load-orders-8f2k1x9q",
        )
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let last = found(h.store.lookup(&path, None).await);
    assert_eq!(
        last.airflow.as_ref().map(|t| t.run_id.as_str()),
        Some(run_id)
    );
    assert!(Arc::ptr_eq(&m, &last));
    h.store.release("6f9c2d1e-4b7a-4c3d-9e8f-0a1b2c3d4e5f");
}

/// 9. A deleted pod's metadata survives a restart of the store (`state_dir`): the
///    restarted store, whose API no longer knows the pod, still enriches its late
///    lines, and forgets it (on disk too) once its grace has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_deleted_pod_metadata_survives_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let cfg = KubeConfig {
        metadata_grace: Duration::from_secs(1),
        state_dir: Some(state.path().to_owned()),
        ..config()
    };
    let double = double().await;
    double
        .create_pod(pod("batch", "task-1", "uid-task-1", NODE))
        .unwrap();
    double
        .create_pod(pod("batch", "live", "uid-live", NODE))
        .unwrap();
    let h = start_synced(double, cfg.clone()).await;
    let late = log_path("batch", "task-1", "uid-task-1", "app");
    let before = found(h.store.lookup(&late, None).await);
    h.store.pin("uid-task-1");
    h.double.delete_pod("batch", "task-1").unwrap();
    let file = state.path().join("pods.json");
    let saved = |uid: &str| -> Option<bool> {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
        doc["pods"]
            .as_array()?
            .iter()
            .find(|p| p["pod"]["uid"] == uid)
            .map(|p| p["deleted"] == true)
    };
    wait_until("the deleted pod saved as deleted", || {
        saved("uid-task-1") == Some(true)
    })
    .await;
    assert_eq!(saved("uid-live"), Some(false), "live pods are saved too");
    // logferry restarts (the old store stops) against an API that has no such pod.
    h.stop().await;
    let double = self::double().await;
    double
        .create_pod(pod("batch", "live", "uid-live", NODE))
        .unwrap();
    let h = start_synced(double, cfg).await;
    let after = found(h.store.lookup(&late, None).await);
    assert_eq!(*after, *before, "the same metadata as before the restart");
    found(
        h.store
            .lookup(&log_path("batch", "live", "uid-live", "app"), None)
            .await,
    );
    // Nothing pins it in the new run: evicted after the grace, and from the file.
    eventually("expired after the grace", || async {
        matches!(
            h.store.lookup(&late, None).await,
            Lookup::PathOnly(_, PathOnlyReason::Expired)
        )
    })
    .await;
    wait_until("evicted from the file", || saved("uid-task-1").is_none()).await;
}

/// 10. Pods deleted while logferry is down (their `DELETED` event seen by no one)
///     keep their metadata: the entries saved while they were live are used for
///     their files, expire by the grace rule, and a pod recreated under the same name
///     with another uid never inherits them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_pods_deleted_while_down_keep_their_metadata() {
    let state = tempfile::tempdir().unwrap();
    let cfg = KubeConfig {
        metadata_grace: Duration::from_secs(1),
        state_dir: Some(state.path().to_owned()),
        ..config()
    };
    let double = double().await;
    double
        .create_pod(pod_with("batch", "task-2", "uid-old", NODE, &["app"]))
        .unwrap();
    let h = start_synced(double, cfg.clone()).await;
    let old_file = log_path("batch", "task-2", "uid-old", "app");
    let before = found(h.store.lookup(&old_file, None).await);
    let file = state.path().join("pods.json");
    wait_until("the live pod saved", || {
        std::fs::read_to_string(&file).is_ok_and(|s| s.contains("uid-old"))
    })
    .await;
    h.stop().await;
    // While down: the pod is deleted and recreated under the same name.
    let double = self::double().await;
    double
        .create_pod(pod_with("batch", "task-2", "uid-new", NODE, &["app"]))
        .unwrap();
    let h = start_synced(double, cfg).await;
    h.store.pin("uid-old");
    let after = found(h.store.lookup(&old_file, None).await);
    assert_eq!(*after, *before, "the old pod's own metadata");
    let new = found(
        h.store
            .lookup(&log_path("batch", "task-2", "uid-new", "app"), None)
            .await,
    );
    assert_eq!(new.pod_uid, "uid-new", "the new pod is not the old one");
    // A tombstone now (the list did not have it): the grace runs from the release.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    found(h.store.lookup(&old_file, None).await);
    h.store.release("uid-old");
    eventually("expired after the grace", || async {
        matches!(
            h.store.lookup(&old_file, None).await,
            Lookup::PathOnly(_, PathOnlyReason::Expired)
        )
    })
    .await;
}

/// 11. Issue 11: label allow/deny lists, and namespace labels (opt-in,
/// allow-listed, Filebeat's `kubernetes.namespace_labels`) from the namespace
/// watch, updated when the namespace's labels change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_label_lists_and_namespace_labels() {
    let double = double().await;
    double
        .create_namespace(json!({"metadata": {"name": "shop", "labels": {
            "team": "payments", "tier": "gold", "kubernetes.io/metadata.name": "shop"}}}))
        .unwrap();
    let mut web = pod("shop", "web-0", "uid-web", NODE);
    web["metadata"]["labels"] = json!({
        "app.kubernetes.io/name": "web", "app.kubernetes.io/version": "2",
        "pod-template-hash": "5d8f7", "team": "payments", "secret-ish": "x"});
    double.create_pod(web).unwrap();
    let h = start_synced(
        double,
        KubeConfig {
            label_allowlist: vec!["app.kubernetes.io/*".into(), "team".into(), "*-hash".into()],
            label_denylist: vec!["pod-template-hash".into(), "*/version".into()],
            namespace_label_allowlist: vec!["team".into(), "tier".into()],
            ..config()
        },
    )
    .await;
    let file = log_path("shop", "web-0", "uid-web", "app");
    let m = found(h.store.lookup(&file, None).await);
    let keys: Vec<&str> = m.labels.keys().map(String::as_str).collect();
    assert_eq!(keys, ["app.kubernetes.io/name", "team"]);
    let ns: Vec<(&str, &str)> = m
        .namespace_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(ns, [("team", "payments"), ("tier", "gold")]);

    // The namespace is relabelled: the next lookup sees it.
    h.double
        .create_namespace(json!({"metadata": {"name": "shop", "labels": {"team": "checkout"}}}))
        .unwrap();
    eventually("namespace labels updated", || async {
        let m = found(h.store.lookup(&file, None).await);
        m.namespace_labels.get("team").map(String::as_str) == Some("checkout")
            && !m.namespace_labels.contains_key("tier")
    })
    .await;
    h.stop().await;

    // Defaults: every pod label, no namespace label.
    let double = self::double().await;
    double
        .create_namespace(json!({"metadata": {"name": "shop", "labels": {"team": "payments"}}}))
        .unwrap();
    let mut web = pod("shop", "web-0", "uid-web", NODE);
    web["metadata"]["labels"] = json!({"a": "1", "pod-template-hash": "5d8f7"});
    double.create_pod(web).unwrap();
    let h = start_synced(double, config()).await;
    let m = found(h.store.lookup(&file, None).await);
    assert_eq!(m.labels.len(), 2);
    assert!(m.namespace_labels.is_empty());
    h.stop().await;
}
