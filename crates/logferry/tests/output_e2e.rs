//! End-to-end (issue 11): the output options operators expect, with the real
//! binary against the Elasticsearch double: the ingest `pipeline` (the
//! `pipeline` query parameter of every `_bulk` request, as the bulk API takes
//! it: <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html#docs-bulk-api-query-params>),
//! extra `headers` on every request, an HTTP proxy (`proxy`, with
//! credentials, and the standard `HTTP_PROXY` variable when unset), and the
//! JSON-message option wired from the configuration file to the documents
//! and the metric.
//!
//! The proxy is a tiny plain-HTTP forward proxy in this file: it reads the
//! absolute-form request line (`POST http://host:port/_bulk HTTP/1.1`, RFC
//! 9112 §3.2.2) of a connection, opens the connection to that host and relays
//! bytes both ways, keeping what the client sent so the test can see every
//! request line and the `Proxy-Authorization` header. That is what reqwest
//! does for `http://` targets through an HTTP proxy (no `CONNECT`).

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one client connection sent.
type Log = Arc<Mutex<Vec<u8>>>;

/// A plain-HTTP forward proxy on loopback; what clients sent, per connection.
struct Proxy {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<Log>>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent: Arc<Mutex<Vec<Log>>> = Arc::default();
        let all = Arc::clone(&sent);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = Arc::new(Mutex::new(Vec::new()));
                all.lock().unwrap().push(Arc::clone(&log));
                std::thread::spawn(move || relay(client, log));
            }
        });
        Proxy { addr, sent }
    }

    /// Everything clients sent through the proxy, connections concatenated.
    fn traffic(&self) -> String {
        let conns = self.sent.lock().unwrap();
        conns
            .iter()
            .map(|c| String::from_utf8_lossy(&c.lock().unwrap()).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The request lines clients sent (absolute-form through a proxy). A
    /// request on a kept-alive connection starts right after the previous
    /// body, so they are found by their `<METHOD> http://` start.
    fn request_lines(&self) -> Vec<String> {
        let traffic = self.traffic();
        let mut lines = Vec::new();
        for method in ["GET", "POST", "PUT", "HEAD"] {
            let start = format!("{method} http://");
            for (at, _) in traffic.match_indices(&start) {
                if let Some(end) = traffic[at..].find(" HTTP/1.1\r\n") {
                    lines.push(traffic[at..at + end + 9].to_owned());
                }
            }
        }
        lines
    }
}

/// Reads the first request head, connects to the host its absolute URI names,
/// then copies bytes both ways until either side closes.
fn relay(mut client: TcpStream, log: Log) {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    log.lock().unwrap().extend_from_slice(&head);
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let Some(target) = line
        .split(' ')
        .nth(1)
        .and_then(|uri| uri.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
    else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    upstream.write_all(&head).unwrap();
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut u2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Both);
    });
    loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                log.lock().unwrap().extend_from_slice(&buf[..n]);
                if upstream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = upstream.shutdown(std::net::Shutdown::Both);
    let _ = back.join();
}

fn write_lines(setup: &FilesSetup, lines: &[&str]) {
    let mut f = std::fs::File::create(setup.logs.join("app.log")).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
}

fn wait_docs(es: &EsDouble, daemon: &Daemon, n: usize) {
    assert!(
        wait_for(Duration::from_secs(60), || es.document_count() >= n),
        "double holds {} of {n}; stderr:\n{}",
        es.document_count(),
        daemon.stderr()
    );
}

fn stop(mut daemon: Daemon) {
    daemon.signal(15);
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "stderr:\n{}",
        daemon.stderr()
    );
}

