//! The watch that fills a [`PodStore`]: kube's `watcher` on pods (node-scoped) and
//! namespaces; a capped, jittered backoff; the tombstone sweep. One future, owned and
//! spawned by the caller ([`PodWatch`]), as kube-rs's reflector does: nothing runs
//! behind the caller's back, so its shutdown sees every task.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::entry::{namespace_info, PodInfo};
use crate::store::Shared;
use crate::{KubeConfig, KubeError, KubeEvents, PodStore};

/// The future that keeps a [`PodStore`] up to date: the pod and namespace watches and
/// the tombstone sweep, until the `shutdown` token given to [`PodStore::watch`] is
/// cancelled. Spawn it (`tokio::spawn(watch)`) and await its handle at shutdown.
#[must_use = "the store stays empty unless its watch is polled (spawn it)"]
pub struct PodWatch {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
}

impl std::fmt::Debug for PodWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodWatch").finish_non_exhaustive()
    }
}

impl Future for PodWatch {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

impl PodStore {
    /// Creates a store and the watch that fills it: the node-scoped pod watch
    /// (`fieldSelector=spec.nodeName=<node_name>`), the namespace watch and the
    /// tombstone sweep, all in the returned [`PodWatch`], which the caller spawns. It
    /// completes once `shutdown` is cancelled (lookups then stop waiting for pods).
    ///
    /// `client` is built by the caller, normally with `kube::Client::try_default()`
    /// (in-cluster config or the kubeconfig named by `KUBECONFIG`); if that failed, use
    /// [`PodStore::disabled`]. Watch errors never surface here: they are logged once per
    /// cause, reported through [`KubeEvents::api_error`], and followed by a re-list after
    /// an exponential backoff capped at [`KubeConfig::backoff_max`].
    pub fn watch(
        client: kube::Client,
        config: KubeConfig,
        events: Arc<dyn KubeEvents>,
        shutdown: CancellationToken,
    ) -> (PodStore, PodWatch) {
        if config.node_name.is_empty() {
            tracing::warn!("kubernetes node_name is empty: watching the pods of every node");
        }
        let store = PodStore::new(config, events, false);
        let shared = Arc::clone(&store.shared);
        let inner = Box::pin(async move {
            futures::join!(
                run_pods(Arc::clone(&shared), client.clone(), shutdown.clone()),
                run_namespaces(Arc::clone(&shared), client, shutdown.clone()),
                run_sweep(shared, shutdown),
            );
        });
        (store, PodWatch { inner })
    }
}

/// Exponential backoff from 100 ms, doubling, capped at `max`, with up to 20 % jitter
/// below the nominal value (so that a DaemonSet's pods do not re-list in lockstep after
/// an API outage).
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const INITIAL: Duration = Duration::from_millis(100);

    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Self::INITIAL.min(max),
            max,
        }
    }

    fn reset(&mut self) {
        self.next = Self::INITIAL.min(self.max);
    }

    fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        // Randomness without a dependency: std's per-instance random hasher keys.
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let jitter = nominal.mul_f64((r % 1000) as f64 / 5000.0);
        nominal - jitter
    }
}

/// Drives one resource's watcher forever: every error is reported, followed by a
/// backoff and a *fresh* watcher (a full re-list), whose `InitDone` both proves the API
/// is back and lets the store converge (pods absent from the list are tombstoned).
async fn run_watch<K, F>(
    shared: Arc<Shared>,
    api: Api<K>,
    config: watcher::Config,
    resource: &'static str,
    shutdown: CancellationToken,
    mut handle: F,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: FnMut(&Shared, Event<K>),
{
    let mut backoff = Backoff::new(shared.config.backoff_max);
    loop {
        let mut stream = watcher::watcher(api.clone(), config.clone()).boxed();
        let error = loop {
            let item = tokio::select! {
                _ = shutdown.cancelled() => return,
                item = stream.next() => item,
            };
            match item {
                Some(Ok(event)) => {
                    if matches!(event, Event::InitDone | Event::Apply(_) | Event::Delete(_)) {
                        backoff.reset();
                    }
                    handle(&shared, event);
                }
                Some(Err(source)) => break Some(KubeError::Watch { resource, source }),
                None => break None,
            }
        };
        if let Some(err) = error {
            let label = err.as_label();
            shared.events.api_error(label);
            let mut first = false;
            shared.update(|state| {
                let (report, f) = state.watch_failed(resource, &err);
                first = f;
                report
            });
            let detail = std::error::Error::source(&err)
                .map(ToString::to_string)
                .unwrap_or_default();
            if err.is_unavailable() && first {
                tracing::warn!(
                    resource,
                    reason = label,
                    error = %detail,
                    "Kubernetes API unavailable: records get path-only metadata until it is back"
                );
            } else {
                tracing::debug!(resource, reason = label, error = %detail, "watch failed; re-listing");
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        shared.events.watch_restarted(resource);
    }
}

async fn run_pods(shared: Arc<Shared>, client: Client, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(client);
    let mut config = watcher::Config::default();
    if !shared.config.node_name.is_empty() {
        config = config.fields(&format!("spec.nodeName={}", shared.config.node_name));
    }
    let exclude = shared.config.exclude_annotation.clone();
    run_watch(
        Arc::clone(&shared),
        api,
        config,
        "pods",
        shutdown,
        move |shared, event| {
            let strip = |pod: &Pod| PodInfo::from_pod(pod, &shared.filters, &exclude);
            match event {
                Event::Init => shared.update(|s| s.pod_init()),
                Event::InitApply(pod) | Event::Apply(pod) => {
                    if let Some(info) = strip(&pod) {
                        drop(pod);
                        shared.update(|s| s.pod_apply(info));
                    }
                }
                Event::Delete(pod) => {
                    if let Some(info) = strip(&pod) {
                        drop(pod);
                        shared.update(|s| s.pod_delete(info, Instant::now()));
                    }
                }
                Event::InitDone => shared.update(|s| s.pod_init_done(Instant::now())),
            }
        },
    )
    .await;
    // Shut down: nothing will arrive any more, so lookups must not wait for it.
    shared.update(|s| s.stopped());
}

async fn run_namespaces(shared: Arc<Shared>, client: Client, shutdown: CancellationToken) {
    let api: Api<Namespace> = Api::all(client);
    let exclude = shared.config.exclude_annotation.clone();
    run_watch(
        Arc::clone(&shared),
        api,
        watcher::Config::default(),
        "namespaces",
        shutdown,
        move |shared, event| match event {
            Event::Init => shared.update(|s| s.ns_init()),
            Event::InitApply(ns) | Event::Apply(ns) => {
                if let Some(name) = ns.metadata.name.clone() {
                    let info = namespace_info(&ns, &shared.filters, &exclude);
                    shared.update(|s| s.ns_apply(name, info));
                }
            }
            Event::Delete(ns) => {
                if let Some(name) = ns.metadata.name.as_deref() {
                    shared.update(|s| s.ns_delete(name));
                }
            }
            Event::InitDone => shared.update(|s| s.ns_init_done()),
        },
    )
    .await;
}

/// Evicts expired tombstones every `metadata_grace / 4` (between 50 ms and 10 s).
async fn run_sweep(shared: Arc<Shared>, shutdown: CancellationToken) {
    let grace = shared.config.metadata_grace;
    let period = (grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => shared.update(|s| s.sweep(Instant::now(), grace)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let nominal = Duration::from_millis(100 * (1u64 << i)).min(Duration::from_secs(1));
            assert!(
                *d <= nominal && *d >= nominal.mul_f64(0.8),
                "delay {i}: {d:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
