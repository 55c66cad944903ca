//! The libraries' events traits, implemented on the daemon's metrics.
//!
//! The tailer's file lifecycle also pins and releases pods in the metadata
//! store, so that a deleted pod's metadata lives as long as any of its files
//! is open or unread.

use crate::admin::DataDirHealth;
use crate::metrics::{Metrics, DEAD_LETTER_DESTINATIONS};
use logferry_core::Source;
use logferry_elasticsearch::{BulkOutcome, ForwarderEvents, ItemErrorReason};
use logferry_kube::{KubeEvents, PodStore};
use logferry_tail::{LossReason, RefusalReason, RescanReason, RotationKind, StateFile, TailEvents};
use std::sync::Arc;

/// [`TailEvents`] for the daemon.
pub struct DaemonTailEvents {
    metrics: Arc<Metrics>,
    store: Option<PodStore>,
    health: Arc<DataDirHealth>,
}

impl DaemonTailEvents {
    /// Reports to `metrics` and `health` (failing writes in `data_dir`);
    /// pins pods in `store` while their files are open.
    pub fn new(metrics: Arc<Metrics>, store: Option<PodStore>, health: Arc<DataDirHealth>) -> Self {
        DaemonTailEvents {
            metrics,
            store,
            health,
        }
    }
}

/// Counts one write attempt of `file` in `data_dir`.
fn count_write(metrics: &Metrics, file: &str, ok: bool) {
    metrics.checkpoint_writes.with_label_values(&[file]).inc();
    if !ok {
        metrics
            .checkpoint_write_errors
            .with_label_values(&[file])
            .inc();
    }
}

impl TailEvents for DaemonTailEvents {
    fn file_opened(&self, source: &Source) {
        if let (Some(store), Some(path)) = (&self.store, &source.kube) {
            store.pin(&path.pod_uid);
        }
    }

    fn file_released(&self, source: &Source) {
        if let (Some(store), Some(path)) = (&self.store, &source.kube) {
            store.release(&path.pod_uid);
        }
    }

    fn bytes_read(&self, bytes: u64) {
        self.metrics.tail_read_bytes.inc_by(bytes);
    }

    fn records_read(&self, records: u64) {
        self.metrics.tail_read_records.inc_by(records);
    }

    fn lines_unparsed(&self, lines: u64) {
        self.metrics.tail_unparsed_lines.inc_by(lines);
    }

    fn records_truncated(&self, records: u64) {
        self.metrics.tail_truncated_records.inc_by(records);
    }

    fn rotation_detected(&self, kind: RotationKind) {
        let label = match kind {
            RotationKind::Rename => "rename",
            RotationKind::Truncate => "truncate",
        };
        self.metrics
            .tail_rotations
            .with_label_values(&[label])
            .inc();
    }

    fn bytes_lost(&self, bytes: u64, reason: LossReason) {
        self.metrics
            .tail_lost_bytes
            .with_label_values(&[reason.as_label()])
            .inc_by(bytes);
    }

    fn file_refused(&self, reason: RefusalReason) {
        self.metrics
            .tail_files_refused
            .with_label_values(&[reason.as_label()])
            .inc();
    }

    fn rescanned(&self, reason: RescanReason) {
        self.metrics
            .tail_rescans
            .with_label_values(&[reason.as_label()])
            .inc();
    }

    fn checkpoints_written(&self, _files: usize, lag_bytes: u64) {
        self.metrics
            .tail_checkpoint_lag_bytes
            .set(i64::try_from(lag_bytes).unwrap_or(i64::MAX));
    }

    fn spool_changed(&self, files: usize, bytes: u64) {
        self.metrics.tail_spool_files.set(files as i64);
        self.metrics.tail_spool_bytes.set(bytes as i64);
    }

    fn reading_paused(&self, paused: bool) {
        self.metrics.tail_paused.set(paused);
    }

