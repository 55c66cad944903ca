//! Lifecycle and metric hooks ([`TailEvents`]).

use logferry_core::Source;

/// How a rotation was recognised.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RotationKind {
    /// The file was renamed (kubelet: `0.log` → `0.log.<timestamp>`) and a new
    /// file took its path, or the file was unlinked.
    Rename,
    /// The file shrank below the read position or its first line changed
    /// (copytruncate): reading restarts at offset 0.
    Truncate,
}

impl RotationKind {
    /// Every kind, for pre-registering metric series.
    pub const ALL: &'static [RotationKind] = &[RotationKind::Rename, RotationKind::Truncate];

    /// A bounded label for metrics: `rename` or `truncate`.
    pub fn as_label(self) -> &'static str {
        match self {
            RotationKind::Rename => "rename",
            RotationKind::Truncate => "truncate",
        }
    }
}

/// Why bytes were given up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LossReason {
    /// More deleted files were held open than `max_deleted_files`; the oldest was closed.
    DeletedFilesLimit,
    /// Deleted files held more unread bytes than `max_deleted_bytes`; the oldest was closed.
    DeletedBytesLimit,
    /// A file was truncated (copytruncate) before the tailer read these bytes.
    TruncatedBeforeRead,
}

impl LossReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [LossReason] = &[
        LossReason::DeletedFilesLimit,
        LossReason::DeletedBytesLimit,
        LossReason::TruncatedBeforeRead,
    ];

    /// A bounded label for metrics.
    pub fn as_label(self) -> &'static str {
        match self {
            LossReason::DeletedFilesLimit => "deleted_files_limit",
            LossReason::DeletedBytesLimit => "deleted_bytes_limit",
            LossReason::TruncatedBeforeRead => "truncated_before_read",
        }
    }
}

/// A file the tailer writes in `data_dir`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StateFile {
    /// `checkpoints.json` (with its `.prev` copy).
    Checkpoints,
    /// A copy of a deleted file's unacknowledged bytes in `spool/`.
    Spool,
}

impl StateFile {
    /// Every file, for pre-registering metric series.
    pub const ALL: &'static [StateFile] = &[StateFile::Checkpoints, StateFile::Spool];

    /// A bounded label for metrics: `checkpoints` or `spool`.
    pub fn as_label(self) -> &'static str {
        match self {
            StateFile::Checkpoints => "checkpoints",
            StateFile::Spool => "spool",
        }
    }
}

/// Why a file (or a directory) under the log roots was not read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RefusalReason {
    /// Its real path, every symlink resolved, lies outside the log roots
    /// ([`TailConfig`](crate::TailConfig)'s discovery directories, and
    /// Docker's container directory in kubernetes mode).
    OutsideRoots,
    /// It is not a regular file (a FIFO, a device, a socket, a directory
    /// where a log file was expected): never opened for reading.
    NotRegularFile,
    /// A symlink to a directory: directories are descended into only when
    /// they are real directories, so link loops cannot make a scan endless.
    SymlinkedDirectory,
}

impl RefusalReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [RefusalReason] = &[
        RefusalReason::OutsideRoots,
        RefusalReason::NotRegularFile,
        RefusalReason::SymlinkedDirectory,
    ];

    /// A bounded label for metrics: `outside_roots`, `not_regular_file` or
    /// `symlinked_directory`.
    pub fn as_label(self) -> &'static str {
        match self {
            RefusalReason::OutsideRoots => "outside_roots",
            RefusalReason::NotRegularFile => "not_regular_file",
            RefusalReason::SymlinkedDirectory => "symlinked_directory",
        }
    }
}

/// Why the tailer rescanned its directories.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RescanReason {
    /// The periodic safety net (every `rescan_interval`): only directories
    /// whose modification or change time moved since they were last listed
    /// are listed again (all of them on every 30th).
    Interval,
    /// The kernel's inotify queue overflowed (`IN_Q_OVERFLOW`: more events
    /// than `fs.inotify.max_queued_events` waited): events were lost, so
    /// every directory is listed and every file's size compared.
    InotifyOverflow,
    /// Reading the inotify descriptor failed: every directory is listed.
    InotifyError,
}

