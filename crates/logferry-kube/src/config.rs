//! Configuration of the pod store.

use logferry_core::ConfigProblem;
use std::path::PathBuf;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::KubeError;

/// The annotation keys Airflow's `PodGenerator.construct_pod` writes on worker pods,
/// with their unsanitised values (see
/// <https://github.com/apache/airflow/blob/main/providers/cncf/kubernetes/src/airflow/providers/cncf/kubernetes/pod_generator.py>).
pub const AIRFLOW_ANNOTATIONS: [&str; 7] = [
    "dag_id",
    "task_id",
    "run_id",
    "try_number",
    "map_index",
    "logical_date",
    "execution_date",
];

/// How the pod store watches and how long it keeps metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeConfig {
    /// This node's name: the pod watch uses `fieldSelector=spec.nodeName=<node_name>`.
    /// Empty means "every pod of the cluster" (for tests and single-node setups; logs a
    /// warning). Default: the `NODE_NAME` environment variable, else empty.
    pub node_name: String,
    /// How long a deleted pod's metadata is kept after its deletion, or after the last
    /// [`PodStore::release`](crate::PodStore::release) of its files, whichever is later.
    /// Default 5 minutes.
    pub metadata_grace: Duration,
    /// Pod or namespace annotation whose value `"true"` excludes the pod (or every pod of
    /// the namespace) from collection. Default `logferry.io/exclude`.
    pub exclude_annotation: String,
    /// Pod annotations copied into [`PodMeta::annotations`](logferry_core::PodMeta):
    /// exact keys or globs (`prometheus.io/*`). Default: Airflow's keys
    /// ([`AIRFLOW_ANNOTATIONS`]) and the exclude annotation.
    pub annotation_allowlist: Vec<String>,
    /// Pod labels copied into [`PodMeta::labels`](logferry_core::PodMeta): exact keys or
    /// globs (`app.kubernetes.io/*`; `*` matches `/` too). Default `["*"]`: every label.
    pub label_allowlist: Vec<String>,
    /// Pod labels never copied, even when allow-listed (`pod-template-hash`,
    /// `controller-revision-hash`, …). Default empty.
    pub label_denylist: Vec<String>,
    /// Namespace labels copied into
    /// [`PodMeta::namespace_labels`](logferry_core::PodMeta) (Filebeat's
    /// `kubernetes.namespace_labels.*`): exact keys or globs. Default empty: none (the
    /// namespace watch then keeps no labels).
    pub namespace_label_allowlist: Vec<String>,
    /// How long [`PodStore::lookup`](crate::PodStore::lookup) waits for a pod that is not
    /// (yet) in the store, while the API is reachable. Default 2 seconds.
    pub lookup_wait: Duration,
    /// Cap of the exponential backoff between re-lists after watch errors. Default
    /// 5 seconds (kube's default keeps growing during long outages, which delays the
    /// re-list after the API comes back).
    pub backoff_max: Duration,
    /// Where the store's entries (live pods and tombstones) are kept across
    /// restarts, in `pods.json` (see [`PodStore::persist`](crate::PodStore::persist)):
    /// a restarted logferry enriches the late lines of pods deleted before the restart,
    /// or while it was down, like the first ones. `None` keeps them in memory only.
    /// Default `None`; the daemon uses its `data_dir`.
    pub state_dir: Option<PathBuf>,
}

impl Default for KubeConfig {
    fn default() -> Self {
        let exclude_annotation = "logferry.io/exclude".to_owned();
        let mut annotation_allowlist: Vec<String> = AIRFLOW_ANNOTATIONS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        annotation_allowlist.push(exclude_annotation.clone());
        KubeConfig {
            node_name: std::env::var("NODE_NAME").unwrap_or_default(),
            metadata_grace: Duration::from_secs(300),
            exclude_annotation,
            annotation_allowlist,
            label_allowlist: vec!["*".to_owned()],
            label_denylist: Vec::new(),
            namespace_label_allowlist: Vec::new(),
            lookup_wait: Duration::from_secs(2),
            backoff_max: Duration::from_secs(5),
            state_dir: None,
        }
    }
}

/// The compiled key filters of a [`KubeConfig`]: which annotations, labels and
/// namespace labels the store keeps.
pub(crate) struct KeyFilters {
    pub annotations: GlobSet,
    pub labels_allow: GlobSet,
    pub labels_deny: GlobSet,
    pub namespace_labels: GlobSet,
}

impl KeyFilters {
    /// Compiles every list; invalid globs are returned and matched literally.
    pub fn new(config: &KubeConfig) -> (KeyFilters, Vec<KubeError>) {
        let (annotations, mut errors) = compile_allowlist(&config.annotation_allowlist);
        let mut more = |list: &[String]| {
            let (set, e) = compile_allowlist(list);
            errors.extend(e);
            set
        };
        let filters = KeyFilters {
            annotations,
            labels_allow: more(&config.label_allowlist),
            labels_deny: more(&config.label_denylist),
            namespace_labels: more(&config.namespace_label_allowlist),
        };
        (filters, errors)
    }

    /// Whether a pod label is kept.
    pub fn label(&self, key: &str) -> bool {
        self.labels_allow.is_match(key) && !self.labels_deny.is_match(key)
    }
}

/// Compiles an allowlist. Invalid globs are reported and matched literally.
pub(crate) fn compile_allowlist(patterns: &[String]) -> (GlobSet, Vec<KubeError>) {
    let mut builder = GlobSetBuilder::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        match Glob::new(pattern) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(source) => {
                if let Ok(glob) = Glob::new(&globset::escape(pattern)) {
                    builder.add(glob);
                }
                errors.push(KubeError::AllowlistPattern {
                    pattern: pattern.clone(),
                    source,
                });
            }
        }
    }
    let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
    (set, errors)
}

impl KubeConfig {
    /// Checks the configuration (the globs of the annotation, label and namespace
    /// label lists).
    ///
    /// # Errors
    ///
    /// [`KubeError::AllowlistPattern`] for the first invalid glob.
    pub fn validate(&self) -> Result<(), KubeError> {
        match KeyFilters::new(self).1.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem of this configuration, with key paths as the daemon's
    /// `kubernetes` section names them (`annotation_allowlist[1]`). Empty means
    /// the pod store uses the configuration as given (an invalid allowlist glob
    /// would otherwise be matched literally, with a warning).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.exclude_annotation.is_empty() {
            out.push(ConfigProblem::new(
                "exclude_annotation",
                "must not be empty (an annotation key like \"logferry.io/exclude\")",
            ));
        }
        for (key, list) in [
            ("annotation_allowlist", &self.annotation_allowlist),
            ("label_allowlist", &self.label_allowlist),
            ("label_denylist", &self.label_denylist),
            ("namespace_label_allowlist", &self.namespace_label_allowlist),
        ] {
            for (i, pattern) in list.iter().enumerate() {
                if let Err(e) = globset::Glob::new(pattern) {
                    out.push(ConfigProblem::new(
                        format!("{key}[{i}]"),
                        format!("invalid glob {pattern:?}: {e}"),
                    ));
                }
            }
        }
        if self.backoff_max.is_zero() {
            out.push(ConfigProblem::new("backoff_max", "must be positive"));
        }
        out
    }
}
