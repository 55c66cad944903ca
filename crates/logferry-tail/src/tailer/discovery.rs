//! Discovery: which directories to list and watch, and which of their files
//! to read.
//!
//! A [`Discovery`] knows a node's layout and nothing else: the directories a
//! full scan starts from, the kind of a subdirectory, whether a path is a log
//! file to read. Two layouts exist: [`KubeletLayout`] (kubelet's
//! `/var/log/pods` tree plus the `/var/log/containers` symlinks, which only
//! give container ids) and [`GlobLayout`] (files mode: any files matching glob
//! patterns). The tailer's `scan` room walks the directories a layout names
//! and reacts to what it finds; the inotify watches are kept by [`Watcher`].

use crate::config::SourceMode;
use crate::error::Error;
use inotify::{WatchMask, Watches};
use logferry_core::{ContainerLink, KubeLogPath, LogFormat};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What a watched directory holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum DirKind {
    /// `/var/log/pods`: one directory per pod.
    PodsRoot,
    /// `/var/log/pods/<ns>_<pod>_<uid>`: one directory per container.
    PodDir,
    /// `/var/log/pods/<ns>_<pod>_<uid>/<container>`: the log files.
    ContainerDir,
    /// `/var/log/containers`: symlinks naming container ids.
    ContainersDir,
    /// Files mode, with how many more directory levels may hold matches.
    Files(usize),
}

impl DirKind {
    /// The inotify events wanted from a directory of this kind. Only
    /// directories holding log files report `IN_MODIFY` (what reads them).
    pub fn watch_mask(self) -> WatchMask {
        match self {
            DirKind::PodsRoot | DirKind::PodDir => {
                WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::DELETE | WatchMask::ONLYDIR
            }
            DirKind::ContainersDir => WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::DELETE,
            DirKind::ContainerDir | DirKind::Files(_) => {
                WatchMask::CREATE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE
                    | WatchMask::MODIFY
                    | WatchMask::ONLYDIR
            }
        }
    }

    /// The kind of a subdirectory of a directory of this kind, or `None` when
    /// subdirectories are not descended into.
    pub fn child(self) -> Option<DirKind> {
        match self {
            DirKind::PodsRoot => Some(DirKind::PodDir),
            DirKind::PodDir => Some(DirKind::ContainerDir),
            DirKind::Files(d) if d > 0 => Some(DirKind::Files(d - 1)),
            DirKind::ContainerDir | DirKind::ContainersDir | DirKind::Files(_) => None,
        }
    }
}

/// A node's log layout, as the tailer's discovery sees it.
pub(super) trait Discovery: Send {
    /// The directories a full scan starts from, in scan order.
    fn roots(&self) -> Vec<(PathBuf, DirKind)>;

    /// The kind of a directory holding log files found again by path (a
    /// closed file looked up after a rename), when its watch is unknown.
    fn leaf_kind(&self) -> DirKind;

    /// Whether `path` is a log file to read: `Some(rotated)` where `rotated`
    /// says the name is that of a rotated file (read to its end, then
    /// released), `None` when the file is not read.
    fn classify(&self, path: &Path) -> Option<bool>;

    /// Whether `path` is a gzipped rotated file, which may hold the unread
    /// tail of a file rotated while logferry was down.
    fn is_gz_copy(&self, path: &Path) -> bool;

    /// The Kubernetes identity the path of a log file carries, if any.
    fn kube_path(&self, path: &Path) -> Option<KubeLogPath>;

    /// Where the symlinks naming container ids live, if the layout has them.
    fn containers_dir(&self) -> Option<&Path>;

    /// The format assumed for a file whose first line does not tell.
    fn fallback_format(&self) -> LogFormat;
}

/// The layout of `config`.
///
/// # Errors
/// [`Error::Config`] for a glob pattern that does not compile.
pub(super) fn layout(mode: &SourceMode) -> Result<Box<dyn Discovery>, Error> {
    Ok(match mode {
        SourceMode::Kubernetes {
            pods_dir,
            containers_dir,
        } => Box::new(KubeletLayout {
            pods_dir: pods_dir.clone(),
            containers_dir: containers_dir.clone(),
        }),
        SourceMode::Files { paths } => Box::new(GlobLayout::new(paths)?),
    })
}

/// kubelet's node log layout: `<pods_dir>/<ns>_<pod>_<uid>/<container>/<n>.log`
/// (rotated siblings `<n>.log.<timestamp>`, older ones gzipped) and the
/// symlinks `<containers_dir>/<pod>_<ns>_<container>-<id>.log`.
pub(super) struct KubeletLayout {
    pub pods_dir: PathBuf,
    pub containers_dir: PathBuf,
}

