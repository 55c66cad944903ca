//! End-to-end: `logferry verify` against the Elasticsearch double, after a
//! real shipment: it finds every marked line (exit 0), then reports the
//! document removed behind its back as missing (exit 3).

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

const LINES: usize = 1500;

fn verify(es: &str, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(binary())
        .args(["verify", "--endpoint", es])
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn verify_counts_marked_lines_and_reports_a_missing_one() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    // A plain index, not the default data stream: the test deletes a
    // document behind logferry's back, and a bulk `delete` into a data
    // stream is refused (only `create` is allowed there).
    let setup = FilesSetup::new(&format!(
        "elasticsearch: {{endpoints: [\"{}\"], index: verify-logs, batch: {{timeout: 100ms}}}}",
        es.url()
    ));
    let mut f = std::fs::File::create(setup.logs.join("app.log")).unwrap();
    for i in 1..=LINES {
        writeln!(f, "verify-run-42 {i} payload").unwrap();
    }
    f.flush().unwrap();
    let mut daemon = setup.start(&["--once"]);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(60)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
    assert_eq!(es.document_count(), LINES);

    let (code, text) = verify(
        &es.url(),
        &["--marker", "verify-run-42", "--expect", &LINES.to_string()],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("documents found: {LINES}")),
        "{text}"
    );

    // Remove line 700 behind logferry's back.
    let victim = es
        .all_documents()
        .into_iter()
        .find(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d.source).unwrap();
            v["message"] == "verify-run-42 700 payload"
        })
        .expect("line 700 was shipped");
    let (status, body) = http_body(
        es.addr(),
        "POST",
        "/_bulk",
        &format!(
            "{{\"delete\":{{\"_index\":\"{}\",\"_id\":\"{}\"}}}}\n",
            victim.index, victim.id
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (code, text) = verify(
        &es.url(),
        &["--marker", "verify-run-42", "--expect", &LINES.to_string()],
    );
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("missing sequence values: 1 [700]"), "{text}");
}
