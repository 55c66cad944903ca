//! An Elasticsearch 8.x **double**: an HTTP/1.1 server on loopback that
//! answers the parts of the Elasticsearch REST API that logferry uses, the
//! way Elasticsearch answers them, and stores what it receives so that a test
//! can check exactly what arrived. It is not Elasticsearch: no analysis, no
//! mappings, no shards, no persistence.
//!
//! # What it answers
//!
//! Every response carries `X-Elastic-Product: Elasticsearch` (official
//! clients refuse servers without it).
//!
//! | Request | Behaviour |
//! |---|---|
//! | `GET /`, `HEAD /` | an 8.19 info document |
//! | `POST/PUT /_bulk`, `/{index}/_bulk` | NDJSON `create`, `index`, `delete` (and `update`, refused per item); `_index`/`_id` from the action line or the path; `Content-Encoding: gzip` bodies; ids generated when missing; per-item statuses, top-level `errors` and `took`; `409 version_conflict_engine_exception` for a `create` of an existing `_id`; `400 document_parsing_exception` for a source that is not a JSON object; `400 invalid_index_name_exception`; only `create` into data streams. A body not ending in `\n`, a malformed action line or an action line with `_type` is a whole-request 400, as in ES 8 |
//! | `PUT/GET/HEAD/DELETE /_index_template/{name}`, `GET /_index_template` | stored as given; 404 until created |
//! | `PUT/GET/DELETE /_data_stream/{name}`, `GET /_data_stream` | needs a matching template with `data_stream`; bulk writes to a name matching such a template create the data stream |
//! | `GET/POST /_search`, `/{index}/_search`, `/_count`, `/{index}/_count` | `index` is a comma list, may contain `*` or be `_all`; query subset in [`search`](self#search) |
//! | `GET/HEAD /{index}/_doc/{id}` | one document |
//! | `PUT/GET/HEAD/DELETE /{index}`, `POST /{index}/_refresh`, `GET /_cluster/health`, `GET/HEAD /_cat/health` | minimal answers |
//!
//! ## Search
//!
//! `match_all`, `term`, `terms`, `match`, `match_phrase`, `range`
//! (`gt`/`gte`/`lt`/`lte`, numbers compared exactly, numeric strings as
//! numbers), `exists`, `ids`, `bool` (`must`, `filter`, `should`,
//! `must_not`); `sort` by fields or `_doc`, `size`, `from`, `search_after`.
//! Text matching lower-cases and splits on non-alphanumerics, so
//! `match_phrase` on a whole `log_id` is an exact match of its tokens.
//! Data streams are stored under their own name (no `.ds-` backing indices).
//!
//! # Faults
//!
//! [`FaultConfig`] (whole-request 429/503 at a rate, per-item 429/503 at a
//! rate, 400 `mapper_parsing_exception` for sources containing a substring,
//! added latency, dropped connections at a rate, a maximum body size) can be
//! changed while the double runs through the [`Faults`] handle, and
//! [`Faults::outage`] closes the listening socket and every open connection
//! for a while (connection refused), then listens again on the same port. All
//! random choices come from one RNG seeded by [`EsDoubleConfig::seed`].
//!
//! # TLS
//!
//! With [`EsDoubleConfig::tls`] set ([`EsDoubleTls`]: a PEM certificate chain
//! and key, e.g. from [`TestPki`](crate::tls::TestPki)) the double speaks
//! HTTPS (TLS 1.2 and 1.3, [rustls](https://docs.rs/rustls) with the `ring`
//! provider, ALPN `http/1.1`) and [`EsDouble::url`] is
//! `https://localhost:<port>`. With [`EsDoubleTls::client_ca_pem`] set it
//! requires a client certificate signed by that CA (mutual TLS) and refuses
//! the handshake otherwise. A failed handshake drops the connection (logged at
//! debug), is counted in [`Stats::tls_handshake_failures`] and its reason kept
//! in [`EsDouble::tls_errors`]. Everything else (bulk, faults, outages) is the
//! same over TLS. This is a test double: its certificates come from a
//! throw-away test PKI, and nothing here is meant to protect anything.
//!
//! # Control API (for other processes, same port)
//!
//! | Request | Effect |
//! |---|---|
//! | `GET /_double/stats` | counters ([`Stats`]) as JSON |
//! | `GET /_double/faults` | the [`FaultConfig`] as JSON |
//! | `PUT /_double/faults` | merges the given JSON keys into the fault configuration |
//! | `DELETE /_double/faults` | clears every fault |
//! | `POST /_double/outage?seconds=5` (or `ms=`) | an outage starting 20 ms later (after the answer) |
//! | `GET /_double/indices` | `{"<index>": <document count>, …}` |
//! | `GET /_double/documents/{index}` | NDJSON, one `{"_id":…,"_seq_no":…,"_version":…,"_source":…}` per document, in write order |
//! | `GET /_double/requests` | the last 10,000 requests (method, path, headers, body size) as JSON |
//! | `POST /_double/reset` | forgets documents, templates, counters, recorded requests and faults |
//!
//! During an outage the control API is unreachable too; in-process, use
//! [`Faults::end_outage`].
//!
//! # Costs
//!
//! Documents are kept as slices ([`Bytes`]) of the decoded request body: no
//! second copy. Each bulk request takes the store lock once.

