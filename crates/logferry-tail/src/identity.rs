//! File identity: `(dev, ino)` from `fstat` plus the fingerprint of the first line.

use crate::decode::detect_format;
use logferry_core::{DevIno, FileId, LogFormat};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes read from the start of a file to find its first line.
pub const HEAD_BYTES: usize = 4096;

/// What the first bytes of a file say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// XXH3-64 of the first line (at most [`FileId::FINGERPRINT_MAX_BYTES`] bytes), never 0.
    pub fingerprint: u64,
    /// How many bytes the fingerprint covers.
    pub fingerprint_len: usize,
    /// Format detected from the first line.
    pub format: LogFormat,
}

/// Fingerprint of `bytes` (already cut to the first line / 256 bytes). Never 0.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    match xxhash_rust::xxh3::xxh3_64(bytes) {
        0 => 1,
        h => h,
    }
}

/// Reads the head of `file`. Returns `None` while the first line is
/// incomplete (shorter than [`HEAD_BYTES`] and without `\n`), unless `final_`
/// says the file will not grow any more (deleted, or run once): then any
/// non-empty content is its first line.
///
/// # Errors
/// The I/O error of `pread`.
pub fn read_head(file: &File, fallback: LogFormat, final_: bool) -> io::Result<Option<Head>> {
    let mut buf = [0u8; HEAD_BYTES];
    let mut n = 0;
    while n < HEAD_BYTES {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(head_of(&buf[..n], fallback, final_))
}

/// [`Head`] of a file whose first bytes (at most [`HEAD_BYTES`]) are `head`:
/// the first line, or all of `head` when it holds no `\n` and is
/// [`HEAD_BYTES`] long (a longer first line) or `final_`. `None` while the
/// first line is incomplete. Shared by open files and gzipped copies, so that
/// both compute the same fingerprint.
pub fn head_of(head: &[u8], fallback: LogFormat, final_: bool) -> Option<Head> {
    let n = head.len();
    let line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None if n == HEAD_BYTES || (final_ && n > 0) => head,
        None => return None,
    };
    let fp_len = (line.len() + 1).min(FileId::FINGERPRINT_MAX_BYTES).min(n);
    Some(Head {
        fingerprint: fingerprint(&head[..fp_len]),
        fingerprint_len: fp_len,
        format: detect_format(line, fallback),
    })
}

/// Re-reads the fingerprinted bytes and tells whether they still hash to `fp`.
///
/// # Errors
/// The I/O error of `pread`.
pub fn fingerprint_matches(file: &File, fp: u64, len: usize) -> io::Result<bool> {
    let mut buf = [0u8; FileId::FINGERPRINT_MAX_BYTES];
    let mut n = 0;
    while n < len {
        match file.read_at(&mut buf[n..len], n as u64) {
            Ok(0) => return Ok(false),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(fingerprint(&buf[..len]) == fp)
}

/// `(dev, ino)` of an open file.
///
/// # Errors
/// The I/O error of `fstat`.
pub fn dev_ino(file: &File) -> io::Result<DevIno> {
    let m = file.metadata()?;
    Ok(DevIno::new(m.dev(), m.ino()))
}
