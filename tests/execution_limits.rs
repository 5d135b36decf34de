//! Pricing the work that ran (#21, part 4): the miner's clamping as dated rule data
//! (`[[jobs.image.execution_limits]]` of kinds.toml), applied before anything prices a job;
//! `--explain` shows requested vs executed; `check` and `diff` see the same executed values.

use crate::util::score_record;
use jobpoints::Status;
use jobpoints::internals::{
    Entity, Op, RuleFiles, RuleSet, ScoreOptions, diff_rules, load, parse_job,
};
use serde_json::{Value as Json, json};

use std::path::Path;

use crate::rule_errors::overlay;
use crate::util::{jobpoints, jobpoints_in, shipped_rules};

/// Scores one job with `rules`, priced at its own `completed_at` (or the latest rules).
fn score(rules: &RuleSet, job: Json) -> jobpoints::Score {
    score_record(rules, &parse_job(1, job), ScoreOptions::default())
}

fn points(rules: &RuleSet, job: Json) -> String {
    let s = score(rules, job);
    assert_eq!(s.status(), Status::Ok, "{:?} {:?}", s.reason(), s.error());
    s.points().to_string()
}

fn image(model: &str, w: i64, h: i64, steps: i64, at: Option<&str>) -> Json {
    let mut job = json!({"id": "j", "model": model, "width": w, "height": h, "steps": steps});
    if let Some(at) = at {
        job["completed_at"] = json!(at);
    }
    job
}

/// The shipped rules without their execution limits: the rules before #21 part 4.
fn rules_without_limits() -> RuleSet {
    let loaded = load(files_without_limits());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.ruleset.unwrap()
}

fn files_without_limits() -> RuleFiles {
    let mut files = RuleFiles::embedded();
    let kinds = files.text("kinds.toml").unwrap().to_string();
    let start = kinds
        .find("# What the miner actually ran.")
        .expect("kinds.toml documents its execution limits");
    let end = kinds[start..].find("# -----").map(|i| start + i).unwrap();
    let without = format!("{}{}", &kinds[..start], &kinds[end..]);
    assert!(!without.contains("execution_limits"));
    files
        .files
        .insert("kinds.toml".into(), without.into_bytes());
    // Their examples price the executed job; without limits they would fail.
    for f in ["families/sd15.toml", "families/sdxl10.toml"] {
        let text = files.text(f).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| {
                !(l.contains("width = 2048") || l.contains("1027") || l.contains("steps = 60"))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        files.files.insert(f.into(), kept.into_bytes());
    }
    files
}

fn write_rules(files: &RuleFiles, dir: &Path) {
    for (rel, bytes) in &files.files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A small dated ledger with requests above the miner's caps, in each era of its limits.
pub const OVERSIZED_LEDGER: &str = "tests/fixtures/jobs/oversized_requests.jsonl";

#[test]
fn a_2048_square_request_before_the_2048_limit_is_priced_at_1024_square() {
    let rules = shipped_rules();
    // BrainDance is SD 1.5: 1024x1024@20 is 6 points, 2048x2048@20 would be 26.
    let at = Some("2024-09-15T12:00:00Z");
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 20, at)),
        "6.000000"
    );
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 20, at)),
        points(&rules, image("BrainDance", 1024, 1024, 20, at))
    );
    // Without the limits (the rules before), it was paid 26 / 6 = 4.3x over.
    let before = rules_without_limits();
    assert_eq!(
        points(&before, image("BrainDance", 2048, 2048, 20, at)),
        "26.000000"
    );
    // The miner's limit rose to 2048 at 1dcaa7a's UTC commit time, 2024-09-16T01:49:10Z.
    let just_before = Some("2024-09-16T01:49:09Z");
    let from = Some("2024-09-16T01:49:10Z");
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 20, just_before)),
        "6.000000"
    );
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 20, from)),
        "26.000000"
    );
}

