//! Random operation sequences against real files, compared with a model of
//! what was written: writes (whole lines and `P`-split lines, both streams),
//! kubelet rotations (with gzip + unlink of older rotated files), container
//! restarts (`1.log`), whole-pod deletion by container GC, and consumer
//! stalls (backpressure). Seeded, so a failure names its seed. Every line
//! written must come out exactly once, in order per file.

mod common;

use common::{writer::ContainerLogWriter, Node, Running};
use logferry_tail::RunMode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn message(pod: usize, seq: u64, len: usize) -> String {
    format!("p{pod} {seq:07} {}", "x".repeat(len))
}

/// Runs one seeded sequence; returns how many operations of each kind ran.
async fn run_seed(seed: u64) -> String {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.batch_max_records = 64;
    let run = Running::start(cfg, RunMode::Follow, 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut rng = StdRng::seed_from_u64(seed);
    // pod index -> (writer, when its newest file was created)
    let mut live: HashMap<usize, (ContainerLogWriter, Instant)> = HashMap::new();
    let mut written: HashMap<usize, u64> = HashMap::new();
    let mut next_pod = 0usize;
    let mut ops: Vec<String> = Vec::new();
    let new_pod = |n: usize| {
        ContainerLogWriter::create(
            &node.pods(),
            Some(&node.containers()),
            "model",
            &format!("pod-{n}"),
            &format!("uid-{n}"),
            "app",
            &format!("{n:064x}"),
        )
        .unwrap()
    };
    for _ in 0..3 {
        live.insert(next_pod, (new_pod(next_pod), Instant::now()));
        next_pod += 1;
    }
    for _ in 0..300 {
        let pods: Vec<usize> = live.keys().copied().collect();
        let p = pods[rng.random_range(0..pods.len())];
        match rng.random_range(0..100) {
            0..=69 => {
                let (w, _) = live.get_mut(&p).unwrap();
                for _ in 0..rng.random_range(1..40) {
                    let seq = written.entry(p).or_default();
                    let m = message(p, *seq, rng.random_range(0..200));
                    if rng.random_bool(0.1) {
                        w.write_split(
                            if rng.random_bool(0.5) {
                                "stdout"
                            } else {
                                "stderr"
                            },
                            m.as_bytes(),
                            rng.random_range(1..80),
                        )
                        .unwrap();
                    } else {
                        w.write_line(
                            if rng.random_bool(0.7) {
                                "stdout"
                            } else {
                                "stderr"
                            },
                            m.as_bytes(),
                        )
                        .unwrap();
                    }
                    *seq += 1;
                }
                ops.push(format!("write p{p} up to {}", written[&p]));
            }
            70..=79 => {
                // Rotation gzips and unlinks the previous rotated file, so it
                // too needs the newest file to have existed a little while
                // (kubelet rotates at most every 10 s).
                let (w, born) = live.get_mut(&p).unwrap();
                if born.elapsed() > Duration::from_millis(150) {
                    w.rotate().unwrap();
                    *born = Instant::now();
                    ops.push(format!("rotate p{p}"));
                }
            }
            80..=83 => {
                let (w, born) = live.get_mut(&p).unwrap();
                w.restart().unwrap();
                *born = Instant::now();
                ops.push(format!("restart p{p}"));
            }
            84..=88 => {
                // Container GC removes a pod whose newest file has existed for
                // a little while: a file created and deleted within the
                // tailer's event latency is never seen by anyone.
                if live[&p].1.elapsed() > Duration::from_millis(150) && live.len() > 1 {
                    let (w, _) = live.remove(&p).unwrap();
                    w.remove_all().unwrap();
                    ops.push(format!("delete p{p}"));
                    live.insert(next_pod, (new_pod(next_pod), Instant::now()));
                    next_pod += 1;
                }
            }
            89..=93 => {
                run.paused.store(true, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(rng.random_range(10..80))).await;
                run.paused.store(false, Ordering::Relaxed);
            }
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(1..20))).await,
        }
        tokio::task::yield_now().await;
    }
    let total: u64 = written.values().sum();
    let ok = run
        .wait_for(Duration::from_secs(30), |r| r.len() as u64 >= total)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, recs, ev) = run.finish().await;
    if !ok {
        let mut got: HashMap<usize, Vec<u64>> = HashMap::new();
        for (_, r) in &recs {
            let s = std::str::from_utf8(&r.message).unwrap();
            let mut it = s.splitn(3, ' ');
            let p: usize = it.next().unwrap()[1..].parse().unwrap();
            got.entry(p)
                .or_default()
                .push(it.next().unwrap().parse().unwrap());
        }
        for (p, n) in &written {
            let g = got.get(p).cloned().unwrap_or_default();
            let missing: Vec<u64> = (0..*n).filter(|s| !g.contains(s)).collect();
            if !missing.is_empty() {
                println!(
                    "p{p}: missing {:?}..{:?} ({} seqs)",
                    missing.first(),
                    missing.last(),
                    missing.len()
                );
            }
        }
        for o in &ops {
            println!("{o}");
        }
        let mut per_src: std::collections::BTreeMap<(String, u64), (u64, u64, usize)> =
            Default::default();
        for (src, r) in &recs {
            let s = std::str::from_utf8(&r.message).unwrap();
            let mut it = s.splitn(3, ' ');
            let p = it.next().unwrap().to_owned();
            let seq: u64 = it.next().unwrap().parse().unwrap();
            let e = per_src
                .entry((format!("{p} {}", src.path.display()), src.id.0))
                .or_insert((seq, seq, 0));
            e.0 = e.0.min(seq);
            e.1 = e.1.max(seq);
            e.2 += 1;
        }
        for ((k, id), v) in per_src {
            println!("source {id} {k}: seqs {}..={} ({} records)", v.0, v.1, v.2);
        }
        println!("events: {ev:?}");
    }
    assert!(ok, "seed {seed}: {} of {total} records arrived", recs.len());
    assert_eq!(recs.len() as u64, total, "seed {seed}: duplicates");
    assert_eq!(ev.lost_bytes.load(Ordering::Relaxed), 0, "seed {seed}");
    let mut seen: HashMap<usize, Vec<bool>> = written
        .iter()
        .map(|(p, n)| (*p, vec![false; *n as usize]))
        .collect();
    let mut last: HashMap<(u64, usize), u64> = HashMap::new();
    for (src, r) in &recs {
        let s = std::str::from_utf8(&r.message).unwrap();
        let mut it = s.splitn(3, ' ');
        let p: usize = it.next().unwrap()[1..].parse().unwrap();
        let seq: u64 = it.next().unwrap().parse().unwrap();
        assert!(
            !std::mem::replace(&mut seen.get_mut(&p).unwrap()[seq as usize], true),
            "seed {seed}: p{p} {seq} twice"
        );
        if let Some(prev) = last.insert((src.id.0, p), seq) {
            assert!(seq > prev, "seed {seed}: order in {}", src.path.display());
        }
    }
    let count = |k: &str| ops.iter().filter(|o| o.starts_with(k)).count();
    let summary = format!(
        "{total} records, {} rotations, {} restarts, {} pod deletions",
        count("rotate"),
        count("restart"),
        count("delete")
    );
    assert!(
        seen.values().flatten().all(|b| *b),
        "seed {seed}: missing records"
    );
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_write_rotate_restart_delete_sequences_match_the_model() {
    let seeds: Vec<u64> = match std::env::var("MODEL_SEEDS") {
        Ok(v) => v.split(',').map(|s| s.parse().unwrap()).collect(),
        Err(_) => (0..6).collect(),
    };
    for seed in seeds {
        let t = Instant::now();
        let what = run_seed(seed).await;
        println!("seed {seed}: ok in {:?}: {what}", t.elapsed());
    }
}
