//! File identity.

use std::fmt;

/// Identity of a log file on disk that survives renames and never matches a
/// recycled inode.
///
/// `(dev, ino)` come from `stat(2)`. `fingerprint` is a 64-bit XXH3 hash of the
/// file's first line (the bytes up to and including the first `\n`, at most
/// [`FileId::FINGERPRINT_MAX_BYTES`] bytes). Container log lines start with a
/// nanosecond timestamp, so two files sharing an inode number one after the other
/// have different fingerprints. A file whose first line is not complete yet
/// has fingerprint `0`; no record can be read from it before its first line is
/// complete, so every record ever emitted carries a non-zero fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FileId {
    /// Device number (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
    /// XXH3-64 of the first line, `0` while the first line is incomplete.
    pub fingerprint: u64,
}

impl FileId {
    /// Most bytes of the first line that go into the fingerprint.
    pub const FINGERPRINT_MAX_BYTES: usize = 256;

    /// The identity of the inode `dev_ino` whose first line hashes to `fingerprint`.
    pub const fn new(dev_ino: DevIno, fingerprint: u64) -> FileId {
        FileId {
            dev: dev_ino.dev,
            ino: dev_ino.ino,
            fingerprint,
        }
    }

    /// The inode part of the identity.
    pub const fn dev_ino(&self) -> DevIno {
        DevIno {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// Which inode on which filesystem: `(st_dev, st_ino)` from `stat(2)`.
///
/// Unique among the files that exist at one instant, not over time: a freed
/// inode number is handed to the next new file at once, which is why a
/// [`FileId`] adds the fingerprint of the first line.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct DevIno {
    /// Device number (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
}

impl DevIno {
    /// `(dev, ino)` as a [`DevIno`].
    pub const fn new(dev: u64, ino: u64) -> DevIno {
        DevIno { dev, ino }
    }
}

impl fmt::Display for DevIno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{:016x}", self.dev, self.ino, self.fingerprint)
    }
}

/// A process-local number the tailer gives each file it opens, used to route
/// acknowledgements back to the file's checkpoint tracker. Not persisted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SourceId(pub u64);
