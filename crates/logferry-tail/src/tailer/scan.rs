//! Scanning: listing the directories the layout names and reacting to
//! inotify events — new files are opened, renamed files become rotated,
//! files gone from their directory are checked for deletion.

use super::confine::{EntryKind, OpenError};
use super::discovery::DirKind;
use super::table::{FileState, Handle, Tracked};
use super::Runner;
use crate::config::RunMode;
use crate::events::{RefusalReason, RotationKind};
use crate::identity::dev_ino;
use inotify::EventMask;
use logferry_core::DevIno;
use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Runner {
    /// Lists every directory of the layout (watching each), then expires
    /// checkpoints of files not seen for `checkpoint_retention`.
    pub(super) fn full_scan(&mut self) {
        self.seen_in_scan.clear();
        self.container_ids.clear();
        self.roots.refresh();
        for (dir, kind) in self.layout.roots() {
            self.scan_dir(&dir, kind);
        }
        let tracked: HashSet<DevIno> = self.table.keys().into_iter().collect();
        let seen = std::mem::take(&mut self.seen_in_scan);
        self.store.expire(
            |k| seen.contains(k) || tracked.contains(k),
            Instant::now(),
            self.cfg.checkpoint_retention,
        );
        self.finished.retain(|k, _| seen.contains(k));
        self.gz_seen.retain(|_, k| seen.contains(k));
    }

    /// Watches and lists `dir` as `kind`, and its subdirectories as the kind
    /// says: only real directories under the roots, each at most once (see
    /// the `confine` module).
    pub(super) fn scan_dir(&mut self, dir: &Path, kind: DirKind) {
        let mut visited = HashSet::new();
        self.scan_dir_in(dir, kind, &mut visited);
    }

    fn scan_dir_in(&mut self, dir: &Path, kind: DirKind, visited: &mut HashSet<DevIno>) {
        if kind == DirKind::ContainersDir {
            self.watcher.watch(dir, kind);
            self.container_ids.learn_dir(dir);
            return;
        }
        let opened = match self.roots.open_dir(dir) {
            Ok(d) => d,
            Err(OpenError::Refused(reason)) => {
                self.refusals.refuse(dir, reason, &*self.events);
                return;
            }
            Err(OpenError::Io(_)) => return,
        };
        if !visited.insert(opened.key) {
            return; // listed already in this scan (a loop through a bind mount)
        }
        self.watcher.watch(dir, kind);
        let Ok(entries) = opened.entries(dir) else {
            return;
        };
        match kind {
            DirKind::ContainersDir => unreachable!("handled above"),
            DirKind::PodsRoot | DirKind::PodDir => {
                let child = kind.child().expect("pod directories have children");
                for (name, entry) in entries {
                    let path = dir.join(name);
                    match entry {
                        EntryKind::Dir => self.scan_dir_in(&path, child, visited),
                        EntryKind::Symlink if is_dir(&path) => self.refusals.refuse(
                            &path,
                            RefusalReason::SymlinkedDirectory,
                            &*self.events,
                        ),
                        _ => {}
                    }
                }
            }
            DirKind::ContainerDir | DirKind::Files(_) => {
                self.scan_files_in(dir, kind, entries, visited)
            }
        }
    }

    /// Lists a directory of log files: candidate files are considered,
    /// subdirectories scanned (files mode, down to the pattern's depth), and
    /// tracked files of `dir` that are no longer at their path are checked
    /// for rename / deletion. A symlink is followed to a file (whose real
    /// path is checked when it is opened), never to a directory.
    fn scan_files_in(
        &mut self,
        dir: &Path,
        kind: DirKind,
        entries: Vec<(OsString, EntryKind)>,
        visited: &mut HashSet<DevIno>,
    ) {
        let mut present = HashSet::new();
        let mut gz = Vec::new();
        for (name, entry) in entries {
            let path = dir.join(name);
            match entry {
                EntryKind::Dir => {
                    if let Some(child) = kind.child() {
                        self.scan_dir_in(&path, child, visited);
                    }
                    continue;
                }
                EntryKind::File | EntryKind::Symlink | EntryKind::Other => {}
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if kind.child().is_some() {
                    self.refusals
                        .refuse(&path, RefusalReason::SymlinkedDirectory, &*self.events);
                }
                continue;
            }
            if !meta.is_file() {
                if self.layout.classify(&path).is_some() {
                    self.refusals
                        .refuse(&path, RefusalReason::NotRegularFile, &*self.events);
                }
                continue;
            }
            let key = DevIno::new(meta.dev(), meta.ino());
            self.seen_in_scan.insert(key);
            if let Some(rotated) = self.layout.classify(&path) {
                present.insert(path.clone());
                self.consider(path, key, meta.len(), rotated);
            } else if self.layout.is_gz_copy(&path)
                && self.gz_seen.insert(path.clone(), key).is_none()
            {
                gz.push(path);
            }
        }
        // After the plain files, so that an original still present next to
        // its `.gz` copy is tracked (and read) rather than the copy.
        for path in gz {
            match self.roots.open_file(&path) {
                Ok(file) => self.consider_gz(&path, file),
                Err(OpenError::Refused(reason)) => {
                    self.refusals.refuse(&path, reason, &*self.events)
                }
                Err(OpenError::Io(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "failed to open gzipped log file")
                }
            }
        }
        // Tracked files of `dir` not listed at their path: renamed or deleted.
        let mut gone = self.table.in_dir_except(dir, |p| present.contains(p));
        // Files whose path was taken over by a new file during this listing.
        for key in self.table.take_displaced() {
            if self
                .table
                .get(key)
                .is_some_and(|t| !present.contains(&t.path))
            {
                gone.push(key);
            }
        }
        for key in gone {
            self.check_gone(key);
        }
    }

    /// A tracked file is no longer at its path: renamed elsewhere or deleted.
    pub(super) fn check_gone(&mut self, key: DevIno) {
        self.table.unmap_path(key);
        let Some(t) = self.table.get_mut(key) else {
            return;
        };
        let nlink = match &t.handle {
            Handle::Reading(r) => r.file().metadata().map(|m| m.nlink()).unwrap_or(0),
            Handle::Unidentified(f) => f.metadata().map(|m| m.nlink()).unwrap_or(0),
            Handle::Closed { .. } => 0,
        };
        if nlink == 0 {
            self.mark_deleted(key);
        } else if t.state == FileState::Active {
            t.state = FileState::Rotated;
            self.events.rotation_detected(RotationKind::Rename);
            self.table.enqueue(key, true);
        }
    }

    /// A candidate file listed at `path`: a tracked one is updated (renamed,
    /// grown, reopened), a new one opened and queued.
    fn consider(&mut self, path: PathBuf, key: DevIno, size: u64, rotated_name: bool) {
        if self.table.contains(key) {
            if self.table.get(key).is_some_and(|t| t.path != path) {
                self.table.unmap_path(key);
                let t = self.table.tracked(key);
                t.path = path.clone();
                if rotated_name && t.state == FileState::Active {
                    t.state = FileState::Rotated;
                    self.events.rotation_detected(RotationKind::Rename);
                }
            }
            let t = self.table.tracked(key);
            let changed = size != t.size_hint;
            let closed = t.is_closed();
            self.table.set_path(path, key);
            if closed {
                self.reopen(key);
            } else if changed {
                self.table.enqueue(key, false);
            }
            return;
        }
        if self.finished.get(&key) == Some(&size) {
            return;
        }
        if self.mode == RunMode::Once && !self.initial_scan {
            return;
        }
        let file = match self.roots.open_file(&path) {
            Ok(f) => f,
            Err(OpenError::Refused(reason)) => {
                self.refusals.refuse(&path, reason, &*self.events);
                return;
            }
            Err(OpenError::Io(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to open log file");
                return;
            }
        };
        match dev_ino(&file) {
            Ok(k) if k == key => {}
            _ => return, // replaced between stat and open; the next event or scan sees it
        }
        self.refusals.forget(&path);
        self.finished.remove(&key);
        let state = if rotated_name {
            FileState::Rotated
        } else {
            FileState::Active
        };
        let mut t = Tracked::new(key, key, path.clone(), state, file);
        t.initial = self.initial_scan;
        self.table.insert(t);
        self.table.set_path(path, key);
        self.table.enqueue(key, rotated_name);
        self.enforce_open_limit(Some(key));
    }

    /// One inotify event on a watched directory.
    pub(super) fn on_inotify(&mut self, wd: i32, mask: EventMask, name: Option<OsString>) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("inotify queue overflow; rescanning");
            self.full_scan();
            return;
        }
        let Some((dir, kind)) = self.watcher.lookup(wd) else {
            return;
        };
        if mask.contains(EventMask::IGNORED) {
            self.watcher.forget(wd);
            return;
        }
        let Some(name) = name else { return };
        let path = dir.join(name);
        let created = mask.intersects(EventMask::CREATE | EventMask::MOVED_TO);
        match kind {
            DirKind::PodsRoot | DirKind::PodDir => {
                if created {
                    self.scan_dir(&path, kind.child().expect("pod directories have children"));
                }
            }
            DirKind::ContainersDir => {
                if created {
                    self.container_ids.learn_link(&path);
                }
            }
            DirKind::ContainerDir | DirKind::Files(_) => {
                if mask.contains(EventMask::MODIFY) {
                    if let Some(key) = self.table.at_path(&path) {
                        if let Some(t) = self.table.get(key) {
                            if t.is_closed() {
                                self.reopen(key);
                            } else {
                                self.table.enqueue(key, false);
                            }
                            return;
                        }
                    }
                    if self.layout.classify(&path).is_none() {
                        return;
                    }
                }
                self.scan_dir(&dir, kind);
            }
        }
    }
}

