//! `compress`: gzip back-ends and levels on real bulk bodies (issue 14, goal 2).
//!
//! The bodies are built the way logferry builds them: the generator's messages (Loghub text,
//! 70 % wrapped in JSON application-log objects, 0.05 % JSON errors over 16 KiB) become
//! [`Record`]s of 50 kubelet-layout files, encoded as ECS documents by logferry's own
//! [`DocumentEncoder`] after a `create` action line with the document's `_id`, and cut like the
//! default batching (1,000 documents or 5 MiB, whichever comes first). No pod metadata: the
//! `throughput` runs ship with `kubernetes.enabled: false`, so documents carry what the path gives.
//!
//! Each back-end compresses every body into a standard gzip stream (RFC 1952), on this thread;
//! the CPU time is the thread's own (`/proc/thread-self/schedstat`, nanoseconds), so other
//! processes on the machine do not count. Every output is checked by decompressing it with
//! `flate2`'s `GzDecoder` and comparing with the body.

use crate::generate::{self, Corpus, SplitMix64};
use crate::report::Table;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use logferry_core::{
    AckToken, FileId, KubeLogPath, LogFormat, Record, RecordBatch, RecordFlags, Source, SourceId,
    Stream,
};
use logferry_elasticsearch::{DocumentEncoder, DocumentOptions, Schema};
use serde::Serialize;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index name written in every action line (the `throughput` runs' index).
const INDEX: &str = "logferry-bench";
/// The default batching of logferry: documents per bulk request.
const BATCH_DOCS: usize = 1000;
/// The default batching of logferry: bytes per bulk request.
const BATCH_BYTES: usize = 5 * 1024 * 1024;

/// A gzip implementation.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// `miniz_oxide` (flate2's default back-end), raw deflate wrapped in a gzip header and
    /// trailer as flate2's `GzEncoder` does.
    MinizOxide,
    /// `zlib-rs` (flate2 feature `zlib-rs`; a Rust port of zlib-ng), `window_bits` 31 = gzip.
    ZlibRs,
    /// `libdeflater` (libdeflate, C, whole-buffer only).
    Libdeflate,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::MinizOxide => "miniz_oxide",
            Backend::ZlibRs => "zlib-rs",
            Backend::Libdeflate => "libdeflate",
        }
    }

    /// The levels compared.
    fn levels(self) -> &'static [u32] {
        match self {
            Backend::MinizOxide | Backend::ZlibRs => &[1, 2, 3, 4, 6, 9],
            Backend::Libdeflate => &[1, 2, 3, 4, 6, 9, 12],
        }
    }
}

/// One back-end at one level over every body.
#[derive(Clone, Debug, Serialize)]
pub struct CompressRow {
    /// Back-end.
    pub backend: Backend,
    /// Compression level as the back-end counts them.
    pub level: u32,
    /// Thread CPU seconds to compress every body once (best of the passes).
    pub cpu_seconds: f64,
    /// MB (10^6 bytes) of uncompressed body per CPU-second.
    pub body_mb_per_cpu_second: f64,
    /// Compressed bytes / body bytes.
    pub ratio: f64,
    /// Compressed MB (10^6 bytes) on the wire in total.
    pub wire_mb: f64,
}

/// Figures of the `compress` mode.
#[derive(Clone, Debug, Serialize)]
pub struct CompressResult {
    /// `compress`.
    pub mode: &'static str,
    /// Documents encoded.
    pub docs: u64,
    /// Bulk bodies.
    pub bodies: usize,
    /// Uncompressed body bytes, MB (10^6).
    pub body_mb: f64,
    /// Source message bytes, MB (10^6): what the documents carry as `message`.
    pub message_mb: f64,
    /// Passes per back-end and level (the best one is reported).
    pub passes: usize,
    /// One row per back-end and level.
    pub rows: Vec<CompressRow>,
}

impl CompressResult {
    /// The printed table: one row per back-end and level.
    pub fn table(&self) -> Table {
        let mut t = Table::new(format!(
            "compress: {} bulk bodies ({} documents, {:.1} MB, mean {:.0} KB), best of {} passes, thread CPU",
            self.bodies,
            self.docs,
            self.body_mb,
            self.body_mb * 1e3 / self.bodies as f64,
            self.passes
        ));
        for r in &self.rows {
            t.row(
                format!("{} level {}", r.backend.name(), r.level),
                format!(
                    "{:.1} MB per CPU-second ({:.3} CPU s), ratio {:.3} ({:.1} MB on the wire)",
                    r.body_mb_per_cpu_second, r.cpu_seconds, r.ratio, r.wire_mb
                ),
            );
        }
        t
    }
}

