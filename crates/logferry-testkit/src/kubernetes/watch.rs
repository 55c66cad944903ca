//! Watches: a chunked stream of JSON lines `{"type":…,"object":…}` replaying
//! the event log after the requested resourceVersion (or `ADDED` for every
//! matching object first), objects entering or leaving the selectors as
//! `ADDED`/`DELETED`, `BOOKMARK`s, an in-stream `ERROR` 410 for expired
//! history, and the freeze/drop faults
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>).

use super::http::{status_body, Body};
use super::selector::Filter;
use super::state::{EventType, Kind};
use super::store::Inner;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

impl Inner {
    pub(super) fn watch(
        self: &Arc<Self>,
        kind: Kind,
        filter: Filter,
        query: &HashMap<String, String>,
        conn_stop: CancellationToken,
    ) -> Response<Body> {
        let requested_rv = query.get("resourceVersion").cloned().unwrap_or_default();
        let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.run_watch(
                kind,
                filter,
                requested_rv,
                bookmarks,
                timeout,
                tx,
                conn_stop,
            )
            .await;
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked")
            .body(BodyExt::boxed(body))
            .expect("valid response")
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_watch(
        self: Arc<Self>,
        kind: Kind,
        filter: Filter,
        requested_rv: String,
        bookmarks: bool,
        timeout: Option<Duration>,
        tx: mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
        conn_stop: CancellationToken,
    ) {
        let send = |line: Value| {
            let tx = tx.clone();
            async move {
                let mut bytes = serde_json::to_vec(&line).expect("serialisable");
                bytes.push(b'\n');
                tx.send(Ok(Frame::data(Bytes::from(bytes)))).await.is_ok()
            }
        };
        let mut rv_rx = self.rv_tx.subscribe();
        let mut drop_rx = self.drop_tx.subscribe();
        let mut freeze_rx = self.freeze_tx.subscribe();
        drop_rx.borrow_and_update();
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        // Starting point.
        let mut cursor = {
            let state = self.state.lock();
            match requested_rv.as_str() {
                "" | "0" => None,
                rv => match rv.parse::<u64>() {
                    Ok(rv) if rv < state.oldest_rv => Some(Err((rv, state.oldest_rv))),
                    Ok(rv) => Some(Ok(rv.min(state.rv))),
                    Err(_) => Some(Err((0, state.oldest_rv))),
                },
            }
        };
        let mut initial = Vec::new();
        let start = {
            let state = self.state.lock();
            match cursor.take() {
                Some(Err((rv, oldest))) => {
                    let status = status_body(
                        410,
                        "Expired",
                        &format!("too old resource version: {rv} ({oldest})"),
                        None,
                    );
                    drop(state);
                    let _ = send(json!({"type": "ERROR", "object": status})).await;
                    return;
                }
                Some(Ok(rv)) => rv,
                None => {
                    let objects: Vec<&Arc<Value>> = match kind {
                        Kind::Pods => state.pods.values().collect(),
                        Kind::Namespaces => state.namespaces.values().collect(),
                    };
                    initial.extend(objects.into_iter().filter(|o| filter.matches(o)).cloned());
                    state.rv
                }
            }
        };
        for object in initial {
            if !send(json!({"type": "ADDED", "object": &*object})).await {
                return;
            }
        }
        let mut cursor = start;
        let mut bookmark_tick = tokio::time::interval(self.options.bookmark_interval);
        bookmark_tick.tick().await;
        loop {
            let frozen = *freeze_rx.borrow_and_update();
            if !frozen {
                // Everything after the cursor, in order.
                let (events, current) = {
                    let state = self.state.lock();
                    if cursor < state.oldest_rv {
                        // History was expired under an open watch: the real server ends
                        // such a watch with 410 too.
                        (Err(state.oldest_rv), state.rv)
                    } else {
                        let from = state.log.partition_point(|e| e.rv <= cursor);
                        let events: Vec<(EventType, Arc<Value>, Option<Arc<Value>>)> = state.log
                            [from..]
                            .iter()
                            .filter(|e| e.kind == kind)
                            .map(|e| (e.ty, Arc::clone(&e.object), e.prev.clone()))
                            .collect();
                        (Ok(events), state.rv)
                    }
                };
                match events {
                    Err(oldest) => {
                        let status = status_body(
                            410,
                            "Expired",
                            &format!("too old resource version: {cursor} ({oldest})"),
                            None,
                        );
                        let _ = send(json!({"type": "ERROR", "object": status})).await;
                        return;
                    }
                    Ok(events) => {
                        for (ty, object, prev) in events {
                            let now = filter.matches(&object);
                            let before = prev.as_ref().is_some_and(|p| filter.matches(p));
                            let ty = match (ty, before, now) {
                                (EventType::Deleted, true, _) => Some("DELETED"),
                                (EventType::Deleted, false, _) => None,
                                (_, false, true) => Some("ADDED"),
                                (EventType::Added, _, _) => None,
                                (EventType::Modified, true, true) => Some("MODIFIED"),
                                (EventType::Modified, true, false) => Some("DELETED"),
                                (EventType::Modified, false, false) => None,
                            };
                            if let Some(ty) = ty {
                                if !send(json!({"type": ty, "object": &*object})).await {
                                    return;
                                }
                            }
                        }
                        cursor = current;
                    }
                }
            }
            let sleep_until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = conn_stop.cancelled() => return,
                _ = tx.closed() => return,
                _ = drop_rx.changed() => return,
                _ = sleep_until_deadline => return,
                _ = rv_rx.changed() => {}
                _ = freeze_rx.changed() => {}
                _ = bookmark_tick.tick(), if bookmarks && !frozen => {
                    let bookmark = json!({
                        "type": "BOOKMARK",
                        "object": {"kind": kind.object_kind(), "apiVersion": "v1",
                                   "metadata": {"resourceVersion": cursor.to_string()}}
                    });
                    if !send(bookmark).await {
                        return;
                    }
                }
            }
        }
    }
}
