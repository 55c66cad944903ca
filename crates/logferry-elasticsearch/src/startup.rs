//! Start-up: `GET /` until Elasticsearch answers, then the index templates
//! (when `install_template` is set).

use crate::config::ElasticsearchConfig;
use crate::request::{error_chain, status_error};
use crate::retry::Backoff;
use crate::schema::Schema;
use crate::state::Shared;
use crate::template;
use bytes::Bytes;
use elasticsearch::http::headers::{HeaderValue, CONTENT_TYPE};
use elasticsearch::http::Method;
use tracing::{error, info, warn};

/// Logged once when a template `PUT` is refused for lack of privileges.
pub(crate) const TEMPLATES_SKIPPED: &str = "templates not installed: the credential lacks manage_index_templates; install them with a setup role, see README";

/// `GET /` until it answers, then the templates.
pub(crate) async fn startup(
    shared: &Shared,
    config: &ElasticsearchConfig,
    schema: Schema,
    json_key: Option<&str>,
) {
    let mut backoff = Backoff::new(config.retry);
    loop {
        let (idx, ep) = shared.endpoints.pick();
        match ep
            .client
            .transport()
            .send(
                Method::Get,
                "/",
                shared.endpoints.auth_headers(),
                None::<&()>,
                None::<&[u8]>,
                None,
            )
            .await
        {
            Ok(resp) if resp.status_code().is_success() => {
                let info: serde_json::Value = resp.json().await.unwrap_or_default();
                let version = info["version"]["number"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned();
                let major: u32 = version
                    .split('.')
                    .next()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(0);
                if major < 8 {
                    warn!(endpoint = %ep.url, %version, "Elasticsearch version is older than 8; logferry is tested against 8.x");
                } else {
                    info!(endpoint = %ep.url, %version, cluster = info["cluster_name"].as_str().unwrap_or(""), "connected to Elasticsearch");
                }
                shared.endpoints.succeeded(idx);
                break;
            }
            Ok(resp) if matches!(resp.status_code().as_u16(), 401 | 403) => {
                // A writer-only credential has no `monitor`: the version is
                // unknown, but shipping needs only `create_doc`.
                let err = status_error("GET /", &ep.url, resp).await;
                warn!(error = %err, "GET / refused: the credential lacks the monitor privilege (or is wrong); shipping anyway, bulk requests will tell");
                break;
            }
            Ok(resp) => {
                let status = resp.status_code().as_u16();
                let delay = backoff.next_delay();
                error!(endpoint = %ep.url, status, retry_in = ?delay, "Elasticsearch answered GET / with an error; retrying (check credentials and URL)");
                shared.endpoints.failed(idx);
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                error!(endpoint = %ep.url, error = %error_chain(&e), retry_in = ?delay, "Elasticsearch is unreachable; retrying");
                shared.endpoints.failed(idx);
                tokio::time::sleep(delay).await;
            }
        }
    }
    if !config.install_template {
        return;
    }
    let templates = [
        (
            template::template_name(&config.target),
            template::document_template(&config.target, schema, json_key, &config.template),
        ),
        (
            template::DEAD_LETTER_TEMPLATE_NAME.to_owned(),
            template::dead_letter_template(&shared.dead_letter_index),
        ),
    ];
    for (name, body) in templates {
        let mut backoff = Backoff::new(config.retry);
        let path = format!("/_index_template/{name}");
        loop {
            let (idx, ep) = shared.endpoints.pick();
            let body = Bytes::from(body.to_string());
            let mut headers = shared.endpoints.auth_headers();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let result = ep
                .client
                .transport()
                .send(Method::Put, &path, headers, None::<&()>, Some(body), None)
                .await;
            match result {
                Ok(resp) if resp.status_code().is_success() => {
                    info!(template = name, "installed index template");
                    break;
                }
                Ok(resp) if matches!(resp.status_code().as_u16(), 401 | 403) => {
                    let err = status_error("PUT _index_template", &ep.url, resp).await;
                    warn!(template = %name, error = %err, "{TEMPLATES_SKIPPED}");
                    shared.health.set_templates_skipped();
                    return;
                }
                Ok(resp) => {
                    let err = status_error("PUT _index_template", &ep.url, resp).await;
                    if !err.is_retryable() {
                        error!(template = name, error = %err, "Elasticsearch refused the index template; shipping without it");
                        break;
                    }
                    let delay = backoff.next_delay();
                    warn!(template = name, error = %err, retry_in = ?delay, "installing the index template failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    shared.endpoints.failed(idx);
                    let delay = backoff.next_delay();
                    warn!(template = name, endpoint = %ep.url, error = %e, retry_in = ?delay, "installing the index template failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
