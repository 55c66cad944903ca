//! NATS in the daemon: the metrics of the NATS source and sink, the
//! [`NatsEvents`] implementation on them, and the `nats` sink stage
//! (documents encoded like the Elasticsearch sink's, published to JetStream
//! with their deterministic id as `Nats-Msg-Id`, a batch acknowledged only
//! when every PubAck arrived).

use crate::metrics::Metrics;
use logferry_core::{Acker, RecordBatch};
use logferry_elasticsearch::{DocumentEncoder, DocumentOptions};
use logferry_nats::{DropReason, NatsEvents, Outgoing, Publisher, SinkConfig, SubjectTemplate};
use prometheus::{Counter, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The `logferry_nats_*` metric families.
pub struct NatsMetrics {
    /// 1 while connected to a NATS server.
    pub connected: IntGauge,
    /// Reconnects after a lost connection.
    pub reconnects: IntCounter,
    /// Seconds spent disconnected (summed over reconnects).
    pub reconnect_gap_seconds: Counter,
    /// Failed connection attempts, by reason.
    pub connect_errors: IntCounterVec,
    /// Messages received.
    pub received_records: IntCounter,
    /// Payload bytes received.
    pub received_bytes: IntCounter,
    /// Payloads that looked like JSON and did not parse (shipped as text).
    pub malformed_records: IntCounter,
    /// Core NATS loss, by reason (`slow_consumer`: messages; `reconnect_gap`: gaps).
    pub dropped: IntCounterVec,
    /// JetStream messages acknowledged after delivery.
    pub acked_records: IntCounter,
    /// JetStream consumer errors, by reason.
    pub consumer_errors: IntCounterVec,
    /// Records published and acknowledged by JetStream.
    pub published_records: IntCounter,
    /// Of those, duplicates JetStream dropped (`Nats-Msg-Id` seen in its window).
    pub publish_duplicates: IntCounter,
    /// Records whose publish failed and was repeated, by reason.
    pub publish_errors: IntCounterVec,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

impl NatsMetrics {
    /// Creates and registers the families, every closed label value at 0.
    pub fn register(r: &Registry) -> NatsMetrics {
        let counter =
            |name: &str, help: &str| reg(r, IntCounter::new(name, help).expect("valid metric"));
        let vec = |name: &str, help: &str, label: &str, values: &[&str]| {
            let v = reg(
                r,
                IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric"),
            );
            for value in values {
                v.with_label_values(&[value]);
            }
            v
        };
        NatsMetrics {
            connected: reg(
                r,
                IntGauge::new("logferry_nats_connected", "1 while connected to a NATS server.")
                    .expect("valid metric"),
            ),
            reconnects: counter(
                "logferry_nats_reconnects_total",
                "Reconnects to NATS after a lost connection.",
            ),
            reconnect_gap_seconds: reg(
                r,
                Counter::new(
                    "logferry_nats_reconnect_gap_seconds_total",
                    "Seconds spent disconnected from NATS, summed over reconnects.",
                )
                .expect("valid metric"),
            ),
            connect_errors: vec(
                "logferry_nats_connect_errors_total",
                "Failed NATS connection attempts and server errors, by reason.",
                "reason",
                &["io", "timeout", "tls", "dns", "auth", "other"],
            ),
            received_records: counter(
                "logferry_nats_received_records_total",
                "NATS messages received.",
            ),
            received_bytes: counter(
                "logferry_nats_received_bytes_total",
                "Payload bytes of the NATS messages received.",
            ),
            malformed_records: counter(
                "logferry_nats_malformed_records_total",
                "NATS payloads that looked like JSON and did not parse; shipped as text.",
            ),
            dropped: vec(
                "logferry_nats_dropped_total",
                "Core NATS loss made visible: slow_consumer counts messages the client discarded, reconnect_gap counts disconnections during which messages were missed.",
                "reason",
                &["slow_consumer", "reconnect_gap"],
            ),
            acked_records: counter(
                "logferry_nats_acked_records_total",
                "JetStream messages acknowledged after the sink delivered them.",
            ),
            consumer_errors: vec(
                "logferry_nats_consumer_errors_total",
                "JetStream consumer errors (the consumer is resumed), by reason.",
                "reason",
                &["setup", "pull"],
            ),
            published_records: counter(
                "logferry_nats_published_records_total",
                "Records published to JetStream and acknowledged (PubAck).",
            ),
            publish_duplicates: counter(
                "logferry_nats_publish_duplicates_total",
                "Published records JetStream already had (same Nats-Msg-Id within its duplicate window).",
            ),
            publish_errors: vec(
                "logferry_nats_publish_errors_total",
                "Records whose JetStream publish failed and was repeated, by reason.",
                "reason",
                &["timeout", "no_stream", "connection", "other"],
            ),
        }
    }
}

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
        match publisher.publish_all(&messages, &hard_stop).await {
            Ok(()) => acker.ack(batch.ack),
            Err(_) => {
                stopped_early = true;
                break;
            }
        }
    }
    publisher.flush().await;
    Ok(stopped_early)
}
