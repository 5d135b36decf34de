//! `jobpoints watch` through the real binary: each save is checked and re-scored.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::util::{copy_rules_to, edit_rule, jobpoints_in, poll, root, set_sd15_v2_multiplier};

pub(crate) struct Watching {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Watching {
    /// Waits until the output has `n` "watching" lines (one per report), returns the output.
    pub(crate) fn reports(&self, n: usize) -> String {
        poll(15, &format!("report {n}"), || {
            let o = self.out.lock().unwrap().clone();
            (o.matches("\nwatching ").count() + usize::from(o.starts_with("watching ")) >= n)
                .then_some(o)
        })
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(args: &[&str]) -> Watching {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"))
        .arg("watch")
        .args(args)
        .current_dir(root())
        .env_remove("JOBPOINTS_RULES")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start jobpoints watch");
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut o = sink.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
    Watching { child, out }
}

/// `points` of job `id` from `eval` with the given rules, as printed (6 decimals).
fn eval_points(rules: &std::path::Path, id: &str) -> String {
    let out = jobpoints_in(&root())
        .args(["eval", "--at", "2025-01-01", "--rules"])
        .arg(rules)
        .arg("examples/jobs.jsonl")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"id\":\"{id}\"")))
        .expect("job in eval output");
    crate::eval_cli::raw_points(line)
}

#[test]
fn each_save_is_checked_and_the_jobs_rescored() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let w = start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--jobs",
        "examples/jobs.jsonl",
        "--at",
        "2025-01-01",
    ]);
    let first = w.reports(1);
    assert!(first.contains("check: 0 errors"), "{first}");
    let before = eval_points(&rules, "j1");
    assert!(
        first.contains(&format!("j1 BrainDance: {before} sd15@3\n")),
        "{first}"
    );

    // A valid save: the change and each job's points before → after.
    set_sd15_v2_multiplier(&rules, "0.3", "0.6");
    let second = w.reports(2);
    let after = eval_points(&rules, "j1");
    assert_ne!(before, after);
    let report = &second[first.len()..];
    // The field-level change and its flag, as `jobpoints diff` shows them.
    assert!(
        report.contains(
            "change: ~ rule `sd15` version 3: multiplier 0.3 → 0.6\n        \
             ! changes an existing version, so jobs it already priced are re-priced; add a new version instead\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("        ! retroactive: rewrites since 2024-10-17T02:46:23Z\n"),
        "{report}"
    );
    // The version's change, then its four edited examples (the priced ones).
    assert_eq!(report.matches("change: ").count(), 5, "{report}");
    assert_eq!(
        report
            .matches("change: ~ rule `sd15` version 3 example")
            .count(),
        4,
        "{report}"
    );
    let delta = format!(
        "{:.6}",
        after.parse::<f64>().unwrap() - before.parse::<f64>().unwrap()
    );
    assert!(
        report.contains(&format!(
            "j1 BrainDance: {before} sd15@3 → {after} sd15@3 (+{delta})"
        )),
        "{report}"
    );
    // A job under another rule is shown unchanged.
    assert!(
        report.contains("j2 mistralai/mixtral-8x7b-instruct: "),
        "{report}"
    );
    assert!(report.contains("(unchanged)"), "{report}");

    // A broken save: the diagnostics, and nothing applied.
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = 0.6",
        "multiplier = [",
    );
    let third = w.reports(3);
    let report = &third[second.len()..];
    assert!(report.contains("check: 1 error"), "{report}");
    assert!(report.contains("families/sd15.toml"), "{report}");
    assert!(report.contains("not applied"), "{report}");
    assert!(!report.contains(" → "), "nothing is re-scored: {report}");

    // The fix is compared against the last valid rules.
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = [",
        "multiplier = 0.6",
    );
    let fourth = w.reports(4);
    let report = &fourth[third.len()..];
    assert!(report.contains("check: 0 errors"), "{report}");
    assert!(report.contains("back to the last valid rules"), "{report}");
    assert!(
        report.contains(&format!("j1 BrainDance: {after} sd15@3 (unchanged)")),
        "{report}"
    );
}

