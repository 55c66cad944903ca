//! Documents by index and `_id`, and the bulk API applied to them.

use bytes::Bytes;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;

/// A stored document.
#[derive(Clone, Debug)]
pub(crate) struct StoredDoc {
    /// The `_source` exactly as received (a slice of the request body).
    pub source: Bytes,
    /// Sequence number, global to the double, increasing with each write.
    pub seq_no: u64,
    /// Version, 1 on create, +1 per overwrite.
    pub version: u64,
}

/// One index (or data stream).
#[derive(Default, Debug)]
pub(crate) struct Index {
    pub docs: HashMap<String, StoredDoc>,
    pub data_stream: bool,
    /// Mapped field paths (objects and leaves), as dynamic mapping adds them.
    pub fields: std::collections::HashSet<String>,
    /// `index.mapping.total_fields.limit` (default 1000).
    pub field_limit: usize,
    /// Paths the template maps as `flattened` (one field, keys not mapped).
    pub flattened: Vec<String>,
}

/// Elasticsearch's built-in `logs` index template (priority 100, pattern
/// `logs-*-*`, a data stream), which turns any matching new index into a
/// data stream
/// (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-templates.html>).
/// Not listed by `GET _index_template` in the double.
fn builtin_logs_template() -> serde_json::Value {
    serde_json::json!({"index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {},
        "composed_of": ["logs@mappings", "logs@settings", "ecs@mappings"], "_meta": {"managed": true}})
}

fn patterns_match(t: &serde_json::Value, name: &str) -> bool {
    t["index_patterns"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str()).any(|p| glob(p, name)))
        .or_else(|| t["index_patterns"].as_str().map(|p| glob(p, name)))
        .unwrap_or(false)
}

/// Paths under `prefix` that `mappings.properties` maps as `flattened`.
fn flattened_paths(props: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(map) = props.as_object() else { return };
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if v["type"] == "flattened" {
            out.push(path);
        } else if v["properties"].is_object() {
            flattened_paths(&v["properties"], &path, out);
        }
    }
}

