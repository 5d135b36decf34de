//! Hardening III, the files half (#22): diagnostics of huge or long-lined rule files,
//! `verify` of tampered results, CSV and Parquet bombs, markdown injection, `merge`.

use std::path::Path;
use std::time::{Duration, Instant};

use jobpoints::internals::render_human;
use jobpoints::rules::diagnostic::{Code, Diagnostic, LineIndex};

use crate::util::{copy_rules_to, fixture, jobpoints_in};

/// A copy of the shipped rules whose sd15 description is 70,000 `x` and a stray token: a
/// TOML error on column 70,018 (#22, item 1).
fn rules_with_a_long_line(dir: &Path) {
    copy_rules_to(dir);
    let sd15 = dir.join("families/sd15.toml");
    let text = std::fs::read_to_string(&sd15).unwrap().replacen(
        "description = \"Stable Diffusion 1.5 checkpoint models.\"",
        &format!("description = \"{}\" stray", "x".repeat(70_000)),
        1,
    );
    std::fs::write(&sd15, text).unwrap();
}

#[test]
fn a_diagnostic_on_a_line_past_65535_columns_is_cut_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    rules_with_a_long_line(&bad);
    copy_rules_to(&tmp.path().join("good"));
    std::fs::copy(fixture("jobs/single.json"), tmp.path().join("jobs.jsonl")).unwrap();
    let runs: [&[&str]; 3] = [
        &["check", "--rules", "bad"],
        &["eval", "--rules", "bad", "jobs.jsonl"],
        &["diff", "good", "bad", "--jobs", "jobs.jsonl"],
    ];
    for args in runs {
        let out = jobpoints_in(tmp.path()).args(args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {all}");
        // The snippet shows the stray token, cut around it, with the true column.
        assert!(
            all.contains("families/sd15.toml:5:70018"),
            "{args:?}: {all}"
        );
        let snippet = all.lines().find(|l| l.contains("\" stray")).expect(&all);
        assert!(
            snippet.contains('…') && snippet.len() < 400,
            "{args:?}: {snippet}"
        );
    }
}

/// `n` diagnostics spread over a `bytes`-long file of short lines, one per line.
fn many_diagnostics(bytes: usize, n: usize) -> (String, Vec<Diagnostic>) {
    let line = "  { width = 512, height = 512, steps = 20, points = 7 },\n";
    let text = line.repeat(bytes / line.len());
    let lines = LineIndex::new(&text);
    let every = (bytes / line.len() / n).max(1);
    let diagnostics = (0..n)
        .map(|i| {
            let at = (i * every * line.len()).min(text.len());
            Diagnostic::error(Code::ExampleFailed, "expected 7 points, got 1").at_indexed(
                "families/big.toml",
                &text,
                &lines,
                Some(at + 2..at + line.len() - 2),
            )
        })
        .collect();
    (text, diagnostics)
}

#[test]
fn rendering_diagnostics_is_linear_in_the_file_size() {
    // 4,000 diagnostics in a 1 MiB file: quadratic rendering (a copy and a scan of the file
    // per diagnostic) took minutes; one index per file and an excerpt per diagnostic, ~1 s.
    let (text, diagnostics) = many_diagnostics(1 << 20, 4_000);
    let started = Instant::now();
    let report = render_human(&diagnostics, &|_| Some(text.clone()));
    let took = started.elapsed();
    assert_eq!(report.matches("example-failed").count(), 4_000);
    let last = diagnostics.last().unwrap().location();
    assert!(
        report.contains(&format!("[{last}]")),
        "{last}: line numbers are the file's"
    );
    assert!(took < Duration::from_secs(20), "rendering took {took:?}");
}

