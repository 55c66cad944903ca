//! The node log tree generator (`logferry-bench generate`).
//!
//! Writes a kubelet-layout tree (`var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` plus the
//! `var/log/containers/<pod>_<ns>_<container>-<64 hex>.log` symlinks, see
//! the README's "What it guarantees" and <https://kubernetes.io/docs/concepts/cluster-administration/logging/>) whose files hold CRI-framed lines
//! (`<RFC3339Nano> <stream> <P|F> <message>\n`, containerd style: the fraction has its trailing
//! zeros trimmed). Message text is real: lines of the Loghub samples in
//! `tests/corpus/loghub/*.log`, about 70 % of them wrapped in a JSON application-log object, some
//! joined into longer messages, and about 0.05 % grown past 16 KiB and split into `P` chunks of
//! exactly 16,384 message bytes followed by one `F` chunk (containerd's
//! `max_container_log_line_size`).
//!
//! The output is a pure function of (corpus, shape, line count, seed): the PRNG is a hand-written
//! SplitMix64, so the bytes do not change with a `rand` upgrade. `expected.json` at the root of the
//! tree records what a collector must deliver: one document per logical line (`records`), and the
//! source bytes it reads (`bytes`).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// containerd's default `max_container_log_line_size`: longer lines become `P` chunks.
pub const CRI_CHUNK_BYTES: usize = 16 * 1024;

/// Start of the generated clock: 2026-11-22T08:00:00Z, in nanoseconds since the Unix epoch.
const BASE_TIME_NANOS: u64 = 1_795_334_400_000_000_000;

/// How many files the tree has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Shape {
    /// 50 container log files.
    #[value(name = "50x")]
    #[serde(rename = "50x")]
    Files50,
    /// 1,000 container log files.
    #[value(name = "1000x")]
    #[serde(rename = "1000x")]
    Files1000,
    /// 2,500 container log files (the `scale` mode adds rotated siblings: 10,000 files).
    #[value(name = "2500x")]
    #[serde(rename = "2500x")]
    Files2500,
}

impl Shape {
    /// Number of `0.log` files.
    pub fn files(self) -> usize {
        match self {
            Shape::Files50 => 50,
            Shape::Files1000 => 1000,
            Shape::Files2500 => 2500,
        }
    }

    /// The CLI name (`50x`, `1000x`).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Files50 => "50x",
            Shape::Files1000 => "1000x",
            Shape::Files2500 => "2500x",
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of files.
    pub shape: Shape,
    /// Logical lines (= documents a collector must deliver) across all files.
    pub lines: u64,
    /// Root of the tree (created; must be empty or absent).
    pub out: PathBuf,
    /// Directory of `*.log` files whose lines are the message text.
    pub corpus: PathBuf,
    /// PRNG seed.
    pub seed: u64,
    /// Lines over 16 KiB per million lines (500 = 0.05 %).
    pub long_per_million: u32,
}

/// One generated file, as listed in `expected.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExpectedFile {
    /// Path of the `0.log` file relative to the tree root.
    pub path: String,
    /// Symlink under `var/log/containers`, relative to the tree root.
    pub link: String,
    /// Logical lines (documents).
    pub records: u64,
    /// CRI lines (`P` chunks count separately).
    pub cri_lines: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// `expected.json`: what a collector must deliver from the tree.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Expected {
    /// Shape name.
    pub shape: Shape,
    /// PRNG seed.
    pub seed: u64,
    /// Corpus file names used for message text.
    pub corpus: Vec<String>,
    /// FNV-1a 64 of the corpus lines (hex): a tree is only reused for the same corpus.
    pub corpus_hash: String,
    /// Logical lines across all files: the number of documents expected in Elasticsearch.
    pub records: u64,
    /// CRI lines across all files (`P` chunks count separately).
    pub cri_lines: u64,
    /// Source bytes: the sum of the file sizes.
    pub bytes: u64,
    /// Bytes of reassembled messages (no CRI prefixes, no newlines).
    pub message_bytes: u64,
    /// Logical lines over 16 KiB (split into `P` + `F`).
    pub long_records: u64,
    /// Logical lines written as JSON application-log objects.
    pub json_records: u64,
    /// Logical lines on stderr.
    pub stderr_records: u64,
    /// Every file.
    pub files: Vec<ExpectedFile>,
}

