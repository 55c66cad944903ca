//! The daemon's Prometheus metrics.
//!
//! Names follow `logferry_<subsystem>_<name>_<unit>[_total]`; label values
//! come from closed sets only (never a path, pod, index or error text). The
//! libraries report through their events traits (`TailEvents`, `KubeEvents`,
//! `ForwarderEvents`), implemented in `events.rs` on top of these metrics;
//! they are called per batch or per event, never per line.

mod nats;

pub use nats::NatsMetrics;

use crate::freshness::Freshness;
use logferry_elasticsearch::{BulkOutcome, ItemErrorReason, JsonSkipReason};
use logferry_kube::{KubeError, PathOnlyReason, WATCHED_RESOURCES};
use logferry_tail::{LossReason, RefusalReason, RescanReason, RotationKind};
use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `reason` of `logferry_records_without_metadata_total` when the pod store
/// is off (`kubernetes.enabled: false` or no API configuration); the other
/// reasons are [`logferry_kube::PathOnlyReason`]'s labels.
pub const STORE_DISABLED: &str = "disabled";
/// `reason` of a record dropped because its pod or namespace opted out.
pub const EXCLUDED: &str = "excluded";
/// `reason` of a record dropped by `filter.min_level`.
pub const BELOW_MIN_LEVEL: &str = "min_level";
/// Every `reason` of `logferry_dropped_records_total`.
pub const DROP_REASONS: &[&str] = &[EXCLUDED, BELOW_MIN_LEVEL];
/// `destination` of `logferry_elasticsearch_dead_lettered_records_total`:
/// the dead-letter index, or the dead-letter file when even that refused.
pub const DEAD_LETTER_DESTINATIONS: &[&str] = &["index", "file"];
/// `file` label values of `logferry_checkpoint_writes_total` and
/// `logferry_checkpoint_write_errors_total`, the files logferry writes in
/// `data_dir`: the tailer's checkpoints and spool
/// ([`logferry_tail::StateFile`]) and the pod store's `pods.json` (tombstones).
pub const STATE_FILES: &[&str] = &["checkpoints", "spool", "pods"];