#[test]
fn width_and_height_are_rounded_down_to_a_multiple_of_8() {
    let rules = shipped_rules();
    let at = Some("2024-05-01T00:00:00Z");
    assert_eq!(
        points(&rules, image("BrainDance", 1020, 1027, 20, at)),
        points(&rules, image("BrainDance", 1016, 1024, 20, at))
    );
    assert_eq!(
        points(&rules, image("BrainDance", 1020, 1027, 20, at)),
        "5.947917"
    );
    // A size that rounds below the threshold earns nothing, saying so with the executed size.
    let s = score(&rules, image("BrainDance", 512, 515, 20, at));
    assert_eq!(s.status(), Status::Ok);
    let s = score(&rules, image("BrainDance", 519, 511, 20, at));
    assert_eq!(s.status(), Status::BelowThreshold);
    assert!(
        s.reason().unwrap().contains("pixels 258048"),
        "{:?}",
        s.reason()
    );
}

#[test]
fn steps_are_capped_at_50_then_at_35_from_2eea7cf() {
    let rules = shipped_rules();
    let sd15 = |steps, at| points(&rules, image("BrainDance", 512, 512, steps, Some(at)));
    // sd15 version 3 prices 0.3 per 512x512@20.
    assert_eq!(sd15(60, "2024-10-19T22:14:48Z"), "0.750000"); // 50 steps
    assert_eq!(sd15(60, "2024-10-19T22:14:49Z"), "0.525000"); // 35 steps
    assert_eq!(
        sd15(35, "2024-10-20T00:00:00Z"),
        sd15(60, "2024-10-20T00:00:00Z")
    );
    // Season 1 (version 1, multiplier 1): 60 steps ran as 50.
    assert_eq!(sd15(60, "2024-05-01T00:00:00Z"), "2.500000");
}

#[test]
fn an_undated_job_runs_under_the_latest_limits() {
    let rules = shipped_rules();
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 60, None)),
        points(&rules, image("BrainDance", 2048, 2048, 35, None))
    );
    // 2048x2048 is within the latest limits: priced as requested.
    assert_eq!(
        points(&rules, image("BrainDance", 2048, 2048, 20, None)),
        "7.800000"
    );
}

#[test]
fn validity_bounds_judge_the_requested_value() {
    let rules = shipped_rules();
    // 16385 is over the input's max of 16384, although the miner would have run 1024.
    let s = score(
        &rules,
        image("BrainDance", 16385, 512, 20, Some("2024-05-01")),
    );
    assert_eq!(s.status(), Status::Invalid);
    assert_eq!(s.field(), Some("width"));
}

#[test]
fn jobs_before_the_first_limits_run_as_requested() {
    // The first limits (e475d32, 2024-02-10T15:52:55Z) predate every shipped rule version,
    // so this is shown on a rule set whose version starts earlier.
    let rules = overlay(
        "--- families/sd15.toml\n[rule]\nfamily = \"sd15\"\nkind = \"image\"\n\n[[version]]\nversion = 1\neffective_from = 2024-01-01\nsource = \"test\"\nformula = \"waifu_season1\"\nmin = { pixels = 262144, steps = 20 }\nexamples = [\n  { width = 2048, height = 2048, steps = 20, points = 26 },\n  { width = 2048, height = 2048, steps = 20, at = 2024-02-11, points = 6 },\n]\n",
    );
    let loaded = load(rules);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
}

