//! `jobpoints calibrate` through the real binary: the seed's calibration reproduced, the real
//! published benchmarks, bad rows, and proposals that `check` and the engine accept.

use std::path::Path;

use crate::util::score_record;
use jobpoints::internals::{RuleFiles, ScoreOptions, load, parse_job};
use serde_json::{Value, json};

use crate::check_cli::copy_rules;
use crate::util::{fixture, jobpoints, rules_dir, with_snapshots};

const SEED: &str = "bench/seed_three_gpus.csv";
const REAL: &str = "bench/sd_gpu_benchmarks.csv";
const BAD: &str = "bench/bad_rows.csv";
const LLM: &str = "bench/llm_two_models.csv";
/// After every shipped version, so a proposal is the latest version of its rule.
const DATE: &str = "2026-01-01";

/// Runs `calibrate --format json` and returns (exit code, document).
fn calibrate_json(args: &[&str]) -> (i32, Value) {
    let out = jobpoints()
        .arg("calibrate")
        .args(args)
        .args(["--effective-from", DATE, "--format", "json"])
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), doc)
}

fn path(rel: &str) -> String {
    fixture(rel).to_str().unwrap().to_string()
}

/// The repository's rules with the proposed rule file in place, loaded and valid.
fn rules_with(proposal: &Value) -> jobpoints::internals::RuleSet {
    rules_with_models(proposal, "")
}

/// [`rules_with`], with `models` (catalog.toml lines) added to the catalog.
fn rules_with_models(proposal: &Value, models: &str) -> jobpoints::internals::RuleSet {
    let mut files = RuleFiles::from_dir(&rules_dir()).unwrap();
    let catalog = files.text("catalog.toml").unwrap();
    assert!(catalog.contains("\n[models]\n"));
    let catalog = catalog.replacen("\n[models]\n", &format!("\n[models]\n{models}"), 1);
    files
        .files
        .insert("catalog.toml".into(), catalog.into_bytes());
    files.files.insert(
        proposal["path"].as_str().unwrap().to_string(),
        proposal["file_toml"].as_str().unwrap().as_bytes().to_vec(),
    );
    let loaded = load(files);
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    loaded
        .ruleset
        .expect("the rules with the proposal are valid")
}

/// Points and rule of one job with no time (so the latest version, the proposal, applies).
fn score(
    rules: &jobpoints::internals::RuleSet,
    model: &str,
    w: u32,
    h: u32,
    steps: u32,
) -> (String, String) {
    let job = json!({"model": model, "width": w, "height": h, "steps": steps});
    let s = score_record(rules, &parse_job(1, job), ScoreOptions::default());
    (
        s.points().to_string(),
        s.rule().unwrap_or_default().to_string(),
    )
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_seed_calibration_is_reproduced() {
    let (code, doc) = calibrate_json(&[&path(SEED)]);
    assert_eq!(code, 0, "{doc:#}");
    let cal = &doc["calibration"];

    // One ratio per GPU, exactly the announcement's.
    let mut ratios: Vec<(String, f64)> = cal["anchor_ratios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["setup"]["device"].as_str().unwrap().to_string(),
                f(&r["ratio"]),
            )
        })
        .collect();
    ratios.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [("2080 Ti", 6.92), ("3090 Ti", 5.41), ("4060 Ti", 5.85)];
    assert_eq!(ratios.len(), 3);
    for ((device, ratio), (name, want)) in ratios.iter().zip(expected) {
        assert!(device.ends_with(name), "{device}");
        assert!((ratio - want).abs() < 1e-9, "{device}: {ratio}");
    }
    let a = &cal["anchor_ratio"];
    assert_eq!(a["method"], "median");
    assert_eq!((f(&a["min"]), f(&a["max"])), (5.41, 6.92));
    assert!((f(&a["median"]) - 5.85).abs() < 1e-9);
    assert_eq!(f(&a["step"]), 0.5);
    assert_eq!(f(&a["rounded"]), 6.0);

    // Time is strictly linear in steps, through zero, on every GPU.
    let sweeps = cal["steps_sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 3);
    for s in sweeps {
        assert_eq!(s["linearity"], "linear", "{s:#}");
        assert_eq!(s["proportional"], true, "{s:#}");
        assert_eq!(f(&s["fit"]["r2"]), 1.0);
        assert_eq!(s["fit"]["distinct_x"], 4);
    }

    // Anchor 6 is Season 1: the proposal reuses the shared formula, and scores like it.
    let p = &doc["proposal"];
    assert_eq!(p["check"]["ok"], true, "{p:#}");
    assert_eq!(p["path"], "families/sd15.toml");
    assert_eq!(p["formula"], "formula = \"waifu_season1\"");
    let toml = p["version_toml"].as_str().unwrap();
    assert!(
        toml.contains("min = { pixels = 262144, steps = 20 }"),
        "{toml}"
    );
    assert!(
        toml.contains("seed_three_gpus.csv"),
        "source names the data: {toml}"
    );
    assert!(
        toml.contains("median over 3 devices"),
        "source names the method: {toml}"
    );
    let rules = rules_with(p);
    assert_eq!(
        score(&rules, "BrainDance", 512, 512, 20),
        ("1.000000".into(), "sd15@4".into())
    );
    assert_eq!(score(&rules, "BrainDance", 1024, 1024, 20).0, "6.000000");
    // Linear in steps (SD1.5 512x512@40 = 2 runs today as 35 steps, the miner's latest cap in
    // kinds.toml's execution limits, so the check uses 30).
    assert_eq!(score(&rules, "BrainDance", 512, 512, 30).0, "1.500000");
}