impl Discovery for KubeletLayout {
    fn roots(&self) -> Vec<(PathBuf, DirKind)> {
        // The links first, so that files found next know their container id.
        vec![
            (self.containers_dir.clone(), DirKind::ContainersDir),
            (self.pods_dir.clone(), DirKind::PodsRoot),
        ]
    }

    fn leaf_kind(&self) -> DirKind {
        DirKind::ContainerDir
    }

    fn classify(&self, path: &Path) -> Option<bool> {
        KubeLogPath::parse(path)
            .filter(|k| !k.compressed)
            .map(|k| k.rotated)
    }

    fn is_gz_copy(&self, path: &Path) -> bool {
        KubeLogPath::parse(path).is_some_and(|k| k.compressed)
    }

    fn kube_path(&self, path: &Path) -> Option<KubeLogPath> {
        KubeLogPath::parse(path)
    }

    fn containers_dir(&self) -> Option<&Path> {
        Some(&self.containers_dir)
    }

    fn fallback_format(&self) -> LogFormat {
        LogFormat::Cri
    }
}

/// Files mode: every regular file matching one of the glob patterns
/// (`*` does not cross `/`; `**` does).
pub(super) struct GlobLayout {
    patterns: Vec<String>,
    set: globset::GlobSet,
}

impl GlobLayout {
    /// Compiles `patterns`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the pattern (`paths[i]`).
    pub fn new(patterns: &[String]) -> Result<GlobLayout, Error> {
        let mut b = globset::GlobSetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            let g = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Config {
                    field: format!("paths[{i}]"),
                    reason: e.to_string(),
                })?;
            b.add(g);
        }
        let set = b.build().map_err(|e| Error::Config {
            field: "paths".into(),
            reason: e.to_string(),
        })?;
        Ok(GlobLayout {
            patterns: patterns.to_vec(),
            set,
        })
    }
}

impl Discovery for GlobLayout {
    fn roots(&self) -> Vec<(PathBuf, DirKind)> {
        self.patterns
            .iter()
            .map(|p| {
                let (base, depth) = glob_base(p);
                (base, DirKind::Files(depth))
            })
            .collect()
    }

    fn leaf_kind(&self) -> DirKind {
        DirKind::Files(0)
    }

    fn classify(&self, path: &Path) -> Option<bool> {
        self.set.is_match(path).then_some(false)
    }

    fn is_gz_copy(&self, _: &Path) -> bool {
        false
    }

    fn kube_path(&self, _: &Path) -> Option<KubeLogPath> {
        None
    }

    fn containers_dir(&self) -> Option<&Path> {
        None
    }

    fn fallback_format(&self) -> LogFormat {
        LogFormat::Plain
    }
}

/// The directory part of a glob before its first metacharacter, and how many
/// directory levels below it may hold matches (64 for `**`).
pub(super) fn glob_base(pattern: &str) -> (PathBuf, usize) {
    let meta = pattern.find(['*', '?', '[', '{']).unwrap_or(pattern.len());
    let literal = &pattern[..meta];
    let base = match literal.rfind('/') {
        Some(0) => PathBuf::from("/"),
        Some(i) => PathBuf::from(&literal[..i]),
        None => PathBuf::from("."),
    };
    let rest = &pattern[literal.rfind('/').map(|i| i + 1).unwrap_or(0)..];
    let depth = if rest.contains("**") {
        64
    } else {
        rest.matches('/').count()
    };
    (base, depth)
}

/// The inotify watches on directories, by watch descriptor and by path.
#[derive(Default)]
pub(super) struct Watcher {
    watches: Option<Watches>,
    by_wd: HashMap<i32, (PathBuf, DirKind)>,
    paths: HashSet<PathBuf>,
}

impl Watcher {
    /// Watches through `watches` (follow mode); without it nothing is watched.
    pub fn new(watches: Option<Watches>) -> Watcher {
        Watcher {
            watches,
            ..Watcher::default()
        }
    }

    /// Watches `dir` as `kind`, once. A directory that vanished first is
    /// skipped; other failures are logged (rescans still find its files).
    pub fn watch(&mut self, dir: &Path, kind: DirKind) {
        if self.paths.contains(dir) {
            return;
        }
        let Some(w) = &mut self.watches else { return };
        match w.add(dir, kind.watch_mask()) {
            Ok(wd) => {
                self.by_wd
                    .insert(wd.get_watch_descriptor_id(), (dir.to_owned(), kind));
                self.paths.insert(dir.to_owned());
            }
            // A directory removed before its watch was added (pod deleted).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "failed to watch directory; relying on rescans")
            }
        }
    }

    /// The directory of watch descriptor `wd`.
    pub fn lookup(&self, wd: i32) -> Option<(PathBuf, DirKind)> {
        self.by_wd.get(&wd).cloned()
    }

    /// The kernel dropped watch `wd` (its directory is gone).
    pub fn forget(&mut self, wd: i32) {
        if let Some((dir, _)) = self.by_wd.remove(&wd) {
            self.paths.remove(&dir);
        }
    }

    /// The kind `dir` is watched as, if it is.
    pub fn kind_of(&self, dir: &Path) -> Option<DirKind> {
        self.by_wd.values().find(|(p, _)| p == dir).map(|(_, k)| *k)
    }
}

