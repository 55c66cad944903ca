//! The source and the publisher against the real `nats-server` (2.9, JetStream).

use async_nats::jetstream;
use bytes::Bytes;
use logferry_core::{Acker, RecordBatch, RecordFlags};
use logferry_nats::{
    Auth, Connection, DropReason, Error, JetStreamConsumer, NatsEvents, NatsSource, Outgoing,
    Publisher, Secret, SinkConfig, SourceConfig, StreamSetup,
};
use logferry_testkit::nats::{NatsServer, ServerAuth};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    malformed: AtomicU64,
    filtered: AtomicU64,
    acked: AtomicU64,
    gaps: AtomicU64,
    auth_errors: AtomicU64,
    published: AtomicU64,
    duplicates: AtomicU64,
}

impl NatsEvents for Counts {
    fn received(&self, records: u64, _bytes: u64) {
        self.received.fetch_add(records, Ordering::SeqCst);
    }
    fn malformed(&self, records: u64) {
        self.malformed.fetch_add(records, Ordering::SeqCst);
    }
    fn filtered(&self, records: u64) {
        self.filtered.fetch_add(records, Ordering::SeqCst);
    }
    fn acked(&self, records: u64) {
        self.acked.fetch_add(records, Ordering::SeqCst);
    }
    fn dropped(&self, reason: DropReason, count: u64) {
        if reason == DropReason::ReconnectGap {
            self.gaps.fetch_add(count, Ordering::SeqCst);
        }
    }
    fn connect_error(&self, reason: &'static str) {
        if reason == "auth" {
            self.auth_errors.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn published(&self, records: u64, duplicates: u64) {
        self.published.fetch_add(records, Ordering::SeqCst);
        self.duplicates.fetch_add(duplicates, Ordering::SeqCst);
    }
}

fn connection(server: &NatsServer) -> Connection {
    Connection {
        servers: vec![server.url()],
        reconnect: logferry_nats::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        ..Connection::default()
    }
}

fn fly_event(app: &str, region: &str, n: usize) -> String {
    format!(
        r#"{{"event":{{"provider":"app"}},"fly":{{"app":{{"instance":"i{n}","name":"{app}"}},"region":"{region}"}},"host":"h1","log":{{"level":"info"}},"message":"line {n}","timestamp":"2026-12-04T05:00:00.{n:09}Z"}}"#
    )
}

/// Receives batches until `n` records arrived (or the deadline).
async fn collect(
    rx: &mut mpsc::Receiver<RecordBatch>,
    n: usize,
    wait: Duration,
) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while got < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(b)) => {
                got += b.records.len();
                out.push(b);
            }
            _ => break,
        }
    }
    out
}

