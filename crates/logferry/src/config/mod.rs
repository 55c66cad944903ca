//! logferry's configuration file: YAML, read in full, every problem reported
//! with its key path, then turned into each library's typed configuration.
//!
//! The keys and defaults are the contract in the README's configuration
//! reference. `${VAR}` and `${VAR:-default}` are expanded from
//! the environment before parsing; unknown keys are errors.
//!
//! This file holds the validated configuration's types, [`Config::load`] /
//! [`Config::parse`] and the top-level keys (`node_name`, `data_dir`,
//! `filter`, `server`, `shutdown`). The rest, one step each:
//!
//! - `reader`: the YAML walker that collects every problem with its key path,
//!   and `${VAR}` expansion;
//! - one file per section: `source`, `kubernetes`, `elasticsearch`, `nats`
//!   (`source.nats` and the `nats` sink), `airflow`, `json_message`;
//! - `problems`: the libraries' own checks on the configurations built;
//! - `convert`: the validated configuration into each library's configuration.

mod airflow;
mod convert;
mod elasticsearch;
mod json_message;
mod kubernetes;
mod nats;
mod problems;
pub mod reader;
mod source;

pub use convert::{to_document_options, to_kube_config, to_tail_config};

use logferry_core::{AirflowTask, Level};
use logferry_elasticsearch::{ElasticsearchConfig, JsonMessageOptions, LogIdTemplate, Schema};
use logferry_tail::{MinFree, MultilineConfig, ReadFrom};
use reader::{expand_env, Problem, Problems, Section};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to read (the tailer's mode without its paths).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SourceMode {
    /// kubelet's `/var/log/pods` + `/var/log/containers` layout.
    Kubernetes,
    /// Plain files under glob patterns (sidecar, plain hosts).
    Files,
    /// A NATS subscription or JetStream consumer (`source.nats`), e.g. Fly.io's log stream.
    Nats,
}

/// `source`.
#[derive(Clone, Debug)]
pub struct Source {
    /// `kubernetes` or `files`.
    pub mode: SourceMode,
    /// kubelet's pod log directory.
    pub pods_dir: PathBuf,
    /// kubelet's container symlink directory.
    pub containers_dir: PathBuf,
    /// Docker's container directory: cri-dockerd's files under `pods_dir`
    /// link there; files are read only under `pods_dir` or as
    /// `<id>/<id>-json.log*` here.
    pub docker_containers_dir: PathBuf,
    /// Files mode: glob patterns.
    pub paths: Vec<String>,
    /// Globs on `namespace/pod/container` that are read (NATS mode:
    /// subject patterns, in `nats`).
    pub include: Vec<String>,
    /// Globs on `namespace/pod/container` that are not shipped (NATS mode:
    /// subject patterns, in `nats`).
    pub exclude: Vec<String>,
    /// Start position for files found without checkpoint at first start.
    pub read_from: ReadFrom,
    /// Skip records older than this on the first read of a file.
    pub lookback: Option<Duration>,
    /// Longer records are truncated and flagged (bytes).
    pub max_record_bytes: u64,
    /// Multiline joining.
    pub multiline: Option<MultilineConfig>,
    /// Safety-net rescan period.
    pub rescan_interval: Duration,
    /// Open file descriptor bound.
    pub max_open_files: usize,
    /// Deleted-but-unread files held open, at most.
    pub max_deleted_files: usize,
    /// Unread bytes in held-open deleted files, at most; also bounds the spool.
    pub max_deleted_bytes: u64,
    /// Free space on `data_dir`'s filesystem the spool never writes into.
    pub spool_min_free: MinFree,
    /// NATS mode: `source.nats`, with `include`/`exclude` as subject filters.
    pub nats: Option<logferry_nats::SourceConfig>,
}

