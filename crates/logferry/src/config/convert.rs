//! From the validated configuration to each library's typed configuration.

use super::{Auth, Config, Elasticsearch, ReadFrom, Schema, SourceMode, Target};
use logferry_elasticsearch as es;
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
        SourceMode::Files => tail::TailConfig::files(c.source.paths.clone(), c.data_dir.clone()),
    };
    t.read_from = match c.source.read_from {
        ReadFrom::Beginning => tail::ReadFrom::Beginning,
        ReadFrom::End => tail::ReadFrom::End,
    };
    t.lookback = c.source.lookback;
    t.max_record_bytes = usize::try_from(c.source.max_record_bytes).unwrap_or(usize::MAX);
    t.multiline = c.source.multiline.as_ref().map(|m| tail::MultilineConfig {
        start_pattern: m.start_pattern.clone(),
        continuation_pattern: m.continuation_pattern.clone(),
        flush_timeout: m.flush_timeout,
    });
    t.rescan_interval = c.source.rescan_interval;
    t.max_open_files = c.source.max_open_files;
    t.max_deleted_files = c.source.max_deleted_files;
    t.max_deleted_bytes = c.source.max_deleted_bytes;
    t.batch_max_records = TAIL_BATCH_RECORDS;
    t.batch_max_bytes = TAIL_BATCH_BYTES;
    t
}

/// The forwarder's configuration.
pub fn to_elasticsearch_config(c: &Config, e: &Elasticsearch) -> es::ElasticsearchConfig {
    let mut out = es::ElasticsearchConfig::new(e.endpoints[0].clone(), c.data_dir.clone());
    out.endpoints = e.endpoints.clone();
    out.target = match &e.target {
        Target::Index(template) => es::IndexTarget::Index {
            template: template.clone(),
        },
        Target::DataStream {
            kind,
            dataset,
            namespace,
        } => es::IndexTarget::DataStream {
            kind: kind.clone(),
            dataset: dataset.clone(),
            namespace: namespace.clone(),
        },
    };
    out.auth = e.auth.as_ref().map(|a| match a {
        Auth::Basic {
            username,
            password_file,
        } => es::Auth::Basic {
            username: username.clone(),
            password_file: password_file.clone(),
        },
        Auth::ApiKey { api_key_file } => es::Auth::ApiKey {
            api_key_file: api_key_file.clone(),
        },
        Auth::Bearer { token_file } => es::Auth::Bearer {
            token_file: token_file.clone(),
        },
    });
    out.tls = e.tls.as_ref().map(|t| es::TlsConfig {
        ca_file: t.ca_file.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        insecure_skip_verify: t.insecure_skip_verify,
    });
    out.batch.max_events = e.batch_max_events;
    out.batch.max_bytes = usize::try_from(e.batch_max_bytes).unwrap_or(usize::MAX);
    out.batch.timeout = e.batch_timeout;
    out.concurrency = e.concurrency;
    out.compression = if e.gzip {
        es::Compression::Gzip
    } else {
        es::Compression::None
    };
    out.retry.initial_backoff = e.initial_backoff;
    out.retry.max_backoff = e.max_backoff;
    out.request_timeout = e.request_timeout;
    out.dead_letter_index = e.dead_letter_index.clone();
    out.install_template = e.install_template;
    out
}

/// How documents look (shared by the Elasticsearch and stdout sinks).
pub fn to_document_options(c: &Config) -> es::DocumentOptions {
    let schema = c
        .elasticsearch
        .as_ref()
        .map(|e| e.schema)
        .unwrap_or(Schema::Ecs);
    es::DocumentOptions {
        schema: match schema {
            Schema::Ecs => es::Schema::Ecs,
            Schema::Fluentd => es::Schema::Fluentd,
        },
        host_name: (!c.node_name.is_empty()).then(|| c.node_name.clone()),
        airflow: c.airflow.enabled.then(|| es::AirflowOptions {
            log_id_template: c.airflow.log_id_template.clone(),
        }),
    }
}
