//! Measurements (printed, not asserted as timings): store memory per pod, and the time
//! from a pod's ADDED on the API double to the lookup answering with full metadata.
//! Run with `cargo test -p logferry-kube --test measurements -- --nocapture`.

mod common;

use std::time::Duration;

use common::*;
use logferry_kube::Lookup;
use serde_json::json;
use tokio::time::Instant;

/// A pod shaped like a typical Deployment pod: 2 containers + 1 init container, 5 labels,
/// 4 annotations (1 allow-listed).
fn realistic_pod(i: usize) -> serde_json::Value {
    let name = format!("checkout-api-7d9f8b6c5d-{i:05}");
    let uid = format!("5f0c2a9e-1b3d-4e8f-9a7b-{i:012}");
    let mut p = pod_with(
        "payments",
        &name,
        &uid,
        NODE,
        &["checkout-api", "istio-proxy"],
    );
    p["metadata"]["labels"] = json!({
        "app.kubernetes.io/name": "checkout-api", "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/version": "4.18.2", "pod-template-hash": "7d9f8b6c5d", "team": "payments"
    });
    p["metadata"]["annotations"] = json!({
        "logferry.io/exclude": "false",
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
        "kubectl.kubernetes.io/restartedAt": "2026-11-20T08:15:00Z"
    });
    p["spec"]["initContainers"] =
        json!([{"name": "migrate", "image": "registry.example/checkout-migrate:4.18.2"}]);
    p["status"]["initContainerStatuses"] = json!([{
        "name": "migrate", "image": "registry.example/checkout-migrate:4.18.2", "imageID": "", "ready": true,
        "restartCount": 0, "state": {"terminated": {"exitCode": 0}},
        "containerID": format!("containerd://{}", container_id(&format!("{uid}/migrate")))
    }]);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_store_memory_and_added_to_lookup_latency() {
    const PODS: usize = 1000;
    let double = double().await;
    for i in 0..PODS {
        double.create_pod(realistic_pod(i)).unwrap();
    }
    let t = Instant::now();
    let h = start_synced(double, config()).await;
    wait_until("all pods listed", || h.store.len() == PODS).await;
    let list_time = t.elapsed();
    let mem = h.store.memory_usage();
    assert_eq!(mem.pods, PODS);
    let per_pod = mem.entry_bytes / mem.pods;
    let maps_per_pod = mem.label_annotation_bytes / mem.pods;
    eprintln!(
        "store memory: {per_pod} bytes/pod beyond labels and annotations \
         (3 containers, ids and images, owner, IP, node), + {maps_per_pod} bytes/pod of \
         labels and allow-listed annotations; {PODS} pods listed and stored in {list_time:?}"
    );
    assert!(
        per_pod < 2048,
        "budget: under 2 KiB per pod beyond labels/annotations, got {per_pod}"
    );

    // ADDED → lookup ready, one pod at a time, with the store already holding 1000 pods.
    let mut samples = Vec::new();
    for i in PODS..PODS + 100 {
        let p = realistic_pod(i);
        let name = p["metadata"]["name"].as_str().unwrap().to_owned();
        let uid = p["metadata"]["uid"].as_str().unwrap().to_owned();
        let path = log_path("payments", &name, &uid, "checkout-api");
        let t = Instant::now();
        h.double.create_pod(p).unwrap();
        let l = h.store.lookup(&path, None).await;
        samples.push(t.elapsed());
        assert!(matches!(l, Lookup::Found(_)), "{l:?}");
    }
    samples.sort();
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    eprintln!(
        "ADDED → lookup ready over {} pods: p50 {:?}, p90 {:?}, max {:?}",
        samples.len(),
        pct(0.5),
        pct(0.9),
        samples.last().copied().unwrap_or(Duration::ZERO)
    );
}
