//! The default corpus shows what a rule change does (#21): through the real binary, on the
//! corpus built into it, a new version that cuts a timeout, a changed prompt-template marker
//! and a retroactive edit of a family version each move jobs, and `--by miner` sums real
//! miners. Every number asserted is worked out from the corpus's records and from `eval` of
//! each side, never written down.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::util::{copy_rules_to, edit_rule, jobpoints_in, root};

/// `old/` and `new/` copies of the shipped rules in a directory without `./corpus` (so
/// `diff` scores the corpus built into the binary), `edit` applied to `new/`.
fn workspace(edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_rules_to(&dir.path().join("old"));
    copy_rules_to(&dir.path().join("new"));
    edit(&dir.path().join("new"));
    dir
}

/// `jobpoints diff old new --format json ARGS` on the default corpus.
fn diff(dir: &Path, args: &[&str]) -> Json {
    let out = jobpoints_in(dir)
        .args(["diff", "old", "new", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The default corpus's files, in the order `diff` reads them.
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (std::fs::read_dir(root().join("corpus")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Every corpus job's record, in `diff`'s order.
fn corpus_jobs() -> Vec<Json> {
    (corpus_files().iter())
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Json>>()
        })
        .collect()
}

/// `jobpoints eval --rules DIR/RULES ARGS` of every corpus job, one result each.
fn eval(dir: &Path, rules: &str, args: &[&str]) -> Vec<Json> {
    let out = jobpoints_in(dir)
        .args(["eval", "--rules", rules])
        .args(args)
        .args(corpus_files())
        .output()
        .unwrap();
    let results: Vec<Json> = (String::from_utf8(out.stdout).unwrap().lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), corpus_jobs().len());
    results
}

fn status(r: &Json) -> &str {
    r["status"].as_str().unwrap()
}

fn total(r: &Json) -> &Json {
    &r["impact"]["total"]
}

fn windows(r: &Json) -> &Vec<Json> {
    r["impact"]["windows"].as_array().unwrap()
}

/// The job's longest latency, in seconds (0 without one).
fn latency(job: &Json) -> f64 {
    ["inference_latency", "request_latency"]
        .iter()
        .filter_map(|k| job[*k].as_f64())
        .fold(0.0, f64::max)
}

fn completed_at(job: &Json) -> Option<&str> {
    job["completed_at"].as_str()
}

/// The defect of #21: a new version cutting the SDXL timeout from 18 s to 5 s changed 0 of
/// 1047 jobs. Now every dated job it prices whose latency is over 5 s times out, and the
/// window it opens replays every SDXL job.
#[test]
fn a_new_version_cutting_the_sdxl_timeout_times_out_the_jobs_over_it() {
    const FROM: &str = "2025-03-01";
    let ws = workspace(|new| {
        let path = new.join("families/sdxl10.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            r#"
[[version]]
version = 4
effective_from = {FROM}
source = "a test: the timeout cut to 5 s"
formula = "waifu_season1"
multiplier = 1.0
min = {{ pixels = 262144, steps = 20 }}
max = {{ inference_latency = 5, request_latency = 5 }}
examples = [{{ width = 1024, height = 1024, steps = 20, points = 6 }}]
"#
        ));
        std::fs::write(path, text).unwrap();
    });
    let r = diff(ws.path(), &[]);
    let jobs = corpus_jobs();
    let old = eval(ws.path(), "old", &[]);

    // At the jobs' own times: the SDXL jobs from FROM on that took longer than 5 s (and at
    // most 18 s, as they were paid) are timed out.
    let from = jobpoints::internals::parse_time(FROM).unwrap();
    let timed_out = (jobs.iter().zip(&old))
        .filter(|(j, o)| {
            status(o) == "ok"
                && o["rule"].as_str().is_some_and(|r| r.starts_with("sdxl10@"))
                && completed_at(j)
                    .is_some_and(|t| jobpoints::internals::parse_time(t).unwrap() >= from)
                && latency(j) > 5.0
        })
        .count();
    assert!(timed_out >= 20, "{timed_out}");
    assert_eq!(total(&r)["changed"], timed_out, "{:#}", total(&r));
    assert_eq!(total(&r)["status_changes"]["ok → over_limit"], timed_out);

    // Its window replays, at FROM, every corpus job of a model sdxl10 prices then: exactly
    // the jobs `eval --at FROM` pays with the old rules and times out with the new.
    let w = windows(&r);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        (w[0]["old"].as_str(), w[0]["new"].as_str()),
        (Some("sdxl10@3"), Some("sdxl10@4"))
    );
    let old_at = eval(ws.path(), "old", &["--at", FROM]);
    let new_at = eval(ws.path(), "new", &["--at", FROM]);
    let replayed = (old_at.iter().zip(&new_at))
        .filter(|(o, n)| status(o) == "ok" && status(n) == "over_limit")
        .count();
    assert!(replayed > timed_out, "{replayed}");
    assert_eq!(w[0]["total"]["changed"], replayed, "{:#}", w[0]);
    assert_eq!(w[0]["total"]["status_changes"]["ok → over_limit"], replayed);
}

