//! Deleted and rotated-away files: a deleted file's unacknowledged bytes
//! are copied to the spool and read from the copy; a gzipped rotated file
//! holding the unread tail of a file rotated while logferry was down is
//! decompressed and read; the limits on held-open deleted files and bytes
//! close the oldest (a counted, logged loss).

use super::table::{FileState, Handle, Tracked};
use super::{now_nanos, Runner};
use crate::events::{LossReason, RotationKind, StateFile};
use crate::identity::{dev_ino, read_head};
use crate::spool::{Spool, Spooled};
use logferry_core::{DevIno, FileId, KubeLogPath};
use std::fs::File;
use std::io::Seek;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

/// What [`Runner::spool_deleted`] did.
#[derive(Debug)]
enum Spooling {
    /// Copied: the file is read from the copy, under this key.
    Spooled(DevIno),
    /// Nothing to copy (all acknowledged, a `.gz` copy exists, unidentified).
    NotNeeded,
    /// The spool holds `max_deleted_bytes` already.
    OverLimit,
    /// The filesystem would keep less than `spool_min_free`: `bytes` to copy, `free` bytes.
    NoRoom { bytes: u64, free: u64 },
    /// The copy failed (`ENOSPC`, `EIO`…); nothing was left behind.
    Failed(std::io::Error),
}

impl Runner {
    /// Marks a file unlinked: it is spooled (see [`Runner::spool_deleted`])
    /// and read first; the held-open limits apply.
    pub(super) fn mark_deleted(&mut self, key: DevIno) {
        let Some(t) = self.table.get_mut(key) else {
            return;
        };
        if t.state == FileState::Deleted {
            return;
        }
        if let Handle::Closed { offset, .. } = t.handle {
            // Closed for the fd limit and gone: nothing left to read. Its inode
            // is free and may go to a new file at once, so the entry goes now.
            tracing::error!(path = %t.path.display(), offset, "log file deleted while closed for the open-file limit; its unread tail (if any) is lost");
            self.forget_deleted(key);
            return;
        }
        if t.state == FileState::Active {
            self.events.rotation_detected(RotationKind::Rename);
        }
        t.state = FileState::Deleted;
        t.deleted_since = Some(Instant::now());
        let key = match self.spool_deleted(key) {
            Spooling::Spooled(new_key) => new_key,
            Spooling::NoRoom { bytes, free } => {
                let path = &self.table.tracked(key).path;
                tracing::warn!(path = %path.display(), bytes, free, min_free = %self.cfg.spool_min_free,
                    "not spooling a deleted log file: it would leave less than spool_min_free on data_dir's filesystem; its unacknowledged bytes are held only by its open descriptor (copying is tried again as space frees up)");
                self.unspooled.insert(key, false);
                key
            }
            Spooling::Failed(e) => {
                let path = &self.table.tracked(key).path;
                tracing::warn!(path = %path.display(), error = %e,
                    "failed to spool a deleted log file; its unacknowledged bytes are held only by its open descriptor (retried with backoff)");
                self.unspooled.insert(key, true);
                self.spool_failed();
                key
            }
            Spooling::NotNeeded | Spooling::OverLimit => key,
        };
        self.table.enqueue(key, true);
        self.enforce_deleted_limits();
    }

