//! Deleted pods' metadata on disk, so that a restarted logferry still enriches
//! the lines it reads after the restart from files (or spooled copies) of pods
//! the API server no longer knows.
//!
//! One file per deleted pod, `<state_dir>/<pod uid>.json`: the store's small
//! entry ([`PodInfo`]) as JSON. Written (temp file + rename) when the pod is
//! deleted, removed when its entry is evicted or the pod is listed again. The
//! files are not `fsync`ed: they survive a crash of the process (SIGKILL, OOM
//! kill), not of the node, and losing one costs only metadata (the records
//! then carry what their path says), never a line.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::entry::PodInfo;

/// A change to make on disk, collected under the store's lock and applied after it.
#[derive(Debug)]
pub(crate) enum TombstoneOp {
    /// The pod was deleted: keep its entry.
    Save(PodInfo),
    /// The entry was evicted or the pod is live again.
    Remove(String),
}

fn file(dir: &Path, uid: &str) -> Option<PathBuf> {
    // Uids are UUIDs (static pods: config hashes); refuse anything path-like.
    let ok = !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| dir.join(format!("{uid}.json")))
}

/// Applies `ops` in order. Failures are logged (metadata only; see the module docs).
pub(crate) fn apply(dir: &Path, ops: Vec<TombstoneOp>) {
    for op in ops {
        let result = match &op {
            TombstoneOp::Save(info) => match file(dir, &info.uid) {
                Some(path) => save(&path, info),
                None => Ok(()),
            },
            TombstoneOp::Remove(uid) => match file(dir, uid) {
                Some(path) => match fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            tracing::warn!(dir = %dir.display(), error = %e, op = ?op, "failed to update a deleted pod's metadata on disk");
        }
    }
}

fn save(path: &Path, info: &PodInfo) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec(info).map_err(io::Error::other)?)?;
    fs::rename(&tmp, path)
}

/// Reads every entry in `dir` (creating it if needed). Unreadable files are
/// removed with a warning.
///
/// # Errors
/// The I/O error of creating or listing `dir`.
pub(crate) fn load(dir: &Path) -> io::Result<Vec<PodInfo>> {
    fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for e in fs::read_dir(dir)?.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            let _ = fs::remove_file(&path); // an interrupted write
            continue;
        }
        match fs::read(&path).map(|b| serde_json::from_slice::<PodInfo>(&b)) {
            Ok(Ok(info)) => out.push(info),
            _ => {
                tracing::warn!(path = %path.display(), "unreadable deleted pod metadata; removing it");
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_uids_are_refused_and_broken_files_removed_at_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(file(dir.path(), "../etc/passwd"), None);
        assert_eq!(file(dir.path(), ""), None);
        assert!(file(dir.path(), "0b5c1c2e-7a4e-4c1f-9a43-1f0a2b3c4d5e").is_some());
        fs::write(dir.path().join("uid-a.json"), b"{not json").unwrap();
        fs::write(dir.path().join("uid-b.json.tmp"), b"{}").unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