fn docs(batches: &[RecordBatch]) -> Vec<Value> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .map(|r| {
            assert!(r.flags.contains(RecordFlags::DOCUMENT));
            serde_json::from_slice(&r.message).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fly_subjects_filters_and_malformed_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path(), ServerAuth::None);
    let events = Arc::new(Counts::default());
    let source = NatsSource::new(
        SourceConfig {
            connection: connection(&server),
            subjects: vec!["logs.*.ord.*".into(), "logs.api.>".into()],
            exclude: vec!["logs.noisy.>".into()],
            ..SourceConfig::default()
        },
        events.clone(),
    )
    .unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let (_acker, acks) = Acker::channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(source.run(tx, acks, stop.clone()));

    let client = async_nats::connect(server.url()).await.unwrap();
    // Wait until the subscriptions exist: a probe message must arrive.
    let mut probe = 0;
    loop {
        client
            .publish("logs.probe.ord.0", Bytes::from("probe"))
            .await
            .unwrap();
        client.flush().await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            break;
        }
        probe += 1;
        assert!(probe < 50, "subscriptions never became active");
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {}

    let cases = [
        ("logs.web.ord.1", fly_event("web", "ord", 1), true),
        ("logs.web.fra.2", fly_event("web", "fra", 2), false),
        ("logs.noisy.ord.3", fly_event("noisy", "ord", 3), false),
        ("logs.api.fra.4", fly_event("api", "fra", 4), true),
        (
            "logs.api.ord.5",
            r#"{"message": "cut short"#.to_string(),
            true,
        ),
        ("logs.web.ord.6", "plain text".to_string(), true),
        ("metrics.web.ord.7", fly_event("web", "ord", 7), false),
    ];
    for (subject, payload, _) in &cases {
        client
            .publish(subject.to_string(), Bytes::from(payload.clone()))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let expected = cases.iter().filter(|c| c.2).count();
    let batches = collect(&mut rx, expected, Duration::from_secs(10)).await;
    let docs = docs(&batches);
    let subjects: Vec<&str> = docs
        .iter()
        .map(|d| d["nats"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        [
            "logs.web.ord.1",
            "logs.api.fra.4",
            "logs.api.ord.5",
            "logs.web.ord.6"
        ]
    );
    assert_eq!(docs[0]["service"]["name"], "web");
    assert_eq!(docs[0]["cloud"]["region"], "ord");
    assert_eq!(docs[0]["@timestamp"], "2026-12-04T05:00:00.000000001Z");
    assert_eq!(docs[1]["cloud"]["region"], "fra");
    assert_eq!(docs[2]["message"], r#"{"message": "cut short"#);
    assert_eq!(docs[3]["message"], "plain text");
    assert_eq!(events.malformed.load(Ordering::SeqCst), 1);
    // The noisy one matched a subscription and was excluded.
    assert_eq!(events.filtered.load(Ordering::SeqCst), 1);
    // Nothing more arrives.
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv())
        .await
        .is_err());
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_messages_are_acknowledged_only_after_the_sink_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path(), ServerAuth::None);
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    js.create_stream(jetstream::stream::Config {
        name: "LOGS".into(),
        subjects: vec!["logs.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for n in 0..20 {
        let mut h = async_nats::HeaderMap::new();
        if n % 2 == 0 {
            h.insert("Nats-Msg-Id", format!("m-{n}").as_str());
        }
        js.publish_with_headers(
            format!("logs.app.ord.{n}"),
            h,
            Bytes::from(fly_event("app", "ord", n)),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let config = SourceConfig {
        connection: connection(&server),
        subjects: vec![],
        jetstream: Some(JetStreamConsumer {
            ack_wait: Duration::from_secs(2),
            ..JetStreamConsumer::new("LOGS", "aggregator")
        }),
        batch_max_records: 5,
        ..SourceConfig::default()
    };

    // First run: receive everything, acknowledge only the first batch.
    let events = Arc::new(Counts::default());
    let (tx, mut rx) = mpsc::channel(64);
    let (acker, acks) = Acker::channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        NatsSource::new(config.clone(), events.clone())
            .unwrap()
            .run(tx, acks, stop.clone()),
    );
    let batches = collect(&mut rx, 20, Duration::from_secs(10)).await;
    let first_ids: Vec<(u64, u64)> = batches
        .iter()
        .flat_map(|b| b.records.iter().map(|r| (r.start, r.end)))
        .collect();
    assert_eq!(first_ids.len(), 20);
    let acked_now = batches[0].records.len();
    acker.ack(batches[0].ack);
    stop.cancel();
    drop(acker);
    drop(rx);
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.acked as usize, acked_now);

    // Second run (after ack_wait): exactly the unacknowledged ones come back,
    // with the same identities.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (tx, mut rx) = mpsc::channel(64);
    let (acker, acks) = Acker::channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        NatsSource::new(config.clone(), events.clone())
            .unwrap()
            .run(tx, acks, stop.clone()),
    );
    // Redeliveries come in any order, and again after ack_wait while
    // unacknowledged: compare the distinct identities.
    let want: std::collections::BTreeSet<(u64, u64)> =
        first_ids[acked_now..].iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut again = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.len() < want.len() {
        let b = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap()
            .unwrap();
        seen.extend(b.records.iter().map(|r| (r.start, r.end)));
        again.push(b);
    }
    assert_eq!(seen, want);
    for b in &again {
        acker.ack(b.ack);
    }
    stop.cancel();
    drop(acker);
    drop(rx);
    task.await.unwrap().unwrap();
    let info = js
        .get_stream("LOGS")
        .await
        .unwrap()
        .consumer_info("aggregator")
        .await
        .unwrap()
        .clone();
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(info.num_pending, 0, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_waits_for_pub_acks_and_jetstream_drops_replays() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(dir.path(), ServerAuth::None);
    let events = Arc::new(Counts::default());
    let stop = CancellationToken::new();
    let publisher = Publisher::connect(
        SinkConfig {
            connection: connection(&server),
            stream: Some(StreamSetup {
                name: "LOGS".into(),
                subjects: vec!["logs.>".into()],
                duplicate_window: Duration::from_secs(120),
            }),
            ..SinkConfig::default()
        },
        events.clone(),
        &stop,
    )
    .await
    .unwrap();
    let msgs: Vec<Outgoing> = (0..100)
        .map(|n| Outgoing {
            subject: format!("logs.ns.pod-{}", n % 3),
            id: format!("id-{n}"),
            payload: Bytes::from(format!(r#"{{"message":"m{n}"}}"#)),
        })
        .collect();
    publisher.publish_all(&msgs, &stop).await.unwrap();
    publisher.publish_all(&msgs[..10], &stop).await.unwrap();
    assert_eq!(events.published.load(Ordering::SeqCst), 110);
    assert_eq!(events.duplicates.load(Ordering::SeqCst), 10);
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut stream = jetstream::new(client).get_stream("LOGS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_unreachable_servers() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(
        dir.path(),
        ServerAuth::UserPassword("myorg".into(), "right".into()),
    );
    let pw = dir.path().join("password");
    std::fs::write(&pw, "wrong\n").unwrap();
    let events = Arc::new(Counts::default());
    let config = SourceConfig {
        connection: Connection {
            auth: Some(Auth::UserPassword {
                user: "myorg".into(),
                password: Secret::File(pw.clone()),
            }),
            ..connection(&server)
        },
        ..SourceConfig::default()
    };
    let (tx, _rx) = mpsc::channel(1);
    let (_a, acks) = Acker::channel();
    let err = NatsSource::new(config.clone(), events.clone())
        .unwrap()
        .run(tx.clone(), acks, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.is_config());
    assert!(err.to_string().contains("refused the credentials"), "{err}");
    assert_eq!(events.auth_errors.load(Ordering::SeqCst), 1);

    // The right password from the file works.
    std::fs::write(&pw, "right\n").unwrap();
    let stop = CancellationToken::new();
    let (_a, acks) = Acker::channel();
    let task = tokio::spawn(
        NatsSource::new(config.clone(), events.clone())
            .unwrap()
            .run(tx.clone(), acks, stop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!task.is_finished());
    stop.cancel();
    task.await.unwrap().unwrap();

    // Unreachable, without retry: the error names the server.
    let port = server.port();
    drop(server);
    let unreachable = SourceConfig {
        connection: Connection {
            servers: vec![format!("nats://127.0.0.1:{port}")],
            retry_on_start: false,
            connect_timeout: Duration::from_secs(1),
            ..Connection::default()
        },
        ..SourceConfig::default()
    };
    let (_a, acks) = Acker::channel();
    let err = NatsSource::new(unreachable.clone(), events.clone())
        .unwrap()
        .run(tx.clone(), acks, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");

    // With retry (the default) it keeps trying until stopped.
    let retrying = SourceConfig {
        connection: Connection {
            retry_on_start: true,
            ..unreachable.connection
        },
        ..unreachable
    };
    let stop = CancellationToken::new();
    let (_a, acks) = Acker::channel();
    let task = tokio::spawn(NatsSource::new(retrying, events.clone()).unwrap().run(
        tx,
        acks,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!task.is_finished());
    stop.cancel();
    assert!(matches!(task.await.unwrap(), Err(Error::Cancelled)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_gap_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(dir.path(), ServerAuth::None);
    let events = Arc::new(Counts::default());
    let (tx, _rx) = mpsc::channel(16);
    let (_a, acks) = Acker::channel();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        NatsSource::new(
            SourceConfig {
                connection: connection(&server),
                ..SourceConfig::default()
            },
            events.clone(),
        )
        .unwrap()
        .run(tx, acks, stop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while events.gaps.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no reconnect gap counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
}
