//! Index names: rendering a template per record, and making the result a
//! valid Elasticsearch index name.
//!
//! ## Template
//!
//! An index template is text with two kinds of substitutions:
//!
//! * `strftime` specifiers (chrono's, see
//!   <https://docs.rs/chrono/latest/chrono/format/strftime/index.html>) applied to
//!   the record's time in UTC: `logs-k8s-%Y.%m.%d`;
//! * `{field.path}` placeholders naming a per-file document field, always by its
//!   ECS name whatever the document schema: `kubernetes.namespace`,
//!   `kubernetes.pod.name`, `kubernetes.pod.uid`, `kubernetes.node.name`,
//!   `kubernetes.container.name`, `kubernetes.labels.<key>`,
//!   `kubernetes.annotations.<key>`, `kubernetes.namespace_labels.<key>`, `container.id`, `container.image.name`,
//!   `container.runtime`, `host.name`. A field without a value renders as
//!   `unknown`.
//!
//! Rendered names are cached per file and per day (per second when the
//! template uses time-of-day specifiers, not at all with sub-second ones).
//!
//! ## Replacement rule
//!
//! Elasticsearch refuses index names that contain upper-case letters,
//! `\ / * ? " < > | , # :` or a space, that start with `-`, `_` or `+`, that are
//! `.` or `..`, or that are longer than 255 bytes
//! (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-create-index.html#indices-create-api-path-params>).
//! A rendered name is therefore lower-cased, each of those characters (and
//! any control character) is replaced by `_`, leading `-`, `_` and `+` are
//! removed, the name is cut to 255 bytes at a character boundary, and a name
//! left empty, `.` or `..` becomes `logferry-invalid-index-name`.

use crate::error::Error;
use crate::meta::MetaView;
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

/// Where documents go.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum IndexTarget {
    /// A regular index whose name is rendered per record from `template`:
    /// `strftime` specifiers (chrono, on the record's UTC time) and
    /// `{field.path}` placeholders naming a document field
    /// (`logs-{kubernetes.namespace}-%Y.%m.%d`). See [`crate::index`] for the
    /// rendering and the character replacement rule.
    Index {
        /// The parsed template, e.g. `logs-k8s-%Y.%m.%d`.
        template: IndexNameTemplate,
    },
    /// A data stream named `<kind>-<dataset>-<namespace>`
    /// (Elastic's data stream naming scheme:
    /// <https://www.elastic.co/guide/en/elasticsearch/reference/8.19/data-streams.html>),
    /// written with the `create` op.
    DataStream {
        /// Data stream type, normally `logs`.
        kind: String,
        /// Dataset, e.g. `kubernetes`.
        dataset: String,
        /// Namespace, e.g. `default`.
        namespace: String,
    },
}

impl Default for IndexTarget {
    /// The data stream `logs-kubernetes.container_logs-default`, the one
    /// Elastic's own Kubernetes integration writes container logs to. On a
    /// stock 8.x/9.x cluster it works with a writer-only credential
    /// (`create_doc` and `auto_configure` on `logs-kubernetes.container_logs-*`)
    /// and no template of ours: Elasticsearch's built-in `logs` template
    /// (`logs-*-*`, priority 100) makes it a data stream with ECS mappings
    /// and a default lifecycle. An index name such as `logs-k8s-2026.11.22`
    /// would also match `logs-*-*` and silently become a data stream.
    fn default() -> Self {
        IndexTarget::DataStream {
            kind: "logs".to_owned(),
            dataset: "kubernetes.container_logs".to_owned(),
            namespace: "default".to_owned(),
        }
    }
}

/// The name of the data stream for a [`IndexTarget::DataStream`]
/// (`<kind>-<dataset>-<namespace>`, after the index name replacement rule);
/// for [`IndexTarget::Index`], the template text.
pub fn data_stream_name(target: &IndexTarget) -> String {
    match target {
        IndexTarget::DataStream {
            kind,
            dataset,
            namespace,
        } => sanitize_index_name(&format!("{kind}-{dataset}-{namespace}")),
        IndexTarget::Index { template } => template.as_str().to_owned(),
    }
}

