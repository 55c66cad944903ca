//! Per-file line decoding: format detection, CRI / docker / plain framing, and
//! the hand-off to the [`Joiner`].

use crate::cri::{decode_cri, decode_cri_cached};
use crate::docker::{decode_docker, DockerMessage};
use crate::joiner::{Joiner, Piece};
use crate::timestamp::TimestampCache;
use bytes::{Bytes, BytesMut};
use logferry_core::{LogFormat, Record, RecordFlags, Stream};
use std::time::Instant;

/// Guesses a file's format from one line (without `\n`): CRI, docker
/// json-file, or `fallback` when neither matches.
pub fn detect_format(line: &[u8], fallback: LogFormat) -> LogFormat {
    if decode_cri(line).is_some() {
        LogFormat::Cri
    } else if decode_docker(line).is_some() {
        LogFormat::Docker
    } else {
        fallback
    }
}

/// Counters of one decoding round.
#[derive(Clone, Copy, Default, Debug)]
pub struct DecodeStats {
    /// Lines that did not parse.
    pub unparsed: u64,
}

/// Decodes lines of one file into records.
#[derive(Debug)]
pub struct LineDecoder {
    format: Option<LogFormat>,
    fallback: LogFormat,
    joiner: Joiner,
    tmp: Vec<u8>,
    scratch: BytesMut,
    ts: TimestampCache,
    /// Counters since the last [`take_stats`](Self::take_stats).
    pub stats: DecodeStats,
}

impl LineDecoder {
    /// A decoder that detects the format from the first line it sees (unless
    /// `format` is given), using `fallback` when a first line is neither CRI nor docker.
    pub fn new(format: Option<LogFormat>, fallback: LogFormat, joiner: Joiner) -> LineDecoder {
        LineDecoder {
            format,
            fallback,
            joiner,
            tmp: Vec::new(),
            scratch: BytesMut::new(),
            ts: TimestampCache::default(),
            stats: DecodeStats::default(),
        }
    }

    /// The detected format, once a line was seen.
    pub fn format(&self) -> Option<LogFormat> {
        self.format
    }

    /// The joiner (for flushing and resume points).
    pub fn joiner(&mut self) -> &mut Joiner {
        &mut self.joiner
    }

    /// Decodes one line: `buf[range]` without its `\n`, starting at file offset
    /// `start` and ending (after the `\n`) at `end`. `now_nanos` is the time used
    /// for unparsed and plain lines. `extra` flags are added (`TRUNCATED` for a
    /// line cut by the reader).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn line(
        &mut self,
        buf: &Bytes,
        range: std::ops::Range<usize>,
        start: u64,
        end: u64,
        now_nanos: i64,
        extra: RecordFlags,
        now: Instant,
        out: &mut Vec<Record>,
    ) {
        let line = &buf[range.clone()];
        let format = *self
            .format
            .get_or_insert_with(|| detect_format(line, self.fallback));
        let piece = match format {
            LogFormat::Cri => decode_cri_cached(line, &mut self.ts).map(|d| Piece {
                start,
                end,
                timestamp_nanos: d.timestamp_nanos,
                stream: d.stream,
                partial: d.partial,
                flags: extra,
                message: buf.slice(range.start + d.message_start..range.end),
            }),
            LogFormat::Docker => decode_docker(line).and_then(|d| {
                self.tmp.clear();
                let (m, partial) = d.message(line, &mut self.tmp)?;
                let message = match m {
                    DockerMessage::Borrowed(r) => {
                        buf.slice(range.start + r.start..range.start + r.end)
                    }
                    DockerMessage::Unescaped(r) => {
                        if self.scratch.capacity() - self.scratch.len() < r.len() {
                            self.scratch.reserve(r.len().max(64 * 1024));
                        }
                        self.scratch.extend_from_slice(&self.tmp[r]);
                        self.scratch.split().freeze()
                    }
                };
                Some(Piece {
                    start,
                    end,
                    timestamp_nanos: d.timestamp_nanos,
                    stream: d.stream,
                    partial,
                    flags: extra,
                    message,
                })
            }),
            LogFormat::Plain => Some(Piece {
                start,
                end,
                timestamp_nanos: now_nanos,
                stream: Stream::Stdout,
                partial: false,
                flags: extra,
                message: buf.slice(range.clone()),
            }),
        };
        let piece = piece.unwrap_or_else(|| {
            self.stats.unparsed += 1;
            Piece {
                start,
                end,
                timestamp_nanos: now_nanos,
                stream: Stream::Stdout,
                partial: false,
                flags: extra | RecordFlags::UNPARSED,
                message: buf.slice(range),
            }
        });
        self.joiner.push(piece, now, out);
    }

    /// Returns and resets the counters.
    pub fn take_stats(&mut self) -> DecodeStats {
        std::mem::take(&mut self.stats)
    }
}

/// Decodes a whole in-memory buffer of complete lines (used by tests, the
/// benchmark and the fuzz targets): every `\n`-terminated line goes through
/// the decoder; a trailing line without `\n` is decoded too (its `end` is the
/// buffer end). Offsets are relative to the buffer start.
pub fn decode_buffer(dec: &mut LineDecoder, buf: &Bytes, now: Instant, out: &mut Vec<Record>) {
    let mut pos = 0;
    for nl in memchr::memchr_iter(b'\n', buf) {
        dec.line(
            buf,
            pos..nl,
            pos as u64,
            nl as u64 + 1,
            0,
            RecordFlags::NONE,
            now,
            out,
        );
        pos = nl + 1;
    }
    if pos < buf.len() {
        dec.line(
            buf,
            pos..buf.len(),
            pos as u64,
            buf.len() as u64,
            0,
            RecordFlags::NONE,
            now,
            out,
        );
    }
}
