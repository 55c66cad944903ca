//! Housekeeping: the timers. Flush timeouts of partial and multiline
//! assemblies, the safety poll (`fstat` of open files, which catches what
//! inotify missed), the open-file limit, and checkpoint saves.

use super::confine::OpenError;
use super::discovery::DirKind;
use super::table::{FileState, Handle};
use super::Runner;
use crate::decode::LineDecoder;
use crate::error::Error;
use crate::events::StateFile;
use crate::identity::{dev_ino, fingerprint_matches};
use crate::joiner::Joiner;
use crate::reader::FileReader;
use logferry_core::DevIno;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// An active file without new data for this long is polled only every
/// [`IDLE_POLL_EVERY`] polls: inotify's `IN_MODIFY` is what reads it, the poll
/// is a safety net, and 1,000 quiet files should cost next to nothing.
const IDLE_POLL_AFTER: Duration = Duration::from_secs(10);
/// See [`IDLE_POLL_AFTER`]: one poll in this many (polls run once a second),
/// so a quiet file is `fstat`ed every 30 s. inotify misses nothing short of
/// a queue overflow, which rescans and compares every file's size at once;
/// the poll is the net under that net (Fluent Bit's `refresh_interval`
/// default is 60 s). 1,000 quiet files: 33 `fstat`s a second, not 200.
const IDLE_POLL_EVERY: u32 = 30;

impl Runner {
    /// Closes idle, fully read, active files while more than `max_open_files` are open.
    pub(super) fn enforce_open_limit(&mut self, keep: Option<DevIno>) {
        if self.table.len() <= self.cfg.max_open_files {
            return;
        }
        let (open, _) = self.table.open_count();
        if open <= self.cfg.max_open_files {
            return;
        }
        let mut idle: Vec<(Instant, DevIno)> = self
            .table
            .values_mut()
            .filter(|t| {
                Some(t.key) != keep && t.state == FileState::Active && !t.queued && !t.finalized
            })
            .filter_map(|t| match &mut t.handle {
                Handle::Reading(r) => (r.decoder.joiner().is_clean()
                    && r.consumed() == r.read_pos())
                .then_some((t.last_data, t.key)),
                _ => None,
            })
            .collect();
        idle.sort();
        for (_, key) in idle.into_iter().take(open - self.cfg.max_open_files) {
            let t = self.table.tracked(key);
            if let Handle::Reading(r) = &t.handle {
                let offset = r.read_pos();
                let format = r.decoder.format().unwrap_or(self.fallback);
                t.handle = Handle::Closed { offset, format };
            }
        }
    }

    /// Reopens a file closed for the open-file limit, if it is still the
    /// same file at its path, and queues it.
    pub(super) fn reopen(&mut self, key: DevIno) {
        let max_line = self.max_line();
        let Some(t) = self.table.get_mut(key) else {
            return;
        };
        let Handle::Closed { offset, format } = t.handle else {
            return;
        };
        // Through the confinement as at first open: the path may have been
        // replaced by a link or a FIFO meanwhile.
        let file = match self.roots.open_file(&t.path) {
            Ok(f) => f,
            Err(OpenError::Refused(reason)) => {
                self.refusals.refuse(&t.path, reason, &*self.events);
                return;
            }
            Err(OpenError::Io(_)) => return,
        };
        if dev_ino(&file).ok() != Some(key) {
            return;
        }
        let fp = t.fingerprint();
        if !fingerprint_matches(&file, fp, t.fingerprint_len).unwrap_or(false) {
            return;
        }
        let decoder = LineDecoder::new(
            Some(format),
            self.fallback,
            Joiner::new(self.cfg.max_record_bytes, self.cfg.multiline.clone()),
        );
        t.handle = Handle::Reading(Box::new(FileReader::new(file, offset, max_line, decoder)));
        self.table.enqueue(key, false);
        self.enforce_open_limit(Some(key));
    }

    /// The longest line a reader holds: `2 × max_record_bytes + 64 KiB`.
    pub(super) fn max_line(&self) -> usize {
        self.cfg
            .max_record_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }

