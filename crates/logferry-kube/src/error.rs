//! The crate's error type.

use std::error::Error as StdError;

/// An error of the pod or namespace watch.
///
/// Errors never reach the caller of [`PodStore::lookup`](crate::PodStore::lookup): the
/// watch tasks log them, report them through
/// [`KubeEvents::api_error`](crate::KubeEvents::api_error) with [`KubeError::as_label`],
/// back off (capped at [`KubeConfig::backoff_max`](crate::KubeConfig::backoff_max)) and
/// re-list. The type is public so that the binary can classify errors the same way.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The list/watch of `resource` failed (connection, HTTP status, in-stream `ERROR`
    /// event, or an undecodable response).
    #[error("failed to list/watch {resource} on the Kubernetes API")]
    Watch {
        /// `"pods"` or `"namespaces"`.
        resource: &'static str,
        /// What kube's watcher reported.
        #[source]
        source: kube::runtime::watcher::Error,
    },
    /// An annotation, label or namespace label list holds an invalid glob.
    #[error("invalid allowlist pattern {pattern:?}")]
    AllowlistPattern {
        /// The offending pattern.
        pattern: String,
        /// Why globset rejected it.
        #[source]
        source: globset::Error,
    },
}

impl KubeError {
    /// Every value [`KubeError::as_label`] returns for an API error (all but
    /// `"config"`), for pre-registering metric series.
    pub const API_LABELS: &'static [&'static str] = &[
        "unreachable",
        "timeout",
        "unauthorized",
        "forbidden",
        "gone",
        "throttled",
        "server_error",
        "api_error",
        "decode",
        "protocol",
    ];

    /// A bounded label for metrics and log fields:
    /// `"unreachable"` (connection refused/reset, DNS, TLS), `"timeout"`,
    /// `"unauthorized"` (401), `"forbidden"` (403, RBAC), `"gone"` (410, expired
    /// resourceVersion), `"throttled"` (429), `"server_error"` (5xx), `"api_error"` (any
    /// other HTTP status), `"decode"` (response not understood), `"protocol"` (no
    /// resourceVersion in a list), `"config"` (invalid allowlist).
    pub fn as_label(&self) -> &'static str {
        use kube::runtime::watcher::Error as W;
        match self {
            KubeError::AllowlistPattern { .. } => "config",
            KubeError::Watch { source, .. } => match source {
                W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => {
                    client_label(e)
                }
                W::WatchError(status) => status_label(status.code),
                W::NoResourceVersion => "protocol",
            },
        }
    }

    /// Whether the API server is to be considered unavailable for metadata: lookups then
    /// answer [`Lookup::PathOnly`](crate::Lookup::PathOnly) at once instead of waiting for
    /// the pod. True when a list or the start of a watch failed with `unreachable`,
    /// `timeout`, `unauthorized`, `forbidden`, `throttled` or `server_error`; false for
    /// `gone` (a re-list follows at once), for decoding problems, and for an open watch
    /// that broke mid-stream (the re-list that follows decides).
    pub fn is_unavailable(&self) -> bool {
        use kube::runtime::watcher::Error as W;
        let mid_stream = matches!(
            self,
            KubeError::Watch {
                source: W::WatchFailed(_),
                ..
            }
        );
        !mid_stream
            && matches!(
                self.as_label(),
                "unreachable"
                    | "timeout"
                    | "unauthorized"
                    | "forbidden"
                    | "throttled"
                    | "server_error"
            )
    }

    /// Every watch error is retried (after backoff); only configuration errors are not.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, KubeError::AllowlistPattern { .. })
    }
}

fn status_label(code: u16) -> &'static str {
    match code {
        401 => "unauthorized",
        403 => "forbidden",
        410 => "gone",
        429 => "throttled",
        500..=599 => "server_error",
        _ => "api_error",
    }
}

fn client_label(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(status) => status_label(status.code),
        kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded => "decode",
        other => {
            // Walk the source chain for an I/O error that says what happened.
            let mut cur: Option<&(dyn StdError + 'static)> = Some(other);
            while let Some(err) = cur {
                if let Some(io) = err.downcast_ref::<std::io::Error>() {
                    if io.kind() == std::io::ErrorKind::TimedOut {
                        return "timeout";
                    }
                    return "unreachable";
                }
                cur = err.source();
            }
            "unreachable"
        }
    }
}
