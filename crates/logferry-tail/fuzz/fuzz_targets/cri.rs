//! Fuzzes the CRI line decoder and the joiner with arbitrary bytes:
//! `cargo +nightly fuzz run cri` from `crates/logferry-tail`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logferry_core::LogFormat;
use logferry_tail::decode::{decode_buffer, LineDecoder};
use logferry_tail::joiner::Joiner;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let _ = logferry_tail::cri::decode_cri(data);
    let _ = logferry_tail::timestamp::parse_rfc3339_nanos(data);
    let max = 1 + data.first().copied().unwrap_or(0) as usize;
    let mut d = LineDecoder::new(Some(LogFormat::Cri), LogFormat::Cri, Joiner::new(max, None));
    let mut out = Vec::new();
    let buf = Bytes::copy_from_slice(data);
    decode_buffer(&mut d, &buf, Instant::now(), &mut out);
    let _ = d.joiner().resume_point(data.len() as u64);
    d.joiner().flush_all(Instant::now(), &mut out);
    for r in &out {
        assert!(r.start <= r.end && r.end <= data.len() as u64);
        assert!(r.message.len() <= max);
    }
});
