//! Reading: identifying a file by its first line, reading it from its
//! checkpoint, detecting copytruncate, cutting records into batches,
//! routing acknowledgements back and releasing files read to their end.

use super::table::{FileState, Handle};
use super::{now_nanos, Runner};
use crate::checkpoint::AckTracker;
use crate::config::{ReadFrom, RunMode};
use crate::decode::LineDecoder;
use crate::events::{LossReason, RotationKind};
use crate::identity::{fingerprint_matches, read_head};
use crate::joiner::Joiner;
use crate::reader::FileReader;
use logferry_core::{AckToken, DevIno, FileId, Record, RecordBatch, Source, SourceId};
use std::sync::Arc;
use std::time::Instant;

/// Most bytes read per turn of the select loop, from one file and over all
/// files (1 MiB, four read rounds): a file that yields no records for what
/// it holds cannot keep the tailer from acknowledgements, inotify events and
/// the stop signal for longer than that.
pub(super) const READ_BUDGET: u64 = 1 << 20;

impl Runner {
    /// Identifies a file (first line) and sets up its reader at the start
    /// offset given by its checkpoint or the start policy. Returns false while
    /// the first line is incomplete.
    pub(super) fn identify(&mut self, key: DevIno) -> bool {
        let max_line = self.max_line();
        let t = self.table.tracked(key);
        let Handle::Unidentified(file) = &t.handle else {
            return true;
        };
        let final_ = t.state == FileState::Deleted || self.mode == RunMode::Once;
        let head = match read_head(file, self.fallback, final_) {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(path = %t.path.display(), error = %e, "failed to read log file head");
                return false;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut mid_line = false;
        let mut lookback = None;
        let ident = t.ident;
        let offset = match self.store.get(FileId::new(ident, head.fingerprint)) {
            Some(c) => {
                if c.offset > size {
                    self.events.rotation_detected(RotationKind::Truncate);
                    0
                } else {
                    c.offset
                }
            }
            _ if t.initial && self.cfg.read_from == ReadFrom::End => {
                mid_line = true;
                size
            }
            _ => {
                if t.initial {
                    lookback = self.cfg.lookback.map(|d| now_nanos() - d.as_nanos() as i64);
                }
                0
            }
        };
        let offset = offset.max(t.min_offset);
        let Handle::Unidentified(file) = std::mem::replace(
            &mut t.handle,
            Handle::Closed {
                offset: 0,
                format: head.format,
            },
        ) else {
            unreachable!()
        };
        // read_from: end lands on a line start when the byte before is `\n`.
        if mid_line && offset > 0 {
            let mut b = [0u8];
            mid_line = !matches!(std::os::unix::fs::FileExt::read_at(&file, &mut b, offset - 1), Ok(1) if b[0] == b'\n');
        } else {
            mid_line = false;
        }
        let decoder = LineDecoder::new(
            Some(head.format),
            self.fallback,
            Joiner::new(self.cfg.max_record_bytes, self.cfg.multiline.clone()),
        );
        let mut reader = FileReader::new(file, offset, max_line, decoder);
        reader.lookback_cutoff = lookback;
        if mid_line {
            reader.start_mid_line();
        }
        self.next_source_id += 1;
        let id = SourceId(self.next_source_id);
        let kube = self.layout.kube_path(&t.path);
        let container_id = match &kube {
            Some(k) => self.container_ids.find(k, self.layout.containers_dir()),
            None => None,
        };
        let t = self.table.tracked(key);
        let source = Arc::new(Source {
            id,
            file: FileId::new(ident, head.fingerprint),
            path: t.path.clone(),
            kube,
            container_id,
            format: head.format,
        });
        t.fingerprint_len = head.fingerprint_len;
        t.tracker = AckTracker::new(if mid_line { None } else { Some(offset) });
        t.next_seq = 0;
        t.handle = Handle::Reading(Box::new(reader));
        t.source = Some(source.clone());
        self.table.bind_source(id, key);
        self.summary.files += 1;
        self.events.file_opened(&source);
        true
    }

    /// Detects copytruncate: the file shrank below the read position, or its
    /// first line changed. Resets the file to offset 0 under a new identity.
    fn check_truncation(&mut self, key: DevIno) {
        let t = self.table.tracked(key);
        let Handle::Reading(r) = &t.handle else {
            return;
        };
        let size = match r.file().metadata() {
            Ok(m) => m.len(),
            Err(_) => return,
        };
        let fp = t.fingerprint();
        let shrunk = size < r.read_pos();
        let rewritten = !shrunk
            && t.check_fingerprint
            && r.read_pos() > 0
            && !fingerprint_matches(r.file(), fp, t.fingerprint_len).unwrap_or(true);
        t.check_fingerprint = false;
        if !shrunk && !rewritten {
            t.size_hint = t.size_hint.max(size);
            return;
        }
        self.events.rotation_detected(RotationKind::Truncate);
        let lost = t.size_hint.saturating_sub(r.read_pos());
        if lost > 0 {
            self.events
                .bytes_lost(lost, LossReason::TruncatedBeforeRead);
            tracing::error!(path = %t.path.display(), bytes = lost, "log file truncated before these bytes were read");
        }
        tracing::info!(path = %t.path.display(), "copytruncate detected; reading again from offset 0");
        let Handle::Reading(r) = std::mem::replace(
            &mut t.handle,
            Handle::Closed {
                offset: 0,
                format: self.fallback,
            },
        ) else {
            unreachable!()
        };
        let file = r.into_file();
        let retired = t
            .source
            .take()
            .map(|src| (src, std::mem::take(&mut t.tracker)));
        t.handle = Handle::Unidentified(file);
        t.initial = false;
        t.size_hint = size;
        if let Some((src, old)) = retired {
            self.store.remove(src.file);
            self.table.unbind_source(src.id);
            if old.unacked() > 0 {
                self.retired.insert(src.id, old);
            }
        }
    }

    /// Reads queued files until a batch is cut, the queues are empty, or
    /// [`READ_BUDGET`] bytes were read in this call (then the select loop
    /// runs once before reading goes on).
    pub(super) fn fill_outbox(&mut self) {
        let start = self.summary.bytes;
        while self.outbox.is_empty() && self.summary.bytes - start < READ_BUDGET {
            let Some(key) = self.table.pop_queued() else {
                return;
            };
            let Some(t) = self.table.get(key) else {
                continue;
            };
            if t.finalized || t.is_closed() {
                continue;
            }
            if t.is_unidentified() && !self.identify(key) {
                // First line incomplete: a deleted or finished file has nothing to offer.
                let t = self.table.tracked(key);
                if t.state == FileState::Deleted || self.mode == RunMode::Once {
                    t.finalized = true;
                    self.maybe_release(key);
                }
                continue;
            }
            self.check_truncation(key);
            if self.table.tracked(key).is_unidentified() && !self.identify(key) {
                continue;
            }
            self.read_file(key);
        }
    }

    fn read_file(&mut self, key: DevIno) {
        let max_records = self.cfg.batch_max_records;
        let max_bytes = self.cfg.batch_max_bytes;
        let once = self.mode == RunMode::Once;
        let rotated_idle = self.cfg.partial_flush_timeout;
        let t = self.table.tracked(key);
        let Handle::Reading(r) = &mut t.handle else {
            return;
        };
        let now = Instant::now();
        let wall = now_nanos();
        let mut records: Vec<Record> = Vec::new();
        let mut bytes = 0u64;
        let mut eof = false;
        let mut msg_bytes = 0usize;
        loop {
            let before = records.len();
            match r.read_round(&mut self.read_buf, now, wall, &mut records) {
                Ok(round) => {
                    bytes += round.bytes;
                    if round.eof {
                        eof = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), error = %e, "failed to read log file");
                    eof = true;
                }
            }
            msg_bytes += records[before..]
                .iter()
                .map(|r| r.message.len())
                .sum::<usize>();
            // Bounded per turn also when nothing comes out (one long line
            // without `\n`, records all before `lookback`): acks, events and
            // SIGTERM wait at most one turn.
            if eof || records.len() >= max_records || msg_bytes >= max_bytes || bytes >= READ_BUDGET
            {
                break;
            }
        }
        if bytes > 0 {
            t.last_data = now;
        }
        t.size_hint = t.size_hint.max(r.read_pos());
        let finalize = eof
            && (once
                || t.state == FileState::Deleted
                || (t.state == FileState::Rotated
                    && now.duration_since(t.last_data) >= rotated_idle));
        if finalize {
            r.flush_end(now, wall, &mut records);
            t.finalized = true;
        }
        if eof {
            t.check_fingerprint = true;
        }
        let stats = r.decoder.take_stats();
        let resume = r.resume_point();
        let truncated = records
            .iter()
            .filter(|r| r.flags.contains(logferry_core::RecordFlags::TRUNCATED))
            .count() as u64;
        self.summary.bytes += bytes;
        self.summary.records += records.len() as u64;
        if bytes > 0 {
            self.events.bytes_read(bytes);
        }
        if !records.is_empty() {
            self.events.records_read(records.len() as u64);
        }
        if stats.unparsed > 0 {
            self.events.lines_unparsed(stats.unparsed);
        }
        if truncated > 0 {
            self.events.records_truncated(truncated);
        }
        self.emit(key, records, resume);
        let t = self.table.tracked(key);
        if !eof {
            self.table.enqueue(key, false);
        } else if t.finalized {
            self.maybe_release(key);
        }
    }

