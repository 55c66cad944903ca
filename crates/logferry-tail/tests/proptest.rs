//! Property tests for the CRI and docker decoders and the joiner: any split
//! into chunks joins back to the original; arbitrary bytes never panic;
//! offsets cover the bytes exactly; resume points are safe checkpoints.

use bytes::Bytes;
use logferry_core::{LogFormat, Record, RecordFlags, Stream};
use logferry_tail::cri::encode_cri;
use logferry_tail::decode::{decode_buffer, LineDecoder};
use logferry_tail::docker::encode_docker;
use logferry_tail::joiner::Joiner;
use proptest::prelude::*;
use std::time::Instant;

const TS: &str = "2026-11-22T13:45:10.123456789Z";

fn decoder(format: Option<LogFormat>, max: usize) -> LineDecoder {
    LineDecoder::new(format, LogFormat::Cri, Joiner::new(max, None))
}

fn decode(buf: &[u8], format: Option<LogFormat>, max: usize) -> Vec<Record> {
    let mut d = decoder(format, max);
    let mut out = Vec::new();
    let buf = Bytes::copy_from_slice(buf);
    decode_buffer(&mut d, &buf, Instant::now(), &mut out);
    d.joiner().flush_all(Instant::now(), &mut out);
    out
}

/// Cuts `msg` at the given (sorted, deduplicated) cut points.
fn split<'a>(msg: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (msg.len() + 1)).collect();
    points.sort();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        if p > prev {
            out.push(&msg[prev..p]);
            prev = p;
        }
    }
    out.push(&msg[prev..]);
    out
}