/// Every metric the daemon exports, registered in one [`Registry`].
pub struct Metrics {
    registry: Registry,
    /// Files currently open.
    pub tail_files_open: IntGauge,
    /// Deleted or rotated-away files held open to be drained.
    pub tail_deleted_files_open: IntGauge,
    /// Bytes read from log files.
    pub tail_read_bytes: IntCounter,
    /// Records decoded.
    pub tail_read_records: IntCounter,
    /// Lines shipped raw because they did not parse.
    pub tail_unparsed_lines: IntCounter,
    /// Records cut at `max_record_bytes`.
    pub tail_truncated_records: IntCounter,
    /// Rotations seen, by kind.
    pub tail_rotations: IntCounterVec,
    /// Bytes given up, by reason.
    pub tail_lost_bytes: IntCounterVec,
    /// Files (and directories) not read because of where they lead, by reason.
    pub tail_files_refused: IntCounterVec,
    /// Rescans of the log directories, by reason.
    pub tail_rescans: IntCounterVec,
    /// Bytes on disk not yet acknowledged by the sink.
    pub tail_checkpoint_lag_bytes: IntGauge,
    /// Deleted files copied to `data_dir/spool` until acknowledged.
    pub tail_spool_files: IntGauge,
    /// `source.max_open_files` (so alerts can compare usage with the cap).
    pub tail_open_files_limit: IntGauge,
    /// `source.max_deleted_files`.
    pub tail_deleted_files_limit: IntGauge,
    /// `source.max_deleted_bytes`, bytes (also the spool's cap).
    pub tail_deleted_bytes_limit: IntGauge,
    /// Bytes those copies take on disk.
    pub tail_spool_bytes: IntGauge,
    /// Pods in the metadata store (including deleted ones kept for their files).
    pub kubernetes_pods: IntGauge,
    /// 1 when the pod store is in sync with the API server.
    pub kubernetes_store_synced: IntGauge,
    /// Watch restarts (re-lists), by resource.
    pub kubernetes_watch_restarts: IntCounterVec,
    /// API errors, by reason.
    pub kubernetes_api_errors: IntCounterVec,
    /// Records shipped with path-only metadata, by reason.
    pub records_without_metadata: IntCounterVec,
    /// Records dropped on purpose, by reason.
    pub dropped_records: IntCounterVec,
    /// Records of an Airflow-enabled source shipped without `log_id` (no task known).
    pub airflow_records_without_log_id: IntCounter,
    /// Messages that looked like JSON objects shipped as text only (the
    /// `json_message` option's bounds or a parse error), by reason.
    pub json_messages_not_parsed: IntCounterVec,
    /// Records Elasticsearch accepted (2xx or 409 on create).
    pub es_sent_records: IntCounter,
    /// Bulk body bytes of accepted records.
    pub es_sent_bytes: IntCounter,
    /// Records that were already indexed (409 on create).
    pub es_duplicate_records: IntCounter,
    /// Bulk requests, by outcome.
    pub es_bulk_requests: IntCounterVec,
    /// Bulk request latency.
    pub es_bulk_duration: Histogram,
    /// Item errors, by reason.
    pub es_item_errors: IntCounterVec,
    /// Records sent again after a retryable failure.
    pub es_retried_records: IntCounter,
    /// Records written to the dead-letter index or file.
    pub es_dead_lettered_records: IntCounterVec,
    /// Bulk requests in flight.
    pub es_in_flight_requests: IntGauge,
    /// Documents written by the stdout sink.
    pub stdout_written_records: IntCounter,
    /// Writes of files in `data_dir`, by file.
    pub checkpoint_writes: IntCounterVec,
    /// Failed writes of files in `data_dir` (`ENOSPC`, `EIO`, …), by file.
    pub checkpoint_write_errors: IntCounterVec,
    /// Shutdowns whose drain timeout fired with records not delivered.
    pub shutdown_drain_timeouts: IntCounter,
    /// The NATS source's and sink's families (`logferry_nats_*`).
    pub nats: NatsMetrics,
    /// Refused documents held back because the dead-letter file is full (per attempt).
    pub es_dead_letter_file_full: IntCounter,
    /// Reading paused by backpressure (`logferry_tail_paused`, `_seconds_total`).
    pub tail_paused: PausedClock,
    /// Age of the oldest unacknowledged record (`logferry_pipeline_lag_seconds`).
    pub freshness: Arc<Freshness>,
    /// 1 when the daemon watches the API server for pod metadata.
    pub kubernetes_watch_enabled: IntGauge,
}

/// `logferry_tail_paused` (1 while reading waits for the pipeline) and
/// `logferry_tail_paused_seconds_total` (time spent so, in seconds). The
/// counter also moves during a long pause: every scrape adds the time paused
/// since the previous one.
pub struct PausedClock {
    since: Mutex<Option<Instant>>,
    paused: IntGauge,
    seconds: Counter,
}

