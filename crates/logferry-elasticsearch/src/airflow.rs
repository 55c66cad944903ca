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
//!
//! # State across restarts
//!
//! Two things depend on records read earlier: the lift of a container log's
//! `offset` above the previous one of its `log_id` ([`next_offset`]), and rule 4.
//! Both are kept in a state file (`data_dir/airflow.json`, written at most once
//! a second and when the input ends, temp file + fsync + rename), keyed by
//! `log_id` and by the file's identity (device, inode, fingerprint), and read
//! again at start. Without it a restarted collector would resume with nothing
//! known: a text line that starts the resumed part of a task's stdout would
//! lose its `log_id` (kubelet layout without the API), and a line the runtime
//! stamped just before the previous one would get an `offset` at or below the
//! one the handler's poll already passed, so the poll (`offset > last`) would
//! skip it for good. The file may be ahead of the checkpoints (records encoded,
//! not yet acknowledged, then a crash): records read again are then lifted
//! above the saved offset, which only changes documents Elasticsearch does not
//! hold yet (`create` keeps the first copy) and never makes a poll skip one.
//! Only the [`MAX_SAVED`] most recently used entries of each kind are written.

use crate::json::{write_i64, write_str};
use crate::log_id::LogIdTemplate;
use logferry_core::{next_offset, AirflowTask, FileId, Record, RecordBatch};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most `log_id`s whose last offset is remembered, and most files whose last
/// `log_id` is remembered (bounded memory; forgetting only loses the lift of
/// equal timestamps, see [`next_offset`]).
const MAX_REMEMBERED: usize = 65_536;

/// Most entries of each kind written to the state file (the most recently
/// used): a node runs far fewer task logs at once.
const MAX_SAVED: usize = 4_096;

/// Least time between two writes of the state file.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Version of the state file's format.
const STATE_VERSION: &str = "1";

/// Per-encoder Airflow state.
#[derive(Debug)]
pub(crate) struct AirflowState {
    template: LogIdTemplate,
    /// The configured task (`airflow.task`), for files without another identity.
    task: Option<AirflowTask>,
    /// Last offset per `log_id` (JSON string literal), with the use counter.
    offsets: HashMap<Vec<u8>, (i64, u64)>,
    /// Last `log_id` literal carried by a record of each file, with the use counter.
    inherited: HashMap<FileId, (Vec<u8>, u64)>,
    /// Use counter: larger is more recent.
    clock: u64,
    /// Where the state is saved, when it is.
    state_file: Option<PathBuf>,
    /// Whether the state changed since it was last saved.
    dirty: bool,
    /// When the state was last saved.
    saved_at: Option<Instant>,
    /// Records shipped without `log_id` since the last `take`.
    pub(crate) without_log_id: u64,
}

/// The state file: `{"version":"1","offsets":[[log_id, offset], …],
/// "files":[[dev, ino, fingerprint, log_id], …]}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedState {
    version: String,
    offsets: Vec<(String, i64)>,
    files: Vec<(u64, u64, u64, String)>,
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

/// The JSON string literal of `text`.
fn literal(text: &str) -> Vec<u8> {
    let mut lit = Vec::with_capacity(text.len() + 2);
    write_str(&mut lit, text.as_bytes());
    lit
}

/// The text of a JSON string literal written by [`literal`] or taken from a record.
fn text_of(lit: &[u8]) -> Option<String> {
    serde_json::from_slice(lit).ok()
}

impl AirflowState {
    pub(crate) fn new(
        template: LogIdTemplate,
        task: Option<AirflowTask>,
        state_file: Option<PathBuf>,
    ) -> Self {
        let mut state = AirflowState {
            template,
            task,
            offsets: HashMap::new(),
            inherited: HashMap::new(),
            clock: 0,
            state_file,
            dirty: false,
            saved_at: None,
            without_log_id: 0,
        };
        if let Some(path) = state.state_file.clone() {
            state.load(&path);
        }
        state
    }

