//! Standby: the files of a node held open, not read, by a process that waits to
//! take a `data_dir` over from another one (the surge rollout of the DaemonSet).
//!
//! A [`Standby`] lists the layout's directories as a full scan does and opens
//! every log file it finds, so that kubelet's deletions cannot free their bytes
//! while the owner of `data_dir` drains and stops. It reads no file content,
//! and neither reads nor writes anything in `data_dir` (checkpoints, spool):
//! the owner still writes them. When the owner is gone, [`Tailer::adopt`] hands
//! the descriptors to the new run, which, after loading the owner's checkpoints
//! and spool and scanning, reads every held file that was deleted meanwhile
//! and is neither tracked nor finished, from its checkpoint or from its start.
//! Files still at their path are simply found by the scan.

use super::confine::{EntryKind, Roots};
use super::discovery::{self, DirKind, Discovery};
use super::table::{FileState, Held, Tracked};
use super::Runner;
use crate::config::TailConfig;
use crate::error::Error;
use crate::identity::{dev_ino, read_head};
use crate::Tailer;
use logferry_core::{DevIno, FileId};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

/// The files of the layout, held open while another process owns `data_dir`.
/// Built by [`Tailer::standby`]; call [`Standby::scan`] periodically (a few
/// times a second: a file must exist at one scan to be held).
pub struct Standby {
    layout: Box<dyn Discovery>,
    roots: Roots,
    held: HashMap<DevIno, Held>,
    /// At most this many held files gone from their path
    /// ([`TailConfig::max_deleted_files`]); the oldest are let go first.
    max_gone: usize,
}

impl std::fmt::Debug for Standby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standby")
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// A [`Standby`] for `config`'s layout. Touches nothing in `config.data_dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration.
    pub fn standby(config: &TailConfig) -> Result<Standby, Error> {
        config.validate()?;
        Ok(Standby {
            layout: discovery::layout(&config.mode)?,
            roots: Roots::of(config),
            held: HashMap::new(),
            max_gone: config.max_deleted_files,
        })
    }

    /// Hands the files `standby` holds to this tailer: when it runs, after
    /// loading the spool and scanning, each held file that was deleted in the
    /// meantime and is not tracked (from the spool) nor read to its end by its
    /// checkpoint is read as a deleted file, from its checkpoint or its start.
    pub fn adopt(mut self, standby: Standby) -> Tailer {
        self.adopted = standby.held.into_values().collect();
        self
    }
}

impl Standby {
    /// Lists the layout's directories, opens files not held yet, notes files
    /// gone from their path, and lets the oldest gone files go beyond the
    /// limit. Returns `(held, gone)`: files held, and of those, gone from their path.
    pub fn scan(&mut self) -> (usize, usize) {
        let mut seen = Vec::new();
        self.roots.refresh();
        for (dir, kind) in self.layout.roots() {
            self.scan_dir(&dir, kind, &mut seen, &mut HashSet::new());
        }
        let now = Instant::now();
        let mut present: HashMap<DevIno, ()> = HashMap::with_capacity(seen.len());
        for k in seen {
            present.insert(k, ());
        }
        for (k, h) in self.held.iter_mut() {
            if present.contains_key(k) {
                h.gone_since = None;
            } else {
                h.gone_since.get_or_insert(now);
            }
        }
        let mut gone: Vec<(Instant, DevIno)> = self
            .held
            .iter()
            .filter_map(|(k, h)| h.gone_since.map(|t| (t, *k)))
            .collect();
        if gone.len() > self.max_gone {
            gone.sort();
            let excess = gone.len() - self.max_gone;
            for (_, k) in gone.drain(..excess) {
                if let Some(h) = self.held.remove(&k) {
                    tracing::warn!(path = %h.path.display(),
                        "standby: more deleted files than source.max_deleted_files; letting the oldest go");
                }
            }
        }
        (self.held.len(), gone.len())
    }

