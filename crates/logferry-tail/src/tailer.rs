//! The tailer: discovery, reading, rotation, acknowledgements, checkpoints.
//!
//! One task owns every file's state (no locks). It reacts to inotify events
//! (new files within milliseconds, `IN_MODIFY` for reading), acknowledgements,
//! a 200 ms housekeeping tick (partial/multiline flush timeouts; every fifth tick
//! an `fstat` of each open file as a safety net), the checkpoint interval and the
//! rescan interval.

use crate::checkpoint::{AckTracker, CheckpointStore};
use crate::config::{ReadFrom, RunMode, SourceMode, TailConfig};
use crate::decode::LineDecoder;
use crate::error::Error;
use crate::events::{LossReason, RotationKind, TailEvents};
use crate::identity::{dev_ino, fingerprint_matches, read_head};
use crate::joiner::Joiner;
use crate::reader::FileReader;
use crate::spool::{Spool, Spooled};
use futures::StreamExt;
use inotify::{EventMask, Inotify, WatchMask, Watches};
use logferry_core::{
    AckToken, ContainerLink, FileId, KubeLogPath, LogFormat, Record, RecordBatch, Source, SourceId,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type Key = (u64, u64);

const HOUSEKEEPING: Duration = Duration::from_millis(200);
const POLL_EVERY_TICKS: u32 = 5;
/// An active file without new data for this long is polled only every
/// [`IDLE_POLL_EVERY`] polls: inotify's `IN_MODIFY` is what reads it, the poll
/// is a safety net, and 1,000 quiet files should cost next to nothing.
const IDLE_POLL_AFTER: Duration = Duration::from_secs(10);
/// See [`IDLE_POLL_AFTER`]: one poll in this many (polls run once a second).
const IDLE_POLL_EVERY: u32 = 5;

/// What [`Tailer::run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailSummary {
    /// Files whose identity was established (opened for reading).
    pub files: usize,
    /// Records emitted.
    pub records: u64,
    /// Bytes read from files (framing included).
    pub bytes: u64,
}

/// The checkpointed tailer. See the crate documentation.
pub struct Tailer {
    config: TailConfig,
    events: Arc<dyn TailEvents>,
    store: CheckpointStore,
    finish: Option<CancellationToken>,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// Validates `config` and loads the checkpoints from
    /// `config.data_dir/checkpoints.json` (a corrupt file is reported with
    /// `tracing::error!` and the previous good copy is used).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration, [`Error::DataDir`] /
    /// [`Error::CheckpointRead`] when the data directory or checkpoint file
    /// cannot be read.
    pub fn new(config: TailConfig, events: Arc<dyn TailEvents>) -> Result<Tailer, Error> {
        config.validate()?;
        let store = CheckpointStore::load(&config.data_dir)?;
        Ok(Tailer {
            config,
            events,
            store,
            finish: None,
        })
    }

    /// Makes `finish` end a [`RunMode::Follow`] run gracefully: when it is
    /// cancelled, the directories are rescanned once (files created since the
    /// last event are picked up), every file is read to its current end
    /// (trailing partials flushed as `INCOMPLETE`), and then reading stops as
    /// with [`RunMode::Once`]. This is the sidecar's `/quitquitquit`: every
    /// line written before the call is shipped.
    pub fn finish_on(mut self, finish: CancellationToken) -> Tailer {
        self.finish = Some(finish);
        self
    }