    /// Housekeeping (every 200 ms while an assembly may be waiting, else once
    /// a second): flush timeouts of quiet files' assemblies; with
    /// `poll`, the safety poll (`fstat` of the open files, idle ones only
    /// every [`IDLE_POLL_EVERY`]th time) and the open-file limit.
    pub(super) fn housekeeping(&mut self, poll: bool) {
        let now = Instant::now();
        if self.flush.due(self.summary.bytes, now) {
            self.flush_timeouts(now);
        }
        if !poll {
            return;
        }
        self.polls = self.polls.wrapping_add(1);
        // Without inotify no `IN_MODIFY` reads quiet files: poll them all.
        let poll_idle = self.polling || self.polls % IDLE_POLL_EVERY == 0;
        let mut to_queue = Vec::new();
        let mut to_identify = Vec::new();
        let mut to_delete = Vec::new();
        let mut to_reopen = Vec::new();
        let mut to_find = Vec::new();
        for t in self.table.values_mut() {
            match &t.handle {
                Handle::Reading(r) => {
                    if !poll_idle
                        && t.state == FileState::Active
                        && now.duration_since(t.last_data) >= IDLE_POLL_AFTER
                    {
                        continue;
                    }
                    let Ok(m) = r.file().metadata() else { continue };
                    if m.nlink() == 0 && t.state != FileState::Deleted {
                        to_delete.push(t.key);
                    }
                    if m.len() != r.read_pos() || (t.state != FileState::Active && !t.finalized) {
                        to_queue.push(t.key);
                    }
                }
                Handle::Unidentified(f) => {
                    let Ok(m) = f.metadata() else { continue };
                    if m.nlink() == 0 && t.state != FileState::Deleted {
                        to_delete.push(t.key);
                    }
                    if m.len() > 0 {
                        to_identify.push(t.key);
                    }
                }
                Handle::Closed { offset, .. } => match std::fs::metadata(&t.path) {
                    Ok(m) if DevIno::new(m.dev(), m.ino()) == t.key => {
                        if m.len() != *offset {
                            to_reopen.push(t.key);
                        }
                    }
                    _ => to_find.push(t.key),
                },
            }
        }
        // Identified now, not when reading gets to them (which waits while
        // downstream is slow): their checkpoint entry is then written within
        // a second, so that a `.gz` copy can be matched after a restart.
        for key in to_identify {
            self.identify(key);
            self.table.enqueue(key, false);
        }
        for key in to_delete {
            self.mark_deleted(key);
        }
        // A closed file no longer at its path: look for it under a new name
        // (rotation) in its directory; if it is nowhere, it was deleted.
        for key in to_find {
            let Some(dir) = self
                .table
                .get(key)
                .and_then(|t| t.path.parent().map(Path::to_path_buf))
            else {
                continue;
            };
            let kind = match self.watcher.kind_of(&dir) {
                Some(k @ DirKind::Files(_)) => k,
                _ => self.layout.leaf_kind(),
            };
            self.scan_dir(&dir, kind);
            let still_lost = self.table.get(key).is_some_and(|t| {
                t.is_closed()
                    && std::fs::metadata(&t.path)
                        .map(|m| DevIno::new(m.dev(), m.ino()) != key)
                        .unwrap_or(true)
            });
            if still_lost {
                self.mark_deleted(key);
            }
        }
        for key in to_queue {
            self.table.enqueue(key, false);
        }
        for key in to_reopen {
            self.reopen(key);
        }
        self.enforce_open_limit(None);
        self.retry_spool();
        let (open, deleted) = self.table.open_count();
        self.events.files_open(open, deleted);
    }

    /// Emits the assemblies (CRI `P` chunks, held multiline records) whose
    /// flush timeout passed, of files read to their end, and notes when the
    /// next one is due.
    fn flush_timeouts(&mut self, now: Instant) {
        let timeout = self.cfg.partial_flush_timeout;
        let mut flushes = Vec::new();
        let mut earliest: Option<Instant> = None;
        for t in self.table.values_mut() {
            if let Handle::Reading(r) = &mut t.handle {
                let Some(due) = r.decoder.joiner().next_deadline(timeout) else {
                    continue;
                };
                // Only a quiet file's assembly is flushed: while reading waits
                // (backpressure) with bytes still unread, its continuation is
                // most likely among them.
                if due <= now
                    && r.file()
                        .metadata()
                        .map_or(true, |m| m.len() <= r.read_pos())
                {
                    let mut records = Vec::new();
                    r.decoder.joiner().flush_idle(now, timeout, &mut records);
                    if !records.is_empty() {
                        let resume = r.resume_point();
                        flushes.push((t.key, records, resume));
                    }
                }
                if let Some(d) = r.decoder.joiner().next_deadline(timeout) {
                    earliest = Some(earliest.map_or(d, |e| e.min(d)));
                }
            }
        }
        self.flush.earliest = earliest;
        for (key, records, resume) in flushes {
            self.summary.records += records.len() as u64;
            self.events.records_read(records.len() as u64);
            self.emit(key, records, resume);
        }
    }

