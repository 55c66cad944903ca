//! End-to-end: an Airflow KubernetesExecutor worker pod. Its text lines get
//! Airflow's `log_id` rendered from the pod's (unsanitised) annotations and a
//! strictly increasing `offset`; its JSON lines keep their own `log_id` (their
//! `offset` is the runtime's clock like every other line's); the `end_of_log`
//! record is kept; `logferry verify --log-id` finds the whole task log. Pod metadata comes from the Kubernetes API
//! double over a real watch.

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use logferry_testkit::kubernetes::KubeApiDouble;
use serde_json::json;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const NODE: &str = "worker-node-1";
const UID: &str = "3f0c2a8e-6a4b-4b8e-9d1e-0a1b2c3d4e5f";
const RUN_ID: &str = "manual__2026-11-22T13:40:00.123456+00:00";

/// A worker pod as Airflow's `PodGenerator.construct_pod` builds it: label
/// values sanitised (`make_safe_label_value`: the run id's `:` and `+` force
/// truncation and an md5 suffix), annotations holding the raw values.
fn worker_pod() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "example-bash-operator-runme-0-7f3k2j1q",
            "namespace": "airflow",
            "uid": UID,
            "labels": {
                "airflow-worker": "42",
                "airflow_version": "2.10.3",
                "dag_id": "example_bash_operator",
                "task_id": "runme_0",
                "run_id": "manual__2026-11-22T134000.1234560000-5d3b7c8a1",
                "try_number": "1",
                "kubernetes_executor": "True"
            },
            "annotations": {
                "dag_id": "example_bash_operator",
                "task_id": "runme_0",
                "run_id": RUN_ID,
                "try_number": "1"
            }
        },
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": "base", "image": "apache/airflow:2.10.3"}]
        },
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.17",
            "containerStatuses": [{
                "name": "base",
                "image": "apache/airflow:2.10.3",
                "containerID": "containerd://8d2f08af6971c38ab5f93ccef8cc24502f76eb28a3192b3ae8f949477a272bcc",
                "ready": true, "restartCount": 0, "imageID": "", "started": true,
                "state": {"running": {"startedAt": "2026-11-22T13:40:01Z"}}
            }]
        }
    })
}

#[test]
fn airflow_worker_records_carry_log_id_and_offset_and_verify_finds_them() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let kube = rt.block_on(KubeApiDouble::start()).unwrap();
    kube.create_pod(worker_pod()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let containers = dir.path().join("containers");
    let container_dir = pods.join(format!(
        "airflow_example-bash-operator-runme-0-7f3k2j1q_{UID}/base"
    ));
    std::fs::create_dir_all(&container_dir).unwrap();
    std::fs::create_dir_all(&containers).unwrap();
    let mut log = String::new();
    let text_lines = 40;
    for i in 0..text_lines {
        log.push_str(&cri_line(
            48_000_000_000_000 + i * 1000,
            "stdout",
            "F",
            &format!("[2026-11-22, 13:40:02 UTC] {{taskinstance.py:1}} INFO - step {i}"),
        ));
    }
    // A JSON line with its own log_id and offset (Airflow 2 with json_format).
    log.push_str(&cri_line(
        48_000_000_100_000,
        "stdout",
        "F",
        r#"{"message": "own ids", "log_id": "custom-log-id", "offset": 1626427744958776832, "levelname": "INFO"}"#,
    ));
    log.push_str(&cri_line(48_000_000_200_000, "stdout", "F", "end_of_log"));
    std::fs::write(container_dir.join("0.log"), log).unwrap();

    let port = free_port();
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = dir.path().join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
node_name: {NODE}
data_dir: {data}
source:
  pods_dir: {pods}
  containers_dir: {containers}
kubernetes: {{lookup_wait: 5s}}
elasticsearch:
  endpoints: ["{es}"]
  index: "airflow-logs-%Y.%m.%d"
  batch: {{timeout: 100ms}}
airflow: {{enabled: true}}
server: {{listen: "{admin}"}}
"#,
            data = dir.path().join("data").display(),
            pods = pods.display(),
            containers = containers.display(),
            es = es.url(),
        ),
    )
    .unwrap();
    let kubeconfig = kube.kubeconfig_path().to_str().unwrap().to_owned();
    let mut daemon = Daemon::start(
        dir.path(),
        &config,
        admin,
        &["--once"],
        &[("KUBECONFIG", &kubeconfig)],
    );
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(60)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );

    let log_id = format!("example_bash_operator-runme_0-{RUN_ID}--1-1");
    let mut docs: Vec<serde_json::Value> = es
        .all_documents()
        .iter()
        .map(|d| serde_json::from_slice(&d.source).unwrap())
        .collect();
    assert_eq!(docs.len(), text_lines as usize + 2, "{docs:?}");
    docs.sort_by_key(|d| d["log"]["offset"].as_u64().unwrap());
    let mut last_offset = 0i64;
    for d in &docs[..text_lines as usize] {
        assert_eq!(d["log_id"], log_id.as_str(), "{d}");
        assert_eq!(d["event"], d["message"], "Airflow 3 reads `event`: {d}");
        let offset = d["offset"].as_i64().unwrap();
        assert!(
            offset > last_offset && offset >= 1,
            "offsets strictly increase: {d}"
        );
        last_offset = offset;
        assert_eq!(d["kubernetes"]["pod"]["uid"], UID);
        assert_eq!(
            d["kubernetes"]["labels"]["dag_id"], "example_bash_operator",
            "metadata from the API: {d}"
        );
        assert_eq!(d["container"]["image"]["name"], "apache/airflow:2.10.3");
    }
    let own = &docs[text_lines as usize];
    assert_eq!(own["log_id"], "custom-log-id", "{own}");
    let own_offset = own["offset"].as_i64().unwrap();
    assert!(
        own_offset > last_offset && own_offset != 1626427744958776832,
        "one clock per log (the runtime's), not the task's own offset: {own}"
    );
    assert_eq!(own["message"], "own ids", "{own}");
    let end = &docs[text_lines as usize + 1];
    assert_eq!(end["message"], "end_of_log");
    assert_eq!(end["log_id"], log_id.as_str());

    let out = Command::new(binary())
        .args([
            "verify",
            "--endpoint",
            &es.url(),
            "--index",
            "airflow-logs-*",
            "--log-id",
            &log_id,
        ])
        .arg("--expect")
        .arg((text_lines + 1).to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("documents found: {}", text_lines + 1)),
        "{text}"
    );
}
