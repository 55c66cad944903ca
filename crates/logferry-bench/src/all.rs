//! `all`: every measuring mode, repeated, with the min / median / max of each run's headline
//! figure; writes `results/latest.json`.

use crate::{ceiling, generate, harness, idle, live, report, scale, throughput};
use anyhow::Result;
use serde::Serialize;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `all` runs, each `repeat` times.
pub struct Plan {
    /// Logical lines per generated throughput tree.
    pub lines: u64,
    /// Idle window.
    pub idle: Duration,
    /// The two live workloads: the 5 MB/s default and issue 14's `runtime` shape.
    pub live: [live::LiveOptions; 2],
    /// Documents, bulk size and bulk requests in flight of `es-ceiling`.
    pub ceiling: (u64, usize, usize),
    /// issue 14's 10,000-file catch-up and Job fan-out.
    pub scale: (scale::ScaleOptions, scale::FanoutOptions),
    /// How many times each mode runs.
    pub repeat: usize,
}

/// What `all` writes.
#[derive(Serialize)]
pub struct AllResults {
    /// The machine, the commit and the load average at the start.
    pub machine: harness::Machine,
    /// `/proc/loadavg` when the runs ended.
    pub load_average_end: String,
    /// Per named run: headline figure, its unit, and min / median / max over the repeats.
    pub summary: Vec<Headline>,
    /// Every run's full result, each with a `name`.
    pub runs: Vec<serde_json::Value>,
    /// Runs that failed: `name: error`.
    pub errors: Vec<String>,
}

/// The min / median / max of one named run's headline figure over the repeats.
#[derive(Debug, Serialize, PartialEq)]
pub struct Headline {
    /// Run name, e.g. `throughput 50x gzip on`.
    pub name: String,
    /// Headline figure, a key of the run's JSON (e.g. `mb_per_cpu_second`).
    pub figure: &'static str,
    /// Values in run order.
    pub values: Vec<f64>,
    /// Smallest value.
    pub min: f64,
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

/// The figures that tell how a run did, by mode.
fn headline_figures(mode: &str) -> &'static [&'static str] {
    match mode {
        "throughput" => &["mb_per_cpu_second", "peak_rss_mib"],
        "idle" => &["window_cpu_seconds"],
        "live" => &["cpu_us_per_line", "delay_p50_ms", "delay_p99_ms"],
        "es-ceiling" => &["docs_per_second"],
        "scale" => &[
            "mb_per_cpu_second",
            "peak_rss_mib",
            "probe_window_cpu_seconds",
        ],
        "fanout" => &["all_stored_seconds", "missing", "duplicates"],
        _ => &["cpu_seconds"],
    }
}

