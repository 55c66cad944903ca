//! The spool: copies of deleted log files whose records are not all
//! acknowledged yet, in `data_dir/spool/`.
//!
//! When kubelet removes a deleted pod's log files while Elasticsearch is down,
//! the tailer's open descriptor is the only copy of the unshipped lines, and a
//! crash (SIGKILL, OOM kill, node agent restart) would lose them. So the
//! unacknowledged part of such a file is copied here, made durable, and read
//! from here; the descriptor of the deleted file is closed, which also gives
//! its disk blocks back at once. After a restart the tailer reads every
//! spooled file from its checkpoint on, under the original file's identity
//! (so records keep their ids), and removes the copy once everything in it is
//! acknowledged.
//!
//! Layout, per file `(dev, ino, fingerprint)`:
//!
//! * `<dev>-<ino>-<fingerprint as 16 hex digits>.log`: a sparse copy with the
//!   original's byte offsets: its head (the first [`HEAD_BYTES`], for the
//!   fingerprint) and every byte from `start` to the end; the bytes between are
//!   a hole and never read.
//! * `<same>.json`: [`SpoolMeta`], the identity, `start`, the original path.
//!
//! Both are written to `*.tmp`, `fsync`ed and renamed (the `.json` first), then
//! the directory is `fsync`ed: a `.log` present after a crash is complete.
//!
//! Disk use is bounded twice: the copies never exceed `max_deleted_bytes` in
//! total, and a copy is made only if the filesystem keeps
//! `spool_min_free` free afterwards ([`Spool::room`], from `statvfs`). A copy
//! that fails (`ENOSPC`, `EIO`…) leaves nothing behind; the caller holds the
//! deleted file open instead and tries again later.

use crate::config::MinFree;
use crate::identity::HEAD_BYTES;
use logferry_core::FileId;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Version of the `.json` sidecar format.
const SPOOL_VERSION: u32 = 1;

/// Bytes copied per positioned read/write.
const COPY_CHUNK: usize = 256 * 1024;

/// The sidecar of a spooled file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpoolMeta {
    /// [`SPOOL_VERSION`].
    pub version: u32,
    /// Identity of the original file.
    pub dev: u64,
    pub ino: u64,
    pub fingerprint: u64,
    /// Every record starting before this offset was acknowledged when the
    /// copy was made; the copy holds the bytes from here to the end.
    pub start: u64,
    /// Length of the copy (the original's size when copied), bytes.
    pub len: u64,
    /// The original's path (pod, container and file name for metadata).
    pub path: PathBuf,
}

impl SpoolMeta {
    /// The original file's identity.
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint,
        }
    }
}

/// A spooled file found at start, to be read again.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub meta: SpoolMeta,
    pub file: File,
}

/// The spool directory.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Uses (and creates) `data_dir/spool`.
    pub fn open(data_dir: &Path) -> io::Result<Spool> {
        let dir = data_dir.join("spool");
        fs::create_dir_all(&dir)?;
        Ok(Spool { dir })
    }

    fn base(&self, id: FileId) -> PathBuf {
        self.dir
            .join(format!("{}-{}-{:016x}", id.dev, id.ino, id.fingerprint))
    }

    /// Copies `file` (the deleted original `id` at `path`,
    /// read through its descriptor) from `start` to its end, plus its head,
    /// and returns the durable copy opened for reading and the bytes copied.
    ///
    /// # Errors
    /// I/O errors reading the original or writing the copy (`ENOSPC`…); a
    /// failed copy leaves nothing behind.
    pub fn save(
        &self,
        file: &File,
        id: FileId,
        start: u64,
        path: &Path,
    ) -> io::Result<(File, u64)> {
        let mut meta = SpoolMeta {
            version: SPOOL_VERSION,
            dev: id.dev,
            ino: id.ino,
            fingerprint: id.fingerprint,
            start,
            len: 0,
            path: path.to_owned(),
        };
        let base = self.base(id);
        let (data, side) = (base.with_extension("log"), base.with_extension("json"));
        let (data_tmp, side_tmp) = (
            base.with_extension("log.tmp"),
            base.with_extension("json.tmp"),
        );
        let result = (|| {
            let out = File::create(&data_tmp)?;
            // Copy until the size is stable: a writer may still append.
            let mut copied_to = 0;
            let mut copied = 0;
            loop {
                let len = file.metadata()?.len();
                if len == copied_to && copied_to > 0 {
                    break;
                }
                out.set_len(len)?;
                let head_end = len.min(HEAD_BYTES as u64);
                if copied_to < head_end {
                    copied += copy_range(file, &out, copied_to, head_end)?;
                }
                let from = copied_to.max(head_end).max(meta.start.min(len));
                copied += copy_range(file, &out, from, len)?;
                copied_to = len;
                if len == 0 {
                    break;
                }
            }
            out.sync_all()?;
            meta.len = copied_to;
            let mut side_file = File::create(&side_tmp)?;
            serde_json::to_writer(&mut side_file, &meta).map_err(io::Error::other)?;
            side_file.sync_all()?;
            fs::rename(&side_tmp, &side)?;
            fs::rename(&data_tmp, &data)?;
            File::open(&self.dir)?.sync_all()?;
            Ok((File::open(&data)?, copied))
        })();
        if result.is_err() {
            for p in [&data_tmp, &side_tmp, &data, &side] {
                let _ = fs::remove_file(p);
            }
        }
        result
    }

    /// Bytes a copy of a file of `len` bytes from `start` on takes: the
    /// head and the tail.
    pub fn copy_bytes(len: u64, start: u64) -> u64 {
        let start = start.min(len);
        len - start + start.min(HEAD_BYTES as u64)
    }

    /// Whether `bytes` more fit on the spool's filesystem while leaving
    /// `min_free` free (`statvfs`: `f_bavail` and `f_blocks` in `f_frsize`
    /// units). `Ok(Err(free))` gives the free bytes when they do not fit.
    ///
    /// # Errors
    /// The `statvfs` call failed.
    pub fn room(&self, bytes: u64, min_free: MinFree) -> io::Result<Result<(), u64>> {
        let st = rustix::fs::statvfs(&self.dir)?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        let total = st.f_blocks.saturating_mul(st.f_frsize);
        if free.saturating_sub(bytes) >= min_free.bytes(total) && free >= bytes {
            Ok(Ok(()))
        } else {
            Ok(Err(free))
        }
    }

    /// Removes the copy of the file `id`: everything in it is acknowledged
    /// (or given up).
    pub fn remove(&self, id: FileId) {
        let base = self.base(id);
        // The data first: a sidecar alone is cleaned up at the next start.
        for ext in ["log", "json"] {
            if let Err(e) = fs::remove_file(base.with_extension(ext)) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %base.with_extension(ext).display(), error = %e, "failed to remove spooled log file");
                }
            }
        }
    }

    /// The complete copies left by an earlier run. Temporary files and halves
    /// of interrupted copies are removed.
    pub fn load(&self) -> Vec<Spooled> {
        let mut found = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return found;
        };
        for e in rd.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".json") else {
                if name.ends_with(".log") && !path.with_extension("json").exists() {
                    let _ = fs::remove_file(&path);
                }
                continue;
            };
            let data = self.dir.join(format!("{stem}.log"));
            let meta = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<SpoolMeta>(&b).ok())
                .filter(|m| m.version == SPOOL_VERSION);
            match (meta, File::open(&data)) {
                (Some(meta), Ok(file)) => found.push(Spooled { meta, file }),
                (None, Ok(_)) => {
                    tracing::error!(path = %path.display(), "unreadable spool sidecar; removing the spooled copy");
                    let _ = fs::remove_file(&data);
                    let _ = fs::remove_file(&path);
                }
                (_, Err(_)) => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        found
    }
}

