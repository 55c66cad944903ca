//! `live`: writers append at a fixed rate (5 MB/s in all by default) across 50 files, rotating each
//! file the way kubelet does when it reaches 10 MB, while logferry runs as a daemon. Every line
//! carries its write time (`lfb_wt=<ns since epoch>`); a recording proxy between logferry and the
//! double notes, for every item the double answers `201 Created`, the time the double's response
//! passed back through it. Delay = that time − write time. Also reports CPU per MB written.
//!
//! Rotation follows kubelet's `rotateLatestLog` (`node-log-formats.md` §4): rename `0.log` to
//! `0.log.<YYYYMMDD-HHMMSS>` and reopen a fresh `0.log`; at most 4 rotated files are kept (the
//! oldest is deleted). Unlike kubelet, rotated files are not gzip-compressed (logferry does not
//! read `.gz` files; compression would only cost the writer time).

use crate::generate::{self, Corpus, SplitMix64};
use crate::harness::{self, mib, round, Binaries, EsDouble, Logferry, LogferryConfig};
use crate::report::Table;
use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INDEX: &str = "logferry-live";
/// Marker that precedes the write time in every line.
const MARKER: &[u8] = b"lfb_wt=";

/// What to run.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Writing time, seconds.
    pub seconds: u64,
    /// Total write rate, bytes per second.
    pub rate_bytes: u64,
    /// Files written.
    pub files: usize,
    /// A file is rotated when it reaches this size, bytes.
    pub rotate_bytes: u64,
    /// One `write(2)` per line, as a container runtime writes (else one write per file per
    /// 10 ms tick).
    pub per_line: bool,
    /// Rotated files kept next to the active one (kubelet's `containerLogMaxFiles` − 1).
    pub keep_rotated: usize,
    /// gzip every rotated file but the newest, as kubelet does.
    pub gzip_rotated: bool,
}

/// Figures of a live run.
#[derive(Clone, Debug, Serialize)]
pub struct LiveResult {
    /// `live`.
    pub mode: &'static str,
    /// Files written.
    pub files: usize,
    /// Writing time, seconds.
    pub seconds: f64,
    /// Target rate, MB/s.
    pub target_mb_per_second: f64,
    /// Achieved rate, MB/s.
    pub written_mb_per_second: f64,
    /// Bytes written, MB.
    pub written_mb: f64,
    /// Lines written.
    pub lines: u64,
    /// Rotations performed.
    pub rotations: u64,
    /// Rotation size, MB.
    pub rotate_mb: f64,
    /// Documents the double holds after the drain.
    pub documents: u64,
    /// lines − documents.
    pub missing: i64,
    /// Items the double answered 409 (seen by the proxy).
    pub duplicates: u64,
    /// Delay samples (items answered 201).
    pub delay_samples: u64,
    /// Median write → stored delay, ms.
    pub delay_p50_ms: f64,
    /// 90th percentile, ms.
    pub delay_p90_ms: f64,
    /// 99th percentile, ms (budget: < 1000).
    pub delay_p99_ms: f64,
    /// Largest delay, ms.
    pub delay_max_ms: f64,
    /// Lines stored more than 1 s after they were written.
    pub delays_over_1s: u64,
    /// `lfb_id` (`<file index>-<line seq>`) of the slowest line.
    pub slowest_line: String,
    /// When the slowest line was written, seconds after the writers started.
    pub slowest_line_written_at_seconds: f64,
    /// The last line (`<file index>-<line seq>`) written before each rotation, to match against
    /// `slowest_line`.
    pub rotation_points: Vec<String>,
    /// logferry CPU seconds from the first write until everything was stored.
    pub cpu_seconds: f64,
    /// CPU seconds per MB written.
    pub cpu_seconds_per_mb: f64,
    /// CPU microseconds per line written.
    pub cpu_us_per_line: f64,
    /// One `write(2)` per line.
    pub per_line_writes: bool,
    /// MB written per CPU second.
    pub mb_per_cpu_second: f64,
    /// Peak RSS (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Exit code after `POST /quitquitquit`.
    pub exit_code: Option<i32>,
}

