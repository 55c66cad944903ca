//! `throughput`: ship a generated tree with `logferry run --once` into the double and measure.

use crate::generate::Expected;
use crate::harness::{self, mib, round, Binaries, EsDouble, Logferry, LogferryConfig};
use crate::report::Table;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// Index the run writes to.
const INDEX: &str = "logferry-bench";

/// Figures of one `throughput` run. MB = 10^6 bytes of source log files; MiB = 2^20 bytes.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputResult {
    /// `throughput`.
    pub mode: &'static str,
    /// Tree shape (`50x`, `1000x`).
    pub shape: String,
    /// Bulk bodies gzip-compressed.
    pub gzip: bool,
    /// `elasticsearch.compression_level` set for the run (`None`: logferry's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_level: Option<u32>,
    /// Files in the tree.
    pub files: usize,
    /// Logical lines in the tree (documents expected).
    pub records: u64,
    /// Source bytes (sum of file sizes), MB.
    pub source_mb: f64,
    /// logferry's exit code.
    pub exit_code: Option<i32>,
    /// Spawn to exit, seconds.
    pub wall_seconds: f64,
    /// logferry user CPU seconds.
    pub cpu_user_seconds: f64,
    /// logferry system CPU seconds.
    pub cpu_sys_seconds: f64,
    /// user + sys.
    pub cpu_seconds: f64,
    /// Source MB per wall second.
    pub mb_per_second: f64,
    /// Logical lines per wall second.
    pub lines_per_second: f64,
    /// Source MB per CPU second of logferry (the budget: ≥ 150 with 50 files, gzip off).
    pub mb_per_cpu_second: f64,
    /// Peak RSS (VmHWM) of logferry, MiB.
    pub peak_rss_mib: f64,
    /// Documents the double holds in the index.
    pub documents: u64,
    /// Documents in the dead-letter index.
    pub dead_lettered: u64,
    /// 409 answers the double gave (from its stats), if it reports them.
    pub duplicates: Option<u64>,
    /// expected − stored (negative: more documents than lines).
    pub missing: i64,
    /// CPU seconds the double used during the run.
    pub double_cpu_seconds: f64,
    /// The double's own statistics after the run, as reported.
    pub double_stats: serde_json::Value,
}

impl ThroughputResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "throughput: {} files, gzip {}",
            self.files,
            match (self.gzip, self.gzip_level) {
                (false, _) => "off".to_owned(),
                (true, None) => "on".to_owned(),
                (true, Some(l)) => format!("on, level {l}"),
            }
        ));
        t.row("records (expected documents)", self.records.to_string());
        t.row("source bytes", format!("{:.1} MB", self.source_mb));
        t.row("exit code", format!("{:?}", self.exit_code));
        t.row("wall", format!("{:.2} s", self.wall_seconds));
        t.row(
            "CPU user + sys",
            format!(
                "{:.2} s ({:.2} + {:.2})",
                self.cpu_seconds, self.cpu_user_seconds, self.cpu_sys_seconds
            ),
        );
        t.row(
            "throughput",
            format!(
                "{:.1} MB/s, {:.0} lines/s",
                self.mb_per_second, self.lines_per_second
            ),
        );
        t.row(
            "MB per CPU-second",
            format!("{:.1}", self.mb_per_cpu_second),
        );
        t.row("peak RSS (VmHWM)", format!("{:.1} MiB", self.peak_rss_mib));
        t.row("documents in the double", self.documents.to_string());
        t.row("dead-lettered", self.dead_lettered.to_string());
        t.row(
            "duplicates (409)",
            self.duplicates
                .map_or("not reported by the double".into(), |d| d.to_string()),
        );
        t.row("missing", self.missing.to_string());
        t.row("double CPU", format!("{:.2} s", self.double_cpu_seconds));
        t
    }
}

