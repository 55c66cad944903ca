//! The Elasticsearch double, driven by the official `elasticsearch` client:
//! what real clients expect, search for
//! `logferry verify`, faults and the control API.

use logferry_elasticsearch::elasticsearch::http::headers::HeaderMap;
use logferry_elasticsearch::elasticsearch::http::request::JsonBody;
use logferry_elasticsearch::elasticsearch::http::transport::Transport;
use logferry_elasticsearch::elasticsearch::http::Method;
use logferry_elasticsearch::elasticsearch::indices::{
    IndicesExistsIndexTemplateParts, IndicesPutIndexTemplateParts,
};
use logferry_elasticsearch::elasticsearch::{
    BulkParts, CountParts, Elasticsearch, GetParts, SearchParts,
};
use logferry_testkit::elasticsearch::{EsDouble, FaultConfig};
use serde_json::{json, Value};
use std::time::Duration;

fn client(double: &EsDouble) -> Elasticsearch {
    Elasticsearch::new(Transport::single_node(&double.url()).unwrap())
}

async fn bulk(es: &Elasticsearch, index: &str, lines: Vec<Value>) -> (u16, Value) {
    let body: Vec<JsonBody<Value>> = lines.into_iter().map(JsonBody::new).collect();
    let resp = es
        .bulk(BulkParts::Index(index))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status_code().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn answers_like_elasticsearch_8() {
    let double = EsDouble::start().await.unwrap();
    let es = client(&double);
    let info = es.info().send().await.unwrap();
    assert_eq!(info.headers()["x-elastic-product"], "Elasticsearch");
    let info: Value = info.json().await.unwrap();
    assert!(info["version"]["number"]
        .as_str()
        .unwrap()
        .starts_with("8."));
    assert_eq!(es.ping().send().await.unwrap().status_code().as_u16(), 200);

    // Templates: 404 until created.
    let exists = es
        .indices()
        .exists_index_template(IndicesExistsIndexTemplateParts::Name("t"))
        .send()
        .await
        .unwrap();
    assert_eq!(exists.status_code().as_u16(), 404);
    assert_eq!(exists.headers()["x-elastic-product"], "Elasticsearch");
    let put = es
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name("t"))
        .body(json!({"index_patterns": ["logs-*"], "template": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status_code().as_u16(), 200);
    let exists = es
        .indices()
        .exists_index_template(IndicesExistsIndexTemplateParts::Name("t"))
        .send()
        .await
        .unwrap();
    assert_eq!(exists.status_code().as_u16(), 200);

    // Bulk: create, duplicate create (409 in a 200), index without id, bad index name.
    let (status, r) = bulk(
        &es,
        "logs-a",
        vec![
            json!({"create": {"_id": "1"}}),
            json!({"message": "one", "n": 1}),
            json!({"create": {"_id": "1"}}),
            json!({"message": "again"}),
            json!({"index": {}}),
            json!({"message": "auto id", "n": 2}),
            json!({"create": {"_index": "Logs-B", "_id": "2"}}),
            json!({"message": "bad index"}),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(r["errors"], true);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items[0]["create"]["status"], 201);
    assert_eq!(items[0]["create"]["result"], "created");
    assert_eq!(items[1]["create"]["status"], 409);
    assert_eq!(
        items[1]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(items[2]["index"]["status"], 201);
    let auto_id = items[2]["index"]["_id"].as_str().unwrap();
    assert_eq!(auto_id.len(), 20);
    assert_eq!(
        items[3]["create"]["error"]["type"],
        "invalid_index_name_exception"
    );
    assert_eq!(
        &double.document("logs-a", "1").unwrap()[..],
        br#"{"message":"one","n":1}"#
    );
    assert!(double.document("logs-a", auto_id).is_some());

    let got: Value = es
        .get(GetParts::IndexId("logs-a", "1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["_source"]["message"], "one");
    let missing = es
        .get(GetParts::IndexId("logs-a", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status_code().as_u16(), 404);

    // A body without the final newline, and ES 8's refusal of `_type`, are whole-request 400s.
    let raw = es
        .transport()
        .send(
            Method::Post,
            "/_bulk",
            HeaderMap::new(),
            None::<&()>,
            Some(b"{\"create\":{\"_index\":\"x\"}}\n{}".as_slice()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(raw.status_code().as_u16(), 400);
    let (status, _) = bulk(
        &es,
        "x",
        vec![json!({"create": {"_type": "_doc"}}), json!({})],
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn search_and_count_cover_what_verify_needs() {
    let double = EsDouble::start().await.unwrap();
    let es = client(&double);
    let mut lines = Vec::new();
    for i in 0..30 {
        lines.push(json!({"create": {"_id": format!("d{i}")}}));
        lines.push(json!({"message": format!("marker-{} line {i}", i % 3), "log": {"offset": i * 10}, "kubernetes.namespace": "ns"}));
    }
    assert_eq!(bulk(&es, "logs-2026.11.22", lines.clone()).await.0, 200);
    assert_eq!(bulk(&es, "other", lines[..2].to_vec()).await.0, 200);

    let count: Value = es
        .count(CountParts::Index(&["logs-*", "nothing-*"]))
        .body(json!({"query": {"match_phrase": {"message": "marker-1"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 10);
    let page: Value = es
        .search(SearchParts::Index(&["logs-*"]))
        .body(json!({
            "query": {"bool": {"must": [{"term": {"kubernetes.namespace": "ns"}}], "filter": [{"range": {"log.offset": {"gte": 50, "lt": 250}}}]}},
            "sort": [{"log.offset": {"order": "desc"}}],
            "size": 5,
            "from": 2
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["hits"]["total"]["value"], 20);
    let offsets: Vec<i64> = page["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"]["log"]["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [220, 210, 200, 190, 180]);
    // search_after continues after the last sort value.
    let next: Value = es
        .search(SearchParts::Index(&["_all"]))
        .body(json!({"query": {"match_all": {}}, "sort": ["log.offset"], "size": 3, "search_after": [280]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = next["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d29"]);
    // A missing concrete index is a 404.
    let missing = es
        .search(SearchParts::Index(&["nope"]))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status_code().as_u16(), 404);
    assert_eq!(double.stats().searches, 4);
}

#[tokio::test]
async fn faults_and_the_control_api() {
    let double = EsDouble::start().await.unwrap();
    let es = client(&double);
    let t = es.transport();
    let control = |method, path: &'static str, body: Option<Value>| async move {
        let body = body.map(|b| b.to_string().into_bytes());
        let resp = t
            .send(method, path, HeaderMap::new(), None::<&()>, body, None)
            .await
            .unwrap();
        let status = resp.status_code().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    };
    // Whole-request errors.
    let (s, v) = control(
        Method::Put,
        "/_double/faults",
        Some(json!({"request_error_rate": 1.0, "request_error_statuses": [503]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["request_error_rate"], 1.0);
    assert_eq!(
        bulk(&es, "i", vec![json!({"create": {}}), json!({})])
            .await
            .0,
        503
    );
    // Per-item errors.
    double.faults().set(FaultConfig {
        item_error_rate: 1.0,
        item_error_statuses: vec![429],
        ..FaultConfig::default()
    });
    let (s, r) = bulk(
        &es,
        "i",
        vec![json!({"create": {"_id": "a"}}), json!({"m": 1})],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(r["items"][0]["create"]["status"], 429);
    assert_eq!(
        r["items"][0]["create"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    // Mapping errors by substring.
    double.faults().set(FaultConfig {
        mapping_error_substring: Some("bad".into()),
        ..FaultConfig::default()
    });
    let (_, r) = bulk(
        &es,
        "i",
        vec![
            json!({"create": {"_id": "b"}}),
            json!({"m": "bad"}),
            json!({"create": {"_id": "c"}}),
            json!({"m": "good"}),
        ],
    )
    .await;
    assert_eq!(
        r["items"][0]["create"]["error"]["type"],
        "mapper_parsing_exception"
    );
    assert_eq!(r["items"][1]["create"]["status"], 201);
    // Body size limit.
    double.faults().set(FaultConfig {
        max_body_bytes: Some(10),
        ..FaultConfig::default()
    });
    assert_eq!(
        bulk(
            &es,
            "i",
            vec![json!({"create": {}}), json!({"m": "more than ten bytes"})]
        )
        .await
        .0,
        413
    );
    // Dropped connections: the client sees a transport error, no response.
    double.faults().set(FaultConfig {
        drop_connection_rate: 1.0,
        ..FaultConfig::default()
    });
    let body = vec![
        JsonBody::new(json!({"create": {}})),
        JsonBody::new(json!({})),
    ];
    assert!(es
        .bulk(BulkParts::Index("i"))
        .body(body)
        .send()
        .await
        .is_err());
    // Latency.
    double.faults().set(FaultConfig {
        latency_ms: 200,
        ..FaultConfig::default()
    });
    let t0 = std::time::Instant::now();
    bulk(&es, "i", vec![json!({"create": {}}), json!({})]).await;
    assert!(t0.elapsed() >= Duration::from_millis(200));
    let (s, _) = control(Method::Delete, "/_double/faults", None).await;
    assert_eq!(s, 200);
    assert_eq!(double.faults().get(), FaultConfig::default());

    // Stats and indices through the control API.
    let (_, stats) = control(Method::Get, "/_double/stats", None).await;
    assert_eq!(stats["injected_request_errors"], 1);
    assert_eq!(stats["dropped_connections"], 1);
    assert_eq!(stats["too_large"], 1);
    let (_, indices) = control(Method::Get, "/_double/indices", None).await;
    assert_eq!(indices["i"], 2);

    // An outage: connection refused, then back on the same port.
    let (s, _) = control(Method::Post, "/_double/outage?ms=600", None).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = std::net::TcpStream::connect(double.addr());
    assert!(refused.is_err(), "connection refused during the outage");
    assert!(es.info().send().await.is_err());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(es.info().send().await.unwrap().status_code().as_u16(), 200);

    // Reset forgets everything.
    let (s, _) = control(Method::Post, "/_double/reset", None).await;
    assert_eq!(s, 200);
    assert_eq!(double.document_count(), 0);
    assert!(double.requests().len() <= 1);
}
