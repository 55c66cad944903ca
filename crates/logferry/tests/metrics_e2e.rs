//! End-to-end: observability. logferry ships into the Elasticsearch double;
//! its `/metrics` passes `promtool check metrics`, exports exactly the metric
//! families the chart's dashboard and alerts rely on
//! (`tests/chart/exported-metrics.txt`), and a real Prometheus server scrapes
//! it: `up == 1` and the shipped-records counter equals what the double holds.
//!
//! Needs `promtool` and `prometheus` (Debian's `prometheus` package; CI
//! installs it through `tests/install-tools.sh`).

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

const LINES: usize = 4000;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} not found: run tests/install-tools.sh (installs Debian's prometheus package)"
    );
    String::from_utf8(found.stdout).unwrap().trim().to_owned()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The single value of an instant query, if the result has exactly one sample.
fn prom_query(prom: SocketAddr, query: &str) -> Option<f64> {
    let (status, body) = http(
        prom,
        "GET",
        &format!("/api/v1/query?query={}", urlencode(query)),
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_scrapes_them() {
    let promtool = tool("promtool");
    let prometheus = tool("prometheus");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();

    let setup = FilesSetup::new(&format!(
        "node_name: metrics-test\nelasticsearch: {{endpoints: [\"{}\"], batch: {{max_events: 500, timeout: 100ms}}}}",
        es.url()
    ));
    let (dir, logs, admin) = (setup.dir.path(), &setup.logs, setup.admin);
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(20));
    let mut f = std::fs::File::create(logs.join("app.log")).unwrap();
    for i in 0..LINES {
        writeln!(f, "INFO metrics line {i}").unwrap();
    }
    f.flush().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || es.document_count() >= LINES),
        "double holds {} of {LINES}; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );

    // promtool's linter on the real exposition.
    let (_, text) = http(admin, "GET", "/metrics").unwrap();
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Exactly the families the chart's dashboard and alerts rely on.
    let listed =
        std::fs::read_to_string(repo_root().join("tests/chart/exported-metrics.txt")).unwrap();
    let mut expected: Vec<(String, String)> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
        })
        .collect();
    expected.sort();
    let mut exported: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
        })
        .collect();
    exported.sort();
    assert_eq!(
        exported, expected,
        "/metrics families vs tests/chart/exported-metrics.txt"
    );

    // A real Prometheus scrapes it.
    let prom_port = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();
    let prom_config = dir.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: logferry\n    static_configs: [{{targets: ['{admin}']}}]\n"
        ),
    )
    .unwrap();
    let prom_log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let mut prom = Command::new(&prometheus)
        .arg(format!("--config.file={}", prom_config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(prom_log)
        .spawn()
        .unwrap();
    let shipped = es.document_count() as f64;
    let up = wait_for(Duration::from_secs(60), || {
        prom_query(prom_addr, "up{job=\"logferry\"}") == Some(1.0)
            && prom_query(
                prom_addr,
                "logferry_elasticsearch_sent_records_total{job=\"logferry\"}",
            ) == Some(shipped)
    });
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(
        up,
        "Prometheus did not see up == 1 and sent_records == {shipped}: up={:?} sent={:?}\nprometheus log tail:\n{}",
        prom_query(prom_addr, "up"),
        prom_query(prom_addr, "logferry_elasticsearch_sent_records_total"),
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(shipped as usize, LINES, "exactly once in the double");

    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

/// The metrics an SRE alerts on move: `logferry_pipeline_lag_seconds` is 0
/// while nothing is outstanding, grows while Elasticsearch refuses every bulk
/// request, and returns to 0 once everything is delivered;
/// `logferry_tail_paused` becomes 1 once the pipeline's in-flight bound is
/// full (channels between the stages, the forwarder's requests) and
/// `logferry_tail_paused_seconds_total` counts the time; the process metrics
/// are the daemon's own.
#[test]
fn lag_and_backpressure_metrics_move_when_elasticsearch_is_down() {
    // The bound between the tailer and Elasticsearch is counted in batches of
    // up to 1,000 records: two stage channels of 16 batches, the tailer's
    // outbox (one 256 KiB read round), the forwarder's requests. Short lines
    // fill it with a small file.
    const LINES: usize = 100_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    es.faults().update(|f| {
        f.request_error_rate = 1.0;
        f.request_error_statuses = vec![503];
    });
    let setup = FilesSetup::new(&format!(
        "node_name: metrics-test\nelasticsearch: {{endpoints: [\"{}\"], concurrency: 1, \
         batch: {{max_events: 500, timeout: 50ms}}, retry: {{initial_backoff: 100ms, max_backoff: 500ms}}}}",
        es.url()
    ));
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(20));
    let scrape = || {
        let (_, text) = http(setup.admin, "GET", "/metrics").unwrap();
        text
    };
    let text = scrape();
    for family in [
        "logferry_pipeline_lag_seconds",
        "logferry_tail_paused",
        "logferry_tail_paused_seconds_total",
    ] {
        assert!(
            text.lines().any(|l| l == format!("{family} 0")),
            "{family} not at 0 before anything was read:\n{text}"
        );
    }
    // The process collector reads /proc/self: this process's figures.
    assert!(
        text.lines()
            .any(|l| l.starts_with("process_cpu_seconds_total ")),
        "process_cpu_seconds_total in\n{text}"
    );
    for family in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(metric_sum(&text, family) > 0.0, "{family} in\n{text}");
    }

    let mut f = std::fs::File::create(setup.logs.join("app.log")).unwrap();
    for i in 0..LINES {
        writeln!(f, "INFO line {i}").unwrap();
    }
    f.flush().unwrap();

    assert!(
        wait_for(Duration::from_secs(120), || {
            let t = scrape();
            metric_sum(&t, "logferry_tail_paused") == 1.0
                && metric_sum(&t, "logferry_pipeline_lag_seconds") > 0.0
        }),
        "reading never paused with Elasticsearch down: {}\nstderr:\n{}",
        scrape(),
        daemon.stderr()
    );
    let (lag1, paused1) = {
        let t = scrape();
        (
            metric_sum(&t, "logferry_pipeline_lag_seconds"),
            metric_sum(&t, "logferry_tail_paused_seconds_total"),
        )
    };
    std::thread::sleep(Duration::from_secs(2));
    let t = scrape();
    let (lag2, paused2) = (
        metric_sum(&t, "logferry_pipeline_lag_seconds"),
        metric_sum(&t, "logferry_tail_paused_seconds_total"),
    );
    assert!(
        lag2 >= lag1 + 1.0,
        "lag grows while stuck: {lag1} -> {lag2}"
    );
    assert!(
        paused2 >= paused1 + 1.0,
        "paused seconds grow during the pause: {paused1} -> {paused2}"
    );
    assert_eq!(es.document_count(), 0);

    es.faults().clear();
    assert!(
        wait_for(Duration::from_secs(180), || es.document_count() >= LINES),
        "double holds {} of {LINES}; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );
    assert!(
        wait_for(Duration::from_secs(30), || {
            let t = scrape();
            metric_sum(&t, "logferry_pipeline_lag_seconds") == 0.0
                && metric_sum(&t, "logferry_tail_paused") == 0.0
        }),
        "lag back to 0 and reading resumed once delivered: {}",
        scrape()
    );
    assert!(metric_sum(&scrape(), "logferry_tail_paused_seconds_total") >= paused2);
    assert_eq!(es.document_count(), LINES, "exactly once");

    daemon.signal(15);
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}
