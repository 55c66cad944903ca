//! End-to-end (issue 16): rollouts and restarts under the churn of short-lived
//! pods lose nothing that a collector could read.
//!
//! In this process: the Kubernetes API double and the Elasticsearch double. As
//! child processes: the real `logferry run` binary in kubernetes mode, reading a
//! kubelet-layout tree in a temp dir. The churn, as an Airflow node sees it: a
//! short-lived pod starts every [`SHORT_EVERY`] (created in the API, its `0.log`
//! created), writes a line per [`TICK`] for [`SHORT_LIFE`] and a last burst, is
//! deleted in the API, and [`GC_AFTER_DELETE`] after the DELETED its files are
//! removed (kubelet's container GC); [`LONG_PODS`] pods write all along. The churn
//! lasts [`CHURN`] (`LOGFERRY_ROLLOUT_SECS` overrides it); at a third of it:
//!
//! - `surge_handover_with_sigterm_loses_nothing`: a second logferry starts on
//!   the same `data_dir` (the new pod of a surge rollout), and once it is ready
//!   (in standby) and [`STOP_AFTER_SECOND`] have passed, the first gets SIGTERM.
//!   Every line is in Elasticsearch exactly once, every document carries the
//!   pod's API metadata, the first exits 0, and their logs show one owner at a
//!   time: the first's "data_dir lock released" comes before the second's "data_dir
//!   lock acquired" (the first logs just before its unlock, the second just after
//!   its lock, so correct code always logs them in this order).
//! - `surge_handover_with_sigkill_loses_nothing`: the same with SIGKILL; the
//!   standby takes over (the delay is printed), nothing lost, nothing twice.
//! - `restart_without_surge_loses_only_what_no_collector_could_read`: SIGTERM,
//!   [`DOWN`] with no logferry, then a new one on the same `data_dir`. Every line
//!   of every file that existed while a logferry read the node is delivered, with
//!   full metadata (also for pods deleted while it was down, from `pods.json`),
//!   except the documents of a pod that was created after the SIGTERM and
//!   deleted in the API before the new process's initial list ("pod metadata in
//!   sync with the API"): no logferry ever saw it, and the API no longer has it.
//!   What no collector could read is excused, and only that: the lines of files
//!   removed between the old process's SIGTERM and the new one's first scan
//!   ("initial scan done") that the old one had not read. Those files' documents
//!   must still be a gap-free prefix of the file (what the old one read, drained
//!   before it exited). Files created *and* removed in that window (a pod that
//!   started and ended while no logferry ran) lose all their lines; files created
//!   before it lose the lines written after the old process stopped reading.
//!   Both counts are printed.
//!
//! All three run in parallel (about 80 s in all with the default churn); the
//! figures each prints (lines, handover delay, share of documents with full
//! metadata, lines excused) are the ones to quote.

mod common;

use common::*;
use logferry_testkit::elasticsearch::EsDouble;
use logferry_testkit::kubernetes::KubeApiDouble;
use logferry_testkit::writer::ContainerLogWriter;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NODE: &str = "node-rollout-1";
const NS: &str = "airflow";
/// How long pods are created (`LOGFERRY_ROLLOUT_SECS` overrides it, in seconds).
const CHURN: Duration = Duration::from_secs(60);
/// One step of the writing loop: every running container writes one line.
const TICK: Duration = Duration::from_millis(20);
/// A short-lived pod starts this often.
const SHORT_EVERY: Duration = Duration::from_millis(333);
/// How long a short-lived pod writes before its last burst and its deletion.
const SHORT_LIFE: Duration = Duration::from_secs(1);
/// Lines of a short-lived pod's last burst, right before its deletion.
const LAST_BURST: usize = 10;
/// Kubelet's container GC: a deleted pod's files go this long after the DELETED.
const GC_AFTER_DELETE: Duration = Duration::from_millis(500);
const LONG_PODS: usize = 3;
/// Between the second logferry's start (ready in standby) and the first's stop.
const STOP_AFTER_SECOND: Duration = Duration::from_secs(5);
/// Without surge: no logferry runs for this long.
const DOWN: Duration = Duration::from_secs(10);
/// Generous bounds (the machine is loaded).
const START_WAIT: Duration = Duration::from_secs(60);
const FINAL_WAIT: Duration = Duration::from_secs(90);
const EXIT_WAIT: Duration = Duration::from_secs(40);

