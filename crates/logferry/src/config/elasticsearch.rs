//! `elasticsearch`: the sink's endpoints (or `cloud_id`), index or data
//! stream, authentication, TLS, batching, retries, index template, headers,
//! proxy, dead letters and the document schema. Defaults are the forwarder's
//! (`ElasticsearchConfig::new`); its own checks run afterwards (see
//! `problems.rs`).

use super::reader::{Problems, Section};
use super::Elasticsearch;
use logferry_elasticsearch::{
    Auth, BatchConfig, Compression, DeadLetterFileConfig, ElasticsearchConfig, IndexNameTemplate,
    IndexTarget, RetryConfig, Schema, TemplateOptions, TlsConfig,
};
use std::path::{Path, PathBuf};

pub(super) fn read_elasticsearch(
    mut s: Section<'_>,
    data_dir: &Path,
    p: &mut Problems,
) -> Elasticsearch {
    // The forwarder's own defaults (its checks run on the result, see `library_problems`).
    let d = ElasticsearchConfig::new(String::new(), data_dir);
    let mut endpoints = s.strings("endpoints", p).unwrap_or_default();
    // Elastic Cloud: the deployment's endpoint from its cloud_id.
    if let Some(cloud_id) = s.string("cloud_id", p) {
        if !endpoints.is_empty() {
            p.push(
                &s.path_of("cloud_id"),
                "set either endpoints or cloud_id, not both",
            );
        }
        match logferry_elasticsearch::cloud_id_endpoint(&cloud_id) {
            Ok(e) => endpoints = vec![e],
            Err(logferry_elasticsearch::Error::InvalidConfig { reason, .. }) => {
                p.push(&s.path_of("cloud_id"), reason)
            }
            Err(e) => p.push(&s.path_of("cloud_id"), e.to_string()),
        }
    }
    if endpoints.is_empty() {
        p.push(
            &s.path_of("endpoints"),
            "required: at least one URL like \"http://127.0.0.1:9200\"",
        );
    }
    let index_given = s.raw("index").is_some();
    let index = s.get("index", p, |v| {
        let t = v.as_str().ok_or("expected a string")?;
        IndexNameTemplate::parse(t).map_err(|e| match e {
            logferry_elasticsearch::Error::InvalidIndexTemplate { reason, .. } => {
                format!("invalid index name template {t:?}: {reason}")
            }
            other => other.to_string(),
        })
    });
    let mut ds = s.section("data_stream", p);
    let target = if ds.is_present() {
        if index_given {
            p.push(
                &s.path_of("data_stream"),
                "set either index or data_stream, not both",
            );
        }
        IndexTarget::DataStream {
            kind: ds.string("type", p).unwrap_or_else(|| "logs".into()),
            dataset: ds
                .string("dataset", p)
                .unwrap_or_else(|| "kubernetes.container_logs".into()),
            namespace: ds
                .string("namespace", p)
                .unwrap_or_else(|| "default".into()),
        }
    } else {
        match index {
            Some(template) => IndexTarget::Index { template },
            // The library's default (IndexTarget::default): the data stream
            // Elastic's Kubernetes integration writes.
            None => d.target.clone(),
        }
    };
    ds.finish(p);
    let mut a = s.section("auth", p);
    let auth = if a.is_present() {
        let username = a.string("username", p);
        let password_file = a.string("password_file", p).map(PathBuf::from);
        let api_key_file = a.string("api_key_file", p).map(PathBuf::from);
        let token_file = a.string("bearer_token_file", p).map(PathBuf::from);
        match (username, password_file, api_key_file, token_file) {
            (Some(username), Some(password_file), None, None) => Some(Auth::Basic {
                username,
                password_file,
            }),
            (None, None, Some(api_key_file), None) => Some(Auth::ApiKey { api_key_file }),
            (None, None, None, Some(token_file)) => Some(Auth::Bearer { token_file }),
            (Some(_), None, None, None) => {
                p.push(
                    &a.path_of("password_file"),
                    "required with username: a file holding the password",
                );
                None
            }
            (None, Some(_), None, None) => {
                p.push(&a.path_of("username"), "required with password_file");
                None
            }
            _ => {
                p.push(
                    &s.path_of("auth"),
                    "expected exactly one of {username, password_file} | {api_key_file} | {bearer_token_file}",
                );
                None
            }
        }
    } else {
        None
    };
    a.finish(p);
    let mut t = s.section("tls", p);
    let tls = t.is_present().then(|| TlsConfig {
        ca_file: t.string("ca_file", p).map(PathBuf::from),
        cert_file: t.string("cert_file", p).map(PathBuf::from),
        key_file: t.string("key_file", p).map(PathBuf::from),
        insecure_skip_verify: t.boolean("insecure_skip_verify", p).unwrap_or(false),
    });
    t.finish(p);
    let mut b = s.section("batch", p);
    let batch_max_events = b.positive("max_events", p).unwrap_or(d.batch.max_events);
    let batch_max_bytes = b.size("max_bytes", p).unwrap_or(d.batch.max_bytes as u64);
    let batch_timeout = b.duration("timeout", p).unwrap_or(d.batch.timeout);
    b.finish(p);
    let mut r = s.section("retry", p);
    let initial_backoff = r
        .duration("initial_backoff", p)
        .unwrap_or(d.retry.initial_backoff);
    let max_backoff = r.duration("max_backoff", p).unwrap_or(d.retry.max_backoff);
    r.finish(p);
    let mut tp = s.section("template", p);
    let defaults = TemplateOptions::default();
    let template = TemplateOptions {
        name: tp.string("name", p),
        priority: tp
            .get("priority", p, |v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("expected a whole number, got {v:?}"))
            })
            .unwrap_or(defaults.priority),
        composed_of: tp.strings("composed_of", p).unwrap_or_default(),
        ilm_policy: tp.string("ilm_policy", p),
        data_retention: tp.string("data_retention", p),
    };
    if template.ilm_policy.is_some() && template.data_retention.is_some() {
        p.push(
            &tp.path_of("data_retention"),
            "set either ilm_policy or data_retention, not both",
        );
    }
    tp.finish(p);
    let headers: Vec<(String, String)> = s
        .get("headers", p, |v| {
            let map = v
                .as_mapping()
                .ok_or_else(|| "expected a map of header name to value".to_owned())?;
            map.iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(format!(
                        "expected string names and values, got {k:?}: {v:?}"
                    )),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut dl = s.section("dead_letter_file", p);
    let dead_letter_file = DeadLetterFileConfig {
        max_bytes: dl
            .size("max_bytes", p)
            .unwrap_or(d.dead_letter_file.max_bytes),
        max_files: dl
            .positive("max_files", p)
            .unwrap_or(d.dead_letter_file.max_files),
    };
    dl.finish(p);
    let e = Elasticsearch {
        forwarder: ElasticsearchConfig {
            template,
            pipeline: s.string("pipeline", p),
            headers,
            proxy: s.string("proxy", p),
            dead_letter_file,
            endpoints,
            target,
            auth,
            tls,
            batch: BatchConfig {
                max_events: batch_max_events,
                max_bytes: usize::try_from(batch_max_bytes).unwrap_or(usize::MAX),
                timeout: batch_timeout,
            },
            concurrency: s.positive("concurrency", p).unwrap_or(d.concurrency),
            compression: s
                .choice(
                    "compression",
                    p,
                    &[("gzip", Compression::Gzip), ("none", Compression::None)],
                )
                .unwrap_or(d.compression),
            // The range (1–9) is the forwarder's check (`problems()`), one message for 0 and 10.
            compression_level: s
                .get("compression_level", p, |v| {
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("expected a gzip level from 1 to 9, got {v:?}"))
                })
                .unwrap_or(d.compression_level),
            retry: RetryConfig {
                initial_backoff,
                max_backoff,
            },
            request_timeout: s
                .duration("request_timeout", p)
                .unwrap_or(d.request_timeout),
            dead_letter_index: s
                .string("dead_letter_index", p)
                .unwrap_or(d.dead_letter_index),
            dead_letter_dir: d.dead_letter_dir,
            install_template: s
                .boolean("install_template", p)
                .unwrap_or(d.install_template),
        },
        schema: s
            .choice(
                "schema",
                p,
                &[("ecs", Schema::Ecs), ("fluentd", Schema::Fluentd)],
            )
            .unwrap_or(Schema::Ecs),
    };
    s.finish(p);
    e
}
