//! The inotify queue, listened to only while the tailer waits for it.
//!
//! While a read round waits out `read_coalesce`, nothing is done with new
//! events until the round starts, so the descriptor is taken out of the
//! runtime's epoll set ([`Notify::disarm`]): writes that arrive meanwhile
//! queue in the kernel without waking a thread. Listened to, one runtime
//! writing a line per `write(2)` woke the tailer's thread for (almost) every
//! write — two thirds of the process's wake-ups in the live benchmark of
//! issue 14 — for events that were then only read at the round.
//! [`Notify::arm`] registers it again (one `epoll_ctl` each way, a few per
//! second); events queued meanwhile make it ready at once.

use inotify::{EventMask, Inotify, Watches};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One inotify event, owned: watch descriptor id, mask, name in the directory.
pub(super) type Event = (i32, EventMask, Option<OsString>);

/// Bytes read from the inotify descriptor per `read(2)`.
const BUFFER: usize = 64 * 1024;

/// An inotify instance, registered with the runtime (armed) or not.
pub(super) struct Notify {
    /// `None` only while switching.
    state: Option<State>,
    buf: Vec<u8>,
}

enum State {
    /// In the runtime's epoll set: [`Notify::readable`] can wait.
    Armed(AsyncFd<Inotify>),
    /// Not registered: events queue in the kernel without waking anyone.
    Disarmed(Inotify),
}

impl Notify {
    /// Takes `inotify` (non-blocking, as [`Inotify::init`] makes it), armed.
    ///
    /// # Errors
    /// The registration with the runtime failed.
    pub(super) fn new(inotify: Inotify) -> io::Result<Notify> {
        let mut n = Notify {
            state: Some(State::Disarmed(inotify)),
            buf: vec![0u8; BUFFER],
        };
        n.arm()?;
        Ok(n)
    }

    /// Adds and removes watches.
    pub(super) fn watches(&self) -> Watches {
        match self.state.as_ref().expect("state") {
            State::Armed(fd) => fd.get_ref().watches(),
            State::Disarmed(i) => i.watches(),
        }
    }

    /// Whether [`Notify::readable`] can wait.
    pub(super) fn is_armed(&self) -> bool {
        matches!(self.state, Some(State::Armed(_)))
    }

    /// Registers the descriptor with the runtime (no-op when armed).
    ///
    /// # Errors
    /// The registration failed; the instance is then gone (the caller falls
    /// back to rescans and polling).
    pub(super) fn arm(&mut self) -> io::Result<()> {
        match self.state.take().expect("state") {
            State::Disarmed(i) => {
                // Deprecated for descriptors that may be closed while
                // registered; this one stays open as long as the `Inotify`
                // the `AsyncFd` owns (it and every `Watches` share it), as
                // the `inotify` crate's own stream relies on.
                #[allow(deprecated)]
                let fd = AsyncFd::with_interest(i, Interest::READABLE)?;
                self.state = Some(State::Armed(fd));
            }
            armed => self.state = Some(armed),
        }
        Ok(())
    }

    /// Removes the descriptor from the runtime's epoll set (no-op when disarmed).
    pub(super) fn disarm(&mut self) {
        match self.state.take().expect("state") {
            State::Armed(fd) => self.state = Some(State::Disarmed(fd.into_inner())),
            disarmed => self.state = Some(disarmed),
        }
    }

    /// Waits until the descriptor is readable; then [`Notify::drain`] takes
    /// the events. Pends forever when disarmed.
    ///
    /// # Errors
    /// The runtime's I/O driver failed.
    pub(super) async fn readable(&self) -> io::Result<()> {
        match &self.state {
            Some(State::Armed(fd)) => {
                // Cleared before draining: `drain` reads until `EAGAIN`, and an
                // event queued after that read is a new edge, so none is lost.
                fd.readable().await?.clear_ready();
                Ok(())
            }
            _ => std::future::pending().await,
        }
    }