/// Seconds since the epoch (the clock logferry's log timestamps use).
fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `2026-12-04T10:20:00.123456Z` → seconds since the epoch.
fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3_600 + mm * 60) as f64 + ss)
}

/// The JSON log lines of a logferry stderr with `message`, and their times.
fn logged(stderr: &str, message: &str) -> Vec<(f64, Value)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .map(|v| {
            let t = v["timestamp"]
                .as_str()
                .and_then(parse_timestamp)
                .unwrap_or_else(|| panic!("log line without a parsable timestamp: {v}"));
            (t, v)
        })
        .collect()
}

const ACQUIRED: &str = "data_dir lock acquired";
const RELEASED: &str = "data_dir lock released";
const STANDBY: &str =
    "standby: another logferry owns data_dir; holding the node's log files open until it hands over";
const SCANNED: &str = "initial scan done";
const SYNCED: &str = "pod metadata in sync with the API (initial list done)";
const STOPPED: &str = "logferry stopped; checkpoints written";

/// splitmix64, for uids and container ids.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
    fn uid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// One pod (one container) as the churn knows it.
struct Pod {
    name: String,
    container: &'static str,
    uid: String,
    image: String,
    long_lived: bool,
    writer: Option<ContainerLogWriter>,
    /// When each line was written (seconds since the epoch); index = seq.
    written: Vec<f64>,
    /// When its file was created.
    created: f64,
    born: Instant,
    deleted: Option<Instant>,
    /// When it was deleted in the API.
    deleted_wall: Option<f64>,
    /// When its files were removed.
    removed: Option<f64>,
}

impl Pod {
    fn key(&self) -> String {
        format!("{NS}/{}/{}", self.name, self.container)
    }

    fn message(&self, seq: usize) -> String {
        let filler: String = (0..(seq * 7) % 90)
            .map(|i| (b'a' + ((seq + i) % 26) as u8) as char)
            .collect();
        format!("{} seq={seq} {filler}", self.key())
    }

    fn write(&mut self) {
        let msg = self.message(self.written.len());
        self.writer
            .as_mut()
            .expect("writing to removed files")
            .write_line("stdout", msg.as_bytes())
            .unwrap();
        self.written.push(wall());
    }
}

/// The churn: creates, writes, deletes pods and removes their files.
struct Churn<'a> {
    kube: &'a KubeApiDouble,
    pods_dir: PathBuf,
    containers_dir: PathBuf,
    rng: Rng,
    pods: Vec<Pod>,
    next_short: Instant,
    shorts: usize,
}

