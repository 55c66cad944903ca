//! From the validated configuration to each library's typed configuration.

use super::{Config, SourceMode};
use logferry_elasticsearch as es;
use logferry_kube::KubeConfig;
use logferry_tail as tail;

/// Records per batch from the tailer (the forwarder re-batches for bulk requests).
const TAIL_BATCH_RECORDS: usize = 1000;
/// Message bytes per batch from the tailer.
const TAIL_BATCH_BYTES: usize = 1 << 20;

/// The tailer's configuration.
pub fn to_tail_config(c: &Config) -> tail::TailConfig {
    let mut t = match c.source.mode {
        SourceMode::Kubernetes => tail::TailConfig::kubernetes(
            c.source.pods_dir.clone(),
            c.source.containers_dir.clone(),
            c.data_dir.clone(),
        ),
        // NATS mode runs no tailer; files mode with no paths keeps this total.
        SourceMode::Files | SourceMode::Nats => {
            tail::TailConfig::files(c.source.paths.clone(), c.data_dir.clone())
        }
    };
    t.docker_containers_dir = Some(c.source.docker_containers_dir.clone());
    t.read_from = c.source.read_from;
    t.lookback = c.source.lookback;
    t.max_record_bytes = usize::try_from(c.source.max_record_bytes).unwrap_or(usize::MAX);
    t.multiline = c.source.multiline.clone();
    t.rescan_interval = c.source.rescan_interval;
    t.max_open_files = c.source.max_open_files;
    t.max_deleted_files = c.source.max_deleted_files;
    t.max_deleted_bytes = c.source.max_deleted_bytes;
    t.spool_min_free = c.source.spool_min_free;
    t.batch_max_records = TAIL_BATCH_RECORDS;
    t.batch_max_bytes = TAIL_BATCH_BYTES;
    t
}

/// The pod store's configuration (kubernetes mode).
pub fn to_kube_config(c: &Config) -> KubeConfig {
    KubeConfig {
        node_name: c.node_name.clone(),
        metadata_grace: c.kubernetes.metadata_grace,
        exclude_annotation: c.kubernetes.exclude_annotation.clone(),
        annotation_allowlist: c.kubernetes.annotation_allowlist.clone(),
        label_allowlist: c.kubernetes.label_allowlist.clone(),
        label_denylist: c.kubernetes.label_denylist.clone(),
        namespace_label_allowlist: c.kubernetes.namespace_label_allowlist.clone(),
        lookup_wait: c.kubernetes.lookup_wait,
        state_dir: Some(c.data_dir.clone()),
        ..KubeConfig::default()
    }
}

/// How documents look (shared by the Elasticsearch and stdout sinks).
pub fn to_document_options(c: &Config) -> es::DocumentOptions {
    es::DocumentOptions {
        schema: c
            .elasticsearch
            .as_ref()
            .map_or(es::Schema::Ecs, |e| e.schema),
        host_name: (!c.node_name.is_empty()).then(|| c.node_name.clone()),
        cluster_name: c.kubernetes.cluster_name.clone(),
        airflow: c.airflow.enabled.then(|| es::AirflowOptions {
            log_id_template: c.airflow.log_id_template.clone(),
            task: c.airflow.task.clone(),
            state_file: Some(c.data_dir.join("airflow.json")),
        }),
        id_scope: c.id_scope.clone(),
        json_message: c.json_message.clone(),
    }
}
