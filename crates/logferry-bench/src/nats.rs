//! `logferry-bench nats`: the NATS paths, with the real `nats-server` (Debian's
//! package) on loopback.
//!
//! 1. **Aggregator** (`source.mode: nats` with a JetStream consumer → the
//!    Elasticsearch double): `messages` Fly.io-style JSON events are
//!    published to a stream first, then one logferry reads them all; reported:
//!    messages per logferry CPU-second, wall time, and nats-server's CPU.
//! 2. **Node publish** (files mode → `nats` sink → JetStream): a file of
//!    `messages` lines is read and published with PubAcks; reported: records
//!    per logferry CPU-second, records per wall second, nats-server's CPU.

use crate::harness::{free_port, fresh_dir, EsDouble};
use crate::procstat::{self, Cpu};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One measured phase.
#[derive(Serialize, Debug)]
pub struct Phase {
    /// What ran.
    pub name: String,
    /// Messages (records) through.
    pub messages: u64,
    /// Wall seconds from start to the last one through.
    pub wall_seconds: f64,
    /// logferry's CPU seconds (user + system).
    pub logferry_cpu_seconds: f64,
    /// nats-server's CPU seconds in the same interval.
    pub nats_server_cpu_seconds: f64,
}

impl Phase {
    fn line(&self) -> String {
        format!(
            "{:<38} {:>9} msgs {:>7.2} s wall {:>9.0} msgs/s {:>7.2} CPU-s logferry {:>9.0} msgs/CPU-s {:>6.2} CPU-s nats-server",
            self.name,
            self.messages,
            self.wall_seconds,
            self.messages as f64 / self.wall_seconds,
            self.logferry_cpu_seconds,
            self.messages as f64 / self.logferry_cpu_seconds,
            self.nats_server_cpu_seconds,
        )
    }
}

/// Both phases.
#[derive(Serialize, Debug)]
pub struct NatsResult {
    /// The phases.
    pub phases: Vec<Phase>,
}

impl NatsResult {
    /// Printable lines.
    pub fn render(&self) -> String {
        self.phases
            .iter()
            .map(Phase::line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server(dir: &Path) -> Result<(Proc, String)> {
    let port = free_port()?;
    let store = dir.join("nats-store");
    std::fs::create_dir_all(&store)?;
    let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("nats-server");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nats-server (tests/install-tools.sh installs it)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((Proc(child), format!("nats://127.0.0.1:{port}")))
}

fn logferry(bin: &Path, dir: &Path, name: &str, config: &str) -> Result<(Proc, u16)> {
    let port = free_port()?;
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!("{config}\nserver: {{listen: \"127.0.0.1:{port}\"}}\n"),
    )?;
    let child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&path)
        .env("LOGFERRY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.stderr")))?)
        .spawn()
        .context("starting logferry")?;
    Ok((Proc(child), port))
}

async fn metric(http: &reqwest::Client, port: u16, name: &str) -> f64 {
    let Ok(r) = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn fly_event(n: u64) -> String {
    format!(
        r#"{{"event":{{"provider":"app"}},"fly":{{"app":{{"instance":"148ed{i:03}","name":"app-{a}"}},"region":"ord"}},"host":"a1b2","log":{{"level":"info"}},"message":"GET /api/v1/items/{n} 200 in 3.2ms user=42 trace=9f1c2d","timestamp":"2026-12-04T05:00:00.{f:09}Z"}}"#,
        i = n % 100,
        a = n % 10,
        f = n % 1_000_000_000,
    )
}

/// Runs both phases with `messages` each.
///
/// # Errors
/// A process does not start, or the messages do not get through within 10 minutes.
pub async fn run(
    logferry_bin: &Path,
    es_bin: &Path,
    work: &Path,
    messages: u64,
) -> Result<NatsResult> {
    let dir: PathBuf = fresh_dir(work, "nats")?;
    let (nats, url) = nats_server(&dir)?;
    let nats_pid = nats.0.id();
    let es = EsDouble::start(es_bin, &dir)?;
    let http = reqwest::Client::new();
    let client = async_nats::connect(&url).await?;
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "FLY".into(),
        subjects: vec!["logs.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let mut acks = Vec::new();
    for n in 0..messages {
        let subject = format!("logs.app-{}.ord.148ed{:03}", n % 10, n % 100);
        acks.push(js.publish(subject, fly_event(n).into()).await?);
        if acks.len() >= 4096 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks.drain(..) {
        a.await?;
    }
    let mut phases = Vec::new();

    // 1. Aggregator: JetStream consumer -> Elasticsearch double.
    let nats0 = procstat::cpu(nats_pid)?;
    let t0 = Instant::now();
    let (agg, _port) = logferry(
        logferry_bin,
        &dir,
        "aggregator",
        &format!(
            "data_dir: {}\nsource:\n  mode: nats\n  nats:\n    servers: [\"{url}\"]\n    jetstream: {{stream: FLY, durable: bench}}\nelasticsearch:\n  endpoints: [\"{}\"]\n  index: bench-nats\n  install_template: false\n",
            dir.join("agg-data").display(),
            es.url
        ),
    )?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while es.count(&http, "bench-nats").await.unwrap_or(0) < messages {
        if Instant::now() > deadline {
            bail!("aggregator: not every message indexed within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phases.push(Phase {
        name: "source nats (JetStream) -> ES double".into(),
        messages,
        wall_seconds: t0.elapsed().as_secs_f64(),
        logferry_cpu_seconds: procstat::cpu(agg.0.id())?.total(),
        nats_server_cpu_seconds: procstat::cpu(nats_pid)?.since(nats0).total(),
    });
    drop(agg);

    // 2. Node: files -> nats sink -> JetStream (PubAck).
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(logs.join("app.log"))?);
        for n in 0..messages {
            writeln!(
                f,
                "2026-12-04T05:00:00.000Z INFO GET /api/v1/items/{n} 200 in 3.2ms user=42 trace=9f1c2d"
            )?;
        }
    }
    let nats0: Cpu = procstat::cpu(nats_pid)?;
    let t0 = Instant::now();
    let (node, port) = logferry(
        logferry_bin,
        &dir,
        "node",
        &format!(
            "node_name: bench\ndata_dir: {}\nsource: {{mode: files, paths: [\"{}/*.log\"]}}\nnats:\n  servers: [\"{url}\"]\n  subject: \"node.{{host.name}}\"\n  stream: {{name: NODE, subjects: [\"node.>\"]}}\n",
            dir.join("node-data").display(),
            logs.display()
        ),
    )?;
    while metric(&http, port, "logferry_nats_published_records_total").await < messages as f64 {
        if Instant::now() > deadline + Duration::from_secs(600) {
            bail!("node: not every record published within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    phases.push(Phase {
        name: "files -> nats sink (JetStream PubAck)".into(),
        messages,
        wall_seconds: t0.elapsed().as_secs_f64(),
        logferry_cpu_seconds: procstat::cpu(node.0.id())?.total(),
        nats_server_cpu_seconds: procstat::cpu(nats_pid)?.since(nats0).total(),
    });
    drop(node);
    drop(nats);
    Ok(NatsResult { phases })
}
