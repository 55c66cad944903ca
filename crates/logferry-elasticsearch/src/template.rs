//! Index templates installed at start (`install_template: true`), so that
//! fields get the right types before the first document arrives:
//! `date_nanos` for `@timestamp`, `keyword` for Kubernetes and container
//! fields, `long` for offsets.
//!
//! API: <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-templates.html>.
//! Templates are created with priority 200, above Elasticsearch's built-in
//! `logs` template (priority 100) that also matches `logs-*-*`.

use crate::config::IndexTarget;
use crate::document::Schema;
use crate::index::data_stream_name;
use serde_json::{json, Value};

/// Name of the template for documents.
pub const TEMPLATE_NAME: &str = "logferry";
/// Name of the template for the dead-letter index.
pub const DEAD_LETTER_TEMPLATE_NAME: &str = "logferry-dead-letter";

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": 1024})
}

/// The mappings for a schema (with Airflow's `log_id`, `offset` and `event`).
pub(crate) fn mappings(schema: Schema) -> Value {
    let strings_as_keywords = json!([
        {"labels_and_annotations": {
            "path_match": ["kubernetes.labels.*", "kubernetes.annotations.*"],
            "match_mapping_type": "string",
            "mapping": keyword()
        }}
    ]);
    let airflow = [
        ("log_id", keyword()),
        ("offset", json!({"type": "long"})),
        ("event", json!({"type": "text"})),
    ];
    let mut props = match schema {
        Schema::Ecs => json!({
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": "match_only_text"},
            "stream": keyword(),
            "log": {"properties": {
                "level": keyword(),
                "offset": {"type": "long"},
                "file": {"properties": {"path": keyword()}}
            }},
            "kubernetes": {"properties": {
                "namespace": keyword(),
                "pod": {"properties": {"name": keyword(), "uid": keyword(), "ip": {"type": "ip"}}},
                "node": {"properties": {"name": keyword()}},
                "container": {"properties": {"name": keyword()}},
                "labels": {"type": "object"},
                "annotations": {"type": "object"}
            }},
            "container": {"properties": {
                "id": keyword(),
                "image": {"properties": {"name": keyword()}},
                "runtime": keyword()
            }},
            "host": {"properties": {"name": keyword()}}
        }),
        Schema::Fluentd => json!({
            "@timestamp": {"type": "date_nanos"},
            "time": {"type": "date_nanos"},
            "log": {"type": "text"},
            "stream": keyword(),
            "kubernetes": {"properties": {
                "pod_name": keyword(),
                "namespace_name": keyword(),
                "pod_id": keyword(),
                "container_name": keyword(),
                "container_image": keyword(),
                "host": keyword(),
                "labels": {"type": "object"}
            }},
            "docker": {"properties": {"container_id": keyword()}}
        }),
    };
    for (k, v) in airflow {
        props[k] = v;
    }
    json!({"dynamic_templates": strings_as_keywords, "properties": props})
}

/// The `PUT _index_template/logferry` body for `target`.
pub(crate) fn document_template(target: &IndexTarget, schema: Schema) -> Value {
    let mut body = json!({
        "priority": 200,
        "template": {"mappings": mappings(schema)},
        "_meta": {"managed_by": "logferry", "schema": match schema { Schema::Ecs => "ecs", Schema::Fluentd => "fluentd" }}
    });
    match target {
        IndexTarget::Index { template } => {
            body["index_patterns"] = json!([template.pattern()]);
        }
        IndexTarget::DataStream { .. } => {
            body["index_patterns"] = json!([data_stream_name(target)]);
            body["data_stream"] = json!({});
        }
    }
    body
}

/// The `PUT _index_template/logferry-dead-letter` body.
pub(crate) fn dead_letter_template(index: &str) -> Value {
    json!({
        "index_patterns": [index],
        "priority": 200,
        "template": {"mappings": {"properties": {
            "@timestamp": {"type": "date_nanos"},
            "error": {"properties": {"type": keyword(), "message": {"type": "text"}, "code": keyword()}},
            "event": {"properties": {"original": {"type": "text", "index": false}}},
            "elasticsearch": {"properties": {"index": keyword(), "id": keyword()}}
        }}},
        "_meta": {"managed_by": "logferry"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_cover_their_targets() {
        let t = document_template(
            &IndexTarget::Index {
                template: "logs-k8s-%Y.%m.%d".parse().unwrap(),
            },
            Schema::Ecs,
        );
        assert_eq!(t["index_patterns"][0], "logs-k8s-*.*.*");
        assert_eq!(
            t["template"]["mappings"]["properties"]["@timestamp"]["type"],
            "date_nanos"
        );
        assert_eq!(
            t["template"]["mappings"]["properties"]["offset"]["type"],
            "long"
        );
        assert_eq!(
            t["template"]["mappings"]["properties"]["log_id"]["type"],
            "keyword"
        );
        let d = document_template(
            &IndexTarget::DataStream {
                kind: "logs".into(),
                dataset: "kubernetes".into(),
                namespace: "default".into(),
            },
            Schema::Fluentd,
        );
        assert_eq!(d["index_patterns"][0], "logs-kubernetes-default");
        assert!(d["data_stream"].is_object());
        assert_eq!(
            d["template"]["mappings"]["properties"]["time"]["type"],
            "date_nanos"
        );
    }
}