impl Expected {
    /// Reads `<tree>/expected.json`.
    ///
    /// # Errors
    /// The file is missing or not a valid `expected.json`.
    pub fn load(tree: &Path) -> Result<Expected> {
        let path = tree.join("expected.json");
        let text = fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("failed to parse {}", path.display()))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and stable across crate upgrades.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `per_million / 1e6`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

/// The message text source: every non-empty line of the corpus files.
pub struct Corpus {
    /// File names, sorted.
    pub names: Vec<String>,
    lines: Vec<Vec<u8>>,
}

impl Corpus {
    /// Loads every `*.log` file of `dir` (sorted by name), one entry per non-empty line with any
    /// trailing `\r` removed.
    ///
    /// # Errors
    /// The directory cannot be read or holds no non-empty `*.log` file.
    pub fn load(dir: &Path) -> Result<Corpus> {
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("failed to read corpus directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log") && p.is_file())
            .collect();
        paths.sort();
        let mut names = Vec::new();
        let mut lines = Vec::new();
        for path in &paths {
            let data = fs::read(path)
                .with_context(|| format!("failed to read corpus file {}", path.display()))?;
            for line in data.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    lines.push(line.to_vec());
                }
            }
            names.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        if lines.is_empty() {
            bail!(
                "no corpus lines: {} holds no non-empty *.log file",
                dir.display()
            );
        }
        Ok(Corpus { names, lines })
    }

    /// A corpus from in-memory lines (tests).
    #[cfg(test)]
    pub fn from_lines(lines: Vec<Vec<u8>>) -> Corpus {
        assert!(!lines.is_empty());
        Corpus {
            names: vec!["inline".into()],
            lines,
        }
    }

    /// FNV-1a 64 over every line (each followed by `\n`), as 16 hex digits.
    pub fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in &self.lines {
            for &b in line.iter().chain(std::iter::once(&b'\n')) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    }

    /// A random line.
    pub fn pick(&self, rng: &mut SplitMix64) -> &[u8] {
        &self.lines[rng.below(self.lines.len() as u64) as usize]
    }
}

/// Appends `s` as the inside of a JSON string: `"`, `\` and control bytes escaped; other bytes
/// (including non-ASCII UTF-8) copied.
pub fn json_escape_into(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
}

/// Appends `YYYY-MM-DDTHH:MM:SS` (UTC) for `secs` since the epoch.
fn push_datetime(out: &mut Vec<u8>, secs: u64) {
    let time = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
    let _ = write!(out, "{}", time.format("%Y-%m-%dT%H:%M:%S"));
}

/// Appends Go's `time.RFC3339Nano` for a UTC time, as containerd writes it: trailing zeros of the
/// fraction trimmed, no fraction at all when it is zero, `Z` suffix.
pub fn push_rfc3339_nano_trimmed(out: &mut Vec<u8>, nanos: u64) {
    push_datetime(out, nanos / 1_000_000_000);
    let mut frac = nanos % 1_000_000_000;
    if frac != 0 {
        let mut digits = 9;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
    out.push(b'Z');
}

/// Appends an RFC 3339 UTC time with milliseconds (`2026-11-22T08:00:00.123Z`), the `ts` of the
/// JSON application lines.
fn push_rfc3339_millis(out: &mut Vec<u8>, nanos: u64) {
    push_datetime(out, nanos / 1_000_000_000);
    let _ = write!(out, ".{:03}Z", nanos % 1_000_000_000 / 1_000_000);
}

const NAMESPACES: &[&str] = &[
    "default",
    "payments",
    "checkout",
    "data-platform",
    "observability",
    "kube-system",
    "airflow",
];
const APPS: &[&str] = &[
    "api-gateway",
    "cart",
    "orders",
    "billing",
    "search",
    "recommender",
    "auth",
    "inventory",
    "shipping",
    "notifier",
    "ingest",
    "etl-worker",
    "scheduler",
    "metrics-agent",
    "coredns",
    "frontend",
    "kafka-connect",
    "redis-cache",
];
const CONTAINERS: &[&str] = &["app", "sidecar", "envoy", "worker", "init-db", "exporter"];
const LOGGERS: &[&str] = &[
    "http",
    "db",
    "cache",
    "auth.session",
    "worker.pool",
    "grpc.server",
    "kafka.consumer",
];

fn alnum(rng: &mut SplitMix64, n: usize) -> String {
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| A[rng.below(A.len() as u64) as usize] as char)
        .collect()
}