    /// Takes every queued event into `out` (without waiting). Returns the
    /// error of a `read(2)` that failed; [`io::ErrorKind::UnexpectedEof`]
    /// means the instance is unusable.
    ///
    /// An `IN_MODIFY` of a name already taken in this call, with no other
    /// kind of event since, is left out: it would only queue the same file
    /// again. (The kernel merges identical *consecutive* events only; a
    /// round's writes to 20 files interleave, about ten events per file.)
    pub(super) fn drain(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        let Notify { state, buf } = self;
        let inotify = match state.as_mut().expect("state") {
            State::Armed(fd) => fd.get_mut(),
            State::Disarmed(i) => i,
        };
        // Names modified since the last event of another kind, by watch.
        let mut modified: HashMap<i32, HashSet<OsString>> = HashMap::new();
        // Bounded by the kernel's queue (`fs.inotify.max_queued_events`).
        loop {
            match inotify.read_events(buf) {
                Ok(events) => {
                    for e in events {
                        let wd = e.wd.get_watch_descriptor_id();
                        if e.mask != EventMask::MODIFY {
                            modified.clear();
                        } else if let Some(name) = e.name {
                            let names = modified.entry(wd).or_default();
                            if names.contains(name) {
                                continue;
                            }
                            names.insert(name.to_os_string());
                        }
                        out.push((wd, e.mask, e.name.map(|n| n.to_os_string())));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("armed", &self.is_armed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inotify::WatchMask;
    use std::time::Duration;

    /// Disarmed, writes do not make it readable (no wake-up) and their
    /// events wait in the kernel; armed again, it is readable at once and
    /// `drain` takes them all.
    #[tokio::test]
    async fn events_queued_while_disarmed_are_taken_after_arming() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = Notify::new(Inotify::init().unwrap()).unwrap();
        n.watches()
            .add(dir.path(), WatchMask::CREATE | WatchMask::MODIFY)
            .unwrap();
        n.disarm();
        assert!(!n.is_armed());
        std::fs::write(dir.path().join("a.log"), b"x\n").unwrap();
        std::fs::write(dir.path().join("b.log"), b"y\n").unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(200), n.readable()).await;
        assert!(waited.is_err(), "disarmed: never readable");
        n.arm().unwrap();
        tokio::time::timeout(Duration::from_secs(60), n.readable())
            .await
            .expect("readable at once after arming")
            .unwrap();
        let mut events = Vec::new();
        n.drain(&mut events).unwrap();
        let names: Vec<_> = events
            .iter()
            .filter(|(_, m, _)| m.contains(EventMask::CREATE))
            .filter_map(|(_, _, name)| name.clone())
            .collect();
        assert_eq!(names, [OsString::from("a.log"), OsString::from("b.log")]);
        // Drained: nothing more until the next write.
        let mut more = Vec::new();
        n.drain(&mut more).unwrap();
        assert!(more.is_empty());
        let waited = tokio::time::timeout(Duration::from_millis(200), n.readable()).await;
        assert!(waited.is_err(), "drained: not readable");
        std::fs::write(dir.path().join("a.log"), b"z\n").unwrap();
        tokio::time::timeout(Duration::from_secs(60), n.readable())
            .await
            .expect("a new write makes it readable")
            .unwrap();
        n.drain(&mut more).unwrap();
        assert!(!more.is_empty());
    }

    /// Repeated `IN_MODIFY`s of one name are taken once per drain, unless
    /// another kind of event came between them (order is kept then).
    #[tokio::test]
    async fn repeated_modifications_of_a_name_are_taken_once_per_drain() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = Notify::new(Inotify::init().unwrap()).unwrap();
        n.watches()
            .add(
                dir.path(),
                WatchMask::CREATE | WatchMask::MODIFY | WatchMask::MOVED_FROM,
            )
            .unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut fa = std::fs::File::create(&a).unwrap();
        let mut fb = std::fs::File::create(&b).unwrap();
        for _ in 0..5 {
            // Interleaved: the kernel cannot merge these.
            std::io::Write::write_all(&mut fa, b"x").unwrap();
            std::io::Write::write_all(&mut fb, b"y").unwrap();
        }
        std::fs::rename(&a, dir.path().join("a.1")).unwrap();
        std::io::Write::write_all(&mut fb, b"y").unwrap();
        let mut events = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), n.readable())
            .await
            .unwrap()
            .unwrap();
        n.drain(&mut events).unwrap();
        let seen: Vec<(String, &str)> = events
            .iter()
            .map(|(_, m, name)| {
                let kind = if *m == EventMask::MODIFY {
                    "modify"
                } else if m.contains(EventMask::CREATE) {
                    "create"
                } else {
                    "moved_from"
                };
                (name.as_ref().unwrap().to_string_lossy().into_owned(), kind)
            })
            .collect();
        let s = |n: &str, k| (n.to_string(), k);
        assert_eq!(
            seen,
            [
                s("a", "create"),
                s("b", "create"),
                s("a", "modify"),
                s("b", "modify"),
                s("a", "moved_from"),
                s("b", "modify"),
            ]
        );
    }
}