/// The field paths of a document source (each object and each leaf counts,
/// as in `index.mapping.total_fields.limit`), not descending into
/// `flattened` paths.
pub(crate) fn field_paths(source: &[u8], flattened: &[String]) -> Vec<String> {
    fn walk(v: &serde_json::Value, prefix: &str, flattened: &[String], out: &mut Vec<String>) {
        if let Some(map) = v.as_object() {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let flat = flattened.contains(&path);
                out.push(path.clone());
                if !flat {
                    walk(v, &path, flattened, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(source) {
        walk(&v, "", flattened, &mut out);
    }
    out
}

/// Everything the double stores.
#[derive(Default, Debug)]
pub(crate) struct Store {
    pub indices: BTreeMap<String, Index>,
    pub templates: BTreeMap<String, serde_json::Value>,
    pub next_seq: u64,
}

/// `*` glob matching (Elasticsearch index patterns).
pub(crate) fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Elasticsearch's index name rules.
pub(crate) fn index_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > 255 {
        return Some("index name is too long");
    }
    if name.chars().any(|c| c.is_uppercase()) {
        return Some("must be lowercase");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return Some(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, :, #]",
        );
    }
    if name.starts_with(['-', '_', '+']) {
        return Some("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return Some("must not be '.' or '..'");
    }
    None
}

impl Store {
    /// The template a new index `name` gets: the matching one with the
    /// highest priority, the built-in `logs` template included.
    pub(crate) fn template_for(&self, name: &str) -> Option<serde_json::Value> {
        let builtin = builtin_logs_template();
        self.templates
            .values()
            .chain(std::iter::once(&builtin))
            .filter(|t| patterns_match(t, name))
            .max_by_key(|t| t["priority"].as_u64().unwrap_or(0))
            .cloned()
    }

    /// Whether a new index `name` would be a data stream (its template has
    /// `data_stream`).
    pub(crate) fn template_makes_data_stream(&self, name: &str) -> bool {
        self.template_for(name)
            .is_some_and(|t| t.get("data_stream").is_some())
    }

    pub(crate) fn index_mut(&mut self, name: &str) -> &mut Index {
        if !self.indices.contains_key(name) {
            let template = self.template_for(name);
            let data_stream = template
                .as_ref()
                .is_some_and(|t| t.get("data_stream").is_some());
            let settings = template.as_ref().map(|t| &t["template"]["settings"]);
            let field_limit = settings
                .and_then(|s| {
                    s["index.mapping.total_fields.limit"]
                        .as_u64()
                        .or_else(|| s["index"]["mapping"]["total_fields"]["limit"].as_u64())
                })
                .unwrap_or(1000) as usize;
            let mut flattened = Vec::new();
            if let Some(t) = &template {
                flattened_paths(&t["template"]["mappings"]["properties"], "", &mut flattened);
            }
            self.indices.insert(
                name.to_owned(),
                Index {
                    docs: HashMap::new(),
                    data_stream,
                    fields: Default::default(),
                    field_limit,
                    flattened,
                },
            );
        }
        self.indices.get_mut(name).expect("inserted above")
    }

    /// Index names matched by a comma list of names and patterns (`_all`,
    /// `*`, `logs-*`). A missing concrete name is an error (like
    /// `ignore_unavailable=false`).
    pub(crate) fn resolve(&self, expr: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "_all" || part.contains('*') {
                let pattern = if part == "_all" { "*" } else { part };
                for name in self.indices.keys() {
                    if glob(pattern, name) && !out.contains(name) {
                        out.push(name.clone());
                    }
                }
            } else if self.indices.contains_key(part) {
                if !out.iter().any(|n| n == part) {
                    out.push(part.to_owned());
                }
            } else {
                return Err(part.to_owned());
            }
        }
        if expr.trim().is_empty() {
            out.extend(self.indices.keys().cloned());
        }
        Ok(out)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionMeta {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<String>,
    #[serde(rename = "routing")]
    _routing: Option<serde::de::IgnoredAny>,
    #[serde(rename = "pipeline")]
    _pipeline: Option<serde::de::IgnoredAny>,
    #[serde(rename = "require_alias")]
    _require_alias: Option<serde::de::IgnoredAny>,
    #[serde(rename = "require_data_stream")]
    _require_data_stream: Option<serde::de::IgnoredAny>,
    #[serde(rename = "if_seq_no")]
    _if_seq_no: Option<serde::de::IgnoredAny>,
    #[serde(rename = "if_primary_term")]
    _if_primary_term: Option<serde::de::IgnoredAny>,
    #[serde(rename = "version")]
    _version: Option<serde::de::IgnoredAny>,
    #[serde(rename = "version_type")]
    _version_type: Option<serde::de::IgnoredAny>,
    #[serde(rename = "dynamic_templates")]
    _dynamic_templates: Option<serde::de::IgnoredAny>,
    #[serde(rename = "list_executed_pipelines")]
    _list_executed_pipelines: Option<serde::de::IgnoredAny>,
    #[serde(rename = "retry_on_conflict")]
    _retry_on_conflict: Option<serde::de::IgnoredAny>,
}

/// A bulk operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Create,
    Index,
    Delete,
    Update,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Index => "index",
            Op::Delete => "delete",
            Op::Update => "update",
        }
    }
}

/// One parsed bulk item.
#[derive(Debug)]
pub(crate) struct BulkItem {
    pub op: Op,
    pub index: String,
    pub id: Option<String>,
    pub source: Option<Bytes>,
}

/// Splits an NDJSON bulk body into items. Errors are whole-request 400s with
/// Elasticsearch's wording.
pub(crate) fn parse_bulk(
    body: &Bytes,
    default_index: Option<&str>,
) -> Result<Vec<BulkItem>, String> {
    if body.is_empty() {
        return Err("request body is required".into());
    }
    if body.last() != Some(&b'\n') {
        return Err("The bulk request must be terminated by a newline [\\n]".into());
    }
    let mut items = Vec::new();
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let next_line = |pos: &mut usize| -> Option<(usize, usize)> {
        if *pos >= body.len() {
            return None;
        }
        let start = *pos;
        let end = body[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| start + i);
        *pos = end + 1;
        Some((start, end))
    };
    while let Some((s, e)) = next_line(&mut pos) {
        line_no += 1;
        let line = &body[s..e];
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let action: HashMap<String, ActionMeta> = serde_json::from_slice(line)
            .map_err(|err| format!("Malformed action/metadata line [{line_no}], expected a simple value for field or START_OBJECT: {err}"))?;
        if action.len() != 1 {
            return Err(format!(
                "Malformed action/metadata line [{line_no}], expected one action"
            ));
        }
        let (name, meta) = action.into_iter().next().expect("one entry");
        let op = match name.as_str() {
            "create" => Op::Create,
            "index" => Op::Index,
            "delete" => Op::Delete,
            "update" => Op::Update,
            other => return Err(format!("Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] or [update] but found [{other}]")),
        };
        let index = match meta.index.or_else(|| default_index.map(str::to_owned)) {
            Some(i) => i,
            None => {
                return Err(format!(
                    "Validation Failed: 1: index is missing for line [{line_no}];"
                ))
            }
        };
        let source = if op == Op::Delete {
            None
        } else {
            let Some((s2, e2)) = next_line(&mut pos) else {
                return Err(format!(
                    "Validation Failed: 1: source is missing for item after line [{line_no}];"
                ));
            };
            line_no += 1;
            Some(body.slice(s2..e2))
        };
        if op == Op::Delete && meta.id.is_none() {
            return Err(format!(
                "Validation Failed: 1: id is missing for line [{}];",
                line_no
            ));
        }
        items.push(BulkItem {
            op,
            index,
            id: meta.id,
            source,
        });
    }
    Ok(items)
}

/// Whether `hay` contains `needle`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay.len() - at < needle.len() {
            return false;
        }
        if &hay[at..at + needle.len()] == needle {
            return true;
        }
        from = at + 1;
    }
    false
}

