//! The admin HTTP server: `GET /metrics`, `GET /healthz`, `GET /readyz`,
//! `POST /quitquitquit`.
//!
//! It stays up until the very end of the process (after the drain), so that
//! Prometheus can scrape the final counters and probes see readiness drop.

use crate::metrics::Metrics;
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
    /// Cancelled by `POST /quitquitquit`: finish reading what was written, ship, checkpoint, exit 0.
    pub quit: CancellationToken,
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

async fn readyz(State(s): State<AdminState>) -> (StatusCode, &'static str) {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn quitquitquit(State(s): State<AdminState>) -> &'static str {
    tracing::info!("quit requested through /quitquitquit: draining");
    s.quit.cancel();
    "draining\n"
}

/// Binds `listen` and serves until `stop` is cancelled.
///
/// # Errors
/// The address cannot be bound (in use, permission).
pub async fn serve(
    listen: SocketAddr,
    state: AdminState,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/quitquitquit", post(quitquitquit))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "admin server listening");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin server failed");
        }
    }))
}
