//! Crash safety: the tailer runs as a child process (`examples/tail_ack.rs`)
//! that appends every record to an output file with `fsync` before
//! acknowledging it. The test SIGKILLs it at random moments (50 times) while
//! writers keep writing and rotating, restarts it, and proves that
//!
//! 1. every record written was acknowledged (recorded) at least once;
//! 2. after each crash, everything the restarted tailer delivers for a file
//!    starts at or after that file's checkpoint as persisted at the crash, so
//!    re-deliveries carry the same `(file, start)` identity and deterministic
//!    ids make them idempotent;
//! 3. no persisted checkpoint ran ahead of the acknowledgements: every record
//!    of a file that ends at or before its checkpoint was recorded before the crash.

mod common;

use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONTAINERS: usize = 4;
const KILLS: usize = 50;

fn message(container: usize, seq: u64) -> String {
    format!(
        "c{container} {seq:08} {}",
        "0123456789".repeat((seq % 23) as usize)
    )
}

fn tail_ack_binary() -> PathBuf {
    // tests/ and examples/ share the target directory: target/<profile>/examples/tail_ack
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join("tail_ack");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "logferry-tail", "--example", "tail_ack"])
            .status()
            .expect("cargo build --example tail_ack");
        assert!(status.success());
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

fn spawn(bin: &Path, node: &common::Node, out: &Path) -> Child {
    Command::new(bin)
        .arg(node.pods())
        .arg(node.containers())
        .arg(node.data())
        .arg(out)
        .env("TAIL_ACK_STOP_ON_EOF", "1")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tail_ack")
}

/// The checkpoints the tailer will load: `checkpoints.json`, else `.prev`.
fn persisted_checkpoints(data: &Path) -> HashMap<String, u64> {
    for name in ["checkpoints.json", "checkpoints.json.prev"] {
        let Ok(bytes) = std::fs::read(data.join(name)) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let mut m = HashMap::new();
        for f in v["files"].as_array().unwrap() {
            let id = format!(
                "{}:{}:{:x}",
                f["dev"],
                f["ino"],
                f["fingerprint"].as_u64().unwrap()
            );
            m.insert(id, f["offset"].as_u64().unwrap());
        }
        return m;
    }
    HashMap::new()
}

/// Cuts a line torn by the kill (a record that was never acknowledged).
fn trim_torn_tail(out: &Path) -> u64 {
    let bytes = std::fs::read(out).unwrap_or_default();
    let keep = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    if keep < bytes.len() {
        let f = std::fs::OpenOptions::new().write(true).open(out).unwrap();
        f.set_len(keep as u64).unwrap();
    }
    keep as u64
}

struct Rec {
    file: String,
    start: u64,
    end: u64,
    message: String,
}