impl<'a> Churn<'a> {
    fn add(&mut self, long_lived: bool) {
        let (name, container) = if long_lived {
            (format!("scheduler-{}", self.pods.len()), "app")
        } else {
            self.shorts += 1;
            (
                format!("task-{:04}-{}", self.shorts, self.rng.hex(5)),
                "base",
            )
        };
        let uid = self.rng.uid();
        let image = format!(
            "registry.local/airflow-{container}:2.{}",
            self.rng.next() % 9
        );
        let container_id = self.rng.hex(64);
        let labels = json!({
            "app": name,
            "tier": if long_lived { "long" } else { "task" },
            "airflow.apache.org/component": "worker",
        });
        self.kube
            .create_pod(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "uid": uid, "labels": labels,
                             "creationTimestamp": "2026-12-04T10:00:00Z"},
                "spec": {"nodeName": NODE, "restartPolicy": "Never",
                         "containers": [{"name": container, "image": image}]},
                "status": {"phase": "Running", "podIP": "10.42.0.7", "hostIP": "192.168.0.10",
                    "containerStatuses": [{
                        "name": container, "image": image, "imageID": format!("{image}@sha256:{}", "ab".repeat(32)),
                        "containerID": format!("containerd://{container_id}"), "ready": true,
                        "restartCount": 0, "started": true,
                        "state": {"running": {"startedAt": "2026-12-04T10:00:01Z"}}}]},
            }))
            .expect("create pod in the API double");
        let writer = ContainerLogWriter::create(
            &self.pods_dir,
            Some(&self.containers_dir),
            NS,
            &name,
            &uid,
            container,
            &container_id,
        )
        .unwrap();
        self.pods.push(Pod {
            name,
            container,
            uid,
            image,
            long_lived,
            writer: Some(writer),
            written: Vec::new(),
            created: wall(),
            born: Instant::now(),
            deleted: None,
            deleted_wall: None,
            removed: None,
        });
    }

    /// One tick: a new short-lived pod when due (while `creating`), a line from
    /// every running container, deletions and removals when due.
    fn step(&mut self, creating: bool) {
        if creating && Instant::now() >= self.next_short {
            self.add(false);
            self.next_short += SHORT_EVERY;
        }
        for p in self.pods.iter_mut() {
            if p.long_lived {
                if creating {
                    p.write();
                }
                continue;
            }
            match p.deleted {
                None => {
                    p.write();
                    if p.born.elapsed() >= SHORT_LIFE {
                        for _ in 0..LAST_BURST {
                            p.write();
                        }
                        self.kube.delete_pod(NS, &p.name).unwrap();
                        p.deleted = Some(Instant::now());
                        p.deleted_wall = Some(wall());
                    }
                }
                Some(d) if p.writer.is_some() && d.elapsed() >= GC_AFTER_DELETE => {
                    p.writer.take().unwrap().remove_all().unwrap();
                    p.removed = Some(wall());
                }
                Some(_) => {}
            }
        }
    }

    /// Every short-lived pod is gone, files included.
    fn settled(&self) -> bool {
        self.pods
            .iter()
            .all(|p| p.long_lived || p.removed.is_some())
    }
}

/// How the first logferry ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    SurgeSigterm,
    SurgeSigkill,
    Restart,
}

/// The temp dir, the doubles and the configuration of both processes.
struct Node {
    dir: tempfile::TempDir,
    pods_dir: PathBuf,
    containers_dir: PathBuf,
    kubeconfig: String,
}

impl Node {
    /// Writes `<name>.yaml` (same data_dir for all, its own admin port) and starts it.
    fn start(&self, name: &str, es: &EsDouble) -> Daemon {
        let port = free_port();
        let admin: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let run_dir = self.dir.path().join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        let config = run_dir.join("logferry.yaml");
        std::fs::write(
            &config,
            format!(
                r#"
node_name: ${{NODE_NAME}}
data_dir: {data}
source:
  mode: kubernetes
  pods_dir: {pods}
  containers_dir: {containers}
  rescan_interval: 2s
kubernetes:
  metadata_grace: 60s
  lookup_wait: 2s
elasticsearch:
  endpoints: ["{es}"]
  batch: {{max_events: 1000, max_bytes: 2MiB, timeout: 200ms}}
  retry: {{initial_backoff: 50ms, max_backoff: 1s}}
server:
  listen: 127.0.0.1:{port}
shutdown:
  drain_timeout: 20s
"#,
                data = self.dir.path().join("data").display(),
                pods = self.pods_dir.display(),
                containers = self.containers_dir.display(),
                es = es.url(),
            ),
        )
        .unwrap();
        Daemon::start(
            &run_dir,
            &config,
            admin,
            &[],
            &[
                ("KUBECONFIG", self.kubeconfig.as_str()),
                ("NODE_NAME", NODE),
                ("LOGFERRY_LOG", "info"),
            ],
        )
    }
}

