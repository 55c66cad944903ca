//! # logferry-tail
//!
//! Checkpointed tailing of container log files: discovery, file identity,
//! CRI and docker json-file decoding, partial and multiline joining, rotation,
//! acknowledgements and checkpoints. It knows the kubelet node log layout
//! (`/var/log/pods`, `/var/log/containers`) but nothing about the Kubernetes
//! API or Elasticsearch: it produces [`RecordBatch`](logferry_core::RecordBatch)es
//! and consumes [`AckToken`](logferry_core::AckToken)s.
//!
//! ## What it guarantees
//!
//! * **Every line, in order, per file.** Files are found by inotify within
//!   milliseconds of their creation (with a periodic rescan as safety net),
//!   opened at once and kept open: a file that is renamed (kubelet rotation) or
//!   deleted is read to its end through the open descriptor, with priority,
//!   before it is released — unless the configured limits on held-open deleted
//!   files and bytes force a loss, which is counted
//!   ([`TailEvents::bytes_lost`]) and logged with the path and byte count.
//! * **Deleted files survive a crash.** The unacknowledged bytes of a deleted
//!   file are copied to `data_dir/spool` at once and read from the copy, which
//!   a restarted tailer reads again under the original identity (see the
//!   `spool` module; reported through [`TailEvents::spool_changed`]).
//! * **Checkpoints never run ahead of acknowledgements.** Each file's batches
//!   are numbered; a batch remembers the resume offset after its last line when
//!   no partial or multiline assembly was open there (or the start of the
//!   earliest open assembly, when no record already emitted spans it). The checkpoint is the
//!   resume offset of the highest batch of a contiguous acknowledged prefix, so
//!   after a crash reading resumes at or before the first unacknowledged record:
//!   records may be delivered again (with the same `(file, start offset)`
//!   identity, so deterministic ids make that idempotent), never lost.
//! * **Identity survives renames and rejects recycled inodes.** A file is
//!   `(dev, ino)` plus the XXH3 fingerprint of its first line
//!   ([`FileId`](logferry_core::FileId)). A checkpoint whose fingerprint differs is
//!   stale (start at 0); an offset beyond the file size means copytruncate
//!   (start at 0, [`RotationKind::Truncate`]).
//! * **Bounded memory.** Reading pauses when the output channel is full: the
//!   tailer reads only when its own queue of batches is empty, one read round
//!   (256 KiB) at a time. Per file it keeps at most one incomplete line (cut
//!   at `2 × max_record_bytes + 64 KiB`) and one partial/multiline assembly per
//!   stream (cut at `max_record_bytes`).
//! * **Only files under the log roots.** A file is read only if its real path
//!   (every symlink resolved, checked on the opened descriptor through
//!   `/proc/self/fd`) lies under `pods_dir` (or is a `<id>/<id>-json.log*`
//!   under [`TailConfig::docker_containers_dir`]) in kubernetes mode, or under
//!   the non-glob base of a pattern in files mode; only regular files are
//!   opened, symlinked directories are never descended into, and a scan lists
//!   each directory once. Refusals are logged once per path and reported
//!   through [`TailEvents::file_refused`].
//! * **No file starves the others.** At most 1 MiB is read per turn of the
//!   tailer's loop (from one file and in all), also when it yields no records
//!   (a line without `\n`, records before `lookback`): acknowledgements,
//!   inotify events and the stop signal are handled between turns.
//! * **Works without inotify.** When inotify cannot be initialised, a follow
//!   run warns once and relies on rescans (at least every 2 s) and a
//!   one-second poll of every open file.
//! * **Graceful ends.** `stop_reading` stops at once and waits for the
//!   acknowledgements of what was sent; [`Tailer::finish_on`] (sidecar
//!   `/quitquitquit`) first reads every file to its end.
//!
//! ## What it does not do
//!
//! * Gzipped rotated files (`0.log.<ts>.gz`) are read only when a checkpoint
//!   says the original was not finished (kubelet rotated, gzipped and unlinked
//!   it while logferry was down): the tailer finds it by the fingerprint of its
//!   first line, decompresses it into an unlinked temporary file in `data_dir`
//!   and reads from the checkpoint on, under the original identity. Other `.gz`
//!   files are ignored. A file unlinked without a `.gz` copy while logferry
//!   was down is gone, and so are the unacknowledged bytes of a file deleted
//!   moments before a crash, before its spool copy was made.
//! * `max_open_files` closes idle, fully read active files and reopens them
//!   by identity on the next change; bytes appended to such a file between its
//!   last change and its deletion, while it was closed, cannot be read.
//! * Data written to a file between the last read and a copytruncate is lost
//!   (inherent to copytruncate); it is counted when the size was known.
//! * It does not enrich records (`RecordBatch::meta` is `None`).
//!
//! ## Where things live
//!
//! * `tailer/`: the [`Tailer`] and its single task. `tailer/mod.rs` holds the
//!   public API and the select loop; `table.rs` every tracked file and the
//!   indexes over them (by path, by source, read queues), so that re-keying a
//!   file is one step; `discovery.rs` the `Discovery` trait with the kubelet
//!   and glob layouts, the inotify watch set and container ids; `scan.rs`
//!   the reactions to directory listings and inotify events; `confine.rs`
//!   the log roots and how files and directories are opened; `read.rs`
//!   identification, reading, copytruncate, batches, acknowledgements and
//!   release; `deleted.rs` deleted and rotated-away files (spool, `.gz`
//!   read-back, limits); `housekeeping.rs` the timers (flush timeouts, safety
//!   poll, open-file limit, checkpoint saves).
//! * [`reader`] (one file's read buffer), [`decode`], [`cri`], [`docker`],
//!   [`joiner`] and [`timestamp`] turn bytes into records; [`identity`]
//!   fingerprints first lines; [`checkpoint`] tracks acknowledgements and
//!   persists offsets; `spool` keeps copies of deleted files.
//!
//! The repository's `ARCHITECTURE.md` draws the data flow from discovery to
//! checkpoints across the crates.
//!
//! Formats: CRI (<https://github.com/kubernetes/design-proposals-archive/blob/main/node/kubelet-cri-logging.md>),
//! docker json-file (<https://docs.docker.com/engine/logging/drivers/json-file/>);
//! checkpoint file format: [`checkpoint`].

#![deny(missing_docs)]

pub mod checkpoint;
mod config;
pub mod cri;
pub mod decode;
pub mod docker;
mod error;
mod events;
pub mod identity;
pub mod joiner;
pub mod reader;
mod spool;
mod tailer;
pub mod timestamp;

pub use config::{MinFree, MultilineConfig, ReadFrom, RunMode, SourceMode, TailConfig};
pub use error::Error;
pub use events::{
    LossReason, NoopEvents, RefusalReason, RescanReason, RotationKind, StateFile, TailEvents,
};
pub use tailer::standby::Standby;
pub use tailer::{TailSummary, Tailer};
