//! NATS subjects: pattern validation and matching, and the publish subject
//! template of the sink.
//!
//! Subject syntax (<https://docs.nats.io/nats-concepts/subjects>): tokens
//! separated by `.`, none empty, no whitespace; in a pattern `*` matches
//! exactly one token and `>` (last token only) one or more tokens.

use logferry_core::{PodMeta, Source};

/// Checks a subscription pattern such as `logs.>`, `logs.*.ord.*`.
///
/// # Errors
/// A message naming what is wrong (empty token, whitespace, a wildcard
/// inside a token, `>` not last).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    check(pattern, true)
}

/// Checks a subject to publish to (no wildcards).
///
/// # Errors
/// As [`check_pattern`], and any wildcard.
pub fn check_subject(subject: &str) -> Result<(), String> {
    check(subject, false)
}

fn check(s: &str, wildcards: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("a subject cannot be empty".into());
    }
    let tokens: Vec<&str> = s.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(format!(
                "invalid subject {s:?}: empty token (`..`, or a leading or trailing `.`)"
            ));
        }
        if t.chars().any(char::is_whitespace) {
            return Err(format!("invalid subject {s:?}: whitespace in token {t:?}"));
        }
        let wild = t.contains('*') || t.contains('>');
        if wild && !wildcards {
            return Err(format!(
                "invalid subject {s:?}: wildcards are not allowed here"
            ));
        }
        if wild && *t != "*" && *t != ">" {
            return Err(format!(
                "invalid subject {s:?}: a wildcard must be a whole token, got {t:?}"
            ));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err(format!("invalid subject {s:?}: `>` must be the last token"));
        }
    }
    Ok(())
}

/// Whether `subject` (no wildcards) matches the valid `pattern`.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut s = subject.split('.');
    for p in pattern.split('.') {
        match (p, s.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (p, Some(t)) if p == t => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

/// Include/exclude subject patterns (`source.include` / `source.exclude` in
/// NATS mode): a subject is kept when it matches an include pattern and no
/// exclude pattern.
#[derive(Clone, Debug)]
pub struct SubjectFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl SubjectFilter {
    /// A filter from validated patterns; an empty `include` keeps everything.
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Self {
        SubjectFilter { include, exclude }
    }

    /// Whether messages on `subject` are shipped.
    pub fn accepts(&self, subject: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, subject)))
            && !self.exclude.iter().any(|p| matches(p, subject))
    }
}

/// Fields a [`SubjectTemplate`] can use, with ECS names.
pub const TEMPLATE_FIELDS: &[&str] = &[
    "kubernetes.namespace",
    "kubernetes.pod.name",
    "kubernetes.pod.uid",
    "kubernetes.container.name",
    "kubernetes.node.name",
    "container.id",
    "host.name",
];

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Field(&'static str),
}

/// A publish subject with `{field}` placeholders, e.g.
/// `logs.{kubernetes.namespace}.{kubernetes.pod.name}` ([`TEMPLATE_FIELDS`]).
///
/// A value is put in one token: characters that NATS gives a meaning
/// (`.`, `*`, `>`, whitespace) become `_`, and a missing or empty value is `_`.
#[derive(Clone, Debug)]
pub struct SubjectTemplate {
    parts: Vec<Part>,
}

impl SubjectTemplate {
    /// Parses and checks a template.
    ///
    /// # Errors
    /// An unknown placeholder, an unclosed `{`, or a result that would not be
    /// a valid publish subject.
    pub fn parse(template: &str) -> Result<SubjectTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed {{ in {template:?}"));
            };
            let name = &rest[open + 1..open + close];
            let field = TEMPLATE_FIELDS
                .iter()
                .find(|f| **f == name)
                .ok_or_else(|| {
                    format!(
                        "unknown placeholder {{{name}}}; known: {}",
                        TEMPLATE_FIELDS.join(", ")
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        let t = SubjectTemplate { parts };
        check_subject(&t.render_with(|_| Some("x")))?;
        Ok(t)
    }

    fn render_with<'a>(&self, field: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => match field(f).filter(|v| !v.is_empty()) {
                    Some(v) => out.extend(v.chars().map(|c| match c {
                        '.' | '*' | '>' => '_',
                        c if c.is_whitespace() => '_',
                        c => c,
                    })),
                    None => out.push('_'),
                },
            }
        }
        out
    }

    /// The subject for records of `source` with metadata `meta`; `host_name`
    /// is this node's name.
    pub fn render(
        &self,
        source: &Source,
        meta: Option<&PodMeta>,
        host_name: Option<&str>,
    ) -> String {
        self.render_with(|f| match f {
            "kubernetes.namespace" => meta
                .map(|m| m.namespace.as_str())
                .or(source.kube.as_ref().map(|k| k.namespace.as_str())),
            "kubernetes.pod.name" => meta
                .map(|m| m.pod_name.as_str())
                .or(source.kube.as_ref().map(|k| k.pod_name.as_str())),
            "kubernetes.pod.uid" => meta
                .map(|m| m.pod_uid.as_str())
                .or(source.kube.as_ref().map(|k| k.pod_uid.as_str())),
            "kubernetes.container.name" => meta
                .map(|m| m.container.name.as_str())
                .or(source.kube.as_ref().map(|k| k.container.as_str())),
            "kubernetes.node.name" => meta.and_then(|m| m.node_name.as_deref()).or(host_name),
            "container.id" => meta
                .and_then(|m| m.container.id.as_deref())
                .or(source.container_id.as_deref()),
            "host.name" => host_name,
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_nats_rules() {
        for ok in [
            "logs.>",
            "logs.*.ord.*",
            ">",
            "*",
            "logs.myapp.>",
            "a.b-c_d.e",
        ] {
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "logs..x", ".logs", "logs.", "logs.>.x", "logs.a*", "lo gs", "logs.>x",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(check_subject("logs.*").is_err());
        assert!(check_subject("logs.a.b").is_ok());
    }

    #[test]
    fn matching_by_tokens() {
        assert!(matches("logs.>", "logs.app.ord.1"));
        assert!(!matches("logs.>", "logs"));
        assert!(matches("logs.*.ord.*", "logs.app.ord.1"));
        assert!(!matches("logs.*.ord.*", "logs.app.fra.1"));
        assert!(!matches("logs.*.ord.*", "logs.app.ord.1.x"));
        assert!(!matches("logs.*", "logs.app.ord"));
        assert!(matches("logs.app", "logs.app"));
        let f = SubjectFilter::new(vec!["logs.>".into()], vec!["logs.noisy.>".into()]);
        assert!(f.accepts("logs.web.ord.1"));
        assert!(!f.accepts("logs.noisy.ord.1"));
        assert!(!f.accepts("metrics.web"));
    }

    #[test]
    fn templates_render_one_token_per_field() {
        let t =
            SubjectTemplate::parse("logs.{kubernetes.namespace}.{kubernetes.pod.name}").unwrap();
        let out = t.render_with(|f| match f {
            "kubernetes.namespace" => Some("shop"),
            "kubernetes.pod.name" => Some("web.1 *>"),
            _ => None,
        });
        assert_eq!(out, "logs.shop.web_1___");
        assert_eq!(t.render_with(|_| None), "logs._._");
        assert!(SubjectTemplate::parse("logs.{pod}").is_err());
        assert!(SubjectTemplate::parse("logs.{kubernetes.namespace").is_err());
        assert!(SubjectTemplate::parse("logs.*.{host.name}").is_err());
        assert!(SubjectTemplate::parse("logs..{host.name}").is_err());
    }
}
