//! The `logferry_nats_*` metric families of the NATS source and sink
//! (the daemon's [`crate::nats`] module increments them).

use prometheus::{Counter, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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
