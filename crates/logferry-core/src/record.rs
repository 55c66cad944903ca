//! Records and batches of records.

use crate::ack::AckToken;
use crate::file::{FileId, SourceId};
use crate::path::KubeLogPath;
use crate::pod::PodMeta;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;

/// The output stream a line was written to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`, as in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How a file's lines are framed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum LogFormat {
    /// CRI (containerd, CRI-O): `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <message>`.
    /// See <https://github.com/kubernetes/design-proposals-archive/blob/main/node/kubelet-cri-logging.md>.
    Cri,
    /// Docker `json-file`: `{"log":"…\n","stream":"stdout","time":"…"}`.
    /// See <https://docs.docker.com/engine/logging/drivers/json-file/>.
    Docker,
    /// Plain text lines (files mode); the record time is the time it was read.
    Plain,
}

/// Flags describing how a record was assembled. A bit set; combine with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RecordFlags(pub u8);

impl RecordFlags {
    /// No flag.
    pub const NONE: RecordFlags = RecordFlags(0);
    /// Joined from several partial chunks (CRI `P`, docker `log` without `\n`).
    pub const PARTIAL_JOINED: RecordFlags = RecordFlags(1);
    /// Longer than `max_record_bytes`; the message holds only the first bytes.
    pub const TRUNCATED: RecordFlags = RecordFlags(2);
    /// The line did not parse in the file's format; the message is the raw line.
    pub const UNPARSED: RecordFlags = RecordFlags(4);
    /// A trailing partial chunk flushed at end of file, deletion or timeout
    /// without its final chunk.
    pub const INCOMPLETE: RecordFlags = RecordFlags(8);
    /// Joined from several lines by the multiline rule.
    pub const MULTILINE: RecordFlags = RecordFlags(16);
    /// The message is a complete JSON document (an object) that sinks write
    /// as it is, not a log line to wrap; and `start`/`end` are not byte
    /// offsets but the two little-endian halves of the record's 128-bit
    /// identity (its document `_id` is their 16 bytes in URL-safe base64
    /// without padding). Records from a NATS source carry this flag: their
    /// identity is the JetStream `Nats-Msg-Id` or stream sequence, not a place
    /// in a file.
    pub const DOCUMENT: RecordFlags = RecordFlags(32);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: RecordFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl Record {
    /// The 16 identity bytes of a [`RecordFlags::DOCUMENT`] record: `start`
    /// then `end`, little-endian.
    pub fn document_identity(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.start.to_le_bytes());
        id[8..].copy_from_slice(&self.end.to_le_bytes());
        id
    }

    /// The `(start, end)` pair that carries the 16 identity bytes `id` (the
    /// inverse of [`Record::document_identity`]).
    pub fn identity_halves(id: [u8; 16]) -> (u64, u64) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&id[..8]);
        hi.copy_from_slice(&id[8..]);
        (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
    }
}

impl std::ops::BitOr for RecordFlags {
    type Output = RecordFlags;
    fn bitor(self, rhs: RecordFlags) -> RecordFlags {
        RecordFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for RecordFlags {
    fn bitor_assign(&mut self, rhs: RecordFlags) {
        self.0 |= rhs.0;
    }
}

/// One log record: a message with its stream, time and place in the file.
///
/// With [`RecordFlags::DOCUMENT`], `start` and `end` hold the record's
/// 128-bit identity instead of a byte range (see there).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// Byte offset of the record's first byte (the start of its first line) in the file.
    pub start: u64,
    /// Byte offset one past the record's last byte (after the `\n` of its last line).
    pub end: u64,
    /// Time from the log line, nanoseconds since the Unix epoch (UTC).
    pub timestamp_nanos: i64,
    /// The stream the line was written to.
    pub stream: Stream,
    /// How the record was assembled.
    pub flags: RecordFlags,
    /// The message bytes, without framing and without the trailing newline.
    pub message: Bytes,
}

/// A log file as the tailer opened it. Shared (`Arc`) by every batch read from it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Source {
    /// Process-local id that routes acknowledgements.
    pub id: SourceId,
    /// Identity of the file, stable across renames.
    pub file: FileId,
    /// The path the file had when it was opened (`/var/log/pods/…/0.log`).
    pub path: PathBuf,
    /// The file's place in kubelet's layout, when it lives under the pods directory.
    pub kube: Option<KubeLogPath>,
    /// The container id from the `/var/log/containers` symlink, when known
    /// (`containerd://` style prefix not included).
    pub container_id: Option<String>,
    /// How the file's lines are framed.
    pub format: LogFormat,
}

/// Consecutive records of one file, in file order, with the token that
/// acknowledges them.
#[derive(Clone, Debug)]
pub struct RecordBatch {
    /// The file the records were read from.
    pub source: Arc<Source>,
    /// Send back through an [`Acker`](crate::Acker) once every record was delivered.
    pub ack: AckToken,
    /// The records, in file order.
    pub records: Vec<Record>,
    /// Pod metadata, attached by the pipeline after the tailer (`None` from the tailer).
    pub meta: Option<Arc<PodMeta>>,
}

impl RecordBatch {
    /// The id of the file this batch came from.
    pub fn source_id(&self) -> SourceId {
        self.source.id
    }

    /// Sum of the message lengths, in bytes.
    pub fn message_bytes(&self) -> usize {
        self.records.iter().map(|r| r.message.len()).sum()
    }
}
