//! End-to-end: a full `data_dir` (issue 10, item 4). `data_dir` is a 4 MiB
//! tmpfs the test mounts (root only; skipped with a message where mounting is
//! not permitted) and then fills: checkpoint writes fail with `ENOSPC`,
//! logferry keeps running and shipping, counts the failures
//! (`logferry_checkpoint_write_errors_total`) and answers `/readyz` 503; once
//! space is freed the checkpoints catch up, `/readyz` is 200 again, and after
//! a restart every line is in Elasticsearch exactly once (no `409` replays).
//! In kubernetes mode, a `pods.json` save that fails is counted the same way,
//! and a file deleted while the disk is full is held open, spooled once space
//! returns, and shipped exactly once.

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use logferry_testkit::kubernetes::KubeApiDouble;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`4m`) on `dir`; `None` when this process may
    /// not mount (not root, or no `CAP_SYS_ADMIN` in a container).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(Tmpfs(dir.to_owned()));
        }
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        if err.contains("permission denied")
            || err.contains("operation not permitted")
            || err.contains("must be superuser")
        {
            return None;
        }
        panic!("mount -t tmpfs failed: {err}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Appends `n` numbered lines to `path`.
fn append_lines(path: &Path, from: usize, n: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut body = String::new();
    for i in from..from + n {
        body.push_str(&format!("disk test line {i:06} some payload to ship\n"));
    }
    f.write_all(body.as_bytes()).unwrap();
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // Partial pages too: the last bytes that fit.
    while let Ok(n) = f.write(&[0u8; 512]) {
        if n == 0 {
            break;
        }
    }
}

/// The offset of the single checkpoint in `data_dir/checkpoints.json`, if any.
fn checkpoint_offset(data: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(data.join("checkpoints.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["files"].as_array()?.first()?["offset"].as_u64()
}

#[test]
fn a_full_data_dir_does_not_stop_shipping_and_checkpoints_catch_up_when_space_returns() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let setup = FilesSetup::new(&format!(
        "node_name: disk-test\n\
         elasticsearch: {{endpoints: [\"{}\"], retry: {{initial_backoff: 100ms, max_backoff: 1s}}, install_template: false}}\n\
         shutdown: {{drain_timeout: 10s}}",
        es.url()
    ));
    let data = setup.dir.path().join("data");
    let Some(_tmpfs) = Tmpfs::mount(&data, "4m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); the full-disk test did not run"
        );
        return;
    };
    let log = setup.logs.join("app.log");
    append_lines(&log, 0, 2000);

    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() == 2000
            && checkpoint_offset(&data)
                == Some(std::fs::metadata(&log).unwrap().len())),
        "first lines shipped and checkpointed: {} documents; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );

    // The disk fills up; lines keep coming.
    let filler = data.join("filler");
    fill(&filler);
    append_lines(&log, 2000, 2000);
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() == 4000),
        "shipping must go on with a full data_dir: {} documents; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(30), || daemon
            .metric("logferry_checkpoint_write_errors_total")
            > 0.0),
        "failed checkpoint writes are counted; stderr:\n{}",
        daemon.stderr()
    );
    let (status, body) = http(setup.admin, "GET", "/readyz").unwrap();
    assert_eq!(
        status, 503,
        "not ready while data_dir cannot be written: {body}"
    );
    assert!(body.contains("data_dir"), "{body}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "logferry must keep running; stderr:\n{}",
        daemon.stderr()
    );
    assert_ne!(
        checkpoint_offset(&data),
        Some(std::fs::metadata(&log).unwrap().len()),
        "the checkpoint could not advance while the disk was full"
    );

    // Space again: checkpoints catch up (backoff at most 30 s), ready again.
    std::fs::remove_file(&filler).unwrap();
    let end = std::fs::metadata(&log).unwrap().len();
    assert!(
        wait_for(Duration::from_secs(90), || checkpoint_offset(&data)
            == Some(end)),
        "checkpoints caught up: {:?} of {end}; stderr:\n{}",
        checkpoint_offset(&data),
        daemon.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(30), || matches!(
            http(setup.admin, "GET", "/readyz"),
            Ok((200, _))
        )),
        "ready again once writes succeed"
    );
    daemon.signal(15);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );

    // A restart resumes from the caught-up checkpoint: nothing is sent twice.
    append_lines(&log, 4000, 500);
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() == 4500),
        "{} documents; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );
    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
    let stats = es.stats();
    assert_eq!(stats.created, 4500, "every line once");
    assert_eq!(stats.conflicts, 0, "no line sent twice (409 replays)");
}

