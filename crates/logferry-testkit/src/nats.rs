//! The real NATS server (Debian's `nats-server` package, installed by
//! `tests/install-tools.sh`), started on a free loopback port with JetStream
//! and a temporary store directory. Not a double: tests that need NATS talk
//! to the server itself.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How clients must authenticate.
#[derive(Clone, Debug, Default)]
pub enum ServerAuth {
    /// No authentication.
    #[default]
    None,
    /// `--user` / `--pass`.
    UserPassword(String, String),
    /// `--auth`.
    Token(String),
}

/// A running `nats-server -js`; killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    auth: ServerAuth,
}

/// The `nats-server` executable (`NATS_SERVER` overrides the `PATH` lookup;
/// Debian installs it in `/usr/sbin`).
pub fn nats_server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/bin",
    ]) {
        let p = Path::new(dir).join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!("nats-server not found: run tests/install-tools.sh (Debian package nats-server)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl NatsServer {
    /// Starts a server with JetStream, its store under `dir`, and waits until
    /// it accepts connections.
    pub fn start(dir: &Path, auth: ServerAuth) -> NatsServer {
        let store = dir.join(format!("nats-store-{}", free_port()));
        std::fs::create_dir_all(&store).expect("store dir");
        let mut s = NatsServer {
            child: None,
            port: free_port(),
            log: store.with_extension("log"),
            store,
            auth,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(nats_server_binary());
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(&self.store)
        .arg("-l")
        .arg(&self.log);
        match &self.auth {
            ServerAuth::None => {}
            ServerAuth::UserPassword(u, p) => {
                cmd.args(["--user", u, "--pass", p]);
            }
            ServerAuth::Token(t) => {
                cmd.args(["--auth", t]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("spawn nats-server"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}; log: {}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same store (JetStream data
    /// written before [`NatsServer::kill`] is recovered from disk).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
