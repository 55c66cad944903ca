//! Issue 4, case 4: documents field by field (ECS and Fluentd for the same
//! record), index name templating with dates and fields, data streams, and the
//! Airflow `log_id` / `offset` cases, including Airflow's own handler query
//! against what arrived.

mod common;

use common::{config, record, ship, source, CountingEvents, T0};
use logferry_core::{
    AckToken, AirflowTask, ContainerMeta, FileId, LogFormat, MetadataOrigin, PodMeta, RecordBatch,
    Source, SourceId, Stream,
};
use logferry_elasticsearch::elasticsearch::SearchParts;
use logferry_elasticsearch::{
    build_client, AirflowOptions, DocumentEncoder, DocumentOptions, IndexTarget, Schema,
};
use logferry_testkit::elasticsearch::EsDouble;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const UID: &str = "00000000-0000-4000-8000-000000000007";
const CID: &str = "5c79b78d458d86fff56127cc8657058c10b837d0f2c147b61afea4c8bc65fad7";
/// 2026-11-22T15:04:05.123456789Z
const TS: i64 = 1_795_359_845_123_456_789;

fn meta(airflow: Option<AirflowTask>) -> Arc<PodMeta> {
    Arc::new(PodMeta {
        origin: MetadataOrigin::Api,
        namespace: "shop".into(),
        pod_name: "web-0".into(),
        pod_uid: UID.into(),
        pod_ip: Some("10.1.2.3".into()),
        node_name: Some("node-1".into()),
        labels: BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("app.kubernetes.io/name".to_owned(), "web".to_owned()),
            ("team".to_owned(), "Team A".to_owned()),
        ]),
        annotations: BTreeMap::from([("prometheus.io/scrape".to_owned(), "true".to_owned())]),
        namespace_labels: BTreeMap::new(),
        owner: Some(("StatefulSet".into(), "web".into())),
        container: ContainerMeta {
            name: "web".into(),
            image: Some("nginx:1.27".into()),
            id: Some(CID.into()),
            runtime: Some("containerd".into()),
        },
        airflow,
    })
}

fn batch(meta: Option<Arc<PodMeta>>, records: Vec<logferry_core::Record>) -> RecordBatch {
    let src = source(7, "shop", "web-0", "web");
    RecordBatch {
        ack: AckToken {
            source: src.id,
            seq: 0,
        },
        source: src,
        records,
        meta,
    }
}

fn encode(options: DocumentOptions, b: &RecordBatch) -> Vec<Value> {
    let mut enc = DocumentEncoder::new(options);
    b.records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            enc.encode(b, r, &mut out);
            assert!(!out.contains(&b'\n'), "a document is one NDJSON line");
            serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("invalid JSON {e}: {}", String::from_utf8_lossy(&out)))
        })
        .collect()
}

fn path() -> String {
    format!("/var/log/pods/shop_web-0_{UID}/web/0.log")
}