    /// Copies a deleted file's unacknowledged bytes to the spool and reads
    /// from the copy (see [`crate::spool`]), unless everything is acknowledged,
    /// kubelet left a `.gz` copy (read back after a restart), the spool would
    /// exceed `max_deleted_bytes`, or the filesystem would keep less than
    /// `spool_min_free`. In every case but [`Spooling::Spooled`] only the open
    /// descriptor holds the bytes.
    fn spool_deleted(&mut self, key: DevIno) -> Spooling {
        if self.table.tracked(key).is_unidentified() && !self.identify(key) {
            return Spooling::NotNeeded;
        }
        let (_, spool_bytes) = self.table.spool_usage();
        let t = self.table.tracked(key);
        let (Handle::Reading(r), Some(src)) = (&mut t.handle, &t.source) else {
            return Spooling::NotNeeded;
        };
        let size = r.file().metadata().map(|m| m.len()).unwrap_or(0);
        let start = t.tracker.checkpoint().unwrap_or(0).min(size);
        if start == size && t.tracker.unacked() == 0 {
            return Spooling::NotNeeded;
        }
        let gz = format!("{}.gz", t.path.display());
        if KubeLogPath::parse(&t.path).is_some() && Path::new(&gz).exists() {
            return Spooling::NotNeeded;
        }
        let bytes = Spool::copy_bytes(size, start);
        if spool_bytes + bytes > self.cfg.max_deleted_bytes {
            tracing::warn!(path = %t.path.display(), bytes, spool_bytes,
                "spool full (max_deleted_bytes): a deleted file's unacknowledged bytes are held only by its open descriptor");
            return Spooling::OverLimit;
        }
        match self.spool.room(bytes, self.cfg.spool_min_free) {
            Ok(Ok(())) => {}
            Ok(Err(free)) => return Spooling::NoRoom { bytes, free },
            Err(e) => return Spooling::Failed(e),
        }
        let fingerprint = src.file.fingerprint;
        let saved = self
            .spool
            .save(r.file(), src.file, start, &t.path)
            .and_then(|(copy, bytes)| Ok((dev_ino(&copy)?, copy, bytes)));
        self.events.state_write(StateFile::Spool, saved.is_ok());
        let (new_key, copy, bytes) = match saved {
            Ok(c) => c,
            Err(e) => return Spooling::Failed(e),
        };
        // The deleted file's descriptor closes here, and its inode may be
        // handed to the next new file at once: the entry moves to the copy's key.
        r.replace_file(copy);
        t.spooled = Some((fingerprint, bytes));
        tracing::debug!(path = %t.path.display(), start, bytes, "spooled a deleted log file's unacknowledged bytes");
        self.table.rekey(key, new_key);
        self.report_spool();
        Spooling::Spooled(new_key)
    }

    /// The safety poll's part for the spool: deleted files that could not be
    /// spooled (no room above `spool_min_free`, or a failed write) are
    /// copied again once space frees up; after a failed write not before the
    /// backoff (1 s doubling to 30 s) has passed. Files released meanwhile
    /// are no longer waiting.
    pub(super) fn retry_spool(&mut self) {
        let table = &self.table;
        self.unspooled.retain(|key, _| {
            table.get(*key).is_some_and(|t| {
                // Read to its end (`finalized`) is no reason: its bytes are
                // still unacknowledged until it is released.
                // Read to its end (`finalized`) is no reason: its bytes are
                // still unacknowledged until it is released.
                t.state == FileState::Deleted
                    && t.spooled.is_none()
                    && matches!(t.handle, Handle::Reading(_))
            })
        });
        let now = Instant::now();
        if !self.unspooled.is_empty() && self.spool_backoff.due(now) {
            let keys: Vec<DevIno> = self.unspooled.keys().copied().collect();
            let mut failed = false;
            for key in keys {
                match self.spool_deleted(key) {
                    Spooling::Spooled(new_key) => {
                        self.unspooled.remove(&key);
                        let path = &self.table.tracked(new_key).path;
                        tracing::info!(path = %path.display(), "spooled a deleted log file after all");
                    }
                    Spooling::NoRoom { .. } => {
                        self.unspooled.insert(key, false);
                    }
                    Spooling::Failed(e) => {
                        if !self.spool_backoff.failing() {
                            let path = &self.table.tracked(key).path;
                            tracing::warn!(path = %path.display(), error = %e, "spooling a deleted log file failed again");
                        }
                        self.unspooled.insert(key, true);
                        failed = true;
                    }
                    Spooling::NotNeeded | Spooling::OverLimit => {
                        self.unspooled.remove(&key);
                    }
                }
            }
            if failed {
                self.spool_backoff.failed(now);
                if !self.spool_failing {
                    self.spool_failing = true;
                    self.events.state_write_failing(StateFile::Spool, true);
                }
            }
        }
        if self.spool_failing && !self.unspooled.values().any(|&write_error| write_error) {
            self.spool_failing = false;
            self.spool_backoff.succeeded();
            tracing::info!("spool writes work again (or no deleted file waits for one)");
            self.events.state_write_failing(StateFile::Spool, false);
        }
    }

