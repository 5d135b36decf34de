//! `jobpoints check` and `jobpoints models` through the real binary.

use crate::util::{jobpoints, with_snapshots};

#[test]
fn shipped_rules_are_clean_even_with_deny_warnings() {
    let out = jobpoints()
        .args(["check", "--deny-warnings"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 errors, 0 warnings: ok"), "{text}");
}

#[test]
fn check_json_is_machine_readable() {
    let out = jobpoints()
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["errors"], 0);
    assert_eq!(doc["ruleset"].as_str().unwrap().len(), 64);
}

#[test]
fn check_reports_every_problem_with_codes() {
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    // Two independent problems in two files: both must be reported.
    let sd15 = dir.path().join("families/sd15.toml");
    let text = std::fs::read_to_string(&sd15)
        .unwrap()
        .replace("multiplier = 1.0", "multiplyer = 1.0");
    std::fs::write(&sd15, text).unwrap();
    let sdxl = dir.path().join("families/sdxl10.toml");
    let text = std::fs::read_to_string(&sdxl)
        .unwrap()
        .replace("multiplier = 1.8", "multiplier = 2.0");
    std::fs::write(&sdxl, text).unwrap();
    let out = jobpoints()
        .args([
            "check",
            "--format",
            "json",
            "--rules",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"unknown-field"), "{codes:?}");
    assert!(codes.contains(&"example-failed"), "{codes:?}");
    for d in doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
    {
        assert!(
            d["file"].is_string() && d["line"].is_u64() && d["column"].is_u64(),
            "{d}"
        );
    }
}

#[test]
fn models_lists_the_catalog() {
    let out = jobpoints()
        .args(["models", "--at", "2024-05-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    with_snapshots(|| insta::assert_snapshot!("models_at_2024_05_01", text));

    // dolphin-2.9-llama3-8b left the catalog on 2025-01-20: the latest rules list it unpriced.
    let out = jobpoints()
        .args(["models", "--format", "json", "--at", "2024-11-01"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dolphin = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "dolphin-2.9-llama3-8b")
        .unwrap();
    assert_eq!(dolphin["multiplier"], 0.5);
    assert_eq!(dolphin["rule"], "dolphin-2.9-llama3-8b@2");
}

/// Copies the repository's rules into `dest`.
pub fn copy_rules(dest: &std::path::Path) {
    let files = jobpoints::internals::RuleFiles::from_dir(&crate::util::rules_dir()).unwrap();
    for (rel, bytes) in &files.files {
        let path = dest.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}
