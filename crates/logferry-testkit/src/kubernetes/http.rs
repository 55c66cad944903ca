//! HTTP helpers: the response body type, `Status` objects as the API server
//! writes them
//! (<https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>),
//! JSON and text responses, and query-string decoding.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Every response's body: full or streamed (watches).
pub(super) type Body = BoxBody<Bytes, std::io::Error>;

/// `410 Gone` with reason `Expired` for a resourceVersion older than the history.
pub(super) fn gone(rv: u64, oldest: u64) -> Response<Body> {
    status_response(
        StatusCode::GONE,
        "Expired",
        &format!("too old resource version: {rv} ({oldest})"),
        None,
    )
}

/// A failure `Status` object.
pub(super) fn status_body(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

/// A failure `Status` object as the response.
pub(super) fn status_response(
    status: StatusCode,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response<Body> {
    json_response(
        status,
        &status_body(status.as_u16(), reason, message, details),
    )
}

/// `v` as a JSON response.
pub(super) fn json_response(status: StatusCode, v: &impl Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(v).expect("serialisable");
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

/// A plain-text response.
pub(super) fn text_response(status: StatusCode, text: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(
            Full::new(Bytes::from(text.to_owned()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("valid response")
}

/// Query parameters, percent-decoded (`+` is a space).
pub(super) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `%XX` escapes decoded; `+` is a space; a malformed escape is kept as is.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_decoded() {
        let q = parse_query(
            "fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app+in+%28a%2Cb%29&watch=true",
        );
        assert_eq!(q["fieldSelector"], "spec.nodeName=node-a");
        assert_eq!(q["labelSelector"], "app in (a,b)");
        assert_eq!(q["watch"], "true");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
