//! Shared by the benchmarks: Loghub message text and synthetic kubelet files.

use bytes::Bytes;
use logferry_core::{
    AckToken, ContainerMeta, FileId, KubeLogPath, LogFormat, MetadataOrigin, PodMeta, Record,
    RecordBatch, RecordFlags, Source, SourceId, Stream,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Lines of every `*.log` in `tests/corpus/loghub` (Loghub samples, see its SOURCE.md).
pub fn loghub_lines() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/loghub");
    let mut lines = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the Loghub corpus in {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    entries.sort();
    for p in entries {
        let bytes = std::fs::read(&p).unwrap();
        lines.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    assert!(!lines.is_empty(), "no Loghub lines in {}", dir.display());
    lines
}

/// Metadata as the API gives it for a typical Deployment pod.
pub fn pod_meta(n: u64) -> Arc<PodMeta> {
    Arc::new(PodMeta {
        origin: MetadataOrigin::Api,
        namespace: "checkout".into(),
        pod_name: format!("checkout-api-7d9c6b5f4-{n:05}"),
        pod_uid: format!("3f1c2a9e-0000-4000-8000-{n:012}"),
        pod_ip: Some(format!("10.42.{}.{}", n / 250, n % 250)),
        node_name: Some("node-a-1".into()),
        labels: BTreeMap::from([
            ("app.kubernetes.io/name".into(), "checkout-api".into()),
            ("app.kubernetes.io/version".into(), "2.14.1".into()),
            ("pod-template-hash".into(), "7d9c6b5f4".into()),
            ("team".into(), "payments".into()),
        ]),
        annotations: BTreeMap::new(),
        namespace_labels: BTreeMap::new(),
        owner: Some(("ReplicaSet".into(), "checkout-api-7d9c6b5f4".into())),
        container: ContainerMeta {
            name: "api".into(),
            image: Some("registry.example.com/checkout/api:2.14.1".into()),
            id: Some(format!("{:064x}", 0xfeed + n)),
            runtime: Some("containerd".into()),
        },
        airflow: None,
    })
}

/// A kubelet-layout source.
pub fn source(n: u64) -> Arc<Source> {
    let path = PathBuf::from(format!(
        "/var/log/pods/checkout_checkout-api-7d9c6b5f4-{n:05}_3f1c2a9e-0000-4000-8000-{n:012}/api/0.log"
    ));
    Arc::new(Source {
        id: SourceId(n),
        file: FileId {
            dev: 2049,
            ino: 5_000 + n,
            fingerprint: 0xabcdef ^ n,
        },
        kube: KubeLogPath::parse(&path),
        path,
        container_id: Some(format!("{:064x}", 0xfeed + n)),
        format: LogFormat::Cri,
    })
}

/// `total` records of Loghub text in batches of `per_batch`, over `files` files.
pub fn batches(lines: &[String], total: usize, per_batch: usize, files: u64) -> Vec<RecordBatch> {
    let sources: Vec<_> = (0..files).map(source).collect();
    let metas: Vec<_> = (0..files).map(pod_meta).collect();
    let mut offsets = vec![0u64; files as usize];
    let mut seqs = vec![0u64; files as usize];
    let mut out = Vec::new();
    let mut i = 0;
    let mut turn = 0usize;
    while i < total {
        let f = turn % files as usize;
        turn += 1;
        let mut records = Vec::with_capacity(per_batch);
        for _ in 0..per_batch.min(total - i) {
            let msg = &lines[i % lines.len()];
            let start = offsets[f];
            offsets[f] += msg.len() as u64 + 45;
            records.push(Record {
                start,
                end: offsets[f],
                timestamp_nanos: 1_795_341_600_000_000_000 + i as i64 * 1_000,
                stream: Stream::Stdout,
                flags: RecordFlags::NONE,
                message: Bytes::copy_from_slice(msg.as_bytes()),
            });
            i += 1;
        }
        out.push(RecordBatch {
            source: sources[f].clone(),
            ack: AckToken {
                source: sources[f].id,
                seq: seqs[f],
            },
            records,
            meta: Some(metas[f].clone()),
        });
        seqs[f] += 1;
    }
    out
}

/// CPU seconds (user + system) of process `pid` (`"self"` for this one) so far,
/// from `/proc/<pid>/stat` (proc(5)). getrusage(2) would need `unsafe`, which the
/// workspace forbids; the figures are the same kernel counters, in clock ticks.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let after = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / ticks
}

/// Whether this is a real benchmark run (`cargo bench` passes `--bench`), not
/// the smoke run of `cargo test --benches`.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}