/// A data stream `type`, `dataset` or `namespace` part as Elasticsearch's
/// `reroute` processor sanitizes them
/// (<https://www.elastic.co/guide/en/elasticsearch/reference/8.19/reroute-processor.html>):
/// lower-cased, each of `\ / * ? " < > | , # :`, space and `-` replaced by
/// `_`, at most 100 bytes; empty becomes `unknown`.
pub(crate) fn data_stream_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' ' | '-'
            ) || c.is_control()
            {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let mut end = out.len().min(100);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

/// What a rendered name depends on besides the file: the time bucket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Bucket {
    /// Only date specifiers: one name per UTC day.
    Day,
    /// Time-of-day specifiers down to seconds: one name per second.
    Second,
    /// Sub-second or unknown specifiers: rendered for every record.
    Never,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Part {
    /// strftime text.
    Time(String),
    /// A field path.
    Field(String),
}

/// A parsed index name template (see the module documentation for the
/// syntax). The default is `logs-k8s-%Y.%m.%d`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IndexNameTemplate {
    text: String,
    parts: Vec<Part>,
    bucket: Bucket,
}

/// The default index name template.
const DEFAULT_TEMPLATE: &str = "logs-k8s-%Y.%m.%d";

impl Default for IndexNameTemplate {
    fn default() -> Self {
        IndexNameTemplate::parse(DEFAULT_TEMPLATE).expect("the default index template parses")
    }
}

impl std::str::FromStr for IndexNameTemplate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        IndexNameTemplate::parse(s)
    }
}

impl std::fmt::Display for IndexNameTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

const FIELDS: &[&str] = &[
    "kubernetes.namespace",
    "kubernetes.pod.name",
    "kubernetes.pod.uid",
    "kubernetes.pod.ip",
    "kubernetes.node.name",
    "kubernetes.container.name",
    "container.id",
    "container.image.name",
    "container.runtime",
    "host.name",
];

impl IndexNameTemplate {
    /// Parses `template`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIndexTemplate`] for an empty template, an unclosed `{`,
    /// an unknown field path or an invalid strftime specifier.
    pub fn parse(template: &str) -> Result<IndexNameTemplate, Error> {
        let invalid = |reason: String| Error::InvalidIndexTemplate {
            template: template.to_owned(),
            reason,
        };
        if template.trim().is_empty() {
            return Err(invalid("empty".into()));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        let mut bucket = Bucket::Day;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(open) => {
                    if open > 0 {
                        parts.push(Part::Time(rest[..open].to_owned()));
                    }
                    let close = rest[open..].find('}').ok_or_else(|| {
                        invalid(format!(
                            "unclosed '{{' at byte {}",
                            template.len() - rest.len() + open
                        ))
                    })?;
                    let path = &rest[open + 1..open + close];
                    let known = FIELDS.contains(&path)
                        || path
                            .strip_prefix("kubernetes.labels.")
                            .or_else(|| path.strip_prefix("kubernetes.annotations."))
                            .or_else(|| path.strip_prefix("kubernetes.namespace_labels."))
                            .is_some_and(|k| !k.is_empty());
                    if !known {
                        return Err(invalid(format!(
                            "unknown field {{{path}}}; known: {}, kubernetes.labels.<key>, kubernetes.annotations.<key>, kubernetes.namespace_labels.<key>",
                            FIELDS.join(", ")
                        )));
                    }
                    parts.push(Part::Field(path.to_owned()));
                    rest = &rest[open + close + 1..];
                }
                None => {
                    parts.push(Part::Time(rest.to_owned()));
                    rest = "";
                }
            }
        }
        for part in &parts {
            if let Part::Time(fmt) = part {
                let mut probe = String::new();
                if write!(probe, "{}", DateTime::<Utc>::UNIX_EPOCH.format(fmt)).is_err() {
                    return Err(invalid(format!("invalid strftime specifier in {fmt:?}")));
                }
                bucket = coarsest(bucket, bucket_of(fmt));
            }
        }
        Ok(IndexNameTemplate {
            text: template.to_owned(),
            parts,
            bucket,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    #[cfg(test)]
    fn bucket(&self) -> Bucket {
        self.bucket
    }

    /// The bucket key of `nanos` (records with equal keys render equally for the same file).
    pub(crate) fn bucket_key(&self, nanos: i64) -> Option<i64> {
        match self.bucket {
            Bucket::Day => Some(nanos.div_euclid(86_400_000_000_000)),
            Bucket::Second => Some(nanos.div_euclid(1_000_000_000)),
            Bucket::Never => None,
        }
    }

    /// Renders the name for a record at `nanos` of the file described by `meta`,
    /// then applies the replacement rule.
    pub(crate) fn render(&self, nanos: i64, meta: &MetaView<'_>) -> String {
        let time = DateTime::from_timestamp_nanos(nanos);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Time(fmt) => {
                    let _ = write!(out, "{}", time.format(fmt));
                }
                Part::Field(path) => out.push_str(meta.field(path).unwrap_or("unknown")),
            }
        }
        sanitize_index_name(&out)
    }