/// Copies bytes `from..to` of `src` to the same offsets of `dst`.
fn copy_range(src: &File, dst: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_CHUNK.min(to.saturating_sub(from) as usize)];
    let mut pos = from;
    while pos < to {
        let want = ((to - pos) as usize).min(buf.len());
        let n = match src.read_at(&mut buf[..want], pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(pos - from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn copy_keeps_offsets_head_and_tail_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let orig = dir.path().join("orig");
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        File::create(&orig).unwrap().write_all(&content).unwrap();
        let src = File::open(&orig).unwrap();
        fs::remove_file(&orig).unwrap();
        let (copy, bytes) = spool
            .save(
                &src,
                FileId::new(logferry_core::DevIno::new(1, 2), 0xabc),
                60_000,
                Path::new("/p/0.log"),
            )
            .unwrap();
        assert_eq!(bytes, HEAD_BYTES as u64 + 40_000);
        let mut got = vec![0u8; content.len()];
        copy.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(got[..HEAD_BYTES], content[..HEAD_BYTES]);
        assert_eq!(got[60_000..], content[60_000..]);
        assert!(got[HEAD_BYTES..60_000].iter().all(|&b| b == 0), "a hole");

        let loaded = spool.load();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].meta.start, 60_000);
        assert_eq!(loaded[0].meta.len, 100_000);
        assert_eq!(loaded[0].meta.path, PathBuf::from("/p/0.log"));
        spool.remove(FileId::new(logferry_core::DevIno::new(1, 2), 0xabc));
        assert!(spool.load().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("spool")).unwrap().count(), 0);
    }

    #[test]
    fn room_leaves_the_free_space_floor() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(spool.room(1, MinFree::Bytes(0)).unwrap(), Ok(()));
        let Err(free) = spool.room(u64::MAX / 2, MinFree::Bytes(0)).unwrap() else {
            panic!("no filesystem holds 8 EiB");
        };
        assert!(free > 0);
        assert!(
            spool.room(1, MinFree::Bytes(free)).unwrap().is_err(),
            "the floor is kept"
        );
        assert_eq!(MinFree::Percent(10).bytes(1000), 100);
        assert_eq!(
            MinFree::Percent(50).bytes(u64::MAX),
            u64::MAX / 2,
            "no overflow"
        );
        assert_eq!(
            Spool::copy_bytes(100_000, 60_000),
            40_000 + HEAD_BYTES as u64
        );
        assert_eq!(Spool::copy_bytes(10, 0), 10);
    }

    #[test]
    fn interrupted_copies_are_cleaned_up_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let s = dir.path().join("spool");
        fs::write(s.join("1-2-0000000000000abc.log.tmp"), b"x").unwrap();
        fs::write(s.join("1-3-0000000000000abc.log"), b"no sidecar").unwrap();
        fs::write(s.join("1-4-0000000000000abc.json"), b"{}").unwrap();
        assert!(spool.load().is_empty());
        assert_eq!(fs::read_dir(&s).unwrap().count(), 0);
    }
}
