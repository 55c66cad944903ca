//! # logferry-bench
//!
//! The benchmark harness of logferry (run by hand, never by `cargo test`): it generates node log
//! trees in kubelet layout with CRI framing and real Loghub message text, runs the release
//! `logferry` binary against the Elasticsearch double on loopback, and reports wall time, CPU
//! seconds, MB per CPU-second, peak RSS, and what reached the double (documents, duplicates,
//! missing). See `README.md` beside this crate for how to run it and the latest figures.
//!
//! Every figure it prints is measured on the machine it runs on; nothing is hard-coded.

mod all;
mod ceiling;
mod compress;
mod generate;
mod harness;
mod idle;
mod live;
mod nats;
mod procstat;
mod report;
mod scale;
mod throughput;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Repository root, for the default corpus and results paths.
pub(crate) const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const DEFAULT_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/loghub");

#[derive(Parser)]
#[command(
    name = "logferry-bench",
    about = "logferry benchmark harness (run by hand; see crates/logferry-bench/README.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every measuring mode takes.
#[derive(Args, Clone)]
struct Common {
    /// Directory holding the release `logferry` and `es-double` binaries
    /// (default: `$CARGO_TARGET_DIR/release`, else `<repo>/target/release`).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Scratch directory (checkpoints, logs of the processes, generated trees).
    #[arg(long, default_value = "/tmp/logferry-bench")]
    work: PathBuf,
    /// Directory of Loghub `*.log` files used as message text.
    #[arg(long, default_value = DEFAULT_CORPUS)]
    corpus: PathBuf,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

impl Common {
    fn binaries(&self) -> Result<harness::Binaries> {
        self.binaries_for(true)
    }

    fn binaries_for(&self, need_logferry: bool) -> Result<harness::Binaries> {
        harness::Binaries::find(
            &self
                .bin_dir
                .clone()
                .unwrap_or_else(harness::Binaries::default_dir),
            need_logferry,
        )
    }
}

#[derive(Args, Clone)]
struct LiveArgs {
    /// Writing time, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Total write rate, MB/s (10^6 bytes).
    #[arg(long, default_value_t = 5.0)]
    rate_mb: f64,
    /// Files written.
    #[arg(long, default_value_t = 50)]
    files: usize,
    /// Rotate a file when it reaches this size, MB.
    #[arg(long, default_value_t = 10.0)]
    rotate_mb: f64,
    /// A named shape that overrides the figures above: `runtime` = issue 14's live workload
    /// (20 files, 0.5 MB/s ≈ 2,000 lines/s of ≈ 250 B, one write(2) per line, rotation at
    /// 256 KiB keeping 4 rotated files, all but the newest gzipped, as kubelet does).
    #[arg(long)]
    shape: Option<LiveShape>,
}

/// Named live workloads.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LiveShape {
    /// issue 14: a node tailing runtimes that write one line per write(2).
    Runtime,
}

impl LiveShape {
    /// The shape's workload for `seconds` of writing.
    fn options(self, seconds: u64) -> live::LiveOptions {
        match self {
            LiveShape::Runtime => live::LiveOptions {
                seconds,
                rate_bytes: 500_000,
                files: 20,
                rotate_bytes: 256 * 1024,
                per_line: true,
                keep_rotated: 4,
                gzip_rotated: true,
            },
        }
    }
}

impl LiveArgs {
    fn options(&self) -> live::LiveOptions {
        match self.shape {
            Some(shape) => shape.options(self.seconds),
            None => live::LiveOptions {
                seconds: self.seconds,
                rate_bytes: (self.rate_mb * 1e6) as u64,
                files: self.files,
                rotate_bytes: (self.rotate_mb * 1e6) as u64,
                per_line: false,
                keep_rotated: 4,
                gzip_rotated: false,
            },
        }
    }
}

