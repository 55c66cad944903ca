//! The double's privilege model: per credential, the cluster privileges
//! (`monitor`, `manage_index_templates`, …) and the index privileges
//! (`create_doc`, `auto_configure`, …) on index name patterns, as an
//! Elasticsearch role grants them.
//!
//! Followed reference pages:
//!
//! * Security privileges
//!   (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-privileges.html>):
//!   `GET /` is `cluster:monitor/main` (granted by `monitor`, `manage`,
//!   `all`); `PUT`/`DELETE _index_template` is
//!   `indices:admin/index_template/put|delete` (granted by
//!   `manage_index_templates`, `manage`, `all`); a bulk `create` is
//!   `indices:data/write/bulk[s]` (granted by `create_doc`, `create`,
//!   `index`, `write`, `all` on the index); creating a missing index or data
//!   stream on write also needs `auto_configure`, `create_index`, `manage` or
//!   `all` on it.
//! * Bulk API
//!   (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html>):
//!   an item the credential may not write answers its own `403`
//!   `security_exception` inside an HTTP 200 response.
//! * Error format
//!   (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-error-options>):
//!   `{"error":{"root_cause":[…],"type":"security_exception","reason":…},"status":401|403}`;
//!   a `401` also carries `WWW-Authenticate` (`Basic realm="security"`,
//!   `ApiKey`).
//!
//! Security is off until a credential is added; then a request without a
//! known `Authorization` header answers `401`. The control API
//! (`/_double/…`) and searches are not checked.

use base64::Engine as _;
use parking_lot::Mutex;
use std::collections::HashMap;

/// What one credential may do (an Elasticsearch role, flattened).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principal {
    /// User name (or API key name) used in error messages.
    pub name: String,
    /// Cluster privileges: `monitor`, `manage_index_templates`, `manage`, `all`.
    pub cluster: Vec<String>,
    /// Index privileges: (index name patterns with `*`, privileges such as
    /// `create_doc`, `auto_configure`, `write`, `all`).
    pub indices: Vec<(Vec<String>, Vec<String>)>,
}

impl Principal {
    /// Elastic's writer role for `pattern` as the README documents it:
    /// `create_doc` and `auto_configure`, no cluster privilege.
    pub fn writer(name: &str, pattern: &str) -> Principal {
        Principal {
            name: name.to_owned(),
            cluster: Vec::new(),
            indices: vec![(
                vec![pattern.to_owned()],
                vec!["create_doc".to_owned(), "auto_configure".to_owned()],
            )],
        }
    }

    /// A superuser (`all` everywhere).
    pub fn superuser(name: &str) -> Principal {
        Principal {
            name: name.to_owned(),
            cluster: vec!["all".to_owned()],
            indices: vec![(vec!["*".to_owned()], vec!["all".to_owned()])],
        }
    }

    fn has_cluster(&self, granted_by: &[&str]) -> bool {
        self.cluster
            .iter()
            .any(|p| granted_by.contains(&p.as_str()))
    }

    fn has_index(&self, index: &str, granted_by: &[&str]) -> bool {
        self.indices.iter().any(|(patterns, privileges)| {
            patterns.iter().any(|p| super::store::glob(p, index))
                && privileges.iter().any(|p| granted_by.contains(&p.as_str()))
        })
    }
}

/// Credentials the double accepts, by `Authorization` header value.
#[derive(Debug, Default)]
pub struct Security {
    principals: Mutex<HashMap<String, Principal>>,
}

/// Cluster privileges that grant `GET /`.
const MONITOR: &[&str] = &["monitor", "manage", "all"];
/// Cluster privileges that grant template changes.
const TEMPLATES: &[&str] = &["manage_index_templates", "manage", "all"];
/// Index privileges that grant a bulk `create`.
const CREATE: &[&str] = &["create_doc", "create", "index", "write", "all"];
/// Index privileges that grant creating a missing index or data stream on write.
const AUTO_CREATE: &[&str] = &["auto_configure", "create_index", "manage", "all"];

