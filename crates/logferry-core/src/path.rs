//! kubelet's node log layout.
//!
//! Facts (kubernetes/kubernetes `pkg/kubelet/kuberuntime/helpers.go`,
//! `BuildPodLogsDirectory`, `BuildContainerLogsDirectory`, `buildContainerLogsPath`,
//! and `legacy.go` `legacyLogSymlink`):
//!
//! * `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`, with rotated
//!   siblings `<restart>.log.<YYYYMMDD-HHMMSS>` and `…​.gz`;
//! * `/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log`, a
//!   symlink to the active file, its name truncated to 255 bytes.
//!
//! Namespace and pod names are DNS-1123 names, so they never contain `_`.

use std::path::Path;

/// A file's place under `/var/log/pods`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KubeLogPath {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID (for static pods: the config hash).
    pub pod_uid: String,
    /// Container name.
    pub container: String,
    /// Restart count (`0` for `0.log`).
    pub restart: u32,
    /// Whether this is a rotated sibling (`0.log.20261122-134510`).
    pub rotated: bool,
    /// Whether the file is gzip-compressed (`….gz`).
    pub compressed: bool,
}

impl KubeLogPath {
    /// Parses `<pods_dir>/<ns>_<pod>_<uid>/<container>/<n>.log[.<ts>[.gz]]`.
    /// Only the last three components are looked at. Returns `None` for any
    /// other shape (including `.tmp` files of kubelet's compression step).
    pub fn parse(path: &Path) -> Option<KubeLogPath> {
        let mut parts = path.iter().rev();
        let file = parts.next()?.to_str()?;
        let container = parts.next()?.to_str()?;
        let pod_dir = parts.next()?.to_str()?;
        let (restart, rest) = file.split_once(".log")?;
        let restart: u32 = restart.parse().ok()?;
        let (rotated, compressed) = match rest {
            "" => (false, false),
            r if r.starts_with('.') && r.ends_with(".gz") && r.len() > 4 => (true, true),
            r if r.starts_with('.') && !r.ends_with(".tmp") && r.len() > 1 => (true, false),
            _ => return None,
        };
        let mut fields = pod_dir.splitn(3, '_');
        let namespace = fields.next()?;
        let pod_name = fields.next()?;
        let pod_uid = fields.next()?;
        if namespace.is_empty() || pod_name.is_empty() || pod_uid.is_empty() || container.is_empty()
        {
            return None;
        }
        Some(KubeLogPath {
            namespace: namespace.to_owned(),
            pod_name: pod_name.to_owned(),
            pod_uid: pod_uid.to_owned(),
            container: container.to_owned(),
            restart,
            rotated,
            compressed,
        })
    }
}

/// A `/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log` name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ContainerLink {
    /// Pod name.
    pub pod_name: String,
    /// Namespace.
    pub namespace: String,
    /// Container name.
    pub container: String,
    /// Container id (64 hex digits for containerd and CRI-O), possibly cut short
    /// by kubelet's 255-byte limit on the whole name; `None` if nothing is left of it.
    pub container_id: Option<String>,
}

impl ContainerLink {
    /// Parses the file name of a `/var/log/containers` symlink. Returns `None`
    /// for any other shape.
    pub fn parse(path: &Path) -> Option<ContainerLink> {
        let name = path.file_name()?.to_str()?;
        let name = name.strip_suffix(".log").unwrap_or(name);
        let mut fields = name.splitn(3, '_');
        let pod_name = fields.next()?;
        let namespace = fields.next()?;
        let rest = fields.next()?;
        let (container, id) = match rest.rsplit_once('-') {
            Some((c, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (c, Some(id.to_owned()))
            }
            _ => (rest, None),
        };
        if pod_name.is_empty() || namespace.is_empty() || container.is_empty() {
            return None;
        }
        Some(ContainerLink {
            pod_name: pod_name.to_owned(),
            namespace: namespace.to_owned(),
            container: container.to_owned(),
            container_id: id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_active_rotated_and_compressed_pod_logs() {
        let p = KubeLogPath::parse(Path::new(
            "/var/log/pods/airflow_task-pod-1_0d3c1e6a-0000-4000-8000-000000000001/base/0.log",
        ))
        .unwrap();
        assert_eq!(p.namespace, "airflow");
        assert_eq!(p.pod_name, "task-pod-1");
        assert_eq!(p.pod_uid, "0d3c1e6a-0000-4000-8000-000000000001");
        assert_eq!(p.container, "base");
        assert_eq!((p.restart, p.rotated, p.compressed), (0, false, false));
        let r = KubeLogPath::parse(Path::new("/x/ns_p_u/c/2.log.20261122-134510")).unwrap();
        assert_eq!((r.restart, r.rotated, r.compressed), (2, true, false));
        let g = KubeLogPath::parse(Path::new("/x/ns_p_u/c/2.log.20261122-134510.gz")).unwrap();
        assert_eq!((g.rotated, g.compressed), (true, true));
        assert!(KubeLogPath::parse(Path::new("/x/ns_p_u/c/2.log.20261122-134510.tmp")).is_none());
        assert!(KubeLogPath::parse(Path::new("/x/nsp/c/0.log")).is_none());
        assert!(KubeLogPath::parse(Path::new("/x/ns_p_u/c/x.log")).is_none());
    }

    #[test]
    fn parses_container_symlink_names() {
        let id = "5c79b78d458d86fff56127cc8657058c10b837d0f2c147b61afea4c8bc65fad7";
        let l = ContainerLink::parse(Path::new(&format!(
            "/var/log/containers/apache-logs-annotated_default_apache-logs-annotated-{id}.log"
        )))
        .unwrap();
        assert_eq!(l.pod_name, "apache-logs-annotated");
        assert_eq!(l.namespace, "default");
        assert_eq!(l.container, "apache-logs-annotated");
        assert_eq!(l.container_id.as_deref(), Some(id));
        let cut = ContainerLink::parse(Path::new("/c/p_ns_my-container-5c79.log")).unwrap();
        assert_eq!(cut.container, "my-container");
        assert_eq!(cut.container_id.as_deref(), Some("5c79"));
    }
}
