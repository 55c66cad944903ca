//! `scale` and `fanout` (issue 14, goal 4): many files on one node.
//!
//! `scale`: a tree of 2,500 containers, each with the four files kubelet keeps
//! (`0.log`, the newest rotated `0.log.<YYYYMMDD-HHMMSS>`, two older rotated
//! files gzipped): 10,000 files, 5,000 of them plain text to ship. logferry
//! runs as a daemon; the harness measures the catch-up (MB of plain files per
//! CPU-second until every line is stored), the peak RSS, and then the
//! discovery delay of new files created while it runs: for each probe a new
//! pod directory and container directory are made, and after 300 ms (so that
//! logferry watches the container directory) `0.log` is created with one
//! line. The harness's own inotify watch on the directory reports logferry's
//! `open` of the file (discovery) and its first `read`, and the double tells
//! when the line is stored.
//!
//! `fanout`: a Job fan-out. logferry runs on an empty node; then 2,000 pod
//! directories, each with one container writing a few lines, are created
//! within 5 s (`--seconds 0`: as fast as possible). Every line carries a
//! unique text; after every line is stored (or a timeout), every stored
//! document is read back and compared with what was written: missing and
//! duplicated lines. logferry's `/metrics` tells how many inotify queue
//! overflows there were and how many rescans they caused
//! (`logferry_tail_rescans_total{reason}`).

use crate::generate::{self, GenerateOptions, Shape, CRI_CHUNK_BYTES};
use crate::harness::{self, mib, round, Binaries, EsDouble, Logferry, LogferryConfig};
use crate::report::Table;
use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use inotify::{Inotify, WatchMask};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INDEX: &str = "logferry-scale";
/// The newest rotated file of every container (kubelet's name for it).
const ROTATED: &str = "0.log.20261122-075959";
/// The two older rotated files, gzipped as kubelet does.
const GZIPPED: [&str; 2] = ["0.log.20261122-035959.gz", "0.log.20261121-235959.gz"];

/// What `scale` runs.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// Logical lines over all plain files.
    pub lines: u64,
    /// New files created while logferry runs, one at a time.
    pub probes: usize,
}

/// Figures of a `scale` run.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleResult {
    /// `scale`.
    pub mode: &'static str,
    /// Files in the tree (plain and gzipped).
    pub files: usize,
    /// Plain files (read): `0.log` and the newest rotated file of each container.
    pub plain_files: usize,
    /// Containers (directories holding log files).
    pub containers: usize,
    /// Logical lines in the plain files.
    pub records: u64,
    /// Bytes of the plain files, MB.
    pub source_mb: f64,
    /// Start until every line was stored, seconds.
    pub catch_up_seconds: f64,
    /// logferry's CPU seconds until then.
    pub catch_up_cpu_seconds: f64,
    /// Source MB per CPU-second over the catch-up (goal: ≥ 100).
    pub mb_per_cpu_second: f64,
    /// Peak RSS (VmHWM) over the whole run, MiB (goal: ≤ 120).
    pub peak_rss_mib: f64,
    /// RSS once caught up, MiB.
    pub rss_caught_up_mib: f64,
    /// Documents stored, and expected − stored.
    pub documents: u64,
    /// expected − stored (after the probes' lines are subtracted).
    pub missing: i64,
    /// 409s the double answered.
    pub duplicates: Option<u64>,
    /// Discovery probes run.
    pub probes: usize,
    /// Creation of a new file → logferry opens it, ms: min, p50, max (goal: ≤ 100).
    pub discovery_open_ms: [f64; 3],
    /// Creation → logferry's first read of it, ms: min, p50, max.
    pub discovery_read_ms: [f64; 3],
    /// Creation → its line stored in the double, ms: min, p50, max.
    pub discovery_stored_ms: [f64; 3],
    /// CPU seconds over the probes' window (idle but for the probes).
    pub probe_window_cpu_seconds: f64,
    /// Length of that window, seconds.
    pub probe_window_seconds: f64,
    /// logferry's exit code after `POST /quitquitquit`.
    pub exit_code: Option<i32>,
}

