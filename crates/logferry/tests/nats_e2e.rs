//! `source.mode: nats` and the `nats` sink, end to end: the real `logferry`
//! binary, the real `nats-server` (Debian's 2.9, JetStream on, temporary
//! store), the Elasticsearch double.
//!
//! * Fly.io style: messages on `logs.<app>.<region>.<instance>`; subject
//!   filters and `min_level`; two logferry processes in one queue group ship
//!   every message exactly once while both run, and the survivor takes over;
//!   malformed payloads are shipped as text and counted.
//! * Bad input: an invalid subject (config error with its key path), refused
//!   credentials (exit 1 with the reason), an unreachable server (retries
//!   with a metric, or exits 2 with the reason without `retry_on_start`).
//! * JetStream: node logferry (files) → JetStream → aggregator logferry →
//!   Elasticsearch, with SIGKILLs of both logferry processes, a nats-server
//!   restart and an Elasticsearch outage: every line exactly once.
//! * `examples/fly/logferry.yaml` validates with Fly's environment variables.

mod common;

use bytes::Bytes;
use common::{binary, free_port, http, metric_sum, repo_root, wait_for, Daemon};
use logferry_testkit::elasticsearch::EsDouble;
use logferry_testkit::nats::{NatsServer, ServerAuth};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn admin() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

fn fly_event(app: &str, region: &str, level: &str, text: &str) -> String {
    format!(
        r#"{{"event":{{"provider":"app"}},"fly":{{"app":{{"instance":"148ed","name":"{app}"}},"region":"{region}"}},"host":"a1b2","log":{{"level":"{level}"}},"message":"{text}","timestamp":"2026-12-04T05:00:00.123456789Z"}}"#
    )
}

/// Writes a NATS-mode configuration and returns its path.
fn nats_config(
    dir: &Path,
    name: &str,
    admin: SocketAddr,
    source: &str,
    sink: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "data_dir: {data}\nsource:\n{source}\nserver: {{listen: \"{admin}\"}}\nshutdown: {{drain_timeout: 5s}}\n{sink}\n",
            data = dir.join(format!("data-{name}")).display(),
        ),
    )
    .unwrap();
    path
}

fn es_sink(es: &EsDouble) -> String {
    format!(
        "elasticsearch:\n  endpoints: [\"{}\"]\n  index: logs-fly\n  batch: {{max_events: 500, timeout: 100ms}}\n  retry: {{initial_backoff: 50ms, max_backoff: 500ms}}\n",
        es.url()
    )
}

