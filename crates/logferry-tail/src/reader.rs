//! Reading one file: large positioned reads (`pread`, 256 KiB), line
//! splitting with `memchr`, oversize lines, and decoding into records.

use crate::decode::LineDecoder;
use bytes::Bytes;
use logferry_core::{Record, RecordFlags};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// Bytes requested per `read` system call.
pub const READ_SIZE: usize = 256 * 1024;

/// Scratch memory that [`FileReader::read_round`] reads into: one per
/// tailer, shared by all its readers, so that a round costs no allocation
/// and no zeroing of [`READ_SIZE`] bytes. What a round read is then copied
/// into a buffer of its exact size, which the round's records share.
///
/// Live tailing reads a few hundred bytes per file per round; allocating
/// and zeroing 256 KiB for each of those rounds (and faulting the fresh
/// pages in) was a third of the tailer's CPU (issue 14).
#[derive(Debug, Default)]
pub struct ReadBuffer {
    buf: Vec<u8>,
}

/// Outcome of one [`FileReader::read_round`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadRound {
    /// Bytes read from the file.
    pub bytes: u64,
    /// The read returned fewer bytes than asked: the reader is at end of file.
    pub eof: bool,
}

/// An open file being read line by line.
#[derive(Debug)]
pub struct FileReader {
    file: File,
    read_pos: u64,
    leftover: Vec<u8>,
    oversize: Option<(u64, Bytes)>,
    skip_partial_line: bool,
    max_line: usize,
    /// Records older than this (nanoseconds since the epoch) are skipped.
    pub lookback_cutoff: Option<i64>,
    /// The line decoder (format, joiner).
    pub decoder: LineDecoder,
}

impl FileReader {
    /// Reads `file` from `offset`, which must be a line start. Lines longer
    /// than `max_line` bytes (framing included) are cut to that length and
    /// flagged `TRUNCATED`; the rest of such a line is skipped.
    pub fn new(file: File, offset: u64, max_line: usize, decoder: LineDecoder) -> FileReader {
        FileReader {
            file,
            read_pos: offset,
            leftover: Vec::new(),
            oversize: None,
            skip_partial_line: false,
            max_line,
            lookback_cutoff: None,
            decoder,
        }
    }

    /// Starts at `offset`, which may be inside a line: bytes up to the next
    /// `\n` are skipped (`read_from: end`).
    pub fn start_mid_line(&mut self) {
        self.skip_partial_line = true;
    }

    /// Gives the file back (the reader's state is dropped).
    pub fn into_file(self) -> File {
        self.file
    }

    /// The file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Continues from `file`, which holds the same bytes at the same offsets
    /// from the read position on (a spooled copy of a deleted file).
    pub fn replace_file(&mut self, file: File) {
        self.file = file;
    }

    /// File offset of the next byte to read.
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    /// File offset after the last complete line fed to the decoder.
    pub fn consumed(&self) -> u64 {
        match &self.oversize {
            Some((start, _)) => *start,
            None => self.read_pos - self.leftover.len() as u64,
        }
    }

    /// Where reading can resume after a restart without losing or splitting a
    /// record (see [`Joiner::resume_point`](crate::joiner::Joiner::resume_point)).
    pub fn resume_point(&mut self) -> Option<u64> {
        if self.skip_partial_line {
            return None;
        }
        let consumed = self.consumed();
        self.decoder.joiner().resume_point(consumed)
    }