#[test]
fn explain_shows_requested_and_executed_and_the_limits_that_clamped() {
    let rules = shipped_rules();
    let job = image("BrainDance", 2048, 1027, 60, Some("2024-05-01T00:00:00Z"));
    let s = score_record(
        &rules,
        &parse_job(1, job.clone()),
        ScoreOptions {
            explain: true,
            ..ScoreOptions::default()
        },
    );
    let v = serde_json::to_value(&s).unwrap();
    let exec = &v["trace"]["execution"];
    assert_eq!(exec["kind"], "image");
    assert_eq!(exec["effective_from"], "2024-02-19T12:29:00Z");
    assert!(exec["source"].as_str().unwrap().contains("9ca67d1"));
    assert_eq!(
        exec["inputs"],
        json!([
            {"name": "width", "requested": 2048, "executed": 1024, "clamped_by": ["max 1024"]},
            {"name": "height", "requested": 1027, "executed": 1024, "clamped_by": ["multiple_of 8"]},
            {"name": "steps", "requested": 60, "executed": 50, "clamped_by": ["max 50"]},
        ])
    );
    // The trace's inputs are what the job asked for; the derived values what ran.
    assert_eq!(v["trace"]["inputs"][0], json!(["width", 2048]));
    assert_eq!(v["trace"]["derived"], json!([["pixels", 1048576]]));
    // Through the binary, as a person reads it.
    let out = jobpoints()
        .args(["eval", "--explain", "--format", "table", "-"])
        .write_stdin(job.to_string())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "limits       image execution limits in force from 2024-02-19T12:29:00Z (kinds.toml:"
        ),
        "{text}"
    );
    assert!(
        text.contains("executed     width=1024 (requested 2048: max 1024) height=1024 (requested 1027: multiple_of 8) steps=50 (requested 60: max 50)"),
        "{text}"
    );
    assert!(
        text.contains("threshold    pixels = 1048576 ≥ 262144 pass"),
        "{text}"
    );
}

#[test]
fn examples_are_priced_at_their_version_start_or_their_own_time() {
    let bad = overlay(
        "--- families/sd15.toml\n[rule]\nfamily = \"sd15\"\nkind = \"image\"\n\n[[version]]\nversion = 1\neffective_from = 2024-04-01\nsource = \"test\"\nformula = \"waifu_season1\"\nmin = { pixels = 262144, steps = 20 }\nexamples = [\n  { width = 512, height = 512, steps = 60, at = 2024-03-01, points = 2.5 },\n]\n\n[[version]]\nversion = 2\neffective_from = 2024-05-01\nsource = \"test\"\nformula = \"waifu_season1\"\nmin = { pixels = 262144, steps = 20 }\nexamples = [\n  { width = 512, height = 512, steps = 60, at = 2024-04-01, points = 2.5 },\n  { width = 512, height = 512, steps = 60, at = 2024-11-01, points = 3 },\n]\n",
    );
    let loaded = load(bad);
    let found: Vec<(String, String)> = loaded
        .diagnostics
        .iter()
        .map(|d| (d.code().to_string(), d.message().to_string()))
        .collect();
    // Outside its version's time (before it, or under the next version).
    let invalid: Vec<&(String, String)> = found
        .iter()
        .filter(|(c, _)| c == "example-invalid")
        .collect();
    assert_eq!(invalid.len(), 2, "{found:#?}");
    assert!(
        invalid[0].1.contains("when the version is not in force"),
        "{found:#?}"
    );
    // In force, at 2024-11-01: 35 steps ran, 1.75 points, not 3.
    assert!(
        found.iter().any(|(c, m)| c == "example-failed"
            && m.contains("at 2024-11-01T00:00:00Z")
            && m.contains("expected 3.000000 points, got 1.750000")),
        "{found:#?}"
    );
}

#[test]
fn check_proves_the_ceiling_on_the_executed_values() {
    // Requested, a job may be 16384x16384 at 1000 steps; what ran is at most 2048x2048 at
    // 50 steps. The most any image job that ran earns: FLUX.1-dev version 1 (x10, from
    // 2024-09-18T16:17:11Z, under the limits of 2024-09-16T01:49:10Z): 26 * 50 / 20 * 10 = 650
    // points. `check` proves the bound exactly (#23): 650 holds, 649 is broken by such a job.
    let with_ceiling = |max_points: &str| {
        load(overlay(&format!(
            "--- policy.toml\n[floors.image]\npixels = 262144\nsteps = 20\n\n[ceilings.image]\nmax_multiplier = 20\nmax_points = {max_points}\n\n[ceilings.llm]\nmax_multiplier = 4\nmax_points = 100_000\n"
        )))
    };
    let ceiling = |loaded: &jobpoints::internals::Loaded| -> Vec<String> {
        (loaded.diagnostics.iter())
            .filter(|d| d.code() == "formula-may-exceed-max")
            .map(|d| d.message().to_string())
            .collect()
    };
    let loaded = with_ceiling("650");
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    let over = ceiling(&with_ceiling("649"));
    assert_eq!(over.len(), 1, "{over:#?}");
    assert!(
        over[0].starts_with("rule `flux-dev` version 1 pays above 649 points for the job width="),
        "{over:#?}"
    );
    assert!(
        over[0].contains("(executed as width=2048, height=2048, steps=50 under the execution limits from 2024-09-16T01:49:10Z): it pays 650.000000 points"),
        "{over:#?}"
    );
}

