//! Apache Airflow task identity and the `offset` clock: what Airflow's
//! Elasticsearch task log handler needs from every document of a task log.
//!
//! The handler (`apache-airflow-providers-elasticsearch`, `ElasticsearchTaskHandler`)
//! reads a task log with a `match_phrase` on `log_id` (rendered from
//! `[elasticsearch] log_id_template`), a `range` `offset > <last offset seen>`,
//! sorted by `offset`; see
//! <https://airflow.apache.org/docs/apache-airflow-providers-elasticsearch/stable/logging/index.html>.
//! This module holds the two rules every sink shares, independent of where the
//! records come from (kubelet layout with or without the Kubernetes API, or
//! plain files next to the task):
//!
//! * **Which task a record belongs to** ([`AirflowTask`]): from the record's own
//!   JSON fields ([`AirflowTask::from_fields`]), from the pod (see
//!   `logferry-kube`), from Airflow's task log path
//!   ([`AirflowTask::from_log_path`]) or from configuration. The sink decides
//!   the precedence and renders `log_id`; this module only parses.
//! * **One clock per log** ([`offset::next_offset`]): `offset` is strictly increasing in
//!   file order for every record of a `log_id` and the same for the same record
//!   when it is read again after a restart.

pub mod offset;

use std::borrow::Cow;
use std::path::Path;

/// The Airflow task a log belongs to, with *unsanitised* values.
///
/// From the pod annotations that Airflow's `PodGenerator.construct_pod`
/// writes (falling back to the sanitised labels), from a task record's own JSON
/// fields, or from Airflow's task log path; see
/// <https://github.com/apache/airflow/blob/main/providers/cncf/kubernetes/src/airflow/providers/cncf/kubernetes/pod_generator.py>.
#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AirflowTask {
    /// DAG id.
    pub dag_id: String,
    /// Task id.
    pub task_id: String,
    /// Run id, e.g. `manual__2025-08-12T15:05:57.691303+00:00`.
    pub run_id: String,
    /// Attempt, 1-based, as Airflow writes it.
    pub try_number: String,
    /// Map index; `-1` for unmapped tasks.
    pub map_index: String,
    /// Logical (execution) date in ISO-8601, when known.
    pub logical_date: Option<String>,
}

/// Named string fields of one record (e.g. the top-level members of a JSON
/// task record), as [`AirflowTask::from_fields`] reads them.
pub trait TaskFields {
    /// The field's value as text (a JSON number as its digits), or `None`.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
}

impl AirflowTask {
    /// The task named by Airflow's default task log path
    /// (`[logging] log_filename_template`, Airflow ≥ 2.3):
    /// `…/dag_id=<d>/run_id=<r>/task_id=<t>/[map_index=<m>/]attempt=<n>.log`.
    /// Directories may sit above `dag_id=`; `map_index` defaults to `-1`.
    /// `None` for any other path.
    pub fn from_log_path(path: &Path) -> Option<AirflowTask> {
        let mut parts: Vec<&str> = path
            .iter()
            .rev()
            .take(5)
            .map(|c| c.to_str())
            .collect::<Option<_>>()?;
        parts.reverse();
        let attempt = parts
            .last()?
            .strip_prefix("attempt=")?
            .strip_suffix(".log")?;
        if attempt.is_empty() || !attempt.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = parts.len();
        let (map_index, dirs) = match parts[..n - 1].last()?.strip_prefix("map_index=") {
            Some(m) => (m, &parts[..n - 2]),
            None => ("-1", &parts[..n - 1]),
        };
        let [.., dag, run, task] = dirs else {
            return None;
        };
        Some(AirflowTask {
            dag_id: dag.strip_prefix("dag_id=")?.to_owned(),
            run_id: run.strip_prefix("run_id=")?.to_owned(),
            task_id: task.strip_prefix("task_id=")?.to_owned(),
            try_number: attempt.to_owned(),
            map_index: map_index.to_owned(),
            logical_date: None,
        })
    }

    /// The task named by a record's own fields: `dag_id`, `task_id`, `run_id`,
    /// `try_number` (all required, non-empty), `map_index` (default `-1`) and
    /// `logical_date` / `execution_date` (optional). Airflow 2's JSON task
    /// records carry `dag_id`, `task_id`, `try_number` and `log_id` but no
    /// `run_id`, so this is the fallback for records without `log_id`.
    pub fn from_fields(fields: &impl TaskFields) -> Option<AirflowTask> {
        let get = |k: &str| fields.field(k).filter(|v| !v.is_empty());
        Some(AirflowTask {
            dag_id: get("dag_id")?.into_owned(),
            task_id: get("task_id")?.into_owned(),
            run_id: get("run_id")?.into_owned(),
            try_number: get("try_number")?.into_owned(),
            map_index: get("map_index").map_or_else(|| "-1".to_owned(), Cow::into_owned),
            logical_date: get("logical_date")
                .or_else(|| get("execution_date"))
                .map(Cow::into_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_log_paths_name_the_task() {
        let p = Path::new(
            "/opt/airflow/logs/dag_id=etl/run_id=manual__2026-11-22T13:40:00+00:00/task_id=load/attempt=2.log",
        );
        let t = AirflowTask::from_log_path(p).unwrap();
        assert_eq!(
            (t.dag_id.as_str(), t.task_id.as_str(), t.run_id.as_str()),
            ("etl", "load", "manual__2026-11-22T13:40:00+00:00")
        );
        assert_eq!((t.try_number.as_str(), t.map_index.as_str()), ("2", "-1"));
        let mapped = Path::new("dag_id=d/run_id=r/task_id=t/map_index=7/attempt=1.log");
        assert_eq!(AirflowTask::from_log_path(mapped).unwrap().map_index, "7");
        for other in [
            "/var/log/pods/ns_pod_uid/base/0.log",
            "dag_id=d/run_id=r/task_id=t/attempt=x.log",
            "dag_id=d/task_id=t/attempt=1.log",
            "attempt=1.log",
            "dag_id=d/run_id=r/task_id=t/attempt=1.log.1",
        ] {
            assert_eq!(
                AirflowTask::from_log_path(Path::new(other)),
                None,
                "{other}"
            );
        }
    }

    struct Map(Vec<(&'static str, &'static str)>);
    impl TaskFields for Map {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| Cow::Borrowed(*v))
        }
    }

    #[test]
    fn record_fields_name_the_task_only_when_complete() {
        let full = Map(vec![
            ("dag_id", "d"),
            ("task_id", "t"),
            ("run_id", "r"),
            ("try_number", "3"),
        ]);
        let t = AirflowTask::from_fields(&full).unwrap();
        assert_eq!((t.map_index.as_str(), t.try_number.as_str()), ("-1", "3"));
        // Airflow 2's JSON records: no run_id.
        let a2 = Map(vec![("dag_id", "d"), ("task_id", "t"), ("try_number", "1")]);
        assert_eq!(AirflowTask::from_fields(&a2), None);
    }
}
