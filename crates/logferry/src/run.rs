//! `logferry run`: the daemon.
//!
//! ```text
//!  Tailer ──batches──▶ Enricher ──batches──▶ sink (Elasticsearch | stdout)
//!    ▲                    │ (drops: ack)          │
//!    └──────────── acknowledgements ◀─────────────┘
//! ```
//!
//! Channels are bounded, so a slow or absent Elasticsearch pauses reading and
//! the files are the buffer. Shutdown (SIGTERM, SIGINT, `/quitquitquit`, or the
//! end of `--once`) stops reading; the enricher and the sink drain what is in
//! flight; when the last `Acker` is dropped the tailer writes its final
//! checkpoints and returns. The drain (and, after `/quitquitquit`, reading
//! every file to its end) is bounded by
//! `shutdown.drain_timeout`: what is not delivered by then is read again after
//! the restart (its checkpoint did not advance), and `run` fails (exit 2) so
//! that a sidecar pod never reports success with lines missing.
//!
//! A panic in any task ends the process with exit code 2 (see `main.rs`).

use crate::admin::{self, AdminState, DataDirHealth};
use crate::config::{self, Config, SourceMode};
use crate::enrich::Enricher;
use crate::events::{DaemonForwarderEvents, DaemonKubeEvents, DaemonTailEvents};
use crate::filter::Selector;
use crate::lock::{self, DataDirLock};
use crate::metrics::Metrics;
use crate::sink;
use anyhow::Context;
use logferry_core::{Acker, RecordBatch};
use logferry_kube::PodStore;
use logferry_tail::{RunMode, Standby, Tailer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Batches queued between two stages. With the tailer's batches of up to 1,000
/// records this bounds the records in memory between stages.
const STAGE_QUEUE: usize = 16;

/// How often a progress line is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Runs the daemon until shutdown (or, with `once`, until every file was read
/// to its end, shipped and checkpointed).
///
/// # Errors
/// Fatal runtime errors: the data directory or admin address cannot be used,
/// the tailer fails. Exit code 2.
pub async fn run(config: Config, once: bool) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
    let limit = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    metrics
        .tail_open_files_limit
        .set(limit(config.source.max_open_files as u64));
    metrics
        .tail_deleted_files_limit
        .set(limit(config.source.max_deleted_files as u64));
    metrics
        .tail_deleted_bytes_limit
        .set(limit(config.source.max_deleted_bytes));
    let ready = Arc::new(AtomicBool::new(false));
    let data_dir_health = Arc::new(DataDirHealth::default());
    let sink_health = Arc::new(std::sync::OnceLock::new());
    let stop_reading = CancellationToken::new();
    let quit = CancellationToken::new();
    let background = CancellationToken::new();

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;

    let admin_stop = CancellationToken::new();
    let admin_task = admin::serve(
        config.listen,
        config.control_listen,
        AdminState {
            metrics: metrics.clone(),
            ready: ready.clone(),
            sink_health: sink_health.clone(),
            quit: quit.clone(),
            data_dir_health: data_dir_health.clone(),
        },
        admin_stop.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot listen on {} (server.listen) or {:?} (server.control_listen)",
            config.listen, config.control_listen
        )
    })?;

    let (store, pod_watch) =
        start_pod_store(&config, &metrics, &data_dir_health, &background).await;
    let Some((lock, standby)) = own_data_dir(&config, &ready, &quit).await? else {
        // Stopped while in standby: nothing of data_dir was touched.
        background.cancel();
        if let Some(watch) = pod_watch {
            let _ = watch.await;
        }
        admin_stop.cancel();
        let _ = admin_task.await;
        tracing::info!("logferry stopped in standby");
        return Ok(());
    };
    // From here on this process owns data_dir (checkpoints, spool, pods.json).
    let persist = store
        .as_ref()
        .map(|s| tokio::spawn(s.persist(background.clone())));
    let tail_events = Arc::new(DaemonTailEvents::new(
        metrics.clone(),
        store.clone(),
        data_dir_health.clone(),
    ));
    // `/quitquitquit` ships every line written before the call: the tailer
    // reads every file to its end first, then stops.
    // NATS mode reads a NATS subscription or JetStream consumer instead.
    let tailer = match config.source.mode {
        SourceMode::Nats => None,
        _ => Some(
            match (
                Tailer::new(config::to_tail_config(&config), tail_events)
                    .context("cannot start the tailer")?
                    .finish_on(quit.clone()),
                standby,
            ) {
                (tailer, Some(standby)) => tailer.adopt(standby),
                (tailer, None) => tailer,
            },
        ),
    };

    let (acker, acks) = Acker::channel();
    // Acknowledgements pass the freshness bookkeeping on their way back.
    let acks = crate::freshness::relay_acks(metrics.freshness.clone(), acks);
    let (tail_tx, tail_rx) = mpsc::channel::<RecordBatch>(STAGE_QUEUE);
    let (sink_tx, sink_rx) = mpsc::channel::<RecordBatch>(STAGE_QUEUE);
    let enricher = Enricher {
        store: store.clone(),
        selector: Selector::new(&config.source.include, &config.source.exclude)
            .context("invalid source.include / source.exclude")?,
        min_level: config.min_level,
        metrics: metrics.clone(),
    };
    let enrich_task = tokio::spawn(enricher.run(tail_rx, sink_tx, acker.clone()));

    let hard_stop = CancellationToken::new();
    let sink_task = match &config.elasticsearch {
        None if config.nats.is_some() => {
            let nats = config.nats.clone().expect("checked");
            tracing::info!(subject = %nats.subject, "publishing documents to NATS JetStream");
            let options = config::to_document_options(&config);
            let acker = acker.clone();
            let metrics = metrics.clone();
            let hard_stop = hard_stop.clone();
            tokio::spawn(async move {
                crate::nats::sink(sink_rx, acker, nats, options, metrics, hard_stop)
                    .await
                    .context("NATS sink failed")
            })
        }
        Some(es) => {
            let forwarder = logferry_elasticsearch::Forwarder::new(
                es.forwarder.clone(),
                config::to_document_options(&config),
                Arc::new(DaemonForwarderEvents::new(metrics.clone())),
            )
            .context("invalid elasticsearch configuration")?;
            let _ = sink_health.set(forwarder.health());
            let acker = acker.clone();
            let hard_stop = hard_stop.clone();
            tokio::spawn(async move {
                let summary = forwarder
                    .run(sink_rx, acker, hard_stop)
                    .await
                    .context("elasticsearch forwarder failed")?;
                anyhow::Ok(summary.stopped_early)
            })
        }
        None => {
            tracing::info!("no elasticsearch section: writing documents to stdout (NDJSON)");
            let options = config::to_document_options(&config);
            let acker = acker.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                sink::stdout(sink_rx, acker, options, metrics)
                    .await
                    .context("writing to stdout failed")?;
                anyhow::Ok(false)
            })
        }
    };
    // A sink that ends by itself (a fatal error) stops the daemon.
    let sink_failed = CancellationToken::new();
    let mut sink_task = sink_task;
    let sink_task = {
        let sink_failed = sink_failed.clone();
        tokio::spawn(async move {
            let r = (&mut sink_task).await;
            if matches!(r, Ok(Err(_)) | Err(_)) {
                sink_failed.cancel();
            }
            r
        })
    };
    // Only the stages hold acknowledgers now: when both are done, the
    // tailer's acknowledgement channel closes and it writes its checkpoints.
    drop(acker);

    let mode = if once { RunMode::Once } else { RunMode::Follow };
    let tail_task: tokio::task::JoinHandle<anyhow::Result<ReadSummary>> = match tailer {
        Some(tailer) => {
            let stop = stop_reading.clone();
            tokio::spawn(async move {
                let s = tailer.run(mode, tail_tx, acks, stop).await.map_err(|e| {
                    // Tells the operator whether a restart can help (an I/O error on the
                    // data directory may be transient; a refused checkpoint file is not).
                    tracing::error!(error = %e, retryable = e.is_retryable(), "the tailer failed");
                    anyhow::Error::new(e).context("tailer failed")
                })?;
                Ok(ReadSummary {
                    files: s.files,
                    records: s.records,
                    bytes: s.bytes,
                })
            })
        }
        None => {
            let nats = config
                .source
                .nats
                .clone()
                .context("source.mode nats without source.nats")?;
            let source = logferry_nats::NatsSource::new(
                nats,
                Arc::new(crate::nats::DaemonNatsEvents::new(metrics.clone())),
            )
            .context("invalid source.nats")?;
            let stop = stop_reading.clone();
            tokio::spawn(async move {
                let s = match source.run(tail_tx, acks, stop).await {
                    Err(logferry_nats::Error::Cancelled) => Default::default(),
                    r => r.context("NATS source failed")?,
                };
                Ok(ReadSummary {
                    files: 0,
                    records: s.records,
                    bytes: s.bytes,
                })
            })
        }
    };
    ready.store(true, Ordering::SeqCst);
    tracing::info!(
        node = %config.node_name,
        mode = ?config.source.mode,
        once,
        "logferry started"
    );

    let progress = tokio::spawn(progress_loop(metrics.clone(), background.clone()));

    // Wait for a reason to stop: a signal, /quitquitquit, or (once) the tailer finishing.
    let mut tail_task = tail_task;
    let tail_result = tokio::select! {
        r = &mut tail_task => Some(r),
        _ = sink_failed.cancelled() => {
            tracing::error!("the sink stopped: shutting down");
            None
        }
        cause = shutdown_signal(quit.clone()) => {
            tracing::info!(cause, drain_timeout = ?config.drain_timeout, "shutting down: reading stops, in-flight batches drain");
            None
        }
    };
    ready.store(false, Ordering::SeqCst);
    if !quit.is_cancelled() {
        // A signal: stop reading now. (`/quitquitquit` lets the tailer read
        // every file to its end first; it stops by itself.)
        stop_reading.cancel();
    }
    let drain_deadline = {
        let hard_stop = hard_stop.clone();
        let stop_reading = stop_reading.clone();
        let timeout = config.drain_timeout;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            // Counted now, while the admin server still answers scrapes.
            metrics.shutdown_drain_timeouts.inc();
            tracing::warn!(
                ?timeout,
                "drain timeout reached: undelivered records will be read again after restart"
            );
            // After `/quitquitquit` the tailer may still be reading files to
            // their end (one huge file): the deadline bounds that too.
            stop_reading.cancel();
            hard_stop.cancel();
        })
    };
    let tail_result = match tail_result {
        Some(r) => r,
        None => tail_task.await,
    };
    let _ = enrich_task.await;
    let sink_result = sink_task
        .await
        .context("sink task panicked")?
        .context("sink task panicked")?;
    drain_deadline.abort();
    background.cancel();
    let _ = progress.await;
    if let Some(watch) = pod_watch {
        let _ = watch.await;
    }
    if let Some(persist) = persist {
        let _ = persist.await;
    }
    // Checkpoints, spool and pods.json are written: a standby may take over.
    lock.release();
    admin_stop.cancel();
    let _ = admin_task.await;
    let summary = tail_result.context("tailer task panicked")??;
    // Checkpoints are written either way; a sink that failed is still fatal.
    let stopped_early: bool = sink_result?;
    if stopped_early {
        // A sidecar pod must not report success with lines missing.
        return Err(DrainTimeout {
            timeout: config.drain_timeout,
            records: summary.records,
        }
        .into());
    }
    tracing::info!(
        files = summary.files,
        records = summary.records,
        bytes = summary.bytes,
        "logferry stopped; checkpoints written"
    );
    Ok(())
}

