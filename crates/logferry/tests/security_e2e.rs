//! End-to-end: what a tenant on the same node or network can and cannot do
//! to a running logferry (issue 10, "Safe to run as root on every node").
//!
//! The control endpoint test runs the real binary inside a network namespace
//! that the test creates, reached from a second namespace through a veth
//! pair with private addresses that exist only inside those two namespaces
//! (never on the machine's own interfaces); both are deleted at the end.
//! Where namespaces cannot be made (no root, no `ip`), it falls back to
//! reading the listening sockets from `/proc/<pid>/net/tcp`.

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The daemon's address on the veth link, and the client's.
const DAEMON_IP: &str = "10.213.77.1";
const CLIENT_IP: &str = "10.213.77.2";

/// Two network namespaces joined by a veth pair; deleted when dropped.
struct NetnsPair {
    daemon: String,
    client: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsPair {
    fn create() -> Result<NetnsPair, String> {
        let tag = format!("lfsec{}", std::process::id());
        let pair = NetnsPair {
            daemon: format!("{tag}d"),
            client: format!("{tag}c"),
        };
        ip(&["netns", "add", &pair.daemon])?;
        ip(&["netns", "add", &pair.client])?;
        // Created inside the daemon's namespace, its peer moved straight into
        // the client's: neither end ever exists in the machine's namespace.
        ip(&[
            "-n",
            &pair.daemon,
            "link",
            "add",
            "lfd0",
            "type",
            "veth",
            "peer",
            "name",
            "lfc0",
            "netns",
            &pair.client,
        ])?;
        for (ns, dev, addr) in [
            (&pair.daemon, "lfd0", DAEMON_IP),
            (&pair.client, "lfc0", CLIENT_IP),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and the peer with it.
        let _ = ip(&["netns", "del", &self.daemon]);
        let _ = ip(&["netns", "del", &self.client]);
    }
}

/// One HTTP/1.1 request made from inside network namespace `ns` (bash's
/// `/dev/tcp`, so nothing but bash and `ip` is needed). `Err` when the
/// connection is refused.
fn http_in(ns: &str, addr: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{port} || exit 7; \
         printf '{method} {path} HTTP/1.1\\r\\nHost: {addr}\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3; \
         timeout 10 cat <&3"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

fn files_config(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("app.log"), "hello\n").unwrap();
    let config = dir.join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: security-test\ndata_dir: {}\nsource: {{mode: files, paths: [\"{}/*.log\"]}}\nserver: {server}\nshutdown: {{drain_timeout: 5s}}\n",
            dir.join("data").display(),
            logs.display()
        ),
    )
    .unwrap();
    config
}

/// Listening TCP sockets of `pid` (IPv4 and IPv6) as (local address hex, port).
fn listening_sockets(pid: u32) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // st 0A = TCP_LISTEN
            if cols.len() > 3 && cols[3] == "0A" {
                let (addr, port) = cols[1].split_once(':').unwrap();
                out.push((addr.to_owned(), u16::from_str_radix(port, 16).unwrap()));
            }
        }
    }
    out
}

