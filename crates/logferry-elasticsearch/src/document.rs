//! Documents: one JSON object per [`Record`], written straight into a byte
//! buffer.
//!
//! ## ECS (default)
//!
//! Field names of the Elastic Common Schema as Filebeat writes them
//! (<https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html>),
//! as nested objects, absent values omitted:
//!
//! ```json
//! {"@timestamp":"2026-11-22T15:04:05.123456789Z","message":"GET /healthz 200","stream":"stdout",
//!  "log":{"level":"info","offset":4096,"file":{"path":"/var/log/pods/shop_web-0_9c1e…/web/0.log"}},
//!  "kubernetes":{"namespace":"shop","pod":{"name":"web-0","uid":"9c1e…","ip":"10.1.2.3"},
//!                "node":{"name":"node-1"},"container":{"name":"web"},
//!                "labels":{"app":"web","app_kubernetes_io/name":"web"},"annotations":{…}},
//!  "container":{"id":"5c79…","image":{"name":"nginx:1.27"},"runtime":"containerd"},
//!  "host":{"name":"node-1"}}
//! ```
//!
//! `log.offset` is the record's start byte in the file; `log.level` is set when
//! [`Level::detect`] finds one. Label and annotation keys have `.` replaced by
//! `_` (Filebeat's and Fluentd's "de-dot"), so that `app` and
//! `app.kubernetes.io/name` cannot collide as object and value.
//! `kubernetes.node.name` falls back to [`DocumentOptions::host_name`] (logferry
//! runs on the node whose pods it reads).
//!
//! ## Fluentd
//!
//! What Fluentd's `kubernetes_metadata` filter and `elasticsearch` output
//! (`logstash_format`) wrote: `@timestamp`, `time`, `log`, `stream`,
//! `kubernetes.{pod_name, namespace_name, pod_id, container_name,
//! container_image, host, labels}`, `docker.container_id`.
//!
//! ## Airflow
//!
//! With [`DocumentOptions::airflow`] set, a record whose task is known (see
//! the private `airflow` module for the rules) also gets `log_id`, `offset` (one clock
//! per log, [`logferry_core::next_offset`]) and `event` (Airflow 3 reads
//! `event`, Airflow 2 `message`): the fields Airflow's Elasticsearch task
//! handler queries
//! (<https://airflow.apache.org/docs/apache-airflow-providers-elasticsearch/stable/logging/index.html>). If the message is a
//! JSON object, its top-level members are copied to the document's top level;
//! members whose key is a field logferry writes are skipped, except `message`,
//! which replaces the raw message (ECS). `end_of_log` records are ordinary
//! records and are kept.
//!
//! ## JSON messages
//!
//! With [`DocumentOptions::json_message`] set, a message that is a JSON
//! object is parsed under a key or merged at the root, bounded (see
//! [`crate::json_message`]); with Airflow on and a root merge, the option's
//! merge replaces Airflow's member copy (the same members, the same rule).
//! `kubernetes.namespace_labels` (allow-listed namespace labels, de-dotted)
//! follows `kubernetes.annotations` when the metadata has any.
//!
//! ## Costs
//!
//! The per-file part of a document (path, pod, container, host) is encoded once
//! per `(Source, PodMeta)` pair (by `Arc` identity) and copied as bytes per
//! record. Strings are escaped by hand with a copy-through fast path; invalid
//! UTF-8 is replaced by U+FFFD.

use crate::airflow::AirflowState;
use crate::index::{data_stream_part, IndexNameTemplate};
use crate::json::{write_raw, write_str, write_timestamp, write_u64};
use crate::json_message::{self, JsonMessageOptions, JsonSkipReason, JsonTarget};
use crate::log_id::LogIdTemplate;
use crate::meta::MetaView;
use crate::schema::Schema;
use crate::tail::{encode_ecs_tail, encode_fluentd_tail};
use base64::Engine as _;
use logferry_core::{AirflowTask, Level, PodMeta, Record, RecordBatch, RecordFlags, Source};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A hasher for the file cache, whose keys are pointer pairs: one multiply per
/// word instead of SipHash (no untrusted input reaches these keys).
#[derive(Default)]
struct PtrHasher(u64);

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FileCache = HashMap<(usize, usize), FileEntry, BuildHasherDefault<PtrHasher>>;

