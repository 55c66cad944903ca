//! One request's way through the double: authentication and the privilege
//! checks of `security`, then the handler for its method
//! and path (the table in the module documentation of
//! [`elasticsearch`](super)); the small answers (info, health, refresh,
//! one document, search and count) are written here.

use super::bulk::bulk;
use super::control::control;
use super::faults::add;
use super::http::{
    error_resp, index_not_found, json_body, json_resp, percent_decode, query_params, respond, Resp,
};
use super::management;
use super::search;
use super::security;
use super::state::State;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Notify;

/// `GET /`: an 8.19 info document.
fn info() -> Value {
    json!({
        "name": "es-double",
        "cluster_name": "logferry-double",
        "cluster_uuid": "bG9nZmVycnktZG91Ymxl",
        "version": {
            "number": "8.19.0",
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2025-07-01T00:00:00.000000000Z",
            "build_snapshot": false,
            "lucene_version": "9.12.1",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

/// Authenticates, checks privileges and answers the request.
pub(super) async fn route(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    dropper: Arc<Notify>,
) -> Resp {
    let segs: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let params = query_params(parts.uri.query());
    let m = &parts.method;
    let get_like = *m == Method::GET || *m == Method::HEAD;
    let write = *m == Method::POST || *m == Method::PUT;
    let principal = if segs.first() == Some(&"_double") {
        None
    } else {
        let authorization = parts
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.security.authenticate(authorization, parts.uri.path()) {
            Ok(p) => p,
            Err(reason) => {
                let mut r = error_resp(401, "security_exception", &reason);
                r.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"security\", charset=\"UTF-8\""),
                );
                r.headers_mut()
                    .append("www-authenticate", HeaderValue::from_static("ApiKey"));
                return r;
            }
        }
    };
    let forbidden =
        |reason: Option<String>| reason.map(|r| error_resp(403, "security_exception", &r));
    if let Some(p) = &principal {
        let denied = match segs.as_slice() {
            [] if get_like => forbidden(security::check_monitor(p)),
            ["_index_template", _] if !get_like => forbidden(security::check_templates(p)),
            _ => None,
        };
        if let Some(r) = denied {
            return r;
        }
    }
    match segs.as_slice() {
        [] if get_like => json_resp(StatusCode::OK, &info()),
        ["_double", rest @ ..] => control(state, m, rest, &params, &body),
        ["_bulk"] if write => bulk(state, parts, body, None, principal.as_ref(), dropper).await,
        [index, "_bulk"] if write => {
            bulk(state, parts, body, Some(index), principal.as_ref(), dropper).await
        }
        ["_index_template"] if *m == Method::GET => management::list_templates(state),
        ["_index_template", name] => management::index_template(state, m, name, &body),
        ["_data_stream"] if *m == Method::GET => management::list_data_streams(state),
        ["_data_stream", name] => management::data_stream(state, m, name),
        ["_search"] | [_, "_search"] | ["_count"] | [_, "_count"]
            if get_like || *m == Method::POST =>
        {
            add(&state.counters.searches, 1);
            let (expr, op) = match segs.as_slice() {
                [op] => ("_all", *op),
                [expr, op] => (*expr, *op),
                _ => unreachable!("matched above"),
            };
            let body = match json_body(&body) {
                Ok(b) => b,
                Err(reason) => return error_resp(400, "parse_exception", &reason),
            };
            let store = state.store.lock();
            let indices = match store.resolve(expr) {
                Ok(i) => i,
                Err(missing) => return index_not_found(&missing),
            };
            let result = if op == "_count" {
                search::count(&store, &indices, &body)
            } else {
                let req = search::SearchRequest {
                    body,
                    size: params.get("size").and_then(|s| s.parse().ok()),
                    from: params.get("from").and_then(|s| s.parse().ok()),
                    sort: params.get("sort").cloned(),
                };
                search::search(&store, &indices, &req)
            };
            match result {
                Ok(v) => json_resp(StatusCode::OK, &v),
                Err(reason) => error_resp(400, "parsing_exception", &reason),
            }
        }
        ["_refresh"] | [_, "_refresh"] => json_resp(
            StatusCode::OK,
            &json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}),
        ),
        ["_cluster", "health"] => json_resp(
            StatusCode::OK,
            &json!({"cluster_name": "logferry-double", "status": "green", "timed_out": false, "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": 1, "active_shards": 1, "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0}),
        ),
        ["_cat", "health"] => respond(
            StatusCode::OK,
            "text/plain; charset=UTF-8",
            "1700000000 00:00:00 logferry-double green 1 1 1 1 0 0 0 0 - 100.0%\n",
        ),
        [index, "_doc", id] if get_like => {
            let store = state.store.lock();
            match store.indices.get(*index) {
                None => index_not_found(index),
                Some(i) => match i.docs.get(*id) {
                    Some(d) => {
                        let source: Value =
                            serde_json::from_slice(&d.source).unwrap_or(Value::Null);
                        json_resp(
                            StatusCode::OK,
                            &json!({"_index": index, "_id": id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1, "found": true, "_source": source}),
                        )
                    }
                    None => json_resp(
                        StatusCode::NOT_FOUND,
                        &json!({"_index": index, "_id": id, "found": false}),
                    ),
                },
            }
        }
        [index] if !index.starts_with('_') => management::index(state, m, index),
        _ => error_resp(
            400,
            "illegal_argument_exception",
            &format!(
                "no handler found for uri [{}] and method [{}]",
                parts.uri.path(),
                parts.method
            ),
        ),
    }
}
