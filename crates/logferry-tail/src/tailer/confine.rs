//! Confinement: the tailer reads only files whose real path lies under the
//! log roots, and walks only real directories.
//!
//! logferry runs as root and reads directories that tenants' pods can write
//! to. A symlink planted there (`0.log -> /var/run/secrets/…/token`) must not
//! make it ship a file from elsewhere, and two directory links to `.` must not
//! make a `**` scan endless. So:
//!
//! * **Files** are opened in two steps without a gap an attacker could use:
//!   `open(O_PATH)` (follows links, opens nothing: no FIFO blocks, no device
//!   driver runs), `fstat` (must be a regular file), `readlink
//!   /proc/self/fd/N` (the real path of *that* inode, must lie under a root),
//!   then the read descriptor is opened through `/proc/self/fd/N`: the very
//!   inode that was checked, whatever happened to the path meanwhile.
//! * **Directories** below a root are opened with `O_NOFOLLOW | O_DIRECTORY`
//!   (a symlinked directory is refused, never descended into), their real
//!   path is checked the same way, and a scan keeps the `(dev, ino)` of every
//!   directory it listed, so that a loop (bind mounts) ends.
//! * **Roots** are the layout's directories (`pods_dir`; in files mode the
//!   non-glob base of each pattern) and, in kubernetes mode, Docker's
//!   container directory, where cri-dockerd's files under `pods_dir` link to
//!   (only `<id>/<id>-json.log*` there). Roots themselves are the operator's
//!   choice and may be links; they are resolved at every full scan.
//!
//! Hard links are not covered: a hard link is the file itself, and the
//! kernel's `fs.protected_hardlinks` (on by default) stops users from linking
//! files they do not own.
//!
//! Refusals are reported through [`RefusalLog`]: logged once per path and
//! counted, with a bounded memory of paths.

use super::discovery::glob_base;
use crate::config::{SourceMode, TailConfig};
use crate::events::{RefusalReason, TailEvents};
use logferry_core::DevIno;
use rustix::fs::{FileType, Mode, OFlags};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Paths remembered as refused, each logged once. Beyond this many, further
/// refusals are counted every time but not logged (a tenant with a million
/// links can neither grow this set nor flood the log).
pub(super) const MAX_REMEMBERED_REFUSALS: usize = 4096;

/// What files below a root may be read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum RootKind {
    /// Every regular file below it.
    Tree,
    /// Docker's container directory: only `<id>/<id>-json.log` and its
    /// rotated siblings (`config.v2.json` there holds containers' environments).
    DockerContainers,
}

struct Root {
    configured: PathBuf,
    /// `configured` with every link resolved; `configured` itself while it
    /// cannot be resolved (not created yet).
    real: PathBuf,
    kind: RootKind,
}

/// Why opening a file or directory gave nothing to read.
#[derive(Debug)]
pub(super) enum OpenError {
    /// Refused by the confinement rules.
    Refused(RefusalReason),
    /// The path could not be opened (gone, permissions, …).
    Io(io::Error),
}

impl From<rustix::io::Errno> for OpenError {
    fn from(e: rustix::io::Errno) -> OpenError {
        OpenError::Io(e.into())
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> OpenError {
        OpenError::Io(e)
    }
}

/// What a directory entry is, as the directory listing says (`d_type`,
/// without following links; `lstat` where the filesystem does not tell).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum EntryKind {
    /// A real directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (to anything).
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// The log roots: where files may be read from.
pub(super) struct Roots {
    roots: Vec<Root>,
}

impl Roots {
    /// The roots of `cfg`: `pods_dir` and Docker's container directory in
    /// kubernetes mode, the non-glob base of each pattern in files mode.
    pub fn of(cfg: &TailConfig) -> Roots {
        let dirs = match &cfg.mode {
            SourceMode::Kubernetes { pods_dir, .. } => {
                std::iter::once((pods_dir.clone(), RootKind::Tree))
                    .chain(
                        cfg.docker_containers_dir
                            .iter()
                            .map(|d| (d.clone(), RootKind::DockerContainers)),
                    )
                    .collect()
            }
            SourceMode::Files { paths } => paths
                .iter()
                .map(|p| (glob_base(p).0, RootKind::Tree))
                .collect(),
        };
        Roots::new(dirs)
    }

