//! What each directory held when it was last listed, so that a periodic
//! rescan can skip the directories that have not changed since.
//!
//! inotify is what finds new, renamed and deleted files; the rescan every
//! `rescan_interval` is the safety net for events it missed. Listing every
//! pod and container directory each time (open, `fstat`, real-path check,
//! `getdents`, a `stat` per file) was most of the tailer's cost on a quiet
//! node with 1,000 containers. A directory's `mtime` and `ctime` change
//! whenever an entry is added, removed or renamed in it, which is all the
//! listing looks for; so a rescan `lstat`s each directory it knows and lists
//! it again only when its [`Stamp`] differs from the one taken before the last
//! listing.
//!
//! The rules that keep this as safe as listing:
//!
//! * **Racy stamps are not trusted** (git's "racily clean" rule): a listing
//!   is remembered only when the directory's last change is more than
//!   [`RACY`] older than the moment its stamp was taken. A change made while
//!   (or just before) the directory was listed therefore always shows as a
//!   different stamp, even with coarse filesystem timestamps.
//! * **Directories holding symlinks are always listed**: a link's target
//!   (cri-dockerd's `0.log` → Docker's `<id>-json.log`) can be rotated in a
//!   directory that is not watched without this one changing.
//! * **The stamp includes `(dev, ino)`**, taken with `lstat`: a directory
//!   replaced (by another directory or by a symlink) is listed again, through
//!   the same confinement checks as the first time.
//! * **Only the periodic rescan uses the cache**; the scan at start, the
//!   rescan after an inotify queue overflow or read error, the scan of
//!   `/quitquitquit` and every `full_rescan_every`-th periodic rescan list
//!   every directory (see `Runner::full_scan`).

use logferry_core::DevIno;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much older than the moment its stamp was taken a directory's last
/// change must be for its listing to be remembered (see the module docs).
pub(super) const RACY: Duration = Duration::from_secs(2);

/// A directory's identity and change times, from `lstat`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    /// `(dev, ino)` of the directory itself.
    pub key: DevIno,
    /// `mtime` in nanoseconds since the epoch.
    mtime: i128,
    /// `ctime` in nanoseconds since the epoch.
    ctime: i128,
}

