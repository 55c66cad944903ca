//! Issue 11, least privilege: a writer-only credential ships; a credential
//! that may not write keeps everything waiting (retried, never
//! dead-lettered) and says so; a rotated password file is picked up after a
//! 401; a tenant with thousands of label keys cannot exceed the index's
//! field limit. All against the double's privilege model
//! (`logferry_testkit::elasticsearch::Security`).

mod common;

use common::{batches, config, ship, source, CountingEvents};
use logferry_core::{Acker, ContainerMeta, MetadataOrigin, PodMeta};
use logferry_elasticsearch::{Auth, CancellationToken, DocumentOptions, Forwarder, IndexTarget};
use logferry_testkit::elasticsearch::{EsDouble, Principal};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn api_key_file(dir: &std::path::Path, id: &str, key: &str) -> Auth {
    let p = dir.join("api-key");
    std::fs::write(&p, format!("{id}:{key}\n")).unwrap();
    Auth::ApiKey { api_key_file: p }
}

#[tokio::test]
async fn a_writer_only_key_delivers_everything_once_and_skips_the_templates() {
    let double = EsDouble::start().await.unwrap();
    double
        .security()
        .add_api_key("w1", "secret", Principal::writer("writer", "logs-*"));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.auth = Some(api_key_file(dir.path(), "w1", "secret"));
    cfg.install_template = true;
    cfg.target = IndexTarget::default();
    let input = batches(&[source(1, "ns", "pod", "c")], None, 300, 50, |i| {
        format!("line {i}")
    });
    let events = Arc::new(CountingEvents::default());
    let forwarder =
        Forwarder::new(cfg.clone(), DocumentOptions::default(), events.clone()).unwrap();
    let health = forwarder.health();
    drop(forwarder);
    let run = ship(
        cfg,
        DocumentOptions::default(),
        events.clone(),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);
    let docs = double.documents("logs-kubernetes.container_logs-default");
    assert_eq!(docs.len(), 300);
    assert!(
        double.templates().is_empty(),
        "no template may be installed"
    );
    assert_eq!(run.summary.dead_lettered, 0);
    assert!(!health.credential_refused());
    // GET / and the template PUT were each tried once, not retried.
    let requests = double.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/")
            .count(),
        1
    );
    assert_eq!(requests.iter().filter(|r| r.method == "PUT").count(), 1);
    // data_stream fields as Elastic's naming scheme asks.
    let doc: serde_json::Value = serde_json::from_slice(&docs[0].source).unwrap();
    assert_eq!(doc["data_stream"]["type"], "logs");
    assert_eq!(doc["data_stream"]["dataset"], "kubernetes.container_logs");
    assert_eq!(doc["data_stream"]["namespace"], "default");
}