#[test]
fn per_setup_counts_every_engine_and_per_device_each_gpu_once() {
    // The real data's two anchor ratios are two engines on one V100.
    let (_, by_device) = calibrate_json(&[&path(REAL)]);
    let a = &by_device["calibration"]["anchor_ratio"];
    assert_eq!(
        (a["per"].as_str(), a["n"].as_u64()),
        (Some("device"), Some(1))
    );
    let devices = by_device["calibration"]["anchor_devices"]
        .as_array()
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["ratios"], 2);
    let (_, by_setup) = calibrate_json(&[&path(REAL), "--per", "setup"]);
    let a = &by_setup["calibration"]["anchor_ratio"];
    assert_eq!(
        (a["per"].as_str(), a["n"].as_u64()),
        (Some("setup"), Some(2))
    );
    assert!((f(&a["min"]) - 5.54 / 1.57).abs() < 1e-9);
    assert!((f(&a["max"]) - 6.66 / 1.57).abs() < 1e-9);
    // Either way the median is the same here, and so is the proposal.
    assert_eq!(f(&a["rounded"]), 4.0);
}

#[test]
fn every_aggregation_of_the_seed_lands_on_6() {
    for (method, value) in [("median", 5.85), ("mean", 6.06), ("midrange", 6.165)] {
        for step in ["0.5", "1"] {
            let (code, doc) =
                calibrate_json(&[&path(SEED), "--aggregate", method, "--round", step]);
            assert_eq!(code, 0);
            let a = &doc["calibration"]["anchor_ratio"];
            assert!((f(&a["value"]) - value).abs() < 1e-9, "{method}: {a}");
            assert_eq!(f(&a["rounded"]), 6.0, "{method} step {step}");
        }
    }
}

#[test]
fn a_finer_rounding_step_proposes_its_own_formula() {
    // Without rounding to 6 the proposal cannot reuse waifu_season1: an inline formula
    // through m(512²) = 1 and m(1024²) = 5.85 must still pass check and score as calibrated.
    let (code, doc) = calibrate_json(&[&path(SEED), "--round", "0.01"]);
    assert_eq!(code, 0, "{doc:#}");
    let p = &doc["proposal"];
    assert_eq!(f(&p["anchor_points"]), 5.85);
    assert!(
        p["formula"]
            .as_str()
            .unwrap()
            .contains("4.85 * (pixels - 262144)"),
        "{p:#}"
    );
    let rules = rules_with(p);
    assert_eq!(score(&rules, "BrainDance", 512, 512, 20).0, "1.000000");
    assert_eq!(score(&rules, "BrainDance", 1024, 1024, 20).0, "5.850000");
    // Within the miner's latest cap of 35 steps (kinds.toml execution limits).
    assert_eq!(score(&rules, "BrainDance", 1024, 1024, 30).0, "8.775000");
    assert_eq!(score(&rules, "BrainDance", 512, 512, 19).0, "0.000000");
}