impl PausedClock {
    fn register(registry: &Registry) -> PausedClock {
        let seconds = Counter::new(
            "logferry_tail_paused_seconds_total",
            "Time reading was paused by backpressure (batches waiting, the pipeline full), in seconds.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(seconds.clone()))
            .expect("unique metric");
        PausedClock {
            since: Mutex::new(None),
            paused: gauge(
                registry,
                "logferry_tail_paused",
                "1 while reading is paused by backpressure: batches wait for a full pipeline (Elasticsearch slow or down); the files are the buffer.",
            ),
            seconds,
        }
    }

    /// Reading paused (`true`) or resumed.
    pub fn set(&self, paused: bool) {
        let mut since = self.lock();
        let now = Instant::now();
        if let Some(t) = since.take() {
            self.seconds.inc_by(now.duration_since(t).as_secs_f64());
        }
        if paused {
            *since = Some(now);
        }
        self.paused.set(i64::from(paused));
    }

    /// Adds the time paused since the last call (or the pause began) to the counter.
    fn flush(&self) {
        let mut since = self.lock();
        if let Some(t) = since.as_mut() {
            let now = Instant::now();
            self.seconds.inc_by(now.duration_since(*t).as_secs_f64());
            *t = now;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

impl Metrics {
    /// Registers every metric; `version` goes into `logferry_build_info`.
    pub fn new(version: &str) -> Metrics {
        let r = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("logferry_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        r.register(Box::new(build.clone())).expect("unique metric");
        build.with_label_values(&[version]).set(1);
        let es_bulk_duration = Histogram::with_opts(
            HistogramOpts::new(
                "logferry_elasticsearch_bulk_duration_seconds",
                "Time from sending a bulk request to its complete response, in seconds.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(es_bulk_duration.clone()))
            .expect("unique metric");
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("unique metric");
        let pipeline_lag = Gauge::new(
            "logferry_pipeline_lag_seconds",
            "Age of the oldest record read and not yet acknowledged (now minus the write time its log line carries), in seconds; 0 when everything read is acknowledged.",
        )
        .expect("valid metric");
        r.register(Box::new(pipeline_lag.clone()))
            .expect("unique metric");
        let m = Metrics {
            tail_files_open: gauge(&r, "logferry_tail_files_open", "Log files currently open."),
            tail_deleted_files_open: gauge(
                &r,
                "logferry_tail_deleted_files_open",
                "Deleted or rotated log files held open until drained.",
            ),
            tail_read_bytes: counter(&r, "logferry_tail_read_bytes_total", "Bytes read from log files."),
            tail_read_records: counter(&r, "logferry_tail_read_records_total", "Records decoded from log files."),
            tail_unparsed_lines: counter(
                &r,
                "logferry_tail_unparsed_lines_total",
                "Lines that did not parse in their file's format, shipped as they are.",
            ),
            tail_truncated_records: counter(
                &r,
                "logferry_tail_truncated_records_total",
                "Records longer than max_record_bytes, truncated and flagged.",
            ),
            tail_rotations: counter_vec(&r, "logferry_tail_rotations_total", "Log rotations detected.", "kind"),
            tail_lost_bytes: counter_vec(
                &r,
                "logferry_tail_lost_bytes_total",
                "Bytes given up without being read (limits on held-open deleted files, truncation before read).",
                "reason",
            ),
            tail_files_refused: counter_vec(
                &r,
                "logferry_tail_files_refused_total",
                "Files and directories under the log roots that were not read: a real path outside the roots, not a regular file, or a symlinked directory. Counted once per path.",
                "reason",
            ),
            tail_rescans: counter_vec(
                &r,
                "logferry_tail_rescans_total",
                "Rescans of the log directories: interval (the periodic safety net, listing only directories that changed), inotify_overflow (the kernel's event queue overflowed: every directory listed), inotify_error.",
                "reason",
            ),
            tail_checkpoint_lag_bytes: gauge(
                &r,
                "logferry_tail_checkpoint_lag_bytes",
                "Bytes in log files not yet acknowledged by the sink, summed over files.",
            ),
            tail_open_files_limit: gauge(
                &r,
                "logferry_tail_open_files_limit",
                "Configured source.max_open_files.",
            ),
            tail_deleted_files_limit: gauge(
                &r,
                "logferry_tail_deleted_files_limit",
                "Configured source.max_deleted_files: deleted files held open beyond it lose their unread bytes.",
            ),
            tail_deleted_bytes_limit: gauge(
                &r,
                "logferry_tail_deleted_bytes_limit",
                "Configured source.max_deleted_bytes: unread bytes of held-open deleted files (and spool bytes) beyond it are lost.",
            ),
            tail_spool_files: gauge(
                &r,
                "logferry_tail_spool_files",
                "Deleted log files whose unacknowledged bytes are copied to data_dir/spool.",
            ),
            tail_spool_bytes: gauge(
                &r,
                "logferry_tail_spool_bytes",
                "Bytes of the copies in data_dir/spool.",
            ),
            kubernetes_pods: gauge(&r, "logferry_kubernetes_pods", "Pods in the metadata store."),
            kubernetes_store_synced: gauge(
                &r,
                "logferry_kubernetes_store_synced",
                "1 when the pod metadata store is in sync with the API server.",
            ),
            kubernetes_watch_restarts: counter_vec(
                &r,
                "logferry_kubernetes_watch_restarts_total",
                "Watch restarts (re-lists) against the API server.",
                "resource",
            ),
            kubernetes_api_errors: counter_vec(
                &r,
                "logferry_kubernetes_api_errors_total",
                "Errors from the Kubernetes API.",
                "reason",
            ),
            records_without_metadata: counter_vec(
                &r,
                "logferry_pipeline_records_without_metadata_total",
                "Records shipped with only the metadata their file path carries.",
                "reason",
            ),
            dropped_records: counter_vec(
                &r,
                "logferry_pipeline_dropped_records_total",
                "Records dropped on purpose (exclusion, min_level).",
                "reason",
            ),
            airflow_records_without_log_id: counter(
                &r,
                "logferry_airflow_records_without_log_id_total",
                "Records of an Airflow-enabled source shipped without log_id/offset: neither the record, its pod, its path nor the configuration named the task.",
            ),
            json_messages_not_parsed: counter_vec(
                &r,
                "logferry_pipeline_json_messages_not_parsed_total",
                "Messages that looked like JSON objects but were shipped as text only (json_message: too large, too deep, too many fields, invalid).",
                "reason",
            ),
            es_sent_records: counter(
                &r,
                "logferry_elasticsearch_sent_records_total",
                "Records Elasticsearch accepted (created, or already present).",
            ),
            es_sent_bytes: counter(
                &r,
                "logferry_elasticsearch_sent_bytes_total",
                "Bulk body bytes of accepted records (before compression).",
            ),
            es_duplicate_records: counter(
                &r,
                "logferry_elasticsearch_duplicate_records_total",
                "Records already indexed (409 on create), counted as delivered.",
            ),
            es_bulk_requests: counter_vec(
                &r,
                "logferry_elasticsearch_bulk_requests_total",
                "Bulk requests by outcome.",
                "outcome",
            ),
            es_bulk_duration,
            es_item_errors: counter_vec(
                &r,
                "logferry_elasticsearch_item_errors_total",
                "Bulk item errors by reason.",
                "reason",
            ),
            es_retried_records: counter(
                &r,
                "logferry_elasticsearch_retried_records_total",
                "Records sent again after a retryable failure.",
            ),
            es_dead_lettered_records: counter_vec(
                &r,
                "logferry_elasticsearch_dead_lettered_records_total",
                "Records with non-retryable errors written to the dead-letter index or file.",
                "destination",
            ),
            es_in_flight_requests: gauge(
                &r,
                "logferry_elasticsearch_in_flight_requests",
                "Bulk requests in flight.",
            ),
            stdout_written_records: counter(
                &r,
                "logferry_stdout_written_records_total",
                "Documents written by the stdout sink.",
            ),
            checkpoint_writes: counter_vec(
                &r,
                "logferry_checkpoint_writes_total",
                "Writes of logferry's files in data_dir (checkpoints, spool copies of deleted files, pods.json), failed ones included.",
                "file",
            ),
            checkpoint_write_errors: counter_vec(
                &r,
                "logferry_checkpoint_write_errors_total",
                "Failed writes in data_dir (a full disk, I/O errors); retried with backoff while shipping goes on, /readyz is 503 meanwhile.",
                "file",
            ),
            shutdown_drain_timeouts: counter(
                &r,
                "logferry_shutdown_drain_timeouts_total",
                "Shutdowns whose drain timeout fired with records not delivered (they are read again at the next start).",
            ),
            nats: NatsMetrics::register(&r),
            es_dead_letter_file_full: counter(
                &r,
                "logferry_elasticsearch_dead_letter_file_full_total",
                "Refused documents held unacknowledged because the dead-letter file and its rotated copies are full (counted per write attempt).",
            ),
            tail_paused: PausedClock::register(&r),
            freshness: Arc::new(Freshness::new(pipeline_lag)),
            kubernetes_watch_enabled: gauge(
                &r,
                "logferry_kubernetes_watch_enabled",
                "1 when the daemon watches the API server for pod metadata (0 in files or NATS mode, with kubernetes.enabled false, or without an API configuration).",
            ),
            registry: r,
        };
        m.kubernetes_store_synced.set(0);
        // Every series of a closed label set exists from the first scrape
        // (at 0), so that rate() and alerts see the first increment.
        let labels = |l: &[&'static str]| l.to_vec();
        for (vec, labels) in [
            (
                &m.tail_rotations,
                RotationKind::ALL.iter().map(|k| k.as_label()).collect(),
            ),
            (
                &m.tail_lost_bytes,
                LossReason::ALL.iter().map(|r| r.as_label()).collect(),
            ),
            (
                &m.tail_files_refused,
                RefusalReason::ALL.iter().map(|r| r.as_label()).collect(),
            ),
            (
                &m.tail_rescans,
                RescanReason::ALL.iter().map(|r| r.as_label()).collect(),
            ),
            (&m.kubernetes_watch_restarts, labels(WATCHED_RESOURCES)),
            (&m.kubernetes_api_errors, labels(KubeError::API_LABELS)),
            (
                &m.records_without_metadata,
                PathOnlyReason::ALL
                    .iter()
                    .map(|r| r.as_label())
                    .chain([STORE_DISABLED])
                    .collect(),
            ),
            (&m.dropped_records, labels(DROP_REASONS)),
            (
                &m.json_messages_not_parsed,
                JsonSkipReason::ALL.iter().map(|r| r.as_label()).collect(),
            ),
            (
                &m.es_bulk_requests,
                BulkOutcome::ALL.iter().map(|o| o.as_label()).collect(),
            ),
            (
                &m.es_item_errors,
                ItemErrorReason::ALL.iter().map(|r| r.as_label()).collect(),
            ),
            (
                &m.es_dead_lettered_records,
                labels(DEAD_LETTER_DESTINATIONS),
            ),
            (&m.checkpoint_writes, labels(STATE_FILES)),
            (&m.checkpoint_write_errors, labels(STATE_FILES)),
        ] {
            let labels: Vec<&str> = labels;
            for label in labels {
                vec.with_label_values(&[label]);
            }
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.tail_paused.flush();
        self.freshness.update_now();
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        String::from_utf8(out).expect("text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_tail::StateFile;

    /// The tailer's files are among the `file` labels (with the pod store's `pods`).
    #[test]
    fn every_state_file_has_a_label() {
        for f in StateFile::ALL {
            assert!(STATE_FILES.contains(&f.as_label()), "{f:?}");
        }
    }

    /// Every label value of the libraries' closed sets has its series at 0
    /// from the first scrape.
    #[test]
    fn every_library_label_is_pre_registered() {
        let text = Metrics::new("test").render();
        let labels = RotationKind::ALL
            .iter()
            .map(|k| k.as_label())
            .chain(LossReason::ALL.iter().map(|r| r.as_label()))
            .chain(RefusalReason::ALL.iter().map(|r| r.as_label()))
            .chain(RescanReason::ALL.iter().map(|r| r.as_label()))
            .chain(PathOnlyReason::ALL.iter().map(|r| r.as_label()))
            .chain(KubeError::API_LABELS.iter().copied())
            .chain(WATCHED_RESOURCES.iter().copied())
            .chain(BulkOutcome::ALL.iter().map(|o| o.as_label()))
            .chain(ItemErrorReason::ALL.iter().map(|r| r.as_label()))
            .chain(StateFile::ALL.iter().map(|f| f.as_label()));
        for label in labels {
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("=\"{label}\"}} 0"))),
                "no series at 0 for {label}"
            );
        }
    }

    #[test]
    fn exposes_build_info_and_counters() {
        let m = Metrics::new("1.2.3");
        m.tail_read_bytes.inc_by(10);
        m.es_bulk_requests.with_label_values(&["success"]).inc();
        let text = m.render();
        assert!(
            text.contains("logferry_build_info{version=\"1.2.3\"} 1"),
            "{text}"
        );
        assert!(text.contains("logferry_tail_read_bytes_total 10"), "{text}");
        assert!(text.contains("logferry_elasticsearch_bulk_requests_total{outcome=\"success\"} 1"));
    }

    /// The families an SRE alerts on exist from the first scrape, at 0, and
    /// the standard process metrics come with them.
    #[test]
    fn freshness_pause_and_process_metrics_are_exported_from_the_start() {
        let text = Metrics::new("test").render();
        for line in [
            "logferry_pipeline_lag_seconds 0",
            "logferry_tail_paused 0",
            "logferry_tail_paused_seconds_total 0",
            "logferry_kubernetes_watch_enabled 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{family} "))),
                "no {family} in\n{text}"
            );
        }
    }

    /// The paused-seconds counter grows during a pause, at each scrape, and
    /// stops growing once reading resumes.
    #[test]
    fn paused_seconds_grow_while_paused_and_stop_when_resumed() {
        let m = Metrics::new("test");
        m.tail_paused.set(true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        m.render();
        let during = m.tail_paused.seconds.get();
        assert!(during >= 0.02, "{during}");
        assert_eq!(m.tail_paused.paused.get(), 1);
        m.tail_paused.set(false);
        let after = m.tail_paused.seconds.get();
        std::thread::sleep(std::time::Duration::from_millis(20));
        m.render();
        assert_eq!(m.tail_paused.seconds.get(), after);
        assert_eq!(m.tail_paused.paused.get(), 0);
    }
}