/// `kubernetes`.
#[derive(Clone, Debug)]
pub struct Kubernetes {
    /// Whether to watch the API at all.
    pub enabled: bool,
    /// How long a deleted pod's metadata is kept after its files are done.
    pub metadata_grace: Duration,
    /// Pod / namespace annotation whose value `"true"` opts out.
    pub exclude_annotation: String,
    /// Pod annotation keys (globs) copied into documents.
    pub annotation_allowlist: Vec<String>,
    /// Pod label keys (globs) copied into documents.
    pub label_allowlist: Vec<String>,
    /// Pod label keys (globs) never copied.
    pub label_denylist: Vec<String>,
    /// Namespace label keys (globs) copied into `kubernetes.namespace_labels`.
    pub namespace_label_allowlist: Vec<String>,
    /// How long a file whose pod is unknown waits for the pod.
    pub lookup_wait: Duration,
    /// The cluster's name, written as `orchestrator.cluster.name` (ECS).
    pub cluster_name: Option<String>,
}

/// `elasticsearch`: the forwarder's configuration and the document schema.
#[derive(Clone, Debug)]
pub struct Elasticsearch {
    /// Endpoints, target, auth, TLS, batching, retries, dead letters.
    pub forwarder: ElasticsearchConfig,
    /// Document schema (also used by the stdout sink).
    pub schema: Schema,
}

/// `airflow`.
#[derive(Clone, Debug)]
pub struct Airflow {
    /// Whether Airflow worker records get `log_id` and `offset`.
    pub enabled: bool,
    /// Airflow's `log_id` template (Python `str.format` syntax), parsed.
    pub log_id_template: LogIdTemplate,
    /// `airflow.task`: the task of files that name none themselves (sidecar).
    pub task: Option<AirflowTask>,
}

/// The whole, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name (`spec.nodeName` of the pods to watch, `host.name`).
    pub node_name: String,
    /// Hashed into every document `_id` (see `DocumentOptions::id_scope`):
    /// `node_name` in kubernetes mode; in files mode the pod's identity, the
    /// `POD_UID` environment variable (downward API `metadata.uid`), else the
    /// host name (a pod's name), else `node_name`.
    pub id_scope: String,
    /// Checkpoints and the dead-letter file live here.
    pub data_dir: PathBuf,
    /// What to read.
    pub source: Source,
    /// Pod metadata.
    pub kubernetes: Kubernetes,
    /// Drop records below this level (records without a level are kept).
    pub min_level: Option<Level>,
    /// The Elasticsearch sink; `None` (and no `nats`) means the stdout sink.
    pub elasticsearch: Option<Elasticsearch>,
    /// The NATS JetStream sink (top-level `nats`).
    pub nats: Option<logferry_nats::SinkConfig>,
    /// Airflow log_id / offset.
    pub airflow: Airflow,
    /// `json_message`: messages that are JSON objects parsed into the
    /// document; `None` when not enabled (the default).
    pub json_message: Option<JsonMessageOptions>,
    /// Admin HTTP listen address (`/metrics`, `/healthz`, `/readyz`; read-only).
    pub listen: SocketAddr,
    /// Where `POST /quitquitquit` is served, always a loopback address; `None`
    /// when the endpoint is off (the default in kubernetes mode).
    pub control_listen: Option<SocketAddr>,
    /// Bound on the SIGTERM drain.
    pub drain_timeout: Duration,
}

/// A configuration that could not be used: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {}: {} problem(s)", .path.display(), .problems.len())]
pub struct ConfigError {
    /// The file read.
    pub path: PathBuf,
    /// Every problem, in document order of discovery.
    pub problems: Vec<Problem>,
}