impl ScaleResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "scale: {} files ({} plain, {} containers), {} lines, {:.1} MB",
            self.files, self.plain_files, self.containers, self.records, self.source_mb
        ));
        t.row(
            "catch-up",
            format!(
                "{:.2} s, {:.2} CPU s: {:.1} MB per CPU-second",
                self.catch_up_seconds, self.catch_up_cpu_seconds, self.mb_per_cpu_second
            ),
        );
        t.row(
            "peak RSS (VmHWM)",
            format!(
                "{:.1} MiB (caught up: {:.1} MiB)",
                self.peak_rss_mib, self.rss_caught_up_mib
            ),
        );
        t.row(
            "documents / missing / duplicates",
            format!(
                "{} / {} / {:?}",
                self.documents, self.missing, self.duplicates
            ),
        );
        let ms = |v: [f64; 3]| format!("{:.1} / {:.1} / {:.1}", v[0], v[1], v[2]);
        t.row(
            format!("new file → opened, ms (min/p50/max of {})", self.probes),
            ms(self.discovery_open_ms),
        );
        t.row("new file → first read, ms", ms(self.discovery_read_ms));
        t.row("new file → stored, ms", ms(self.discovery_stored_ms));
        t.row(
            "CPU during the probes",
            format!(
                "{:.3} s in {:.1} s",
                self.probe_window_cpu_seconds, self.probe_window_seconds
            ),
        );
        t.row("exit code", format!("{:?}", self.exit_code));
        t
    }
}