    /// Cuts `records` into batches, registers them with the file's tracker
    /// (the last one carries `resume`) and queues them for sending.
    pub(super) fn emit(&mut self, key: DevIno, mut records: Vec<Record>, resume: Option<u64>) {
        let t = self.table.tracked(key);
        let Some(source) = t.source.clone() else {
            return;
        };
        if records.is_empty() {
            t.tracker.push_preacked(resume);
            return;
        }
        while !records.is_empty() {
            let mut n = 0;
            let mut b = 0;
            while n < records.len()
                && n < self.cfg.batch_max_records
                && (n == 0 || b + records[n].message.len() <= self.cfg.batch_max_bytes)
            {
                b += records[n].message.len();
                n += 1;
            }
            let rest = records.split_off(n);
            let seq = t.next_seq;
            t.next_seq += 1;
            t.tracker
                .push_batch(seq, if rest.is_empty() { resume } else { None });
            self.outbox.push_back(RecordBatch {
                source: source.clone(),
                ack: AckToken {
                    source: source.id,
                    seq,
                },
                records,
                meta: None,
            });
            records = rest;
        }
    }

    pub(super) fn on_ack(&mut self, token: AckToken) {
        self.ckpt_events = self.ckpt_events.wrapping_add(1);
        if let Some(key) = self.table.by_source(token.source) {
            let t = self.table.tracked(key);
            if t.tracker.ack(token.seq) {
                self.sent_unacked = self.sent_unacked.saturating_sub(1);
            }
            if t.finalized {
                self.maybe_release(key);
            }
        } else if let Some(tr) = self.retired.get_mut(&token.source) {
            if tr.ack(token.seq) {
                self.sent_unacked = self.sent_unacked.saturating_sub(1);
            }
            if tr.unacked() == 0 {
                self.retired.remove(&token.source);
            }
        }
    }

