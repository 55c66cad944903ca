//! The store's pod entries on disk, so that a restarted logferry (or the
//! instance that takes over a node's `data_dir` in a surge rollout) enriches the
//! lines of pods the API server no longer knows: pods deleted before the stop, and
//! pods deleted *while no logferry ran*, whose `DELETED` event nobody saw.
//!
//! One file, `<state_dir>/pods.json`, a versioned JSON document:
//! `{"version":"1","pods":[{"deleted":false,"pod":{…}}, …]}`, where `pod` is the
//! store's small entry (namespace, name, uid, IP, node, labels, allow-listed
//! annotations, owner, containers; about 0.5 KiB a pod). Live pods first, then
//! tombstones from the most recently deleted, at most [`MAX_SAVED`] entries.
//!
//! The watch never touches the disk: it only bumps a change counter.
//! [`PodStore::persist`] returns the future that saves (temp file + rename, at most
//! once per [`SAVE_EVERY`], and once more at shutdown) and, when it starts, loads
//! what the previous run saved. The file is not `fsync`ed: it survives a crash of
//! the process (SIGKILL, OOM kill), not of the node, and losing it costs only
//! metadata (records then carry what their path says), never a line.
//!
//! A saved entry never outranks the API: it is used only for a uid the store does
//! not know, so a pod recreated under the same name with another uid never
//! inherits it, and it expires by the tombstones' grace rule (see
//! [`State::merge_saved`]).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::entry::PodInfo;
use crate::state::State;
use crate::store::Shared;
use crate::PodStore;

/// The file name inside [`KubeConfig::state_dir`](crate::KubeConfig::state_dir).
pub const FILE: &str = "pods.json";
/// The temporary file a save writes before renaming it over [`FILE`].
const TMP: &str = "pods.json.tmp";
/// Where an earlier version kept one JSON file per deleted pod; read once, then removed.
const LEGACY_DIR: &str = "deleted-pods";
/// The document version written and accepted.
const VERSION: &str = "1";
/// At most this many entries are saved (about 2.5 MiB).
pub const MAX_SAVED: usize = 5000;
/// At most one save per this period while entries change.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(serde::Serialize)]
struct DocumentOut<'a> {
    version: &'static str,
    pods: Vec<SavedOut<'a>>,
}

#[derive(serde::Serialize)]
struct SavedOut<'a> {
    deleted: bool,
    pod: &'a PodInfo,
}

#[derive(serde::Deserialize)]
struct DocumentIn {
    version: String,
    pods: Vec<SavedIn>,
}

#[derive(serde::Deserialize)]
struct SavedIn {
    deleted: bool,
    pod: PodInfo,
}

/// The future that keeps a [`PodStore`]'s entries on disk: see [`PodStore::persist`].
#[must_use = "nothing is loaded or saved unless it is polled (spawn it)"]
pub struct PodPersist {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl std::fmt::Debug for PodPersist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodPersist").finish_non_exhaustive()
    }
}

impl Future for PodPersist {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl PodStore {
    /// The future that loads the entries a previous run saved in
    /// `<`[`KubeConfig::state_dir`](crate::KubeConfig::state_dir)`>/pods.json` into this
    /// store, then saves them there whenever they change (at most once per
    /// second, written off the watch, temp file + rename) until `shutdown` is
    /// cancelled, and once more then. It completes after that final save: await it
    /// before another process may take the directory over.
    ///
    /// Only one process may run it on a directory at a time (the daemon holds the
    /// `data_dir` lock). Without `state_dir`, or on a [disabled](PodStore::disabled)
    /// store, it completes at once. I/O errors are logged, never fatal: the entries
    /// then live in memory only.
    pub fn persist(&self, shutdown: CancellationToken) -> PodPersist {
        let shared = Arc::clone(&self.shared);
        PodPersist {
            inner: Box::pin(run(shared, shutdown)),
        }
    }
}

async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(dir) = shared.config.state_dir.clone() else {
        return;
    };
    if shared.disabled {
        return;
    }
    let load_dir = dir.clone();
    match tokio::task::spawn_blocking(move || load(&load_dir)).await {
        Ok(Ok(saved)) => {
            let (total, live) = (saved.len(), saved.iter().filter(|(_, d)| !d).count());
            let mut added = 0;
            shared.update(|s| {
                added = s.merge_saved(saved, Instant::now());
                s.report(added > 0)
            });
            if total > 0 {
                tracing::info!(saved = total, saved_live = live, added, dir = %dir.display(),
                    "loaded pod metadata saved by the previous run");
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e,
                "cannot keep pod metadata on disk; it lives in memory only");
            return;
        }
        Err(_) => return,
    }
    let mut saved_generation = None;
    let mut wait = SAVE_EVERY;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = match save_if_changed(&shared, &dir, &mut saved_generation).await {
            // Backoff while saves fail (a full disk): 1 s doubling to 30 s.
            Some(false) => wait.saturating_mul(2).min(MAX_RETRY),
            _ => SAVE_EVERY,
        };
    }
    save_if_changed(&shared, &dir, &mut saved_generation).await;
}

