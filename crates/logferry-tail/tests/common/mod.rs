//! Shared harness of the tailer's integration tests: runs a [`Tailer`] with a
//! consumer task that records every batch and acknowledges it.
#![allow(dead_code)]

pub use logferry_testkit::writer;

use logferry_core::{Acker, Record, RecordBatch, Source};
use logferry_tail::{
    LossReason, RefusalReason, RescanReason, RotationKind, RunMode, TailConfig, TailEvents,
    TailSummary, Tailer,
};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Counts events.
#[derive(Default, Debug)]
pub struct CountingEvents {
    pub opened: AtomicU64,
    pub released: AtomicU64,
    pub renames: AtomicU64,
    pub truncates: AtomicU64,
    pub lost_bytes: AtomicU64,
    pub lost_deleted_files: AtomicU64,
    pub unparsed: AtomicU64,
    pub checkpoints: AtomicU64,
    pub last_open: AtomicU64,
    /// The last `spool_changed` report: files, bytes.
    pub spool_files: AtomicU64,
    pub spool_bytes: AtomicU64,
    /// The last `reading_paused` report, and how many pauses began.
    pub reading_paused: AtomicBool,
    pub pauses: AtomicU64,
    /// Every `file_refused` report, in order.
    pub refused: Mutex<Vec<RefusalReason>>,
    /// Every `rescanned` report, in order.
    pub rescans: Mutex<Vec<RescanReason>>,
}

impl TailEvents for CountingEvents {
    fn file_opened(&self, _: &Source) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }
    fn file_released(&self, _: &Source) {
        self.released.fetch_add(1, Ordering::Relaxed);
    }
    fn rotation_detected(&self, kind: RotationKind) {
        match kind {
            RotationKind::Rename => self.renames.fetch_add(1, Ordering::Relaxed),
            RotationKind::Truncate => self.truncates.fetch_add(1, Ordering::Relaxed),
        };
    }
    fn bytes_lost(&self, bytes: u64, reason: LossReason) {
        self.lost_bytes.fetch_add(bytes, Ordering::Relaxed);
        if reason == LossReason::DeletedFilesLimit {
            self.lost_deleted_files.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn lines_unparsed(&self, lines: u64) {
        self.unparsed.fetch_add(lines, Ordering::Relaxed);
    }
    fn files_open(&self, open: usize, _deleted: usize) {
        self.last_open.store(open as u64, Ordering::Relaxed);
    }
    fn spool_changed(&self, files: usize, bytes: u64) {
        self.spool_files.store(files as u64, Ordering::Relaxed);
        self.spool_bytes.store(bytes, Ordering::Relaxed);
    }
    fn checkpoints_written(&self, _: usize, _: u64) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }
    fn reading_paused(&self, paused: bool) {
        let was = self.reading_paused.swap(paused, Ordering::Relaxed);
        assert_ne!(was, paused, "reading_paused reports changes only");
        if paused {
            self.pauses.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn file_refused(&self, reason: RefusalReason) {
        self.refused.lock().push(reason);
    }
    fn rescanned(&self, reason: RescanReason) {
        self.rescans.lock().push(reason);
    }
}

/// Every record received, with its file.
pub type Received = Arc<Mutex<Vec<(Arc<Source>, Record)>>>;

/// A running tailer and its consumer.
pub struct Running {
    pub records: Received,
    pub events: Arc<CountingEvents>,
    pub stop: CancellationToken,
    /// While true, the consumer does not take batches (backpressure).
    pub paused: Arc<AtomicBool>,
    pub task: JoinHandle<Result<TailSummary, logferry_tail::Error>>,
    consumer: JoinHandle<()>,
}

impl Running {
    /// Starts `config` in `mode` with an output channel of `capacity` batches.
    pub fn start(config: TailConfig, mode: RunMode, capacity: usize) -> Running {
        let events = Arc::new(CountingEvents::default());
        let tailer = Tailer::new(config, events.clone()).expect("tailer config");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(capacity);
        let (acker, acks) = Acker::channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(tailer.run(mode, tx, acks, stop.clone()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(AtomicBool::new(false));
        let (r, p) = (records.clone(), paused.clone());
        let consumer = tokio::spawn(async move {
            // Acknowledge out of order: hold every other batch until the next one.
            let mut held = None;
            loop {
                while p.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let Some(batch) = rx.recv().await else { break };
                {
                    let mut g = r.lock();
                    for rec in &batch.records {
                        g.push((batch.source.clone(), rec.clone()));
                    }
                }
                if let Some(prev) = held.take() {
                    acker.ack(batch.ack);
                    acker.ack(prev);
                } else {
                    held = Some(batch.ack);
                }
                if rx.is_empty() {
                    if let Some(prev) = held.take() {
                        acker.ack(prev);
                    }
                }
            }
            if let Some(prev) = held.take() {
                acker.ack(prev);
            }
        });
        Running {
            records,
            events,
            stop,
            paused,
            task,
            consumer,
        }
    }

    /// Messages received so far, as strings.
    pub fn messages(&self) -> Vec<String> {
        self.records
            .lock()
            .iter()
            .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
            .collect()
    }

    /// Waits until `pred(records)` holds or `timeout` passes; returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[(Arc<Source>, Record)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.records.lock()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops reading and waits for the tailer and the consumer to finish.
    pub async fn finish(self) -> (TailSummary, Vec<(Arc<Source>, Record)>, Arc<CountingEvents>) {
        self.stop.cancel();
        self.paused.store(false, Ordering::Relaxed);
        let summary = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("tailer stops within 30 s")
            .expect("tailer task")
            .expect("tailer result");
        self.consumer.await.expect("consumer");
        let recs = std::mem::take(&mut *self.records.lock());
        (summary, recs, self.events)
    }
}

/// A temporary node: `pods/`, `containers/`, `data/`.
pub struct Node {
    pub root: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("pods")).unwrap();
        std::fs::create_dir_all(root.path().join("containers")).unwrap();
        Node { root }
    }
    pub fn pods(&self) -> std::path::PathBuf {
        self.root.path().join("pods")
    }
    pub fn containers(&self) -> std::path::PathBuf {
        self.root.path().join("containers")
    }
    pub fn data(&self) -> std::path::PathBuf {
        self.root.path().join("data")
    }
    pub fn config(&self) -> TailConfig {
        let mut c = TailConfig::kubernetes(self.pods(), self.containers(), self.data());
        c.rescan_interval = Duration::from_secs(3600);
        c.checkpoint_interval = Duration::from_millis(100);
        c.partial_flush_timeout = Duration::from_millis(500);
        c
    }
    pub fn writer(&self, pod: &str, container: &str) -> writer::ContainerLogWriter {
        writer::ContainerLogWriter::create(
            &self.pods(),
            Some(&self.containers()),
            "ns",
            pod,
            &format!("uid-{pod}"),
            container,
            &format!("{:064x}", pod.len() * 7919 + container.len()),
        )
        .expect("writer")
    }
}

impl Running {
    /// For [`RunMode::Once`]: waits for the tailer to stop by itself.
    pub async fn finish_once(
        self,
    ) -> (TailSummary, Vec<(Arc<Source>, Record)>, Arc<CountingEvents>) {
        let summary = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("run once ends within 30 s")
            .expect("tailer task")
            .expect("tailer result");
        self.consumer.await.expect("consumer");
        let recs = std::mem::take(&mut *self.records.lock());
        (summary, recs, self.events)
    }
}