fn hex(rng: &mut SplitMix64, n: usize) -> String {
    const H: &[u8] = b"0123456789abcdef";
    (0..n).map(|_| H[rng.below(16) as usize] as char).collect()
}

fn uuid(rng: &mut SplitMix64) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Where one file lives in the tree.
#[derive(Clone, Debug)]
pub struct FileLayout {
    /// `var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`.
    pub path: String,
    /// `var/log/containers/<pod>_<ns>_<container>-<64 hex>.log`.
    pub link: String,
}

/// Names `files` containers in pods of 1–3 containers, deterministic from `rng`.
pub fn layout(rng: &mut SplitMix64, files: usize) -> Vec<FileLayout> {
    let mut out = Vec::with_capacity(files);
    let mut pod_index = 0usize;
    while out.len() < files {
        let ns = NAMESPACES[rng.below(NAMESPACES.len() as u64) as usize];
        let app = APPS[pod_index % APPS.len()];
        let pod = format!("{app}-{}-{}", hex(rng, 10), alnum(rng, 5));
        let uid = uuid(rng);
        let n = (1 + rng.below(3) as usize).min(files - out.len());
        for container in CONTAINERS.iter().take(n) {
            let id = hex(rng, 64);
            out.push(FileLayout {
                path: format!("var/log/pods/{ns}_{pod}_{uid}/{container}/0.log"),
                link: format!("var/log/containers/{pod}_{ns}_{container}-{id}.log"),
            });
        }
        pod_index += 1;
    }
    out
}

/// Splits `total` lines over `n` files with uneven, deterministic weights (a few chatty pods).
pub fn distribute(rng: &mut SplitMix64, total: u64, n: usize) -> Vec<u64> {
    let weights: Vec<u64> = (0..n)
        .map(|_| match rng.below(10) {
            0 => 8 + rng.below(8),
            1..=3 => 3 + rng.below(3),
            _ => 1 + rng.below(2),
        })
        .collect();
    let sum: u64 = weights.iter().sum();
    let mut counts: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
    let mut left = total - counts.iter().sum::<u64>();
    let mut i = 0;
    while left > 0 {
        counts[i % n] += 1;
        left -= 1;
        i += 1;
    }
    counts
}

/// Per-file totals while writing.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    records: u64,
    cri_lines: u64,
    bytes: u64,
    message_bytes: u64,
    long_records: u64,
    json_records: u64,
    stderr_records: u64,
}