#[test]
fn broken_rules_at_start_are_reported_and_the_first_valid_save_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = 0.3",
        "multiplier = [",
    );
    let w = start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--jobs",
        "examples/jobs.jsonl",
        "--at",
        "2025-01-01",
    ]);
    let first = w.reports(1);
    assert!(first.contains(" rules loaded\n"), "{first}");
    assert!(first.contains("check: 1 error"), "{first}");
    assert!(first.contains("families/sd15.toml"), "{first}");
    // Nothing was ever valid: no last good rules to keep, and no job is scored.
    assert!(!first.contains("not applied"), "{first}");
    assert!(!first.contains("jobs in "), "{first}");

    // Saving the same broken bytes again prints nothing: the next report is the fix.
    let sd15 = rules.join("families/sd15.toml");
    std::fs::write(&sd15, std::fs::read(&sd15).unwrap()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = [",
        "multiplier = 0.3",
    );
    let second = w.reports(2);
    let report = &second[first.len()..];
    assert!(report.contains(" rules saved\n"), "{report}");
    assert!(report.contains("check: 0 errors"), "{report}");
    let points = eval_points(&rules, "j1");
    // Every job scored, with nothing to compare against.
    assert!(
        report.contains(&format!("j1 BrainDance: {points} sd15@3\n")),
        "{report}"
    );
    assert!(!report.contains("change: "), "{report}");
    assert!(!report.contains("job(s) changed"), "{report}");
    assert!(!report.contains("error:"), "{report}");

    // From then on, the valid rules are the last good ones: a broken save is not applied.
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = 0.3",
        "multiplier = [",
    );
    let third = w.reports(3);
    let report = &third[second.len()..];
    assert!(report.contains("check: 1 error"), "{report}");
    assert!(report.contains("not applied"), "{report}");
    assert_eq!(third.matches(" rules saved\n").count(), 2, "{third}");
}

#[test]
fn watch_needs_a_rules_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jobpoints_in(tmp.path()).arg("watch").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rules"), "{err}");
}

#[test]
fn an_edit_whose_examples_fail_is_previewed_but_not_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let w = start(&[
        "--rules",
        rules.to_str().unwrap(),
        "--jobs",
        "examples/jobs.jsonl",
        "--at",
        "2025-01-01",
    ]);
    let first = w.reports(1);
    let before = eval_points(&rules, "j1");

    // sd15 version 3 doubled, its examples left as they were: `check` fails on them only.
    let path = rules.join("families/sd15.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.rfind("multiplier = 0.3").unwrap();
    let edited = format!("{}multiplier = 0.6{}", &text[..at], &text[at + 16..]);
    let tmp_file = rules.join("families/.sd15.toml.swp");
    std::fs::write(&tmp_file, &edited).unwrap();
    std::fs::rename(&tmp_file, &path).unwrap();

    let second = w.reports(2);
    let report = &second[first.len()..];
    assert!(report.contains("example-failed"), "{report}");
    assert!(report.contains("not applied"), "{report}");
    assert!(report.contains("preview (not valid yet"), "{report}");
    assert!(
        report.contains("change: ~ rule `sd15` version 3: multiplier 0.3 → 0.6\n"),
        "{report}"
    );
    assert!(
        report.contains("jobs in examples/jobs.jsonl (not valid yet):"),
        "{report}"
    );
    // The job is shown as it would be priced, doubled; the active rules still price it as
    // before (checked with `eval` on the rules as they were).
    let doubled = format!("{:.6}", 2.0 * before.parse::<f64>().unwrap());
    assert!(
        report.contains(&format!(
            "j1 BrainDance: {before} sd15@3 → {doubled} sd15@3"
        )),
        "{report}"
    );

    // A broken save (not only examples) has no preview.
    edit_rule(
        &rules,
        "families/sd15.toml",
        "multiplier = 0.6",
        "multiplier = [",
    );
    let third = w.reports(3);
    let report = &third[second.len()..];
    assert!(report.contains("not applied"), "{report}");
    assert!(!report.contains("preview"), "{report}");
}
