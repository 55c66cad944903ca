//! Measurements the NATS source and publisher report; the binary turns them
//! into metrics (this crate has no metrics registry). Called per batch or
//! per connection event, never per message.

/// Why core NATS messages were lost (the closed label set of
/// `logferry_nats_dropped_total{reason}`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// The client's subscription buffer was full (logferry did not keep up);
    /// the count is the number of messages the client discarded.
    SlowConsumer,
    /// The connection was lost; messages published until the reconnect
    /// were not delivered to this subscriber (core NATS keeps nothing). The
    /// count is the number of such gaps: the number of messages missed is
    /// not knowable by a subscriber.
    ReconnectGap,
}

impl DropReason {
    /// The metric label.
    pub fn as_label(self) -> &'static str {
        match self {
            DropReason::SlowConsumer => "slow_consumer",
            DropReason::ReconnectGap => "reconnect_gap",
        }
    }
}

/// Receives the source's and publisher's measurements. Every method has an
/// empty default.
pub trait NatsEvents: Send + Sync + 'static {
    /// The connection state changed (`true`: connected).
    fn connected(&self, _connected: bool) {}
    /// A reconnect after a lost connection; `gap_seconds` is how long it was down.
    fn reconnected(&self, _gap_seconds: f64) {}
    /// A connection attempt failed (`reason`: `io`, `timeout`, `tls`, `dns`, `auth`, `other`).
    fn connect_error(&self, _reason: &'static str) {}
    /// Messages received (`records`) and their payload `bytes`.
    fn received(&self, _records: u64, _bytes: u64) {}
    /// Payloads that looked like JSON but did not parse (shipped as text).
    fn malformed(&self, _records: u64) {}
    /// Messages not shipped because of their subject (`source.exclude` / `include`).
    fn filtered(&self, _records: u64) {}
    /// Core NATS messages lost (see [`DropReason`]).
    fn dropped(&self, _reason: DropReason, _count: u64) {}
    /// JetStream messages acknowledged after the sink delivered them.
    fn acked(&self, _records: u64) {}
    /// A JetStream consumer error (pull failure, missed heartbeat…); the
    /// consumer is resumed.
    fn consumer_error(&self, _reason: &'static str) {}
    /// Records published and acknowledged by JetStream (`duplicates` of them
    /// were already in the stream's duplicate window).
    fn published(&self, _records: u64, _duplicates: u64) {}
    /// Publishes that failed and will be retried (`reason`: `timeout`, `no_stream`, `other`).
    fn publish_error(&self, _reason: &'static str, _records: u64) {}
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopEvents;

impl NatsEvents for NoopEvents {}