    /// Roots at `dirs` (resolved now and at every [`Roots::refresh`]).
    pub fn new(dirs: Vec<(PathBuf, RootKind)>) -> Roots {
        let mut roots = Roots {
            roots: dirs
                .into_iter()
                .map(|(configured, kind)| Root {
                    real: configured.clone(),
                    configured,
                    kind,
                })
                .collect(),
        };
        roots.refresh();
        roots
    }

    /// Resolves the roots again (a root created or relinked since).
    pub fn refresh(&mut self) {
        for r in &mut self.roots {
            r.real = std::fs::canonicalize(&r.configured).unwrap_or_else(|_| r.configured.clone());
        }
    }

    /// Whether `dir` is one of the configured roots (opened following links).
    pub fn is_root(&self, dir: &Path) -> bool {
        self.roots.iter().any(|r| r.configured == dir)
    }

    /// Whether a regular file at real path `real` may be read.
    pub fn allows_file(&self, real: &Path) -> bool {
        self.roots.iter().any(|r| {
            let Ok(rel) = real.strip_prefix(&r.real) else {
                return false;
            };
            match r.kind {
                RootKind::Tree => true,
                RootKind::DockerContainers => docker_log_file(rel),
            }
        })
    }

    /// Whether a directory at real path `real` may be listed.
    pub fn allows_dir(&self, real: &Path) -> bool {
        self.roots
            .iter()
            .any(|r| r.kind == RootKind::Tree && real.starts_with(&r.real))
    }

    /// Opens the log file at `path` for reading, if it is a regular file
    /// whose real path lies under a root (see the module documentation).
    /// Links in `path` are followed; what they lead to is checked.
    pub fn open_file(&self, path: &Path) -> Result<File, OpenError> {
        let handle = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
        let st = rustix::fs::fstat(&handle)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(OpenError::Refused(RefusalReason::NotRegularFile));
        }
        let key = DevIno::new(st.st_dev, st.st_ino);
        let proc = fd_path(&handle);
        let file: OwnedFd = match real_path(&proc) {
            Some(real) => {
                if !self.allows_file(&real) {
                    return Err(OpenError::Refused(RefusalReason::OutsideRoots));
                }
                // The inode just checked, whatever the path points at now.
                rustix::fs::open(&proc, read_flags(), Mode::empty())?
            }
            // No /proc: resolve the path instead, then make sure the file
            // opened is the inode that was checked.
            None => {
                let real = std::fs::canonicalize(path)?;
                if !self.allows_file(&real) {
                    return Err(OpenError::Refused(RefusalReason::OutsideRoots));
                }
                rustix::fs::open(&real, read_flags() | OFlags::NOFOLLOW, Mode::empty())?
            }
        };
        let opened = rustix::fs::fstat(&file)?;
        if DevIno::new(opened.st_dev, opened.st_ino) != key {
            return Err(OpenError::Io(io::Error::other(
                "file replaced while opening",
            )));
        }
        Ok(File::from(file))
    }

    /// Opens the directory `dir` for listing: a root following links, any
    /// other directory with `O_NOFOLLOW` (a symlink is refused as
    /// [`RefusalReason::SymlinkedDirectory`]) and only if its real path lies
    /// under a root.
    pub fn open_dir(&self, dir: &Path) -> Result<OpenDir, OpenError> {
        let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let root = self.is_root(dir);
        if !root {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = match rustix::fs::open(dir, flags, Mode::empty()) {
            Ok(fd) => fd,
            // `O_NOFOLLOW | O_DIRECTORY` on a link: ELOOP or ENOTDIR.
            Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) if !root => {
                let link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_symlink());
                return Err(
                    if link && std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
                        OpenError::Refused(RefusalReason::SymlinkedDirectory)
                    } else {
                        e.into()
                    },
                );
            }
            Err(e) => return Err(e.into()),
        };
        let st = rustix::fs::fstat(&fd)?;
        if !root {
            if let Some(real) = real_path(&fd_path(&fd)) {
                if !self.allows_dir(&real) {
                    return Err(OpenError::Refused(RefusalReason::OutsideRoots));
                }
            }
        }
        Ok(OpenDir {
            key: DevIno::new(st.st_dev, st.st_ino),
            fd,
        })
    }

    /// [`Roots::open_dir`] and [`OpenDir::entries`] at once.
    #[cfg(test)]
    pub fn list_dir(&self, dir: &Path) -> Result<Vec<(OsString, EntryKind)>, OpenError> {
        Ok(self.open_dir(dir)?.entries(dir)?)
    }
}

