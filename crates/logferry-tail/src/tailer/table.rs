//! The file table: every tracked file and every index over them.
//!
//! A tracked file is keyed by the [`DevIno`] of the inode it reads from. That
//! key changes when a deleted file is read from its spooled copy, so every
//! index (`by_path`, `by_source`, the read queues, the "displaced" list and the
//! set of files a [`RunMode::Once`](crate::RunMode::Once) run waits for) lives
//! here and [`FileTable::rekey`] moves an entry in one step.
//!
//! The table does no I/O and knows nothing about discovery or reading: the
//! tailer's other rooms decide, the table keeps the books.

use crate::checkpoint::AckTracker;
use crate::reader::FileReader;
use logferry_core::{DevIno, LogFormat, Source, SourceId};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where a tracked file stands in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum FileState {
    /// At its original path, still written to.
    Active,
    /// Renamed (kubelet rotation): read to its end, then released.
    Rotated,
    /// Unlinked (or read from a spooled / decompressed copy): drained first.
    Deleted,
}

/// How a tracked file is held.
pub(super) enum Handle {
    /// Open, first line not complete yet (no identity, no reader).
    Unidentified(File),
    /// Identified and being read.
    Reading(Box<FileReader>),
    /// Closed for the fd limit at a clean end of file; reopen at `offset`.
    Closed {
        /// Byte offset where reading resumes after reopening.
        offset: u64,
        /// The format detected when the file was identified.
        format: LogFormat,
    },
}

/// One tracked file.
pub(super) struct Tracked {
    /// `(dev, ino)` of the open file (the table key).
    pub key: DevIno,
    /// `(dev, ino)` of the file's identity (checkpoints, [`FileId`]): the same
    /// as `key`, except for a copy (spool, decompressed `.gz`) read through
    /// another inode.
    pub ident: DevIno,
    /// Last known path.
    pub path: PathBuf,
    pub state: FileState,
    pub handle: Handle,
    /// Set once identified.
    pub source: Option<Arc<Source>>,
    /// Bytes of the head that the fingerprint covers.
    pub fingerprint_len: usize,
    pub tracker: AckTracker,
    /// Found by the scan at start (for `read_from` / `lookback`).
    pub initial: bool,
    /// Largest size seen (bytes), for loss accounting and checkpoint lag.
    pub size_hint: u64,
    /// In one of the read queues.
    pub queued: bool,
    /// Compare the first line again at the next read (copytruncate check).
    pub check_fingerprint: bool,
    /// Read to its end for good: released once every batch is acknowledged.
    pub finalized: bool,
    /// Last time a read returned bytes.
    pub last_data: Instant,
    pub deleted_since: Option<Instant>,
    /// Sequence number of the next batch.
    pub next_seq: u64,
    /// This file's copy in the spool: (fingerprint, bytes on disk).
    pub spooled: Option<(u64, u64)>,
    /// Reading starts at or after this offset (a spooled copy's `start`:
    /// everything before it was acknowledged).
    pub min_offset: u64,
}

impl Tracked {
    /// A file opened at `key`, not identified yet, known as `ident`.
    pub fn new(key: DevIno, ident: DevIno, path: PathBuf, state: FileState, file: File) -> Tracked {
        let now = Instant::now();
        Tracked {
            key,
            ident,
            path,
            state,
            handle: Handle::Unidentified(file),
            source: None,
            fingerprint_len: 0,
            tracker: AckTracker::new(None),
            initial: false,
            size_hint: 0,
            queued: false,
            check_fingerprint: false,
            finalized: false,
            last_data: now,
            deleted_since: (state == FileState::Deleted).then_some(now),
            next_seq: 0,
            spooled: None,
            min_offset: 0,
        }
    }

    /// The fingerprint of the first line, `0` before identification.
    pub fn fingerprint(&self) -> u64 {
        self.source
            .as_ref()
            .map(|s| s.file.fingerprint)
            .unwrap_or(0)
    }

    /// Closed for the open-file limit.
    pub fn is_closed(&self) -> bool {
        matches!(self.handle, Handle::Closed { .. })
    }

    /// Open, first line incomplete.
    pub fn is_unidentified(&self) -> bool {
        matches!(self.handle, Handle::Unidentified(_))
    }
}