#[test]
fn pipeline_headers_and_json_messages_reach_elasticsearch() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let setup = FilesSetup::new(&format!(
        "node_name: output-test\n\
         elasticsearch: {{endpoints: [\"{}\"], index: logs-e2e, pipeline: \"logs-k8s@custom\", \
           headers: {{X-Tenant: blue, X-Opaque-Id: logferry-e2e}}, batch: {{timeout: 100ms}}}}\n\
         json_message: {{enabled: true, target: root, max_depth: 3}}",
        es.url()
    ));
    let lines = [
        "plain 0",
        r#"{"level":"error","msg":"boom","user":{"id":7}}"#,
        r#"{"a":{"b":{"c":{"d":1}}}}"#,
        r#"{"kubernetes":{"namespace":"spoofed"},"ok":true}"#,
    ];
    write_lines(&setup, &lines);
    let mut daemon = setup.start(&[]);
    daemon.wait_ready(Duration::from_secs(30));
    wait_docs(&es, &daemon, lines.len());

    let requests = es.requests();
    let bulks: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("_bulk"))
        .collect();
    assert!(!bulks.is_empty());
    for r in &bulks {
        assert!(
            r.path.contains("pipeline=logs-k8s%40custom")
                || r.path.contains("pipeline=logs-k8s@custom"),
            "bulk without the pipeline: {}",
            r.path
        );
    }
    for r in &requests {
        assert_eq!(
            r.header("x-tenant"),
            Some("blue"),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(r.header("x-opaque-id"), Some("logferry-e2e"));
    }
    assert!(
        requests.iter().any(|r| r.method == "GET" && r.path == "/"),
        "GET / carries them too"
    );

    let docs: Vec<Value> = es
        .documents("logs-e2e")
        .iter()
        .map(|d| serde_json::from_slice(&d.source).unwrap())
        .collect();
    let by_message = |m: &str| {
        docs.iter()
            .find(|d| d["message"] == m)
            .unwrap_or_else(|| panic!("no document with message {m}: {docs:?}"))
    };
    let app = by_message(lines[1]);
    assert_eq!(app["user"]["id"], 7);
    assert_eq!(app["msg"], "boom");
    assert_eq!(app["log"]["level"], "error");
    let deep = by_message(lines[2]);
    assert!(deep.get("a").is_none(), "too deep: text only");
    let spoof = by_message(lines[3]);
    assert_eq!(spoof["ok"], true);
    assert!(spoof["kubernetes"]
        .get("namespace")
        .is_none_or(|n| n != "spoofed"));
    assert!(
        wait_for(Duration::from_secs(10), || daemon
            .metric("logferry_pipeline_json_messages_not_parsed_total")
            == 1.0),
        "one message too deep: {}",
        daemon.metric("logferry_pipeline_json_messages_not_parsed_total")
    );
    let (_, text) = http(daemon.admin, "GET", "/metrics").unwrap();
    assert!(
        text.contains("logferry_pipeline_json_messages_not_parsed_total{reason=\"too_deep\"} 1"),
        "{text}"
    );
    stop(daemon);
}

#[test]
fn an_http_proxy_carries_every_request_configured_or_from_the_environment() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let es_host = es
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();

    // `proxy` with credentials (percent-encoded `@` in the password).
    let proxy = Proxy::start();
    let setup = FilesSetup::new(&format!(
        "node_name: proxy-test\n\
         elasticsearch: {{endpoints: [\"{}\"], index: logs-proxy, batch: {{timeout: 100ms}}, \
           proxy: \"http://relay:p%40ss@{}\"}}",
        es.url(),
        proxy.addr
    ));
    write_lines(&setup, &["through the proxy 0", "through the proxy 1"]);
    let mut daemon = Daemon::start(
        setup.dir.path(),
        &setup.config,
        setup.admin,
        &[],
        &[("NO_PROXY", ""), ("no_proxy", "")],
    );
    daemon.wait_ready(Duration::from_secs(30));
    wait_docs(&es, &daemon, 2);
    let lines = proxy.request_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("POST http://{es_host}/")) && l.contains("_bulk")),
        "the bulk request went through the proxy: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("GET http://{es_host}/ HTTP/1.1")),
        "GET / too: {lines:?}"
    );
    // base64("relay:p@ss")
    assert!(
        proxy
            .traffic()
            .to_ascii_lowercase()
            .contains("proxy-authorization: basic cmvsyxk6cebzcw=="),
        "proxy credentials sent"
    );
    stop(daemon);

    // No `proxy`: HTTP_PROXY applies (reqwest's system proxy rules).
    let es2 = rt.block_on(EsDouble::start()).unwrap();
    let es2_host = es2
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let env_proxy = Proxy::start();
    let setup = FilesSetup::new(&format!(
        "node_name: proxy-env-test\n\
         elasticsearch: {{endpoints: [\"{}\"], index: logs-proxy, batch: {{timeout: 100ms}}}}",
        es2.url()
    ));
    write_lines(&setup, &["through the environment's proxy"]);
    let proxy_url = format!("http://{}", env_proxy.addr);
    let mut daemon = Daemon::start(
        setup.dir.path(),
        &setup.config,
        setup.admin,
        &[],
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    );
    daemon.wait_ready(Duration::from_secs(30));
    wait_docs(&es2, &daemon, 1);
    let lines = env_proxy.request_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("POST http://{es2_host}/")) && l.contains("_bulk")),
        "HTTP_PROXY was used: {lines:?}"
    );
    stop(daemon);
}
