//! One table per mode, printed as Markdown (so it can be pasted into the README), and the JSON
//! written with `--json-out`.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// A two-column table: metric, value.
#[derive(Clone, Debug)]
pub struct Table {
    title: String,
    rows: Vec<(String, String)>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, metric: impl Into<String>, value: impl Into<String>) {
        self.rows.push((metric.into(), value.into()));
    }

    /// Markdown text.
    pub fn render(&self) -> String {
        let mut s = format!("### {}\n\n| metric | value |\n|---|---|\n", self.title);
        for (m, v) in &self.rows {
            s.push_str(&format!("| {m} | {v} |\n"));
        }
        s
    }
}

/// Writes `value` as pretty JSON to `path` (parent directories created).
///
/// # Errors
/// The file cannot be written.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))
}

/// The summary table of `all`: one row per run, built from the runs' JSON.
pub fn summary(runs: &[serde_json::Value]) -> Table {
    let f = |v: &serde_json::Value, k: &str, d: usize| {
        v[k].as_f64()
            .map_or("–".to_string(), |x| format!("{x:.d$}"))
    };
    let mut t = Table::new("summary");
    for r in runs {
        match r["mode"].as_str().unwrap_or("") {
            "throughput" => t.row(
                format!("throughput {} files, gzip {}", r["files"], if r["gzip"] == true { "on" } else { "off" }),
                format!(
                    "{} MB/CPU-s; {} s wall, {} CPU s, {} MB/s, {} lines/s; peak RSS {} MiB; documents {} / duplicates {} / missing {}",
                    f(r, "mb_per_cpu_second", 1),
                    f(r, "wall_seconds", 2),
                    f(r, "cpu_seconds", 2),
                    f(r, "mb_per_second", 1),
                    f(r, "lines_per_second", 0),
                    f(r, "peak_rss_mib", 1),
                    r["documents"],
                    if r["duplicates"].is_null() { "n/a".to_string() } else { r["duplicates"].to_string() },
                    r["missing"]
                ),
            ),
            "idle" => t.row(
                format!("idle {} files", r["files"]),
                format!("{} CPU s in {} s quiet; RSS {} MiB (peak {} MiB)", f(r, "window_cpu_seconds", 3), f(r, "window_seconds", 0), f(r, "rss_mib", 1), f(r, "peak_rss_mib", 1)),
            ),
            "live" => t.row(
                format!("live {} MB/s, {} files", f(r, "target_mb_per_second", 1), r["files"]),
                format!(
                    "delay p50 {} ms, p99 {} ms, max {} ms; {} CPU s per MB ({} MB/CPU-s); {} rotations; missing {} / duplicates {}; peak RSS {} MiB",
                    f(r, "delay_p50_ms", 0),
                    f(r, "delay_p99_ms", 0),
                    f(r, "delay_max_ms", 0),
                    f(r, "cpu_seconds_per_mb", 4),
                    f(r, "mb_per_cpu_second", 1),
                    r["rotations"],
                    r["missing"],
                    r["duplicates"],
                    f(r, "peak_rss_mib", 1)
                ),
            ),
            "es-ceiling" => t.row(
                "es-ceiling (the double alone)",
                format!("{} docs/s, {} MB/s of bulk bodies; {} docs per double CPU-second", f(r, "docs_per_second", 0), f(r, "mb_per_second", 1), f(r, "docs_per_double_cpu_second", 0)),
            ),
            other => t.row(other.to_string(), r.to_string()),
        }
    }
    t
}