impl Config {
    /// Reads, expands and validates the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem (unreadable file, YAML syntax,
    /// unknown keys, wrong types, missing values, invalid values).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |problems: Vec<Problem>| ConfigError {
            path: path.to_owned(),
            problems,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(vec![Problem {
                path: "(file)".into(),
                message: format!("cannot read {}: {e}", path.display()),
            }])
        })?;
        Config::parse(&text, |k| std::env::var(k).ok()).map_err(fail)
    }

    /// Parses configuration text; `env` resolves `${VAR}` references.
    ///
    /// # Errors
    /// Every problem found, each with its key path.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<Problem>> {
        let mut p = Problems::default();
        let expanded = expand_env(text, &env, &mut p);
        let doc: serde_yaml_ng::Value = match serde_yaml_ng::from_str(&expanded) {
            Ok(v) => v,
            Err(e) => {
                p.push("(yaml)", e.to_string());
                return Err(p.0);
            }
        };
        let config = read_config(&doc, &env, &mut p);
        problems::library_problems(&config, &mut p);
        if p.0.is_empty() {
            Ok(config)
        } else {
            Err(p.0)
        }
    }
}

fn read_config(
    doc: &serde_yaml_ng::Value,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Config {
    let mut root = Section::root(doc, p);
    let node_name = root
        .string("node_name", p)
        .filter(|s| !s.is_empty())
        .or_else(|| env("NODE_NAME").filter(|s| !s.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let data_dir = root
        .string("data_dir", p)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/logferry"));

    let source = source::read_source(root.section("source", p), env, p);
    let kubernetes = kubernetes::read_kubernetes(root.section("kubernetes", p), p);
    let mut filter = root.section("filter", p);
    let min_level = filter.get("min_level", p, |v| {
        let s = v.as_str().unwrap_or_default();
        Level::parse(s.as_bytes()).ok_or_else(|| {
            format!("expected one of trace | debug | info | warn | error | fatal, got {s:?}")
        })
    });
    filter.finish(p);
    let es = root.section("elasticsearch", p);
    let es_present = es.is_present();
    let elasticsearch = es_present.then(|| elasticsearch::read_elasticsearch(es, &data_dir, p));
    let nats_section = root.section("nats", p);
    if nats_section.is_present() && es_present {
        p.push(
            "nats",
            "set either elasticsearch or nats as the sink, not both",
        );
    }
    let nats = nats_section
        .is_present()
        .then(|| nats::read_sink(nats_section, env, p));
    let airflow = airflow::read_airflow(root.section("airflow", p), p);
    let json_message = json_message::read_json_message(root.section("json_message", p), p);
    let mut server = root.section("server", p);
    let listen = server
        .get("listen", p, |v| {
            let s = v
                .as_str()
                .ok_or("expected an address like \"0.0.0.0:2020\"")?;
            s.parse::<SocketAddr>()
                .map_err(|_| format!("expected an address like \"0.0.0.0:2020\", got {s:?}"))
        })
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 2020)));
    let quitquitquit = server
        .boolean("quitquitquit", p)
        .unwrap_or(source.mode == SourceMode::Files);
    let control_path = server.path_of("control_listen");
    let control_listen = server
        .get("control_listen", p, |v| {
            let s = v
                .as_str()
                .ok_or("expected a loopback address like \"127.0.0.1:2021\"")?;
            s.parse::<SocketAddr>().map_err(|_| {
                format!("expected a loopback address like \"127.0.0.1:2021\", got {s:?}")
            })
        })
        .unwrap_or_else(|| default_control_listen(listen));
    if !control_listen.ip().is_loopback() {
        p.push(
            &control_path,
            format!(
                "must be a loopback address (127.0.0.0/8 or ::1): /quitquitquit is never served to the network, got {control_listen}"
            ),
        );
    }
    server.finish(p);
    let mut shutdown = root.section("shutdown", p);
    let drain_timeout = shutdown
        .duration("drain_timeout", p)
        .unwrap_or(Duration::from_secs(20));
    shutdown.finish(p);
    root.finish(p);

    let id_scope = match source.mode {
        SourceMode::Kubernetes => node_name.clone(),
        // NATS records carry their own identity (`RecordFlags::DOCUMENT`).
        SourceMode::Nats => String::new(),
        SourceMode::Files => env("POD_UID")
            .or_else(|| env("HOSTNAME"))
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| node_name.clone()),
    };
    if source.mode == SourceMode::Kubernetes && kubernetes.enabled && node_name.is_empty() {
        p.push(
            "node_name",
            "required in kubernetes mode: set it, or the NODE_NAME environment variable",
        );
    }
    Config {
        node_name,
        id_scope,
        data_dir,
        source,
        kubernetes,
        min_level,
        elasticsearch,
        nats,
        airflow,
        json_message,
        listen,
        control_listen: quitquitquit.then_some(control_listen),
        drain_timeout,
    }
}

