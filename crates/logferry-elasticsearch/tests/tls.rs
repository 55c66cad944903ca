//! TLS and mutual TLS end to end: the real `Forwarder` (official
//! `elasticsearch` client, reqwest + rustls) against the Elasticsearch double
//! serving HTTPS with a test PKI generated at run time.
//!
//! Delivery cases assert that every batch is acknowledged exactly once and
//! every document stored. Refusal cases (wrong CA, missing client
//! certificate) assert, within a bounded wait, that the double saw failed
//! handshakes and no HTTP request at all, that nothing was stored or
//! acknowledged, and that the forwarder reported the cluster as unreachable
//! with the TLS cause in the message (a `tracing` error from its start-up
//! check, which retries forever, the same as for a cluster that is down; no
//! bulk request is attempted, so the events trait sees none).

mod common;

use common::{batches, config, ship, source, CountingEvents};
use logferry_core::{Acker, RecordBatch};
use logferry_elasticsearch::{CancellationToken, DocumentOptions, Forwarder, TlsConfig};
use logferry_testkit::elasticsearch::{EsDouble, EsDoubleConfig, EsDoubleTls};
use logferry_testkit::tls::{PkiFiles, TestPki};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RECORDS: usize = 300;
const PER_BATCH: usize = 50;

/// A fresh PKI written to a temporary directory.
struct Pki {
    pki: TestPki,
    files: PkiFiles,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    let pki = TestPki::generate().expect("generate the test PKI");
    let dir = tempfile::tempdir().unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    Pki {
        pki,
        files,
        _dir: dir,
    }
}

async fn https_double(tls: EsDoubleTls) -> EsDouble {
    let double = EsDouble::start_with(EsDoubleConfig {
        tls: Some(tls),
        ..EsDoubleConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        double.url(),
        format!("https://localhost:{}", double.addr().port())
    );
    double
}

fn input() -> Vec<RecordBatch> {
    batches(
        &[source(1, "ns", "pod-a", "c"), source(2, "ns", "pod-b", "c")],
        None,
        RECORDS,
        PER_BATCH,
        |i| format!("tls message {i}"),
    )
}

/// Ships [`input`] over TLS with `tls` and asserts that every record arrived
/// once and every batch was acknowledged once.
async fn assert_delivered(double: &EsDouble, tls: TlsConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.tls = Some(tls);
    cfg.install_template = true;
    let input = input();
    let events = Arc::new(CountingEvents::default());
    let run = tokio::time::timeout(
        Duration::from_secs(20),
        ship(
            cfg,
            DocumentOptions::default(),
            events.clone(),
            input.clone(),
        ),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "not delivered within 20 s; TLS errors seen by the double: {:?}",
            double.tls_errors()
        )
    });
    run.assert_each_acked_once(&input);
    assert_eq!(run.summary.records_delivered, RECORDS as u64);
    assert!(!run.summary.stopped_early);
    assert_eq!(events.sent.load(Ordering::Relaxed), RECORDS as u64);
    assert_eq!(events.retries.load(Ordering::Relaxed), 0);
    assert!(events.outcomes.get("success") >= 1);

    let docs = double.documents("logs-test");
    assert_eq!(docs.len(), RECORDS);
    let messages: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d.source).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = (0..RECORDS).map(|i| format!("tls message {i}")).collect();
    assert_eq!(messages, expected);
    assert!(
        double.templates().contains_key("logferry-logs-test"),
        "template installed over TLS"
    );
    let stats = double.stats();
    assert_eq!(stats.tls_handshake_failures, 0, "{:?}", double.tls_errors());
    assert!(stats.bulk_requests >= 1);
}

/// `tracing` output of the current thread, as text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs the forwarder with `tls` until the double has refused at least three
/// handshakes (it keeps retrying), then stops it, and asserts that nothing
/// got through. Returns the TLS errors the double saw.
async fn assert_refused(double: &EsDouble, tls: TlsConfig, cause: &str) -> Vec<String> {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // Current-thread runtime: the forwarder runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.tls = Some(tls);
    cfg.install_template = true;
    let events = Arc::new(CountingEvents::default());
    let forwarder = Forwarder::new(cfg, DocumentOptions::default(), events.clone())
        .expect("the configuration itself is valid");
    let input = input();
    let (tx, rx) = tokio::sync::mpsc::channel(input.len());
    for b in input {
        tx.try_send(b).unwrap();
    }
    let (acker, mut acks) = Acker::channel();
    let hard_stop = CancellationToken::new();
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while double.stats().tls_handshake_failures < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hard_stop.cancel();
    };
    let (summary, ()) = tokio::join!(forwarder.run(rx, acker, hard_stop.clone()), watch);
    let summary = summary.expect("run returns after the hard stop");
    drop(tx);

    let stats = double.stats();
    let errors = double.tls_errors();
    assert!(
        stats.tls_handshake_failures >= 3,
        "the forwarder keeps retrying: {stats:?} {errors:?}"
    );
    assert_eq!(stats.requests, 0, "no HTTP request got through: {stats:?}");
    assert_eq!(double.document_count(), 0);
    assert!(double.templates().is_empty());
    assert!(summary.stopped_early);
    assert_eq!(summary.batches_acknowledged, 0);
    assert_eq!(summary.records_delivered, 0);
    assert!(acks.try_recv().is_err(), "no batch acknowledged");
    assert_eq!(events.sent.load(Ordering::Relaxed), 0);

    let text = logs.text();
    let reported = text
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("Elasticsearch is unreachable; retrying"))
        .count();
    assert!(
        reported >= 2,
        "each failed attempt is reported as an unreachable cluster:\n{text}"
    );
    assert!(
        text.contains(&double.url()),
        "the endpoint is named:\n{text}"
    );
    assert!(
        text.contains(cause),
        "the log names the TLS cause ({cause:?}), not only the failed request:\n{text}"
    );
    errors
}

