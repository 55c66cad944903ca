//! The Airflow fields of a document: `log_id`, `offset` and `event`, the
//! fields Airflow's Elasticsearch task handler reads (see
//! [`logferry_core::next_offset`] for the query it runs).
//!
//! Which task a record belongs to, first match wins:
//!
//! 1. the record's own `log_id` (a JSON task record; it was rendered by
//!    Airflow from the template stored with the DAG run, so it is exact);
//! 2. the record's own `dag_id`, `task_id`, `run_id`, `try_number` (and
//!    `map_index`) rendered with the configured template;
//! 3. the file's task: from the pod (Kubernetes API), else Airflow's task log
//!    path (`dag_id=…/run_id=…/task_id=…/attempt=N.log`), else the configured
//!    `airflow.task` (the sidecar's pod labels through the downward API);
//! 4. the last `log_id` a record of the same file carried (a text line of a
//!    task's stdout between its JSON records, when neither pod nor path names
//!    the task).
//!
//! A record of an Airflow-enabled source that matches none of these is shipped
//! without `log_id`/`offset` and counted
//! ([`DocumentEncoder::take_records_without_log_id`](crate::DocumentEncoder::take_records_without_log_id)).

use crate::json::{write_i64, write_str};
use crate::log_id::LogIdTemplate;
use logferry_core::{next_offset, AirflowTask, Record, RecordBatch, SourceId};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;

/// Most `log_id`s whose last offset is remembered, and most files whose last
/// `log_id` is remembered (bounded memory; forgetting only loses the lift of
/// equal timestamps, see [`next_offset`]).
const MAX_REMEMBERED: usize = 65_536;

/// Per-encoder Airflow state.
#[derive(Debug)]
pub(crate) struct AirflowState {
    template: LogIdTemplate,
    /// The configured task (`airflow.task`), for files without another identity.
    task: Option<AirflowTask>,
    /// Last offset per `log_id` (JSON string literal).
    offsets: HashMap<Vec<u8>, i64>,
    /// Last `log_id` literal carried by a record of each file.
    inherited: HashMap<SourceId, Vec<u8>>,
    /// Records shipped without `log_id` since the last `take`.
    pub(crate) without_log_id: u64,
}

/// A JSON object's top-level members, in order, values left raw.
pub(crate) type Members<'a> = [(Cow<'a, str>, &'a RawValue)];

struct MemberFields<'m, 'a>(&'m Members<'a>);

impl logferry_core::TaskFields for MemberFields<'_, '_> {
    fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        let raw = self.0.iter().find(|(k, _)| k == name)?.1;
        match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
            Ok(s) => Some(s),
            // Numbers (`"try_number": 1`) as their digits.
            Err(_) => {
                let t = raw.get().trim();
                (t.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !t.is_empty())
                    .then_some(Cow::Borrowed(t))
            }
        }
    }
}

impl AirflowState {
    pub(crate) fn new(template: LogIdTemplate, task: Option<AirflowTask>) -> Self {
        AirflowState {
            template,
            task,
            offsets: HashMap::new(),
            inherited: HashMap::new(),
            without_log_id: 0,
        }
    }

    /// The `log_id` literal of a file (rule 3), from its pod's task or its path.
    pub(crate) fn file_log_id(
        &self,
        pod_task: Option<&AirflowTask>,
        path: &std::path::Path,
    ) -> Option<Vec<u8>> {
        let from_path;
        let task = match pod_task {
            Some(t) => t,
            None => match AirflowTask::from_log_path(path) {
                Some(t) => {
                    from_path = t;
                    &from_path
                }
                None => self.task.as_ref()?,
            },
        };
        let mut lit = Vec::new();
        write_str(&mut lit, self.template.render(task).as_bytes());
        Some(lit)
    }

    /// Writes `,"log_id":…,"offset":…` (and `,"event":…` when the record has
    /// no `event` of its own) for `record`, or nothing (counted) when no rule
    /// names its task. `own_log_id` is the record's `log_id` member, `members`
    /// all of its members (a JSON record), `message` what the document's
    /// `message` holds.
    pub(crate) fn write(
        &mut self,
        file_log_id: Option<&[u8]>,
        batch: &RecordBatch,
        record: &Record,
        members: Option<&Members<'_>>,
        out: &mut Vec<u8>,
    ) {
        let member =
            |name: &str| members.and_then(|m| m.iter().find(|(k, _)| k == name).map(|(_, v)| *v));
        let own: Option<Vec<u8>> = match member("log_id") {
            Some(raw) if raw.get().starts_with('"') && raw.get() != "\"\"" => {
                Some(raw.get().as_bytes().to_vec())
            }
            _ => members
                .and_then(|m| AirflowTask::from_fields(&MemberFields(m)))
                .map(|task| {
                    let mut lit = Vec::new();
                    write_str(&mut lit, self.template.render(&task).as_bytes());
                    lit
                }),
        };
        let id = batch.source.id;
        let log_id: Vec<u8> = match own {
            Some(lit) => {
                if self.inherited.get(&id) != Some(&lit) {
                    if self.inherited.len() >= MAX_REMEMBERED {
                        self.inherited.clear();
                    }
                    self.inherited.insert(id, lit.clone());
                }
                lit
            }
            None => match file_log_id.or_else(|| self.inherited.get(&id).map(Vec::as_slice)) {
                Some(lit) => lit.to_vec(),
                None => {
                    self.without_log_id += 1;
                    return;
                }
            },
        };
        let last = self.offsets.get(&log_id).copied().unwrap_or(0);
        let offset = next_offset(batch.source.format, record, last);
        out.extend_from_slice(b",\"log_id\":");
        out.extend_from_slice(&log_id);
        out.extend_from_slice(b",\"offset\":");
        write_i64(out, offset);
        if member("event").is_none() {
            // Airflow 3's handler shows `event`, Airflow 2's `message`.
            out.extend_from_slice(b",\"event\":");
            match member("message") {
                Some(raw) => crate::json::write_raw(out, raw),
                None => write_str(out, &record.message),
            }
        }
        match self.offsets.get_mut(&log_id) {
            Some(v) => *v = offset,
            None => {
                if self.offsets.len() >= MAX_REMEMBERED {
                    self.offsets.clear();
                }
                self.offsets.insert(log_id, offset);
            }
        }
    }
}
