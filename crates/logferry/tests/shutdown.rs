//! End-to-end: shutdown. SIGTERM drains and checkpoints (a restart ships
//! nothing twice); `/quitquitquit` in sidecar mode ships everything written
//! before the call and exits 0.

mod common;

use common::*;
use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

fn files_config(dir: &std::path::Path, logs: &std::path::Path, port: u16) -> std::path::PathBuf {
    let config = dir.join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
node_name: sidecar-test
data_dir: {data}
source:
  mode: files
  paths: ["{logs}/*.log"]
server:
  listen: 127.0.0.1:{port}
shutdown:
  drain_timeout: 10s
"#,
            data = dir.join("data").display(),
            logs = logs.display()
        ),
    )
    .unwrap();
    config
}

fn messages(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn quitquitquit_ships_everything_written_before_the_call_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let port = free_port();
    let config = files_config(dir.path(), &logs, port);
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, admin, &[], &[]);
    daemon.wait_ready(Duration::from_secs(20));

    // A task writes its log, the last burst right before it ends (Airflow 3
    // prints its whole log at the end), then the pod calls /quitquitquit.
    let mut file = std::fs::File::create(logs.join("task.log")).unwrap();
    for i in 0..5000 {
        writeln!(file, "task line {i} {}", "x".repeat(i % 200)).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let (status, _) = http(admin, "POST", "/quitquitquit").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
    let got = messages(&daemon.stdout());
    assert_eq!(
        got.len(),
        5000,
        "every line written before /quitquitquit; stderr:\n{}",
        daemon.stderr()
    );
    for (i, m) in got.iter().enumerate() {
        assert!(
            m.starts_with(&format!("task line {i} ")),
            "line {i} out of order: {m}"
        );
    }
}

#[test]
fn sigterm_drains_checkpoints_and_a_restart_ships_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let port = free_port();
    let config = files_config(dir.path(), &logs, port);
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut all = HashSet::new();

    let mut file = std::fs::File::create(logs.join("app.log")).unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, admin, &[], &[]);
    daemon.wait_ready(Duration::from_secs(20));
    for i in 0..3000 {
        writeln!(file, "first run {i}").unwrap();
    }
    file.flush().unwrap();
    assert!(wait_for(Duration::from_secs(20), || daemon
        .stdout()
        .lines()
        .count()
        == 3000));
    // SIGTERM: readiness drops as soon as the signal is handled (or the
    // process is gone, which a probe sees as not ready too).
    daemon.signal(15);
    assert!(
        wait_for(Duration::from_secs(5), || {
            http(admin, "GET", "/readyz").map_or(true, |(status, _)| status != 200)
        }),
        "readiness drops while draining"
    );
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(15)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
    for m in messages(&daemon.stdout()) {
        assert!(all.insert(m.clone()), "duplicate {m}");
    }
    drop(daemon);

    // Written while logferry is down, then a restart.
    for i in 0..2000 {
        writeln!(file, "while down {i}").unwrap();
    }
    file.flush().unwrap();
    let port2 = free_port();
    let config2 = files_config(dir.path(), &logs, port2);
    let admin2: SocketAddr = format!("127.0.0.1:{port2}").parse().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config2, admin2, &[], &[]);
    daemon.wait_ready(Duration::from_secs(20));
    assert!(wait_for(Duration::from_secs(20), || daemon
        .stdout()
        .lines()
        .count()
        >= 2000));
    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(15)), Some(0));
    let second = messages(&daemon.stdout());
    assert_eq!(
        second.len(),
        2000,
        "only what was written while down is shipped again"
    );
    for m in second {
        assert!(m.starts_with("while down "), "re-shipped {m}");
        assert!(all.insert(m.clone()), "duplicate {m}");
    }
    assert_eq!(all.len(), 5000);
}
