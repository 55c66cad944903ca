//! [`ConfigProblem`]: one thing wrong with a library's configuration.

/// One problem found by a library's configuration check (`TailConfig::problems`,
/// `KubeConfig::problems`, `ElasticsearchConfig::problems`): the key path of
/// the setting, relative to the section the library is configured from
/// (`batch.max_events`, `paths[2]`), and what is wrong with it. The daemon
/// prefixes the key with the section's own path (`elasticsearch.`) and
/// reports every problem at once.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigProblem {
    /// Dotted key path relative to the library's section, e.g. `batch.max_events`.
    pub key: String,
    /// What is wrong, e.g. `must be at least 1`.
    pub message: String,
}

impl ConfigProblem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