/// `jobpoints ARGS` in `dir`: (stdout, stderr, exit code).
fn run(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let out = jobpoints_in(dir).args(args).output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// A work dir with `jobs.jsonl` (`n` synthetic jobs) and their `results.jsonl`.
fn jobs_and_results(n: usize) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let (jobs, _, code) = run(
        tmp.path(),
        &["synth", "--jobs", &n.to_string(), "--seed", "3"],
    );
    assert_eq!(code, 0);
    std::fs::write(tmp.path().join("jobs.jsonl"), jobs).unwrap();
    let (results, err, code) = run(
        tmp.path(),
        &["eval", "--invalid-exit-code", "0", "jobs.jsonl"],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(tmp.path().join("results.jsonl"), results).unwrap();
    tmp
}

fn verify_lines(dir: &Path, lines: &[&str]) -> (String, i32) {
    std::fs::write(dir.join("edited.jsonl"), lines.join("\n") + "\n").unwrap();
    let (out, err, code) = run(dir, &["verify", "edited.jsonl", "--jobs", "jobs.jsonl"]);
    (format!("{out}{err}"), code)
}

#[test]
fn verify_matches_results_to_jobs_one_to_one() {
    let tmp = jobs_and_results(9);
    let results = std::fs::read_to_string(tmp.path().join("results.jsonl")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(lines.len(), 9);
    let (out, code) = verify_lines(tmp.path(), &lines);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified 9 of 9 results"), "{out}");

    // A duplicated result line: the second copy is a mismatch naming the first.
    let mut dup = lines.clone();
    dup.insert(4, lines[3]);
    let (out, code) = verify_lines(tmp.path(), &dup);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("edited.jsonl:5"), "{out}");
    assert!(
        out.contains(
            "a second result for the job at line 4 of the job file (the first is edited.jsonl:4)"
        ),
        "{out}"
    );
    assert!(
        out.contains("verified 9 of 10 results (1 mismatched"),
        "{out}"
    );

    // A deleted result line: its job is a mismatch, with the job's line.
    let mut deleted = lines.clone();
    deleted.remove(6);
    let (out, code) = verify_lines(tmp.path(), &deleted);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("jobs.jsonl:7"), "{out}");
    assert!(out.contains("a job without a result"), "{out}");
    assert!(
        out.contains("(1 mismatched, 0 with an unknown rule set); 1 job without a result"),
        "{out}"
    );

    // Shuffled (here: reversed) results still pair one to one.
    let reversed: Vec<&str> = lines.iter().rev().copied().collect();
    let (out, code) = verify_lines(tmp.path(), &reversed);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn verify_of_reversed_results_is_not_quadratic() {
    // 20k results reversed re-read the job file per result: 12 s in release. Held in memory
    // once, it is as fast as in order (a debug build: a few seconds either way).
    let n = 20_000;
    let tmp = jobs_and_results(n);
    let results = std::fs::read_to_string(tmp.path().join("results.jsonl")).unwrap();
    let mut lines: Vec<&str> = results.lines().collect();
    let timed = |lines: &[&str]| {
        let started = Instant::now();
        let (out, code) = verify_lines(tmp.path(), lines);
        assert_eq!(code, 0, "{}", &out[..out.len().min(2000)]);
        assert!(
            out.contains(&format!("verified {n} of {n} results")),
            "{out}"
        );
        started.elapsed()
    };
    let in_order = timed(&lines);
    lines.reverse();
    let reversed = timed(&lines);
    assert!(
        reversed < in_order * 4 + Duration::from_secs(2),
        "in order {in_order:?}, reversed {reversed:?}"
    );
}

#[test]
fn a_decision_priced_before_it_was_received_does_not_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let job = r#"{"id":"d1","model":"BluePencilRealistic","width":512,"height":768,"steps":35,"miner":"0xabc"}"#;
    std::fs::write(tmp.path().join("job.jsonl"), format!("{job}\n")).unwrap();
    // The job priced in May 2024 (sd15 version 1, before the 0.3 multiplier), as a server
    // pricing it when received would have.
    let (result, err, code) = run(
        tmp.path(),
        &["eval", "--at", "2024-05-01T00:00:00Z", "job.jsonl"],
    );
    assert_eq!(code, 0, "{err}");
    let mut result: serde_json::Value = serde_json::from_str(result.trim()).unwrap();
    result["priced_by"] = "received".into();
    let record = |received_at: &str| {
        serde_json::json!({
            "decision_id": "x-1",
            "schema_version": 1,
            "received_at": received_at,
            "engine": result["engine"],
            "ruleset": result["ruleset"],
            "input": serde_json::from_str::<serde_json::Value>(job).unwrap(),
            "result": result,
        })
        .to_string()
    };
    // Received in that second: verifies.
    std::fs::write(
        tmp.path().join("honest.jsonl"),
        record("2024-05-01T00:00:00.731Z") + "\n",
    )
    .unwrap();
    let (out, err, code) = run(tmp.path(), &["verify", "honest.jsonl"]);
    assert_eq!(code, 0, "{out}{err}");
    // Received in 2025 but priced as of 2024 (rule and points match that time): backdated.
    std::fs::write(
        tmp.path().join("backdated.jsonl"),
        record("2025-06-01T12:00:00.000Z") + "\n",
    )
    .unwrap();
    let (out, err, code) = run(tmp.path(), &["verify", "backdated.jsonl"]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        out.contains("`priced_at` 2024-05-01T00:00:00Z is not when the server received the job"),
        "{out}"
    );
}