#[test]
fn ecs_and_fluentd_documents_for_the_same_record() {
    let mut r = record(
        4096,
        TS,
        "2026-11-22 15:04:05 WARN disk \"almost\" full\ttab \\ done",
    );
    r.stream = Stream::Stderr;
    // Issue 11: a truncated record is flagged as Filebeat flags it.
    r.flags = logferry_core::RecordFlags::TRUNCATED;
    let b = batch(Some(meta(None)), vec![r]);
    let path = path();
    let message = "2026-11-22 15:04:05 WARN disk \"almost\" full\ttab \\ done";

    let ecs = encode(
        DocumentOptions {
            host_name: Some("node-1".into()),
            cluster_name: Some("prod-eu".into()),
            ..DocumentOptions::default()
        },
        &b,
    );
    // Owner workload (StatefulSet), orchestrator.cluster.name and
    // ecs.version as Filebeat writes them.
    let expected_ecs = json!({
        "@timestamp": "2026-11-22T15:04:05.123456789Z",
        "message": message,
        "stream": "stderr",
        "log": {"flags": ["truncated"], "level": "warn", "offset": 4096, "file": {"path": path}},
        "kubernetes": {
            "namespace": "shop",
            "pod": {"name": "web-0", "uid": UID, "ip": "10.1.2.3"},
            "node": {"name": "node-1"},
            "container": {"name": "web"},
            "statefulset": {"name": "web"},
            "labels": {"app": "web", "app_kubernetes_io/name": "web", "team": "Team A"},
            "annotations": {"prometheus_io/scrape": "true"}
        },
        "orchestrator": {"cluster": {"name": "prod-eu"}},
        "ecs": {"version": "8.11.0"},
        "container": {"id": CID, "image": {"name": "nginx:1.27"}, "runtime": "containerd"},
        "host": {"name": "node-1"}
    });
    assert_eq!(ecs[0], expected_ecs);

    let fluentd = encode(
        DocumentOptions {
            schema: Schema::Fluentd,
            host_name: Some("node-1".into()),
            cluster_name: None,
            airflow: None,
            id_scope: String::new(),
            json_message: None,
        },
        &b,
    );
    let expected_fluentd = json!({
        "@timestamp": "2026-11-22T15:04:05.123456789Z",
        "time": "2026-11-22T15:04:05.123456789Z",
        "log": message,
        "stream": "stderr",
        "kubernetes": {
            "pod_name": "web-0",
            "namespace_name": "shop",
            "pod_id": UID,
            "container_name": "web",
            "container_image": "nginx:1.27",
            "host": "node-1",
            "labels": {"app": "web", "app_kubernetes_io/name": "web", "team": "Team A"}
        },
        "docker": {"container_id": CID}
    });
    assert_eq!(fluentd[0], expected_fluentd);
}

#[test]
fn without_pod_metadata_the_path_fills_in_and_absent_fields_are_omitted() {
    let b = batch(
        None,
        vec![
            record(0, TS, "plain line"),
            record(11, TS, "bad utf8 \u{1} \u{7f}"),
        ],
    );
    let mut bytes = b.clone();
    bytes.records[1].message = bytes::Bytes::from_static(b"bad \xff\xfe utf8 \x01");
    let docs = encode(
        DocumentOptions {
            host_name: Some("node-9".into()),
            cluster_name: None,
            ..DocumentOptions::default()
        },
        &bytes,
    );
    assert_eq!(
        docs[0],
        json!({
            "@timestamp": "2026-11-22T15:04:05.123456789Z",
            "message": "plain line",
            "stream": "stdout",
            "log": {"offset": 0, "file": {"path": path()}},
            "kubernetes": {
                "namespace": "shop",
                "pod": {"name": "web-0", "uid": UID},
                "node": {"name": "node-9"},
                "container": {"name": "web"}
            },
            "ecs": {"version": "8.11.0"},
            "container": {"id": format!("{:064x}", 0xc0ffee + 7)},
            "host": {"name": "node-9"}
        })
    );
    assert_eq!(docs[1]["message"], "bad \u{fffd}\u{fffd} utf8 \u{1}");
    // A plain file (no kubelet path, no host name): only what the record has.
    let mut plain = (*source(3, "x", "y", "z")).clone();
    plain.path = "/var/log/syslog".into();
    plain.kube = None;
    plain.container_id = None;
    let b = RecordBatch {
        source: Arc::new(plain),
        ack: AckToken {
            source: logferry_core::SourceId(3),
            seq: 0,
        },
        records: vec![record(5, 0, "x")],
        meta: None,
    };
    let docs = encode(DocumentOptions::default(), &b);
    assert_eq!(
        docs[0],
        json!({"@timestamp": "1970-01-01T00:00:00.000000000Z", "message": "x", "stream": "stdout", "log": {"offset": 5, "file": {"path": "/var/log/syslog"}}, "ecs": {"version": "8.11.0"}})
    );
}

