//! `kube-api-double`: the Kubernetes API double of `logferry_testkit::kubernetes` as a
//! standalone process, for end-to-end tests that run logferry as a child process.
//!
//! ```text
//! kube-api-double --listen 127.0.0.1:0 --kubeconfig-out /tmp/kubeconfig --pods-dir corpus/pods
//! ```
//!
//! Prints `listening on http://<addr>` on stdout once it serves; pods, faults and
//! outages are then driven through the control API under `/_double/` (documented in
//! the `kubernetes` module). Exits on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use logferry_testkit::kubernetes::{DoubleOptions, KubeApiDouble};

/// A double of the Kubernetes API server (pods and namespaces list/watch) for tests.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig pointing at the double (plain http, bearer token).
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// Directory of JSON Pod and Namespace objects to serve from the start.
    #[arg(long)]
    pods_dir: Option<PathBuf>,
    /// Bearer token required on /api requests and written into the kubeconfig.
    #[arg(long, default_value = "kube-api-double-token")]
    token: String,
    /// Interval of BOOKMARK events, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let double = KubeApiDouble::start_with(DoubleOptions {
        listen: args.listen,
        kubeconfig_out: Some(args.kubeconfig_out.clone()),
        token: args.token,
        bookmark_interval: std::time::Duration::from_millis(args.bookmark_interval_ms),
    })
    .await?;
    if let Some(dir) = &args.pods_dir {
        let n = double
            .load_dir(dir)
            .with_context(|| format!("failed to load objects from {}", dir.display()))?;
        eprintln!("loaded {n} objects from {}", dir.display());
    }
    println!("listening on {}", double.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(double);
    Ok(())
}
