//! Airflow worker pods: which task a pod runs, with unsanitised values.
//!
//! Facts (Airflow's
//! [`pod_generator.py`](https://github.com/apache/airflow/blob/main/providers/cncf/kubernetes/src/airflow/providers/cncf/kubernetes/pod_generator.py)):
//! KubernetesExecutor worker pods carry the label `kubernetes_executor=True`,
//! KubernetesPodOperator pods `kubernetes_pod_operator=True`. Both label the pod with
//! `dag_id`, `task_id`, `run_id`, `try_number`, `map_index` (only when ≥ 0) and
//! `logical_date`/`execution_date`, but label values are *sanitised* by
//! `make_safe_label_value` (characters outside `[a-zA-Z0-9_.-]` dropped, and then cut to
//! 53 characters plus `-<md5 prefix>`), so a run id such as
//! `manual__2025-08-12T15:05:57.691303+00:00` cannot be read back from its label.
//! `construct_pod` also writes the raw values as *annotations* with the same keys; those
//! win.

use std::collections::BTreeMap;

use logferry_core::AirflowTask;

/// The Airflow task a pod runs, or `None` if the pod is not an Airflow worker pod.
///
/// A pod is an Airflow worker pod when its label `kubernetes_executor` or
/// `kubernetes_pod_operator` is `True` (any case) and `dag_id` and `task_id` are known.
/// Each field is taken from the annotation of the same key when present (raw value),
/// else from the label (sanitised by Airflow, used as is). Defaults: `map_index` `"-1"`
/// (Airflow omits it for unmapped tasks), `run_id` and `try_number` empty when absent
/// (pods of Airflow < 2.2). `logical_date` comes from the `logical_date` (Airflow 3) or
/// `execution_date` (Airflow 2) annotation, else from the label, where Airflow's
/// `datetime_to_label_safe_datestring` (`:` → `_`, `+` → `_plus_`) is reversed.
pub fn airflow_task(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<AirflowTask> {
    let is_true = |key: &str| {
        labels
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    if !is_true("kubernetes_executor") && !is_true("kubernetes_pod_operator") {
        return None;
    }
    let field = |key: &str| {
        annotations
            .get(key)
            .or_else(|| labels.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let dag_id = field("dag_id")?;
    let task_id = field("task_id")?;
    let logical_date = annotations
        .get("logical_date")
        .or_else(|| annotations.get("execution_date"))
        .cloned()
        .or_else(|| {
            labels
                .get("logical_date")
                .or_else(|| labels.get("execution_date"))
                .map(|v| unsanitise_date_label(v))
        });
    Some(AirflowTask {
        dag_id,
        task_id,
        run_id: field("run_id").unwrap_or_default(),
        try_number: field("try_number").unwrap_or_default(),
        map_index: field("map_index").unwrap_or_else(|| "-1".to_owned()),
        logical_date,
    })
}

/// Reverses `datetime_to_label_safe_datestring`: `_plus_` → `+`, then `_` → `:`
/// (an ISO-8601 date has no `_` of its own).
fn unsanitise_date_label(label: &str) -> String {
    label.replace("_plus_", "+").replace('_', ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn annotations_win_over_sanitised_labels() {
        // Labels exactly as Airflow 2.x `build_labels_for_k8s_executor_pod` writes them
        // for run id `manual__2025-08-12T15:05:57.691303+00:00` (sanitised and hashed).
        let labels = map(&[
            ("kubernetes_executor", "True"),
            ("dag_id", "dataset_consumes_1"),
            ("task_id", "consuming_1"),
            ("run_id", "manual__2025-08-12T150557.691303000-1c9a5b8f2"),
            ("try_number", "1"),
            ("execution_date", "2025-08-12T15_05_57.691303_plus_00_00"),
        ]);
        let annotations = map(&[
            ("dag_id", "dataset_consumes_1"),
            ("task_id", "consuming_1"),
            ("run_id", "manual__2025-08-12T15:05:57.691303+00:00"),
            ("try_number", "1"),
            ("execution_date", "2025-08-12T15:05:57.691303+00:00"),
        ]);
        let t = airflow_task(&labels, &annotations).unwrap();
        assert_eq!(t.dag_id, "dataset_consumes_1");
        assert_eq!(t.task_id, "consuming_1");
        assert_eq!(t.run_id, "manual__2025-08-12T15:05:57.691303+00:00");
        assert_eq!(t.try_number, "1");
        assert_eq!(t.map_index, "-1");
        assert_eq!(
            t.logical_date.as_deref(),
            Some("2025-08-12T15:05:57.691303+00:00")
        );
    }

    #[test]
    fn labels_are_the_fallback_and_dates_are_unsanitised() {
        let labels = map(&[
            ("kubernetes_pod_operator", "True"),
            ("dag_id", "etl"),
            ("task_id", "load"),
            ("run_id", "scheduled__2025-01-01T0000000000-4c1b7d0a1"),
            ("try_number", "3"),
            ("map_index", "7"),
            ("logical_date", "2025-01-01T00_00_00_plus_00_00"),
        ]);
        let t = airflow_task(&labels, &BTreeMap::new()).unwrap();
        assert_eq!(t.run_id, "scheduled__2025-01-01T0000000000-4c1b7d0a1");
        assert_eq!((t.try_number.as_str(), t.map_index.as_str()), ("3", "7"));
        assert_eq!(t.logical_date.as_deref(), Some("2025-01-01T00:00:00+00:00"));
    }

    #[test]
    fn other_pods_are_not_airflow_tasks() {
        let ann = map(&[("dag_id", "d"), ("task_id", "t")]);
        assert!(airflow_task(&map(&[("app", "web")]), &ann).is_none());
        assert!(airflow_task(&map(&[("kubernetes_executor", "False")]), &ann).is_none());
        // Marked as a worker but without a task: not enough to render a log_id.
        assert!(airflow_task(&map(&[("kubernetes_executor", "True")]), &BTreeMap::new()).is_none());
    }
}