impl LiveResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "live: {:.1} MB/s across {} files for {:.0} s, rotation every {:.0} MB",
            self.target_mb_per_second, self.files, self.seconds, self.rotate_mb
        ));
        t.row(
            "written",
            format!(
                "{} lines, {:.1} MB ({:.2} MB/s), {} rotations",
                self.lines, self.written_mb, self.written_mb_per_second, self.rotations
            ),
        );
        t.row(
            "documents / missing / duplicates",
            format!(
                "{} / {} / {}",
                self.documents, self.missing, self.duplicates
            ),
        );
        t.row(
            "delay p50 / p90 / p99 / max",
            format!(
                "{:.0} / {:.0} / {:.0} / {:.0} ms",
                self.delay_p50_ms, self.delay_p90_ms, self.delay_p99_ms, self.delay_max_ms
            ),
        );
        t.row(
            "lines stored > 1 s after the write",
            format!(
                "{} (slowest: line {} written at {:.2} s; rotations after lines {:?})",
                self.delays_over_1s,
                self.slowest_line,
                self.slowest_line_written_at_seconds,
                self.rotation_points
            ),
        );
        t.row(
            "CPU",
            format!(
                "{:.2} s ({:.4} s per MB, {:.1} MB per CPU-second, {:.1} µs per line)",
                self.cpu_seconds,
                self.cpu_seconds_per_mb,
                self.mb_per_cpu_second,
                self.cpu_us_per_line
            ),
        );
        t.row("peak RSS (VmHWM)", format!("{:.1} MiB", self.peak_rss_mib));
        t.row(
            "exit code after /quitquitquit",
            format!("{:?}", self.exit_code),
        );
        t
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What the proxy saw.
#[derive(Default)]
struct Recorder {
    delays_ns: Vec<u64>,
    /// The slowest line: (delay ns, its `lfb_id`, its write time ns).
    slowest: Option<(u64, String, u64)>,
    conflicts: u64,
    unparsed: u64,
}

#[derive(Clone)]
struct Proxy {
    http: reqwest::Client,
    upstream: String,
    recorder: Arc<Mutex<Recorder>>,
}

fn gunzip_if(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    let gz = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if gz {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    } else {
        Some(body.to_vec())
    }
}

/// The write time carried by a document source: the digits after `lfb_wt=`.
fn write_time(source: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(source, MARKER)? + MARKER.len();
    let digits = source[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&source[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The `lfb_id=<file>-<seq>` of a document source (empty if absent).
fn line_id(source: &[u8]) -> String {
    memchr::memmem::find(source, b"lfb_id=")
        .map(|at| {
            let rest = &source[at + 7..];
            let n = rest
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'-')
                .count();
            String::from_utf8_lossy(&rest[..n]).into_owned()
        })
        .unwrap_or_default()
}

/// Pairs the bulk request's documents with the response items; records the delay of each `201`.
fn record(
    recorder: &Mutex<Recorder>,
    req_headers: &HeaderMap,
    req: &[u8],
    resp_headers: &HeaderMap,
    resp: &[u8],
    now: u64,
) {
    let (Some(req), Some(resp)) = (gunzip_if(req_headers, req), gunzip_if(resp_headers, resp))
    else {
        recorder.lock().unparsed += 1;
        return;
    };
    let Ok(resp) = serde_json::from_slice::<serde_json::Value>(&resp) else {
        recorder.lock().unparsed += 1;
        return;
    };
    let Some(items) = resp["items"].as_array() else {
        return;
    };
    let mut lines = req.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut delays = Vec::with_capacity(items.len());
    let mut slowest: Option<(u64, &[u8], u64)> = None;
    let mut conflicts = 0;
    for item in items {
        let (Some(_action), Some(source)) = (lines.next(), lines.next()) else {
            break;
        };
        let status = item
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v["status"].as_u64())
            .unwrap_or(0);
        match status {
            201 => {
                if let Some(wt) = write_time(source) {
                    let d = now.saturating_sub(wt);
                    delays.push(d);
                    if slowest.is_none_or(|(s, _, _)| d > s) {
                        slowest = Some((d, source, wt));
                    }
                }
            }
            409 => conflicts += 1,
            _ => {}
        }
    }
    let mut r = recorder.lock();
    r.delays_ns.extend_from_slice(&delays);
    if let Some((d, source, wt)) = slowest {
        if r.slowest.as_ref().is_none_or(|(s, _, _)| d > *s) {
            r.slowest = Some((d, line_id(source), wt));
        }
    }
    r.conflicts += conflicts;
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bad = |msg: String| {
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(msg))
            .expect("static response")
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return bad(format!("proxy: reading request body: {e}")),
    };
    let url = format!(
        "{}{}",
        p.upstream,
        parts.uri.path_and_query().map_or("/", |x| x.as_str())
    );
    let mut rb = p.http.request(parts.method.clone(), url);
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            rb = rb.header(k, v);
        }
    }
    let resp = match rb.body(body.clone()).send().await {
        Ok(r) => r,
        Err(e) => return bad(format!("proxy: upstream: {e}")),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let rbody: Bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return bad(format!("proxy: upstream body: {e}")),
    };
    let now = now_nanos();
    if status.is_success() && parts.uri.path().ends_with("/_bulk") {
        record(&p.recorder, &parts.headers, &body, &headers, &rbody, now);
    }
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING && k != header::CONNECTION
        {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(rbody))
        .unwrap_or_else(|e| bad(format!("proxy: response: {e}")))
}

