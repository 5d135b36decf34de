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
    // The 19-step examples are ChilloutMix's, a model the catalog listed from 2024-09-18 to
    // 2025-01-16: in Season 1 it is not priced at all, and the reason says when it is.
    let chillout: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("ChilloutMix"))
        .collect();
    assert!(!chillout.is_empty());
    for l in &chillout {
        assert!(
            l.contains("no_rule")
                && l.contains("in the catalog only from 2024-09-18T16:17:11Z (catalog 029")
                && l.contains("not yet at this time"),
            "{l}"
        );
    }
    with_snapshots(|| insta::assert_snapshot!("example_jobs_season1", table));
}

#[test]
fn real_examples_under_latest_rules() {
    let (table, code) = eval_table(None);
    // FLUX.1-dev is disabled in the latest rules: its presets are `disabled`, whatever they
    // carry (three carry no size or steps, "model defaults apply"), and every job is scored.
    assert_eq!(code, 0);
    let rows = |status: &str| {
        table
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .filter(|l| l.split_whitespace().any(|w| w == status))
            .count()
    };
    assert_eq!(rows("invalid"), 0, "{table}");
    assert!(rows("disabled") >= 3, "{table}");
    // ChilloutMix left the catalog on 2025-01-16: none of its examples is priced now.
    let chillout: Vec<&str> = (table.lines())
        .filter(|l| l.contains("ChilloutMix"))
        .collect();
    assert!(
        chillout.len() >= 2
            && chillout
                .iter()
                .all(|l| l.contains("no_rule") && l.contains("not in the latest rules")),
        "{chillout:?}"
    );
    // While FLUX.1-dev was priced (version 1), the presets without a size are invalid, named.
    let (flux_v1, code) = eval_table(Some("2024-10-01"));
    assert_eq!(code, 1);
    let rows = |status: &str| {
        (flux_v1.lines())
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .filter(|l| l.split_whitespace().any(|w| w == status))
            .count()
    };
    assert!(
        rows("below_threshold") >= 2,
        "the 19-step examples earn nothing: {flux_v1}"
    );
    let invalid: Vec<&str> = (flux_v1.lines())
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|l| l.split_whitespace().any(|w| w == "invalid"))
        .collect();
    assert_eq!(invalid.len(), 3, "{flux_v1}");
    assert!(
        invalid.iter().all(|l| l.contains("FLUX.1-dev")),
        "{invalid:?}"
    );
    with_snapshots(|| insta::assert_snapshot!("example_jobs_latest", table));
}
