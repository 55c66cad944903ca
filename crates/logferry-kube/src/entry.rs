//! The small per-pod entry the store keeps instead of whole Pod objects.

use std::collections::BTreeMap;
use std::mem::size_of;

use globset::GlobSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use logferry_core::{AirflowTask, ContainerMeta};

use crate::airflow::airflow_task;

/// Annotation with which kubelet links a mirror pod to its static pod; the value is the
/// static pod's config hash, which is the "uid" in the static pod's log directory name.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// What the store keeps of one pod version: the fields logferry enriches records with,
/// nothing else. Built once per pod version (watch event) from the full object, which
/// is dropped right after.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub ip: Option<String>,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Allow-listed annotations only.
    pub annotations: BTreeMap<String, String>,
    /// Controller owner reference: `(kind, name)`.
    pub owner: Option<(String, String)>,
    /// Regular, init and ephemeral containers.
    pub containers: Vec<ContainerMeta>,
    pub airflow: Option<AirflowTask>,
    /// The pod's exclude annotation is `"true"`.
    pub excluded: bool,
    /// Static pods: the config hash kubelet uses as the log directory's uid.
    pub mirror_hash: Option<String>,
}

impl PodInfo {
    /// Strips a Pod down to a [`PodInfo`]. `None` when it has no namespace, name or uid.
    pub fn from_pod(pod: &Pod, allow: &GlobSet, exclude_annotation: &str) -> Option<PodInfo> {
        let meta = &pod.metadata;
        let empty = BTreeMap::new();
        let labels = meta.labels.clone().unwrap_or_default();
        let all_annotations = meta.annotations.as_ref().unwrap_or(&empty);
        let annotations = all_annotations
            .iter()
            .filter(|(k, _)| allow.is_match(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let owner = meta.owner_references.as_ref().and_then(|refs| {
            refs.iter()
                .find(|r| r.controller == Some(true))
                .or_else(|| refs.first())
                .map(|r| (r.kind.clone(), r.name.clone()))
        });
        let mut containers = Vec::new();
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
                containers.push(ContainerMeta {
                    name: name.clone(),
                    image: image.clone(),
                    id: None,
                    runtime: None,
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
                match containers.iter_mut().find(|c| c.name == cs.name) {
                    Some(c) => {
                        c.id = Some(id.to_owned());
                        c.runtime = runtime.map(str::to_owned);
                    }
                    None => containers.push(ContainerMeta {
                        name: cs.name.clone(),
                        image: Some(cs.image.clone()),
                        id: Some(id.to_owned()),
                        runtime: runtime.map(str::to_owned),
                    }),
                }
            }
        }
        containers.shrink_to_fit();
        Some(PodInfo {
            namespace: meta.namespace.clone().filter(|s| !s.is_empty())?,
            name: meta.name.clone().filter(|s| !s.is_empty())?,
            uid: meta.uid.clone().filter(|s| !s.is_empty())?,
            ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            airflow: airflow_task(&labels, all_annotations),
            excluded: is_true(all_annotations.get(exclude_annotation)),
            mirror_hash: all_annotations.get(MIRROR_ANNOTATION).cloned(),
            labels,
            annotations,
            owner,
            containers,
        })
    }

    /// Bytes this entry occupies (inline size plus heap), *excluding* the label and
    /// annotation maps' contents (the budget is stated beyond labels and annotations).
    pub fn heap_bytes_without_maps(&self) -> usize {
        fn s(v: &String) -> usize {
            v.capacity()
        }
        fn o(v: &Option<String>) -> usize {
            v.as_ref().map_or(0, String::capacity)
        }
        let mut n = size_of::<PodInfo>() + s(&self.namespace) + s(&self.name) + s(&self.uid);
        n += o(&self.ip) + o(&self.node) + o(&self.mirror_hash);
        if let Some((k, v)) = &self.owner {
            n += s(k) + s(v);
        }
        n += self.containers.capacity() * size_of::<ContainerMeta>();
        for c in &self.containers {
            n += s(&c.name) + o(&c.image) + o(&c.id) + o(&c.runtime);
        }
        if let Some(a) = &self.airflow {
            n += size_of::<AirflowTask>() + s(&a.dag_id) + s(&a.task_id) + s(&a.run_id);
            n += s(&a.try_number) + s(&a.map_index) + o(&a.logical_date);
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

/// What the store keeps of a namespace: whether it opts out.
pub(crate) fn namespace_excluded(ns: &Namespace, exclude_annotation: &str) -> bool {
    is_true(
        ns.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(exclude_annotation)),
    )
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
