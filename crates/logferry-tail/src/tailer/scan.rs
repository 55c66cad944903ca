//! Scanning: listing the directories the layout names and reacting to
//! inotify events — new files are opened, renamed files become rotated,
//! files gone from their directory are checked for deletion.

use super::confine::{EntryKind, OpenError};
use super::dircache::{Listing, Stamp};
use super::discovery::DirKind;
use super::table::{FileState, Handle, Tracked};
use super::Runner;
use crate::config::RunMode;
use crate::events::{RefusalReason, RescanReason, RotationKind};
use crate::identity::dev_ino;
use inotify::EventMask;
use logferry_core::DevIno;
use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// One periodic rescan in this many lists every directory, changed or not
/// (with the default `rescan_interval` of 10 s: once every 5 minutes). The
/// others list only the directories whose stamp changed.
pub(super) const FULL_RESCAN_EVERY: u32 = 30;

impl Runner {
    /// Lists every directory of the layout (watching each), then expires
    /// checkpoints of files not seen for `checkpoint_retention`: the scan at
    /// start, after an inotify queue overflow or read error, and for
    /// `/quitquitquit`.
    pub(super) fn full_scan(&mut self) {
        self.scan_all(false);
    }

    /// The periodic rescan (every `rescan_interval`), the safety net for
    /// missed inotify events: directories unchanged since they were last
    /// listed are not listed again (see the `dircache` module), except on
    /// every [`FULL_RESCAN_EVERY`]th rescan, which lists everything.
    pub(super) fn rescan(&mut self) {
        self.rescans = self.rescans.wrapping_add(1);
        self.events.rescanned(RescanReason::Interval);
        self.scan_all(self.rescans % FULL_RESCAN_EVERY != 0);
    }

    fn scan_all(&mut self, cached: bool) {
        self.seen_in_scan.clear();
        self.dircache.begin_scan();
        self.roots.refresh();
        for (dir, kind) in self.layout.roots() {
            let mut visited = HashSet::new();
            self.scan_dir_in(&dir, kind, &mut visited, cached);
        }
        self.dircache.end_scan();
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
        self.scan_dir_in(dir, kind, &mut visited, false);
    }

    /// With `cached`, a directory whose stamp has not changed since its last
    /// listing is not listed: its remembered files count as seen and its
    /// remembered subdirectories are visited (and checked the same way).
    fn scan_dir_in(
        &mut self,
        dir: &Path,
        kind: DirKind,
        visited: &mut HashSet<DevIno>,
        cached: bool,
    ) {
        // Taken before listing: a change made meanwhile moves the stamp.
        let taken = SystemTime::now();
        let stamp = Stamp::of(
            dir,
            self.roots.is_root(dir) || kind == DirKind::ContainersDir,
        );
        if cached {
            if let Some(l) = stamp.and_then(|s| self.dircache.unchanged(dir, &s)) {
                let children: Vec<PathBuf> = l.children.iter().map(|n| dir.join(n)).collect();
                self.seen_in_scan.extend(l.files.iter().copied());
                self.watcher.watch(dir, kind);
                let key = stamp.expect("unchanged implies a stamp").key;
                if kind == DirKind::ContainersDir || !visited.insert(key) {
                    return;
                }
                if let Some(child) = kind.child() {
                    for c in children {
                        self.scan_dir_in(&c, child, visited, true);
                    }
                }
                return;
            }
        }
        let mut listing = Listing::default();
        if kind == DirKind::ContainersDir {
            self.watcher.watch(dir, kind);
            // Rebuilt on every listing, so that ids of long-gone containers
            // do not accumulate (open files keep theirs in their Source).
            self.container_ids.clear();
            self.container_ids.learn_dir(dir);
            if let Some(s) = stamp {
                self.dircache.store(dir, s, taken, listing);
            }
            return;
        }
        let opened = match self.roots.open_dir(dir) {
            Ok(d) => d,
            Err(OpenError::Refused(reason)) => {
                self.dircache.forget(dir);
                self.refusals.refuse(dir, reason, &*self.events);
                return;
            }
            Err(OpenError::Io(_)) => {
                self.dircache.forget(dir);
                return;
            }
        };
        let dir_key = opened.key;
        if !visited.insert(dir_key) {
            return; // listed already in this scan (a loop through a bind mount)
        }
        self.watcher.watch(dir, kind);
        let Ok(entries) = opened.entries(dir) else {
            self.dircache.forget(dir);
            return;
        };
        match kind {
            DirKind::ContainersDir => unreachable!("handled above"),
            DirKind::PodsRoot | DirKind::PodDir => {
                let child = kind.child().expect("pod directories have children");
                for (name, entry) in entries {
                    let path = dir.join(&name);
                    match entry {
                        EntryKind::Dir => {
                            self.scan_dir_in(&path, child, visited, cached);
                            listing.children.push(name);
                        }
                        EntryKind::Symlink => {
                            listing.has_links = true;
                            if is_dir(&path) {
                                self.refusals.refuse(
                                    &path,
                                    RefusalReason::SymlinkedDirectory,
                                    &*self.events,
                                )
                            }
                        }
                        _ => {}
                    }
                }
            }
            DirKind::ContainerDir | DirKind::Files(_) => {
                self.scan_files_in(dir, kind, entries, visited, cached, &mut listing)
            }
        }
        match stamp {
            Some(s) if s.key == dir_key => self.dircache.store(dir, s, taken, listing),
            _ => self.dircache.forget(dir),
        }
    }

