//! The double's shared store: the objects and event log behind one lock, the
//! channels that wake watches (new resourceVersion, dropped watches, freeze),
//! the listener handle and the request counters; and its writes, each of
//! which records an event and wakes the watches.

use super::state::{meta_str, new_uid, now_rfc3339, EventType, Kind, State};
use super::{DoubleOptions, DoubleStats};
use anyhow::{anyhow, bail};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running listener: cancel `stop` to close it and its connections.
pub(super) struct Server {
    pub(super) stop: CancellationToken,
    pub(super) task: JoinHandle<()>,
}

/// Everything the handlers share.
pub(super) struct Inner {
    pub(super) state: Mutex<State>,
    /// Current resourceVersion, for waking watches.
    pub(super) rv_tx: watch::Sender<u64>,
    /// Generation of `drop_watches` commands.
    pub(super) drop_tx: watch::Sender<u64>,
    /// Freeze flag changes.
    pub(super) freeze_tx: watch::Sender<bool>,
    pub(super) options: DoubleOptions,
    pub(super) addr: SocketAddr,
    pub(super) server: Mutex<Option<Server>>,
    pub(super) lists: AtomicU64,
    pub(super) watches: AtomicU64,
}

impl Inner {
    /// A store with no objects at resourceVersion 1000, not yet serving.
    pub(super) fn new(options: DoubleOptions, addr: SocketAddr) -> Arc<Inner> {
        let start_rv = 1000;
        Arc::new(Inner {
            state: Mutex::new(State {
                rv: start_rv,
                oldest_rv: start_rv,
                ..State::default()
            }),
            rv_tx: watch::channel(start_rv).0,
            drop_tx: watch::channel(0).0,
            freeze_tx: watch::channel(false).0,
            options,
            addr,
            server: Mutex::new(None),
            lists: AtomicU64::new(0),
            watches: AtomicU64::new(0),
        })
    }

    pub(super) fn notify(&self, rv: u64) {
        self.rv_tx.send_replace(rv);
    }

    pub(super) fn create(&self, kind: Kind, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("object has no metadata.name"))?
            .to_owned();
        if !object["metadata"].is_object() {
            bail!("object has no metadata");
        }
        let mut state = self.state.lock();
        let ns = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        let key = (ns.clone(), name.clone());
        if kind == Kind::Pods && state.pods.contains_key(&key) {
            bail!("pods \"{name}\" already exists in namespace {ns}");
        }
        let md = &mut object["metadata"];
        md["namespace"] = Value::String(ns.clone());
        if md
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            md["uid"] = Value::String(new_uid());
        }
        if md.get("creationTimestamp").is_none_or(Value::is_null) {
            md["creationTimestamp"] = Value::String(now_rfc3339());
        }
        object["kind"] = Value::String(kind.object_kind().to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        state.ensure_namespace(&ns);
        let stored = state.record(kind, EventType::Added, object, None);
        state.pods.insert(key, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    pub(super) fn update(&self, kind: Kind, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .ok_or_else(|| anyhow!("object has no metadata.name"))?
            .to_owned();
        let ns = meta_str(&object, "namespace")
            .unwrap_or("default")
            .to_owned();
        let mut state = self.state.lock();
        let key = (ns.clone(), name.clone());
        let prev = state
            .pods
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("pods \"{name}\" not found in namespace {ns}"))?;
        let md = &mut object["metadata"];
        md["namespace"] = Value::String(ns);
        if md.get("uid").and_then(Value::as_str).is_none() {
            md["uid"] = prev["metadata"]["uid"].clone();
        }
        if md.get("creationTimestamp").is_none() {
            md["creationTimestamp"] = prev["metadata"]["creationTimestamp"].clone();
        }
        object["kind"] = Value::String(kind.object_kind().to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        let stored = state.record(kind, EventType::Modified, object, Some(prev));
        state.pods.insert(key, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    pub(super) fn upsert_namespace(&self, mut object: Value) -> anyhow::Result<Value> {
        let name = meta_str(&object, "name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("namespace has no metadata.name"))?
            .to_owned();
        let mut state = self.state.lock();
        let prev = state.namespaces.get(&name).cloned();
        let md = &mut object["metadata"];
        if md.get("uid").and_then(Value::as_str).is_none() {
            md["uid"] = prev.as_ref().map_or_else(
                || Value::String(new_uid()),
                |p| p["metadata"]["uid"].clone(),
            );
        }
        if md.get("creationTimestamp").is_none() {
            md["creationTimestamp"] = Value::String(now_rfc3339());
        }
        if let Some(m) = md.as_object_mut() {
            m.remove("namespace");
        }
        object["kind"] = Value::String("Namespace".to_owned());
        object["apiVersion"] = Value::String("v1".to_owned());
        if object.get("status").is_none() {
            object["status"] = json!({"phase": "Active"});
        }
        let ty = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        let stored = state.record(Kind::Namespaces, ty, object, prev);
        state.namespaces.insert(name, Arc::clone(&stored));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    pub(super) fn delete(&self, kind: Kind, ns: &str, name: &str) -> anyhow::Result<Value> {
        let mut state = self.state.lock();
        let prev = match kind {
            Kind::Pods => state.pods.remove(&(ns.to_owned(), name.to_owned())),
            Kind::Namespaces => state.namespaces.remove(name),
        }
        .ok_or_else(|| anyhow!("{} \"{name}\" not found", kind.plural()))?;
        let stored = state.record(kind, EventType::Deleted, (*prev).clone(), Some(prev));
        let rv = state.rv;
        drop(state);
        self.notify(rv);
        Ok((*stored).clone())
    }

    pub(super) fn expire(&self) {
        let mut state = self.state.lock();
        state.log.clear();
        state.oldest_rv = state.rv;
    }

    pub(super) fn drop_watches(&self) {
        self.state.lock().frozen = false;
        self.freeze_tx.send_replace(false);
        self.drop_tx.send_modify(|g| *g += 1);
    }

    pub(super) fn stats(&self) -> DoubleStats {
        DoubleStats {
            resource_version: self.state.lock().rv,
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
        }
    }
}