    /// A spool write failed: backoff starts, readiness drops.
    fn spool_failed(&mut self) {
        if !self.spool_failing {
            self.spool_failing = true;
            self.spool_backoff.failed(Instant::now());
            self.events.state_write_failing(StateFile::Spool, true);
        }
    }

    /// Tracks the copies an earlier run left in the spool: each is read from
    /// its checkpoint (or its `start`) under the original file's identity.
    pub(super) fn load_spool(&mut self) {
        for Spooled { meta: m, file } in self.spool.load() {
            let done = self.store.get(m.id()).is_some_and(|c| c.offset >= m.len);
            let key = match dev_ino(&file) {
                Ok(k) if !done => k,
                _ => {
                    self.spool.remove(m.id());
                    continue;
                }
            };
            let bytes = file.metadata().map(|md| md.blocks() * 512).unwrap_or(0);
            tracing::info!(path = %m.path.display(), start = m.start, bytes = m.len - m.start,
                "reading a deleted log file's unacknowledged bytes from the spool");
            let ident = m.id().dev_ino();
            let mut t = Tracked::new(key, ident, m.path, FileState::Deleted, file);
            t.size_hint = m.len;
            t.spooled = Some((m.fingerprint, bytes));
            t.min_offset = m.start;
            self.table.insert(t);
            self.table.enqueue(key, true);
        }
        self.report_spool();
    }

    fn report_spool(&self) {
        let (files, bytes) = self.table.spool_usage();
        self.events.spool_changed(files, bytes);
    }

    /// Stops tracking `key`: the entry leaves every index and its spooled
    /// copy, if any, is removed. The caller settles its checkpoint.
    pub(super) fn untrack(&mut self, key: DevIno) -> Option<Tracked> {
        let t = self.table.remove(key)?;
        self.unspool(&t);
        Some(t)
    }

    /// Removes a released file's spooled copy, if it has one.
    fn unspool(&mut self, t: &Tracked) {
        let Some((fingerprint, _)) = t.spooled else {
            return;
        };
        self.spool.remove(FileId::new(t.ident, fingerprint));
        self.report_spool();
    }

