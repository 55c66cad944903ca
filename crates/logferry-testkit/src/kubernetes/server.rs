//! The listener (closed for an outage and bound again on the same port) and
//! the `/api` router: bearer-token authentication, GET only, the injected
//! [`Fault`], then a single object, a list or a watch with its field and label
//! selectors; `/_double/` goes to the control API.

use super::http::{parse_query, status_response, Body};
use super::selector::{Filter, Selector};
use super::state::Kind;
use super::store::{Inner, Server};
use super::Fault;
use anyhow::Context;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

impl Inner {
    pub(super) fn serve(inner: &Arc<Inner>, listener: TcpListener) {
        let stop = CancellationToken::new();
        let this = Arc::clone(inner);
        let token = stop.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let this = Arc::clone(&this);
                let token = token.clone();
                tokio::spawn(async move {
                    let conn_token = token.clone();
                    let service = hyper::service::service_fn(move |req| {
                        let this = Arc::clone(&this);
                        let token = conn_token.clone();
                        async move { Ok::<_, Infallible>(this.handle(req, token).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        *inner.server.lock() = Some(Server { stop, task });
    }

    pub(super) async fn stop(&self) {
        let server = self.server.lock().take();
        if let Some(server) = server {
            server.stop.cancel();
            let _ = server.task.await;
        }
    }

    pub(super) async fn restart(inner: &Arc<Inner>) -> anyhow::Result<()> {
        if inner.server.lock().is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(inner.addr).await.with_context(|| {
            format!(
                "failed to bind the Kubernetes API double to {} again",
                inner.addr
            )
        })?;
        Inner::serve(inner, listener);
        Ok(())
    }

    pub(super) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn_stop: CancellationToken,
    ) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let query = parse_query(req.uri().query().unwrap_or(""));
        if let Some(rest) = path.strip_prefix("/_double/") {
            let rest = rest.to_owned();
            return self.control(req, &rest, &query).await;
        }
        if !path.starts_with("/api") {
            return status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            );
        }
        let expected = format!("Bearer {}", self.options.token);
        if req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            != Some(expected.as_str())
        {
            return status_response(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized",
                None,
            );
        }
        if req.method() != Method::GET {
            return status_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the double serves GET only",
                None,
            );
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // (kind, namespace scope, single object name)
        let route = match segs.as_slice() {
            ["api", "v1", "pods"] => Some((Kind::Pods, None, None)),
            ["api", "v1", "namespaces"] => Some((Kind::Namespaces, None, None)),
            ["api", "v1", "namespaces", name] => Some((Kind::Namespaces, None, Some(*name))),
            ["api", "v1", "namespaces", ns, "pods"] => Some((Kind::Pods, Some(*ns), None)),
            ["api", "v1", "namespaces", ns, "pods", name] => {
                Some((Kind::Pods, Some(*ns), Some(*name)))
            }
            _ => None,
        };
        let Some((kind, ns, name)) = route else {
            return status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
                None,
            );
        };
        let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        if name.is_none() {
            if is_watch {
                self.watches.fetch_add(1, Ordering::Relaxed);
            } else {
                self.lists.fetch_add(1, Ordering::Relaxed);
            }
        }
        let fault = self.state.lock().fault;
        match fault {
            Fault::None => {}
            Fault::Forbidden => {
                let verb = if is_watch {
                    "watch"
                } else if name.is_some() {
                    "get"
                } else {
                    "list"
                };
                let scope = ns.map_or_else(
                    || "at the cluster scope".to_owned(),
                    |n| format!("in the namespace \"{n}\""),
                );
                return status_response(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    &format!(
                        "{} is forbidden: User \"system:serviceaccount:logging:logferry\" cannot {verb} resource \"{}\" in API group \"\" {scope}",
                        kind.plural(),
                        kind.plural()
                    ),
                    Some(json!({"kind": kind.plural()})),
                );
            }
            Fault::ServerError => {
                return status_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "Internal error occurred: injected by the Kubernetes API double",
                    None,
                )
            }
        }
        let ns_scope = if kind == Kind::Namespaces { None } else { ns };
        if let Some(name) = name {
            return self.get_one(kind, ns_scope, name);
        }
        let field = match Selector::parse_fields(
            kind,
            query.get("fieldSelector").map_or("", String::as_str),
        ) {
            Ok(s) => s,
            Err(msg) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
        };
        let label =
            match Selector::parse_labels(query.get("labelSelector").map_or("", String::as_str)) {
                Ok(s) => s,
                Err(msg) => {
                    return status_response(StatusCode::BAD_REQUEST, "BadRequest", &msg, None)
                }
            };
        let filter = Filter {
            namespace: ns_scope.map(str::to_owned),
            field,
            label,
        };
        if is_watch {
            self.watch(kind, filter, &query, conn_stop)
        } else {
            self.list(kind, &filter, &query)
        }
    }
}