#[test]
fn a_stray_quote_in_a_csv_costs_one_record_not_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,model,width,height,steps\n");
    csv.push_str("ok,BrainDance,512,512,20\n");
    csv.push_str("\"stray,BrainDance,512,512,20\n");
    for i in 0..20_000 {
        csv.push_str(&format!("j{i},BrainDance,512,512,20\n"));
    }
    std::fs::write(tmp.path().join("jobs.csv"), &csv).unwrap();
    let (out, err, code) = run(
        tmp.path(),
        &["eval", "--invalid-exit-code", "0", "jobs.csv"],
    );
    assert_eq!(code, 0, "{err}");
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 20_002, "one result per record read");
    assert_eq!(results[1]["line"], 3);
    assert_eq!(results[1]["status"], "invalid", "{err}");
    let why = results[1]["error"].as_str().unwrap();
    assert!(why.contains("line 3") && why.contains("stray"), "{why}");
    assert!(results[2..].iter().all(|r| r["status"] == "ok"));
    assert_eq!(results.last().unwrap()["line"], 20_003);

    let tally = [
        "tally",
        "--format",
        "json",
        "--invalid-exit-code",
        "0",
        "jobs.csv",
    ];
    let (out, err, code) = run(tmp.path(), &tally);
    assert_eq!(code, 0, "{err}");
    let tally: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tally["total"]["jobs"], 20_002, "{out}");
}

/// A git repository whose `rules/` changed in `commits` commits, each writing 1 MiB of new
/// text (four 256 KiB `.toml` files), made in one `git fast-import`.
fn repo_with_history(dir: &Path, commits: usize) {
    use std::io::Write;
    let git = |args: &[&str]| {
        let mut git = std::process::Command::new("git");
        git.arg("-C").arg(dir).args(args);
        git
    };
    assert!(git(&["init", "-q"]).status().unwrap().success());
    let mut import = git(&["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = import.stdin.take().unwrap();
    // Text no two commits share (a linear congruential generator), so every blob is new.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for c in 0..commits {
        writeln!(
            stdin,
            "commit refs/heads/main\ncommitter t <t@example.com> {} +0000\ndata 1\nc",
            1_700_000_000 + c
        )
        .unwrap();
        for f in 0..4 {
            let text: String = (0..256 * 1024)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    char::from(b'a' + (state >> 59) as u8 % 26)
                })
                .collect();
            writeln!(
                stdin,
                "M 100644 inline rules/f{f}.toml\ndata {}",
                text.len()
            )
            .unwrap();
            writeln!(stdin, "{text}").unwrap();
        }
    }
    drop(stdin);
    assert!(import.wait().unwrap().success());
}

