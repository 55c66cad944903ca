//! The double's objects and their history: pods and namespaces by name, one
//! global resourceVersion counter, and the event log that watches replay
//! (every create, update and delete takes the next resourceVersion and is
//! appended, as etcd revisions are; see
//! <https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>).

use super::Fault;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The resources the double serves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Pods,
    Namespaces,
}

impl Kind {
    pub(super) fn list_kind(self) -> &'static str {
        match self {
            Kind::Pods => "PodList",
            Kind::Namespaces => "NamespaceList",
        }
    }
    pub(super) fn object_kind(self) -> &'static str {
        match self {
            Kind::Pods => "Pod",
            Kind::Namespaces => "Namespace",
        }
    }
    pub(super) fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Namespaces => "namespaces",
        }
    }
}

/// What a logged change did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change in the event log: the object after it (`prev`: before it).
pub(super) struct LogEvent {
    pub(super) rv: u64,
    pub(super) kind: Kind,
    pub(super) ty: EventType,
    pub(super) object: Arc<Value>,
    pub(super) prev: Option<Arc<Value>>,
}

/// Every object, the event log and the injected fault.
#[derive(Default)]
pub(super) struct State {
    pub(super) rv: u64,
    /// Events with `rv > oldest_rv` are all in `log`.
    pub(super) oldest_rv: u64,
    pub(super) log: Vec<LogEvent>,
    /// (namespace, name) → pod.
    pub(super) pods: BTreeMap<(String, String), Arc<Value>>,
    pub(super) namespaces: BTreeMap<String, Arc<Value>>,
    pub(super) fault: Fault,
    pub(super) frozen: bool,
}

/// A random v4 UUID, as the API server assigns to `metadata.uid`.
pub(super) fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

/// Now, as `metadata.creationTimestamp` is written.
pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A string field of `metadata`.
pub(super) fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("metadata")?.get(key)?.as_str()
}

impl State {
    pub(super) fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    pub(super) fn record(
        &mut self,
        kind: Kind,
        ty: EventType,
        mut object: Value,
        prev: Option<Arc<Value>>,
    ) -> Arc<Value> {
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let object = Arc::new(object);
        self.log.push(LogEvent {
            rv,
            kind,
            ty,
            object: Arc::clone(&object),
            prev,
        });
        object
    }

    pub(super) fn ensure_namespace(&mut self, name: &str) {
        if !self.namespaces.contains_key(name) {
            let ns = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": now_rfc3339()},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
            });
            let stored = self.record(Kind::Namespaces, EventType::Added, ns, None);
            self.namespaces.insert(name.to_owned(), stored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_v4_uuids() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(u.matches('-').count(), 4);
    }
}
