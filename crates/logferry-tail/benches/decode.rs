//! Decode + join throughput for Loghub-sized lines in CRI framing, one core.
//!
//! `cargo bench -p logferry-tail --bench decode`
//!
//! Builds ~64 MiB of containerd-style CRI lines from `tests/corpus/loghub`
//! (every 16th line split into `P` chunks of 64 bytes), then measures
//! (1) decode + join from memory, in 256 KiB windows as the reader hands them
//! over, and (2) the full reader path from the page cache (`pread` of 256 KiB,
//! line splitting, decode, join). Prints MB/s and lines/s.

use bytes::Bytes;
use logferry_core::{LogFormat, Record, Stream};
use logferry_tail::cri::encode_cri;
use logferry_tail::decode::{decode_buffer, LineDecoder};
use logferry_tail::joiner::Joiner;
use logferry_tail::reader::{FileReader, ReadBuffer};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

const TARGET: usize = 64 << 20;

fn corpus_lines() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/loghub");
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&dir)
        .expect("tests/corpus/loghub")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "log") {
            let text = std::fs::read(e.path()).unwrap();
            for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                lines.push(l.strip_suffix(b"\r").unwrap_or(l).to_vec());
            }
        }
    }
    assert!(!lines.is_empty(), "empty corpus");
    lines
}

fn build() -> (Vec<u8>, u64) {
    let lines = corpus_lines();
    let mut buf = Vec::with_capacity(TARGET + 4096);
    let mut records = 0u64;
    let mut i = 0usize;
    while buf.len() < TARGET {
        let l = &lines[i % lines.len()];
        let ts = format!(
            "2026-11-22T13:45:{:02}.{:09}Z",
            i / 1_000_000 % 60,
            i % 1_000_000_000
        );
        if i % 16 == 5 && l.len() > 64 {
            let chunks: Vec<&[u8]> = l.chunks(64).collect();
            for (j, c) in chunks.iter().enumerate() {
                encode_cri(&mut buf, &ts, Stream::Stdout, j + 1 < chunks.len(), c);
            }
        } else {
            encode_cri(
                &mut buf,
                &ts,
                if i % 5 == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                false,
                l,
            );
        }
        records += 1;
        i += 1;
    }
    (buf, records)
}

fn report(name: &str, bytes: usize, records: u64, secs: f64) {
    println!(
        "{name}: {:.0} MB/s, {:.2} M records/s ({} MB, {records} records, {:.3} s)",
        bytes as f64 / secs / 1e6,
        records as f64 / secs / 1e6,
        bytes / 1_000_000,
        secs
    );
}

fn main() {
    let (buf, expected) = build();
    let avg = buf.len() as f64 / expected as f64;
    println!(
        "input: {} bytes, {expected} records, {avg:.0} bytes per record on average",
        buf.len()
    );
    let bytes = Bytes::from(buf);

    // (1) From memory, 256 KiB windows cut at line ends.
    let mut windows = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let mut end = (pos + 256 * 1024).min(bytes.len());
        if end < bytes.len() {
            end = pos + memchr::memrchr(b'\n', &bytes[pos..end]).unwrap() + 1;
        }
        windows.push(bytes.slice(pos..end));
        pos = end;
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut d = LineDecoder::new(
            Some(LogFormat::Cri),
            LogFormat::Cri,
            Joiner::new(1 << 20, None),
        );
        let mut out: Vec<Record> = Vec::with_capacity(4096);
        let mut n = 0u64;
        let t = Instant::now();
        for w in &windows {
            decode_buffer(&mut d, w, Instant::now(), &mut out);
            n += out.len() as u64;
            black_box(&out);
            out.clear();
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, expected);
        best = best.min(secs);
    }
    report(
        "decode+join from memory (best of 5)",
        bytes.len(),
        expected,
        best,
    );

    // (1b) Docker json-file framing of the same lines, from memory.
    let lines = corpus_lines();
    let mut docker = Vec::with_capacity(TARGET + 4096);
    let mut n_docker = 0u64;
    while docker.len() < TARGET {
        let mut l = lines[n_docker as usize % lines.len()].clone();
        l.push(b'\n');
        logferry_tail::docker::encode_docker(
            &mut docker,
            "2026-11-22T13:45:10.123456789Z",
            Stream::Stdout,
            &l,
        );
        n_docker += 1;
    }
    let docker = Bytes::from(docker);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut d = LineDecoder::new(
            Some(LogFormat::Docker),
            LogFormat::Cri,
            Joiner::new(1 << 20, None),
        );
        let mut out: Vec<Record> = Vec::with_capacity(4096);
        let mut n = 0u64;
        let t = Instant::now();
        let mut pos = 0;
        while pos < docker.len() {
            let mut end = (pos + 256 * 1024).min(docker.len());
            if end < docker.len() {
                end = pos + memchr::memrchr(b'\n', &docker[pos..end]).unwrap() + 1;
            }
            decode_buffer(&mut d, &docker.slice(pos..end), Instant::now(), &mut out);
            n += out.len() as u64;
            black_box(&out);
            out.clear();
            pos = end;
        }
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(n, n_docker);
    }
    report(
        "docker json-file decode+join from memory (best of 5)",
        docker.len(),
        n_docker,
        best,
    );

    // (2) Reader path from the page cache.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log");
    std::fs::write(&path, &bytes[..]).unwrap();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let file = std::fs::File::open(&path).unwrap();
        let d = LineDecoder::new(None, LogFormat::Cri, Joiner::new(1 << 20, None));
        let mut r = FileReader::new(file, 0, 3 << 20, d);
        let mut out: Vec<Record> = Vec::with_capacity(4096);
        let mut scratch = ReadBuffer::default();
        let mut n = 0u64;
        let t = Instant::now();
        loop {
            let round = r
                .read_round(&mut scratch, Instant::now(), 0, &mut out)
                .unwrap();
            n += out.len() as u64;
            black_box(&out);
            out.clear();
            if round.bytes == 0 {
                break;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, expected);
        best = best.min(secs);
    }
    report(
        "pread+split+decode+join from page cache (best of 5)",
        bytes.len(),
        expected,
        best,
    );
}
