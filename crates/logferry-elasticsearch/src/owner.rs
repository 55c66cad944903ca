//! Owner workloads as Filebeat's `add_kubernetes_metadata` writes them
//! (`kubernetes.deployment.name`, `kubernetes.replicaset.name`,
//! `kubernetes.statefulset.name`, `kubernetes.daemonset.name`,
//! `kubernetes.job.name`, `kubernetes.cronjob.name`), from the pod's
//! controller owner reference.
//!
//! Filebeat looks the ReplicaSet's and Job's own owners up in the API;
//! logferry derives them from Kubernetes' naming rules instead (no extra
//! watch): a Deployment names its ReplicaSets `<deployment>-<pod-template-hash>`
//! and a CronJob names its Jobs `<cronjob>-<scheduled time in minutes>`
//! (<https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label>,
//! <https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/>).
//! A ReplicaSet or Job created by hand whose name happens to look like that
//! gets a deployment or cronjob name too.

/// `(field object, name)` pairs for a pod owned by `(kind, name)`, e.g.
/// `[("replicaset", "web-7d9f8b6c5"), ("deployment", "web")]`.
pub(crate) fn workloads<'a>(kind: &str, name: &'a str) -> Vec<(&'static str, &'a str)> {
    match kind {
        "ReplicaSet" => {
            let mut out = vec![("replicaset", name)];
            if let Some((deployment, hash)) = name.rsplit_once('-') {
                let hash_like = (5..=10).contains(&hash.len())
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                if hash_like && !deployment.is_empty() {
                    out.push(("deployment", deployment));
                }
            }
            out
        }
        "StatefulSet" => vec![("statefulset", name)],
        "DaemonSet" => vec![("daemonset", name)],
        "Job" => {
            let mut out = vec![("job", name)];
            if let Some((cronjob, minutes)) = name.rsplit_once('-') {
                if minutes.len() >= 8
                    && minutes.bytes().all(|b| b.is_ascii_digit())
                    && !cronjob.is_empty()
                {
                    out.push(("cronjob", cronjob));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_follow_kubernetes_naming() {
        assert_eq!(
            workloads("ReplicaSet", "web-7d9f8b6c5"),
            [("replicaset", "web-7d9f8b6c5"), ("deployment", "web")]
        );
        assert_eq!(
            workloads("ReplicaSet", "handmade"),
            [("replicaset", "handmade")]
        );
        assert_eq!(workloads("StatefulSet", "db"), [("statefulset", "db")]);
        assert_eq!(
            workloads("DaemonSet", "logferry"),
            [("daemonset", "logferry")]
        );
        assert_eq!(
            workloads("Job", "backup-29412345"),
            [("job", "backup-29412345"), ("cronjob", "backup")]
        );
        assert_eq!(workloads("Job", "migrate-1"), [("job", "migrate-1")]);
        assert!(workloads("Node", "n").is_empty());
    }
}
