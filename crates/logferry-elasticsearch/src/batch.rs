//! Bulk request bodies, the items in them, and per-batch acknowledgement.

use bytes::Bytes;
use logferry_core::{AckToken, Acker};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts the records of one [`RecordBatch`](logferry_core::RecordBatch) that
/// are not finished yet; acknowledges the batch when the last one is.
pub(crate) struct BatchTracker {
    token: AckToken,
    remaining: AtomicUsize,
    acker: Acker,
    acked: Arc<AtomicU64>,
}

impl BatchTracker {
    pub(crate) fn new(
        token: AckToken,
        records: usize,
        acker: Acker,
        acked: Arc<AtomicU64>,
    ) -> Self {
        BatchTracker {
            token,
            remaining: AtomicUsize::new(records),
            acker,
            acked,
        }
    }

    /// `n` records of the batch were delivered or dead-lettered. Acknowledges
    /// the batch when none is left.
    pub(crate) fn finish(&self, n: usize) {
        let before = self.remaining.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "more records finished than the batch holds");
        if before == n {
            self.acker.ack(self.token);
            self.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What an item is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ItemKind {
    /// A record's document.
    Record,
    /// A dead-letter document for a record Elasticsearch refused.
    DeadLetter,
}

/// One bulk item: its bytes in the body (action line, document, `\n`).
#[derive(Clone)]
pub(crate) struct Item {
    pub tracker: Arc<BatchTracker>,
    pub range: Range<usize>,
    /// The document (second line) within `range`, without its `\n`.
    pub doc: Range<usize>,
    pub kind: ItemKind,
}

impl Item {
    pub(crate) fn len(&self) -> usize {
        self.range.len()
    }
}

/// A bulk request body under construction.
#[derive(Default)]
pub(crate) struct BulkBuilder {
    pub body: Vec<u8>,
    pub items: Vec<Item>,
}

impl BulkBuilder {
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends `src[item.range]` as a new item.
    pub(crate) fn push_copy(&mut self, src: &[u8], item: &Item) {
        let at = self.body.len();
        self.body.extend_from_slice(&src[item.range.clone()]);
        let shift =
            |r: &Range<usize>| (r.start - item.range.start + at)..(r.end - item.range.start + at);
        self.items.push(Item {
            tracker: item.tracker.clone(),
            range: shift(&item.range),
            doc: shift(&item.doc),
            kind: item.kind,
        });
    }

    /// Removes the last item and returns it as a builder of its own.
    pub(crate) fn split_last(&mut self) -> BulkBuilder {
        let mut rest = BulkBuilder::default();
        if let Some(last) = self.items.pop() {
            rest.push_copy(&self.body, &last);
            self.body.truncate(last.range.start);
        }
        rest
    }

    pub(crate) fn freeze(self) -> Bulk {
        Bulk {
            body: Bytes::from(self.body),
            items: self.items,
        }
    }
}

/// A bulk request body, immutable once built.
pub(crate) struct Bulk {
    pub body: Bytes,
    pub items: Vec<Item>,
}

impl Bulk {
    /// A new body with only `items` (which point into `self.body`).
    pub(crate) fn subset<'a>(&self, items: impl IntoIterator<Item = &'a Item>) -> BulkBuilder {
        let mut b = BulkBuilder::default();
        for item in items {
            b.push_copy(&self.body, item);
        }
        b
    }

    pub(crate) fn doc(&self, item: &Item) -> &[u8] {
        &self.body[item.doc.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_core::SourceId;

    fn item(b: &mut BulkBuilder, tracker: &Arc<BatchTracker>, text: &str) {
        let start = b.body.len();
        b.body.extend_from_slice(b"{\"create\":{}}\n");
        let doc_start = b.body.len();
        b.body.extend_from_slice(text.as_bytes());
        let doc_end = b.body.len();
        b.body.push(b'\n');
        b.items.push(Item {
            tracker: tracker.clone(),
            range: start..b.body.len(),
            doc: doc_start..doc_end,
            kind: ItemKind::Record,
        });
    }

    #[test]
    fn subsets_and_splits_keep_items_intact() {
        let (acker, mut rx) = Acker::channel();
        let acked = Arc::new(AtomicU64::new(0));
        let t = Arc::new(BatchTracker::new(
            AckToken {
                source: SourceId(1),
                seq: 7,
            },
            3,
            acker,
            acked.clone(),
        ));
        let mut b = BulkBuilder::default();
        item(&mut b, &t, "{\"a\":1}");
        item(&mut b, &t, "{\"b\":22}");
        item(&mut b, &t, "{\"c\":333}");
        let last = b.split_last();
        assert_eq!(last.body, b"{\"create\":{}}\n{\"c\":333}\n");
        assert_eq!(&last.body[last.items[0].doc.clone()], b"{\"c\":333}");
        let bulk = b.freeze();
        assert_eq!(bulk.doc(&bulk.items[1]), b"{\"b\":22}");
        let sub = bulk.subset([&bulk.items[1]]).freeze();
        assert_eq!(&sub.body[..], b"{\"create\":{}}\n{\"b\":22}\n");
        assert_eq!(sub.doc(&sub.items[0]), b"{\"b\":22}");
        t.finish(2);
        assert!(rx.try_recv().is_err());
        t.finish(1);
        assert_eq!(rx.try_recv().unwrap().seq, 7);
        assert_eq!(acked.load(Ordering::Relaxed), 1);
    }
}