/// Container ids from the `/var/log/containers` symlinks, by
/// `(pod uid, container, restart)` of the file a link points at.
#[derive(Default)]
pub(super) struct ContainerIds {
    ids: HashMap<(String, String, u32), String>,
}

impl ContainerIds {
    /// Forgets every id (rebuilt on every full scan so that ids of long-gone
    /// containers do not accumulate; open files keep theirs in their Source).
    pub fn clear(&mut self) {
        self.ids.clear();
    }

    /// Learns the id a symlink names, if it is a container link.
    pub fn learn_link(&mut self, link: &Path) {
        let Some(id) = ContainerLink::parse(link).and_then(|l| l.container_id) else {
            return;
        };
        // One readlink(2): only the target's last three components matter
        // (`<ns>_<pod>_<uid>/<container>/<n>.log`), so the target need not be
        // canonicalised (that costs a syscall per path component, per link,
        // per rescan: most of the idle cost on a node with 1,000 containers).
        let target = std::fs::read_link(link).ok();
        if let Some(kp) = target.as_deref().and_then(KubeLogPath::parse) {
            self.ids.insert((kp.pod_uid, kp.container, kp.restart), id);
        }
    }

    /// Learns every link of `dir`.
    pub fn learn_dir(&mut self, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            self.learn_link(&e.path());
        }
    }

    /// The container id of the file `k`. The symlink may have appeared after
    /// its inotify event was queued, so a miss looks the links of this pod's
    /// container up in `containers_dir` directly.
    pub fn find(&mut self, k: &KubeLogPath, containers_dir: Option<&Path>) -> Option<String> {
        let key = (k.pod_uid.clone(), k.container.clone(), k.restart);
        if let Some(id) = self.ids.get(&key) {
            return Some(id.clone());
        }
        if let Some(dir) = containers_dir {
            let prefix = format!("{}_{}_{}-", k.pod_name, k.namespace, k.container);
            let links: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with(&prefix))
                })
                .map(|e| e.path())
                .collect();
            for l in links {
                self.learn_link(&l);
            }
        }
        self.ids.get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn glob_bases() {
        assert_eq!(
            glob_base("/shared/logs/*.log"),
            (PathBuf::from("/shared/logs"), 0)
        );
        assert_eq!(
            glob_base("/shared/*/x/*.log"),
            (PathBuf::from("/shared"), 2)
        );
        assert_eq!(
            glob_base("/shared/**/*.log"),
            (PathBuf::from("/shared"), 64)
        );
        assert_eq!(glob_base("/a.log"), (PathBuf::from("/"), 0));
    }

    #[test]
    fn kubelet_layout_reads_active_and_rotated_files_not_gz_copies() {
        let l = layout(&SourceMode::Kubernetes {
            pods_dir: "/var/log/pods".into(),
            containers_dir: "/var/log/containers".into(),
        })
        .unwrap();
        let dir = "/var/log/pods/ns_pod_0f0e0d0c-0000-4000-8000-000000000001/app";
        let active = PathBuf::from(format!("{dir}/0.log"));
        let rotated = PathBuf::from(format!("{dir}/0.log.20261122-134510"));
        let gz = PathBuf::from(format!("{dir}/0.log.20261122-134510.gz"));
        assert_eq!(l.classify(&active), Some(false));
        assert_eq!(l.classify(&rotated), Some(true));
        assert_eq!(l.classify(&gz), None, "gz copies are not tailed");
        assert!(l.is_gz_copy(&gz));
        assert!(!l.is_gz_copy(&rotated));
        assert_eq!(l.classify(Path::new("/var/log/pods/x/app/notes.txt")), None);
        assert_eq!(l.kube_path(&active).unwrap().container, "app");
        assert_eq!(l.fallback_format(), LogFormat::Cri);
        assert_eq!(
            l.roots(),
            vec![
                ("/var/log/containers".into(), DirKind::ContainersDir),
                ("/var/log/pods".into(), DirKind::PodsRoot)
            ],
            "links are learnt before files are found"
        );
        assert_eq!(l.leaf_kind(), DirKind::ContainerDir);
    }

    #[test]
    fn glob_layout_matches_patterns_without_crossing_directories() {
        let l = layout(&SourceMode::Files {
            paths: vec!["/shared/logs/*.log".into(), "/deep/**/*.txt".into()],
        })
        .unwrap();
        assert_eq!(l.classify(Path::new("/shared/logs/a.log")), Some(false));
        assert_eq!(l.classify(Path::new("/shared/logs/sub/a.log")), None);
        assert_eq!(l.classify(Path::new("/deep/a/b/c.txt")), Some(false));
        assert_eq!(l.classify(Path::new("/shared/logs/a.log.1")), None);
        assert!(!l.is_gz_copy(Path::new("/shared/logs/a.log.gz")));
        assert!(l.kube_path(Path::new("/shared/logs/a.log")).is_none());
        assert!(l.containers_dir().is_none());
        assert_eq!(l.fallback_format(), LogFormat::Plain);
        assert_eq!(
            l.roots(),
            vec![
                ("/shared/logs".into(), DirKind::Files(0)),
                ("/deep".into(), DirKind::Files(64))
            ]
        );
    }

    #[test]
    fn a_bad_glob_names_its_index() {
        let Err(Error::Config { field, .. }) = layout(&SourceMode::Files {
            paths: vec!["/a/*.log".into(), "/b/[.log".into()],
        }) else {
            panic!("expected a config error")
        };
        assert_eq!(field, "paths[1]");
    }

    #[test]
    fn directory_kinds_descend_one_way_and_only_leaves_report_writes() {
        assert_eq!(DirKind::PodsRoot.child(), Some(DirKind::PodDir));
        assert_eq!(DirKind::PodDir.child(), Some(DirKind::ContainerDir));
        assert_eq!(DirKind::ContainerDir.child(), None);
        assert_eq!(DirKind::ContainersDir.child(), None);
        assert_eq!(DirKind::Files(2).child(), Some(DirKind::Files(1)));
        assert_eq!(DirKind::Files(0).child(), None);
        for k in [DirKind::PodsRoot, DirKind::PodDir, DirKind::ContainersDir] {
            assert!(!k.watch_mask().contains(WatchMask::MODIFY), "{k:?}");
        }
        for k in [DirKind::ContainerDir, DirKind::Files(3)] {
            assert!(k.watch_mask().contains(WatchMask::MODIFY), "{k:?}");
        }
    }

    #[test]
    fn container_ids_come_from_links_also_when_they_appear_late() {
        let tmp = tempfile::tempdir().unwrap();
        let pods = tmp.path().join("pods");
        let links = tmp.path().join("containers");
        let uid = "0f0e0d0c-0000-4000-8000-000000000001";
        let cdir = pods.join(format!("ns_pod_{uid}/app"));
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::create_dir_all(&links).unwrap();
        std::fs::write(cdir.join("0.log"), b"").unwrap();
        let kp = KubeLogPath::parse(&cdir.join("0.log")).unwrap();

        let mut ids = ContainerIds::default();
        ids.learn_dir(&links);
        assert_eq!(ids.find(&kp, None), None);
        // The link appears after the scan: found by looking the pod's links up.
        std::os::unix::fs::symlink(
            cdir.join("0.log"),
            links.join(format!("pod_ns_app-{ID}.log")),
        )
        .unwrap();
        assert_eq!(ids.find(&kp, Some(&links)).as_deref(), Some(ID));
        ids.clear();
        ids.learn_dir(&links);
        assert_eq!(ids.find(&kp, None).as_deref(), Some(ID));
    }

    #[test]
    fn watcher_without_inotify_watches_nothing() {
        let mut w = Watcher::new(None);
        w.watch(Path::new("/tmp"), DirKind::Files(0));
        assert_eq!(w.kind_of(Path::new("/tmp")), None);
        assert_eq!(w.lookup(1), None);
    }

    #[test]
    fn watcher_records_kinds_and_forgets_dropped_watches() {
        let tmp = tempfile::tempdir().unwrap();
        let inotify = inotify::Inotify::init().unwrap();
        let mut w = Watcher::new(Some(inotify.watches()));
        w.watch(tmp.path(), DirKind::Files(2));
        w.watch(&tmp.path().join("missing"), DirKind::Files(1));
        assert_eq!(w.kind_of(tmp.path()), Some(DirKind::Files(2)));
        assert_eq!(w.kind_of(&tmp.path().join("missing")), None);
        let (wd, _) = w.by_wd.iter().next().map(|(k, v)| (*k, v.clone())).unwrap();
        assert_eq!(
            w.lookup(wd),
            Some((tmp.path().to_owned(), DirKind::Files(2)))
        );
        w.forget(wd);
        assert_eq!(w.kind_of(tmp.path()), None);
    }
}
