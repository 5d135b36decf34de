//! Mergeable exact tallies and pipe mode (#16): a ledger tallied in pieces and merged gives
//! exactly the tally of the whole; partials made differently are refused; a partition with
//! invalid jobs can succeed.

use std::path::Path;

use crate::util::{jobpoints, jobpoints_in};

/// A generated ledger (with ~1% malformed lines) as lines.
fn ledger_lines(jobs: u64) -> Vec<String> {
    let mut bytes = Vec::new();
    jobpoints::internals::synth::write_ledger(&mut bytes, jobs, 11).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// A small deterministic shuffle (xorshift), so the test needs no randomness crate.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn tally(dir: &Path, args: &[&str], file: &str) -> (i32, Vec<u8>) {
    let out = jobpoints_in(&crate::util::root())
        .arg("tally")
        .args(args)
        .arg(dir.join(file))
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), out.stdout)
}

fn merge(dir: &Path, args: &[&str], parts: &[String]) -> (i32, Vec<u8>, String) {
    let out = jobpoints_in(dir)
        .arg("merge")
        .args(args)
        .args(parts)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn merging_any_split_gives_exactly_the_whole_tally() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = ledger_lines(6_000);
    std::fs::write(dir.path().join("all.jsonl"), lines.join("\n") + "\n").unwrap();
    for by in ["miner", "model,day", "kind"] {
        let whole: Vec<(&str, Vec<u8>)> = ["table", "csv", "json"]
            .into_iter()
            .map(|f| {
                (
                    f,
                    tally(dir.path(), &["--by", by, "--format", f], "all.jsonl").1,
                )
            })
            .collect();
        for (ways, seed) in [(1usize, 3u64), (2, 5), (7, 9)] {
            // Lines in another order, cut in `ways` uneven pieces, merged in another order.
            shuffle(&mut lines, seed);
            let cut = |i: usize| lines.len() * i * i / (ways * ways);
            let mut parts = Vec::new();
            for i in 0..ways {
                let name = format!("part-{by}-{ways}-{i}.jsonl");
                let piece = &lines[cut(i)..cut(i + 1)];
                std::fs::write(dir.path().join(&name), piece.join("\n") + "\n").unwrap();
                let (_, json) = tally(dir.path(), &["--by", by, "--format", "json"], &name);
                let partial = format!("{name}.tally.json");
                std::fs::write(dir.path().join(&partial), json).unwrap();
                parts.push(partial);
            }
            shuffle(&mut parts, seed + 1);
            for (format, expected) in &whole {
                let (code, got, err) = merge(dir.path(), &["--format", format], &parts);
                assert_eq!(code, 1, "some jobs are invalid, as in the whole: {err}");
                assert!(
                    got == *expected,
                    "--by {by}, {ways} ways, {format}:\n{}\nvs\n{}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected)
                );
            }
        }
    }
}

#[test]
fn partials_made_differently_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.jsonl"), ledger_lines(300).join("\n")).unwrap();
    let partial = |name: &str, args: &[&str], rules: Option<&Path>| {
        let mut cmd = jobpoints();
        cmd.args(["tally", "--format", "json"]).args(args);
        if let Some(r) = rules {
            cmd.arg("--rules").arg(r);
        }
        let out = cmd.arg(dir.path().join("a.jsonl")).output().unwrap();
        std::fs::write(dir.path().join(name), out.stdout).unwrap();
        name.to_string()
    };
    let miner = partial("miner.json", &["--by", "miner"], None);
    let model = partial("model.json", &["--by", "model"], None);
    let at = partial("at.json", &["--by", "miner", "--at", "2024-06-01"], None);
    // The same jobs priced by other rules: sd15 version 2 pays 0.6 instead of 0.3.
    let other_rules = dir.path().join("rules");
    crate::util::copy_rules_to(&other_rules);
    crate::util::set_sd15_v2_multiplier(&other_rules, "0.3", "0.6");
    let other = partial("other.json", &["--by", "miner"], Some(&other_rules));

    for (parts, says) in [
        (vec![&miner, &model], "grouping"),
        (vec![&miner, &at], "--at"),
        (vec![&miner, &other], "different rule sets"),
    ] {
        let parts: Vec<String> = parts.into_iter().cloned().collect();
        let (code, out, err) = merge(dir.path(), &[], &parts);
        assert_eq!(code, 2, "{says}: {err}");
        assert!(out.is_empty());
        assert!(err.contains(says), "{says}: {err}");
    }
    // With --allow-mixed-rules: one row per rule set, each summing its own partial.
    let (_, json, err) = merge(
        dir.path(),
        &["--allow-mixed-rules", "--format", "json"],
        &[miner.clone(), other.clone()],
    );
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|_| panic!("{err}"));
    assert_eq!(doc["rulesets"].as_array().unwrap().len(), 2);
    let groups = doc["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["ruleset"].is_string()));
    let single: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(&miner)).unwrap()).unwrap();
    assert_eq!(groups.len(), 2 * single["groups"].as_array().unwrap().len());
    assert_eq!(doc["total"]["jobs"], 600);

    // A partial edited by hand no longer adds up, and is refused: a group's count (its jobs
    // no longer its statuses' sum), or the total.
    let text = std::fs::read_to_string(dir.path().join(&miner)).unwrap();
    let tampered = text.replacen("\"ok\": ", "\"ok\": 1", 1);
    std::fs::write(dir.path().join("tampered.json"), tampered).unwrap();
    let (code, _, err) = merge(dir.path(), &[], &["tampered.json".to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("but its statuses add up to"), "{err}");
    let total_at = text.rfind("\"total\"").unwrap();
    let tampered = format!(
        "{}{}",
        &text[..total_at],
        text[total_at..].replacen("\"jobs\": ", "\"jobs\": 1", 1)
    );
    std::fs::write(dir.path().join("tampered.json"), tampered).unwrap();
    let (code, _, err) = merge(dir.path(), &[], &["tampered.json".to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not equal the sum"), "{err}");
    let (code, _, err) = merge(dir.path(), &[], &["a.jsonl".to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a partial tally"), "{err}");
}

#[test]
fn pipe_mode_keeps_every_line_and_can_succeed_with_invalid_jobs() {
    // Spark's RDD.pipe, Hadoop Streaming: one output line per input line, in order, and a
    // non-zero exit fails the task.
    let mut lines = ledger_lines(2_000);
    lines.insert(5, "{broken".into());
    let input = lines.join("\n") + "\n";
    let run = |args: &[&str]| {
        let out = jobpoints()
            .args(["eval", "--format", "jsonl", "--threads", "2"])
            .args(args)
            .arg("-")
            .write_stdin(input.clone())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, out) = run(&[]);
    assert_eq!(code, Some(1));
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), lines.len(), "one result per input line");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["line"], i as u64 + 1, "in input order");
    }
    assert_eq!(results[5]["status"], "invalid");
    let (code, same) = run(&["--invalid-exit-code", "0"]);
    assert_eq!(code, Some(0), "the partition succeeds");
    assert_eq!(same, out, "with every invalid result still in it");
    assert_eq!(run(&["--invalid-exit-code", "7"]).0, Some(7));
    let tallied = jobpoints()
        .args(["tally", "--invalid-exit-code", "0", "-"])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert_eq!(tallied.status.code(), Some(0));
    let bad = jobpoints()
        .args(["eval", "--invalid-exit-code", "300", "-"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}
