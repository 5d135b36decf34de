//! The network's real example jobs (tests/fixtures/example_jobs.jsonl, copied from
//! shared/data), scored under Season 1 and under the latest rules.

use crate::util::{fixture, jobpoints, with_snapshots};

fn eval_table(at: Option<&str>) -> (String, i32) {
    let path = fixture("example_jobs.jsonl");
    let mut cmd = jobpoints();
    cmd.arg("eval").args(["--format", "table"]);
    if let Some(at) = at {
        cmd.args(["--at", at]);
    }
    let out = cmd.arg(path).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

#[test]
fn real_examples_under_season_1() {
    let (table, code) = eval_table(Some("2024-05-01"));
    assert_eq!(code, 0, "every real example is a valid job");
    assert!(
        table.contains("below_threshold"),
        "the 19-step examples earn nothing"
    );
    with_snapshots(|| insta::assert_snapshot!("example_jobs_season1", table));
}

#[test]
fn real_examples_under_latest_rules() {
    let (table, code) = eval_table(None);
    // Three FLUX.1-dev presets carry no size or steps ("model defaults apply"): the rules
    // declare no defaults, so they are invalid, named, and everything else is scored.
    assert_eq!(code, 1);
    let invalid = table
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|l| l.split_whitespace().any(|w| w == "invalid"))
        .count();
    assert_eq!(invalid, 3, "{table}");
    assert!(table.contains("FLUX.1-dev"));
    with_snapshots(|| insta::assert_snapshot!("example_jobs_latest", table));
}