/// Starts the recording proxy on a free loopback port; returns its URL.
async fn start_proxy(upstream: &str, recorder: Arc<Mutex<Recorder>>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = Proxy {
        http: reqwest::Client::new(),
        upstream: upstream.to_string(),
        recorder,
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// kubelet's rotation suffix (`20060102-150405`, UTC) for `nanos` since the epoch.
fn rotation_suffix(nanos: u64) -> String {
    let mut v = Vec::new();
    generate::push_rfc3339_nano_trimmed(&mut v, nanos / 1_000_000_000 * 1_000_000_000);
    // "2026-11-22T08:00:00Z" → "20261122-080000"
    let s = String::from_utf8_lossy(&v);
    let (date, time) = s.trim_end_matches('Z').split_once('T').unwrap_or(("", ""));
    format!("{}-{}", date.replace('-', ""), time.replace(':', ""))
}

/// One live file and its writer state.
struct LiveFile {
    path: PathBuf,
    file: File,
    size: u64,
    written: u64,
    rate: u64,
    seq: u64,
    rotated: VecDeque<PathBuf>,
    keep_rotated: usize,
    gzip_rotated: bool,
}

/// kubelet's compression of a rotated file: `<path>.gz` written, the original removed.
fn gzip_file(path: &Path) -> Result<PathBuf> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.tmp", gz.display()));
    let mut input = File::open(path)?;
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&tmp)?, flate2::Compression::default());
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.sync_all()?;
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(path)?;
    Ok(gz)
}

impl LiveFile {
    /// kubelet-style rotation; returns false (and does nothing) if the rotated name exists (a
    /// second rotation within the same second: retried on a later tick, as kubelet would).
    fn rotate(&mut self) -> Result<bool> {
        let target = PathBuf::from(format!(
            "{}.{}",
            self.path.display(),
            rotation_suffix(now_nanos())
        ));
        if target.exists() {
            return Ok(false);
        }
        // removeExcessLogs: keep MaxFiles − 2 rotated before adding the new one.
        while self.rotated.len() >= self.keep_rotated {
            if let Some(old) = self.rotated.pop_front() {
                std::fs::remove_file(&old)
                    .with_context(|| format!("removing {}", old.display()))?;
            }
        }
        std::fs::rename(&self.path, &target)
            .with_context(|| format!("rotating {}", self.path.display()))?;
        // The runtime reopens the log path (ReopenContainerLog).
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // compressLog: every rotated file but the newest is gzipped.
        if self.gzip_rotated {
            if let Some(prev) = self.rotated.back_mut() {
                if prev.extension().is_none_or(|e| e != "gz") {
                    *prev = gzip_file(prev)
                        .with_context(|| format!("compressing {}", prev.display()))?;
                }
            }
        }
        self.rotated.push_back(target);
        self.size = 0;
        Ok(true)
    }
}

/// Totals of the writer.
struct Written {
    rotation_points: Vec<String>,
    lines: u64,
    bytes: u64,
    rotations: u64,
    seconds: f64,
}