    /// A gzipped rotated file (`0.log.<ts>.gz`, examined once) whose first line
    /// matches the fingerprint of a checkpoint that was not read to the end is
    /// the compressed copy of a file that kubelet rotated, gzipped and unlinked
    /// while logferry was down. It is decompressed into an unlinked temporary
    /// file in `data_dir` and read from the checkpoint on, under the original
    /// file's identity (so record ids match those sent before).
    ///
    /// `file` is `path` opened through the confinement (`confine`).
    pub(super) fn consider_gz(&mut self, path: &Path, file: File) {
        let mut head = Vec::with_capacity(crate::identity::HEAD_BYTES);
        let read = {
            use std::io::Read;
            flate2::read::MultiGzDecoder::new(&file)
                .take(crate::identity::HEAD_BYTES as u64)
                .read_to_end(&mut head)
        };
        let head = match read.map(|_| head) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to read gzipped log file");
                return;
            }
        };
        // The same rule as for open files (a first line longer than the head
        // counts with its first bytes).
        let Some(fp) = crate::identity::head_of(&head, self.fallback, true).map(|h| h.fingerprint)
        else {
            return;
        };
        let Some(entry) = self.store.iter().find(|e| e.fingerprint == fp).cloned() else {
            return;
        };
        let ident = entry.id().dev_ino();
        if self.is_tracked(ident, fp) {
            return; // the original is still open
        }
        // Cheap check before decompressing: the gzip trailer's ISIZE is the
        // uncompressed length mod 2^32 (kubelet writes one gzip member).
        let isize = file.metadata().and_then(|m| {
            use std::os::unix::fs::FileExt;
            let mut b = [0u8; 4];
            file.read_exact_at(&mut b, m.len().saturating_sub(4))?;
            Ok(u32::from_le_bytes(b))
        });
        if isize.is_ok_and(|n| n as u64 == entry.offset & 0xffff_ffff) {
            return; // finished before it was compressed
        }
        let tmp = self
            .cfg
            .data_dir
            .join(format!("gunzip-{}-{}.log", entry.dev, entry.ino));
        let copied = (&file).rewind().and_then(|()| {
            let mut out = File::create(&tmp)?;
            let n = std::io::copy(&mut flate2::read::MultiGzDecoder::new(&file), &mut out)?;
            Ok((n, File::open(&tmp)?))
        });
        let _ = std::fs::remove_file(&tmp);
        let (len, file) = match copied {
            Ok(c) => {
                self.events.state_write(StateFile::Spool, true);
                c
            }
            Err(e) if e.raw_os_error().is_some() => {
                // The system refused (a full data_dir, EIO, EMFILE): counted, and
                // the `.gz` is examined again at the next rescan.
                tracing::warn!(path = %path.display(), error = %e, "failed to decompress gzipped log file into data_dir; retried at the next rescan");
                self.events.state_write(StateFile::Spool, false);
                self.gz_seen.remove(path);
                return;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to decompress gzipped log file");
                return;
            }
        };
        if entry.offset >= len {
            return; // finished before it was compressed
        }
        let Ok(key) = dev_ino(&file) else { return };
        tracing::info!(path = %path.display(), offset = entry.offset, bytes = len - entry.offset,
            "reading the unread tail of a rotated file from its gzipped copy");
        let mut t = Tracked::new(key, ident, path.to_owned(), FileState::Deleted, file);
        t.initial = true;
        t.size_hint = len;
        self.table.insert(t);
        self.table.enqueue(key, true);
    }

    /// Whether the file `(ident, fingerprint)` is tracked. The inode alone
    /// does not tell: filesystems hand a freed inode to the next new file at
    /// once (ext4 gives kubelet's new `0.log` the inode of the plain copy it
    /// unlinked a moment before), so the first line must match too.
    pub(super) fn is_tracked(&self, ident: DevIno, fingerprint: u64) -> bool {
        self.table.values().any(|t| {
            t.ident == ident
                && match (&t.source, &t.handle) {
                    (Some(s), _) => s.file.fingerprint == fingerprint,
                    (None, Handle::Unidentified(f)) => read_head(f, self.fallback, false)
                        .ok()
                        .flatten()
                        .is_some_and(|h| h.fingerprint == fingerprint),
                    (None, _) => false,
                }
        })
    }

    /// Applies `max_deleted_files` / `max_deleted_bytes` to deleted files that
    /// are held open and not finished. Files read to their end (only waiting
    /// for acknowledgements) are finished first, which costs nothing; then the
    /// oldest deleted file is closed and its unread bytes are reported lost.
    fn enforce_deleted_limits(&mut self) {
        loop {
            let mut deleted: Vec<(bool, Instant, DevIno, u64)> = self
                .table
                .values()
                .filter(|t| t.state == FileState::Deleted && !t.finalized)
                .filter_map(|t| {
                    let since = t.deleted_since.unwrap_or_else(Instant::now);
                    let unread = match &t.handle {
                        Handle::Reading(r) => {
                            let size = r.file().metadata().map(|m| m.len()).unwrap_or(0);
                            size.saturating_sub(r.read_pos())
                        }
                        Handle::Unidentified(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
                        Handle::Closed { .. } => return None,
                    };
                    Some((unread > 0, since, t.key, unread))
                })
                .collect();
            let total: u64 = deleted.iter().map(|d| d.3).sum();
            let reason = if deleted.len() > self.cfg.max_deleted_files {
                LossReason::DeletedFilesLimit
            } else if total > self.cfg.max_deleted_bytes {
                LossReason::DeletedBytesLimit
            } else {
                return;
            };
            deleted.sort();
            let (_, _, key, unread) = deleted[0];
            // Whatever was read is emitted (trailing partials as INCOMPLETE).
            let now = Instant::now();
            let mut records = Vec::new();
            if let Some(Tracked {
                handle: Handle::Reading(r),
                ..
            }) = self.table.get_mut(key)
            {
                r.flush_end(now, now_nanos(), &mut records);
            }
            if !records.is_empty() {
                self.summary.records += records.len() as u64;
                self.events.records_read(records.len() as u64);
            }
            self.emit(key, records, None);
            self.table.tracked(key).finalized = true;
            if unread == 0 {
                self.maybe_release(key);
                continue;
            }
            let path = &self.table.tracked(key).path;
            tracing::error!(path = %path.display(), bytes = unread, reason = reason.as_label(), "closing deleted log file before it was read to the end; its unread bytes are lost");
            self.events.bytes_lost(unread, reason);
            self.forget_deleted(key);
        }
    }

    /// Drops a deleted file that will not be read any further: its
    /// checkpoint and spooled copy go, and batches still in flight are
    /// acknowledged into `retired`.
    pub(super) fn forget_deleted(&mut self, key: DevIno) {
        let Some(t) = self.untrack(key) else {
            return;
        };
        if let Some(src) = &t.source {
            self.store.remove(src.file);
            self.events.file_released(src);
            if t.tracker.unacked() > 0 {
                self.retired.insert(src.id, t.tracker);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::FileState;
    use super::super::testutil::{kube_runner, kube_runner_with, write_log, LOG_A};
    use crate::config::{MinFree, RunMode};
    use crate::events::{LossReason, StateFile};
    use crate::identity::head_of;
    use logferry_core::{DevIno, FileId, LogFormat, RecordBatch};
    use std::io::Write;

    fn spool_files(tmp: &tempfile::TempDir) -> usize {
        std::fs::read_dir(tmp.path().join("data/spool"))
            .unwrap()
            .count()
    }

    fn messages(batches: &[RecordBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| String::from_utf8_lossy(&r.message).into_owned())
            .collect()
    }

    #[test]
    fn a_deleted_unacknowledged_file_is_spooled_read_from_the_copy_and_released_on_ack() {
        let (tmp, mut r, ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        let key = r.table.at_path(&dir.join("0.log")).unwrap();
        r.fill_outbox();
        let sent: Vec<RecordBatch> = r.outbox.drain(..).collect();
        assert_eq!(messages(&sent), ["first line", "second line"]);

        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        assert!(
            r.table.get(key).is_none(),
            "the entry moved to the copy's inode"
        );
        let t = r.table.values().next().expect("still tracked");
        assert_eq!(t.ident, key, "read under the original identity");
        assert_eq!(t.state, FileState::Deleted);
        assert!(t.spooled.is_some());
        assert_eq!(spool_files(&tmp), 2, "the copy and its sidecar");
        assert_eq!(ev.spool.lock().unwrap().last().unwrap().0, 1);

        r.fill_outbox();
        assert!(
            r.outbox.is_empty(),
            "everything was read before the deletion"
        );
        assert_eq!(r.table.len(), 1, "held until acknowledged");
        for b in &sent {
            r.on_ack(b.ack);
        }
        assert_eq!(r.table.len(), 0, "released once acknowledged");
        assert_eq!(spool_files(&tmp), 0, "the copy goes with it");
        assert_eq!(ev.count("released"), 1);
        assert_eq!(*ev.spool.lock().unwrap().last().unwrap(), (0, 0));
        assert!(ev.lost.lock().unwrap().is_empty());
    }

    #[test]
    fn a_deleted_file_read_and_acknowledged_is_not_spooled() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        r.fill_outbox();
        for b in r.outbox.drain(..).collect::<Vec<_>>() {
            r.on_ack(b.ack);
        }
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        assert_eq!(spool_files(&tmp), 0);
        r.fill_outbox();
        assert_eq!(r.table.len(), 0, "finished and released");
    }

    #[test]
    fn the_deleted_files_limit_closes_an_unread_file_and_counts_the_loss() {
        let (tmp, mut r, ev) = kube_runner_with(RunMode::Follow, |c| c.max_deleted_files = 0);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        assert_eq!(
            *ev.lost.lock().unwrap(),
            [(LOG_A.len() as u64, LossReason::DeletedFilesLimit)]
        );
        assert_eq!(r.table.len(), 0);
        assert_eq!(spool_files(&tmp), 0, "the copy of a given-up file goes");
        assert!(r.store.is_empty(), "and so does its checkpoint");
    }

    #[test]
    fn a_full_spool_holds_the_descriptor_and_the_bytes_limit_counts_the_loss() {
        let (tmp, mut r, ev) = kube_runner_with(RunMode::Follow, |c| c.max_deleted_bytes = 10);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        assert_eq!(spool_files(&tmp), 0, "over max_deleted_bytes: not copied");
        assert_eq!(
            *ev.lost.lock().unwrap(),
            [(LOG_A.len() as u64, LossReason::DeletedBytesLimit)]
        );
    }

    /// Regression (issue 10, item 4): a spool copy that failed was never
    /// tried again, and nothing but a log line told.
    #[test]
    fn a_failed_spool_write_holds_the_descriptor_is_counted_and_retried() {
        let (tmp, mut r, ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        let key = r.table.at_path(&dir.join("0.log")).unwrap();
        assert!(r.identify(key));
        let id = r.table.tracked(key).source.as_ref().unwrap().file;
        // A directory where the copy's temp file goes: the copy fails (EISDIR).
        let blocker = tmp.path().join(format!(
            "data/spool/{}-{}-{:016x}.log.tmp",
            id.dev, id.ino, id.fingerprint
        ));
        std::fs::create_dir(&blocker).unwrap();
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        let t = r.table.get(key).expect("held under its own key");
        assert_eq!(t.state, FileState::Deleted);
        assert!(t.spooled.is_none());
        assert_eq!(*ev.writes.lock().unwrap(), [(StateFile::Spool, false)]);
        assert_eq!(*ev.failing.lock().unwrap(), [(StateFile::Spool, true)]);
        r.retry_spool();
        assert_eq!(
            ev.writes.lock().unwrap().len(),
            1,
            "not again before the backoff"
        );

        std::fs::remove_dir(&blocker).unwrap();
        r.spool_backoff.next = Some(std::time::Instant::now());
        r.retry_spool();
        assert!(r.table.get(key).is_none(), "read from the copy now");
        assert!(r.table.values().next().unwrap().spooled.is_some());
        assert_eq!(spool_files(&tmp), 2);
        assert_eq!(
            ev.writes.lock().unwrap().last(),
            Some(&(StateFile::Spool, true))
        );
        assert_eq!(
            ev.failing.lock().unwrap().last(),
            Some(&(StateFile::Spool, false))
        );
        r.fill_outbox();
        assert_eq!(
            messages(&r.outbox.drain(..).collect::<Vec<_>>()),
            ["first line", "second line"]
        );
    }

    #[test]
    fn the_spool_keeps_spool_min_free_and_copies_once_space_frees_up() {
        let (tmp, mut r, ev) = kube_runner_with(RunMode::Follow, |c| {
            c.spool_min_free = MinFree::Bytes(u64::MAX)
        });
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        let key = r.table.at_path(&dir.join("0.log")).unwrap();
        // Read to its end, not acknowledged (Elasticsearch is down).
        r.fill_outbox();
        let sent: Vec<RecordBatch> = r.outbox.drain(..).collect();
        assert_eq!(messages(&sent), ["first line", "second line"]);
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        r.fill_outbox();
        assert!(
            r.table
                .get(key)
                .is_some_and(|t| t.spooled.is_none() && t.finalized),
            "held open only, read to its end, waiting for acknowledgements"
        );
        assert_eq!(spool_files(&tmp), 0);
        assert!(ev.writes.lock().unwrap().is_empty(), "nothing written");
        assert!(
            ev.failing.lock().unwrap().is_empty(),
            "a floor is no write error"
        );
        assert!(ev.lost.lock().unwrap().is_empty());

        r.cfg.spool_min_free = MinFree::Bytes(0);
        r.retry_spool();
        assert!(r.table.get(key).is_none(), "copied now");
        assert_eq!(spool_files(&tmp), 2);
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    }

    /// A checkpoint of a file `(7, 9)` that stopped after its first line.
    fn checkpoint_after_first_line(r: &mut super::Runner, offset: u64) {
        let fp = head_of(LOG_A, LogFormat::Cri, true).unwrap().fingerprint;
        r.store.set(
            FileId::new(DevIno::new(7, 9), fp),
            offset,
            std::path::Path::new("/gone/0.log"),
        );
    }

    #[test]
    fn a_gz_copy_of_an_unfinished_file_is_read_from_its_checkpoint_under_the_original_identity() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let first = LOG_A.iter().position(|b| *b == b'\n').unwrap() as u64 + 1;
        checkpoint_after_first_line(&mut r, first);
        write_log(tmp.path(), "0.log.20261122-134510.gz", &gzip(LOG_A));
        r.full_scan();
        let t = r.table.values().next().expect("the copy is tracked");
        assert_eq!(t.ident, DevIno::new(7, 9));
        assert_eq!(t.state, FileState::Deleted);
        r.fill_outbox();
        let batch = r.outbox.pop_front().unwrap();
        assert_eq!(messages(std::slice::from_ref(&batch)), ["second line"]);
        assert_eq!(batch.source.file.dev_ino(), DevIno::new(7, 9));
        assert_eq!(batch.records[0].start, first, "offsets of the original");
    }

    #[test]
    fn a_gz_copy_that_cannot_be_decompressed_into_data_dir_is_counted_and_tried_again() {
        let (tmp, mut r, ev) = kube_runner(RunMode::Follow);
        let first = LOG_A.iter().position(|b| *b == b'\n').unwrap() as u64 + 1;
        checkpoint_after_first_line(&mut r, first);
        // A directory where the decompressed copy goes: the write fails (EISDIR).
        let blocker = tmp.path().join("data/gunzip-7-9.log");
        std::fs::create_dir(&blocker).unwrap();
        write_log(tmp.path(), "0.log.20261122-134510.gz", &gzip(LOG_A));
        r.full_scan();
        assert_eq!(r.table.len(), 0);
        assert_eq!(*ev.writes.lock().unwrap(), [(StateFile::Spool, false)]);
        std::fs::remove_dir(&blocker).unwrap();
        r.full_scan();
        assert_eq!(r.table.len(), 1, "read at the next scan");
        assert_eq!(
            ev.writes.lock().unwrap().last(),
            Some(&(StateFile::Spool, true))
        );
    }

    #[test]
    fn a_gz_copy_of_a_finished_file_is_ignored() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        checkpoint_after_first_line(&mut r, LOG_A.len() as u64);
        write_log(tmp.path(), "0.log.20261122-134510.gz", &gzip(LOG_A));
        r.full_scan();
        assert_eq!(r.table.len(), 0);
    }
}