/// The drain timeout fired with records not yet delivered: they were not
/// acknowledged, so their checkpoints did not advance and the next start reads
/// them again, but this run did not ship everything it read.
#[derive(Debug, thiserror::Error)]
#[error(
    "drain timeout ({timeout:?}, shutdown.drain_timeout) reached with records not delivered; \
     checkpoints stop before them, so they are read again at the next start ({records} records were read in this run)"
)]
pub struct DrainTimeout {
    /// `shutdown.drain_timeout`.
    pub timeout: Duration,
    /// Records read in this run (delivered or not).
    pub records: u64,
}

/// The process exit code for an error from [`run`]: 1 when the data on disk
/// cannot be used by this version (a checkpoint file written by a newer
/// version: a configuration problem, not a crash to restart from), 2 for every
/// other fatal runtime error, the drain timeout included.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let newer_checkpoint = error.chain().any(|e| {
        matches!(
            e.downcast_ref::<logferry_tail::Error>(),
            Some(logferry_tail::Error::CheckpointVersion { .. })
        )
    });
    // Refused NATS credentials are a configuration error too.
    let nats_config = error.chain().any(|e| {
        e.downcast_ref::<logferry_nats::Error>()
            .is_some_and(logferry_nats::Error::is_config)
    });
    if newer_checkpoint || nats_config {
        1
    } else {
        2
    }
}