mod faults;
mod search;
mod security;
mod store;

pub use faults::{FaultConfig, Faults, Stats};
pub use security::{Principal, Security};

use bytes::Bytes;
use faults::{add, Counters};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{index_name_problem, parse_bulk, write_item, ItemOutcome, Op, Store, StoredDoc};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Most recorded requests kept (oldest dropped first).
const MAX_RECORDED_REQUESTS: usize = 10_000;

/// Most TLS handshake errors kept (oldest dropped first).
const MAX_TLS_ERRORS: usize = 100;

/// Longest a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start the double.
#[derive(Clone, Debug)]
pub struct EsDoubleConfig {
    /// Address to listen on (default `127.0.0.1:0`: a free port).
    pub listen: SocketAddr,
    /// Seed of the RNG behind every random fault decision.
    pub seed: u64,
    /// Faults from the start.
    pub faults: FaultConfig,
    /// Serve HTTPS instead of plain HTTP (default `None`: plain HTTP).
    pub tls: Option<EsDoubleTls>,
}

/// The double's server-side TLS settings, all PEM text
/// ([RFC 7468](https://www.rfc-editor.org/rfc/rfc7468)).
/// [`TestPki::server_tls`](crate::tls::TestPki::server_tls) and
/// [`TestPki::mutual_tls`](crate::tls::TestPki::mutual_tls) make them.
#[derive(Clone)]
pub struct EsDoubleTls {
    /// The server certificate first, then any intermediates. It must be valid
    /// for `localhost`, the host name of [`EsDouble::url`].
    pub cert_chain_pem: String,
    /// The server certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// When set, clients must present a certificate signed by one of these CA
    /// certificates (mutual TLS); when `None`, no client certificate is asked for.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for EsDoubleTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsDoubleTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl EsDoubleTls {
    /// Builds the rustls acceptor.
    fn acceptor(&self) -> std::io::Result<TlsAcceptor> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid TLS {what} for the Elasticsearch double: {e}"),
            )
        };
        let certs = |pem: &str, what: &str| -> std::io::Result<Vec<CertificateDer<'static>>> {
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(what, &e))?;
            if certs.is_empty() {
                return Err(invalid(what, &"no PEM certificate found"));
            }
            Ok(certs)
        };
        let chain = certs(&self.cert_chain_pem, "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| invalid("private key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("protocol versions", &e))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs(pem, "client CA")? {
                    roots.add(cert).map_err(|e| invalid("client CA", &e))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| invalid("client CA", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid("certificate or key", &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl Default for EsDoubleConfig {
    fn default() -> Self {
        EsDoubleConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 0,
            faults: FaultConfig::default(),
            tls: None,
        }
    }
}

/// A request as the double received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query string.
    pub path: String,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body size as received, in bytes.
    pub body_bytes: usize,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Index (or data stream) name.
    pub index: String,
    /// `_id`.
    pub id: String,
    /// Write order, global to the double.
    pub seq_no: u64,
    /// 1 on create, +1 per overwrite.
    pub version: u64,
    /// `_source` exactly as received.
    pub source: Bytes,
}

struct State {
    security: Security,
    store: Mutex<Store>,
    faults: Faults,
    counters: Counters,
    requests: Mutex<VecDeque<RecordedRequest>>,
    tls_errors: Mutex<VecDeque<String>>,
}

/// A running Elasticsearch double. Stops when dropped.
pub struct EsDouble {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EsDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsDouble")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EsDouble {
    /// Starts a double on a free loopback port, without faults.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    pub async fn start() -> std::io::Result<EsDouble> {
        EsDouble::start_with(EsDoubleConfig::default()).await
    }

    /// Starts a double with `config`.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound, or (`InvalidInput`) when
    /// [`EsDoubleConfig::tls`] holds an unusable certificate, key or client CA.
    pub async fn start_with(config: EsDoubleConfig) -> std::io::Result<EsDouble> {
        let acceptor = config.tls.as_ref().map(EsDoubleTls::acceptor).transpose()?;
        let tls = acceptor.is_some();
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            security: Security::default(),
            store: Mutex::new(Store::default()),
            faults: Faults::new(config.faults, config.seed),
            counters: Counters::default(),
            requests: Mutex::new(VecDeque::new()),
            tls_errors: Mutex::new(VecDeque::new()),
        });
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            addr,
            acceptor,
            state.clone(),
            shutdown.clone(),
        ));
        Ok(EsDouble {
            addr,
            tls,
            state,
            shutdown,
            server: Some(server),
        })
    }

    /// The privilege model: add credentials to turn security on (see
    /// [`Security`]).
    pub fn security(&self) -> &Security {
        &self.state.security
    }

    /// The address the double listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or with TLS `https://localhost:<port>` (the name in
    /// the test server certificate).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Why the last failed TLS handshakes failed (rustls' error text, e.g.
    /// `peer sent no certificates`), oldest first, at most 100.
    pub fn tls_errors(&self) -> Vec<String> {
        self.state.tls_errors.lock().iter().cloned().collect()
    }

    /// The fault handle (clone it to change faults from another task).
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.state.counters.snapshot()
    }

    /// Every document of `index`, in write order (empty if the index does not exist).
    pub fn documents(&self, index: &str) -> Vec<Document> {
        let store = self.state.store.lock();
        let mut docs: Vec<Document> = store
            .indices
            .get(index)
            .map(|i| {
                i.docs
                    .iter()
                    .map(|(id, d)| Document {
                        index: index.to_owned(),
                        id: id.clone(),
                        seq_no: d.seq_no,
                        version: d.version,
                        source: d.source.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        docs.sort_by_key(|d| d.seq_no);
        docs
    }

    /// Every document of every index, in write order.
    pub fn all_documents(&self) -> Vec<Document> {
        let names: Vec<String> = self.state.store.lock().indices.keys().cloned().collect();
        let mut all: Vec<Document> = names.iter().flat_map(|n| self.documents(n)).collect();
        all.sort_by_key(|d| d.seq_no);
        all
    }

    /// The `_source` of one document.
    pub fn document(&self, index: &str, id: &str) -> Option<Bytes> {
        let store = self.state.store.lock();
        store
            .indices
            .get(index)?
            .docs
            .get(id)
            .map(|d| d.source.clone())
    }

    /// Index names and their document counts.
    pub fn indices(&self) -> BTreeMap<String, usize> {
        let store = self.state.store.lock();
        store
            .indices
            .iter()
            .map(|(n, i)| (n.clone(), i.docs.len()))
            .collect()
    }

    /// Documents in all indices.
    pub fn document_count(&self) -> usize {
        self.state
            .store
            .lock()
            .indices
            .values()
            .map(|i| i.docs.len())
            .sum()
    }

    /// Index templates by name, as they were PUT.
    pub fn templates(&self) -> BTreeMap<String, Value> {
        self.state.store.lock().templates.clone()
    }

    /// The recorded requests, oldest first (at most 10,000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().iter().cloned().collect()
    }

    /// Forgets documents, templates, counters, recorded requests and faults.
    pub fn reset(&self) {
        reset(&self.state);
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for EsDouble {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn reset(state: &State) {
    *state.store.lock() = Store::default();
    state.counters.reset();
    state.requests.lock().clear();
    state.tls_errors.lock().clear();
    state.faults.clear();
}

async fn serve(
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
async fn tls_connection(
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

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    respond(status, "application/json", v.to_string())
}

fn error_resp(status: u16, kind: &str, reason: &str) -> Resp {
    let body = json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status
    });
    json_resp(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

fn index_not_found(name: &str) -> Resp {
    let body = json!({
        "error": {"root_cause": [{"type": "index_not_found_exception", "reason": format!("no such index [{name}]"), "index": name}],
                  "type": "index_not_found_exception", "reason": format!("no such index [{name}]"), "index": name, "resource.type": "index_or_alias", "resource.id": name},
        "status": 404
    });
    json_resp(StatusCode::NOT_FOUND, &body)
}

fn percent_decode(s: &str) -> String {
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

fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
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

async fn route(
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
    let json_body = || -> Result<Value, String> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body).map_err(|e| format!("request body is not valid JSON: {e}"))
    };
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
        ["_index_template"] if *m == Method::GET => {
            let store = state.store.lock();
            let list: Vec<Value> = store
                .templates
                .iter()
                .map(|(n, t)| json!({"name": n, "index_template": t}))
                .collect();
            json_resp(StatusCode::OK, &json!({"index_templates": list}))
        }
        ["_index_template", name] => {
            let mut store = state.store.lock();
            match *m {
                Method::PUT | Method::POST => {
                    let t = match json_body() {
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
                    store.templates.insert((*name).to_owned(), t);
                    json_resp(StatusCode::OK, &json!({"acknowledged": true}))
                }
                Method::GET | Method::HEAD => match store.templates.get(*name) {
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
                Method::DELETE => match store.templates.remove(*name) {
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
        ["_data_stream"] if *m == Method::GET => {
            let store = state.store.lock();
            let list: Vec<Value> = store
                .indices
                .iter()
                .filter(|(_, i)| i.data_stream)
                .map(|(n, _)| data_stream_json(n))
                .collect();
            json_resp(StatusCode::OK, &json!({"data_streams": list}))
        }
        ["_data_stream", name] => {
            let mut store = state.store.lock();
            match *m {
                Method::PUT => {
                    if store.indices.contains_key(*name) {
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
                Method::GET => match store.indices.get(*name) {
                    Some(i) if i.data_stream => json_resp(
                        StatusCode::OK,
                        &json!({"data_streams": [data_stream_json(name)]}),
                    ),
                    _ => index_not_found(name),
                },
                Method::DELETE => match store.indices.get(*name) {
                    Some(i) if i.data_stream => {
                        store.indices.remove(*name);
                        json_resp(StatusCode::OK, &json!({"acknowledged": true}))
                    }
                    _ => index_not_found(name),
                },
                _ => error_resp(405, "method_not_allowed", "method not allowed"),
            }
        }
        ["_search"] | [_, "_search"] | ["_count"] | [_, "_count"]
            if get_like || *m == Method::POST =>
        {
            add(&state.counters.searches, 1);
            let (expr, op) = match segs.as_slice() {
                [op] => ("_all", *op),
                [expr, op] => (*expr, *op),
                _ => unreachable!("matched above"),
            };
            let body = match json_body() {
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
        [index] if !index.starts_with('_') => {
            let mut store = state.store.lock();
            match *m {
                Method::GET | Method::HEAD => match store.indices.get(*index) {
                    Some(_) => json_resp(
                        StatusCode::OK,
                        &json!({*index: {"aliases": {}, "mappings": {}, "settings": {"index": {"number_of_shards": "1"}}}}),
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
                    if store.indices.contains_key(*index) {
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
                Method::DELETE => match store.indices.remove(*index) {
                    Some(_) => json_resp(StatusCode::OK, &json!({"acknowledged": true})),
                    None => index_not_found(index),
                },
                _ => error_resp(405, "method_not_allowed", "method not allowed"),
            }
        }
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

fn control(
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

/// What was decided for an item before taking the store lock.
enum Pre {
    Ok,
    Injected(u16),
    Mapping,
    Invalid(String),
}

fn injected_error(status: u16, index: &str) -> (&'static str, String) {
    match status {
        429 => (
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=4096, max_coordinating_and_primary_bytes=104857600]".to_owned(),
        ),
        503 => ("unavailable_shards_exception", format!("[{index}][0] primary shard is not active Timeout: [1m]")),
        500 => ("internal_server_error", "injected by the double".to_owned()),
        _ => ("illegal_state_exception", format!("injected status {status}")),
    }
}

async fn bulk(
    state: &Arc<State>,
    parts: &hyper::http::request::Parts,
    body: Bytes,
    default_index: Option<&str>,
    principal: Option<&Principal>,
    dropper: Arc<Notify>,
) -> Resp {
    let started = Instant::now();
    let c = &state.counters;
    add(&c.bulk_requests, 1);
    add(&c.body_bytes, body.len() as u64);
    let faults = state.faults.get();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if let Some(max) = faults.max_body_bytes {
        if body.len() > max {
            add(&c.too_large, 1);
            return error_resp(
                413,
                "content_too_long_exception",
                &format!(
                    "request body of {} bytes is larger than the limit of [{max}] bytes",
                    body.len()
                ),
            );
        }
    }
    let drop_connection = state.faults.chance(faults.drop_connection_rate);
    let apply_then_drop = drop_connection && state.faults.chance(0.5);
    if drop_connection && !apply_then_drop {
        add(&c.dropped_connections, 1);
        dropper.notify_one();
        return std::future::pending().await;
    }
    if state.faults.chance(faults.request_error_rate) && !faults.request_error_statuses.is_empty() {
        let status = {
            let mut fs = state.faults.state.lock();
            let i = fs.rng.random_range(0..faults.request_error_statuses.len());
            faults.request_error_statuses[i]
        };
        add(&c.injected_request_errors, 1);
        let (kind, reason) = match status {
            429 => (
                "es_rejected_execution_exception",
                "rejected execution of bulk request (injected by the double)".to_owned(),
            ),
            503 => (
                "master_not_discovered_exception",
                "no master node (injected by the double)".to_owned(),
            ),
            s => ("illegal_state_exception", format!("injected status {s}")),
        };
        return error_resp(status, kind, &reason);
    }
    let gzip = parts
        .headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let decoded = if gzip {
        add(&c.gzip_requests, 1);
        let mut out = Vec::with_capacity(body.len() * 4);
        if let Err(e) = flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out) {
            return error_resp(
                400,
                "parse_exception",
                &format!("failed to decompress the gzip request body: {e}"),
            );
        }
        Bytes::from(out)
    } else {
        body
    };
    add(&c.decoded_bytes, decoded.len() as u64);
    let items = match parse_bulk(&decoded, default_index) {
        Ok(items) => items,
        Err(reason) => return error_resp(400, "illegal_argument_exception", &reason),
    };
    add(&c.bulk_items, items.len() as u64);

    // Decisions that need no store: injected errors, JSON validity, mapping faults.
    let needle = faults
        .mapping_error_substring
        .as_deref()
        .map(str::as_bytes)
        .filter(|n| !n.is_empty());
    let mut pre = Vec::with_capacity(items.len());
    {
        let mut fs = state.faults.state.lock();
        for _ in &items {
            if faults.item_error_rate > 0.0
                && !faults.item_error_statuses.is_empty()
                && fs.rng.random_bool(faults.item_error_rate.clamp(0.0, 1.0))
            {
                let i = fs.rng.random_range(0..faults.item_error_statuses.len());
                pre.push(Pre::Injected(faults.item_error_statuses[i]));
            } else {
                pre.push(Pre::Ok);
            }
        }
    }
    for (item, p) in items.iter().zip(pre.iter_mut()) {
        if !matches!(p, Pre::Ok) {
            continue;
        }
        let Some(source) = &item.source else { continue };
        let trimmed = source.trim_ascii_start();
        if trimmed.first() != Some(&b'{') {
            *p = Pre::Invalid(
                "[1:1] failed to parse: the document source must be a JSON object".into(),
            );
        } else if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(source) {
            *p = Pre::Invalid(format!("[1:1] failed to parse: {e}"));
        } else if needle.is_some_and(|n| store::contains(source, n)) {
            *p = Pre::Mapping;
        }
    }

    let mut out_items = Vec::with_capacity(items.len() * 160);
    let mut errors = false;
    let (mut created, mut updated, mut conflicts, mut injected, mut mapping) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    {
        let mut store = state.store.lock();
        for (n, (item, p)) in items.into_iter().zip(pre).enumerate() {
            if n > 0 {
                out_items.push(b',');
            }
            let outcome = 'outcome: {
                let err = |id: Option<String>, status: u16, kind: &'static str, reason: String| {
                    ItemOutcome::Error {
                        id,
                        status,
                        kind,
                        reason,
                    }
                };
                match p {
                    Pre::Injected(status) => {
                        injected += 1;
                        let (kind, reason) = injected_error(status, &item.index);
                        break 'outcome err(item.id.clone(), status, kind, reason);
                    }
                    Pre::Invalid(reason) => {
                        mapping += 1;
                        break 'outcome err(
                            item.id.clone(),
                            400,
                            "document_parsing_exception",
                            reason,
                        );
                    }
                    Pre::Mapping => {
                        mapping += 1;
                        let reason = format!(
                            "failed to parse field [message] of type [long] in document with id '{}'. Preview of field's value: 'injected by the double'",
                            item.id.as_deref().unwrap_or("")
                        );
                        break 'outcome err(
                            item.id.clone(),
                            400,
                            "mapper_parsing_exception",
                            reason,
                        );
                    }
                    Pre::Ok => {}
                }
                if let Some(problem) = index_name_problem(&item.index) {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "invalid_index_name_exception",
                        format!("Invalid index name [{}], {problem}", item.index),
                    );
                }
                if let Some(reason) = principal.and_then(|p| {
                    security::check_create(p, &item.index, store.indices.contains_key(&item.index))
                }) {
                    break 'outcome err(item.id.clone(), 403, "security_exception", reason);
                }
                if item.op == Op::Update {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "action_request_validation_exception",
                        "Validation Failed: 1: update is not supported by the double;".into(),
                    );
                }
                let seq_no = store.next_seq;
                let index = store.index_mut(&item.index);
                if index.data_stream && item.op != Op::Create {
                    break 'outcome err(
                        item.id.clone(),
                        400,
                        "illegal_argument_exception",
                        format!("only write ops with an op_type of create are allowed in data streams (index [{}])", item.index),
                    );
                }
                let outcome = match item.op {
                    Op::Delete => {
                        let id = item.id.clone().unwrap_or_default();
                        match index.docs.remove(&id) {
                            Some(d) => ItemOutcome::Deleted {
                                id,
                                seq_no,
                                version: d.version + 1,
                            },
                            None => ItemOutcome::NotFound { id },
                        }
                    }
                    Op::Create | Op::Index => {
                        let id = item.id.clone().unwrap_or_else(generate_id);
                        let source = item.source.clone().unwrap_or_default();
                        match index.docs.get_mut(&id) {
                            Some(existing) if item.op == Op::Create => {
                                conflicts += 1;
                                let reason = format!("[{id}]: version conflict, document already exists (current version [{}])", existing.version);
                                ItemOutcome::Error {
                                    id: Some(id),
                                    status: 409,
                                    kind: "version_conflict_engine_exception",
                                    reason,
                                }
                            }
                            Some(existing) => {
                                updated += 1;
                                existing.version += 1;
                                existing.seq_no = seq_no;
                                existing.source = source;
                                ItemOutcome::Updated {
                                    id,
                                    seq_no,
                                    version: existing.version,
                                }
                            }
                            None => {
                                let paths = store::field_paths(&source, &index.flattened);
                                let new: Vec<String> = paths
                                    .into_iter()
                                    .filter(|p| !index.fields.contains(p))
                                    .collect::<std::collections::BTreeSet<_>>()
                                    .into_iter()
                                    .collect();
                                if index.fields.len() + new.len() > index.field_limit {
                                    break 'outcome err(
                                        Some(id),
                                        400,
                                        "illegal_argument_exception",
                                        format!(
                                            "Limit of total fields [{}] has been exceeded while adding new fields [{}]",
                                            index.field_limit,
                                            new.len()
                                        ),
                                    );
                                }
                                index.fields.extend(new);
                                created += 1;
                                index.docs.insert(
                                    id.clone(),
                                    StoredDoc {
                                        source,
                                        seq_no,
                                        version: 1,
                                    },
                                );
                                ItemOutcome::Created { id, seq_no }
                            }
                        }
                    }
                    Op::Update => unreachable!("refused above"),
                };
                if !matches!(
                    outcome,
                    ItemOutcome::Error { .. } | ItemOutcome::NotFound { .. }
                ) {
                    store.next_seq += 1;
                }
                outcome
            };
            if matches!(
                outcome,
                ItemOutcome::Error { .. } | ItemOutcome::NotFound { .. }
            ) {
                errors = true;
            }
            write_item(&mut out_items, item.op, &item.index, &outcome);
        }
    }
    add(&c.created, created);
    add(&c.updated, updated);
    add(&c.conflicts, conflicts);
    add(&c.injected_item_errors, injected);
    add(&c.mapping_errors, mapping);
    if apply_then_drop {
        add(&c.dropped_connections, 1);
        dropper.notify_one();
        return std::future::pending().await;
    }
    let mut out = Vec::with_capacity(out_items.len() + 64);
    out.extend_from_slice(
        format!(
            "{{\"took\":{},\"errors\":{errors},\"items\":[",
            started.elapsed().as_millis()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&out_items);
    out.extend_from_slice(b"]}");
    respond(StatusCode::OK, "application/json", out)
}

fn generate_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 15] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
