//! `logferry verify`: an end-to-end check against a live Elasticsearch.
//!
//! Two ways to select records:
//! * `--log-id ID`: an Airflow task log (the query Airflow's handler runs:
//!   `match_phrase` on `log_id`, sorted by `offset`). Offsets must be unique;
//!   when they are line numbers (Airflow 3) they must also be `1..=N` without gaps.
//! * `--marker TEXT`: every document whose `message` contains TEXT. When the
//!   marker is followed by a number (`TEXT 17`, `TEXT=17`, `TEXT-17`), the
//!   numbers must form a contiguous range without repeats: this is how test
//!   writers number their lines.
//!
//! `--expect N` additionally requires exactly N documents. The summary goes to
//! stdout; the exit code is 0 when nothing is missing or duplicated, 3 when
//! something is, 2 when the check itself failed (Elasticsearch unreachable).

use anyhow::{bail, Context};
use elasticsearch::http::transport::Transport;
use elasticsearch::{Elasticsearch, SearchParts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Page size of each `_search`.
const PAGE: usize = 1000;

/// Arguments of `logferry verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Elasticsearch base URL.
    #[arg(long, default_value = "http://127.0.0.1:9200")]
    pub endpoint: String,
    /// Index, alias, data stream or pattern to search.
    #[arg(long, default_value = "*")]
    pub index: String,
    /// Select documents whose `message` contains this text.
    #[arg(long, conflicts_with = "log_id", required_unless_present = "log_id")]
    pub marker: Option<String>,
    /// Select an Airflow task log by its `log_id`.
    #[arg(long)]
    pub log_id: Option<String>,
    /// Field holding Airflow's offset.
    #[arg(long, default_value = "offset")]
    pub offset_field: String,
    /// Require exactly this many documents.
    #[arg(long)]
    pub expect: Option<u64>,
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    /// What was looked for.
    pub selector: String,
    /// Documents found.
    pub found: u64,
    /// Documents required by `--expect`.
    pub expected: Option<u64>,
    /// Sequence values (offsets or marker numbers) seen more than once.
    pub duplicates: Vec<i64>,
    /// Missing sequence values (first few).
    pub gaps: Vec<i64>,
    /// Number of missing sequence values in all.
    pub missing: u64,
    /// Whether sequence numbers were checked at all.
    pub sequence_checked: bool,
}

impl Report {
    /// True when nothing is missing or duplicated.
    pub fn ok(&self) -> bool {
        self.duplicates.is_empty()
            && self.missing == 0
            && self.expected.is_none_or(|e| e == self.found)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "selector: {}", self.selector)?;
        writeln!(f, "documents found: {}", self.found)?;
        if let Some(e) = self.expected {
            writeln!(f, "documents expected: {e}")?;
        }
        if self.sequence_checked {
            writeln!(
                f,
                "duplicated sequence values: {} {:?}",
                self.duplicates.len(),
                &self.duplicates[..self.duplicates.len().min(10)]
            )?;
            writeln!(
                f,
                "missing sequence values: {} {:?}",
                self.missing, self.gaps
            )?;
        } else {
            writeln!(f, "sequence: not checked (no numbers to check)")?;
        }
        write!(
            f,
            "result: {}",
            if self.ok() {
                "OK"
            } else {
                "LOSS OR DUPLICATES FOUND"
            }
        )
    }
}

fn field<'a>(source: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = source.get(path) {
        return Some(v);
    }
    path.split('.').try_fold(source, |v, k| v.get(k))
}