/// What the reading stage did (the tailer's files, or the NATS source's messages).
struct ReadSummary {
    files: usize,
    records: u64,
    bytes: u64,
}

/// The pod store (none outside `source.mode: kubernetes`) and the task of its watch,
/// which ends once `shutdown` is cancelled. Its persistence (`<data_dir>/pods.json`)
/// starts only once this process owns `data_dir`.
async fn start_pod_store(
    config: &Config,
    metrics: &Arc<Metrics>,
    health: &Arc<DataDirHealth>,
    shutdown: &CancellationToken,
) -> (Option<PodStore>, Option<JoinHandle<()>>) {
    if config.source.mode != SourceMode::Kubernetes {
        return (None, None);
    }
    let kube_config = config::to_kube_config(config);
    if !config.kubernetes.enabled {
        tracing::info!(
            "kubernetes.enabled is false: records carry the metadata their file path holds"
        );
        return (None, None);
    }
    match kube::Client::try_default().await {
        Ok(client) => {
            metrics.kubernetes_watch_enabled.set(1);
            let (store, watch) = PodStore::watch(
                client,
                kube_config,
                Arc::new(DaemonKubeEvents::new(metrics.clone(), health.clone())),
                shutdown.clone(),
            );
            (Some(store), Some(tokio::spawn(watch)))
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "no Kubernetes API configuration (in-cluster or KUBECONFIG): records carry the metadata their file path holds"
            );
            (Some(PodStore::disabled(kube_config)), None)
        }
    }
}

