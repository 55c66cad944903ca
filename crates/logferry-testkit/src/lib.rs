//! # logferry-testkit (dev-only)
//!
//! Test doubles that speak the real wire protocols, so that logferry's tests
//! talk to them with the real clients (`kube`, `elasticsearch`) over real HTTP:
//!
//! * [`elasticsearch`]: an HTTP server that behaves like Elasticsearch 8.x for
//!   everything logferry uses (bulk API, templates, search/count), with fault
//!   injection. It is a *double*, not Elasticsearch.
//! * [`kubernetes`]: an HTTP server that speaks the Kubernetes list/watch
//!   protocol for pods and namespaces, with fault injection. A *double*, not an
//!   API server.
//! * [`tls`]: a test PKI generated at run time (CA, server and client
//!   certificates, an unrelated CA) for TLS and mutual TLS against the
//!   Elasticsearch double.
//! * [`nats`]: the *real* `nats-server` (JetStream on, temporary store)
//!   started on a free loopback port; NATS is not doubled.
//! * [`writer`]: a container-runtime stand-in that writes CRI-framed lines into a
//!   kubelet-style log tree and rotates them the way kubelet does.
//!
//! Nothing here is shipped in the logferry image.

#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
#[cfg(feature = "kubernetes")]
pub mod kubernetes;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "elasticsearch")]
pub mod tls;
#[cfg(feature = "writer")]
pub mod writer;
