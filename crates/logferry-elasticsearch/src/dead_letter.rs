//! Dead letters: documents Elasticsearch refused for good (non-retryable item
//! errors such as `mapper_parsing_exception`) are never dropped.
//!
//! First they are written to the dead-letter index, with the `create` op and
//! the original `_id`, as
//!
//! ```json
//! {"@timestamp":"<when it was dead-lettered>",
//!  "error":{"type":"mapper_parsing_exception","message":"failed to parse …","code":"400"},
//!  "event":{"original":"<the original document as a string>"},
//!  "elasticsearch":{"index":"<the index it was meant for>","id":"<its _id>"}}
//! ```
//!
//! If the dead-letter index refuses that document too, one JSON line is
//! appended (and synced) to `<dead_letter_dir>/dead-letter.ndjson`:
//! `{"@timestamp":…,"error":{…},"document":"<the refused document as a string>"}`.

use crate::config::DeadLetterFileConfig;
use crate::error::Error;
use crate::json::{write_str, write_timestamp, write_u64};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// File name of the dead-letter file inside `dead_letter_dir`.
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn write_error(out: &mut Vec<u8>, status: u16, kind: &str, reason: &str) {
    out.extend_from_slice(b"\"error\":{\"type\":");
    write_str(out, kind.as_bytes());
    out.extend_from_slice(b",\"message\":");
    write_str(out, reason.as_bytes());
    out.extend_from_slice(b",\"code\":\"");
    write_u64(out, u64::from(status));
    out.extend_from_slice(b"\"}");
}

/// Why Elasticsearch refused a document.
pub(crate) struct Refusal<'a> {
    /// The index the document was meant for.
    pub index: &'a str,
    /// Its `_id`.
    pub id: &'a str,
    /// The item status.
    pub status: u16,
    /// The error type (`mapper_parsing_exception`).
    pub kind: &'a str,
    /// The error reason.
    pub reason: &'a str,
}

/// Appends a bulk item (action line, document, `\n`) that puts `doc` into the
/// dead-letter index. Returns the document's range in `out`.
pub(crate) fn encode_item(
    out: &mut Vec<u8>,
    dead_letter_index: &str,
    refusal: &Refusal<'_>,
    doc: &[u8],
) -> std::ops::Range<usize> {
    let Refusal {
        index,
        id,
        status,
        kind,
        reason,
    } = *refusal;
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    write_str(out, dead_letter_index.as_bytes());
    if !id.is_empty() {
        out.extend_from_slice(b",\"_id\":");
        write_str(out, id.as_bytes());
    }
    out.extend_from_slice(b"}}\n");
    let start = out.len();
    out.extend_from_slice(b"{\"@timestamp\":");
    write_timestamp(out, now_nanos());
    out.push(b',');
    write_error(out, status, kind, reason);
    out.extend_from_slice(b",\"event\":{\"original\":");
    write_str(out, doc);
    out.extend_from_slice(b"},\"elasticsearch\":{\"index\":");
    write_str(out, index.as_bytes());
    out.extend_from_slice(b",\"id\":");
    write_str(out, id.as_bytes());
    out.extend_from_slice(b"}}");
    let end = out.len();
    out.push(b'\n');
    start..end
}

/// One line of the dead-letter file.
pub(crate) fn file_line(status: u16, kind: &str, reason: &str, doc: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(doc.len() + 256);
    out.extend_from_slice(b"{\"@timestamp\":");
    write_timestamp(&mut out, now_nanos());
    out.push(b',');
    write_error(&mut out, status, kind, reason);
    out.extend_from_slice(b",\"document\":");
    write_str(&mut out, doc);
    out.extend_from_slice(b"}\n");
    out
}

