//! `GET` of one object and lists: `metadata.resourceVersion`, `410 Expired`
//! for a resourceVersion older than the retained history, `limit` and
//! `continue` pages over the current state
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks>).

use super::http::{gone, json_response, status_response, Body};
use super::selector::Filter;
use super::state::Kind;
use super::store::Inner;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

impl Inner {
    pub(super) fn get_one(&self, kind: Kind, ns: Option<&str>, name: &str) -> Response<Body> {
        let state = self.state.lock();
        let found = match kind {
            Kind::Pods => state
                .pods
                .get(&(ns.unwrap_or("default").to_owned(), name.to_owned())),
            Kind::Namespaces => state.namespaces.get(name),
        };
        match found {
            Some(v) => json_response(StatusCode::OK, &**v),
            None => status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", kind.plural()),
                Some(json!({"name": name, "kind": kind.plural()})),
            ),
        }
    }

    pub(super) fn list(
        &self,
        kind: Kind,
        filter: &Filter,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let state = self.state.lock();
        let requested_rv = query
            .get("resourceVersion")
            .map(String::as_str)
            .unwrap_or("");
        if !requested_rv.is_empty() && requested_rv != "0" {
            match requested_rv.parse::<u64>() {
                Ok(rv)
                    if rv < state.oldest_rv
                        && query.get("resourceVersionMatch").map(String::as_str)
                            == Some("Exact") =>
                {
                    return gone(rv, state.oldest_rv);
                }
                Ok(rv) if rv < state.oldest_rv && !query.contains_key("resourceVersionMatch") => {
                    return gone(rv, state.oldest_rv);
                }
                Ok(_) => {}
                Err(_) => {
                    return status_response(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        &format!("invalid resourceVersion {requested_rv:?}"),
                        None,
                    )
                }
            }
        }
        let mut offset = 0usize;
        if let Some(token) = query.get("continue").filter(|t| !t.is_empty()) {
            let parsed = token
                .split_once(':')
                .and_then(|(rv, off)| Some((rv.parse::<u64>().ok()?, off.parse::<usize>().ok()?)));
            match parsed {
                Some((rv, _)) if rv < state.oldest_rv => {
                    return status_response(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                        None,
                    )
                }
                Some((_, off)) => offset = off,
                None => return status_response(StatusCode::BAD_REQUEST, "BadRequest", "invalid continue token", None),
            }
        }
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let objects: Vec<&Arc<Value>> = match kind {
            Kind::Pods => state.pods.values().collect(),
            Kind::Namespaces => state.namespaces.values().collect(),
        };
        let matching: Vec<&Arc<Value>> =
            objects.into_iter().filter(|o| filter.matches(o)).collect();
        let end = limit.map_or(matching.len(), |l| (offset + l).min(matching.len()));
        let items: Vec<&Value> = matching
            .get(offset.min(end)..end)
            .unwrap_or(&[])
            .iter()
            .map(|v| &***v)
            .collect();
        let mut metadata = json!({"resourceVersion": state.rv.to_string()});
        if end < matching.len() {
            metadata["continue"] = Value::String(format!("{}:{end}", state.rv));
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
        json_response(
            StatusCode::OK,
            &json!({"kind": kind.list_kind(), "apiVersion": "v1", "metadata": metadata, "items": items}),
        )
    }
}