fn parse_out(bytes: &[u8]) -> Vec<Rec> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            Rec {
                file: it.next().unwrap().to_owned(),
                start: it.next().unwrap().parse().unwrap(),
                end: it.next().unwrap().parse().unwrap(),
                message: it.next().unwrap_or("").to_owned(),
            }
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_redelivers_only_after_checkpoints() {
    let bin = tail_ack_binary();
    let node = common::Node::new();
    let out = node.root.path().join("acked.txt");
    let stop = Arc::new(AtomicBool::new(false));
    let tailer_up = Arc::new(AtomicBool::new(false));
    let (pods, containers) = (node.pods(), node.containers());
    let (s, up) = (stop.clone(), tailer_up.clone());
    let writer = std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, u32)> {
        let mut ws = Vec::new();
        for c in 0..CONTAINERS {
            let mut w = common::writer::ContainerLogWriter::create(
                &pods,
                Some(&containers),
                "crash",
                &format!("pod-{c}"),
                &format!("uid-{c}"),
                "app",
                &format!("{c:064x}"),
            )?;
            w.set_max_files(4);
            ws.push(w);
        }
        let mut seqs = vec![0u64; CONTAINERS];
        let mut rotations = 0;
        while !s.load(Ordering::Relaxed) {
            for (c, w) in ws.iter_mut().enumerate() {
                for _ in 0..5 {
                    let m = message(c, seqs[c]);
                    if seqs[c] % 7 == 0 {
                        w.write_split("stdout", m.as_bytes(), 50)?;
                    } else {
                        w.write_line("stdout", m.as_bytes())?;
                    }
                    seqs[c] += 1;
                }
                // Rotation gzips and unlinks older rotated files: only while a
                // tailer is up to hold them open (a file unlinked while the
                // collector is down is gone; see the crate docs on .gz files).
                if up.load(Ordering::Relaxed) && w.active_len()? > 150_000 {
                    w.rotate()?;
                    rotations += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok((seqs, rotations))
    });

    let mut rng = rand::rng();
    let mut crashes: Vec<(u64, HashMap<String, u64>)> = Vec::new();
    let t0 = Instant::now();
    for _ in 0..KILLS {
        let before = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let mut child = spawn(&bin, &node, &out);
        // Rotations (which gzip and unlink older files) only once the tailer
        // has scanned and delivered something, that is, holds its files open.
        let up_by = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) == before
            && Instant::now() < up_by
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        tailer_up.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(rng.random_range(40..900)));
        tailer_up.store(false, Ordering::Relaxed);
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let boundary = trim_torn_tail(&out);
        crashes.push((boundary, persisted_checkpoints(&node.data())));
    }
    stop.store(true, Ordering::Relaxed);
    let (seqs, rotations) = writer.join().unwrap().unwrap();
    // A last, clean run reads everything that is left, then SIGTERM.
    let mut child = spawn(&bin, &node, &out);
    let total: u64 = seqs.iter().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut distinct = 0;
    while Instant::now() < deadline {
        let bytes = std::fs::read(&out).unwrap_or_default();
        distinct = parse_out(&bytes)
            .iter()
            .map(|r| r.message.as_str())
            .collect::<HashSet<_>>()
            .len() as u64;
        if distinct >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Graceful stop (what SIGTERM does) by closing its standard input: the
    // crate forbids `unsafe`, so no libc::kill, and no dependency on kill(1).
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean shutdown: {status:?}");
    assert_eq!(
        distinct, total,
        "distinct acknowledged records after the final run"
    );
    println!(
        "{KILLS} SIGKILLs in {:?}; {total} records written, {rotations} rotations; {distinct} distinct acknowledged",
        t0.elapsed()
    );

    let bytes = std::fs::read(&out).unwrap();
    let recs = parse_out(&bytes);
    // 1. At least once.
    let got: HashSet<&str> = recs.iter().map(|r| r.message.as_str()).collect();
    for (c, &n) in seqs.iter().enumerate() {
        for seq in 0..n {
            assert!(
                got.contains(message(c, seq).as_str()),
                "container {c} seq {seq} never acknowledged"
            );
        }
    }
    // Offsets of each line are the same on every delivery (deterministic identity).
    let mut identity: HashMap<(&str, u64), (&str, u64)> = HashMap::new();
    for r in &recs {
        let prev = identity.insert((r.file.as_str(), r.start), (r.message.as_str(), r.end));
        if let Some(p) = prev {
            assert_eq!(
                p,
                (r.message.as_str(), r.end),
                "same (file, start) must be the same record"
            );
        }
    }
    // 2 and 3, per crash.
    let mut offsets = Vec::with_capacity(recs.len() + 1);
    let mut pos = 0u64;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        offsets.push(pos);
        pos += line.len() as u64;
    }
    let mut redelivered = 0usize;
    for (i, (boundary, ckpts)) in crashes.iter().enumerate() {
        let split = offsets.partition_point(|&o| o < *boundary);
        let (before, after) = recs.split_at(split);
        let next_boundary = crashes.get(i + 1).map(|c| c.0).unwrap_or(u64::MAX);
        let after_end = offsets.partition_point(|&o| o < next_boundary);
        let after = &after[..after_end - split];
        let acked_before: HashSet<(&str, u64)> =
            before.iter().map(|r| (r.file.as_str(), r.start)).collect();
        for r in after {
            if let Some(&cp) = ckpts.get(&r.file) {
                assert!(
                    r.start >= cp,
                    "crash {i}: delivered {} at {} before its checkpoint {cp}",
                    r.file,
                    r.start
                );
            }
            if acked_before.contains(&(r.file.as_str(), r.start)) {
                redelivered += 1;
            }
        }
        let mut ends: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
        for r in before {
            ends.entry(r.file.as_str())
                .or_default()
                .push((r.start, r.end));
        }
        for (file, &cp) in ckpts {
            let Some(spans) = ends.get(file.as_str()) else {
                continue; // a file skipped wholesale (empty) or not yet seen
            };
            // Every byte below the checkpoint is covered by acknowledged records.
            let mut covered: Vec<(u64, u64)> =
                spans.iter().copied().filter(|&(s, _)| s < cp).collect();
            covered.sort();
            let mut reach = 0u64;
            for (s, e) in covered {
                assert!(s <= reach, "crash {i}: {file}: bytes {reach}..{s} below checkpoint {cp} were never acknowledged");
                reach = reach.max(e);
            }
            assert!(
                reach >= cp,
                "crash {i}: {file}: checkpoint {cp} ahead of acknowledged {reach}"
            );
        }
    }
    println!("{redelivered} re-deliveries after crashes, all at or after the persisted checkpoint");
}

