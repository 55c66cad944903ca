//! Joining partial chunks (CRI `P`…`F`, docker chunks without `\n`) and,
//! optionally, multiline records, per stream.
//!
//! Input are [`Piece`]s (one decoded line each), output are
//! [`Record`]s. A record that consists of one line is passed on without
//! copying its message; only joined records allocate. Messages longer than
//! `max_record_bytes` are cut and flagged [`RecordFlags::TRUNCATED`].
//!
//! The joiner also answers the checkpoint question "where can reading resume
//! without losing or splitting an assembly" ([`Joiner::resume_point`]).

use crate::config::MultilineConfig;
use bytes::Bytes;
use logferry_core::{Record, RecordFlags, Stream};
use std::time::{Duration, Instant};

/// One decoded line, ready for joining.
#[derive(Clone, Debug)]
pub struct Piece {
    /// File offset of the line's first byte.
    pub start: u64,
    /// File offset one past the line's `\n`.
    pub end: u64,
    /// Line time, nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// Stream of the line.
    pub stream: Stream,
    /// More chunks of this message follow.
    pub partial: bool,
    /// Flags from decoding (`UNPARSED`, `TRUNCATED`).
    pub flags: RecordFlags,
    /// The chunk's message bytes.
    pub message: Bytes,
}

#[derive(Debug)]
struct Assembly {
    start: u64,
    end: u64,
    timestamp_nanos: i64,
    flags: RecordFlags,
    buf: Vec<u8>,
    last_update: Instant,
}

#[derive(Debug)]
struct Held {
    record: Record,
    joined: Option<Vec<u8>>,
    last_update: Instant,
}

