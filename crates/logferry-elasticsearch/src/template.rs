//! Index templates installed at start (`install_template: true`), so that
//! fields get the right types before the first document arrives:
//! `date_nanos` for `@timestamp`, `keyword` for Kubernetes and container
//! fields, `long` for offsets.
//!
//! API: <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/index-templates.html>.
//!
//! * **Name**: derived from the target ([`template_name`]:
//!   `logferry-logs-kubernetes.container_logs`, `logferry-airflow-logs`), so
//!   two releases writing to different targets (the DaemonSet and an Airflow
//!   sidecar) never overwrite each other's template.
//! * **Priority**: 501 by default, above Elasticsearch's built-in `logs`
//!   template (`logs-*-*`, priority 100) and the 500 that Elastic's
//!   "avoid index pattern collisions" advice asks overlapping templates to
//!   exceed (same page).
//! * **Lifecycle**: an ILM policy (`index.lifecycle.name`) or, for data
//!   streams, a data stream lifecycle (`lifecycle.data_retention`,
//!   <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/data-stream-lifecycle.html>);
//!   `composed_of` component templates.
//! * **Labels**: `kubernetes.labels` and `kubernetes.annotations` are mapped
//!   `flattened`
//!   (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/flattened.html>):
//!   one field each whatever the number of keys, so a tenant with thousands
//!   of label keys cannot push an index past
//!   `index.mapping.total_fields.limit` (default 1000) and send everyone's
//!   documents to the dead letter.

use crate::config::TemplateOptions;
use crate::index::IndexTarget;
use crate::index::{data_stream_name, data_stream_part};
use crate::schema::Schema;
use serde_json::{json, Value};

/// Name of the template for the dead-letter index.
pub const DEAD_LETTER_TEMPLATE_NAME: &str = "logferry-dead-letter";

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": 1024})
}

/// The mappings for a schema (with Airflow's `log_id`, `offset` and `event`).
pub(crate) fn mappings(schema: Schema) -> Value {
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
                "flags": keyword(),
                "offset": {"type": "long"},
                "file": {"properties": {"path": keyword()}}
            }},
            "kubernetes": {"properties": {
                "namespace": keyword(),
                "pod": {"properties": {"name": keyword(), "uid": keyword(), "ip": {"type": "ip"}}},
                "node": {"properties": {"name": keyword()}},
                "container": {"properties": {"name": keyword()}},
                "labels": {"type": "flattened"},
                "annotations": {"type": "flattened"},
                "namespace_labels": {"type": "flattened"},
                "deployment": {"properties": {"name": keyword()}},
                "replicaset": {"properties": {"name": keyword()}},
                "statefulset": {"properties": {"name": keyword()}},
                "daemonset": {"properties": {"name": keyword()}},
                "job": {"properties": {"name": keyword()}},
                "cronjob": {"properties": {"name": keyword()}}
            }},
            "orchestrator": {"properties": {"cluster": {"properties": {"name": keyword()}}}},
            "ecs": {"properties": {"version": keyword()}},
            "data_stream": {"properties": {
                "type": {"type": "constant_keyword"},
                "dataset": {"type": "constant_keyword"},
                "namespace": {"type": "constant_keyword"}
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
                "labels": {"type": "flattened"},
                "namespace_labels": {"type": "flattened"}
            }},
            "docker": {"properties": {"container_id": keyword()}}
        }),
    };
    for (k, v) in airflow {
        props[k] = v;
    }
    json!({"properties": props})
}

/// The index pattern of `target`'s template: the index name template with
/// each `strftime` specifier and `{field}` as `*`; for a data stream,
/// `<type>-<dataset>-<namespace>` (`*` for a templated namespace).
pub fn index_pattern(target: &IndexTarget) -> String {
    match target {
        IndexTarget::Index { template } => template.pattern(),
        IndexTarget::DataStream {
            kind,
            dataset,
            namespace,
        } if namespace.contains('{') => {
            format!("{}-{}-*", data_stream_part(kind), data_stream_part(dataset))
        }
        IndexTarget::DataStream { .. } => data_stream_name(target),
    }
}