/// Builds the message of one logical line at time `nanos` into `msg` (cleared first); returns
/// (is_json, is_stderr). `long` makes it a JSON object over 16 KiB.
pub fn build_message(
    rng: &mut SplitMix64,
    corpus: &Corpus,
    nanos: u64,
    long: bool,
    msg: &mut Vec<u8>,
) -> (bool, bool) {
    msg.clear();
    let level = match rng.below(100) {
        0..=74 => "info",
        75..=84 => "debug",
        85..=94 => "warn",
        _ => "error",
    };
    let stderr = matches!(level, "warn" | "error") && rng.below(2) == 0;
    if long {
        // A big JSON object: an error with a long "stack" of corpus lines.
        let target = CRI_CHUNK_BYTES + 512 + rng.below(80 * 1024) as usize;
        msg.extend_from_slice(b"{\"level\":\"error\",\"ts\":\"");
        push_rfc3339_millis(msg, nanos);
        msg.extend_from_slice(b"\",\"msg\":\"");
        json_escape_into(msg, corpus.pick(rng));
        msg.extend_from_slice(b"\",\"stack\":\"");
        while msg.len() < target {
            json_escape_into(msg, corpus.pick(rng));
            msg.extend_from_slice(b"\\n\\tat ");
        }
        msg.extend_from_slice(b"\"}");
        return (true, true);
    }
    let joined = rng.below(100) < 8;
    let json = rng.below(100) < 70;
    if json {
        msg.extend_from_slice(b"{\"level\":\"");
        msg.extend_from_slice(level.as_bytes());
        msg.extend_from_slice(b"\",\"ts\":\"");
        push_rfc3339_millis(msg, nanos);
        msg.extend_from_slice(b"\",\"logger\":\"");
        msg.extend_from_slice(LOGGERS[rng.below(LOGGERS.len() as u64) as usize].as_bytes());
        msg.extend_from_slice(b"\",\"msg\":\"");
        json_escape_into(msg, corpus.pick(rng));
        if joined {
            for _ in 0..1 + rng.below(5) {
                msg.extend_from_slice(b"; ");
                json_escape_into(msg, corpus.pick(rng));
            }
        }
        msg.push(b'"');
        if rng.below(4) == 0 {
            msg.extend_from_slice(b",\"trace_id\":\"");
            msg.extend_from_slice(hex(rng, 32).as_bytes());
            msg.push(b'"');
        }
        msg.push(b'}');
    } else {
        msg.extend_from_slice(corpus.pick(rng));
        if joined {
            for _ in 0..1 + rng.below(5) {
                msg.push(b' ');
                msg.extend_from_slice(corpus.pick(rng));
            }
        }
    }
    (json, stderr)
}

/// Appends the CRI lines of one logical line (one `F` line, or `P` chunks of exactly
/// [`CRI_CHUNK_BYTES`] message bytes then an `F` line) to `out`; returns the number of CRI lines.
pub fn push_cri_lines(out: &mut Vec<u8>, nanos: u64, stderr: bool, msg: &[u8]) -> u64 {
    let stream: &[u8] = if stderr { b" stderr " } else { b" stdout " };
    let mut rest = msg;
    let mut n = 0;
    loop {
        push_rfc3339_nano_trimmed(out, nanos);
        out.extend_from_slice(stream);
        if rest.len() > CRI_CHUNK_BYTES {
            out.extend_from_slice(b"P ");
            out.extend_from_slice(&rest[..CRI_CHUNK_BYTES]);
            out.push(b'\n');
            rest = &rest[CRI_CHUNK_BYTES..];
            n += 1;
        } else {
            out.extend_from_slice(b"F ");
            out.extend_from_slice(rest);
            out.push(b'\n');
            return n + 1;
        }
    }
}

