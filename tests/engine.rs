//! Library-level behaviour: Season 1 check values, catalog coverage, determinism, and adding
//! a model without rebuilding.

use crate::util::score_record;
use jobpoints::Status;
use jobpoints::internals::{
    JobReader, PointsSum, RuleFiles, ScoreOptions, load, parse_job, parse_time,
};
use serde_json::json;

use crate::util::{fixture, jobpoints_in, shipped_rules};

fn points(job: serde_json::Value, at: &str) -> String {
    let rs = shipped_rules();
    let opts = ScoreOptions {
        at: Some(parse_time(at).unwrap()),
        explain: false,
    };
    let s = score_record(&rs, &parse_job(1, job), opts);
    assert_eq!(s.status(), Status::Ok, "{s:?}");
    s.points().to_string()
}

/// The check values of SPEC.md, table-driven.
#[test]
fn season_1_check_values() {
    let cases = [
        (
            json!({"model": "BrainDance", "width": 512, "height": 512, "steps": 20}),
            "1.000000",
        ),
        (
            json!({"model": "BrainDance", "width": 1024, "height": 1024, "steps": 20}),
            "6.000000",
        ),
        (
            json!({"model": "BrainDance", "width": 512, "height": 512, "steps": 40}),
            "2.000000",
        ),
        (
            json!({"model": "AnimagineXL", "width": 512, "height": 512, "steps": 20}),
            "1.800000",
        ),
        (
            json!({"model": "mistralai/mixtral-8x7b-instruct-v0.1", "input_tokens": 600, "output_tokens": 400}),
            "1.000000",
        ),
        (
            json!({"model": "openhermes-mixtral-8x7b-gptq", "input_tokens": 0, "output_tokens": 1000}),
            "1.000000",
        ),
        // A 2048² request on 2024-05-01 ran as 1024² (the miner's max_width/max_height were
        // 1024 until 2024-09-16T01:49:10Z; kinds.toml execution limits), and is priced so.
        (
            json!({"model": "BrainDance", "width": 2048, "height": 2048, "steps": 20}),
            "6.000000",
        ),
    ];
    for (job, want) in cases {
        assert_eq!(points(job.clone(), "2024-05-01"), want, "{job}");
    }
    // Linear beyond 1024² once the miner ran 2048² (still version 1):
    // m(2048²) = 1 + 5 * (4194304 - 262144) / 786432 = 26.
    let big = json!({"model": "BrainDance", "width": 2048, "height": 2048, "steps": 20});
    assert_eq!(points(big, "2024-09-17"), "26.000000");
}

/// Totals are exact and independent of input order.
#[test]
fn totals_do_not_depend_on_order() {
    let rs = shipped_rules();
    let text = std::fs::read_to_string(fixture("example_jobs.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let total = |lines: &[&str]| {
        let joined = lines.join("\n");
        let mut sum = PointsSum::default();
        for r in JobReader::new(joined.as_bytes()) {
            sum += score_record(&rs, &r, ScoreOptions::default()).points();
        }
        sum
    };
    let forward = total(&lines);
    lines.reverse();
    assert_eq!(total(&lines), forward);
    // A deterministic shuffle.
    let mut state = 0x2545_f491_u64;
    for i in (1..lines.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lines.swap(i, (state % (i as u64 + 1)) as usize);
    }
    assert_eq!(total(&lines), forward);
    assert!(forward.micros() > 0);
}

/// Results do not depend on which thread computes them.
#[test]
fn threads_agree() {
    let rs = std::sync::Arc::new(shipped_rules());
    let text = std::sync::Arc::new(std::fs::read_to_string(fixture("example_jobs.jsonl")).unwrap());
    let run = |rs: &jobpoints::internals::RuleSet, text: &str| {
        JobReader::new(text.as_bytes())
            .map(|r| score_record(rs, &r, ScoreOptions::default()).points())
            .collect::<Vec<_>>()
    };
    let here = run(&rs, &text);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (rs, text) = (rs.clone(), text.clone());
            std::thread::spawn(move || run(&rs, &text))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), here);
    }
}

/// Governance adds a model by dropping one TOML file into rules/: the same binary, with no
/// rebuild, prices it.
#[test]
fn adding_a_model_is_one_new_file() {
    let dir = tempfile::tempdir().unwrap();
    crate::check_cli::copy_rules(&dir.path().join("rules"));
    std::fs::write(
        dir.path().join("rules/models/my-new-model.toml"),
        r#"
[rule]
model = "MyNewModel"
family = "sdxl10"
kind = "image"

[[version]]
version = 1
effective_from = 2024-06-01
source = "test: a new SDXL checkpoint at 2x"
formula = "waifu_season1"
multiplier = 2.0
min = { pixels = 262144, steps = 20 }
examples = [{ width = 512, height = 512, steps = 20, points = 2 }]
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("job.json"),
        r#"{"id": "n1", "model": "MyNewModel", "width": 1024, "height": 1024, "steps": 20}"#,
    )
    .unwrap();
    let out = jobpoints_in(dir.path())
        .args(["eval", "job.json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let row: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(row["rule"], "MyNewModel@1");
    assert_eq!(crate::eval_cli::raw_points(&text), "12.000000");
    // Built-in rules know nothing of it.
    let loaded = load(RuleFiles::embedded());
    assert!(
        loaded
            .ruleset
            .unwrap()
            .resolve("MyNewModel", None)
            .is_no_rule()
    );
}

/// The hash covers rule files only: documentation edits do not change it, rule edits do.
#[test]
fn ruleset_hash_tracks_rule_files_only() {
    let dir = tempfile::tempdir().unwrap();
    crate::check_cli::copy_rules(dir.path());
    let before = RuleFiles::from_dir(dir.path()).unwrap().hash();
    std::fs::write(dir.path().join("README.md"), "docs").unwrap();
    std::fs::write(dir.path().join(".sd15.toml.swp"), "editor junk").unwrap();
    assert_eq!(RuleFiles::from_dir(dir.path()).unwrap().hash(), before);
    std::fs::write(dir.path().join("formulas/extra.rhai"), "1.0").unwrap();
    assert_ne!(RuleFiles::from_dir(dir.path()).unwrap().hash(), before);
    assert_eq!(
        RuleFiles::embedded().hash(),
        RuleFiles::from_dir(&crate::util::rules_dir())
            .unwrap()
            .hash()
    );
}
