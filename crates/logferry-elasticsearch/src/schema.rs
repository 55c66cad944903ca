//! Which field names documents use.

/// Document field names: the `schema` option (`ecs` or `fluentd`); see
/// <https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html> and
/// <https://github.com/fabric8io/fluent-plugin-kubernetes_metadata_filter>.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Schema {
    /// Elastic Common Schema (Filebeat's names).
    #[default]
    Ecs,
    /// Fluentd's `kubernetes_metadata` names.
    Fluentd,
}