/// A directory opened by [`Roots::open_dir`], not listed yet.
pub(super) struct OpenDir {
    /// `(dev, ino)` of the directory.
    pub key: DevIno,
    fd: OwnedFd,
}

impl OpenDir {
    /// The names and kinds of the entries (`.` and `..` left out); `dir` is
    /// the path the directory was opened at (for `lstat` where the
    /// filesystem does not give entry types).
    pub fn entries(self, dir: &Path) -> io::Result<Vec<(OsString, EntryKind)>> {
        let mut entries = Vec::new();
        for e in rustix::fs::Dir::new(self.fd)? {
            let e = e?;
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let kind = match e.file_type() {
                FileType::Directory => EntryKind::Dir,
                FileType::RegularFile => EntryKind::File,
                FileType::Symlink => EntryKind::Symlink,
                FileType::Unknown => match std::fs::symlink_metadata(dir.join(name)) {
                    Ok(m) if m.is_dir() => EntryKind::Dir,
                    Ok(m) if m.is_file() => EntryKind::File,
                    Ok(m) if m.is_symlink() => EntryKind::Symlink,
                    _ => EntryKind::Other,
                },
                _ => EntryKind::Other,
            };
            entries.push((name.to_owned(), kind));
        }
        Ok(entries)
    }
}

/// `O_RDONLY | O_CLOEXEC | O_NONBLOCK`: a file swapped for a FIFO cannot
/// block the tailer (for regular files `O_NONBLOCK` changes nothing).
fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK
}

/// `/proc/self/fd/<fd>`.
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The real path of the descriptor behind `proc` (`/proc/self/fd/N`), or
/// `None` where `/proc` is not mounted. A file unlinked meanwhile ends in
/// `" (deleted)"`, which does not change which root it is under.
fn real_path(proc: &Path) -> Option<PathBuf> {
    std::fs::read_link(proc).ok().filter(|p| p.is_absolute())
}