#[tokio::test]
async fn a_key_that_may_not_write_waits_without_dead_letters_and_reports_it() {
    let double = EsDouble::start().await.unwrap();
    double
        .security()
        .add_api_key("r1", "secret", Principal::writer("reader", "other-*"));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.auth = Some(api_key_file(dir.path(), "r1", "secret"));
    let input = batches(&[source(1, "ns", "pod", "c")], None, 100, 50, |i| {
        format!("line {i}")
    });
    let events = Arc::new(CountingEvents::default());
    let forwarder = Forwarder::new(cfg, DocumentOptions::default(), events.clone()).unwrap();
    let health = forwarder.health();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (acker, mut acks) = Acker::channel();
    let stop = CancellationToken::new();
    let run = tokio::spawn(forwarder.run(rx, acker, stop.clone()));
    for b in input {
        tx.send(b).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(health.credential_refused(), "/readyz must see the refusal");
    assert!(health.problem().unwrap().contains("401/403"));
    assert!(
        events.item_errors.get("unauthorized") >= 100,
        "the metric counts refused items"
    );
    stop.cancel();
    let summary = run.await.unwrap().unwrap();
    assert!(acks.try_recv().is_err(), "nothing may be acknowledged");
    assert_eq!(summary.dead_lettered + summary.dead_lettered_to_file, 0);
    assert_eq!(
        double.document_count(),
        0,
        "nothing written, not even dead letters"
    );
    assert!(summary.retried >= 100);
}

#[tokio::test]
async fn a_password_file_rotated_during_401s_resumes_delivery() {
    let double = EsDouble::start().await.unwrap();
    double.security().add_user(
        "logferry",
        "new-password",
        Principal::writer("logferry", "*"),
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "old-password\n").unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.auth = Some(Auth::Basic {
        username: "logferry".into(),
        password_file: pw.clone(),
    });
    let input = batches(&[source(1, "ns", "pod", "c")], None, 200, 50, |i| {
        format!("line {i}")
    });
    let events = Arc::new(CountingEvents::default());
    let forwarder = Forwarder::new(cfg, DocumentOptions::default(), events.clone()).unwrap();
    let health = forwarder.health();
    let rotate = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        // Kubernetes updates a mounted Secret by swapping a symlink; a
        // rename is the same for a reader.
        let tmp = pw.with_extension("new");
        std::fs::write(&tmp, "new-password\n").unwrap();
        std::fs::rename(&tmp, &pw).unwrap();
    });
    let cfg_events: Arc<CountingEvents> = events.clone();
    let _ = cfg_events;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let (acker, mut acks) = Acker::channel();
    let feeder = tokio::spawn(async move {
        for b in input {
            tx.send(b).await.unwrap();
        }
    });
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        forwarder.run(rx, acker, CancellationToken::new()),
    )
    .await
    .expect("delivery resumes after the rotation")
    .unwrap();
    rotate.await.unwrap();
    feeder.await.unwrap();
    let mut n = 0;
    while acks.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, 4, "every batch acknowledged once");
    assert_eq!(double.documents("logs-test").len(), 200);
    assert_eq!(summary.dead_lettered, 0);
    assert!(
        events.outcomes.get("unauthorized") > 0,
        "requests failed with 401 first"
    );
    assert!(!health.credential_refused());
}

fn tenant_with_labels(n: usize) -> Arc<PodMeta> {
    Arc::new(PodMeta {
        origin: MetadataOrigin::Api,
        namespace: "tenant".into(),
        pod_name: "noisy-0".into(),
        pod_uid: "00000000-0000-4000-8000-000000000001".into(),
        pod_ip: None,
        node_name: None,
        labels: (0..n)
            .map(|i| (format!("key-{i}"), "v".to_owned()))
            .collect::<BTreeMap<_, _>>(),
        annotations: BTreeMap::new(),
        namespace_labels: BTreeMap::new(),
        owner: None,
        container: ContainerMeta {
            name: "c".into(),
            image: None,
            id: None,
            runtime: None,
        },
        airflow: None,
    })
}

#[tokio::test]
async fn thousands_of_label_keys_stay_under_the_field_limit_with_the_template() {
    // Without our template (dynamic mapping), the double enforces
    // index.mapping.total_fields.limit = 1000 as Elasticsearch does.
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&double.url(), dir.path());
    let input = batches(
        &[source(1, "tenant", "noisy-0", "c")],
        Some(tenant_with_labels(1500)),
        10,
        10,
        |i| format!("line {i}"),
    );
    let run = ship(
        cfg,
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        input,
    )
    .await;
    assert_eq!(
        run.summary.dead_lettered, 10,
        "the field limit refuses them"
    );
    let dl = double.documents("logferry-dead-letter");
    assert!(String::from_utf8_lossy(&dl[0].source).contains("Limit of total fields [1000]"));

    // With logferry's template, labels are one flattened field.
    let double = EsDouble::start().await.unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.install_template = true;
    let input = batches(
        &[source(1, "tenant", "noisy-0", "c")],
        Some(tenant_with_labels(1500)),
        10,
        10,
        |i| format!("line {i}"),
    );
    let run = ship(
        cfg,
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        input,
    )
    .await;
    assert_eq!(run.summary.dead_lettered, 0);
    assert_eq!(double.documents("logs-test").len(), 10);
    assert!(double.templates().contains_key("logferry-logs-test"));
}
