//! The JSON-message option (off by default): a message that is a JSON object
//! is parsed into the document, under a key or merged at the document root.
//!
//! The contract is `SPEC.md`'s "A message that is a JSON object may be parsed
//! (option) into its own object", with the choices Filebeat's `json` options
//! (`keys_under_root`, `overwrite_keys`) and Fluent Bit's `Merge_Log`,
//! `Merge_Log_Key` and `Keep_Log` offer
//! (<https://www.elastic.co/guide/en/beats/filebeat/current/filebeat-input-filestream.html#filebeat-input-filestream-ndjson>,
//! <https://docs.fluentbit.io/manual/pipeline/filters/kubernetes>):
//!
//! * **Where**: under [`JsonTarget::Key`] (default `json`; the index template
//!   maps it `flattened`, one field whatever the keys, so no tenant can
//!   explode the mapping or make another tenant's types conflict), or merged
//!   at the root ([`JsonTarget::Root`]; every key becomes a mapped field).
//! * **Collisions at the root: logferry's fields win.** A member whose key,
//!   or the first dot-separated part of it, is a field logferry writes
//!   (`@timestamp`, `message`, `log`, `kubernetes`, `container`, `host`, …) is
//!   not merged, so a tenant can neither spoof pod metadata nor turn a
//!   `keyword` into an array (`"kubernetes.namespace": "other"` would). Keys
//!   starting with `_` are not merged either (Elasticsearch refuses its
//!   metadata fields, `_id`, `_source`, …, inside a document).
//! * **The text**: kept in `message` (`log` for the Fluentd schema) unless
//!   [`JsonMessageOptions::keep_message`] is false; then `message` is the
//!   object's own `message` (or `msg`) string, or absent.
//! * **The level**: the object's `level`, `log.level`, `severity`,
//!   `levelname` (or nested `log.level`) string becomes `log.level`.
//! * **Bounds**: a message longer than `max_bytes`, nested deeper than
//!   `max_depth`, with more than `max_fields` keys (all levels), that is not
//!   valid JSON, or has a key Elasticsearch refuses (empty, or an empty
//!   dot-separated part) is not parsed: the document keeps the text, and the
//!   encoder counts it by [`JsonSkipReason`]. The limits are checked by one
//!   pass over the bytes before anything is allocated.
//! * **Cost**: none when off; when on, only messages that start with `{` and
//!   end with `}` are looked at.

use logferry_core::{ConfigProblem, Level};
use serde_json::{Map, Value};

use crate::schema::Schema;

/// Where a parsed message goes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum JsonTarget {
    /// Under this top-level key (a name without `.`, not a field logferry writes).
    Key(String),
    /// Each member at the document root, except those that collide with
    /// logferry's fields.
    Root,
}

/// The JSON-message option (see the module documentation).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JsonMessageOptions {
    /// Where the parsed object goes. Default `Key("json")`.
    pub target: JsonTarget,
    /// Keep the original text in `message` (`log` for Fluentd). Default true.
    pub keep_message: bool,
    /// Longest message parsed, bytes. Default 64 KiB.
    pub max_bytes: usize,
    /// Deepest nesting parsed (the object itself is depth 1). Default 10.
    pub max_depth: usize,
    /// Most keys parsed, counted over all levels. Default 200.
    pub max_fields: usize,
}

impl Default for JsonMessageOptions {
    fn default() -> Self {
        JsonMessageOptions {
            target: JsonTarget::Key("json".into()),
            keep_message: true,
            max_bytes: 64 * 1024,
            max_depth: 10,
            max_fields: 200,
        }
    }
}

impl JsonMessageOptions {
    /// Every problem of these options for documents of `schema`, with key
    /// paths relative to the daemon's `json_message` section (`key`,
    /// `max_depth`). Empty means the encoder uses them as given.
    pub fn problems(&self, schema: Schema) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let JsonTarget::Key(key) = &self.target {
            let valid = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'));
            if !valid {
                out.push(ConfigProblem::new(
                    "key",
                    format!("expected a field name of letters, digits, '_', '-' or '@' (no '.'), or null to merge at the root, got {key:?}"),
                ));
            } else if reserved(schema, key, true) {
                out.push(ConfigProblem::new(
                    "key",
                    format!("{key:?} is a field logferry writes; choose another name"),
                ));
            }
        }
        for (name, v) in [
            ("max_bytes", self.max_bytes),
            ("max_depth", self.max_depth),
            ("max_fields", self.max_fields),
        ] {
            if v == 0 {
                out.push(ConfigProblem::new(name, "must be positive"));
            }
        }
        if self.max_depth > 20 {
            // Elasticsearch's `flattened` depth_limit default and mapping depth limit.
            out.push(ConfigProblem::new(
                "max_depth",
                "at most 20 (Elasticsearch's mapping depth limit)",
            ));
        }
        out
    }
}

