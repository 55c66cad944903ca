//! Delivery under faults: the official `elasticsearch` client (inside the
//! forwarder) against the Elasticsearch double over real loopback HTTP.

mod common;

use common::{batches, config, ship, source, CountingEvents};
use logferry_elasticsearch::{dead_letter::DEAD_LETTER_FILE, DocumentEncoder, DocumentOptions};
use logferry_testkit::elasticsearch::{EsDouble, EsDoubleConfig, FaultConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
struct EcsDoc {
    message: String,
    log: EcsLog,
}

#[derive(Deserialize)]
struct EcsLog {
    offset: u64,
}

/// The `_id` → (message, start offset) every record should produce.
fn expected(batches: &[logferry_core::RecordBatch]) -> HashMap<String, (String, u64)> {
    let mut map = HashMap::new();
    for b in batches {
        for r in &b.records {
            let id =
                String::from_utf8(DocumentEncoder::document_id(&b.source, r).to_vec()).unwrap();
            let msg = String::from_utf8(r.message.to_vec()).unwrap();
            assert!(
                map.insert(id, (msg, r.start)).is_none(),
                "document ids must be unique"
            );
        }
    }
    map
}

/// Issue 4, case 1: 200,000 records; a 5 s outage in the middle (a real
/// outage: the double closes its socket, so paused time cannot stand in for
/// it); 20 % of items answered 429 or 503; 5 % of requests answered 429/503
/// as a whole; 2 % of connections dropped without an answer (half of them
/// after the bulk was applied, so retries meet 409s); 1 % of documents refused
/// with `mapper_parsing_exception`. At the end the double holds every record
/// exactly once, by `_id` and content, the refused ones in the dead-letter
/// index with their reasons, and every batch was acknowledged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_records_survive_outage_rejections_drops_and_mapping_errors() {
    const TOTAL: usize = 200_000;
    let double = Arc::new(
        EsDouble::start_with(EsDoubleConfig {
            seed: 4,
            faults: FaultConfig {
                item_error_rate: 0.20,
                item_error_statuses: vec![429, 503],
                request_error_rate: 0.05,
                drop_connection_rate: 0.02,
                mapping_error_substring: Some("\"message\":\"POISON".into()),
                ..FaultConfig::default()
            },
            ..EsDoubleConfig::default()
        })
        .await
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<_> = (0..16)
        .map(|n| source(n, "shop", &format!("web-{n}"), "app"))
        .collect();
    let input = batches(&sources, None, TOTAL, 125, |i| {
        if i % 100 == 37 {
            format!("POISON record {i}: the mapping refuses this one")
        } else {
            format!(
                "2026-11-22 10:00:00,{:03} INFO request {i} handled in {} ms path=/api/v1/items/{}",
                i % 1000,
                i % 97,
                i * 7
            )
        }
    });
    let expect = expected(&input);
    let poison = expect
        .values()
        .filter(|(m, _)| m.starts_with("POISON"))
        .count();
    assert_eq!(poison, TOTAL / 100);

    // The outage starts when about half the records are in.
    let started = std::time::Instant::now();
    let outage = {
        let double = double.clone();
        tokio::spawn(async move {
            while double.stats().created < (TOTAL / 2) as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            double.faults().outage(Duration::from_secs(5));
            std::time::Instant::now()
        })
    };

    let mut cfg = config(&double.url(), dir.path());
    cfg.batch.max_events = 1000;
    cfg.retry.max_backoff = Duration::from_millis(400);
    let events = Arc::new(CountingEvents::default());
    let run = ship(
        cfg,
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    let outage_at = outage.await.unwrap();
    eprintln!(
        "200k run: {:?} total, outage at {:?}; summary {:?}; double {:?}",
        started.elapsed(),
        outage_at - started,
        run.summary,
        double.stats()
    );

    run.assert_each_acked_once(&input);
    let stats = double.stats();
    assert!(
        stats.injected_item_errors > 10_000,
        "item faults were injected: {stats:?}"
    );
    assert!(
        stats.injected_request_errors > 0 && stats.dropped_connections > 0,
        "{stats:?}"
    );
    assert!(
        stats.conflicts > 0,
        "some applied-then-dropped requests were retried: {stats:?}"
    );

    // Every record exactly once, with its content.
    let docs = double.documents("logs-test");
    let dead = double.documents("logferry-dead-letter");
    assert_eq!(docs.len() + dead.len(), TOTAL);
    assert_eq!(dead.len(), poison);
    let mut seen = HashMap::new();
    for d in &docs {
        let (msg, offset) = expect
            .get(&d.id)
            .unwrap_or_else(|| panic!("unexpected _id {}", d.id));
        let parsed: EcsDoc = serde_json::from_slice(&d.source).unwrap();
        assert_eq!(&parsed.message, msg);
        assert_eq!(parsed.log.offset, *offset);
        assert!(!msg.starts_with("POISON"));
        assert!(seen.insert(d.id.clone(), ()).is_none());
    }
    for d in &dead {
        let v: serde_json::Value = serde_json::from_slice(&d.source).unwrap();
        assert_eq!(v["error"]["type"], "mapper_parsing_exception");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed to parse field"));
        assert_eq!(v["error"]["code"], "400");
        assert_eq!(v["elasticsearch"]["index"], "logs-test");
        assert_eq!(v["elasticsearch"]["id"], d.id.as_str());
        let original: EcsDoc =
            serde_json::from_str(v["event"]["original"].as_str().unwrap()).unwrap();
        let (msg, _) = &expect[&d.id];
        assert_eq!(&original.message, msg);
        assert!(
            seen.insert(d.id.clone(), ()).is_none(),
            "{} is both indexed and dead-lettered",
            d.id
        );
    }
    assert_eq!(seen.len(), TOTAL);
    assert!(!dir.path().join(DEAD_LETTER_FILE).exists());

    // The counts add up.
    let s = run.summary;
    assert_eq!(s.records_delivered + s.dead_lettered, TOTAL as u64);
    assert_eq!(s.dead_lettered, poison as u64);
    assert_eq!(s.dead_lettered_to_file, 0);
    assert_eq!(s.batches_acknowledged, input.len() as u64);
    assert!(s.retried > 0 && s.duplicates > 0);
    assert_eq!(events.sent.load(Ordering::Relaxed), s.records_delivered);
    assert_eq!(events.dead_lettered.load(Ordering::Relaxed), poison as u64);
    assert_eq!(events.item_errors.get("mapper_parsing"), poison as u64);
    assert!(events.item_errors.get("rejected") > 0 && events.item_errors.get("server_error") > 0);
    assert!(
        events.outcomes.get("connection_error") > 0,
        "the outage and the drops were seen"
    );
    assert!(events.max_in_flight.load(Ordering::Relaxed) <= 4);
}

/// Issue 4, case 2: replaying records that are already indexed (as after a
/// crash before the checkpoint was written) adds nothing: every item answers
/// 409, counts as delivered, and every batch is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_adds_nothing_and_acknowledges_everything() {
    const TOTAL: usize = 6_000;
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<_> = (0..3)
        .map(|n| source(n, "default", &format!("api-{n}"), "api"))
        .collect();
    let input = batches(&sources, None, TOTAL, 200, |i| format!("line {i}"));
    let first = ship(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        input.clone(),
    )
    .await;
    first.assert_each_acked_once(&input);
    assert_eq!(first.summary.records_delivered, TOTAL as u64);
    assert_eq!(first.summary.duplicates, 0);
    let before = double.documents("logs-test");
    assert_eq!(before.len(), TOTAL);
    let stats_before = double.stats();

    let events = Arc::new(CountingEvents::default());
    let replay = ship(
        config(&double.url(), dir.path()),
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    replay.assert_each_acked_once(&input);
    let stats = double.stats();
    assert_eq!(
        stats.created, stats_before.created,
        "nothing new was created"
    );
    assert_eq!(
        stats.conflicts - stats_before.conflicts,
        TOTAL as u64,
        "every replayed item answered 409"
    );
    assert_eq!(replay.summary.duplicates, TOTAL as u64);
    assert_eq!(replay.summary.records_delivered, TOTAL as u64);
    assert_eq!(events.duplicates.load(Ordering::Relaxed), TOTAL as u64);
    assert_eq!(replay.summary.retried, 0, "409 is not retried");
    assert_eq!(
        double.documents("logs-test"),
        before,
        "documents unchanged (same versions and sequence numbers)"
    );
}

/// Issue 4, case 3: with a small maximum body size the double answers 413;
/// the forwarder splits the request in halves until it fits, and everything
/// arrives. A single document larger than the limit cannot be split: it goes
/// to the dead-letter file, and its batch is still acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_requests_are_split_until_they_fit() {
    const TOTAL: usize = 3_000;
    let double = EsDouble::start_with(EsDoubleConfig {
        faults: FaultConfig {
            max_body_bytes: Some(24 * 1024),
            ..FaultConfig::default()
        },
        ..EsDoubleConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources = vec![source(1, "batch", "job-1", "main")];
    let giant = 2_345;
    let input = batches(&sources, None, TOTAL, 500, |i| {
        if i == giant {
            "G".repeat(40 * 1024)
        } else {
            format!("record {i} {}", "x".repeat(i % 200))
        }
    });
    let mut cfg = config(&double.url(), dir.path());
    cfg.batch.max_events = 1000;
    let events = Arc::new(CountingEvents::default());
    let run = ship(
        cfg,
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);
    let stats = double.stats();
    assert!(stats.too_large > 0, "{stats:?}");
    assert!(events.outcomes.get("too_large") > 0);
    let docs = double.documents("logs-test");
    assert_eq!(docs.len(), TOTAL - 1);
    let expect = expected(&input);
    for d in &docs {
        let parsed: EcsDoc = serde_json::from_slice(&d.source).unwrap();
        assert_eq!(parsed.message, expect[&d.id].0);
    }
    assert_eq!(run.summary.records_delivered, (TOTAL - 1) as u64);
    assert_eq!(run.summary.dead_lettered_to_file, 1);
    let file = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let line: serde_json::Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(line["error"]["code"], "413");
    let original: EcsDoc = serde_json::from_str(line["document"].as_str().unwrap()).unwrap();
    assert_eq!(original.message.len(), 40 * 1024);
    // Every accepted body fits the limit.
    for r in double
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("_bulk"))
    {
        assert!(r.body_bytes > 0);
    }
}

/// Regression (issue 10, item 7): the `_id` hashed only (dev, ino,
/// fingerprint, offset), so two nodes (or two sidecars) holding a file with
/// the same device, inode and first line made each other's records look like
/// `409` replays: the second node's lines were counted as delivered and never
/// stored. The collector's identity is now part of the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_file_identities_on_two_nodes_are_both_stored() {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The same (dev, ino, fingerprint) and offsets on both nodes.
    let sources = [source(7, "default", "api-7", "api")];
    let input = batches(&sources, None, 100, 50, |i| format!("line {i}"));
    let mut stored = 0;
    for node in ["node-a", "node-b"] {
        let options = DocumentOptions {
            host_name: Some(node.into()),
            id_scope: node.into(),
            json_message: None,
            ..DocumentOptions::default()
        };
        let run = ship(
            config(&double.url(), dir.path()),
            options,
            Arc::new(CountingEvents::default()),
            input.clone(),
        )
        .await;
        run.assert_each_acked_once(&input);
        assert_eq!(
            run.summary.duplicates, 0,
            "{node}: nothing taken for a replay"
        );
        stored += 100;
        assert_eq!(double.documents("logs-test").len(), stored, "{node}");
    }
    assert_eq!(double.stats().conflicts, 0);

    // Stable across restarts: node-a reading the same records again adds nothing.
    let replay = ship(
        config(&double.url(), dir.path()),
        DocumentOptions {
            id_scope: "node-a".into(),
            json_message: None,
            ..DocumentOptions::default()
        },
        Arc::new(CountingEvents::default()),
        input.clone(),
    )
    .await;
    assert_eq!(replay.summary.duplicates, 100);
    assert_eq!(double.documents("logs-test").len(), 200);
}