/// Messages by text: how many documents carry each `message`.
fn by_message(es: &EsDouble) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in es.all_documents() {
        let v: Value = serde_json::from_slice(&d.source).unwrap();
        *m.entry(v["message"].as_str().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    m
}

fn publish(rt: &tokio::runtime::Runtime, url: &str, msgs: &[(String, String)]) {
    rt.block_on(async {
        let c = async_nats::connect(url).await.unwrap();
        for (subject, payload) in msgs {
            c.publish(subject.clone(), Bytes::from(payload.clone()))
                .await
                .unwrap();
        }
        c.flush().await.unwrap();
    });
}

/// Waits until the daemon is connected and its subscriptions are in place.
fn wait_subscribed(d: &mut Daemon) {
    d.wait_ready(Duration::from_secs(20));
    assert!(
        wait_for(Duration::from_secs(20), || d
            .metric("logferry_nats_connected")
            == 1.0),
        "not connected: {}",
        d.stderr()
    );
    // The SUB is sent right after CONNECT; give it a moment to reach the server.
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn fly_queue_group_ships_every_message_once_and_the_survivor_takes_over() {
    let rt = runtime();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(dir.path(), ServerAuth::None);
    let source = format!(
        "  mode: nats\n  exclude: [\"logs.noisy.>\"]\n  nats:\n    servers: [\"{}\"]\n    subjects: [\"logs.>\"]\n    queue: shippers\n",
        nats.url()
    );
    let (a1, a2) = (admin(), admin());
    let c1 = nats_config(
        dir.path(),
        "one",
        a1,
        &source,
        &format!("{}filter: {{min_level: info}}\n", es_sink(&es)),
    );
    let c2 = nats_config(
        dir.path(),
        "two",
        a2,
        &source,
        &format!("{}filter: {{min_level: info}}\n", es_sink(&es)),
    );
    let mut one = Daemon::start(dir.path(), &c1, a1, &[], &[]);
    let mut two = Daemon::start(dir.path(), &c2, a2, &[], &[]);
    wait_subscribed(&mut one);
    wait_subscribed(&mut two);

    // Round 1: both run. Apps in several regions, a noisy app (excluded), debug
    // lines (below min_level), and malformed payloads.
    let mut msgs = Vec::new();
    let mut expected = Vec::new();
    for n in 0..600 {
        let (app, region) = [("web", "ord"), ("api", "fra"), ("worker", "syd")][n % 3];
        let text = format!("round1 {n}");
        msgs.push((
            format!("logs.{app}.{region}.i{}", n % 7),
            fly_event(app, region, "info", &text),
        ));
        expected.push(text);
    }
    for n in 0..50 {
        msgs.push((
            format!("logs.noisy.ord.i{n}"),
            fly_event("noisy", "ord", "info", &format!("noisy {n}")),
        ));
        msgs.push((
            format!("logs.web.ord.i{n}"),
            fly_event("web", "ord", "debug", &format!("debug {n}")),
        ));
    }
    for n in 0..20 {
        let text = format!("{{\"message\": \"malformed {n}\"");
        msgs.push((format!("logs.web.ord.m{n}"), text.clone()));
        expected.push(text);
    }
    publish(&rt, &nats.url(), &msgs);
    let ok = wait_for(Duration::from_secs(60), || {
        es.document_count() >= expected.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let got = by_message(&es);
    assert!(
        ok,
        "only {} of {} documents",
        es.document_count(),
        expected.len()
    );
    for text in &expected {
        assert_eq!(got.get(text), Some(&1), "{text:?} not exactly once");
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "nothing else (noisy, debug) was shipped"
    );
    let r1 = one.metric("logferry_nats_received_records_total");
    let r2 = two.metric("logferry_nats_received_records_total");
    assert!(
        r1 > 0.0 && r2 > 0.0,
        "the queue group shares the stream: {r1} / {r2}"
    );
    assert_eq!(
        r1 + r2,
        msgs.len() as f64,
        "each message went to one member"
    );
    let malformed = one.metric("logferry_nats_malformed_records_total")
        + two.metric("logferry_nats_malformed_records_total");
    assert_eq!(malformed, 20.0);
    let doc = es
        .all_documents()
        .into_iter()
        .map(|d| serde_json::from_slice::<Value>(&d.source).unwrap())
        .find(|v| v["message"] == "round1 1")
        .unwrap();
    assert_eq!(doc["service"]["name"], "api");
    assert_eq!(doc["cloud"]["region"], "fra");
    assert_eq!(doc["log"]["level"], "info");
    assert_eq!(doc["@timestamp"], "2026-12-04T05:00:00.123456789Z");
    assert_eq!(doc["nats"]["subject"], "logs.api.fra.i1");

    // Round 2: one member stops; the survivor gets everything.
    one.signal(15);
    assert_eq!(
        one.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        one.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    let before = es.document_count();
    let round2: Vec<(String, String)> = (0..300)
        .map(|n| {
            (
                format!("logs.web.ord.i{n}"),
                fly_event("web", "ord", "warn", &format!("round2 {n}")),
            )
        })
        .collect();
    publish(&rt, &nats.url(), &round2);
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count()
            >= before + 300),
        "survivor shipped {} of 300",
        es.document_count() - before
    );
    let got = by_message(&es);
    for n in 0..300 {
        assert_eq!(got.get(&format!("round2 {n}")), Some(&1));
    }
    assert!(two.metric("logferry_nats_received_records_total") >= r2 + 300.0);
}

#[test]
fn an_invalid_subject_is_a_config_error_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = nats_config(
        dir.path(),
        "bad",
        admin(),
        "  mode: nats\n  exclude: [\"logs.>.x\"]\n  nats:\n    servers: [\"nats://127.0.0.1:4222\"]\n    subjects: [\"logs..web\", \"logs.*\"]\n    jetstream: {stream: \"a.b\", durable: agg}\n",
        "nats:\n  subject: \"logs.{pod}\"\n",
    );
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "source.nats.subjects[0]: invalid subject \"logs..web\"",
        "source.exclude[0]: invalid subject",
        "source.nats.jetstream.stream:",
        "nats.subject: unknown placeholder {pod}",
    ] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
}

#[test]
fn refused_credentials_exit_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(
        dir.path(),
        ServerAuth::UserPassword("personal".into(), "right-token".into()),
    );
    let a = admin();
    let config = nats_config(
        dir.path(),
        "creds",
        a,
        &format!(
            "  mode: nats\n  nats:\n    servers: [\"{}\"]\n    auth: {{user: personal, password_env: ACCESS_TOKEN}}\n",
            nats.url()
        ),
        "",
    );
    let mut d = Daemon::start(
        dir.path(),
        &config,
        a,
        &[],
        &[("ACCESS_TOKEN", "wrong-token")],
    );
    assert_eq!(
        d.wait_exit(Duration::from_secs(30)),
        Some(1),
        "{}",
        d.stderr()
    );
    let stderr = d.stderr();
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token"),
        "the secret is never logged"
    );

    // The right token (from the environment, as Fly passes secrets) connects.
    let mut ok = Daemon::start(
        dir.path(),
        &config,
        a,
        &[],
        &[("ACCESS_TOKEN", "right-token")],
    );
    wait_subscribed(&mut ok);
    ok.signal(15);
    assert_eq!(ok.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn an_unreachable_server_is_retried_with_a_metric_or_fatal_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let a = admin();
    let config = nats_config(
        dir.path(),
        "retry",
        a,
        &format!("  mode: nats\n  nats:\n    servers: [\"nats://127.0.0.1:{dead}\"]\n    reconnect: {{initial_backoff: 50ms, max_backoff: 200ms}}\n"),
        "",
    );
    let mut d = Daemon::start(dir.path(), &config, a, &[], &[]);
    d.wait_ready(Duration::from_secs(20));
    assert!(
        wait_for(Duration::from_secs(20), || {
            http(a, "GET", "/metrics").is_ok_and(|(_, body)| {
                metric_sum(&body, "logferry_nats_connect_errors_total") >= 3.0
            })
        }),
        "{}",
        d.stderr()
    );
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "still running, retrying"
    );
    assert_eq!(d.metric("logferry_nats_connected"), 0.0);
    d.signal(15);
    assert_eq!(d.wait_exit(Duration::from_secs(20)), Some(0));

    let b = admin();
    let config = nats_config(
        dir.path(),
        "fatal",
        b,
        &format!("  mode: nats\n  nats:\n    servers: [\"nats://127.0.0.1:{dead}\"]\n    retry_on_start: false\n"),
        "",
    );
    let mut d = Daemon::start(dir.path(), &config, b, &[], &[]);
    assert_eq!(
        d.wait_exit(Duration::from_secs(30)),
        Some(2),
        "{}",
        d.stderr()
    );
    assert!(
        d.stderr().contains(&format!(
            "cannot connect to NATS server nats://127.0.0.1:{dead}"
        )),
        "{}",
        d.stderr()
    );
}