    /// Runs until reading is stopped and every emitted batch is acknowledged
    /// (or the ack channel closes), then writes the final checkpoint and returns.
    ///
    /// - `out`: batches, in file order per file; reading pauses while the
    ///   channel is full.
    /// - `acks`: tokens from [`Acker`](logferry_core::Acker), in any order; a
    ///   file's checkpoint advances over the contiguous acknowledged prefix.
    /// - `stop_reading`: once cancelled, no new data is read, `out` is dropped
    ///   (downstream sees the end of input; batches not yet sent are dropped
    ///   and read again on the next start), acks are processed until `acks`
    ///   closes or nothing is outstanding, then checkpoints are written.
    /// - [`RunMode::Once`]: stops reading by itself once every file found at
    ///   start was read to its end (trailing partials flushed as `INCOMPLETE`).
    ///
    /// # Errors
    /// [`Error::CheckpointWrite`] when checkpoints cannot be persisted,
    /// [`Error::Watch`] when inotify cannot be initialised.
    pub async fn run(
        self,
        mode: RunMode,
        out: mpsc::Sender<RecordBatch>,
        acks: mpsc::UnboundedReceiver<AckToken>,
        stop_reading: CancellationToken,
    ) -> Result<TailSummary, Error> {
        let finish = self.finish.clone();
        Runner::new(self, mode)?
            .run(out, acks, stop_reading, finish)
            .await
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileState {
    Active,
    Rotated,
    Deleted,
}

enum Handle {
    Unidentified(File),
    Reading(Box<FileReader>),
    /// Closed for the fd limit at a clean end of file; reopen at `offset`.
    Closed {
        offset: u64,
        format: LogFormat,
    },
}

struct Tracked {
    /// `(dev, ino)` of the open file.
    key: Key,
    /// `(dev, ino)` of the file's identity (checkpoints, [`FileId`]): the same
    /// as `key`, except for a gzipped copy read through a temporary file.
    ident: Key,
    path: PathBuf,
    state: FileState,
    handle: Handle,
    source: Option<Arc<Source>>,
    fingerprint_len: usize,
    tracker: AckTracker,
    /// Found by the scan at start (for `read_from` / `lookback`).
    initial: bool,
    size_hint: u64,
    queued: bool,
    check_fingerprint: bool,
    finalized: bool,
    last_data: Instant,
    deleted_since: Option<Instant>,
    next_seq: u64,
    /// This file's copy in the spool: (fingerprint, bytes on disk).
    spooled: Option<(u64, u64)>,
    /// Reading starts at or after this offset (a spooled copy's `start`:
    /// everything before it was acknowledged).
    min_offset: u64,
}

impl Tracked {
    /// A file opened at `key`, not identified yet, known as `ident`.
    fn new(key: Key, ident: Key, path: PathBuf, state: FileState, file: File) -> Tracked {
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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DirKind {
    PodsRoot,
    PodDir,
    ContainerDir,
    ContainersDir,
    /// Files mode, with how many more directory levels may hold matches.
    Files(usize),
}

struct Runner {
    cfg: TailConfig,
    events: Arc<dyn TailEvents>,
    store: CheckpointStore,
    mode: RunMode,
    files: HashMap<Key, Tracked>,
    by_path: BTreeMap<PathBuf, Key>,
    /// Copies of deleted files not yet fully acknowledged (each tracked
    /// file knows its copy: [`Tracked::spooled`]).
    spool: Spool,
    /// `.gz` files already examined by [`Runner::consider_gz`], by path (a
    /// new `.gz` often gets the inode of the one kubelet just deleted).
    gz_seen: HashMap<PathBuf, Key>,
    displaced: Vec<Key>,
    by_source: HashMap<SourceId, Key>,
    retired: HashMap<SourceId, AckTracker>,
    finished: HashMap<Key, u64>,
    container_ids: HashMap<(String, String, u32), String>,
    watches: Option<Watches>,
    watched: HashMap<i32, (PathBuf, DirKind)>,
    watched_paths: HashSet<PathBuf>,
    globs: Option<globset::GlobSet>,
    urgent: VecDeque<Key>,
    normal: VecDeque<Key>,
    outbox: VecDeque<RecordBatch>,
    next_source_id: u64,
    initial_scan: bool,
    seen_in_scan: HashSet<Key>,
    sent_unacked: usize,
    summary: TailSummary,
    once_keys: HashSet<Key>,
    /// Safety polls done so far (for [`IDLE_POLL_EVERY`]).
    polls: u32,
    fallback: LogFormat,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The directory part of a glob before its first metacharacter, and whether
/// the pattern can match below more than one level (`**`).
fn glob_base(pattern: &str) -> (PathBuf, usize) {
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

impl Runner {
    fn new(t: Tailer, mode: RunMode) -> Result<Runner, Error> {
        let (globs, fallback) = match &t.config.mode {
            SourceMode::Files { paths } => {
                let mut b = globset::GlobSetBuilder::new();
                for (i, p) in paths.iter().enumerate() {
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
                (Some(set), LogFormat::Plain)
            }
            SourceMode::Kubernetes { .. } => (None, LogFormat::Cri),
        };
        let spool = Spool::open(&t.config.data_dir).map_err(|source| Error::DataDir {
            path: t.config.data_dir.join("spool"),
            source,
        })?;
        Ok(Runner {
            spool,
            cfg: t.config,
            events: t.events,
            store: t.store,
            mode,
            files: HashMap::new(),
            by_path: BTreeMap::new(),
            gz_seen: HashMap::new(),
            displaced: Vec::new(),
            by_source: HashMap::new(),
            retired: HashMap::new(),
            finished: HashMap::new(),
            container_ids: HashMap::new(),
            watches: None,
            watched: HashMap::new(),
            watched_paths: HashSet::new(),
            globs,
            urgent: VecDeque::new(),
            normal: VecDeque::new(),
            outbox: VecDeque::new(),
            next_source_id: 0,
            initial_scan: true,
            seen_in_scan: HashSet::new(),
            sent_unacked: 0,
            summary: TailSummary::default(),
            once_keys: HashSet::new(),
            polls: 0,
            fallback,
        })
    }

    async fn run(
        mut self,
        out: mpsc::Sender<RecordBatch>,
        mut acks: mpsc::UnboundedReceiver<AckToken>,
        stop: CancellationToken,
        finish: Option<CancellationToken>,
    ) -> Result<TailSummary, Error> {
        let finish = finish.unwrap_or_default();
        let mut finishing = false;
        let mut stream = None;
        if self.mode == RunMode::Follow {
            let inotify = Inotify::init().map_err(|source| Error::Watch {
                path: PathBuf::from("inotify"),
                source,
            })?;
            let s = inotify
                .into_event_stream(vec![0u8; 64 * 1024])
                .map_err(|source| Error::Watch {
                    path: PathBuf::from("inotify"),
                    source,
                })?;
            self.watches = Some(s.watches());
            stream = Some(s);
        }
        self.load_spool();
        self.full_scan();
        self.initial_scan = false;
        if self.mode == RunMode::Once {
            self.once_keys = self.files.keys().copied().collect();
        }
        let mut out = Some(out);
        let mut acks_open = true;
        let mut stopped = false;
        let mut house = tokio::time::interval(HOUSEKEEPING);
        house.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ckpt = tokio::time::interval(self.cfg.checkpoint_interval);
        ckpt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rescan = tokio::time::interval(self.cfg.rescan_interval);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rescan.tick().await;
        let mut ticks: u32 = 0;
        loop {
            if !stopped && self.outbox.is_empty() {
                self.fill_outbox();
            }
            if !stopped && self.mode == RunMode::Once && self.outbox.is_empty() && self.once_done()
            {
                stopped = true;
            }
            if stopped {
                if out.take().is_some() {
                    tracing::debug!(dropped = self.outbox.len(), "stopped reading");
                }
                self.outbox.clear();
                if self.sent_unacked == 0 || !acks_open {
                    break;
                }
            }
            let has_read_work = !stopped
                && self.outbox.is_empty()
                && !(self.urgent.is_empty() && self.normal.is_empty());
            let can_send = !stopped && !self.outbox.is_empty();
            let send = async {
                match &out {
                    Some(o) if can_send => o.reserve().await,
                    _ => std::future::pending().await,
                }
            };
            let inotify_next = async {
                match &mut stream {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.cancelled(), if !stopped => stopped = true,
                _ = finish.cancelled(), if !stopped && !finishing && self.mode == RunMode::Follow => {
                    finishing = true;
                    self.finish_reading();
                }
                ack = acks.recv(), if acks_open => match ack {
                    Some(token) => {
                        self.on_ack(token);
                        while let Ok(token) = acks.try_recv() {
                            self.on_ack(token);
                        }
                    }
                    None => acks_open = false,
                },
                permit = send => match permit {
                    Ok(permit) => {
                        if let Some(batch) = self.outbox.pop_front() {
                            permit.send(batch);
                            self.sent_unacked += 1;
                        }
                    }
                    Err(_) => {
                        tracing::warn!("record batch receiver closed; stopping reading");
                        stopped = true;
                    }
                },
                ev = inotify_next => match ev {
                    Some(Ok(ev)) => self.on_inotify(ev.wd.get_watch_descriptor_id(), ev.mask, ev.name),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "inotify read failed; rescanning");
                        self.full_scan();
                    }
                    None => stream = None,
                },
                _ = house.tick() => {
                    ticks = ticks.wrapping_add(1);
                    self.housekeeping(ticks % POLL_EVERY_TICKS == 0 && !stopped);
                }
                _ = ckpt.tick() => self.save_checkpoints(false)?,
                _ = rescan.tick(), if !stopped && self.mode == RunMode::Follow => self.full_scan(),
                _ = std::future::ready(()), if has_read_work => {}
            }
        }
        self.save_checkpoints(true)?;
        Ok(self.summary)
    }

    /// Switches a follow run to "read everything to its end, then stop".
    fn finish_reading(&mut self) {
        // Discover what inotify has not reported yet, while new files are
        // still read from the beginning (follow mode).
        self.full_scan();
        self.mode = RunMode::Once;
        self.once_keys = self.files.keys().copied().collect();
        let keys: Vec<Key> = self.files.keys().copied().collect();
        for key in keys {
            // Files closed for the fd limit may have grown since.
            self.reopen(key);
            self.enqueue(key, false);
        }
        tracing::info!(
            files = self.once_keys.len(),
            "finishing: reading every file to its end"
        );
    }

    fn once_done(&self) -> bool {
        self.once_keys.iter().all(|k| {
            self.files.get(k).is_none_or(|t| {
                t.finalized || matches!(t.handle, Handle::Unidentified(_) | Handle::Closed { .. })
            })
        }) && self.urgent.is_empty()
            && self.normal.is_empty()
    }

    // ---------------------------------------------------------------- discovery

    fn watch(&mut self, dir: &Path, kind: DirKind) {
        if self.watched_paths.contains(dir) {
            return;
        }
        let Some(w) = &mut self.watches else { return };
        let mask = match kind {
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
        };
        match w.add(dir, mask) {
            Ok(wd) => {
                self.watched
                    .insert(wd.get_watch_descriptor_id(), (dir.to_owned(), kind));
                self.watched_paths.insert(dir.to_owned());
            }
            // A directory removed before its watch was added (pod deleted).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "failed to watch directory; relying on rescans")
            }
        }
    }

    fn full_scan(&mut self) {
        self.seen_in_scan.clear();
        match self.cfg.mode.clone() {
            SourceMode::Kubernetes {
                pods_dir,
                containers_dir,
            } => {
                // Rebuilt on every full scan so ids of long-gone containers
                // do not accumulate (open files keep theirs in their Source).
                self.container_ids.clear();
                self.scan_links(&containers_dir);
                self.scan_pods_root(&pods_dir);
            }
            SourceMode::Files { paths } => {
                for p in &paths {
                    let (base, depth) = glob_base(p);
                    self.scan_files_dir(&base, depth);
                }
            }
        }
        let tracked: HashSet<Key> = self.files.keys().copied().collect();
        let seen = std::mem::take(&mut self.seen_in_scan);
        self.store.expire(
            |k| seen.contains(k) || tracked.contains(k),
            Instant::now(),
            self.cfg.checkpoint_retention,
        );
        self.finished.retain(|k, _| seen.contains(k));
        self.gz_seen.retain(|_, k| seen.contains(k));
    }

    fn scan_links(&mut self, dir: &Path) {
        self.watch(dir, DirKind::ContainersDir);
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            self.learn_link(&e.path());
        }
    }

    fn learn_link(&mut self, link: &Path) {
        let Some(id) = ContainerLink::parse(link).and_then(|l| l.container_id) else {
            return;
        };
        // One readlink(2): only the target's last three components matter
        // (`<ns>_<pod>_<uid>/<container>/<n>.log`), so the target need not be
        // canonicalised (that costs a syscall per path component, per link,
        // per rescan: most of the idle cost on a node with 1,000 containers).
        let target = std::fs::read_link(link).ok();
        if let Some(kp) = target.as_deref().and_then(KubeLogPath::parse) {
            self.container_ids
                .insert((kp.pod_uid, kp.container, kp.restart), id);
        }
    }

    /// The container id of a file, from the `/var/log/containers` symlink of its
    /// container. The symlink may have appeared after its inotify event was
    /// queued, so a miss looks the links of this pod up directly.
    fn container_id_for(&mut self, k: &KubeLogPath) -> Option<String> {
        let key = (k.pod_uid.clone(), k.container.clone(), k.restart);
        if let Some(id) = self.container_ids.get(&key) {
            return Some(id.clone());
        }
        if let SourceMode::Kubernetes { containers_dir, .. } = &self.cfg.mode {
            let prefix = format!("{}_{}_{}-", k.pod_name, k.namespace, k.container);
            let links: Vec<PathBuf> = std::fs::read_dir(containers_dir)
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
        self.container_ids.get(&key).cloned()
    }

    fn scan_pods_root(&mut self, dir: &Path) {
        self.watch(dir, DirKind::PodsRoot);
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.scan_pod_dir(&e.path());
            }
        }
    }

    fn scan_pod_dir(&mut self, dir: &Path) {
        self.watch(dir, DirKind::PodDir);
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.scan_container_dir(&e.path());
            }
        }
    }

    fn is_candidate(&self, path: &Path) -> Option<bool> {
        match &self.globs {
            None => KubeLogPath::parse(path)
                .filter(|k| !k.compressed)
                .map(|k| k.rotated),
            Some(g) => g.is_match(path).then_some(false),
        }
    }

    fn scan_container_dir(&mut self, dir: &Path) {
        self.watch(dir, DirKind::ContainerDir);
        self.scan_files_in(dir, None);
    }

    fn scan_files_dir(&mut self, dir: &Path, depth: usize) {
        self.watch(dir, DirKind::Files(depth));
        self.scan_files_in(dir, Some(depth));
    }

    /// Lists `dir`: candidate files are considered, subdirectories scanned
    /// (files mode, up to `depth`), and tracked files of `dir` that are no
    /// longer at their path are checked for rename / deletion.
    fn scan_files_in(&mut self, dir: &Path, depth: Option<usize>) {
        let mut present = HashSet::new();
        let mut gz = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let path = e.path();
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    if let Some(d) = depth.filter(|d| *d > 0) {
                        self.scan_files_dir(&path, d - 1);
                    }
                    continue;
                }
                if !meta.is_file() {
                    continue;
                }
                let key = (meta.dev(), meta.ino());
                self.seen_in_scan.insert(key);
                if let Some(rotated) = self.is_candidate(&path) {
                    present.insert(path.clone());
                    self.consider(path, key, meta.len(), rotated);
                } else if self.globs.is_none()
                    && KubeLogPath::parse(&path).is_some_and(|k| k.compressed)
                    && self.gz_seen.insert(path.clone(), key).is_none()
                {
                    gz.push(path);
                }
            }
        }
        // After the plain files, so that an original still present next to
        // its `.gz` copy is tracked (and read) rather than the copy.
        for path in gz {
            self.consider_gz(&path);
        }
        // Tracked files of `dir` not listed at their path: renamed or deleted.
        // by_path is ordered, so the entries of `dir` are one contiguous range.
        let mut gone: Vec<Key> = self
            .by_path
            .range(dir.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(dir))
            .filter(|(p, _)| p.parent() == Some(dir) && !present.contains(*p))
            .map(|(_, k)| *k)
            .collect();
        // Files whose path was taken over by a new file during this listing.
        for key in std::mem::take(&mut self.displaced) {
            if self
                .files
                .get(&key)
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
    fn check_gone(&mut self, key: Key) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if self.by_path.get(&t.path) == Some(&key) {
            self.by_path.remove(&t.path);
        }
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
            self.enqueue(key, true);
        }
    }

    fn mark_deleted(&mut self, key: Key) {
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if t.state == FileState::Deleted {
            return;
        }
        if let Handle::Closed { offset, .. } = t.handle {
            // Closed for the fd limit and gone: nothing left to read. Its inode
            // is free and may go to a new file at once, so the entry goes now.
            tracing::error!(path = %t.path.display(), offset, "log file deleted while closed for the open-file limit; its unread tail (if any) is lost");
            self.forget_deleted(key);
            return;
        }
        if t.state == FileState::Active {
            self.events.rotation_detected(RotationKind::Rename);
        }
        t.state = FileState::Deleted;
        t.deleted_since = Some(Instant::now());
        let key = self.spool_deleted(key);
        self.enqueue(key, true);
        self.enforce_deleted_limits();
    }

    /// Copies a deleted file's unacknowledged bytes to the spool and reads
    /// from the copy (see [`crate::spool`]), unless everything is acknowledged,
    /// kubelet left a `.gz` copy (read back after a restart), or the spool
    /// would exceed `max_deleted_bytes` (then only the open descriptor holds
    /// the bytes, as before). Returns the file's key, which is the copy's
    /// `(dev, ino)` once it reads from the copy.
    fn spool_deleted(&mut self, key: Key) -> Key {
        if matches!(self.files[&key].handle, Handle::Unidentified(_)) && !self.identify(key) {
            return key;
        }
        let (_, spool_bytes) = self.spool_usage();
        let t = self.files.get_mut(&key).expect("tracked");
        let (Handle::Reading(r), Some(src)) = (&mut t.handle, &t.source) else {
            return key;
        };
        let size = r.file().metadata().map(|m| m.len()).unwrap_or(0);
        let start = t.tracker.checkpoint().unwrap_or(0).min(size);
        if start == size && t.tracker.unacked() == 0 {
            return key;
        }
        let gz = format!("{}.gz", t.path.display());
        if KubeLogPath::parse(&t.path).is_some() && Path::new(&gz).exists() {
            return key;
        }
        if spool_bytes + (size - start) > self.cfg.max_deleted_bytes {
            tracing::warn!(path = %t.path.display(), bytes = size - start, spool_bytes,
                "spool full (max_deleted_bytes): a deleted file's unacknowledged bytes are held only by its open descriptor");
            return key;
        }
        let fingerprint = src.file.fingerprint;
        let saved = self
            .spool
            .save(
                r.file(),
                (t.ident.0, t.ident.1, fingerprint),
                start,
                &t.path,
            )
            .and_then(|(copy, bytes)| Ok((dev_ino(&copy)?, copy, bytes)));
        let (new_key, copy, bytes) = match saved {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(path = %t.path.display(), error = %e,
                    "failed to spool a deleted log file; its unacknowledged bytes are held only by its open descriptor");
                return key;
            }
        };
        // The deleted file's descriptor closes here, and its inode may be
        // handed to the next new file at once: the entry moves to the copy's key.
        r.replace_file(copy);
        t.spooled = Some((fingerprint, bytes));
        tracing::debug!(path = %t.path.display(), start, bytes, "spooled a deleted log file's unacknowledged bytes");
        self.rekey(key, new_key);
        self.report_spool();
        new_key
    }

    /// Moves a tracked file from `old` to `new` (its reader now reads the inode `new`).
    fn rekey(&mut self, old: Key, new: Key) {
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
        if self.once_keys.remove(&old) {
            self.once_keys.insert(new);
        }
    }

    /// Tracks the copies an earlier run left in the spool: each is read from
    /// its checkpoint (or its `start`) under the original file's identity.
    fn load_spool(&mut self) {
        for Spooled { meta: m, file } in self.spool.load() {
            let done = self
                .store
                .get(m.dev, m.ino, m.fingerprint)
                .is_some_and(|c| c.offset >= m.len);
            let key = match dev_ino(&file) {
                Ok(k) if !done => k,
                _ => {
                    self.spool.remove(m.dev, m.ino, m.fingerprint);
                    continue;
                }
            };
            let bytes = file.metadata().map(|md| md.blocks() * 512).unwrap_or(0);
            tracing::info!(path = %m.path.display(), start = m.start, bytes = m.len - m.start,
                "reading a deleted log file's unacknowledged bytes from the spool");
            let mut t = Tracked::new(key, (m.dev, m.ino), m.path, FileState::Deleted, file);
            t.size_hint = m.len;
            t.spooled = Some((m.fingerprint, bytes));
            t.min_offset = m.start;
            self.files.insert(key, t);
            self.enqueue(key, true);
        }
        self.report_spool();
    }

    /// Files and bytes in the spool: the copies of the tracked files.
    fn spool_usage(&self) -> (usize, u64) {
        self.files
            .values()
            .filter_map(|t| t.spooled)
            .fold((0, 0), |(n, b), (_, bytes)| (n + 1, b + bytes))
    }

    fn report_spool(&self) {
        let (files, bytes) = self.spool_usage();
        self.events.spool_changed(files, bytes);
    }

    /// Stops tracking `key`: the entry leaves every index and its spooled
    /// copy, if any, is removed. The caller settles its checkpoint.
    fn untrack(&mut self, key: Key) -> Option<Tracked> {
        let t = self.files.remove(&key)?;
        self.unspool(&t);
        if self.by_path.get(&t.path) == Some(&key) {
            self.by_path.remove(&t.path);
        }
        if let Some(src) = &t.source {
            self.by_source.remove(&src.id);
        }
        Some(t)
    }

    /// Removes a released file's spooled copy, if it has one.
    fn unspool(&mut self, t: &Tracked) {
        let Some((fingerprint, _)) = t.spooled else {
            return;
        };
        self.spool.remove(t.ident.0, t.ident.1, fingerprint);
        self.report_spool();
    }

    fn consider(&mut self, path: PathBuf, key: Key, size: u64, rotated_name: bool) {
        if let Some(t) = self.files.get_mut(&key) {
            if t.path != path {
                if self.by_path.get(&t.path) == Some(&key) {
                    self.by_path.remove(&t.path);
                }
                t.path = path.clone();
                if rotated_name && t.state == FileState::Active {
                    t.state = FileState::Rotated;
                    self.events.rotation_detected(RotationKind::Rename);
                }
            }
            let changed = size != t.size_hint;
            let closed = matches!(t.handle, Handle::Closed { .. });
            self.set_path(path, key);
            if closed {
                self.reopen(key);
            } else if changed {
                self.enqueue(key, false);
            }
            return;
        }
        if self.finished.get(&key) == Some(&size) {
            return;
        }
        if self.mode == RunMode::Once && !self.initial_scan {
            return;
        }
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to open log file");
                return;
            }
        };
        match dev_ino(&file) {
            Ok(k) if k == key => {}
            _ => return, // replaced between stat and open; the next event or scan sees it
        }
        self.finished.remove(&key);
        let state = if rotated_name {
            FileState::Rotated
        } else {
            FileState::Active
        };
        let mut t = Tracked::new(key, key, path.clone(), state, file);
        t.initial = self.initial_scan;
        self.files.insert(key, t);
        self.set_path(path, key);
        self.enqueue(key, rotated_name);
        self.enforce_open_limit(Some(key));
    }

    /// Maps `path` to `key`; a file previously at `path` is checked at the end
    /// of the directory listing (renamed or deleted).
    fn set_path(&mut self, path: PathBuf, key: Key) {
        if let Some(old) = self.by_path.insert(path, key) {
            if old != key {
                self.displaced.push(old);
            }
        }
    }

    /// A gzipped rotated file (`0.log.<ts>.gz`, examined once) whose first line
    /// matches the fingerprint of a checkpoint that was not read to the end is
    /// the compressed copy of a file that kubelet rotated, gzipped and unlinked
    /// while logferry was down. It is decompressed into an unlinked temporary
    /// file in `data_dir` and read from the checkpoint on, under the original
    /// file's identity (so record ids match those sent before).
    fn consider_gz(&mut self, path: &Path) {
        let head = match File::open(path).and_then(|f| {
            use std::io::Read;
            let mut head = Vec::with_capacity(crate::identity::HEAD_BYTES);
            flate2::read::MultiGzDecoder::new(f)
                .take(crate::identity::HEAD_BYTES as u64)
                .read_to_end(&mut head)?;
            Ok(head)
        }) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to read gzipped log file");
                return;
            }
        };
        // The same rule as for open files (a first line longer than the head
        // counts with its first bytes).
        let Some(fp) = crate::identity::head_of(&head, self.fallback, true).map(|h| h.fingerprint)
        else {
            return;
        };
        let Some(entry) = self.store.iter().find(|e| e.fingerprint == fp).cloned() else {
            return;
        };
        let ident = (entry.dev, entry.ino);
        if self.is_tracked(ident, fp) {
            return; // the original is still open
        }
        // Cheap check before decompressing: the gzip trailer's ISIZE is the
        // uncompressed length mod 2^32 (kubelet writes one gzip member).
        let isize = File::open(path).and_then(|f| {
            use std::os::unix::fs::FileExt;
            let len = f.metadata()?.len();
            let mut b = [0u8; 4];
            f.read_exact_at(&mut b, len.saturating_sub(4))?;
            Ok(u32::from_le_bytes(b))
        });
        if isize.is_ok_and(|n| n as u64 == entry.offset & 0xffff_ffff) {
            return; // finished before it was compressed
        }
        let tmp = self
            .cfg
            .data_dir
            .join(format!("gunzip-{}-{}.log", entry.dev, entry.ino));
        let copied = File::open(path).and_then(|f| {
            let mut out = File::create(&tmp)?;
            let n = std::io::copy(&mut flate2::read::MultiGzDecoder::new(f), &mut out)?;
            Ok((n, File::open(&tmp)?))
        });
        let _ = std::fs::remove_file(&tmp);
        let (len, file) = match copied {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to decompress gzipped log file");
                return;
            }
        };
        if entry.offset >= len {
            return; // finished before it was compressed
        }
        let Ok(key) = dev_ino(&file) else { return };
        tracing::info!(path = %path.display(), offset = entry.offset, bytes = len - entry.offset,
            "reading the unread tail of a rotated file from its gzipped copy");
        let mut t = Tracked::new(key, ident, path.to_owned(), FileState::Deleted, file);
        t.initial = true;
        t.size_hint = len;
        self.files.insert(key, t);
        self.enqueue(key, true);
    }

    /// Whether the file `(ident, fingerprint)` is tracked. The inode alone
    /// does not tell: filesystems hand a freed inode to the next new file at
    /// once (ext4 gives kubelet's new `0.log` the inode of the plain copy it
    /// unlinked a moment before), so the first line must match too.
    fn is_tracked(&self, ident: Key, fingerprint: u64) -> bool {
        self.files.values().any(|t| {
            t.ident == ident
                && match (&t.source, &t.handle) {
                    (Some(s), _) => s.file.fingerprint == fingerprint,
                    (None, Handle::Unidentified(f)) => read_head(f, self.fallback, false)
                        .ok()
                        .flatten()
                        .is_some_and(|h| h.fingerprint == fingerprint),
                    (None, _) => false,
                }
        })
    }

    fn open_count(&self) -> (usize, usize) {
        let mut open = 0;
        let mut deleted = 0;
        for t in self.files.values() {
            if !matches!(t.handle, Handle::Closed { .. }) {
                open += 1;
                if t.state == FileState::Deleted {
                    deleted += 1;
                }
            }
        }
        (open, deleted)
    }

    /// Closes idle, fully read, active files while more than `max_open_files` are open.
    fn enforce_open_limit(&mut self, keep: Option<Key>) {
        if self.files.len() <= self.cfg.max_open_files {
            return;
        }
        let (open, _) = self.open_count();
        if open <= self.cfg.max_open_files {
            return;
        }
        let mut idle: Vec<(Instant, Key)> = self
            .files
            .values_mut()
            .filter(|t| {
                Some(t.key) != keep && t.state == FileState::Active && !t.queued && !t.finalized
            })
            .filter_map(|t| match &mut t.handle {
                Handle::Reading(r) => (r.decoder.joiner().is_clean()
                    && r.consumed() == r.read_pos())
                .then_some((t.last_data, t.key)),
                _ => None,
            })
            .collect();
        idle.sort();
        for (_, key) in idle.into_iter().take(open - self.cfg.max_open_files) {
            let t = self.files.get_mut(&key).expect("tracked");
            if let Handle::Reading(r) = &t.handle {
                let offset = r.read_pos();
                let format = r.decoder.format().unwrap_or(self.fallback);
                t.handle = Handle::Closed { offset, format };
            }
        }
    }

    fn reopen(&mut self, key: Key) {
        let max_line = self.max_line();
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        let Handle::Closed { offset, format } = t.handle else {
            return;
        };
        let Ok(file) = File::open(&t.path) else {
            return;
        };
        if dev_ino(&file).ok() != Some(key) {
            return;
        }
        let fp = t.source.as_ref().map(|s| s.file.fingerprint).unwrap_or(0);
        if !fingerprint_matches(&file, fp, t.fingerprint_len).unwrap_or(false) {
            return;
        }
        let decoder = LineDecoder::new(
            Some(format),
            self.fallback,
            Joiner::new(self.cfg.max_record_bytes, self.cfg.multiline.clone()),
        );
        t.handle = Handle::Reading(Box::new(FileReader::new(file, offset, max_line, decoder)));
        self.enqueue(key, false);
        self.enforce_open_limit(Some(key));
    }

    fn max_line(&self) -> usize {
        self.cfg
            .max_record_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }

    fn enqueue(&mut self, key: Key, urgent: bool) {
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

    fn on_inotify(&mut self, wd: i32, mask: EventMask, name: Option<OsString>) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("inotify queue overflow; rescanning");
            self.full_scan();
            return;
        }
        let Some((dir, kind)) = self.watched.get(&wd).cloned() else {
            return;
        };
        if mask.contains(EventMask::IGNORED) {
            self.watched.remove(&wd);
            self.watched_paths.remove(&dir);
            return;
        }
        let Some(name) = name else { return };
        let path = dir.join(name);
        match kind {
            DirKind::PodsRoot => {
                if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                    self.scan_pod_dir(&path);
                }
            }
            DirKind::PodDir => {
                if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                    self.scan_container_dir(&path);
                }
            }
            DirKind::ContainersDir => {
                if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                    self.learn_link(&path);
                }
            }
            DirKind::ContainerDir | DirKind::Files(_) => {
                if mask.contains(EventMask::MODIFY) {
                    if let Some(&key) = self.by_path.get(&path) {
                        if let Some(t) = self.files.get(&key) {
                            if matches!(t.handle, Handle::Closed { .. }) {
                                self.reopen(key);
                            } else {
                                self.enqueue(key, false);
                            }
                            return;
                        }
                    }
                    if self.is_candidate(&path).is_none() {
                        return;
                    }
                }
                match kind {
                    DirKind::Files(d) => self.scan_files_dir(&dir, d),
                    _ => self.scan_container_dir(&dir),
                }
            }
        }
    }

    // ---------------------------------------------------------------- reading

    /// Identifies a file (first line) and sets up its reader at the start
    /// offset given by its checkpoint or the start policy. Returns false while
    /// the first line is incomplete.
    fn identify(&mut self, key: Key) -> bool {
        let max_line = self.max_line();
        let t = self.files.get_mut(&key).expect("tracked");
        let Handle::Unidentified(file) = &t.handle else {
            return true;
        };
        let final_ = t.state == FileState::Deleted || self.mode == RunMode::Once;
        let head = match read_head(file, self.fallback, final_) {
            Ok(Some(h)) => h,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(path = %t.path.display(), error = %e, "failed to read log file head");
                return false;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut mid_line = false;
        let mut lookback = None;
        let ident = t.ident;
        let offset = match self.store.get(ident.0, ident.1, head.fingerprint) {
            Some(c) => {
                if c.offset > size {
                    self.events.rotation_detected(RotationKind::Truncate);
                    0
                } else {
                    c.offset
                }
            }
            _ if t.initial && self.cfg.read_from == ReadFrom::End => {
                mid_line = true;
                size
            }
            _ => {
                if t.initial {
                    lookback = self.cfg.lookback.map(|d| now_nanos() - d.as_nanos() as i64);
                }
                0
            }
        };
        let offset = offset.max(t.min_offset);
        let Handle::Unidentified(file) = std::mem::replace(
            &mut t.handle,
            Handle::Closed {
                offset: 0,
                format: head.format,
            },
        ) else {
            unreachable!()
        };
        // read_from: end lands on a line start when the byte before is `\n`.
        if mid_line && offset > 0 {
            let mut b = [0u8];
            mid_line = !matches!(std::os::unix::fs::FileExt::read_at(&file, &mut b, offset - 1), Ok(1) if b[0] == b'\n');
        } else {
            mid_line = false;
        }
        let decoder = LineDecoder::new(
            Some(head.format),
            self.fallback,
            Joiner::new(self.cfg.max_record_bytes, self.cfg.multiline.clone()),
        );
        let mut reader = FileReader::new(file, offset, max_line, decoder);
        reader.lookback_cutoff = lookback;
        if mid_line {
            reader.start_mid_line();
        }
        self.next_source_id += 1;
        let id = SourceId(self.next_source_id);
        let kube = if self.globs.is_none() {
            KubeLogPath::parse(&t.path)
        } else {
            None
        };
        let container_id = match &kube {
            Some(k) => self.container_id_for(k),
            None => None,
        };
        let t = self.files.get_mut(&key).expect("tracked");
        let source = Arc::new(Source {
            id,
            file: FileId {
                dev: ident.0,
                ino: ident.1,
                fingerprint: head.fingerprint,
            },
            path: t.path.clone(),
            kube,
            container_id,
            format: head.format,
        });
        t.fingerprint_len = head.fingerprint_len;
        t.tracker = AckTracker::new(if mid_line { None } else { Some(offset) });
        t.next_seq = 0;
        t.handle = Handle::Reading(Box::new(reader));
        t.source = Some(source.clone());
        self.by_source.insert(id, key);
        self.summary.files += 1;
        self.events.file_opened(&source);
        true
    }

    /// Detects copytruncate: the file shrank below the read position, or its
    /// first line changed. Resets the file to offset 0 under a new identity.
    fn check_truncation(&mut self, key: Key) {
        let t = self.files.get_mut(&key).expect("tracked");
        let Handle::Reading(r) = &t.handle else {
            return;
        };
        let size = match r.file().metadata() {
            Ok(m) => m.len(),
            Err(_) => return,
        };
        let fp = t.source.as_ref().map(|s| s.file.fingerprint).unwrap_or(0);
        let shrunk = size < r.read_pos();
        let rewritten = !shrunk
            && t.check_fingerprint
            && r.read_pos() > 0
            && !fingerprint_matches(r.file(), fp, t.fingerprint_len).unwrap_or(true);
        t.check_fingerprint = false;
        if !shrunk && !rewritten {
            t.size_hint = t.size_hint.max(size);
            return;
        }
        self.events.rotation_detected(RotationKind::Truncate);
        let lost = t.size_hint.saturating_sub(r.read_pos());
        if lost > 0 {
            self.events
                .bytes_lost(lost, LossReason::TruncatedBeforeRead);
            tracing::error!(path = %t.path.display(), bytes = lost, "log file truncated before these bytes were read");
        }
        tracing::info!(path = %t.path.display(), "copytruncate detected; reading again from offset 0");
        let Handle::Reading(r) = std::mem::replace(
            &mut t.handle,
            Handle::Closed {
                offset: 0,
                format: self.fallback,
            },
        ) else {
            unreachable!()
        };
        let file = r.into_file();
        if let Some(src) = t.source.take() {
            self.by_source.remove(&src.id);
            self.store
                .remove(t.ident.0, t.ident.1, src.file.fingerprint);
            let old = std::mem::take(&mut t.tracker);
            if old.unacked() > 0 {
                self.retired.insert(src.id, old);
            }
        }
        t.handle = Handle::Unidentified(file);
        t.initial = false;
        t.size_hint = size;
    }

    fn fill_outbox(&mut self) {
        while self.outbox.is_empty() {
            let Some(key) = self.urgent.pop_front().or_else(|| self.normal.pop_front()) else {
                return;
            };
            let Some(t) = self.files.get_mut(&key) else {
                continue;
            };
            t.queued = false;
            if t.finalized || matches!(t.handle, Handle::Closed { .. }) {
                continue;
            }
            if matches!(t.handle, Handle::Unidentified(_)) && !self.identify(key) {
                // First line incomplete: a deleted or finished file has nothing to offer.
                let t = self.files.get_mut(&key).expect("tracked");
                if t.state == FileState::Deleted || self.mode == RunMode::Once {
                    t.finalized = true;
                    self.maybe_release(key);
                }
                continue;
            }
            self.check_truncation(key);
            if matches!(self.files[&key].handle, Handle::Unidentified(_)) && !self.identify(key) {
                continue;
            }
            self.read_file(key);
        }
    }

    fn read_file(&mut self, key: Key) {
        let max_records = self.cfg.batch_max_records;
        let max_bytes = self.cfg.batch_max_bytes;
        let once = self.mode == RunMode::Once;
        let rotated_idle = self.cfg.partial_flush_timeout;
        let t = self.files.get_mut(&key).expect("tracked");
        let Handle::Reading(r) = &mut t.handle else {
            return;
        };
        let now = Instant::now();
        let wall = now_nanos();
        let mut records: Vec<Record> = Vec::new();
        let mut bytes = 0u64;
        let mut eof = false;
        let mut msg_bytes = 0usize;
        loop {
            let before = records.len();
            match r.read_round(now, wall, &mut records) {
                Ok(round) => {
                    bytes += round.bytes;
                    if round.eof {
                        eof = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), error = %e, "failed to read log file");
                    eof = true;
                }
            }
            msg_bytes += records[before..]
                .iter()
                .map(|r| r.message.len())
                .sum::<usize>();
            if eof || records.len() >= max_records || msg_bytes >= max_bytes {
                break;
            }
        }
        if bytes > 0 {
            t.last_data = now;
        }
        t.size_hint = t.size_hint.max(r.read_pos());
        let finalize = eof
            && (once
                || t.state == FileState::Deleted
                || (t.state == FileState::Rotated
                    && now.duration_since(t.last_data) >= rotated_idle));
        if finalize {
            r.flush_end(now, wall, &mut records);
            t.finalized = true;
        }
        if eof {
            t.check_fingerprint = true;
        }
        let stats = r.decoder.take_stats();
        let resume = r.resume_point();
        let truncated = records
            .iter()
            .filter(|r| r.flags.contains(logferry_core::RecordFlags::TRUNCATED))
            .count() as u64;
        self.summary.bytes += bytes;
        self.summary.records += records.len() as u64;
        if bytes > 0 {
            self.events.bytes_read(bytes);
        }
        if !records.is_empty() {
            self.events.records_read(records.len() as u64);
        }
        if stats.unparsed > 0 {
            self.events.lines_unparsed(stats.unparsed);
        }
        if truncated > 0 {
            self.events.records_truncated(truncated);
        }
        self.emit(key, records, resume);
        let t = self.files.get_mut(&key).expect("tracked");
        if !eof {
            self.enqueue(key, false);
        } else if t.finalized {
            self.maybe_release(key);
        }
    }

    /// Cuts `records` into batches, registers them with the file's tracker
    /// (the last one carries `resume`) and queues them for sending.
    fn emit(&mut self, key: Key, mut records: Vec<Record>, resume: Option<u64>) {
        let t = self.files.get_mut(&key).expect("tracked");
        let Some(source) = t.source.clone() else {
            return;
        };
        if records.is_empty() {
            t.tracker.push_preacked(resume);
            return;
        }
        while !records.is_empty() {
            let mut n = 0;
            let mut b = 0;
            while n < records.len()
                && n < self.cfg.batch_max_records
                && (n == 0 || b + records[n].message.len() <= self.cfg.batch_max_bytes)
            {
                b += records[n].message.len();
                n += 1;
            }
            let rest = records.split_off(n);
            let seq = t.next_seq;
            t.next_seq += 1;
            t.tracker
                .push_batch(seq, if rest.is_empty() { resume } else { None });
            self.outbox.push_back(RecordBatch {
                source: source.clone(),
                ack: AckToken {
                    source: source.id,
                    seq,
                },
                records,
                meta: None,
            });
            records = rest;
        }
    }

    fn on_ack(&mut self, token: AckToken) {
        if let Some(&key) = self.by_source.get(&token.source) {
            let t = self.files.get_mut(&key).expect("tracked");
            if t.tracker.ack(token.seq) {
                self.sent_unacked = self.sent_unacked.saturating_sub(1);
            }
            if t.finalized {
                self.maybe_release(key);
            }
        } else if let Some(tr) = self.retired.get_mut(&token.source) {
            if tr.ack(token.seq) {
                self.sent_unacked = self.sent_unacked.saturating_sub(1);
            }
            if tr.unacked() == 0 {
                self.retired.remove(&token.source);
            }
        }
    }

    /// Releases a finalized file once every batch is acknowledged.
    fn maybe_release(&mut self, key: Key) {
        let Some(t) = self.files.get(&key) else {
            return;
        };
        if !t.finalized || t.tracker.unacked() > 0 {
            return;
        }
        let t = self.untrack(key).expect("tracked");
        if let Some(src) = &t.source {
            if let Some(cp) = t.tracker.checkpoint() {
                self.store
                    .set(t.ident.0, t.ident.1, src.file.fingerprint, cp, &t.path);
            }
            self.events.file_released(src);
        }
        if t.state != FileState::Deleted {
            let size = match &t.handle {
                Handle::Reading(r) => r.read_pos(),
                _ => t.size_hint,
            };
            self.finished.insert(key, size);
        }
    }

    /// Applies `max_deleted_files` / `max_deleted_bytes` to deleted files that
    /// are held open and not finished. Files read to their end (only waiting
    /// for acknowledgements) are finished first, which costs nothing; then the
    /// oldest deleted file is closed and its unread bytes are reported lost.
    fn enforce_deleted_limits(&mut self) {
        loop {
            let mut deleted: Vec<(bool, Instant, Key, u64)> = self
                .files
                .values()
                .filter(|t| t.state == FileState::Deleted && !t.finalized)
                .filter_map(|t| {
                    let since = t.deleted_since.unwrap_or_else(Instant::now);
                    let unread = match &t.handle {
                        Handle::Reading(r) => {
                            let size = r.file().metadata().map(|m| m.len()).unwrap_or(0);
                            size.saturating_sub(r.read_pos())
                        }
                        Handle::Unidentified(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
                        Handle::Closed { .. } => return None,
                    };
                    Some((unread > 0, since, t.key, unread))
                })
                .collect();
            let total: u64 = deleted.iter().map(|d| d.3).sum();
            let reason = if deleted.len() > self.cfg.max_deleted_files {
                LossReason::DeletedFilesLimit
            } else if total > self.cfg.max_deleted_bytes {
                LossReason::DeletedBytesLimit
            } else {
                return;
            };
            deleted.sort();
            let (_, _, key, unread) = deleted[0];
            // Whatever was read is emitted (trailing partials as INCOMPLETE).
            let now = Instant::now();
            let mut records = Vec::new();
            if let Some(Tracked {
                handle: Handle::Reading(r),
                ..
            }) = self.files.get_mut(&key)
            {
                r.flush_end(now, now_nanos(), &mut records);
            }
            if !records.is_empty() {
                self.summary.records += records.len() as u64;
                self.events.records_read(records.len() as u64);
            }
            self.emit(key, records, None);
            let t = self.files.get_mut(&key).expect("tracked");
            t.finalized = true;
            if unread == 0 {
                self.maybe_release(key);
                continue;
            }
            let path = &self.files[&key].path;
            tracing::error!(path = %path.display(), bytes = unread, reason = reason.as_label(), "closing deleted log file before it was read to the end; its unread bytes are lost");
            self.events.bytes_lost(unread, reason);
            self.forget_deleted(key);
        }
    }

    /// Drops a deleted file that will not be read any further: its
    /// checkpoint and spooled copy go, and batches still in flight are
    /// acknowledged into `retired`.
    fn forget_deleted(&mut self, key: Key) {
        let Some(t) = self.untrack(key) else {
            return;
        };
        if let Some(src) = &t.source {
            self.store
                .remove(t.ident.0, t.ident.1, src.file.fingerprint);
            self.events.file_released(src);
            if t.tracker.unacked() > 0 {
                self.retired.insert(src.id, t.tracker);
            }
        }
    }

    // ---------------------------------------------------------------- timers

    fn housekeeping(&mut self, poll: bool) {
        let now = Instant::now();
        let timeout = self.cfg.partial_flush_timeout;
        let mut flushes = Vec::new();
        for t in self.files.values_mut() {
            if let Handle::Reading(r) = &mut t.handle {
                // Only a quiet file's assembly is flushed: while reading waits
                // (backpressure) with bytes still unread, its continuation is
                // most likely among them.
                if r.decoder
                    .joiner()
                    .next_deadline(timeout)
                    .is_some_and(|d| d <= now)
                    && r.file()
                        .metadata()
                        .map_or(true, |m| m.len() <= r.read_pos())
                {
                    let mut records = Vec::new();
                    r.decoder.joiner().flush_idle(now, timeout, &mut records);
                    if !records.is_empty() {
                        let resume = r.resume_point();
                        flushes.push((t.key, records, resume));
                    }
                }
            }
        }
        for (key, records, resume) in flushes {
            self.summary.records += records.len() as u64;
            self.events.records_read(records.len() as u64);
            self.emit(key, records, resume);
        }
        if !poll {
            return;
        }
        self.polls = self.polls.wrapping_add(1);
        let poll_idle = self.polls % IDLE_POLL_EVERY == 0;
        let mut to_queue = Vec::new();
        let mut to_identify = Vec::new();
        let mut to_delete = Vec::new();
        let mut to_reopen = Vec::new();
        let mut to_find = Vec::new();
        for t in self.files.values_mut() {
            match &t.handle {
                Handle::Reading(r) => {
                    if !poll_idle
                        && t.state == FileState::Active
                        && now.duration_since(t.last_data) >= IDLE_POLL_AFTER
                    {
                        continue;
                    }
                    let Ok(m) = r.file().metadata() else { continue };
                    if m.nlink() == 0 && t.state != FileState::Deleted {
                        to_delete.push(t.key);
                    }
                    if m.len() != r.read_pos() || (t.state != FileState::Active && !t.finalized) {
                        to_queue.push(t.key);
                    }
                }
                Handle::Unidentified(f) => {
                    let Ok(m) = f.metadata() else { continue };
                    if m.nlink() == 0 && t.state != FileState::Deleted {
                        to_delete.push(t.key);
                    }
                    if m.len() > 0 {
                        to_identify.push(t.key);
                    }
                }
                Handle::Closed { offset, .. } => match std::fs::metadata(&t.path) {
                    Ok(m) if (m.dev(), m.ino()) == t.key => {
                        if m.len() != *offset {
                            to_reopen.push(t.key);
                        }
                    }
                    _ => to_find.push(t.key),
                },
            }
        }
        // Identified now, not when reading gets to them (which waits while
        // downstream is slow): their checkpoint entry is then written within
        // a second, so that a `.gz` copy can be matched after a restart.
        for key in to_identify {
            self.identify(key);
            self.enqueue(key, false);
        }
        for key in to_delete {
            self.mark_deleted(key);
        }
        // A closed file no longer at its path: look for it under a new name
        // (rotation) in its directory; if it is nowhere, it was deleted.
        for key in to_find {
            let Some(dir) = self
                .files
                .get(&key)
                .and_then(|t| t.path.parent().map(Path::to_path_buf))
            else {
                continue;
            };
            match self.cfg.mode {
                SourceMode::Kubernetes { .. } => self.scan_container_dir(&dir),
                SourceMode::Files { .. } => {
                    let depth = self
                        .watched
                        .values()
                        .find(|(p, _)| *p == dir)
                        .map(|(_, k)| *k);
                    self.scan_files_dir(
                        &dir,
                        match depth {
                            Some(DirKind::Files(d)) => d,
                            _ => 0,
                        },
                    );
                }
            }
            let still_lost = self.files.get(&key).is_some_and(|t| {
                matches!(t.handle, Handle::Closed { .. })
                    && std::fs::metadata(&t.path)
                        .map(|m| (m.dev(), m.ino()) != key)
                        .unwrap_or(true)
            });
            if still_lost {
                self.mark_deleted(key);
            }
        }
        for key in to_queue {
            self.enqueue(key, false);
        }
        for key in to_reopen {
            self.reopen(key);
        }
        self.enforce_open_limit(None);
        let (open, deleted) = self.open_count();
        self.events.files_open(open, deleted);
    }

    fn save_checkpoints(&mut self, force: bool) -> Result<(), Error> {
        let mut lag = 0u64;
        for t in self.files.values() {
            let (Some(src), Some(cp)) = (&t.source, t.tracker.checkpoint()) else {
                continue;
            };
            self.store
                .set(t.ident.0, t.ident.1, src.file.fingerprint, cp, &t.path);
            let size = match &t.handle {
                Handle::Reading(r) => r.read_pos().max(t.size_hint),
                _ => t.size_hint,
            };
            lag += size.saturating_sub(cp);
        }
        if self.store.is_dirty() || force {
            self.store.save(force)?;
            self.events.checkpoints_written(self.store.len(), lag);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::glob_base;
    use std::path::PathBuf;

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
}
