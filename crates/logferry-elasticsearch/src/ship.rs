//! Shipping one bulk body until every item is finished: retries with
//! backoff, the 413 split, item results, and the dead letter (index, then
//! file).

use crate::batch::{Bulk, BulkBuilder, Item, ItemKind};
use crate::dead_letter;
use crate::error::Error;
use crate::events::ItemErrorReason;
use crate::request::{send, Sent};
use crate::response::{BulkResponse, Verdict};
use crate::retry::Backoff;
use crate::state::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

/// Waits for a free request slot, then ships `builder` in its own task.
pub(crate) async fn dispatch(
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
                shared.events.item_errors(ItemErrorReason::TooLarge, 1);
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
    let mut errors: Vec<(ItemErrorReason, u64)> = Vec::new();
    let mut refused_dead_letters = Vec::new();
    let mut count_error =
        |label: ItemErrorReason| match errors.iter_mut().find(|(l, _)| *l == label) {
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
        let limits = shared.dead_letter_file;
        let result =
            tokio::task::spawn_blocking(move || dead_letter::append_to_file(&dir, &data, limits))
                .await;
        match result {
            Ok(Ok(path)) => {
                warn!(records = items.len(), path = %path.display(), "documents refused by Elasticsearch, also by the dead-letter index, were written to the dead-letter file");
                break;
            }
            Ok(Err(e @ Error::DeadLetterFull { .. })) => {
                // Backpressure: these records stay unacknowledged, so their
                // files are not read further (the files are the buffer).
                shared.events.dead_letter_file_full(items.len() as u64);
                let delay = backoff.next_delay();
                error!(error = %e, records = items.len(), retry_in = ?delay, "DEAD-LETTER FILE FULL: refused documents are held unacknowledged and reading pauses until the rotated copies are moved away");
                tokio::time::sleep(delay).await;
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
