//! The listener and connections: the accept loop (closed during an outage and
//! bound again on the same port afterwards), the TLS handshake, HTTP/1.1
//! connections that a fault can drop, and per request the recording, the
//! routing and the `X-Elastic-Product: Elasticsearch` header.

use super::faults::add;
use super::http::{error_resp, Resp};
use super::routes::route;
use super::state::{RecordedRequest, State};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Most recorded requests kept (oldest dropped first).
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// Most TLS handshake errors kept (oldest dropped first).
const MAX_TLS_ERRORS: usize = 100;

/// Longest a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown`; during an outage the socket is
/// closed and every open connection dropped.
pub(super) async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let mut listener = Some(listener);
    let mut conns = shutdown.child_token();
    loop {
        let until = state.faults.state.lock().outage_until;
        if let Some(until) = until.filter(|t| *t > Instant::now()) {
            if listener.take().is_some() {
                conns.cancel();
                conns = shutdown.child_token();
            }
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = state.faults.outage.notified() => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        if listener.is_none() {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(%addr, error = %e, "rebinding after the outage failed; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "cannot listen again after the outage");
                        return;
                    }
                }
            }
        }
        let Some(l) = listener.as_ref() else { continue };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.faults.outage.notified() => continue,
            accepted = l.accept() => {
                if let Ok((stream, peer)) = accepted {
                    let _ = stream.set_nodelay(true);
                    match &acceptor {
                        None => {
                            tokio::spawn(connection(stream, state.clone(), conns.clone()));
                        }
                        Some(acceptor) => {
                            tokio::spawn(tls_connection(
                                acceptor.clone(),
                                stream,
                                peer,
                                state.clone(),
                                conns.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// Completes the TLS handshake, then serves HTTP over it; a failed handshake
/// drops the connection.
pub(super) async fn tls_connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    kill: CancellationToken,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let result = tokio::select! {
        r = handshake => r,
        _ = kill.cancelled() => return,
    };
    let error = match result {
        Ok(Ok(tls)) => return connection(tls, state, kill).await,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no handshake within {TLS_HANDSHAKE_TIMEOUT:?}"),
    };
    tracing::debug!(%peer, %error, "TLS handshake failed; dropping the connection");
    add(&state.counters.tls_handshake_failures, 1);
    let mut errors = state.tls_errors.lock();
    if errors.len() >= MAX_TLS_ERRORS {
        errors.pop_front();
    }
    errors.push_back(error);
}

async fn connection<S>(stream: S, state: Arc<State>, kill: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let dropper = Arc::new(Notify::new());
    let d = dropper.clone();
    let service = service_fn(move |req| {
        let state = state.clone();
        let d = d.clone();
        async move { Ok::<_, Infallible>(handle(state, req, d).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.cancelled() => {}
        _ = dropper.notified() => {}
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>, dropper: Arc<Notify>) -> Resp {
    add(&state.counters.requests, 1);
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error_resp(
                400,
                "parse_exception",
                &format!("failed to read the request body: {e}"),
            )
        }
    };
    {
        let mut reqs = state.requests.lock();
        if reqs.len() >= MAX_RECORDED_REQUESTS {
            reqs.pop_front();
        }
        reqs.push_back(RecordedRequest {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string()),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body_bytes: body.len(),
        });
    }
    let mut resp = route(&state, &parts, body, dropper).await;
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    if parts.method == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}
