//! `airflow`: whether Airflow worker records get `log_id` and `offset`, the
//! `log_id` template (Python `str.format` syntax) and, for a sidecar, the
//! task its files belong to (`airflow.task`).

use super::reader::{Problems, Section};
use super::Airflow;
use logferry_core::AirflowTask;
use logferry_elasticsearch::LogIdTemplate;

/// `airflow`; `log_id_template` is parsed here, with Airflow's own parser.
pub(super) fn read_airflow(mut af: Section<'_>, p: &mut Problems) -> Airflow {
    let airflow = Airflow {
        enabled: af.boolean("enabled", p).unwrap_or(false),
        log_id_template: af
            .get("log_id_template", p, |v| {
                let s = v.as_str().ok_or("expected a string")?;
                LogIdTemplate::parse(s).map_err(|e| match e {
                    logferry_elasticsearch::Error::InvalidConfig { reason, .. } => reason,
                    other => other.to_string(),
                })
            })
            .unwrap_or_default(),
        task: read_airflow_task(af.section("task", p), p),
    };
    af.finish(p);
    airflow
}

/// `airflow.task`: `dag_id`, `task_id`, `run_id`, `try_number` (required
/// together), `map_index` (default `-1`). Values may come from the environment
/// (`${AIRFLOW_DAG_ID}`, e.g. set from the pod's annotations through the
/// downward API); a section whose `dag_id` expands to nothing means "no task"
/// (the sidecar runs outside an Airflow worker pod).
fn read_airflow_task(mut s: Section<'_>, p: &mut Problems) -> Option<AirflowTask> {
    if !s.is_present() {
        s.finish(p);
        return None;
    }
    let mut text = |key: &str, p: &mut Problems| {
        s.get(key, p, |v| match v {
            serde_yaml_ng::Value::String(t) => Ok(t.clone()),
            serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
            _ => Err("expected a string or a number".to_owned()),
        })
        .unwrap_or_default()
    };
    let dag_id = text("dag_id", p);
    let task_id = text("task_id", p);
    let run_id = text("run_id", p);
    let try_number = text("try_number", p);
    let map_index = text("map_index", p);
    let paths: Vec<String> = ["task_id", "run_id", "try_number"]
        .iter()
        .map(|k| s.path_of(k))
        .collect();
    s.finish(p);
    if dag_id.is_empty() {
        return None;
    }
    for (path, v) in paths.iter().zip([&task_id, &run_id, &try_number]) {
        if v.is_empty() {
            p.push(path, "required when airflow.task.dag_id is set");
        }
    }
    Some(AirflowTask {
        dag_id,
        task_id,
        run_id,
        try_number,
        map_index: if map_index.is_empty() {
            "-1".into()
        } else {
            map_index
        },
        logical_date: None,
    })
}
