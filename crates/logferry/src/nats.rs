//! NATS in the daemon: the [`NatsEvents`] implementation on the NATS
//! metrics, and the `nats` sink stage
//! (documents encoded like the Elasticsearch sink's, published to JetStream
//! with their deterministic id as `Nats-Msg-Id`, a batch acknowledged only
//! when every PubAck arrived).

use crate::metrics::Metrics;
use logferry_core::{Acker, RecordBatch};
use logferry_elasticsearch::{DocumentEncoder, DocumentOptions};
use logferry_nats::{DropReason, NatsEvents, Outgoing, Publisher, SinkConfig, SubjectTemplate};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// [`NatsEvents`] for the daemon.
pub struct DaemonNatsEvents {
    metrics: Arc<Metrics>,
}

impl DaemonNatsEvents {
    /// Reports to `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        DaemonNatsEvents { metrics }
    }
}

impl NatsEvents for DaemonNatsEvents {
    fn connected(&self, connected: bool) {
        self.metrics.nats.connected.set(i64::from(connected));
    }
    fn reconnected(&self, gap_seconds: f64) {
        self.metrics.nats.reconnects.inc();
        self.metrics.nats.reconnect_gap_seconds.inc_by(gap_seconds);
    }
    fn connect_error(&self, reason: &'static str) {
        self.metrics
            .nats
            .connect_errors
            .with_label_values(&[reason])
            .inc();
    }
    fn received(&self, records: u64, bytes: u64) {
        self.metrics.nats.received_records.inc_by(records);
        self.metrics.nats.received_bytes.inc_by(bytes);
    }
    fn malformed(&self, records: u64) {
        self.metrics.nats.malformed_records.inc_by(records);
    }
    fn filtered(&self, records: u64) {
        self.metrics
            .dropped_records
            .with_label_values(&["excluded"])
            .inc_by(records);
    }
    fn dropped(&self, reason: DropReason, count: u64) {
        if reason == DropReason::SlowConsumer {
            tracing::warn!(
                count,
                "NATS slow consumer: the client discarded messages (core NATS, at-most-once)"
            );
        }
        self.metrics
            .nats
            .dropped
            .with_label_values(&[reason.as_label()])
            .inc_by(count);
    }
    fn acked(&self, records: u64) {
        self.metrics.nats.acked_records.inc_by(records);
    }
    fn consumer_error(&self, reason: &'static str) {
        self.metrics
            .nats
            .consumer_errors
            .with_label_values(&[reason])
            .inc();
    }
    fn published(&self, records: u64, duplicates: u64) {
        self.metrics.nats.published_records.inc_by(records);
        self.metrics.nats.publish_duplicates.inc_by(duplicates);
    }
    fn publish_error(&self, reason: &'static str, records: u64) {
        self.metrics
            .nats
            .publish_errors
            .with_label_values(&[reason])
            .inc_by(records);
    }
}

/// The `nats` sink: encodes every record of a batch (the documents the
/// Elasticsearch sink would index), publishes them to JetStream on the
/// subject rendered from the template with `Nats-Msg-Id` = the document id
/// (scoped like the Elasticsearch sink's, so either path indexes the same `_id`),
/// and acknowledges the batch once JetStream acknowledged every record.
///
/// Returns whether `hard_stop` (the drain timeout) ended it with records
/// unpublished: they are not acknowledged, so they are read again after the
/// restart.
///
/// # Errors
/// Connecting failed for good (refused credentials; unreachable without
/// `retry_on_start`).
pub async fn sink(
    mut input: mpsc::Receiver<RecordBatch>,
    acker: Acker,
    config: SinkConfig,
    options: DocumentOptions,
    metrics: Arc<Metrics>,
    hard_stop: CancellationToken,
) -> Result<bool, logferry_nats::Error> {
    let template = SubjectTemplate::parse(&config.subject).map_err(logferry_nats::Error::Config)?;
    let host = options.host_name.clone();
    let scope = options.id_scope.clone();
    let events = Arc::new(DaemonNatsEvents::new(metrics));
    let publisher = match Publisher::connect(config, events, &hard_stop).await {
        Ok(p) => p,
        Err(logferry_nats::Error::Cancelled) => return Ok(!input.is_empty()),
        Err(e) => return Err(e),
    };
    let mut encoder = DocumentEncoder::new(options);
    let mut messages: Vec<Outgoing> = Vec::new();
    let mut stopped_early = false;
    while let Some(batch) = input.recv().await {
        messages.clear();
        let subject = template.render(&batch.source, batch.meta.as_deref(), host.as_deref());
        for record in &batch.records {
            let mut doc = Vec::with_capacity(record.message.len() + 512);
            encoder.encode(&batch, record, &mut doc);
            let id = DocumentEncoder::document_id_in(&scope, &batch.source, record);
            messages.push(Outgoing {
                subject: subject.clone(),
                id: String::from_utf8_lossy(&id).into_owned(),
                payload: doc.into(),
            });
        }
        encoder.save_airflow_state(false);
        match publisher.publish_all(&messages, &hard_stop).await {
            Ok(()) => acker.ack(batch.ack),
            Err(_) => {
                stopped_early = true;
                break;
            }
        }
    }
    encoder.save_airflow_state(true);
    publisher.flush().await;
    Ok(stopped_early)
}