/// `server.control_listen` when not set: `server.listen` itself when that is
/// a loopback address (one listener serves everything, nothing reaches the
/// network), otherwise `127.0.0.1:2021`.
fn default_control_listen(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_loopback() {
        listen
    } else {
        SocketAddr::from(([127, 0, 0, 1], 2021))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_elasticsearch::{Auth, Compression, IndexTarget};

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::parse(text, |k| match k {
            "NODE_NAME" => Some("node-1".into()),
            _ => None,
        })
    }

    #[test]
    fn a_cloud_id_gives_the_endpoint() {
        let c = parse(
            "elasticsearch: {cloud_id: \"staging:dXMtZWFzdC0xLmF3cy5mb3VuZC5pbyRjZWM2ZjI2MWE3NGJmMjRjZTMzYmI4ODExYjg0Mjk0ZiRjNmMyY2E2ZDA0MjI0OWFmMGNjN2Q3YTllOTYyNTc0Mw==\"}",
        )
        .unwrap();
        assert_eq!(
            c.elasticsearch.unwrap().forwarder.endpoints,
            ["https://cec6f261a74bf24ce33bb8811b84294f.us-east-1.aws.found.io:443"]
        );
        let problems = parse("elasticsearch: {cloud_id: \"x:!!\", endpoints: [\"http://a:9200\"]}")
            .unwrap_err();
        assert!(
            problems
                .iter()
                .filter(|p| p.path == "elasticsearch.cloud_id")
                .count()
                == 2,
            "{problems:?}"
        );
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = parse("{}").unwrap();
        assert_eq!(c.node_name, "node-1");
        assert_eq!(c.source.mode, SourceMode::Kubernetes);
        assert_eq!(c.source.pods_dir, PathBuf::from("/var/log/pods"));
        assert_eq!(c.source.lookback, None);
        assert!(
            c.elasticsearch.is_none(),
            "no elasticsearch section means the stdout sink"
        );
        assert_eq!(c.listen.port(), 2020);
        assert_eq!(
            c.control_listen, None,
            "/quitquitquit is off in kubernetes mode unless enabled"
        );
        assert_eq!(c.kubernetes.metadata_grace, Duration::from_secs(300));
    }

    #[test]
    fn full_elasticsearch_section() {
        let c = parse(
            r#"
elasticsearch:
  endpoints: ["http://a:9200", "https://b:9200"]
  data_stream: {type: logs, dataset: kubernetes, namespace: prod}
  auth: {username: elastic, password_file: /run/secrets/pw}
  batch: {max_events: 500, max_bytes: 2MiB, timeout: 250ms}
  compression: none
  compression_level: 4
  schema: fluentd
source:
  lookback: P1D
  multiline: {start_pattern: '^\d{4}-', flush_timeout: 2s}
filter: {min_level: info}
"#,
        )
        .unwrap();
        let schema = c.elasticsearch.as_ref().unwrap().schema;
        let e = c.elasticsearch.unwrap().forwarder;
        assert_eq!(e.endpoints.len(), 2);
        assert!(
            matches!(e.target, IndexTarget::DataStream { ref namespace, .. } if namespace == "prod")
        );
        assert!(matches!(e.auth, Some(Auth::Basic { .. })));
        assert_eq!(e.batch.max_bytes, 2 * 1024 * 1024);
        assert_eq!(e.batch.timeout, Duration::from_millis(250));
        assert_eq!(e.compression, Compression::None);
        assert_eq!(e.compression_level, 4);
        assert_eq!(schema, Schema::Fluentd);
        assert_eq!(c.source.lookback, Some(Duration::from_secs(86_400)));
        assert!(c.source.multiline.is_some());
        assert_eq!(c.min_level, Some(Level::Info));
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let problems = parse(
            r#"
source:
  mode: files
  max_record_bytes: huge
  colour: blue
elasticsearch:
  batch: {max_bytes: five}
  concurrency: "4"
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"source.paths"), "{problems:?}");
        assert!(paths.contains(&"source.max_record_bytes"), "{problems:?}");
        assert!(paths.contains(&"source.colour"), "{problems:?}");
        assert!(paths.contains(&"elasticsearch.endpoints"), "{problems:?}");
        assert!(
            paths.contains(&"elasticsearch.batch.max_bytes"),
            "{problems:?}"
        );
        assert!(paths.contains(&"elasticsearch.concurrency"), "{problems:?}");
        let size = problems
            .iter()
            .find(|p| p.path == "elasticsearch.batch.max_bytes")
            .unwrap();
        assert_eq!(size.message, "expected a size like \"5MiB\", got \"five\"");
    }

    #[test]
    fn document_ids_are_scoped_by_node_or_pod() {
        let c = parse("{}").unwrap();
        assert_eq!(c.id_scope, "node-1", "kubernetes mode: the node name");
        let files = "source: {mode: files, paths: [\"/logs/*.log\"]}";
        let c = Config::parse(files, |k| match k {
            "NODE_NAME" => Some("node-1".into()),
            "POD_UID" => Some("0f6e-uid".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.id_scope, "0f6e-uid", "files mode: the pod");
        let c = Config::parse(files, |k| match k {
            "HOSTNAME" => Some("task-pod-abc".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.id_scope, "task-pod-abc", "files mode without POD_UID");
    }

    #[test]
    fn quitquitquit_is_served_on_loopback_only() {
        let files = "source: {mode: files, paths: [\"/logs/*.log\"]}\n";
        let c = parse(files).unwrap();
        assert_eq!(
            c.control_listen,
            Some("127.0.0.1:2021".parse().unwrap()),
            "files mode: on by default, on loopback, not on server.listen (0.0.0.0:2020)"
        );
        let c = parse(&format!("{files}server: {{listen: 127.0.0.1:9000}}")).unwrap();
        assert_eq!(
            c.control_listen,
            Some(c.listen),
            "a loopback listen serves it too"
        );
        let c = parse("server: {quitquitquit: true, control_listen: \"[::1]:7000\"}").unwrap();
        assert_eq!(c.control_listen, Some("[::1]:7000".parse().unwrap()));
        let problems =
            parse("server: {quitquitquit: true, control_listen: 0.0.0.0:2021}").unwrap_err();
        assert_eq!(problems[0].path, "server.control_listen", "{problems:?}");
        assert!(problems[0].message.contains("loopback"), "{problems:?}");
        let c = parse(&format!("{files}server: {{quitquitquit: false}}")).unwrap();
        assert_eq!(c.control_listen, None);
    }

    #[test]
    fn log_id_template_placeholders_are_checked() {
        assert!(parse("airflow: {log_id_template: '{dag_id}_{task}'}").is_err());
        assert!(parse(
            "airflow: {log_id_template: '{dag_id}_{task_id}_{run_id}_{map_index}_{try_number}'}"
        )
        .is_ok());
    }

    const ES: &str = "elasticsearch:\n  endpoints: [\"http://127.0.0.1:9200\"]\n";

    /// Configurations at the edge of what the daemon and its libraries accept:
    /// the text (appended to a valid `elasticsearch` section where it starts
    /// with two spaces) and the key path of the problem, `None` when valid.
    /// Each library check has a case here.
    const EDGE_CASES: &[(&str, Option<&str>)] = &[
        ("filter: {min_level: info}", None),
        // logferry-elasticsearch: data stream names, index template, endpoints, limits.
        (
            "  data_stream: {dataset: my-app}",
            Some("elasticsearch.data_stream.dataset"),
        ),
        (
            "  data_stream: {namespace: Prod}",
            Some("elasticsearch.data_stream.namespace"),
        ),
        (
            "  data_stream: {type: ''}",
            Some("elasticsearch.data_stream.type"),
        ),
        (
            "  data_stream: {type: logs, dataset: kubernetes, namespace: prod}",
            None,
        ),
        (
            "  index: 'logs-{kubernetes.namespace'",
            Some("elasticsearch.index"),
        ),
        (
            "  index: 'logs-{no.such.field}'",
            Some("elasticsearch.index"),
        ),
        ("  index: 'logs-%Q'", Some("elasticsearch.index")),
        ("  index: 'logs-{kubernetes.namespace}-%Y.%m.%d'", None),
        (
            "  index: logs\n  data_stream: {}",
            Some("elasticsearch.data_stream"),
        ),
        (
            "elasticsearch: {endpoints: ['http://user:pw@es:9200']}",
            Some("elasticsearch.endpoints"),
        ),
        (
            "elasticsearch: {endpoints: ['es:9200']}",
            Some("elasticsearch.endpoints"),
        ),
        (
            "  retry: {initial_backoff: 0s}",
            Some("elasticsearch.retry.initial_backoff"),
        ),
        (
            "  retry: {initial_backoff: 2s, max_backoff: 1s}",
            Some("elasticsearch.retry.max_backoff"),
        ),
        (
            "  request_timeout: 0s",
            Some("elasticsearch.request_timeout"),
        ),
        (
            "  dead_letter_index: Dead Letters",
            Some("elasticsearch.dead_letter_index"),
        ),
        (
            "  tls: {cert_file: /c.pem}",
            Some("elasticsearch.tls.key_file"),
        ),
        (
            "  batch: {max_events: 0}",
            Some("elasticsearch.batch.max_events"),
        ),
        (
            "  batch: {max_bytes: 0}",
            Some("elasticsearch.batch.max_bytes"),
        ),
        ("  concurrency: 0", Some("elasticsearch.concurrency")),
        ("  compression_level: 6", None),
        ("  compression_level: 9", None),
        (
            "  compression_level: 0",
            Some("elasticsearch.compression_level"),
        ),
        (
            "  compression_level: 10",
            Some("elasticsearch.compression_level"),
        ),
        (
            "  compression_level: fast",
            Some("elasticsearch.compression_level"),
        ),
        // logferry-elasticsearch: the JSON-message option.
        ("json_message: {enabled: true}", None),
        (
            "json_message: {enabled: true, target: root, keep_message: false, max_bytes: 1MiB}",
            None,
        ),
        (
            "json_message: {enabled: true, key: kubernetes}",
            Some("json_message.key"),
        ),
        (
            "json_message: {enabled: true, key: app.json}",
            Some("json_message.key"),
        ),
        (
            "json_message: {enabled: true, max_depth: 50}",
            Some("json_message.max_depth"),
        ),
        (
            "json_message: {enabled: true, target: nested}",
            Some("json_message.target"),
        ),
        (
            "json_message: {enabled: true, max_fields: 0}",
            Some("json_message.max_fields"),
        ),
        // Airflow's log_id template: one parser (Python str.format braces).
        (
            "airflow: {enabled: true, log_id_template: '{dag_id}}'}",
            Some("airflow.log_id_template"),
        ),
        (
            "airflow: {enabled: true, log_id_template: '{dag_id'}",
            Some("airflow.log_id_template"),
        ),
        (
            "airflow: {enabled: true, log_id_template: '{{x}}-{dag_id}-{execution_date}'}",
            None,
        ),
        // logferry-tail.
        (
            "source: {max_deleted_files: 0}",
            Some("source.max_deleted_files"),
        ),
        ("source: {max_deleted_files: 1, max_open_files: 2}", None),
        (
            "source: {spool_min_free: 100%}",
            Some("source.spool_min_free"),
        ),
        (
            "source: {spool_min_free: lots}",
            Some("source.spool_min_free"),
        ),
        ("source: {spool_min_free: 256MiB}", None),
        ("source: {spool_min_free: 0%}", None),
        ("source: {max_open_files: 1}", Some("source.max_open_files")),
        (
            "source: {max_record_bytes: 512}",
            Some("source.max_record_bytes"),
        ),
        (
            "source: {rescan_interval: 0s}",
            Some("source.rescan_interval"),
        ),
        (
            "source: {multiline: {flush_timeout: 2s}}",
            Some("source.multiline.start_pattern"),
        ),
        (
            "source: {multiline: {start_pattern: '^x', flush_timeout: 0s}}",
            Some("source.multiline.flush_timeout"),
        ),
        ("source: {multiline: {continuation_pattern: '^\\s'}}", None),
        (
            "source: {mode: files, paths: ['logs/*.log']}",
            Some("source.paths[0]"),
        ),
        (
            "source: {mode: files, paths: ['/logs/[a.log']}",
            Some("source.paths[0]"),
        ),
        ("source: {mode: files, paths: []}", Some("source.paths")),
        ("source: {mode: files, paths: ['/logs/**/*.log']}", None),
        ("source: {include: ['a/[b/*']}", Some("source.include[0]")),
        // logferry-kube.
        (
            "kubernetes: {annotation_allowlist: ['a[']}",
            Some("kubernetes.annotation_allowlist[0]"),
        ),
        (
            "kubernetes: {exclude_annotation: ''}",
            Some("kubernetes.exclude_annotation"),
        ),
        (
            "kubernetes: {annotation_allowlist: ['prometheus.io/*']}",
            None,
        ),
        (
            "kubernetes: {label_allowlist: ['app.kubernetes.io/*', team], label_denylist: ['*-hash'], namespace_label_allowlist: [team, 'tier*']}",
            None,
        ),
        (
            "kubernetes: {label_denylist: ['x', '[']}",
            Some("kubernetes.label_denylist[1]"),
        ),
        (
            "kubernetes: {label_allowlist: ['{a']}",
            Some("kubernetes.label_allowlist[0]"),
        ),
        (
            "kubernetes: {namespace_label_allowlist: ['a[']}",
            Some("kubernetes.namespace_label_allowlist[0]"),
        ),
    ];

    fn edge_case(text: &str, data_dir: &Path) -> String {
        let body = if text.starts_with("  ") {
            format!("{ES}{text}\n")
        } else {
            format!("{text}\n")
        };
        format!("data_dir: {}\n{body}", data_dir.display())
    }

    #[test]
    fn edge_cases_are_judged_with_their_key_paths() {
        let dir = Path::new("/nonexistent");
        for (text, expected) in EDGE_CASES {
            let result = parse(&edge_case(text, dir));
            match (expected, &result) {
                (None, Ok(_)) => {}
                (Some(key), Err(problems)) => assert!(
                    problems.iter().any(|p| p.path.starts_with(key)),
                    "{text}: expected a problem at {key}, got {problems:?}"
                ),
                _ => panic!("{text}: expected {expected:?}, got {result:?}"),
            }
        }
    }

    /// validate ≡ run: every edge case `validate` accepts builds the whole
    /// pipeline (tailer, selector, pod store configuration, forwarder)
    /// without a configuration error.
    #[test]
    fn every_accepted_edge_case_builds_the_pipeline() {
        let mut accepted = 0;
        for (text, _) in EDGE_CASES {
            let dir = tempfile::tempdir().unwrap();
            let Ok(config) = parse(&edge_case(text, dir.path())) else {
                continue;
            };
            accepted += 1;
            logferry_tail::Tailer::new(
                to_tail_config(&config),
                std::sync::Arc::new(logferry_tail::NoopEvents),
            )
            .unwrap_or_else(|e| panic!("{text}: tailer: {e}"));
            crate::filter::Selector::new(&config.source.include, &config.source.exclude)
                .unwrap_or_else(|e| panic!("{text}: selector: {e}"));
            to_kube_config(&config)
                .validate()
                .unwrap_or_else(|e| panic!("{text}: pod store: {e}"));
            if let Some(es) = &config.elasticsearch {
                logferry_elasticsearch::Forwarder::new(
                    es.forwarder.clone(),
                    to_document_options(&config),
                    std::sync::Arc::new(logferry_elasticsearch::NoopEvents),
                )
                .unwrap_or_else(|e| panic!("{text}: forwarder: {e}"));
            }
        }
        assert!(accepted >= 8, "only {accepted} edge cases were accepted");
    }

    /// Each row of the README's configuration table whose default is one YAML
    /// value: setting the key to that value changes nothing.
    #[test]
    fn the_readme_defaults_are_the_defaults() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("## Configuration reference")
            .expect("README has a configuration reference");
        let baseline = |text: &str| {
            format!(
                "{:?}",
                parse(text).unwrap_or_else(|p| panic!("{text}: {p:?}"))
            )
        };
        let mut checked = 0;
        for line in readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with("| key"))
        {
            if !line.starts_with("| `") {
                if checked > 0 {
                    break;
                }
                continue;
            }
            let cells: Vec<&str> = line.split(" | ").collect();
            let key = cells[0].trim_start_matches("| ").trim_matches('`');
            let default = cells[1];
            if !(default.starts_with('`')
                && default.ends_with('`')
                && default.matches('`').count() == 2)
            {
                continue;
            }
            let value = default.trim_matches('`');
            let yaml_value: serde_yaml_ng::Value = serde_yaml_ng::from_str(value)
                .unwrap_or_else(|_| serde_yaml_ng::Value::String(value.to_owned()));
            let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(ES).unwrap();
            let mut at = &mut doc;
            let mut path: Vec<&str> = key.split('.').collect();
            let leaf = path.pop().unwrap();
            for p in path {
                let map = at.as_mapping_mut().unwrap();
                if !map.contains_key(p) {
                    map.insert(p.into(), serde_yaml_ng::Mapping::new().into());
                }
                at = map.get_mut(p).unwrap();
            }
            at.as_mapping_mut().unwrap().insert(leaf.into(), yaml_value);
            let text = serde_yaml_ng::to_string(&doc).unwrap();
            assert_eq!(
                baseline(&text),
                baseline(ES),
                "README default of {key}: {value}"
            );
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} README defaults were checked");
    }

    #[test]
    fn airflow_task_comes_from_the_environment_or_is_absent() {
        let text = "airflow:\n  enabled: true\n  task:\n    dag_id: ${AIRFLOW_DAG_ID:-}\n    task_id: ${AIRFLOW_TASK_ID:-}\n    run_id: '${AIRFLOW_RUN_ID:-}'\n    try_number: ${AIRFLOW_TRY_NUMBER:-}\n";
        let env = |k: &str| match k {
            "AIRFLOW_DAG_ID" => Some("etl".to_owned()),
            "AIRFLOW_TASK_ID" => Some("load".to_owned()),
            "AIRFLOW_RUN_ID" => Some("manual__2026-11-22T13:40:00+00:00".to_owned()),
            "AIRFLOW_TRY_NUMBER" => Some("2".to_owned()),
            _ => None,
        };
        let c = Config::parse(text, env).unwrap();
        let t = c.airflow.task.unwrap();
        assert_eq!(
            (
                t.dag_id.as_str(),
                t.run_id.as_str(),
                t.try_number.as_str(),
                t.map_index.as_str()
            ),
            ("etl", "manual__2026-11-22T13:40:00+00:00", "2", "-1")
        );
        // Outside an Airflow pod the variables are unset: no task, no error.
        assert!(parse(text).unwrap().airflow.task.is_none());
        let problems = parse("airflow: {task: {dag_id: etl}}").unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "airflow.task.task_id",
                "airflow.task.run_id",
                "airflow.task.try_number"
            ]
        );
    }
}
