//! Cost of 1,000 idle files: CPU time of the process while the tailer
//! follows 1,000 quiet container logs for 10 s (no busy polling: inotify plus
//! one `fstat` per open file per second).
//!
//! `cargo bench -p logferry-tail --bench idle`

use logferry_core::Acker;
use logferry_tail::{NoopEvents, RunMode, TailConfig, Tailer};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FILES: usize = 1000;
const IDLE: Duration = Duration::from_secs(10);

/// utime + stime of this process in seconds, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = tempfile::tempdir().unwrap();
    let pods = root.path().join("pods");
    let containers = root.path().join("containers");
    std::fs::create_dir_all(&containers).unwrap();
    for i in 0..FILES {
        let dir = pods.join(format!("ns_pod-{i}_uid-{i}/app"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = std::fs::File::create(dir.join("0.log")).unwrap();
        writeln!(f, "2026-11-22T13:45:10.123Z stdout F pod {i} started").unwrap();
    }
    let mut cfg = TailConfig::kubernetes(&pods, &containers, root.path().join("data"));
    cfg.max_open_files = 2 * FILES;
    if std::env::var_os("IDLE_NO_RESCAN").is_some() {
        cfg.rescan_interval = Duration::from_secs(3600);
    }
    let tailer = Tailer::new(cfg, Arc::new(NoopEvents)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let (acker, acks) = Acker::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(tailer.run(RunMode::Follow, tx, acks, stop.clone()));
    let mut n = 0;
    let t = Instant::now();
    while n < FILES {
        let b = rx.recv().await.unwrap();
        n += b.records.len();
        acker.ack(b.ack);
    }
    println!("initial read of {FILES} files: {:?}", t.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await; // let the first checkpoint settle
    let c0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(IDLE).await;
    let cpu = cpu_seconds() - c0;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "{FILES} idle files for {wall:.1} s: {cpu:.2} s CPU ({:.2} % of one core)",
        cpu / wall * 100.0
    );
    // One append wakes exactly that file.
    let t1 = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(pods.join("ns_pod-7_uid-7/app/0.log"))
        .unwrap();
    writeln!(f, "2026-11-22T13:45:11Z stdout F wake up").unwrap();
    let b = rx.recv().await.unwrap();
    println!(
        "append to one of {FILES} idle files delivered after {:?}",
        t1.elapsed()
    );
    acker.ack(b.ack);
    stop.cancel();
    drop(rx);
    drop(acker);
    run.await.unwrap().unwrap();
}
