//! One bulk request on the wire: the body (gzip or plain), the HTTP status,
//! the parsed response, and the error chain logged when it fails.
//!
//! API: <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html>.

use crate::batch::Bulk;
use crate::config::Compression;
use crate::error::Error;
use crate::events::{BulkOutcome, ItemErrorReason};
use crate::response::{BulkResponse, Verdict};
use crate::state::Shared;
use bytes::Bytes;
use elasticsearch::http::headers::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use elasticsearch::http::Method;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{debug, error, info, warn};

pub(crate) enum Sent {
    /// 2xx with a bulk response.
    Items(BulkResponse),
    /// 413.
    TooLarge,
    /// Nothing was delivered; try again after a backoff.
    Failed,
}

/// An [`Error::Status`] for a non-success response, with the first 512 bytes
/// of its body.
pub(crate) async fn status_error(
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

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// One bulk HTTP request.
pub(crate) async fn send(shared: &Shared, bulk: &Bulk) -> Sent {
    let (idx, ep) = shared.endpoints.pick();
    let started = Instant::now();
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let mut headers = shared.endpoints.auth_headers();
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
        401 | 403 => BulkOutcome::Unauthorized,
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
            shared
                .pipeline
                .as_deref()
                .map(|p| [("pipeline", p)])
                .as_ref(),
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
                            let refused = r.items.iter().any(|i| {
                                i.create.verdict() == Verdict::Retry(ItemErrorReason::Unauthorized)
                            });
                            shared.health.set_credential_refused(refused);
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
                    BulkOutcome::Unauthorized => {
                        shared.health.set_credential_refused(true);
                        if status == 401 {
                            match shared.endpoints.credentials.reload() {
                                Ok(true) => info!("the credential files changed; retrying with the new credential"),
                                Ok(false) => {}
                                Err(e) => warn!(error = %error_chain(&e), "cannot re-read the credential files"),
                            }
                        }
                        error!(error = %err, items = bulk.items.len(), "Elasticsearch refuses the credential; retrying with backoff (check auth and the writer role, see README \"Elasticsearch privileges\")");
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
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