/// Every tracked file and the indexes over them.
#[derive(Default)]
pub(super) struct FileTable {
    files: HashMap<DevIno, Tracked>,
    by_path: BTreeMap<PathBuf, DevIno>,
    by_source: HashMap<SourceId, DevIno>,
    /// Read first: rotated and deleted files, new files.
    urgent: VecDeque<DevIno>,
    /// Active files with new data.
    normal: VecDeque<DevIno>,
    /// Files whose path was taken over by another file during a listing.
    displaced: Vec<DevIno>,
    /// The files a [`RunMode::Once`](crate::RunMode::Once) run reads to their end.
    once: HashSet<DevIno>,
}

impl FileTable {
    pub fn get(&self, key: DevIno) -> Option<&Tracked> {
        self.files.get(&key)
    }

    pub fn get_mut(&mut self, key: DevIno) -> Option<&mut Tracked> {
        self.files.get_mut(&key)
    }

    /// The tracked file `key`; panics when it is not tracked (callers hold a
    /// key they just looked up).
    pub fn tracked(&mut self, key: DevIno) -> &mut Tracked {
        self.files.get_mut(&key).expect("tracked")
    }

    pub fn contains(&self, key: DevIno) -> bool {
        self.files.contains_key(&key)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn keys(&self) -> Vec<DevIno> {
        self.files.keys().copied().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &Tracked> {
        self.files.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Tracked> {
        self.files.values_mut()
    }

    /// Adds `t` under `t.key` (no path mapping: see [`FileTable::set_path`]).
    pub fn insert(&mut self, t: Tracked) {
        self.files.insert(t.key, t);
    }

    /// The file at `path`, as last listed.
    pub fn at_path(&self, path: &Path) -> Option<DevIno> {
        self.by_path.get(path).copied()
    }

    /// Maps `path` to `key`; a file previously at `path` is remembered as
    /// displaced (checked at the end of the directory listing: renamed or deleted).
    pub fn set_path(&mut self, path: PathBuf, key: DevIno) {
        if let Some(old) = self.by_path.insert(path, key) {
            if old != key {
                self.displaced.push(old);
            }
        }
    }

    /// Removes the path mapping of `key`, if its path still maps to it.
    pub fn unmap_path(&mut self, key: DevIno) {
        let Some(t) = self.files.get(&key) else {
            return;
        };
        if self.by_path.get(&t.path) == Some(&key) {
            self.by_path.remove(&t.path);
        }
    }

    /// The files mapped to a path directly in `dir` that `keep` rejects.
    pub fn in_dir_except(&self, dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<DevIno> {
        // by_path is ordered, so the entries below `dir` are one contiguous range.
        self.by_path
            .range(dir.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, _)| p.parent() == Some(dir) && !keep(p))
            .map(|(_, k)| *k)
            .collect()
    }

    /// The files displaced since the last call.
    pub fn take_displaced(&mut self) -> Vec<DevIno> {
        std::mem::take(&mut self.displaced)
    }

    /// Routes the acknowledgements of `id` to `key`.
    pub fn bind_source(&mut self, id: SourceId, key: DevIno) {
        self.by_source.insert(id, key);
    }

    /// Stops routing the acknowledgements of `id`.
    pub fn unbind_source(&mut self, id: SourceId) {
        self.by_source.remove(&id);
    }

    /// The file that acknowledgements of `id` belong to.
    pub fn by_source(&self, id: SourceId) -> Option<DevIno> {
        self.by_source.get(&id).copied()
    }

    /// Queues `key` for reading (once): urgent for `urgent` and for files
    /// that are not active (rotated, deleted), else normal.
    pub fn enqueue(&mut self, key: DevIno, urgent: bool) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if t.queued {
            return;
        }
        t.queued = true;
        if urgent || t.state != FileState::Active {
            self.urgent.push_back(key);
        } else {
            self.normal.push_back(key);
        }
    }

    /// The next queued key (urgent first). Its `queued` flag is cleared; the
    /// key may no longer be tracked.
    pub fn pop_queued(&mut self) -> Option<DevIno> {
        let key = self
            .urgent
            .pop_front()
            .or_else(|| self.normal.pop_front())?;
        if let Some(t) = self.files.get_mut(&key) {
            t.queued = false;
        }
        Some(key)
    }

    /// Whether no file waits for reading.
    pub fn queues_empty(&self) -> bool {
        self.urgent.is_empty() && self.normal.is_empty()
    }

    /// Moves a tracked file from `old` to `new` (its reader now reads the
    /// inode `new`) in every index.
    pub fn rekey(&mut self, old: DevIno, new: DevIno) {
        let Some(mut t) = self.files.remove(&old) else {
            return;
        };
        t.key = new;
        self.files.insert(new, t);
        for k in self
            .by_path
            .values_mut()
            .chain(self.by_source.values_mut())
            .chain(self.urgent.iter_mut())
            .chain(self.normal.iter_mut())
            .chain(self.displaced.iter_mut())
        {
            if *k == old {
                *k = new;
            }
        }
        if self.once.remove(&old) {
            self.once.insert(new);
        }
    }

    /// Takes `key` out of the table and every index (queued copies of the
    /// key are skipped when popped).
    pub fn remove(&mut self, key: DevIno) -> Option<Tracked> {
        self.unmap_path(key);
        let t = self.files.remove(&key)?;
        if let Some(src) = &t.source {
            self.by_source.remove(&src.id);
        }
        Some(t)
    }

    /// From now on a [`RunMode::Once`](crate::RunMode::Once) run waits for
    /// every file tracked at this moment.
    pub fn wait_for_all(&mut self) {
        self.once = self.files.keys().copied().collect();
    }

    /// Files a once-run waits for.
    pub fn waited_for(&self) -> usize {
        self.once.len()
    }

    /// Whether every file a once-run waits for is done (finalized, released,
    /// or with nothing to offer) and nothing is queued.
    pub fn once_done(&self) -> bool {
        self.once.iter().all(|k| {
            self.files.get(k).is_none_or(|t| {
                t.finalized || matches!(t.handle, Handle::Unidentified(_) | Handle::Closed { .. })
            })
        }) && self.queues_empty()
    }

    /// Open files and, among them, deleted ones.
    pub fn open_count(&self) -> (usize, usize) {
        let mut open = 0;
        let mut deleted = 0;
        for t in self.files.values() {
            if !t.is_closed() {
                open += 1;
                if t.state == FileState::Deleted {
                    deleted += 1;
                }
            }
        }
        (open, deleted)
    }

    /// Files and bytes in the spool: the copies of the tracked files.
    pub fn spool_usage(&self) -> (usize, u64) {
        self.files
            .values()
            .filter_map(|t| t.spooled)
            .fold((0, 0), |(n, b), (_, bytes)| (n + 1, b + bytes))
    }
}

/// A file a standby holds open (see `standby`), handed to the run that takes over.
#[derive(Debug)]
pub(super) struct Held {
    pub path: PathBuf,
    pub file: File,
    /// When a scan first missed it at its path (deleted or renamed away).
    pub gone_since: Option<Instant>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_core::FileId;

    fn key(ino: u64) -> DevIno {
        DevIno::new(1, ino)
    }

    fn tracked(ino: u64, path: &str, state: FileState) -> Tracked {
        let f = File::open("/dev/null").unwrap();
        Tracked::new(key(ino), key(ino), PathBuf::from(path), state, f)
    }

    fn source(id: u64, ino: u64) -> Arc<Source> {
        Arc::new(Source {
            id: SourceId(id),
            file: FileId::new(key(ino), 7),
            path: PathBuf::from("/x"),
            kube: None,
            container_id: None,
            format: LogFormat::Cri,
        })
    }

    #[test]
    fn rekey_moves_every_index_at_once() {
        let mut t = FileTable::default();
        let mut a = tracked(1, "/d/a.log", FileState::Deleted);
        a.source = Some(source(9, 1));
        let decoder = crate::decode::LineDecoder::new(
            Some(LogFormat::Cri),
            LogFormat::Cri,
            crate::joiner::Joiner::new(1024, None),
        );
        let file = File::open("/dev/null").unwrap();
        a.handle = Handle::Reading(Box::new(FileReader::new(file, 0, 4096, decoder)));
        t.insert(a);
        t.set_path("/d/a.log".into(), key(1));
        t.bind_source(SourceId(9), key(1));
        t.enqueue(key(1), false);
        t.wait_for_all();
        t.set_path("/d/a.log".into(), key(5)); // displaces 1
        t.set_path("/d/a.log".into(), key(1)); // displaces 5

        t.rekey(key(1), key(2));

        assert!(!t.contains(key(1)));
        assert_eq!(t.get(key(2)).unwrap().key, key(2));
        assert_eq!(t.get(key(2)).unwrap().ident, key(1), "identity is kept");
        assert_eq!(t.at_path(Path::new("/d/a.log")), Some(key(2)));
        assert_eq!(t.by_source(SourceId(9)), Some(key(2)));
        assert_eq!(t.take_displaced(), vec![key(2), key(5)]);
        assert_eq!(t.pop_queued(), Some(key(2)));
        assert!(!t.once_done(), "the once set follows the key");
        t.tracked(key(2)).finalized = true;
        assert!(t.once_done());
    }

    #[test]
    fn enqueue_is_idempotent_and_rotated_files_go_first() {
        let mut t = FileTable::default();
        t.insert(tracked(1, "/d/0.log", FileState::Active));
        t.insert(tracked(2, "/d/0.log.1", FileState::Rotated));
        t.enqueue(key(1), false);
        t.enqueue(key(1), false);
        t.enqueue(key(2), false);
        assert_eq!(t.pop_queued(), Some(key(2)), "a rotated file is urgent");
        assert_eq!(t.pop_queued(), Some(key(1)));
        assert_eq!(t.pop_queued(), None, "queued once only");
        assert!(t.queues_empty());
        t.enqueue(key(1), true);
        assert_eq!(t.pop_queued(), Some(key(1)), "queued again after the pop");
    }

    #[test]
    fn set_path_reports_the_file_it_displaced() {
        let mut t = FileTable::default();
        t.insert(tracked(1, "/d/0.log", FileState::Active));
        t.insert(tracked(2, "/d/0.log", FileState::Active));
        t.set_path("/d/0.log".into(), key(1));
        t.set_path("/d/0.log".into(), key(1));
        assert!(
            t.take_displaced().is_empty(),
            "same file, nothing displaced"
        );
        t.set_path("/d/0.log".into(), key(2));
        assert_eq!(t.take_displaced(), vec![key(1)]);
        // key 1 no longer owns the path: unmapping it leaves key 2's mapping.
        t.unmap_path(key(1));
        assert_eq!(t.at_path(Path::new("/d/0.log")), Some(key(2)));
    }

    #[test]
    fn in_dir_lists_direct_children_only() {
        let mut t = FileTable::default();
        for (i, p) in [
            "/d/a.log",
            "/d/b.log",
            "/d/sub/c.log",
            "/d2/x.log",
            "/c.log",
        ]
        .iter()
        .enumerate()
        {
            t.insert(tracked(i as u64, p, FileState::Active));
            t.set_path(PathBuf::from(p), key(i as u64));
        }
        let gone = t.in_dir_except(Path::new("/d"), |p| p == Path::new("/d/a.log"));
        assert_eq!(gone, vec![key(1)]);
    }

    #[test]
    fn remove_clears_path_and_source_but_not_a_new_owner() {
        let mut t = FileTable::default();
        let mut a = tracked(1, "/d/0.log", FileState::Active);
        a.source = Some(source(3, 1));
        t.insert(a);
        t.bind_source(SourceId(3), key(1));
        t.set_path("/d/0.log".into(), key(1));
        t.insert(tracked(2, "/d/0.log", FileState::Active));
        let removed = t.remove(key(1)).unwrap();
        assert_eq!(removed.key, key(1));
        assert_eq!(t.by_source(SourceId(3)), None);
        assert_eq!(t.at_path(Path::new("/d/0.log")), None);

        let mut b = tracked(4, "/d/1.log", FileState::Active);
        b.path = "/d/1.log".into();
        t.insert(b);
        t.set_path("/d/1.log".into(), key(4));
        t.set_path("/d/1.log".into(), key(2)); // a new file took the path
        t.remove(key(4));
        assert_eq!(t.at_path(Path::new("/d/1.log")), Some(key(2)));
        assert!(t.remove(key(4)).is_none());
    }

    #[test]
    fn usage_counts_open_deleted_and_spooled_files() {
        let mut t = FileTable::default();
        t.insert(tracked(1, "/d/0.log", FileState::Active));
        let mut d = tracked(2, "/d/1.log", FileState::Deleted);
        d.spooled = Some((7, 4096));
        t.insert(d);
        let mut c = tracked(3, "/d/2.log", FileState::Active);
        c.handle = Handle::Closed {
            offset: 0,
            format: LogFormat::Cri,
        };
        t.insert(c);
        assert_eq!(t.open_count(), (2, 1));
        assert_eq!(t.spool_usage(), (1, 4096));
    }
}
