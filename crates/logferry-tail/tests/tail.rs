//! Behaviour of the tailer on real files: discovery, start policy,
//! checkpoints, identity, deletion, formats.

mod common;

use common::{writer, Node, Running};
use logferry_core::{LogFormat, RecordFlags, Stream};
use logferry_tail::checkpoint::CheckpointStore;
use logferry_tail::{MultilineConfig, ReadFrom, RunMode, TailConfig};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_file_is_picked_up_by_inotify_without_rescan() {
    let node = Node::new();
    let run = Running::start(node.config(), RunMode::Follow, 16);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    let mut w = node.writer("pod-a", "main");
    w.write_line("stdout", b"hello from a new pod").unwrap();
    assert!(
        run.wait_for(WAIT, |r| !r.is_empty()).await,
        "record never arrived"
    );
    let latency = t0.elapsed();
    println!("new file pickup latency: {latency:?}");
    // rescan_interval is 1 h and the 1 s safety poll only covers open files:
    // anything under a second can only come from inotify.
    assert!(latency < Duration::from_secs(1), "pickup took {latency:?}");
    // A new container dir in an existing pod, and a new pod, both by inotify.
    let mut w2 = node.writer("pod-a", "sidecar");
    w2.write_line("stderr", b"sidecar line").unwrap();
    let mut w3 = node.writer("pod-b", "main");
    w3.write_line("stdout", b"pod b line").unwrap();
    assert!(run.wait_for(Duration::from_secs(1), |r| r.len() == 3).await);
    let (summary, recs, _) = run.finish().await;
    assert_eq!(summary.files, 3);
    let (src, rec) = &recs[0];
    assert_eq!(&rec.message[..], b"hello from a new pod");
    assert_eq!(rec.start, 0);
    assert_eq!(src.format, LogFormat::Cri);
    let kube = src.kube.as_ref().unwrap();
    assert_eq!(
        (
            kube.namespace.as_str(),
            kube.pod_name.as_str(),
            kube.container.as_str()
        ),
        ("ns", "pod-a", "main")
    );
    assert!(
        src.container_id.as_deref().is_some_and(|id| id.len() == 64),
        "{:?}",
        src.container_id
    );
    assert_ne!(src.file.fingerprint, 0);
    let stderr = recs
        .iter()
        .find(|(_, r)| &r.message[..] == b"sidecar line")
        .unwrap();
    assert_eq!(stderr.1.stream, Stream::Stderr);
}

