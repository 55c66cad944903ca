//! End-to-end: bounded memory. 500 MB of logs wait on disk while
//! Elasticsearch is down: logferry pauses reading (the files are the buffer),
//! its resident memory stays small, and shipping resumes when Elasticsearch
//! is back. In kubernetes mode the same holds while the pods of a 300 MB
//! backlog are unknown to the API (records wait for their metadata up to
//! `kubernetes.lookup_wait`, bounded in bytes). The real figures are measured
//! by the benchmark (`logferry-bench`); the bound here is deliberately generous.

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use logferry_testkit::kubernetes::KubeApiDouble;
use std::io::{BufWriter, Write};
use std::time::Duration;

const FILES: usize = 10;
const BYTES_PER_FILE: usize = 50 << 20;
/// Generous: a debug build, 4 bulk requests of up to 5 MiB in flight, queues.
const RSS_BOUND: u64 = 256 << 20;

/// Lets `daemon` read as far as its bounds allow (8 s), then returns the
/// bytes it had read (`logferry_tail_read_bytes_total`) then and 4 s later,
/// after printing them with `what` and checking its peak RSS stays under
/// [`RSS_BOUND`]. `total` is the bytes waiting on disk.
fn read_while_paused(daemon: &Daemon, total: usize, what: &str) -> (f64, f64) {
    std::thread::sleep(Duration::from_secs(8));
    let read_early = daemon.metric("logferry_tail_read_bytes_total");
    std::thread::sleep(Duration::from_secs(4));
    let read_late = daemon.metric("logferry_tail_read_bytes_total");
    let rss = daemon.peak_rss_bytes();
    eprintln!(
        "waiting on disk: {} MB; {what}: {:.1} MB; peak RSS {:.1} MiB",
        total >> 20,
        read_late / 1e6,
        rss as f64 / (1 << 20) as f64
    );
    assert!(rss > 0, "VmHWM readable");
    assert!(rss < RSS_BOUND, "peak RSS {rss} bytes exceeds {RSS_BOUND}");
    (read_early, read_late)
}

#[test]
fn memory_stays_bounded_while_elasticsearch_is_down_and_500_mb_wait() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    es.faults().outage(Duration::from_secs(3600));

    let setup = FilesSetup::new(&format!(
        "node_name: memory-test\n\
         elasticsearch: {{endpoints: [\"{}\"], retry: {{initial_backoff: 100ms, max_backoff: 1s}}, install_template: false}}\n\
         shutdown: {{drain_timeout: 10s}}",
        es.url()
    ));
    let logs = &setup.logs;
    let filler = "x".repeat(160);
    let mut total = 0usize;
    for f in 0..FILES {
        let mut w = BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(logs.join(format!("app-{f}.log"))).unwrap(),
        );
        let mut written = 0;
        let mut i = 0u64;
        while written < BYTES_PER_FILE {
            let line = format!("file {f} line {i} {filler}\n");
            w.write_all(line.as_bytes()).unwrap();
            written += line.len();
            i += 1;
        }
        w.flush().unwrap();
        total += written;
    }

    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(20));

    // Let it read as far as its queues allow, then watch it stay there.
    let (read_early, read_late) =
        read_while_paused(&daemon, total, "read while Elasticsearch is down");
    assert!(
        read_late < (total as f64) * 0.2,
        "reading must pause while Elasticsearch is down: read {read_late} of {total} bytes"
    );
    assert_eq!(
        read_early, read_late,
        "reading paused: no progress without acknowledgements"
    );
    assert_eq!(es.document_count(), 0);

    // Elasticsearch is back: shipping resumes.
    es.faults().end_outage();
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() > 100_000),
        "shipping did not resume: {} documents; stderr tail:\n{}",
        es.document_count(),
        daemon
            .stderr()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        daemon.peak_rss_bytes() < RSS_BOUND,
        "peak RSS while draining"
    );
    daemon.signal(15);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
}

/// Regression (issue 10, item 5): batches waiting for their pod's metadata
/// queued without a bound while reading went on, so a backlog of files whose
/// pods the API does not know was read into memory for `lookup_wait`.
#[test]
fn memory_stays_bounded_in_kubernetes_mode_while_300_mb_wait_for_unknown_pods() {
    const PODS: usize = 10;
    const BYTES_PER_POD: usize = 30 << 20;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    // The API answers, and knows none of the pods.
    let kube = rt.block_on(KubeApiDouble::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pods_dir = dir.path().join("pods");
    let containers_dir = dir.path().join("containers");
    std::fs::create_dir_all(&containers_dir).unwrap();
    let filler = "y".repeat(160);
    let mut total = 0usize;
    for p in 0..PODS {
        let container = pods_dir
            .join(format!("team_backlog-{p}_0f0e0d0c-0000-4000-8000-{p:012}"))
            .join("app");
        std::fs::create_dir_all(&container).unwrap();
        let mut w = BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(container.join("0.log")).unwrap(),
        );
        let mut written = 0;
        let mut i = 0u64;
        while written < BYTES_PER_POD {
            let line = format!(
                "2026-11-22T13:45:10.{:09}Z stdout F pod {p} line {i} {filler}\n",
                i % 1_000_000_000
            );
            w.write_all(line.as_bytes()).unwrap();
            written += line.len();
            i += 1;
        }
        w.flush().unwrap();
        total += written;
    }
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("logferry.yaml");
    std::fs::write(
        &config,
        format!(
            "node_name: memory-node\n\
             data_dir: {data}\n\
             source: {{mode: kubernetes, pods_dir: {pods}, containers_dir: {containers}}}\n\
             kubernetes: {{lookup_wait: 20s}}\n\
             elasticsearch: {{endpoints: [\"{es}\"], retry: {{initial_backoff: 100ms, max_backoff: 1s}}, install_template: false}}\n\
             server: {{listen: \"{admin}\"}}\n\
             shutdown: {{drain_timeout: 10s}}\n",
            data = dir.path().join("data").display(),
            pods = pods_dir.display(),
            containers = containers_dir.display(),
            es = es.url(),
        ),
    )
    .unwrap();
    let kubeconfig = kube.kubeconfig_path().display().to_string();
    let mut daemon = Daemon::start(
        dir.path(),
        &config,
        admin,
        &[],
        &[("KUBECONFIG", kubeconfig.as_str())],
    );
    daemon.wait_ready(Duration::from_secs(30));

    // Every file waits up to lookup_wait (20 s) for its pod: reading pauses
    // at the bound instead of queueing the backlog.
    let (read_early, read_late) = read_while_paused(&daemon, total, "read while pods are unknown");
    assert_eq!(
        es.document_count(),
        0,
        "nothing ships before lookup_wait ends"
    );
    assert_eq!(
        read_early, read_late,
        "reading paused while the lookups wait"
    );
    assert!(
        read_late < (total as f64) * 0.2,
        "reading must pause while records wait for metadata: read {read_late} of {total} bytes"
    );

    // lookup_wait ends: the records ship with what their path says.
    assert!(
        wait_for(Duration::from_secs(90), || es.document_count() > 100_000),
        "shipping did not start: {} documents; stderr tail:\n{}",
        es.document_count(),
        daemon
            .stderr()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        daemon.metric("logferry_pipeline_records_without_metadata_total") > 0.0,
        "path-only metadata counted"
    );
    assert!(
        daemon.peak_rss_bytes() < RSS_BOUND,
        "peak RSS while shipping: {}",
        daemon.peak_rss_bytes()
    );
}