    /// Lists `dir` as the runner's scan does (only real directories, each
    /// once, files only where the `confine` rules allow; refusals are left
    /// to the run to report) and holds the files not held yet.
    fn scan_dir(
        &mut self,
        dir: &Path,
        kind: DirKind,
        seen: &mut Vec<DevIno>,
        visited: &mut HashSet<DevIno>,
    ) {
        if kind == DirKind::ContainersDir {
            return;
        }
        let Ok(opened) = self.roots.open_dir(dir) else {
            return;
        };
        if !visited.insert(opened.key) {
            return;
        }
        let Ok(entries) = opened.entries(dir) else {
            return;
        };
        for (name, entry) in entries {
            let path = dir.join(name);
            if entry == EntryKind::Dir {
                if let Some(child) = kind.child() {
                    self.scan_dir(&path, child, seen, visited);
                }
                continue;
            }
            if matches!(kind, DirKind::PodsRoot | DirKind::PodDir)
                || self.layout.classify(&path).is_none()
            {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let key = DevIno::new(meta.dev(), meta.ino());
            seen.push(key);
            if self.held.contains_key(&key) {
                continue;
            }
            let Ok(file) = self.roots.open_file(&path) else {
                continue;
            };
            if dev_ino(&file).ok() == Some(key) {
                self.held.insert(
                    key,
                    Held {
                        path,
                        file,
                        gone_since: None,
                    },
                );
            }
        }
    }
}

impl Runner {
    /// Tracks the adopted files that were deleted while held (see the module
    /// documentation). Called once, after the spool is loaded and the first
    /// scan done.
    pub(super) fn adopt_held(&mut self) {
        let held = std::mem::take(&mut self.adopted);
        let total = held.len();
        let mut adopted = 0;
        for Held { path, file, .. } in held {
            let Ok(key) = dev_ino(&file) else { continue };
            if self.table.contains(key) || file.metadata().map_or(true, |m| m.nlink() > 0) {
                continue; // tracked at its path, or not deleted: the scans find it
            }
            let size = file.metadata().map_or(0, |m| m.len());
            let Ok(Some(head)) = read_head(&file, self.fallback, true) else {
                continue; // empty: nothing to read
            };
            let done = self
                .store
                .get(FileId::new(key, head.fingerprint))
                .is_some_and(|c| c.offset >= size);
            if done || self.is_tracked(key, head.fingerprint) {
                continue; // read to its end by the previous owner, or in its spool
            }
            tracing::info!(path = %path.display(), bytes = size,
                "reading a log file deleted during the handover through the descriptor the standby held");
            let t = Tracked::new(key, key, path, FileState::Active, file);
            self.table.insert(t);
            self.mark_deleted(key);
            adopted += 1;
        }
        if total > 0 {
            tracing::info!(held = total, adopted, "took over the files held in standby");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{kube_runner, write_log, LOG_A};
    use crate::config::RunMode;
    use crate::Tailer;

    #[test]
    fn a_standby_holds_files_without_touching_data_dir_and_the_run_reads_deleted_ones() {
        let (tmp, mut r, _events) = kube_runner(RunMode::Once);
        let kept = write_log(tmp.path(), "0.log", LOG_A).join("0.log");
        let gone = write_log(tmp.path(), "1.log", LOG_A).join("1.log");
        let mut standby = Tailer::standby(&r.cfg).unwrap();
        assert_eq!(standby.scan(), (2, 0));
        let data = std::fs::read_dir(&r.cfg.data_dir).map_or(0, |d| d.count());
        std::fs::remove_file(&gone).unwrap();
        assert_eq!(standby.scan(), (2, 1), "held though deleted");
        assert_eq!(
            std::fs::read_dir(&r.cfg.data_dir).map_or(0, |d| d.count()),
            data,
            "nothing written to data_dir"
        );
        r.adopted = standby.held.into_values().collect();
        r.load_spool();
        r.full_scan();
        r.adopt_held();
        let paths: Vec<_> = r.table.values().map(|t| t.path.clone()).collect();
        assert_eq!(r.table.len(), 2, "{paths:?}");
        assert!(paths.contains(&kept) && paths.contains(&gone));
    }

    #[test]
    fn gone_files_beyond_the_limit_are_let_go_oldest_first() {
        let (tmp, r, _events) = kube_runner(RunMode::Once);
        let mut cfg = r.cfg.clone();
        cfg.max_deleted_files = 1;
        let mut standby = Tailer::standby(&cfg).unwrap();
        let a = write_log(tmp.path(), "0.log", LOG_A).join("0.log");
        let b = write_log(tmp.path(), "1.log", LOG_A).join("1.log");
        standby.scan();
        std::fs::remove_file(&a).unwrap();
        standby.scan();
        std::fs::remove_file(&b).unwrap();
        assert_eq!(standby.scan(), (1, 1));
        assert!(standby.held.values().any(|h| h.path == b));
    }
}
