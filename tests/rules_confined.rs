//! A rule set is the regular files inside its directory, nothing else (#11): a rules pull
//! request cannot make `check`, `eval` or `diff` read (let alone print) anything outside the
//! directory, and no entry can make them block or run away.

#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{copy_rules_to, jobpoints_in, rules_dir};

/// Planted in the environment and in a file outside the rules directory: it must never show.
const SECRET: &str = "hunter2-do-not-print";

/// What a confinement error must take at most, even in a debug build on a busy machine (the
/// issue asks for "within a second"; measured: well under 100 ms).
const QUICK: Duration = Duration::from_secs(5);

/// Runs `jobpoints ARGS` in `dir` with the secret in its environment: (exit code, stdout +
/// stderr, elapsed).
fn run(dir: &Path, args: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = jobpoints_in(dir)
        .args(args)
        .env("JOBPOINTS_TEST_SECRET", SECRET)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text, started.elapsed())
}

#[test]
fn symlinks_out_of_the_rules_directory_are_refused_and_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    // As a checkout's `.git/config` would be, two levels up from `rules/formulas/`.
    std::fs::write(tmp.path().join("config"), format!("token = {SECRET}\n")).unwrap();
    let links = [
        ("formulas/env.rhai", "/proc/self/environ"),
        ("formulas/git.rhai", "../../config"),
        ("formulas/pid.rhai", "/proc/sys/kernel/ns_last_pid"),
        ("formulas/zero.rhai", "/dev/zero"),
        ("families/outside.toml", "/etc/hostname"),
    ];
    for (at, target) in links {
        symlink(target, rules.join(at)).unwrap();
    }
    let (code, text, took) = run(tmp.path(), &["check", "--rules", "rules"]);
    assert_eq!(code, 3, "{text}");
    assert!(took < QUICK, "check took {took:?}");
    assert!(!text.contains(SECRET), "the secret leaked:\n{text}");
    for (at, _) in links {
        assert!(
            text.contains(&format!("error[refused-file]: {at}")),
            "{at} is not refused:\n{text}"
        );
    }
    let (code, json, _) = run(
        tmp.path(),
        &["check", "--rules", "rules", "--format", "json"],
    );
    assert_eq!(code, 3);
    assert!(!json.contains(SECRET), "{json}");
    // The pull request comment: the diff of the shipped rules against the hostile ones.
    let shipped = rules_dir();
    let (code, report, took) = run(
        tmp.path(),
        &[
            "diff",
            shipped.to_str().unwrap(),
            "rules",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code, 3, "the new side is invalid: {report}");
    assert!(took < QUICK, "diff took {took:?}");
    assert!(!report.contains(SECRET), "the secret leaked:\n{report}");
    assert!(report.contains("refused-file"), "{report}");
    // With the rules refused, nothing is scored.
    let (code, text, _) = run(
        tmp.path(),
        &[
            "eval",
            "--rules",
            "rules",
            &rules_dir()
                .join("../examples/jobs.jsonl")
                .display()
                .to_string(),
        ],
    );
    assert_eq!(code, 3, "{text}");
    assert!(!text.contains(SECRET));
}

#[test]
fn loops_fifos_and_huge_files_are_errors_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    // Two links to the directory itself: followed blindly, 2^16 paths (97 s and 4.5 GB).
    symlink(".", rules.join("a")).unwrap();
    symlink(".", rules.join("b")).unwrap();
    // A link to itself never resolves.
    symlink("self.toml", rules.join("self.toml")).unwrap();
    // A FIFO: opening it waits for a writer forever.
    let fifo = rules.join("formulas/pipe.rhai");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo");
    // A sparse 3 GB file costs nothing to make, and must cost nothing to refuse.
    let huge = std::fs::File::create(rules.join("families/huge.toml")).unwrap();
    huge.set_len(3 << 30).unwrap();

    for args in [
        &["check", "--rules", "rules"][..],
        &["eval", "--rules", "rules", "-"][..],
    ] {
        let (code, text, took) = run(tmp.path(), args);
        assert_eq!(code, 3, "{args:?}: {text}");
        assert!(took < QUICK, "{args:?} took {took:?}");
        for (at, what) in [
            ("a", "symlink loop"),
            ("b", "symlink loop"),
            ("self.toml", "symlink loop"),
            ("formulas/pipe.rhai", "FIFO"),
        ] {
            assert!(
                text.contains(&format!("error[refused-file]: {at}")) && text.contains(what),
                "{args:?}: `{at}` ({what}) not refused:\n{text}"
            );
        }
        assert!(
            text.contains("error[file-too-large]: families/huge.toml"),
            "{text}"
        );
    }
}

#[test]
fn a_symlinked_directory_and_a_configmap_mount_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    // The rules directory itself through a link.
    copy_rules_to(&tmp.path().join("real"));
    symlink("real", tmp.path().join("linked")).unwrap();
    // A Kubernetes ConfigMap mount: every entry links into `..data`, which links to a
    // timestamped directory, all inside the mount.
    let mount = tmp.path().join("mount");
    copy_rules_to(&mount.join("..2024_06_01_00_00_00.1"));
    symlink("..2024_06_01_00_00_00.1", mount.join("..data")).unwrap();
    for entry in std::fs::read_dir(rules_dir()).unwrap() {
        let name = entry.unwrap().file_name();
        symlink(Path::new("..data").join(&name), mount.join(&name)).unwrap();
    }
    let hash = |dir: &str| {
        let out = jobpoints_in(tmp.path())
            .args(["check", "--rules", dir, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["ruleset"].as_str().unwrap().to_string()
    };
    let real = hash("real");
    assert_eq!(hash("linked"), real);
    assert_eq!(hash("mount"), real, "the same files, so the same rule set");
}
