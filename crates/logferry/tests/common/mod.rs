//! Helpers shared by the end-to-end tests: start the real `logferry` binary
//! as a child process, talk to its admin port over plain HTTP/1.1, wait for
//! conditions with a deadline.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logferry"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running logferry process; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub admin: SocketAddr,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
}

impl Daemon {
    /// Starts `logferry run [extra] --config <config>` with stdout and stderr
    /// captured to files in `dir`.
    pub fn start(
        dir: &Path,
        config: &Path,
        admin: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        Daemon::start_wrapped(&[], dir, config, admin, extra, env)
    }

    /// Like [`Daemon::start`], through a wrapper that execs its last
    /// argument (e.g. `ip netns exec <ns>`), so the child's pid is logferry's.
    pub fn start_wrapped(
        wrapper: &[&str],
        dir: &Path,
        config: &Path,
        admin: SocketAddr,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let stderr_path = dir.join(format!("logferry-{}.stderr", admin.port()));
        let stdout_path = dir.join(format!("logferry-{}.stdout", admin.port()));
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("run").args(extra).arg("--config").arg(config);
        cmd.env_remove("KUBECONFIG").env("LOGFERRY_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let child = cmd.spawn().expect("spawn logferry");
        Daemon {
            child,
            admin,
            stderr_path,
            stdout_path,
        }
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let admin = self.admin;
        let ok = wait_for(timeout, || {
            matches!(http(admin, "GET", "/readyz"), Ok((200, _)))
        });
        if !ok {
            panic!(
                "logferry not ready within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Sends a signal (`libc` numbers) to the process.
    pub fn signal(&self, sig: i32) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Peak resident set size (VmHWM) in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    /// The current value of a metric without labels (or the sum over its series).
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = http(self.admin, "GET", "/metrics").expect("metrics");
        metric_sum(&body, name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sum of every sample of `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One HTTP/1.1 request without a body; returns status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_body(addr, method, path, "")
}

/// One HTTP/1.1 request with a body (`application/x-ndjson` when non-empty).
pub fn http_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((head, body))
            if head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(body)
        }
        Some((_, body)) => body.to_owned(),
        None => String::new(),
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CRI line (containerd style: trimmed fraction, `Z`).
pub fn cri_line(nanos_of_day: u64, stream: &str, tag: &str, message: &str) -> String {
    let secs = nanos_of_day / 1_000_000_000;
    let frac = nanos_of_day % 1_000_000_000;
    format!(
        "2026-11-22T{:02}:{:02}:{:02}.{:09}Z {stream} {tag} {message}\n",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
        frac
    )
}

/// A files-mode setup in a temporary directory: `logs/` (read through the
/// glob `logs/*.log`), `data/`, and `logferry.yaml` listening on a free
/// loopback port, with `extra` YAML appended (e.g. an `elasticsearch:`
/// section).
pub struct FilesSetup {
    /// The temporary directory (removed when dropped).
    pub dir: tempfile::TempDir,
    /// Where the test writes its log files.
    pub logs: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// The admin address of the daemon.
    pub admin: SocketAddr,
}

impl FilesSetup {
    /// Writes the directories and the configuration.
    pub fn new(extra: &str) -> FilesSetup {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.path().join("logferry.yaml");
        std::fs::write(
            &config,
            format!(
                "data_dir: {data}\nsource: {{mode: files, paths: [\"{logs}/*.log\"]}}\nserver: {{listen: \"{admin}\"}}\n{extra}\n",
                data = dir.path().join("data").display(),
                logs = logs.display(),
            ),
        )
        .unwrap();
        FilesSetup {
            dir,
            logs,
            config,
            admin,
        }
    }

    /// Starts `logferry run [extra args]` on this configuration.
    pub fn start(&self, args: &[&str]) -> Daemon {
        Daemon::start(self.dir.path(), &self.config, self.admin, args, &[])
    }
}