/// `<id>/<id>-json.log[.<n>]`, relative to Docker's container directory.
fn docker_log_file(rel: &Path) -> bool {
    let mut parts = rel.components();
    let (Some(Component::Normal(id)), Some(Component::Normal(name)), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (id, name) = (id.as_bytes(), name.as_bytes());
    !id.is_empty()
        && name.len() > id.len()
        && name.starts_with(id)
        && name[id.len()..].starts_with(b"-json.log")
}

/// Refusals, each path logged once, counted through [`TailEvents::file_refused`].
#[derive(Default)]
pub(super) struct RefusalLog {
    seen: HashSet<PathBuf>,
    full_logged: bool,
}

impl RefusalLog {
    /// Reports that `path` was refused for `reason`: logged and counted the
    /// first time for this path (up to [`MAX_REMEMBERED_REFUSALS`] paths;
    /// beyond that counted every time, not logged).
    pub fn refuse(&mut self, path: &Path, reason: RefusalReason, events: &dyn TailEvents) {
        if self.seen.contains(path) {
            return;
        }
        events.file_refused(reason);
        if self.seen.len() >= MAX_REMEMBERED_REFUSALS {
            if !self.full_logged {
                self.full_logged = true;
                tracing::warn!(
                    paths = MAX_REMEMBERED_REFUSALS,
                    "many paths refused; further refusals are counted (logferry_tail_files_refused_total) but not logged"
                );
            }
            return;
        }
        self.seen.insert(path.to_owned());
        match reason {
            RefusalReason::OutsideRoots => tracing::warn!(
                path = %path.display(),
                reason = reason.as_label(),
                "not reading a file whose real path lies outside the log roots (a symlink leading out of them)"
            ),
            RefusalReason::NotRegularFile => tracing::warn!(
                path = %path.display(),
                reason = reason.as_label(),
                "not reading something that is not a regular file"
            ),
            RefusalReason::SymlinkedDirectory => tracing::info!(
                path = %path.display(),
                reason = reason.as_label(),
                "not descending into a symlinked directory"
            ),
        }
    }

    /// Forgets `path`, so that a later refusal is reported again (the path
    /// was read successfully meanwhile).
    pub fn forget(&mut self, path: &Path) {
        if !self.seen.is_empty() {
            self.seen.remove(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_roots_allow_only_json_log_files() {
        assert!(docker_log_file(Path::new(&format!("{ID}/{ID}-json.log"))));
        assert!(docker_log_file(Path::new(&format!("{ID}/{ID}-json.log.1"))));
        assert!(!docker_log_file(Path::new(&format!("{ID}/config.v2.json"))));
        assert!(!docker_log_file(Path::new(&format!("{ID}/other-json.log"))));
        assert!(!docker_log_file(Path::new(&format!(
            "{ID}/x/{ID}-json.log"
        ))));
        assert!(!docker_log_file(Path::new(&format!("{ID}-json.log"))));
    }

    #[test]
    fn a_link_out_of_the_roots_is_refused_and_one_inside_is_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("secret");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(&outside, b"api key\n").unwrap();
        std::fs::write(root.join("a.log"), b"line\n").unwrap();
        symlink(&outside, root.join("evil.log")).unwrap();
        symlink(root.join("a.log"), root.join("good.log")).unwrap();
        // A root given through a link is resolved.
        symlink(&root, tmp.path().join("root-link")).unwrap();
        let roots = Roots::new(vec![(tmp.path().join("root-link"), RootKind::Tree)]);
        let dir = tmp.path().join("root-link");
        assert!(matches!(
            roots.open_file(&dir.join("evil.log")),
            Err(OpenError::Refused(RefusalReason::OutsideRoots))
        ));
        assert!(roots.open_file(&dir.join("good.log")).is_ok());
        assert!(roots.open_file(&dir.join("a.log")).is_ok());
        assert!(matches!(
            roots.open_file(&dir.join("missing.log")),
            Err(OpenError::Io(_))
        ));
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("x.log");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let roots = Roots::new(vec![(tmp.path().to_owned(), RootKind::Tree)]);
        assert!(matches!(
            roots.open_file(&fifo),
            Err(OpenError::Refused(RefusalReason::NotRegularFile))
        ));
    }

    #[test]
    fn symlinked_directories_are_not_listed_below_a_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink(".", root.join("loop")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        let roots = Roots::new(vec![(root.clone(), RootKind::Tree)]);
        let mut names = roots.list_dir(&root).unwrap();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            vec![
                ("etc".into(), EntryKind::Symlink),
                ("loop".into(), EntryKind::Symlink),
                ("real".into(), EntryKind::Dir),
            ]
        );
        assert!(roots.list_dir(&root.join("real")).is_ok());
        for link in ["loop", "etc"] {
            assert!(matches!(
                roots.list_dir(&root.join(link)),
                Err(OpenError::Refused(RefusalReason::SymlinkedDirectory))
            ));
        }
    }

    #[test]
    fn refusals_are_logged_once_per_path_and_the_memory_is_bounded() {
        #[derive(Default)]
        struct Count(std::sync::atomic::AtomicU64);
        impl TailEvents for Count {
            fn file_refused(&self, _: RefusalReason) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let events = Count::default();
        let mut log = RefusalLog::default();
        let reason = RefusalReason::OutsideRoots;
        log.refuse(Path::new("/a"), reason, &events);
        log.refuse(Path::new("/a"), reason, &events);
        assert_eq!(events.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        for i in 0..MAX_REMEMBERED_REFUSALS + 10 {
            log.refuse(Path::new(&format!("/p/{i}")), reason, &events);
        }
        assert_eq!(log.seen.len(), MAX_REMEMBERED_REFUSALS);
        log.forget(Path::new("/a"));
        assert!(!log.seen.contains(Path::new("/a")));
    }
}
