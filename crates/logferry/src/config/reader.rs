//! A YAML mapping walker that reports *every* problem with its key path.
//!
//! serde stops at the first error; operators fixing a config file want the
//! whole list at once (linkerd2-proxy does the same). Each section is read
//! through a [`Section`]: every getter records a problem instead of failing, and
//! [`Section::finish`] reports the keys nobody asked for (unknown keys).

use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// One configuration problem: where, and what is wrong.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    /// Dotted key path, e.g. `elasticsearch.batch.max_bytes`.
    pub path: String,
    /// What is wrong, e.g. `expected a size like "5MiB", got "five"`.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects problems while a configuration is read.
#[derive(Default, Debug)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.to_owned(),
            message: message.into(),
        });
    }
}

/// A mapping being read, with its key path.
pub struct Section<'a> {
    path: String,
    map: Option<&'a Mapping>,
    used: BTreeSet<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("{n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(_) => "a tagged value".into(),
    }
}

impl<'a> Section<'a> {
    /// The top-level mapping of a document (`path` empty).
    pub fn root(value: &'a Value, problems: &mut Problems) -> Section<'a> {
        Section::new(String::new(), Some(value), problems)
    }

    fn new(path: String, value: Option<&'a Value>, problems: &mut Problems) -> Section<'a> {
        let map = match value {
            None | Some(Value::Null) => None,
            Some(Value::Mapping(m)) => Some(m),
            Some(other) => {
                let shown = if path.is_empty() { "(document)" } else { &path };
                problems.push(
                    shown,
                    format!("expected a mapping, got {}", describe(other)),
                );
                None
            }
        };
        Section {
            path,
            map,
            used: BTreeSet::new(),
        }
    }

    /// Whether the section was present (a mapping) in the document.
    pub fn is_present(&self) -> bool {
        self.map.is_some()
    }

    /// The key path of `key` in this section.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`, marking it as known. `null` counts as absent.
    pub fn raw(&mut self, key: &str) -> Option<&'a Value> {
        self.used.insert(key.to_owned());
        match self.map?.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// A nested section (absent or `null` gives an empty, not-present section).
    pub fn section(&mut self, key: &str, problems: &mut Problems) -> Section<'a> {
        let value = self.raw(key);
        Section::new(self.path_of(key), value, problems)
    }

    /// Reads `key` with `parse`, which returns a message on failure; records
    /// the problem and returns `None` when parsing fails or the key is absent.
    pub fn get<T>(
        &mut self,
        key: &str,
        problems: &mut Problems,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let path = self.path_of(key);
        let v = self.raw(key)?;
        match parse(v) {
            Ok(t) => Some(t),
            Err(message) => {
                problems.push(&path, message);
                None
            }
        }
    }

    /// A string (numbers and booleans are *not* coerced).
    pub fn string(&mut self, key: &str, problems: &mut Problems) -> Option<String> {
        self.get(key, problems, |v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("expected a string, got {}", describe(other))),
        })
    }

    /// A boolean.
    pub fn boolean(&mut self, key: &str, problems: &mut Problems) -> Option<bool> {
        self.get(key, problems, |v| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(format!("expected true or false, got {}", describe(other))),
        })
    }

    /// A positive integer (`>= 1`).
    pub fn positive(&mut self, key: &str, problems: &mut Problems) -> Option<usize> {
        self.get(key, problems, |v| match v.as_u64() {
            Some(n) if n >= 1 => Ok(n as usize),
            _ => Err(format!("expected a positive integer, got {}", describe(v))),
        })
    }

    /// A list of strings.
    pub fn strings(&mut self, key: &str, problems: &mut Problems) -> Option<Vec<String>> {
        self.get(key, problems, |v| match v {
            Value::Sequence(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "expected a list of strings, found {}",
                        describe(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "expected a list of strings, got {}",
                describe(other)
            )),
        })
    }

    /// A duration: `250ms`, `5s`, `1m`, `1h` (humantime) or ISO-8601 (`P1D`, `PT6H`).
    pub fn duration(&mut self, key: &str, problems: &mut Problems) -> Option<Duration> {
        self.get(key, problems, |v| match v {
            Value::String(s) => parse_duration(s),
            other => Err(format!(
                "expected a duration like \"5s\" or \"P1D\", got {}",
                describe(other)
            )),
        })
    }

    /// A size in bytes: `512KiB`, `5MiB`, `1GB`, or a plain integer of bytes.
    pub fn size(&mut self, key: &str, problems: &mut Problems) -> Option<u64> {
        self.get(key, problems, |v| match v {
            Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or(0)),
            Value::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| b.as_u64())
                .map_err(|_| format!("expected a size like \"5MiB\", got {s:?}")),
            other => Err(format!(
                "expected a size like \"5MiB\", got {}",
                describe(other)
            )),
        })
    }

    /// One of a closed set of words.
    pub fn choice<T: Copy>(
        &mut self,
        key: &str,
        problems: &mut Problems,
        choices: &[(&str, T)],
    ) -> Option<T> {
        self.get(key, problems, |v| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            match v {
                Value::String(s) => choices
                    .iter()
                    .find(|(n, _)| n == s)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| format!("expected one of {}, got {s:?}", names.join(" | "))),
                other => Err(format!(
                    "expected one of {}, got {}",
                    names.join(" | "),
                    describe(other)
                )),
            }
        })
    }

    /// Reports every key of this section that no getter asked for.
    pub fn finish(self, problems: &mut Problems) {
        let Some(map) = self.map else { return };
        for key in map.keys() {
            let name = match key {
                Value::String(s) => s.clone(),
                other => describe(other),
            };
            if !self.used.contains(&name) {
                let mut known: Vec<&str> = self.used.iter().map(String::as_str).collect();
                known.sort_unstable();
                problems.push(
                    &join(&self.path, &name),
                    format!("unknown key (known keys here: {})", known.join(", ")),
                );
            }
        }
    }
}