/// Runs one throughput measurement of `tree` in a fresh scratch directory under `work`.
///
/// # Errors
/// The tree has no `expected.json`, a process cannot start, or the double cannot be queried.
pub async fn run(
    bins: &Binaries,
    tree: &Path,
    gzip: bool,
    work: &Path,
) -> Result<ThroughputResult> {
    run_at(bins, tree, gzip, None, work).await
}

/// [`run`] with `elasticsearch.compression_level` set to `gzip_level` when given.
///
/// # Errors
/// As [`run`].
pub async fn run_at(
    bins: &Binaries,
    tree: &Path,
    gzip: bool,
    gzip_level: Option<u32>,
    work: &Path,
) -> Result<ThroughputResult> {
    let expected = Expected::load(tree)?;
    let tree = tree.canonicalize()?;
    let scratch = harness::fresh_dir(
        work,
        &format!(
            "throughput-{}-{}",
            expected.shape.name(),
            if gzip { "gzip" } else { "none" }
        ),
    )?;
    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let http = reqwest::Client::new();
    let config = LogferryConfig {
        tree: tree.clone(),
        data_dir: scratch.join("data"),
        endpoint: double.url.clone(),
        index: INDEX.into(),
        gzip,
        gzip_level,
        admin_port: harness::free_port()?,
    };
    let double_cpu_before = double.cpu()?;
    let logferry = Logferry::start(&bins.logferry, &config, true, &scratch)?;
    let stderr_path = scratch.clone();
    let (usage, status) = tokio::task::spawn_blocking(move || logferry.wait()).await??;
    let double_cpu = double.cpu()?.since(double_cpu_before);
    if !status.success() {
        eprintln!(
            "logferry exited with {status}; last stderr lines:\n{}",
            harness::stderr_tail(&stderr_path)
        );
    }
    // Everything acknowledged is stored before the daemon exits; counting is immediate.
    let documents = double
        .count(&http, INDEX)
        .await
        .context("counting documents in the double")?;
    let dead_lettered = double
        .count(&http, "logferry-dead-letter")
        .await
        .unwrap_or(0);
    let stats = double.stats(&http).await;
    if documents != expected.records {
        // Keep the evidence: every stored document, for a post-mortem of the difference.
        let path = scratch.join("documents.ndjson");
        match double.dump_documents(&http, INDEX, &path).await {
            Ok(()) => eprintln!(
                "throughput: {documents} documents for {} lines; stored documents written to {}",
                expected.records,
                path.display()
            ),
            Err(e) => eprintln!("throughput: could not dump the stored documents: {e:#}"),
        }
    }
    let duplicates = harness::stat_number(
        &stats,
        &[
            "conflicts",
            "duplicates",
            "items_409",
            "version_conflicts",
            "409",
        ],
    );
    let source_mb = expected.bytes as f64 / 1e6;
    let cpu = usage.cpu.total();
    Ok(ThroughputResult {
        mode: "throughput",
        shape: expected.shape.name().into(),
        gzip,
        gzip_level,
        files: expected.files.len(),
        records: expected.records,
        source_mb: round(source_mb, 1),
        exit_code: status.code(),
        wall_seconds: round(usage.wall_seconds, 3),
        cpu_user_seconds: round(usage.cpu.user, 2),
        cpu_sys_seconds: round(usage.cpu.sys, 2),
        cpu_seconds: round(cpu, 2),
        mb_per_second: round(source_mb / usage.wall_seconds, 1),
        lines_per_second: round(expected.records as f64 / usage.wall_seconds, 0),
        mb_per_cpu_second: round(if cpu > 0.0 { source_mb / cpu } else { 0.0 }, 1),
        peak_rss_mib: round(mib(usage.peak_rss_bytes), 1),
        documents,
        dead_lettered,
        duplicates,
        missing: expected.records as i64 - documents as i64,
        double_cpu_seconds: round(double_cpu.total(), 2),
        double_stats: stats,
    })
}
