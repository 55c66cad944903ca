//! A minimal acknowledging consumer around the tailer, used as the child
//! process of the crash-safety test (and handy for trying the tailer out).
//!
//! ```text
//! tail_ack <pods_dir> <containers_dir> <data_dir> <out_file>
//! ```
//!
//! Tails a kubelet-style tree. For each batch it appends one line per record
//! to `out_file` — `<dev>:<ino>:<fingerprint hex> <start> <end> <message>` —
//! calls `fsync`, and only then acknowledges the batch. SIGTERM or SIGINT stop
//! reading (so does the end of standard input when `TAIL_ACK_STOP_ON_EOF=1`,
//! which lets a test stop it without sending a signal); the process exits
//! after the final checkpoint.
//!
//! `TAIL_ACK_HOLD_AFTER=<n>` stands in for a downstream outage: once `n`
//! records were acknowledged, later batches are still written to `out_file`
//! but never acknowledged.

use logferry_core::Acker;
use logferry_tail::{NoopEvents, RunMode, TailConfig, Tailer};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: tail_ack <pods_dir> <containers_dir> <data_dir> <out_file>"
    );
    let mut config = TailConfig::kubernetes(&args[1], &args[2], &args[3]);
    config.checkpoint_interval = Duration::from_millis(50);
    config.partial_flush_timeout = Duration::from_secs(1);
    config.batch_max_records = 100;
    let tailer = Tailer::new(config, Arc::new(NoopEvents))?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args[4])?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (acker, acks) = Acker::channel();
    let stop = CancellationToken::new();
    let run = tokio::spawn(tailer.run(RunMode::Follow, tx, acks, stop.clone()));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let s = stop.clone();
    let stdin_eof = std::env::var_os("TAIL_ACK_STOP_ON_EOF").is_some();
    tokio::spawn(async move {
        let eof = async {
            if stdin_eof {
                use tokio::io::AsyncReadExt;
                let mut sink = Vec::new();
                let _ = tokio::io::stdin().read_to_end(&mut sink).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
            _ = eof => {},
        }
        s.cancel();
    });
    let hold_after: Option<u64> = std::env::var("TAIL_ACK_HOLD_AFTER")
        .ok()
        .map(|v| v.parse())
        .transpose()?;
    let mut acked = 0u64;
    let mut held = Vec::new();
    let mut buf = Vec::with_capacity(1 << 20);
    while let Some(batch) = rx.recv().await {
        buf.clear();
        let f = batch.source.file;
        for r in &batch.records {
            write!(
                buf,
                "{}:{}:{:x} {} {} ",
                f.dev, f.ino, f.fingerprint, r.start, r.end
            )?;
            buf.extend_from_slice(&r.message);
            buf.push(b'\n');
        }
        out.write_all(&buf)?;
        out.sync_data()?;
        if hold_after.is_some_and(|n| acked >= n) {
            held.push(batch.ack);
            continue;
        }
        acked += batch.records.len() as u64;
        acker.ack(batch.ack);
    }
    drop(held);
    drop(acker);
    let summary = run.await??;
    eprintln!("tail_ack: {summary:?}");
    Ok(())
}
