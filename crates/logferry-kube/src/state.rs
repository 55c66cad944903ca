//! The store's state behind its lock: pod entries keyed by uid, tombstones with their
//! grace, pins, namespaces, and what the watch events do to them. No I/O, no tasks:
//! [`crate::watch`] feeds it, [`crate::store`] reads it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use logferry_core::{ContainerMeta, KubeLogPath, MetadataOrigin, PodMeta};
use tokio::time::Instant;

use crate::entry::{NsInfo, PodInfo};
use crate::{KubeError, Lookup, PathOnlyReason};

/// How many uids of evicted pods are remembered, so that late lookups answer
/// [`PathOnlyReason::Expired`] at once instead of waiting for a pod that will never come.
const EVICTED_MEMORY: usize = 4096;

pub(crate) struct Entry {
    pub info: PodInfo,
    pub deleted_at: Option<Instant>,
    /// Metadata built for lookups of this pod version: (container, container id used, meta).
    pub metas: Vec<(String, Option<String>, Arc<PodMeta>)>,
}

#[derive(Default)]
pub(crate) struct Pin {
    pub count: u32,
    pub released_at: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct State {
    pub pods: HashMap<String, Entry>,
    /// Namespace name → what is kept of it.
    pub namespaces: HashMap<String, NsInfo>,
    pub pins: HashMap<String, Pin>,
    pub evicted: HashSet<String>,
    pub evicted_order: VecDeque<String>,
    /// Uids seen since the last `Init` of the pod watch (re-list in progress).
    pub pod_init: Option<HashSet<String>>,
    pub ns_init: Option<HashSet<String>>,
    pub pods_synced: bool,
    pub ns_synced: bool,
    pub reported_synced: bool,
    /// The cause label while the API is considered unavailable.
    pub unavailable: Option<&'static str>,
    /// Causes already logged during the current outage.
    pub warned: HashSet<&'static str>,
    /// Counts changes to the pod entries (added, changed, deleted, revived,
    /// evicted): the snapshot writer saves when it moved (see `snapshot`).
    pub generation: u64,
}

/// What changed, for reporting through [`KubeEvents`] after the lock is released.
pub(crate) struct Report {
    pub store_size: Option<usize>,
    pub synced: Option<bool>,
}

impl State {
    pub fn report(&mut self, size_changed: bool) -> Report {
        let synced = self.pods_synced && self.ns_synced;
        let synced_changed = synced != self.reported_synced;
        self.reported_synced = synced;
        Report {
            store_size: size_changed.then_some(self.pods.len()),
            synced: synced_changed.then_some(synced),
        }
    }

    pub fn pod_init(&mut self) -> Report {
        self.pod_init = Some(HashSet::new());
        self.report(false)
    }

    pub fn pod_apply(&mut self, info: PodInfo) -> Report {
        if let Some(seen) = &mut self.pod_init {
            seen.insert(String::from(&*info.uid));
        }
        match self.pods.get_mut(&*info.uid) {
            Some(entry) => {
                let mut changed = entry.deleted_at.take().is_some();
                if entry.info != info {
                    entry.info = info;
                    entry.metas.clear();
                    changed = true;
                }
                self.generation += u64::from(changed);
                self.report(false)
            }
            None => {
                if self.evicted.remove(&*info.uid) {
                    self.evicted_order.retain(|u| **u != *info.uid);
                }
                self.pods.insert(
                    String::from(&*info.uid),
                    Entry {
                        info,
                        deleted_at: None,
                        metas: Vec::new(),
                    },
                );
                self.generation += 1;
                self.report(true)
            }
        }
    }

    pub fn pod_delete(&mut self, info: PodInfo, now: Instant) -> Report {
        let uid = String::from(&*info.uid);
        let size_changed = !self.pods.contains_key(&uid);
        let entry = self.pods.entry(uid).or_insert_with(|| Entry {
            info: info.clone(),
            deleted_at: None,
            metas: Vec::new(),
        });
        let changed = entry.info != info || entry.deleted_at.is_none();
        if entry.info != info {
            entry.info = info;
            entry.metas.clear();
        }
        entry.deleted_at.get_or_insert(now);
        self.generation += u64::from(changed);
        self.report(size_changed)
    }

    /// End of a (re-)list: pods not listed are treated as deleted (tombstoned).
    pub fn pod_init_done(&mut self, now: Instant) -> Report {
        let seen = self.pod_init.take().unwrap_or_default();
        for (uid, entry) in self.pods.iter_mut() {
            if entry.deleted_at.is_none() && !seen.contains(uid) {
                entry.deleted_at = Some(now);
                self.generation += 1;
            }
        }
        self.pods_synced = true;
        if self.unavailable.take().is_some() {
            tracing::info!("Kubernetes API reachable again: full pod metadata resumes");
            self.warned.clear();
        }
        self.report(false)
    }

