//! `kubernetes`: pod metadata from the API (grace after deletion, the
//! exclude annotation, annotation and label allow/deny lists, namespace
//! labels, the lookup wait). Defaults are the pod store's (`KubeConfig::default`).

use super::reader::{Problems, Section};
use super::Kubernetes;
use logferry_kube::KubeConfig;

pub(super) fn read_kubernetes(mut s: Section<'_>, p: &mut Problems) -> Kubernetes {
    // The pod store's own defaults (its checks run on the result, see `library_problems`).
    let d = KubeConfig::default();
    let k = Kubernetes {
        cluster_name: s.string("cluster_name", p),
        enabled: s.boolean("enabled", p).unwrap_or(true),
        metadata_grace: s.duration("metadata_grace", p).unwrap_or(d.metadata_grace),
        exclude_annotation: s
            .string("exclude_annotation", p)
            .unwrap_or(d.exclude_annotation),
        annotation_allowlist: s
            .strings("annotation_allowlist", p)
            .unwrap_or(d.annotation_allowlist),
        label_allowlist: s.strings("label_allowlist", p).unwrap_or(d.label_allowlist),
        label_denylist: s.strings("label_denylist", p).unwrap_or(d.label_denylist),
        namespace_label_allowlist: s
            .strings("namespace_label_allowlist", p)
            .unwrap_or(d.namespace_label_allowlist),
        lookup_wait: s.duration("lookup_wait", p).unwrap_or(d.lookup_wait),
    };
    s.finish(p);
    k
}
