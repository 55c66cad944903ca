//! HTTP helpers: responses (JSON, and errors in Elasticsearch's error shape,
//! <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-error-options>)
//! and the decoding of request paths, query strings and JSON bodies.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) type Resp = Response<Full<Bytes>>;

pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn json_resp(status: StatusCode, v: &Value) -> Resp {
    respond(status, "application/json", v.to_string())
}

pub(super) fn error_resp(status: u16, kind: &str, reason: &str) -> Resp {
    let body = json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status
    });
    json_resp(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

pub(super) fn index_not_found(name: &str) -> Resp {
    let body = json!({
        "error": {"root_cause": [{"type": "index_not_found_exception", "reason": format!("no such index [{name}]"), "index": name}],
                  "type": "index_not_found_exception", "reason": format!("no such index [{name}]"), "index": name, "resource.type": "index_or_alias", "resource.id": name},
        "status": 404
    });
    json_resp(StatusCode::NOT_FOUND, &body)
}

pub(super) fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// A request body as JSON; an empty (or all-whitespace) body is `{}`.
pub(super) fn json_body(body: &Bytes) -> Result<Value, String> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))
}