impl RescanReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [RescanReason] = &[
        RescanReason::Interval,
        RescanReason::InotifyOverflow,
        RescanReason::InotifyError,
    ];

    /// A bounded label for metrics: `interval`, `inotify_overflow` or `inotify_error`.
    pub fn as_label(self) -> &'static str {
        match self {
            RescanReason::Interval => "interval",
            RescanReason::InotifyOverflow => "inotify_overflow",
            RescanReason::InotifyError => "inotify_error",
        }
    }
}

/// Metrics and lifecycle hooks of the tailer, implemented by the binary
/// (Vector's internal-events style: the library never touches a metrics
/// registry). Every method has a no-op default.
///
/// Methods are called per batch or per event, never per line, from the
/// tailer's single task: keep them cheap (an atomic add).
pub trait TailEvents: Send + Sync + 'static {
    /// A file was opened and its identity (first line) is known.
    fn file_opened(&self, source: &Source) {
        let _ = source;
    }
    /// A file was drained to EOF (and, if deleted or rotated, fully
    /// acknowledged) and closed for good.
    fn file_released(&self, source: &Source) {
        let _ = source;
    }
    /// Bytes read from files (framing included).
    fn bytes_read(&self, bytes: u64) {
        let _ = bytes;
    }
    /// Records emitted.
    fn records_read(&self, records: u64) {
        let _ = records;
    }
    /// Lines that did not parse in their file's format (shipped raw, flagged).
    fn lines_unparsed(&self, lines: u64) {
        let _ = lines;
    }
    /// Records cut at `max_record_bytes`.
    fn records_truncated(&self, records: u64) {
        let _ = records;
    }
    /// A rotation was recognised.
    fn rotation_detected(&self, kind: RotationKind) {
        let _ = kind;
    }
    /// The spool (copies of deleted files not yet fully acknowledged, in
    /// `data_dir/spool`) now holds `files` files and `bytes` bytes on disk.
    fn spool_changed(&self, files: usize, bytes: u64) {
        let _ = (files, bytes);
    }

    /// Bytes given up for good, with the reason.
    fn bytes_lost(&self, bytes: u64, reason: LossReason) {
        let _ = (bytes, reason);
    }
    /// The checkpoint file was written: `files` entries, `lag_bytes` = bytes on
    /// disk not yet acknowledged, summed over open files.
    fn checkpoints_written(&self, files: usize, lag_bytes: u64) {
        let _ = (files, lag_bytes);
    }
    /// A write of `file` was attempted: `ok` false when it failed (`ENOSPC`,
    /// `EIO`, `EMFILE`…). A failed write never ends the run: checkpoints are
    /// written again with backoff (1 s doubling to 30 s) until a write
    /// succeeds, and a deleted file that could not be spooled is held open
    /// and spooling is tried again with the same backoff.
    fn state_write(&self, file: StateFile, ok: bool) {
        let _ = (file, ok);
    }
    /// Writes of `file` started failing (`true`, after the first failure) or
    /// work again (`false`: a write succeeded, or nothing waits to be written
    /// any more). Called on changes only. The daemon's `/readyz` is false
    /// while any file is failing.
    fn state_write_failing(&self, file: StateFile, failing: bool) {
        let _ = (file, failing);
    }
    /// A file or directory was refused (see [`RefusalReason`]): counted the
    /// first time a path is refused (for the first 4,096 paths; beyond that,
    /// every time one is refused again), never read.
    fn file_refused(&self, reason: RefusalReason) {
        let _ = reason;
    }
    /// Open file descriptors of log files, and how many of them are deleted files.
    fn files_open(&self, open: usize, deleted_open: usize) {
        let _ = (open, deleted_open);
    }
    /// Reading paused (`true`) or resumed (`false`) because of downstream
    /// backpressure: batches are cut and waiting, and the output channel is
    /// full, so no file is read until the pipeline takes them (the files are
    /// the buffer). Called on each change only, alternately `true` and
    /// `false`, starting with `true`; a run that ends while paused reports
    /// `false` last.
    fn reading_paused(&self, paused: bool) {
        let _ = paused;
    }
    /// The directories were rescanned, for `reason` (the scan at start and
    /// the one of a graceful finish are not reported).
    fn rescanned(&self, reason: RescanReason) {
        let _ = reason;
    }
}

/// A [`TailEvents`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopEvents;

impl TailEvents for NoopEvents {}
