//! Checkpoints: the per-file acknowledgement tracker ([`AckTracker`]) and the
//! persisted checkpoint file ([`CheckpointStore`]).
//!
//! File format (`data_dir/checkpoints.json`), versioned JSON:
//!
//! ```json
//! {"version":1,"files":[{"dev":2049,"ino":131,"fingerprint":1234,"offset":5120,
//!   "path":"/var/log/pods/ns_pod_uid/c/0.log","updated_at":1763818800}]}
//! ```
//!
//! `offset` is the byte offset where reading resumes: every record that starts
//! before it was acknowledged downstream. `updated_at` is in seconds since the
//! Unix epoch. The file is written atomically: temp file, `fsync`, the current
//! file is kept as `checkpoints.json.prev` (hard link), rename, `fsync` of the
//! directory. A corrupt current file is reported and the `.prev` copy is used.

use crate::error::Error;
use logferry_core::{DevIno, FileId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The current checkpoint file format version.
pub const CHECKPOINT_VERSION: u32 = 1;

#[derive(Debug)]
struct Entry {
    seq: Option<u64>,
    resume: Option<u64>,
    acked: bool,
}

/// Tracks one file's emitted batches and computes its checkpoint: the
/// `resume_offset` of the highest batch such that every batch up to it is
/// acknowledged and the offset is known (`Some`).
#[derive(Debug, Default)]
pub struct AckTracker {
    entries: VecDeque<Entry>,
    checkpoint: Option<u64>,
    unacked: usize,
}

impl AckTracker {
    /// A tracker whose checkpoint starts at `offset` (where reading starts).
    pub fn new(offset: Option<u64>) -> AckTracker {
        AckTracker {
            entries: VecDeque::new(),
            checkpoint: offset,
            unacked: 0,
        }
    }

    /// Registers batch `seq`, which ends at the clean resume point `resume` (if any).
    pub fn push_batch(&mut self, seq: u64, resume: Option<u64>) {
        self.entries.push_back(Entry {
            seq: Some(seq),
            resume,
            acked: false,
        });
        self.unacked += 1;
    }

    /// Registers progress without a batch (lines that produced no record).
    pub fn push_preacked(&mut self, resume: Option<u64>) {
        if resume.is_none() {
            return;
        }
        if self.entries.is_empty() {
            self.checkpoint = resume;
            return;
        }
        match self.entries.back_mut() {
            Some(e) if e.seq.is_none() => e.resume = resume,
            _ => self.entries.push_back(Entry {
                seq: None,
                resume,
                acked: true,
            }),
        }
    }

    /// Marks batch `seq` acknowledged and advances the checkpoint. Returns
    /// whether `seq` was outstanding.
    pub fn ack(&mut self, seq: u64) -> bool {
        let Some(e) = self.entries.iter_mut().find(|e| e.seq == Some(seq)) else {
            return false;
        };
        if e.acked {
            return false;
        }
        e.acked = true;
        self.unacked -= 1;
        while self.entries.front().is_some_and(|e| e.acked) {
            let e = self.entries.pop_front().expect("front present");
            if e.resume.is_some() {
                self.checkpoint = e.resume;
            }
        }
        true
    }

    /// The offset to persist, if any is known.
    pub fn checkpoint(&self) -> Option<u64> {
        self.checkpoint
    }

    /// Batches emitted and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked
    }
}

/// One persisted checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckpointEntry {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// XXH3-64 of the file's first line (see [`logferry_core::FileId`]).
    pub fingerprint: u64,
    /// Byte offset where reading resumes.
    pub offset: u64,
    /// Last known path (informational).
    pub path: PathBuf,
    /// Seconds since the Unix epoch of the last change.
    pub updated_at: u64,
}

impl CheckpointEntry {
    /// The file this entry is the checkpoint of.
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<CheckpointEntry>,
}

/// The set of checkpoints, keyed by `(dev, ino, fingerprint)`, and its file.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    prev: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    entries: HashMap<FileId, CheckpointEntry>,
    missing_since: HashMap<FileId, Instant>,
    dirty: bool,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a checkpoint file could not be used.
enum Unusable {
    /// Not a checkpoint file this or any version wrote (torn write, bad JSON).
    Corrupt(String),
    /// Written by a newer version.
    Newer(u32),
}

fn parse(bytes: &[u8]) -> Result<Vec<CheckpointEntry>, Unusable> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    // The version first: a newer format may not parse as this one.
    if let Ok(v) = serde_json::from_slice::<Version>(bytes) {
        if v.version > CHECKPOINT_VERSION {
            return Err(Unusable::Newer(v.version));
        }
    }
    let f: CheckpointFile =
        serde_json::from_slice(bytes).map_err(|e| Unusable::Corrupt(e.to_string()))?;
    if f.version != CHECKPOINT_VERSION {
        return Err(Unusable::Corrupt(format!(
            "unsupported version {}",
            f.version
        )));
    }
    Ok(f.files)
}