fn line(nanos: i64, msg: &str) -> Vec<u8> {
    let mut v = Vec::new();
    writer::cri_line(&mut v, nanos, "stdout", false, msg.as_bytes());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_from_end_skips_existing_lines_but_new_files_are_read_from_start() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_line("stdout", b"old 1").unwrap();
    w.write_line("stdout", b"old 2").unwrap();
    w.write_raw(b"2024-01-01T00:00:00Z stdout F half a li")
        .unwrap();
    let mut cfg = node.config();
    cfg.read_from = ReadFrom::End;
    let run = Running::start(cfg, RunMode::Follow, 16);
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.write_raw(b"ne\n").unwrap();
    w.write_line("stdout", b"new 1").unwrap();
    let mut w2 = node.writer("p2", "c");
    w2.write_line("stdout", b"fresh file").unwrap();
    assert!(run.wait_for(WAIT, |r| r.len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, recs, _) = run.finish().await;
    let mut msgs: Vec<_> = recs
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    msgs.sort();
    assert_eq!(msgs, vec!["fresh file", "new 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_skips_old_records_on_first_read() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    let now = writer::now_nanos();
    let day = 86_400_000_000_000i64;
    w.write_raw(&line(now - 3 * day, "three days old")).unwrap();
    w.write_raw(&line(now - day / 2, "twelve hours old"))
        .unwrap();
    w.write_raw(&line(now, "fresh")).unwrap();
    let mut cfg = node.config();
    cfg.lookback = Some(Duration::from_secs(86_400));
    let run = Running::start(cfg, RunMode::Once, 16);
    let (summary, recs, _) = run.finish_once().await;
    let msgs: Vec<_> = recs
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    assert_eq!(msgs, vec!["twelve hours old", "fresh"]);
    assert_eq!(summary.records, 2);
    // The skipped line is covered by the checkpoint: a second run reads nothing.
    let node_cfg = node.config();
    let (_, recs, _) = Running::start(node_cfg, RunMode::Once, 16)
        .finish_once()
        .await;
    assert!(recs.is_empty(), "{} records", recs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_resumes_and_recycled_inode_starts_from_zero() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_line("stdout", b"one").unwrap();
    w.write_line("stdout", b"two").unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 2);
    w.write_line("stdout", b"three").unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    let msgs: Vec<_> = recs.iter().map(|(_, r)| r.message.clone()).collect();
    assert_eq!(msgs, vec![&b"three"[..]]);
    // Rewrite the checkpoint so that (dev, ino) matches but the fingerprint
    // does not: a recycled inode. Reading must start at 0.
    let meta = std::fs::metadata(w.active_path()).unwrap();
    let body = format!(
        r#"{{"version":1,"files":[{{"dev":{},"ino":{},"fingerprint":12345,"offset":40,"path":"/x","updated_at":0}}]}}"#,
        meta.dev(),
        meta.ino()
    );
    std::fs::write(CheckpointStore::file_path(&node.data()), body).unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 3, "recycled inode must be read from offset 0");
    assert_eq!(recs[0].1.start, 0);
    // An offset beyond the file size means copytruncate: start at 0 too.
    let fp = recs[0].0.file.fingerprint;
    let body = format!(
        r#"{{"version":1,"files":[{{"dev":{},"ino":{},"fingerprint":{fp},"offset":999999,"path":"/x","updated_at":0}}]}}"#,
        meta.dev(),
        meta.ino()
    );
    std::fs::write(CheckpointStore::file_path(&node.data()), body).unwrap();
    let (_, recs, ev) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 3);
    assert_eq!(ev.truncates.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_checkpoint_file_falls_back_to_previous_copy() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_line("stdout", b"one").unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 1);
    let path = CheckpointStore::file_path(&node.data());
    let good = std::fs::read(&path).unwrap();
    w.write_line("stdout", b"two").unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 1);
    // The previous copy says "after one"; the current file is torn.
    std::fs::write(node.data().join("checkpoints.json.prev"), &good).unwrap();
    let torn = std::fs::read(&path).unwrap();
    std::fs::write(&path, &torn[..torn.len() / 2]).unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    let msgs: Vec<_> = recs.iter().map(|(_, r)| r.message.clone()).collect();
    assert_eq!(
        msgs,
        vec![&b"two"[..]],
        "resumed from the previous good copy"
    );
    // Both corrupt: start without checkpoints (everything again), no error.
    std::fs::write(&path, b"garbage").unwrap();
    std::fs::write(node.data().join("checkpoints.json.prev"), b"garbage").unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_flushes_trailing_partial_as_incomplete_and_joins_p_chunks() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_split("stdout", &b"x".repeat(40_000), 16_384)
        .unwrap();
    w.write_raw(b"2024-01-01T00:00:00Z stderr P dangling \n")
        .unwrap();
    w.write_raw(b"2024-01-01T00:00:00Z stdout F between\n")
        .unwrap();
    w.write_raw(b"2024-01-01T00:00:00Z stderr P chunk\n")
        .unwrap();
    w.write_raw(b"not a cri line\n").unwrap();
    let (summary, recs, ev) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(summary.records, 4);
    let joined = &recs[0].1;
    assert_eq!(joined.message.len(), 40_000);
    assert!(joined.flags.contains(RecordFlags::PARTIAL_JOINED));
    let file_len = std::fs::metadata(w.active_path()).unwrap().len();
    let unparsed = recs
        .iter()
        .find(|(_, r)| r.flags.contains(RecordFlags::UNPARSED))
        .unwrap();
    assert_eq!(&unparsed.1.message[..], b"not a cri line");
    assert_eq!(ev.unparsed.load(std::sync::atomic::Ordering::Relaxed), 1);
    let incomplete = recs
        .iter()
        .find(|(_, r)| r.flags.contains(RecordFlags::INCOMPLETE))
        .unwrap();
    assert_eq!(&incomplete.1.message[..], b"dangling chunk");
    assert_eq!(incomplete.1.stream, Stream::Stderr);
    // Offsets: records cover the file exactly (the stderr assembly spans the stdout line).
    let covered: u64 = recs.iter().map(|(_, r)| r.end - r.start).sum::<u64>()
        - (b"2024-01-01T00:00:00Z stdout F between\n".len() as u64);
    assert_eq!(covered, file_len);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_json_files_and_files_mode_globs() {
    let node = Node::new();
    let dir = node.root.path().join("shared");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut f = std::fs::File::create(dir.join("app.log")).unwrap();
    let mut buf = Vec::new();
    logferry_tail::docker::encode_docker(
        &mut buf,
        "2019-01-01T11:11:11.111111111Z",
        Stream::Stdout,
        b"json <line>\n",
    );
    logferry_tail::docker::encode_docker(
        &mut buf,
        "2019-01-01T11:11:11.2Z",
        Stream::Stdout,
        b"split ",
    );
    logferry_tail::docker::encode_docker(
        &mut buf,
        "2019-01-01T11:11:11.3Z",
        Stream::Stdout,
        b"line\n",
    );
    f.write_all(&buf).unwrap();
    std::fs::write(dir.join("plain.log"), b"plain text line\n").unwrap();
    std::fs::write(dir.join("ignored.txt"), b"not matched\n").unwrap();
    std::fs::write(dir.join("sub/nested.log"), b"not matched either\n").unwrap();
    let mut cfg = TailConfig::files(vec![format!("{}/*.log", dir.display())], node.data());
    cfg.rescan_interval = Duration::from_secs(3600);
    let run = Running::start(cfg, RunMode::Follow, 16);
    assert!(run.wait_for(WAIT, |r| r.len() == 3).await);
    std::fs::write(dir.join("late.log"), b"late file\n").unwrap();
    assert!(run.wait_for(WAIT, |r| r.len() == 4).await);
    let (_, recs, _) = run.finish().await;
    let mut got: Vec<_> = recs
        .iter()
        .map(|(s, r)| {
            (
                s.format,
                String::from_utf8_lossy(&r.message).into_owned(),
                r.timestamp_nanos,
            )
        })
        .collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got[0].0, LogFormat::Docker);
    assert_eq!(got[0].1, "json <line>");
    assert_eq!(got[0].2, 1_546_341_071_111_111_111);
    assert_eq!(
        (got[1].0, got[1].1.as_str()),
        (LogFormat::Plain, "late file")
    );
    assert_eq!(
        (got[2].0, got[2].1.as_str()),
        (LogFormat::Plain, "plain text line")
    );
    assert_eq!(
        (got[3].0, got[3].1.as_str()),
        (LogFormat::Docker, "split line")
    );
    assert!(recs.iter().all(|(s, _)| s.kube.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_with_unread_data_is_drained_before_release() {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.batch_max_records = 50;
    let run = Running::start(cfg, RunMode::Follow, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    run.paused.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut w = node.writer("short-lived", "task");
    let n = 20_000;
    for i in 0..n {
        w.write_line(
            "stdout",
            format!("task line {i:06} {}", "y".repeat(100)).as_bytes(),
        )
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen_before = run.records.lock().len();
    assert!(
        seen_before < n,
        "consumer was paused, yet everything arrived"
    );
    // kubelet container GC: every file, the symlink and the directory go.
    w.remove_all().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.paused
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(
        run.wait_for(WAIT, |r| r.len() >= n).await,
        "deleted file not drained"
    );
    assert!(
        run.wait_for(WAIT, |_| run
            .events
            .released
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1)
            .await
    );
    let (_, recs, ev) = run.finish().await;
    assert_eq!(recs.len(), n);
    for (i, (_, r)) in recs.iter().enumerate() {
        assert!(r
            .message
            .starts_with(format!("task line {i:06} ").as_bytes()));
    }
    assert_eq!(ev.lost_bytes.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_files_limit_closes_the_oldest_and_counts_the_loss() {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.max_deleted_files = 1;
    cfg.batch_max_records = 10;
    let run = Running::start(cfg, RunMode::Follow, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    run.paused.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writers = Vec::new();
    for p in ["a", "b"] {
        let mut w = node.writer(p, "c");
        for i in 0..20_000 {
            w.write_line("stdout", format!("{p} {i}").as_bytes())
                .unwrap();
        }
        writers.push(w);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for w in writers {
        w.remove_all().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    run.paused
        .store(false, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, recs, ev) = run.finish().await;
    assert_eq!(
        ev.lost_deleted_files
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(ev.lost_bytes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(recs.len() < 40_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_joins_stack_traces_and_flushes_on_timeout() {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.multiline = Some(MultilineConfig {
        start_pattern: Some(regex::Regex::new(r"^\S").unwrap()),
        continuation_pattern: None,
        flush_timeout: Duration::from_millis(200),
    });
    let run = Running::start(cfg, RunMode::Follow, 16);
    let mut w = node.writer("p", "c");
    for l in [
        "Exception in thread main",
        "\tat a.b(C.java:1)",
        "\tat d.e(F.java:2)",
        "next record",
    ] {
        w.write_line("stdout", l.as_bytes()).unwrap();
    }
    assert!(
        run.wait_for(WAIT, |r| r.len() == 2).await,
        "held record flushed after the timeout"
    );
    let (_, recs, _) = run.finish().await;
    assert_eq!(
        &recs[0].1.message[..],
        b"Exception in thread main\n\tat a.b(C.java:1)\n\tat d.e(F.java:2)"
    );
    assert!(recs[0].1.flags.contains(RecordFlags::MULTILINE));
    assert_eq!(&recs[1].1.message[..], b"next record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_file_limit_closes_idle_files_and_reopens_them_by_identity() {
    let node = Node::new();
    let mut cfg = node.config();
    cfg.max_open_files = 2;
    let run = Running::start(cfg, RunMode::Follow, 16);
    let mut ws: Vec<_> = (0..5).map(|i| node.writer(&format!("p{i}"), "c")).collect();
    for (i, w) in ws.iter_mut().enumerate() {
        w.write_line("stdout", format!("first {i}").as_bytes())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(run.wait_for(WAIT, |r| r.len() == 5).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let open = run
        .events
        .last_open
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(open <= 2, "{open} files open with max_open_files = 2");
    // Appends to closed files reopen them (inotify IN_MODIFY or the 1 s poll).
    for (i, w) in ws.iter_mut().enumerate() {
        w.write_line("stdout", format!("second {i}").as_bytes())
            .unwrap();
        assert!(
            run.wait_for(WAIT, |r| r.len() == 6 + i).await,
            "second line of file {i}"
        );
    }
    // Rotation of a file that is closed: found again under its new name.
    ws[0].write_line("stdout", b"before rotation").unwrap();
    ws[0].rotate().unwrap();
    ws[0].write_line("stdout", b"after rotation").unwrap();
    assert!(run.wait_for(WAIT, |r| r.len() == 12).await);
    let (summary, recs, ev) = run.finish().await;
    assert_eq!(summary.records, 12);
    let mut msgs: Vec<_> = recs
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 12, "no duplicates");
    assert_eq!(ev.lost_bytes.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_file_gzipped_while_down_is_read_from_its_gz_copy() {
    gz_read_back(false).await;
}

/// The same when the file's first line is longer than the 4 KiB head (a
/// 20 KB line in 16 KiB `P` chunks): its fingerprint covers the head's first
/// bytes, for the open file and for the `.gz` copy alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gz_copy_of_a_file_with_a_long_first_line_is_read_back() {
    gz_read_back(true).await;
}

async fn gz_read_back(long_first_line: bool) {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    let long = "L".repeat(20_000);
    if long_first_line {
        w.write_split("stdout", long.as_bytes(), 16 * 1024).unwrap();
    }
    for i in 0..50 {
        w.write_line("stdout", format!("line {i:03}").as_bytes())
            .unwrap();
    }
    let (_, first, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(first.len(), 50 + usize::from(long_first_line));
    let original = first[0].0.file;
    // logferry is down: the file grows, is rotated, and at the next rotation
    // kubelet gzips it and unlinks the plain copy.
    for i in 50..80 {
        w.write_line("stdout", format!("line {i:03}").as_bytes())
            .unwrap();
    }
    w.rotate().unwrap();
    w.write_line("stdout", b"in the second file").unwrap();
    w.rotate().unwrap();
    w.write_line("stdout", b"in the active file").unwrap();
    let gz = std::fs::read_dir(w.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".gz"))
        .count();
    assert_eq!(gz, 1);
    // On ext4 the new active file takes the inode the plain copy freed: the
    // same (dev, ino) as the unfinished original, with another first line.
    let reused = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(w.dir().join("0.log")).unwrap().ino() == original.ino
    };
    eprintln!("new 0.log reuses the original's inode: {reused}");
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    let from_gz: Vec<_> = recs.iter().filter(|(s, _)| s.file == original).collect();
    assert_eq!(from_gz.len(), 30, "the unread tail of the gzipped file");
    for (i, (s, r)) in from_gz.iter().enumerate() {
        assert_eq!(
            std::str::from_utf8(&r.message).unwrap(),
            format!("line {:03}", 50 + i)
        );
        assert!(s.kube.as_ref().unwrap().compressed, "{}", s.path.display());
    }
    // Offsets continue where the first run stopped: same identity, same ids.
    assert_eq!(from_gz[0].1.start, first.last().unwrap().1.end);
    let mut others: Vec<_> = recs
        .iter()
        .filter(|(s, _)| s.file != original)
        .map(|(_, r)| r.message.clone())
        .collect();
    others.sort();
    assert_eq!(
        others,
        vec![&b"in the active file"[..], &b"in the second file"[..]]
    );
    // A third run finds nothing new, the .gz included.
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert!(recs.is_empty(), "{} records", recs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_reading_drains_acks_then_persists_the_final_checkpoint() {
    use logferry_core::Acker;
    use logferry_tail::{NoopEvents, Tailer};
    let node = Node::new();
    let mut w = node.writer("p", "c");
    for i in 0..100 {
        w.write_line("stdout", format!("line {i}").as_bytes())
            .unwrap();
    }
    let len = std::fs::metadata(w.active_path()).unwrap().len();
    let mut cfg = node.config();
    cfg.checkpoint_interval = Duration::from_secs(3600); // only the final write counts
    cfg.batch_max_records = 10;
    let tailer = Tailer::new(cfg, std::sync::Arc::new(NoopEvents)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100);
    let (acker, acks) = Acker::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(tailer.run(RunMode::Follow, tx, acks, stop.clone()));
    let mut held = Vec::new();
    let mut n = 0;
    while n < 100 {
        let b = rx.recv().await.unwrap();
        n += b.records.len();
        held.push(b.ack);
    }
    stop.cancel();
    // Downstream sees the end of input...
    assert!(tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .is_none());
    // ...and the tailer waits for the acknowledgements of what it sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "returned with batches unacknowledged");
    for a in held.into_iter().rev() {
        acker.ack(a);
    }
    let summary = tokio::time::timeout(WAIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(summary.records, 100);
    let store = CheckpointStore::load(&node.data()).unwrap();
    let e = store.iter().next().expect("a checkpoint");
    assert_eq!(
        e.offset, len,
        "final checkpoint covers everything acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reads_a_file_whose_only_line_has_no_newline() {
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_raw(b"2024-01-01T00:00:00Z stdout F crashed before the newline")
        .unwrap();
    let (_, recs, _) = Running::start(node.config(), RunMode::Once, 16)
        .finish_once()
        .await;
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].1.message[..], b"crashed before the newline");
    assert!(recs[0].1.flags.contains(RecordFlags::INCOMPLETE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_on_reads_everything_written_before_it_then_ends() {
    use logferry_core::Acker;
    use logferry_tail::{NoopEvents, Tailer};
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_line("stdout", b"early").unwrap();
    let mut cfg = node.config();
    cfg.max_open_files = 2;
    let finish = tokio_util::sync::CancellationToken::new();
    let tailer = Tailer::new(cfg, std::sync::Arc::new(NoopEvents))
        .unwrap()
        .finish_on(finish.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (acker, acks) = Acker::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(tailer.run(RunMode::Follow, tx, acks, stop.clone()));
    let consumer = tokio::spawn(async move {
        let mut msgs = Vec::new();
        while let Some(b) = rx.recv().await {
            for r in &b.records {
                msgs.push((String::from_utf8_lossy(&r.message).into_owned(), r.flags));
            }
            acker.ack(b.ack);
        }
        msgs
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Written right before the finish signal, including a new pod and a
    // dangling partial chunk.
    w.write_line("stdout", b"late").unwrap();
    w.write_raw(b"2024-01-01T00:00:00Z stderr P dangling\n")
        .unwrap();
    let mut w2 = node.writer("p2", "c");
    w2.write_line("stdout", b"new pod").unwrap();
    finish.cancel();
    let summary = tokio::time::timeout(WAIT, task)
        .await
        .expect("ends by itself")
        .unwrap()
        .unwrap();
    let msgs = consumer.await.unwrap();
    assert_eq!(summary.records, 4);
    let mut texts: Vec<&str> = msgs.iter().map(|(m, _)| m.as_str()).collect();
    texts.sort();
    assert_eq!(texts, vec!["dangling", "early", "late", "new pod"]);
    assert!(msgs
        .iter()
        .any(|(m, f)| m == "dangling" && f.contains(RecordFlags::INCOMPLETE)));
    assert!(!stop.is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_unacknowledged_file_is_read_from_the_spool_and_its_inode_can_be_reused() {
    use std::sync::atomic::Ordering;
    let node = Node::new();
    let mut a = node.writer("a", "c");
    let mut b = node.writer("b", "c");
    for i in 0..200 {
        a.write_line("stdout", format!("a {i:04}").as_bytes())
            .unwrap();
    }
    let mut config = node.config();
    config.batch_max_records = 10;
    let run = Running::start(config, RunMode::Follow, 1);
    assert!(run.wait_for(WAIT, |r| r.len() == 200).await);
    let original = run.records.lock()[0].0.file;
    // Downstream stalls; more lines arrive, then the pod's files are removed.
    run.paused.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 200..2_000 {
        a.write_line("stdout", format!("a {i:04}").as_bytes())
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.remove_all().unwrap();
    let spool = node.data().join("spool");
    let deadline = Instant::now() + WAIT;
    while run.events.spool_files.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the deleted file was not spooled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The deleted file's descriptor is closed, so its inode is free and may
    // go to one of the next new files (b's container restarts a few times;
    // whether ext4 reuses it here depends on its allocator, the end-to-end
    // test sees it often), which must be tracked as the new file it is.
    let mut reused = false;
    let mut b_lines = Vec::new();
    for n in 1..=4 {
        b.restart().unwrap();
        let line = format!("b {n}");
        b.write_line("stdout", line.as_bytes()).unwrap();
        b_lines.push(line.into_bytes());
        let ino = std::fs::metadata(b.dir().join(format!("{n}.log")))
            .unwrap()
            .ino();
        if ino == original.ino {
            reused = true;
            break;
        }
    }
    eprintln!("a new file took the deleted file's inode: {reused}");
    run.paused.store(false, Ordering::Relaxed);
    assert!(
        run.wait_for(WAIT, |r| r.len() == 2_000 + b_lines.len())
            .await,
        "{} records",
        run.records.lock().len()
    );
    let (_, recs, ev) = run.finish().await;
    let from_a: Vec<_> = recs.iter().filter(|(s, _)| s.file == original).collect();
    assert_eq!(
        from_a.len(),
        2_000,
        "every line of the deleted file, under its identity"
    );
    for (i, (s, r)) in from_a.iter().enumerate() {
        assert_eq!(r.message, format!("a {i:04}").as_bytes());
        assert!(
            s.path.ends_with("ns_a_uid-a/c/0.log"),
            "{}",
            s.path.display()
        );
    }
    let mut from_b: Vec<_> = recs
        .iter()
        .filter(|(s, _)| s.file != original)
        .map(|(_, r)| r.message.to_vec())
        .collect();
    from_b.sort();
    b_lines.sort();
    assert_eq!(from_b, b_lines);
    // Everything acknowledged: the copy is gone.
    assert_eq!(ev.spool_files.load(Ordering::Relaxed), 0);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert_eq!(ev.lost_bytes.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_seen_while_downstream_stalls_is_read_from_its_gz_copy_after_a_restart() {
    use std::sync::atomic::Ordering;
    let node = Node::new();
    // Enough lines to fill the pipeline while the consumer stalls.
    let mut busy = node.writer("busy", "c");
    for i in 0..5_000 {
        busy.write_line(
            "stdout",
            format!("busy {i:05} {}", "x".repeat(100)).as_bytes(),
        )
        .unwrap();
    }
    let mut config = node.config();
    config.batch_max_records = 10;
    let run = Running::start(config.clone(), RunMode::Follow, 1);
    run.paused.store(true, Ordering::Relaxed);
    // A new file appears while nothing can be read: logferry knows it only
    // through discovery, not through reading.
    let mut a = node.writer("a", "c");
    for i in 0..50 {
        a.write_line("stdout", format!("a {i:03}").as_bytes())
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (_, before, _) = run.finish().await;
    assert!(
        before.iter().all(|(s, _)| !s.path.starts_with(a.dir())),
        "a was not read in the first run"
    );
    // While logferry is down, kubelet rotates a twice: its only copy is a .gz.
    a.rotate().unwrap();
    a.write_line("stdout", b"a in the second file").unwrap();
    a.rotate().unwrap();
    let (_, recs, _) = Running::start(config, RunMode::Once, 16)
        .finish_once()
        .await;
    let mut from_a: Vec<String> = recs
        .iter()
        .filter(|(s, _)| s.path.starts_with(a.dir()))
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    from_a.sort();
    let mut want: Vec<String> = (0..50).map(|i| format!("a {i:03}")).collect();
    want.push("a in the second file".into());
    want.sort();
    assert_eq!(from_a, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_across_read_rounds_stays_whole_while_reading_waits() {
    use std::sync::atomic::Ordering;
    let node = Node::new();
    let mut w = node.writer("p", "c");
    // Short lines up to 240,000 bytes, then a 60 KB line in 16 KiB `P`
    // chunks: the first chunk ends inside the first read round (256 KiB),
    // the others come after it. Then more lines.
    let mut n = 0;
    while std::fs::metadata(w.dir().join("0.log")).unwrap().len() < 240_000 {
        w.write_line(
            "stdout",
            format!("short {n:05} {}", "y".repeat(150)).as_bytes(),
        )
        .unwrap();
        n += 1;
    }
    let long: String = (0..60_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    w.write_split("stdout", long.as_bytes(), 16 * 1024).unwrap();
    w.write_line("stdout", b"after").unwrap();
    let mut config = node.config();
    config.batch_max_records = 10;
    let run = Running::start(config.clone(), RunMode::Follow, 1);
    // Downstream stalls after the first read round, longer than the partial
    // flush timeout (500 ms): the chunks already read must wait for the rest.
    run.paused.store(true, Ordering::Relaxed);
    tokio::time::sleep(config.partial_flush_timeout * 3).await;
    run.paused.store(false, Ordering::Relaxed);
    assert!(
        run.wait_for(WAIT, |r| r.len() == n + 2).await,
        "{} records",
        run.records.lock().len()
    );
    let (_, recs, _) = run.finish().await;
    let long_recs: Vec<_> = recs
        .iter()
        .filter(|(_, r)| !r.message.starts_with(b"short") && &r.message[..] != b"after")
        .collect();
    assert_eq!(long_recs.len(), 1, "one record for the long line");
    assert_eq!(long_recs[0].1.message, long.as_bytes());
    assert!(!long_recs[0].1.flags.contains(RecordFlags::INCOMPLETE));
}

/// issue 14: a runtime writes one line per `write(2)`. With `read_coalesce`,
/// the lines written during the wait are read in one round (one batch), not
/// one read and one batch per line; without it this burst gives ~20 batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_one_by_one_are_read_in_one_round() {
    use logferry_core::Acker;
    let node = Node::new();
    let mut w = node.writer("p", "c");
    w.write_line("stdout", b"first").unwrap();
    let mut cfg = node.config();
    cfg.read_coalesce = Duration::from_secs(1);
    let tailer =
        logferry_tail::Tailer::new(cfg, std::sync::Arc::new(logferry_tail::NoopEvents)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let (acker, acks) = Acker::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(tailer.run(RunMode::Follow, tx, acks, stop.clone()));
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    acker.ack(first.ack);
    let started = Instant::now();
    for i in 0..20 {
        w.write_line("stdout", format!("line {i}").as_bytes())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let burst = started.elapsed();
    let (mut batches, mut records) = (0, 0);
    while records < 20 {
        let b = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        records += b.records.len();
        batches += 1;
        acker.ack(b.ack);
    }
    stop.cancel();
    drop(rx);
    task.await.unwrap().unwrap();
    assert_eq!(records, 20);
    if burst < Duration::from_millis(500) {
        assert!(
            batches <= 2,
            "{batches} batches for a burst of 20 lines in {burst:?}"
        );
    }
}

/// Backpressure is reported: with the output channel full and batches
/// waiting, `reading_paused(true)`; once the consumer takes them again and
/// everything is read, `reading_paused(false)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_output_channel_reports_reading_paused_until_it_drains() {
    use std::sync::atomic::Ordering;
    let node = Node::new();
    let mut w = node.writer("p", "c");
    let mut cfg = node.config();
    cfg.batch_max_records = 10;
    let run = Running::start(cfg, RunMode::Follow, 1);
    run.paused.store(true, Ordering::Relaxed);
    for i in 0..200 {
        w.write_line("stdout", format!("line {i}").as_bytes())
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    while !run.events.reading_paused.load(Ordering::Relaxed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        run.events.reading_paused.load(Ordering::Relaxed),
        "a full channel pauses reading"
    );
    // Nothing beyond the channel and the outbox was read meanwhile.
    assert!(run.records.lock().len() < 200);
    run.paused.store(false, Ordering::Relaxed);
    assert!(run.wait_for(WAIT, |r| r.len() == 200).await);
    let deadline = Instant::now() + WAIT;
    while run.events.reading_paused.load(Ordering::Relaxed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !run.events.reading_paused.load(Ordering::Relaxed),
        "reading resumes once the channel drains"
    );
    let (summary, _, events) = run.finish().await;
    assert_eq!(summary.records, 200);
    assert!(events.pauses.load(Ordering::Relaxed) >= 1);
    assert!(!events.reading_paused.load(Ordering::Relaxed));
}
