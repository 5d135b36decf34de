//! `jobpoints eval` through the real binary.

use crate::util::{fixture, jobpoints, jobpoints_in, root, with_snapshots};

fn stdout_of(args: &[&str]) -> (String, i32) {
    let out = jobpoints().args(args).output().expect("run jobpoints");
    (
        String::from_utf8(out.stdout).expect("utf-8"),
        out.status.code().unwrap_or(-1),
    )
}

fn parse_jsonl(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).expect("each output line is JSON");
            // Keep the exact text of `points` (a JSON number with 6 decimals) for assertions.
            v["points_text"] = raw_points(l).into();
            v
        })
        .collect()
}

/// The literal text of the `points` number in one output line.
pub fn raw_points(line: &str) -> String {
    let start = line.find("\"points\":").expect("points field") + "\"points\":".len();
    line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect()
}

#[test]
fn readme_command_scores_the_shipped_examples() {
    let (out, code) = stdout_of(&["eval", "--format", "table", "examples/jobs.jsonl"]);
    assert_eq!(code, 0);
    with_snapshots(|| insta::assert_snapshot!("eval_examples_table", out));
}

#[test]
fn jsonl_has_the_contract_fields_in_input_order() {
    let (out, code) = stdout_of(&["eval", "examples/jobs.jsonl"]);
    assert_eq!(code, 0);
    let rows = parse_jsonl(&out);
    let input_lines = std::fs::read_to_string(root().join("examples/jobs.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(rows.len(), input_lines);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1);
        for field in [
            "id", "model", "status", "kind", "points", "rule", "ruleset", "line",
        ] {
            assert!(r.get(field).is_some(), "missing `{field}` in {r}");
        }
    }
    // Season 1: BrainDance 512x768@28 = (1 + 5*131072/786432) * 28/20.
    assert_eq!(rows[0]["points_text"], "2.566667");
    assert_eq!(rows[0]["rule"], "sd15@1");
    // The network's job-assignment shape is read through `from` paths.
    assert_eq!(rows[5]["id"], "j6");
    assert_eq!(rows[5]["status"], "ok");
}

#[test]
fn bad_lines_are_invalid_and_the_rest_is_scored() {
    let path = fixture("jobs/bad.jsonl");
    let out = jobpoints()
        .args(["eval", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "any invalid job makes the exit code 1"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = parse_jsonl(&text);
    let jobs = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(rows.len(), jobs, "results out = jobs in");
    let ok: Vec<_> = rows
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ok, ["ok-1", "ok-2"]);
    for r in rows.iter().filter(|r| r["status"] == "invalid") {
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        assert!(r["line"].as_u64().unwrap() >= 1);
    }
    with_snapshots(|| {
        insta::with_settings!({ description => "input: tests/fixtures/jobs/bad.jsonl" }, {
            insta::assert_snapshot!("eval_bad_jsonl", text);
        })
    });
}

#[test]
fn json_array_and_single_document() {
    let (out, code) = stdout_of(&["eval", fixture("jobs/array.json").to_str().unwrap()]);
    assert_eq!(code, 1, "the string element is invalid");
    let rows = parse_jsonl(&out);
    let lines: Vec<u64> = rows.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(
        lines,
        [2, 3, 4, 5],
        "each element names the line it starts on"
    );
    assert_eq!(rows[2]["status"], "invalid");
    assert_eq!(rows[3]["points_text"], "6.000000");

    let (out, code) = stdout_of(&["eval", fixture("jobs/single.json").to_str().unwrap()]);
    assert_eq!(code, 0);
    let rows = parse_jsonl(&out);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], "7");
    assert_eq!(rows[0]["points_text"], "1.052000");
}

#[test]
fn stdin_is_read_with_dash() {
    let out = jobpoints()
        .args(["eval", "-"])
        .write_stdin("{\"model\":\"BrainDance\",\"width\":1024,\"height\":1024,\"steps\":20,\"completed_at\":\"2024-05-01\"}\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let rows = parse_jsonl(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(rows[0]["points_text"], "6.000000");
}

#[test]
fn formats_json_csv_and_explain() {
    let file = "examples/jobs.jsonl";
    let (json, code) = stdout_of(&["eval", "--format", "json", file]);
    assert_eq!(code, 0);
    let arr: serde_json::Value = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(arr.as_array().unwrap().len(), 8);

    let (csv, _) = stdout_of(&["eval", "--format", "csv", file]);
    assert_eq!(csv.lines().count(), 9, "header + one row per job");
    assert!(csv.starts_with("line,id,model,miner,status,kind,family,rule,points,reason,ruleset"));

    let (explained, _) = stdout_of(&["eval", "--explain", "--format", "table", file]);
    with_snapshots(|| insta::assert_snapshot!("eval_examples_explain", explained));

    let (jsonl, _) = stdout_of(&["eval", "--explain", file]);
    let first = &parse_jsonl(&jsonl)[0];
    assert_eq!(first["trace"]["formula"], "waifu_season1");
    assert_eq!(first["trace"]["derived"][0][0], "pixels");
}

#[test]
fn at_overrides_job_times_and_no_time_means_latest() {
    let job = "{\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n";
    let run = |args: &[&str]| {
        let out = jobpoints().args(args).write_stdin(job).output().unwrap();
        parse_jsonl(&String::from_utf8(out.stdout).unwrap()).remove(0)
    };
    let latest = run(&["eval", "-"]);
    assert_eq!(latest["rule"], "sd15@3");
    assert_eq!(latest["points_text"], "0.300000");
    let season1 = run(&["eval", "--at", "2024-05-01", "-"]);
    assert_eq!(season1["rule"], "sd15@1");
    assert_eq!(season1["points_text"], "1.000000");
    let before = run(&["eval", "--at", "2024-03-01", "-"]);
    assert_eq!(before["status"], "no_rule");
    assert!(before["reason"].as_str().unwrap().contains("2024-04-01"));
}

#[test]
fn usage_errors_exit_2() {
    let out = jobpoints()
        .args(["eval", "no/such/file.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.jsonl"));
    assert!(
        out.stdout.is_empty(),
        "nothing is written when an input cannot be opened"
    );

    let out = jobpoints()
        .args(["eval", "--at", "someday", "examples/jobs.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = jobpoints()
        .args(["eval", "--rules", "no/such/dir", "examples/jobs.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn invalid_rules_exit_3_and_score_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kinds.toml"), "[points.waifu\n").unwrap();
    let out = jobpoints()
        .args([
            "eval",
            "--rules",
            dir.path().to_str().unwrap(),
            "examples/jobs.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("toml-syntax"), "{err}");
    assert!(err.contains("kinds.toml"), "{err}");
}

#[test]
fn binary_works_from_any_directory_with_built_in_rules() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = root().join("examples/jobs.jsonl");
    let out = jobpoints_in(dir.path())
        .args(["eval", jobs.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let from_dir = stdout_of(&["eval", "examples/jobs.jsonl"]).0;
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        from_dir,
        "built-in rules are the repository's rules: same points, same hash"
    );
}
