//! Pod metadata as the pipeline attaches it to records.

use crate::airflow::AirflowTask;
use std::collections::BTreeMap;

/// Where a [`PodMeta`] came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MetadataOrigin {
    /// From the Kubernetes API (the node-scoped pod watch): every field that
    /// the pod has is filled in.
    Api,
    /// Only what the file path carries (namespace, pod, uid, container,
    /// container id): the API was unreachable, the pod unknown, or the
    /// metadata expired.
    Path,
    /// Not a Kubernetes container log (files mode).
    None,
}

/// One container of one pod: what a record is enriched with.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ContainerMeta {
    /// Container name (`spec.containers[].name`).
    pub name: String,
    /// Image reference (`spec.containers[].image`).
    pub image: Option<String>,
    /// Container id without the runtime prefix (64 hex digits for containerd).
    pub id: Option<String>,
    /// Runtime name from the `containerID` prefix (`containerd`, `cri-o`, `docker`).
    pub runtime: Option<String>,
}

/// Metadata of one container of one pod: everything a record is enriched with.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PodMeta {
    /// Where the metadata came from.
    pub origin: MetadataOrigin,
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Pod IP (`status.podIP`).
    pub pod_ip: Option<String>,
    /// Node name (`spec.nodeName`).
    pub node_name: Option<String>,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Allow-listed pod annotations.
    pub annotations: BTreeMap<String, String>,
    /// Allow-listed labels of the pod's namespace (Filebeat's
    /// `kubernetes.namespace_labels`); empty unless configured.
    pub namespace_labels: BTreeMap<String, String>,
    /// Controller owner reference: `(kind, name)`.
    pub owner: Option<(String, String)>,
    /// The container the record's file belongs to.
    pub container: ContainerMeta,
    /// The Airflow task, for Airflow worker pods.
    pub airflow: Option<AirflowTask>,
}

impl PodMeta {
    /// Metadata from a path alone (degraded mode).
    pub fn from_path(path: &crate::KubeLogPath, container_id: Option<&str>) -> PodMeta {
        PodMeta {
            origin: MetadataOrigin::Path,
            namespace: path.namespace.clone(),
            pod_name: path.pod_name.clone(),
            pod_uid: path.pod_uid.clone(),
            pod_ip: None,
            node_name: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
            owner: None,
            container: ContainerMeta {
                name: path.container.clone(),
                image: None,
                id: container_id.map(str::to_owned),
                runtime: None,
            },
            airflow: None,
        }
    }
}
