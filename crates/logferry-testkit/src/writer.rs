//! A container-runtime and kubelet stand-in for tests: writes CRI-framed lines
//! into a kubelet-style log tree and rotates them the way kubelet does.
//!
//! Layout (kubernetes/kubernetes `pkg/kubelet/kuberuntime/helpers.go`):
//! `<pods_dir>/<ns>_<pod>_<uid>/<container>/<restart>.log`, with the symlink
//! `<containers_dir>/<pod>_<ns>_<container>-<id>.log` pointing at the active file.
//!
//! Rotation follows kubelet's `container_log_manager.go` `rotateLog`:
//! remove `*.tmp` and uncompressed files that have a `.gz` twin, delete the
//! oldest rotated files beyond `max_files - 2`, gzip every remaining
//! uncompressed rotated file (`<f>.tmp` → `<f>.gz`, unlink `<f>`), then rename
//! the active file to `<log>.<YYYYMMDD-HHMMSS>` and reopen a new active file
//! (the runtime's `ReopenContainerLog`). Until the reopen, writes still go to
//! the renamed inode, as with a real runtime.
//!
//! Every write of a line (including all `P` chunks of a long line) is one
//! `write(2)`, so a rename never splits a line.

use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats nanoseconds since the epoch as RFC 3339 with 9 fraction digits and `Z`.
pub fn rfc3339_nanos(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

/// Nanoseconds since the epoch now.
pub fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Appends one CRI line to `out`: `<time> <stream> <P|F> <message>\n`.
pub fn cri_line(out: &mut Vec<u8>, nanos: i64, stream: &str, partial: bool, message: &[u8]) {
    out.extend_from_slice(rfc3339_nanos(nanos).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(message);
    out.push(b'\n');
}

/// One container's log files, written like containerd and rotated like kubelet.
#[derive(Debug)]
pub struct ContainerLogWriter {
    dir: PathBuf,
    restart: u32,
    file: File,
    link: Option<PathBuf>,
    max_files: usize,
    rotations: u64,
    clock_base: i64,
    buf: Vec<u8>,
}

impl ContainerLogWriter {
    /// Creates `<pods_dir>/<ns>_<pod>_<uid>/<container>/0.log` and, if
    /// `containers_dir` is given, the symlink
    /// `<containers_dir>/<pod>_<ns>_<container>-<container_id>.log`.
    ///
    /// # Errors
    /// I/O errors creating directories, the file or the symlink.
    pub fn create(
        pods_dir: &Path,
        containers_dir: Option<&Path>,
        namespace: &str,
        pod: &str,
        uid: &str,
        container: &str,
        container_id: &str,
    ) -> Result<ContainerLogWriter> {
        let dir = pods_dir
            .join(format!("{namespace}_{pod}_{uid}"))
            .join(container);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let active = dir.join("0.log");
        let file = OpenOptions::new().create(true).append(true).open(&active)?;
        let link = match containers_dir {
            Some(cd) => {
                fs::create_dir_all(cd)?;
                let l = cd.join(format!("{pod}_{namespace}_{container}-{container_id}.log"));
                let _ = fs::remove_file(&l);
                symlink(&active, &l).with_context(|| format!("linking {}", l.display()))?;
                Some(l)
            }
            None => None,
        };
        Ok(ContainerLogWriter {
            dir,
            restart: 0,
            file,
            link,
            max_files: 5,
            rotations: 0,
            clock_base: 1_700_000_000,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// kubelet's `containerLogMaxFiles` (default 5, at least 2).
    pub fn set_max_files(&mut self, n: usize) {
        self.max_files = n.max(2);
    }

    /// The container's log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active file's path (`<restart>.log`).
    pub fn active_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.restart))
    }

    /// Writes one full (`F`) line.
    ///
    /// # Errors
    /// The write error.
    pub fn write_line(&mut self, stream: &str, message: &[u8]) -> Result<()> {
        self.buf.clear();
        cri_line(&mut self.buf, now_nanos(), stream, false, message);
        self.file.write_all(&self.buf)?;
        Ok(())
    }

    /// Writes a message as `P` chunks of at most `chunk` bytes and a final `F`
    /// chunk, in one `write(2)`.
    ///
    /// # Errors
    /// The write error.
    pub fn write_split(&mut self, stream: &str, message: &[u8], chunk: usize) -> Result<()> {
        self.buf.clear();
        let now = now_nanos();
        let chunks: Vec<&[u8]> = message.chunks(chunk.max(1)).collect();
        if chunks.is_empty() {
            cri_line(&mut self.buf, now, stream, false, b"");
        }
        for (i, c) in chunks.iter().enumerate() {
            cri_line(&mut self.buf, now, stream, i + 1 < chunks.len(), c);
        }
        self.file.write_all(&self.buf)?;
        Ok(())
    }

    /// Writes raw bytes to the active file.
    ///
    /// # Errors
    /// The write error.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes)?;
        Ok(())
    }

    /// Size of the active file in bytes.
    ///
    /// # Errors
    /// The `fstat` error.
    pub fn active_len(&self) -> Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn rotated_names(&self) -> Result<Vec<PathBuf>> {
        let prefix = format!("{}.log.", self.restart);
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Rotates like kubelet (see the module docs). `before_reopen` runs
    /// between the rename and the reopen (write there to hit the race window).
    /// Returns the rotated file's path.
    ///
    /// # Errors
    /// I/O errors of the file operations.
    pub fn rotate_with(
        &mut self,
        before_reopen: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<PathBuf> {
        // cleanupUnusedLogs: *.tmp and uncompressed files with a .gz twin.
        for p in self.rotated_names()? {
            let s = p.to_string_lossy().into_owned();
            if s.ends_with(".tmp")
                || (!s.ends_with(".gz") && Path::new(&format!("{s}.gz")).exists())
            {
                fs::remove_file(&p)?;
            }
        }
        // removeExcessLogs: keep max_files - 2 rotated files.
        let mut rotated = self.rotated_names()?;
        while rotated.len() > self.max_files - 2 {
            fs::remove_file(rotated.remove(0))?;
        }
        // compress every uncompressed rotated file.
        for p in rotated {
            let s = p.to_string_lossy().into_owned();
            if s.ends_with(".gz") {
                continue;
            }
            let tmp = PathBuf::from(format!("{s}.gz.tmp"));
            {
                let mut input = File::open(&p)?;
                let out = File::create(&tmp)?;
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                std::io::copy(&mut input, &mut gz)?;
                gz.finish()?.sync_all()?;
            }
            fs::rename(&tmp, format!("{s}.gz"))?;
            fs::remove_file(&p)?;
        }
        // rotateLatestLog: rename, then reopen.
        self.rotations += 1;
        // kubelet's `timestampFormat = "20060102-150405"`.
        let stamp = chrono::DateTime::from_timestamp(self.clock_base + self.rotations as i64, 0)
            .unwrap_or_default()
            .format("%Y%m%d-%H%M%S");
        let active = self.active_path();
        let rotated = PathBuf::from(format!("{}.{stamp}", active.display()));
        fs::rename(&active, &rotated)?;
        before_reopen(&mut self.file)?;
        self.file = OpenOptions::new().create(true).append(true).open(&active)?;
        Ok(rotated)
    }

    /// [`rotate_with`](Self::rotate_with) without a write in the race window.
    ///
    /// # Errors
    /// I/O errors of the file operations.
    pub fn rotate(&mut self) -> Result<PathBuf> {
        self.rotate_with(|_| Ok(()))
    }

    /// Copy-and-truncate rotation (logrotate `copytruncate`): copies the active
    /// file to `copy_to` (if given) and truncates it to 0 bytes.
    ///
    /// # Errors
    /// I/O errors of the file operations.
    pub fn copytruncate(&mut self, copy_to: Option<&Path>) -> Result<()> {
        if let Some(dst) = copy_to {
            fs::copy(self.active_path(), dst)?;
        }
        self.file.set_len(0)?;
        Ok(())
    }

    /// A container restart: the next file is `<restart + 1>.log`.
    ///
    /// # Errors
    /// I/O errors creating the file or relinking the symlink.
    pub fn restart(&mut self) -> Result<()> {
        self.restart += 1;
        let active = self.active_path();
        self.file = OpenOptions::new().create(true).append(true).open(&active)?;
        if let Some(l) = &self.link {
            let _ = fs::remove_file(l);
            symlink(&active, l)?;
        }
        Ok(())
    }

    /// kubelet's container GC: removes every log file of the container, the
    /// symlink and the container directory.
    ///
    /// # Errors
    /// I/O errors of the removal.
    pub fn remove_all(self) -> Result<()> {
        if let Some(l) = &self.link {
            let _ = fs::remove_file(l);
        }
        fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_709_208_000_000_000_001),
            "2024-02-29T12:00:00.000000001Z"
        );
    }

    #[test]
    fn rotates_like_kubelet() {
        let root = std::env::temp_dir().join(format!("lf-writer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mut w = ContainerLogWriter::create(
            &root.join("pods"),
            Some(&root.join("containers")),
            "ns",
            "p",
            "u",
            "c",
            "abc",
        )
        .unwrap();
        w.set_max_files(3);
        for i in 0..4 {
            w.write_line("stdout", format!("line {i}").as_bytes())
                .unwrap();
            w.rotate().unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(w.dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // Active file, one uncompressed rotated file, max_files - 2 = 1 gzipped file.
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names[0] == "0.log");
        assert!(names[1].ends_with(".gz"));
        assert!(!names[2].ends_with(".gz"));
        fs::remove_dir_all(&root).unwrap();
    }
}