/// Why a message that looked like a JSON object was shipped as text only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum JsonSkipReason {
    /// Not valid JSON, or a key Elasticsearch refuses.
    Invalid,
    /// Longer than `max_bytes`.
    TooLarge,
    /// Nested deeper than `max_depth`.
    TooDeep,
    /// More keys than `max_fields`.
    TooManyFields,
}

impl JsonSkipReason {
    /// Every reason, in declaration order.
    pub const ALL: [JsonSkipReason; 4] = [
        JsonSkipReason::Invalid,
        JsonSkipReason::TooLarge,
        JsonSkipReason::TooDeep,
        JsonSkipReason::TooManyFields,
    ];

    /// The metric label: `invalid`, `too_large`, `too_deep`, `too_many_fields`.
    pub fn as_label(self) -> &'static str {
        match self {
            JsonSkipReason::Invalid => "invalid",
            JsonSkipReason::TooLarge => "too_large",
            JsonSkipReason::TooDeep => "too_deep",
            JsonSkipReason::TooManyFields => "too_many_fields",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Top-level keys logferry writes, per schema. With `airflow`, also the
/// fields Airflow records get (`event`).
pub(crate) fn reserved(schema: Schema, key: &str, airflow: bool) -> bool {
    let common = matches!(key, "@timestamp" | "log" | "stream" | "log_id" | "offset")
        || (airflow && key == "event");
    common
        || match schema {
            Schema::Ecs => matches!(
                key,
                "message"
                    | "data_stream"
                    | "ecs"
                    | "orchestrator"
                    | "kubernetes"
                    | "container"
                    | "host"
            ),
            Schema::Fluentd => matches!(key, "time" | "kubernetes" | "docker"),
        }
}

/// One pass over the bytes: nesting depth and key count, no allocation.
fn check_shape(bytes: &[u8], max_depth: usize, max_fields: usize) -> Result<(), JsonSkipReason> {
    let (mut depth, mut fields) = (0usize, 0usize);
    let (mut in_str, mut escaped) = (false, false);
    for &b in bytes {
        if in_str {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(JsonSkipReason::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' => {
                fields += 1;
                if fields > max_fields {
                    return Err(JsonSkipReason::TooManyFields);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether every key at every level is a field name Elasticsearch accepts
/// (not empty, no empty `.`-separated part).
fn keys_accepted(map: &Map<String, Value>) -> bool {
    map.iter().all(|(k, v)| {
        !k.is_empty() && k.split('.').all(|part| !part.trim().is_empty()) && value_keys_accepted(v)
    })
}

fn value_keys_accepted(v: &Value) -> bool {
    match v {
        Value::Object(m) => keys_accepted(m),
        Value::Array(items) => items.iter().all(value_keys_accepted),
        _ => true,
    }
}

/// Parses `message` if it is a JSON object within `options`' bounds.
/// `Ok(None)`: not an object (plain text, not counted).
pub(crate) fn parse(
    options: &JsonMessageOptions,
    message: &[u8],
) -> Result<Option<Map<String, Value>>, JsonSkipReason> {
    let t = message.trim_ascii();
    if t.first() != Some(&b'{') || t.last() != Some(&b'}') {
        return Ok(None);
    }
    if t.len() > options.max_bytes {
        return Err(JsonSkipReason::TooLarge);
    }
    check_shape(t, options.max_depth, options.max_fields)?;
    let map: Map<String, Value> = serde_json::from_slice(t).map_err(|_| JsonSkipReason::Invalid)?;
    if !keys_accepted(&map) {
        return Err(JsonSkipReason::Invalid);
    }
    Ok(Some(map))
}

/// The level the object names: the first string among `level`, `log.level`,
/// `severity`, `levelname` and a nested `log.level`.
pub(crate) fn level_of(map: &Map<String, Value>) -> Option<Level> {
    ["level", "log.level", "severity", "levelname"]
        .iter()
        .filter_map(|k| map.get(*k))
        .chain(map.get("log").and_then(|l| l.get("level")))
        .find_map(|v| v.as_str().and_then(|s| Level::parse(s.trim().as_bytes())))
}

/// The object's own message when the original text is dropped: its
/// `message`, else `msg`, string member.
pub(crate) fn message_of(map: &Map<String, Value>) -> Option<&str> {
    ["message", "msg"]
        .iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
}

/// Appends `,"<key>":<value>` for each member (root) or `,"<key>":{…}`.
pub(crate) fn write_members(
    options: &JsonMessageOptions,
    schema: Schema,
    airflow: bool,
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
) {
    match &options.target {
        JsonTarget::Key(key) => {
            out.push(b',');
            crate::json::write_str(out, key.as_bytes());
            out.push(b':');
            serde_json::to_writer(&mut *out, map).expect("writing JSON to a Vec cannot fail");
        }
        JsonTarget::Root => {
            for (k, v) in map {
                let first = k.split('.').next().unwrap_or(k);
                // `_id`, `_source`, …: Elasticsearch refuses metadata fields in a document.
                if reserved(schema, first, airflow) || k.starts_with('_') {
                    continue;
                }
                out.push(b',');
                crate::json::write_str(out, k.as_bytes());
                out.push(b':');
                serde_json::to_writer(&mut *out, v).expect("writing JSON to a Vec cannot fail");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> JsonMessageOptions {
        JsonMessageOptions {
            max_depth: 3,
            max_fields: 4,
            max_bytes: 100,
            ..JsonMessageOptions::default()
        }
    }

    #[test]
    fn bounds_are_checked_before_parsing() {
        let o = opts();
        assert_eq!(parse(&o, b"plain text {x}"), Ok(None));
        assert_eq!(parse(&o, b"[1,2]"), Ok(None));
        assert!(parse(&o, br#" {"a":{"b":{"c":1}}} "#).unwrap().is_some());
        assert_eq!(
            parse(&o, br#"{"a":{"b":{"c":[1]}}}"#),
            Err(JsonSkipReason::TooDeep)
        );
        assert_eq!(
            parse(&o, br#"{"a":1,"b":2,"c":3,"d":{"e":4}}"#),
            Err(JsonSkipReason::TooManyFields)
        );
        // Braces and colons inside strings (escaped quotes too) are not structure.
        assert!(parse(&o, br#"{"a":"{{{{:::: \" [[[[","b":"\\"}"#)
            .unwrap()
            .is_some());
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        assert_eq!(parse(&o, long.as_bytes()), Err(JsonSkipReason::TooLarge));
        assert_eq!(parse(&o, b"{\"a\":1,}"), Err(JsonSkipReason::Invalid));
        assert_eq!(parse(&o, b"{\"\":1}"), Err(JsonSkipReason::Invalid));
        assert_eq!(
            parse(&o, b"{\"a\":{\"x..y\":1}}"),
            Err(JsonSkipReason::Invalid)
        );
        assert_eq!(parse(&o, b"{\"a\":\"\xff\"}"), Err(JsonSkipReason::Invalid));
    }

    #[test]
    fn levels_and_messages_come_from_the_object() {
        let m = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert_eq!(level_of(&m(r#"{"severity":"WARNING"}"#)), Some(Level::Warn));
        assert_eq!(level_of(&m(r#"{"log.level":"error"}"#)), Some(Level::Error));
        assert_eq!(
            level_of(&m(r#"{"log":{"level":"debug"}}"#)),
            Some(Level::Debug)
        );
        assert_eq!(level_of(&m(r#"{"level":30}"#)), None);
        assert_eq!(message_of(&m(r#"{"msg":"hi","x":1}"#)), Some("hi"));
        assert_eq!(message_of(&m(r#"{"message":{"a":1}}"#)), None);
    }

    #[test]
    fn keys_must_be_plain_and_free() {
        let key = |k: &str| JsonMessageOptions {
            target: JsonTarget::Key(k.into()),
            ..JsonMessageOptions::default()
        };
        assert!(key("json").problems(Schema::Ecs).is_empty());
        assert!(key("app_json").problems(Schema::Fluentd).is_empty());
        for bad in ["", "a.b", "kubernetes", "log", "message"] {
            let p = key(bad).problems(Schema::Ecs);
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert_eq!(p[0].key, "key");
        }
        let zero = JsonMessageOptions {
            max_depth: 0,
            max_fields: 0,
            ..JsonMessageOptions::default()
        };
        assert_eq!(zero.problems(Schema::Ecs).len(), 2);
    }
}
