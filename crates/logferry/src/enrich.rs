//! The enrichment stage: attaches pod metadata to every batch, applies the
//! include/exclude globs, the exclude annotation and `min_level`, and
//! acknowledges what it drops.
//!
//! Metadata is looked up once per file and cached (`Arc<PodMeta>`), then
//! refreshed in the background every [`REFRESH`]. A file whose pod is not in the
//! store yet waits (up to `kubernetes.lookup_wait`) without holding up other
//! files: its batches queue while its lookup runs, everything else flows.
//!
//! The queued batches are bounded in bytes ([`LOOKUP_WAIT_MAX_BYTES`]): at the
//! bound the stage stops taking batches from the tailer, whose channel fills,
//! so reading pauses (the files are the buffer) until a lookup ends, at the
//! latest after `lookup_wait`. A node with a large backlog of files whose pods
//! the API does not know (yet) thus costs no more memory than any other.

use crate::filter::{retain_min_level, Selector};
use crate::metrics::{Metrics, BELOW_MIN_LEVEL, EXCLUDED, STORE_DISABLED};
use futures::stream::{FuturesUnordered, StreamExt};
use logferry_core::{Acker, Level, PodMeta, Record, RecordBatch, SourceId};
use logferry_kube::{Lookup, PodStore};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often cached metadata of an open file is looked up again (labels
/// change, IPs get assigned, pods get deleted).
pub const REFRESH: Duration = Duration::from_secs(2);

/// What happens to a file's records.
#[derive(Clone)]
enum Decision {
    /// Ship with this metadata (`None` in files mode); the label says why it is path-only.
    Ship(Option<Arc<PodMeta>>, Option<&'static str>),
    Drop(&'static str),
}

struct Entry {
    decision: Decision,
    looked_up: Instant,
    refreshing: bool,
}

/// Most bytes of batches queued while their pod's metadata is looked up
/// (messages plus the per-record bookkeeping, see [`held_bytes`]); the stage
/// takes no batch from the tailer while the queue holds this much. 16 MiB is
/// the same order as one stage queue (16 batches of up to 1 MiB of messages).
pub const LOOKUP_WAIT_MAX_BYTES: usize = 16 << 20;

/// What a queued batch holds in memory: its message bytes plus one
/// [`Record`] per record (the batch's own allocation is small next to that).
fn held_bytes(batch: &RecordBatch) -> usize {
    batch.message_bytes() + batch.records.len() * std::mem::size_of::<Record>()
}

/// Cache entries of files that sent nothing for this long are forgotten.
const IDLE_EVICT: Duration = Duration::from_secs(300);

type LookupFuture = Pin<Box<dyn Future<Output = (SourceId, Decision)> + Send>>;

/// The enrichment stage's fixed inputs.
pub struct Enricher {
    /// The pod store; `None` when Kubernetes metadata is disabled or in files mode.
    pub store: Option<PodStore>,
    /// Include/exclude globs.
    pub selector: Selector,
    /// Drop records below this level.
    pub min_level: Option<Level>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl Enricher {
    fn decide_without_api(&self, batch: &RecordBatch) -> Option<Decision> {
        let source = &batch.source;
        match &source.kube {
            Some(path) => {
                if !self
                    .selector
                    .accepts(&path.namespace, &path.pod_name, &path.container)
                {
                    return Some(Decision::Drop(EXCLUDED));
                }
                if self.store.is_none() {
                    let meta = PodMeta::from_path(path, source.container_id.as_deref());
                    return Some(Decision::Ship(Some(Arc::new(meta)), Some(STORE_DISABLED)));
                }
                None
            }
            // Files mode: no pod to speak of.
            None => Some(Decision::Ship(None, None)),
        }
    }

    fn lookup(&self, batch: &RecordBatch) -> LookupFuture {
        let store = self.store.clone().expect("lookup only with a store");
        let source = batch.source.clone();
        Box::pin(async move {
            let path = source
                .kube
                .as_ref()
                .expect("lookup only for kubernetes files");
            let decision = match store.lookup(path, source.container_id.as_deref()).await {
                Lookup::Found(meta) => Decision::Ship(Some(meta), None),
                Lookup::Excluded => Decision::Drop(EXCLUDED),
                Lookup::PathOnly(meta, reason) => {
                    Decision::Ship(Some(meta), Some(reason.as_label()))
                }
            };
            (source.id, decision)
        })
    }

    /// Applies a decision to a batch and forwards it (or acknowledges it when
    /// nothing is left to ship). Returns `false` when the output is closed.
    async fn apply(
        &self,
        decision: &Decision,
        mut batch: RecordBatch,
        out: &mpsc::Sender<RecordBatch>,
        acker: &Acker,
    ) -> bool {
        match decision {
            Decision::Drop(reason) => {
                self.metrics
                    .dropped_records
                    .with_label_values(&[reason])
                    .inc_by(batch.records.len() as u64);
                acker.ack(batch.ack);
                true
            }
            Decision::Ship(meta, missing) => {
                if let Some(min) = self.min_level {
                    let dropped = retain_min_level(&mut batch.records, min);
                    if dropped > 0 {
                        self.metrics
                            .dropped_records
                            .with_label_values(&[BELOW_MIN_LEVEL])
                            .inc_by(dropped as u64);
                    }
                }
                if batch.records.is_empty() {
                    acker.ack(batch.ack);
                    return true;
                }
                if let Some(reason) = missing {
                    self.metrics
                        .records_without_metadata
                        .with_label_values(&[reason])
                        .inc_by(batch.records.len() as u64);
                }
                batch.meta = meta.clone();
                out.send(batch).await.is_ok()
            }
        }
    }

    /// Runs until `input` closes and every queued batch was forwarded.
    pub async fn run(
        self,
        mut input: mpsc::Receiver<RecordBatch>,
        out: mpsc::Sender<RecordBatch>,
        acker: Acker,
    ) {
        let mut cache: HashMap<SourceId, Entry> = HashMap::new();
        let mut waiting: HashMap<SourceId, VecDeque<RecordBatch>> = HashMap::new();
        // `held_bytes` summed over `waiting`.
        let mut waiting_bytes = 0usize;
        let mut lookups: FuturesUnordered<LookupFuture> = FuturesUnordered::new();
        let mut input_open = true;
        let mut sweep = tokio::time::interval(IDLE_EVICT);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while input_open || !lookups.is_empty() {
            tokio::select! {
                // At the bound, reading pauses: the tailer's channel fills.
                batch = input.recv(), if input_open && waiting_bytes < LOOKUP_WAIT_MAX_BYTES => {
                    let Some(batch) = batch else { input_open = false; continue };
                    failpoint_panic("enricher");
                    // Counts for freshness until its acknowledgement comes back.
                    self.metrics.freshness.handed_on(&batch);
                    let id = batch.source.id;
                    if let Some(queue) = waiting.get_mut(&id) {
                        waiting_bytes += held_bytes(&batch);
                        queue.push_back(batch);
                        continue;
                    }
                    if let Some(entry) = cache.get_mut(&id) {
                        if entry.looked_up.elapsed() >= REFRESH && !entry.refreshing && self.store.is_some() && batch.source.kube.is_some() {
                            entry.refreshing = true;
                            lookups.push(self.lookup(&batch));
                        }
                        let decision = entry.decision.clone();
                        if !self.apply(&decision, batch, &out, &acker).await { return; }
                        continue;
                    }
                    if let Some(decision) = self.decide_without_api(&batch) {
                        cache.insert(id, Entry { decision: decision.clone(), looked_up: Instant::now(), refreshing: false });
                        if !self.apply(&decision, batch, &out, &acker).await { return; }
                        continue;
                    }
                    lookups.push(self.lookup(&batch));
                    waiting_bytes += held_bytes(&batch);
                    waiting.entry(id).or_default().push_back(batch);
                }
                _ = sweep.tick() => {
                    cache.retain(|_, e| e.refreshing || e.looked_up.elapsed() < IDLE_EVICT);
                }
                Some((id, decision)) = lookups.next(), if !lookups.is_empty() => {
                    cache.insert(id, Entry { decision: decision.clone(), looked_up: Instant::now(), refreshing: false });
                    if let Some(queue) = waiting.remove(&id) {
                        waiting_bytes -= queue.iter().map(held_bytes).sum::<usize>();
                        for batch in queue {
                            if !self.apply(&decision, batch, &out, &acker).await { return; }
                        }
                    }
                }
            }
        }
    }
}

/// Debug builds only: panics when `LOGFERRY_FAILPOINT` names `stage`, so the
/// end-to-end tests can check that a panicking task ends the process with exit
/// code 2. Compiled out of release builds.
fn failpoint_panic(stage: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("LOGFERRY_FAILPOINT").is_ok_and(|v| v == format!("{stage}_panic")) {
        panic!("failpoint {stage}_panic");
    }
    #[cfg(not(debug_assertions))]
    let _ = stage;
}
