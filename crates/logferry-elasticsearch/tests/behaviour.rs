//! Forwarder behaviour beyond the five cases: start-up while
//! Elasticsearch is down, the hard stop, endpoint failover, the batch timer,
//! empty batches, dead-letter refusal to file.

mod common;

use common::{batches, config, record, ship, source, CountingEvents};
use logferry_core::{AckToken, Acker, RecordBatch};
use logferry_elasticsearch::dead_letter::DEAD_LETTER_FILE;
use logferry_elasticsearch::{CancellationToken, DocumentOptions, Forwarder};
use logferry_testkit::elasticsearch::{EsDouble, EsDoubleConfig, FaultConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_elasticsearch_is_down_and_delivers_when_it_is_back() {
    let double = EsDouble::start().await.unwrap();
    double.faults().outage(Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = batches(&[source(1, "a", "b", "c")], None, 300, 50, |i| {
        format!("m{i}")
    });
    let started = Instant::now();
    let run = ship(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        input.clone(),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "nothing could be delivered during the outage"
    );
    run.assert_each_acked_once(&input);
    assert_eq!(double.documents("logs-test").len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_stop_returns_at_once_and_leaves_undelivered_batches_unacknowledged() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let forwarder = Forwarder::new(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (acker, mut acks) = Acker::channel();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(forwarder.run(rx, acker, stop.clone()));
    // One batch delivered and acknowledged while Elasticsearch is up.
    let first = batches(&[source(1, "a", "b", "c")], None, 10, 10, |i| {
        format!("m{i}")
    });
    tx.send(first[0].clone()).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), acks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack, first[0].ack);
    // Then Elasticsearch goes away and more batches come.
    double.faults().outage(Duration::from_secs(60));
    let more = batches(&[source(2, "a", "b", "c")], None, 40, 10, |i| {
        format!("n{i}")
    });
    for b in &more {
        tx.send(b.clone()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    stop.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(2), handle)
        .await
        .expect("returns at once")
        .unwrap()
        .unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(1));
    assert!(summary.stopped_early);
    assert_eq!(summary.batches_acknowledged, 1);
    assert!(
        acks.try_recv().is_err(),
        "nothing undelivered was acknowledged"
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_skipped() {
    let double = EsDouble::start().await.unwrap();
    // A port with nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    // Start-up (`GET /`) takes the first endpoint; bulk requests then go round-robin.
    cfg.endpoints = vec![double.url(), format!("http://{dead}")];
    cfg.batch.max_events = 50;
    // The cool-down is min(5 s, max_backoff): longer than this run.
    cfg.retry.max_backoff = Duration::from_secs(5);
    let events = Arc::new(CountingEvents::default());
    let input = batches(&[source(1, "a", "b", "c")], None, 2_000, 100, |i| {
        format!("m{i}")
    });
    let run = ship(
        cfg,
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);
    assert_eq!(double.documents("logs-test").len(), 2_000);
    let failures = events.outcomes.get("connection_error");
    assert!(failures >= 1, "the dead endpoint was tried");
    assert!(
        failures <= 4,
        "and then cooled down instead of being tried for every request ({failures} failures)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_timer_sends_a_lone_record_and_empty_batches_are_acknowledged_at_once() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.batch.timeout = Duration::from_millis(200);
    let forwarder = Forwarder::new(
        cfg,
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (acker, mut acks) = Acker::channel();
    let handle = tokio::spawn(forwarder.run(rx, acker, CancellationToken::new()));
    let src = source(5, "a", "b", "c");
    let empty = RecordBatch {
        source: src.clone(),
        ack: AckToken {
            source: src.id,
            seq: 0,
        },
        records: vec![],
        meta: None,
    };
    tx.send(empty).await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), acks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.seq, 0);
    let lone = RecordBatch {
        source: src.clone(),
        ack: AckToken {
            source: src.id,
            seq: 1,
        },
        records: vec![record(0, 1, "alone")],
        meta: None,
    };
    let sent = Instant::now();
    tx.send(lone).await.unwrap();
    let a = tokio::time::timeout(Duration::from_secs(5), acks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.seq, 1);
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "sent by the timer, not at once ({waited:?})"
    );
    assert_eq!(double.documents("logs-test").len(), 1);
    drop(tx);
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.batches_acknowledged, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_the_dead_letter_index_refuses_go_to_the_dead_letter_file() {
    // The substring also matches the dead-letter document (no quotes in it).
    let double = EsDouble::start_with(EsDoubleConfig {
        faults: FaultConfig {
            mapping_error_substring: Some("POISON".into()),
            ..FaultConfig::default()
        },
        ..EsDoubleConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = batches(&[source(1, "a", "b", "c")], None, 100, 25, |i| {
        if i % 10 == 0 {
            format!("POISON {i}")
        } else {
            format!("ok {i}")
        }
    });
    let events = Arc::new(CountingEvents::default());
    let run = ship(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);
    assert_eq!(double.documents("logs-test").len(), 90);
    assert!(double.documents("logferry-dead-letter").is_empty());
    assert_eq!(run.summary.dead_lettered_to_file, 10);
    let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    assert_eq!(text.lines().count(), 10);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["error"]["type"], "mapper_parsing_exception");
        // The refused dead-letter document carries the original and its first error.
        let dlq: serde_json::Value = serde_json::from_str(v["document"].as_str().unwrap()).unwrap();
        let original: serde_json::Value =
            serde_json::from_str(dlq["event"]["original"].as_str().unwrap()).unwrap();
        assert!(original["message"].as_str().unwrap().starts_with("POISON"));
    }
}
