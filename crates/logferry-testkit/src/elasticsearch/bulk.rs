//! `_bulk`: faults decided per request (latency, size limit, dropped
//! connections, whole-request errors) and per item (injected statuses,
//! mapping errors), gzip bodies, then every item applied to the store under
//! one lock, with Elasticsearch's per-item statuses and error types
//! (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html>).

use super::faults::add;
use super::http::{error_resp, respond, Resp};
use super::security::{self, Principal};
use super::state::State;
use super::store::{self, index_name_problem, parse_bulk, write_item, ItemOutcome, Op, StoredDoc};
use bytes::Bytes;
use hyper::header::CONTENT_ENCODING;
use hyper::StatusCode;
use rand::Rng as _;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What was decided for an item before taking the store lock.
enum Pre {
    Ok,
    Injected(u16),
    Mapping,
    Invalid(String),
}

fn injected_error(status: u16, index: &str) -> (&'static str, String) {
    match status {
        429 => (
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=4096, max_coordinating_and_primary_bytes=104857600]".to_owned(),
        ),
        503 => ("unavailable_shards_exception", format!("[{index}][0] primary shard is not active Timeout: [1m]")),
        500 => ("internal_server_error", "injected by the double".to_owned()),
        _ => ("illegal_state_exception", format!("injected status {status}")),
    }
}