/// Generates the scale tree under `dir` (reused when `expected.json` matches).
///
/// # Errors
/// Generation or a file operation fails.
pub fn ensure_scale_tree(dir: &Path, corpus: &Path, lines: u64) -> Result<ScaleTree> {
    let marker = dir.join("scale.json");
    if let Ok(text) = std::fs::read(&marker) {
        if let Ok(t) = serde_json::from_slice::<ScaleTree>(&text) {
            if t.records == lines {
                println!("reusing {}", dir.display());
                return Ok(t);
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let started = Instant::now();
    let expected = generate::generate(&GenerateOptions {
        shape: Shape::Files2500,
        lines,
        out: dir.to_path_buf(),
        corpus: corpus.to_path_buf(),
        seed: 14,
        long_per_million: 500,
    })?;
    let mut files = 0;
    let mut plain = 0;
    for f in &expected.files {
        let active = dir.join(&f.path);
        let cdir = active.parent().expect("0.log has a directory");
        let body = std::fs::read(&active)?;
        let cut = split_point(&body);
        if cut > 0 {
            std::fs::write(cdir.join(ROTATED), &body[..cut])?;
            std::fs::write(&active, &body[cut..])?;
            plain += 2;
        } else {
            plain += 1;
        }
        for (i, name) in GZIPPED.iter().enumerate() {
            // Older lines of the same container: never read (no checkpoint
            // names them), only looked at once.
            let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let head = &body[..body.len().min(4096 * (i + 1))];
            gz.write_all(format!("2026-11-21T0{i}:00:00Z stdout F older {i}\n").as_bytes())?;
            gz.write_all(&head[..head.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)])?;
            std::fs::write(cdir.join(name), gz.finish()?)?;
        }
        files += cut.min(1) + 1 + GZIPPED.len();
    }
    let t = ScaleTree {
        records: expected.records,
        bytes: expected.bytes,
        containers: expected.files.len(),
        files,
        plain_files: plain,
    };
    std::fs::write(&marker, serde_json::to_vec_pretty(&t)?)?;
    println!(
        "generated {} ({} files, {} plain, {:.1} MB) in {:.1} s",
        dir.display(),
        t.files,
        t.plain_files,
        t.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(t)
}

/// What the scale tree holds (`scale.json` at its root).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ScaleTree {
    /// Logical lines in the plain files.
    pub records: u64,
    /// Bytes of the plain files.
    pub bytes: u64,
    /// Containers.
    pub containers: usize,
    /// Files (plain and gzipped).
    pub files: usize,
    /// Plain files.
    pub plain_files: usize,
}

/// Where to cut a file of CRI lines in two: after the `F` line that ends at or
/// after its middle (never inside a `P`… `F` sequence); 0 when there is none
/// before the last line.
pub fn split_point(body: &[u8]) -> usize {
    let mut pos = body.len() / 2;
    while pos < body.len() {
        // Start of the line holding `pos`.
        let start = body[..pos]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let Some(nl) = memchr::memchr(b'\n', &body[start..]).map(|i| start + i) else {
            return 0;
        };
        let mut fields = body[start..nl].splitn(4, |&b| b == b' ');
        let tag = fields.nth(2);
        if tag == Some(b"F") {
            return if nl + 1 < body.len() { nl + 1 } else { 0 };
        }
        pos = nl + 1;
    }
    0
}

/// One new container for a probe or the fan-out: `<pods>/<ns>_<pod>_<uid>/app`
/// and its `/var/log/containers` link; returns the container directory.
fn make_container(tree: &Path, name: &str, uid_n: u64) -> Result<PathBuf> {
    let uid = format!("0f0e0d0c-0000-4000-8000-{uid_n:012x}");
    let pod_dir = tree.join(format!("var/log/pods/bench_{name}_{uid}"));
    let cdir = pod_dir.join("app");
    std::fs::create_dir_all(&cdir)?;
    let link = tree.join(format!(
        "var/log/containers/{name}_bench_app-{:064x}.log",
        uid_n
    ));
    let target = format!("../pods/bench_{name}_{uid}/app/0.log");
    std::os::unix::fs::symlink(target, link)?;
    Ok(cdir)
}

/// A CRI line whose message is `text`.
fn cri_line(text: &str) -> String {
    debug_assert!(text.len() < CRI_CHUNK_BYTES);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.9fZ");
    format!("{now} stdout F {text}\n")
}

/// Creates `<cdir>/0.log` with one line and measures, with the harness's own
/// inotify watch, when logferry opened it and first read it.
fn probe_file(cdir: &Path, text: &str) -> Result<(Instant, Option<Instant>, Option<Instant>)> {
    let mut ino = Inotify::init().context("inotify for the probe")?;
    ino.watches().add(
        cdir,
        WatchMask::OPEN | WatchMask::ACCESS | WatchMask::CLOSE_WRITE,
    )?;
    let created = Instant::now();
    std::fs::write(cdir.join("0.log"), cri_line(text))?;
    let (mut opens, mut opened, mut read) = (0, None, None);
    let mut buf = [0u8; 4096];
    // The first OPEN is the harness's own write; logferry's is the second.
    let deadline = created + Duration::from_secs(10);
    while read.is_none() && Instant::now() < deadline {
        let events = match ino.read_events(&mut buf) {
            Ok(ev) => ev,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        for ev in events {
            if ev.mask.contains(inotify::EventMask::OPEN) {
                opens += 1;
                if opens == 2 {
                    opened = Some(now);
                }
            }
            if ev.mask.contains(inotify::EventMask::ACCESS) && read.is_none() {
                read = Some(now);
            }
        }
    }
    Ok((created, opened, read))
}

/// Documents the double created so far: a counter read (`_count` scans the
/// store under its lock and, polled while bulk requests are in flight,
/// delays them by seconds; see `live`).
async fn stored_docs(double: &EsDouble, http: &reqwest::Client) -> u64 {
    double.stats(http).await["created"].as_u64().unwrap_or(0)
}

/// min, p50, max.
fn spread(mut v: Vec<f64>) -> [f64; 3] {
    if v.is_empty() {
        return [f64::NAN; 3];
    }
    v.sort_by(f64::total_cmp);
    [
        round(v[0], 1),
        round(v[v.len() / 2], 1),
        round(v[v.len() - 1], 1),
    ]
}

/// Runs `scale`.
///
/// # Errors
/// The tree cannot be made, a process fails, or the lines never arrive.
pub async fn run_scale(
    bins: &Binaries,
    corpus: &Path,
    opts: &ScaleOptions,
    work: &Path,
) -> Result<ScaleResult> {
    let tree = work.join(format!("tree-scale-{}", opts.lines));
    let (t2, c2, lines) = (tree.clone(), corpus.to_path_buf(), opts.lines);
    let st = tokio::task::spawn_blocking(move || ensure_scale_tree(&t2, &c2, lines)).await??;
    // Probes from an earlier run would be read again: the tree is reused.
    for e in std::fs::read_dir(tree.join("var/log/pods"))? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("bench_probe-") {
            std::fs::remove_dir_all(e.path())?;
        }
    }
    for e in std::fs::read_dir(tree.join("var/log/containers"))? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with("probe-") {
            std::fs::remove_file(e.path())?;
        }
    }
    let scratch = harness::fresh_dir(work, "scale")?;
    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let http = reqwest::Client::new();
    let (logferry, config) = start_daemon(bins, &tree, &scratch, &double)?;
    let started = Instant::now();
    let arrived = harness::wait_until(Duration::from_secs(900), || async {
        stored_docs(&double, &http).await >= st.records
    })
    .await;
    if !arrived {
        bail!(
            "scale: the {} lines did not all arrive within 900 s; logferry stderr:\n{}",
            st.records,
            logferry.stderr_tail()
        );
    }
    let catch_up = logferry.snapshot()?;
    let catch_up_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = logferry.snapshot()?;
    let window = Instant::now();
    let (mut open_ms, mut read_ms, mut stored_ms) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..opts.probes {
        let cdir = make_container(&config.tree, &format!("probe-{i}"), 1 << 40 | i as u64)?;
        // logferry sees the new pod directory, lists it and watches the container directory.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = format!("scale probe {i}");
        let count_before = stored_docs(&double, &http).await;
        let (created, opened, read) =
            tokio::task::spawn_blocking(move || probe_file(&cdir, &text)).await??;
        let stored = harness::wait_until(Duration::from_secs(30), || async {
            stored_docs(&double, &http).await > count_before
        })
        .await;
        let ms = |t: Instant| t.duration_since(created).as_secs_f64() * 1e3;
        if let Some(t) = opened {
            open_ms.push(ms(t));
        }
        if let Some(t) = read {
            read_ms.push(ms(t));
        }
        if stored {
            stored_ms.push(ms(Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = logferry.snapshot()?;
    let probe_window_seconds = window.elapsed().as_secs_f64();
    let documents = double.count(&http, INDEX).await?;
    let stats = double.stats(&http).await;
    let (usage, status) = harness::quit(&http, logferry, Duration::from_secs(60)).await?;
    let cpu = catch_up.cpu.total();
    let source_mb = st.bytes as f64 / 1e6;
    Ok(ScaleResult {
        mode: "scale",
        files: st.files,
        plain_files: st.plain_files,
        containers: st.containers,
        records: st.records,
        source_mb: round(source_mb, 1),
        catch_up_seconds: round(catch_up_seconds, 2),
        catch_up_cpu_seconds: round(cpu, 2),
        mb_per_cpu_second: round(source_mb / cpu.max(1e-9), 1),
        peak_rss_mib: round(mib(usage.peak_rss_bytes.max(after.peak_rss_bytes)), 1),
        rss_caught_up_mib: round(mib(catch_up.last_rss_bytes), 1),
        documents,
        missing: st.records as i64 + opts.probes as i64 - documents as i64,
        duplicates: harness::stat_number(&stats, &["conflicts"]),
        probes: opts.probes,
        discovery_open_ms: spread(open_ms),
        discovery_read_ms: spread(read_ms),
        discovery_stored_ms: spread(stored_ms),
        probe_window_cpu_seconds: round(after.cpu.since(before.cpu).total(), 3),
        probe_window_seconds: round(probe_window_seconds, 1),
        exit_code: status.code(),
    })
}

/// What `fanout` runs.
#[derive(Clone, Debug)]
pub struct FanoutOptions {
    /// Pods created.
    pub pods: usize,
    /// Lines each pod's container writes.
    pub lines_per_pod: usize,
    /// Creation spread over this many seconds (0: as fast as possible).
    pub seconds: f64,
}

/// Starts `logferry run` (daemon, gzip off) on `tree` into `double`, its state under `scratch`.
///
/// # Errors
/// `tree` cannot be resolved, no free port, or the process cannot start.
fn start_daemon(
    bins: &Binaries,
    tree: &Path,
    scratch: &Path,
    double: &EsDouble,
) -> Result<(Logferry, LogferryConfig)> {
    let config = LogferryConfig {
        tree: tree.canonicalize()?,
        data_dir: scratch.join("data"),
        endpoint: double.url.clone(),
        index: INDEX.into(),
        gzip: false,
        gzip_level: None,
        admin_port: harness::free_port()?,
    };
    let logferry = Logferry::start(&bins.logferry, &config, false, scratch)?;
    Ok((logferry, config))
}

/// Figures of a `fanout` run.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutResult {
    /// `fanout`.
    pub mode: &'static str,
    /// Pods created.
    pub pods: usize,
    /// Lines written in all.
    pub lines: u64,
    /// Time the harness took to create them all, seconds.
    pub create_seconds: f64,
    /// First creation → every line stored, seconds.
    pub all_stored_seconds: f64,
    /// Lines written and never stored.
    pub missing: u64,
    /// Lines stored more than once (extra copies).
    pub duplicates: u64,
    /// Documents that are no line the harness wrote.
    pub unexpected: u64,
    /// logferry's CPU seconds from the first creation to the last line stored.
    pub cpu_seconds: f64,
    /// Peak RSS over the run, MiB.
    pub peak_rss_mib: f64,
    /// `logferry_tail_rescans_total` by reason, from `/metrics` at the end.
    pub rescans: HashMap<String, u64>,
    /// logferry's exit code after `POST /quitquitquit`.
    pub exit_code: Option<i32>,
}

impl FanoutResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "fanout: {} pods × {} lines created in {:.2} s",
            self.pods,
            self.lines / self.pods.max(1) as u64,
            self.create_seconds
        ));
        t.row(
            "every line stored after",
            format!("{:.2} s", self.all_stored_seconds),
        );
        t.row(
            "missing / duplicates / unexpected",
            format!(
                "{} / {} / {}",
                self.missing, self.duplicates, self.unexpected
            ),
        );
        t.row("logferry CPU", format!("{:.2} s", self.cpu_seconds));
        t.row("peak RSS (VmHWM)", format!("{:.1} MiB", self.peak_rss_mib));
        let mut r: Vec<_> = self.rescans.iter().collect();
        r.sort();
        t.row("rescans by reason", format!("{r:?}"));
        t.row("exit code", format!("{:?}", self.exit_code));
        t
    }
}