/// The value of the series `name{labels}` (e.g. `file="pods"`) in `/metrics`.
fn labelled(daemon: &Daemon, name: &str, labels: &str) -> f64 {
    let (_, body) = http(daemon.admin, "GET", "/metrics").expect("metrics");
    let prefix = format!("{name}{{{labels}}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn pod(name: &str, uid: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team", "uid": uid,
                     "creationTimestamp": "2026-11-22T10:00:00Z"},
        "spec": {"nodeName": "disk-node", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": "10.42.0.7"},
    })
}

#[test]
fn kubernetes_mode_a_file_deleted_while_data_dir_is_full_is_spooled_once_space_returns() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    es.faults().outage(Duration::from_secs(3600));
    let kube = rt.block_on(KubeApiDouble::start()).unwrap();
    let uid = "0f0e0d0c-0000-4000-8000-00000000d15c";
    kube.create_pod(pod("app-0", uid)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_tmpfs) = Tmpfs::mount(&data, "4m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN); the full-disk test did not run"
        );
        return;
    };
    let pod_dir = dir.path().join(format!("pods/team_app-0_{uid}"));
    std::fs::create_dir_all(pod_dir.join("app")).unwrap();
    std::fs::create_dir_all(dir.path().join("containers")).unwrap();
    let mut body = String::new();
    for i in 0..2000u64 {
        body.push_str(&format!(
            "2026-11-22T13:45:10.{i:09}Z stdout F deleted pod line {i:06}\n"
        ));
    }
    std::fs::write(pod_dir.join("app/0.log"), body).unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: disk-node\n\
             data_dir: {data}\n\
             source: {{mode: kubernetes, pods_dir: {pods}, containers_dir: {containers}}}\n\
             elasticsearch: {{endpoints: [\"{es}\"], retry: {{initial_backoff: 100ms, max_backoff: 1s}}, install_template: false}}\n\
             server: {{listen: \"{admin}\"}}\n\
             shutdown: {{drain_timeout: 10s}}\n",
            data = data.display(),
            pods = dir.path().join("pods").display(),
            containers = dir.path().join("containers").display(),
            es = es.url(),
        ),
    )
    .unwrap();
    let kubeconfig = kube.kubeconfig_path().display().to_string();
    let mut daemon = Daemon::start(
        dir.path(),
        &config,
        admin,
        &[],
        &[("KUBECONFIG", kubeconfig.as_str())],
    );
    daemon.wait_ready(Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(30), || daemon
            .metric("logferry_tail_read_records_total")
            >= 2000.0
            && data.join("pods.json").exists()),
        "read while Elasticsearch is down; stderr:\n{}",
        daemon.stderr()
    );

    // The disk fills up. A new pod: its metadata cannot be saved.
    let filler = data.join("filler");
    fill(&filler);
    kube.create_pod(pod("app-1", "0f0e0d0c-0000-4000-8000-00000000d15d"))
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || labelled(
            &daemon,
            "logferry_checkpoint_write_errors_total",
            "file=\"pods\""
        ) > 0.0),
        "failed pods.json saves are counted; stderr:\n{}",
        daemon.stderr()
    );
    let (status, text) = http(admin, "GET", "/readyz").unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("pods"), "{text}");
    // kubelet removes the pod's files; nothing of it is shipped yet, and the
    // spool has no room: only the open descriptor holds the lines.
    std::fs::remove_dir_all(&pod_dir).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon.metric("logferry_tail_spool_files"), 0.0);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "logferry must keep running; stderr:\n{}",
        daemon.stderr()
    );

    // Space again: the deleted file is spooled, pods.json saved, ready again.
    std::fs::remove_file(&filler).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || daemon
            .metric("logferry_tail_spool_files")
            == 1.0),
        "spooled once space returned; stderr:\n{}",
        daemon.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(60), || matches!(
            http(admin, "GET", "/readyz"),
            Ok((200, _))
        )),
        "ready again once pods.json is saved"
    );

    // Elasticsearch is back: every line of the deleted file, once.
    es.faults().end_outage();
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() == 2000
            && daemon.metric("logferry_tail_spool_files") == 0.0),
        "{} documents; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );
    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)), Some(0));
    let stats = es.stats();
    assert_eq!(stats.created, 2000);
    assert_eq!(stats.conflicts, 0, "no line sent twice");
}