/// Answers `POST/PUT /_bulk` and `/{index}/_bulk` (`default_index`).
pub(super) async fn bulk(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    default_index: Option<&str>,
    principal: Option<&Principal>,
    dropper: Arc<Notify>,
) -> Resp {
    let started = Instant::now();
    let c = &state.counters;
    add(&c.bulk_requests, 1);
    add(&c.body_bytes, body.len() as u64);
    let faults = state.faults.get();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if let Some(max) = faults.max_body_bytes {
        if body.len() > max {
            add(&c.too_large, 1);
            return error_resp(
                413,
                "content_too_long_exception",
                &format!(
                    "request body of {} bytes is larger than the limit of [{max}] bytes",
                    body.len()
                ),
            );
        }
    }
    let drop_connection = state.faults.chance(faults.drop_connection_rate);
    let apply_then_drop = drop_connection && state.faults.chance(0.5);
    if drop_connection && !apply_then_drop {
        add(&c.dropped_connections, 1);
        dropper.notify_one();
        return std::future::pending().await;
    }
    if state.faults.chance(faults.request_error_rate) && !faults.request_error_statuses.is_empty() {
        let status = {
            let mut fs = state.faults.state.lock();
            let i = fs.rng.random_range(0..faults.request_error_statuses.len());
            faults.request_error_statuses[i]
        };
        add(&c.injected_request_errors, 1);
        let (kind, reason) = match status {
            429 => (
                "es_rejected_execution_exception",
                "rejected execution of bulk request (injected by the double)".to_owned(),
            ),
            503 => (
                "master_not_discovered_exception",
                "no master node (injected by the double)".to_owned(),
            ),
            s => ("illegal_state_exception", format!("injected status {s}")),
        };
        return error_resp(status, kind, &reason);
    }
    let gzip = parts
        .headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let decoded = if gzip {
        add(&c.gzip_requests, 1);
        let mut out = Vec::with_capacity(body.len() * 4);
        if let Err(e) = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out) {
            return error_resp(
                400,
                "parse_exception",
                &format!("failed to decompress the gzip request body: {e}"),
            );
        }
        Bytes::from(out)
    } else {
        body
    };
    add(&c.decoded_bytes, decoded.len() as u64);
    let items = match parse_bulk(&decoded, default_index) {
        Ok(items) => items,
        Err(reason) => return error_resp(400, "illegal_argument_exception", &reason),
    };
    add(&c.bulk_items, items.len() as u64);

    // Decisions that need no store: injected errors, JSON validity, mapping faults.
    let needle = faults
        .mapping_error_substring
        .as_deref()
        .map(str::as_bytes)
        .filter(|n| !n.is_empty());
    let mut pre = Vec::with_capacity(items.len());
    {
        let mut fs = state.faults.state.lock();
        for _ in &items {
            if faults.item_error_rate > 0.0
                && !faults.item_error_statuses.is_empty()
                && fs.rng.random_bool(faults.item_error_rate.clamp(0.0, 1.0))
            {
                let i = fs.rng.random_range(0..faults.item_error_statuses.len());
                pre.push(Pre::Injected(faults.item_error_statuses[i]));
            } else {
                pre.push(Pre::Ok);
            }
        }
    }
    for (item, p) in items.iter().zip(pre.iter_mut()) {
        if !matches!(p, Pre::Ok) {
            continue;
        }
        let Some(source) = &item.source else { continue };
        let trimmed = source.trim_ascii_start();
        if trimmed.first() != Some(&b'{') {
            *p = Pre::Invalid(
                "[1:1] failed to parse: the document source must be a JSON object".into(),
            );
        } else if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(source) {
            *p = Pre::Invalid(format!("[1:1] failed to parse: {e}"));
        } else if needle.is_some_and(|n| store::contains(source, n)) {
            *p = Pre::Mapping;
        }
    }

    let mut out_items = Vec::with_capacity(items.len() * 160);
    let mut errors = false;
    let (mut created, mut updated, mut conflicts, mut injected, mut mapping) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    {
        let mut store = state.store.lock();
        for (n, (item, p)) in items.into_iter().zip(pre).enumerate() {
            if n > 0 {
                out_items.push(b',');
            }
            let outcome = 'outcome: {
                let err = |id: Option<String>, status: u16, kind: &'static str, reason: String| {
                    ItemOutcome::Error {
                        id,
                        status,
                        kind,
                        reason,
                    }
                };
                match p {
                    Pre::Injected(status) => {
                        injected += 1;
                        let (kind, reason) = injected_error(status, &item.index);
                        break 'outcome err(item.id.clone(), status, kind, reason);
                    }
                    Pre::Invalid(reason) => {
                        mapping += 1;
                        break 'outcome err(
                            item.id.clone(),
                            400,
                            "document_parsing_exception",
                            reason,
                        );
                    }
                    Pre::Mapping => {
                        mapping += 1;
                        let reason = format!(
                            "failed to parse field [message] of type [long] in document with id '{}'. Preview of field's value: 'injected by the double'",
                            item.id.as_deref().unwrap_or("")
                        );
                        break 'outcome err(
                            item.id.clone(),
                            400,
                            "mapper_parsing_exception",
                            reason,
                        );
                    }
                    Pre::Ok => {}
                }
                if let Some(problem) = index_name_problem(&item.index) {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "invalid_index_name_exception",
                        format!("Invalid index name [{}], {problem}", item.index),
                    );
                }
                if let Some(reason) = principal.and_then(|p| {
                    security::check_create(p, &item.index, store.indices.contains_key(&item.index))
                }) {
                    break 'outcome err(item.id.clone(), 403, "security_exception", reason);
                }
                if item.op == Op::Update {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "action_request_validation_exception",
                        "Validation Failed: 1: update is not supported by the double;".into(),
                    );
                }
                let seq_no = store.next_seq;
                let index = store.index_mut(&item.index);
                if index.data_stream && item.op != Op::Create {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "illegal_argument_exception",
                        format!("only write ops with an op_type of create are allowed in data streams (index [{}])", item.index),
                    );
                }
                let outcome = match item.op {
                    Op::Delete => {
                        let id = item.id.clone().unwrap_or_default();
                        match index.docs.remove(&id) {
                            Some(d) => ItemOutcome::Deleted {
                                id,
                                seq_no,
                                version: d.version + 1,
                            },
                            None => ItemOutcome::NotFound { id },
                        }
                    }
                    Op::Create | Op::Index => {
                        let id = item.id.clone().unwrap_or_else(generate_id);
                        let source = item.source.clone().unwrap_or_default();
                        match index.docs.get_mut(&id) {
                            Some(existing) if item.op == Op::Create => {
                                conflicts += 1;
                                let reason = format!("[{id}]: version conflict, document already exists (current version [{}])", existing.version);
                                ItemOutcome::Error {
                                    id: Some(id),
                                    status: 409,
                                    kind: "version_conflict_engine_exception",
                                    reason,
                                }
                            }
                            Some(existing) => {
                                updated += 1;
                                existing.version += 1;
                                existing.seq_no = seq_no;
                                existing.source = source;
                                ItemOutcome::Updated {
                                    id,
                                    seq_no,
                                    version: existing.version,
                                }
                            }
                            None => {
                                let paths = store::field_paths(&source, &index.flattened);
                                let new: Vec<String> = paths
                                    .into_iter()
                                    .filter(|p| !index.fields.contains(p))
                                    .collect::<std::collections::BTreeSet<_>>()
                                    .into_iter()
                                    .collect();
                                if index.fields.len() + new.len() > index.field_limit {
                                    break 'outcome err(
                                        Some(id),
                                        400,
                                        "illegal_argument_exception",
                                        format!(
                                            "Limit of total fields [{}] has been exceeded while adding new fields [{}]",
                                            index.field_limit,
                                            new.len()
                                        ),
                                    );
                                }
                                index.fields.extend(new);
                                created += 1;
                                index.docs.insert(
                                    id.clone(),
                                    StoredDoc {
                                        source,
                                        seq_no,
                                        version: 1,
                                    },
                                );
                                ItemOutcome::Created { id, seq_no }
                            }
                        }
                    }
                    Op::Update => unreachable!("refused above"),
                };
                if !matches!(
                    outcome,
                    ItemOutcome::Error { .. } | ItemOutcome::NotFound { .. }
                ) {
                    store.next_seq += 1;
                }
                outcome
            };
            if matches!(
                outcome,
                ItemOutcome::Error { .. } | ItemOutcome::NotFound { .. }
            ) {
                errors = true;
            }
            write_item(&mut out_items, item.op, &item.index, &outcome);
        }
    }
    add(&c.created, created);
    add(&c.updated, updated);
    add(&c.conflicts, conflicts);
    add(&c.injected_item_errors, injected);
    add(&c.mapping_errors, mapping);
    if apply_then_drop {
        add(&c.dropped_connections, 1);
        dropper.notify_one();
        return std::future::pending().await;
    }
    let mut out = Vec::with_capacity(out_items.len() + 64);
    out.extend_from_slice(
        format!(
            "{{\"took\":{},\"errors\":{errors},\"items\":[",
            started.elapsed().as_millis()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&out_items);
    out.extend_from_slice(b"]}");
    respond(StatusCode::OK, "application/json", out)
}

fn generate_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 15] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
