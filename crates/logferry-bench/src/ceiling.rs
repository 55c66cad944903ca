//! `es-ceiling`: the double alone, driven by a simple client with pre-encoded bulk bodies, to show
//! it is not the bottleneck of the other modes.

use crate::generate::{self, json_escape_into, Corpus, SplitMix64};
use crate::harness::{self, round, Binaries, EsDouble};
use crate::report::Table;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

const INDEX: &str = "logferry-ceiling";

/// Figures of the double's ceiling.
#[derive(Clone, Debug, Serialize)]
pub struct CeilingResult {
    /// `es-ceiling`.
    pub mode: &'static str,
    /// Documents sent (unique `_id`s, `create` actions).
    pub docs: u64,
    /// Documents per bulk request.
    pub batch: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Bodies gzip-compressed.
    pub gzip: bool,
    /// Uncompressed bulk body bytes sent, MB (10^6).
    pub body_mb: f64,
    /// First request to last response, seconds.
    pub wall_seconds: f64,
    /// Documents per second.
    pub docs_per_second: f64,
    /// Uncompressed bulk MB per second.
    pub mb_per_second: f64,
    /// CPU seconds of the double (user + sys).
    pub double_cpu_seconds: f64,
    /// Documents per CPU-second of the double (its cost, robust to a busy machine).
    pub docs_per_double_cpu_second: f64,
    /// Peak RSS of the double, MiB.
    pub double_peak_rss_mib: f64,
    /// Documents the double holds afterwards.
    pub stored: u64,
}

impl CeilingResult {
    /// The printed table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "es-ceiling: the double alone, {} docs, {} per bulk, {} in flight, gzip {}",
            self.docs,
            self.batch,
            self.concurrency,
            if self.gzip { "on" } else { "off" }
        ));
        t.row(
            "bulk bytes (uncompressed)",
            format!("{:.1} MB", self.body_mb),
        );
        t.row("wall", format!("{:.2} s", self.wall_seconds));
        t.row("documents/s", format!("{:.0}", self.docs_per_second));
        t.row("bulk MB/s", format!("{:.1}", self.mb_per_second));
        t.row(
            "double CPU",
            format!(
                "{:.2} s ({:.0} documents per CPU-second)",
                self.double_cpu_seconds, self.docs_per_double_cpu_second
            ),
        );
        t.row(
            "double peak RSS",
            format!("{:.1} MiB", self.double_peak_rss_mib),
        );
        t.row("stored", self.stored.to_string());
        t
    }
}

/// Appends one ECS-shaped document like those logferry writes (about the same size and nesting).
fn push_document(
    out: &mut Vec<u8>,
    rng: &mut SplitMix64,
    corpus: &Corpus,
    msg: &mut Vec<u8>,
    n: u64,
) {
    let nanos = 1_795_334_400_000_000_000 + n * 1_000_003;
    let (_, stderr) = generate::build_message(rng, corpus, nanos, false, msg);
    out.extend_from_slice(b"{\"@timestamp\":\"2026-11-22T08:00:00.");
    let _ = write!(out, "{:09}", nanos % 1_000_000_000);
    out.extend_from_slice(b"Z\",\"message\":\"");
    json_escape_into(out, msg);
    let pod = n % 50;
    let _ = write!(
        out,
        "\",\"stream\":\"{}\",\"log\":{{\"file\":{{\"path\":\"/var/log/pods/default_app-{pod}-7d9f8b6c4-x2x9z_0f6c1a52-3a4b-4c5d-8e9f-{pod:012}/app/0.log\"}},\"offset\":{}}},\
\"kubernetes\":{{\"namespace\":\"default\",\"pod\":{{\"name\":\"app-{pod}-7d9f8b6c4-x2x9z\",\"uid\":\"0f6c1a52-3a4b-4c5d-8e9f-{pod:012}\"}},\"node\":{{\"name\":\"bench-node\"}},\"container\":{{\"name\":\"app\"}}}},\
\"container\":{{\"id\":\"{pod:064}\",\"runtime\":\"containerd\"}},\"host\":{{\"name\":\"bench-node\"}}}}",
        if stderr { "stderr" } else { "stdout" },
        n * 231
    );
}

/// Pre-encodes `docs` documents into bulk bodies of `batch` `create` actions with unique `_id`s.
fn bodies(corpus: &Corpus, docs: u64, batch: usize, gzip: bool) -> Result<(Vec<Bytes>, u64)> {
    let mut rng = SplitMix64::new(7);
    let mut msg = Vec::new();
    let mut out = Vec::new();
    let mut raw = 0u64;
    let mut body = Vec::with_capacity(batch * 900);
    let mut n = 0u64;
    while n < docs {
        body.clear();
        for _ in 0..batch.min((docs - n) as usize) {
            let _ = writeln!(
                body,
                "{{\"create\":{{\"_index\":\"{INDEX}\",\"_id\":\"bench-{n:012}\"}}}}"
            );
            push_document(&mut body, &mut rng, corpus, &mut msg, n);
            body.push(b'\n');
            n += 1;
        }
        raw += body.len() as u64;
        if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&body)?;
            out.push(Bytes::from(enc.finish()?));
        } else {
            out.push(Bytes::copy_from_slice(&body));
        }
    }
    Ok((out, raw))
}

/// Measures the double's ceiling.
///
/// # Errors
/// The corpus or double cannot be used, or the double answers a bulk request with an error.
pub async fn run(
    bins: &Binaries,
    corpus_dir: &Path,
    docs: u64,
    batch: usize,
    concurrency: usize,
    gzip: bool,
    work: &Path,
) -> Result<CeilingResult> {
    let corpus = Corpus::load(corpus_dir)?;
    let (bodies, raw_bytes) = bodies(&corpus, docs, batch, gzip)?;
    let scratch = harness::fresh_dir(work, "es-ceiling")?;
    let double = EsDouble::start(&bins.es_double, &scratch)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = double.cpu()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, bodies, next, url) = (
            http.clone(),
            bodies.clone(),
            next.clone(),
            format!("{}/_bulk", double.url),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut req = http
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone());
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                let resp = req.send().await.context("bulk request to the double")?;
                let status = resp.status();
                let text = resp.bytes().await?;
                if !status.is_success()
                    || memchr::memmem::find(&text[..text.len().min(128)], b"\"errors\":true")
                        .is_some()
                {
                    bail!(
                        "the double answered {status}: {}",
                        String::from_utf8_lossy(&text[..text.len().min(300)])
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = double.cpu()?.since(cpu_before);
    let peak = crate::procstat::memory(double.pid()).map_or(0, |(hwm, _)| hwm);
    let stored = double.count(&http, INDEX).await?;
    Ok(CeilingResult {
        mode: "es-ceiling",
        docs,
        batch,
        concurrency,
        gzip,
        body_mb: round(raw_bytes as f64 / 1e6, 1),
        wall_seconds: round(wall, 3),
        docs_per_second: round(docs as f64 / wall, 0),
        mb_per_second: round(raw_bytes as f64 / 1e6 / wall, 1),
        double_cpu_seconds: round(cpu.total(), 2),
        docs_per_double_cpu_second: round(docs as f64 / cpu.total().max(0.001), 0),
        double_peak_rss_mib: round(harness::mib(peak), 1),
        stored,
    })
}