/// One ChatML marker changed in kinds.toml (a newline after the role, as ChatML is usually
/// written, but not as the network's gateway wrote it): the first-era prompts the gateway
/// wrote in ChatML no longer read, and only those jobs move.
#[test]
fn a_changed_chatml_marker_reprices_the_first_era_chatml_jobs() {
    let ws = workspace(|new| {
        edit_rule(
            new,
            "kinds.toml",
            r#"user = { before = "<|im_start|>user", after"#,
            r#"user = { before = "<|im_start|>user\n", after"#,
        )
    });
    let r = diff(ws.path(), &[]);
    let jobs = corpus_jobs();
    let (old, new) = (eval(ws.path(), "old", &[]), eval(ws.path(), "new", &[]));
    let chatml = |j: &Json| {
        j["model_input"]["LLM"]["prompt"]
            .as_str()
            .is_some_and(|p| p.starts_with("<|im_start|>"))
    };
    let mut moved = 0;
    let mut chatml_paid = 0;
    for ((j, o), n) in jobs.iter().zip(&old).zip(&new) {
        if (status(o), &o["points"]) != (status(n), &n["points"]) {
            assert!(chatml(j), "{j}");
            moved += 1;
        }
        if chatml(j) && status(o) == "ok" {
            assert_eq!(status(n), "invalid", "{n}");
            chatml_paid += 1;
        }
    }
    assert!(chatml_paid >= 30, "{chatml_paid}");
    assert_eq!(total(&r)["changed"], moved);
    assert_eq!(total(&r)["status_changes"]["ok → invalid"], chatml_paid);
    // A change to how text is counted re-prices every priced LLM window; the windows of the
    // models the miner prompted in ChatML (openhermes, dolphin) move.
    let moving: Vec<&Json> = (windows(&r).iter())
        .filter(|w| w["total"]["changed"].as_u64() > Some(0))
        .collect();
    assert!(moving.len() >= 3, "{:#?}", windows(&r));
    for w in moving {
        assert!(w["kinds"].get("llama").is_some(), "{w:#}");
    }
}

/// Version 1 of `sdxl10` edited in place (1.8 → 2.0): every Season 1 SDXL job the corpus
/// dates in it gains exactly 1/9 of its points, and `--by miner` names the miners who ran
/// them.
#[test]
fn a_retroactive_family_edit_moves_the_dated_jobs_and_real_miners() {
    let ws = workspace(|new| {
        let path = new.join("families/sdxl10.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let (v1, rest) = text.split_at(text.find("version = 2").unwrap());
        let v1 = (v1.replacen("multiplier = 1.8\n", "multiplier = 2.0\n", 1))
            .replace("points = 1.8 }", "points = 2 }")
            .replace("points = 10.8 }", "points = 12 }");
        std::fs::write(path, format!("{v1}{rest}")).unwrap();
    });
    let r = diff(ws.path(), &["--by", "miner", "--top", "3"]);
    let jobs = corpus_jobs();
    let (old, new) = (eval(ws.path(), "old", &[]), eval(ws.path(), "new", &[]));
    let paid: Vec<f64> = (old.iter())
        .filter(|o| o["rule"] == "sdxl10@1" && status(o) == "ok")
        .map(|o| o["points"].as_f64().unwrap())
        .filter(|p| *p > 0.0)
        .collect();
    assert!(paid.len() >= 50, "{}", paid.len());
    assert_eq!(total(&r)["changed"], paid.len());
    let delta = r["impact"]["kinds"]["waifu"]["delta"].as_f64().unwrap();
    let expected: f64 = paid.iter().sum::<f64>() / 9.0;
    // Each job's points are rounded to 6 decimals.
    assert!(
        (delta - expected).abs() <= 1e-6 * paid.len() as f64,
        "{delta} vs {expected}"
    );
    let w = windows(&r);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0]["old"], "sdxl10@1");
    assert!(w[0]["total"]["changed"].as_u64() > Some(paid.len() as u64));
    assert_eq!(w[0]["kinds"]["waifu"]["delta_percent"], 11.11);

    // By miner: a group per miner and point kind (`-` for the undated, minerless jobs), as
    // `eval` says; the groups that change are the miners who ran those jobs.
    let mut groups = std::collections::BTreeSet::new();
    let mut gaining = std::collections::BTreeSet::new();
    for ((j, o), n) in jobs.iter().zip(&old).zip(&new) {
        let miner = j["miner_id"].as_str().unwrap_or("-");
        groups.insert((miner, n["kind"].as_str()));
        if o["points"] != n["points"] {
            gaining.insert((miner, n["kind"].as_str()));
        }
    }
    let g = &r["impact"]["groups"];
    assert!(groups.len() >= 60, "{groups:?}");
    assert_eq!(g["groups"], groups.len(), "{g:#}");
    assert_eq!(g["changed"], gaining.len(), "{g:#}");
    assert!(gaining.len() >= 20, "{gaining:?}");
    let top = g["gainers"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for m in top {
        let group = (m["group"][0].as_str().unwrap(), m["kind"].as_str());
        assert!(gaining.contains(&group), "{m}");
    }
}
