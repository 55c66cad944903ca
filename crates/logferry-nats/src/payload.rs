//! From a NATS message payload to the JSON document that is indexed.
//!
//! ## `fly` (default): Fly.io's log events
//!
//! Fly's NATS log stream (what Fly's Log Shipper consumes,
//! <https://github.com/superfly/fly-log-shipper>) carries one JSON object per
//! message on `logs.<app>.<region>.<instance>`:
//!
//! ```json
//! {"event":{"provider":"app"},"fly":{"app":{"instance":"148ed…","name":"web"},"region":"ord"},
//!  "host":"a1b2","log":{"level":"info"},"message":"GET / 200","timestamp":"2026-12-04T05:00:00.123456789Z"}
//! ```
//!
//! It becomes an ECS document
//! (<https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html>):
//!
//! | payload              | document                      |
//! |----------------------|-------------------------------|
//! | `timestamp`          | `@timestamp` (else the time the message arrived) |
//! | `log.level`          | `log.level`                   |
//! | `message`            | `message`                     |
//! | `fly.app.name`       | `service.name`                |
//! | `fly.region`         | `cloud.region`                |
//! | `host`               | `host.name`                   |
//! | `event`              | `event` (e.g. `event.provider`) |
//! | other `fly.*`        | `fly.*` (e.g. `fly.app.instance`) |
//! | any other member     | under `fly.` (or at the top level, [`PayloadOptions::extra_fields_under`] `None`) |
//! | the NATS subject     | `nats.subject`                |
//!
//! Dotted flat keys (`"fly.app.name": "web"`, `"log.level": "info"`) are read
//! like nested ones.
//!
//! ## `document`: logferry documents
//!
//! The payload is already a document (what the `nats` sink of a node
//! logferry publishes): it is indexed byte for byte; `@timestamp` gives the
//! record time (for index names).
//!
//! ## Anything else
//!
//! A payload that is not a JSON object is shipped as text: `message` (UTF-8,
//! invalid bytes replaced), `@timestamp` the arrival time, `nats.subject`. A
//! payload that starts like an object but does not parse is *malformed*: it is
//! shipped the same way, flagged `UNPARSED` and counted.

use serde_json::{Map, Value};

/// How payloads are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum PayloadFormat {
    /// Fly.io log events, mapped to ECS (see the module documentation).
    #[default]
    Fly,
    /// Complete documents (from logferry's `nats` sink), indexed as they are.
    Document,
}

/// Payload decoding options.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PayloadOptions {
    /// The payload format.
    pub format: PayloadFormat,
    /// Object that receives payload members with no ECS mapping (`fly`
    /// format); `None` puts them at the top level (never over a field the
    /// mapping wrote).
    pub extra_fields_under: Option<String>,
}

impl Default for PayloadOptions {
    fn default() -> Self {
        PayloadOptions {
            format: PayloadFormat::Fly,
            extra_fields_under: Some("fly".into()),
        }
    }
}

/// What decoding a payload gave.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decoded {
    /// The document (a JSON object, one line).
    pub document: Vec<u8>,
    /// Record time, nanoseconds since the Unix epoch.
    pub timestamp_nanos: i64,
    /// The payload looked like JSON but did not parse (shipped as text).
    pub malformed: bool,
}

/// Parses an RFC 3339 time to nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

