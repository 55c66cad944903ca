//! Issue 11: the JSON-message option SPEC promises (off by default): a
//! message that is a JSON object parsed under a key or merged at the root,
//! logferry's own fields winning collisions, its level as `log.level`, the
//! original text kept or dropped; hostile JSON bounded, counted and kept as
//! text; and the mapping bounded by the template's `flattened` key.

mod common;

use common::{batches, config, record, ship, source, CountingEvents, T0};
use logferry_core::{
    AckToken, ContainerMeta, MetadataOrigin, PodMeta, RecordBatch, RecordFlags, Stream,
};
use logferry_elasticsearch::{
    DocumentEncoder, DocumentOptions, JsonMessageOptions, JsonSkipReason, JsonTarget, Schema,
};
use logferry_testkit::elasticsearch::EsDouble;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn meta() -> Arc<PodMeta> {
    Arc::new(PodMeta {
        origin: MetadataOrigin::Api,
        namespace: "shop".into(),
        pod_name: "web-0".into(),
        pod_uid: "00000000-0000-4000-8000-000000000001".into(),
        pod_ip: None,
        node_name: Some("node-1".into()),
        labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
        annotations: BTreeMap::new(),
        namespace_labels: BTreeMap::new(),
        owner: None,
        container: ContainerMeta {
            name: "web".into(),
            image: None,
            id: None,
            runtime: None,
        },
        airflow: None,
    })
}

fn batch(messages: &[&str]) -> RecordBatch {
    let src = source(1, "shop", "web-0", "web");
    let mut start = 0;
    let records = messages
        .iter()
        .map(|m| {
            let mut r = record(start, T0, m);
            start = r.end;
            r.stream = Stream::Stdout;
            r.flags = RecordFlags::NONE;
            r
        })
        .collect();
    RecordBatch {
        ack: AckToken {
            source: src.id,
            seq: 0,
        },
        source: src,
        records,
        meta: Some(meta()),
    }
}

fn options(schema: Schema, json: Option<JsonMessageOptions>) -> DocumentOptions {
    DocumentOptions {
        schema,
        host_name: Some("node-1".into()),
        json_message: json,
        ..DocumentOptions::default()
    }
}

fn encode_with(enc: &mut DocumentEncoder, messages: &[&str]) -> Vec<Value> {
    let b = batch(messages);
    b.records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            enc.encode(&b, r, &mut out);
            assert!(!out.contains(&b'\n'), "a document is one NDJSON line");
            serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("invalid JSON {e}: {}", String::from_utf8_lossy(&out)))
        })
        .collect()
}

fn encode(options: DocumentOptions, messages: &[&str]) -> Vec<Value> {
    encode_with(&mut DocumentEncoder::new(options), messages)
}

const APP: &str = r#"{"severity":"WARNING","msg":"cart\nfull","user":{"id":7},"latency.ms":12}"#;

#[test]
fn off_by_default_a_json_message_stays_text() {
    let d = &encode(options(Schema::Ecs, None), &[APP])[0];
    assert_eq!(d["message"], APP);
    assert_eq!(
        d["log"]["level"], "warn",
        "the text's level is detected as before"
    );
    assert!(d.get("json").is_none() && d.get("user").is_none());
}

#[test]
fn under_a_key_the_object_is_kept_whole_with_the_text() {
    let d = &encode(
        options(Schema::Ecs, Some(JsonMessageOptions::default())),
        &[APP, "plain text", "{not json}"],
    );
    assert_eq!(
        d[0]["json"],
        json!({"severity":"WARNING","msg":"cart\nfull","user":{"id":7},"latency.ms":12})
    );
    assert_eq!(d[0]["message"], APP, "keep_message: true by default");
    assert_eq!(d[0]["log"]["level"], "warn");
    assert_eq!(d[0]["kubernetes"]["namespace"], "shop");
    assert_eq!(d[1]["message"], "plain text");
    assert!(d[1].get("json").is_none());
    assert_eq!(d[2]["message"], "{not json}");
    assert!(d[2].get("json").is_none());
}

