//! Configuration of the tailer ([`TailConfig`]).

use crate::error::Error;
use logferry_core::ConfigProblem;
use regex::Regex;
use std::path::PathBuf;
use std::time::Duration;

/// What to discover.
#[derive(Clone, Debug)]
pub enum SourceMode {
    /// kubelet's node log layout: the real files
    /// `<pods_dir>/<ns>_<pod>_<uid>/<container>/<n>.log[.<timestamp>]` and the
    /// symlinks `<containers_dir>/<pod>_<ns>_<container>-<id>.log` that name the
    /// active file and its container id.
    Kubernetes {
        /// Usually `/var/log/pods`.
        pods_dir: PathBuf,
        /// Usually `/var/log/containers`.
        containers_dir: PathBuf,
    },
    /// Any files matching glob patterns (`/shared/logs/*.log`, `**` allowed).
    Files {
        /// Absolute glob patterns.
        paths: Vec<String>,
    },
}

/// Where to start in files found without a checkpoint when the tailer starts.
/// Files that appear later are always read from the beginning.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReadFrom {
    /// Read existing files from their first byte.
    Beginning,
    /// Skip what existing files hold and read only what is appended.
    End,
}

/// How [`Tailer::run`](crate::Tailer::run) ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunMode {
    /// Follow files until `stop_reading` is cancelled (the daemon).
    Follow,
    /// Read every file found at start to its end, flush trailing partials as
    /// `INCOMPLETE` records, then stop reading as if `stop_reading` fired.
    Once,
}

/// Free space the spool leaves on `data_dir`'s filesystem
/// ([`TailConfig::spool_min_free`]): a deleted file is copied to the spool only
/// if the filesystem keeps at least this much free (`statvfs` `f_bavail`, what
/// unprivileged writers may use) after the copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MinFree {
    /// Bytes.
    Bytes(u64),
    /// Percent of the filesystem's size (`f_blocks`), 0 to 99.
    Percent(u8),
}

impl MinFree {
    /// The floor in bytes on a filesystem of `total` bytes.
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => total / 100 * u64::from(p) + total % 100 * u64::from(p) / 100,
        }
    }
}

impl std::fmt::Display for MinFree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinFree::Bytes(b) => write!(f, "{b} bytes"),
            MinFree::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Optional joining of several lines into one record (stack traces).
///
/// A line *continues* the previous record of the same stream when
/// * only `start_pattern` is set: it does not match `start_pattern`;
/// * only `continuation_pattern` is set: it matches `continuation_pattern`;
/// * both are set: it does not match `start_pattern` and matches `continuation_pattern`.
///
/// Joined lines are separated by `\n`. A record is held until the next record of
/// its stream starts or `flush_timeout` passes without a new line.
#[derive(Clone, Debug)]
pub struct MultilineConfig {
    /// A line matching this starts a new record (e.g. `^\d{4}-\d{2}-\d{2}`).
    pub start_pattern: Option<Regex>,
    /// A line matching this continues the previous record (e.g. `^\s+at `).
    pub continuation_pattern: Option<Regex>,
    /// Emit a held record after this much time without a new line of its stream.
    pub flush_timeout: Duration,
}

/// Configuration of a [`Tailer`](crate::Tailer). Build it with
/// [`TailConfig::kubernetes`] or [`TailConfig::files`] and adjust fields.
#[derive(Clone, Debug)]
pub struct TailConfig {
    /// What to discover.
    pub mode: SourceMode,
    /// Checkpoints live in `data_dir/checkpoints.json` (and `checkpoints.json.prev`).
    pub data_dir: PathBuf,
    /// Kubernetes mode: Docker's container directory (default
    /// `/var/lib/docker/containers`), where the files under `pods_dir` are
    /// symlinks to on cri-dockerd nodes. Files are read only if their real
    /// path lies under `pods_dir` or, as `<id>/<id>-json.log*`, under this
    /// directory; `None` allows no link out of `pods_dir`. Unused in files
    /// mode, where the roots are the non-glob bases of the patterns.
    pub docker_containers_dir: Option<PathBuf>,
    /// Start of files found without checkpoint at first start.
    pub read_from: ReadFrom,
    /// Skip records older than `now - lookback` in files read without a checkpoint.
    pub lookback: Option<Duration>,
    /// Longest message in bytes; longer records are truncated and flagged (default 1 MiB).
    pub max_record_bytes: usize,
    /// Optional multiline joining.
    pub multiline: Option<MultilineConfig>,
    /// Rescan of the directories, covering missed inotify events (default
    /// 10 s): directories whose mtime and ctime have not moved since they were
    /// last listed are not listed again, except on every 30th rescan.
    pub rescan_interval: Duration,
    /// How often changed checkpoints are persisted (default 1 s).
    pub checkpoint_interval: Duration,
    /// Checkpoints of files gone from disk are forgotten after this (default 1 h).
    pub checkpoint_retention: Duration,
    /// Most log files held open at once (default 1024). Idle, fully read active
    /// files are closed beyond it and reopened by identity when they change.
    pub max_open_files: usize,
    /// Most deleted files held open for draining (default 256); beyond it the
    /// oldest is closed and its unread bytes are reported lost.
    pub max_deleted_files: usize,
    /// Most unread bytes summed over held-open deleted files (default 10 GiB);
    /// beyond it the oldest is closed and its unread bytes are reported lost.
    /// Also the most bytes in the spool (`data_dir/spool`, copies of deleted
    /// files not yet acknowledged); beyond it a deleted file is only held open.
    pub max_deleted_bytes: u64,
    /// Free space the spool never writes into (default 10 % of the
    /// filesystem, which keeps a node whose `data_dir` is on the root
    /// filesystem above kubelet's default hard-eviction threshold
    /// `nodefs.available<10%`). A deleted file that does not fit is only held
    /// open, and copying is tried again as space frees up.
    pub spool_min_free: MinFree,
    /// Most records per [`RecordBatch`](logferry_core::RecordBatch) (default 1000).
    pub batch_max_records: usize,
    /// Most message bytes per batch (default 1 MiB; one record may exceed it).
    pub batch_max_bytes: usize,
    /// Emit a pending CRI `P` / docker partial chunk as an `INCOMPLETE` record
    /// after this long without its continuation (default 5 s).
    pub partial_flush_timeout: Duration,
    /// In [`RunMode::Follow`], how long reading waits after the first change
    /// of a quiet period (default 100 ms), so that the writes of many files
    /// are read in one round: a runtime writes one line per `write(2)`, and
    /// reading each on its own costs a wake-up, an inotify read, a `fstat`,
    /// two `read`s and a batch with its acknowledgement per line. Zero reads
    /// at once. Adds at most this much to the delivery delay of a line.
    pub read_coalesce: Duration,
}

