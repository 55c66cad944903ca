//! Processes under test: the Elasticsearch double (`es-double`) and the `logferry` daemon, both
//! the release binaries, run as children on loopback; plus the machine description and the small
//! HTTP helpers every mode uses.

use crate::procstat::{self, Cpu, Monitor, Usage};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Where the release binaries are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `logferry`.
    pub logferry: PathBuf,
    /// `es-double`.
    pub es_double: PathBuf,
}

impl Binaries {
    /// `<dir>/logferry` and `<dir>/es-double`; `es-double` must exist, and `logferry` too when
    /// `need_logferry`.
    ///
    /// # Errors
    /// A binary is missing (the message gives the build command).
    pub fn find(dir: &Path, need_logferry: bool) -> Result<Binaries> {
        let b = Binaries {
            logferry: dir.join("logferry"),
            es_double: dir.join("es-double"),
        };
        let needed = if need_logferry {
            vec![&b.logferry, &b.es_double]
        } else {
            vec![&b.es_double]
        };
        for p in needed {
            if !p.is_file() {
                bail!(
                    "{} not found: build it with `cargo build --release -p logferry -p logferry-testkit --bins` \
                     (and pass --bin-dir <target>/release)",
                    p.display()
                );
            }
        }
        Ok(b)
    }

    /// The default directory: `$CARGO_TARGET_DIR/release`, else `<repo>/target/release`.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => PathBuf::from(t).join("release"),
            None => PathBuf::from(crate::REPO_ROOT).join("target/release"),
        }
    }
}

/// A free loopback port (bound, then released).
///
/// # Errors
/// No port can be bound.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("binding a loopback port")?
        .local_addr()?
        .port())
}

/// A running `es-double`; killed on drop.
pub struct EsDouble {
    child: Child,
    /// Base URL (`http://127.0.0.1:<port>`).
    pub url: String,
}

impl EsDouble {
    /// Starts `bin --listen 127.0.0.1:<free port>` and waits for its `listening on <addr>` line.
    ///
    /// # Errors
    /// It does not start or never says where it listens within 30 s.
    pub fn start(bin: &Path, log_dir: &Path) -> Result<EsDouble> {
        let port = free_port()?;
        let stderr = std::fs::File::create(log_dir.join("es-double.stderr"))?;
        let mut child = Command::new(bin)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(addr) = line.trim().strip_prefix("listening on ") {
                        let _ = tx.send(addr.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                bail!("es-double did not print `listening on <addr>` within 30 s");
            }
        };
        let addr: SocketAddr = addr
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("es-double printed a bad address {addr:?}"))?;
        Ok(EsDouble {
            child,
            url: format!("http://{addr}"),
        })
    }

    /// The double's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU used by the double so far.
    ///
    /// # Errors
    /// The process is gone.
    pub fn cpu(&self) -> Result<Cpu> {
        procstat::cpu(self.child.id())
    }

    /// `GET /<index>/_count` → `count` (0 when the index does not exist).
    ///
    /// # Errors
    /// The request fails or the answer has no `count`.
    pub async fn count(&self, http: &reqwest::Client, index: &str) -> Result<u64> {
        let resp = http
            .get(format!("{}/{index}/_count", self.url))
            .send()
            .await
            .context("GET _count")?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(0);
        }
        let body: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.context("_count body")?)
                .context("_count body")?;
        body["count"]
            .as_u64()
            .with_context(|| format!("_count answer without count: {body}"))
    }

    /// Writes every document of `index` (`GET /_double/documents/{index}`, NDJSON) to `path`.
    ///
    /// # Errors
    /// The request or the file write fails.
    pub async fn dump_documents(
        &self,
        http: &reqwest::Client,
        index: &str,
        path: &Path,
    ) -> Result<()> {
        use std::io::Write as _;
        let mut resp = http
            .get(format!("{}/_double/documents/{index}", self.url))
            .send()
            .await
            .context("GET /_double/documents")?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        while let Some(chunk) = resp.chunk().await? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(())
    }

    /// The double's own statistics (`GET /_double/stats`), as it reports them; `Null` when the
    /// double has no such endpoint.
    pub async fn stats(&self, http: &reqwest::Client) -> serde_json::Value {
        match http.get(format!("{}/_double/stats", self.url)).send().await {
            Ok(r) if r.status().is_success() => r
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        }
    }
}

