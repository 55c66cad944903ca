//! The forwarder: batches records into bulk requests and hands them to
//! shipping tasks ([`crate::ship`]) after the start-up checks
//! ([`crate::startup`]); acknowledges batches through their trackers.

use crate::batch::{BatchTracker, BulkBuilder, Item, ItemKind};
use crate::client::Endpoints;
use crate::config::ElasticsearchConfig;
use crate::document::{DocumentEncoder, DocumentOptions, IndexNaming};
use crate::error::Error;
use crate::events::ForwarderEvents;
use crate::health::ForwarderHealth;
use crate::index::IndexTarget;
use crate::index::{data_stream_part, IndexNameTemplate};
use crate::json_message::JsonTarget;
use crate::ship::dispatch;
use crate::startup::startup;
use crate::state::{Counters, ForwarderSummary, Shared};
use logferry_core::{Acker, RecordBatch};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Ships [`RecordBatch`]es to Elasticsearch (see the crate documentation for
/// the guarantees).
pub struct Forwarder {
    config: ElasticsearchConfig,
    documents: DocumentOptions,
    naming: IndexNaming,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("endpoints", &self.config.endpoints)
            .field("target", &self.config.target)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Validates `config` and `documents`, reads secret and TLS files, and
    /// builds one client per endpoint. Makes no request.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`], [`Error::InvalidConfig`] (no endpoint, zero
    /// limits, bad Airflow template), [`Error::ReadSecret`], [`Error::Tls`],
    /// [`Error::InvalidIndexTemplate`], [`Error::BuildClient`].
    pub fn new(
        config: ElasticsearchConfig,
        documents: DocumentOptions,
        events: Arc<dyn ForwarderEvents>,
    ) -> Result<Forwarder, Error> {
        if let Some((_, e)) = config.errors().into_iter().next() {
            return Err(e);
        }
        if let Some(problem) = documents
            .json_message
            .as_ref()
            .and_then(|j| j.problems(documents.schema).into_iter().next())
        {
            return Err(Error::InvalidConfig {
                field: "json_message",
                reason: format!("{}: {}", problem.key, problem.message),
            });
        }
        let dead_letter_index = config.dead_letter_index.clone();
        let naming = match &config.target {
            IndexTarget::Index { template } => IndexNaming::Template(template.clone()),
            IndexTarget::DataStream {
                kind,
                dataset,
                namespace,
            } => IndexNaming::DataStream {
                kind: data_stream_part(kind),
                dataset: data_stream_part(dataset),
                namespace: IndexNameTemplate::parse(namespace)?,
            },
        };
        let endpoints = Endpoints::new(&config)?;
        let shared = Arc::new(Shared {
            health: ForwarderHealth::default(),
            pipeline: config.pipeline.clone(),
            endpoints,
            events,
            retry: config.retry,
            compression: config.compression,
            compression_level: config.compression_level,
            dead_letter_index,
            dead_letter_dir: config.dead_letter_dir.clone(),
            dead_letter_file: config.dead_letter_file,
            counters: Counters::default(),
            in_flight: AtomicUsize::new(0),
        });
        Ok(Forwarder {
            config,
            documents,
            naming,
            shared,
        })
    }

    /// The forwarder's health, readable while it runs (for `/readyz`).
    pub fn health(&self) -> ForwarderHealth {
        self.shared.health.clone()
    }

    /// Checks `GET /` (version) with retry and installs templates when asked
    /// (a clear `tracing` error if unreachable; keeps retrying, never exits),
    /// then ships every batch from `input` until `input` closes and everything
    /// is delivered. Acknowledges each batch through `acker` exactly once,
    /// after every record of it was delivered (2xx, or 409 on `create`) or
    /// dead-lettered. Empty batches are acknowledged at once. When `hard_stop`
    /// is cancelled (drain timeout) it returns at once, leaving undelivered
    /// batches unacknowledged (they are read again after restart).
    ///
    /// Memory is bounded by `concurrency + 1` bulk bodies (plus, while a body
    /// is retried, its failed items): when all requests are in flight, `input`
    /// is not read.
    ///
    /// # Errors
    ///
    /// None today: delivery problems are retried, not returned. The `Result`
    /// leaves room for fatal conditions.
    pub async fn run(
        self,
        input: mpsc::Receiver<RecordBatch>,
        acker: Acker,
        hard_stop: CancellationToken,
    ) -> Result<ForwarderSummary, Error> {
        let shared = self.shared.clone();
        tokio::select! {
            biased;
            _ = hard_stop.cancelled() => {
                info!("hard stop: returning with undelivered batches left unacknowledged");
                Ok(shared.counters.summary(true))
            }
            result = self.run_inner(input, acker) => result,
        }
    }

    async fn run_inner(
        self,
        mut input: mpsc::Receiver<RecordBatch>,
        acker: Acker,
    ) -> Result<ForwarderSummary, Error> {
        let json_key = match self.documents.json_message.as_ref().map(|j| &j.target) {
            Some(JsonTarget::Key(key)) => Some(key.as_str()),
            _ => None,
        };
        startup(&self.shared, &self.config, self.documents.schema, json_key).await;
        let Forwarder {
            config,
            documents,
            naming,
            shared,
        } = self;
        let mut encoder = DocumentEncoder::new(documents);
        let permits = Arc::new(Semaphore::new(config.concurrency));
        let mut tasks = JoinSet::new();
        let mut builder = BulkBuilder::default();
        let mut deadline: Option<tokio::time::Instant> = None;
        let acked = shared.counters.acked.clone();
        let mut input_open = true;

        while input_open || !builder.is_empty() {
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = joined {
                        error!(error = %e, "a bulk shipping task failed; its batches stay unacknowledged until restart");
                    }
                    continue;
                }
                batch = input.recv(), if input_open => {
                    let Some(batch) = batch else {
                        input_open = false;
                        continue;
                    };
                    if batch.records.is_empty() {
                        acker.ack(batch.ack);
                        acked.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let tracker = Arc::new(BatchTracker::new(batch.ack, batch.records.len(), acker.clone(), acked.clone()));
                    for record in &batch.records {
                        let start = builder.body.len();
                        let doc = encoder.encode_bulk_item(&naming, &batch, record, &mut builder.body);
                        builder.items.push(Item { tracker: tracker.clone(), range: start..builder.body.len(), doc, kind: ItemKind::Record });
                        if deadline.is_none() {
                            deadline = Some(tokio::time::Instant::now() + config.batch.timeout);
                        }
                        if builder.body.len() > config.batch.max_bytes && builder.items.len() > 1 {
                            let rest = builder.split_last();
                            let full = std::mem::replace(&mut builder, rest);
                            dispatch(&shared, &permits, &mut tasks, full).await;
                            deadline = Some(tokio::time::Instant::now() + config.batch.timeout);
                        }
                        if builder.items.len() >= config.batch.max_events || builder.body.len() >= config.batch.max_bytes {
                            dispatch(&shared, &permits, &mut tasks, std::mem::take(&mut builder)).await;
                            deadline = None;
                        }
                    }
                    let unidentified = encoder.take_records_without_log_id();
                    if unidentified > 0 {
                        shared.events.airflow_records_without_log_id(unidentified);
                    }
                    for (reason, n) in encoder.take_json_messages_not_parsed() {
                        if n > 0 {
                            shared.events.json_messages_not_parsed(reason, n);
                        }
                    }
                    encoder.save_airflow_state(false);
                    continue;
                }
                _ = timer => {}
            }
            // Timer fired, or the input closed: send what we have.
            if !builder.is_empty()
                && (deadline.is_some_and(|d| d <= tokio::time::Instant::now()) || !input_open)
            {
                dispatch(&shared, &permits, &mut tasks, std::mem::take(&mut builder)).await;
                deadline = None;
            }
        }
        encoder.save_airflow_state(true);
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                error!(error = %e, "a bulk shipping task failed; its batches stay unacknowledged until restart");
            }
        }
        Ok(shared.counters.summary(false))
    }
}
