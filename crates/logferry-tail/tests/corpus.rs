//! Real framing from the repository's corpus (`tests/corpus/`, see its README):
//! the docker json-file samples in `kube-logs/` decode to their messages
//! (checked against `serde_json` as an independent decoder), and every line
//! of `loghub/*.log`, wrapped in CRI framing — whole, and split into `P`
//! chunks interleaved with the other stream — decodes back to the original.
//! A missing or empty corpus fails the test.

use bytes::Bytes;
use logferry_core::{LogFormat, Record, RecordFlags, Stream};
use logferry_tail::cri::encode_cri;
use logferry_tail::decode::{decode_buffer, LineDecoder};
use logferry_tail::joiner::Joiner;
use logferry_tail::timestamp::parse_rfc3339_nanos;
use std::path::PathBuf;
use std::time::Instant;

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("corpus directory {} unreadable: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.log files in {}: the corpus is missing",
        root.display()
    );
    files
}

fn decode(buf: Vec<u8>) -> (Vec<Record>, LogFormat, u64) {
    let mut d = LineDecoder::new(None, LogFormat::Cri, Joiner::new(1 << 20, None));
    let mut out = Vec::new();
    decode_buffer(&mut d, &Bytes::from(buf), Instant::now(), &mut out);
    d.joiner().flush_all(Instant::now(), &mut out);
    (
        out,
        d.format().unwrap_or(LogFormat::Cri),
        d.take_stats().unparsed,
    )
}

#[test]
fn docker_json_file_samples_decode_to_their_messages() {
    let files = corpus("kube-logs");
    let mut lines = 0;
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let (recs, format, unparsed) = decode(raw.clone());
        assert_eq!(format, LogFormat::Docker, "{}", f.display());
        assert_eq!(unparsed, 0, "{}", f.display());
        let expected: Vec<serde_json::Value> = raw
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(recs.len(), expected.len(), "{}", f.display());
        for (r, e) in recs.iter().zip(&expected) {
            let log = e["log"].as_str().unwrap();
            assert_eq!(
                std::str::from_utf8(&r.message).unwrap(),
                log.strip_suffix('\n').unwrap_or(log)
            );
            let stream = if e["stream"] == "stderr" {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            assert_eq!(r.stream, stream);
            assert_eq!(
                Some(r.timestamp_nanos),
                parse_rfc3339_nanos(e["time"].as_str().unwrap().as_bytes())
            );
            assert!(r.flags.is_empty());
            lines += 1;
        }
    }
    println!(
        "{} docker json-file lines from {} files decoded",
        lines,
        files.len()
    );
}

#[test]
fn loghub_lines_in_cri_framing_decode_back_to_the_original() {
    let files = corpus("loghub");
    let ts = [
        "2026-11-22T13:45:10.1234Z",
        "2026-11-22T13:45:10.123456789+00:00",
    ];
    let mut total = 0;
    for f in &files {
        let text = std::fs::read(f).unwrap();
        let originals: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect();
        assert!(!originals.is_empty(), "{} is empty", f.display());
        for chunk in [usize::MAX, 1, 7, 64] {
            // stdout: the corpus lines, split into P chunks of `chunk` bytes;
            // stderr: a marker line after every chunk, to interleave streams.
            let mut buf = Vec::new();
            for (i, line) in originals.iter().enumerate() {
                let pieces: Vec<&[u8]> = if line.is_empty() {
                    vec![&line[..]]
                } else {
                    line.chunks(chunk.min(line.len())).collect()
                };
                for (j, p) in pieces.iter().enumerate() {
                    encode_cri(&mut buf, ts[i % 2], Stream::Stdout, j + 1 < pieces.len(), p);
                    if chunk != usize::MAX && j % 3 == 0 {
                        encode_cri(&mut buf, ts[0], Stream::Stderr, false, b"interleaved");
                    }
                }
            }
            let (recs, format, unparsed) = decode(buf);
            assert_eq!((format, unparsed), (LogFormat::Cri, 0));
            let out: Vec<&[u8]> = recs
                .iter()
                .filter(|r| r.stream == Stream::Stdout)
                .map(|r| &r.message[..])
                .collect();
            assert_eq!(out.len(), originals.len(), "{} chunk {chunk}", f.display());
            for (a, b) in out.iter().zip(&originals) {
                assert_eq!(a, b, "{} chunk {chunk}", f.display());
            }
            let joined = recs
                .iter()
                .filter(|r| r.flags.contains(RecordFlags::PARTIAL_JOINED))
                .count();
            if chunk == 1 {
                assert!(joined > 0);
            }
            assert!(recs
                .iter()
                .all(|r| !r.flags.contains(RecordFlags::INCOMPLETE)));
        }
        total += originals.len();
    }
    println!(
        "{total} loghub lines from {} files round-tripped through CRI framing",
        files.len()
    );
}
