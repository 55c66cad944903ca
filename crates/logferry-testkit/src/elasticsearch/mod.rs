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
//!
//! # Layout
//!
//! `server` accepts connections and records requests; `routes`
//! authenticates, checks privileges (`security`) and dispatches to `bulk`,
//! `management` (index templates, data streams, indices), `search` or
//! `control` (`/_double/`); every handler works on the shared `state`,
//! whose `store` holds the documents; `faults` decides the injected faults;
//! `http` builds the responses; `tls` makes the HTTPS acceptor.

mod bulk;
mod control;
mod faults;
mod http;
mod management;
mod routes;
mod search;
mod security;
mod server;
mod state;
mod store;
mod tls;

pub use faults::{FaultConfig, Faults, Stats};
pub use security::{Principal, Security};
pub use state::RecordedRequest;
pub use tls::EsDoubleTls;

use bytes::Bytes;
use faults::Counters;
use parking_lot::Mutex;
use serde_json::Value;
use server::serve;
use state::{reset, State};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
