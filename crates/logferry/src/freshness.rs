//! Freshness: how far behind the node's log writers Elasticsearch is.
//!
//! `logferry_pipeline_lag_seconds` is the age (now minus the write time the
//! log line carries) of the oldest record handed to the pipeline and not yet
//! acknowledged, and 0 when every record handed on is acknowledged.
//!
//! Why this shape rather than "now minus the write time of the newest
//! acknowledged record" or a histogram of record ages at acknowledgement:
//! the newest-acknowledged gauge grows on an idle node (nothing written,
//! nothing to ship) and has no value before the first acknowledgement, so an
//! alert on it needs a second condition and fires falsely on quiet nodes; a
//! histogram observes only what gets acknowledged, so in the outage that
//! matters most (Elasticsearch down, nothing acknowledged) it has no samples
//! and an alert on it stays silent. The age of the oldest unacknowledged
//! record is 0 on an idle node, a second or two on a healthy busy one (batch
//! timeout plus a bulk round trip), and grows one second per second while
//! delivery is stuck, so `logferry_pipeline_lag_seconds > N` alone is the
//! alert.
//!
//! Records enter when the enrichment stage takes their batch from the
//! tailer (or the NATS source) and leave when the batch's acknowledgement
//! passes [`relay_acks`] on its way back (delivered, dead-lettered, or
//! dropped on purpose). Bookkeeping is per batch: one map entry holding the
//! batch's oldest write time.

use logferry_core::{AckToken, RecordBatch};
use prometheus::Gauge;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The batches in the pipeline and the gauge computed from them at each scrape.
pub struct Freshness {
    /// Oldest write time (nanoseconds since the Unix epoch) per outstanding batch.
    outstanding: Mutex<HashMap<AckToken, i64>>,
    /// `logferry_pipeline_lag_seconds`.
    lag: Gauge,
}

impl Freshness {
    /// Tracks batches for `lag` (registered by the caller), which starts at 0.
    pub fn new(lag: Gauge) -> Freshness {
        lag.set(0.0);
        Freshness {
            outstanding: Mutex::new(HashMap::new()),
            lag,
        }
    }

    /// `batch` entered the pipeline: its oldest record counts until its
    /// acknowledgement passes [`relay_acks`]. Empty batches are not tracked.
    pub fn handed_on(&self, batch: &RecordBatch) {
        let Some(oldest) = batch.records.iter().map(|r| r.timestamp_nanos).min() else {
            return;
        };
        self.lock().insert(batch.ack, oldest);
    }

    /// The batch named by `token` was acknowledged.
    pub fn acknowledged(&self, token: &AckToken) {
        self.lock().remove(token);
    }

    /// Sets the gauge to the age in seconds of the oldest outstanding record
    /// at `now_nanos` (0 with nothing outstanding; never negative, so a line
    /// stamped in the future counts as fresh). Called before each scrape.
    pub fn update(&self, now_nanos: i64) {
        let oldest = self.lock().values().copied().min();
        let age = oldest.map_or(0, |t| now_nanos.saturating_sub(t).max(0));
        self.lag.set(age as f64 / 1e9);
    }

    /// [`update`](Self::update) with the wall clock.
    pub fn update_now(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        self.update(now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AckToken, i64>> {
        // The map holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.outstanding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Passes every acknowledgement from the sinks to the reading stage, marking
/// its batch acknowledged in `freshness` on the way. The returned receiver
/// closes when `from_sinks` does (every `Acker` dropped), as the original
/// would have.
pub fn relay_acks(
    freshness: Arc<Freshness>,
    mut from_sinks: mpsc::UnboundedReceiver<AckToken>,
) -> mpsc::UnboundedReceiver<AckToken> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(token) = from_sinks.recv().await {
            freshness.acknowledged(&token);
            if tx.send(token).is_err() {
                // The reading stage is gone (shutdown): nothing to pass on.
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use logferry_core::{FileId, LogFormat, Record, RecordFlags, Source, SourceId, Stream};
    use std::path::PathBuf;

    fn batch(seq: u64, stamps: &[i64]) -> RecordBatch {
        let source = Arc::new(Source {
            id: SourceId(1),
            file: FileId {
                dev: 1,
                ino: 2,
                fingerprint: 3,
            },
            path: PathBuf::from("/var/log/app.log"),
            kube: None,
            container_id: None,
            format: LogFormat::Cri,
        });
        RecordBatch {
            ack: AckToken {
                source: source.id,
                seq,
            },
            source,
            records: stamps
                .iter()
                .map(|&t| Record {
                    start: 0,
                    end: 1,
                    timestamp_nanos: t,
                    stream: Stream::Stdout,
                    flags: RecordFlags(0),
                    message: Bytes::from_static(b"x"),
                })
                .collect(),
            meta: None,
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn lag_is_the_age_of_the_oldest_unacknowledged_record_and_zero_when_none() {
        let f = Freshness::new(Gauge::new("lag", "lag").unwrap());
        f.update(100 * S);
        assert_eq!(f.lag.get(), 0.0, "nothing outstanding");
        let (a, b) = (batch(0, &[40 * S, 30 * S, 50 * S]), batch(1, &[60 * S]));
        f.handed_on(&a);
        f.handed_on(&b);
        f.handed_on(&batch(2, &[]));
        f.update(100 * S);
        assert_eq!(f.lag.get(), 70.0, "oldest record of the oldest batch");
        f.update(110 * S);
        assert_eq!(f.lag.get(), 80.0, "grows while stuck");
        f.acknowledged(&a.ack);
        f.update(110 * S);
        assert_eq!(f.lag.get(), 50.0);
        f.acknowledged(&b.ack);
        f.update(110 * S);
        assert_eq!(f.lag.get(), 0.0, "caught up");
        f.handed_on(&batch(3, &[200 * S]));
        f.update(110 * S);
        assert_eq!(f.lag.get(), 0.0, "a line stamped in the future is fresh");
    }
}
