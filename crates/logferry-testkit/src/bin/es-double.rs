//! `es-double`: the Elasticsearch double of `logferry-testkit` as a
//! standalone process, for end-to-end tests, benchmarks and the quickstart.
//!
//! ```text
//! es-double --listen 127.0.0.1:9200 [--seed 7] [--faults '{"item_error_rate":0.2}']
//! ```
//!
//! Prints `listening on <addr>` on stdout once it accepts connections, then
//! serves until SIGTERM or SIGINT. Faults can be changed at run time through
//! the control API under `/_double/` (see the module documentation of
//! `logferry_testkit::elasticsearch`). This is a test double, not Elasticsearch.

use anyhow::Context as _;
use clap::Parser;
use logferry_testkit::elasticsearch::{EsDouble, EsDoubleConfig, FaultConfig};
use std::io::Write as _;
use std::net::SocketAddr;

/// An Elasticsearch 8.x double for tests (not Elasticsearch).
#[derive(Parser, Debug)]
#[command(name = "es-double", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: SocketAddr,
    /// Seed of the RNG behind random faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Initial faults as JSON (the `FaultConfig` fields), e.g. '{"item_error_rate":0.2}'.
    #[arg(long)]
    faults: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let faults: FaultConfig = match &args.faults {
        Some(json) => {
            serde_json::from_str(json).context("--faults is not a valid fault configuration")?
        }
        None => FaultConfig::default(),
    };
    let double = EsDouble::start_with(EsDoubleConfig {
        listen: args.listen,
        seed: args.seed,
        faults,
        ..EsDoubleConfig::default()
    })
    .await
    .with_context(|| format!("cannot listen on {}", args.listen))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", double.addr())?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    double.shutdown().await;
    Ok(())
}
