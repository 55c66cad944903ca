//! The source: a core NATS subscription (at-most-once) or a durable
//! JetStream pull consumer (at-least-once, acknowledged after delivery).

use crate::config::{JetStreamConsumer, SourceConfig};
use crate::connect::{connect, GapAccounting};
use crate::error::Error;
use crate::events::NatsEvents;
use crate::payload::{decode, PayloadOptions};
use crate::subject::SubjectFilter;
use async_nats::jetstream;
use base64::Engine as _;
use bytes::Bytes;
use futures::{FutureExt, Stream, StreamExt};
use logferry_core::{
    AckToken, FileId, LogFormat, Record, RecordBatch, RecordFlags, Source, SourceId,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a source run did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SourceSummary {
    /// Messages received.
    pub records: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// JetStream messages acknowledged (0 for core NATS).
    pub acked: u64,
}

/// The identity bytes of a JetStream message: the producer's `Nats-Msg-Id`
/// (its 16 bytes when it is a 22-character URL-safe base64 id, as logferry's
/// `nats` sink writes it, so the document keeps the `_id` the node gave it;
/// otherwise the XXH3-128 hash of the id), or else the XXH3-128 hash of the
/// stream name and the stream sequence.
pub fn message_identity(msg_id: Option<&str>, stream: &str, sequence: u64) -> [u8; 16] {
    if let Some(id) = msg_id.filter(|s| !s.is_empty()) {
        if id.len() == 22 {
            let mut out = [0u8; 16];
            if let Ok(16) = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode_slice(id.as_bytes(), &mut out)
            {
                return out;
            }
        }
        return xxhash_rust::xxh3::xxh3_128(id.as_bytes()).to_le_bytes();
    }
    let mut key = Vec::with_capacity(stream.len() + 9);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key.extend_from_slice(&sequence.to_le_bytes());
    xxhash_rust::xxh3::xxh3_128(&key).to_le_bytes()
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Reads NATS messages into [`RecordBatch`]es of
/// [`RecordFlags::DOCUMENT`] records (see [`crate::payload`] for the
/// documents).
pub struct NatsSource {
    config: SourceConfig,
    events: Arc<dyn NatsEvents>,
}

/// One message as the batcher sees it.
struct Incoming<'a> {
    subject: &'a str,
    payload: &'a [u8],
    identity: [u8; 16],
    received_nanos: i64,
}

struct Batcher {
    source: Arc<Source>,
    next_seq: u64,
    payload: PayloadOptions,
    filter: SubjectFilter,
    events: Arc<dyn NatsEvents>,
    summary: SourceSummary,
}

impl Batcher {
    /// Turns messages into records; returns the batch (if any record is
    /// left after the subject filter) and its sequence number.
    fn build<'a>(&mut self, msgs: impl IntoIterator<Item = Incoming<'a>>) -> Option<RecordBatch> {
        let mut records = Vec::new();
        let (mut n, mut bytes, mut malformed, mut filtered) = (0u64, 0u64, 0u64, 0u64);
        for m in msgs {
            n += 1;
            bytes += m.payload.len() as u64;
            if !self.filter.accepts(m.subject) {
                filtered += 1;
                continue;
            }
            let d = decode(m.payload, m.subject, m.received_nanos, &self.payload);
            let mut flags = RecordFlags::DOCUMENT;
            if d.malformed {
                malformed += 1;
                flags |= RecordFlags::UNPARSED;
            }
            let (start, end) = Record::identity_halves(m.identity);
            records.push(Record {
                start,
                end,
                timestamp_nanos: d.timestamp_nanos,
                stream: logferry_core::Stream::Stdout,
                flags,
                message: Bytes::from(d.document),
            });
        }
        self.events.received(n, bytes);
        self.summary.records += n;
        self.summary.bytes += bytes;
        if malformed > 0 {
            self.events.malformed(malformed);
            tracing::debug!(
                malformed,
                "NATS payloads that are not valid JSON shipped as text"
            );
        }
        if filtered > 0 {
            self.events.filtered(filtered);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        (!records.is_empty()).then(|| RecordBatch {
            source: self.source.clone(),
            ack: AckToken {
                source: self.source.id,
                seq,
            },
            records,
            meta: None,
        })
    }
}

type Subscription = Pin<Box<dyn Stream<Item = async_nats::Message> + Send>>;

impl NatsSource {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] with every problem.
    pub fn new(config: SourceConfig, events: Arc<dyn NatsEvents>) -> Result<Self, Error> {
        config.validate().map_err(|problems| {
            Error::Config(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(NatsSource { config, events })
    }

    fn batcher(&self, path: String) -> Batcher {
        Batcher {
            source: Arc::new(Source {
                id: SourceId(0),
                file: FileId {
                    dev: 0,
                    ino: 0,
                    fingerprint: 0,
                },
                path: PathBuf::from(path),
                kube: None,
                container_id: None,
                format: LogFormat::Plain,
            }),
            next_seq: 0,
            payload: self.config.payload.clone(),
            filter: SubjectFilter::new(self.config.include.clone(), self.config.exclude.clone()),
            events: self.events.clone(),
            summary: SourceSummary::default(),
        }
    }

    /// Reads until `stop`, sending batches to `out`.
    ///
    /// Core NATS: batches are not acknowledged anywhere (`acks` is dropped);
    /// on `stop` the subscriptions end. JetStream: each message is
    /// acknowledged to JetStream when its batch's [`AckToken`] arrives on
    /// `acks`; on `stop` reading ends, `out` is closed, and acknowledgements
    /// are still sent until every sender of `acks` is gone.
    ///
    /// # Errors
    /// Connecting failed for good ([`Error::Auth`], or any failure without
    /// `retry_on_start`), or stopped while connecting ([`Error::Cancelled`]).
    pub async fn run(
        self,
        out: mpsc::Sender<RecordBatch>,
        acks: mpsc::UnboundedReceiver<AckToken>,
        stop: CancellationToken,
    ) -> Result<SourceSummary, Error> {
        match self.config.jetstream.clone() {
            None => {
                drop(acks);
                self.run_core(out, stop).await
            }
            Some(js) => self.run_jetstream(js, out, acks, stop).await,
        }
    }

    async fn run_core(
        self,
        out: mpsc::Sender<RecordBatch>,
        stop: CancellationToken,
    ) -> Result<SourceSummary, Error> {
        let c = &self.config;
        let client = connect(
            &c.connection,
            self.events.clone(),
            GapAccounting::Count,
            c.subscription_capacity,
            &stop,
        )
        .await?;
        let mut subs: Vec<Subscription> = Vec::new();
        for subject in &c.subjects {
            let sub = match &c.queue_group {
                Some(q) => client.queue_subscribe(subject.clone(), q.clone()).await,
                None => client.subscribe(subject.clone()).await,
            }
            .map_err(|source| Error::Subscribe {
                subject: subject.clone(),
                source,
            })?;
            // A message matching several patterns is delivered once per
            // subscription; only the first matching subscription keeps it.
            let earlier: Vec<String> = c.subjects[..subs.len()].to_vec();
            subs.push(Box::pin(sub.filter(move |m| {
                let first = !earlier
                    .iter()
                    .any(|p| crate::subject::matches(p, m.subject.as_str()));
                std::future::ready(first)
            })));
        }
        tracing::info!(
            subjects = ?c.subjects,
            queue_group = c.queue_group.as_deref().unwrap_or(""),
            "subscribed to NATS (core NATS: at-most-once)"
        );
        let mut merged = futures::stream::select_all(subs);
        let mut batcher = self.batcher(format!("nats:{}", c.subjects.join(",")));
        // Identities of core NATS messages: unique, not reproducible (a
        // message is never delivered twice).
        let prefix = xxhash_rust::xxh3::xxh3_64(
            &[
                now_nanos().to_le_bytes(),
                i64::from(std::process::id()).to_le_bytes(),
            ]
            .concat(),
        );
        let mut counter = 0u64;
        let max = c.batch_max_records;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                m = merged.next() => m,
            };
            let Some(first) = first else { break };
            let mut msgs = vec![first];
            while msgs.len() < max {
                match merged.next().now_or_never() {
                    Some(Some(m)) => msgs.push(m),
                    _ => break,
                }
            }
            let received = now_nanos();
            let batch = batcher.build(msgs.iter().map(|m| {
                counter += 1;
                let mut identity = [0u8; 16];
                identity[..8].copy_from_slice(&prefix.to_le_bytes());
                identity[8..].copy_from_slice(&counter.to_le_bytes());
                Incoming {
                    subject: m.subject.as_str(),
                    payload: &m.payload,
                    identity,
                    received_nanos: received,
                }
            }));
            if let Some(batch) = batch {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    r = out.send(batch) => if r.is_err() { break },
                }
            }
        }
        drop(merged);
        let _ = client.flush().await;
        Ok(batcher.summary)
    }

    async fn open_consumer(
        &self,
        js: &jetstream::Context,
        cfg: &JetStreamConsumer,
    ) -> Result<jetstream::consumer::pull::Stream, Error> {
        let op = |what: &str| format!("{what} (stream {}, durable {})", cfg.stream, cfg.durable);
        let stream = js
            .get_stream(&cfg.stream)
            .await
            .map_err(|e| Error::JetStream {
                operation: op("stream lookup"),
                source: Box::new(e),
            })?;
        let filter_subject = match self.config.subjects.first().map(String::as_str) {
            None | Some(">") => String::new(),
            Some(s) => s.to_owned(),
        };
        let consumer = stream
            .get_or_create_consumer(
                &cfg.durable,
                jetstream::consumer::pull::Config {
                    durable_name: Some(cfg.durable.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: cfg.ack_wait,
                    max_ack_pending: i64::try_from(cfg.max_ack_pending).unwrap_or(i64::MAX),
                    deliver_policy: jetstream::consumer::DeliverPolicy::All,
                    filter_subject,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Error::JetStream {
                operation: op("consumer create"),
                source: Box::new(e),
            })?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.batch_max_records)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| Error::JetStream {
                operation: op("pull"),
                source: Box::new(e),
            })
    }

    async fn run_jetstream(
        self,
        cfg: JetStreamConsumer,
        out: mpsc::Sender<RecordBatch>,
        mut acks: mpsc::UnboundedReceiver<AckToken>,
        stop: CancellationToken,
    ) -> Result<SourceSummary, Error> {
        let c = &self.config;
        let client = connect(
            &c.connection,
            self.events.clone(),
            GapAccounting::Ignore,
            c.subscription_capacity,
            &stop,
        )
        .await?;
        let js = jetstream::new(client.clone());
        let mut batcher = self.batcher(format!("nats:{}/{}", cfg.stream, cfg.durable));
        let mut pending: HashMap<u64, Vec<jetstream::message::Acker>> = HashMap::new();
        let mut out = Some(out);
        let mut staged: Option<RecordBatch> = None;
        let mut messages: Option<jetstream::consumer::pull::Stream> = None;
        let mut attempt = 0usize;
        let retry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(retry);
        let mut acked = 0u64;
        let max = c.batch_max_records;
        loop {
            let reading = out.is_some();
            let step = tokio::select! {
                biased;
                token = acks.recv() => Step::Ack(token),
                _ = stop.cancelled(), if reading => Step::Stop,
                permit = async { out.clone().expect("reading").reserve_owned().await }, if reading && staged.is_some() => Step::Send(permit.ok()),
                _ = &mut retry, if reading && messages.is_none() => Step::Open,
                items = next_items(messages.as_mut(), max), if reading && staged.is_none() && messages.is_some() => Step::Items(items),
            };
            match step {
                Step::Ack(None) => break,
                Step::Ack(Some(token)) => {
                    if let Some(ackers) = pending.remove(&token.seq) {
                        let n = ackers.len() as u64;
                        for a in ackers {
                            if let Err(e) = a.ack().await {
                                tracing::debug!(error = %e, "JetStream ack not sent; the message will be delivered again");
                            }
                        }
                        acked += n;
                        self.events.acked(n);
                    }
                }
                Step::Stop => {
                    tracing::info!(
                        unacknowledged_batches = pending.len(),
                        "NATS source stopping: no more pulls; acknowledging what the sink delivers"
                    );
                    out = None;
                    staged = None;
                    messages = None;
                }
                Step::Send(Some(permit)) => {
                    permit.send(staged.take().expect("staged"));
                }
                Step::Send(None) => {
                    out = None;
                    staged = None;
                    messages = None;
                }
                Step::Open => match self.open_consumer(&js, &cfg).await {
                    Ok(s) => {
                        attempt = 0;
                        tracing::info!(stream = %cfg.stream, durable = %cfg.durable, "reading JetStream consumer (at-least-once)");
                        messages = Some(s);
                    }
                    Err(e) => {
                        self.events.consumer_error("setup");
                        let delay = c.connection.reconnect.delay(attempt);
                        attempt += 1;
                        tracing::warn!(
                            error = %e,
                            cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default(),
                            retry_in = ?delay,
                            "JetStream consumer not available; retrying"
                        );
                        retry.as_mut().reset(tokio::time::Instant::now() + delay);
                    }
                },
                Step::Items(items) => {
                    let mut got = Vec::with_capacity(items.len());
                    let mut failed = None;
                    for item in items {
                        match item {
                            Some(Ok(m)) => got.push(m),
                            Some(Err(e)) => {
                                failed = Some(e.to_string());
                                break;
                            }
                            None => {
                                failed = Some("pull stream ended".to_owned());
                                break;
                            }
                        }
                    }
                    if let Some(reason) = failed {
                        self.events.consumer_error("pull");
                        tracing::warn!(error = %reason, "JetStream pull interrupted; resuming the consumer");
                        messages = None;
                        let delay = c.connection.reconnect.delay(attempt);
                        attempt += 1;
                        retry.as_mut().reset(tokio::time::Instant::now() + delay);
                    }
                    if got.is_empty() {
                        continue;
                    }
                    let mut ackers = Vec::with_capacity(got.len());
                    let mut incoming = Vec::with_capacity(got.len());
                    for m in got {
                        let (identity, received) = match m.info() {
                            Ok(info) => {
                                let id = m
                                    .headers
                                    .as_ref()
                                    .and_then(|h| h.get("Nats-Msg-Id"))
                                    .map(|v| v.as_str());
                                (
                                    message_identity(id, info.stream, info.stream_sequence),
                                    i64::try_from(info.published.unix_timestamp_nanos())
                                        .unwrap_or(0),
                                )
                            }
                            Err(_) => (message_identity(None, &cfg.stream, 0), now_nanos()),
                        };
                        let (msg, acker) = m.split();
                        ackers.push(acker);
                        incoming.push((msg, identity, received));
                    }
                    let seq = batcher.next_seq;
                    let batch =
                        batcher.build(incoming.iter().map(|(m, identity, received)| Incoming {
                            subject: m.subject.as_str(),
                            payload: &m.payload,
                            identity: *identity,
                            received_nanos: *received,
                        }));
                    match batch {
                        Some(b) => {
                            pending.insert(seq, ackers);
                            staged = Some(b);
                        }
                        None => {
                            // Every message filtered out: done with them.
                            for a in ackers {
                                let _ = a.ack().await;
                            }
                        }
                    }
                }
            }
        }
        let _ = client.flush().await;
        batcher.summary.acked = acked;
        Ok(batcher.summary)
    }
}