/// Waits (bounded) until `d` logged `message`; its time.
fn wait_logged(d: &Daemon, message: &str, timeout: Duration) -> f64 {
    let mut at = None;
    let ok = wait_for(timeout, || {
        at = logged(&d.stderr(), message).first().map(|(t, _)| *t);
        at.is_some()
    });
    assert!(
        ok,
        "{message:?} not logged within {timeout:?}; stderr:\n{}",
        d.stderr()
    );
    at.unwrap()
}

/// What Elasticsearch holds, compared with what was written.
#[derive(Default, Debug)]
struct Verdict {
    documents: usize,
    /// Lines that must be delivered, and how many of them are.
    required: usize,
    required_delivered: usize,
    missing: Vec<String>,
    duplicates: Vec<String>,
    problems: Vec<String>,
    full_metadata: usize,
    /// Restart only: files removed while no logferry read the node.
    down_files: usize,
    down_lines_lost: usize,
    /// ... of which lines written before the old process's SIGTERM.
    down_lost_before_stop: usize,
    /// ... the earliest of which was written this long before the SIGTERM (seconds).
    down_lost_oldest: f64,
    /// ... and files created and removed entirely in that window.
    unseen_files: usize,
    unseen_lines: usize,
    /// Restart only: documents of pods created and deleted in the API while no
    /// logferry watched (path metadata only, by necessity).
    unknowable_docs: usize,
}