/// The collision rule: logferry's fields (and any dotted key under them)
/// win, so a tenant cannot spoof its namespace or timestamp.
#[test]
fn merged_at_the_root_logferrys_fields_win() {
    let spoof = r#"{"level":"error","message":"the app's own","kubernetes":{"namespace":"bank"},"kubernetes.namespace":"bank","@timestamp":"1999-01-01T00:00:00Z","log.level":"debug","host":"evil","trace.id":"abc","user":{"id":7},"_id":"x","_source":{}}"#;
    let root = JsonMessageOptions {
        target: JsonTarget::Root,
        ..JsonMessageOptions::default()
    };
    let d = &encode(options(Schema::Ecs, Some(root.clone())), &[spoof])[0];
    assert_eq!(d["kubernetes"]["namespace"], "shop");
    assert!(d.get("kubernetes.namespace").is_none());
    assert_eq!(d["@timestamp"], "2026-11-22T10:00:00.000000000Z");
    assert_eq!(d["host"], json!({"name": "node-1"}));
    assert!(d.get("log.level").is_none());
    assert_eq!(
        d["log"]["level"], "error",
        "the object's level becomes log.level"
    );
    assert_eq!(d["message"], spoof, "the text is kept");
    assert_eq!(d["trace.id"], "abc");
    assert!(d.get("_id").is_none() && d.get("_source").is_none());
    assert_eq!(d["user"], json!({"id": 7}));
    assert!(d.get("level").is_some());

    // Dropping the text: `message` becomes the object's own message.
    let drop_text = JsonMessageOptions {
        keep_message: false,
        ..root.clone()
    };
    let d = &encode(options(Schema::Ecs, Some(drop_text.clone())), &[spoof, APP])[..];
    assert_eq!(d[0]["message"], "the app's own");
    assert_eq!(
        d[1]["message"], "cart\nfull",
        "msg when there is no message"
    );
    assert_eq!(d[1]["user"], json!({"id": 7}));
    let no_text = &encode(
        options(Schema::Ecs, Some(drop_text.clone())),
        &[r#"{"level":"info","n":1}"#],
    )[0];
    assert!(no_text.get("message").is_none(), "{no_text}");
    assert_eq!(no_text["log"]["level"], "info");

    // Fluentd: `log` is the text field, and its fields are the reserved ones.
    let f = &encode(
        options(Schema::Fluentd, Some(drop_text)),
        &[
            r#"{"msg":"hi","log":"spoof","kubernetes":{"pod_name":"x"},"docker":1,"time":2,"k":true}"#,
        ],
    )[0];
    assert_eq!(f["log"], "hi");
    assert_eq!(f["kubernetes"]["pod_name"], "web-0");
    assert!(f["docker"]["container_id"].is_string());
    assert!(f["time"].is_string());
    assert_eq!(f["k"], true);
}

#[test]
fn hostile_json_is_bounded_counted_and_shipped_as_text() {
    let mut enc = DocumentEncoder::new(options(Schema::Ecs, Some(JsonMessageOptions::default())));
    let deep = format!("{}1{}", "{\"a\":".repeat(1_000), "}".repeat(1_000));
    let wide = format!(
        "{{{}}}",
        (0..5_000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let huge = format!("{{\"blob\":\"{}\"}}", "x".repeat(1 << 20));
    let dup_and_empty = r#"{"":1}"#;
    let truncated = r#"{"a":"cut off"#.to_owned() + "}";
    let messages = [
        deep.as_str(),
        wide.as_str(),
        huge.as_str(),
        dup_and_empty,
        truncated.as_str(),
        APP,
    ];
    let docs = encode_with(&mut enc, &messages);
    for (d, m) in docs.iter().zip(messages) {
        assert_eq!(d["message"], m, "the text is kept");
    }
    for d in &docs[..5] {
        assert!(d.get("json").is_none());
    }
    assert!(docs[5]["json"].is_object());
    let counts: BTreeMap<&str, u64> = enc
        .take_json_messages_not_parsed()
        .iter()
        .map(|(r, n)| (r.as_label(), *n))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("invalid", 2),
            ("too_deep", 1),
            ("too_large", 1),
            ("too_many_fields", 1)
        ])
    );
    assert!(
        enc.take_json_messages_not_parsed()
            .iter()
            .all(|(_, n)| *n == 0),
        "taking resets"
    );
    assert_eq!(JsonSkipReason::ALL.len(), 4);
}