    /// Reads once (at most [`READ_SIZE`] bytes plus a pending partial line)
    /// through `scratch` and decodes every complete line into `out`. The
    /// records share one buffer of the bytes read (and the pending partial
    /// line before them).
    ///
    /// # Errors
    /// The I/O error of `pread`.
    pub fn read_round(
        &mut self,
        scratch: &mut ReadBuffer,
        now: Instant,
        now_nanos: i64,
        out: &mut Vec<Record>,
    ) -> io::Result<ReadRound> {
        let keep = self.leftover.len();
        let need = keep + READ_SIZE;
        let scratch_buf = &mut scratch.buf;
        if scratch_buf.len() < need {
            // Zeroed once, when it grows; reused by every later round.
            scratch_buf.resize(need, 0);
        }
        scratch_buf[..keep].copy_from_slice(&self.leftover);
        let n = loop {
            match self
                .file
                .read_at(&mut scratch_buf[keep..need], self.read_pos)
            {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.read_pos += n as u64;
        let round = ReadRound {
            bytes: n as u64,
            eof: n < READ_SIZE,
        };
        if n == 0 {
            return Ok(round);
        }
        let buf = Bytes::copy_from_slice(&scratch_buf[..keep + n]);
        if scratch_buf.len() > 2 * READ_SIZE {
            // Grown for one long line: give the memory back.
            *scratch_buf = Vec::new();
        }
        let base = self.read_pos - buf.len() as u64; // file offset of buf[0]
        let first = out.len();
        let mut pos = 0usize;
        let mut search_from = keep;
        if self.skip_partial_line || self.oversize.is_some() {
            match memchr::memchr(b'\n', &buf[search_from..]) {
                None => {
                    self.leftover.clear();
                    return Ok(round);
                }
                Some(i) => {
                    let nl = search_from + i;
                    if let Some((start, head)) = self.oversize.take() {
                        let len = head.len();
                        self.decoder.line(
                            &head,
                            0..len,
                            start,
                            base + nl as u64 + 1,
                            now_nanos,
                            RecordFlags::TRUNCATED,
                            now,
                            out,
                        );
                    }
                    self.skip_partial_line = false;
                    pos = nl + 1;
                    search_from = pos;
                }
            }
        }
        for i in memchr::memchr_iter(b'\n', &buf[search_from..]) {
            let nl = search_from + i;
            self.decoder.line(
                &buf,
                pos..nl,
                base + pos as u64,
                base + nl as u64 + 1,
                now_nanos,
                RecordFlags::NONE,
                now,
                out,
            );
            pos = nl + 1;
        }
        self.leftover.clear();
        let tail = &buf[pos..];
        if tail.len() > self.max_line {
            self.oversize = Some((base + pos as u64, buf.slice(pos..pos + self.max_line)));
        } else {
            self.leftover.extend_from_slice(tail);
        }
        self.apply_lookback(first, out);
        Ok(round)
    }

    fn apply_lookback(&self, first: usize, out: &mut Vec<Record>) {
        if let Some(cutoff) = self.lookback_cutoff {
            // In place, in order, in one pass (a read round of old records
            // removed one by one would be quadratic).
            let mut kept = first;
            for i in first..out.len() {
                if out[i].timestamp_nanos >= cutoff {
                    out.swap(kept, i);
                    kept += 1;
                }
            }
            out.truncate(kept);
        }
    }

    /// End of input for good (file deleted and drained, or run once): decodes a
    /// trailing line without `\n` (flagged `INCOMPLETE`) and flushes every open
    /// assembly. Afterwards [`consumed`](Self::consumed) equals the read position.
    pub fn flush_end(&mut self, now: Instant, now_nanos: i64, out: &mut Vec<Record>) {
        let first = out.len();
        if let Some((start, head)) = self.oversize.take() {
            let len = head.len();
            self.decoder.line(
                &head,
                0..len,
                start,
                self.read_pos,
                now_nanos,
                RecordFlags::TRUNCATED | RecordFlags::INCOMPLETE,
                now,
                out,
            );
        } else if !self.leftover.is_empty() && !self.skip_partial_line {
            let line = Bytes::from(std::mem::take(&mut self.leftover));
            let start = self.read_pos - line.len() as u64;
            self.decoder.line(
                &line,
                0..line.len(),
                start,
                self.read_pos,
                now_nanos,
                RecordFlags::INCOMPLETE,
                now,
                out,
            );
        }
        self.leftover.clear();
        self.skip_partial_line = false;
        self.decoder.joiner().flush_all(now, out);
        self.apply_lookback(first, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::joiner::Joiner;
    use logferry_core::LogFormat;
    use std::io::Write;

    fn reader(path: &std::path::Path) -> FileReader {
        let decoder = LineDecoder::new(
            Some(LogFormat::Cri),
            LogFormat::Cri,
            Joiner::new(1 << 20, None),
        );
        FileReader::new(File::open(path).unwrap(), 0, 1 << 20, decoder)
    }

    fn messages(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.message).into_owned())
            .collect()
    }

    /// One scratch buffer serves every reader of a tailer: a partial line
    /// pending in one reader is not disturbed by another reader's round in
    /// between, and records keep their bytes after the scratch is reused.
    #[test]
    fn readers_sharing_one_scratch_buffer_keep_their_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let mut fa = File::create(&pa).unwrap();
        let mut fb = File::create(&pb).unwrap();
        let (mut ra, mut rb) = (reader(&pa), reader(&pb));
        let mut scratch = ReadBuffer::default();
        let mut out = Vec::new();
        let now = Instant::now();

        fa.write_all(b"2026-11-22T13:45:10Z stdout F a1\n2026-11-22T13:45:10Z std")
            .unwrap();
        fb.write_all(b"2026-11-22T13:45:10Z stderr F b1 longer than the other\n2026-11-22T13:4")
            .unwrap();
        let round = ra.read_round(&mut scratch, now, 0, &mut out).unwrap();
        assert!(round.eof);
        rb.read_round(&mut scratch, now, 0, &mut out).unwrap();
        fa.write_all(b"out F a2\n").unwrap();
        fb.write_all(b"5:10Z stdout F b2\n").unwrap();
        ra.read_round(&mut scratch, now, 0, &mut out).unwrap();
        rb.read_round(&mut scratch, now, 0, &mut out).unwrap();
        assert_eq!(
            messages(&out),
            ["a1", "b1 longer than the other", "a2", "b2"]
        );
        assert_eq!(ra.consumed(), ra.read_pos());
        assert_eq!(rb.consumed(), rb.read_pos());

        // A line longer than a read round grows the scratch for a while.
        let long = "x".repeat(3 * READ_SIZE);
        writeln!(fa, "2026-11-22T13:45:11Z stdout F {long}").unwrap();
        out.clear();
        while !ra.read_round(&mut scratch, now, 0, &mut out).unwrap().eof {}
        assert_eq!(messages(&out), [long]);
    }
}