#[test]
fn document_ids_are_deterministic_and_distinct() {
    let s = source(1, "a", "b", "c");
    let r = record(100, TS, "x");
    let id = DocumentEncoder::document_id(&s, &r);
    assert_eq!(
        id,
        DocumentEncoder::document_id(&s, &record(100, TS + 5, "other text")),
        "depends on file and offset only"
    );
    assert!(id
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'));
    assert_ne!(id, DocumentEncoder::document_id(&s, &record(101, TS, "x")));
    let mut rotated = (*s).clone();
    rotated.file.fingerprint ^= 1;
    assert_ne!(id, DocumentEncoder::document_id(&rotated, &r));
    let mut other_inode = (*s).clone();
    other_inode.file.ino += 1;
    assert_ne!(id, DocumentEncoder::document_id(&other_inode, &r));
}

fn task() -> AirflowTask {
    AirflowTask {
        dag_id: "etl".into(),
        task_id: "load".into(),
        run_id: "manual__2025-08-12T15:05:57.691303+00:00".into(),
        try_number: "1".into(),
        map_index: "-1".into(),
        logical_date: Some("2025-08-12T15:05:57.691303+00:00".into()),
    }
}

fn airflow_options() -> DocumentOptions {
    DocumentOptions {
        airflow: Some(AirflowOptions {
            log_id_template: "{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}"
                .parse()
                .unwrap(),
            task: None,
            state_file: None,
        }),
        ..DocumentOptions::default()
    }
}

const LOG_ID: &str = "etl-load-manual__2025-08-12T15:05:57.691303+00:00--1-1";

#[test]
fn airflow_text_lines_get_log_id_event_and_strictly_increasing_offsets() {
    let records = vec![
        record(0, TS, "[2025-08-12] INFO - starting"),
        record(30, TS, "[2025-08-12] INFO - same nanosecond"),
        record(70, TS - 1_000, "clock went back"),
        record(90, TS + 10, "end_of_log"),
    ];
    let docs = encode(airflow_options(), &batch(Some(meta(Some(task()))), records));
    let offsets: Vec<i64> = docs.iter().map(|d| d["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [TS, TS + 1, TS + 2, TS + 10]);
    for d in &docs {
        assert_eq!(d["log_id"], LOG_ID);
        assert_eq!(d["event"], d["message"], "Airflow 3 reads `event`");
    }
    assert_eq!(
        docs[3]["message"], "end_of_log",
        "end_of_log records are kept"
    );
    assert_eq!(docs[0]["log"]["level"], "info");
    // Offsets keep increasing across encoder calls for the same file, and are >= 1.
    let early = encode(
        airflow_options(),
        &batch(
            Some(meta(Some(task()))),
            vec![record(0, 0, "epoch"), record(5, -5, "before")],
        ),
    );
    assert_eq!(early[0]["offset"], 1);
    assert_eq!(early[1]["offset"], 2);
    // A pod that is not an Airflow worker gets no Airflow fields.
    let plain = encode(
        airflow_options(),
        &batch(Some(meta(None)), vec![record(0, TS, "x")]),
    );
    assert!(
        plain[0].get("log_id").is_none()
            && plain[0].get("offset").is_none()
            && plain[0].get("event").is_none()
    );
}

#[test]
fn airflow_json_lines_pass_their_fields_through() {
    let own = r#"{"asctime": "2021-07-16T09:10:00.123+0000", "filename": "taskinstance.py", "lineno": 1191, "levelname": "INFO", "message": "Marking task as SUCCESS", "dag_id": "etl", "task_id": "load", "try_number": "1", "log_id": "etl-load-2021_07_16T09_10_00_000000-1", "offset": 1626427744958776832, "stream": "ignored", "kubernetes": {"ignored": true}, "extra": {"nested": [1, 2,
3]}}"#;
    let bare = r#"{"event": "task started", "level": "warning", "logger": "airflow.task", "timestamp": "2025-08-12T15:05:58Z"}"#;
    let docs = encode(
        airflow_options(),
        &batch(
            Some(meta(Some(task()))),
            vec![record(0, TS, own), record(500, TS, bare)],
        ),
    );
    let d = &docs[0];
    assert_eq!(
        d["log_id"], "etl-load-2021_07_16T09_10_00_000000-1",
        "the task's own log_id passes through"
    );
    assert_eq!(
        d["offset"], TS,
        "one clock per log: the runtime's time, not the task's own offset"
    );
    assert_eq!(
        d["message"], "Marking task as SUCCESS",
        "`message` replaces the raw line"
    );
    assert_eq!(d["levelname"], "INFO");
    assert_eq!(d["lineno"], 1191);
    assert_eq!(d["extra"], json!({"nested": [1, 2, 3]}));
    assert_eq!(
        d["stream"], "stdout",
        "members colliding with logferry fields are skipped"
    );
    assert_eq!(d["kubernetes"]["namespace"], "shop");
    assert_eq!(d["log"]["level"], "info");
    assert_eq!(
        d["event"], "Marking task as SUCCESS",
        "Airflow 3 reads `event`"
    );
    let d = &docs[1];
    assert_eq!(d["log_id"], LOG_ID, "rendered when the line has none");
    assert_eq!(d["offset"], TS, "another log_id: its own clock");
    assert_eq!(d["event"], "task started");
    assert_eq!(
        d["message"], bare,
        "no `message` member: the raw line stays"
    );
    assert_eq!(d["log"]["level"], "warn");
    // Fluentd schema: `message` is just another member.
    let f = encode(
        DocumentOptions {
            schema: Schema::Fluentd,
            ..airflow_options()
        },
        &batch(Some(meta(Some(task()))), vec![record(0, TS, own)]),
    );
    assert_eq!(f[0]["message"], "Marking task as SUCCESS");
    assert_eq!(f[0]["log"], own);
    // Duplicate keys (which Elasticsearch refuses) keep their first value.
    let dup = encode(
        airflow_options(),
        &batch(
            Some(meta(Some(task()))),
            vec![record(
                0,
                TS,
                r#"{"a": 1, "a": 2, "offset": 5, "offset": 6}"#,
            )],
        ),
    );
    let mut out = Vec::new();
    DocumentEncoder::new(airflow_options()).encode(
        &batch(Some(meta(Some(task()))), vec![]),
        &record(0, TS, r#"{"a": 1, "a": 2, "offset": 5, "offset": 6}"#),
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\"a\":").count(), 1, "{text}");
    assert_eq!(text.matches(",\"offset\":").count(), 1, "{text}");
    assert_eq!(dup[0]["a"], 1);
    assert_eq!(dup[0]["offset"], TS);
}