/// Regression (issue 10, item 1): `server.listen: 0.0.0.0:2020` served
/// `POST /quitquitquit` to any pod that could reach the pod IP. Now the
/// network sees only `/metrics`, `/healthz`, `/readyz`; `/quitquitquit` is
/// served on loopback only, where the sidecar's own pod still reaches it.
#[test]
fn quitquitquit_is_refused_from_the_network_and_served_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let pair = match NetnsPair::create() {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!(
                "network namespaces cannot be made here ({e}); falling back to /proc/<pid>/net/tcp"
            );
            return control_listener_is_loopback_only_from_proc(dir.path());
        }
    };
    let config = files_config(dir.path(), "{listen: \"0.0.0.0:2020\"}");
    let admin: SocketAddr = "127.0.0.1:2020".parse().unwrap();
    let mut daemon = Daemon::start_wrapped(
        &["ip", "netns", "exec", &pair.daemon],
        dir.path(),
        &config,
        admin,
        &[],
        &[],
    );
    let ready = wait_for(Duration::from_secs(20), || {
        matches!(
            http_in(&pair.daemon, "127.0.0.1:2020", "GET", "/readyz"),
            Ok((200, _))
        )
    });
    assert!(ready, "not ready; stderr:\n{}", daemon.stderr());

    // The scraper and the probes reach the read-only endpoints over the network.
    let public = format!("{DAEMON_IP}:2020");
    let (status, body) = http_in(&pair.client, &public, "GET", "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("logferry_build_info"), "{body}");
    assert_eq!(
        http_in(&pair.client, &public, "GET", "/readyz").unwrap().0,
        200
    );

    // A request from the peer address cannot stop it, on either port.
    for _ in 0..3 {
        let (status, body) = http_in(&pair.client, &public, "POST", "/quitquitquit").unwrap();
        assert_ne!(status, 200, "/quitquitquit answered the network: {body}");
        assert!(
            (400..500).contains(&status),
            "refused with a client error: {body}"
        );
        let control = http_in(
            &pair.client,
            &format!("{DAEMON_IP}:2021"),
            "POST",
            "/quitquitquit",
        );
        assert!(
            control.is_err(),
            "the control port is not reachable from the network: {control:?}"
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        daemon.child.try_wait().unwrap(),
        None,
        "still running; stderr:\n{}",
        daemon.stderr()
    );
    assert_eq!(
        http_in(&pair.client, &public, "GET", "/readyz").unwrap().0,
        200,
        "still ready"
    );

    // Inside the pod (loopback), the sidecar's terminationEndpoint works.
    let (status, _) = http_in(&pair.daemon, "127.0.0.1:2021", "POST", "/quitquitquit").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(20)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
    drop(daemon);
    drop(pair);
}

/// The fallback where network namespaces cannot be made: the control
/// listener is bound to 127.0.0.1 only, the read-only one to every address.
fn control_listener_is_loopback_only_from_proc(dir: &std::path::Path) {
    let port = free_port();
    let control = free_port();
    let config = files_config(
        dir,
        &format!("{{listen: \"0.0.0.0:{port}\", control_listen: \"127.0.0.1:{control}\"}}"),
    );
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut daemon = Daemon::start(dir, &config, admin, &[], &[]);
    daemon.wait_ready(Duration::from_secs(20));
    let sockets = listening_sockets(daemon.child.id());
    let on = |p: u16| -> Vec<&str> {
        sockets
            .iter()
            .filter(|(_, sp)| *sp == p)
            .map(|(a, _)| a.as_str())
            .collect()
    };
    assert_eq!(on(control), vec!["0100007F"], "{sockets:?}");
    assert_eq!(on(port), vec!["00000000"], "{sockets:?}");
    let (status, _) = http(admin, "POST", "/quitquitquit").unwrap();
    assert_eq!(status, 404, "not on the public listener");
    let control: SocketAddr = format!("127.0.0.1:{control}").parse().unwrap();
    assert_eq!(http(control, "POST", "/quitquitquit").unwrap().0, 200);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

/// In kubernetes mode (the DaemonSet) there is no `/quitquitquit` at all
/// unless `server.quitquitquit: true`, not even on loopback.
#[test]
fn kubernetes_mode_serves_no_quitquitquit_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    std::fs::create_dir_all(&pods).unwrap();
    let port = free_port();
    let control = free_port();
    let config = dir.path().join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: n1\ndata_dir: {}\nsource: {{mode: kubernetes, pods_dir: {}, containers_dir: {}}}\nkubernetes: {{enabled: false}}\nserver: {{listen: \"127.0.0.1:{port}\", control_listen: \"127.0.0.1:{control}\"}}\n",
            dir.path().join("data").display(),
            pods.display(),
            dir.path().join("containers").display(),
        ),
    )
    .unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut daemon = Daemon::start(dir.path(), &config, admin, &[], &[]);
    daemon.wait_ready(Duration::from_secs(20));
    let (status, _) = http(admin, "POST", "/quitquitquit").unwrap();
    assert_eq!(status, 404);
    let control: SocketAddr = format!("127.0.0.1:{control}").parse().unwrap();
    assert!(
        http(control, "POST", "/quitquitquit").is_err(),
        "no control listener"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.child.try_wait().unwrap(), None, "still running");
    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Regression (issue 10, item 6): a panic in a pipeline task left the process
/// either exiting 0 or running with a frozen checkpoint behind a green
/// `/readyz`. Now it exits 2 (kubelet restarts it).
#[test]
fn a_panicking_task_ends_the_process_with_exit_code_2() {
    let setup = FilesSetup::new("node_name: panic-test");
    std::fs::write(setup.logs.join("app.log"), "one\ntwo\n").unwrap();
    let mut daemon = Daemon::start(
        setup.dir.path(),
        &setup.config,
        setup.admin,
        &[],
        &[("LOGFERRY_FAILPOINT", "enricher_panic")],
    );
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(2),
        "stderr:\n{}",
        daemon.stderr()
    );
    assert!(
        daemon.stderr().contains("a task panicked"),
        "logged: {}",
        daemon.stderr()
    );
    assert_eq!(daemon.stdout(), "", "nothing shipped after the panic");
}

/// Regression (issue 10, item 6): the drain timeout firing with records not
/// delivered exited 0, so a sidecar pod reported success with lines missing.
#[test]
fn a_drain_timeout_with_undelivered_records_exits_non_zero_and_is_counted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt
        .block_on(logferry_testkit::elasticsearch::EsDouble::start())
        .unwrap();
    es.faults().outage(Duration::from_secs(3600));
    let setup = FilesSetup::new(&format!(
        "node_name: drain-test\n\
         elasticsearch: {{endpoints: [\"{}\"], retry: {{initial_backoff: 50ms, max_backoff: 200ms}}, install_template: false}}\n\
         shutdown: {{drain_timeout: 1s}}",
        es.url()
    ));
    let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
    std::fs::write(setup.logs.join("app.log"), lines).unwrap();
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(20));
    assert!(
        wait_for(Duration::from_secs(20), || daemon
            .metric("logferry_tail_read_records_total")
            >= 100.0),
        "read; stderr:\n{}",
        daemon.stderr()
    );
    daemon.signal(15);
    let code = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(2), "stderr:\n{}", daemon.stderr());
    assert!(
        daemon.stderr().contains("drain timeout"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(es.document_count(), 0);

    // The same with Elasticsearch up: a clean drain still exits 0.
    es.faults().end_outage();
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(20));
    assert!(wait_for(Duration::from_secs(30), || es.document_count() == 100));
    assert_eq!(daemon.metric("logferry_shutdown_drain_timeouts_total"), 0.0);
    daemon.signal(15);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(20)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
}

/// Regression (issue 10, item 6): a checkpoint file written by a newer
/// version was treated as corrupt and silently replaced. Now `run` refuses it
/// with a clear error and exit code 1, and leaves it as it is.
#[test]
fn a_checkpoint_file_from_a_newer_version_is_refused_with_exit_1() {
    let setup = FilesSetup::new("node_name: downgrade-test");
    std::fs::write(setup.logs.join("app.log"), "one\n").unwrap();
    let data = setup.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let newer = r#"{"version":99,"files":[]}"#;
    std::fs::write(data.join("checkpoints.json"), newer).unwrap();
    let mut daemon = setup.start(&[]);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(20)),
        Some(1),
        "stderr:\n{}",
        daemon.stderr()
    );
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("newer") && stderr.contains("checkpoints.json"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("checkpoints.json")).unwrap(),
        newer
    );
    assert_eq!(daemon.stdout(), "", "nothing read");
}