fn write_file(
    path: &Path,
    seed: u64,
    records: u64,
    corpus: &Corpus,
    long_per_million: u32,
    start_nanos: u64,
) -> Result<Tally> {
    let mut rng = SplitMix64::new(seed);
    let file =
        File::create(path).with_context(|| format!("failed to create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut t = Tally::default();
    let mut msg = Vec::with_capacity(4096);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut nanos = start_nanos;
    for _ in 0..records {
        nanos += 1 + rng.below(3_000_000);
        // A few timestamps land on whole microseconds / milliseconds, so the trimmed fraction
        // takes every width, as containerd writes it.
        match rng.below(50) {
            0 => nanos -= nanos % 1_000_000,
            1 => nanos -= nanos % 1_000,
            _ => {}
        }
        let long = rng.chance(long_per_million);
        let (json, stderr) = build_message(&mut rng, corpus, nanos, long, &mut msg);
        t.cri_lines += push_cri_lines(&mut buf, nanos, stderr, &msg);
        t.records += 1;
        t.message_bytes += msg.len() as u64;
        t.long_records += u64::from(long);
        t.json_records += u64::from(json);
        t.stderr_records += u64::from(stderr);
        if buf.len() >= 1 << 15 {
            t.bytes += buf.len() as u64;
            w.write_all(&buf)
                .with_context(|| format!("failed to write {}", path.display()))?;
            buf.clear();
        }
    }
    t.bytes += buf.len() as u64;
    w.write_all(&buf)
        .with_context(|| format!("failed to write {}", path.display()))?;
    w.flush()
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(t)
}

/// Writes a symlink at `<root>/<link>` pointing at `<root>/<target>` with a relative target.
fn relative_symlink(root: &Path, link: &str, target: &str) -> Result<()> {
    let depth = link.matches('/').count();
    let rel = format!("{}{}", "../".repeat(depth), target);
    let at = root.join(link);
    std::os::unix::fs::symlink(&rel, &at)
        .with_context(|| format!("failed to create symlink {}", at.display()))
}

/// Generates the tree and `expected.json`; returns what was written.
///
/// # Errors
/// The output directory is not empty, the corpus cannot be read, or a write fails.
pub fn generate(opts: &GenerateOptions) -> Result<Expected> {
    let corpus = Corpus::load(&opts.corpus)?;
    generate_with(opts, &corpus)
}

/// [`generate`] with an already loaded corpus.
///
/// # Errors
/// The output directory is not empty or a write fails.
pub fn generate_with(opts: &GenerateOptions, corpus: &Corpus) -> Result<Expected> {
    if opts.out.exists() && fs::read_dir(&opts.out)?.next().is_some() {
        bail!("output directory {} is not empty", opts.out.display());
    }
    fs::create_dir_all(opts.out.join("var/log/containers"))
        .with_context(|| format!("failed to create {}", opts.out.display()))?;
    let mut rng = SplitMix64::new(opts.seed);
    let files = layout(&mut rng, opts.shape.files());
    let counts = distribute(&mut rng, opts.lines, files.len());
    let file_seeds: Vec<u64> = files.iter().map(|_| rng.next_u64()).collect();

    // Two writer threads: the tree is a pure function of the seeds, whatever the scheduling.
    let results: Vec<Result<Tally>> = std::thread::scope(|s| {
        let workers = 2usize;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (files, counts, file_seeds) = (&files, &counts, &file_seeds);
                s.spawn(move || -> Vec<(usize, Result<Tally>)> {
                    (w..files.len())
                        .step_by(workers)
                        .map(|i| {
                            let path = opts.out.join(&files[i].path);
                            let r =
                                fs::create_dir_all(path.parent().expect("file path has a parent"))
                                    .with_context(|| {
                                        format!("failed to create directory for {}", path.display())
                                    })
                                    .and_then(|_| {
                                        let start = BASE_TIME_NANOS + i as u64 * 7_919_000;
                                        write_file(
                                            &path,
                                            file_seeds[i],
                                            counts[i],
                                            corpus,
                                            opts.long_per_million,
                                            start,
                                        )
                                    });
                            (i, r)
                        })
                        .collect()
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<Tally>)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer thread panicked"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });

    let mut expected = Expected {
        shape: opts.shape,
        seed: opts.seed,
        corpus: corpus.names.clone(),
        corpus_hash: corpus.hash(),
        records: 0,
        cri_lines: 0,
        bytes: 0,
        message_bytes: 0,
        long_records: 0,
        json_records: 0,
        stderr_records: 0,
        files: Vec::with_capacity(files.len()),
    };
    for (f, r) in files.iter().zip(results) {
        let t = r?;
        relative_symlink(&opts.out, &f.link, &f.path)?;
        expected.records += t.records;
        expected.cri_lines += t.cri_lines;
        expected.bytes += t.bytes;
        expected.message_bytes += t.message_bytes;
        expected.long_records += t.long_records;
        expected.json_records += t.json_records;
        expected.stderr_records += t.stderr_records;
        expected.files.push(ExpectedFile {
            path: f.path.clone(),
            link: f.link.clone(),
            records: t.records,
            cri_lines: t.cri_lines,
            bytes: t.bytes,
        });
    }
    let path = opts.out.join("expected.json");
    let mut json = serde_json::to_vec_pretty(&expected)?;
    json.push(b'\n');
    fs::write(&path, json).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn corpus() -> Corpus {
        // Real Loghub-shaped lines (HDFS, OpenSSH, Apache samples), including quotes and tabs.
        Corpus::from_lines(vec![
            b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating".to_vec(),
            b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186".to_vec(),
            b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties".to_vec(),
            b"GET \"/index.html\" \t 200 \\ backslash".to_vec(),
            "caf\u{e9} \u{2014} unicode line".as_bytes().to_vec(),
        ])
    }

    /// A parsed CRI line: (timestamp, stream, partial, message).
    fn parse(line: &[u8]) -> (&[u8], &[u8], bool, &[u8]) {
        let mut it = line.splitn(4, |&b| b == b' ');
        let ts = it.next().unwrap();
        let stream = it.next().unwrap();
        let tag = it.next().unwrap();
        let msg = it.next().unwrap();
        (ts, stream, tag == b"P", msg)
    }

    fn gen(dir: &Path, seed: u64, lines: u64, long: u32) -> Expected {
        let opts = GenerateOptions {
            shape: Shape::Files50,
            lines,
            out: dir.to_path_buf(),
            corpus: PathBuf::new(),
            seed,
            long_per_million: long,
        };
        generate_with(&opts, &corpus()).unwrap()
    }

    #[test]
    fn p_chunks_reassemble_and_counts_match_expected_json() {
        let dir = tempfile::tempdir().unwrap();
        // 2 % long lines so that the test sees many P/F sequences.
        let exp = gen(dir.path(), 7, 6_000, 20_000);
        assert_eq!(exp, Expected::load(dir.path()).unwrap());
        assert_eq!(exp.files.len(), 50);
        assert_eq!(exp.records, 6_000);
        assert!(exp.long_records > 50, "{}", exp.long_records);

        let (mut records, mut cri, mut bytes, mut msg_bytes, mut long, mut json) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for f in &exp.files {
            let data = fs::read(dir.path().join(&f.path)).unwrap();
            assert_eq!(data.len() as u64, f.bytes);
            assert_eq!(*data.last().unwrap(), b'\n');
            bytes += data.len() as u64;
            let mut pending: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut file_records = 0;
            for line in data[..data.len() - 1].split(|&b| b == b'\n') {
                cri += 1;
                let (ts, stream, partial, m) = parse(line);
                assert!(stream == b"stdout" || stream == b"stderr");
                assert!(
                    ts.ends_with(b"Z") && ts.len() <= 30 && ts.len() >= 20,
                    "{}",
                    String::from_utf8_lossy(ts)
                );
                let buf = pending.entry(stream.to_vec()).or_default();
                buf.extend_from_slice(m);
                if partial {
                    assert_eq!(
                        m.len(),
                        CRI_CHUNK_BYTES,
                        "every P chunk carries exactly 16 KiB"
                    );
                    continue;
                }
                let whole = std::mem::take(buf);
                msg_bytes += whole.len() as u64;
                if whole.len() > CRI_CHUNK_BYTES {
                    long += 1;
                    let v: serde_json::Value = serde_json::from_slice(&whole)
                        .expect("long lines reassemble to valid JSON");
                    assert_eq!(v["level"], "error");
                }
                if whole.first() == Some(&b'{') {
                    json += 1;
                    serde_json::from_slice::<serde_json::Value>(&whole)
                        .expect("JSON lines are valid JSON");
                }
                file_records += 1;
            }
            assert!(
                pending.values().all(|p| p.is_empty()),
                "no P chunk left without its F"
            );
            assert_eq!(file_records, f.records);
            records += file_records;
        }
        assert_eq!(
            (records, cri, bytes, msg_bytes, long, json),
            (
                exp.records,
                exp.cri_lines,
                exp.bytes,
                exp.message_bytes,
                exp.long_records,
                exp.json_records
            )
        );
        // ~70 % JSON among the short lines.
        let short = exp.records - exp.long_records;
        let short_json = exp.json_records - exp.long_records;
        assert!(
            (0.65..0.75).contains(&(short_json as f64 / short as f64)),
            "{short_json}/{short}"
        );
    }

    #[test]
    fn deterministic_per_seed() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let ea = gen(a.path(), 42, 3_000, 500);
        let eb = gen(b.path(), 42, 3_000, 500);
        let ec = gen(c.path(), 43, 3_000, 500);
        assert_eq!(ea, eb);
        assert_eq!(ea.corpus_hash.len(), 16);
        let other = Corpus::from_lines(vec![b"another line".to_vec()]);
        assert_ne!(
            other.hash(),
            corpus().hash(),
            "a changed corpus is not reused"
        );
        assert_ne!(ea.files[0].path, ec.files[0].path);
        for f in &ea.files {
            assert_eq!(
                fs::read(a.path().join(&f.path)).unwrap(),
                fs::read(b.path().join(&f.path)).unwrap()
            );
        }
    }

    #[test]
    fn symlinks_resolve_to_the_active_files_in_kubelet_layout() {
        let dir = tempfile::tempdir().unwrap();
        let exp = gen(dir.path(), 1, 500, 0);
        for f in &exp.files {
            let link = dir.path().join(&f.link);
            assert!(fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert!(fs::read_link(&link).unwrap().is_relative());
            assert_eq!(
                fs::canonicalize(&link).unwrap(),
                fs::canonicalize(dir.path().join(&f.path)).unwrap()
            );
            let parts: Vec<&str> = f.path.split('/').collect();
            assert_eq!(parts[..3], ["var", "log", "pods"]);
            let (ns, rest) = parts[3].split_once('_').unwrap();
            let (pod, uid) = rest.rsplit_once('_').unwrap();
            assert_eq!(uid.len(), 36);
            let container = parts[4];
            assert_eq!(parts[5], "0.log");
            let name = f.link.strip_prefix("var/log/containers/").unwrap();
            let want = format!("{pod}_{ns}_{container}-");
            assert!(
                name.starts_with(&want)
                    && name.ends_with(".log")
                    && name.len() == want.len() + 64 + 4,
                "{name}"
            );
        }
    }

    #[test]
    fn timestamps_are_trimmed_like_go_rfc3339nano() {
        let mut out = Vec::new();
        push_rfc3339_nano_trimmed(&mut out, BASE_TIME_NANOS + 669_794_200);
        assert_eq!(out, b"2026-11-22T08:00:00.6697942Z");
        out.clear();
        push_rfc3339_nano_trimmed(&mut out, BASE_TIME_NANOS);
        assert_eq!(out, b"2026-11-22T08:00:00Z");
        out.clear();
        push_rfc3339_nano_trimmed(&mut out, 1_475_713_029_000_000_001);
        assert_eq!(out, b"2016-10-06T00:17:09.000000001Z");
        out.clear();
        push_rfc3339_millis(&mut out, 951_782_400_123_456_789); // 2000-02-29 (leap day)
        assert_eq!(out, b"2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn refuses_a_non_empty_output_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), b"x").unwrap();
        let opts = GenerateOptions {
            shape: Shape::Files50,
            lines: 10,
            out: dir.path().to_path_buf(),
            corpus: PathBuf::new(),
            seed: 1,
            long_per_million: 0,
        };
        assert!(generate_with(&opts, &corpus()).is_err());
    }
}