    pub fn ns_init(&mut self) -> Report {
        self.ns_init = Some(HashSet::new());
        self.report(false)
    }

    pub fn ns_apply(&mut self, name: String, info: NsInfo) -> Report {
        if let Some(seen) = &mut self.ns_init {
            seen.insert(name.clone());
        }
        // A namespace first seen with no (allow-listed) labels changes nothing
        // that metadata built before it carries.
        let labels_changed = match self.namespaces.get(&name) {
            Some(old) => old.labels != info.labels,
            None => !info.labels.is_empty(),
        };
        if labels_changed {
            // Metadata built with the old labels is built again on the next lookup.
            for entry in self.pods.values_mut() {
                if *entry.info.namespace == *name {
                    entry.metas.clear();
                }
            }
        }
        self.namespaces.insert(name, info);
        self.report(false)
    }

    pub fn ns_delete(&mut self, name: &str) -> Report {
        self.namespaces.remove(name);
        self.report(false)
    }

    pub fn ns_init_done(&mut self) -> Report {
        let seen = self.ns_init.take().unwrap_or_default();
        self.namespaces.retain(|name, _| seen.contains(name));
        self.ns_synced = true;
        self.report(false)
    }

    /// A watch failed. Returns whether this cause should be logged (first time during
    /// the current outage).
    pub fn watch_failed(&mut self, resource: &'static str, err: &KubeError) -> (Report, bool) {
        let label = err.as_label();
        match resource {
            "pods" => {
                self.pods_synced = false;
                if err.is_unavailable() {
                    self.unavailable = Some(label);
                }
            }
            _ => self.ns_synced = false,
        }
        let first = self.warned.insert(label);
        (self.report(false), first)
    }

    /// The pod watch stopped (shutdown): lookups of unknown pods answer at once.
    pub fn stopped(&mut self) -> Report {
        self.pods_synced = false;
        self.unavailable = Some("shutdown");
        self.report(false)
    }

    pub fn is_expired(&self, uid: &str, entry: &Entry, now: Instant, grace: Duration) -> bool {
        let Some(deleted_at) = entry.deleted_at else {
            return false;
        };
        // Files of a static pod are pinned under the config hash in their path.
        let pins = [Some(uid), entry.info.mirror_hash.as_deref()];
        let mut since = deleted_at;
        for pin in pins.into_iter().flatten().filter_map(|k| self.pins.get(k)) {
            if pin.count > 0 {
                return false;
            }
            if let Some(released) = pin.released_at {
                since = since.max(released);
            }
        }
        now >= since + grace
    }

    /// Adds the entries a previous run saved (see `snapshot`) that this store does
    /// not know: the API's word wins over the file's. An entry saved as live stays
    /// live until the end of the pod watch's (re-)list, which tombstones it if the pod
    /// is gone; once synced it is a tombstone at once. Tombstones' grace starts `now`
    /// (the files that pin them are found again only after the restart). Uids already
    /// evicted by this run are not brought back. Returns how many were added.
    pub fn merge_saved(&mut self, saved: Vec<(PodInfo, bool)>, now: Instant) -> usize {
        let mut added = 0;
        for (info, deleted) in saved {
            if self.pods.contains_key(&*info.uid) || self.evicted.contains(&*info.uid) {
                continue;
            }
            let deleted_at = (deleted || self.pods_synced).then_some(now);
            self.pods.insert(
                String::from(&*info.uid),
                Entry {
                    info,
                    deleted_at,
                    metas: Vec::new(),
                },
            );
            added += 1;
        }
        self.generation += added as u64;
        added
    }

    /// Evicts tombstones whose grace has run out. Returns whether anything was evicted.
    pub fn sweep(&mut self, now: Instant, grace: Duration) -> Report {
        let expired: Vec<String> = self
            .pods
            .iter()
            .filter(|(uid, e)| self.is_expired(uid, e, now, grace))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in &expired {
            if let Some(entry) = self.pods.remove(uid) {
                if let Some(hash) = entry.info.mirror_hash {
                    self.remember_evicted(hash.into());
                }
            }
            self.remember_evicted(uid.clone());
            self.generation += 1;
        }
        let pods = &self.pods;
        self.pins
            .retain(|uid, p| p.count > 0 || pods.contains_key(uid) || is_mirror(pods, uid));
        self.report(!expired.is_empty())
    }

    fn remember_evicted(&mut self, uid: String) {
        if self.evicted.insert(uid.clone()) {
            self.evicted_order.push_back(uid);
        }
        while self.evicted_order.len() > EVICTED_MEMORY {
            if let Some(old) = self.evicted_order.pop_front() {
                self.evicted.remove(&old);
            }
        }
    }

