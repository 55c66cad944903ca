//! The `data_dir` lock: at most one logferry process owns a `data_dir`.
//!
//! The owner holds an exclusive `flock(2)` on `<data_dir>/lock` (an empty file
//! that nobody writes) for as long as it may write there: checkpoints, the spool,
//! `pods.json`, the dead-letter file and every temporary file among them. The
//! kernel drops the lock when the owner's descriptor closes, also when the
//! process is killed, so a surviving instance never waits for a dead one.
//!
//! A second process on the same `data_dir` (the new pod of a surge rollout,
//! beside the old one) finds the lock taken and waits in standby (see
//! [`crate::run`]), trying again every [`RETRY`].

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

/// How often a standby tries to take the lock.
pub const RETRY: Duration = Duration::from_millis(100);

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `<data_dir>/lock` without waiting; `Ok(None)` when
    /// another process holds it.
    ///
    /// # Errors
    /// The I/O error of opening the lock file or of `flock` other than "held".
    pub fn try_acquire(data_dir: &Path) -> io::Result<Option<DataDirLock>> {
        let path = data_dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DataDirLock { file, path })),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Releases the lock, logging it (the handover's other half looks for this line).
    ///
    /// The line is written just *before* the unlock, as the standby writes its
    /// "data_dir lock acquired" just after its lock: so the two lines are always
    /// in the order of the two owners, whatever the scheduler does between a
    /// syscall and a log line.
    pub fn release(self) {
        tracing::info!(path = %self.path.display(), "data_dir lock released");
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time_and_the_lock_is_free_again_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::try_acquire(dir.path()).unwrap().expect("free");
        // flock locks belong to the open file description: a second open (as a
        // second process does) is refused.
        assert!(DataDirLock::try_acquire(dir.path()).unwrap().is_none());
        first.release();
        let again = DataDirLock::try_acquire(dir.path()).unwrap();
        assert!(again.is_some());
        drop(again);
        assert!(DataDirLock::try_acquire(dir.path()).unwrap().is_some());
    }
}