fn write_for(
    files: &mut [LiveFile],
    corpus: &Corpus,
    seconds: u64,
    rotate_bytes: u64,
    per_line: bool,
) -> Result<Written> {
    let mut rng = SplitMix64::new(99);
    let mut msg = Vec::with_capacity(4096);
    let mut buf = Vec::with_capacity(1 << 16);
    let (mut lines, mut bytes, mut rotations) = (0u64, 0u64, 0u64);
    let mut rotation_points = Vec::new();
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let elapsed = now.duration_since(started).as_secs_f64();
        for (i, f) in files.iter_mut().enumerate() {
            let target = (f.rate as f64 * elapsed) as u64;
            buf.clear();
            while f.written + (buf.len() as u64) < target {
                let wt = now_nanos();
                let (_, stderr) = generate::build_message(&mut rng, corpus, wt, false, &mut msg);
                let mut m = Vec::with_capacity(msg.len() + 48);
                let _ = write!(m, "lfb_wt={wt} lfb_id={i}-{} ", f.seq);
                m.extend_from_slice(&msg);
                let at = buf.len();
                generate::push_cri_lines(&mut buf, wt, stderr, &m);
                f.seq += 1;
                lines += 1;
                if per_line {
                    // One write(2) per line, as a runtime writes.
                    f.file
                        .write_all(&buf[at..])
                        .with_context(|| format!("writing {}", f.path.display()))?;
                }
            }
            if !buf.is_empty() {
                if !per_line {
                    f.file
                        .write_all(&buf)
                        .with_context(|| format!("writing {}", f.path.display()))?;
                }
                f.written += buf.len() as u64;
                f.size += buf.len() as u64;
                bytes += buf.len() as u64;
            }
            if f.size >= rotate_bytes && f.rotate()? {
                rotations += 1;
                rotation_points.push(format!("{i}-{}", f.seq.saturating_sub(1)));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Written {
        rotation_points,
        lines,
        bytes,
        rotations,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

/// Runs the live measurement.
///
/// # Errors
/// Setup fails, a process fails, or logferry does not become ready.
pub async fn run(
    bins: &Binaries,
    corpus_dir: &Path,
    opts: &LiveOptions,
    work: &Path,
) -> Result<LiveResult> {
    let corpus = Arc::new(Corpus::load(corpus_dir)?);
    let scratch = harness::fresh_dir(work, "live")?;
    let tree = scratch.join("tree");
    let mut rng = SplitMix64::new(5);
    let layout = generate::layout(&mut rng, opts.files);
    let rates = generate::distribute(&mut rng, opts.rate_bytes, opts.files);
    let mut files = Vec::new();
    std::fs::create_dir_all(tree.join("var/log/containers"))?;
    for (l, rate) in layout.iter().zip(rates) {
        let path = tree.join(&l.path);
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let depth = l.link.matches('/').count();
        std::os::unix::fs::symlink(
            format!("{}{}", "../".repeat(depth), l.path),
            tree.join(&l.link),
        )?;
        files.push(LiveFile {
            path,
            file,
            size: 0,
            written: 0,
            rate,
            seq: 0,
            rotated: VecDeque::new(),
            keep_rotated: opts.keep_rotated,
            gzip_rotated: opts.gzip_rotated,
        });
    }

    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let proxy = start_proxy(&double.url, recorder.clone()).await?;
    let http = reqwest::Client::new();
    let config = LogferryConfig {
        tree: tree.clone(),
        data_dir: scratch.join("data"),
        endpoint: proxy,
        index: INDEX.into(),
        gzip: false,
        gzip_level: None,
        admin_port: harness::free_port()?,
    };
    let logferry = Logferry::start(&bins.logferry, &config, false, &scratch)?;
    logferry.wait_ready(&http, "live").await?;
    let before = logferry.snapshot()?;
    let write_start = now_nanos();
    let (seconds, rotate_bytes, per_line) = (opts.seconds, opts.rotate_bytes, opts.per_line);
    let writer = {
        let corpus = corpus.clone();
        tokio::task::spawn_blocking(move || {
            write_for(&mut files, &corpus, seconds, rotate_bytes, per_line)
        })
    };
    let written = writer.await??;
    // Poll the double's counters, not `_count`: a `_count` scans the whole
    // store under its lock and, polled while the last bulk requests are in
    // flight, delays them by seconds (it made the last lines look 10-17 s
    // late). `created` is a counter read.
    let drained = harness::wait_until(Duration::from_secs(60), || async {
        double.stats(&http).await["created"]
            .as_u64()
            .is_some_and(|n| n >= written.lines)
    })
    .await;
    if !drained {
        eprintln!("live: not every line arrived within 60 s after the writers stopped");
    }
    let after = logferry.snapshot()?;
    let documents = double.count(&http, INDEX).await?;
    let (usage, status) = harness::quit(&http, logferry, Duration::from_secs(30)).await?;
    let (mut delays, conflicts, unparsed, slowest) = {
        let mut r = recorder.lock();
        (
            std::mem::take(&mut r.delays_ns),
            r.conflicts,
            r.unparsed,
            r.slowest.take(),
        )
    };
    if unparsed > 0 {
        eprintln!("live: {unparsed} bulk exchanges could not be parsed by the proxy");
    }
    delays.sort_unstable();
    let cpu = after.cpu.since(before.cpu).total();
    let mb = written.bytes as f64 / 1e6;
    Ok(LiveResult {
        mode: "live",
        files: opts.files,
        seconds: round(written.seconds, 1),
        target_mb_per_second: round(opts.rate_bytes as f64 / 1e6, 2),
        written_mb_per_second: round(mb / written.seconds, 2),
        written_mb: round(mb, 1),
        lines: written.lines,
        rotations: written.rotations,
        rotate_mb: round(opts.rotate_bytes as f64 / 1e6, 1),
        documents,
        missing: written.lines as i64 - documents as i64,
        duplicates: conflicts,
        delay_samples: delays.len() as u64,
        delay_p50_ms: round(percentile(&delays, 0.50), 1),
        delay_p90_ms: round(percentile(&delays, 0.90), 1),
        delay_p99_ms: round(percentile(&delays, 0.99), 1),
        delay_max_ms: round(percentile(&delays, 1.0), 1),
        delays_over_1s: delays.iter().filter(|&&d| d > 1_000_000_000).count() as u64,
        slowest_line: slowest
            .as_ref()
            .map(|(_, id, _)| id.clone())
            .unwrap_or_default(),
        slowest_line_written_at_seconds: slowest.map_or(0.0, |(_, _, wt)| {
            round(wt.saturating_sub(write_start) as f64 / 1e9, 2)
        }),
        rotation_points: written.rotation_points,
        cpu_seconds: round(cpu, 2),
        cpu_seconds_per_mb: round(if mb > 0.0 { cpu / mb } else { 0.0 }, 4),
        mb_per_cpu_second: round(if cpu > 0.0 { mb / cpu } else { 0.0 }, 1),
        cpu_us_per_line: round(cpu * 1e6 / written.lines.max(1) as f64, 1),
        per_line_writes: opts.per_line,
        peak_rss_mib: round(mib(usage.peak_rss_bytes), 1),
        exit_code: status.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_suffix_is_kubelets_format() {
        assert_eq!(
            rotation_suffix(1_795_334_400_123_000_000 + 3_723 * 1_000_000_000),
            "20261122-090203"
        );
    }

    #[test]
    fn write_time_is_read_from_an_escaped_document() {
        let doc = br#"{"message":"lfb_wt=1795334400123456789 lfb_id=3-17 {\"level\":\"info\"}","stream":"stdout"}"#;
        assert_eq!(write_time(doc), Some(1_795_334_400_123_456_789));
        assert_eq!(write_time(b"{}"), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn proxy_pairs_items_with_documents() {
        let rec = Mutex::new(Recorder::default());
        let req = b"{\"create\":{}}\n{\"message\":\"lfb_wt=100 a\"}\n{\"create\":{}}\n{\"message\":\"lfb_wt=200 b\"}\n{\"create\":{}}\n{\"message\":\"lfb_wt=300 c\"}\n";
        let resp = br#"{"took":1,"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409}},{"create":{"status":201}}]}"#;
        record(&rec, &HeaderMap::new(), req, &HeaderMap::new(), resp, 1_000);
        let r = rec.lock();
        assert_eq!(r.delays_ns, vec![900, 700]);
        assert_eq!(r.conflicts, 1);
    }
}
