//! Acknowledgements from the sink back to the tailer.

use crate::file::SourceId;
use tokio::sync::mpsc;

/// Names one [`RecordBatch`](crate::RecordBatch): the file it came from and
/// its sequence number within that file (0, 1, 2, … in read order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AckToken {
    /// The file the batch was read from.
    pub source: SourceId,
    /// The batch's position in the file's sequence of batches.
    pub seq: u64,
}

/// The sending half of the acknowledgement channel.
///
/// Cheap to clone. Acknowledgements are tiny and there are at most as many
/// outstanding as batches in flight, so the channel is unbounded: a sink never
/// blocks on acknowledging.
#[derive(Clone, Debug)]
pub struct Acker {
    tx: mpsc::UnboundedSender<AckToken>,
}

impl Acker {
    /// Creates an acknowledgement channel: the [`Acker`] goes to the sink, the
    /// receiver to the tailer.
    pub fn channel() -> (Acker, mpsc::UnboundedReceiver<AckToken>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Acker { tx }, rx)
    }

    /// Acknowledges one batch: every record in it was delivered, dead-lettered
    /// or dropped on purpose. Must be called exactly once per batch. If the
    /// tailer is gone (shutdown), the acknowledgement is discarded; the
    /// checkpoint then simply stays where it was and the batch is read again
    /// on the next start.
    pub fn ack(&self, token: AckToken) {
        let _ = self.tx.send(token);
    }
}
