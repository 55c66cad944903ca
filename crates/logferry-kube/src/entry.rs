//! The small per-pod entry the store keeps instead of whole Pod objects.

use std::collections::BTreeMap;
use std::mem::size_of;
use std::sync::Arc;

use crate::config::KeyFilters;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use logferry_core::AirflowTask;

use crate::airflow::airflow_task;

/// What the store keeps of a namespace.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub(crate) struct NsInfo {
    /// The exclude annotation is `"true"`.
    pub excluded: bool,
    /// Allow-listed labels (`kubernetes.namespace_labels`); empty unless enabled.
    pub labels: Arc<BTreeMap<String, String>>,
}

/// Annotation with which kubelet links a mirror pod to its static pod; the value is the
/// static pod's config hash, which is the "uid" in the static pod's log directory name.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the store keeps of one pod version: the fields logferry enriches records with,
/// nothing else, in boxed strings and slices without spare capacity. Built once per pod
/// version (watch event) from the full object, which is dropped right after.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct PodInfo {
    pub namespace: Box<str>,
    pub name: Box<str>,
    pub uid: Box<str>,
    pub ip: Option<Box<str>>,
    pub node: Option<Box<str>>,
    pub labels: BTreeMap<String, String>,
    /// Allow-listed annotations only.
    pub annotations: BTreeMap<String, String>,
    /// Controller owner reference: `(kind, name)`.
    pub owner: Option<(Box<str>, Box<str>)>,
    /// Regular, init and ephemeral containers.
    pub containers: Box<[ContainerInfo]>,
    /// Boxed: most pods are not Airflow pods.
    pub airflow: Option<Box<AirflowTask>>,
    /// The pod's exclude annotation is `"true"`.
    pub excluded: bool,
    /// Static pods: the config hash kubelet uses as the log directory's uid.
    pub mirror_hash: Option<Box<str>>,
}

/// One container: name and image from the spec, runtime and id from the status.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ContainerInfo {
    pub name: Box<str>,
    pub image: Option<Box<str>>,
    pub runtime: Option<Box<str>>,
    pub id: Option<Box<str>>,
}

fn boxed(s: &str) -> Box<str> {
    Box::from(s)
}

impl PodInfo {
    /// Strips a Pod down to a [`PodInfo`]. `None` when it has no namespace, name or uid.
    /// Labels and annotations are kept as `filters` say (Airflow's task is read from
    /// all of them first).
    pub fn from_pod(pod: &Pod, filters: &KeyFilters, exclude_annotation: &str) -> Option<PodInfo> {
        let meta = &pod.metadata;
        let empty = BTreeMap::new();
        let all_labels = meta.labels.as_ref().unwrap_or(&empty);
        let labels = all_labels
            .iter()
            .filter(|(k, _)| filters.label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let all_annotations = meta.annotations.as_ref().unwrap_or(&empty);
        let annotations = all_annotations
            .iter()
            .filter(|(k, _)| filters.annotations.is_match(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let owner = meta.owner_references.as_ref().and_then(|refs| {
            refs.iter()
                .find(|r| r.controller == Some(true))
                .or_else(|| refs.first())
                .map(|r| (boxed(&r.kind), boxed(&r.name)))
        });
        let mut containers: Vec<ContainerInfo> = Vec::new();
        if let Some(spec) = &pod.spec {
            let regular = spec.containers.iter().map(|c| (&c.name, &c.image));
            let init = spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| (&c.name, &c.image));
            let eph = spec
                .ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (&c.name, &c.image));
            for (name, image) in regular.chain(init).chain(eph) {
                containers.push(ContainerInfo {
                    name: boxed(name),
                    image: image.as_deref().map(boxed),
                    runtime: None,
                    id: None,
                });
            }
        }
        if let Some(status) = &pod.status {
            let all = status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten())
                .chain(status.ephemeral_container_statuses.iter().flatten());
            for cs in all {
                let Some(full) = cs.container_id.as_deref().filter(|s| !s.is_empty()) else {
                    continue;
                };
                let (runtime, id) = split_container_id(full);
                match containers.iter_mut().find(|c| *c.name == *cs.name) {
                    Some(c) => {
                        c.id = Some(boxed(id));
                        c.runtime = runtime.map(boxed);
                    }
                    None => containers.push(ContainerInfo {
                        name: boxed(&cs.name),
                        image: Some(boxed(&cs.image)),
                        runtime: runtime.map(boxed),
                        id: Some(boxed(id)),
                    }),
                }
            }
        }
        let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(boxed);
        Some(PodInfo {
            namespace: nonempty(&meta.namespace)?,
            name: nonempty(&meta.name)?,
            uid: nonempty(&meta.uid)?,
            ip: pod.status.as_ref().and_then(|s| nonempty(&s.pod_ip)),
            node: pod.spec.as_ref().and_then(|s| nonempty(&s.node_name)),
            airflow: airflow_task(all_labels, all_annotations).map(Box::new),
            excluded: is_true(all_annotations.get(exclude_annotation)),
            mirror_hash: all_annotations.get(MIRROR_ANNOTATION).map(|s| boxed(s)),
            labels,
            annotations,
            owner,
            containers: containers.into_boxed_slice(),
        })
    }

    /// Bytes this entry occupies (inline size plus heap), *excluding* the label and
    /// annotation maps' contents (the budget is stated beyond labels and annotations).
    pub fn heap_bytes_without_maps(&self) -> usize {
        fn o(v: &Option<Box<str>>) -> usize {
            v.as_ref().map_or(0, |s| s.len())
        }
        let mut n = size_of::<PodInfo>() + self.namespace.len() + self.name.len() + self.uid.len();
        n += o(&self.ip) + o(&self.node) + o(&self.mirror_hash);
        if let Some((k, v)) = &self.owner {
            n += k.len() + v.len();
        }
        n += self.containers.len() * size_of::<ContainerInfo>();
        for c in self.containers.iter() {
            n += c.name.len() + o(&c.image) + o(&c.id) + o(&c.runtime);
        }
        if let Some(a) = &self.airflow {
            n += size_of::<AirflowTask>() + a.dag_id.capacity() + a.task_id.capacity();
            n += a.run_id.capacity() + a.try_number.capacity() + a.map_index.capacity();
            n += a.logical_date.as_ref().map_or(0, String::capacity);
        }
        n
    }

    /// Heap bytes of the label and annotation maps (keys, values, and an estimate of
    /// 3 words of B-tree overhead per pair).
    pub fn map_bytes(&self) -> usize {
        self.labels
            .iter()
            .chain(self.annotations.iter())
            .map(|(k, v)| {
                k.capacity() + v.capacity() + 2 * size_of::<String>() + 3 * size_of::<usize>()
            })
            .sum()
    }
}

/// What the store keeps of a namespace: whether it opts out, and its
/// allow-listed labels.
pub(crate) fn namespace_info(
    ns: &Namespace,
    filters: &KeyFilters,
    exclude_annotation: &str,
) -> NsInfo {
    let excluded = is_true(
        ns.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(exclude_annotation)),
    );
    let labels = ns
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| filters.namespace_labels.is_match(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    NsInfo {
        excluded,
        labels: std::sync::Arc::new(labels),
    }
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `containerd://abc…` → `(Some("containerd"), "abc…")`.
pub(crate) fn split_container_id(full: &str) -> (Option<&str>, &str) {
    match full.split_once("://") {
        Some((runtime, id)) => (Some(runtime), id),
        None => (None, full),
    }
}
