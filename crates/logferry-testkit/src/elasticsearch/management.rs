//! Index, index template and data stream management: `/_index_template`,
//! `/_data_stream` and `/{index}`, answered as Elasticsearch 8.19 answers them
//! (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-templates.html>,
//! <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/data-streams.html>,
//! <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-create-index.html>).

use super::http::{error_resp, index_not_found, json_body, json_resp, Resp};
use super::state::State;
use super::store::index_name_problem;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// `GET /_index_template`: every stored template.
pub(super) fn list_templates(state: &State) -> Resp {
    let store = state.store.lock();
    let list: Vec<Value> = store
        .templates
        .iter()
        .map(|(n, t)| json!({"name": n, "index_template": t}))
        .collect();
    json_resp(StatusCode::OK, &json!({"index_templates": list}))
}

/// `PUT/POST/GET/HEAD/DELETE /_index_template/{name}`: stored as given (it
/// needs `index_patterns`); 404 until created.
pub(super) fn index_template(state: &State, m: &Method, name: &str, body: &Bytes) -> Resp {
    let mut store = state.store.lock();
    match *m {
        Method::PUT | Method::POST => {
            let t = match json_body(body) {
                Ok(t) => t,
                Err(reason) => return error_resp(400, "parse_exception", &reason),
            };
            if !t["index_patterns"].is_array() && !t["index_patterns"].is_string() {
                return error_resp(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;",
                );
            }
            store.templates.insert(name.to_owned(), t);
            json_resp(StatusCode::OK, &json!({"acknowledged": true}))
        }
        Method::GET | Method::HEAD => match store.templates.get(name) {
            Some(t) => json_resp(
                StatusCode::OK,
                &json!({"index_templates": [{"name": name, "index_template": t}]}),
            ),
            None => error_resp(
                404,
                "resource_not_found_exception",
                &format!("index template matching [{name}] not found"),
            ),
        },
        Method::DELETE => match store.templates.remove(name) {
            Some(_) => json_resp(StatusCode::OK, &json!({"acknowledged": true})),
            None => error_resp(
                404,
                "resource_not_found_exception",
                &format!("index_template [{name}] missing"),
            ),
        },
        _ => error_resp(405, "method_not_allowed", "method not allowed"),
    }
}

/// `GET /_data_stream`: every data stream.
pub(super) fn list_data_streams(state: &State) -> Resp {
    let store = state.store.lock();
    let list: Vec<Value> = store
        .indices
        .iter()
        .filter(|(_, i)| i.data_stream)
        .map(|(n, _)| data_stream_json(n))
        .collect();
    json_resp(StatusCode::OK, &json!({"data_streams": list}))
}

/// `PUT/GET/DELETE /_data_stream/{name}`: creating one needs a matching
/// index template with `data_stream`.
pub(super) fn data_stream(state: &State, m: &Method, name: &str) -> Resp {
    let mut store = state.store.lock();
    match *m {
        Method::PUT => {
            if store.indices.contains_key(name) {
                return error_resp(
                    400,
                    "resource_already_exists_exception",
                    &format!("data_stream [{name}] already exists"),
                );
            }
            if !store.template_makes_data_stream(name) {
                return error_resp(
                    400,
                    "illegal_argument_exception",
                    &format!("no matching index template found for data stream [{name}]"),
                );
            }
            store.index_mut(name);
            json_resp(StatusCode::OK, &json!({"acknowledged": true}))
        }
        Method::GET => match store.indices.get(name) {
            Some(i) if i.data_stream => json_resp(
                StatusCode::OK,
                &json!({"data_streams": [data_stream_json(name)]}),
            ),
            _ => index_not_found(name),
        },
        Method::DELETE => match store.indices.get(name) {
            Some(i) if i.data_stream => {
                store.indices.remove(name);
                json_resp(StatusCode::OK, &json!({"acknowledged": true}))
            }
            _ => index_not_found(name),
        },
        _ => error_resp(405, "method_not_allowed", "method not allowed"),
    }
}

/// `PUT/GET/HEAD/DELETE /{index}`: index names checked as Elasticsearch
/// checks them; a created index holds no documents.
pub(super) fn index(state: &State, m: &Method, index: &str) -> Resp {
    let mut store = state.store.lock();
    match *m {
        Method::GET | Method::HEAD => match store.indices.get(index) {
            Some(_) => json_resp(
                StatusCode::OK,
                &json!({index: {"aliases": {}, "mappings": {}, "settings": {"index": {"number_of_shards": "1"}}}}),
            ),
            None => index_not_found(index),
        },
        Method::PUT => {
            if let Some(problem) = index_name_problem(index) {
                return error_resp(
                    400,
                    "invalid_index_name_exception",
                    &format!("Invalid index name [{index}], {problem}"),
                );
            }
            if store.indices.contains_key(index) {
                return error_resp(
                    400,
                    "resource_already_exists_exception",
                    &format!("index [{index}] already exists"),
                );
            }
            store.index_mut(index);
            json_resp(
                StatusCode::OK,
                &json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
            )
        }
        Method::DELETE => match store.indices.remove(index) {
            Some(_) => json_resp(StatusCode::OK, &json!({"acknowledged": true})),
            None => index_not_found(index),
        },
        _ => error_resp(405, "method_not_allowed", "method not allowed"),
    }
}

/// One data stream as `GET /_data_stream` lists it.
fn data_stream_json(name: &str) -> Value {
    json!({
        "name": name,
        "timestamp_field": {"name": "@timestamp"},
        "indices": [{"index_name": format!(".ds-{name}-000001"), "index_uuid": "double"}],
        "generation": 1,
        "status": "GREEN",
        "template": "logferry",
        "hidden": false,
        "system": false
    })
}
