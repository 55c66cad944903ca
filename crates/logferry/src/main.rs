//! # logferry
//!
//! The Kubernetes node log collector: tails every container log with
//! checkpoints, enriches each record with its pod's metadata and ships it to
//! Elasticsearch exactly once (deterministic `_id`s, bulk `create`, checkpoints
//! that only advance over acknowledged records), in bounded memory.
//!
//! Subcommands (see the README):
//! * `run [--config PATH] [--once]` (default): the daemon;
//! * `validate --config PATH`: check a configuration, print every problem;
//! * `verify`: count what reached Elasticsearch, find gaps and duplicates.
//!
//! Exit codes: 0 clean shutdown, 1 bad configuration or arguments (also
//! credentials a NATS server refuses), 2 fatal runtime error; `verify` exits 3 when it finds loss or duplicates.

mod admin;
mod config;
mod enrich;
mod events;
mod filter;
mod freshness;
mod lock;
mod metrics;
mod nats;
mod run;
mod sink;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Default configuration path (overridden by `--config` or `LOGFERRY_CONFIG`).
const DEFAULT_CONFIG: &str = "/etc/logferry/logferry.yaml";

#[derive(Parser)]
#[command(
    name = "logferry",
    version,
    about = "Kubernetes node log collector: every line, exactly once, in Elasticsearch"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (for the default `run`).
    #[arg(long, env = "LOGFERRY_CONFIG", default_value = DEFAULT_CONFIG, global = true)]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (the default).
    Run {
        /// Read every file to its end, ship, checkpoint and exit 0 (backfills, quickstart).
        #[arg(long)]
        once: bool,
    },
    /// Parse and check a configuration file; print every problem with its key path.
    Validate,
    /// Check what reached Elasticsearch: counts, offset gaps, duplicates.
    Verify(verify::Args),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOGFERRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A panic in any task or thread (a pipeline stage, the pod watch, the admin
/// server) ends the process with exit code 2 instead of leaving it running
/// with a stage missing (a frozen checkpoint behind a green `/readyz`) or
/// letting it exit 0. Checkpoints on disk are intact (written atomically, and
/// only over acknowledged records): kubelet restarts the container and what
/// was not acknowledged is read again.
fn exit_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            panic = %info,
            backtrace = %std::backtrace::Backtrace::force_capture(),
            "a task panicked: exiting with code 2 (checkpoints are intact; unacknowledged records are read again after the restart)"
        );
        std::process::exit(2);
    }));
}

fn load_config(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::Config::load(path).map_err(|e| {
        eprintln!("{e}");
        for p in &e.problems {
            eprintln!("  {p}");
        }
        ExitCode::from(1)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command.unwrap_or(Command::Run { once: false }) {
        Command::Validate => match load_config(&cli.config) {
            Ok(_) => {
                println!("{}: configuration is valid", cli.config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { once } => {
            let config = match load_config(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging();
            exit_on_panic();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("logferry")
                .enable_all()
                .build()
                .expect("tokio runtime");
            match runtime.block_on(run::run(config, once)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "fatal");
                    ExitCode::from(run::exit_code(&e))
                }
            }
        }
        Command::Verify(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match runtime.block_on(verify::verify(args)) {
                Ok(report) => {
                    println!("{report}");
                    if report.ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(3)
                    }
                }
                Err(e) => {
                    eprintln!("verify failed: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
