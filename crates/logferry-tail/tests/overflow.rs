//! inotify's event queue overflows (issue 14, goal 4: a Job fan-out starts
//! thousands of pods at once): the kernel drops events past
//! `fs.inotify.max_queued_events` and queues one `IN_Q_OVERFLOW`; the tailer
//! must then list every directory and compare every file's size, so that
//! the files created and the lines written while events were dropped are
//! still read, each once.

mod common;

use common::{Node, Running};
use logferry_tail::{RescanReason, RunMode};
use std::io::Write;
use std::time::Duration;

/// Events queued beyond the kernel's limit, for a margin.
const MARGIN: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_created_while_the_inotify_queue_overflowed_are_found_by_a_rescan() {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16_384);
    if limit > 1_000_000 {
        eprintln!("SKIPPED: fs.inotify.max_queued_events is {limit}, too many events to queue");
        return;
    }
    let node = Node::new();
    // rescan_interval is 1 h: only an overflow rescans.
    let mut config = node.config();
    // After the first change, reading (and with it the reading of inotify
    // events) waits this long: the events below pile up in the kernel's queue.
    config.read_coalesce = Duration::from_secs(10);
    let mut a = node.writer("pod-a", "main");
    a.write_line("stdout", b"a 0").unwrap();
    // A container directory whose files are no logs: only noise events.
    let mut noise = node.writer("noise", "main");
    noise.write_line("stdout", b"noise 0").unwrap();
    let run = Running::start(config, RunMode::Follow, 16);
    assert!(
        run.wait_for(Duration::from_secs(60), |r| r.len() == 2)
            .await,
        "files present at start: {:?}",
        run.messages()
    );
    // One change starts the 10 s wait; give the tailer time to see it.
    a.write_line("stdout", b"a 1").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Alternating writes to two files: consecutive events differ, so the
    // kernel cannot merge them.
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(noise.dir().join(name))
            .unwrap()
    };
    let (mut x, mut y) = (open("x.txt"), open("y.txt"));
    for _ in 0..(limit + MARGIN) / 2 {
        x.write_all(b".").unwrap();
        y.write_all(b".").unwrap();
    }
    // Their events are dropped: new pods, a new container, more lines.
    let mut created = Vec::new();
    for p in 0..5 {
        let mut w = node.writer(&format!("pod-new-{p}"), "main");
        for l in 0..3 {
            let m = format!("new {p} {l}");
            w.write_line("stdout", m.as_bytes()).unwrap();
            created.push(m);
        }
    }
    a.write_line("stdout", b"a 2").unwrap();
    let mut expected: Vec<String> = ["a 0", "noise 0", "a 1", "a 2"]
        .iter()
        .map(|s| s.to_string())
        .chain(created)
        .collect();
    expected.sort();
    let n = expected.len();
    assert!(
        run.wait_for(Duration::from_secs(120), |r| r.len() >= n)
            .await,
        "got {:?}",
        run.messages()
    );
    // Anything read twice would arrive within a few more turns.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, recs, events) = run.finish().await;
    let mut got: Vec<String> = recs
        .iter()
        .map(|(_, r)| String::from_utf8_lossy(&r.message).into_owned())
        .collect();
    got.sort();
    assert_eq!(got, expected, "every line once");
    assert_eq!(
        *events.rescans.lock(),
        [RescanReason::InotifyOverflow],
        "one overflow, one rescan"
    );
}
