//! Fuzzes the docker json-file decoder (JSON scanning and unescaping) and the
//! joiner with arbitrary bytes: `cargo +nightly fuzz run docker` from
//! `crates/logferry-tail`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logferry_core::LogFormat;
use logferry_tail::decode::{decode_buffer, LineDecoder};
use logferry_tail::joiner::Joiner;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if let Some(line) = logferry_tail::docker::decode_docker(data) {
        let mut scratch = Vec::new();
        let _ = line.message(data, &mut scratch);
    }
    let mut out = Vec::new();
    let _ = logferry_tail::docker::unescape_json(data, &mut out);
    let mut d = LineDecoder::new(
        Some(LogFormat::Docker),
        LogFormat::Cri,
        Joiner::new(1 << 16, None),
    );
    let mut recs = Vec::new();
    let buf = Bytes::copy_from_slice(data);
    decode_buffer(&mut d, &buf, Instant::now(), &mut recs);
    d.joiner().flush_all(Instant::now(), &mut recs);
    for r in &recs {
        assert!(r.start <= r.end && r.end <= data.len() as u64);
    }
});
