//! The tailer: discovery, reading, rotation, acknowledgements, checkpoints.
//!
//! One task owns every file's state (no locks): a [`Runner`] built by
//! [`Tailer::run`]. It reacts to inotify events (new files within
//! milliseconds, `IN_MODIFY` for reading), acknowledgements, housekeeping
//! (partial/multiline flush timeouts every 200 ms while an assembly may be
//! waiting; once a second an `fstat` of open files as a safety net), the
//! checkpoint interval and the rescan interval.
//!
//! The rooms, along the seams of Vector's `file-source`:
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` (here) | the public API ([`Tailer`], [`TailSummary`]), the [`Runner`]'s state and its select loop |
//! | [`table`] | every tracked file and every index over them (by path, by source, read queues); re-keying is one method |
//! | [`discovery`] | the [`Discovery`] trait with the kubelet and glob layouts, the inotify watch set, container ids |
//! | [`confine`] | the log roots: opening files and directories only where their real path lies under them, refusals |
//! | [`scan`] | listing directories and reacting to inotify: new, renamed and vanished files |
//! | [`dircache`] | what each directory held when last listed: periodic rescans skip unchanged directories |
//! | [`read`] | identifying files, reading, copytruncate, cutting batches, acknowledgements, release |
//! | [`deleted`] | deleted and rotated-away files: the spool, `.gz` read-back, the held-open limits |
//! | [`housekeeping`] | the timers: flush timeouts, the safety poll, the open-file limit, checkpoint saves |
//! | [`notify`] | the inotify queue, taken out of the runtime's epoll set while a read round waits |
//! | [`standby`] | holding files open without reading them while another process owns `data_dir`, and adopting them |
//!
//! Imports go one way: `table`, `discovery` and `confine` know nothing of the runner;
//! `scan`, `read`, `deleted` and `housekeeping` each add methods to the
//! [`Runner`] defined here, and this module imports none of them.

mod confine;
mod deleted;
mod dircache;
mod discovery;
mod housekeeping;
mod notify;
mod read;
mod scan;
pub(crate) mod standby;
mod table;
#[cfg(test)]
mod testutil;

use crate::checkpoint::{AckTracker, CheckpointStore};
use crate::config::{RunMode, TailConfig};
use crate::error::Error;
use crate::events::TailEvents;
use crate::reader::ReadBuffer;
use crate::spool::Spool;
use confine::{RefusalLog, Roots};
use dircache::DirCache;
use discovery::{ContainerIds, Discovery, Watcher};
use inotify::Inotify;
use logferry_core::{AckToken, DevIno, LogFormat, RecordBatch, SourceId};
use notify::Notify;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use table::FileTable;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often flush timeouts are looked at while an assembly may be waiting.
const HOUSEKEEPING: Duration = Duration::from_millis(200);
/// How often the safety poll runs (and, on a quiet node, the only housekeeping).
const POLL: Duration = Duration::from_secs(1);
/// Without inotify, new files are found by full rescans at least this often.
const POLLING_RESCAN: Duration = Duration::from_secs(2);

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
    /// Files held by a [`Standby`], read if deleted meanwhile ([`Tailer::adopt`]).
    adopted: Vec<table::Held>,
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
            adopted: Vec::new(),
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
    /// When inotify cannot be initialised (`fs.inotify.max_user_instances`
    /// reached), a follow run warns once and finds new files by rescans (at
    /// least every 2 s) and changes by polling every open file each second.
    ///
    /// # Errors
    /// [`Error::CheckpointWrite`] when checkpoints cannot be persisted.
    pub async fn run(
        self,
        mode: RunMode,
        out: mpsc::Sender<RecordBatch>,
        acks: mpsc::UnboundedReceiver<AckToken>,
        stop_reading: CancellationToken,
    ) -> Result<TailSummary, Error> {
        let mut runner = Runner::new(self.config, self.events, self.store, mode)?;
        runner.adopted = self.adopted;
        runner.run(out, acks, stop_reading, self.finish).await
    }
}

/// The state of one [`Tailer::run`]: owned by one task, changed only by the
/// select loop and the methods it calls (defined across this module's rooms).
struct Runner {
    cfg: TailConfig,
    events: Arc<dyn TailEvents>,
    store: CheckpointStore,
    mode: RunMode,
    /// Every tracked file and its indexes.
    table: FileTable,
    /// The node's layout (kubelet or globs).
    layout: Box<dyn Discovery>,
    /// Where files may be read from (real paths).
    roots: Roots,
    /// Paths refused so far (each logged once).
    refusals: RefusalLog,
    /// inotify watches on directories (follow mode).
    watcher: Watcher,
    /// Container ids from the `/var/log/containers` symlinks.
    container_ids: ContainerIds,
    /// Copies of deleted files not yet fully acknowledged (each tracked
    /// file knows its copy: `Tracked::spooled`).
    spool: Spool,
    /// `.gz` files already examined, by path (a new `.gz` often gets the
    /// inode of the one kubelet just deleted).
    gz_seen: HashMap<PathBuf, DevIno>,
    /// Trackers of files no longer tracked whose batches are still in flight.
    retired: HashMap<SourceId, AckTracker>,
    /// Files released after being read to the end, with their size then: not
    /// opened again while unchanged.
    finished: HashMap<DevIno, u64>,
    /// Batches cut and not yet sent.
    outbox: VecDeque<RecordBatch>,
    /// What every file is read into (see [`ReadBuffer`]).
    read_buf: ReadBuffer,
    next_source_id: u64,
    /// True during the scan at start (for `read_from` / `lookback`).
    initial_scan: bool,
    /// Inodes listed by the current full scan (checkpoint expiry).
    seen_in_scan: HashSet<DevIno>,
    /// What each directory held when last listed (periodic rescans skip
    /// unchanged ones).
    dircache: DirCache,
    /// Periodic rescans done so far (every `FULL_RESCAN_EVERY`th lists everything).
    rescans: u32,
    /// Batches sent and not yet acknowledged.
    sent_unacked: usize,
    /// Reading waits for the full output channel (last reported to `events`).
    paused: bool,
    summary: TailSummary,
    /// Safety polls done so far (see `housekeeping`).
    polls: u32,
    /// When flush timeouts need looking at (see `housekeeping`).
    flush: FlushCheck,
    /// The layout's format for files whose first line does not tell.
    fallback: LogFormat,
    /// Files handed over by a standby, until the first scan is done.
    adopted: Vec<table::Held>,
    /// When checkpoints are written again after a failed write.
    ckpt_backoff: Backoff,
    /// What the last pass over the files for checkpoints saw (see
    /// `save_checkpoints`).
    ckpt_pass: CheckpointPass,
    /// Acknowledgements received and renames seen: a checkpoint entry may
    /// have moved.
    ckpt_events: u64,
    /// Deleted files held open because spooling them failed (`true`: a
    /// write error) or found no room above `spool_min_free` (`false`).
    unspooled: HashMap<DevIno, bool>,
    /// When spooling is tried again after a failed write.
    spool_backoff: Backoff,
    /// Whether the last spool write failed and a file still waits for one.
    spool_failing: bool,
    /// How inotify is set up (a seam: tests make it fail).
    inotify_init: fn() -> std::io::Result<Inotify>,
    /// Without inotify (it could not be initialised): every open file is
    /// polled each second and rescans run at least every [`POLLING_RESCAN`].
    polling: bool,
}

/// Retry timing of a failing write in `data_dir`: the first retry after
/// [`Backoff::FIRST`], doubling up to [`Backoff::MAX`].
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next: Option<std::time::Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    /// Whether an attempt is due at `now`.
    fn due(&self, now: std::time::Instant) -> bool {
        self.next.is_none_or(|t| now >= t)
    }

    /// Records a failure at `now`; returns the wait before the next attempt.
    fn failed(&mut self, now: std::time::Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = Backoff::FIRST
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(Backoff::MAX);
        self.next = Some(now + wait);
        wait
    }

    /// Records a success; returns whether attempts were failing before.
    fn succeeded(&mut self) -> bool {
        let was = self.failures > 0;
        *self = Backoff::default();
        was
    }

    /// Whether the last attempt failed.
    fn failing(&self) -> bool {
        self.failures > 0
    }
}

/// When the flush timeouts need looking at. Assemblies only begin when bytes
/// are read, so on a quiet node the 200 ms tick visits no file: it looks
/// again only when bytes were read since its last look or when the earliest
/// deadline it saw then has come (1,000 quiet files: 5,000 visits a second
/// before, none now).
#[derive(Debug, Default)]
struct FlushCheck {
    /// `TailSummary::bytes` at the last look.
    bytes: u64,
    /// The earliest flush deadline seen then.
    earliest: Option<std::time::Instant>,
}

impl FlushCheck {
    /// Whether a look may find something: bytes were read since the last
    /// one, or it saw an assembly waiting for its deadline.
    fn pending(&self, bytes: u64) -> bool {
        bytes != self.bytes || self.earliest.is_some()
    }

    /// Whether to look now, with `bytes` read so far; notes them as seen.
    fn due(&mut self, bytes: u64, now: std::time::Instant) -> bool {
        let due = bytes != self.bytes || self.earliest.is_some_and(|d| d <= now);
        self.bytes = bytes;
        due
    }
}

/// When the checkpoint save passes over every file. An entry moves only
/// with an acknowledgement or a rename, begins when a file is identified,
/// and a file comes or goes with the table's size; a quiet node's save
/// (1,000 files, once a second) skips the pass while none of these
/// changed, and passes at least every 10 s anyway.
#[derive(Debug, Default)]
struct CheckpointPass {
    /// Acknowledgements and renames, files identified, and table size at
    /// the last pass.
    seen: (u64, usize, usize),
    /// When the next pass is due regardless.
    due: Option<std::time::Instant>,
    /// Bytes read but not yet acknowledged, from the last pass.
    lag: u64,
}

impl CheckpointPass {
    /// Every 10 s at least.
    const EVERY: Duration = Duration::from_secs(10);

    /// Whether to pass now; notes what it saw when so.
    fn due(&mut self, seen: (u64, usize, usize), now: std::time::Instant) -> bool {
        if seen == self.seen && self.due.is_some_and(|d| now < d) {
            return false;
        }
        self.seen = seen;
        self.due = Some(now + Self::EVERY);
        true
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Runner {
    fn new(
        cfg: TailConfig,
        events: Arc<dyn TailEvents>,
        store: CheckpointStore,
        mode: RunMode,
    ) -> Result<Runner, Error> {
        let layout = discovery::layout(&cfg.mode)?;
        let spool = Spool::open(&cfg.data_dir).map_err(|source| Error::DataDir {
            path: cfg.data_dir.join("spool"),
            source,
        })?;
        Ok(Runner {
            fallback: layout.fallback_format(),
            layout,
            roots: Roots::of(&cfg),
            refusals: RefusalLog::default(),
            spool,
            cfg,
            events,
            store,
            mode,
            table: FileTable::default(),
            gz_seen: HashMap::new(),
            retired: HashMap::new(),
            finished: HashMap::new(),
            container_ids: ContainerIds::default(),
            watcher: Watcher::default(),
            outbox: VecDeque::new(),
            read_buf: ReadBuffer::default(),
            next_source_id: 0,
            initial_scan: true,
            seen_in_scan: HashSet::new(),
            dircache: DirCache::default(),
            rescans: 0,
            sent_unacked: 0,
            paused: false,
            summary: TailSummary::default(),
            polls: 0,
            flush: Default::default(),
            adopted: Vec::new(),
            ckpt_backoff: Backoff::default(),
            ckpt_pass: CheckpointPass::default(),
            ckpt_events: 0,
            unspooled: HashMap::new(),
            spool_backoff: Backoff::default(),
            spool_failing: false,
            inotify_init: Inotify::init,
            polling: false,
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
        let mut notify = None;
        if self.mode == RunMode::Follow {
            match (self.inotify_init)().and_then(Notify::new) {
                Ok(n) => {
                    self.watcher = Watcher::new(Some(n.watches()));
                    notify = Some(n);
                }
                Err(e) => {
                    self.polling = true;
                    tracing::warn!(
                        error = %e,
                        rescan_interval = ?self.cfg.rescan_interval.min(POLLING_RESCAN),
                        "inotify cannot be initialised (fs.inotify.max_user_instances reached?); \
                         finding new files by rescans and changes by polling every open file each second"
                    );
                }
            }
        }
        self.load_spool();
        self.full_scan();
        self.adopt_held();
        self.initial_scan = false;
        // From here on, a file removed is one this run held open (and reads).
        tracing::info!(files = self.table.len(), "initial scan done");
        if self.mode == RunMode::Once {
            self.table.wait_for_all();
        }
        let mut out = Some(out);
        let mut acks_open = true;
        let mut stopped = false;
        // Housekeeping runs every 200 ms only while a flush timeout may be
        // due, otherwise with the once-a-second poll: a quiet node wakes
        // once a second for it, not five times. The checkpoint tick starts
        // at the same instant, so with the default 1 s interval both fire
        // in one wake-up.
        let start = tokio::time::Instant::now();
        let mut poll_at = start + POLL;
        let mut last_house = start;
        let mut ckpt = tokio::time::interval_at(start, self.cfg.checkpoint_interval);
        ckpt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rescan = tokio::time::interval(if self.polling {
            self.cfg.rescan_interval.min(POLLING_RESCAN)
        } else {
            self.cfg.rescan_interval
        });
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        rescan.tick().await;
        // When reading is due (see `read_coalesce`): unset while no file is queued.
        let mut read_at: Option<tokio::time::Instant> = None;
        loop {
            let now = tokio::time::Instant::now();
            if self.table.queues_empty() {
                read_at = None;
            } else if read_at.is_none() {
                let wait = match self.mode {
                    RunMode::Follow => self.cfg.read_coalesce,
                    RunMode::Once => Duration::ZERO,
                };
                read_at = Some(now + wait);
            }
            let read_due = read_at.is_some_and(|t| t <= now);
            if !stopped && self.outbox.is_empty() && read_due {
                // The events that queued up in the kernel while reading
                // waited, at once (one read(2) for all of them): every file
                // written meanwhile is read in this round. (Once listened to
                // again, the select below takes what comes, without a
                // read(2) per batch cut.)
                if notify.as_ref().is_some_and(|n| !n.is_armed()) {
                    self.take_inotify(&mut notify);
                }
                self.fill_outbox();
            }
            if !stopped
                && self.mode == RunMode::Once
                && self.outbox.is_empty()
                && self.table.once_done()
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
            let has_read_work =
                !stopped && self.outbox.is_empty() && !self.table.queues_empty() && read_due;
            let read_wait = tokio::time::sleep_until(read_at.unwrap_or(now));
            let house_wait = tokio::time::sleep_until(if self.flush.pending(self.summary.bytes) {
                last_house + HOUSEKEEPING
            } else {
                poll_at
            });
            let can_send = !stopped && !self.outbox.is_empty();
            // Backpressure: batches wait and the channel has no room, so
            // nothing is read until the pipeline takes one.
            self.set_paused(can_send && out.as_ref().is_some_and(|o| o.capacity() == 0));
            let send = async {
                match &out {
                    Some(o) if can_send => o.reserve().await,
                    _ => std::future::pending().await,
                }
            };
            // While reading waits for its round, events stay in the kernel's
            // queue (identical consecutive events merge there) and wake no one.
            let listen = read_at.is_none() || read_due;
            self.listen_inotify(&mut notify, listen);
            let inotify_ready = async {
                match &notify {
                    Some(n) => n.readable().await,
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
                ready = inotify_ready, if listen => match ready {
                    Ok(()) => self.take_inotify(&mut notify),
                    Err(e) => self.lose_inotify(&mut notify, &e),
                },
                _ = read_wait, if !stopped && read_at.is_some() && !read_due => {}
                _ = house_wait => {
                    let now = tokio::time::Instant::now();
                    let poll = now >= poll_at;
                    if poll {
                        poll_at = now + POLL;
                    }
                    last_house = now;
                    self.housekeeping(poll && !stopped);
                }
                _ = ckpt.tick() => self.checkpoint_tick(),
                _ = rescan.tick(), if !stopped && self.mode == RunMode::Follow => self.rescan(),
                // More to read after a turn's budget: let the runtime run
                // other tasks (signals, the admin server) first.
                _ = tokio::task::yield_now(), if has_read_work => {}
            }
        }
        self.set_paused(false);
        self.save_checkpoints(true)?;
        Ok(self.summary)
    }

    /// Reports a change of the backpressure pause to `events`.
    fn set_paused(&mut self, paused: bool) {
        if paused != self.paused {
            self.paused = paused;
            self.events.reading_paused(paused);
        }
    }

    /// Takes every event queued in `notify` and reacts to each.
    fn take_inotify(&mut self, notify: &mut Option<Notify>) {
        let Some(n) = notify else {
            return;
        };
        let mut events = Vec::new();
        let result = n.drain(&mut events);
        for (wd, mask, name) in events {
            self.on_inotify(wd, mask, name);
        }
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.lose_inotify(notify, &e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "inotify read failed; rescanning");
                self.events
                    .rescanned(crate::events::RescanReason::InotifyError);
                self.full_scan();
            }
        }
    }

    /// Registers `notify` with the runtime while the loop listens to it, and
    /// takes it out while a read round waits (see [`notify`]).
    fn listen_inotify(&mut self, notify: &mut Option<Notify>, listen: bool) {
        let Some(n) = notify else {
            return;
        };
        if !listen {
            n.disarm();
        } else if let Err(e) = n.arm() {
            self.lose_inotify(notify, &e);
        }
    }

    /// inotify cannot be used any more: rescans and polling find changes.
    fn lose_inotify(&mut self, notify: &mut Option<Notify>, error: &std::io::Error) {
        tracing::warn!(%error, "inotify unusable; relying on rescans and polling");
        *notify = None;
        self.polling = true;
    }

    /// Switches a follow run to "read everything to its end, then stop".
    fn finish_reading(&mut self) {
        // Discover what inotify has not reported yet, while new files are
        // still read from the beginning (follow mode).
        self.full_scan();
        self.mode = RunMode::Once;
        self.table.wait_for_all();
        for key in self.table.keys() {
            // Files closed for the fd limit may have grown since.
            self.reopen(key);
            self.table.enqueue(key, false);
        }
        tracing::info!(
            files = self.table.waited_for(),
            "finishing: reading every file to its end"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{kube_runner_with, write_log, LOG_A};
    use crate::config::RunMode;
    use logferry_core::Acker;
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    async fn next(
        rx: &mut tokio::sync::mpsc::Receiver<logferry_core::RecordBatch>,
        what: &str,
    ) -> logferry_core::RecordBatch {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: no batch within 60 s"))
            .expect("tailer running")
    }

    /// Issue 14, goal 3: the flush check looks at the files only after
    /// bytes were read or when a deadline it saw has come.
    #[test]
    fn flush_timeouts_are_looked_at_after_reads_and_at_deadlines_only() {
        let now = std::time::Instant::now();
        let mut f = super::FlushCheck::default();
        assert!(!f.due(0, now), "nothing read, nothing pending");
        assert!(f.due(100, now), "bytes read since");
        assert!(!f.due(100, now), "seen");
        f.earliest = Some(now + Duration::from_secs(5));
        assert!(!f.due(100, now + Duration::from_secs(1)));
        assert!(f.due(100, now + Duration::from_secs(5)), "deadline came");
    }

    /// Issue 14, goal 3: the checkpoint save passes over the files only when
    /// an acknowledgement came or the table changed, and every 10 s anyway.
    #[test]
    fn checkpoint_passes_follow_acknowledgements_and_the_table() {
        let now = std::time::Instant::now();
        let mut p = super::CheckpointPass::default();
        assert!(p.due((0, 0, 10), now), "the first");
        assert!(!p.due((0, 0, 10), now), "nothing changed");
        assert!(p.due((1, 0, 10), now), "an acknowledgement or a rename");
        assert!(p.due((1, 1, 10), now), "a file identified");
        assert!(p.due((1, 1, 11), now), "a file came");
        assert!(!p.due((1, 1, 11), now + Duration::from_secs(9)));
        assert!(
            p.due((1, 1, 11), now + Duration::from_secs(10)),
            "10 s passed"
        );
    }

    /// Issue 14, goal 3: housekeeping runs every 200 ms only while a look
    /// may find something; a quiet node waits for the 1 s poll.
    #[test]
    fn flush_checks_are_pending_only_after_reads_or_with_an_assembly_waiting() {
        let now = std::time::Instant::now();
        let mut f = super::FlushCheck::default();
        assert!(!f.pending(0), "quiet");
        assert!(f.pending(10), "bytes read since the last look");
        f.due(10, now);
        assert!(!f.pending(10), "looked, nothing waiting");
        f.earliest = Some(now + Duration::from_secs(1));
        assert!(f.pending(10), "an assembly waits for its deadline");
    }

    /// Issue 10, item 6: inotify cannot be initialised (EMFILE: the user's
    /// `max_user_instances` are taken): the run finds and reads files by
    /// rescans and polling instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_inotify_files_are_found_by_rescans_and_read_by_polling() {
        let (tmp, mut r, _ev) = kube_runner_with(RunMode::Follow, |c| {
            c.rescan_interval = Duration::from_secs(3600); // capped at 2 s without inotify
        });
        r.inotify_init = || Err(std::io::Error::from_raw_os_error(24));
        let dir = write_log(tmp.path(), "0.log", LOG_A);
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let (acker, acks) = Acker::channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(r.run(tx, acks, stop.clone(), None));
        let mut got = Vec::new();
        let b = next(&mut rx, "file present at start").await;
        got.extend(b.records.iter().map(|r| r.message.clone()));
        acker.ack(b.ack);
        // Appended to a known file: found by the poll.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("0.log"))
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, b"2026-11-22T13:45:11Z stdout F appended\n")
            })
            .unwrap();
        let b = next(&mut rx, "appended line").await;
        got.extend(b.records.iter().map(|r| r.message.clone()));
        acker.ack(b.ack);
        // A new file: found by a rescan (the configured hour is capped).
        std::fs::write(
            dir.join("1.log"),
            b"2026-11-22T13:45:12Z stdout F new file\n",
        )
        .unwrap();
        let b = next(&mut rx, "new file").await;
        got.extend(b.records.iter().map(|r| r.message.clone()));
        acker.ack(b.ack);
        stop.cancel();
        drop(acker);
        task.await.unwrap().expect("the run ends cleanly");
        assert_eq!(
            got,
            vec![&b"first line"[..], b"second line", b"appended", b"new file"]
        );
    }
}