impl Security {
    /// Accepts HTTP Basic `username:password` as `principal` (replacing any
    /// earlier password of that user).
    pub fn add_user(&self, username: &str, password: &str, principal: Principal) {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        let mut p = self.principals.lock();
        p.retain(|_, v| v.name != principal.name);
        p.insert(header, principal);
    }

    /// Accepts the API key `id:key` (sent as `ApiKey base64(id:key)`) as `principal`.
    pub fn add_api_key(&self, id: &str, key: &str, principal: Principal) {
        let header = format!(
            "ApiKey {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{key}"))
        );
        self.principals.lock().insert(header, principal);
    }

    /// Turns security off again.
    pub fn clear(&self) {
        self.principals.lock().clear();
    }

    /// `Ok(None)` when security is off; the principal of `authorization`;
    /// or the `401` reason.
    pub(crate) fn authenticate(
        &self,
        authorization: Option<&str>,
        path: &str,
    ) -> Result<Option<Principal>, String> {
        let p = self.principals.lock();
        if p.is_empty() {
            return Ok(None);
        }
        match authorization.and_then(|a| p.get(a)) {
            Some(principal) => Ok(Some(principal.clone())),
            None if authorization.is_none() => Err(format!(
                "missing authentication credentials for REST request [{path}]"
            )),
            None => Err(format!(
                "unable to authenticate user for REST request [{path}]"
            )),
        }
    }
}

fn unauthorized(principal: &Principal, action: &str, on: Option<&str>, granted: &str) -> String {
    let on = on.map(|i| format!(" on indices [{i}]")).unwrap_or_default();
    format!(
        "action [{action}] is unauthorized for user [{name}] with effective roles [{name}_role]{on}, this action is granted by the {granted}",
        name = principal.name
    )
}

/// The `403` reason when `principal` may not call `GET /`.
pub(crate) fn check_monitor(principal: &Principal) -> Option<String> {
    (!principal.has_cluster(MONITOR)).then(|| {
        unauthorized(
            principal,
            "cluster:monitor/main",
            None,
            "cluster privileges [monitor,manage,all]",
        )
    })
}

/// The `403` reason when `principal` may not change index templates.
pub(crate) fn check_templates(principal: &Principal) -> Option<String> {
    (!principal.has_cluster(TEMPLATES)).then(|| {
        unauthorized(
            principal,
            "indices:admin/index_template/put",
            None,
            "cluster privileges [manage_index_templates,manage,all]",
        )
    })
}

/// The item's `403` reason when `principal` may not create a document in
/// `index` (`exists`: whether the index or data stream exists already).
pub(crate) fn check_create(principal: &Principal, index: &str, exists: bool) -> Option<String> {
    if !principal.has_index(index, CREATE) {
        return Some(unauthorized(
            principal,
            "indices:data/write/bulk[s]",
            Some(index),
            "index privileges [create_doc,create,index,write,all]",
        ));
    }
    if !exists && !principal.has_index(index, AUTO_CREATE) {
        return Some(unauthorized(
            principal,
            "indices:admin/auto_create",
            Some(index),
            "index privileges [auto_configure,create_index,manage,all]",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_grant_what_the_reference_says() {
        let w = Principal::writer("w", "logs-*");
        assert!(check_monitor(&w).is_some());
        assert!(check_templates(&w)
            .unwrap()
            .contains("manage_index_templates"));
        assert!(check_create(&w, "logs-a-b", false).is_none());
        assert!(check_create(&w, "other", true)
            .unwrap()
            .contains("create_doc"));
        let no_auto = Principal {
            indices: vec![(vec!["*".into()], vec!["create_doc".into()])],
            ..Principal::writer("x", "*")
        };
        assert!(check_create(&no_auto, "logs-a-b", true).is_none());
        assert!(check_create(&no_auto, "logs-a-b", false)
            .unwrap()
            .contains("auto_configure"));
        let s = Security::default();
        assert_eq!(s.authenticate(None, "/"), Ok(None));
        s.add_user("elastic", "pw", Principal::superuser("elastic"));
        assert!(s.authenticate(None, "/").is_err());
        let ok = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("elastic:pw")
        );
        assert!(s.authenticate(Some(&ok), "/").unwrap().is_some());
    }
}