/// Airflow task log support.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AirflowOptions {
    /// Airflow's `[elasticsearch] log_id_template`, parsed, e.g.
    /// `{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}`.
    pub log_id_template: LogIdTemplate,
    /// The task of every file that names none itself (neither pod, path nor
    /// record): the sidecar's own task, e.g. from the pod's labels through the
    /// downward API.
    pub task: Option<AirflowTask>,
    /// Where the encoder keeps, across restarts, the last `offset` of each
    /// `log_id` and the last `log_id` of each file (JSON, written at most
    /// once a second and by
    /// [`DocumentEncoder::save_airflow_state`]); `None` keeps them in memory
    /// only. The binary puts it in its `data_dir`.
    pub state_file: Option<std::path::PathBuf>,
}

/// What documents look like.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DocumentOptions {
    /// Field names.
    pub schema: Schema,
    /// `host.name`: the node's name.
    pub host_name: Option<String>,
    /// `orchestrator.cluster.name` (ECS), when set.
    pub cluster_name: Option<String>,
    /// Airflow `log_id` / `offset`, when set.
    pub airflow: Option<AirflowOptions>,
    /// Who read the files (bytes hashed into every `_id`, see
    /// [`DocumentEncoder::document_id_in`]): the node name in kubernetes mode,
    /// the pod's identity in files mode, so that two nodes or two sidecars
    /// with equal (device, inode, first line) never produce the same `_id`.
    /// Stable across restarts of the same node or pod. Empty: not scoped.
    pub id_scope: String,
    /// The JSON-message option ([`crate::json_message`]); `None` (the
    /// default): messages stay text.
    pub json_message: Option<JsonMessageOptions>,
}

/// How the forwarder names a document's index.
#[derive(Clone, Debug)]
pub(crate) enum IndexNaming {
    /// Rendered per record.
    Template(IndexNameTemplate),
    /// A data stream `<kind>-<dataset>-<namespace>` whose namespace may be
    /// rendered per file (`{kubernetes.namespace}`); documents also get the
    /// `data_stream.type`, `data_stream.dataset` and `data_stream.namespace`
    /// fields Elastic's data stream naming scheme asks for.
    DataStream {
        /// `data_stream.type`.
        kind: String,
        /// `data_stream.dataset`.
        dataset: String,
        /// The namespace template.
        namespace: IndexNameTemplate,
    },
}

/// Per-file cache entry. Holds the `Arc`s so that their addresses (the cache
/// key) cannot be reused by other files while the entry lives.
struct FileEntry {
    _source: Arc<Source>,
    _meta: Option<Arc<PodMeta>>,
    /// Encoded per-file fields, starting with `,` (see `encode_tail`).
    tail: Vec<u8>,
    /// The rendered Airflow `log_id` as a JSON string literal, for Airflow pods.
    log_id: Option<Vec<u8>>,
    /// Last rendered index name and its bucket key.
    index: Option<(Option<i64>, String)>,
}

/// Most cached files before the cache is emptied (bounded memory).
const MAX_CACHED_FILES: usize = 4096;

/// Encodes records into JSON documents (see the module documentation for the
/// fields). One encoder per task; it caches per-file parts, so reuse it.
pub struct DocumentEncoder {
    schema: Schema,
    host_name: Option<String>,
    cluster_name: Option<String>,
    airflow: Option<AirflowState>,
    id_scope: String,
    json: Option<JsonState>,
    files: FileCache,
}

