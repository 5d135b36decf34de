//! `jobpoints verify`: results made by the rules of an older commit and of the current ones,
//! mixed, verified against a repository's history; tampering, unknown rule sets, engines.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{copy_rules_to, jobpoints_in, set_sd15_v2_multiplier};

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `jobpoints ARGS` in `dir`: (stdout, stderr, exit code).
fn run(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let out = jobpoints_in(dir).args(args).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// A repository with two commits of `rules/` (sd15 version 2 pays 0.4, then 0.5), the
/// results of a ledger under each, and a work dir without `./rules`.
struct Setup {
    _tmp: tempfile::TempDir,
    repo: std::path::PathBuf,
    work: std::path::PathBuf,
    old_commit: String,
    old_hash: String,
    new_hash: String,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    copy_rules_to(&repo.join("rules"));
    // Not the built-in rules: the old results can only be found in the history.
    set_sd15_v2_multiplier(&repo.join("rules"), "0.3", "0.4");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "season rules"]);
    let old_commit = git(&repo, &["rev-parse", "HEAD"]);
    // A ledger: the synthetic mix (many SD 1.5 jobs of version 2's time), and the examples.
    let (ledger, _, code) = run(&work, &["synth", "--jobs", "5000", "--seed", "7"]);
    assert_eq!(code, 0);
    let examples =
        std::fs::read_to_string(crate::util::root().join("examples/jobs.jsonl")).unwrap();
    std::fs::write(work.join("ledger.jsonl"), format!("{ledger}{examples}")).unwrap();
    let rules = repo.join("rules");
    let rules = rules.to_str().unwrap();
    // The synthetic mix has some invalid jobs on purpose (exit 1): their results verify too.
    let (old, _, code) = run(&work, &["eval", "--rules", rules, "ledger.jsonl"]);
    assert_eq!(code, 1);
    // Also priced at one time for every job: `priced_by: "at"` results.
    let (old_at, _, code) = run(
        &work,
        &[
            "eval",
            "--rules",
            rules,
            "--at",
            "2025-01-01",
            "ledger.jsonl",
        ],
    );
    assert_eq!(code, 1);
    set_sd15_v2_multiplier(&repo.join("rules"), "0.4", "0.5");
    git(&repo, &["commit", "-qam", "sd15 v2 pays more"]);
    std::fs::write(repo.join("README"), "not a rule file\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &["commit", "-qm", "a later commit that leaves rules/ alone"],
    );
    let (new, _, code) = run(&work, &["eval", "--rules", rules, "ledger.jsonl"]);
    assert_eq!(code, 1);
    let hash = |text: &str| -> String {
        let v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        v["ruleset"].as_str().unwrap().to_string()
    };
    let (old_hash, new_hash) = (hash(&old), hash(&new));
    assert_ne!(old_hash, new_hash);
    // Mixed, job by job: old, new, old at a fixed time, in turn (still in job order).
    let mut mixed = String::new();
    for (i, ((o, n), a)) in old.lines().zip(new.lines()).zip(old_at.lines()).enumerate() {
        mixed.push_str([o, n, a][i % 3]);
        mixed.push('\n');
    }
    // And out of order: the mixed results last job first (the job file is held in memory).
    let reversed: String = mixed.lines().rev().map(|l| format!("{l}\n")).collect();
    std::fs::write(work.join("mixed.jsonl"), mixed).unwrap();
    std::fs::write(work.join("reversed.jsonl"), reversed).unwrap();
    Setup {
        _tmp: tmp,
        repo,
        work,
        old_commit,
        old_hash,
        new_hash,
    }
}

