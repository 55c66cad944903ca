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