/// The JSON-message option and what it did not parse since the last take.
struct JsonState {
    options: JsonMessageOptions,
    not_parsed: [u64; JsonSkipReason::ALL.len()],
}

impl std::fmt::Debug for DocumentEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentEncoder")
            .field("schema", &self.schema)
            .field("cached_files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl DocumentEncoder {
    /// Creates an encoder.
    pub fn new(options: DocumentOptions) -> Self {
        DocumentEncoder {
            schema: options.schema,
            host_name: options.host_name,
            cluster_name: options.cluster_name,
            airflow: options
                .airflow
                .map(|a| AirflowState::new(a.log_id_template, a.task, a.state_file)),
            id_scope: options.id_scope,
            json: options.json_message.map(|options| JsonState {
                options,
                not_parsed: [0; JsonSkipReason::ALL.len()],
            }),
            files: FileCache::default(),
        }
    }

    /// Records of Airflow-enabled encoding that no rule could give a `log_id`
    /// (see the rules in `src/airflow.rs`) since the last call; resets the count.
    pub fn take_records_without_log_id(&mut self) -> u64 {
        self.airflow
            .as_mut()
            .map_or(0, |a| std::mem::take(&mut a.without_log_id))
    }

    /// Messages that looked like JSON objects but were shipped as text only
    /// (see [`crate::json_message`]), per reason, since the last call; resets
    /// the counts. All zero when the option is off.
    pub fn take_json_messages_not_parsed(&mut self) -> [(JsonSkipReason, u64); 4] {
        let counts = self
            .json
            .as_mut()
            .map_or([0; 4], |j| std::mem::take(&mut j.not_parsed));
        let mut out = [(JsonSkipReason::Invalid, 0); 4];
        for (slot, reason) in out.iter_mut().zip(JsonSkipReason::ALL) {
            *slot = (reason, counts[reason.index()]);
        }
        out
    }

    /// Writes the Airflow state ([`AirflowOptions::state_file`]) if it changed,
    /// and, unless `now`, at most once a second: call it after each batch and
    /// with `now` when the input ends. A failed write is logged (the state is
    /// kept in memory and written again later); without Airflow or a state
    /// file it does nothing.
    pub fn save_airflow_state(&mut self, now: bool) {
        if let Some(a) = self.airflow.as_mut() {
            a.save(now);
        }
    }

    /// The document `_id` of `record` read from `source`, not scoped
    /// ([`DocumentEncoder::document_id_in`] with an empty scope).
    pub fn document_id(source: &Source, record: &Record) -> [u8; 22] {
        Self::document_id_in("", source, record)
    }

    /// The document `_id` of `record` read from `source` by the collector
    /// `scope` ([`DocumentOptions::id_scope`]): the URL-safe base64 (no
    /// padding) of the 128-bit XXH3 hash of `dev`, `ino`, `fingerprint` and
    /// `start` (each as 8 little-endian bytes) followed by the bytes of
    /// `scope`. Deterministic: a record read again after a restart gets the
    /// same `_id`, so the bulk `create` answers 409 instead of indexing a copy;
    /// the same record position read by another node or pod gets another.
    /// An empty scope gives the ids of versions before scoping.
    ///
    /// A [`RecordFlags::DOCUMENT`] record (from a NATS source) carries its
    /// identity itself: its `_id` is the base64 of
    /// [`Record::document_identity`], whatever the scope.
    pub fn document_id_in(scope: &str, source: &Source, record: &Record) -> [u8; 22] {
        if record.flags.contains(RecordFlags::DOCUMENT) {
            return base64_id(record.document_identity());
        }
        let mut fixed = [0u8; 32];
        fixed[..8].copy_from_slice(&source.file.dev.to_le_bytes());
        fixed[8..16].copy_from_slice(&source.file.ino.to_le_bytes());
        fixed[16..24].copy_from_slice(&source.file.fingerprint.to_le_bytes());
        fixed[24..].copy_from_slice(&record.start.to_le_bytes());
        let hash = if scope.is_empty() {
            xxhash_rust::xxh3::xxh3_128(&fixed)
        } else {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(&fixed);
            h.update(scope.as_bytes());
            h.digest128()
        }
        .to_le_bytes();
        base64_id(hash)
    }

    /// Appends one JSON document (no trailing newline) for `record` of
    /// `batch` to `out`. Uses `batch.meta` when present, otherwise the
    /// metadata the source's path and container id carry.
    ///
    /// A [`RecordFlags::DOCUMENT`] record is written as it is (its message is
    /// the whole document).
    pub fn encode(&mut self, batch: &RecordBatch, record: &Record, out: &mut Vec<u8>) {
        if record.flags.contains(RecordFlags::DOCUMENT) {
            write_document(out, &record.message);
            return;
        }
        let key = self.entry(batch);
        let entry = &self.files[&key];
        encode_doc(
            self.schema,
            entry,
            self.airflow.as_mut(),
            self.json.as_mut(),
            batch,
            record,
            out,
        );
    }

    /// Appends one bulk item: the action line `{"create":{"_index":…,"_id":…}}`,
    /// `\n`, the document and `\n`. Returns the document's byte range in `out`.
    pub(crate) fn encode_bulk_item(
        &mut self,
        naming: &IndexNaming,
        batch: &RecordBatch,
        record: &Record,
        out: &mut Vec<u8>,
    ) -> std::ops::Range<usize> {
        if record.flags.contains(RecordFlags::DOCUMENT) {
            return self.encode_document_item(naming, batch, record, out);
        }
        let key = self.entry(batch);
        let host = self.host_name.as_deref();
        let entry = self.files.get_mut(&key).expect("entry was just inserted");
        out.extend_from_slice(b"{\"create\":{\"_index\":");
        match naming {
            IndexNaming::Template(t) | IndexNaming::DataStream { namespace: t, .. } => {
                let bucket = t.bucket_key(record.timestamp_nanos);
                let fresh = matches!(&entry.index, Some((b, _)) if b.is_some() && *b == bucket);
                if !fresh {
                    let view = MetaView::new(&batch.source, batch.meta.as_deref(), host);
                    let rendered = t.render(record.timestamp_nanos, &view);
                    let name = match naming {
                        IndexNaming::DataStream { kind, dataset, .. } => {
                            format!("{kind}-{dataset}-{}", data_stream_part(&rendered))
                        }
                        _ => rendered,
                    };
                    entry.index = Some((bucket, name));
                }
                let name = &entry.index.as_ref().expect("index rendered above").1;
                write_str(out, name.as_bytes());
            }
        }
        out.extend_from_slice(b",\"_id\":\"");
        out.extend_from_slice(&Self::document_id_in(&self.id_scope, &batch.source, record));
        out.extend_from_slice(b"\"}}\n");
        let start = out.len();
        encode_doc(
            self.schema,
            entry,
            self.airflow.as_mut(),
            self.json.as_mut(),
            batch,
            record,
            out,
        );
        if let IndexNaming::DataStream { kind, dataset, .. } = naming {
            let name = &entry.index.as_ref().expect("index rendered above").1;
            let namespace = &name[kind.len() + dataset.len() + 2..];
            out.pop(); // the document's closing `}`
            out.extend_from_slice(b",\"data_stream\":{\"type\":");
            write_str(out, kind.as_bytes());
            out.extend_from_slice(b",\"dataset\":");
            write_str(out, dataset.as_bytes());
            out.extend_from_slice(b",\"namespace\":");
            write_str(out, namespace.as_bytes());
            out.extend_from_slice(b"}}");
        }
        let end = out.len();
        out.push(b'\n');
        start..end
    }

    /// The bulk item of a [`RecordFlags::DOCUMENT`] record: the index name is
    /// rendered from the record time and the batch's metadata (no per-file
    /// cache: such batches mix many origins), the document copied.
    fn encode_document_item(
        &mut self,
        naming: &IndexNaming,
        batch: &RecordBatch,
        record: &Record,
        out: &mut Vec<u8>,
    ) -> std::ops::Range<usize> {
        out.extend_from_slice(b"{\"create\":{\"_index\":");
        let view = MetaView::new(
            &batch.source,
            batch.meta.as_deref(),
            self.host_name.as_deref(),
        );
        let name = match naming {
            IndexNaming::Template(t) => t.render(record.timestamp_nanos, &view),
            IndexNaming::DataStream {
                kind,
                dataset,
                namespace,
            } => format!(
                "{kind}-{dataset}-{}",
                data_stream_part(&namespace.render(record.timestamp_nanos, &view))
            ),
        };
        write_str(out, name.as_bytes());
        out.extend_from_slice(b",\"_id\":\"");
        out.extend_from_slice(&Self::document_id_in(&self.id_scope, &batch.source, record));
        out.extend_from_slice(b"\"}}\n");
        let start = out.len();
        write_document(out, &record.message);
        let end = out.len();
        out.push(b'\n');
        start..end
    }

    fn entry(&mut self, batch: &RecordBatch) -> (usize, usize) {
        let key = (
            Arc::as_ptr(&batch.source) as usize,
            batch.meta.as_ref().map_or(0, |m| Arc::as_ptr(m) as usize),
        );
        if !self.files.contains_key(&key) {
            if self.files.len() >= MAX_CACHED_FILES {
                self.files.clear();
            }
            let view = MetaView::new(
                &batch.source,
                batch.meta.as_deref(),
                self.host_name.as_deref(),
            );
            let mut tail = Vec::with_capacity(256);
            match self.schema {
                Schema::Ecs => encode_ecs_tail(&view, self.cluster_name.as_deref(), &mut tail),
                Schema::Fluentd => encode_fluentd_tail(&view, &mut tail),
            }
            let log_id = self
                .airflow
                .as_ref()
                .and_then(|a| a.file_log_id(view.airflow, &batch.source.path));
            self.files.insert(
                key,
                FileEntry {
                    _source: batch.source.clone(),
                    _meta: batch.meta.clone(),
                    tail,
                    log_id,
                    index: None,
                },
            );
        }
        key
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_doc(
    schema: Schema,
    entry: &FileEntry,
    airflow: Option<&mut AirflowState>,
    json: Option<&mut JsonState>,
    batch: &RecordBatch,
    record: &Record,
    out: &mut Vec<u8>,
) {
    let msg: &[u8] = &record.message;
    // The JSON-message option: parsed first (it may name the message and level).
    let (json_options, parsed) = match json {
        Some(j) => match json_message::parse(&j.options, msg) {
            Ok(parsed) => (Some(&j.options), parsed),
            Err(reason) => {
                j.not_parsed[reason.index()] += 1;
                (Some(&j.options), None)
            }
        },
        None => (None, None),
    };
    // The text field: the raw message, unless the option drops it for the object's own.
    let text: Option<TextField<'_>> = match (&parsed, json_options) {
        (Some(map), Some(o)) if !o.keep_message => {
            json_message::message_of(map).map(TextField::Str)
        }
        _ => Some(TextField::Raw(msg)),
    };
    // Airflow JSON task records: parse the members first (they may replace `message`).
    let members = match airflow {
        Some(_) if looks_like_object(msg) => serde_json::from_slice::<Members<'_>>(msg).ok(),
        _ => None,
    };
    let message_member = members
        .as_ref()
        .filter(|_| schema == Schema::Ecs)
        .and_then(|m| m.0.iter().find(|(k, _)| k == "message").map(|(_, v)| *v));

    out.extend_from_slice(b"{\"@timestamp\":");
    write_timestamp(out, record.timestamp_nanos);
    match schema {
        Schema::Ecs => {
            match (message_member, &text) {
                (Some(raw), _) => {
                    out.extend_from_slice(b",\"message\":");
                    write_raw(out, raw);
                }
                (None, Some(t)) => {
                    out.extend_from_slice(b",\"message\":");
                    t.write(out);
                }
                (None, None) => {}
            }
            out.extend_from_slice(b",\"stream\":\"");
            out.extend_from_slice(record.stream.as_str().as_bytes());
            out.extend_from_slice(b"\",\"log\":{");
            if record.flags.contains(RecordFlags::TRUNCATED) {
                out.extend_from_slice(b"\"flags\":[\"truncated\"],");
            }
            let level = parsed
                .as_ref()
                .and_then(json_message::level_of)
                .or_else(|| Level::detect(msg));
            if let Some(level) = level {
                out.extend_from_slice(b"\"level\":\"");
                out.extend_from_slice(level.as_str().as_bytes());
                out.extend_from_slice(b"\",");
            }
            out.extend_from_slice(b"\"offset\":");
            write_u64(out, record.start);
        }
        Schema::Fluentd => {
            out.extend_from_slice(b",\"time\":");
            write_timestamp(out, record.timestamp_nanos);
            if let Some(t) = &text {
                out.extend_from_slice(b",\"log\":");
                t.write(out);
            }
            out.extend_from_slice(b",\"stream\":\"");
            out.extend_from_slice(record.stream.as_str().as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(&entry.tail);
    if let (Some(map), Some(o)) = (&parsed, json_options) {
        json_message::write_members(o, schema, airflow.is_some(), map, out);
    }
    // Merged at the root by the option already: Airflow's copy would repeat them.
    let merged = parsed.is_some() && json_options.is_some_and(|o| o.target == JsonTarget::Root);

    if let Some(airflow) = airflow {
        if let Some(members) = members.as_ref().filter(|_| !merged) {
            // Elasticsearch refuses duplicate keys; keep the first of each.
            let mut written: Vec<&str> = Vec::with_capacity(members.0.len());
            for (key, value) in &members.0 {
                let key: &str = key;
                if written.contains(&key) || json_message::reserved(schema, key, false) {
                    continue;
                }
                written.push(key);
                out.push(b',');
                write_str(out, key.as_bytes());
                out.push(b':');
                write_raw(out, value);
            }
        }
        let members = members.as_ref().map(|m| m.0.as_slice());
        airflow.write(entry.log_id.as_deref(), batch, record, members, out);
    }
    out.push(b'}');
}

/// The text field's value (`message`, or `log` for Fluentd).
enum TextField<'a> {
    /// The raw message, escaped.
    Raw(&'a [u8]),
    /// The parsed object's own message.
    Str(&'a str),
}

impl TextField<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            TextField::Raw(b) => write_str(out, b),
            TextField::Str(s) => write_str(out, s.as_bytes()),
        }
    }
}

/// URL-safe base64 without padding of a 128-bit id: 22 characters.
fn base64_id(bytes: [u8; 16]) -> [u8; 22] {
    let mut id = [0u8; 22];
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut id)
        .expect("16 bytes encode to 22 base64 characters");
    debug_assert_eq!(n, 22);
    id
}

/// Copies a whole document, line breaks (insignificant in valid JSON) turned
/// into spaces so that it stays on one NDJSON line.
fn write_document(out: &mut Vec<u8>, doc: &[u8]) {
    let at = out.len();
    out.extend_from_slice(doc.trim_ascii());
    for b in &mut out[at..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
}

fn looks_like_object(msg: &[u8]) -> bool {
    let t = msg.trim_ascii();
    t.first() == Some(&b'{') && t.last() == Some(&b'}')
}

/// The top-level members of a JSON object, in order, values left raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

#[derive(serde::Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    members.push((k, v));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}
