//! Encode + ship against the Elasticsearch double on loopback, with and
//! without gzip, and the double's own ceiling with a trivial client.
//!
//! The double runs as a separate process (the `es-double` binary, looked up in
//! `$ES_DOUBLE_BIN`, then next to this benchmark's target directory: build it
//! first with `cargo build --release -p logferry-testkit --bin es-double`), so
//! that the forwarder's CPU seconds (this process) and the double's (the child)
//! are measured apart, from `/proc/<pid>/stat`. Without the binary the double
//! runs in-process and the CPU figure covers both.
//!
//! Run: `cargo bench -p logferry-elasticsearch --bench ship`.

mod common;

use bytes::Bytes;
use logferry_core::Acker;
use logferry_elasticsearch::elasticsearch::http::headers::{HeaderMap, HeaderValue, CONTENT_TYPE};
use logferry_elasticsearch::elasticsearch::http::transport::Transport;
use logferry_elasticsearch::elasticsearch::http::Method;
use logferry_elasticsearch::elasticsearch::Elasticsearch;
use logferry_elasticsearch::{
    CancellationToken, Compression, DocumentOptions, ElasticsearchConfig, Forwarder, IndexTarget,
    NoopEvents,
};
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Double {
    url: String,
    child: Option<Child>,
    _in_process: Option<logferry_testkit::elasticsearch::EsDouble>,
}

impl Double {
    fn cpu(&self) -> Option<f64> {
        self.child
            .as_ref()
            .map(|c| common::cpu_seconds(&c.id().to_string()))
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn double_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ES_DOUBLE_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("es-double");
    candidate.exists().then_some(candidate)
}

async fn start_double() -> Double {
    if let Some(bin) = double_binary() {
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening on <addr>")
            .to_owned();
        println!("double: child process {} ({})", bin.display(), addr);
        return Double {
            url: format!("http://{addr}"),
            child: Some(child),
            _in_process: None,
        };
    }
    println!("double: in-process (es-double binary not found; CPU figures include the double)");
    let d = logferry_testkit::elasticsearch::EsDouble::start()
        .await
        .unwrap();
    Double {
        url: d.url(),
        child: None,
        _in_process: Some(d),
    }
}

async fn reset(es: &Elasticsearch) {
    let r = es
        .transport()
        .send(
            Method::Post,
            "/_double/reset",
            HeaderMap::new(),
            None::<&()>,
            None::<&[u8]>,
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status_code().as_u16(), 200);
}

/// The double's ceiling: pre-built 1,000-document bodies, 4 requests in flight.
async fn ceiling(double: &Double, lines: &[String]) {
    let es = Elasticsearch::new(Transport::single_node(&double.url).unwrap());
    reset(&es).await;
    let bodies: Vec<Bytes> = (0..300)
        .map(|b| {
            let mut body = Vec::new();
            for i in 0..1000 {
                let n = b * 1000 + i;
                body.extend_from_slice(
                    format!("{{\"create\":{{\"_index\":\"ceiling\",\"_id\":\"{n}\"}}}}\n")
                        .as_bytes(),
                );
                body.extend_from_slice(
                    &serde_json::to_vec(
                        &serde_json::json!({"message": lines[n % lines.len()], "n": n}),
                    )
                    .unwrap(),
                );
                body.push(b'\n');
            }
            Bytes::from(body)
        })
        .collect();
    let bytes: usize = bodies.iter().map(Bytes::len).sum();
    let cpu0 = double.cpu();
    let t0 = Instant::now();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let es = es.clone();
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let mut h = HeaderMap::new();
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                let r = es
                    .transport()
                    .send(Method::Post, "/_bulk", h, None::<&()>, Some(body), None)
                    .await
                    .unwrap();
                assert_eq!(r.status_code().as_u16(), 200);
                let _ = r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = double
        .cpu()
        .zip(cpu0)
        .map(|(a, b)| format!("{:.2}", a - b))
        .unwrap_or_else(|| "n/a".into());
    println!(
        "double ceiling (trivial client, 300 x 1000 docs, 4 in flight): {:.0} docs/s, {:.1} MB/s of bulk body, double cpu {cpu} s",
        300_000.0 / secs,
        bytes as f64 / secs / 1e6
    );
    reset(&es).await;
}

async fn ship(double: &Double, lines: &[String], compression: Compression, total: usize) {
    let batches = common::batches(lines, total, 500, 16);
    let message_bytes: usize = batches.iter().map(|b| b.message_bytes()).sum();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ElasticsearchConfig::new(double.url.clone(), dir.path());
    config.compression = compression;
    config.install_template = false;
    config.target = IndexTarget::Index {
        template: "logs-bench-%Y.%m.%d".parse().unwrap(),
    };
    let forwarder = Forwarder::new(
        config,
        DocumentOptions {
            host_name: Some("node-a-1".into()),
            cluster_name: None,
            ..DocumentOptions::default()
        },
        Arc::new(NoopEvents),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let (acker, mut acks) = Acker::channel();
    let drain = tokio::spawn(async move {
        let mut n = 0usize;
        while acks.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let double_cpu0 = double.cpu();
    let cpu0 = common::cpu_seconds("self");
    let t0 = Instant::now();
    let feeder = tokio::spawn(async move {
        for b in batches {
            tx.send(b).await.unwrap();
        }
    });
    let summary = forwarder
        .run(rx, acker, CancellationToken::new())
        .await
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds("self") - cpu0;
    feeder.await.unwrap();
    let acked = drain.await.unwrap();
    assert_eq!(summary.records_delivered, total as u64);
    assert_eq!(acked as u64, summary.batches_acknowledged);
    let double_cpu = double
        .cpu()
        .zip(double_cpu0)
        .map(|(a, b)| format!("{:.2}", a - b))
        .unwrap_or_else(|| "n/a".into());
    println!(
        "{:<6} {:>9} {:>12.0} {:>12.1} {:>10.2} {:>14.2} {:>11} {:>12.1}",
        match compression {
            Compression::None => "none",
            Compression::Gzip => "gzip",
        },
        total,
        total as f64 / secs,
        message_bytes as f64 / secs / 1e6,
        secs,
        cpu,
        double_cpu,
        message_bytes as f64 / cpu / 1e6,
    );
    let es = Elasticsearch::new(Transport::single_node(&double.url).unwrap());
    reset(&es).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lines = common::loghub_lines();
        let double = start_double().await;
        let full = common::benchmarking();
        if full {
            ceiling(&double, &lines).await;
        }
        println!(
            "encode+ship, defaults (1000 docs / 5 MiB per request, 4 in flight), Loghub text, 16 files with pod metadata:"
        );
        println!(
            "{:<6} {:>9} {:>12} {:>12} {:>10} {:>14} {:>11} {:>12}",
            "gzip", "records", "docs/s", "src MB/s", "wall s", "forwarder cpu", "double cpu", "MB/cpu-s"
        );
        for compression in [Compression::None, Compression::Gzip] {
            ship(&double, &lines, compression, if full { 300_000 } else { 2_000 }).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