/// The outcome of one item, written into the response.
pub(crate) enum ItemOutcome {
    Created {
        id: String,
        seq_no: u64,
    },
    Updated {
        id: String,
        seq_no: u64,
        version: u64,
    },
    Deleted {
        id: String,
        seq_no: u64,
        version: u64,
    },
    NotFound {
        id: String,
    },
    Error {
        id: Option<String>,
        status: u16,
        kind: &'static str,
        reason: String,
    },
}

fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Appends one item of a bulk response.
pub(crate) fn write_item(out: &mut Vec<u8>, op: Op, index: &str, outcome: &ItemOutcome) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(op.as_str().as_bytes());
    out.extend_from_slice(b"\":{\"_index\":");
    write_json_str(out, index);
    match outcome {
        ItemOutcome::Created { id, seq_no } => {
            out.extend_from_slice(b",\"_id\":");
            write_json_str(out, id);
            let _ = write!(
                out,
                ",\"_version\":1,\"result\":\"created\",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\"_seq_no\":{seq_no},\"_primary_term\":1,\"status\":201}}}}"
            );
        }
        ItemOutcome::Updated {
            id,
            seq_no,
            version,
        }
        | ItemOutcome::Deleted {
            id,
            seq_no,
            version,
        } => {
            let result = if matches!(outcome, ItemOutcome::Updated { .. }) {
                "updated"
            } else {
                "deleted"
            };
            out.extend_from_slice(b",\"_id\":");
            write_json_str(out, id);
            let _ = write!(
                out,
                ",\"_version\":{version},\"result\":\"{result}\",\"_shards\":{{\"total\":1,\"successful\":1,\"failed\":0}},\"_seq_no\":{seq_no},\"_primary_term\":1,\"status\":200}}}}"
            );
        }
        ItemOutcome::NotFound { id } => {
            out.extend_from_slice(b",\"_id\":");
            write_json_str(out, id);
            out.extend_from_slice(b",\"_version\":1,\"result\":\"not_found\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"status\":404}}");
        }
        ItemOutcome::Error {
            id,
            status,
            kind,
            reason,
        } => {
            if let Some(id) = id {
                out.extend_from_slice(b",\"_id\":");
                write_json_str(out, id);
            }
            let _ = write!(
                out,
                ",\"status\":{status},\"error\":{{\"type\":\"{kind}\",\"reason\":"
            );
            write_json_str(out, reason);
            out.extend_from_slice(b",\"index_uuid\":\"double\",\"shard\":\"0\",\"index\":");
            write_json_str(out, index);
            out.extend_from_slice(b"}}}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("logs-*", "logs-a"));
        assert!(glob("*", "x"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
        assert!(glob("logs", "logs"));
        assert!(!glob("logs", "logs2"));
    }

    #[test]
    fn parses_bulk_bodies() {
        let body = Bytes::from_static(b"{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"index\":{}}\n{\"y\":2}\n{\"delete\":{\"_id\":\"1\"}}\n");
        let items = parse_bulk(&body, Some("dflt")).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].index, "a");
        assert_eq!(&items[0].source.as_ref().unwrap()[..], b"{\"x\":1}");
        assert_eq!(items[1].index, "dflt");
        assert_eq!(items[1].id, None);
        assert_eq!(items[2].op, Op::Delete);
        assert!(parse_bulk(&Bytes::from_static(b"{\"create\":{}}\n{}"), Some("a")).is_err());
        assert!(parse_bulk(
            &Bytes::from_static(b"{\"create\":{\"_type\":\"doc\"}}\n{}\n"),
            Some("a")
        )
        .is_err());
        assert!(parse_bulk(&Bytes::from_static(b"{\"create\":{}}\n{}\n"), None).is_err());
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"lol"));
    }
}
