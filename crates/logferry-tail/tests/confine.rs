//! Issue 10, item 2: symlinks never lead out of the log roots, and link loops
//! cannot make a scan endless. Real files and real symlinks in temporary
//! directories, the tailer run once (or followed) as the daemon runs it.

mod common;

use common::{Node, Running};
use logferry_tail::{RefusalReason, RunMode, TailConfig};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const UID: &str = "0f0e0d0c-0000-4000-8000-000000000001";

fn files_config(root: &Path, pattern: &str) -> TailConfig {
    let mut c = TailConfig::files(
        vec![format!("{}/{pattern}", root.display())],
        root.join("data"),
    );
    c.rescan_interval = Duration::from_secs(3600);
    c
}

fn cri(message: &str) -> String {
    format!("2026-11-22T13:45:10.123456789Z stdout F {message}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_a_link_to_a_secret_outside_the_roots_yields_no_record_and_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let secrets = tmp.path().join("secrets");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("api_key"), "SECRET-API-KEY\n").unwrap();
    std::fs::write(logs.join("app.log"), "hello\n").unwrap();
    symlink(secrets.join("api_key"), logs.join("x.log")).unwrap();
    // A link inside the roots is read (it is the same file as app.log, so
    // only once), and so is a relative one to another file inside them.
    std::fs::write(logs.join("real.txt"), "through a link\n").unwrap();
    symlink("real.txt", logs.join("current.log")).unwrap();

    let run = Running::start(files_config(tmp.path(), "logs/*.log"), RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    let mut messages: Vec<String> = recs
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    messages.sort();
    assert_eq!(messages, vec!["hello", "through a link"]);
    assert_eq!(*events.refused.lock(), vec![RefusalReason::OutsideRoots]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_refusals_are_counted_once_per_path_while_following() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(tmp.path().join("secret"), "SECRET\n").unwrap();
    let mut cfg = files_config(tmp.path(), "logs/*.log");
    cfg.rescan_interval = Duration::from_millis(100);
    let run = Running::start(cfg, RunMode::Follow, 16);
    // Planted after the start: found by inotify and by every rescan.
    symlink(tmp.path().join("secret"), logs.join("evil.log")).unwrap();
    std::fs::write(logs.join("app.log"), "after\n").unwrap();
    assert!(
        run.wait_for(Duration::from_secs(30), |r| !r.is_empty())
            .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // several rescans
    let (_, recs, events) = run.finish().await;
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].1.message[..], b"after");
    assert_eq!(*events.refused.lock(), vec![RefusalReason::OutsideRoots]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_mode_a_log_file_linked_to_a_token_outside_the_roots_is_not_read() {
    let node = Node::new();
    let token = node.root.path().join("token");
    std::fs::write(&token, "eyJhbGciOi-service-account-token\n").unwrap();
    let mut good = node.writer("good", "app");
    good.write_line("stdout", b"legit").unwrap();
    // A pod with a writable hostPath under /var/log plants a link.
    let dir = node.pods().join(format!("ns_evil_{UID}/app"));
    std::fs::create_dir_all(&dir).unwrap();
    symlink(&token, dir.join("0.log")).unwrap();
    // And a FIFO where a log file is expected: refused, never opened.
    let fifo = node.pods().join(format!("ns_evil_{UID}/app/1.log"));
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let run = Running::start(node.config(), RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(&recs[0].1.message[..], b"legit");
    assert!(
        recs[0].0.container_id.is_some(),
        "/var/log/containers links still give container ids"
    );
    let mut refused = events.refused.lock().clone();
    refused.sort_by_key(|r| r.as_label());
    assert_eq!(
        refused,
        vec![RefusalReason::NotRegularFile, RefusalReason::OutsideRoots]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_loop_under_a_double_star_pattern_ends_a_once_run() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("logs/a");
    std::fs::create_dir_all(a.join("b")).unwrap();
    std::fs::write(a.join("b/x.log"), "deep\n").unwrap();
    // Two directory links to `.`: 2^64 paths for a walker that follows them.
    symlink(".", a.join("loop1")).unwrap();
    symlink(".", a.join("loop2")).unwrap();
    symlink("..", a.join("b/up")).unwrap();
    let run = Running::start(files_config(tmp.path(), "logs/**/*.log"), RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].1.message[..], b"deep");
    let refused = events.refused.lock().clone();
    assert_eq!(refused, vec![RefusalReason::SymlinkedDirectory; 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_loop_under_pods_dir_ends_a_once_run() {
    let node = Node::new();
    let mut w = node.writer("pod", "app");
    w.write_line("stdout", b"line").unwrap();
    symlink(".", node.pods().join("loop")).unwrap();
    let pod = w.dir().parent().unwrap().to_owned();
    symlink(".", pod.join("loop1")).unwrap();
    symlink("..", pod.join("loop2")).unwrap();
    symlink("..", w.dir().join("up")).unwrap();
    let run = Running::start(node.config(), RunMode::Once, 16);
    let (_, recs, _) = run.finish_once().await;
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].1.message[..], b"line");
}

/// cri-dockerd: `<pods_dir>/<ns>_<pod>_<uid>/<container>/0.log` is a link to
/// `<docker>/containers/<id>/<id>-json.log`, and `/var/log/containers` links
/// to the former. Only the json log files are readable there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_dockerd_links_into_the_docker_directory_are_read_and_nothing_else_there() {
    let node = Node::new();
    let docker = node.root.path().join("docker/containers");
    let cdir = docker.join(ID);
    std::fs::create_dir_all(&cdir).unwrap();
    let json = cdir.join(format!("{ID}-json.log"));
    std::fs::write(
        &json,
        "{\"log\":\"from docker\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T13:45:10.123456789Z\"}\n",
    )
    .unwrap();
    std::fs::write(cdir.join("config.v2.json"), "{\"Env\":[\"PASSWORD=x\"]}\n").unwrap();
    let dir = node.pods().join(format!("ns_pod_{UID}/app"));
    std::fs::create_dir_all(&dir).unwrap();
    symlink(&json, dir.join("0.log")).unwrap();
    symlink(cdir.join("config.v2.json"), dir.join("1.log")).unwrap();
    symlink(
        dir.join("0.log"),
        node.containers().join(format!("pod_ns_app-{ID}.log")),
    )
    .unwrap();
    let mut cfg = node.config();
    cfg.docker_containers_dir = Some(docker.clone());
    let run = Running::start(cfg.clone(), RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(&recs[0].1.message[..], b"from docker");
    assert_eq!(recs[0].0.container_id.as_deref(), Some(ID));
    assert_eq!(*events.refused.lock(), vec![RefusalReason::OutsideRoots]);

    // Without the Docker directory among the roots, nothing leaves pods_dir.
    cfg.docker_containers_dir = None;
    std::fs::remove_dir_all(node.data()).unwrap();
    let run = Running::start(cfg, RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    assert!(recs.is_empty());
    assert_eq!(events.refused.lock().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_mode_a_root_reached_through_a_link_is_read() {
    // Roots are the operator's choice: a root reached through a link is
    // resolved, and files below it are read.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("real-logs")).unwrap();
    std::fs::write(tmp.path().join("real-logs/a.log"), cri("x")).unwrap();
    symlink(tmp.path().join("real-logs"), tmp.path().join("logs")).unwrap();
    let run = Running::start(files_config(tmp.path(), "logs/*.log"), RunMode::Once, 16);
    let (_, recs, events) = run.finish_once().await;
    assert_eq!(recs.len(), 1);
    assert!(events.refused.lock().is_empty());
}