    pub fn resolve(
        &mut self,
        path: &KubeLogPath,
        container_id: Option<&str>,
        now: Instant,
        grace: Duration,
    ) -> Result<Lookup, PathOnlyReason> {
        if self
            .namespaces
            .get(&path.namespace)
            .is_some_and(|n| n.excluded)
        {
            return Ok(Lookup::Excluded);
        }
        let uid = if self.pods.contains_key(&path.pod_uid) {
            Some(path.pod_uid.clone())
        } else {
            // Static pods: the directory carries the config hash, the mirror pod has its
            // own uid and the hash in an annotation.
            self.pods
                .iter()
                .find(|(_, e)| {
                    e.info.mirror_hash.as_deref() == Some(path.pod_uid.as_str())
                        && *e.info.namespace == *path.namespace
                        && *e.info.name == *path.pod_name
                })
                .map(|(uid, _)| uid.clone())
        };
        if let Some(uid) = uid {
            let expired = {
                let entry = &self.pods[&uid];
                self.is_expired(&uid, entry, now, grace)
            };
            if expired {
                return Err(PathOnlyReason::Expired);
            }
            let ns_labels = self
                .namespaces
                .get(&*self.pods[&uid].info.namespace)
                .map(|n| Arc::clone(&n.labels))
                .unwrap_or_default();
            let entry = self.pods.get_mut(&uid).expect("entry present");
            if entry.info.excluded {
                return Ok(Lookup::Excluded);
            }
            return Ok(Lookup::Found(entry.meta_for(
                &path.container,
                container_id,
                &ns_labels,
            )));
        }
        if self.evicted.contains(&path.pod_uid) {
            return Err(PathOnlyReason::Expired);
        }
        let same_name = self
            .pods
            .values()
            .any(|e| *e.info.namespace == *path.namespace && *e.info.name == *path.pod_name);
        Err(if same_name {
            PathOnlyReason::UidMismatch
        } else {
            PathOnlyReason::PodUnknown
        })
    }
}

/// Whether `uid` is the config hash of a static pod whose mirror pod is stored.
pub(crate) fn is_mirror(pods: &HashMap<String, Entry>, uid: &str) -> bool {
    pods.values()
        .any(|e| e.info.mirror_hash.as_deref() == Some(uid))
}

impl Entry {
    fn meta_for(
        &mut self,
        container: &str,
        container_id: Option<&str>,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Arc<PodMeta> {
        let known = self.info.containers.iter().find(|c| &*c.name == container);
        // The status' id is the current container; a file of an earlier restart names
        // its own (possibly truncated) id in the /var/log/containers link.
        let id = match (known.and_then(|c| c.id.as_deref()), container_id) {
            (Some(status), Some(file)) if !status.starts_with(file) => Some(file),
            (Some(status), _) => Some(status),
            (None, file) => file,
        };
        if let Some((_, _, meta)) = self
            .metas
            .iter()
            .find(|(c, i, _)| c == container && i.as_deref() == id)
        {
            return Arc::clone(meta);
        }
        let info = &self.info;
        let meta = Arc::new(PodMeta {
            origin: MetadataOrigin::Api,
            namespace: info.namespace.to_string(),
            pod_name: info.name.to_string(),
            pod_uid: info.uid.to_string(),
            pod_ip: info.ip.as_deref().map(str::to_owned),
            node_name: info.node.as_deref().map(str::to_owned),
            labels: info.labels.clone(),
            annotations: info.annotations.clone(),
            namespace_labels: namespace_labels.clone(),
            owner: info
                .owner
                .as_ref()
                .map(|(k, n)| (k.to_string(), n.to_string())),
            container: ContainerMeta {
                name: container.to_owned(),
                image: known.and_then(|c| c.image.as_deref()).map(str::to_owned),
                id: id.map(str::to_owned),
                runtime: known.and_then(|c| c.runtime.as_deref()).map(str::to_owned),
            },
            airflow: info.airflow.as_deref().cloned(),
        });
        self.metas.push((
            container.to_owned(),
            id.map(str::to_owned),
            Arc::clone(&meta),
        ));
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyFilters;
    use crate::KubeConfig;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::path::Path;

    fn info(v: serde_json::Value) -> PodInfo {
        let pod: Pod = serde_json::from_value(v).unwrap();
        let (filters, _) = KeyFilters::new(&KubeConfig::default());
        PodInfo::from_pod(&pod, &filters, "logferry.io/exclude").unwrap()
    }

    fn path(s: &str) -> KubeLogPath {
        KubeLogPath::parse(Path::new(s)).unwrap()
    }

    const GRACE: Duration = Duration::from_secs(300);

    #[test]
    fn static_pods_are_found_and_pinned_through_their_config_hash() {
        let mut state = State::default();
        state.pod_apply(info(json!({
            "metadata": {"name": "etcd-node-a", "namespace": "kube-system", "uid": "mirror-uid",
                         "annotations": {"kubernetes.io/config.mirror": "3f1c0ffee"}},
            "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5"}]}
        })));
        let p = path("/var/log/pods/kube-system_etcd-node-a_3f1c0ffee/etcd/0.log");
        let now = Instant::now();
        let Ok(Lookup::Found(m)) = state.resolve(&p, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(
            (&*m.pod_uid, m.container.image.as_deref()),
            ("mirror-uid", Some("registry.k8s.io/etcd:3.5"))
        );

        // The tailer pins by the path's uid (the hash); that protects the mirror pod.
        state.pins.entry("3f1c0ffee".to_owned()).or_default().count = 1;
        let gone = info(
            json!({"metadata": {"name": "etcd-node-a", "namespace": "kube-system", "uid": "mirror-uid",
                                            "annotations": {"kubernetes.io/config.mirror": "3f1c0ffee"}}}),
        );
        state.pod_delete(gone, now);
        let later = now + GRACE * 3;
        state.sweep(later, GRACE);
        assert_eq!(state.pods.len(), 1, "pinned through the config hash");
        state.pins.get_mut("3f1c0ffee").unwrap().count = 0;
        state.pins.get_mut("3f1c0ffee").unwrap().released_at = Some(later);
        state.sweep(later + GRACE / 2, GRACE);
        assert_eq!(state.pods.len(), 1, "grace runs from the release");
        state.sweep(later + GRACE, GRACE);
        assert!(state.pods.is_empty() && state.pins.is_empty());
        assert_eq!(
            state.resolve(&p, None, later + GRACE, GRACE),
            Err(PathOnlyReason::Expired)
        );
    }

