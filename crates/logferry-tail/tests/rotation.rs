//! Rotation under load with real files: a writer thread appends CRI lines at a
//! steady rate to several containers while the test rotates kubelet-style
//! (rename + reopen, gzip + unlink of the older rotated file), rotates with
//! copytruncate, and deletes a container's files while part of them is
//! unread (and rotated files are gzipped and unlinked while unread). The
//! tailer's output must hold every record exactly once, in order per file.

mod common;

use common::{Node, Running};
use logferry_core::RecordFlags;
use logferry_tail::RunMode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn message(container: usize, seq: u64) -> String {
    format!(
        "c{container} {seq:08} {}",
        "abcdefghij".repeat((seq % 37) as usize)
    )
}

fn parse(msg: &[u8]) -> (usize, u64) {
    let s = std::str::from_utf8(msg).expect("utf8 message");
    let mut it = s.split(' ');
    let c = it.next().unwrap()[1..].parse().unwrap();
    let seq = it.next().unwrap().parse().unwrap();
    assert_eq!(s, message(c, seq), "message content intact");
    (c, seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_every_record_exactly_once_in_order() {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.batch_max_records = 200;
    let run = Running::start(cfg, RunMode::Follow, 4);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let records = run.records.clone();
    let paused = run.paused.clone();
    let done = Arc::new(AtomicBool::new(false));
    let received = move |c: usize| -> u64 {
        records
            .lock()
            .iter()
            .filter(|(_, r)| r.message.starts_with(format!("c{c} ").as_bytes()))
            .count() as u64
    };
    let pods = node.pods();
    let containers = node.containers();
    let d = done.clone();
    // Containers 0 and 1: kubelet rotation; 2: copytruncate; 3: deleted while unread.
    let writer = std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, u32, u32)> {
        let mut ws = Vec::new();
        for c in 0..4 {
            let mut w = common::writer::ContainerLogWriter::create(
                &pods,
                Some(&containers),
                "load",
                &format!("pod-{c}"),
                &format!("uid-{c}"),
                "app",
                &format!("{c:064x}"),
            )?;
            w.set_max_files(3);
            ws.push(Some(w));
        }
        let mut seqs = vec![0u64; 4];
        let mut rotations = 0;
        let mut truncations = 0;
        let start = Instant::now();
        let mut deleted = false;
        while start.elapsed() < Duration::from_secs(6) {
            for c in 0..4 {
                let Some(w) = ws[c].as_mut() else { continue };
                for _ in 0..8 {
                    let m = message(c, seqs[c]);
                    if seqs[c] % 10 == 3 {
                        w.write_split("stdout", m.as_bytes(), 64)?;
                    } else {
                        w.write_line(
                            if seqs[c] % 2 == 0 { "stdout" } else { "stderr" },
                            m.as_bytes(),
                        )?;
                    }
                    seqs[c] += 1;
                }
                let len = w.active_len()?;
                if c < 2 && len > 300_000 {
                    // Lines written between rename and reopen land in the rotated file.
                    let s = &mut seqs[c];
                    w.rotate_with(|f| {
                        use std::io::Write;
                        for _ in 0..3 {
                            let mut line = Vec::new();
                            common::writer::cri_line(
                                &mut line,
                                common::writer::now_nanos(),
                                "stdout",
                                false,
                                message(c, *s).as_bytes(),
                            );
                            f.write_all(&line)?;
                            *s += 1;
                        }
                        Ok(())
                    })?;
                    rotations += 1;
                } else if c == 2 && len > 400_000 {
                    // copytruncate loses whatever was not read yet; wait until
                    // the tailer has everything, as logrotate users must.
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while received(2) < seqs[2] && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    w.copytruncate(None)?;
                    truncations += 1;
                }
            }
            if !deleted && start.elapsed() > Duration::from_secs(3) {
                // Stall the consumer, write a burst to container 3, rotate
                // container 0 twice (the first rotated file is gzipped and
                // unlinked while unread), then delete container 3 entirely.
                paused.store(true, Ordering::Relaxed);
                let w = ws[3].as_mut().unwrap();
                for _ in 0..5000 {
                    w.write_line("stdout", message(3, seqs[3]).as_bytes())?;
                    seqs[3] += 1;
                }
                for _ in 0..2 {
                    let w0 = ws[0].as_mut().unwrap();
                    for _ in 0..500 {
                        w0.write_line("stdout", message(0, seqs[0]).as_bytes())?;
                        seqs[0] += 1;
                    }
                    w0.rotate()?;
                    rotations += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
                ws[3].take().unwrap().remove_all()?;
                std::thread::sleep(Duration::from_millis(300));
                paused.store(false, Ordering::Relaxed);
                deleted = true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        d.store(true, Ordering::Relaxed);
        Ok((seqs, rotations, truncations))
    });
    let (seqs, rotations, truncations) =
        tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert!(done.load(Ordering::Relaxed));
    let total: u64 = seqs.iter().sum();
    let ok = run
        .wait_for(Duration::from_secs(60), |r| r.len() as u64 >= total)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (summary, recs, ev) = run.finish().await;
    println!(
        "wrote {total} records ({seqs:?}), {rotations} kubelet rotations, {truncations} copytruncates; \
         received {}; files {}; renames seen {}, truncates seen {}",
        recs.len(),
        summary.files,
        ev.renames.load(Ordering::Relaxed),
        ev.truncates.load(Ordering::Relaxed)
    );
    assert!(ok, "only {} of {total} records arrived", recs.len());
    assert!(
        rotations >= 6 && truncations >= 1,
        "the load did not rotate enough"
    );
    assert!(ev.truncates.load(Ordering::Relaxed) >= truncations as u64);
    assert_eq!(ev.lost_bytes.load(Ordering::Relaxed), 0);

    let mut seen: Vec<Vec<u32>> = seqs.iter().map(|&n| vec![0; n as usize]).collect();
    let mut last_per_source: HashMap<(u64, usize), u64> = HashMap::new();
    let mut last_start: HashMap<u64, u64> = HashMap::new();
    for (src, r) in &recs {
        assert!(
            !r.flags.contains(RecordFlags::INCOMPLETE) && !r.flags.contains(RecordFlags::UNPARSED)
        );
        let (c, seq) = parse(&r.message);
        seen[c][seq as usize] += 1;
        if let Some(prev) = last_per_source.insert((src.id.0, c), seq) {
            assert!(
                seq > prev,
                "out of order in {}: {prev} then {seq}",
                src.path.display()
            );
        }
        if let Some(prev) = last_start.insert(src.id.0, r.start) {
            assert!(
                r.start > prev,
                "offsets not increasing in {}",
                src.path.display()
            );
        }
    }
    for (c, s) in seen.iter().enumerate() {
        let missing: Vec<_> = s
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(i, _)| i)
            .take(5)
            .collect();
        let dup: Vec<_> = s
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 1)
            .map(|(i, _)| i)
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "container {c}: missing seqs, first {missing:?}"
        );
        assert!(
            dup.is_empty(),
            "container {c}: duplicated seqs, first {dup:?}"
        );
    }
}