/// The longest wait between two attempts while saves fail.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Saves the entries if they changed since the last successful save; `None`
/// when nothing was to save, else whether the save succeeded (reported to
/// [`KubeEvents::snapshot_write`](crate::KubeEvents::snapshot_write)).
async fn save_if_changed(shared: &Shared, dir: &Path, saved: &mut Option<u64>) -> Option<bool> {
    let (generation, bytes) = {
        let state = shared.state.lock();
        if *saved == Some(state.generation) {
            return None;
        }
        (state.generation, encode(&state))
    };
    let first = saved.is_none();
    let dir = dir.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        write(&dir, &bytes)?;
        if first {
            // The earlier layout's files are in this snapshot now.
            match std::fs::remove_dir_all(dir.join(LEGACY_DIR)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok::<_, io::Error>(dir)
    })
    .await;
    let ok = match result {
        Ok(Ok(_)) => {
            *saved = Some(generation);
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "failed to save pod metadata to disk (data_dir full?); retried with backoff, lookups are not affected");
            false
        }
        Err(_) => false,
    };
    shared.events.snapshot_write(ok);
    Some(ok)
}

/// The document for `state`: live entries first, then tombstones from the most
/// recently deleted, at most [`MAX_SAVED`].
fn encode(state: &State) -> Vec<u8> {
    let mut entries: Vec<(Option<Instant>, &PodInfo)> = state
        .pods
        .values()
        .map(|e| (e.deleted_at, &e.info))
        .collect();
    // `None` (live) sorts first after reversing the order of deletion times.
    entries.sort_by(|a, b| match (a.0, b.0) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    });
    entries.truncate(MAX_SAVED);
    let doc = DocumentOut {
        version: VERSION,
        pods: entries
            .into_iter()
            .map(|(d, pod)| SavedOut {
                deleted: d.is_some(),
                pod,
            })
            .collect(),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn write(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(TMP);
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // A partial temp file on a full disk takes the space the next try needs.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, dir.join(FILE))
}

/// Reads `<dir>/pods.json` and the earlier layout's `<dir>/deleted-pods/*.json`:
/// `(entry, deleted)`. An unreadable or foreign-version document is ignored with a
/// warning (it is overwritten by the next save).
///
/// # Errors
/// The I/O error of creating `dir`.
fn load(dir: &Path) -> io::Result<Vec<(PodInfo, bool)>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<DocumentIn>(&bytes) {
            Ok(doc) if doc.version == VERSION => {
                out.extend(doc.pods.into_iter().map(|s| (s.pod, s.deleted)));
            }
            Ok(doc) => tracing::warn!(path = %path.display(), version = doc.version,
                "pod metadata file of an unknown version ignored"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e,
                "unreadable pod metadata file ignored"),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e,
            "unreadable pod metadata file ignored"),
    }
    for e in std::fs::read_dir(dir.join(LEGACY_DIR))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p: PathBuf = e.path();
        if let Ok(Ok(info)) = std::fs::read(&p).map(|b| serde_json::from_slice::<PodInfo>(&b)) {
            out.push((info, true));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Entry;

    fn info(uid: &str) -> PodInfo {
        serde_json::from_value(serde_json::json!({
            "namespace": "ns", "name": format!("pod-{uid}"), "uid": uid, "ip": null,
            "node": "node-a", "labels": {"app": "x"}, "annotations": {}, "owner": null,
            "containers": [{"name": "app", "image": "img:1", "runtime": null, "id": null}],
            "airflow": null, "excluded": false, "mirror_hash": null
        }))
        .unwrap()
    }

    fn entry(uid: &str, deleted_at: Option<Instant>) -> Entry {
        Entry {
            info: info(uid),
            deleted_at,
            metas: Vec::new(),
        }
    }

    #[test]
    fn saves_live_entries_first_then_the_newest_tombstones_and_loads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut state = State::default();
        for i in 0..MAX_SAVED + 10 {
            let at = t0 + Duration::from_millis(i as u64);
            state
                .pods
                .insert(format!("t{i}"), entry(&format!("t{i}"), Some(at)));
        }
        state.pods.insert("live".into(), entry("live", None));
        write(dir.path(), &encode(&state)).unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.len(), MAX_SAVED, "bounded");
        assert_eq!((&*loaded[0].0.uid, loaded[0].1), ("live", false));
        let newest = format!("t{}", MAX_SAVED + 9);
        assert_eq!((&*loaded[1].0.uid, loaded[1].1), (newest.as_str(), true));
        assert!(
            !loaded.iter().any(|(i, _)| &*i.uid == "t0"),
            "the oldest tombstones go first"
        );
        assert!(!dir.path().join(TMP).exists());
    }

    #[derive(Default)]
    struct Writes(parking_lot::Mutex<Vec<bool>>);

    impl crate::KubeEvents for Writes {
        fn snapshot_write(&self, ok: bool) {
            self.0.lock().push(ok);
        }
    }

    /// Regression (issue 10, item 4): a failed save of the tombstones was
    /// only logged, never counted.
    #[tokio::test]
    async fn a_failed_save_is_reported_and_the_next_one_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Writes::default());
        let store = PodStore::new(crate::KubeConfig::default(), events.clone(), false);
        {
            let mut state = store.shared.state.lock();
            state.pods.insert("a".into(), entry("a", None));
            state.generation += 1;
        }
        // A directory where the temp file goes: the save fails (EISDIR).
        std::fs::create_dir(dir.path().join(TMP)).unwrap();
        let mut saved = None;
        assert_eq!(
            save_if_changed(&store.shared, dir.path(), &mut saved).await,
            Some(false)
        );
        assert_eq!(*events.0.lock(), [false]);
        assert!(!dir.path().join(FILE).exists());

        std::fs::remove_dir(dir.path().join(TMP)).unwrap();
        assert_eq!(
            save_if_changed(&store.shared, dir.path(), &mut saved).await,
            Some(true)
        );
        assert_eq!(*events.0.lock(), [false, true]);
        assert_eq!(load(dir.path()).unwrap().len(), 1, "caught up");
        assert_eq!(
            save_if_changed(&store.shared, dir.path(), &mut saved).await,
            None,
            "nothing new"
        );
    }

    #[test]
    fn a_broken_or_foreign_file_is_ignored_and_legacy_tombstones_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join(FILE), br#"{"version":"9","pods":[]}"#).unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        std::fs::create_dir(dir.path().join(LEGACY_DIR)).unwrap();
        std::fs::write(
            dir.path().join(LEGACY_DIR).join("old.json"),
            serde_json::to_vec(&info("old")).unwrap(),
        )
        .unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!((&*loaded[0].0.uid, loaded[0].1), ("old", true));
    }

    #[test]
    fn saved_entries_never_outrank_the_api_and_live_ones_wait_for_the_list() {
        let t0 = Instant::now();
        let mut state = State::default();
        state.pod_init();
        let mut newer = info("a");
        newer.labels.insert("version".into(), "2".into());
        state.pod_apply(newer.clone());
        let added = state.merge_saved(
            vec![
                (info("a"), false),
                (info("gone"), false),
                (info("dead"), true),
            ],
            t0,
        );
        assert_eq!(added, 2);
        assert_eq!(state.pods["a"].info, newer, "the API's version wins");
        assert!(
            state.pods["gone"].deleted_at.is_none(),
            "live until the list ends"
        );
        assert!(state.pods["dead"].deleted_at.is_some());
        state.pod_init_done(t0);
        assert!(
            state.pods["gone"].deleted_at.is_some(),
            "not listed: tombstoned"
        );
        // Once synced, a saved live entry is a tombstone at once.
        state.merge_saved(vec![(info("late"), false)], t0);
        assert!(state.pods["late"].deleted_at.is_some());
    }
}