#[test]
fn diff_reports_the_limits_as_retroactive_changes_with_windows_at_their_dates() {
    let old = rules_without_limits();
    let new = shipped_rules();
    let changes = diff_rules(&old, &new);
    let limits: Vec<_> = changes
        .iter()
        .filter(|c| c.entity == Entity::ExecutionLimits)
        .collect();
    assert_eq!(limits.len(), 4, "{limits:#?}");
    assert!(limits.iter().all(|c| c.op == Op::Added));
    assert_eq!(
        limits[2].summary(),
        "+ execution limits of job kind `image` from 2024-09-16T01:49:10Z: inputs width: multiple_of 8, max 2048; height: multiple_of 8, max 2048; steps: max 50 (new)"
    );

    // Through the binary, on a dated ledger with oversized requests.
    let dir = tempfile::tempdir().unwrap();
    write_rules(&files_without_limits(), &dir.path().join("old"));
    let ledger = crate::util::root().join(OVERSIZED_LEDGER);
    let out = jobpoints_in(dir.path())
        .args(["diff", "old"])
        .arg(crate::util::rules_dir())
        .args([
            "--format",
            "json",
            "--effective-after",
            "2026-12-01",
            "--jobs",
        ])
        .arg(&ledger)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    let retro: Vec<(&str, &Json)> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entity"] == "execution_limits")
        .map(|c| (c["subject"].as_str().unwrap(), &c["retroactive"]))
        .collect();
    // Each entry rewrites the time it is in force while image rules price (from Season 1,
    // 2024-04-01); the first was replaced before any rule priced a job.
    assert_eq!(
        retro,
        [
            (
                "execution limits of job kind `image` from 2024-02-10T15:52:55Z",
                &Json::Null
            ),
            (
                "execution limits of job kind `image` from 2024-02-19T12:29:00Z",
                &json!({"from": "2024-04-01T00:00:00Z", "until": "2024-09-16T01:49:10Z"})
            ),
            (
                "execution limits of job kind `image` from 2024-09-16T01:49:10Z",
                &json!({"from": "2024-09-16T01:49:10Z", "until": "2024-10-19T22:14:49Z"})
            ),
            (
                "execution limits of job kind `image` from 2024-10-19T22:14:49Z",
                &json!({"from": "2024-10-19T22:14:49Z", "until": null})
            ),
        ],
        "{:#}",
        report["changes"]
    );
    // The limit dates cut the windows the ledger is replayed in.
    let windows: Vec<&str> = report["impact"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    for w in [
        "sd15@1 (2024-04-01 → 2024-09-16T01:49:10Z), execution limits none → of 2024-02-19T12:29:00Z",
        "sd15@1 (2024-09-16T01:49:10Z → 2024-09-18T16:17:11Z), execution limits none → of 2024-09-16T01:49:10Z",
        "sd15@3 (since 2024-10-19T22:14:49Z), execution limits none → of 2024-10-19T22:14:49Z",
    ] {
        assert!(windows.contains(&w), "{w} not in {windows:#?}");
    }
    // The ledger's own jobs lose what never ran.
    let waifu = &report["impact"]["kinds"]["waifu"];
    assert!(
        waifu["changed"].as_u64().unwrap() > 0,
        "{:#}",
        report["impact"]
    );
}
