//! Field and label selectors
//! (<https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/>,
//! <https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/>):
//! parsed from the query string and matched against objects.

use super::state::{meta_str, Kind};
use serde_json::Value;

/// Field or label selector terms, all of which must hold.
#[derive(Clone, Debug, Default)]
pub(super) struct Selector {
    terms: Vec<Term>,
}

/// One requirement of a selector.
#[derive(Clone, Debug)]
enum Term {
    /// Field: JSON pointer, equals?, value.
    Field(&'static str, bool, String),
    Exists(String),
    NotExists(String),
    LabelEq(String, String),
    LabelNe(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// What a list or watch returns: its namespace scope and both selectors.
pub(super) struct Filter {
    pub(super) namespace: Option<String>,
    pub(super) field: Selector,
    pub(super) label: Selector,
}

impl Filter {
    pub(super) fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace {
            if meta_str(object, "namespace") != Some(ns.as_str()) {
                return false;
            }
        }
        self.field.matches(object) && self.label.matches(object)
    }
}

impl Selector {
    pub(super) fn parse_fields(kind: Kind, s: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let pointer = match (kind, key.trim()) {
                (_, "metadata.name") => "/metadata/name",
                (Kind::Pods, "metadata.namespace") => "/metadata/namespace",
                (Kind::Pods, "spec.nodeName") => "/spec/nodeName",
                (Kind::Pods, "spec.restartPolicy") => "/spec/restartPolicy",
                (Kind::Pods, "spec.schedulerName") => "/spec/schedulerName",
                (Kind::Pods, "spec.serviceAccountName") => "/spec/serviceAccountName",
                (Kind::Pods, "status.phase") | (Kind::Namespaces, "status.phase") => {
                    "/status/phase"
                }
                (Kind::Pods, "status.podIP") => "/status/podIP",
                (_, other) => {
                    return Err(format!("field label not supported: {other}"));
                }
            };
            terms.push(Term::Field(pointer, eq, value.trim().to_owned()));
        }
        Ok(Selector { terms })
    }

    pub(super) fn parse_labels(s: &str) -> Result<Selector, String> {
        // Split on commas outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        let mut terms = Vec::new();
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || format!("unable to parse requirement: '{part}'");
            let set = |rest: &str| -> Result<Vec<String>, String> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(bad)?;
                Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
            };
            let term = if let Some(key) = part.strip_prefix('!') {
                Term::NotExists(key.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                Term::LabelNe(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==") {
                Term::LabelEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once('=') {
                Term::LabelEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Term::NotIn(k.trim().to_owned(), set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Term::In(k.trim().to_owned(), set(rest)?)
            } else if part.contains(' ') || part.contains('(') {
                return Err(bad());
            } else {
                Term::Exists(part.to_owned())
            };
            terms.push(term);
        }
        Ok(Selector { terms })
    }

    pub(super) fn matches(&self, object: &Value) -> bool {
        let label = |k: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        self.terms.iter().all(|t| match t {
            Term::Field(pointer, eq, value) => {
                let actual = object
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("");
                (actual == value) == *eq
            }
            Term::Exists(k) => label(k).is_some(),
            Term::NotExists(k) => label(k).is_none(),
            Term::LabelEq(k, v) => label(k) == Some(v.as_str()),
            Term::LabelNe(k, v) => label(k) != Some(v.as_str()),
            Term::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Term::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_the_kubernetes_syntax() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let m = |s: &str| Selector::parse_labels(s).unwrap().matches(&pod);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("!missing"));
        assert!(m("tier in (front, back),app notin (db)"));
        assert!(!m("tier in (back)"));
        assert!(Selector::parse_labels("a in b").is_err());
    }

    #[test]
    fn field_selectors_reject_unsupported_fields() {
        let pod =
            json!({"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "node-a"}});
        let m = |s: &str| Selector::parse_fields(Kind::Pods, s).unwrap().matches(&pod);
        assert!(m("spec.nodeName=node-a"));
        assert!(m("spec.nodeName=node-a,metadata.namespace!=kube-system"));
        assert!(!m("spec.nodeName==node-b"));
        assert!(Selector::parse_fields(Kind::Pods, "spec.hostname=x").is_err());
    }
}