/// One turn of the JetStream loop.
enum Step {
    Ack(Option<AckToken>),
    Stop,
    Send(Option<mpsc::OwnedPermit<RecordBatch>>),
    Open,
    Items(Vec<PullItem>),
}

type PullItem = Option<
    Result<
        jetstream::Message,
        async_nats::error::Error<jetstream::consumer::pull::MessagesErrorKind>,
    >,
>;

/// The next message, and those that are ready right after it (up to `max`).
async fn next_items(
    messages: Option<&mut jetstream::consumer::pull::Stream>,
    max: usize,
) -> Vec<PullItem> {
    let messages = messages.expect("only polled while open");
    let mut items = vec![messages.next().await];
    while items.len() < max && matches!(items.last(), Some(Some(Ok(_)))) {
        match messages.next().now_or_never() {
            Some(i) => items.push(i),
            None => break,
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_come_from_the_message_id_or_the_sequence() {
        let node_id = "AAECAwQFBgcICQoLDA0ODw";
        let bytes = message_identity(Some(node_id), "LOGS", 9);
        assert_eq!(
            bytes,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        assert_eq!(
            message_identity(Some("order-17"), "LOGS", 1),
            message_identity(Some("order-17"), "OTHER", 2)
        );
        assert_ne!(
            message_identity(None, "LOGS", 1),
            message_identity(None, "LOGS", 2)
        );
        assert_ne!(
            message_identity(None, "LOGS", 1),
            message_identity(None, "LOGS2", 1)
        );
    }
}