fn idx(s: Stream) -> usize {
    match s {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

fn stream_of(i: usize) -> Stream {
    if i == 0 {
        Stream::Stdout
    } else {
        Stream::Stderr
    }
}

/// Per-file joiner state. See the module docs.
#[derive(Debug)]
pub struct Joiner {
    max_record_bytes: usize,
    multiline: Option<MultilineConfig>,
    partial: [Option<Assembly>; 2],
    held: [Option<Held>; 2],
    /// `(start, end)` of emitted records assembled from several lines that may
    /// straddle a future resume point.
    spans: Vec<(u64, u64)>,
}

fn append_capped(buf: &mut Vec<u8>, msg: &[u8], max: usize, flags: &mut RecordFlags) {
    let room = max.saturating_sub(buf.len());
    if msg.len() > room {
        buf.extend_from_slice(&msg[..room]);
        *flags |= RecordFlags::TRUNCATED;
    } else {
        buf.extend_from_slice(msg);
    }
}

impl Joiner {
    /// A joiner cutting messages at `max_record_bytes` bytes.
    pub fn new(max_record_bytes: usize, multiline: Option<MultilineConfig>) -> Joiner {
        Joiner {
            max_record_bytes,
            multiline,
            partial: [None, None],
            held: [None, None],
            spans: Vec::new(),
        }
    }

    /// Whether no assembly (partial chunks or a held multiline record) is open.
    pub fn is_clean(&self) -> bool {
        self.partial.iter().all(Option::is_none) && self.held.iter().all(Option::is_none)
    }

    /// Feeds one line. Complete records are appended to `out`.
    pub fn push(&mut self, piece: Piece, now: Instant, out: &mut Vec<Record>) {
        let i = idx(piece.stream);
        if let Some(a) = &mut self.partial[i] {
            append_capped(
                &mut a.buf,
                &piece.message,
                self.max_record_bytes,
                &mut a.flags,
            );
            a.flags |= piece.flags;
            a.end = piece.end;
            a.last_update = now;
            if !piece.partial {
                let a = self.partial[i].take().expect("assembly present");
                self.spans.push((a.start, a.end));
                let rec = Record {
                    start: a.start,
                    end: a.end,
                    timestamp_nanos: a.timestamp_nanos,
                    stream: piece.stream,
                    flags: a.flags | RecordFlags::PARTIAL_JOINED,
                    message: Bytes::from(a.buf),
                };
                self.multiline_stage(rec, now, out);
            }
            return;
        }
        if piece.partial {
            let mut flags = piece.flags;
            let mut buf = Vec::with_capacity((piece.message.len() * 2).min(self.max_record_bytes));
            append_capped(&mut buf, &piece.message, self.max_record_bytes, &mut flags);
            self.partial[i] = Some(Assembly {
                start: piece.start,
                end: piece.end,
                timestamp_nanos: piece.timestamp_nanos,
                flags,
                buf,
                last_update: now,
            });
            return;
        }
        let mut flags = piece.flags;
        let message = if piece.message.len() > self.max_record_bytes {
            flags |= RecordFlags::TRUNCATED;
            piece.message.slice(..self.max_record_bytes)
        } else {
            piece.message
        };
        let rec = Record {
            start: piece.start,
            end: piece.end,
            timestamp_nanos: piece.timestamp_nanos,
            stream: piece.stream,
            flags,
            message,
        };
        self.multiline_stage(rec, now, out);
    }

    fn multiline_stage(&mut self, rec: Record, now: Instant, out: &mut Vec<Record>) {
        let Some(ml) = &self.multiline else {
            out.push(rec);
            return;
        };
        let i = idx(rec.stream);
        let continues = self.held[i].is_some() && {
            let text = String::from_utf8_lossy(&rec.message);
            match (&ml.start_pattern, &ml.continuation_pattern) {
                (Some(s), None) => !s.is_match(&text),
                (None, Some(c)) => c.is_match(&text),
                (Some(s), Some(c)) => !s.is_match(&text) && c.is_match(&text),
                (None, None) => false,
            }
        };
        if continues {
            let max = self.max_record_bytes;
            let h = self.held[i].as_mut().expect("held record present");
            let joined = h.joined.get_or_insert_with(|| {
                let mut v = Vec::with_capacity((h.record.message.len() * 4).min(max));
                v.extend_from_slice(&h.record.message);
                v
            });
            let mut flags = h.record.flags | rec.flags | RecordFlags::MULTILINE;
            append_capped(joined, b"\n", max, &mut flags);
            append_capped(joined, &rec.message, max, &mut flags);
            h.record.flags = flags;
            h.record.end = rec.end;
            h.last_update = now;
            return;
        }
        if let Some(h) = self.held[i].take() {
            out.push(self.finish_held(h));
        }
        self.held[i] = Some(Held {
            record: rec,
            joined: None,
            last_update: now,
        });
    }

    fn finish_held(&mut self, h: Held) -> Record {
        let mut rec = h.record;
        if let Some(j) = h.joined {
            rec.message = Bytes::from(j);
            self.spans.push((rec.start, rec.end));
        }
        rec
    }

    fn flush_partial(&mut self, i: usize, now: Instant, out: &mut Vec<Record>) {
        if let Some(a) = self.partial[i].take() {
            self.spans.push((a.start, a.end));
            let rec = Record {
                start: a.start,
                end: a.end,
                timestamp_nanos: a.timestamp_nanos,
                stream: stream_of(i),
                flags: a.flags | RecordFlags::INCOMPLETE,
                message: Bytes::from(a.buf),
            };
            self.multiline_stage(rec, now, out);
        }
    }

    /// Emits assemblies idle for longer than their timeout: partial chunks
    /// after `partial_timeout` (flagged `INCOMPLETE`), held multiline records
    /// after the multiline `flush_timeout`. Returns whether anything was emitted.
    pub fn flush_idle(
        &mut self,
        now: Instant,
        partial_timeout: Duration,
        out: &mut Vec<Record>,
    ) -> bool {
        let before = out.len();
        for i in 0..2 {
            if self.partial[i]
                .as_ref()
                .is_some_and(|a| now.duration_since(a.last_update) >= partial_timeout)
            {
                self.flush_partial(i, now, out);
            }
        }
        if let Some(ml) = &self.multiline {
            let t = ml.flush_timeout;
            for i in 0..2 {
                let idle = self.held[i]
                    .as_ref()
                    .is_some_and(|h| now.duration_since(h.last_update) >= t);
                // A held record whose stream still has an open partial waits for it.
                if idle && self.partial[i].is_none() {
                    let h = self.held[i].take().expect("held record present");
                    let rec = self.finish_held(h);
                    out.push(rec);
                }
            }
        }
        out.len() > before
    }

    /// The earliest time at which [`flush_idle`](Self::flush_idle) may emit something.
    pub fn next_deadline(&self, partial_timeout: Duration) -> Option<Instant> {
        let p = self
            .partial
            .iter()
            .flatten()
            .map(|a| a.last_update + partial_timeout);
        let h = match &self.multiline {
            Some(ml) => self
                .held
                .iter()
                .flatten()
                .map(|h| h.last_update + ml.flush_timeout)
                .min(),
            None => None,
        };
        p.chain(h).min()
    }

    /// Emits everything open: partial chunks as `INCOMPLETE` records, then held
    /// multiline records. Used at end of input (deleted file drained, run once).
    pub fn flush_all(&mut self, now: Instant, out: &mut Vec<Record>) {
        for i in 0..2 {
            self.flush_partial(i, now, out);
        }
        for i in 0..2 {
            if let Some(h) = self.held[i].take() {
                let rec = self.finish_held(h);
                out.push(rec);
            }
        }
    }

    /// Where reading can resume after a restart, given that every line before
    /// `pos` has been fed: `pos` itself when nothing is open; otherwise the
    /// start of the earliest open assembly, if no record already emitted spans
    /// across it; otherwise `None` (no safe point right now).
    pub fn resume_point(&mut self, pos: u64) -> Option<u64> {
        let open = self
            .partial
            .iter()
            .flatten()
            .map(|a| a.start)
            .chain(self.held.iter().flatten().map(|h| h.record.start))
            .min();
        match open {
            None => {
                self.spans.clear();
                Some(pos)
            }
            Some(s) => {
                self.spans.retain(|&(_, e)| e > s);
                if self.spans.iter().any(|&(a, e)| a < s && s < e) {
                    None
                } else {
                    Some(s)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn piece(start: u64, stream: Stream, partial: bool, msg: &str) -> Piece {
        Piece {
            start,
            end: start + msg.len() as u64 + 10,
            timestamp_nanos: start as i64,
            stream,
            partial,
            flags: RecordFlags::NONE,
            message: Bytes::copy_from_slice(msg.as_bytes()),
        }
    }

    #[test]
    fn joins_interleaved_streams_and_reports_safe_resume_points() {
        let now = Instant::now();
        let mut j = Joiner::new(1024, None);
        let mut out = Vec::new();
        j.push(piece(0, Stream::Stdout, true, "ab"), now, &mut out); // [0,12)
        assert_eq!(j.resume_point(12), Some(0));
        j.push(piece(12, Stream::Stderr, true, "x"), now, &mut out); // [12,23)
        j.push(piece(23, Stream::Stdout, false, "cd"), now, &mut out); // [23,35)
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].message[..], b"abcd");
        assert_eq!((out[0].start, out[0].end), (0, 35));
        assert!(out[0].flags.contains(RecordFlags::PARTIAL_JOINED));
        // stderr assembly opened at 12, inside the emitted [0,35): no safe point.
        assert_eq!(j.resume_point(35), None);
        j.push(piece(35, Stream::Stderr, false, "y"), now, &mut out);
        assert_eq!(&out[1].message[..], b"xy");
        assert_eq!(j.resume_point(46), Some(46));
        assert!(j.is_clean());
    }

    #[test]
    fn truncates_and_flushes_incomplete() {
        let now = Instant::now();
        let mut j = Joiner::new(4, None);
        let mut out = Vec::new();
        j.push(piece(0, Stream::Stdout, false, "123456"), now, &mut out);
        assert_eq!(&out[0].message[..], b"1234");
        assert!(out[0].flags.contains(RecordFlags::TRUNCATED));
        j.push(piece(16, Stream::Stdout, true, "ab"), now, &mut out);
        j.push(piece(28, Stream::Stdout, true, "cde"), now, &mut out);
        assert!(!j.flush_idle(now, Duration::from_secs(1), &mut out));
        assert!(j.flush_idle(
            now + Duration::from_secs(2),
            Duration::from_secs(1),
            &mut out
        ));
        assert_eq!(&out[1].message[..], b"abcd");
        assert!(out[1]
            .flags
            .contains(RecordFlags::INCOMPLETE | RecordFlags::TRUNCATED));
        assert_eq!((out[1].start, out[1].end), (16, 41));
    }

    #[test]
    fn multiline_start_pattern_joins_stack_traces() {
        let now = Instant::now();
        let ml = MultilineConfig {
            start_pattern: Some(Regex::new(r"^\d{4}-").unwrap()),
            continuation_pattern: None,
            flush_timeout: Duration::from_millis(100),
        };
        let mut j = Joiner::new(1024, Some(ml));
        let mut out = Vec::new();
        j.push(piece(0, Stream::Stdout, false, "2024- boom"), now, &mut out);
        j.push(piece(20, Stream::Stdout, false, "  at a"), now, &mut out);
        j.push(piece(36, Stream::Stdout, false, "  at b"), now, &mut out);
        assert!(out.is_empty());
        assert_eq!(j.resume_point(52), Some(0));
        j.push(
            piece(52, Stream::Stdout, false, "2024- next"),
            now,
            &mut out,
        );
        assert_eq!(&out[0].message[..], b"2024- boom\n  at a\n  at b");
        assert!(out[0].flags.contains(RecordFlags::MULTILINE));
        assert_eq!((out[0].start, out[0].end), (0, 52));
        assert_eq!(j.resume_point(72), Some(52));
        assert!(j.flush_idle(
            now + Duration::from_millis(150),
            Duration::from_secs(5),
            &mut out
        ));
        assert_eq!(&out[1].message[..], b"2024- next");
        assert!(j.is_clean());
    }
}
