//! The control API under `/_double/` (stats, faults, outages, indices,
//! documents, recorded requests, reset) for tests in other processes; see the
//! table in the module documentation of [`elasticsearch`](super).

use super::faults::FaultConfig;
use super::http::{error_resp, index_not_found, json_resp, respond, Resp};
use super::state::{reset, RecordedRequest, State};
use super::store::StoredDoc;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Answers `/_double/{rest}`.
pub(super) fn control(
    state: &Arc<State>,
    m: &Method,
    rest: &[&str],
    params: &BTreeMap<String, String>,
    body: &Bytes,
) -> Resp {
    match (m, rest) {
        (&Method::GET, ["stats"]) => json_resp(
            StatusCode::OK,
            &serde_json::to_value(state.counters.snapshot()).unwrap_or_default(),
        ),
        (&Method::GET, ["faults"]) => json_resp(
            StatusCode::OK,
            &serde_json::to_value(state.faults.get()).unwrap_or_default(),
        ),
        (&Method::PUT | &Method::POST, ["faults"]) => {
            let patch: Value = match serde_json::from_slice(body) {
                Ok(Value::Object(o)) => Value::Object(o),
                _ => {
                    return error_resp(
                        400,
                        "parse_exception",
                        "expected a JSON object of fault settings",
                    )
                }
            };
            let mut current = serde_json::to_value(state.faults.get()).unwrap_or_default();
            if let (Some(cur), Value::Object(p)) = (current.as_object_mut(), patch) {
                for (k, v) in p {
                    cur.insert(k, v);
                }
            }
            match serde_json::from_value::<FaultConfig>(current) {
                Ok(cfg) => {
                    state.faults.set(cfg.clone());
                    json_resp(
                        StatusCode::OK,
                        &serde_json::to_value(cfg).unwrap_or_default(),
                    )
                }
                Err(e) => error_resp(
                    400,
                    "illegal_argument_exception",
                    &format!("invalid fault settings: {e}"),
                ),
            }
        }
        (&Method::DELETE, ["faults"]) => {
            state.faults.clear();
            json_resp(StatusCode::OK, &json!({"acknowledged": true}))
        }
        (&Method::POST, ["outage"]) => {
            let d = if let Some(ms) = params.get("ms").and_then(|s| s.parse::<u64>().ok()) {
                Duration::from_millis(ms)
            } else if let Some(s) = params
                .get("seconds")
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|s| *s >= 0.0 && s.is_finite())
            {
                Duration::from_secs_f64(s)
            } else {
                return error_resp(
                    400,
                    "illegal_argument_exception",
                    "give ?seconds=<number> or ?ms=<integer>",
                );
            };
            let faults = state.faults.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                faults.outage(d);
            });
            json_resp(
                StatusCode::OK,
                &json!({"acknowledged": true, "outage_ms": d.as_millis() as u64}),
            )
        }
        (&Method::GET, ["indices"]) => {
            let store = state.store.lock();
            let map: serde_json::Map<String, Value> = store
                .indices
                .iter()
                .map(|(n, i)| (n.clone(), json!(i.docs.len())))
                .collect();
            json_resp(StatusCode::OK, &Value::Object(map))
        }
        (&Method::GET, ["documents", index]) => {
            let store = state.store.lock();
            let Some(i) = store.indices.get(*index) else {
                return index_not_found(index);
            };
            let mut docs: Vec<(&String, &StoredDoc)> = i.docs.iter().collect();
            docs.sort_by_key(|(_, d)| d.seq_no);
            let mut out = Vec::new();
            for (id, d) in docs {
                out.extend_from_slice(b"{\"_id\":");
                serde_json::to_writer(&mut out, id).expect("Vec write");
                out.extend_from_slice(
                    format!(
                        ",\"_seq_no\":{},\"_version\":{},\"_source\":",
                        d.seq_no, d.version
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&d.source);
                out.extend_from_slice(b"}\n");
            }
            respond(StatusCode::OK, "application/x-ndjson", out)
        }
        (&Method::GET, ["requests"]) => {
            let reqs: Vec<RecordedRequest> = state.requests.lock().iter().cloned().collect();
            json_resp(
                StatusCode::OK,
                &serde_json::to_value(reqs).unwrap_or_default(),
            )
        }
        (&Method::POST, ["reset"]) => {
            reset(state);
            json_resp(StatusCode::OK, &json!({"acknowledged": true}))
        }
        _ => error_resp(
            400,
            "illegal_argument_exception",
            "unknown control request; see the es-double documentation",
        ),
    }
}