impl Drop for EsDouble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds a counter in the double's stats whatever its nesting: the first number under a key equal
/// to one of `names`.
pub fn stat_number(stats: &serde_json::Value, names: &[&str]) -> Option<u64> {
    match stats {
        serde_json::Value::Object(map) => {
            for n in names {
                if let Some(v) = map.get(*n).and_then(|v| v.as_u64()) {
                    return Some(v);
                }
            }
            map.values().find_map(|v| stat_number(v, names))
        }
        _ => None,
    }
}

/// How logferry is configured for a run.
#[derive(Clone, Debug)]
pub struct LogferryConfig {
    /// Root of the node log tree (holds `var/log/pods` and `var/log/containers`).
    pub tree: PathBuf,
    /// Checkpoints and dead-letter directory (fresh per run).
    pub data_dir: PathBuf,
    /// Elasticsearch endpoint URL.
    pub endpoint: String,
    /// Index (no date pattern, so a run lands in one index).
    pub index: String,
    /// Bulk bodies gzip-compressed.
    pub gzip: bool,
    /// `elasticsearch.compression_level` when set (else logferry's default).
    pub gzip_level: Option<u32>,
    /// Admin server port.
    pub admin_port: u16,
}

impl LogferryConfig {
    /// The YAML of the daemon contract (the README's configuration reference).
    pub fn yaml(&self) -> String {
        format!(
            "node_name: bench-node\n\
             data_dir: {data}\n\
             source:\n  mode: kubernetes\n  pods_dir: {tree}/var/log/pods\n  containers_dir: {tree}/var/log/containers\n  read_from: beginning\n  lookback: null\n\
             kubernetes:\n  enabled: false\n\
             elasticsearch:\n  endpoints: [\"{endpoint}\"]\n  index: \"{index}\"\n  compression: {compression}\n{level}  install_template: false\n\
             server:\n  listen: 127.0.0.1:{port}\n  quitquitquit: true\n",
            data = self.data_dir.display(),
            tree = self.tree.display(),
            endpoint = self.endpoint,
            index = self.index,
            compression = if self.gzip { "gzip" } else { "none" },
            level = self
                .gzip_level
                .map(|l| format!("  compression_level: {l}\n"))
                .unwrap_or_default(),
            port = self.admin_port,
        )
    }
}

/// A running, measured `logferry`.
pub struct Logferry {
    child: Child,
    monitor: Option<Monitor>,
    /// Admin base URL.
    pub admin: String,
    log_dir: PathBuf,
}

