//! The answers of the pod store: [`Lookup`], why a lookup fell back to the path's
//! metadata ([`PathOnlyReason`]), and the store's memory figures ([`StoreMemory`]).

use std::sync::Arc;

use logferry_core::PodMeta;

/// The answer of [`PodStore::lookup`](crate::PodStore::lookup).
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// Full metadata from the API (`origin` [`MetadataOrigin::Api`](logferry_core::MetadataOrigin::Api)). The same `Arc` is
    /// returned for the same (pod uid, container, container id) until the pod changes,
    /// so `Arc::ptr_eq` tells the caller whether metadata changed.
    Found(Arc<PodMeta>),
    /// The pod or its namespace carries the exclude annotation with value `"true"`:
    /// its records must not be shipped.
    Excluded,
    /// Only what the path carries (`origin` [`MetadataOrigin::Path`](logferry_core::MetadataOrigin::Path): namespace, pod,
    /// uid, container, container id), and why.
    PathOnly(Arc<PodMeta>, PathOnlyReason),
}

impl Lookup {
    /// The metadata to attach to records, `None` for [`Lookup::Excluded`].
    pub fn meta(&self) -> Option<&Arc<PodMeta>> {
        match self {
            Lookup::Found(m) | Lookup::PathOnly(m, _) => Some(m),
            Lookup::Excluded => None,
        }
    }
}

/// Why a lookup fell back to path-only metadata.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PathOnlyReason {
    /// The API server is unreachable, times out, or forbids the watch (RBAC), or the
    /// store is [disabled](crate::PodStore::disabled).
    ApiUnavailable,
    /// The store is synced but the pod did not appear within
    /// [`KubeConfig::lookup_wait`](crate::KubeConfig::lookup_wait).
    PodUnknown,
    /// A pod with this namespace and name is known, but with another uid (recreated
    /// pod), and the file's uid did not appear within [`KubeConfig::lookup_wait`](crate::KubeConfig::lookup_wait).
    UidMismatch,
    /// The pod was deleted and its metadata evicted after the grace period.
    Expired,
}

impl PathOnlyReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: &'static [PathOnlyReason] = &[
        PathOnlyReason::ApiUnavailable,
        PathOnlyReason::PodUnknown,
        PathOnlyReason::UidMismatch,
        PathOnlyReason::Expired,
    ];

    /// A bounded metric label: `api_unavailable`, `pod_unknown`, `uid_mismatch`, `expired`.
    pub fn as_label(self) -> &'static str {
        match self {
            PathOnlyReason::ApiUnavailable => "api_unavailable",
            PathOnlyReason::PodUnknown => "pod_unknown",
            PathOnlyReason::UidMismatch => "uid_mismatch",
            PathOnlyReason::Expired => "expired",
        }
    }
}

/// Memory held by the store's pod entries, measured as inline size plus heap
/// capacity of every field (see [`PodStore::memory_usage`](crate::PodStore::memory_usage)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Pod entries (live pods and tombstones).
    pub pods: usize,
    /// Bytes of the entries excluding label and annotation contents, in bytes.
    pub entry_bytes: usize,
    /// Bytes of label and allow-listed annotation keys and values (with map overhead).
    pub label_annotation_bytes: usize,
}