fn format_time(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Decodes one payload received on `subject` at `received_nanos`.
pub fn decode(
    payload: &[u8],
    subject: &str,
    received_nanos: i64,
    options: &PayloadOptions,
) -> Decoded {
    let trimmed = payload.trim_ascii();
    let looks_json = trimmed.first() == Some(&b'{');
    if looks_json {
        match options.format {
            PayloadFormat::Document => {
                if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(trimmed) {
                    let ts = map
                        .get("@timestamp")
                        .and_then(Value::as_str)
                        .and_then(parse_time)
                        .unwrap_or(received_nanos);
                    return Decoded {
                        document: trimmed.to_vec(),
                        timestamp_nanos: ts,
                        malformed: false,
                    };
                }
            }
            PayloadFormat::Fly => {
                if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(trimmed) {
                    return fly(map, subject, received_nanos, options);
                }
            }
        }
    }
    let mut doc = Map::new();
    doc.insert(
        "@timestamp".into(),
        Value::String(format_time(received_nanos)),
    );
    doc.insert(
        "message".into(),
        Value::String(String::from_utf8_lossy(payload).into_owned()),
    );
    doc.insert("nats".into(), subject_object(subject));
    Decoded {
        document: serde_json::to_vec(&Value::Object(doc)).expect("a Value serializes"),
        timestamp_nanos: received_nanos,
        malformed: looks_json,
    }
}

fn subject_object(subject: &str) -> Value {
    let mut nats = Map::new();
    nats.insert("subject".into(), Value::String(subject.to_owned()));
    Value::Object(nats)
}

/// Removes `path` (`a.b.c`) from `map`, whether nested or as a flat dotted key.
fn take(map: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = map.remove(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    let Some(Value::Object(inner)) = map.get_mut(head) else {
        return None;
    };
    let v = take(inner, rest);
    if inner.is_empty() {
        map.remove(head);
    }
    v
}

fn object(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

/// Merges `value` into `map[key]` (objects member by member, first writer wins).
fn merge(map: &mut Map<String, Value>, key: &str, value: Value) {
    match (map.get_mut(key), value) {
        (Some(Value::Object(into)), Value::Object(from)) => {
            for (k, v) in from {
                merge(into, &k, v);
            }
        }
        (Some(_), _) => {}
        (None, v) => {
            map.insert(key.to_owned(), v);
        }
    }
}

fn fly(
    mut src: Map<String, Value>,
    subject: &str,
    received_nanos: i64,
    options: &PayloadOptions,
) -> Decoded {
    let mut doc = Map::new();
    let (ts_text, ts) = match take(&mut src, "timestamp") {
        Some(Value::String(s)) => match parse_time(&s) {
            Some(n) => (s, n),
            None => (format_time(received_nanos), received_nanos),
        },
        _ => (format_time(received_nanos), received_nanos),
    };
    doc.insert("@timestamp".into(), Value::String(ts_text));
    // `log.level` before `message`: level detection reads the first `level` key.
    let level = take(&mut src, "log.level");
    let mut log = match take(&mut src, "log") {
        Some(Value::Object(m)) => m,
        Some(other) => {
            src.insert("log".into(), other);
            Map::new()
        }
        None => Map::new(),
    };
    if let Some(level) = level {
        let level = match level {
            Value::String(s) => Value::String(s.to_ascii_lowercase()),
            other => other,
        };
        let mut first = Map::new();
        first.insert("level".into(), level);
        first.append(&mut log);
        log = first;
    }
    if !log.is_empty() {
        doc.insert("log".into(), Value::Object(log));
    }
    let message = match take(&mut src, "message") {
        Some(Value::String(s)) => Value::String(s),
        Some(other) => Value::String(other.to_string()),
        None => Value::String(String::new()),
    };
    doc.insert("message".into(), message);
    if let Some(app) = take(&mut src, "fly.app.name") {
        doc.insert("service".into(), object("name", app));
    }
    if let Some(region) = take(&mut src, "fly.region") {
        doc.insert("cloud".into(), object("region", region));
    }
    match take(&mut src, "host") {
        Some(Value::Object(h)) => {
            doc.insert("host".into(), Value::Object(h));
        }
        Some(h) => {
            doc.insert("host".into(), object("name", h));
        }
        None => {}
    }
    if let Some(event) = take(&mut src, "event") {
        doc.insert("event".into(), event);
    }
    let fly = take(&mut src, "fly");
    let under = options
        .extra_fields_under
        .as_deref()
        .filter(|s| !s.is_empty());
    if let Some(fly) = fly {
        merge(&mut doc, "fly", fly);
    }
    // Flat dotted `fly.*` keys left over.
    let flat: Vec<String> = src
        .keys()
        .filter(|k| k.starts_with("fly."))
        .cloned()
        .collect();
    for k in flat {
        if let Some(v) = src.remove(&k) {
            let mut path: Vec<&str> = k.split('.').collect();
            let leaf = path.pop().unwrap_or_default();
            let mut value = v;
            let mut key = leaf.to_owned();
            while let Some(p) = path.pop() {
                value = object(&key, value);
                key = p.to_owned();
            }
            merge(&mut doc, &key, value);
        }
    }
    doc.insert("nats".into(), subject_object(subject));
    match under {
        Some(under) => {
            if !src.is_empty() {
                merge(&mut doc, under, Value::Object(src));
            }
        }
        None => {
            for (k, v) in src {
                merge(&mut doc, &k, v);
            }
        }
    }
    Decoded {
        document: serde_json::to_vec(&Value::Object(doc)).expect("a Value serializes"),
        timestamp_nanos: ts,
        malformed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(d: &Decoded) -> Value {
        serde_json::from_slice(&d.document).unwrap()
    }

    const FLY: &str = r#"{"event":{"provider":"app"},"fly":{"app":{"instance":"148ed","name":"web"},"region":"ord"},"host":"a1b2","log":{"level":"INFO"},"message":"GET / 200","timestamp":"2026-12-04T05:00:00.123456789Z","trace_id":"t1"}"#;

    #[test]
    fn fly_events_map_to_ecs() {
        let d = decode(
            FLY.as_bytes(),
            "logs.web.ord.148ed",
            7,
            &PayloadOptions::default(),
        );
        assert!(!d.malformed);
        assert_eq!(
            d.timestamp_nanos,
            parse_time("2026-12-04T05:00:00.123456789Z").unwrap()
        );
        let v = doc(&d);
        assert_eq!(v["@timestamp"], "2026-12-04T05:00:00.123456789Z");
        assert_eq!(v["message"], "GET / 200");
        assert_eq!(v["log"]["level"], "info");
        assert_eq!(v["service"]["name"], "web");
        assert_eq!(v["cloud"]["region"], "ord");
        assert_eq!(v["host"]["name"], "a1b2");
        assert_eq!(v["event"]["provider"], "app");
        assert_eq!(v["fly"]["app"]["instance"], "148ed");
        assert!(v["fly"]["app"].get("name").is_none(), "{v}");
        assert_eq!(v["fly"]["trace_id"], "t1");
        assert_eq!(v["nats"]["subject"], "logs.web.ord.148ed");
        assert_eq!(
            logferry_core::Level::detect(&d.document),
            Some(logferry_core::Level::Info)
        );
        let top = PayloadOptions {
            extra_fields_under: None,
            ..PayloadOptions::default()
        };
        assert_eq!(doc(&decode(FLY.as_bytes(), "s", 7, &top))["trace_id"], "t1");
    }

    #[test]
    fn flat_dotted_keys_are_read_like_nested_ones() {
        let p = r#"{"fly.app.name":"api","fly.region":"fra","log.level":"warn","message":"m","fly.app.instance":"i9"}"#;
        let v = doc(&decode(
            p.as_bytes(),
            "logs.api.fra.i9",
            5,
            &PayloadOptions::default(),
        ));
        assert_eq!(v["service"]["name"], "api");
        assert_eq!(v["cloud"]["region"], "fra");
        assert_eq!(v["log"]["level"], "warn");
        assert_eq!(v["fly"]["app"]["instance"], "i9");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000000005Z");
    }

    #[test]
    fn text_and_malformed_payloads_are_messages() {
        let o = PayloadOptions::default();
        let t = decode(b"plain \xff text", "logs.a.b.c", 1_000_000_000, &o);
        assert!(!t.malformed);
        let v = doc(&t);
        assert_eq!(v["message"], "plain \u{fffd} text");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:01Z");
        let m = decode(br#"{"message": "cut"#, "logs.a.b.c", 1, &o);
        assert!(m.malformed);
        assert_eq!(doc(&m)["message"], r#"{"message": "cut"#);
        let arr = decode(b"[1,2]", "s", 1, &o);
        assert!(!arr.malformed);
    }

    #[test]
    fn documents_pass_through_unchanged() {
        let o = PayloadOptions {
            format: PayloadFormat::Document,
            ..PayloadOptions::default()
        };
        let p = br#"{"@timestamp":"2026-12-04T05:00:00Z","message":"x","kubernetes":{"namespace":"a"}}"#;
        let d = decode(p, "logs.a.b", 1, &o);
        assert_eq!(d.document, p.to_vec());
        assert_eq!(
            d.timestamp_nanos,
            parse_time("2026-12-04T05:00:00Z").unwrap()
        );
    }
}
