//! The forwarder: batches records into bulk requests, sends them, handles
//! item results, retries, dead letters and acknowledgements.

use crate::batch::{BatchTracker, Bulk, BulkBuilder, Item, ItemKind};
use crate::client::Endpoints;
use crate::config::{Compression, ElasticsearchConfig, IndexTarget, RetryConfig};
use crate::dead_letter;
use crate::document::{DocumentEncoder, DocumentOptions, IndexNaming};
use crate::error::Error;
use crate::events::{BulkOutcome, ForwarderEvents};
use crate::index::{sanitize_index_name, IndexNameTemplate};
use crate::response::{BulkResponse, Verdict};
use crate::retry::Backoff;
use crate::template;
use bytes::Bytes;
use elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::Method;
use logferry_core::{Acker, RecordBatch};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// The name of the data stream for a [`IndexTarget::DataStream`]
/// (`<kind>-<dataset>-<namespace>`, after the index name replacement rule);
/// for [`IndexTarget::Index`], the template text.
pub fn data_stream_name(target: &IndexTarget) -> String {
    match target {
        IndexTarget::DataStream {
            kind,
            dataset,
            namespace,
        } => sanitize_index_name(&format!("{kind}-{dataset}-{namespace}")),
        IndexTarget::Index { template } => template.clone(),
    }
}

/// What [`Forwarder::run`] did, counted in records unless named otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ForwarderSummary {
    /// Batches acknowledged.
    pub batches_acknowledged: u64,
    /// Records delivered (2xx, or 409 on `create`).
    pub records_delivered: u64,
    /// Of those, records that answered 409 (already indexed).
    pub duplicates: u64,
    /// Records written to the dead-letter index.
    pub dead_lettered: u64,
    /// Records written to the dead-letter file.
    pub dead_lettered_to_file: u64,
    /// Items sent again after an error.
    pub retried: u64,
    /// Bulk HTTP requests made (including failed ones).
    pub requests: u64,
    /// Whether `hard_stop` ended the run before everything was delivered.
    pub stopped_early: bool,
}

#[derive(Default)]
struct Counters {
    acked: Arc<AtomicU64>,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    dead_lettered: AtomicU64,
    dead_lettered_to_file: AtomicU64,
    retried: AtomicU64,
    requests: AtomicU64,
}

impl Counters {
    fn summary(&self, stopped_early: bool) -> ForwarderSummary {
        ForwarderSummary {
            batches_acknowledged: self.acked.load(Ordering::Relaxed),
            records_delivered: self.delivered.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            dead_lettered_to_file: self.dead_lettered_to_file.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            stopped_early,
        }
    }
}

/// State shared by the shipping tasks.
struct Shared {
    endpoints: Endpoints,
    events: Arc<dyn ForwarderEvents>,
    retry: RetryConfig,
    compression: Compression,
    dead_letter_index: String,
    dead_letter_dir: PathBuf,
    counters: Counters,
    in_flight: AtomicUsize,
}

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