    /// Reads the state file, if there is one; a file that cannot be read is
    /// logged and ignored (the state starts empty, as before the first run).
    fn load(&mut self, path: &Path) {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to read the Airflow state file; starting without it");
                return;
            }
        };
        let saved: SavedState = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the Airflow state file is not valid JSON of version 1; starting without it");
                return;
            }
        };
        if saved.version != STATE_VERSION {
            tracing::warn!(path = %path.display(), version = %saved.version, "unknown version of the Airflow state file; starting without it");
            return;
        }
        for (log_id, offset) in saved.offsets {
            self.clock += 1;
            self.offsets.insert(literal(&log_id), (offset, self.clock));
        }
        for (dev, ino, fingerprint, log_id) in saved.files {
            self.clock += 1;
            let file = FileId {
                dev,
                ino,
                fingerprint,
            };
            self.inherited.insert(file, (literal(&log_id), self.clock));
        }
    }

    /// Writes the state file when the state changed (and, unless `now`, the
    /// last write is at least [`SAVE_EVERY`] old).
    pub(crate) fn save(&mut self, now: bool) {
        let Some(path) = self.state_file.as_deref() else {
            return;
        };
        if !self.dirty || (!now && self.saved_at.is_some_and(|t| t.elapsed() < SAVE_EVERY)) {
            return;
        }
        fn recent<K, V>(map: &HashMap<K, (V, u64)>) -> Vec<(&K, &V)> {
            let mut v: Vec<(&K, &V, u64)> = map.iter().map(|(k, (v, c))| (k, v, *c)).collect();
            if v.len() > MAX_SAVED {
                v.select_nth_unstable_by_key(MAX_SAVED, |e| std::cmp::Reverse(e.2));
                v.truncate(MAX_SAVED);
            }
            v.into_iter().map(|(k, v, _)| (k, v)).collect()
        }
        let saved = SavedState {
            version: STATE_VERSION.to_owned(),
            offsets: recent(&self.offsets)
                .into_iter()
                .filter_map(|(lit, off)| Some((text_of(lit)?, *off)))
                .collect(),
            files: recent(&self.inherited)
                .into_iter()
                .filter_map(|(f, lit)| Some((f.dev, f.ino, f.fingerprint, text_of(lit)?)))
                .collect(),
        };
        self.saved_at = Some(Instant::now());
        match write_atomically(path, &saved) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to write the Airflow state file; will try again");
            }
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
        // One spelling per log_id (a record may escape what the template writes raw).
        let own = own.map(|lit| match lit.contains(&b'\\') {
            true => text_of(&lit).map_or(lit, |t| literal(&t)),
            false => lit,
        });
        let file = batch.source.file;
        self.clock += 1;
        let clock = self.clock;
        let log_id: Vec<u8> = match own {
            Some(lit) => {
                match self.inherited.get_mut(&file) {
                    Some((old, used)) if *old == lit => *used = clock,
                    _ => {
                        if self.inherited.len() >= MAX_REMEMBERED {
                            self.inherited.clear();
                        }
                        self.inherited.insert(file, (lit.clone(), clock));
                        self.dirty = true;
                    }
                }
                lit
            }
            None => match file_log_id
                .or_else(|| self.inherited.get(&file).map(|(lit, _)| lit.as_slice()))
            {
                Some(lit) => lit.to_vec(),
                None => {
                    self.without_log_id += 1;
                    return;
                }
            },
        };
        let last = self.offsets.get(&log_id).map_or(0, |(o, _)| *o);
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
        self.dirty = true;
        match self.offsets.get_mut(&log_id) {
            Some(v) => *v = (offset, clock),
            None => {
                if self.offsets.len() >= MAX_REMEMBERED {
                    self.offsets.clear();
                }
                self.offsets.insert(log_id, (offset, clock));
            }
        }
    }
}

/// Writes `state` as JSON to a temp file next to `path`, syncs it and renames
/// it over `path`: a crash leaves the old file or the new one, never half.
fn write_atomically(path: &Path, state: &SavedState) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(state)?)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