/// The template name for `target`: `logferry-` and its index pattern up to
/// the first `*` (trailing `-`, `.` and `_` removed), e.g.
/// `logferry-logs-kubernetes.container_logs-default` or
/// `logferry-airflow-logs`.
pub fn template_name(target: &IndexTarget) -> String {
    let pattern = index_pattern(target);
    let stem = pattern.split('*').next().unwrap_or("");
    let stem = stem.trim_end_matches(['-', '.', '_']);
    if stem.is_empty() {
        "logferry".to_owned()
    } else {
        format!("logferry-{stem}")
    }
}

/// The `PUT _index_template/<template_name>` body for `target`.
///
/// `json_key`: the key the JSON-message option writes parsed messages under
/// ([`crate::JsonTarget::Key`]), mapped `flattened` (values longer than
/// 1024 characters kept in `_source`, not indexed).
pub(crate) fn document_template(
    target: &IndexTarget,
    schema: Schema,
    json_key: Option<&str>,
    options: &TemplateOptions,
) -> Value {
    let mut mappings = mappings(schema);
    if let Some(key) = json_key {
        mappings["properties"][key] = json!({"type": "flattened", "ignore_above": 1024});
    }
    let mut body = json!({
        "index_patterns": [index_pattern(target)],
        "priority": options.priority,
        "template": {"mappings": mappings},
        "_meta": {"managed_by": "logferry", "schema": match schema { Schema::Ecs => "ecs", Schema::Fluentd => "fluentd" }}
    });
    if !options.composed_of.is_empty() {
        body["composed_of"] = json!(options.composed_of);
    }
    if let Some(policy) = &options.ilm_policy {
        body["template"]["settings"] = json!({"index": {"lifecycle": {"name": policy}}});
    }
    if let IndexTarget::DataStream { .. } = target {
        body["data_stream"] = json!({});
        if let Some(retention) = &options.data_retention {
            body["template"]["lifecycle"] = json!({"enabled": true, "data_retention": retention});
        }
    }
    body
}

/// The `PUT _index_template/logferry-dead-letter` body.
pub(crate) fn dead_letter_template(index: &str) -> Value {
    json!({
        "index_patterns": [index],
        "priority": 501,
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
            None,
            &TemplateOptions::default(),
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
            Some("json"),
            &TemplateOptions::default(),
        );
        assert_eq!(d["index_patterns"][0], "logs-kubernetes-default");
        assert_eq!(
            d["template"]["mappings"]["properties"]["json"]["type"], "flattened",
            "the JSON-message key is one field whatever the keys"
        );
        assert!(d["data_stream"].is_object());
        assert_eq!(
            d["template"]["mappings"]["properties"]["time"]["type"],
            "date_nanos"
        );
    }

    #[test]
    fn names_derive_from_the_target_and_priorities_beat_the_builtins() {
        let ds = IndexTarget::default();
        assert_eq!(
            template_name(&ds),
            "logferry-logs-kubernetes.container_logs-default"
        );
        let per_ns = IndexTarget::DataStream {
            kind: "logs".into(),
            dataset: "kubernetes.container_logs".into(),
            namespace: "{kubernetes.namespace}".into(),
        };
        assert_eq!(index_pattern(&per_ns), "logs-kubernetes.container_logs-*");
        assert_eq!(
            template_name(&per_ns),
            "logferry-logs-kubernetes.container_logs"
        );
        let airflow = IndexTarget::Index {
            template: "airflow-logs-%Y.%m.%d".parse().unwrap(),
        };
        assert_eq!(template_name(&airflow), "logferry-airflow-logs");
        assert_ne!(template_name(&airflow), template_name(&ds));
        let options = TemplateOptions {
            composed_of: vec!["logs@settings".into()],
            data_retention: Some("30d".into()),
            ilm_policy: Some("logs".into()),
            ..TemplateOptions::default()
        };
        let t = document_template(&per_ns, Schema::Ecs, None, &options);
        assert!(t["priority"].as_u64().unwrap() > 500);
        assert_eq!(t["composed_of"][0], "logs@settings");
        assert_eq!(t["template"]["lifecycle"]["data_retention"], "30d");
        assert_eq!(
            t["template"]["settings"]["index"]["lifecycle"]["name"],
            "logs"
        );
        let k = &t["template"]["mappings"]["properties"]["kubernetes"]["properties"];
        assert_eq!(k["labels"]["type"], "flattened");
        assert_eq!(k["annotations"]["type"], "flattened");
        assert!(
            dead_letter_template("logferry-dead-letter")["priority"]
                .as_u64()
                .unwrap()
                > 500
        );
    }
}