/// Takes the `data_dir` lock, at once or after waiting in standby: while
/// another logferry owns `data_dir` (the old pod of a surge rollout), this one
/// holds the node's log files open without reading them or writing anything in
/// `data_dir`, reports ready (so that the rollout stops the old pod), and takes
/// over the moment the lock is free. `None` when a shutdown came first.
///
/// # Errors
/// The lock file cannot be opened or locked; an invalid source configuration.
async fn own_data_dir(
    config: &Config,
    ready: &AtomicBool,
    quit: &CancellationToken,
) -> anyhow::Result<Option<(DataDirLock, Option<Standby>)>> {
    let try_lock = || {
        DataDirLock::try_acquire(&config.data_dir)
            .with_context(|| format!("cannot lock {}", config.data_dir.join("lock").display()))
    };
    if let Some(lock) = try_lock()? {
        tracing::info!(data_dir = %config.data_dir.display(), standby = false, "data_dir lock acquired");
        return Ok(Some((lock, None)));
    }
    tracing::info!(
        data_dir = %config.data_dir.display(),
        "standby: another logferry owns data_dir; holding the node's log files open until it hands over"
    );
    // NATS mode has no files to hold.
    let mut standby = match config.source.mode {
        SourceMode::Nats => None,
        _ => Some(
            Tailer::standby(&config::to_tail_config(config)).context("cannot start the tailer")?,
        ),
    };
    let mut scan = || standby.as_mut().map_or((0, 0), Standby::scan);
    scan();
    ready.store(true, Ordering::SeqCst);
    let signal = shutdown_signal(quit.clone());
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(lock::RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cause = &mut signal => {
                tracing::info!(cause, "shutting down in standby");
                ready.store(false, Ordering::SeqCst);
                return Ok(None);
            }
            _ = tick.tick() => {}
        }
        let (held, gone) = scan();
        if let Some(lock) = try_lock()? {
            tracing::info!(
                data_dir = %config.data_dir.display(),
                standby = true,
                held,
                deleted_while_held = gone,
                "data_dir lock acquired"
            );
            return Ok(Some((lock, standby)));
        }
    }
}

/// Resolves with the cause of a shutdown request.
async fn shutdown_signal(quit: CancellationToken) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = quit.cancelled() => "/quitquitquit",
    }
}

/// Logs a progress line every [`PROGRESS_EVERY`]: files open, records/s, lag.
async fn progress_loop(metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut last_records = metrics.tail_read_records.get();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let records = metrics.tail_read_records.get();
        tracing::info!(
            files_open = metrics.tail_files_open.get(),
            records_per_second = (records - last_records) as f64 / PROGRESS_EVERY.as_secs_f64(),
            shipped = metrics.es_sent_records.get() + metrics.stdout_written_records.get(),
            checkpoint_lag_bytes = metrics.tail_checkpoint_lag_bytes.get(),
            pods = metrics.kubernetes_pods.get(),
            "progress"
        );
        last_records = records;
    }
}