#[test]
fn the_fly_example_validates_with_fly_environment_variables() {
    let root = repo_root();
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(root.join("examples/fly/logferry.yaml"))
        .env("ORG", "personal")
        .env("ACCESS_TOKEN", "FlyV1 fm2_secret")
        .env("SUBJECT", "logs.myapp.>")
        .env("QUEUE", "shippers")
        .env("ELASTICSEARCH_URL", "https://es.example.com:9200")
        .env("ELASTICSEARCH_USERNAME", "elastic")
        .env("ELASTICSEARCH_PASSWORD", "changeme")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only ORG and ACCESS_TOKEN are required, as for Fly's Log Shipper.
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(root.join("examples/fly/logferry.yaml"))
        .env_remove("SUBJECT")
        .env_remove("QUEUE")
        .env_remove("ELASTICSEARCH_URL")
        .env_remove("ELASTICSEARCH_USERNAME")
        .env_remove("ELASTICSEARCH_PASSWORD")
        .env("ORG", "personal")
        .env("ACCESS_TOKEN", "t")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(binary())
        .args(["validate", "--config"])
        .arg(root.join("examples/fly/logferry.yaml"))
        .env_remove("ORG")
        .env_remove("ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

fn elapsed(t0: Instant) -> String {
    format!("{:>6.1?}", t0.elapsed())
}

/// Node logferry (files) → JetStream → aggregator logferry → Elasticsearch,
/// while lines are written: the node is SIGKILLed and restarted, nats-server
/// is killed and restarted (its file store kept), Elasticsearch has an
/// outage, the aggregator is SIGKILLed and restarted. Every line is in the
/// index exactly once.
#[test]
fn jetstream_tier_ships_every_line_once_through_kills_a_server_restart_and_an_outage() {
    const LINES: usize = 3000;
    let t0 = Instant::now();
    let rt = runtime();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start(dir.path(), ServerAuth::None);
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    let node_admin = admin();
    let node_config = dir.path().join("node.yaml");
    std::fs::write(
        &node_config,
        format!(
            r#"node_name: node-a
data_dir: {data}
source: {{mode: files, paths: ["{logs}/*.log"]}}
nats:
  servers: ["{url}"]
  subject: "logs.{{host.name}}"
  stream: {{name: LOGS, subjects: ["logs.>"], duplicate_window: 2m}}
  ack_timeout: 2s
  retry: {{initial_backoff: 50ms, max_backoff: 500ms}}
  reconnect: {{initial_backoff: 50ms, max_backoff: 500ms}}
server: {{listen: "{node_admin}"}}
shutdown: {{drain_timeout: 5s}}
"#,
            data = dir.path().join("node-data").display(),
            logs = logs.display(),
            url = nats.url(),
        ),
    )
    .unwrap();
    let agg_admin = admin();
    let agg_config = nats_config(
        dir.path(),
        "aggregator",
        agg_admin,
        &format!(
            "  mode: nats\n  nats:\n    servers: [\"{}\"]\n    jetstream: {{stream: LOGS, durable: aggregators, ack_wait: 3s}}\n    payload: document\n    reconnect: {{initial_backoff: 50ms, max_backoff: 500ms}}\n",
            nats.url()
        ),
        &es_sink(&es),
    );
    let mut node = Daemon::start(dir.path(), &node_config, node_admin, &[], &[]);
    let mut agg = Daemon::start(dir.path(), &agg_config, agg_admin, &[], &[]);
    node.wait_ready(Duration::from_secs(20));
    agg.wait_ready(Duration::from_secs(20));

    let writer = {
        let path = logs.join("app.log");
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            for n in 0..LINES {
                writeln!(f, "line {n:05} of the node").unwrap();
                if n % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    let step = |what: &str| println!("{} {what}", elapsed(t0));
    std::thread::sleep(Duration::from_millis(700));
    step("SIGKILL node");
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    node = Daemon::start(dir.path(), &node_config, node_admin, &[], &[]);
    std::thread::sleep(Duration::from_millis(700));
    step("nats-server killed and restarted");
    nats.restart();
    std::thread::sleep(Duration::from_millis(500));
    step("Elasticsearch outage 3s");
    es.faults().outage(Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(1000));
    step("SIGKILL aggregator");
    agg.child.kill().unwrap();
    agg.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    agg = Daemon::start(dir.path(), &agg_config, agg_admin, &[], &[]);
    writer.join().unwrap();
    step("all lines written");

    let ok = wait_for(Duration::from_secs(120), || es.document_count() >= LINES);
    std::thread::sleep(Duration::from_secs(4));
    step("checking the index");
    let got = by_message(&es);
    let missing: Vec<usize> = (0..LINES)
        .filter(|n| !got.contains_key(&format!("line {n:05} of the node")))
        .collect();
    let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        ok && missing.is_empty(),
        "{} documents, missing {} (first {:?});\nnode: {}\naggregator: {}",
        es.document_count(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        node.stderr()
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
        agg.stderr()
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert!(twice.is_empty(), "indexed twice: {twice:?}");
    assert_eq!(got.len(), LINES);
    assert_eq!(es.document_count(), LINES);
    // The documents are the node's: file offset, host, the node's _id.
    let doc: Value = serde_json::from_slice(&es.all_documents()[0].source).unwrap();
    assert_eq!(doc["host"]["name"], "node-a", "{doc}");
    assert!(doc["log"]["offset"].is_u64(), "{doc}");
    println!(
        "published {} (dups {}), aggregator acked {}",
        node.metric("logferry_nats_published_records_total"),
        node.metric("logferry_nats_publish_duplicates_total"),
        agg.metric("logferry_nats_acked_records_total"),
    );
}
