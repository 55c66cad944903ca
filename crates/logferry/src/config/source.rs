//! `source`: what to read (kubelet's layout, globbed files, or NATS), where
//! reading starts, multiline joining and the tailer's limits. Defaults are the
//! tailer's own (`TailConfig::files`); its range checks run afterwards
//! (see `problems.rs`).

use super::reader::{self, Problems, Section};
use super::{nats, Source, SourceMode};
use logferry_tail::{MinFree, MultilineConfig, ReadFrom, TailConfig};
use regex::Regex;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn check_globs(section: &Section<'_>, key: &str, globs: &[String], p: &mut Problems) {
    for (i, g) in globs.iter().enumerate() {
        if let Err(e) = globset::Glob::new(g) {
            p.push(
                &format!("{}[{i}]", section.path_of(key)),
                format!("invalid glob {g:?}: {e}"),
            );
        }
    }
}

fn regex_value(v: &serde_yaml_ng::Value) -> Result<Regex, String> {
    let s = v.as_str().ok_or("expected a regular expression string")?;
    Regex::new(s).map_err(|e| format!("invalid regular expression: {e}"))
}

pub(super) fn read_source(
    mut s: Section<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems,
) -> Source {
    // The tailer's own defaults (its checks run on the result, see `library_problems`).
    let d = TailConfig::files(Vec::new(), PathBuf::new());
    let mode = s
        .choice(
            "mode",
            p,
            &[
                ("kubernetes", SourceMode::Kubernetes),
                ("files", SourceMode::Files),
                ("nats", SourceMode::Nats),
            ],
        )
        .unwrap_or(SourceMode::Kubernetes);
    let paths = s.strings("paths", p).unwrap_or_default();
    if mode == SourceMode::Files && paths.is_empty() {
        p.push(
            &s.path_of("paths"),
            "required when source.mode is files: at least one glob",
        );
    }
    let is_nats = mode == SourceMode::Nats;
    // NATS mode: subject patterns (checked by the NATS configuration), all by default.
    let include = s.strings("include", p).unwrap_or_else(|| {
        if is_nats {
            Vec::new()
        } else {
            vec!["*/*/*".into()]
        }
    });
    let exclude = s.strings("exclude", p).unwrap_or_default();
    if !is_nats {
        check_globs(&s, "include", &include, p);
        check_globs(&s, "exclude", &exclude, p);
    }
    let nats_section = s.section("nats", p);
    let nats = if is_nats {
        Some(nats::read_source(
            nats_section,
            include.clone(),
            exclude.clone(),
            env,
            p,
        ))
    } else {
        if nats_section.is_present() {
            p.push(&s.path_of("nats"), "only used with mode: nats");
        }
        None
    };
    let lookback_path = s.path_of("lookback");
    let lookback = match s.raw("lookback") {
        None => None,
        Some(serde_yaml_ng::Value::String(v)) => match reader::parse_duration(v) {
            Ok(d) => Some(d),
            Err(m) => {
                p.push(&lookback_path, m);
                None
            }
        },
        Some(other) => {
            p.push(
                &lookback_path,
                format!("expected a duration like \"P1D\" or null, got {other:?}"),
            );
            None
        }
    };
    let mut ml = s.section("multiline", p);
    let multiline = if ml.is_present() {
        let start_pattern = ml.get("start_pattern", p, regex_value);
        let continuation_pattern = ml.get("continuation_pattern", p, regex_value);
        let flush_timeout = ml
            .duration("flush_timeout", p)
            .unwrap_or(Duration::from_secs(1));
        Some(MultilineConfig {
            start_pattern,
            continuation_pattern,
            flush_timeout,
        })
    } else {
        None
    };
    ml.finish(p);
    let source = Source {
        mode,
        pods_dir: s
            .string("pods_dir", p)
            .map(PathBuf::from)
            .unwrap_or_else(|| "/var/log/pods".into()),
        containers_dir: s
            .string("containers_dir", p)
            .map(PathBuf::from)
            .unwrap_or_else(|| "/var/log/containers".into()),
        docker_containers_dir: s
            .string("docker_containers_dir", p)
            .map(PathBuf::from)
            .unwrap_or_else(|| "/var/lib/docker/containers".into()),
        paths,
        include,
        exclude,
        read_from: s
            .choice(
                "read_from",
                p,
                &[("beginning", ReadFrom::Beginning), ("end", ReadFrom::End)],
            )
            .unwrap_or(d.read_from),
        lookback,
        max_record_bytes: s
            .size("max_record_bytes", p)
            .unwrap_or(d.max_record_bytes as u64),
        multiline,
        rescan_interval: s
            .duration("rescan_interval", p)
            .unwrap_or(d.rescan_interval),
        max_open_files: s.positive("max_open_files", p).unwrap_or(d.max_open_files),
        max_deleted_files: s
            .positive("max_deleted_files", p)
            .unwrap_or(d.max_deleted_files),
        max_deleted_bytes: s
            .size("max_deleted_bytes", p)
            .unwrap_or(d.max_deleted_bytes),
        spool_min_free: s
            .get("spool_min_free", p, min_free_value)
            .unwrap_or(d.spool_min_free),
        nats,
    };
    if source.max_record_bytes < 1024 {
        p.push(&s.path_of("max_record_bytes"), "must be at least 1KiB");
    }
    s.finish(p);
    source
}

/// `source.spool_min_free`: a percentage of the filesystem (`"10%"`) or a
/// size (`"256MiB"`, a number of bytes). The range of a percentage is the
/// tailer's check (`TailConfig::problems`).
fn min_free_value(v: &serde_yaml_ng::Value) -> Result<MinFree, String> {
    let expected =
        || format!("expected a percentage like \"10%\" or a size like \"256MiB\", got {v:?}");
    match v {
        serde_yaml_ng::Value::Number(n) => n.as_u64().map(MinFree::Bytes).ok_or_else(expected),
        serde_yaml_ng::Value::String(t) => match t.trim().strip_suffix('%') {
            Some(pct) => pct
                .trim()
                .parse::<u8>()
                .map(MinFree::Percent)
                .map_err(|_| expected()),
            None => t
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| MinFree::Bytes(b.as_u64()))
                .map_err(|_| expected()),
        },
        _ => Err(expected()),
    }
}