/// 1,500 distinct keys across a tenant's messages: under the key, logferry's
/// template maps them as one `flattened` field and everything is delivered;
/// merged at the root without a template, Elasticsearch's
/// `index.mapping.total_fields.limit` refuses them (the double enforces it),
/// which is why the key is the default.
#[tokio::test]
async fn thousands_of_json_keys_stay_under_the_field_limit_under_the_key() {
    let message = |i: usize| {
        let members: Vec<String> = (0..150).map(|k| format!("\"f{i}_{k}\":{k}")).collect();
        format!("{{{}}}", members.join(","))
    };
    let input = || {
        batches(
            &[source(1, "tenant", "noisy-0", "c")],
            None,
            10,
            10,
            message,
        )
    };
    let dir = tempfile::tempdir().unwrap();

    let double = EsDouble::start().await.unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.install_template = true;
    let events = Arc::new(CountingEvents::default());
    let run = ship(
        cfg,
        options(Schema::Ecs, Some(JsonMessageOptions::default())),
        events.clone(),
        input(),
    )
    .await;
    assert_eq!(run.summary.dead_lettered, 0);
    let docs = double.documents("logs-test");
    assert_eq!(docs.len(), 10);
    let first: Value = serde_json::from_slice(&docs[0].source).unwrap();
    assert_eq!(first["json"].as_object().unwrap().len(), 150);
    let template = &double.templates()["logferry-logs-test"];
    assert_eq!(
        template["template"]["mappings"]["properties"]["json"]["type"],
        "flattened"
    );

    let double = EsDouble::start().await.unwrap();
    let root = JsonMessageOptions {
        target: JsonTarget::Root,
        ..JsonMessageOptions::default()
    };
    let run = ship(
        config(&double.url(), dir.path()),
        options(Schema::Ecs, Some(root)),
        Arc::new(CountingEvents::default()),
        input(),
    )
    .await;
    assert!(
        run.summary.dead_lettered > 0,
        "the field limit refuses some"
    );

    // The forwarder reports what it did not parse, per batch.
    let double = EsDouble::start().await.unwrap();
    let wide = (0..300)
        .map(|k| format!("\"k{k}\":1"))
        .collect::<Vec<_>>()
        .join(",");
    let input = batches(
        &[source(1, "tenant", "noisy-0", "c")],
        None,
        4,
        4,
        move |_| format!("{{{wide}}}"),
    );
    let events = Arc::new(CountingEvents::default());
    let run = ship(
        config(&double.url(), dir.path()),
        options(Schema::Ecs, Some(JsonMessageOptions::default())),
        events.clone(),
        input,
    )
    .await;
    assert_eq!(run.summary.dead_lettered, 0);
    assert_eq!(events.json_not_parsed.get("too_many_fields"), 4);
    assert_eq!(double.documents("logs-test").len(), 4);
}

/// With Airflow on too, a root merge writes each member once (Airflow's own
/// copy of JSON members is skipped), so Elasticsearch never sees a duplicate
/// key, and the Airflow fields stay logferry's.
#[test]
fn a_root_merge_with_airflow_writes_each_member_once() {
    let mut m = (*meta()).clone();
    m.airflow = Some(logferry_core::AirflowTask {
        dag_id: "etl".into(),
        task_id: "load".into(),
        run_id: "manual__1".into(),
        try_number: "1".into(),
        map_index: "-1".into(),
        logical_date: None,
    });
    let mut b =
        batch(&[r#"{"user":"ann","event":"spoof","offset":-1,"log_id":"x","level":"warn"}"#]);
    b.meta = Some(Arc::new(m));
    let mut enc = DocumentEncoder::new(DocumentOptions {
        airflow: Some(logferry_elasticsearch::AirflowOptions {
            log_id_template: "{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}"
                .parse()
                .unwrap(),
            task: None,
            state_file: None,
        }),
        json_message: Some(JsonMessageOptions {
            target: JsonTarget::Root,
            ..JsonMessageOptions::default()
        }),
        ..DocumentOptions::default()
    });
    let mut out = Vec::new();
    enc.encode(&b, &b.records[0], &mut out);
    let text = String::from_utf8(out).unwrap();
    for key in [
        "\"user\":",
        "\"event\":",
        "\"offset\":",
        "\"log_id\":",
        "\"level\":",
    ] {
        assert!(
            text.matches(key).count() <= 2,
            "{key} written more than expected: {text}"
        );
    }
    assert_eq!(text.matches("\"user\":").count(), 1, "{text}");
    let d: Value = serde_json::from_str(&text).unwrap();
    // Airflow's rule: a record's own log_id names its log; written once.
    assert_eq!(text.matches("\"log_id\":").count(), 1, "{text}");
    assert_eq!(d["log_id"], "x");
    assert!(d["offset"].as_u64().is_some(), "{d}");
    assert_ne!(d["event"], "spoof");
    assert_eq!(d["log"]["level"], "warn");
}