impl TailConfig {
    fn with_mode(mode: SourceMode, data_dir: PathBuf) -> TailConfig {
        TailConfig {
            mode,
            data_dir,
            docker_containers_dir: Some(PathBuf::from("/var/lib/docker/containers")),
            read_from: ReadFrom::Beginning,
            lookback: None,
            max_record_bytes: 1024 * 1024,
            multiline: None,
            rescan_interval: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_retention: Duration::from_secs(3600),
            max_open_files: 1024,
            max_deleted_files: 256,
            max_deleted_bytes: 10 << 30,
            spool_min_free: MinFree::Percent(10),
            batch_max_records: 1000,
            batch_max_bytes: 1024 * 1024,
            partial_flush_timeout: Duration::from_secs(5),
            read_coalesce: Duration::from_millis(100),
        }
    }

    /// Kubernetes mode with defaults.
    pub fn kubernetes(
        pods_dir: impl Into<PathBuf>,
        containers_dir: impl Into<PathBuf>,
        data_dir: impl Into<PathBuf>,
    ) -> TailConfig {
        TailConfig::with_mode(
            SourceMode::Kubernetes {
                pods_dir: pods_dir.into(),
                containers_dir: containers_dir.into(),
            },
            data_dir.into(),
        )
    }

    /// Files mode (glob patterns) with defaults.
    pub fn files(globs: Vec<String>, data_dir: impl Into<PathBuf>) -> TailConfig {
        TailConfig::with_mode(SourceMode::Files { paths: globs }, data_dir.into())
    }

    /// Checks every field; reports the first of [`TailConfig::problems`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        match self.problems().into_iter().next() {
            Some(p) => Err(Error::Config {
                field: p.key,
                reason: p.message,
            }),
            None => Ok(()),
        }
    }

    /// Every problem of this configuration, with key paths as the daemon's
    /// `source` section names them (`max_open_files`, `paths[0]`,
    /// `multiline.flush_timeout`). Empty means [`Tailer::new`](crate::Tailer::new)
    /// accepts the configuration.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut bad = |field: &str, reason: &str| out.push(ConfigProblem::new(field, reason));
        if self.max_record_bytes == 0 {
            bad("max_record_bytes", "must be at least 1 byte");
        }
        if self.batch_max_records == 0 {
            bad("batch_max_records", "must be at least 1");
        }
        if self.batch_max_bytes == 0 {
            bad("batch_max_bytes", "must be at least 1 byte");
        }
        if self.max_open_files < 2 {
            bad("max_open_files", "must be at least 2");
        }
        if self.max_deleted_files == 0 {
            bad("max_deleted_files", "must be at least 1");
        }
        if let MinFree::Percent(p) = self.spool_min_free {
            if p >= 100 {
                bad(
                    "spool_min_free",
                    "a percentage must be below 100% (the spool could never write)",
                );
            }
        }
        if self.rescan_interval.is_zero() {
            bad("rescan_interval", "must be positive");
        }
        if self.checkpoint_interval.is_zero() {
            bad("checkpoint_interval", "must be positive");
        }
        if self.partial_flush_timeout.is_zero() {
            bad("partial_flush_timeout", "must be positive");
        }
        if let Some(m) = &self.multiline {
            if m.start_pattern.is_none() && m.continuation_pattern.is_none() {
                bad(
                    "multiline.start_pattern",
                    "multiline needs start_pattern or continuation_pattern",
                );
            }
            if m.flush_timeout.is_zero() {
                bad("multiline.flush_timeout", "must be positive");
            }
        }
        match &self.mode {
            SourceMode::Kubernetes { pods_dir, .. } => {
                if pods_dir.as_os_str().is_empty() {
                    bad("pods_dir", "must not be empty");
                }
            }
            SourceMode::Files { paths } => {
                if paths.is_empty() {
                    bad("paths", "needs at least one glob pattern");
                }
                for (i, p) in paths.iter().enumerate() {
                    if let Err(e) = globset::Glob::new(p) {
                        bad(&format!("paths[{i}]"), &format!("invalid glob {p:?}: {e}"));
                    } else if !p.starts_with('/') {
                        bad(&format!("paths[{i}]"), "must be an absolute path");
                    }
                }
            }
        }
        out
    }
}
