//! `jobpoints diff` through the real binary. Each `tests/fixtures/diff/*.txt` is a pair of
//! rule sets written as overlays over `rules/` (`=== old` and `=== new` sections in the
//! overlay form of `rule_errors.rs`; a missing `=== old` means `rules/` unchanged), diffed
//! on `tests/fixtures/diff/jobs.jsonl`; every report format is snapshotted.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jobpoints::internals::RuleFiles;
use serde_json::Value as Json;

use crate::rule_errors::overlay;
use crate::util::{fixture, jobpoints_in, rules_dir, with_snapshots};

/// Writes a rule set's files under `dir`.
fn write_rules(files: &RuleFiles, dir: &Path) {
    for (rel, bytes) in &files.files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// The overlay text of a section (`=== old` / `=== new`), if the fixture has it.
fn section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("=== {name}\n"))? + name.len() + 5;
    let rest = &text[start..];
    Some(rest.find("\n=== ").map_or(rest, |end| &rest[..=end]))
}

/// A temporary directory holding `old/`, `new/` and `jobs.jsonl` for one fixture.
fn workspace(fixture_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let old = section(fixture_text, "old")
        .map_or_else(|| RuleFiles::from_dir(&rules_dir()).unwrap(), overlay);
    let new = overlay(section(fixture_text, "new").expect("a fixture has `=== new`"));
    write_rules(&old, &dir.path().join("old"));
    write_rules(&new, &dir.path().join("new"));
    std::fs::copy(fixture("diff/jobs.jsonl"), dir.path().join("jobs.jsonl")).unwrap();
    dir
}

/// The workspace of `tests/fixtures/diff/{name}.txt`.
fn fixture_workspace(name: &str) -> tempfile::TempDir {
    let text = std::fs::read_to_string(fixture(&format!("diff/{name}.txt"))).unwrap();
    workspace(&text)
}

/// The cut-off the fixtures are diffed with: fixed, so that a version dated 2026-12-01 (the
/// fixtures' "release") is not retroactive, whatever day the tests run.
const CUTOFF: &str = "2026-12-01";

