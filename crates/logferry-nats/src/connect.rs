//! Connecting: options from [`Connection`], secrets from files, the first
//! connection with retries, and connection events turned into
//! [`NatsEvents`].

use crate::config::{Auth, Connection, Secret};
use crate::error::Error;
use crate::events::{DropReason, NatsEvents};
use async_nats::{ConnectErrorKind, ConnectOptions, Event};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

fn read_secret(what: &'static str, secret: &Secret) -> Result<String, Error> {
    let path = match secret {
        Secret::File(path) => path,
        Secret::Env(name) => {
            return std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Secret {
                    what,
                    path: format!("${name}").into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "environment variable not set or empty",
                    ),
                });
        }
    };
    read_file_secret(what, path)
}

fn read_file_secret(what: &'static str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| Error::Secret {
            what,
            path: path.to_owned(),
            source,
        })
}

/// Whether connection losses are counted as core-NATS gaps (a JetStream
/// consumer or a publisher loses nothing when disconnected).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum GapAccounting {
    Count,
    Ignore,
}

async fn options(
    c: &Connection,
    events: Arc<dyn NatsEvents>,
    gaps: GapAccounting,
    subscription_capacity: usize,
) -> Result<ConnectOptions, Error> {
    let mut o = match &c.auth {
        None => ConnectOptions::new(),
        Some(Auth::UserPassword { user, password }) => {
            ConnectOptions::with_user_and_password(user.clone(), read_secret("password", password)?)
        }
        Some(Auth::Token { token }) => ConnectOptions::with_token(read_secret("token", token)?),
        Some(Auth::NKey { seed_file }) => {
            ConnectOptions::with_nkey(read_file_secret("NKey seed", seed_file)?)
        }
        Some(Auth::Credentials { credentials_file }) => {
            let text = read_file_secret("credentials", credentials_file)?;
            ConnectOptions::with_credentials(&text).map_err(|source| Error::Secret {
                what: "credentials",
                path: credentials_file.clone(),
                source,
            })?
        }
    };
    if let Some(tls) = &c.tls {
        if let Some(ca) = &tls.ca_file {
            o = o.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        o = o.require_tls(tls.required);
    }
    let backoff = c.reconnect;
    let down_since: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    o = o
        .name(&c.name)
        .connection_timeout(c.connect_timeout)
        .subscription_capacity(subscription_capacity)
        .reconnect_delay_callback(move |attempt| backoff.delay(attempt))
        .event_callback(move |event| {
            let events = events.clone();
            let down_since = down_since.clone();
            async move {
                match event {
                    Event::Disconnected => {
                        tracing::warn!("NATS connection lost; reconnecting");
                        *down_since.lock().expect("not poisoned") = Some(Instant::now());
                        events.connected(false);
                    }
                    Event::Connected => {
                        let since = down_since.lock().expect("not poisoned").take();
                        events.connected(true);
                        if let Some(since) = since {
                            let gap = since.elapsed().as_secs_f64();
                            tracing::info!(gap_seconds = gap, "NATS connection restored");
                            events.reconnected(gap);
                            if gaps == GapAccounting::Count {
                                events.dropped(DropReason::ReconnectGap, 1);
                            }
                        }
                    }
                    Event::SlowConsumer(_) => events.dropped(DropReason::SlowConsumer, 1),
                    Event::ServerError(e) => {
                        let text = e.to_string();
                        let reason = if text.to_ascii_lowercase().contains("authoriz")
                            || text.to_ascii_lowercase().contains("authentic")
                        {
                            "auth"
                        } else {
                            "other"
                        };
                        tracing::warn!(error = %text, "NATS server error");
                        events.connect_error(reason);
                    }
                    Event::ClientError(e) => tracing::warn!(error = %e, "NATS client error"),
                    Event::LameDuckMode => {
                        tracing::info!("NATS server entered lame duck mode")
                    }
                    Event::Draining | Event::Closed => {}
                }
            }
        });
    Ok(o)
}

fn kind_label(kind: ConnectErrorKind) -> &'static str {
    match kind {
        ConnectErrorKind::Io => "io",
        ConnectErrorKind::TimedOut => "timeout",
        ConnectErrorKind::Tls => "tls",
        ConnectErrorKind::Dns => "dns",
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => "auth",
        _ => "other",
    }
}

/// Connects, retrying at start as configured. Refused credentials end it at
/// once ([`Error::Auth`]).
pub(crate) async fn connect(
    c: &Connection,
    events: Arc<dyn NatsEvents>,
    gaps: GapAccounting,
    subscription_capacity: usize,
    stop: &CancellationToken,
) -> Result<async_nats::Client, Error> {
    let mut attempt = 0usize;
    loop {
        let o = options(c, events.clone(), gaps, subscription_capacity).await?;
        let servers: Vec<&str> = c.servers.iter().map(String::as_str).collect();
        let result = tokio::select! {
            r = o.connect(servers.as_slice()) => r,
            _ = stop.cancelled() => return Err(Error::Cancelled),
        };
        match result {
            Ok(client) => {
                events.connected(true);
                tracing::info!(servers = %c.servers_text(), "connected to NATS");
                return Ok(client);
            }
            Err(e) => {
                let label = kind_label(e.kind());
                events.connect_error(label);
                if label == "auth" {
                    return Err(Error::Auth {
                        servers: c.servers_text(),
                        reason: e.to_string(),
                    });
                }
                if !c.retry_on_start {
                    return Err(Error::Connect {
                        servers: c.servers_text(),
                        source: e,
                    });
                }
                let delay = c.reconnect.delay(attempt);
                tracing::warn!(
                    servers = %c.servers_text(),
                    error = %e,
                    retry_in = ?delay,
                    "cannot connect to NATS; retrying"
                );
                attempt += 1;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Err(Error::Cancelled),
                }
            }
        }
    }
}