/// Peak RSS in kB of `jobpoints ARGS` in `dir`, and its exit code.
fn peak_rss_kb_in(dir: &Path, args: &[&str]) -> (u64, i32) {
    let out = jobpoints_in(dir)
        .args(args)
        .env("JOBPOINTS_REPORT_PEAK_RSS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let kb = err
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss "))
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss in {err}"));
    (kb, out.status.code().unwrap_or(-1))
}

#[test]
fn verify_streams_the_history_of_the_rules() {
    // A result whose rule set is nowhere: `--repo` hashes every tree of the history. Holding
    // every blob (#22: 300 commits of 0.92 MB, 298 MB) grows with the history; streamed,
    // 48 MiB of history costs what 2 MiB do.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("jobs/single.json"), tmp.path().join("job.jsonl")).unwrap();
    let (result, err, code) = run(tmp.path(), &["eval", "job.jsonl"]);
    assert_eq!(code, 0, "{err}");
    let mut result: serde_json::Value = serde_json::from_str(result.trim()).unwrap();
    result["ruleset"] = "0".repeat(64).into();
    std::fs::write(tmp.path().join("result.jsonl"), format!("{result}\n")).unwrap();
    let rss = |commits: usize| {
        let repo = tmp.path().join(format!("repo{commits}"));
        std::fs::create_dir(&repo).unwrap();
        repo_with_history(&repo, commits);
        let repo = repo.to_str().unwrap();
        let (kb, code) = peak_rss_kb_in(
            tmp.path(),
            &[
                "verify",
                "result.jsonl",
                "--jobs",
                "job.jsonl",
                "--repo",
                repo,
            ],
        );
        assert_eq!(code, 6, "the rule set is found nowhere");
        kb
    };
    let (small, large) = (rss(2), rss(48));
    eprintln!("verify --repo peak RSS: 2 commits {small} kB, 48 commits of 1 MiB {large} kB");
    assert!(
        large < small + 16 * 1024,
        "2 commits: {small} kB, 48 commits of 1 MiB: {large} kB"
    );
}

/// A `notes` value built to break out of its code span: a blank line, `</details>`, a
/// heading and an image (#22, item 10).
const INJECTED_NOTES: &str =
    "x\n\n</details>\n\n# Injected heading\n\n<img src=https://evil.example/p.png>\n";

/// A copy of `rules` at `dir` whose sd15 version 2 has [`INJECTED_NOTES`].
fn rules_with_injected_notes(dir: &Path) {
    copy_rules_to(dir);
    let sd15 = dir.join("families/sd15.toml");
    let text = std::fs::read_to_string(&sd15).unwrap();
    let from = "notes = \"Version 2's pricing, and a job that took more than 18 s earns nothing (over_limit). A job that reports no latency is not timed out.\"";
    assert!(
        text.contains(from),
        "sd15 version 2 changed: update the test"
    );
    let to = format!("notes = {}", toml_string(INJECTED_NOTES));
    std::fs::write(&sd15, text.replacen(from, &to, 1)).unwrap();
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// What of the injected notes the markdown `report` lets through, parsed as GitHub does:
/// its text outside a code span (a heading), images, raw `<img>`, a `</details>` closing the
/// report's own.
fn markdown_breakouts(report: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut found = Vec::new();
    let mut opened = 0i32;
    let mut injected_in_code = false;
    let options = Options::ENABLE_TABLES | Options::ENABLE_GFM;
    for event in Parser::new_ext(report, options) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => found.push(format!("image {dest_url}")),
            Event::Html(h) | Event::InlineHtml(h) => {
                opened += h.matches("<details>").count() as i32;
                opened -= h.matches("</details>").count() as i32;
                if h.contains("<img") {
                    found.push(format!("html {h}"));
                }
            }
            Event::Code(c) if c.contains("</details>⏎⏎# Injected heading") => {
                injected_in_code = true;
            }
            Event::Text(t) if t.contains("Injected heading") => found.push(format!("text {t}")),
            _ => {}
        }
        if opened < 0 {
            found.push("a </details> closed the report's own".into());
            opened = 0;
        }
    }
    if !injected_in_code {
        found.push("the notes are not one code span".into());
    }
    found
}