enum Sent {
    /// 2xx with a bulk response.
    Items(BulkResponse),
    /// 413.
    TooLarge,
    /// Nothing was delivered; try again after a backoff.
    Failed,
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
        let invalid = |field: &'static str, reason: &str| Error::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if config.batch.max_events == 0 {
            return Err(invalid("batch.max_events", "must be at least 1"));
        }
        if config.batch.max_bytes == 0 {
            return Err(invalid("batch.max_bytes", "must be at least 1 byte"));
        }
        if config.concurrency == 0 {
            return Err(invalid("concurrency", "must be at least 1"));
        }
        if config.retry.initial_backoff.is_zero()
            || config.retry.max_backoff < config.retry.initial_backoff
        {
            return Err(invalid(
                "retry",
                "initial_backoff must be more than zero and at most max_backoff",
            ));
        }
        let dead_letter_index = sanitize_index_name(&config.dead_letter_index);
        if dead_letter_index != config.dead_letter_index {
            return Err(invalid("dead_letter_index", "not a valid index name (lower-case, no \\ / * ? \" < > | , # : or space, not starting with - _ +)"));
        }
        documents.validate()?;
        let naming = match &config.target {
            IndexTarget::Index { template } => {
                IndexNaming::Template(IndexNameTemplate::parse(template)?)
            }
            IndexTarget::DataStream {
                kind,
                dataset,
                namespace,
            } => {
                for (field, v) in [
                    ("data_stream.type", kind),
                    ("data_stream.dataset", dataset),
                    ("data_stream.namespace", namespace),
                ] {
                    if v.is_empty() || v.contains('-') {
                        return Err(invalid(field, "must be non-empty and contain no '-'"));
                    }
                }
                IndexNaming::Fixed(data_stream_name(&config.target))
            }
        };
        let endpoints = Endpoints::new(&config)?;
        let shared = Arc::new(Shared {
            endpoints,
            events,
            retry: config.retry,
            compression: config.compression,
            dead_letter_index,
            dead_letter_dir: config.dead_letter_dir.clone(),
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
        self.startup().await;
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
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                error!(error = %e, "a bulk shipping task failed; its batches stay unacknowledged until restart");
            }
        }
        Ok(shared.counters.summary(false))
    }

    /// `GET /` until it answers, then the templates.
    async fn startup(&self) {
        let mut backoff = Backoff::new(self.config.retry);
        loop {
            let (idx, ep) = self.shared.endpoints.pick();
            match ep
                .client
                .transport()
                .send(
                    Method::Get,
                    "/",
                    HeaderMap::new(),
                    None::<&()>,
                    None::<&[u8]>,
                    None,
                )
                .await
            {
                Ok(resp) if resp.status_code().is_success() => {
                    let info: serde_json::Value = resp.json().await.unwrap_or_default();
                    let version = info["version"]["number"]
                        .as_str()
                        .unwrap_or("unknown")
                        .to_owned();
                    let major: u32 = version
                        .split('.')
                        .next()
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    if major < 8 {
                        warn!(endpoint = %ep.url, %version, "Elasticsearch version is older than 8; logferry is tested against 8.x");
                    } else {
                        info!(endpoint = %ep.url, %version, cluster = info["cluster_name"].as_str().unwrap_or(""), "connected to Elasticsearch");
                    }
                    self.shared.endpoints.succeeded(idx);
                    break;
                }
                Ok(resp) => {
                    let status = resp.status_code().as_u16();
                    let delay = backoff.next_delay();
                    error!(endpoint = %ep.url, status, retry_in = ?delay, "Elasticsearch answered GET / with an error; retrying (check credentials and URL)");
                    self.shared.endpoints.failed(idx);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    error!(endpoint = %ep.url, error = %error_chain(&e), retry_in = ?delay, "Elasticsearch is unreachable; retrying");
                    self.shared.endpoints.failed(idx);
                    tokio::time::sleep(delay).await;
                }
            }
        }
        if !self.config.install_template {
            return;
        }
        let templates = [
            (
                template::TEMPLATE_NAME,
                template::document_template(&self.config.target, self.documents.schema),
            ),
            (
                template::DEAD_LETTER_TEMPLATE_NAME,
                template::dead_letter_template(&self.shared.dead_letter_index),
            ),
        ];
        for (name, body) in templates {
            let mut backoff = Backoff::new(self.config.retry);
            let path = format!("/_index_template/{name}");
            loop {
                let (idx, ep) = self.shared.endpoints.pick();
                let body = Bytes::from(body.to_string());
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let result = ep
                    .client
                    .transport()
                    .send(Method::Put, &path, headers, None::<&()>, Some(body), None)
                    .await;
                match result {
                    Ok(resp) if resp.status_code().is_success() => {
                        info!(template = name, "installed index template");
                        break;
                    }
                    Ok(resp) => {
                        let err = status_error("PUT _index_template", &ep.url, resp).await;
                        if !err.is_retryable() {
                            error!(template = name, error = %err, "Elasticsearch refused the index template; shipping without it");
                            break;
                        }
                        let delay = backoff.next_delay();
                        warn!(template = name, error = %err, retry_in = ?delay, "installing the index template failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    Err(e) => {
                        self.shared.endpoints.failed(idx);
                        let delay = backoff.next_delay();
                        warn!(template = name, endpoint = %ep.url, error = %e, retry_in = ?delay, "installing the index template failed; retrying");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// An [`Error::Status`] for a non-success response, with the first 512 bytes
/// of its body.
async fn status_error(
    operation: &'static str,
    endpoint: &str,
    resp: elasticsearch::http::response::Response,
) -> Error {
    let status = resp.status_code().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Error::Status {
        operation,
        endpoint: endpoint.to_owned(),
        status,
        body: truncate(&text, 512),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Waits for a free request slot, then ships `builder` in its own task.
async fn dispatch(
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    builder: BulkBuilder,
) {
    if builder.is_empty() {
        return;
    }
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let shared = shared.clone();
    let n = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared.events.in_flight_requests(n);
    tasks.spawn(async move {
        ship(&shared, builder.freeze()).await;
        let n = shared.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        shared.events.in_flight_requests(n);
        drop(permit);
    });
}

/// Delivers every item of `bulk`: sends, then re-sends what must be retried
/// (after a backoff), splits on 413, dead-letters refused items.
async fn ship(shared: &Shared, bulk: Bulk) {
    let mut pending = vec![bulk];
    let mut backoff = Backoff::new(shared.retry);
    while let Some(bulk) = pending.pop() {
        if bulk.items.is_empty() {
            continue;
        }
        match send(shared, &bulk).await {
            Sent::Failed => {
                shared.events.retries(bulk.items.len() as u64);
                shared
                    .counters
                    .retried
                    .fetch_add(bulk.items.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(backoff.next_delay()).await;
                pending.push(bulk);
            }
            Sent::TooLarge if bulk.items.len() > 1 => {
                let mid = bulk.items.len() / 2;
                debug!(
                    items = bulk.items.len(),
                    "413: splitting the bulk request in two"
                );
                let first = bulk.subset(&bulk.items[..mid]).freeze();
                let second = bulk.subset(&bulk.items[mid..]).freeze();
                // A stack: push the second half first so the first is sent first.
                pending.push(second);
                pending.push(first);
            }
            Sent::TooLarge => {
                let item = &bulk.items[0];
                let reason = format!(
                    "a single document of {} bytes is larger than the server accepts (413)",
                    item.len()
                );
                shared.events.item_errors("too_large", 1);
                to_file(
                    shared,
                    &bulk,
                    &[(item, 413, "request_entity_too_large", reason)],
                )
                .await;
            }
            Sent::Items(response) => {
                if let Some(retry) = handle_items(shared, &bulk, response, &mut backoff).await {
                    pending.push(retry);
                }
            }
        }
    }
}

/// Applies item results. Returns the items to send again (retries and new
/// dead-letter documents), after sleeping the backoff if some were retryable.
async fn handle_items(
    shared: &Shared,
    bulk: &Bulk,
    response: BulkResponse,
    backoff: &mut Backoff,
) -> Option<Bulk> {
    let mut next = BulkBuilder::default();
    let mut delivered = 0u64;
    let mut delivered_bytes = 0u64;
    let mut duplicates = 0u64;
    let mut dead_lettered = 0u64;
    let mut retryable = 0u64;
    let mut errors: Vec<(&'static str, u64)> = Vec::new();
    let mut refused_dead_letters = Vec::new();
    let mut count_error = |label: &'static str| match errors.iter_mut().find(|(l, _)| *l == label) {
        Some((_, n)) => *n += 1,
        None => errors.push((label, 1)),
    };
    for (item, result) in bulk.items.iter().zip(response.items) {
        let result = result.create;
        match result.verdict() {
            Verdict::Delivered | Verdict::Duplicate => {
                if result.verdict() == Verdict::Duplicate {
                    duplicates += 1;
                }
                match item.kind {
                    ItemKind::Record => {
                        delivered += 1;
                        delivered_bytes += item.len() as u64;
                    }
                    ItemKind::DeadLetter => dead_lettered += 1,
                }
                item.tracker.finish(1);
            }
            Verdict::Retry(label) => {
                count_error(label);
                retryable += 1;
                next.push_copy(&bulk.body, item);
            }
            Verdict::Reject(label) => {
                count_error(label);
                let (kind, reason) = result
                    .error
                    .as_ref()
                    .map(|e| (e.kind.as_str(), e.reason.clone().unwrap_or_default()))
                    .unwrap_or(("unknown", String::new()));
                match item.kind {
                    ItemKind::Record => {
                        let start = next.body.len();
                        let refusal = dead_letter::Refusal {
                            index: result.index.as_deref().unwrap_or(""),
                            id: result.id.as_deref().unwrap_or(""),
                            status: result.status,
                            kind,
                            reason: &reason,
                        };
                        let doc = dead_letter::encode_item(
                            &mut next.body,
                            &shared.dead_letter_index,
                            &refusal,
                            bulk.doc(item),
                        );
                        next.items.push(Item {
                            tracker: item.tracker.clone(),
                            range: start..next.body.len(),
                            doc,
                            kind: ItemKind::DeadLetter,
                        });
                    }
                    ItemKind::DeadLetter => {
                        refused_dead_letters.push((item, result.status, kind.to_owned(), reason));
                    }
                }
            }
        }
    }
    if delivered > 0 {
        shared.events.records_sent(delivered, delivered_bytes);
        shared
            .counters
            .delivered
            .fetch_add(delivered, Ordering::Relaxed);
    }
    if duplicates > 0 {
        shared.events.duplicates(duplicates);
        shared
            .counters
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
    }
    if dead_lettered > 0 {
        shared.events.dead_lettered(dead_lettered, false);
        shared
            .counters
            .dead_lettered
            .fetch_add(dead_lettered, Ordering::Relaxed);
    }
    for (label, n) in errors {
        shared.events.item_errors(label, n);
    }
    if !refused_dead_letters.is_empty() {
        let refused: Vec<_> = refused_dead_letters
            .iter()
            .map(|(item, status, kind, reason)| (*item, *status, kind.as_str(), reason.clone()))
            .collect();
        to_file(shared, bulk, &refused).await;
    }
    if next.is_empty() {
        return None;
    }
    if delivered + duplicates + dead_lettered > 0 {
        backoff.reset();
    }
    if retryable > 0 {
        shared.events.retries(retryable);
        shared
            .counters
            .retried
            .fetch_add(retryable, Ordering::Relaxed);
        tokio::time::sleep(backoff.next_delay()).await;
    }
    Some(next.freeze())
}

/// Appends refused documents to the dead-letter file (retrying until it works:
/// acknowledging them otherwise would lose them) and finishes their records.
async fn to_file(shared: &Shared, bulk: &Bulk, items: &[(&Item, u16, &str, String)]) {
    let mut lines = Vec::new();
    for (item, status, kind, reason) in items {
        lines.extend_from_slice(&dead_letter::file_line(
            *status,
            kind,
            reason,
            bulk.doc(item),
        ));
    }
    let mut backoff = Backoff::new(shared.retry);
    loop {
        let dir = shared.dead_letter_dir.clone();
        let data = lines.clone();
        let result =
            tokio::task::spawn_blocking(move || dead_letter::append_to_file(&dir, &data)).await;
        match result {
            Ok(Ok(path)) => {
                warn!(records = items.len(), path = %path.display(), "documents refused by Elasticsearch, also by the dead-letter index, were written to the dead-letter file");
                break;
            }
            Ok(Err(e)) => {
                let delay = backoff.next_delay();
                error!(error = %e, retry_in = ?delay, "cannot write the dead-letter file; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                error!(error = %e, retry_in = ?delay, "dead-letter file task failed; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
    let n = items.len() as u64;
    shared.events.dead_lettered(n, true);
    shared
        .counters
        .dead_lettered_to_file
        .fetch_add(n, Ordering::Relaxed);
    for (item, ..) in items {
        item.tracker.finish(1);
    }
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// One bulk HTTP request.
async fn send(shared: &Shared, bulk: &Bulk) -> Sent {
    let (idx, ep) = shared.endpoints.pick();
    let started = Instant::now();
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    let body = match shared.compression {
        Compression::None => bulk.body.clone(),
        Compression::Gzip => {
            let raw = bulk.body.clone();
            match tokio::task::spawn_blocking(move || gzip(&raw)).await {
                Ok(Ok(gz)) => {
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    Bytes::from(gz)
                }
                _ => bulk.body.clone(),
            }
        }
    };
    let outcome_of_status = |status: u16| match status {
        413 => BulkOutcome::TooLarge,
        429 => BulkOutcome::Rejected429,
        500..=599 => BulkOutcome::ServerError,
        _ => BulkOutcome::ClientError,
    };
    let result = ep
        .client
        .transport()
        .send(
            Method::Post,
            "/_bulk",
            headers,
            None::<&()>,
            Some(body),
            None,
        )
        .await;
    let (outcome, sent) = match result {
        Err(e) => {
            shared.endpoints.failed(idx);
            let outcome = if e.is_timeout() {
                BulkOutcome::Timeout
            } else {
                BulkOutcome::ConnectionError
            };
            let err = Error::Transport {
                operation: "bulk",
                endpoint: ep.url.clone(),
                source: e,
            };
            warn!(error = %error_chain(&err), items = bulk.items.len(), "bulk request failed; retrying");
            (outcome, Sent::Failed)
        }
        Ok(resp) => {
            let status = resp.status_code().as_u16();
            if (200..300).contains(&status) {
                match resp.bytes().await {
                    Err(e) => {
                        shared.endpoints.failed(idx);
                        warn!(endpoint = %ep.url, error = %e, "reading the bulk response failed; retrying");
                        let outcome = if e.is_timeout() {
                            BulkOutcome::Timeout
                        } else {
                            BulkOutcome::ConnectionError
                        };
                        (outcome, Sent::Failed)
                    }
                    Ok(bytes) => match BulkResponse::parse(&bytes) {
                        Ok(r) if r.items.len() == bulk.items.len() => {
                            shared.endpoints.succeeded(idx);
                            let all_ok = r.items.iter().all(|i| {
                                matches!(
                                    i.create.verdict(),
                                    Verdict::Delivered | Verdict::Duplicate
                                )
                            });
                            (
                                if all_ok {
                                    BulkOutcome::Success
                                } else {
                                    BulkOutcome::PartialFailure
                                },
                                Sent::Items(r),
                            )
                        }
                        Ok(r) => {
                            let err = Error::InvalidResponse {
                                operation: "bulk",
                                endpoint: ep.url.clone(),
                                reason: format!(
                                    "{} items in the response for {} sent",
                                    r.items.len(),
                                    bulk.items.len()
                                ),
                            };
                            warn!(error = %err, "retrying");
                            (BulkOutcome::InvalidResponse, Sent::Failed)
                        }
                        Err(e) => {
                            let err = Error::InvalidResponse {
                                operation: "bulk",
                                endpoint: ep.url.clone(),
                                reason: e.to_string(),
                            };
                            warn!(error = %err, "retrying");
                            (BulkOutcome::InvalidResponse, Sent::Failed)
                        }
                    },
                }
            } else {
                let err = status_error("bulk", &ep.url, resp).await;
                let outcome = outcome_of_status(status);
                match outcome {
                    BulkOutcome::TooLarge => {
                        debug!(error = %err, "bulk request too large");
                        (outcome, Sent::TooLarge)
                    }
                    BulkOutcome::ServerError => {
                        shared.endpoints.failed(idx);
                        warn!(error = %err, items = bulk.items.len(), "bulk request failed; retrying");
                        (outcome, Sent::Failed)
                    }
                    BulkOutcome::Rejected429 => {
                        warn!(error = %err, items = bulk.items.len(), "bulk request rejected (429); retrying");
                        (outcome, Sent::Failed)
                    }
                    _ => {
                        error!(error = %err, items = bulk.items.len(), "bulk request refused; retrying (check credentials and permissions)");
                        (outcome, Sent::Failed)
                    }
                }
            }
        }
    };
    shared
        .events
        .bulk_request(outcome, started.elapsed().as_secs_f64());
    sent
}

/// `e` and its sources, outermost first, joined by `": "`: the HTTP client's
/// own message hides the cause (refused connection, unknown CA, timeout…).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}