fn run_diff(dir: &Path, format: &str, extra: &[&str]) -> (String, i32) {
    let out = jobpoints_in(dir)
        .args(["diff", "old", "new", "--format", format, "--top", "5"])
        .args(["--effective-after", CUTOFF])
        .args(extra)
        .args(["--jobs", "jobs.jsonl"])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "diff wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

fn snapshot_every_fixture(format: &str) {
    with_snapshots(|| {
        insta::glob!("fixtures/diff/*.txt", |path| {
            let text = std::fs::read_to_string(path).unwrap();
            let dir = workspace(&text);
            let (report, code) = run_diff(dir.path(), format, &[]);
            let broken = path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("err_");
            assert_eq!(code, if broken { 3 } else { 0 }, "{report}");
            insta::assert_snapshot!(
                format!("diff_{format}"),
                format!(
                    "--- fixture ---\n{text}\n--- jobpoints diff old new --format {format} --top 5 --effective-after {CUTOFF} (exit {code}) ---\n{report}"
                )
            );
        });
    });
}

#[test]
fn diff_reports_human() {
    snapshot_every_fixture("human");
}

#[test]
fn diff_reports_markdown() {
    snapshot_every_fixture("markdown");
}

#[test]
fn diff_reports_json() {
    snapshot_every_fixture("json");
}

fn json_report(name: &str) -> Json {
    let dir = fixture_workspace(name);
    let (out, _) = run_diff(dir.path(), "json", &[]);
    serde_json::from_str(&out).unwrap()
}

fn changes(report: &Json) -> Vec<&Json> {
    report["changes"].as_array().unwrap().iter().collect()
}

#[test]
fn a_new_version_is_not_flagged_and_reprices_only_its_family() {
    let r = json_report("multiplier_change");
    assert_eq!(r["flagged"], 0);
    let added: Vec<_> = changes(&r)
        .into_iter()
        .filter(|c| c["entity"] == "version" && c["op"] == "added")
        .collect();
    assert_eq!(added.len(), 1, "{r:#}");
    assert!(added[0]["new"].as_str().unwrap().contains("× 2.0"));
    let impact = &r["impact"];
    let models = impact["models"].as_array().unwrap();
    for m in models {
        let changed = m["changed"].as_u64().unwrap();
        if m["model"] == "AnimagineXL" || m["model"] == "SDXL" {
            assert_eq!(changed, m["jobs"].as_u64().unwrap(), "{m}");
            // Version 3 doubles version 2's multiplier: after = 2 × before, exactly.
            let before: f64 = m["before"].as_f64().unwrap();
            let after: f64 = m["after"].as_f64().unwrap();
            assert!((after - 2.0 * before).abs() < 1e-5, "{m}");
            assert_eq!(m["delta_percent"], 100.0);
        } else {
            assert_eq!(changed, 0, "{m}");
        }
    }
}

#[test]
fn rewriting_an_existing_version_is_flagged_with_its_status_changes() {
    let r = json_report("threshold_change");
    let flagged: Vec<_> = changes(&r)
        .into_iter()
        .filter(|c| c["flag"].is_string())
        .collect();
    assert!(
        flagged
            .iter()
            .any(|c| c["field"] == "min.steps" && c["old"] == "20" && c["new"] == "25"),
        "{r:#}"
    );
    // The 20-step SD 1.5 jobs now miss the threshold; the 25-step one does not.
    let total = &r["impact"]["total"];
    assert_eq!(
        total["status_changes"]["ok → below_threshold"], 2,
        "{total}"
    );
}

#[test]
fn a_removed_model_rule_is_flagged_and_its_jobs_lose_their_price() {
    let r = json_report("removed_model");
    assert!(
        changes(&r)
            .iter()
            .any(|c| c["entity"] == "rule" && c["op"] == "removed" && c["flag"].is_string())
    );
    // theia was listed from 2024-10-17T02:46:23Z to 2025-01-16T19:59:26Z: its undated job is
    // `no_rule` from now on either way, and re-priced in that window.
    let theia = r["impact"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "theia-llama-3.1-8b")
        .unwrap();
    assert_eq!(theia["changed"], 0, "{theia}");
    let windows = r["impact"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{windows:?}");
    let w = &windows[0];
    assert_eq!(
        w["window"],
        "theia-llama-3.1-8b@1 → llm8b16b@1 (2024-10-17T02:46:23Z → 2025-01-16T19:59:26Z)"
    );
    assert_eq!(w["models"], serde_json::json!(["theia-llama-3.1-8b"]));
    assert_eq!(w["total"]["status_changes"]["ok → no_rule"], 1, "{w}");
    assert_eq!(w["total"]["after"], 0.0);
}

#[test]
fn an_edited_shared_formula_shows_its_text_diff_and_the_versions_it_reprices() {
    let r = json_report("formula_change");
    let formula = changes(&r)
        .into_iter()
        .find(|c| c["entity"] == "formula")
        .expect("formula change");
    let diff = formula["diff"].as_str().unwrap();
    assert!(diff.contains("+if m > 6.0 { m = 6.0; }"), "{diff}");
    let flag = formula["flag"].as_str().unwrap();
    assert!(
        flag.contains("sd15@1") && flag.contains("sdxl10@2"),
        "{flag}"
    );
    // Only the job above 1024² moves, and it loses points.
    let movers = r["impact"]["movers"].as_array().unwrap();
    assert_eq!(movers.len(), 1, "{movers:?}");
    assert_eq!(movers[0]["id"], "sd15-2048");
    assert!(movers[0]["delta"].as_f64().unwrap() < 0.0);
}

#[test]
fn broken_new_rules_are_reported_not_fatal() {
    let r = json_report("err_broken_new");
    assert_eq!(r["old"]["valid"], true);
    assert_eq!(r["new"]["valid"], false);
    assert!(r["new"]["diagnostics"][0]["code"].is_string());
    assert!(r["impact"].is_null());
    assert_eq!(r["files"]["modified"][0], "families/sdxl10.toml");

    // New rules that parse but fail a check: whatever loaded is still compared, field by
    // field; nothing is scored.
    let r = json_report("err_example_fails");
    assert_eq!(r["new"]["valid"], false);
    assert!(r["impact"].is_null());
    let c = changes(&r);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(
        (&c[0]["field"], &c[0]["old"], &c[0]["new"], &c[0]["line"]),
        (
            &Json::from("multiplier"),
            &Json::from("1.0"),
            &Json::from("1.5"),
            &Json::from(47)
        )
    );
}

#[test]
fn fail_on_change_exits_4_only_when_jobs_change() {
    let dir = fixture_workspace("multiplier_change");
    let (_, code) = run_diff(dir.path(), "json", &["--fail-on-change"]);
    assert_eq!(code, 4);
    // The same rules on both sides: nothing changes.
    let (out, code) = {
        let out = jobpoints_in(dir.path())
            .args([
                "diff",
                "old",
                "old",
                "--fail-on-change",
                "--jobs",
                "jobs.jsonl",
            ])
            .output()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap(),
            out.status.code().unwrap(),
        )
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no rule changes; 0 of 12 jobs change"),
        "{out}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["diff"],
        &["diff", "missing-old", "missing-new"],
        &["diff", "--base", "HEAD"], // not a git repository
        &["diff", "--head", "HEAD"], // --head needs --base
    ];
    for args in cases {
        let out = jobpoints_in(dir.path()).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn default_corpus_is_used_from_any_directory() {
    // Outside the repository there is no ./corpus: the built-in copy is scored.
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_dir();
    let out = jobpoints_in(dir.path())
        .args(["diff", "--format", "json"])
        .arg(&rules)
        .arg(&rules)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Json = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = r["impact"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "<built-in corpus>/example_jobs.jsonl",
            "<built-in corpus>/grid.jsonl",
            "<built-in corpus>/network.jsonl"
        ]
    );
    let corpus_lines: u64 = ["example_jobs.jsonl", "grid.jsonl", "network.jsonl"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(crate::util::root().join("corpus").join(f)).unwrap();
            text.lines().filter(|l| !l.trim().is_empty()).count() as u64
        })
        .sum();
    assert_eq!(r["impact"]["total"]["jobs"], corpus_lines);
    assert_eq!(r["impact"]["total"]["changed"], 0);
}

// ---------------------------------------------------------------------------------------------
// Git revisions.

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with `rules/` committed twice: as shipped, then with the new SDXL version.
fn two_commit_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    write_rules(
        &RuleFiles::from_dir(&rules_dir()).unwrap(),
        &dir.path().join("rules"),
    );
    // Not a rule file: must not be read from the revision.
    std::fs::write(dir.path().join("rules/README.md"), "notes\n").unwrap();
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "shipped rules"]);
    let text = std::fs::read_to_string(fixture("diff/multiplier_change.txt")).unwrap();
    write_rules(
        &overlay(section(&text, "new").unwrap()),
        &dir.path().join("rules"),
    );
    git(dir.path(), &["commit", "-q", "-am", "sdxl10 version 4"]);
    std::fs::copy(fixture("diff/jobs.jsonl"), dir.path().join("jobs.jsonl")).unwrap();
    dir
}