    fn state_write(&self, file: StateFile, ok: bool) {
        count_write(&self.metrics, file.as_label(), ok);
    }

    fn state_write_failing(&self, file: StateFile, failing: bool) {
        self.health.set(file.as_label(), failing);
    }

    fn files_open(&self, open: usize, deleted_open: usize) {
        self.metrics.tail_files_open.set(open as i64);
        self.metrics
            .tail_deleted_files_open
            .set(deleted_open as i64);
    }
}

/// [`KubeEvents`] for the daemon.
pub struct DaemonKubeEvents {
    metrics: Arc<Metrics>,
    health: Arc<DataDirHealth>,
}

impl DaemonKubeEvents {
    /// Reports to `metrics` and `health` (a failing `pods.json` save).
    pub fn new(metrics: Arc<Metrics>, health: Arc<DataDirHealth>) -> Self {
        DaemonKubeEvents { metrics, health }
    }
}

impl KubeEvents for DaemonKubeEvents {
    fn watch_restarted(&self, resource: &'static str) {
        self.metrics
            .kubernetes_watch_restarts
            .with_label_values(&[resource])
            .inc();
    }

    fn store_size(&self, pods: usize) {
        self.metrics.kubernetes_pods.set(pods as i64);
    }

    fn synced(&self, synced: bool) {
        self.metrics.kubernetes_store_synced.set(i64::from(synced));
    }

    fn snapshot_write(&self, ok: bool) {
        count_write(&self.metrics, "pods", ok);
        // The store retries until a save succeeds: failing until then.
        self.health.set("pods", !ok);
    }

    fn api_error(&self, reason: &'static str) {
        self.metrics
            .kubernetes_api_errors
            .with_label_values(&[reason])
            .inc();
    }
}

/// [`ForwarderEvents`] for the daemon.
pub struct DaemonForwarderEvents {
    metrics: Arc<Metrics>,
}

impl DaemonForwarderEvents {
    /// Reports to `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        DaemonForwarderEvents { metrics }
    }
}

impl ForwarderEvents for DaemonForwarderEvents {
    fn bulk_request(&self, outcome: BulkOutcome, seconds: f64) {
        self.metrics
            .es_bulk_requests
            .with_label_values(&[outcome.as_label()])
            .inc();
        self.metrics.es_bulk_duration.observe(seconds);
    }

    fn records_sent(&self, records: u64, bytes: u64) {
        self.metrics.es_sent_records.inc_by(records);
        self.metrics.es_sent_bytes.inc_by(bytes);
    }

    fn duplicates(&self, records: u64) {
        self.metrics.es_duplicate_records.inc_by(records);
    }

    fn item_errors(&self, reason: ItemErrorReason, records: u64) {
        self.metrics
            .es_item_errors
            .with_label_values(&[reason.as_label()])
            .inc_by(records);
    }

    fn retries(&self, records: u64) {
        self.metrics.es_retried_records.inc_by(records);
    }

    fn dead_lettered(&self, records: u64, to_file: bool) {
        let destination = DEAD_LETTER_DESTINATIONS[usize::from(to_file)];
        self.metrics
            .es_dead_lettered_records
            .with_label_values(&[destination])
            .inc_by(records);
    }

    fn dead_letter_file_full(&self, records: u64) {
        self.metrics.es_dead_letter_file_full.inc_by(records);
    }

    fn in_flight_requests(&self, n: usize) {
        self.metrics.es_in_flight_requests.set(n as i64);
    }

    fn airflow_records_without_log_id(&self, records: u64) {
        self.metrics.airflow_records_without_log_id.inc_by(records);
    }

    fn json_messages_not_parsed(
        &self,
        reason: logferry_elasticsearch::JsonSkipReason,
        records: u64,
    ) {
        self.metrics
            .json_messages_not_parsed
            .with_label_values(&[reason.as_label()])
            .inc_by(records);
    }
}