/// The number right after `marker` in `message`, if any (`m 17`, `m=17`, `m-17`, `m:17`).
fn number_after(message: &str, marker: &str) -> Option<i64> {
    let at = message.find(marker)? + marker.len();
    let rest = message[at..].trim_start_matches([' ', '=', '-', ':', '#']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Runs the check.
///
/// # Errors
/// Elasticsearch unreachable or answering with an error.
pub async fn verify(args: Args) -> anyhow::Result<Report> {
    let transport = Transport::single_node(&args.endpoint)
        .with_context(|| format!("invalid --endpoint {}", args.endpoint))?;
    let client = Elasticsearch::new(transport);
    let (query, sort_field, selector) = match (&args.marker, &args.log_id) {
        (Some(m), _) => (
            json!({"match_phrase": {"message": m}}),
            None,
            format!("message contains {m:?}"),
        ),
        (None, Some(id)) => (
            json!({"match_phrase": {"log_id": id}}),
            Some(args.offset_field.clone()),
            format!("log_id = {id:?}"),
        ),
        (None, None) => bail!("give --marker or --log-id"),
    };
    let mut sequence: Vec<i64> = Vec::new();
    let mut found = 0u64;
    let mut search_after: Option<Value> = None;
    let mut from = 0usize;
    loop {
        let mut body = json!({"query": query, "size": PAGE});
        if let Some(f) = &sort_field {
            body["sort"] = json!([{ f.as_str(): "asc" }]);
            if let Some(after) = &search_after {
                body["search_after"] = after.clone();
            }
        } else {
            body["from"] = json!(from);
        }
        let response = client
            .search(SearchParts::Index(&[args.index.as_str()]))
            .body(body)
            .send()
            .await
            .with_context(|| format!("search on {} failed", args.endpoint))?;
        let status = response.status_code();
        let page: Value = response
            .json()
            .await
            .context("unreadable search response")?;
        if !status.is_success() {
            bail!("search answered {status}: {page}");
        }
        let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
        for hit in &hits {
            found += 1;
            let source = &hit["_source"];
            let value = match (&args.marker, &sort_field) {
                (_, Some(f)) => {
                    field(source, f).and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
                }
                (Some(m), None) => field(source, "message")
                    .and_then(Value::as_str)
                    .and_then(|msg| number_after(msg, m)),
                _ => None,
            };
            if let Some(v) = value {
                sequence.push(v);
            }
        }
        if hits.len() < PAGE {
            break;
        }
        if sort_field.is_some() {
            search_after = hits.last().and_then(|h| h.get("sort")).cloned();
            if search_after.is_none() {
                bail!("search response without sort values: cannot page further");
            }
        } else {
            from += hits.len();
        }
    }
    let mut report = Report {
        selector,
        found,
        expected: args.expect,
        ..Report::default()
    };
    check_sequence(&mut report, sequence, args.log_id.is_some());
    Ok(report)
}

/// Fills duplicates and gaps. For Airflow offsets, gaps are only meaningful
/// when the offsets are line numbers (they start at 1 and stay below the
/// count times two); nanosecond offsets (Airflow 2) are checked for repeats only.
fn check_sequence(report: &mut Report, sequence: Vec<i64>, airflow: bool) {
    if sequence.is_empty() {
        return;
    }
    report.sequence_checked = true;
    let mut counts: BTreeMap<i64, u32> = BTreeMap::new();
    for v in &sequence {
        *counts.entry(*v).or_default() += 1;
    }
    report.duplicates = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(v, _)| *v)
        .collect();
    let (min, max) = (
        *counts.keys().next().unwrap_or(&0),
        *counts.keys().last().unwrap_or(&0),
    );
    let line_numbers = !airflow || (min >= 1 && max <= 2 * sequence.len() as i64 + 1);
    if line_numbers {
        let start = if airflow { 1 } else { min };
        for v in start..=max {
            if !counts.contains_key(&v) {
                report.missing += 1;
                if report.gaps.len() < 20 {
                    report.gaps.push(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_after_markers() {
        assert_eq!(number_after("x run-7 17 tail", "run-7"), Some(17));
        assert_eq!(number_after("run-7=3", "run-7"), Some(3));
        assert_eq!(number_after("nothing", "run-7"), None);
    }

    #[test]
    fn sequences_find_gaps_and_duplicates() {
        let mut r = Report::default();
        check_sequence(&mut r, vec![1, 2, 2, 4, 5], false);
        assert_eq!(r.duplicates, vec![2]);
        assert_eq!(r.gaps, vec![3]);
        assert!(!r.ok());
        let mut ok = Report::default();
        check_sequence(
            &mut ok,
            vec![1_700_000_000_000_000_000, 1_700_000_000_000_000_007],
            true,
        );
        assert!(ok.ok(), "nanosecond offsets are checked for repeats only");
    }
}