/// CPU time of the calling thread so far, seconds, from `/proc/thread-self/schedstat`
/// (first field: nanoseconds on the CPU; proc(5)).
fn thread_cpu_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("failed to read /proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .context("unexpected /proc/thread-self/schedstat")?;
    Ok(ns as f64 / 1e9)
}

/// Builds `docs` documents into bulk bodies the way logferry's batcher does.
///
/// # Errors
/// The corpus cannot be read.
pub fn bodies(corpus: &Path, docs: u64, seed: u64) -> Result<(Vec<Vec<u8>>, u64)> {
    let corpus = Corpus::load(corpus)?;
    let mut rng = SplitMix64::new(seed);
    let files = generate::layout(&mut rng, 50);
    let sources: Vec<Arc<Source>> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let path = PathBuf::from("/").join(&f.path);
            let id = f
                .link
                .rsplit('-')
                .next()
                .unwrap_or("")
                .trim_end_matches(".log");
            Arc::new(Source {
                id: SourceId(i as u64),
                file: FileId {
                    dev: 2049,
                    ino: 10_000 + i as u64,
                    fingerprint: rng.next_u64(),
                },
                kube: KubeLogPath::parse(&path),
                path,
                container_id: Some(id.to_owned()),
                format: LogFormat::Cri,
            })
        })
        .collect();
    let mut encoder = DocumentEncoder::new(DocumentOptions {
        schema: Schema::Ecs,
        host_name: Some("bench-node".into()),
        id_scope: "bench-node".into(),
        ..DocumentOptions::default()
    });
    let mut offsets = vec![0u64; sources.len()];
    let mut msg = Vec::new();
    let mut out = Vec::new();
    let mut body = Vec::with_capacity(BATCH_BYTES + (1 << 20));
    let mut in_body = 0usize;
    let mut message_bytes = 0u64;
    for n in 0..docs {
        let f = rng.below(sources.len() as u64) as usize;
        let nanos = 1_795_334_400_000_000_000 + n * 1_000_003;
        let long = rng.chance(500);
        let (_, stderr) = generate::build_message(&mut rng, &corpus, nanos, long, &mut msg);
        message_bytes += msg.len() as u64;
        let start = offsets[f];
        offsets[f] += msg.len() as u64 + 45;
        let batch = RecordBatch {
            source: sources[f].clone(),
            ack: AckToken {
                source: sources[f].id,
                seq: n,
            },
            records: vec![Record {
                start,
                end: offsets[f],
                timestamp_nanos: nanos as i64,
                stream: if stderr {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                flags: RecordFlags::NONE,
                message: Bytes::copy_from_slice(&msg),
            }],
            meta: None,
        };
        let record = &batch.records[0];
        let item_start = body.len();
        body.extend_from_slice(b"{\"create\":{\"_index\":\"");
        body.extend_from_slice(INDEX.as_bytes());
        body.extend_from_slice(b"\",\"_id\":\"");
        body.extend_from_slice(&DocumentEncoder::document_id_in(
            "bench-node",
            &batch.source,
            record,
        ));
        body.extend_from_slice(b"\"}}\n");
        encoder.encode(&batch, record, &mut body);
        body.push(b'\n');
        in_body += 1;
        if body.len() > BATCH_BYTES && in_body > 1 {
            // The batcher cuts before the item that crosses the byte limit.
            let item = body.split_off(item_start);
            out.push(std::mem::replace(&mut body, item));
            in_body = 1;
        }
        if in_body == BATCH_DOCS {
            out.push(std::mem::take(&mut body));
            in_body = 0;
        }
    }
    if !body.is_empty() {
        out.push(body);
    }
    Ok((out, message_bytes))
}

/// gzip of `body` by `backend` at `level`, appended to `out` (cleared first).
///
/// # Errors
/// The back-end refuses the level or fails.
pub fn gzip(
    backend: Backend,
    level: u32,
    body: &[u8],
    out: &mut Vec<u8>,
    libdeflate: &mut Option<(u32, libdeflater::Compressor)>,
) -> Result<()> {
    out.clear();
    match backend {
        Backend::MinizOxide => {
            // RFC 1952 header as flate2 writes it: no name, no mtime, OS unknown.
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
            out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(body, level as u8));
            out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        }
        Backend::ZlibRs => {
            out.resize(body.len() + body.len() / 8 + 1024, 0);
            let config = zlib_rs::DeflateConfig {
                window_bits: 31,
                ..zlib_rs::DeflateConfig::new(level as i32)
            };
            let (written, rc) = zlib_rs::compress_slice(out, body, config);
            if rc != zlib_rs::ReturnCode::Ok {
                bail!("zlib-rs level {level}: {rc:?}");
            }
            let n = written.len();
            out.truncate(n);
        }
        Backend::Libdeflate => {
            if libdeflate.as_ref().is_none_or(|(l, _)| *l != level) {
                let lvl = libdeflater::CompressionLvl::new(level as i32)
                    .map_err(|e| anyhow::anyhow!("libdeflate level {level}: {e:?}"))?;
                *libdeflate = Some((level, libdeflater::Compressor::new(lvl)));
            }
            let c = &mut libdeflate.as_mut().expect("set above").1;
            out.resize(c.gzip_compress_bound(body.len()), 0);
            let n = c
                .gzip_compress(body, out)
                .map_err(|e| anyhow::anyhow!("libdeflate level {level}: {e:?}"))?;
            out.truncate(n);
        }
    }
    Ok(())
}

