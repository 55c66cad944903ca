//! One view of a file's metadata, whether it came from the Kubernetes API
//! ([`PodMeta`]) or only from the file's path (degraded mode).

use logferry_core::{AirflowTask, PodMeta, Source};
use std::collections::BTreeMap;

/// Borrowed per-file metadata: `batch.meta` when present, otherwise what the
/// source's [`KubeLogPath`](logferry_core::KubeLogPath) and container id carry.
pub(crate) struct MetaView<'a> {
    pub path: &'a std::path::Path,
    pub namespace: Option<&'a str>,
    pub pod_name: Option<&'a str>,
    pub pod_uid: Option<&'a str>,
    pub pod_ip: Option<&'a str>,
    pub node_name: Option<&'a str>,
    pub container_name: Option<&'a str>,
    pub container_image: Option<&'a str>,
    pub container_id: Option<&'a str>,
    pub container_runtime: Option<&'a str>,
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub airflow: Option<&'a AirflowTask>,
    pub host_name: Option<&'a str>,
    /// The pod's controller owner `(kind, name)`.
    pub owner: Option<(&'a str, &'a str)>,
}

impl<'a> MetaView<'a> {
    pub(crate) fn new(
        source: &'a Source,
        meta: Option<&'a PodMeta>,
        host_name: Option<&'a str>,
    ) -> Self {
        let mut v = MetaView {
            path: &source.path,
            namespace: None,
            pod_name: None,
            pod_uid: None,
            pod_ip: None,
            node_name: None,
            container_name: None,
            container_image: None,
            container_id: source.container_id.as_deref(),
            container_runtime: None,
            labels: None,
            annotations: None,
            namespace_labels: None,
            airflow: None,
            host_name,
            owner: None,
        };
        if let Some(m) = meta {
            v.namespace = Some(&m.namespace);
            v.pod_name = Some(&m.pod_name);
            v.pod_uid = Some(&m.pod_uid);
            v.pod_ip = m.pod_ip.as_deref();
            v.node_name = m.node_name.as_deref();
            v.container_name = Some(&m.container.name);
            v.container_image = m.container.image.as_deref();
            v.container_id = m.container.id.as_deref().or(v.container_id);
            v.container_runtime = m.container.runtime.as_deref();
            v.labels = Some(&m.labels).filter(|l| !l.is_empty());
            v.annotations = Some(&m.annotations).filter(|a| !a.is_empty());
            v.namespace_labels = Some(&m.namespace_labels).filter(|l| !l.is_empty());
            v.airflow = m.airflow.as_ref();
            v.owner = m.owner.as_ref().map(|(k, n)| (k.as_str(), n.as_str()));
        } else if let Some(k) = &source.kube {
            v.namespace = Some(&k.namespace);
            v.pod_name = Some(&k.pod_name);
            v.pod_uid = Some(&k.pod_uid);
            v.container_name = Some(&k.container);
        }
        if v.node_name.is_none() && (v.namespace.is_some()) {
            // logferry runs on the node whose pods it reads.
            v.node_name = host_name;
        }
        v.namespace = v.namespace.filter(|s| !s.is_empty());
        v.pod_name = v.pod_name.filter(|s| !s.is_empty());
        v.pod_uid = v.pod_uid.filter(|s| !s.is_empty());
        v.container_name = v.container_name.filter(|s| !s.is_empty());
        v
    }

    /// The value of an ECS field path (see [`crate::index`]).
    pub(crate) fn field(&self, path: &str) -> Option<&'a str> {
        match path {
            "kubernetes.namespace" => self.namespace,
            "kubernetes.pod.name" => self.pod_name,
            "kubernetes.pod.uid" => self.pod_uid,
            "kubernetes.pod.ip" => self.pod_ip,
            "kubernetes.node.name" => self.node_name,
            "kubernetes.container.name" => self.container_name,
            "container.id" => self.container_id,
            "container.image.name" => self.container_image,
            "container.runtime" => self.container_runtime,
            "host.name" => self.host_name,
            _ => {
                if let Some(k) = path.strip_prefix("kubernetes.labels.") {
                    self.labels?.get(k).map(String::as_str)
                } else if let Some(k) = path.strip_prefix("kubernetes.annotations.") {
                    self.annotations?.get(k).map(String::as_str)
                } else if let Some(k) = path.strip_prefix("kubernetes.namespace_labels.") {
                    self.namespace_labels?.get(k).map(String::as_str)
                } else {
                    None
                }
            }
        }
    }
}
