//! End-to-end: the command line as users meet it — configuration errors, and
//! the README's quickstart run as a newcomer would.

mod common;

use common::*;
use std::process::Command;

#[test]
fn bad_config_exits_1_with_one_message_per_problem_naming_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    std::fs::write(
        &config,
        r#"
node_name: n1
source:
  mode: files            # needs source.paths: missing required value
  max_record_bytes: 12   # too small
kubernetes:
  metadata_grace: true   # wrong type
elasticsearch:
  endpoints: ["http://127.0.0.1:9200"]
  batch:
    max_bytes: five      # wrong type
  compresion: gzip       # unknown key (typo)
"#,
    )
    .unwrap();
    for args in [&["validate"][..], &["run"][..]] {
        let out = Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?} must exit 1");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for (path, words) in [
            ("source.paths", "required"),
            ("source.max_record_bytes", "at least"),
            ("kubernetes.metadata_grace", "expected a duration"),
            (
                "elasticsearch.batch.max_bytes",
                "expected a size like \"5MiB\", got \"five\"",
            ),
            ("elasticsearch.compresion", "unknown key"),
        ] {
            let line = stderr
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{path}:")))
                .unwrap_or_else(|| panic!("no message for {path} in:\n{stderr}"));
            assert!(line.contains(words), "{path}: {line}");
        }
        let problems = stderr.lines().filter(|l| l.starts_with("  ")).count();
        assert_eq!(problems, 5, "one line per problem:\n{stderr}");
    }
}

#[test]
fn validate_accepts_the_bundled_example_configs() {
    let root = repo_root();
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        // `*-values.yaml` are Helm values files (ECK, Elastic Cloud), not
        // daemon configs: the chart tests render and validate them.
        let helm_values = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("-values.yaml"));
        if path.extension().is_some_and(|e| e == "yaml") && !helm_values {
            let out = Command::new(binary())
                .arg("validate")
                .arg("--config")
                .arg(&path)
                .current_dir(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} does not validate: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The quickstart command, taken from README.md, run from the repository root
/// with the binary `cargo run` would build (the test's own build of it).
#[test]
fn readme_quickstart_ships_the_example_tree_to_stdout() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- "))
        .expect("README.md gives the quickstart command");
    let args: Vec<&str> = command
        .trim_start_matches("cargo run --release -- ")
        .split_whitespace()
        .collect();
    assert_eq!(&args[..2], ["run", "--once"], "{command}");
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(&args)
        .current_dir(&root)
        .env("LOGFERRY_DATA_DIR", data.path())
        .env("LOGFERRY_LISTEN", "127.0.0.1:0")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Every CRI line of every active and rotated file becomes one document
    // (P chunks joined): count F lines in the tree.
    let expected = count_full_lines(&root.join("examples/node-logs/var/log/pods"));
    assert_eq!(
        docs.len(),
        expected,
        "documents vs complete lines in the example tree"
    );
    for d in &docs {
        for field in [
            "@timestamp",
            "message",
            "stream",
            "kubernetes",
            "log",
            "host",
        ] {
            assert!(d.get(field).is_some(), "missing {field}: {d}");
        }
        assert!(d["kubernetes"]["namespace"].is_string(), "{d}");
        assert!(d["kubernetes"]["pod"]["name"].is_string(), "{d}");
        assert!(d["kubernetes"]["pod"]["uid"].is_string(), "{d}");
        assert!(d["kubernetes"]["container"]["name"].is_string(), "{d}");
        assert_eq!(d["host"]["name"], "quickstart-node");
    }
    assert!(
        docs.iter().any(|d| d["container"]["id"].is_string()),
        "container ids come from the /var/log/containers symlinks"
    );
    assert!(
        stderr.contains("metadata") && stderr.contains("path"),
        "the output says metadata comes from the path:\n{stderr}"
    );
    // A second run has nothing left to ship: checkpoints were written.
    let again = Command::new(binary())
        .args(&args)
        .current_dir(&root)
        .env("LOGFERRY_DATA_DIR", data.path())
        .env("LOGFERRY_LISTEN", "127.0.0.1:0")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&again.stdout).lines().count(), 0);
}

fn count_full_lines(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            n += count_full_lines(&path);
        } else if path.to_string_lossy().contains(".log")
            && !path.to_string_lossy().ends_with(".gz")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            n += text
                .lines()
                .filter(|l| l.split(' ').nth(2).is_some_and(|t| t.starts_with('F')))
                .count();
        }
    }
    n
}
