//! `check` proves, for every job, that a formula neither divides by zero, overflows, goes
//! negative nor pays above `max_points`, and names the job that breaks it (#23). Every surface
//! that validates rules runs the same proof: `check`, `watch`, the playground's `/v1/check`
//! and `diff` (for the new side). The rule-error fixtures (`err_formula_may_*.txt`) show each
//! report in full; here the same divide-by-zero-at-37 formula goes through each surface.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::playground::Playground;
use crate::rule_errors::overlay;
use crate::util::{fixture, jobpoints_in, root};

/// The shipped rules with sdxl10 replaced by a formula whose divisor is zero at 37 steps
/// only (the fixture `err_formula_may_divide_by_zero.txt`): every file, as bytes.
fn divide_by_zero_at_37() -> BTreeMap<String, Vec<u8>> {
    let text = std::fs::read_to_string(fixture("rules/err_formula_may_divide_by_zero.txt"))
        .expect("the fixture");
    overlay(&text).files
}

fn write_rules(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// The proof's diagnostic among `diagnostics` (a JSON array), checked to name the job with
/// 37 steps, and that job as JSON.
fn names_the_job_at_37(diagnostics: &Value) -> Value {
    let d = (diagnostics.as_array().expect("diagnostics"))
        .iter()
        .find(|d| d["code"] == "formula-may-divide-by-zero")
        .unwrap_or_else(|| panic!("no formula-may-divide-by-zero in {diagnostics:#}"));
    assert_eq!(d["severity"], "error", "{d:#}");
    assert_eq!(d["file"], "families/sdxl10.toml", "{d:#}");
    let message = d["message"].as_str().unwrap();
    assert!(message.contains("steps=37"), "{message}");
    assert!(message.contains("Division by zero"), "{message}");
    assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{d:#}");
    let job: Value = serde_json::from_str(d["job"].as_str().expect("a job line")).unwrap();
    assert_eq!(job["steps"], 37, "{job}");
    assert!(job["model"].is_string(), "{job}");
    assert!(job["completed_at"].is_string(), "{job}");
    job
}

#[test]
fn check_refuses_the_formula_and_prints_the_job_on_a_line_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    write_rules(&rules, &divide_by_zero_at_37());
    let out = jobpoints_in(tmp.path())
        .args(["check", "--format", "json", "--rules", "rules"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = names_the_job_at_37(&report["diagnostics"]);
    // Among the values of a job the author knows (the kind's first example, 512x512).
    assert_eq!((&job["width"], &job["height"]), (&json!(512), &json!(512)));

    // In the human report the job is one unwrapped line, to paste as it is.
    let out = jobpoints_in(tmp.path())
        .args(["check", "--rules", "rules"])
        .output()
        .unwrap();
    let human = String::from_utf8(out.stdout).unwrap();
    let line = human
        .lines()
        .find_map(|l| l.trim().strip_prefix("job: "))
        .unwrap_or_else(|| panic!("no job line in {human}"));
    assert_eq!(serde_json::from_str::<Value>(line).unwrap(), job);
}

#[test]
fn the_shipped_rules_are_proved() {
    let out = jobpoints_in(&root())
        .args(["check", "--format", "json", "--rules", "rules"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["diagnostics"], json!([]), "{report:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn watch_reports_the_job_that_breaks_the_formula() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    write_rules(&rules, &divide_by_zero_at_37());
    let w = crate::watch_cli::start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--jobs",
        "examples/jobs.jsonl",
    ]);
    let report = w.reports(1);
    assert!(report.contains("formula-may-divide-by-zero"), "{report}");
    assert!(report.contains("steps=37"), "{report}");
}

#[test]
fn the_playground_check_reports_the_job_that_breaks_the_formula() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("rules");
    crate::util::copy_rules_to(&served);
    let pg = Playground::start(&["playground"], &served);
    // The session's files, with sdxl10 as the fixture has it.
    let mut files = pg.session_files();
    let sdxl10 = "families/sdxl10.toml";
    let edited = String::from_utf8(divide_by_zero_at_37()[sdxl10].clone()).unwrap();
    files.insert(sdxl10.to_string(), edited);
    let (status, checked) = pg.post("/v1/check", &json!({ "files": files }));
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["ok"], false);
    names_the_job_at_37(&checked["diagnostics"]);
}

#[test]
fn diff_reports_the_job_that_breaks_the_new_sides_formula() {
    let tmp = tempfile::tempdir().unwrap();
    let new = tmp.path().join("new");
    write_rules(&new, &divide_by_zero_at_37());
    let out = jobpoints_in(&root())
        .args(["diff", "rules", new.to_str().unwrap(), "--format", "json"])
        .args(["--jobs", "examples/jobs.jsonl"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["old"]["valid"], true);
    assert_eq!(report["new"]["valid"], false);
    names_the_job_at_37(&report["new"]["diagnostics"]);
}