/// Whether `path` leads to a directory (following links).
fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::super::table::FileState;
    use super::super::testutil::{kube_runner, write_log, LOG_A};
    use crate::config::RunMode;

    #[test]
    fn a_scan_tracks_active_and_rotated_files_by_path() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        std::fs::write(dir.join("0.log.20261122-134510"), LOG_A).unwrap();
        std::fs::write(dir.join("0.log.20261122-120000.gz"), b"not gzip").unwrap();
        std::fs::write(dir.join("notes.txt"), LOG_A).unwrap();
        r.full_scan();
        assert_eq!(
            r.table.len(),
            2,
            "the .gz and the stray file are not tailed"
        );
        let active = r.table.at_path(&dir.join("0.log")).unwrap();
        let rotated = r.table.at_path(&dir.join("0.log.20261122-134510")).unwrap();
        assert_eq!(r.table.get(active).unwrap().state, FileState::Active);
        assert_eq!(r.table.get(rotated).unwrap().state, FileState::Rotated);
        assert!(
            r.table.get(active).unwrap().initial,
            "found by the first scan"
        );
        assert!(r
            .gz_seen
            .contains_key(&dir.join("0.log.20261122-120000.gz")));
    }

    #[test]
    fn a_renamed_file_becomes_rotated_under_its_new_path() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        let key = r.table.at_path(&dir.join("0.log")).unwrap();
        let rotated = dir.join("0.log.20261122-134510");
        std::fs::rename(dir.join("0.log"), &rotated).unwrap();
        std::fs::write(dir.join("0.log"), LOG_A).unwrap();
        r.full_scan();
        let t = r.table.get(key).expect("same inode, still tracked");
        assert_eq!(t.state, FileState::Rotated);
        assert_eq!(t.path, rotated);
        assert_eq!(r.table.at_path(&rotated), Some(key));
        let new = r.table.at_path(&dir.join("0.log")).unwrap();
        assert_ne!(new, key);
        assert_eq!(_ev.count("rotation"), 1);
    }

    #[test]
    fn a_file_gone_from_its_directory_is_checked_for_deletion() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Follow);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        let key = r.table.at_path(&dir.join("0.log")).unwrap();
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.full_scan();
        // Unacknowledged: spooled, so it is now keyed by its copy's inode.
        let t = r.table.values().next().expect("held for draining");
        assert_eq!(t.ident, key);
        assert_eq!(t.state, FileState::Deleted);
        assert_eq!(r.table.at_path(&dir.join("0.log")), None);
    }

    #[test]
    fn a_once_run_ignores_files_that_appear_after_its_first_scan() {
        let (tmp, mut r, _ev) = kube_runner(RunMode::Once);
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        r.full_scan();
        r.initial_scan = false;
        std::fs::write(dir.join("1.log"), LOG_A).unwrap();
        r.full_scan();
        assert_eq!(r.table.len(), 1);
    }
}