impl Verdict {
    fn complete(&self) -> bool {
        self.missing.is_empty() && self.duplicates.is_empty() && self.problems.is_empty()
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// A restart's moments, in seconds since the epoch.
#[derive(Clone, Copy, Debug)]
struct Down {
    /// The old process's SIGTERM: it stops reading.
    stop: f64,
    /// The new process's "initial scan done": every file present is held from here on.
    scanned: f64,
    /// The new process's "pod metadata in sync with the API": a pod deleted before
    /// it and created after `stop` was never seen by any logferry.
    synced: f64,
}

fn check(es: &EsDouble, pods: &[Pod], down: Option<Down>) -> Verdict {
    let by_key: BTreeMap<String, usize> =
        pods.iter().enumerate().map(|(i, p)| (p.key(), i)).collect();
    let mut seen: Vec<Vec<u32>> = pods.iter().map(|p| vec![0; p.written.len()]).collect();
    let mut v = Verdict::default();
    let docs = es.all_documents();
    v.documents = docs.len();
    for doc in &docs {
        let src: Value = match serde_json::from_slice(&doc.source) {
            Ok(s) => s,
            Err(e) => {
                v.problems.push(format!("{}: not JSON: {e}", doc.id));
                continue;
            }
        };
        let message = src["message"].as_str().unwrap_or_default();
        let parsed = message
            .split_once(" seq=")
            .and_then(|(key, rest)| Some((key, rest.split(' ').next()?.parse::<usize>().ok()?)));
        let Some((key, seq)) = parsed else {
            v.problems
                .push(format!("{}: unexpected message {message:?}", doc.id));
            continue;
        };
        let Some(&i) = by_key.get(key) else {
            v.problems
                .push(format!("{}: unknown container {key}", doc.id));
            continue;
        };
        let p = &pods[i];
        if seq >= p.written.len() || message != p.message(seq) {
            v.problems
                .push(format!("{key} seq={seq}: never written as shipped"));
            continue;
        }
        seen[i][seq] += 1;
        if seen[i][seq] == 2 {
            v.duplicates
                .push(format!("{key} seq={seq} (ids include {})", doc.id));
        }
        for (path, want) in [
            (&["kubernetes", "namespace"][..], NS),
            (&["kubernetes", "pod", "name"][..], p.name.as_str()),
            (&["kubernetes", "pod", "uid"][..], p.uid.as_str()),
            (&["kubernetes", "container", "name"][..], p.container),
        ] {
            if str_at(&src, path) != Some(want) {
                v.problems.push(format!(
                    "{key} seq={seq}: {} is {:?}, want {want:?}",
                    path.join("."),
                    str_at(&src, path)
                ));
            }
        }
        // What only the API knows: labels and image.
        let full = str_at(&src, &["kubernetes", "labels", "app"]) == Some(p.name.as_str())
            && str_at(&src, &["kubernetes", "labels", "tier"]).is_some()
            && str_at(
                &src,
                &["kubernetes", "labels", "airflow_apache_org/component"],
            ) == Some("worker")
            && str_at(&src, &["container", "image", "name"]) == Some(p.image.as_str());
        // A pod that lived in the API only while no logferry watched: nothing
        // can give its metadata any more (its lines are still required).
        let unknowable = down
            .is_some_and(|d| p.created >= d.stop && p.deleted_wall.is_some_and(|w| w <= d.synced));
        if full {
            v.full_metadata += 1;
        } else if unknowable {
            v.unknowable_docs += 1;
        } else if v.problems.len() < 50 {
            v.problems.push(format!(
                "{key} seq={seq}: without API metadata (labels {}, image {:?})",
                src.pointer("/kubernetes/labels")
                    .map(Value::to_string)
                    .unwrap_or_default(),
                str_at(&src, &["container", "image", "name"])
            ));
        }
    }
    for (i, p) in pods.iter().enumerate() {
        let counts = &seen[i];
        let removed_down = match (down, p.removed) {
            (Some(d), Some(r)) => r >= d.stop && r <= d.scanned,
            _ => false,
        };
        if removed_down {
            // What no collector could read: a gap-free prefix was delivered
            // (what the old process read, and drained), the rest is lost.
            v.down_files += 1;
            let prefix = counts.iter().take_while(|&&c| c > 0).count();
            if let Some(extra) = counts[prefix..].iter().position(|&c| c > 0) {
                v.problems.push(format!(
                    "{} (files removed while down): seq {} delivered after a gap at seq {prefix}",
                    p.key(),
                    prefix + extra
                ));
            }
            let lost = p.written.len() - prefix;
            v.down_lines_lost += lost;
            let stop = down.unwrap().stop;
            for &w in p.written[prefix..].iter().filter(|&&w| w < stop) {
                v.down_lost_before_stop += 1;
                v.down_lost_oldest = v.down_lost_oldest.max(stop - w);
            }
            if p.created >= stop {
                v.unseen_files += 1;
                v.unseen_lines += p.written.len();
            }
            v.required += prefix;
            v.required_delivered += prefix;
            continue;
        }
        v.required += counts.len();
        v.required_delivered += counts.iter().filter(|&&c| c > 0).count();
        let mut seq = 0;
        while seq < counts.len() {
            if counts[seq] > 0 {
                seq += 1;
                continue;
            }
            let from = seq;
            while seq < counts.len() && counts[seq] == 0 {
                seq += 1;
            }
            v.missing.push(format!(
                "{} seq={from}..={} ({} lines of {}; file created {:.3}, removed {:?})",
                p.key(),
                seq - 1,
                seq - from,
                counts.len(),
                p.created,
                p.removed
            ));
        }
    }
    v
}

fn first(v: &[String], n: usize) -> String {
    v.iter().take(n).cloned().collect::<Vec<_>>().join("\n  ")
}

/// Runs one scenario (see the module docs).
fn run(scenario: Scenario) {
    let t0 = Instant::now();
    let churn_len = std::env::var("LOGFERRY_ROLLOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(CHURN, Duration::from_secs);
    let second_at = churn_len / 3;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let es = rt.block_on(EsDouble::start()).unwrap();
    let kube = rt.block_on(KubeApiDouble::start()).unwrap();
    kube.create_namespace(NS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Node {
        pods_dir: dir.path().join("var/log/pods"),
        containers_dir: dir.path().join("var/log/containers"),
        kubeconfig: kube.kubeconfig_path().display().to_string(),
        dir,
    };
    std::fs::create_dir_all(&node.pods_dir).unwrap();
    std::fs::create_dir_all(&node.containers_dir).unwrap();
    let mut churn = Churn {
        kube: &kube,
        pods_dir: node.pods_dir.clone(),
        containers_dir: node.containers_dir.clone(),
        rng: Rng(0x16_0000 + scenario as u64),
        pods: Vec::new(),
        next_short: Instant::now(),
        shorts: 0,
    };
    for _ in 0..LONG_PODS {
        churn.add(true);
    }

    // The node's collector, up before the churn starts.
    let mut first_lf = Some(node.start("first", &es));
    wait_logged(first_lf.as_ref().unwrap(), SCANNED, START_WAIT);
    let mut first_done: Option<Daemon> = None;
    let mut second: Option<Daemon> = None;
    let mut second_started = None;
    let mut stop_at: Option<f64> = None;
    let mut first_exit: Option<(f64, Option<i32>)> = None;
    let mut second_ready = false;
    let mut last_ready_poll = Instant::now();

    let phase = Instant::now();
    churn.next_short = phase;
    loop {
        let now = phase.elapsed();
        let creating = now < churn_len;
        if !creating && churn.settled() && (scenario != Scenario::Restart || second.is_some()) {
            break;
        }
        assert!(
            now < churn_len + START_WAIT + EXIT_WAIT,
            "the scenario did not finish: first exit {first_exit:?}, second started {}",
            second.is_some()
        );
        churn.step(creating);
        // Only the first, once stopped, may exit.
        let first_running = first_lf.as_mut().filter(|_| stop_at.is_none());
        for d in first_running.into_iter().chain(second.as_mut()) {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!(
                    "logferry exited unexpectedly ({status}); stderr:\n{}",
                    d.stderr()
                );
            }
        }
        match scenario {
            Scenario::SurgeSigterm | Scenario::SurgeSigkill => {
                if second.is_none() && now >= second_at {
                    second = Some(node.start("second", &es));
                    second_started = Some(Instant::now());
                }
                if let Some(s) = &second {
                    if !second_ready && last_ready_poll.elapsed() >= Duration::from_millis(250) {
                        last_ready_poll = Instant::now();
                        second_ready = matches!(http(s.admin, "GET", "/readyz"), Ok((200, _)));
                    }
                }
                let due = second_started.is_some_and(|t| t.elapsed() >= STOP_AFTER_SECOND);
                if stop_at.is_none() && second_ready && due {
                    let d = first_lf.as_mut().unwrap();
                    stop_at = Some(wall());
                    if scenario == Scenario::SurgeSigterm {
                        d.signal(15);
                    } else {
                        d.child.kill().unwrap(); // SIGKILL
                    }
                }
            }
            Scenario::Restart => {
                if stop_at.is_none() && now >= second_at + STOP_AFTER_SECOND {
                    stop_at = Some(wall());
                    first_lf.as_ref().unwrap().signal(15);
                }
                if let Some((exited, _)) = first_exit {
                    if second.is_none() && wall() >= exited + DOWN.as_secs_f64() {
                        second = Some(node.start("second", &es));
                    }
                }
            }
        }
        if let (Some(stopped), None) = (stop_at, first_exit) {
            let d = first_lf.as_mut().unwrap();
            if let Some(status) = d.child.try_wait().unwrap() {
                first_exit = Some((wall(), status.code()));
                first_done = first_lf.take();
            } else {
                assert!(
                    wall() - stopped < EXIT_WAIT.as_secs_f64(),
                    "the first logferry did not exit within {EXIT_WAIT:?} of its stop; stderr:\n{}",
                    d.stderr()
                );
            }
        }
        std::thread::sleep(TICK);
    }
    let first_lf = first_done.expect("the first logferry was stopped");
    let mut second = second.expect("the second logferry ran");
    let (first_exited, first_code) = first_exit.unwrap();
    let stop_at = stop_at.unwrap();
    let written: usize = churn.pods.iter().map(|p| p.written.len()).sum();
    let (a_log, b_log) = (first_lf.stderr(), second.stderr());
    let down = (scenario == Scenario::Restart).then(|| Down {
        stop: stop_at,
        scanned: wait_logged(&second, SCANNED, START_WAIT),
        synced: wait_logged(&second, SYNCED, START_WAIT),
    });

    // Wait (bounded) until Elasticsearch holds every line it must.
    let wait = Instant::now();
    let mut verdict = check(&es, &churn.pods, down);
    while !verdict.complete() && wait.elapsed() < FINAL_WAIT {
        std::thread::sleep(Duration::from_millis(500));
        verdict = check(&es, &churn.pods, down);
    }
    let caught_up = wait.elapsed();
    second.signal(15);
    let second_code = second.wait_exit(EXIT_WAIT);
    let verdict = check(&es, &churn.pods, down);
    let stats = es.stats();

    // The lock, from the logs.
    let acquired_a = logged(&a_log, ACQUIRED);
    let acquired_b = logged(&b_log, ACQUIRED);
    let released_a = logged(&a_log, RELEASED);
    let standby_b = logged(&b_log, STANDBY);
    let mut lock_problems = Vec::new();
    let mut note = |ok: bool, what: String| {
        if !ok {
            lock_problems.push(what);
        }
    };
    note(
        acquired_a.len() == 1 && acquired_a[0].1["standby"] == false,
        format!("the first took the lock once, at start: {acquired_a:?}"),
    );
    note(
        acquired_b.len() == 1,
        format!("the second took the lock once: {acquired_b:?}"),
    );
    let t_a_acq = acquired_a.first().map_or(f64::NAN, |(t, _)| *t);
    let t_b_acq = acquired_b.first().map_or(f64::NAN, |(t, _)| *t);
    let handover;
    let shares = (verdict.full_metadata as f64) * 100.0 / verdict.documents.max(1) as f64;
    let knowable = verdict.documents - verdict.unknowable_docs;
    let shares_knowable = (verdict.full_metadata as f64) * 100.0 / knowable.max(1) as f64;
    match scenario {
        Scenario::SurgeSigterm | Scenario::SurgeSigkill => {
            let t_standby = standby_b.first().map_or(f64::NAN, |(t, _)| *t);
            note(
                standby_b.len() == 1 && t_a_acq < t_standby && t_standby < stop_at,
                format!("the second waited in standby before the first was stopped: {standby_b:?}"),
            );
            note(
                acquired_b
                    .first()
                    .is_some_and(|(_, v)| v["standby"] == true),
                format!("the second took the lock from standby: {acquired_b:?}"),
            );
            if scenario == Scenario::SurgeSigterm {
                let t_rel = released_a.first().map_or(f64::NAN, |(t, _)| *t);
                note(
                    released_a.len() == 1 && stop_at < t_rel && t_rel <= t_b_acq,
                    format!(
                        "the first released the lock after its SIGTERM and before the second took it: released {released_a:?}, acquired {t_b_acq}"
                    ),
                );
                note(
                    a_log.contains(STOPPED),
                    "the first logged its clean stop".into(),
                );
                note(
                    first_code == Some(0),
                    format!("the first exited {first_code:?}"),
                );
                handover = format!(
                    "SIGTERM → lock released {:.2} s (drain, checkpoints, pods.json) → acquired by the standby {:.0} ms later; the first exited {first_code:?} {:.2} s after its SIGTERM",
                    t_rel - stop_at,
                    (t_b_acq - t_rel) * 1e3,
                    first_exited - stop_at
                );
            } else {
                note(
                    released_a.is_empty() && stop_at < t_b_acq,
                    format!("the second took the lock only after the SIGKILL: {acquired_b:?}"),
                );
                handover = format!(
                    "SIGKILL → lock acquired by the standby {:.0} ms later",
                    (t_b_acq - stop_at) * 1e3
                );
            }
        }
        Scenario::Restart => {
            let t_rel = released_a.first().map_or(f64::NAN, |(t, _)| *t);
            note(
                released_a.len() == 1 && t_rel < t_b_acq && standby_b.is_empty(),
                format!("released {released_a:?} before the restart acquired {acquired_b:?}, no standby"),
            );
            note(
                first_code == Some(0),
                format!("the first exited {first_code:?}"),
            );
            let Down {
                stop: from,
                scanned: to,
                ..
            } = down.unwrap();
            handover = format!(
                "SIGTERM → exit {:.2} s; no logferry for {:.1} s; SIGTERM → the new process's initial scan {:.1} s; \
                 files removed in that window {}: {} lines not delivered ({} of them written before the SIGTERM, the earliest {:.0} ms before it), \
                 of which {} files ({} lines) created and removed entirely in it; \
                 {} documents of pods created and deleted in the API while no logferry watched (path metadata only)",
                first_exited - stop_at,
                to - from - (first_exited - stop_at),
                to - from,
                verdict.down_files,
                verdict.down_lines_lost,
                verdict.down_lost_before_stop,
                verdict.down_lost_oldest * 1e3,
                verdict.unseen_files,
                verdict.unseen_lines,
                verdict.unknowable_docs,
            );
        }
    }
    let held = acquired_b
        .first()
        .filter(|(_, v)| v["standby"] == true)
        .map(|(_, v)| {
            format!(
                "held {} files, {} deleted while held; ",
                v["held"], v["deleted_while_held"]
            )
        })
        .unwrap_or_default();
    println!(
        "rollout[{scenario:?}]: {written} lines in {} pods ({} short-lived) over {:.0?} of churn; \
         {} documents, {} of {} required lines delivered, {} duplicates; {:.1} % of documents with full API metadata ({:.1} % of the {knowable} whose pod a logferry could see); \
         {held}{handover}; caught up {caught_up:.1?} after the churn; 409 conflicts {}; total {:.1?}",
        churn.pods.len(),
        churn.shorts,
        churn_len,
        verdict.documents,
        verdict.required_delivered,
        verdict.required,
        verdict.duplicates.len(),
        shares,
        shares_knowable,
        stats.conflicts,
        t0.elapsed(),
    );
    let failed = !verdict.complete() || !lock_problems.is_empty() || second_code != Some(0);
    let kept = failed.then(|| node.dir.keep());
    let report = |what: &str| {
        format!(
            "{what} (files kept in {kept:?})\nmissing ({}):\n  {}\nduplicates ({}):\n  {}\nproblems ({}):\n  {}\nlock: {lock_problems:?}\n--- first stderr (tail) ---\n{}\n--- second stderr (tail) ---\n{}",
            verdict.missing.len(),
            first(&verdict.missing, 20),
            verdict.duplicates.len(),
            first(&verdict.duplicates, 20),
            verdict.problems.len(),
            first(&verdict.problems, 20),
            tail(&a_log, 30),
            tail(&second.stderr(), 30),
        )
    };
    assert!(verdict.missing.is_empty(), "{}", report("lines missing"));
    assert!(
        verdict.duplicates.is_empty(),
        "{}",
        report("lines twice in the index")
    );
    assert!(verdict.problems.is_empty(), "{}", report("wrong documents"));
    assert_eq!(
        verdict.full_metadata + verdict.unknowable_docs,
        verdict.documents,
        "{}",
        report("documents without full metadata")
    );
    assert!(lock_problems.is_empty(), "{}", report("lock ownership"));
    assert_eq!(
        second_code,
        Some(0),
        "{}",
        report("the second's SIGTERM exit code")
    );
    if scenario != Scenario::Restart {
        assert_eq!(
            verdict.required,
            written,
            "{}",
            report("every line required")
        );
    }
    drop(second);
    drop(first_lf);
    rt.block_on(async move {
        es.shutdown().await;
        drop(kube);
    });
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn surge_handover_with_sigterm_loses_nothing() {
    run(Scenario::SurgeSigterm);
}

#[test]
fn surge_handover_with_sigkill_loses_nothing() {
    run(Scenario::SurgeSigkill);
}

#[test]
fn restart_without_surge_loses_only_what_no_collector_could_read() {
    run(Scenario::Restart);
}

#[test]
fn log_timestamps_parse() {
    assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0.0));
    assert_eq!(
        parse_timestamp("2026-12-04T10:20:00.5Z"),
        Some(1_796_379_600.5)
    );
}