#[test]
fn the_model_factor_becomes_the_multiplier() {
    let (code, doc) = calibrate_json(&[&path(SEED), "--model", "sdxl", "--rule-family", "sdxl10"]);
    assert_eq!(code, 0, "{doc:#}");
    let factor = &doc["calibration"]["model_factor"];
    assert_eq!(factor["n"], 3);
    assert_eq!(f(&factor["rounded"]), 1.8);
    let p = &doc["proposal"];
    assert_eq!(p["path"], "families/sdxl10.toml");
    assert_eq!(f(&p["multiplier"]), 1.8);
    let rules = rules_with(p);
    // AAMXLAnimeMix is an sdxl10 model in the catalog.
    assert_eq!(
        score(&rules, "AAMXLAnimeMix", 512, 512, 20),
        ("1.800000".into(), "sdxl10@4".into())
    );
    assert_eq!(
        score(&rules, "AAMXLAnimeMix", 1024, 1024, 20).0,
        "10.800000"
    );
}

#[test]
fn the_emitted_rule_file_passes_check() {
    // End to end on the real data: write the proposal over a copy of rules/, then check it.
    let dir = tempfile::tempdir().unwrap();
    copy_rules(dir.path());
    let rules = dir.path().to_str().unwrap();
    let out_file = dir.path().join("families/sd15.toml");
    let out = jobpoints()
        .args([
            "calibrate",
            &path(REAL),
            "--rules",
            rules,
            "--effective-from",
            DATE,
        ])
        .args(["--out", out_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&out_file).unwrap();
    let shipped = std::fs::read_to_string(rules_dir().join("families/sd15.toml")).unwrap();
    assert!(
        written.starts_with(&shipped),
        "the existing versions are kept"
    );
    assert!(written.contains("version = 3"), "{written}");
    let check = jobpoints()
        .args(["check", "--deny-warnings", "--rules", rules])
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn the_real_benchmarks_report() {
    let out = jobpoints()
        .args(["calibrate", &path(REAL), "--effective-from", DATE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = String::from_utf8(out.stdout).unwrap();
    with_snapshots(|| {
        insta::assert_snapshot!(
            "calibrate_real_benchmarks",
            format!(
                "$ jobpoints calibrate tests/fixtures/{REAL} --effective-from {DATE}\n{report}"
            )
        );
    });
    // docs/calibration.md shows this report as a console example, which tests/manual.rs runs.
}

#[test]
fn the_real_benchmarks_drop_what_cannot_be_compared() {
    let (code, doc) = calibrate_json(&[&path(REAL)]);
    assert_eq!(code, 0);
    let cal = &doc["calibration"];
    let input = &cal["inputs"][0];
    assert_eq!(input["rows"], 428);
    let dropped = cal["dropped"].as_array().unwrap();
    assert_eq!(
        input["used"].as_u64().unwrap() + dropped.len() as u64,
        428,
        "every row is used or reported"
    );
    let oom = dropped.iter().filter(|d| d["category"] == "status").count();
    assert_eq!(oom, 116, "every OOM row of the data is reported");
    // Line numbers are the file's (it has CRLF line ends): line 2 is the first data row, a CPU.
    assert_eq!(dropped[0]["line"], 2);
    assert_eq!(dropped[0]["category"], "device");
    // The anchor comes only from setups that timed both sizes at the same (if unstated) steps.
    for r in cal["anchor_ratios"].as_array().unwrap() {
        assert_eq!(r["setup"]["family"], "sd15");
        assert_eq!(r["setup"]["batch"], 1);
    }
}

#[test]
fn without_token_merging_the_real_data_has_no_anchor() {
    // Every 1024² SD 1.5 timing at batch 1 in the published data uses tomesd; excluding it
    // leaves nothing to calibrate on, and the tool says so instead of guessing.
    let (code, doc) = calibrate_json(&[&path(REAL), "--exclude-engine", "TOMESD"]);
    assert_eq!(code, 1);
    let cal = &doc["calibration"];
    assert!(cal["anchor_ratios"].as_array().unwrap().is_empty());
    let excluded = cal["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["category"] == "engine")
        .count();
    assert!(excluded > 0);
    assert!(doc["proposal"].is_null());
    assert!(
        doc["no_proposal"]
            .as_str()
            .unwrap()
            .starts_with("no setup of family `sd15` has timings at both"),
        "{doc:#}"
    );
}

#[test]
fn bad_rows_are_reported_and_skipped() {
    let (code, doc) = calibrate_json(&[&path(BAD)]);
    assert_eq!(code, 0, "bad rows are never fatal");
    let cal = &doc["calibration"];
    let dropped: Vec<(u64, &str)> = cal["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["category"].as_str().unwrap()))
        .collect();
    let expected = [
        (8, "status"),
        (9, "missing"),
        (10, "missing"),
        (11, "time"),
        (12, "time"),
        (13, "invalid"),
        (14, "invalid"),
        (15, "malformed"),
        (16, "batch"),
        (17, "device"),
        (18, "status"),
        (19, "missing"),
        (20, "invalid"),
    ];
    assert_eq!(dropped, expected);
    // What remains is the seed's three GPUs.
    assert_eq!(f(&cal["anchor_ratio"]["rounded"]), 6.0);

    let out = jobpoints()
        .args(["calibrate", &path(BAD), "--effective-from", DATE])
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    let input = std::fs::read_to_string(fixture(BAD)).unwrap();
    with_snapshots(|| {
        insta::assert_snapshot!(
            "calibrate_bad_rows",
            format!("--- {BAD} ---\n{input}--- report ---\n{report}")
        );
    });
}

#[test]
fn no_anchor_means_no_proposal_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("one_size.csv");
    std::fs::write(
        &csv,
        "device,model_family,width,height,steps,seconds_per_image\nA,sd15,512,512,20,1.0\nA,sd15,512,512,40,2.0\n",
    )
    .unwrap();
    let out = jobpoints()
        .args(["calibrate", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains(
            "No proposal: no setup of family `sd15` has timings at both 512x512 and 1024x1024"
        ),
        "{report}"
    );
}

#[test]
fn a_proposal_check_rejects_is_shown_with_exit_1() {
    // Dated before sd15's version 2: the version order check must fail, and say so.
    let out = jobpoints()
        .args(["calibrate", &path(SEED), "--effective-from", "2024-05-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("check: FAILED (1 errors"), "{report}");
    assert!(
        report.contains("error[version-order]: families/sd15.toml:"),
        "{report}"
    );
}

#[test]
fn a_new_family_is_a_new_file_and_the_report_says_it_prices_nothing() {
    let (code, doc) = calibrate_json(&[&path(SEED), "--model", "sdxl"]);
    assert_eq!(code, 0, "{doc:#}");
    let p = &doc["proposal"];
    assert_eq!(p["path"], "families/sdxl.toml");
    assert_eq!(p["appended"], false);
    assert_eq!(p["version"], 1);
    assert_eq!(p["catalog_models"], 0);
    let file = p["file_toml"].as_str().unwrap();
    assert!(
        file.contains("[rule]\nfamily = \"sdxl\"\nkind = \"image\""),
        "{file}"
    );
    rules_with(p);
}

#[test]
fn unusable_files_and_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("no_device.csv");
    std::fs::write(
        &csv,
        "gpu_name,model_family,width,height,seconds\nA,sd15,512,512,1\n",
    )
    .unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[&path(SEED), "--anchor", "512x512"],
            "must have more pixels than the baseline",
        ),
        (&[csv.to_str().unwrap()], "has no `device` column"),
        (
            &["/nonexistent/bench.csv"],
            "cannot read `/nonexistent/bench.csv`",
        ),
        (
            &[&path(SEED), "--round", "0"],
            "--round must be a positive number",
        ),
        (
            &[&path(SEED), "--baseline", "sd15:512@20"],
            "not FAMILY:WIDTHxHEIGHT@STEPS",
        ),
    ];
    for (args, message) in cases {
        let out = jobpoints().arg("calibrate").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// The SVG that `calibrate FIXTURE --chart` writes.
fn chart_of(bench: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("chart.svg");
    let out = jobpoints()
        .args([
            "calibrate",
            &path(bench),
            "--chart",
            svg_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::read_to_string(&svg_path).unwrap()
}

#[test]
fn the_chart_draws_every_setup_and_both_anchors() {
    let svg = chart_of(SEED);
    assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
    for label in [
        "RTX 4060 Ti",
        "RTX 2080 Ti",
        "RTX 3090 Ti",
        "512x512",
        "1024x1024",
        "megapixels per image",
    ] {
        assert!(svg.contains(label), "{label} missing from the chart");
    }
    // One fitted line per setup: three polylines in the three series colours at least.
    assert!(svg.matches("<polyline").count() >= 3);
}

#[test]
fn the_committed_chart_is_the_real_data_chart() {
    // docs/calibration.svg is generated from the committed real data; regenerate it with
    // the command in docs/calibration.md when the data or the chart changes.
    let fresh = chart_of(REAL);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/calibration.svg"))
            .unwrap();
    assert!(
        fresh == committed,
        "docs/calibration.svg is stale: regenerate it (see docs/calibration.md)"
    );
}

#[test]
fn llm_benchmarks_give_the_model_factor_as_multiplier() {
    let (code, doc) = calibrate_json(&[&path(LLM), "--model", "llm8b16b"]);
    assert_eq!(code, 0, "{doc:#}");
    let cal = &doc["calibration"];
    // Time is exactly proportional to input+output tokens in the fixture, on every setup.
    let sweeps = cal["sweeps"].as_array().unwrap();
    assert_eq!(sweeps.len(), 4);
    assert!(
        sweeps.iter().all(|s| s["proportional"] == true),
        "{sweeps:#?}"
    );
    let factor = &cal["model_factor"];
    assert_eq!((f(&factor["min"]), f(&factor["max"])), (0.5, 0.55));
    assert_eq!(f(&factor["rounded"]), 0.5);
    let p = &doc["proposal"];
    assert_eq!(p["path"], "families/llm8b16b.toml");
    assert_eq!(p["formula"], "formula = \"llama_season1\"");
    assert_eq!(p["check"]["ok"], true, "{p:#}");
    // A catalog model of the family without its own model rule, priced by the proposal.
    // Every such model the network listed has left the catalog (or was a redirect's name):
    // the test lists one.
    let rules = rules_with_models(p, "\"test/llama-3-8b\" = \"llm8b16b\"\n");
    let job = json!({"model": "test/llama-3-8b", "input_tokens": 812, "output_tokens": 188});
    let s = score_record(&rules, &parse_job(1, job), ScoreOptions::default());
    assert_eq!(s.points().to_string(), "0.500000");
    assert_eq!(s.rule(), Some("llm8b16b@2"));

    let out = jobpoints()
        .args(["calibrate", &path(LLM), "--model", "llm8b16b"])
        .args(["--effective-from", DATE])
        .output()
        .unwrap();
    let report = String::from_utf8(out.stdout).unwrap();
    let input = std::fs::read_to_string(fixture(LLM)).unwrap();
    with_snapshots(|| {
        insta::assert_snapshot!(
            "calibrate_llm",
            format!("--- {LLM} (--model llm8b16b) ---\n{input}--- report ---\n{report}")
        );
    });
}

#[test]
fn an_llm_model_without_a_shared_request_has_no_factor() {
    let (code, doc) = calibrate_json(&[&path(LLM), "--model", "llm70b4b"]);
    assert_eq!(code, 1);
    assert!(doc["proposal"].is_null());
    assert!(
        doc["no_proposal"]
            .as_str()
            .unwrap()
            .contains("no setup timed both `llm70b4b` and `llm8x7b4b`"),
        "{doc:#}"
    );
}

#[test]
fn image_and_llm_benchmarks_are_not_mixed() {
    let out = jobpoints()
        .args(["calibrate", &path(SEED), &path(LLM)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mix image and LLM benchmarks"));
}

#[test]
fn a_model_factor_nobody_measured_is_not_invented() {
    // The real data times SDXL only at 1024² and SD 1.5 only at 512² on the same setups:
    // no shared job, so no multiplier, so no proposal (rather than a silent 1).
    let (code, doc) = calibrate_json(&[&path(REAL), "--model", "sdxl", "--rule-family", "sdxl10"]);
    assert_eq!(code, 1);
    assert!(
        doc["calibration"]["factor_ratios"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(doc["proposal"].is_null());
    assert!(
        doc["no_proposal"]
            .as_str()
            .unwrap()
            .contains("no setup timed both `sdxl` and `sd15` on the same job"),
        "{doc:#}"
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    let csv = std::fs::read(fixture(SEED)).unwrap();
    let out = jobpoints()
        .args([
            "calibrate",
            "-",
            "--format",
            "json",
            "--effective-from",
            DATE,
        ])
        .write_stdin(csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["calibration"]["inputs"][0]["name"], "stdin");
    assert_eq!(f(&doc["calibration"]["anchor_ratio"]["rounded"]), 6.0);
}
