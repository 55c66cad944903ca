//! The publisher: records to JetStream, each with a `Nats-Msg-Id`, done
//! only when JetStream acknowledged every one (PubAck).
//!
//! JetStream drops a message whose `Nats-Msg-Id` it stored within the
//! stream's duplicate window
//! (<https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication>),
//! so a publish repeated after a lost PubAck or a crash is not stored twice;
//! beyond the window a replay is stored again and the consumer side's
//! deterministic `_id` makes it a no-op in Elasticsearch.

use crate::config::SinkConfig;
use crate::connect::{connect, GapAccounting};
use crate::error::Error;
use crate::events::NatsEvents;
use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One message to publish.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The subject (rendered from the template).
    pub subject: String,
    /// The message id (`Nats-Msg-Id`): the record's deterministic document id.
    pub id: String,
    /// The document.
    pub payload: Bytes,
}

/// Publishes to JetStream and waits for the acknowledgements.
pub struct Publisher {
    js: jetstream::Context,
    client: async_nats::Client,
    config: SinkConfig,
    events: Arc<dyn NatsEvents>,
}

fn error_label(kind: PublishErrorKind) -> &'static str {
    match kind {
        PublishErrorKind::TimedOut => "timeout",
        PublishErrorKind::StreamNotFound => "no_stream",
        PublishErrorKind::BrokenPipe => "connection",
        _ => "other",
    }
}

impl Publisher {
    /// Connects (retrying at start as configured) and creates the stream when
    /// configured and missing.
    ///
    /// # Errors
    /// [`Error::Config`], [`Error::Auth`], [`Error::Connect`] (without
    /// `retry_on_start`), [`Error::Cancelled`]. A stream that cannot be
    /// created yet is retried until `stop`.
    pub async fn connect(
        config: SinkConfig,
        events: Arc<dyn NatsEvents>,
        stop: &CancellationToken,
    ) -> Result<Publisher, Error> {
        config.validate().map_err(|problems| {
            Error::Config(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let client = connect(
            &config.connection,
            events.clone(),
            GapAccounting::Ignore,
            1024,
            stop,
        )
        .await?;
        let js = jetstream::new(client.clone());
        if let Some(s) = &config.stream {
            let mut attempt = 0usize;
            loop {
                let r = js
                    .get_or_create_stream(jetstream::stream::Config {
                        name: s.name.clone(),
                        subjects: s.subjects.clone(),
                        duplicate_window: s.duplicate_window,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(_) => break,
                    Err(e) => {
                        let delay = config.retry.delay(attempt);
                        attempt += 1;
                        tracing::warn!(stream = %s.name, error = %e, retry_in = ?delay, "cannot create the JetStream stream; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = stop.cancelled() => return Err(Error::Cancelled),
                        }
                    }
                }
            }
        }
        Ok(Publisher {
            js,
            client,
            config,
            events,
        })
    }

    /// Publishes every message and returns once JetStream acknowledged each
    /// one (a duplicate counts as acknowledged). Failed publishes are
    /// repeated with backoff, without limit.
    ///
    /// # Errors
    /// [`Error::Cancelled`] when `stop` fires first; some messages may then
    /// be stored, and the caller must not treat the batch as delivered.
    pub async fn publish_all(
        &self,
        messages: &[Outgoing],
        stop: &CancellationToken,
    ) -> Result<(), Error> {
        let mut todo: Vec<usize> = (0..messages.len()).collect();
        let mut attempt = 0usize;
        while !todo.is_empty() {
            let mut failed = Vec::new();
            let mut first_error: Option<(&'static str, String)> = None;
            let (mut ok, mut dups) = (0u64, 0u64);
            for chunk in todo.chunks(self.config.max_in_flight) {
                let mut acks = FuturesUnordered::new();
                for &i in chunk {
                    let m = &messages[i];
                    let mut headers = HeaderMap::new();
                    headers.insert("Nats-Msg-Id", m.id.as_str());
                    let sent = tokio::select! {
                        r = self.js.publish_with_headers(m.subject.clone(), headers, m.payload.clone()) => r,
                        _ = stop.cancelled() => return Err(Error::Cancelled),
                    };
                    match sent {
                        Ok(fut) => acks.push(async move {
                            (
                                i,
                                tokio::time::timeout(
                                    self.config.ack_timeout,
                                    std::future::IntoFuture::into_future(fut),
                                )
                                .await,
                            )
                        }),
                        Err(e) => {
                            first_error.get_or_insert((error_label(e.kind()), e.to_string()));
                            failed.push(i);
                        }
                    }
                }
                loop {
                    let next = tokio::select! {
                        n = acks.next() => n,
                        _ = stop.cancelled() => return Err(Error::Cancelled),
                    };
                    let Some((i, r)) = next else { break };
                    match r {
                        Ok(Ok(ack)) => {
                            ok += 1;
                            if ack.duplicate {
                                dups += 1;
                            }
                        }
                        Ok(Err(e)) => {
                            first_error.get_or_insert((error_label(e.kind()), e.to_string()));
                            failed.push(i);
                        }
                        Err(_) => {
                            first_error.get_or_insert(("timeout", "no PubAck in time".into()));
                            failed.push(i);
                        }
                    }
                }
            }
            if ok > 0 {
                self.events.published(ok, dups);
            }
            if let Some((label, text)) = first_error {
                self.events.publish_error(label, failed.len() as u64);
                let delay = self.config.retry.delay(attempt);
                attempt += 1;
                tracing::warn!(failed = failed.len(), error = %text, retry_in = ?delay, "JetStream publish not acknowledged; publishing again");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(Error::Cancelled),
                }
            }
            failed.sort_unstable();
            todo = failed;
        }
        Ok(())
    }

    /// Flushes what the client buffered.
    pub async fn flush(&self) {
        let _ = self.client.flush().await;
    }
}
