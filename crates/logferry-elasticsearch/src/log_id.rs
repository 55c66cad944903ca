//! Airflow's `log_id_template` (`[elasticsearch] log_id_template`, e.g.
//! `{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}`): parsed once,
//! rendered per Airflow task (Airflow's `ElasticsearchTaskHandler`,
//! <https://airflow.apache.org/docs/apache-airflow-providers-elasticsearch/stable/logging/index.html>).

use crate::error::Error;
use logferry_core::AirflowTask;

#[derive(Clone, PartialEq, Eq, Debug)]
enum LogIdPart {
    Text(String),
    DagId,
    TaskId,
    RunId,
    MapIndex,
    TryNumber,
    LogicalDate,
}

/// Airflow's `log_id_template`, parsed the way Airflow renders it (Python
/// `str.format`: `{name}` placeholders, `{{` and `}}` for literal braces).
/// Placeholders: `dag_id`, `task_id`, `run_id`, `map_index`, `try_number`,
/// `logical_date`, `execution_date`. The default is
/// `{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LogIdTemplate {
    text: String,
    parts: Vec<LogIdPart>,
}

impl Default for LogIdTemplate {
    fn default() -> Self {
        LogIdTemplate::parse("{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}")
            .expect("the default log_id template parses")
    }
}

impl std::str::FromStr for LogIdTemplate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        LogIdTemplate::parse(s)
    }
}

impl std::fmt::Display for LogIdTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl LogIdTemplate {
    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses a template (Python `str.format` style, `{{`/`}}` for braces).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `airflow.log_id_template`.
    pub fn parse(template: &str) -> Result<LogIdTemplate, Error> {
        let bad = |reason: String| Error::InvalidConfig {
            field: "airflow.log_id_template",
            reason,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(bad(format!("unclosed '{{' in {template:?}"))),
                        }
                    }
                    let part = match name.as_str() {
                        "dag_id" => LogIdPart::DagId,
                        "task_id" => LogIdPart::TaskId,
                        "run_id" => LogIdPart::RunId,
                        "map_index" => LogIdPart::MapIndex,
                        "try_number" => LogIdPart::TryNumber,
                        "logical_date" | "execution_date" => LogIdPart::LogicalDate,
                        other => {
                            return Err(bad(format!(
                                "unknown placeholder {{{other}}} in {template:?}; known: dag_id, task_id, run_id, map_index, try_number, logical_date, execution_date"
                            )))
                        }
                    };
                    if !text.is_empty() {
                        parts.push(LogIdPart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                }
                '}' => return Err(bad(format!("single '}}' in {template:?}"))),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(LogIdPart::Text(text));
        }
        Ok(LogIdTemplate {
            text: template.to_owned(),
            parts,
        })
    }

    /// The `log_id` of `task`.
    pub(crate) fn render(&self, task: &AirflowTask) -> String {
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                LogIdPart::Text(t) => t,
                LogIdPart::DagId => &task.dag_id,
                LogIdPart::TaskId => &task.task_id,
                LogIdPart::RunId => &task.run_id,
                LogIdPart::MapIndex if task.map_index.is_empty() => "-1",
                LogIdPart::MapIndex => &task.map_index,
                LogIdPart::TryNumber => &task.try_number,
                LogIdPart::LogicalDate => task.logical_date.as_deref().unwrap_or(""),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_id_templates_parse_and_render() {
        let t =
            LogIdTemplate::parse("{dag_id}-{task_id}-{run_id}-{map_index}-{try_number}").unwrap();
        let task = AirflowTask {
            dag_id: "d".into(),
            task_id: "t".into(),
            run_id: "manual__2025-08-12T15:05:57.691303+00:00".into(),
            try_number: "1".into(),
            map_index: "-1".into(),
            logical_date: None,
        };
        assert_eq!(
            t.render(&task),
            "d-t-manual__2025-08-12T15:05:57.691303+00:00--1-1"
        );
        let t = LogIdTemplate::parse("{{x}}{dag_id}_{execution_date}").unwrap();
        assert_eq!(
            t.render(&AirflowTask {
                logical_date: Some("2016-01-01T00:00:00+00:00".into()),
                ..task.clone()
            }),
            "{x}d_2016-01-01T00:00:00+00:00"
        );
        assert!(LogIdTemplate::parse("{dag}").is_err());
        assert!(LogIdTemplate::parse("{dag_id").is_err());
        assert!(LogIdTemplate::parse("a}b").is_err());
    }
}
