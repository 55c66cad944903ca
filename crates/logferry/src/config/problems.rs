//! The libraries' own checks (`problems()` of the tailer, pod store,
//! forwarder and JSON-message configurations) run on exactly the
//! configurations the daemon builds, so `validate` accepts only what `run`
//! can start.

use super::convert::{to_kube_config, to_tail_config};
use super::reader::Problems;
use super::{Config, SourceMode};
use logferry_core::ConfigProblem;
use logferry_elasticsearch::Schema;

/// Appends the problems the libraries find in the configurations the daemon
/// builds from `config` (exactly those `run` builds), each under its section's
/// key path; a library problem at a key the reader already reported is not
/// repeated.
pub(super) fn library_problems(config: &Config, p: &mut Problems) {
    let mut add = |prefix: &str, problems: Vec<ConfigProblem>| {
        for lib in problems {
            let path = format!("{prefix}.{}", lib.key);
            if !p.0.iter().any(|known| known.path == path) {
                p.push(&path, lib.message);
            }
        }
    };
    // NATS mode runs no tailer (`source.nats` is checked as it is read).
    if config.source.mode != SourceMode::Nats {
        add("source", to_tail_config(config).problems());
    }
    if config.source.mode == SourceMode::Kubernetes && config.kubernetes.enabled {
        add("kubernetes", to_kube_config(config).problems());
    }
    if let Some(es) = &config.elasticsearch {
        add("elasticsearch", es.forwarder.problems());
    }
    if let Some(json) = &config.json_message {
        let schema = config
            .elasticsearch
            .as_ref()
            .map_or(Schema::Ecs, |e| e.schema);
        add("json_message", json.problems(schema));
    }
}