fn stream(b: bool) -> Stream {
    if b {
        Stream::Stderr
    } else {
        Stream::Stdout
    }
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        0..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cri_any_split_joins_back(msg in message(), cuts in prop::collection::vec(any::<usize>(), 0..8), err in any::<bool>()) {
        let mut buf = Vec::new();
        let chunks = split(&msg, &cuts);
        for (i, c) in chunks.iter().enumerate() {
            encode_cri(&mut buf, TS, stream(err), i + 1 < chunks.len(), c);
        }
        let recs = decode(&buf, None, 1 << 20);
        prop_assert_eq!(recs.len(), 1);
        prop_assert_eq!(&recs[0].message[..], &msg[..]);
        prop_assert_eq!((recs[0].start, recs[0].end), (0, buf.len() as u64));
        prop_assert_eq!(recs[0].stream, stream(err));
        prop_assert_eq!(recs[0].flags.contains(RecordFlags::PARTIAL_JOINED), chunks.len() > 1);
        prop_assert_eq!(recs[0].timestamp_nanos, 1_795_355_110_123_456_789);
    }

    #[test]
    fn cri_interleaved_streams_join_per_stream_and_cover_every_byte(
        msgs in prop::collection::vec((message(), prop::collection::vec(any::<usize>(), 0..4), any::<bool>()), 1..12),
        order in prop::collection::vec(any::<bool>(), 0..200),
    ) {
        // Chunk lines per stream, then interleave the two streams' lines.
        let mut lines: [Vec<(usize, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        for (i, (m, cuts, err)) in msgs.iter().enumerate() {
            let chunks = split(m, cuts);
            for (j, c) in chunks.iter().enumerate() {
                let mut l = Vec::new();
                encode_cri(&mut l, TS, stream(*err), j + 1 < chunks.len(), c);
                lines[*err as usize].push((i, l));
            }
        }
        let mut buf = Vec::new();
        let mut spans: Vec<Vec<(u64, u64)>> = vec![Vec::new(); msgs.len()];
        let (mut a, mut b) = (0, 0);
        let mut o = order.into_iter();
        while a < lines[0].len() || b < lines[1].len() {
            let pick_err = if a == lines[0].len() { true } else if b == lines[1].len() { false } else { o.next().unwrap_or(false) };
            let (i, l) = if pick_err { b += 1; &lines[1][b - 1] } else { a += 1; &lines[0][a - 1] };
            spans[*i].push((buf.len() as u64, (buf.len() + l.len()) as u64));
            buf.extend_from_slice(l);
        }
        let recs = decode(&buf, None, 1 << 20);
        prop_assert_eq!(recs.len(), msgs.len());
        for r in &recs {
            let i = spans.iter().position(|s| s.first().map(|f| f.0) == Some(r.start)).expect("record starts at a message's first line");
            prop_assert_eq!(&r.message[..], &msgs[i].0[..]);
            prop_assert_eq!(r.end, spans[i].last().unwrap().1);
            prop_assert_eq!(r.stream, stream(msgs[i].2));
        }
        // Every line belongs to exactly one record: the records' line sets partition the buffer.
        let total: u64 = spans.iter().flatten().map(|(s, e)| e - s).sum();
        prop_assert_eq!(total, buf.len() as u64);
    }

    #[test]
    fn docker_any_split_joins_back(msg in ".{0,200}", cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        // Docker splits a line into chunks whose `log` lacks the trailing \n.
        let bytes = msg.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).filter(|p| *p > 0 && *p < bytes.len() && msg.is_char_boundary(*p)).collect();
        points.sort();
        points.dedup();
        let mut buf = Vec::new();
        let mut prev = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            {
                let mut chunk = bytes[prev..p].to_vec();
                if p == bytes.len() {
                    chunk.push(b'\n');
                }
                encode_docker(&mut buf, TS, Stream::Stdout, &chunk);
                prev = p;
            }
        }
        let recs = decode(&buf, None, 1 << 20);
        prop_assert_eq!(recs.len(), 1);
        prop_assert_eq!(&recs[0].message[..], bytes);
        prop_assert_eq!((recs[0].start, recs[0].end), (0, buf.len() as u64));
        prop_assert!(!recs[0].flags.contains(RecordFlags::UNPARSED));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_records_stay_inside_the_input(
        buf in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b' '), Just(b'{'), Just(b'"'), Just(b'\\'), any::<u8>()], 0..600),
        max in 1usize..64,
        fmt in 0u8..4,
    ) {
        let format = match fmt { 0 => None, 1 => Some(LogFormat::Cri), 2 => Some(LogFormat::Docker), _ => Some(LogFormat::Plain) };
        let recs = decode(&buf, format, max);
        for r in &recs {
            prop_assert!(r.start < r.end || (r.start == r.end && buf.is_empty()));
            prop_assert!(r.end <= buf.len() as u64);
            prop_assert!(r.message.len() <= max);
        }
        let _ = logferry_tail::cri::decode_cri(&buf);
        let _ = logferry_tail::docker::decode_docker(&buf);
        let _ = logferry_tail::timestamp::parse_rfc3339_nanos(&buf);
    }

    #[test]
    fn single_stream_records_tile_the_input_exactly(
        buf in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b' '), any::<u8>()], 0..600),
    ) {
        // Plain framing: every line is a record and records tile [0, len).
        let recs = decode(&buf, Some(LogFormat::Plain), 1 << 20);
        let mut pos = 0;
        for r in &recs {
            prop_assert_eq!(r.start, pos);
            pos = r.end;
        }
        prop_assert_eq!(pos, buf.len() as u64);
    }

    #[test]
    fn truncated_records_keep_a_prefix(msg in message(), cuts in prop::collection::vec(any::<usize>(), 0..4), max in 1usize..100) {
        let mut buf = Vec::new();
        let chunks = split(&msg, &cuts);
        for (i, c) in chunks.iter().enumerate() {
            encode_cri(&mut buf, TS, Stream::Stdout, i + 1 < chunks.len(), c);
        }
        let recs = decode(&buf, Some(LogFormat::Cri), max);
        prop_assert_eq!(recs.len(), 1);
        let keep = msg.len().min(max);
        prop_assert_eq!(&recs[0].message[..], &msg[..keep]);
        prop_assert_eq!(recs[0].flags.contains(RecordFlags::TRUNCATED), msg.len() > max);
    }

    #[test]
    fn resume_points_are_safe_checkpoints(
        msgs in prop::collection::vec((prop::collection::vec(b'a'..=b'z', 0..20), prop::collection::vec(any::<usize>(), 0..3), any::<bool>()), 1..10),
        order in prop::collection::vec(any::<bool>(), 0..100),
    ) {
        // Build an interleaved two-stream CRI buffer.
        let mut lines: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        for (m, cuts, err) in &msgs {
            let chunks = split(m, cuts);
            for (j, c) in chunks.iter().enumerate() {
                let mut l = Vec::new();
                encode_cri(&mut l, TS, stream(*err), j + 1 < chunks.len(), c);
                lines[*err as usize].push(l);
            }
        }
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        let (mut a, mut b) = (0, 0);
        let mut o = order.into_iter();
        while a < lines[0].len() || b < lines[1].len() {
            let pick = if a == lines[0].len() { true } else if b == lines[1].len() { false } else { o.next().unwrap_or(false) };
            let l = if pick { b += 1; &lines[1][b - 1] } else { a += 1; &lines[0][a - 1] };
            buf.extend_from_slice(l);
            ends.push(buf.len());
        }
        let full = decode(&buf, None, 1 << 20);
        // Feed line by line; at every line end where a resume point exists,
        // (1) every record starting before it has already been emitted, and
        // (2) decoding from it yields exactly the full records starting at or after it.
        let bytes = Bytes::copy_from_slice(&buf);
        let mut d = decoder(None, 1 << 20);
        let mut out = Vec::new();
        let mut start = 0usize;
        for &end in &ends {
            d.line(&bytes, start..end - 1, start as u64, end as u64, 0, RecordFlags::NONE, Instant::now(), &mut out);
            start = end;
            if let Some(r) = d.joiner().resume_point(end as u64) {
                prop_assert!(r <= end as u64);
                for f in full.iter().filter(|f| f.start < r) {
                    prop_assert!(out.iter().any(|o| o.start == f.start), "record at {} lost by checkpoint {}", f.start, r);
                }
                let tail = decode(&buf[r as usize..], None, 1 << 20);
                let expect: Vec<_> = full.iter().filter(|f| f.start >= r).map(|f| (f.start - r, f.message.clone())).collect();
                let got: Vec<_> = tail.iter().map(|t| (t.start, t.message.clone())).collect();
                prop_assert_eq!(got, expect);
            }
        }
    }
}
