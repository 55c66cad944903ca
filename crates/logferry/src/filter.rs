//! Record filters: include/exclude globs on `namespace/pod/container` and
//! `min_level`.

use globset::{GlobSet, GlobSetBuilder};
use logferry_core::{Level, Record};

/// Include/exclude globs on `namespace/pod/container`, decided once per file.
pub struct Selector {
    include: GlobSet,
    exclude: GlobSet,
}

fn build(globs: &[String]) -> Result<GlobSet, globset::Error> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        // `*` must not cross `/`: `ns/*/*` means one pod, one container.
        b.add(
            globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()?,
        );
    }
    b.build()
}

impl Selector {
    /// Compiles the globs (validated with the configuration).
    ///
    /// # Errors
    /// A glob that does not compile.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Selector, globset::Error> {
        Ok(Selector {
            include: build(include)?,
            exclude: build(exclude)?,
        })
    }

    /// Whether records of `namespace/pod/container` are shipped.
    pub fn accepts(&self, namespace: &str, pod: &str, container: &str) -> bool {
        let key = format!("{namespace}/{pod}/{container}");
        self.include.is_match(&key) && !self.exclude.is_match(&key)
    }
}

/// Removes records below `min` from `records` (records without a detectable
/// level are kept). Returns how many were removed.
pub fn retain_min_level(records: &mut Vec<Record>, min: Level) -> usize {
    let before = records.len();
    records.retain(|r| Level::detect(&r.message).is_none_or(|l| l >= min));
    before - records.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use logferry_core::{RecordFlags, Stream};

    #[test]
    fn globs_match_whole_segments() {
        let s = Selector::new(
            &["*/*/*".into()],
            &["kube-system/*/*".into(), "*/*/istio-proxy".into()],
        )
        .unwrap();
        assert!(s.accepts("default", "web-1", "app"));
        assert!(!s.accepts("kube-system", "coredns-1", "coredns"));
        assert!(!s.accepts("default", "web-1", "istio-proxy"));
        let only = Selector::new(&["airflow/*/base".into()], &[]).unwrap();
        assert!(only.accepts("airflow", "task-1", "base"));
        assert!(!only.accepts("airflow", "task-1", "sidecar"));
    }

    #[test]
    fn min_level_keeps_unknown_levels() {
        let rec = |m: &'static str| Record {
            start: 0,
            end: 1,
            timestamp_nanos: 0,
            stream: Stream::Stdout,
            flags: RecordFlags::NONE,
            message: Bytes::from_static(m.as_bytes()),
        };
        let mut v = vec![
            rec("DEBUG x"),
            rec("INFO y"),
            rec("no level"),
            rec(r#"{"level":"error"}"#),
        ];
        assert_eq!(retain_min_level(&mut v, Level::Info), 1);
        assert_eq!(v.len(), 3);
    }
}
