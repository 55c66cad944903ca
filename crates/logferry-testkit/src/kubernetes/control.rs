//! The control API under `/_double/` (create, update and delete pods and
//! namespaces, faults, history expiry, watch freeze/drop, outages, stats) for
//! tests in another process; see the table in the module documentation of
//! [`kubernetes`](super).

use super::http::{json_response, text_response, Body};
use super::state::Kind;
use super::store::Inner;
use super::Fault;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

impl Inner {
    pub(super) async fn control(
        self: Arc<Self>,
        req: Request<Incoming>,
        rest: &str,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    &format!("failed to read body: {e}"),
                )
            }
        };
        let parse = || {
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("invalid JSON body: {e}"))
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let result: Result<(StatusCode, Value), (StatusCode, String)> = match (
            &method,
            segs.as_slice(),
        ) {
            (&Method::POST, ["pods"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.create(Kind::Pods, v)
                        .map_err(|e| (StatusCode::CONFLICT, format!("{e:#}")))
                })
                .map(|v| (StatusCode::CREATED, v)),
            (&Method::PUT, ["pods"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.update(Kind::Pods, v)
                        .map_err(|e| (StatusCode::NOT_FOUND, format!("{e:#}")))
                })
                .map(|v| (StatusCode::OK, v)),
            (&Method::DELETE, ["namespaces", ns, "pods", name]) => self
                .delete(Kind::Pods, ns, name)
                .map(|v| (StatusCode::OK, v))
                .map_err(|e| (StatusCode::NOT_FOUND, format!("{e:#}"))),
            (&Method::POST, ["namespaces"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    self.upsert_namespace(v)
                        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e:#}")))
                })
                .map(|v| (StatusCode::OK, v)),
            (&Method::GET, ["pods"]) => {
                let pods: Vec<Value> = self
                    .state
                    .lock()
                    .pods
                    .values()
                    .map(|v| (**v).clone())
                    .collect();
                Ok((StatusCode::OK, Value::Array(pods)))
            }
            (&Method::POST, ["fault"]) => parse()
                .map_err(|e| (StatusCode::BAD_REQUEST, e))
                .and_then(|v| {
                    let fault = match v["fault"].as_str() {
                        Some("none") => Fault::None,
                        Some("forbidden") => Fault::Forbidden,
                        Some("server_error") => Fault::ServerError,
                        other => {
                            return Err((
                                StatusCode::BAD_REQUEST,
                                format!("unknown fault {other:?}"),
                            ))
                        }
                    };
                    self.state.lock().fault = fault;
                    Ok((StatusCode::OK, json!({"fault": v["fault"]})))
                }),
            (&Method::POST, ["expire"]) => {
                self.expire();
                Ok((StatusCode::OK, json!({"expired": true})))
            }
            (&Method::POST, ["freeze-watches"]) => {
                self.state.lock().frozen = true;
                self.freeze_tx.send_replace(true);
                Ok((StatusCode::OK, json!({"frozen": true})))
            }
            (&Method::POST, ["drop-watches"]) => {
                self.drop_watches();
                Ok((StatusCode::OK, json!({"dropped": true})))
            }
            (&Method::POST, ["outage"]) => {
                match query.get("seconds").and_then(|s| s.parse::<f64>().ok()) {
                    Some(secs) if secs >= 0.0 => {
                        let this = Arc::clone(&self);
                        tokio::spawn(async move {
                            // Let this response leave first.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            this.stop().await;
                            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                            if let Err(e) = Inner::restart(&this).await {
                                tracing::error!(error = %e, "kube-api-double could not listen again");
                            }
                        });
                        Ok((StatusCode::OK, json!({"outage_seconds": secs})))
                    }
                    _ => Err((
                        StatusCode::BAD_REQUEST,
                        "outage needs ?seconds=N".to_owned(),
                    )),
                }
            }
            (&Method::GET, ["stats"]) => Ok((
                StatusCode::OK,
                serde_json::to_value(self.stats()).expect("serialisable"),
            )),
            _ => Err((
                StatusCode::NOT_FOUND,
                format!("no control endpoint {method} /_double/{rest}"),
            )),
        };
        match result {
            Ok((status, v)) => json_response(status, &v),
            Err((status, msg)) => text_response(status, &msg),
        }
    }
}
