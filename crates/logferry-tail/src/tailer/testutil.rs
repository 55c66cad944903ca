//! Helpers of the tailer's unit tests: a [`Runner`] over a kubelet-style
//! tree in a temporary directory, and events that count what they saw.

use super::Runner;
use crate::checkpoint::CheckpointStore;
use crate::config::{RunMode, TailConfig};
use crate::events::{LossReason, RescanReason, RotationKind, StateFile, TailEvents};
use logferry_core::Source;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Two complete CRI lines.
pub(super) const LOG_A: &[u8] = b"2026-11-22T13:45:10.000000001Z stdout F first line\n\
2026-11-22T13:45:10.000000002Z stdout F second line\n";

/// What the runner reported.
#[derive(Default)]
pub(super) struct Recorder {
    pub events: Mutex<Vec<String>>,
    pub lost: Mutex<Vec<(u64, LossReason)>>,
    pub spool: Mutex<Vec<(usize, u64)>>,
    /// `state_write` calls.
    pub writes: Mutex<Vec<(StateFile, bool)>>,
    /// `state_write_failing` calls.
    pub failing: Mutex<Vec<(StateFile, bool)>>,
}

impl Recorder {
    /// How many events named `name` were reported.
    pub fn count(&self, name: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == name)
            .count()
    }
}

impl TailEvents for Recorder {
    fn file_opened(&self, _: &Source) {
        self.events.lock().unwrap().push("opened".into());
    }
    fn file_released(&self, _: &Source) {
        self.events.lock().unwrap().push("released".into());
    }
    fn rotation_detected(&self, _: RotationKind) {
        self.events.lock().unwrap().push("rotation".into());
    }
    fn bytes_lost(&self, bytes: u64, reason: LossReason) {
        self.lost.lock().unwrap().push((bytes, reason));
    }
    fn spool_changed(&self, files: usize, bytes: u64) {
        self.spool.lock().unwrap().push((files, bytes));
    }
    fn state_write(&self, file: StateFile, ok: bool) {
        self.writes.lock().unwrap().push((file, ok));
    }
    fn state_write_failing(&self, file: StateFile, failing: bool) {
        self.failing.lock().unwrap().push((file, failing));
    }
    fn rescanned(&self, reason: RescanReason) {
        self.events
            .lock()
            .unwrap()
            .push(format!("rescan:{}", reason.as_label()));
    }
}

/// A runner in kubernetes mode over `<tmp>/pods`, `<tmp>/containers`,
/// `<tmp>/data`, with `adjust` applied to its configuration.
pub(super) fn kube_runner_with(
    mode: RunMode,
    adjust: impl FnOnce(&mut TailConfig),
) -> (tempfile::TempDir, Runner, Arc<Recorder>) {
    let tmp = tempfile::tempdir().unwrap();
    let pods = tmp.path().join("pods");
    let links = tmp.path().join("containers");
    std::fs::create_dir_all(&pods).unwrap();
    std::fs::create_dir_all(&links).unwrap();
    let mut cfg = TailConfig::kubernetes(pods, links, tmp.path().join("data"));
    adjust(&mut cfg);
    let store = CheckpointStore::load(&cfg.data_dir).unwrap();
    let events = Arc::new(Recorder::default());
    let r = Runner::new(cfg, events.clone(), store, mode).unwrap();
    (tmp, r, events)
}

/// [`kube_runner_with`] with the default configuration.
pub(super) fn kube_runner(mode: RunMode) -> (tempfile::TempDir, Runner, Arc<Recorder>) {
    kube_runner_with(mode, |_| {})
}

/// Writes `body` to `<root>/pods/ns_pod_<uid>/app/<name>`; returns the container directory.
pub(super) fn write_log(root: &Path, name: &str, body: &[u8]) -> PathBuf {
    let dir = root
        .join("pods")
        .join("ns_pod_0f0e0d0c-0000-4000-8000-000000000001")
        .join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
    dir
}
