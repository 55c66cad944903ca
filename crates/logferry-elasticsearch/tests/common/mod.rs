//! Shared helpers for the forwarder's behaviour tests: synthetic files,
//! batches, and a harness that runs a real `Forwarder` against the double.
#![allow(dead_code)]

use bytes::Bytes;
use logferry_core::{
    AckToken, Acker, FileId, KubeLogPath, LogFormat, PodMeta, Record, RecordBatch, RecordFlags,
    Source, SourceId, Stream,
};
use logferry_elasticsearch::{
    CancellationToken, Compression, DocumentOptions, ElasticsearchConfig, Forwarder,
    ForwarderEvents, ForwarderSummary, RetryConfig,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A kubelet-style source: `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`.
pub fn source(n: u64, namespace: &str, pod: &str, container: &str) -> Arc<Source> {
    let path = PathBuf::from(format!(
        "/var/log/pods/{namespace}_{pod}_00000000-0000-4000-8000-{n:012}/{container}/0.log"
    ));
    Arc::new(Source {
        id: SourceId(n),
        file: FileId {
            dev: 2049,
            ino: 1_000 + n,
            fingerprint: 0x9e37_79b9_7f4a_7c15 ^ n,
        },
        kube: KubeLogPath::parse(&path),
        path,
        container_id: Some(format!("{:064x}", 0xc0ffee + n)),
        format: LogFormat::Cri,
    })
}

/// One record; `start` is its byte offset in the file.
pub fn record(start: u64, nanos: i64, message: &str) -> Record {
    Record {
        start,
        end: start + message.len() as u64 + 40,
        timestamp_nanos: nanos,
        stream: Stream::Stdout,
        flags: RecordFlags::NONE,
        message: Bytes::copy_from_slice(message.as_bytes()),
    }
}

/// 2026-11-22T10:00:00Z in nanoseconds.
pub const T0: i64 = 1_795_341_600_000_000_000;

/// `total` records spread round-robin over `sources`, in batches of
/// `per_batch` records of one source each, messages from `message(i)`.
pub fn batches(
    sources: &[Arc<Source>],
    meta: Option<Arc<PodMeta>>,
    total: usize,
    per_batch: usize,
    message: impl Fn(usize) -> String,
) -> Vec<RecordBatch> {
    let mut offsets = vec![0u64; sources.len()];
    let mut seqs = vec![0u64; sources.len()];
    let mut out = Vec::new();
    let mut i = 0;
    let mut turn = 0;
    while i < total {
        let s = turn % sources.len();
        turn += 1;
        let mut records = Vec::with_capacity(per_batch);
        for _ in 0..per_batch.min(total - i) {
            let m = message(i);
            let r = record(offsets[s], T0 + i as i64 * 1_000, &m);
            offsets[s] = r.end;
            records.push(r);
            i += 1;
        }
        out.push(RecordBatch {
            source: sources[s].clone(),
            ack: AckToken {
                source: sources[s].id,
                seq: seqs[s],
            },
            records,
            meta: meta.clone(),
        });
        seqs[s] += 1;
    }
    out
}

/// A configuration for tests: fast retries, small timeouts, no templates.
pub fn config(url: &str, dir: &std::path::Path) -> ElasticsearchConfig {
    let mut c = ElasticsearchConfig::new(url, dir);
    c.compression = Compression::None;
    c.install_template = false;
    c.retry = RetryConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
    };
    c.request_timeout = Duration::from_secs(10);
    c.batch.timeout = Duration::from_millis(50);
    c.target = logferry_elasticsearch::IndexTarget::Index {
        template: "logs-test".parse().unwrap(),
    };
    c
}

/// What a run produced.
pub struct Run {
    pub summary: ForwarderSummary,
    pub acks: Vec<AckToken>,
}

impl Run {
    /// Asserts that each of `batches` was acknowledged exactly once and
    /// nothing else was.
    pub fn assert_each_acked_once(&self, batches: &[RecordBatch]) {
        let mut seen = HashSet::new();
        for a in &self.acks {
            assert!(seen.insert(*a), "batch {a:?} acknowledged twice");
        }
        let expected: HashSet<AckToken> = batches.iter().map(|b| b.ack).collect();
        assert_eq!(
            seen.len(),
            expected.len(),
            "acknowledged {} batches, expected {}",
            seen.len(),
            expected.len()
        );
        assert_eq!(seen, expected);
    }
}

/// Runs a forwarder over `batches` until everything is delivered.
pub async fn ship(
    config: ElasticsearchConfig,
    documents: DocumentOptions,
    events: Arc<dyn ForwarderEvents>,
    batches: Vec<RecordBatch>,
) -> Run {
    let forwarder = Forwarder::new(config, documents, events).expect("valid configuration");
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (acker, mut acks_rx) = Acker::channel();
    let feeder = tokio::spawn(async move {
        for b in batches {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let summary = forwarder
        .run(rx, acker, CancellationToken::new())
        .await
        .expect("run");
    feeder.await.unwrap();
    let mut acks = Vec::new();
    while let Ok(a) = acks_rx.try_recv() {
        acks.push(a);
    }
    Run { summary, acks }
}

/// Events that count what they are told.
#[derive(Default)]
pub struct CountingEvents {
    pub sent: std::sync::atomic::AtomicU64,
    pub duplicates: std::sync::atomic::AtomicU64,
    pub dead_lettered: std::sync::atomic::AtomicU64,
    pub dead_lettered_to_file: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    pub item_errors: labels::Labels,
    pub outcomes: labels::Labels,
    pub json_not_parsed: labels::Labels,
    pub max_in_flight: std::sync::atomic::AtomicUsize,
}

pub mod labels {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Counts per label.
    #[derive(Default)]
    pub struct Labels(pub Mutex<BTreeMap<&'static str, u64>>);

    impl Labels {
        pub fn add(&self, label: &'static str, n: u64) {
            *self.0.lock().unwrap().entry(label).or_default() += n;
        }
        pub fn get(&self, label: &str) -> u64 {
            self.0.lock().unwrap().get(label).copied().unwrap_or(0)
        }
    }
}

impl ForwarderEvents for CountingEvents {
    fn json_messages_not_parsed(&self, reason: logferry_elasticsearch::JsonSkipReason, n: u64) {
        self.json_not_parsed.add(reason.as_label(), n);
    }
    fn bulk_request(&self, outcome: logferry_elasticsearch::BulkOutcome, _seconds: f64) {
        self.outcomes.add(outcome.as_label(), 1);
    }
    fn records_sent(&self, records: u64, _bytes: u64) {
        self.sent
            .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }
    fn duplicates(&self, records: u64) {
        self.duplicates
            .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }
    fn item_errors(&self, reason: logferry_elasticsearch::ItemErrorReason, records: u64) {
        self.item_errors.add(reason.as_label(), records);
    }
    fn retries(&self, records: u64) {
        self.retries
            .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }
    fn dead_lettered(&self, records: u64, to_file: bool) {
        let c = if to_file {
            &self.dead_lettered_to_file
        } else {
            &self.dead_lettered
        };
        c.fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }
    fn in_flight_requests(&self, n: usize) {
        self.max_in_flight
            .fetch_max(n, std::sync::atomic::Ordering::Relaxed);
    }
}
