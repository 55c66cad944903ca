//! Issue 4, case 5: authentication headers and gzip bodies as the double
//! receives them; configuration errors found at `Forwarder::new`.

mod common;

use common::{batches, config, ship, source, CountingEvents};
use logferry_elasticsearch::{
    Auth, Compression, DocumentOptions, Error, Forwarder, IndexNameTemplate, IndexTarget,
    NoopEvents, TlsConfig,
};
use logferry_testkit::elasticsearch::EsDouble;
use std::sync::Arc;

async fn headers_with(
    auth: Auth,
    compression: Compression,
) -> (
    EsDouble,
    Vec<logferry_testkit::elasticsearch::RecordedRequest>,
) {
    let double = EsDouble::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&double.url(), dir.path());
    cfg.auth = Some(auth);
    cfg.compression = compression;
    cfg.install_template = true;
    let input = batches(&[source(1, "ns", "pod", "c")], None, 500, 100, |i| {
        format!("message {i} {}", "abc ".repeat(20))
    });
    let run = ship(
        cfg,
        DocumentOptions::default(),
        Arc::new(CountingEvents::default()),
        input.clone(),
    )
    .await;
    run.assert_each_acked_once(&input);
    assert_eq!(double.documents("logs-test").len(), 500);
    let requests = double.requests();
    (double, requests)
}

#[tokio::test]
async fn basic_auth_from_a_password_file_on_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cr3t:with-colon\n").unwrap();
    let (_double, requests) = headers_with(
        Auth::Basic {
            username: "elastic".into(),
            password_file: pw,
        },
        Compression::None,
    )
    .await;
    // base64("elastic:s3cr3t:with-colon")
    let expected = "Basic ZWxhc3RpYzpzM2NyM3Q6d2l0aC1jb2xvbg==";
    assert!(
        requests.len() >= 4,
        "GET /, two templates, bulks: {requests:?}"
    );
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(expected),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(r.header("content-encoding"), None);
    }
    assert!(requests.iter().any(|r| r.method == "GET" && r.path == "/"));
    assert!(requests
        .iter()
        .any(|r| r.method == "PUT" && r.path == "/_index_template/logferry-logs-test"));
}

#[tokio::test]
async fn api_key_from_a_file_encoded_or_as_id_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::write(&raw, "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").unwrap();
    let (_d, requests) = headers_with(Auth::ApiKey { api_key_file: raw }, Compression::None).await;
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some("ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
        );
    }
    let encoded = dir.path().join("encoded");
    std::fs::write(
        &encoded,
        "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\r\n",
    )
    .unwrap();
    let (_d, requests) = headers_with(
        Auth::ApiKey {
            api_key_file: encoded,
        },
        Compression::None,
    )
    .await;
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some("ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
        );
    }
}

#[tokio::test]
async fn bearer_token_from_a_file_and_gzip_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2Vu\n").unwrap();
    let (double, requests) =
        headers_with(Auth::Bearer { token_file: token }, Compression::Gzip).await;
    let bulks: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/_bulk"))
        .collect();
    assert!(!bulks.is_empty());
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2Vu")
        );
    }
    for r in &bulks {
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    }
    let stats = double.stats();
    assert_eq!(stats.gzip_requests, stats.bulk_requests);
    assert!(
        stats.body_bytes * 3 < stats.decoded_bytes,
        "gzip actually compresses: {stats:?}"
    );
    // The documents decoded from the gzip bodies are intact.
    for d in double.documents("logs-test") {
        let v: serde_json::Value = serde_json::from_slice(&d.source).unwrap();
        assert!(v["message"].as_str().unwrap().starts_with("message "));
    }
}

#[test]
fn invalid_configurations_are_refused_at_new_without_leaking_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let new = |c| Forwarder::new(c, DocumentOptions::default(), Arc::new(NoopEvents));
    let base = config("http://127.0.0.1:9200", dir.path());

    let mut c = base.clone();
    c.endpoints = vec!["127.0.0.1:9200".into()];
    assert!(matches!(new(c), Err(Error::InvalidEndpoint { .. })));

    let mut c = base.clone();
    c.endpoints.clear();
    assert!(matches!(
        new(c),
        Err(Error::InvalidConfig {
            field: "endpoints",
            ..
        })
    ));

    let mut c = base.clone();
    c.auth = Some(Auth::Basic {
        username: "u".into(),
        password_file: dir.path().join("missing"),
    });
    let err = new(c).unwrap_err();
    assert!(matches!(err, Error::ReadSecret { .. }));
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!err.is_retryable());

    let secret = dir.path().join("secret");
    std::fs::write(&secret, "bad\u{1}secret-value").unwrap();
    let mut c = base.clone();
    c.auth = Some(Auth::Bearer { token_file: secret });
    let err = new(c).unwrap_err();
    assert!(
        !format!("{err} {err:?}").contains("secret-value"),
        "{err:?}"
    );

    let garbage = dir.path().join("ca.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let mut c = base.clone();
    c.tls = Some(TlsConfig {
        ca_file: Some(garbage),
        ..TlsConfig::default()
    });
    assert!(matches!(new(c), Err(Error::Tls { .. })));

    let mut c = base.clone();
    c.tls = Some(TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    });
    assert!(new(c).is_ok());

    assert!(matches!(
        "logs-{no.such.field}".parse::<IndexNameTemplate>(),
        Err(Error::InvalidIndexTemplate { .. })
    ));

    let mut c = base.clone();
    c.target = IndexTarget::DataStream {
        kind: "logs".into(),
        dataset: "a-b".into(),
        namespace: "default".into(),
    };
    assert!(matches!(new(c), Err(Error::InvalidConfig { .. })));

    let mut c = base.clone();
    c.dead_letter_index = "Dead Letters".into();
    assert!(matches!(
        new(c),
        Err(Error::InvalidConfig {
            field: "dead_letter_index",
            ..
        })
    ));

    let mut c = base.clone();
    c.batch.max_events = 0;
    assert!(matches!(
        new(c),
        Err(Error::InvalidConfig {
            field: "batch.max_events",
            ..
        })
    ));

    let err = "{dag_id}-{nope}"
        .parse::<logferry_elasticsearch::LogIdTemplate>()
        .unwrap_err();
    assert!(err.to_string().contains("airflow.log_id_template"), "{err}");
    assert_eq!(err.as_label(), "invalid_config");
}
