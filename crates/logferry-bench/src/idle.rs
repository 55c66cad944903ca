//! `idle`: 1,000 quiet files; after their few lines are shipped, nothing is written for the
//! measured window. Reports logferry's CPU seconds over the window (target: under 0.3 s in 60 s,
//! i.e. no busy polling) and its RSS.

use crate::generate::{self, GenerateOptions, Shape};
use crate::harness::{self, mib, round, Binaries, EsDouble, Logferry, LogferryConfig};
use crate::report::Table;
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

const INDEX: &str = "logferry-idle";

/// Figures of an idle run.
#[derive(Clone, Debug, Serialize)]
pub struct IdleResult {
    /// `idle`.
    pub mode: &'static str,
    /// Quiet files.
    pub files: usize,
    /// Lines shipped before the window (a few per file).
    pub records: u64,
    /// Seconds from start until every initial line was stored in the double.
    pub startup_seconds: f64,
    /// CPU seconds used before the window (startup + initial lines).
    pub startup_cpu_seconds: f64,
    /// Length of the measured quiet window, seconds.
    pub window_seconds: f64,
    /// CPU seconds (user + sys) used during the window.
    pub window_cpu_seconds: f64,
    /// RSS at the end of the window, MiB.
    pub rss_mib: f64,
    /// Peak RSS (VmHWM) over the whole run, MiB.
    pub peak_rss_mib: f64,
    /// Exit code after `POST /quitquitquit`.
    pub exit_code: Option<i32>,
}

impl IdleResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "idle: {} quiet files for {:.0} s",
            self.files, self.window_seconds
        ));
        t.row(
            "initial lines shipped",
            format!(
                "{} in {:.2} s, {:.2} CPU s",
                self.records, self.startup_seconds, self.startup_cpu_seconds
            ),
        );
        t.row(
            "CPU during the quiet window",
            format!("{:.3} s", self.window_cpu_seconds),
        );
        t.row(
            "RSS at the end of the window",
            format!("{:.1} MiB", self.rss_mib),
        );
        t.row("peak RSS (VmHWM)", format!("{:.1} MiB", self.peak_rss_mib));
        t.row(
            "exit code after /quitquitquit",
            format!("{:?}", self.exit_code),
        );
        t
    }
}

/// Runs the idle measurement.
///
/// # Errors
/// The tree cannot be generated, a process fails, or the initial lines never arrive.
pub async fn run(
    bins: &Binaries,
    corpus: &Path,
    window: Duration,
    work: &Path,
) -> Result<IdleResult> {
    let scratch = harness::fresh_dir(work, "idle")?;
    let tree = scratch.join("tree");
    let expected = generate::generate(&GenerateOptions {
        shape: Shape::Files1000,
        lines: 5_000,
        out: tree.clone(),
        corpus: corpus.to_path_buf(),
        seed: 11,
        long_per_million: 0,
    })?;
    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let http = reqwest::Client::new();
    let config = LogferryConfig {
        tree,
        data_dir: scratch.join("data"),
        endpoint: double.url.clone(),
        index: INDEX.into(),
        gzip: false,
        gzip_level: None,
        admin_port: harness::free_port()?,
    };
    let logferry = Logferry::start(&bins.logferry, &config, false, &scratch)?;
    let started = Instant::now();
    let arrived = harness::wait_until(Duration::from_secs(120), || async {
        double
            .count(&http, INDEX)
            .await
            .is_ok_and(|n| n >= expected.records)
    })
    .await;
    if !arrived {
        bail!(
            "idle: the initial {} lines did not all arrive within 120 s; logferry stderr:\n{}",
            expected.records,
            logferry.stderr_tail()
        );
    }
    let startup_seconds = started.elapsed().as_secs_f64();
    // Let the last acknowledgements and checkpoint writes settle before the window opens.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = logferry.snapshot()?;
    let window_start = Instant::now();
    tokio::time::sleep(window).await;
    let after = logferry.snapshot()?;
    let window_seconds = window_start.elapsed().as_secs_f64();
    let (usage, status) = harness::quit(&http, logferry, Duration::from_secs(30)).await?;
    Ok(IdleResult {
        mode: "idle",
        files: expected.files.len(),
        records: expected.records,
        startup_seconds: round(startup_seconds, 2),
        startup_cpu_seconds: round(before.cpu.total(), 2),
        window_seconds: round(window_seconds, 1),
        window_cpu_seconds: round(after.cpu.since(before.cpu).total(), 3),
        rss_mib: round(mib(after.last_rss_bytes), 1),
        peak_rss_mib: round(mib(usage.peak_rss_bytes.max(after.peak_rss_bytes)), 1),
        exit_code: status.code(),
    })
}