impl Logferry {
    /// Writes `<log_dir>/logferry.yaml` and starts `bin run [--once] --config ...` with
    /// `LOGFERRY_LOG=warn`, stdout and stderr to files in `log_dir`.
    ///
    /// # Errors
    /// Files cannot be written or the process cannot start.
    pub fn start(
        bin: &Path,
        config: &LogferryConfig,
        once: bool,
        log_dir: &Path,
    ) -> Result<Logferry> {
        std::fs::create_dir_all(&config.data_dir)?;
        let cfg_path = log_dir.join("logferry.yaml");
        std::fs::write(&cfg_path, config.yaml())?;
        let mut cmd = Command::new(bin);
        cmd.arg("run");
        if once {
            cmd.arg("--once");
        }
        cmd.arg("--config")
            .arg(&cfg_path)
            .env("LOGFERRY_LOG", "warn")
            .env("NODE_NAME", "bench-node")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log_dir.join("logferry.stdout"))?)
            .stderr(std::fs::File::create(log_dir.join("logferry.stderr"))?);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to start {}", bin.display()))?;
        let monitor = Monitor::start(&child, started);
        Ok(Logferry {
            child,
            monitor: Some(monitor),
            admin: format!("http://127.0.0.1:{}", config.admin_port),
            log_dir: log_dir.to_path_buf(),
        })
    }

    /// Usage so far.
    ///
    /// # Errors
    /// The process is gone.
    pub fn snapshot(&self) -> Result<Usage> {
        self.monitor
            .as_ref()
            .expect("monitor until wait")
            .snapshot()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for exit (blocking); returns the usage and exit status.
    ///
    /// # Errors
    /// Waiting fails.
    pub fn wait(mut self) -> Result<(Usage, ExitStatus)> {
        let monitor = self.monitor.take().expect("wait once");
        monitor.wait(&mut self.child)
    }

    /// Waits up to 60 s for `GET /readyz` on the admin port to answer 2xx.
    ///
    /// # Errors
    /// It did not; the message names `what` and carries the end of logferry's stderr.
    pub async fn wait_ready(&self, http: &reqwest::Client, what: &str) -> Result<()> {
        let ready = wait_until(Duration::from_secs(60), || async {
            http.get(format!("{}/readyz", self.admin))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if !ready {
            anyhow::bail!(
                "{what}: logferry not ready within 60 s; stderr:\n{}",
                self.stderr_tail()
            );
        }
        Ok(())
    }

    /// The last lines of its stderr (for error messages).
    pub fn stderr_tail(&self) -> String {
        stderr_tail(&self.log_dir)
    }
}

/// The last 20 lines of `<log_dir>/logferry.stderr`.
pub fn stderr_tail(log_dir: &Path) -> String {
    let text = std::fs::read_to_string(log_dir.join("logferry.stderr")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Drop for Logferry {
    fn drop(&mut self) {
        if self.monitor.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh empty directory `<work>/<name>` (removed first if present).
///
/// # Errors
/// It cannot be removed or created.
pub fn fresh_dir(work: &Path, name: &str) -> Result<PathBuf> {
    let d = work.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).with_context(|| format!("failed to remove {}", d.display()))?;
    }
    std::fs::create_dir_all(&d).with_context(|| format!("failed to create {}", d.display()))?;
    Ok(d)
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// `nproc` (available parallelism).
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `git rev-parse HEAD` of the repository, if available.
    pub commit: Option<String>,
    /// When the run started (UTC, RFC 3339).
    pub date: String,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started: other work on the machine skews wall
    /// times (CPU seconds of the measured process much less).
    pub load_average: String,
}

impl Machine {
    /// Reads `/proc` and `git`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let commit = Command::new("git")
            .args(["-C", crate::REPO_ROOT, "rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            commit,
            date,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes; returns whether it did.
pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Bytes → MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Rounds to `d` decimals (for readable JSON).
pub fn round(x: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (x * p).round() / p
}

/// Sends SIGKILL to `pid` (a child this harness started).
pub fn kill(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// Asks a running logferry to drain and exit (`POST /quitquitquit`), waits up to `grace`, then
/// kills it; returns its usage and exit status.
///
/// # Errors
/// Waiting fails.
pub async fn quit(
    http: &reqwest::Client,
    logferry: Logferry,
    grace: Duration,
) -> Result<(Usage, ExitStatus)> {
    let pid = logferry.pid();
    let _ = http
        .post(format!("{}/quitquitquit", logferry.admin))
        .send()
        .await;
    let mut waiting = tokio::task::spawn_blocking(move || logferry.wait());
    match tokio::time::timeout(grace, &mut waiting).await {
        Ok(r) => r?,
        Err(_) => {
            eprintln!("logferry did not exit within {grace:?} of POST /quitquitquit: killed");
            kill(pid);
            waiting.await?
        }
    }
}