fn files_batch(path: &str, records: Vec<logferry_core::Record>) -> RecordBatch {
    let src = Arc::new(Source {
        id: SourceId(99),
        file: FileId {
            dev: 1,
            ino: 99,
            fingerprint: 5,
        },
        path: path.into(),
        kube: None,
        container_id: None,
        format: LogFormat::Plain,
    });
    RecordBatch {
        ack: AckToken {
            source: src.id,
            seq: 0,
        },
        source: src,
        records,
        meta: None,
    }
}

/// Issue 17: files mode (the sidecar) has no pod; the task comes from
/// Airflow's task log path, and `offset` is the byte clock (start + 1), so a
/// text line written just before a JSON record (whose own `offset` is its emit
/// time) still sorts before it.
#[test]
fn airflow_files_mode_takes_the_task_from_the_log_path_with_one_byte_clock() {
    let path = "/opt/airflow/logs/dag_id=etl/run_id=manual__2025-08-12T15:05:57.691303+00:00/task_id=load/attempt=1.log";
    let json = r#"{"message": "json", "offset": 99, "log_id": "etl-load-manual__2025-08-12T15:05:57.691303+00:00--1-1"}"#;
    let docs = encode(
        airflow_options(),
        &files_batch(
            path,
            vec![
                record(0, TS + 5, "text before"),
                record(12, TS, json),
                record(200, TS - 9, "text after"),
            ],
        ),
    );
    let offsets: Vec<i64> = docs.iter().map(|d| d["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [1, 13, 201]);
    for d in &docs {
        assert_eq!(d["log_id"], LOG_ID, "{d}");
    }
    assert_eq!(docs[1]["event"], "json");
}

/// Issue 17: the sidecar's configured task, and a file whose task nobody
/// names: its text lines inherit the `log_id` of the file's JSON records, and
/// lines before the first one are counted, not silently shipped.
#[test]
fn airflow_configured_task_inherited_log_id_and_unidentified_records_are_counted() {
    let mut options = airflow_options();
    options.airflow.as_mut().unwrap().task = Some(task());
    let docs = encode(
        options,
        &files_batch("/var/log/app/worker.log", vec![record(0, TS, "hello")]),
    );
    assert_eq!(docs[0]["log_id"], LOG_ID);

    let mut enc = DocumentEncoder::new(airflow_options());
    let b = files_batch(
        "/var/log/app/worker.log",
        vec![
            record(0, TS, "banner"),
            record(7, TS, r#"{"message": "m", "log_id": "own-id"}"#),
            record(50, TS, "text"),
        ],
    );
    let docs: Vec<Value> = b
        .records
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            enc.encode(&b, r, &mut out);
            serde_json::from_slice(&out).unwrap()
        })
        .collect();
    assert!(docs[0].get("log_id").is_none() && docs[0].get("offset").is_none());
    assert_eq!(enc.take_records_without_log_id(), 1);
    assert_eq!(enc.take_records_without_log_id(), 0, "taking resets");
    assert_eq!(
        (docs[1]["log_id"].as_str(), docs[1]["offset"].as_i64()),
        (Some("own-id"), Some(8))
    );
    assert_eq!(
        (docs[2]["log_id"].as_str(), docs[2]["offset"].as_i64()),
        (Some("own-id"), Some(51))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_names_render_dates_and_fields_and_templates_are_installed() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let day = 86_400_000_000_000i64;
    let with_meta = batch(
        Some(meta(None)),
        vec![record(0, TS, "today"), record(10, TS + day, "tomorrow")],
    );
    let mut degraded = batch(None, vec![record(0, TS, "no metadata")]);
    let other = source(8, "default", "job", "main");
    degraded.ack = AckToken {
        source: other.id,
        seq: 0,
    };
    degraded.source = other;
    let mut cfg = config(&double.url(), dir.path());
    cfg.target = IndexTarget::Index {
        template: "Logs-{kubernetes.namespace}-{kubernetes.labels.team}-%Y.%m.%d"
            .parse()
            .unwrap(),
    };
    cfg.install_template = true;
    let run = ship(
        cfg,
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        vec![with_meta.clone(), degraded.clone()],
    )
    .await;
    run.assert_each_acked_once(&[with_meta, degraded]);
    let indices: Vec<String> = double.indices().into_keys().collect();
    assert_eq!(
        indices,
        [
            "logs-default-unknown-2026.11.22",
            "logs-shop-team_a-2026.11.22",
            "logs-shop-team_a-2026.11.23"
        ]
    );
    let templates = double.templates();
    assert_eq!(
        templates["logferry-logs"]["index_patterns"],
        json!(["logs-*-*-*.*.*"])
    );
    assert_eq!(
        templates["logferry-logs"]["template"]["mappings"]["properties"]["@timestamp"]["type"],
        "date_nanos"
    );
    assert_eq!(
        templates["logferry-dead-letter"]["index_patterns"],
        json!(["logferry-dead-letter"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_streams_get_a_template_and_create_ops() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let b = batch(
        Some(meta(None)),
        (0..10)
            .map(|i| record(i * 10, TS + i as i64, "x"))
            .collect(),
    );
    let mut cfg = config(&double.url(), dir.path());
    cfg.target = IndexTarget::DataStream {
        kind: "logs".into(),
        dataset: "kubernetes".into(),
        namespace: "default".into(),
    };
    cfg.install_template = true;
    let run = ship(
        cfg.clone(),
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        vec![b.clone()],
    )
    .await;
    run.assert_each_acked_once(&[b]);
    assert_eq!(double.documents("logs-kubernetes-default").len(), 10);
    assert!(double.templates()["logferry-logs-kubernetes-default"]["data_stream"].is_object());
    // The official client sees a data stream.
    let client = build_client(&cfg).unwrap();
    let resp = client
        .indices()
        .get_data_stream(
            logferry_elasticsearch::elasticsearch::indices::IndicesGetDataStreamParts::Name(&[
                "logs-kubernetes-default",
            ]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status_code().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data_streams"][0]["name"], "logs-kubernetes-default");
}

/// What Airflow's Elasticsearch task handler does to read a task log
/// (<https://airflow.apache.org/docs/apache-airflow-providers-elasticsearch/stable/logging/index.html>): `_count`, then `_search` with
/// `bool.filter = range(offset > last)`, `bool.must = match_phrase(log_id)`,
/// `sort = offset`, pages of `size`, polling with the last offset seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airflow_handler_query_reads_the_task_log_in_order() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..250)
        .map(|i| format!("[task] line {i}"))
        .chain(["end_of_log".to_owned()])
        .collect();
    // Every line in the same nanosecond: offsets must still be strictly increasing.
    let records: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| record(i as u64 * 100, T0, l))
        .collect();
    let mut input = Vec::new();
    for (seq, chunk) in records.chunks(40).enumerate() {
        let mut b = batch(Some(meta(Some(task()))), chunk.to_vec());
        b.ack.seq = seq as u64;
        input.push(b);
    }
    // A second task's pod in the same index must not leak into the first's log.
    let mut other = task();
    other.try_number = "2".into();
    let mut b2 = batch(
        Some(meta(Some(other))),
        vec![record(0, T0, "[task] other try")],
    );
    b2.source = source(99, "shop", "web-0", "web");
    b2.ack = AckToken {
        source: b2.source.id,
        seq: 0,
    };
    input.push(b2);
    let cfg = config(&double.url(), dir.path());
    let run = ship(
        cfg.clone(),
        airflow_options(),
        Arc::new(CountingEvents::default()),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);

    let client = build_client(&cfg).unwrap();
    let count: Value = client
        .count(logferry_elasticsearch::elasticsearch::CountParts::Index(&["logs-*"]))
        .body(json!({"query": {"bool": {"filter": [{"range": {"offset": {"gt": 0}}}], "must": [{"match_phrase": {"log_id": LOG_ID}}]}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 251);
    let mut last = "0".to_owned();
    let mut read = Vec::new();
    loop {
        let page: Value = client
            .search(SearchParts::Index(&["logs-*"]))
            .body(json!({
                "query": {"bool": {"filter": [{"range": {"offset": {"gt": last}}}], "must": [{"match_phrase": {"log_id": LOG_ID}}]}},
                "sort": ["offset"],
                "size": 100
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hits = page["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        for h in &hits {
            read.push(h["_source"]["message"].as_str().unwrap().to_owned());
            // Airflow keeps the last offset as a string (JavaScript precision).
            last = h["_source"]["offset"].as_i64().unwrap().to_string();
        }
    }
    assert_eq!(
        read, lines,
        "every line once, in order, ending with end_of_log"
    );
}

/// Property check over many random messages (seeded, so reproducible): any
/// bytes (control characters, quotes, backslashes, multi-byte and invalid
/// UTF-8, JSON-looking text) give one valid JSON line whose message is the
/// input with invalid UTF-8 replaced, in both schemas and with Airflow on.
#[test]
fn arbitrary_message_bytes_always_encode_to_valid_json() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x10f3);
    let alphabet: &[&[u8]] = &[
        b"a",
        b"Z",
        b"0",
        b" ",
        b"\"",
        b"\\",
        b"\n",
        b"\r",
        b"\t",
        b"\x00",
        b"\x1f",
        b"\x7f",
        b"{",
        b"}",
        b":",
        b",",
        "é".as_bytes(),
        "✓".as_bytes(),
        "𝄞".as_bytes(),
        b"\xff",
        b"\xc3",
        b"\xe2\x9c",
        b"\"message\":",
        b"{\"a\":[1,{\"b\":null}]}",
    ];
    let options = [
        DocumentOptions::default(),
        DocumentOptions {
            schema: Schema::Fluentd,
            ..DocumentOptions::default()
        },
        airflow_options(),
    ];
    for case in 0..3_000 {
        let len = rng.random_range(0..64);
        let mut msg = Vec::new();
        if case % 3 == 0 {
            msg.push(b'{');
        }
        for _ in 0..len {
            msg.extend_from_slice(alphabet[rng.random_range(0..alphabet.len())]);
        }
        if case % 3 == 0 {
            msg.push(b'}');
        }
        let mut r = record(case as u64, TS, "");
        r.message = bytes::Bytes::from(msg.clone());
        let b = batch(Some(meta(Some(task()))), vec![r]);
        for o in &options {
            let docs = encode(o.clone(), &b);
            let field = if o.schema == Schema::Fluentd {
                "log"
            } else {
                "message"
            };
            let expected = String::from_utf8_lossy(&msg);
            let is_json_object =
                serde_json::from_slice::<serde_json::Map<String, Value>>(&msg).is_ok();
            if !(o.airflow.is_some() && is_json_object) {
                assert_eq!(docs[0][field], expected.as_ref(), "case {case}: {msg:?}");
            }
        }
    }
}

/// Records from a NATS source (`RecordFlags::DOCUMENT`) are complete
/// documents: indexed byte for byte under the `_id` they carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_records_are_indexed_as_they_are_under_their_own_id() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doc = |n: u64| {
        let json = format!(
            r#"{{"@timestamp":"2026-12-04T05:00:00Z","message":"m{n}","service":{{"name":"web"}}}}"#
        );
        let (start, end) = logferry_core::Record::identity_halves([n as u8; 16]);
        logferry_core::Record {
            start,
            end,
            timestamp_nanos: TS,
            stream: logferry_core::Stream::Stdout,
            flags: logferry_core::RecordFlags::DOCUMENT,
            message: json.into(),
        }
    };
    let b = batch(None, vec![doc(1), doc(2)]);
    let mut replay = b.clone();
    replay.ack.seq = 1;
    let mut out = Vec::new();
    DocumentEncoder::new(DocumentOptions::default()).encode(&b, &b.records[0], &mut out);
    assert_eq!(
        out,
        br#"{"@timestamp":"2026-12-04T05:00:00Z","message":"m1","service":{"name":"web"}}"#
    );
    let id = DocumentEncoder::document_id(&b.source, &b.records[0]);
    assert_eq!(&id, b"AQEBAQEBAQEBAQEBAQEBAQ");
    let run = ship(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        vec![b.clone(), replay.clone()],
    )
    .await;
    run.assert_each_acked_once(&[b.clone(), replay]);
    let docs = double.documents("logs-test");
    assert_eq!(docs.len(), 2, "the replay was a 409");
    assert_eq!(docs[0].id, "AQEBAQEBAQEBAQEBAQEBAQ");
    assert_eq!(&docs[1].source[..], &b.records[1].message[..]);
}

/// Issue 11: allow-listed namespace labels as Filebeat writes them
/// (`kubernetes.namespace_labels`, de-dotted like pod labels), in both schemas,
/// and usable in index names; absent when there are none.
#[test]
fn namespace_labels_are_written_where_filebeat_writes_them() {
    let mut m = (*meta(None)).clone();
    m.namespace_labels = BTreeMap::from([
        ("team".to_owned(), "payments".to_owned()),
        ("tier.example.com/class".to_owned(), "gold".to_owned()),
    ]);
    let b = batch(Some(Arc::new(m)), vec![record(0, TS, "hello")]);
    let ecs = encode(DocumentOptions::default(), &b);
    assert_eq!(
        ecs[0]["kubernetes"]["namespace_labels"],
        json!({"team": "payments", "tier_example_com/class": "gold"})
    );
    let fluentd = encode(
        DocumentOptions {
            schema: Schema::Fluentd,
            ..DocumentOptions::default()
        },
        &b,
    );
    assert_eq!(
        fluentd[0]["kubernetes"]["namespace_labels"]["team"],
        "payments"
    );
    let plain = encode(
        DocumentOptions::default(),
        &batch(Some(meta(None)), vec![record(0, TS, "hello")]),
    );
    assert!(plain[0]["kubernetes"].get("namespace_labels").is_none());
    assert!(logferry_elasticsearch::IndexNameTemplate::parse(
        "logs-{kubernetes.namespace_labels.team}"
    )
    .is_ok());
}

/// Issue 17, found by tests/airflow/run.py: after a restart, a text line that
/// starts the resumed part of a task's stdout (kubelet layout without the API)
/// lost its `log_id`, and a line the runtime stamped just before the previous
/// one got an `offset` below the one the handler's poll had passed (skipped for
/// good). The Airflow state file carries both across the restart.
#[test]
fn airflow_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("airflow.json");
    let options = || {
        let mut o = airflow_options();
        o.airflow.as_mut().unwrap().state_file = Some(state.clone());
        o
    };
    let encode_with = |enc: &mut DocumentEncoder, b: &RecordBatch| -> Vec<Value> {
        b.records
            .iter()
            .map(|r| {
                let mut out = Vec::new();
                enc.encode(b, r, &mut out);
                serde_json::from_slice(&out).unwrap()
            })
            .collect()
    };
    let json = r#"{"message": "m", "log_id": "own-id", "offset": 1}"#;
    let mut first = DocumentEncoder::new(options());
    let docs = encode_with(
        &mut first,
        &batch(None, vec![record(0, TS, json), record(60, TS + 10, "text")]),
    );
    assert_eq!(
        (docs[1]["log_id"].as_str(), docs[1]["offset"].as_i64()),
        (Some("own-id"), Some(TS + 10))
    );
    first.save_airflow_state(true);
    drop(first);

    let resumed = batch(
        None,
        vec![
            record(100, TS + 5, "stamped before the previous line"),
            record(140, TS + 20, "later"),
        ],
    );
    let docs = encode_with(&mut DocumentEncoder::new(options()), &resumed);
    let got: Vec<(Option<&str>, Option<i64>)> = docs
        .iter()
        .map(|d| (d["log_id"].as_str(), d["offset"].as_i64()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("own-id"), Some(TS + 11)),
            (Some("own-id"), Some(TS + 20))
        ]
    );

    // Without the state (the behaviour before): no log_id for the resumed lines.
    let docs = encode_with(&mut DocumentEncoder::new(airflow_options()), &resumed);
    assert!(docs[0].get("log_id").is_none(), "{}", docs[0]);

    // A damaged state file is ignored (logged), never fatal.
    std::fs::write(&state, b"{not json").unwrap();
    let docs = encode_with(&mut DocumentEncoder::new(options()), &resumed);
    assert!(docs[0].get("log_id").is_none(), "{}", docs[0]);
}