    #[test]
    fn container_ids_come_from_the_status_unless_the_file_names_another_instance() {
        let mut state = State::default();
        let current = "c".repeat(64);
        state.pod_apply(info(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "app", "image": "web:1"}],
                     "initContainers": [{"name": "init", "image": "init:1"}]},
            "status": {"containerStatuses": [{"name": "app", "image": "web:1", "imageID": "", "ready": true,
                                              "restartCount": 1, "containerID": format!("cri-o://{current}")}]}
        })));
        let now = Instant::now();
        let p = path("/var/log/pods/default_web_u1/app/1.log");
        let get = |state: &mut State, id: Option<&str>| match state.resolve(&p, id, now, GRACE) {
            Ok(Lookup::Found(m)) => m,
            other => panic!("{other:?}"),
        };
        let a = get(&mut state, None);
        assert_eq!(
            (a.container.id.as_deref(), a.container.runtime.as_deref()),
            (Some(current.as_str()), Some("cri-o"))
        );
        // A link name cut short by kubelet's 255-byte limit: a prefix of the status id.
        let b = get(&mut state, Some(&current[..20]));
        assert!(Arc::ptr_eq(&a, &b));
        // The previous instance's file (restart 0): its own id.
        let old = "0".repeat(64);
        let c = get(&mut state, Some(&old));
        assert_eq!(c.container.id.as_deref(), Some(old.as_str()));
        assert!(Arc::ptr_eq(&c, &get(&mut state, Some(&old))));
        // Init containers are known too; a container unknown to the spec keeps the path's name.
        let init = path("/var/log/pods/default_web_u1/init/0.log");
        let Ok(Lookup::Found(i)) = state.resolve(&init, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(i.container.image.as_deref(), Some("init:1"));
        let dbg = path("/var/log/pods/default_web_u1/debugger-x1/0.log");
        let Ok(Lookup::Found(d)) = state.resolve(&dbg, None, now, GRACE) else {
            panic!()
        };
        assert_eq!(
            (d.container.name.as_str(), d.container.image.as_deref()),
            ("debugger-x1", None)
        );
    }

    #[test]
    fn a_relist_tombstones_pods_it_no_longer_lists_and_revives_listed_ones() {
        let mut state = State::default();
        let pod =
            |uid: &str| info(json!({"metadata": {"name": uid, "namespace": "ns", "uid": uid}}));
        let t0 = Instant::now();
        state.pod_init();
        state.pod_apply(pod("a"));
        state.pod_apply(pod("b"));
        state.pod_init_done(t0);
        state.pod_delete(pod("b"), t0);
        // Re-list: `a` is gone (missed DELETED), `b` is listed again (deletion was wrong).
        state.pod_init();
        state.pod_apply(pod("b"));
        state.pod_init_done(t0);
        assert!(state.pods["a"].deleted_at.is_some());
        assert!(state.pods["b"].deleted_at.is_none());
        state.sweep(t0 + GRACE, GRACE);
        assert_eq!(state.pods.keys().collect::<Vec<_>>(), ["b"]);
    }
}