#[test]
fn notes_cannot_break_out_of_the_markdown_report() {
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(&tmp.path().join("old"));
    rules_with_injected_notes(&tmp.path().join("new"));
    let (out, err, code) = run(tmp.path(), &["diff", "old", "new", "--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(markdown_breakouts(&out), Vec::<String>::new(), "{out}");
}

#[test]
fn notes_cannot_break_out_of_the_pr_comment() {
    // The workflow's command (.github/workflows/rules-pr.yml): a diff of two commits, linked.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "-q"]);
    copy_rules_to(&repo.join("rules"));
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    std::fs::remove_dir_all(repo.join("rules")).unwrap();
    rules_with_injected_notes(&repo.join("rules"));
    git(&["commit", "-qam", "notes"]);
    let (out, err, code) = run(
        repo,
        &[
            "diff",
            "--base",
            "HEAD~1",
            "--format",
            "markdown",
            "--top",
            "10",
            "--link-base",
            "https://github.com/o/r/blob/abc/rules",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(markdown_breakouts(&out), Vec::<String>::new(), "{out}");
}

#[test]
fn notes_cannot_break_out_of_the_playground() {
    use crate::playground::{Playground, read_rules};
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    copy_rules_to(&served);
    rules_with_injected_notes(&tmp.path().join("edited"));
    let edited = read_rules(&tmp.path().join("edited"));
    let pg = Playground::start(&["serve", "--playground"], &served);
    let base = pg.session_files();
    let (status, diffed) = pg.post(
        "/v1/diff",
        &serde_json::json!({ "files": edited, "base": base }),
    );
    assert_eq!(status, 200, "{diffed}");
    assert_eq!(
        markdown_breakouts(diffed["markdown"].as_str().unwrap()),
        Vec::<String>::new()
    );
    let html = diffed["html"].as_str().unwrap();
    assert_eq!(
        html.matches("<details>").count(),
        html.matches("</details>").count(),
        "{html}"
    );
    assert!(!html.contains("<img") && !html.contains("<h1>"), "{html}");
    assert!(
        html.contains(
            "&lt;/details&gt;⏎⏎# Injected heading⏎⏎&lt;img src=https://evil.example/p.png&gt;"
        ),
        "{html}"
    );
}

#[test]
fn merge_refuses_a_partial_twice_negative_points_and_counts_that_do_not_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (jobs, _, code) = run(tmp.path(), &["synth", "--jobs", "50", "--seed", "5"]);
    assert_eq!(code, 0);
    std::fs::write(tmp.path().join("jobs.jsonl"), jobs).unwrap();
    let by_model = [
        "tally",
        "--by",
        "model",
        "--format",
        "json",
        "--invalid-exit-code",
        "0",
        "jobs.jsonl",
    ];
    let (partial, err, code) = run(tmp.path(), &by_model);
    assert_eq!(code, 0, "{err}");
    std::fs::write(tmp.path().join("a.json"), &partial).unwrap();
    std::fs::write(tmp.path().join("copy.json"), &partial).unwrap();
    let merge = |parts: &[&str]| {
        let mut args = vec!["merge", "--invalid-exit-code", "0"];
        args.extend(parts);
        run(tmp.path(), &args)
    };
    let (_, err, code) = merge(&["a.json"]);
    assert_eq!(code, 0, "{err}");
    for twice in [["a.json", "a.json"], ["a.json", "copy.json"]] {
        let (out, err, code) = merge(&twice);
        assert_eq!(code, 2, "{twice:?}: {out}");
        assert!(
            err.contains(&format!(
                "`{}` is the same partial as `a.json` (every group, count and point equal): \
                 merging both would count its 50 jobs twice",
                twice[1]
            )),
            "{err}"
        );
    }
    // An empty partition's partial, twice, adds nothing: merged.
    std::fs::write(tmp.path().join("empty.jsonl"), "").unwrap();
    let mut by_model_empty = by_model;
    by_model_empty[7] = "empty.jsonl";
    let (empty, _, _) = run(tmp.path(), &by_model_empty);
    std::fs::write(tmp.path().join("e1.json"), &empty).unwrap();
    std::fs::write(tmp.path().join("e2.json"), &empty).unwrap();
    let (_, err, code) = merge(&["a.json", "e1.json", "e2.json"]);
    assert_eq!(code, 0, "{err}");

    // Edited partials: a group paying negative points, a group whose jobs are not its
    // statuses' sum (the total edited to match, so only the group's own check can tell).
    let doc: serde_json::Value = serde_json::from_str(&partial).unwrap();
    let group = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .position(|g| g["ok"].as_u64() > Some(0))
        .unwrap();
    let kind = doc["groups"][group]["points"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, p)| {
            p.as_str()
                .is_some_and(|p| p.bytes().any(|b| b.is_ascii_digit() && b != b'0'))
        })
        .map(|(k, _)| k.clone())
        .unwrap();
    let mut negative = doc.clone();
    let points = negative["groups"][group]["points"][&kind]
        .as_str()
        .unwrap()
        .to_string();
    let total = negative["total"]["points"][&kind]
        .as_str()
        .unwrap()
        .to_string();
    let micros = |t: &str| {
        let (i, f) = t.split_once('.').unwrap_or((t, ""));
        i.parse::<i128>().unwrap() * 1_000_000 + format!("{f:0<6}").parse::<i128>().unwrap()
    };
    let show = |m: i128| {
        format!(
            "{}{}.{:06}",
            if m < 0 { "-" } else { "" },
            m.abs() / 1_000_000,
            m.abs() % 1_000_000
        )
    };
    negative["groups"][group]["points"][&kind] = show(-micros(&points)).into();
    negative["total"]["points"][&kind] = show(micros(&total) - 2 * micros(&points)).into();
    std::fs::write(tmp.path().join("negative.json"), negative.to_string()).unwrap();
    let (_, err, code) = merge(&["negative.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`negative.json` is not a partial tally")
            && err.contains(&format!("has negative points of `{kind}`")),
        "{err}"
    );

    let mut inflated = doc.clone();
    let jobs = inflated["groups"][group]["jobs"].as_u64().unwrap();
    inflated["groups"][group]["jobs"] = (jobs + 7).into();
    let total_jobs = inflated["total"]["jobs"].as_u64().unwrap();
    inflated["total"]["jobs"] = (total_jobs + 7).into();
    std::fs::write(tmp.path().join("inflated.json"), inflated.to_string()).unwrap();
    let (_, err, code) = merge(&["inflated.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`inflated.json` is not a partial tally")
            && err.contains(&format!(
                "counts {} jobs but its statuses add up to {jobs}",
                jobs + 7
            )),
        "{err}"
    );
}

#[test]
fn a_tally_csv_writes_a_missing_value_as_a_dash() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("jobs.jsonl"),
        "{\"id\":\"a\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n\
         {\"id\":\"b\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"miner\":\"=HYPERLINK(1)\"}\n",
    )
    .unwrap();
    let (out, err, code) = run(
        tmp.path(),
        &[
            "tally",
            "--by",
            "miner,day",
            "--format",
            "csv",
            "jobs.jsonl",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    // The job without a miner or a date: dashes, not `'-`; a formula still quoted.
    assert!(rows.iter().any(|r| r.starts_with("-,-,1,")), "{out}");
    assert!(
        rows.iter().any(|r| r.starts_with("'=HYPERLINK(1),-,1,")),
        "{out}"
    );
}

/// A Parquet file of image jobs, one row per page (zstd, no dictionary, no statistics), whose
/// `pad` column holds `pads[i]` for row `i` (#22, item 6). `dated` adds a DATE column, which
/// only the record reader reads (the row-by-row path).
#[cfg(feature = "parquet")]
fn parquet_with_pads(path: &Path, pads: &[usize], dated: bool) {
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;
    let schema = parse_message_type(&format!(
        "message job {{ required binary id (STRING); required binary model (STRING);
         required int32 width; required int32 height; required int32 steps;
         required binary pad (STRING); {} }}",
        if dated {
            "required int32 day (DATE);"
        } else {
            ""
        }
    ))
    .unwrap();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_data_page_row_count_limit(1)
        .set_write_batch_size(1)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut column = 0;
    while let Some(mut c) = group.next_column().unwrap() {
        for (row, &pad) in pads.iter().enumerate() {
            match column {
                0 | 1 | 5 => {
                    let value: ByteArray = match column {
                        0 => format!("r{}", row + 1).into_bytes().into(),
                        1 => "BrainDance".into(),
                        _ => vec![b'0'; pad].into(),
                    };
                    c.typed::<ByteArrayType>()
                        .write_batch(&[value], None, None)
                        .unwrap();
                }
                n => {
                    let v = match n {
                        4 => 20,
                        6 => 19_900, // 2024-06-27
                        _ => 512,
                    };
                    c.typed::<Int32Type>()
                        .write_batch(&[v], None, None)
                        .unwrap();
                }
            };
        }
        c.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

#[cfg(feature = "parquet")]
#[test]
fn a_parquet_decompression_bomb_is_one_invalid_row() {
    // A 64 MiB cell compresses to a few kB; the reader allocated its page whole, then the
    // value and the job's text (#22: 1.5 GB in a 49 KB file took 3.1 GB and scored `ok`).
    for dated in [false, true] {
        parquet_bomb(dated);
    }
}

/// A 64 MiB bomb in row 2 of 3, read column by column or (`dated`) row by row.
#[cfg(feature = "parquet")]
fn parquet_bomb(dated: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bomb.parquet");
    parquet_with_pads(&path, &[10, 64 << 20, 10], dated);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 64 << 10, "{size} bytes");
    let out = jobpoints_in(tmp.path())
        .args(["eval", "--invalid-exit-code", "0", "bomb.parquet"])
        .env("JOBPOINTS_REPORT_PEAK_RSS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        results.len(),
        3,
        "one result per row (dated: {dated}): {err}"
    );
    assert_eq!(results[0]["status"], "ok");
    assert_eq!(results[2]["status"], "ok");
    assert_eq!(results[1]["status"], "invalid", "{err}");
    assert_eq!(results[1]["line"], 2);
    let why = results[1]["error"].as_str().unwrap();
    assert!(
        why.starts_with("row 2, column `pad`: the value is in a page of 67108868 bytes")
            && why.ends_with("over the 16 MiB limit of a cell: not read"),
        "{why}"
    );
    let kb: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss "))
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    eprintln!("a 64 MiB zstd bomb in {size} bytes (dated: {dated}): peak RSS {kb} kB");
    assert!(kb < 100 * 1024, "peak RSS {kb} kB");
}

/// Peak RSS in kB of `eval` on `file` in `dir` (its results discarded).
fn eval_peak_rss_kb(dir: &Path, file: &str) -> u64 {
    let (kb, code) = peak_rss_kb_in(dir, &["eval", "--out", "/dev/null", file]);
    assert_eq!(code, 0, "{file}");
    kb
}

#[cfg(feature = "parquet")]
#[test]
fn peak_memory_per_mib_of_a_cell_in_each_format() {
    // One image job with a 12 MiB `pad` (under the 16 MiB limit of a line, a CSV record and a
    // Parquet page) against the same job with a 10-byte one, in JSONL, CSV and Parquet: what a
    // MiB of one job costs at its peak. docs/performance.md states these figures.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let job = |pad: usize| {
        format!(
            "{{\"id\":\"r1\",\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20,\"pad\":\"{}\"}}\n",
            "0".repeat(pad)
        )
    };
    let csv = |pad: usize| {
        format!(
            "id,model,width,height,steps,pad\nr1,BrainDance,512,512,20,{}\n",
            "0".repeat(pad)
        )
    };
    let big = 12 << 20;
    for (name, pad) in [("small", 10), ("big", big)] {
        std::fs::write(dir.join(format!("{name}.jsonl")), job(pad)).unwrap();
        std::fs::write(dir.join(format!("{name}.csv")), csv(pad)).unwrap();
        parquet_with_pads(&dir.join(format!("{name}.parquet")), &[pad], false);
    }
    // Ceilings well above the figures (1.2, 6.2 and 2.0 MiB per MiB in a debug build): CSV
    // holds the record's line, its parse and the job's text at once.
    for (format, ceiling) in [("jsonl", 4.0), ("csv", 10.0), ("parquet", 4.0)] {
        let small = eval_peak_rss_kb(dir, &format!("small.{format}"));
        let large = eval_peak_rss_kb(dir, &format!("big.{format}"));
        let per_mib = large.saturating_sub(small) as f64 / 1024.0 / 12.0;
        eprintln!("{format}: {small} kB, with a 12 MiB cell {large} kB: {per_mib:.1} MiB per MiB");
        assert!(
            per_mib < ceiling,
            "{format}: {per_mib:.1} MiB per MiB of the cell"
        );
    }
}