#[tokio::test]
async fn delivered_over_tls_with_the_test_ca() {
    let p = pki();
    let double = https_double(p.pki.server_tls()).await;
    assert_delivered(
        &double,
        TlsConfig {
            ca_file: Some(p.files.ca.clone()),
            ..TlsConfig::default()
        },
    )
    .await;
    // The double's TLS path is exercised, not a plain-HTTP fallback.
    let plain = format!("http://127.0.0.1:{}", double.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let client = logferry_elasticsearch::build_client(&config(&plain, dir.path())).unwrap();
    assert!(client.ping().send().await.is_err());
}

#[tokio::test]
async fn refused_when_the_server_is_signed_by_another_ca() {
    let p = pki();
    let double = https_double(p.pki.server_tls()).await;
    let errors = assert_refused(
        &double,
        TlsConfig {
            ca_file: Some(p.files.other_ca.clone()),
            ..TlsConfig::default()
        },
        "invalid peer certificate: UnknownIssuer",
    )
    .await;
    // rustls on the client sends `unknown_ca` for a certificate it cannot chain.
    assert!(
        errors
            .iter()
            .all(|e| e.contains("UnknownCA") || e.contains("BadCertificate")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn delivered_with_insecure_skip_verify_and_no_ca() {
    // Signed by a CA the client knows nothing about: only skipping
    // verification can make this work.
    let p = pki();
    let double = https_double(p.pki.server_tls()).await;
    assert_delivered(
        &double,
        TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        },
    )
    .await;
}

#[tokio::test]
async fn mutual_tls_requires_the_client_certificate() {
    let p = pki();
    let double = https_double(p.pki.mutual_tls()).await;
    let errors = assert_refused(
        &double,
        TlsConfig {
            ca_file: Some(p.files.ca.clone()),
            ..TlsConfig::default()
        },
        "received fatal alert: CertificateRequired",
    )
    .await;
    assert!(
        errors.iter().all(|e| e.contains("no certificates")),
        "{errors:?}"
    );

    double.reset();
    assert_delivered(
        &double,
        TlsConfig {
            ca_file: Some(p.files.ca.clone()),
            cert_file: Some(p.files.client_cert.clone()),
            key_file: Some(p.files.client_key.clone()),
            insecure_skip_verify: false,
        },
    )
    .await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_certificate_from_another_ca() {
    let p = pki();
    let other = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_files = other.write_to(dir.path()).unwrap();
    let double = https_double(p.pki.mutual_tls()).await;
    let errors = assert_refused(
        &double,
        TlsConfig {
            ca_file: Some(p.files.ca.clone()),
            cert_file: Some(other_files.client_cert.clone()),
            key_file: Some(other_files.client_key.clone()),
            insecure_skip_verify: false,
        },
        "received fatal alert",
    )
    .await;
    // The double's CA refuses it (same subject name as the other PKI's CA,
    // different key: rustls reports the signature).
    assert!(
        errors
            .iter()
            .all(|e| e.contains("invalid peer certificate")),
        "{errors:?}"
    );
}

/// Faults and an outage (socket closed, then listening again on the same
/// port) behave over mutual TLS as over plain HTTP: every record stored once,
/// every batch acknowledged once; reconnections after dropped connections and
/// after the outage make new handshakes, none of which fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_survives_faults_and_an_outage() {
    const TOTAL: usize = 20_000;
    let p = pki();
    let double = Arc::new(
        EsDouble::start_with(EsDoubleConfig {
            seed: 7,
            faults: logferry_testkit::elasticsearch::FaultConfig {
                item_error_rate: 0.10,
                item_error_statuses: vec![429, 503],
                request_error_rate: 0.05,
                drop_connection_rate: 0.05,
                ..Default::default()
            },
            tls: Some(p.pki.mutual_tls()),
            ..EsDoubleConfig::default()
        })
        .await
        .unwrap(),
    );
    let outage = {
        let double = double.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while double.stats().created < (TOTAL / 2) as u64 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            double.faults().outage(Duration::from_millis(500));
            double.stats().created
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.batch.max_events = 500;
    cfg.tls = Some(TlsConfig {
        ca_file: Some(p.files.ca.clone()),
        cert_file: Some(p.files.client_cert.clone()),
        key_file: Some(p.files.client_key.clone()),
        insecure_skip_verify: false,
    });
    let sources: Vec<_> = (0..4)
        .map(|n| source(n, "shop", &format!("web-{n}"), "app"))
        .collect();
    let input = batches(&sources, None, TOTAL, 100, |i| format!("faulty tls {i}"));
    let events = Arc::new(CountingEvents::default());
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        ship(cfg, DocumentOptions::default(), events, input.clone()),
    )
    .await
    .expect("delivered within 60 s");
    let created_at_outage = outage.await.unwrap();
    assert!(
        created_at_outage < TOTAL as u64,
        "the outage began before the end"
    );

    run.assert_each_acked_once(&input);
    let docs = double.documents("logs-test");
    assert_eq!(docs.len(), TOTAL);
    let messages: BTreeSet<String> = docs
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d.source).unwrap();
            v["message"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(messages.len(), TOTAL);
    let stats = double.stats();
    assert!(stats.injected_item_errors > 0, "{stats:?}");
    assert!(stats.injected_request_errors > 0, "{stats:?}");
    assert!(stats.dropped_connections > 0, "{stats:?}");
    assert_eq!(stats.tls_handshake_failures, 0, "{:?}", double.tls_errors());
}