    /// Releases a finalized file once every batch is acknowledged.
    pub(super) fn maybe_release(&mut self, key: DevIno) {
        let Some(t) = self.table.get(key) else {
            return;
        };
        if !t.finalized || t.tracker.unacked() > 0 {
            return;
        }
        let t = self.untrack(key).expect("tracked");
        if let Some(src) = &t.source {
            if let Some(cp) = t.tracker.checkpoint() {
                self.store.set(src.file, cp, &t.path);
            }
            self.events.file_released(src);
        }
        if t.state != FileState::Deleted {
            let size = match &t.handle {
                Handle::Reading(r) => r.read_pos(),
                _ => t.size_hint,
            };
            self.finished.insert(key, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{kube_runner, kube_runner_with, write_log, LOG_A};
    use super::READ_BUDGET;
    use crate::config::RunMode;
    use crate::reader::READ_SIZE;
    use std::time::Duration;

    /// Calls `fill_outbox` until the queues are empty; returns the bytes read
    /// by each call that read something.
    fn turns(r: &mut super::Runner) -> Vec<u64> {
        let mut out = Vec::new();
        while !r.table.queues_empty() {
            let before = r.summary.bytes;
            r.fill_outbox();
            r.outbox.clear();
            out.push(r.summary.bytes - before);
            assert!(out.len() < 10_000, "reading does not end");
        }
        out
    }

    #[test]
    fn a_long_line_without_newline_is_read_one_budget_per_turn() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let mut body = LOG_A.to_vec();
        body.extend(std::iter::repeat_n(b'x', 5 << 20));
        let dir = write_log(tmp.path(), "0.log", &body);
        r.full_scan();
        r.initial_scan = false;
        let turns = turns(&mut r);
        assert!(turns.len() >= 5, "{turns:?}");
        assert!(
            turns.iter().all(|&b| b <= READ_BUDGET + READ_SIZE as u64),
            "{turns:?}"
        );
        assert_eq!(turns.iter().sum::<u64>(), body.len() as u64);
        assert!(r.table.at_path(&dir.join("0.log")).is_some());
    }

    #[test]
    fn records_all_before_lookback_are_skipped_one_budget_per_turn() {
        let (tmp, mut r, _ev) = kube_runner_with(RunMode::Follow, |c| {
            c.lookback = Some(Duration::from_secs(60));
        });
        let mut body = Vec::new();
        while body.len() < 4 << 20 {
            body.extend_from_slice(LOG_A);
        }
        // LOG_A's timestamps are in 2026-11; make them old for any clock.
        let body: Vec<u8> = String::from_utf8(body)
            .unwrap()
            .replace("2026-11-22", "2001-01-01")
            .into_bytes();
        write_log(tmp.path(), "0.log", &body);
        r.full_scan();
        r.initial_scan = false;
        let turns = turns(&mut r);
        assert!(turns.len() >= 4, "{turns:?}");
        assert!(
            turns.iter().all(|&b| b <= READ_BUDGET + READ_SIZE as u64),
            "{turns:?}"
        );
        assert_eq!(r.summary.records, 0, "every record is before lookback");
    }
}