/// Lines of `out` (records delivered), as `(file identity, start, message)`.
fn delivered(out: &Path) -> Vec<Rec> {
    parse_out(&std::fs::read(out).unwrap_or_default())
}

/// The descriptors of `pid` that point at deleted files.
fn deleted_fds(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .filter(|p| p.ends_with(" (deleted)"))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A deleted pod's files are removed while downstream is down (acknowledgements
/// held), then the collector is SIGKILLed: the unacknowledged lines survive in
/// the spool and are delivered after the restart, with their original
/// identity, and the spool is emptied once they are acknowledged.
#[test]
fn deleted_unacknowledged_file_survives_sigkill_through_the_spool() {
    let bin = tail_ack_binary();
    let node = common::Node::new();
    let out = node.root.path().join("acked.txt");
    let mut w = node.writer("short-lived", "task");
    // About 3 MB: a dozen read rounds, so that checkpoints (which advance per
    // acknowledged read round) land inside the file.
    let total = 20_000u64;
    for seq in 0..total {
        w.write_line("stdout", message(0, seq).as_bytes()).unwrap();
    }
    // Downstream acknowledges the first 5,000 records, then goes down.
    let mut child = Command::new(&bin)
        .arg(node.pods())
        .arg(node.containers())
        .arg(node.data())
        .arg(&out)
        .env("TAIL_ACK_STOP_ON_EOF", "1")
        .env("TAIL_ACK_HOLD_AFTER", "5000")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tail_ack");
    wait_until("every line read", || delivered(&out).len() as u64 == total);
    let original = delivered(&out)[0].file.clone();
    // Let the checkpoint of the acknowledged prefix be written (every 50 ms).
    wait_until("a checkpoint", || {
        persisted_checkpoints(&node.data())
            .get(&original)
            .is_some_and(|&cp| cp > 0)
    });
    let checkpoint = persisted_checkpoints(&node.data())[&original];
    // kubelet's container GC: the pod's files are gone; the unacknowledged
    // lines now exist only in the collector.
    w.remove_all().unwrap();
    let spool = node.data().join("spool");
    wait_until("the spooled copy", || {
        std::fs::read_dir(&spool).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".log"))
        })
    });
    // Reading from the copy, the deleted file's descriptor (and disk space) is given back.
    wait_until("no descriptor of a deleted file", || {
        deleted_fds(child.id()).is_empty()
    });
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let boundary = trim_torn_tail(&out);
    let before = delivered(&out).len();

    // Downstream is back: the restarted collector delivers the rest from the spool.
    let mut child = spawn(&bin, &node, &out);
    wait_until("the spooled lines delivered again", || {
        let got: HashSet<String> = delivered(&out)[before..]
            .iter()
            .map(|r| r.message.clone())
            .collect();
        (5_000..total).all(|seq| got.contains(&message(0, seq)))
    });
    wait_until("the spool emptied", || {
        std::fs::read_dir(&spool).is_ok_and(|rd| rd.count() == 0)
    });
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "clean shutdown");

    let all = delivered(&out);
    let (first_run, after) = all.split_at(before);
    assert!(std::fs::metadata(&out).unwrap().len() >= boundary);
    let by_start: HashMap<u64, &str> = first_run
        .iter()
        .map(|r| (r.start, r.message.as_str()))
        .collect();
    for r in after {
        assert_eq!(
            r.file, original,
            "same identity, so the same ids downstream"
        );
        assert!(
            r.start >= checkpoint,
            "{} before the checkpoint {checkpoint}",
            r.start
        );
        assert_eq!(
            by_start.get(&r.start),
            Some(&r.message.as_str()),
            "same offsets, same record"
        );
    }
    println!(
        "{} records re-delivered from the spool after the SIGKILL (checkpoint {checkpoint})",
        after.len()
    );
}