/// `logferry_tail_rescans_total{reason="…"} n` lines of a `/metrics` text.
fn rescans(metrics: &str) -> HashMap<String, u64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("logferry_tail_rescans_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once("\"}")?;
            Some((reason.to_string(), rest.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// Runs `fanout`.
///
/// # Errors
/// A process fails or a file operation fails.
pub async fn run_fanout(
    bins: &Binaries,
    opts: &FanoutOptions,
    work: &Path,
) -> Result<FanoutResult> {
    let scratch = harness::fresh_dir(work, "fanout")?;
    let tree = scratch.join("tree");
    std::fs::create_dir_all(tree.join("var/log/pods"))?;
    std::fs::create_dir_all(tree.join("var/log/containers"))?;
    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let http = reqwest::Client::new();
    let (logferry, config) = start_daemon(bins, &tree, &scratch, &double)?;
    logferry.wait_ready(&http, "fanout").await?;
    let before = logferry.snapshot()?;
    let started = Instant::now();
    let (t, o) = (config.tree.clone(), opts.clone());
    let create_seconds = tokio::task::spawn_blocking(move || -> Result<f64> {
        let t0 = Instant::now();
        for p in 0..o.pods {
            let due = Duration::from_secs_f64(o.seconds * p as f64 / o.pods as f64);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
            let cdir = make_container(&t, &format!("job-{p}"), p as u64)?;
            let mut body = String::new();
            for l in 0..o.lines_per_pod {
                body.push_str(&cri_line(&format!("fanout pod={p} line={l}")));
            }
            std::fs::write(cdir.join("0.log"), body)?;
        }
        Ok(t0.elapsed().as_secs_f64())
    })
    .await??;
    let lines = (opts.pods * opts.lines_per_pod) as u64;
    let stored = harness::wait_until(Duration::from_secs(300), || async {
        stored_docs(&double, &http).await >= lines
    })
    .await;
    let all_stored_seconds = started.elapsed().as_secs_f64();
    let after = logferry.snapshot()?;
    // Late duplicates would arrive within a rescan or two.
    tokio::time::sleep(Duration::from_secs(if stored { 3 } else { 0 })).await;
    let metrics = http
        .get(format!("{}/metrics", logferry.admin))
        .send()
        .await?
        .text()
        .await?;
    let dump = scratch.join("documents.ndjson");
    double.dump_documents(&http, INDEX, &dump).await?;
    let (usage, status) = harness::quit(&http, logferry, Duration::from_secs(60)).await?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    for line in std::fs::read_to_string(&dump)?.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let doc = v.get("_source").unwrap_or(&v);
        if let Some(m) = doc.get("message").and_then(|m| m.as_str()) {
            *seen.entry(m.to_string()).or_default() += 1;
        }
    }
    let (mut missing, mut duplicates) = (0, 0);
    for p in 0..opts.pods {
        for l in 0..opts.lines_per_pod {
            match seen.remove(&format!("fanout pod={p} line={l}")) {
                None => missing += 1,
                Some(n) => duplicates += n - 1,
            }
        }
    }
    Ok(FanoutResult {
        mode: "fanout",
        pods: opts.pods,
        lines,
        create_seconds: round(create_seconds, 2),
        all_stored_seconds: round(all_stored_seconds, 2),
        missing,
        duplicates,
        unexpected: seen.values().sum(),
        cpu_seconds: round(after.cpu.since(before.cpu).total(), 2),
        peak_rss_mib: round(mib(usage.peak_rss_bytes.max(after.peak_rss_bytes)), 1),
        rescans: rescans(&metrics),
        exit_code: status.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_split_after_an_f_line_never_inside_p_chunks() {
        let body = b"t stdout F a\nt stdout P b1\nt stdout P b2\nt stdout F b3\nt stdout F c\n";
        let cut = split_point(body);
        assert_eq!(
            &body[..cut],
            b"t stdout F a\nt stdout P b1\nt stdout P b2\nt stdout F b3\n"
        );
        assert_eq!(
            split_point(b"t stdout F only\n"),
            0,
            "nothing left for 0.log"
        );
        assert_eq!(split_point(b""), 0);
    }

    #[test]
    fn rescans_are_read_from_metrics_text() {
        let m = "# TYPE logferry_tail_rescans_total counter\n\
                 logferry_tail_rescans_total{reason=\"interval\"} 12\n\
                 logferry_tail_rescans_total{reason=\"inotify_overflow\"} 1\n";
        let r = rescans(m);
        assert_eq!(r["interval"], 12);
        assert_eq!(r["inotify_overflow"], 1);
    }
}