/// Appends `lines` to the dead-letter file in `dir` and syncs it, rotating
/// it first when the write would take it past `limits.max_bytes`.
///
/// # Errors
///
/// [`Error::DeadLetterFile`] when the directory or file cannot be written,
/// [`Error::DeadLetterFull`] when every rotation slot is taken (nothing is
/// written then).
pub(crate) fn append_to_file(
    dir: &Path,
    lines: &[u8],
    limits: DeadLetterFileConfig,
) -> Result<PathBuf, Error> {
    let path = dir.join(DEAD_LETTER_FILE);
    let io = |source| Error::DeadLetterFile {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io(e)),
    };
    if size > 0 && size + lines.len() as u64 > limits.max_bytes {
        let rotated = |n: usize| dir.join(format!("{DEAD_LETTER_FILE}.{n}"));
        let last = limits.max_files.saturating_sub(1);
        if last == 0 || rotated(last).exists() {
            return Err(Error::DeadLetterFull {
                path: path.clone(),
                max_bytes: limits.max_bytes,
                max_files: limits.max_files,
            });
        }
        // Shift .1 → .2 … (the highest free slot first), then the current → .1.
        let mut n = (1..last).rev().find(|&n| rotated(n).exists()).unwrap_or(0);
        while n >= 1 {
            std::fs::rename(rotated(n), rotated(n + 1)).map_err(io)?;
            n -= 1;
        }
        std::fs::rename(&path, rotated(1)).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(lines).map_err(io)?;
    f.sync_data().map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_documents_are_valid_json() {
        let mut out = Vec::new();
        let refusal = Refusal {
            index: "logs-1",
            id: "abc",
            status: 400,
            kind: "mapper_parsing_exception",
            reason: "bad \"x\"",
        };
        let r = encode_item(&mut out, "dlq", &refusal, br#"{"message":"hi\n"}"#);
        let mut lines = out.split(|&b| b == b'\n');
        let action: serde_json::Value = serde_json::from_slice(lines.next().unwrap()).unwrap();
        assert_eq!(action["create"]["_index"], "dlq");
        assert_eq!(action["create"]["_id"], "abc");
        let doc: serde_json::Value = serde_json::from_slice(&out[r]).unwrap();
        assert_eq!(doc["error"]["type"], "mapper_parsing_exception");
        assert_eq!(doc["error"]["message"], "bad \"x\"");
        assert_eq!(doc["event"]["original"], r#"{"message":"hi\n"}"#);
        assert_eq!(doc["elasticsearch"]["index"], "logs-1");
        let dir = tempfile::tempdir().unwrap();
        let limits = DeadLetterFileConfig::default();
        append_to_file(dir.path(), &file_line(413, "too_large", "r", b"{}"), limits).unwrap();
        append_to_file(dir.path(), &file_line(400, "x", "r", b"{}"), limits).unwrap();
        let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["document"], "{}");
        }
    }

    /// Regression (issue 10, item 4): the dead-letter file grew without bound
    /// on the node's disk. Now it rotates at `max_bytes`, keeps `max_files`
    /// files, and refuses to write (never deletes a dead letter) when full.
    #[test]
    fn the_dead_letter_file_rotates_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limits = DeadLetterFileConfig {
            max_bytes: 1000,
            max_files: 3,
        };
        let line = file_line(400, "mapper_parsing_exception", "r", &[b'x'; 300]);
        let mut written = 0;
        let full = loop {
            match append_to_file(dir.path(), &line, limits) {
                Ok(_) => written += 1,
                Err(e) => break e,
            }
            assert!(written < 100, "never full");
        };
        assert!(
            matches!(full, Error::DeadLetterFull { max_files: 3, .. }),
            "{full:?}"
        );
        assert!(full.is_retryable(), "retried once space is made");
        let mut total = 0;
        let mut lines = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.len() as u64 <= limits.max_bytes, "{}", path.display());
            total += text.len() as u64;
            lines += text.lines().count();
        }
        assert_eq!(lines, written, "every written dead letter is kept");
        assert!(total <= limits.max_bytes * limits.max_files as u64);
        assert!(dir.path().join("dead-letter.ndjson.2").exists());
        assert!(!dir.path().join("dead-letter.ndjson.3").exists());
        // The operator moves the rotated copies away: writing resumes.
        std::fs::remove_file(dir.path().join("dead-letter.ndjson.2")).unwrap();
        append_to_file(dir.path(), &line, limits).unwrap();
    }
}