#[test]
fn verify_confirms_results_of_an_old_commit_and_the_current_rules() {
    let s = setup();
    let repo = s.repo.to_str().unwrap();
    let (out, err, code) = run(
        &s.work,
        &[
            "verify",
            "mixed.jsonl",
            "--jobs",
            "ledger.jsonl",
            "--repo",
            repo,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["results"], 5008);
    assert_eq!(doc["verified"], 5008);
    let rulesets = doc["rulesets"].as_array().unwrap();
    assert_eq!(rulesets.len(), 2, "{out}");
    let old = rulesets
        .iter()
        .find(|r| r["ruleset"] == *s.old_hash)
        .unwrap();
    assert_eq!(old["source"], "commit");
    assert_eq!(old["commit"], *s.old_commit);
    assert!(old["date"].as_str().unwrap().starts_with("20"), "{old}");
    // The commit that made the new rule set; the later one left `rules/` alone.
    let new = rulesets
        .iter()
        .find(|r| r["ruleset"] == *s.new_hash)
        .unwrap();
    assert_eq!(new["source"], "commit");
    assert_ne!(new["commit"], *s.old_commit);
    assert_eq!(new["commits"], 1, "{new}");
    assert_eq!(
        old["results"].as_u64().unwrap() + new["results"].as_u64().unwrap(),
        5008
    );
    // The hash → tree index is cached in the repository's git directory.
    let cache = std::fs::read_to_string(s.repo.join(".git/jobpoints-rules-index")).unwrap();
    assert!(
        cache.contains(&s.old_hash) && cache.contains(&s.new_hash),
        "{cache}"
    );

    // Out of order too, and on one thread: the same verdict.
    let (out, err, code) = run(
        &s.work,
        &[
            "verify",
            "reversed.jsonl",
            "--jobs",
            "ledger.jsonl",
            "--repo",
            repo,
            "--threads",
            "1",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("verified 5008 of 5008 results"), "{out}");
    assert!(
        out.contains(&format!("commit {}", &s.old_commit[..12])),
        "{out}"
    );
}

#[test]
fn a_tampered_result_fails_naming_its_line() {
    let s = setup();
    let repo = s.repo.to_str().unwrap();
    let text = std::fs::read_to_string(s.work.join("mixed.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Line 1234: one more point than it earned.
    let i = (1000..)
        .find(|&i| lines[i].contains("\"status\":\"ok\""))
        .unwrap();
    let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
    let earned = v["points"].as_f64().unwrap();
    let points = v["points"].to_string();
    let tampered = format!("{:.6}", earned + 1.0);
    lines[i] = lines[i].replace(
        &format!("\"points\":{points}"),
        &format!("\"points\":{tampered}"),
    );
    assert_ne!(lines[i], text.lines().nth(i).unwrap(), "tampered");
    // And one result that names a rule set nobody has.
    v["ruleset"] = Value::from("0".repeat(64));
    std::fs::write(s.work.join("tampered.jsonl"), lines.join("\n") + "\n").unwrap();
    let (out, err, code) = run(
        &s.work,
        &[
            "verify",
            "tampered.jsonl",
            "--jobs",
            "ledger.jsonl",
            "--repo",
            repo,
        ],
    );
    assert_eq!(code, 5, "{out}{err}");
    let line = i + 1;
    assert!(
        out.contains(&format!(
            "MISMATCH tampered.jsonl:{line} [job ledger.jsonl:{line}]"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "points: the result claims {tampered}; the rules give {earned:.6}"
        )),
        "{out}"
    );
    assert!(
        out.contains("verified 5007 of 5008 results (1 mismatched"),
        "{out}"
    );

    // A rule set found nowhere is listed, never passed: exit 6 (every job has its result).
    let mut unknown: Vec<String> = text.lines().map(String::from).collect();
    unknown[i] = serde_json::to_string(&v).unwrap();
    std::fs::write(s.work.join("unknown.jsonl"), unknown.join("\n") + "\n").unwrap();
    let (out, _, code) = run(
        &s.work,
        &[
            "verify",
            "unknown.jsonl",
            "--jobs",
            "ledger.jsonl",
            "--repo",
            repo,
        ],
    );
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains(&format!("UNKNOWN rule set {}", "0".repeat(64))),
        "{out}"
    );
    assert!(out.contains(&format!("unknown.jsonl:{line}")), "{out}");
    // Without --repo, the old commit's results cannot be found either.
    let (out, _, code) = run(
        &s.work,
        &["verify", "mixed.jsonl", "--jobs", "ledger.jsonl"],
    );
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains(&format!("UNKNOWN rule set {}", s.old_hash)),
        "{out}"
    );
}

#[test]
fn verify_pairs_by_id_and_reports_other_engines() {
    let s = setup();
    let repo = s.repo.to_str().unwrap();
    // A result paired with a job of another id is a mismatch, not a pass.
    let text = std::fs::read_to_string(s.work.join("mixed.jsonl")).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut moved = first.clone();
    moved["line"] = Value::from(2);
    let mut other = first.clone();
    other["engine"] = Value::from("jobpoints 0.0.1 (0123456789ab)");
    std::fs::write(
        s.work.join("odd.jsonl"),
        format!("{moved}\n{other}\nnot json\n"),
    )
    .unwrap();
    let (out, err, code) = run(
        &s.work,
        &[
            "verify",
            "odd.jsonl",
            "--jobs",
            "ledger.jsonl",
            "--repo",
            repo,
        ],
    );
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        out.contains("MISMATCH odd.jsonl:1 [job ledger.jsonl:2]\n    id: the result claims"),
        "{out}"
    );
    assert!(out.contains("MISMATCH odd.jsonl:3: not a result"), "{out}");
    assert!(
        out.contains("note: 1 results were made by jobpoints 0.0.1 (0123456789ab)"),
        "{out}"
    );
    // Plain results need their jobs.
    let (_, err, code) = run(&s.work, &["verify", "mixed.jsonl", "--repo", repo]);
    assert_eq!(code, 2);
    assert!(err.contains("--jobs"), "{err}");
}