impl Stamp {
    /// The stamp of `dir`, or `None` when it is not a directory or cannot
    /// be read. With `follow`, a symlink is followed (`stat`: the roots,
    /// which may be links); without, it is not (`lstat`: a link is no
    /// directory).
    pub fn of(dir: &Path, follow: bool) -> Option<Stamp> {
        let m = if follow {
            std::fs::metadata(dir)
        } else {
            std::fs::symlink_metadata(dir)
        }
        .ok()?;
        m.is_dir().then(|| Stamp {
            key: DevIno::new(m.dev(), m.ino()),
            mtime: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }

    /// Whether the directory changed less than `racy` before `taken` (or
    /// after it: a clock set back): a listing made then may miss a change
    /// that did not move the stamp.
    fn racy(&self, taken: SystemTime, racy: Duration) -> bool {
        let taken = taken
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        self.mtime.max(self.ctime) + racy.as_nanos() as i128 > taken
    }
}

/// What a listing of one directory found (and a skipped rescan reuses).
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Subdirectories that were descended into, by name.
    pub children: Vec<OsString>,
    /// `(dev, ino)` of the regular files listed (checkpoint expiry needs to
    /// know they still exist).
    pub files: Vec<DevIno>,
    /// Symlinks were among the entries: such a directory is never skipped.
    pub has_links: bool,
}

struct Entry {
    stamp: Stamp,
    listing: Listing,
    /// The scan that last saw this directory (entries not seen by a full
    /// scan are dropped).
    generation: u64,
}

/// Listings by directory path. Plain data, no I/O beyond [`Stamp::of`].
pub(super) struct DirCache {
    dirs: HashMap<PathBuf, Entry>,
    generation: u64,
    /// [`RACY`]; tests shorten it.
    pub racy: Duration,
    /// Listings stored (tests count them).
    #[cfg(test)]
    pub stored: usize,
}

impl Default for DirCache {
    fn default() -> DirCache {
        DirCache {
            dirs: HashMap::new(),
            generation: 0,
            racy: RACY,
            #[cfg(test)]
            stored: 0,
        }
    }
}

impl DirCache {
    /// Starts a full scan: entries not touched before [`DirCache::end_scan`] are dropped then.
    pub fn begin_scan(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Drops the entries of directories the scan since [`DirCache::begin_scan`] did not reach.
    pub fn end_scan(&mut self) {
        let g = self.generation;
        self.dirs.retain(|_, e| e.generation == g);
    }

    /// The listing of `dir` remembered under stamp `now`, if the directory
    /// has not changed since it was listed. Marks the entry as seen.
    pub fn unchanged(&mut self, dir: &Path, now: &Stamp) -> Option<&Listing> {
        let g = self.generation;
        let e = self.dirs.get_mut(dir)?;
        if e.stamp != *now {
            return None;
        }
        e.generation = g;
        Some(&e.listing)
    }

    /// Remembers the listing of `dir`, whose stamp was `stamp` when taken at
    /// `taken` (just before it was listed). A racy stamp or a listing with
    /// symlinks is not remembered (any previous entry is dropped).
    pub fn store(&mut self, dir: &Path, stamp: Stamp, taken: SystemTime, listing: Listing) {
        #[cfg(test)]
        {
            self.stored += 1;
        }
        if stamp.racy(taken, self.racy) || listing.has_links {
            self.dirs.remove(dir);
            return;
        }
        let generation = self.generation;
        match self.dirs.get_mut(dir) {
            Some(e) => {
                *e = Entry {
                    stamp,
                    listing,
                    generation,
                }
            }
            None => {
                self.dirs.insert(
                    dir.to_owned(),
                    Entry {
                        stamp,
                        listing,
                        generation,
                    },
                );
            }
        }
    }

    /// Forgets `dir` (its listing failed or was refused).
    pub fn forget(&mut self, dir: &Path) {
        self.dirs.remove(dir);
    }

    /// Directories remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.dirs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(dir: &Path) -> (Stamp, SystemTime) {
        let s = Stamp::of(dir, false).unwrap();
        (s, SystemTime::now() + RACY * 2)
    }

    #[test]
    fn an_unchanged_directory_is_found_a_changed_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut c = DirCache::default();
        c.begin_scan();
        let (s, taken) = old(d);
        c.store(d, s, taken, Listing::default());
        assert!(c.unchanged(d, &Stamp::of(d, false).unwrap()).is_some());
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(d.join("new.log"), b"x").unwrap();
        let now = Stamp::of(d, false).unwrap();
        assert_ne!(now, s, "a new entry changes the stamp");
        assert!(c.unchanged(d, &now).is_none());
    }

    #[test]
    fn a_racy_stamp_or_a_listing_with_links_is_not_remembered() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let mut c = DirCache::default();
        c.begin_scan();
        let s = Stamp::of(d, false).unwrap();
        c.store(d, s, SystemTime::now(), Listing::default());
        assert_eq!(c.len(), 0, "changed just now: racy");
        let (s, taken) = old(d);
        let links = Listing {
            has_links: true,
            ..Listing::default()
        };
        c.store(d, s, taken, links);
        assert_eq!(c.len(), 0, "symlinks: always listed");
    }

    #[test]
    fn a_directory_replaced_by_a_symlink_has_no_stamp_and_entries_not_seen_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let mut c = DirCache::default();
        c.begin_scan();
        for d in [&a, &b] {
            let (s, t) = old(d);
            c.store(d, s, t, Listing::default());
        }
        c.end_scan();
        assert_eq!(c.len(), 2);
        std::fs::remove_dir(&a).unwrap();
        std::os::unix::fs::symlink(&b, &a).unwrap();
        assert_eq!(Stamp::of(&a, false), None, "lstat: a link is no directory");
        c.begin_scan();
        assert!(c.unchanged(&b, &Stamp::of(&b, false).unwrap()).is_some());
        c.end_scan();
        assert_eq!(c.len(), 1, "a was not seen by the scan");
    }
}