/// Builds the bodies, then compresses them with every back-end and level, `passes` times each.
///
/// # Errors
/// The corpus cannot be read, a back-end fails, or an output does not decompress to its body.
pub fn run(corpus: &Path, docs: u64, passes: usize) -> Result<CompressResult> {
    let (bodies, message_bytes) = bodies(corpus, docs, 20261204)?;
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();
    let mut rows = Vec::new();
    let mut out = Vec::with_capacity(BATCH_BYTES * 2);
    let mut check = Vec::with_capacity(BATCH_BYTES * 2);
    let mut libdeflate = None;
    for backend in [Backend::MinizOxide, Backend::ZlibRs, Backend::Libdeflate] {
        for &level in backend.levels() {
            // Correctness first (not timed): every body round-trips through a standard decoder.
            let mut wire = 0usize;
            for body in &bodies {
                gzip(backend, level, body, &mut out, &mut libdeflate)?;
                wire += out.len();
                check.clear();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut check)
                    .with_context(|| format!("{} level {level}: bad gzip", backend.name()))?;
                if check != *body {
                    bail!(
                        "{} level {level}: output does not decompress to the body",
                        backend.name()
                    );
                }
            }
            let mut best = f64::MAX;
            for _ in 0..passes {
                let cpu0 = thread_cpu_seconds()?;
                for body in &bodies {
                    gzip(backend, level, body, &mut out, &mut libdeflate)?;
                    std::hint::black_box(&out);
                }
                best = best.min(thread_cpu_seconds()? - cpu0);
            }
            let row = CompressRow {
                backend,
                level,
                cpu_seconds: best,
                body_mb_per_cpu_second: body_bytes as f64 / 1e6 / best,
                ratio: wire as f64 / body_bytes as f64,
                wire_mb: wire as f64 / 1e6,
            };
            eprintln!(
                "{:<12} level {:>2}: {:>7.1} MB/CPU-s, ratio {:.3}",
                backend.name(),
                level,
                row.body_mb_per_cpu_second,
                row.ratio
            );
            rows.push(row);
        }
    }
    Ok(CompressResult {
        mode: "compress",
        docs,
        bodies: bodies.len(),
        body_mb: body_bytes as f64 / 1e6,
        message_mb: message_bytes as f64 / 1e6,
        passes,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/corpus/loghub"
        ))
    }

    #[test]
    fn bodies_are_cut_like_the_batcher_and_hold_action_document_pairs() {
        let (bodies, _) = bodies(&corpus_dir(), 2_500, 1).unwrap();
        assert_eq!(bodies.len(), 3);
        for (i, b) in bodies.iter().enumerate() {
            let lines: Vec<&[u8]> = b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), if i < 2 { 2_000 } else { 1_000 });
            for pair in lines.chunks(2) {
                let action: serde_json::Value = serde_json::from_slice(pair[0]).unwrap();
                assert_eq!(action["create"]["_index"], INDEX);
                let doc: serde_json::Value = serde_json::from_slice(pair[1]).unwrap();
                assert!(doc["message"].is_string(), "{doc}");
            }
        }
    }

    #[test]
    fn every_backend_and_level_writes_gzip_that_decompresses_to_the_body() {
        let (bodies, _) = bodies(&corpus_dir(), 300, 2).unwrap();
        let mut out = Vec::new();
        let mut lib = None;
        for backend in [Backend::MinizOxide, Backend::ZlibRs, Backend::Libdeflate] {
            for &level in backend.levels() {
                gzip(backend, level, &bodies[0], &mut out, &mut lib).unwrap();
                assert!(out.len() < bodies[0].len() / 2, "{backend:?} {level}");
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, bodies[0], "{backend:?} {level}");
            }
        }
    }
}