#[derive(Args, Clone)]
struct CeilingArgs {
    /// Documents sent.
    #[arg(long, default_value_t = 1_000_000)]
    docs: u64,
    /// Documents per bulk request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Bulk requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Subcommand)]
enum Command {
    /// NATS: JetStream consumer -> Elasticsearch double, and files -> JetStream publish, with
    /// the real nats-server's CPU.
    Nats {
        /// Messages per phase.
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
        #[command(flatten)]
        common: Common,
    },
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
        #[arg(long, default_value = DEFAULT_CORPUS)]
        corpus: PathBuf,
        /// PRNG seed.
        #[arg(long, default_value_t = 20261122)]
        seed: u64,
        /// Lines over 16 KiB (split into P chunks) per million lines.
        #[arg(long, default_value_t = 500)]
        long_per_million: u32,
    },
    /// Ship a generated tree with `logferry run --once` into the double; measure.
    Throughput {
        /// Tree made by `generate`.
        #[arg(long)]
        tree: PathBuf,
        /// gzip the bulk bodies.
        #[arg(long)]
        gzip: bool,
        /// `elasticsearch.compression_level` (1-9; implies --gzip; default: logferry's).
        #[arg(long)]
        gzip_level: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// Writers append at a fixed rate with kubelet rotation; write-to-stored delay and CPU per MB.
    Live {
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        common: Common,
    },
    /// 1,000 quiet files: CPU seconds and RSS over a quiet window.
    Idle {
        /// Quiet window, seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[command(flatten)]
        common: Common,
    },
    /// gzip back-ends and levels on real bulk bodies (logferry's encoder, default batching):
    /// CPU per MB of body and bytes on the wire. No process is started.
    Compress {
        /// Documents encoded (bodies of 1,000 documents or 5 MiB).
        #[arg(long, default_value_t = 200_000)]
        docs: u64,
        /// Timed passes per back-end and level (the best is reported).
        #[arg(long, default_value_t = 3)]
        passes: usize,
        /// Directory of Loghub `*.log` files used as message text.
        #[arg(long, default_value = DEFAULT_CORPUS)]
        corpus: PathBuf,
        /// Also write the result as JSON to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// issue 14, goal 4: 10,000 files (2,500 containers, each with a rotated file and two
    /// gzipped ones): catch-up MB per CPU-second, peak RSS, discovery delay of new files.
    Scale {
        /// Logical lines over the plain files.
        #[arg(long, default_value_t = 500_000)]
        lines: u64,
        /// New files created one at a time while logferry runs.
        #[arg(long, default_value_t = 20)]
        probes: usize,
        #[command(flatten)]
        common: Common,
    },
    /// issue 14, goal 4: a Job fan-out, pods created within a few seconds; every line once?
    Fanout {
        /// Pods created.
        #[arg(long, default_value_t = 2000)]
        pods: usize,
        /// Lines per pod.
        #[arg(long, default_value_t = 5)]
        lines_per_pod: usize,
        /// Creation spread over this many seconds (0: as fast as possible).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        #[command(flatten)]
        common: Common,
    },
    /// The double alone with pre-encoded bulk bodies: its ceiling in docs/s and MB/s.
    EsCeiling {
        #[command(flatten)]
        ceiling: CeilingArgs,
        /// gzip the bulk bodies.
        #[arg(long)]
        gzip: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Everything, `--repeat` times: es-ceiling, throughput (50x gzip off/on, 1000x gzip off),
    /// idle, scale (500,000 lines, 10 probes), fanout (2,000 pods in 5 s), live (the flags'
    /// shape and the `runtime` shape); writes
    /// crates/logferry-bench/results/latest.json (or --json-out) with min / median / max.
    All {
        /// Logical lines per generated tree.
        #[arg(long, default_value_t = 2_000_000)]
        lines: u64,
        /// Idle window, seconds.
        #[arg(long, default_value_t = 60)]
        idle_seconds: u64,
        /// How many times each mode runs (the summary gives min / median / max).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        ceiling: CeilingArgs,
        #[command(flatten)]
        common: Common,
    },
}

/// Prints a result's table and writes its JSON when asked.
fn emit<T: Serialize>(table: report::Table, value: &T, json_out: Option<&Path>) -> Result<()> {
    println!("{}", table.render());
    if let Some(p) = json_out {
        report::write_json(
            p,
            &serde_json::json!({ "machine": harness::Machine::detect(), "result": value }),
        )?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Reuses `<work>/tree-<shape>` when its expected.json matches, else (re)generates it.
fn ensure_tree(common: &Common, shape: generate::Shape, lines: u64) -> Result<PathBuf> {
    let dir = common.work.join(format!("tree-{}-{lines}", shape.name()));
    if let Ok(e) = generate::Expected::load(&dir) {
        let corpus_hash = generate::Corpus::load(&common.corpus)?.hash();
        if e.records == lines && e.shape == shape && e.corpus_hash == corpus_hash {
            println!("reusing {}", dir.display());
            return Ok(dir);
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let started = std::time::Instant::now();
    let e = generate::generate(&generate::GenerateOptions {
        shape,
        lines,
        out: dir.clone(),
        corpus: common.corpus.clone(),
        seed: 20261122,
        long_per_million: 500,
    })?;
    println!(
        "generated {} ({} files, {:.1} MB) in {:.1} s",
        dir.display(),
        e.files.len(),
        e.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

#[tokio::main]
async fn main() -> Result<()> {
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
            let e = tokio::task::spawn_blocking(move || generate::generate(&opts)).await??;
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
        Command::Nats { messages, common } => {
            let b = common.binaries()?;
            let r = nats::run(&b.logferry, &b.es_double, &common.work, messages).await?;
            println!("{}", r.render());
            if let Some(p) = &common.json_out {
                report::write_json(
                    p,
                    &serde_json::json!({ "machine": harness::Machine::detect(), "result": r }),
                )?;
            }
        }
        Command::Throughput {
            tree,
            gzip,
            gzip_level,
            common,
        } => {
            let gzip = gzip || gzip_level.is_some();
            let r = throughput::run_at(&common.binaries()?, &tree, gzip, gzip_level, &common.work)
                .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::Compress {
            docs,
            passes,
            corpus,
            json_out,
        } => {
            let r =
                tokio::task::spawn_blocking(move || compress::run(&corpus, docs, passes)).await??;
            emit(r.table(), &r, json_out.as_deref())?;
        }
        Command::Live { live, common } => {
            let r = live::run(
                &common.binaries()?,
                &common.corpus,
                &live.options(),
                &common.work,
            )
            .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::Idle { seconds, common } => {
            let r = idle::run(
                &common.binaries()?,
                &common.corpus,
                Duration::from_secs(seconds),
                &common.work,
            )
            .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::Scale {
            lines,
            probes,
            common,
        } => {
            let r = scale::run_scale(
                &common.binaries()?,
                &common.corpus,
                &scale::ScaleOptions { lines, probes },
                &common.work,
            )
            .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::Fanout {
            pods,
            lines_per_pod,
            seconds,
            common,
        } => {
            let r = scale::run_fanout(
                &common.binaries()?,
                &scale::FanoutOptions {
                    pods,
                    lines_per_pod,
                    seconds,
                },
                &common.work,
            )
            .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::EsCeiling {
            ceiling,
            gzip,
            common,
        } => {
            let r = ceiling::run(
                &common.binaries_for(false)?,
                &common.corpus,
                ceiling.docs,
                ceiling.batch,
                ceiling.concurrency,
                gzip,
                &common.work,
            )
            .await?;
            emit(r.table(), &r, common.json_out.as_deref())?;
        }
        Command::All {
            lines,
            idle_seconds,
            repeat,
            live,
            ceiling,
            common,
        } => {
            let plan = all::Plan {
                lines,
                idle: Duration::from_secs(idle_seconds),
                live: [live.options(), LiveShape::Runtime.options(live.seconds)],
                ceiling: (ceiling.docs, ceiling.batch, ceiling.concurrency),
                scale: (
                    scale::ScaleOptions {
                        lines: 500_000,
                        probes: 10,
                    },
                    scale::FanoutOptions {
                        pods: 2000,
                        lines_per_pod: 5,
                        seconds: 5.0,
                    },
                ),
                repeat: repeat.max(1),
            };
            let c = common.clone();
            let r = all::run(
                &common.binaries()?,
                &common.corpus,
                &common.work,
                &plan,
                move |shape, lines| ensure_tree(&c, shape, lines),
            )
            .await?;
            println!("{}", report::summary(&r.runs).render());
            println!("{}", all::table(&r.summary).render());
            let out = common.json_out.clone().unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/results/latest.json"))
            });
            report::write_json(&out, &r)?;
            let m = &r.machine;
            println!(
                "machine: {} CPUs ({}), {} GiB, kernel {}, commit {}, {}",
                m.nproc,
                m.cpu_model,
                m.memory_gib,
                m.kernel,
                m.commit.as_deref().unwrap_or("?"),
                m.date
            );
            println!(
                "load average at start: {}, at the end: {}",
                m.load_average, r.load_average_end
            );
            println!("wrote {}", out.display());
            if !r.errors.is_empty() {
                anyhow::bail!("{} run(s) failed: {}", r.errors.len(), r.errors.join("; "));
            }
        }
    }
    Ok(())
}
