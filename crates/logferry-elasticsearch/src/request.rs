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

thread_local! {
    /// One compressor per blocking thread, reset between bodies, so its state
    /// (windows and hash chains, a few hundred KiB) is allocated once per
    /// thread rather than once per request.
    static GZIP: std::cell::RefCell<Option<(u32, flate2::Compress)>> =
        const { std::cell::RefCell::new(None) };
}

/// gzip (RFC 1952) of a whole bulk body at `level`, compressed in one call
/// straight into the returned buffer (no intermediate copy); the buffer starts
/// at a quarter of the body, more than the usual ratio, and grows if needed.
///
/// The back-end is flate2's `zlib-rs` feature (crates/logferry-bench/README.md,
/// "gzip", compares it with miniz_oxide and libdeflate on real bodies).
fn gzip(body: &[u8], level: u32) -> Result<Vec<u8>, flate2::CompressError> {
    GZIP.with_borrow_mut(|slot| {
        let c = match slot {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            _ => {
                let fresh = flate2::Compress::new_gzip(flate2::Compression::new(level), 15);
                &mut slot.insert((level, fresh)).1
            }
        };
        let mut out = Vec::with_capacity(body.len() / 4 + 64);
        loop {
            let read = usize::try_from(c.total_in()).unwrap_or(body.len());
            match c.compress_vec(&body[read..], &mut out, flate2::FlushCompress::Finish)? {
                flate2::Status::StreamEnd => return Ok(out),
                flate2::Status::Ok | flate2::Status::BufError => {
                    out.reserve(out.capacity().max(4096));
                }
            }
        }
    })
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
            let level = shared.compression_level;
            match tokio::task::spawn_blocking(move || gzip(&raw, level)).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("a gzip stream");
        out
    }

    #[test]
    fn gzip_decompresses_to_the_body_at_every_level() {
        let mut body = Vec::new();
        for i in 0..20_000 {
            body.extend_from_slice(
                format!("{{\"create\":{{\"_index\":\"logs\",\"_id\":\"{i:022}\"}}}}\n{{\"message\":\"GET /api/{} 200\"}}\n", i % 97)
                    .as_bytes(),
            );
        }
        // Twice per level: the second body goes through the thread's reset compressor.
        for level in crate::config::COMPRESSION_LEVELS.flat_map(|l| [l, l]) {
            let gz = gzip(&body, level).unwrap();
            assert_eq!(&gz[..2], [0x1f, 0x8b], "gzip magic, level {level}");
            assert!(gz.len() < body.len() / 5, "level {level}: {}", gz.len());
            assert_eq!(gunzip(&gz), body, "level {level}");
        }
    }

    #[test]
    fn gzip_grows_its_buffer_for_a_body_that_does_not_compress() {
        // xorshift bytes: the output is larger than the quarter-size first buffer.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let body: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let gz = gzip(&body, 1).unwrap();
        assert!(gz.len() > body.len(), "{}", gz.len());
        assert_eq!(gunzip(&gz), body);
        assert_eq!(gunzip(&gzip(b"", 1).unwrap()), b"");
    }
}