    /// The checkpoint interval: writes changed checkpoints. A failed write
    /// (`ENOSPC`, `EIO`, `EMFILE`…) is logged, reported
    /// ([`TailEvents::state_write`](crate::TailEvents::state_write),
    /// [`TailEvents::state_write_failing`](crate::TailEvents::state_write_failing))
    /// and retried with backoff (1 s doubling to 30 s); reading and shipping go
    /// on meanwhile, and the next successful write catches every checkpoint up.
    pub(super) fn checkpoint_tick(&mut self) {
        let now = Instant::now();
        if !self.ckpt_backoff.due(now) {
            return;
        }
        match self.save_checkpoints(false) {
            Ok(()) => {
                if self.ckpt_backoff.succeeded() {
                    tracing::info!(path = %self.store.path().display(), "checkpoints written again");
                    self.events
                        .state_write_failing(StateFile::Checkpoints, false);
                }
            }
            Err(e) => {
                let first = !self.ckpt_backoff.failing();
                let retry_in = self.ckpt_backoff.failed(now);
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::error!(error = %e, cause, ?retry_in,
                    "cannot write checkpoints (is data_dir's filesystem full?); reading and shipping go on, checkpoints are written again with backoff (a restart meanwhile ships the records since the last written checkpoint again, as duplicates)");
                if first {
                    self.events
                        .state_write_failing(StateFile::Checkpoints, true);
                }
            }
        }
    }

    /// Copies every file's checkpoint into the store and persists the store
    /// when something changed (or `force`).
    ///
    /// # Errors
    /// [`Error::CheckpointWrite`] when the file cannot be written.
    pub(super) fn save_checkpoints(&mut self, force: bool) -> Result<(), Error> {
        let seen = (self.ckpt_events, self.summary.files, self.table.len());
        if self.ckpt_pass.due(seen, Instant::now()) || force {
            let mut lag = 0u64;
            for t in self.table.values() {
                let (Some(src), Some(cp)) = (&t.source, t.tracker.checkpoint()) else {
                    continue;
                };
                self.store.set(src.file, cp, &t.path);
                let size = match &t.handle {
                    Handle::Reading(r) => r.read_pos().max(t.size_hint),
                    _ => t.size_hint,
                };
                lag += size.saturating_sub(cp);
            }
            self.ckpt_pass.lag = lag;
        }
        let lag = self.ckpt_pass.lag;
        if self.store.is_dirty() || force {
            let saved = self.store.save(force);
            self.events
                .state_write(StateFile::Checkpoints, saved.is_ok());
            saved?;
            self.events.checkpoints_written(self.store.len(), lag);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{kube_runner, write_log, LOG_A};
    use crate::checkpoint::CheckpointStore;
    use crate::config::RunMode;
    use crate::events::StateFile;

    /// Regression (issue 10, item 4): a checkpoint write that failed
    /// (`ENOSPC` on a full `data_dir`) ended the tailer, and with it the process.
    #[test]
    fn a_failed_checkpoint_write_is_counted_retried_with_backoff_and_catches_up() {
        let (tmp, mut r, ev) = kube_runner(RunMode::Follow);
        write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        r.fill_outbox();
        for b in r.outbox.drain(..).collect::<Vec<_>>() {
            r.on_ack(b.ack);
        }
        // A directory where the temp file goes: every write fails (EISDIR).
        let data = tmp.path().join("data");
        let blocker = data.join("checkpoints.json.tmp");
        std::fs::create_dir(&blocker).unwrap();
        r.checkpoint_tick();
        assert_eq!(
            *ev.writes.lock().unwrap(),
            [(StateFile::Checkpoints, false)]
        );
        assert_eq!(
            *ev.failing.lock().unwrap(),
            [(StateFile::Checkpoints, true)]
        );
        assert!(r.store.is_dirty(), "kept for the next try");
        r.checkpoint_tick();
        assert_eq!(
            ev.writes.lock().unwrap().len(),
            1,
            "not again before the backoff"
        );
        r.ckpt_backoff.next = Some(std::time::Instant::now());
        r.checkpoint_tick();
        assert_eq!(ev.writes.lock().unwrap().len(), 2, "tried again after it");
        assert_eq!(r.ckpt_backoff.failures, 2, "the backoff grows");
        assert_eq!(ev.failing.lock().unwrap().len(), 1, "failing reported once");

        // Space again: the next write catches every checkpoint up.
        std::fs::remove_dir(&blocker).unwrap();
        r.ckpt_backoff.next = Some(std::time::Instant::now());
        r.checkpoint_tick();
        assert_eq!(
            ev.writes.lock().unwrap().last(),
            Some(&(StateFile::Checkpoints, true))
        );
        assert_eq!(
            ev.failing.lock().unwrap().last(),
            Some(&(StateFile::Checkpoints, false))
        );
        let saved = CheckpointStore::load(&data).unwrap();
        assert_eq!(
            saved.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [LOG_A.len() as u64]
        );
        assert!(!blocker.exists());
    }
}