/// Groups `runs` by `name` (first-seen order) and summarises each group's headline figures.
pub fn summarise(runs: &[serde_json::Value]) -> Vec<Headline> {
    let mut groups: Vec<(&str, &'static str, Vec<f64>)> = Vec::new();
    for r in runs {
        let name = r["name"].as_str().unwrap_or("?");
        for &figure in headline_figures(r["mode"].as_str().unwrap_or("")) {
            let Some(v) = r[figure].as_f64() else {
                continue;
            };
            match groups.iter_mut().find(|g| g.0 == name && g.1 == figure) {
                Some(g) => g.2.push(v),
                None => groups.push((name, figure, vec![v])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(name, figure, values)| {
            let mut s = values.clone();
            s.sort_by(f64::total_cmp);
            let n = s.len();
            Headline {
                name: name.to_string(),
                figure,
                min: s[0],
                median: if n % 2 == 1 {
                    s[n / 2]
                } else {
                    (s[n / 2 - 1] + s[n / 2]) / 2.0
                },
                max: s[n - 1],
                values,
            }
        })
        .collect()
}

/// The Markdown table of [`summarise`]'s output.
pub fn table(summary: &[Headline]) -> report::Table {
    let mut t = report::Table::new("min / median / max over the repeats");
    for h in summary {
        t.row(
            format!("{} ({})", h.name, h.figure),
            format!(
                "{} / {} / {} (n = {})",
                round(h.min),
                round(h.median),
                round(h.max),
                h.values.len()
            ),
        );
    }
    t
}

fn round(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// Runs the plan; every failure is recorded, not fatal, so one broken mode still leaves the others'
/// figures.
///
/// # Errors
/// Only the generation of a tree's worker task panicking; a mode's own failure lands in `errors`.
pub async fn run(
    bins: &harness::Binaries,
    corpus: &Path,
    work: &Path,
    plan: &Plan,
    ensure_tree: impl Fn(generate::Shape, u64) -> Result<PathBuf> + Clone + Send + 'static,
) -> Result<AllResults> {
    let machine = harness::Machine::detect();
    let mut runs: Vec<serde_json::Value> = Vec::new();
    let mut errors = Vec::new();
    for round in 1..=plan.repeat {
        println!("## round {round} of {}", plan.repeat);
        let (docs, batch, concurrency) = plan.ceiling;
        record(&mut runs, &mut errors, "es-ceiling".into(), async {
            let r = ceiling::run(bins, corpus, docs, batch, concurrency, false, work).await?;
            Ok((r.table(), serde_json::to_value(&r)?))
        })
        .await;
        for (shape, gzip) in [
            (generate::Shape::Files50, false),
            (generate::Shape::Files50, true),
            (generate::Shape::Files1000, false),
        ] {
            let make = ensure_tree.clone();
            let lines = plan.lines;
            let tree = tokio::task::spawn_blocking(move || make(shape, lines)).await?;
            let name = format!(
                "throughput {} gzip {}",
                shape.name(),
                if gzip { "on" } else { "off" }
            );
            record(&mut runs, &mut errors, name, async {
                let r = throughput::run(bins, &tree?, gzip, work).await?;
                Ok((r.table(), serde_json::to_value(&r)?))
            })
            .await;
        }
        record(&mut runs, &mut errors, "idle 1000 files".into(), async {
            let r = idle::run(bins, corpus, plan.idle, work).await?;
            Ok((r.table(), serde_json::to_value(&r)?))
        })
        .await;
        record(&mut runs, &mut errors, "scale 10,000 files".into(), async {
            let r = scale::run_scale(bins, corpus, &plan.scale.0, work).await?;
            Ok((r.table(), serde_json::to_value(&r)?))
        })
        .await;
        record(&mut runs, &mut errors, "fanout".into(), async {
            let r = scale::run_fanout(bins, &plan.scale.1, work).await?;
            Ok((r.table(), serde_json::to_value(&r)?))
        })
        .await;
        for (opts, name) in plan.live.iter().zip(["live 5 MB/s", "live runtime"]) {
            record(&mut runs, &mut errors, name.into(), async {
                let r = live::run(bins, corpus, opts, work).await?;
                Ok((r.table(), serde_json::to_value(&r)?))
            })
            .await;
        }
    }
    Ok(AllResults {
        machine,
        load_average_end: harness::Machine::detect().load_average,
        summary: summarise(&runs),
        runs,
        errors,
    })
}

/// Awaits one run, prints its table, and files its JSON (with `name` added) or its error.
async fn record(
    runs: &mut Vec<serde_json::Value>,
    errors: &mut Vec<String>,
    name: String,
    run: impl Future<Output = Result<(report::Table, serde_json::Value)>>,
) {
    match run.await {
        Ok((t, mut v)) => {
            println!("{}", t.render());
            v["name"] = serde_json::Value::String(name);
            runs.push(v);
        }
        Err(e) => {
            eprintln!("{name} failed: {e:#}");
            errors.push(format!("{name}: {e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_gives_min_median_max_per_name_in_first_seen_order() {
        let runs = [
            json!({"name": "a", "mode": "throughput", "mb_per_cpu_second": 3.0, "peak_rss_mib": 40.0}),
            json!({"name": "b", "mode": "idle", "window_cpu_seconds": 0.5}),
            json!({"name": "a", "mode": "throughput", "mb_per_cpu_second": 1.0}),
            json!({"name": "a", "mode": "throughput", "mb_per_cpu_second": 2.0}),
            json!({"name": "b", "mode": "idle", "window_cpu_seconds": 0.1}),
            json!({"name": "c", "mode": "live"}),
        ];
        let s = summarise(&runs);
        assert_eq!(s.len(), 3, "a run without its figure is left out: {s:?}");
        assert_eq!(s[0].name, "a");
        assert_eq!(s[0].figure, "mb_per_cpu_second");
        assert_eq!((s[0].min, s[0].median, s[0].max), (1.0, 2.0, 3.0));
        assert_eq!(s[0].values, vec![3.0, 1.0, 2.0]);
        assert_eq!((s[1].name.as_str(), s[1].figure), ("a", "peak_rss_mib"));
        assert_eq!(s[1].values, vec![40.0], "only the run that has it");
        assert_eq!((s[2].min, s[2].median, s[2].max), (0.1, 0.3, 0.5));
        let text = table(&s).render();
        assert!(
            text.contains("| a (mb_per_cpu_second) | 1.0 / 2.0 / 3.0 (n = 3) |"),
            "{text}"
        );
    }
}