    /// A wildcard pattern matching every name this template renders
    /// (`logs-k8s-*`), for index templates.
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Time(fmt) => {
                    let mut chars = fmt.chars().peekable();
                    while let Some(c) = chars.next() {
                        if c == '%' {
                            // Skip flags, width and the specifier itself.
                            while let Some(&n) = chars.peek() {
                                chars.next();
                                if n.is_ascii_alphabetic() || n == '%' || n == '+' {
                                    break;
                                }
                            }
                            if !out.ends_with('*') {
                                out.push('*');
                            }
                        } else {
                            out.extend(c.to_lowercase());
                        }
                    }
                }
                Part::Field(_) => {
                    if !out.ends_with('*') {
                        out.push('*');
                    }
                }
            }
        }
        out
    }
}

fn coarsest(a: Bucket, b: Bucket) -> Bucket {
    use Bucket::*;
    match (a, b) {
        (Never, _) | (_, Never) => Never,
        (Second, _) | (_, Second) => Second,
        _ => Day,
    }
}

fn bucket_of(fmt: &str) -> Bucket {
    let mut bucket = Bucket::Day;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut spec = None;
        for n in chars.by_ref() {
            if matches!(n, '-' | '_' | '0' | '.' | ':' | '#') || n.is_ascii_digit() {
                continue;
            }
            spec = Some(n);
            break;
        }
        let b = match spec {
            Some(
                'Y' | 'C' | 'y' | 'm' | 'b' | 'B' | 'h' | 'd' | 'e' | 'j' | 'a' | 'A' | 'u' | 'w'
                | 'U' | 'W' | 'G' | 'g' | 'V' | 'F' | 'D' | 'x' | '%' | 'n' | 't',
            ) => Bucket::Day,
            Some(
                'H' | 'k' | 'I' | 'l' | 'M' | 'S' | 'p' | 'P' | 'R' | 'T' | 'X' | 'r' | 'c' | 'z'
                | 'Z' | 's',
            ) => Bucket::Second,
            _ => Bucket::Never,
        };
        bucket = coarsest(bucket, b);
    }
    bucket
}

/// Applies the replacement rule of this module to `name`.
pub fn sanitize_index_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':' => out.push('_'),
            c if c.is_control() => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    let trimmed = out.trim_start_matches(['-', '_', '+']);
    let mut end = trimmed.len().min(255);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    let cut = &trimmed[..end];
    if cut.is_empty() || cut == "." || cut == ".." {
        return "logferry-invalid-index-name".to_owned();
    }
    cut.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_names() {
        assert_eq!(
            sanitize_index_name("Logs-K8S-2026.11.22"),
            "logs-k8s-2026.11.22"
        );
        assert_eq!(
            sanitize_index_name("a\\b/c*d?e\"f<g>h|i j,k#l:m"),
            "a_b_c_d_e_f_g_h_i_j_k_l_m"
        );
        assert_eq!(sanitize_index_name("-_+logs"), "logs");
        assert_eq!(sanitize_index_name("_"), "logferry-invalid-index-name");
        assert_eq!(sanitize_index_name(".."), "logferry-invalid-index-name");
        assert_eq!(sanitize_index_name(&"é".repeat(200)).len(), 254);
    }

    #[test]
    fn parses_and_classifies_templates() {
        assert_eq!(
            IndexNameTemplate::parse("logs-%Y.%m.%d").unwrap().bucket(),
            Bucket::Day
        );
        assert_eq!(
            IndexNameTemplate::parse("logs-%Y.%m.%d-%H")
                .unwrap()
                .bucket(),
            Bucket::Second
        );
        assert_eq!(
            IndexNameTemplate::parse("logs-%f").unwrap().bucket(),
            Bucket::Never
        );
        assert_eq!(
            IndexNameTemplate::parse("logs").unwrap().bucket(),
            Bucket::Day
        );
        assert!(IndexNameTemplate::parse("logs-{kubernetes.nope}").is_err());
        assert!(IndexNameTemplate::parse("logs-{kubernetes.namespace").is_err());
        assert!(IndexNameTemplate::parse("logs-%Q").is_err());
        assert!(IndexNameTemplate::parse("").is_err());
        assert!(IndexNameTemplate::parse("x-{kubernetes.labels.app}").is_ok());
        assert_eq!(
            IndexNameTemplate::parse("Logs-{kubernetes.namespace}-%Y.%m.%d")
                .unwrap()
                .pattern(),
            "logs-*-*.*.*"
        );
    }
}