    /// Lists a directory of log files: candidate files are considered,
    /// subdirectories scanned (files mode, down to the pattern's depth), and
    /// tracked files of `dir` that are no longer at their path are checked
    /// for rename / deletion. A symlink is followed to a file (whose real
    /// path is checked when it is opened), never to a directory. What was
    /// found goes into `listing`.
    fn scan_files_in(
        &mut self,
        dir: &Path,
        kind: DirKind,
        entries: Vec<(OsString, EntryKind)>,
        visited: &mut HashSet<DevIno>,
        cached: bool,
        listing: &mut Listing,
    ) {
        let mut present = HashSet::new();
        let mut gz = Vec::new();
        for (name, entry) in entries {
            let path = dir.join(&name);
            match entry {
                EntryKind::Dir => {
                    if let Some(child) = kind.child() {
                        self.scan_dir_in(&path, child, visited, cached);
                        listing.children.push(name);
                    }
                    continue;
                }
                EntryKind::Symlink => listing.has_links = true,
                EntryKind::File | EntryKind::Other => {}
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
            listing.files.push(key);
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
                self.ckpt_events = self.ckpt_events.wrapping_add(1);
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
            tracing::warn!(
                "inotify queue overflow (more events than fs.inotify.max_queued_events waited); \
                 listing every directory"
            );
            self.events.rescanned(RescanReason::InotifyOverflow);
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
    use super::super::testutil::{kube_runner, write_log, Recorder, LOG_A};
    use super::super::Runner;
    use super::FULL_RESCAN_EVERY;
    use crate::config::RunMode;
    use inotify::EventMask;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

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

    /// A runner whose directory listings are remembered at once (no racy
    /// window), after a first full scan of `dir`'s tree.
    fn cached_runner() -> (tempfile::TempDir, Runner, Arc<Recorder>, PathBuf) {
        let (tmp, mut r, ev) = kube_runner(RunMode::Follow);
        r.dircache.racy = Duration::ZERO;
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        // Stamps taken after the last change, in a later timestamp tick.
        std::thread::sleep(Duration::from_millis(50));
        r.full_scan();
        (tmp, r, ev, dir)
    }

    /// Issue 14, goal 3: the periodic rescan lists only directories whose
    /// stamp moved (it listed all 2,000 pod and container directories of a
    /// quiet node every 10 s).
    #[test]
    fn a_rescan_lists_only_the_directories_that_changed() {
        let (tmp, mut r, ev, dir) = cached_runner();
        let listed = r.dircache.stored;
        assert_eq!(listed, 4, "links, pods root, pod, container");
        r.rescan();
        assert_eq!(r.dircache.stored, listed, "nothing changed: nothing listed");
        assert_eq!(ev.count("rescan:interval"), 1);

        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(dir.join("1.log"), LOG_A).unwrap();
        r.rescan();
        assert_eq!(
            r.dircache.stored,
            listed + 1,
            "the container directory only"
        );
        assert!(r.table.at_path(&dir.join("1.log")).is_some(), "found");

        // A new pod: the pods root is listed, and the new directories under it.
        std::thread::sleep(Duration::from_millis(50));
        let other = tmp
            .path()
            .join("pods/ns_other_0f0e0d0c-0000-4000-8000-000000000002/app");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("0.log"), LOG_A).unwrap();
        r.rescan();
        assert_eq!(r.dircache.stored, listed + 4);
        assert!(r.table.at_path(&other.join("0.log")).is_some());
        assert_eq!(r.table.len(), 3);
    }

    /// Files of skipped directories still count as seen: their checkpoints
    /// are not expired, and a deletion (which moves the stamp) is noticed.
    #[test]
    fn a_skipped_directory_keeps_its_files_seen_and_a_deletion_is_noticed() {
        let (_tmp, mut r, _ev, dir) = cached_runner();
        std::fs::write(dir.join("0.log.20261122-120000.gz"), b"not gzip").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        r.full_scan();
        r.rescan();
        assert_eq!(r.gz_seen.len(), 1, "kept: its inode was seen");
        std::thread::sleep(Duration::from_millis(50));
        std::fs::remove_file(dir.join("0.log")).unwrap();
        r.rescan();
        assert_eq!(r.table.at_path(&dir.join("0.log")), None, "gone");
    }

    /// Every `FULL_RESCAN_EVERY`th periodic rescan lists every directory.
    #[test]
    fn every_thirtieth_rescan_lists_everything() {
        let (_tmp, mut r, _ev, _dir) = cached_runner();
        let listed = r.dircache.stored;
        r.rescans = FULL_RESCAN_EVERY - 1;
        r.rescan();
        assert_eq!(r.dircache.stored, listed + 4);
    }

    /// Issue 14, goal 4: after an inotify queue overflow every directory is
    /// listed, including those whose stamp seems unchanged, and counted.
    #[test]
    fn an_inotify_overflow_lists_every_directory_and_is_counted() {
        let (_tmp, mut r, ev, dir) = cached_runner();
        let listed = r.dircache.stored;
        std::fs::write(dir.join("1.log"), LOG_A).unwrap();
        r.on_inotify(-1, EventMask::Q_OVERFLOW, None);
        assert_eq!(ev.count("rescan:inotify_overflow"), 1);
        assert_eq!(r.dircache.stored, listed + 4, "every directory");
        assert!(r.table.at_path(&dir.join("1.log")).is_some());
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
