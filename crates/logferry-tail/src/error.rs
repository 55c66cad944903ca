//! The error type of `logferry-tail`.

use std::path::PathBuf;

/// Everything that can go wrong in the tailer.
///
/// Per-file I/O problems while tailing (a file vanishing between `readdir` and
/// `open`, permission errors on one file) are logged and counted, not returned:
/// only configuration problems, an unusable data directory and failures to
/// persist checkpoints end [`Tailer::run`](crate::Tailer::run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable; the message names the field.
    #[error("invalid tailer configuration: {field}: {reason}")]
    Config {
        /// The offending field (`max_record_bytes`, `source.paths[2]`, …).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory could not be created or read.
    #[error("failed to prepare data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Neither the checkpoint file nor its previous copy could be read.
    #[error("failed to read checkpoint file {path}")]
    CheckpointRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file was written by a newer logferry (a downgrade):
    /// refused rather than reset, since starting over would ship every file
    /// again and ignoring it could skip data.
    #[error("checkpoint file {path} has format version {found}, newer than the {supported} this logferry reads: run the newer version, or move the file away to start over")]
    CheckpointVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Writing the checkpoint file failed.
    #[error("failed to write checkpoint file {path}")]
    CheckpointWrite {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// inotify could not be initialised or a watch could not be added. Not
    /// returned by [`Tailer::run`](crate::Tailer::run), which falls back to
    /// rescans and polling then; kept for callers that match on it.
    #[error("failed to watch {path} with inotify")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether retrying the same operation later can succeed (I/O errors may be
    /// transient; configuration errors are not).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::Config { .. } | Error::CheckpointVersion { .. })
    }
}