/// Parses `250ms`, `5s`, `1m 30s`, `1h` (humantime) or ISO-8601 durations
/// (`P1D`, `PT6H`, `P1W`; a year counts 365 days, a month 30 days).
///
/// # Errors
/// A message naming the expected forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('P').or_else(|| s.strip_prefix('p')) {
        let _ = rest;
        return match iso8601::duration(&s.to_ascii_uppercase()) {
            Ok(iso8601::Duration::Weeks(w)) => Ok(Duration::from_secs(u64::from(w) * 7 * 86_400)),
            Ok(iso8601::Duration::YMDHMS {
                year,
                month,
                day,
                hour,
                minute,
                second,
                millisecond,
            }) => {
                let secs = u64::from(year) * 365 * 86_400
                    + u64::from(month) * 30 * 86_400
                    + u64::from(day) * 86_400
                    + u64::from(hour) * 3_600
                    + u64::from(minute) * 60
                    + u64::from(second);
                Ok(Duration::from_secs(secs) + Duration::from_millis(u64::from(millisecond)))
            }
            Err(_) => Err(format!(
                "expected a duration like \"5s\" or \"P1D\", got {s:?}"
            )),
        };
    }
    humantime::parse_duration(s)
        .map_err(|_| format!("expected a duration like \"5s\" or \"P1D\", got {s:?}"))
}

/// Expands `${VAR}` and `${VAR:-default}` from `lookup`. `$$` is a literal `$`.
/// An unset `${VAR}` without default is a problem (reported with its line).
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> String {
    let mut out = String::with_capacity(text.len());
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                match body.find('}') {
                    Some(end) => {
                        let expr = &body[..end];
                        let (name, default) = match expr.split_once(":-") {
                            Some((n, d)) => (n, Some(d)),
                            None => (expr, None),
                        };
                        match (lookup(name).filter(|v| !v.is_empty()), default) {
                            (Some(v), _) => out.push_str(&v),
                            (None, Some(d)) => out.push_str(d),
                            (None, None) => problems.push(
                                &format!("line {}", lineno + 1),
                                format!("environment variable {name} is not set (use ${{{name}:-default}} for a default)"),
                            ),
                        }
                        rest = &body[end + 1..];
                    }
                    None => {
                        out.push('$');
                        rest = after;
                    }
                }
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_both_notations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("P1D"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("PT6H"), Ok(Duration::from_secs(6 * 3600)));
        assert!(parse_duration("five").is_err());
    }

    #[test]
    fn env_expansion_with_defaults_and_missing() {
        let mut p = Problems::default();
        let env = |k: &str| (k == "NODE").then(|| "n1".to_string());
        let s = expand_env(
            "a: ${NODE}\nb: ${X:-def}\nc: $$x\nd: ${MISSING}\n",
            env,
            &mut p,
        );
        assert_eq!(s, "a: n1\nb: def\nc: $x\nd: \n");
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "line 4");
    }
}