impl CheckpointStore {
    /// The checkpoint file in `data_dir`.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join("checkpoints.json")
    }

    /// Loads `data_dir/checkpoints.json`, creating `data_dir` if needed. A
    /// missing file means no checkpoints; a corrupt one is reported with
    /// `tracing::error!` and `checkpoints.json.prev` is used instead.
    ///
    /// # Errors
    /// [`Error::DataDir`] if the directory cannot be created,
    /// [`Error::CheckpointRead`] if a file exists but cannot be read.
    pub fn load(data_dir: &Path) -> Result<CheckpointStore, Error> {
        fs::create_dir_all(data_dir).map_err(|source| Error::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = CheckpointStore::file_path(data_dir);
        let prev = data_dir.join("checkpoints.json.prev");
        let mut store = CheckpointStore {
            tmp: data_dir.join("checkpoints.json.tmp"),
            dir: data_dir.to_owned(),
            path,
            prev,
            entries: HashMap::new(),
            missing_since: HashMap::new(),
            dirty: false,
        };
        let mut loaded = None;
        for candidate in [&store.path, &store.prev] {
            match fs::read(candidate) {
                Ok(bytes) => match parse(&bytes) {
                    Ok(files) => {
                        loaded = Some(files);
                        break;
                    }
                    Err(Unusable::Newer(found)) => {
                        return Err(Error::CheckpointVersion {
                            path: candidate.clone(),
                            found,
                            supported: CHECKPOINT_VERSION,
                        })
                    }
                    Err(Unusable::Corrupt(reason)) => tracing::error!(
                        path = %candidate.display(), %reason,
                        "checkpoint file is corrupt; falling back to the previous copy"
                    ),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::CheckpointRead {
                        path: candidate.clone(),
                        source,
                    })
                }
            }
        }
        for e in loaded.unwrap_or_default() {
            store.entries.insert(e.id(), e);
        }
        Ok(store)
    }

    /// The checkpoint of the file `id`, if any. An entry of the same
    /// `(dev, ino)` with another fingerprint belongs to an earlier file
    /// (recycled inode) and is not returned.
    pub fn get(&self, id: FileId) -> Option<&CheckpointEntry> {
        self.entries.get(&id)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &CheckpointEntry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets the checkpoint of the file `id` (resume at byte `offset`, last
    /// seen at `path`); marks the store dirty if it changed.
    pub fn set(&mut self, id: FileId, offset: u64, path: &Path) {
        let k = id;
        if !self.missing_since.is_empty() {
            self.missing_since.remove(&k);
        }
        match self.entries.get_mut(&k) {
            Some(e) if e.offset == offset => {
                // Bytes, not components: called for every file every second.
                if e.path.as_os_str() != path.as_os_str() {
                    e.path = path.to_owned();
                    self.dirty = true;
                }
            }
            _ => {
                self.entries.insert(
                    k,
                    CheckpointEntry {
                        dev: id.dev,
                        ino: id.ino,
                        fingerprint: id.fingerprint,
                        offset,
                        path: path.to_owned(),
                        updated_at: now_secs(),
                    },
                );
                self.dirty = true;
            }
        }
    }

    /// Forgets the checkpoint of the file `id`.
    pub fn remove(&mut self, id: FileId) {
        let k = id;
        if self.entries.remove(&k).is_some() {
            self.dirty = true;
        }
        self.missing_since.remove(&k);
    }

    /// After a full scan: entries whose file was not seen (`present` false)
    /// since more than `retention` are removed.
    pub fn expire(
        &mut self,
        present: impl Fn(&DevIno) -> bool,
        now: Instant,
        retention: std::time::Duration,
    ) {
        let keys: Vec<_> = self.entries.keys().copied().collect();
        for k in keys {
            if present(&k.dev_ino()) {
                self.missing_since.remove(&k);
            } else {
                let since = *self.missing_since.entry(k).or_insert(now);
                if now.duration_since(since) >= retention {
                    self.remove(k);
                }
            }
        }
    }

    /// The checkpoint file (`data_dir/checkpoints.json`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether there are unsaved changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the checkpoint file atomically if anything changed (or `force`).
    /// After a failure the store stays dirty and the previous file stays in
    /// place (a partial temp file is removed), so calling it again later
    /// catches up.
    ///
    /// # Errors
    /// [`Error::CheckpointWrite`] naming the file.
    pub fn save(&mut self, force: bool) -> Result<(), Error> {
        if !self.dirty && !force {
            return Ok(());
        }
        let mut files: Vec<CheckpointEntry> = self.entries.values().cloned().collect();
        files.sort_by_key(|e| (e.dev, e.ino, e.fingerprint));
        let body = serde_json::to_vec(&CheckpointFile {
            version: CHECKPOINT_VERSION,
            files,
        })
        .expect("checkpoint entries serialize");
        let werr = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::CheckpointWrite { path, source }
        };
        let written = File::create(&self.tmp).and_then(|mut f| {
            f.write_all(&body)?;
            f.sync_all()
        });
        if let Err(e) = written {
            // A partial temp file on a full disk takes the space the next try needs.
            let _ = fs::remove_file(&self.tmp);
            return Err(werr(&self.tmp)(e));
        }
        if self.path.exists() {
            let prev_tmp = self.dir.join("checkpoints.json.prev.tmp");
            let _ = fs::remove_file(&prev_tmp);
            if fs::hard_link(&self.path, &prev_tmp).is_ok() {
                fs::rename(&prev_tmp, &self.prev).map_err(werr(&self.prev))?;
            } else {
                fs::copy(&self.path, &self.prev).map_err(werr(&self.prev))?;
            }
        }
        fs::rename(&self.tmp, &self.path).map_err(werr(&self.path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(werr(&self.dir))?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(dev: u64, ino: u64, fingerprint: u64) -> FileId {
        FileId::new(DevIno::new(dev, ino), fingerprint)
    }

    #[test]
    fn tracker_advances_over_contiguous_acks_only() {
        let mut t = AckTracker::new(Some(0));
        t.push_batch(0, Some(100));
        t.push_batch(1, None); // mid-assembly
        t.push_batch(2, Some(300));
        t.push_preacked(Some(350));
        assert!(t.ack(2));
        assert_eq!(t.checkpoint(), Some(0));
        assert!(t.ack(0));
        assert_eq!(t.checkpoint(), Some(100));
        assert!(!t.ack(0), "double ack ignored");
        assert!(!t.ack(7), "unknown seq ignored");
        assert!(t.ack(1));
        assert_eq!(t.checkpoint(), Some(350));
        assert_eq!(t.unacked(), 0);
        t.push_preacked(Some(400));
        assert_eq!(t.checkpoint(), Some(400));
    }

    #[test]
    fn store_roundtrip_and_corrupt_file_uses_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = CheckpointStore::load(dir.path()).unwrap();
        assert!(s.is_empty());
        s.set(id(1, 2, 3), 40, Path::new("/a"));
        s.save(false).unwrap();
        s.set(id(1, 2, 3), 80, Path::new("/a"));
        s.save(false).unwrap();
        let s2 = CheckpointStore::load(dir.path()).unwrap();
        assert_eq!(s2.get(id(1, 2, 3)).unwrap().offset, 80);
        // Corrupt the current file: the previous copy (offset 40) is used.
        fs::write(
            CheckpointStore::file_path(dir.path()),
            b"{\"version\":1,\"files\":[{\"dev\":",
        )
        .unwrap();
        let s3 = CheckpointStore::load(dir.path()).unwrap();
        assert_eq!(s3.get(id(1, 2, 3)).unwrap().offset, 40);
        // An unknown older version is treated as corrupt too.
        fs::write(
            CheckpointStore::file_path(dir.path()),
            b"{\"version\":0,\"files\":[]}",
        )
        .unwrap();
        assert_eq!(
            CheckpointStore::load(dir.path())
                .unwrap()
                .get(id(1, 2, 3))
                .unwrap()
                .offset,
            40
        );
    }

    /// Regression (issue 10, item 6): a checkpoint file from a newer version
    /// was treated as corrupt, i.e. silently replaced by the previous copy or
    /// an empty state (every file shipped again, or skipped by `read_from: end`).
    #[test]
    fn a_checkpoint_file_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = CheckpointStore::load(dir.path()).unwrap();
        s.set(id(1, 2, 3), 40, Path::new("/a"));
        s.save(false).unwrap();
        s.save(false).unwrap();
        let newer = b"{\"version\":2,\"files\":{\"a new shape\":true}}";
        fs::write(CheckpointStore::file_path(dir.path()), newer).unwrap();
        let err = CheckpointStore::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::CheckpointVersion {
                    found: 2,
                    supported: CHECKPOINT_VERSION,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("newer"), "{err}");
        assert_eq!(
            fs::read(CheckpointStore::file_path(dir.path())).unwrap(),
            newer,
            "left as it is"
        );
    }

    #[test]
    fn expire_removes_entries_missing_longer_than_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = CheckpointStore::load(dir.path()).unwrap();
        s.set(id(1, 2, 3), 40, Path::new("/a"));
        s.set(id(1, 3, 3), 40, Path::new("/b"));
        let t0 = Instant::now();
        let d = std::time::Duration::from_secs(60);
        s.expire(|k| k.ino == 2, t0, d);
        assert_eq!(s.len(), 2);
        s.expire(|k| k.ino == 2, t0 + d, d);
        assert_eq!(s.len(), 1);
        assert!(s.get(id(1, 2, 3)).is_some());
    }
}