fn diff_json(dir: &Path, args: &[&str]) -> Json {
    let out = jobpoints_in(dir)
        .arg("diff")
        .args(args)
        .args(["--format", "json", "--jobs", "jobs.jsonl"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn version_added(r: &Json) -> bool {
    changes(r).iter().any(|c| {
        c["entity"] == "version" && c["op"] == "added" && c["subject"] == "rule `sdxl10` version 4"
    })
}

#[test]
fn git_revisions_are_read_from_the_repository() {
    let repo = two_commit_repo();
    let r = diff_json(repo.path(), &["--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(r["old"]["rules"], "rules/ at HEAD~1");
    assert_eq!(r["new"]["rules"], "rules/ at HEAD");
    assert!(version_added(&r), "{r:#}");
    assert_eq!(
        r["files"]["modified"],
        serde_json::json!(["families/sdxl10.toml"])
    );
    // The same rules as the files on disk: the ruleset hashes agree.
    let on_disk = RuleFiles::from_dir(&repo.path().join("rules"))
        .unwrap()
        .hash();
    assert_eq!(r["new"]["ruleset"], on_disk);

    // Without --head, the working tree's rules/ is the new side, uncommitted edits included.
    let r = diff_json(repo.path(), &["--base", "HEAD~1"]);
    assert_eq!(r["new"]["rules"], "rules");
    assert!(version_added(&r));
    std::fs::remove_file(repo.path().join("rules/families/sdxl10.toml")).unwrap();
    // A catalog family without a rule is an error unless the catalog leaves it unpriced on
    // purpose.
    let catalog = repo.path().join("rules/catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    assert!(text.contains("\n[unpriced]\n"));
    std::fs::write(
        &catalog,
        text.replace("\n[unpriced]\n", "\n[unpriced]\nsdxl10 = \"withdrawn\"\n"),
    )
    .unwrap();
    let r = diff_json(repo.path(), &["--base", "HEAD"]);
    assert_eq!(
        r["files"]["removed"],
        serde_json::json!(["families/sdxl10.toml"])
    );
    assert!(
        changes(&r)
            .iter()
            .any(|c| c["subject"] == "family rule `sdxl10`" && c["op"] == "removed")
    );

    // Like the working tree's `./rules`, `rules/` in a revision is relative to the current
    // directory: from inside `rules/` there is no `rules/rules/`, and the error says so.
    let sub = repo.path().join("rules");
    let out = jobpoints_in(&sub)
        .args([
            "diff",
            "--base",
            "HEAD",
            "--head",
            "HEAD~1",
            "--jobs",
            "../jobs.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no rules/rules/ at HEAD");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no rule files under `rules/rules/`")
    );
}

#[test]
fn an_unknown_revision_is_a_usage_error_naming_it() {
    let repo = two_commit_repo();
    let out = jobpoints_in(repo.path())
        .args(["diff", "--base", "no-such-branch", "--jobs", "jobs.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-branch"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// A large ledger streams through in bounded memory.

/// The job shapes of the generated ledger, cycled; the last one is a broken line.
const SHAPES: &[&str] = &[
    r#""model":"AnimagineXL","width":1024,"height":1024,"steps":25"#,
    r#""model":"BrainDance","width":512,"height":768,"steps":20"#,
    r#""model":"BrainDance","width":512,"height":512,"steps":19"#,
    r#""model":"mistralai/mixtral-8x7b-instruct","input_tokens":812,"output_tokens":240"#,
    r#""model":"theia-llama-3.1-8b","input_tokens":1500,"output_tokens":500"#,
];
const LEDGER_JOBS: u64 = 100_000;
/// Padding per line, so the ledger (~110 MB) is far larger than the memory bound.
const PAD: usize = 1000;
const MEMORY_BOUND_KB: u64 = 64 * 1024;

fn ledger_line(n: u64, pad: &str) -> String {
    if n % 1000 == 999 {
        return "{broken\n".to_string();
    }
    let shape = SHAPES[(n % SHAPES.len() as u64) as usize];
    format!("{{\"id\":\"{n}\",{shape},\"pad\":\"{pad}\"}}\n")
}

/// Peak resident memory of a running process, in kB (Linux).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_ledger_is_streamed_in_bounded_memory() {
    let dir = fixture_workspace("multiplier_change");
    let bin: PathBuf = assert_cmd::cargo::cargo_bin!("jobpoints").into();
    let mut child = Command::new(bin)
        .current_dir(dir.path())
        .env_remove("JOBPOINTS_RULES")
        .args([
            "diff", "old", "new", "--format", "json", "--top", "3", "--jobs", "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    // Generated on the fly: the ledger never exists whole, in the test or on disk.
    let writer = std::thread::spawn(move || {
        let pad = "x".repeat(PAD);
        let mut bytes = 0u64;
        for n in 0..LEDGER_JOBS {
            let line = ledger_line(n, &pad);
            bytes += line.len() as u64;
            stdin.write_all(line.as_bytes()).unwrap();
        }
        bytes
    });
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stdout).lines() {
            out.push_str(&line.unwrap());
            out.push('\n');
        }
        out
    });
    // Poll the child's peak memory until it exits, with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "diff did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let bytes = writer.join().unwrap();
    let out = reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        bytes > 100_000_000,
        "the ledger must dwarf the bound: {bytes} bytes"
    );
    assert!(peak > 0, "no memory reading");
    assert!(
        peak < MEMORY_BOUND_KB,
        "peak RSS {peak} kB for a {bytes}-byte ledger"
    );

    // The aggregates, against an independent count: each shape scored once, times its count.
    let r: Json = serde_json::from_str(&out).unwrap();
    let total = &r["impact"]["total"];
    assert_eq!(total["jobs"], LEDGER_JOBS);
    let broken = LEDGER_JOBS / 1000;
    let per_shape = |i: u64| {
        (0..LEDGER_JOBS)
            .filter(|n| n % 1000 != 999 && n % 5 == i)
            .count() as u64
    };
    // Only AnimagineXL (shape 0) changes: sdxl10 version 4 doubles it.
    assert_eq!(total["changed"], per_shape(0));
    let old = jobpoints::internals::load(RuleFiles::from_dir(&dir.path().join("old")).unwrap())
        .ruleset
        .unwrap();
    let new = jobpoints::internals::load(RuleFiles::from_dir(&dir.path().join("new")).unwrap())
        .ruleset
        .unwrap();
    let (mut before, mut after) = (0i128, 0i128);
    for (i, shape) in SHAPES.iter().enumerate() {
        let job: Json = serde_json::from_str(&format!("{{{shape}}}")).unwrap();
        let score = |rs: &jobpoints::internals::RuleSet| {
            crate::util::score_record(
                rs,
                &jobpoints::internals::parse_job(1, job.clone()),
                Default::default(),
            )
            .points()
            .micros() as i128
        };
        before += score(&old) * per_shape(i as u64) as i128;
        after += score(&new) * per_shape(i as u64) as i128;
    }
    let micros = |v: &Json| -> i128 {
        let p: jobpoints::Points = v.to_string().parse().unwrap();
        p.micros() as i128
    };
    assert_eq!(micros(&total["before"]), before);
    assert_eq!(micros(&total["after"]), after);
    let invalid = r["impact"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "(no model)")
        .unwrap();
    assert_eq!(invalid["jobs"], broken);
    assert_eq!(r["impact"]["movers"].as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// The walkthrough in rules/README.md shows real output: its example rule version is applied
// to a repository holding this checkout's rules/ and corpus/, and `jobpoints diff --base main`
// must print exactly what the README shows (ruleset hashes aside).

const TOML_MARK: &str = "<!-- diff-example:toml -->\n```toml\n";
const OUTPUT_MARK: &str = "<!-- diff-example:output -->\n```text\n";

fn block<'a>(text: &'a str, mark: &str) -> (usize, &'a str) {
    let start = text
        .find(mark)
        .unwrap_or_else(|| panic!("rules/README.md lacks {mark:?}"))
        + mark.len();
    let len = text[start..].find("```\n").expect("a closed block");
    (start, &text[start..start + len])
}

fn without_hashes(s: &str) -> String {
    let hash = |w: &str| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit());
    s.lines()
        .map(|l| {
            l.split(' ')
                .map(|w| if hash(w) { "[ruleset-sha256]" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const IN_PLACE_MARK: &str = "<!-- diff-example:in-place-output -->\n```text\n";

/// `jobpoints diff --base main --top 5 [ARGS]` in `repo`.
fn walkthrough_diff(repo: &Path, args: &[&str]) -> String {
    let out = jobpoints_in(repo)
        .args(["diff", "--base", "main", "--top", "5"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Checks (or, with `JOBPOINTS_WRITE_README`, rewrites) the README block after `mark`.
fn readme_block_is(readme_path: &Path, mark: &str, actual: &str) {
    if std::env::var_os("JOBPOINTS_WRITE_README").is_some() {
        let readme = std::fs::read_to_string(readme_path).unwrap();
        let (start, shown) = block(&readme, mark);
        let mut updated = readme.clone();
        updated.replace_range(start..start + shown.len(), actual);
        std::fs::write(readme_path, updated).unwrap();
    }
    let readme = std::fs::read_to_string(readme_path).unwrap();
    let (_, shown) = block(&readme, mark);
    assert!(
        without_hashes(shown) == without_hashes(actual),
        "rules/README.md shows outdated `jobpoints diff` output after {mark:?}; rewrite it with \
         `JOBPOINTS_WRITE_README=1 cargo test walkthrough` and review the diff.\nactual:\n{actual}"
    );
}

#[test]
fn the_rules_readme_walkthrough_shows_real_output() {
    let readme_path = rules_dir().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (_, toml) = block(&readme, TOML_MARK);

    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    write_rules(
        &RuleFiles::from_dir(&rules_dir()).unwrap(),
        &repo.path().join("rules"),
    );
    let corpus = repo.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    for entry in std::fs::read_dir(crate::util::root().join("corpus")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), corpus.join(entry.file_name())).unwrap();
    }
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "main"]);
    let sdxl = repo.path().join("rules/families/sdxl10.toml");
    let shipped = std::fs::read_to_string(&sdxl).unwrap();

    // The right way: a new version, released the day it takes effect.
    std::fs::write(&sdxl, format!("{shipped}\n{toml}")).unwrap();
    let actual = walkthrough_diff(repo.path(), &["--effective-after", "2026-12-01"]);
    readme_block_is(&readme_path, OUTPUT_MARK, &actual);

    // The wrong way: version 1 edited in place, diffed with no flags at all.
    let in_place = shipped
        .replacen("multiplier = 1.8", "multiplier = 2.0", 1)
        .replacen("points = 1.8 }", "points = 2 }", 1)
        .replacen("points = 10.8 }", "points = 12 }", 1);
    assert_ne!(in_place, shipped);
    std::fs::write(&sdxl, in_place).unwrap();
    let actual = walkthrough_diff(repo.path(), &[]);
    readme_block_is(&readme_path, IN_PLACE_MARK, &actual);
}

// ---------------------------------------------------------------------------------------------
// Rule-level changes the fixtures above do not cover, through the library: each case edits
// one spot of the shipped rules and names the change it must produce.

/// The shipped rules with `from` replaced by `to` in `file` (which must contain `from`).
fn edited(file: &str, from: &str, to: &str) -> jobpoints::internals::RuleSet {
    let mut files = RuleFiles::from_dir(&rules_dir()).unwrap();
    let text = files.text(file).unwrap().to_string();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    files
        .files
        .insert(file.to_string(), text.replacen(from, to, 1).into_bytes());
    let loaded = jobpoints::internals::load(files);
    let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    loaded
        .ruleset
        .unwrap_or_else(|| panic!("edit of {file} does not load: {errors:#?}"))
}

#[test]
fn every_kind_of_rule_change_is_named_and_flagged_as_it_should() {
    use jobpoints::internals::{Entity, Op};
    let shipped = crate::util::shipped_rules();
    // (file, from, to, entity, op, field, flagged)
    type Case<'a> = (&'a str, &'a str, &'a str, Entity, Op, Option<&'a str>, bool);
    let cases: &[Case] = &[
        (
            "catalog.toml",
            "\n[unpriced]\n",
            "\n[unpriced]\nllm600b = \"not offered by any miner yet\"\n",
            Entity::Model,
            Op::Added,
            Some("reason"),
            false,
        ),
        (
            "catalog.toml",
            "PepeXL = { family = \"compositexl\", since = 2024-09-18T16:17:11Z, catalog = { since = \"029\" } }",
            "PepeXL = { family = \"compositexl\", since = 2024-09-01 }",
            Entity::Model,
            Op::Changed,
            Some("window"),
            true,
        ),
        (
            "catalog.toml",
            "\n[aliases]\n",
            "\n[aliases]\nOldPepe = { model = \"PepeXL\", kind = \"gateway\", source = \"a test\" }\n",
            Entity::Alias,
            Op::Added,
            Some("alias"),
            true,
        ),
        (
            "catalog.toml",
            "\"Aurora#MagusDevon\" = { model = \"MagusDevon\", kind = \"rename\", since = 2024-05-04T01:20:37Z, catalog = { since = \"017\" }, ",
            "\"Aurora#MagusDevon\" = { model = \"MagusDevon\", kind = \"rename\", since = 2024-06-01, ",
            Entity::Alias,
            Op::Changed,
            Some("alias"),
            true,
        ),
        (
            "catalog.toml",
            "source = \"catalog 017 replaced it by MagusDevon",
            "source = \"Reworded: catalog 017 replaced it by MagusDevon",
            Entity::Alias,
            Op::Changed,
            Some("alias"),
            false,
        ),
        (
            "families/sd15.toml",
            "max = { inference_latency = 18,",
            "max = { inference_latency = 17,",
            Entity::Version,
            Op::Changed,
            Some("max.inference_latency"),
            true,
        ),
        (
            "policy.toml",
            "max_points = 2_000_000",
            "max_points = 3_000_000",
            Entity::Floor,
            Op::Changed,
            Some("max"),
            true,
        ),
        (
            "families/flux-dev.toml",
            "disabled = \"FLUX.1 [dev] is temporarily",
            "disabled = \"Reworded: FLUX.1 [dev] is temporarily",
            Entity::Version,
            Op::Changed,
            Some("disabled"),
            false,
        ),
        (
            "policy.toml",
            "steps = 20",
            "steps = 19",
            Entity::Floor,
            Op::Changed,
            Some("min"),
            true,
        ),
        (
            "policy.toml",
            "steps = 20\n",
            "",
            Entity::Floor,
            Op::Removed,
            Some("min"),
            true,
        ),
        (
            "families/flux-dev.toml",
            "effective_from = 2024-10-17T02:46:23Z",
            "effective_from = 2024-10-20",
            Entity::Version,
            Op::Changed,
            Some("effective_from"),
            true,
        ),
        (
            "families/llm70b4b.toml",
            "no_rule = \"the Season 1 multiplier for family `llm70b4b` was never recovered from the announcement, so it cannot be priced without inventing a number\"",
            "formula = \"llama_season1\"\nmultiplier = 4.0",
            Entity::Version,
            Op::Changed,
            Some("pricing"),
            true,
        ),
        (
            "families/llm70b4b.toml",
            "no_rule = \"the Season 1",
            "no_rule = \"Reworded: the Season 1",
            Entity::Version,
            Op::Changed,
            Some("no_rule"),
            false,
        ),
        (
            "families/sd15.toml",
            "source = \"A Tale of Two Points",
            "source = \"Heurist blog, A Tale of Two Points",
            Entity::Version,
            Op::Changed,
            Some("source"),
            false,
        ),
        (
            "catalog.toml",
            "PepeXL = { family = \"compositexl\"",
            "PepeXL = { family = \"sdxl10\"",
            Entity::Model,
            Op::Changed,
            Some("family"),
            true,
        ),
        (
            "catalog.toml",
            "ChilloutMix = { family = \"sd15\", since = 2024-09-18T16:17:11Z, until = 2025-01-16T19:59:26Z, catalog = { since = \"029\", until = \"044\" } }",
            "",
            Entity::Model,
            Op::Removed,
            Some("family"),
            true,
        ),
        (
            "kinds.toml",
            "pixels = \"width * height\"",
            "pixels = \"height * width\"",
            Entity::Derived,
            Op::Changed,
            Some("expr"),
            true,
        ),
        (
            "kinds.toml",
            "max = 16384",
            "max = 8192",
            Entity::Input,
            Op::Changed,
            Some("spec"),
            false,
        ),
        (
            "kinds.toml",
            "[points.llama]\ndescription = \"LLM inference.",
            "[points.llama]\ndescription = \"LLM inference (chat and completion).",
            Entity::PointKind,
            Op::Changed,
            Some("description"),
            false,
        ),
    ];
    // An alias removed: its whole line.
    let catalog = std::fs::read_to_string(rules_dir().join("catalog.toml")).unwrap();
    let redirect = (catalog.split_inclusive('\n'))
        .find(|l| l.starts_with("\"dolphin-2.9.1-llama-3-8b\" = { model ="))
        .unwrap();
    let removed: Case = (
        "catalog.toml",
        redirect,
        "",
        Entity::Alias,
        Op::Removed,
        Some("alias"),
        true,
    );
    for (file, from, to, entity, op, field, flagged) in cases.iter().chain([&removed]) {
        let new = edited(file, from, to);
        let changes = jobpoints::internals::diff_rules(&shipped, &new);
        assert_eq!(changes.len(), 1, "{file}: {from:?} → {to:?}: {changes:#?}");
        let c = &changes[0];
        assert_eq!(
            (c.entity, c.op, c.field.as_deref(), c.flag.is_some()),
            (*entity, *op, *field, *flagged),
            "{file}: {from:?} → {to:?}: {c:#?}"
        );
    }
}

#[test]
fn removing_a_version_and_editing_an_inline_formula_are_flagged() {
    use jobpoints::internals::{Entity, Op};
    let shipped = crate::util::shipped_rules();
    let file = "models/openhermes-2-pro-mistral-7b.toml";
    let text = std::fs::read_to_string(rules_dir().join(file)).unwrap();
    let second = text.match_indices("[[version]]").nth(1).unwrap().0;
    let new = edited(file, &text[second..], "");
    let changes = jobpoints::internals::diff_rules(&shipped, &new);
    assert!(
        changes.iter().any(|c| c.entity == Entity::Version
            && c.op == Op::Removed
            && c.subject.contains("version 2")
            && c.flag.is_some()),
        "{changes:#?}"
    );

    // An inline `expr` edited in place: flagged, with the text diff.
    let inline = "--- models/inline.toml\n[rule]\nmodel = \"inline-llm\"\nfamily = \"llm8x7b4b\"\nkind = \"llm\"\n\n[[version]]\nversion = 1\neffective_from = 2024-04-01\nsource = \"test\"\nexpr = \"tokens / 1000.0\"\n";
    let old = jobpoints::internals::load(overlay(inline)).ruleset.unwrap();
    let new = jobpoints::internals::load(overlay(
        &inline.replace("tokens / 1000.0", "tokens / 500.0"),
    ))
    .ruleset
    .unwrap();
    let changes = jobpoints::internals::diff_rules(&old, &new);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].field.as_deref(), Some("expr"));
    assert!(changes[0].flag.is_some());
    let diff = changes[0].diff.as_deref().unwrap();
    assert!(
        diff.contains("-tokens / 1000.0") && diff.contains("+tokens / 500.0"),
        "{diff}"
    );
}

#[test]
fn at_picks_the_versions_in_force_at_a_time() {
    // Version 4 of the fixture takes effect 2026-12-01: before that date nothing changes.
    let dir = fixture_workspace("multiplier_change");
    let changed = |at: &str| {
        let (out, code) = run_diff(dir.path(), "json", &["--at", at]);
        assert_eq!(code, 0);
        let r: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(r["at"], format!("{at}T00:00:00Z"));
        r["impact"]["total"]["changed"].as_u64().unwrap()
    };
    assert_eq!(changed("2026-11-30"), 0);
    assert_eq!(changed("2026-12-01"), 2);
    let out = jobpoints_in(dir.path())
        .args(["diff", "old", "new", "--at", "not-a-date"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`not-a-date`"));
}

#[test]
fn broken_old_rules_are_reported_and_do_not_fail_the_run() {
    let dir = fixture_workspace("err_broken_new");
    // Swapped: the broken rules are the old side, as when a PR fixes them.
    let r = diff_json(dir.path(), &["new", "old"]);
    assert_eq!(r["old"]["valid"], false);
    assert_eq!(r["new"]["valid"], true);
    assert!(r["impact"].is_null());
}

#[test]
fn a_job_file_that_cannot_be_read_is_reported_and_exits_1() {
    let dir = fixture_workspace("multiplier_change");
    // A directory opens but cannot be read.
    std::fs::create_dir(dir.path().join("a-directory.jsonl")).unwrap();
    let out = jobpoints_in(dir.path())
        .args(["diff", "old", "new", "--format", "json"])
        .args(["--jobs", "jobs.jsonl", "a-directory.jsonl"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) {
        // Platforms where opening a directory fails: a usage error naming it.
        assert!(stderr.contains("a-directory.jsonl"), "{stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reading `a-directory.jsonl` stopped"),
        "{stderr}"
    );
    let r: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["impact"]["files"][0]["jobs"], 12);
    assert!(r["impact"]["files"][1]["error"].is_string(), "{r:#}");
}

// ---------------------------------------------------------------------------------------------
// Changes in time: every affected window replayed, retroactive changes flagged (#13).

/// `jobpoints diff old new [ARGS]` in a fixture's workspace, on the built-in corpus (the
/// workspace has no `./corpus`) and with the default cut-off (now) unless `args` say otherwise.
fn diff_default_corpus(name: &str, args: &[&str]) -> (String, i32) {
    let dir = fixture_workspace(name);
    let out = jobpoints_in(dir.path())
        .args(["diff", "old", "new"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

fn windows(r: &Json) -> Vec<&Json> {
    r["impact"]["windows"].as_array().unwrap().iter().collect()
}

/// The issue's "done when" cases, each with the default corpus and no flags: the report shows
/// what the change does in the window it rewrites, and flags it retroactive.
#[test]
fn past_changes_are_replayed_in_their_window_and_flagged_retroactive() {
    with_snapshots(|| {
        for name in [
            "sdxl_season1_in_place",
            "flux_model_rule_in_the_past",
            "catalog_entry_without_since",
        ] {
            let (report, code) = diff_default_corpus(name, &[]);
            assert_eq!(code, 0, "{report}");
            insta::assert_snapshot!(format!("diff_default_corpus_{name}"), report);
        }
    });

    // Season 1 SDXL edited in place: the corpus jobs dated in Season 1 move at their own
    // times (counted exactly in `corpus::impact`), and replayed in the Season 1 window every
    // priced SDXL job of the corpus, dated or not, gains exactly 2.0 / 1.8 - 1 = 11.11%.
    let (out, _) = diff_default_corpus("sdxl_season1_in_place", &["--format", "json"]);
    let r: Json = serde_json::from_str(&out).unwrap();
    let own_times = r["impact"]["total"]["changed"].as_u64().unwrap();
    assert!(own_times > 0);
    assert_eq!(r["cutoff"]["given"], false);
    let w = windows(&r);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        w[0]["window"],
        "sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z)"
    );
    assert_eq!(w[0]["retroactive"], true);
    assert!(
        w[0]["total"]["changed"].as_u64() > Some(own_times),
        "{:#}",
        w[0]
    );
    assert_eq!(w[0]["kinds"]["waifu"]["delta_percent"], 11.11);
    let multiplier = changes(&r)
        .into_iter()
        .find(|c| c["field"] == "multiplier")
        .unwrap();
    assert_eq!(
        multiplier["retroactive"],
        serde_json::json!({"from": "2024-04-01T00:00:00Z", "until": "2024-09-18T16:17:11Z"})
    );
    assert_eq!(multiplier["line"], 12);
    assert_eq!(r["retroactive"], 1);

    // The FLUX model rule dated 2024-10-18 prices jobs its family's version disabled then.
    let (out, _) = diff_default_corpus("flux_model_rule_in_the_past", &["--format", "json"]);
    let r: Json = serde_json::from_str(&out).unwrap();
    let version = changes(&r)
        .into_iter()
        .find(|c| c["entity"] == "version" && c["op"] == "added")
        .unwrap();
    assert_eq!(
        version["retroactive"]["from"], "2024-10-18T00:00:00Z",
        "{version}"
    );
    let w = windows(&r);
    assert_eq!(
        (w[0]["old"].as_str(), w[0]["new"].as_str()),
        (Some("flux-dev@2"), Some("FLUX.1-dev@1"))
    );
    assert!(w[0]["total"]["status_changes"]["disabled → ok"].as_u64() > Some(0));

    // A catalog entry without `since` prices the model from its family's first version; no
    // corpus job runs it, and the report says so instead of "no change".
    let (out, _) = diff_default_corpus("catalog_entry_without_since", &["--format", "json"]);
    let r: Json = serde_json::from_str(&out).unwrap();
    let model = changes(&r)
        .into_iter()
        .find(|c| c["entity"] == "model")
        .unwrap();
    assert_eq!(
        model["retroactive"]["from"], "2024-04-01T00:00:00Z",
        "{model}"
    );
    let w = windows(&r);
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(w.iter().all(|w| w["total"]["jobs"] == 0), "{w:#?}");
    let (human, _) = diff_default_corpus("catalog_entry_without_since", &[]);
    assert!(human.contains("no corpus job exercises it"), "{human}");
}

#[test]
fn fail_on_retroactive_exits_7_and_follows_the_cut_off() {
    // (Exit 7 on the default corpus, and its message: see the acknowledgement test below.)
    // Version 4 starts 2026-12-01: released that day it rewrites nothing, a day later it
    // rewrites a day of jobs.
    let dir = fixture_workspace("multiplier_change");
    let run = |cutoff: &str| {
        let out = jobpoints_in(dir.path())
            .args([
                "diff",
                "old",
                "new",
                "--jobs",
                "jobs.jsonl",
                "--format",
                "json",
            ])
            .args(["--fail-on-retroactive", "--effective-after", cutoff])
            .output()
            .unwrap();
        let r: Json = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), r)
    };
    let (code, r) = run("2026-12-01");
    assert_eq!((code, &r["retroactive"]), (0, &Json::from(0)), "{r:#}");
    let (code, r) = run("2026-12-02");
    assert_eq!((code, &r["retroactive"]), (7, &Json::from(1)), "{r:#}");
    assert_eq!(r["cutoff"]["time"], "2026-12-02T00:00:00Z");
    // --fail-on-change still sees a change that only a window shows.
    let (_, code) = diff_default_corpus("sdxl_season1_in_place", &["--fail-on-change"]);
    assert_eq!(code, 4);
}

#[test]
fn markdown_links_each_change_to_its_line_under_link_base() {
    let (md, _) = diff_default_corpus(
        "sdxl_season1_in_place",
        &[
            "--format",
            "markdown",
            "--link-base",
            "https://example.com/o/r/blob/abc123/rules/",
        ],
    );
    let link = "[`families/sdxl10.toml:12`](https://example.com/o/r/blob/abc123/rules/families/sdxl10.toml#L12)";
    // Once in the retroactive block (first), once in the list of changes.
    assert_eq!(md.matches(link).count(), 2, "{md}");
    assert!(md.find("[!CAUTION]") < md.find("<details>"), "{md}");
    // Without it, the place is plain text.
    let (md, _) = diff_default_corpus("sdxl_season1_in_place", &["--format", "markdown"]);
    assert!(md.contains("(`families/sdxl10.toml:12`)"), "{md}");
    assert!(!md.contains("](http"), "{md}");
}

#[test]
fn unexercised_models_are_named_and_movers_say_when_they_were_priced() {
    let (out, _) = diff_default_corpus("catalog_entry_without_since", &["--format", "json"]);
    let r: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["impact"]["not_exercised"],
        serde_json::json!(["JuggernautXL"])
    );

    // Version 4 of the multiplier fixture starts 2026-12-01: a job dated after it moves and
    // says when it was priced; an undated one is priced by the latest version.
    let dir = fixture_workspace("multiplier_change");
    std::fs::write(
        dir.path().join("dated.jsonl"),
        concat!(
            r#"{"id":"dated","model":"SDXL","width":1024,"height":1024,"steps":20,"completed_at":"2026-12-05T10:00:00Z"}"#,
            "\n",
            r#"{"id":"undated","model":"SDXL","width":1024,"height":1024,"steps":30}"#,
            "\n",
            r#"{"id":"before","model":"SDXL","width":1024,"height":1024,"steps":20,"completed_at":"2026-11-05T10:00:00Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = jobpoints_in(dir.path())
        .args([
            "diff",
            "old",
            "new",
            "--jobs",
            "dated.jsonl",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r: Json = serde_json::from_slice(&out.stdout).unwrap();
    let movers: Vec<(&str, &Json)> = r["impact"]["movers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), &m["priced_at"]))
        .collect();
    assert_eq!(
        movers,
        [
            ("undated", &Json::Null),
            ("dated", &Json::from("2026-12-05T10:00:00Z"))
        ]
    );
}

/// Jobs of three miners (and one without) around the sd15 threshold of `threshold_change`.
const MINERS: &str = r#"{"id":"a1","miner":"alice","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-11-02T10:00:00Z"}
{"id":"a2","miner":"alice","model":"BrainDance","width":1024,"height":1024,"steps":20,"completed_at":"2024-11-03T10:00:00Z"}
{"id":"b1","miner":"bob","model":"BrainDance","width":1024,"height":1024,"steps":25,"completed_at":"2024-11-02T10:00:00Z"}
{"id":"b2","miner":"bob","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-10-01T10:00:00Z"}
{"id":"c1","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-11-02T10:00:00Z"}
{"id":"d1","miner":"dave","model":"mistralai/mixtral-8x7b-instruct","input_tokens":812,"output_tokens":240}
"#;

#[test]
fn by_miner_sums_exactly_and_ranks_gainers_and_losers() {
    let dir = fixture_workspace("threshold_change");
    std::fs::write(dir.path().join("miners.jsonl"), MINERS).unwrap();
    let run = |by: &str| -> Json {
        let out = jobpoints_in(dir.path())
            .args([
                "diff",
                "old",
                "new",
                "--jobs",
                "miners.jsonl",
                "--format",
                "json",
            ])
            .args(["--by", by, "--top", "1"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = run("miner");
    let g = &r["impact"]["groups"];
    // alice, bob, the job without a miner (`-`), dave: each with one point kind.
    assert_eq!(
        (&g["groups"], &g["changed"]),
        (&Json::from(4), &Json::from(2)),
        "{g:#}"
    );
    assert_eq!(g["gainers"], serde_json::json!([]));
    // Only the biggest loser with --top 1: both of alice's 20-step jobs of November fall
    // below the new 25-step threshold (0.3 + 1.8 points); bob's October job is priced by
    // version 2 and keeps its points.
    let losers = g["losers"].as_array().unwrap();
    assert_eq!(losers.len(), 1);
    assert_eq!(losers[0]["group"], serde_json::json!(["alice"]));
    assert_eq!(losers[0]["kind"], "waifu");
    assert_eq!(
        (losers[0]["before"].as_f64(), losers[0]["after"].as_f64()),
        (Some(2.1), Some(0.0))
    );
    assert_eq!(losers[0]["status_changes"]["ok → below_threshold"], 2);
    // Two dimensions: alice's two days are two groups.
    let r = run("miner,day");
    let g = &r["impact"]["groups"];
    assert_eq!(g["by"], serde_json::json!(["miner", "day"]));
    assert_eq!(g["changed"], 3, "{g:#}");
    assert_eq!(
        g["losers"][0]["group"],
        serde_json::json!(["alice", "2024-11-03"])
    );
    // For people: the section's head, and a table row.
    let out = jobpoints_in(dir.path())
        .args([
            "diff",
            "old",
            "new",
            "--jobs",
            "miners.jsonl",
            "--by",
            "miner",
        ])
        .output()
        .unwrap();
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(
        human.contains(
            "By miner and point kind, each job at its own time: 4 groups, 2 change\n  Top gainers: none\n  Top losers\n"
        ),
        "{human}"
    );
    assert!(
        human.contains("    alice  waifu     2        2  2.100000  0.000000  -2.100000  -100.00%"),
        "{human}"
    );
    // Without --by there is no such section.
    let (out, _) = run_diff(dir.path(), "json", &[]);
    let r: Json = serde_json::from_str(&out).unwrap();
    assert!(r["impact"].get("groups").is_none());
}

/// `diff` scores its corpus on several threads through the ordered pool: the report (totals,
/// movers and their ties, windows, groups) is the same for any number of threads.
#[test]
fn the_report_is_the_same_on_any_number_of_threads() {
    for name in ["sdxl_season1_in_place", "multiplier_change"] {
        let run = |threads: &str| {
            diff_default_corpus(
                name,
                &[
                    "--format",
                    "json",
                    "--top",
                    "25",
                    "--by",
                    "miner",
                    "--effective-after",
                    CUTOFF,
                    "--threads",
                    threads,
                ],
            )
        };
        let (one, code_one) = run("1");
        let report: Json = serde_json::from_str(&one).unwrap();
        assert!(
            report["impact"]["total"]["changed"].as_u64().unwrap() > 0,
            "{name}: the fixture must move jobs for this test to mean something"
        );
        for threads in ["2", "5"] {
            let (many, code_many) = run(threads);
            assert_eq!(code_one, code_many, "{name}");
            assert!(
                one == many,
                "{name}: --threads {threads} differs from --threads 1"
            );
        }
    }
}

/// A retroactive change fails `--fail-on-retroactive` until each version whose past windows it
/// rewrites is acknowledged; the error names every window still unacknowledged (#23).
#[test]
fn a_retroactive_change_fails_until_each_rewritten_version_is_acknowledged() {
    let dir = fixture_workspace("sdxl_season1_in_place");
    let run = |ack: &[&str]| {
        let out = jobpoints_in(dir.path())
            .args(["diff", "old", "new", "--fail-on-retroactive"])
            .args(ack)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("retroactive and not acknowledged: window sdxl10@1 (2024-04-01"),
        "{err}"
    );
    let (code, err) = run(&["--acknowledge-retroactive", "flux-dev@1"]);
    assert_eq!(code, 7, "another version acknowledges nothing here: {err}");
    let (code, err) = run(&["--acknowledge-retroactive", "flux-dev@1,sdxl10@1"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, _) = run(&["--acknowledge-retroactive", "all"]);
    assert_eq!(code, 0);
}

/// The shipped pull-request workflow fails on a retroactive change unless the PR description
/// acknowledges it: its `acks=` line, run on a description, gives the versions it lists.
#[test]
fn the_rules_pr_workflow_reads_acknowledgements_from_the_pr_description() {
    let workflow =
        std::fs::read_to_string(crate::util::root().join(".github/workflows/rules-pr.yml"))
            .unwrap();
    assert!(
        workflow.contains("--fail-on-retroactive \"${ack[@]}\""),
        "{workflow}"
    );
    let acks = workflow
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("acks="))
        .expect("the workflow's acks= line");
    let body = "Raises SDXL.\r\n\r\nretroactive-ok: sdxl10@1\r\nretroactive-ok:flux-dev@2 (season 1 fix)\nnot retroactive-ok: x@1\n`$(touch pwned)`\n";
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("{acks}\nprintf '%s' \"$acks\""))
        .env("PR_BODY", body)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "sdxl10@1,flux-dev@2"
    );
    assert!(
        !dir.path().join("pwned").exists(),
        "the description is data, never run"
    );
}
