//! The admin HTTP server: `GET /metrics`, `GET /healthz`, `GET /readyz` on
//! `server.listen`, and `POST /quitquitquit` on the loopback-only
//! `server.control_listen` (when enabled).
//!
//! Nothing that changes state is served to the network: the control routes
//! get their own listener, bound to a loopback address (the configuration
//! refuses any other), unless `server.listen` is itself a loopback address and
//! the same, in which case one listener serves both. A pod that can reach
//! logferry's pod IP can read metrics and probes, never stop it.
//!
//! It stays up until the very end of the process (after the drain), so that
//! Prometheus can scrape the final counters and probes see readiness drop.

use crate::metrics::{Metrics, STATE_FILES};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the admin endpoints read and trigger.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// True once checkpoints are loaded and the pipeline runs; false again while draining.
    pub ready: Arc<AtomicBool>,
    /// The Elasticsearch forwarder's health, once it exists: `/readyz`
    /// answers 503 with the reason while Elasticsearch refuses the
    /// credential (401/403), a configuration problem that holds every record.
    pub sink_health: Arc<std::sync::OnceLock<logferry_elasticsearch::ForwarderHealth>>,
    /// Cancelled by `POST /quitquitquit`: finish reading what was written, ship, checkpoint, exit 0.
    pub quit: CancellationToken,
    /// Writes in `data_dir` that fail (a full disk): `/readyz` answers 503
    /// naming them until they succeed again.
    pub data_dir_health: Arc<DataDirHealth>,
}

/// Which files of `data_dir` fail to be written right now (one flag per
/// [`STATE_FILES`] entry), set by the libraries' events.
#[derive(Debug, Default)]
pub struct DataDirHealth {
    failing: [AtomicBool; 3],
}

impl DataDirHealth {
    /// Marks writes of `file` (one of [`STATE_FILES`]) as failing or working.
    pub fn set(&self, file: &str, failing: bool) {
        if let Some(i) = STATE_FILES.iter().position(|f| *f == file) {
            let was = self.failing[i].swap(failing, Ordering::SeqCst);
            if was != failing && !failing {
                tracing::info!(file, "writes in data_dir work again");
            }
        }
    }

    /// The reason `/readyz` gives while any write fails.
    pub fn problem(&self) -> Option<String> {
        let failing: Vec<&str> = STATE_FILES
            .iter()
            .zip(&self.failing)
            .filter(|(_, f)| f.load(Ordering::SeqCst))
            .map(|(name, _)| *name)
            .collect();
        (!failing.is_empty()).then(|| {
            format!(
                "writing data_dir fails ({}): is its filesystem full? Shipping goes on; retrying with backoff",
                failing.join(", ")
            )
        })
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<AdminState>) -> (StatusCode, String) {
    if let Some(problem) = s.data_dir_health.problem() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        );
    }
    if let Some(problem) = s.sink_health.get().and_then(|h| h.problem()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        );
    }
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned())
    }
}

async fn quitquitquit(State(s): State<AdminState>) -> &'static str {
    tracing::info!("quit requested through /quitquitquit: draining");
    s.quit.cancel();
    "draining\n"
}

/// Binds `listen` (read-only routes) and, when `control` is set, the
/// loopback address serving `POST /quitquitquit` (the same listener when
/// `control == Some(listen)`), and serves until `stop` is cancelled.
///
/// # Errors
/// An address cannot be bound (in use, permission).
pub async fn serve(
    listen: SocketAddr,
    control: Option<SocketAddr>,
    state: AdminState,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let public = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let control_routes = Router::new().route("/quitquitquit", post(quitquitquit));
    let (public, control) = match control {
        Some(c) if c == listen => (public.merge(control_routes), None),
        Some(c) => (public, Some((c, control_routes))),
        None => (public, None),
    };
    let mut servers = vec![(
        tokio::net::TcpListener::bind(listen).await?,
        public.with_state(state.clone()),
        "admin server listening (/metrics /healthz /readyz)",
    )];
    if let Some((address, routes)) = control {
        servers.push((
            tokio::net::TcpListener::bind(address).await?,
            routes.with_state(state),
            "control server listening on loopback (/quitquitquit)",
        ));
    }
    let mut tasks = Vec::new();
    for (listener, app, what) in servers {
        tracing::info!(address = %listener.local_addr()?, "{what}");
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "admin server failed");
            }
        }));
    }
    Ok(tokio::spawn(async move {
        for t in tasks {
            let _ = t.await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_health_names_every_failing_file_until_it_works_again() {
        let h = DataDirHealth::default();
        assert_eq!(h.problem(), None);
        h.set("checkpoints", true);
        h.set("pods", true);
        let p = h.problem().unwrap();
        assert!(p.contains("checkpoints, pods"), "{p}");
        h.set("checkpoints", false);
        h.set("pods", false);
        assert_eq!(h.problem(), None);
        h.set("not-a-file", true);
        assert_eq!(h.problem(), None, "only the known files");
    }
}
