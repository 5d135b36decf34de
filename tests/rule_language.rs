//! The rule language governance needs (#12): inputs with defaults never change the past,
//! dated catalog entries, disabled versions, ceilings, diagnostics that say what to fix; and
//! the loader's catalog checks that keep a broken reload from being published (#11).

use std::path::Path;

use crate::util::score_record;
use jobpoints::internals::{
    Entity, JobReader, Op, ReloadOutcome, Resolution, RuleFiles, RuleSet, RulesHandle,
    ScoreOptions, Scorer, diff_rules, load, parse_job, parse_time,
};
use jobpoints::{Score, Status};

use crate::rule_errors::overlay;
use crate::util::{copy_rules_to, fixture, jobpoints, jobpoints_in, root, shipped_rules};

fn load_dir(dir: &Path) -> RuleSet {
    let loaded = load(RuleFiles::from_dir(dir).unwrap());
    let shown: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    loaded
        .ruleset
        .unwrap_or_else(|| panic!("{}: {shown:#?}", dir.display()))
}

/// What a result says, without the rule set's hash (which differs between any two sets).
fn outcome(s: &Score) -> String {
    format!(
        "{} {} {:?} {:?} {} {:?} {:?}",
        s.line(),
        s.status(),
        s.kind(),
        s.rule(),
        s.points(),
        s.reason(),
        s.error()
    )
}

/// Every job of `corpus/`, of the network's example jobs, and one job per example of every
/// shipped rule version (at the version's own date, for a model it prices).
fn reference_jobs(rs: &RuleSet) -> Vec<serde_json::Value> {
    let mut jobs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.push(fixture("example_jobs.jsonl"));
    files.sort();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        jobs.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
        );
    }
    for rule in rs.rules() {
        for v in &rule.versions {
            // A model the version prices: the rule's own model, or a catalog model in the
            // family at the version's date.
            let at = Some(v.effective_from);
            let model = match rs.model_rules.get(&rule.id) {
                Some(_) => rule.id.clone(),
                None => match rs.catalog.iter().find(|(m, e)| {
                    e.window_at(at).is_some_and(|w| w.family == rule.id)
                        && !rs.model_rules.contains_key(*m)
                }) {
                    Some((m, _)) => m.clone(),
                    None => continue,
                },
            };
            for ex in &v.examples {
                let mut job = serde_json::json!({
                    "id": format!("{}#{}", v.label, jobs.len()),
                    "model": model,
                    "completed_at": jobpoints::internals::utc_string(v.effective_from),
                });
                for (name, value) in ex.inputs.iter().filter(|(_, v)| !v.is_absent()) {
                    job[name] = serde_json::to_value(value).unwrap();
                }
                jobs.push(job);
            }
        }
    }
    jobs
}

fn score_all(rs: &RuleSet, jobs: &[serde_json::Value]) -> Vec<String> {
    jobs.iter()
        .enumerate()
        .map(|(i, j)| {
            let s = score_record(
                rs,
                &parse_job(i as u64 + 1, j.clone()),
                ScoreOptions::default(),
            );
            outcome(&s)
        })
        .collect()
}

fn kinds_with_num_images(dir: &Path, extra: &str) {
    let path = dir.join("kinds.toml");
    let kinds = std::fs::read_to_string(&path).unwrap();
    let kinds = kinds.replace(
        "[jobs.image.derived]",
        &format!(
            "[jobs.image.inputs.num_images]\ntype = \"int\"\nmin = 1\nmax = 16\n{extra}\n[jobs.image.derived]"
        ),
    );
    assert!(kinds.contains("num_images"));
    std::fs::write(&path, kinds).unwrap();
}

#[test]
fn an_input_added_with_a_default_changes_no_result() {
    let before = shipped_rules();
    let jobs = reference_jobs(&before);
    assert!(
        jobs.len() > 1000,
        "the corpus and the examples: {}",
        jobs.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(tmp.path());
    kinds_with_num_images(tmp.path(), "default = 1");
    let loaded = load(RuleFiles::from_dir(tmp.path()).unwrap());
    assert!(
        loaded.diagnostics.is_empty(),
        "an input with a default is invisible to check: {:?}",
        loaded.diagnostics
    );
    let after = loaded.ruleset.unwrap();
    assert_eq!(score_all(&before, &jobs), score_all(&after, &jobs));

    // The same input made required changes results (so the comparison above can fail), and
    // `check` warns about it.
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(tmp.path());
    kinds_with_num_images(tmp.path(), "");
    let loaded = load(RuleFiles::from_dir(tmp.path()).unwrap());
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code()).collect();
    assert!(codes.contains(&"required-input"), "{codes:?}");
    assert!(
        codes.contains(&"example-invalid"),
        "released examples lack it: {codes:?}"
    );
}

#[test]
fn diff_flags_a_required_input_and_not_one_with_a_default() {
    let old = shipped_rules();
    for (extra, flagged) in [
        ("", true),
        ("default = 1", false),
        ("optional = true", false),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        copy_rules_to(tmp.path());
        kinds_with_num_images(tmp.path(), extra);
        // A required input makes the released examples invalid; give them the input so the
        // set loads, as an author who "fixed" them would.
        if flagged {
            for entry in std::fs::read_dir(tmp.path().join("families")).unwrap() {
                let p = entry.unwrap().path();
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, text.replace("steps = ", "num_images = 1, steps = ")).unwrap();
            }
        }
        let new = load_dir(tmp.path());
        let changes = diff_rules(&old, &new);
        let added: Vec<_> = changes
            .iter()
            .filter(|c| c.entity == Entity::Input && c.op == Op::Added)
            .collect();
        assert_eq!(added.len(), 1, "{changes:#?}");
        assert_eq!(added[0].flag.is_some(), flagged, "{extra}: {:?}", added[0]);
        if flagged {
            assert!(
                added[0]
                    .flag
                    .as_deref()
                    .unwrap()
                    .contains("becomes invalid"),
                "{:?}",
                added[0].flag
            );
        }
    }
}

#[test]
fn deleting_a_family_rule_is_a_failed_reload_that_keeps_the_last_good_set() {
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(tmp.path());
    let handle = RulesHandle::open(RuleFiles::from_dir(tmp.path()).unwrap()).unwrap();
    let good = handle.current().hash.clone();
    std::fs::remove_file(tmp.path().join("families/sdxl10.toml")).unwrap();
    match handle.reload() {
        ReloadOutcome::Rejected { .. } => {}
        other => panic!("deleting a family's rule must be rejected: {other:?}"),
    }
    let status = handle.status();
    let error = status.last_error.expect("the failure is reported");
    assert!(
        error
            .diagnostics
            .iter()
            .any(|d| d.code() == "family-without-rule"),
        "{:?}",
        error.diagnostics
    );
    let rs = handle.current();
    assert_eq!(rs.hash, good, "the last good set keeps serving");
    assert!(matches!(
        rs.resolve("AnimagineXL", None),
        Resolution::Priced { .. }
    ));
}

#[test]
fn a_family_marked_unpriced_needs_no_rule() {
    let mut files = overlay("--- families/llm70b4b.toml\n!delete\n");
    assert!(load(files.clone()).has_errors());
    let catalog = String::from_utf8(files.files["catalog.toml"].clone()).unwrap();
    assert!(catalog.contains("\n[unpriced]\n"));
    files.files.insert(
        "catalog.toml".into(),
        catalog
            .replace(
                "\n[unpriced]\n",
                "\n[unpriced]\nllm70b4b = \"multiplier never recovered\"\n",
            )
            .into_bytes(),
    );
    let loaded = load(files);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let rs = loaded.ruleset.unwrap();
    let listed = Some(parse_time("2024-06-01").unwrap());
    match rs.resolve("meta-llama/llama-2-70b-chat", listed) {
        Resolution::NoRule { reason, .. } => {
            assert!(
                reason.contains("deliberately unpriced: multiplier never recovered"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// Scores `model` at `times` through one scorer (one resolution cache, as a ledger worker
/// does) and through a fresh scorer per job; the cache must never change an answer.
fn cached_equals_fresh(rs: &RuleSet, model: &str, times: &[&str]) -> Vec<String> {
    let scorer = Scorer::new(rs);
    let mut ctx = scorer.context();
    let mut cached = Vec::new();
    let mut fresh = Vec::new();
    // Forward, backward and forward again, so segments are visited out of order too.
    let order: Vec<&str> = times
        .iter()
        .chain(times.iter().rev())
        .chain(times.iter())
        .copied()
        .collect();
    for (i, t) in order.iter().enumerate() {
        let job = serde_json::json!({"id": i, "model": model, "width": 1024, "height": 1024,
            "steps": 20, "completed_at": t});
        let record = parse_job(1, job);
        cached.push(outcome(&scorer.score_owned(
            &mut ctx,
            jobpoints::internals::JobInput::Record(&record),
        )));
        fresh.push(outcome(&score_record(rs, &record, ScoreOptions::default())));
    }
    assert_eq!(cached, fresh);
    fresh[..times.len()].to_vec()
}

#[test]
fn catalog_dates_bound_pricing_and_the_resolution_cache() {
    let loaded = load(overlay(
        "--- catalog.toml\n[models]\nJuggernautXL = { family = \"sdxl10\", since = 2024-06-01, until = 2025-01-01 }\nBrainDance = \"sd15\"\n",
    ));
    let rs = loaded.ruleset.expect("valid");
    let times = [
        "2024-04-01T00:00:00Z",
        "2024-05-31T23:59:59Z",
        "2024-06-01T00:00:00Z",
        "2024-06-01T00:00:01Z",
        // The last second of sdxl10 version 1 and the first of version 2.
        "2024-09-18T16:17:10Z",
        "2024-09-18T16:17:11Z",
        "2024-12-31T23:59:59Z",
        "2025-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z",
    ];
    let got = cached_equals_fresh(&rs, "JuggernautXL", &times);
    let statuses: Vec<&str> = got.iter().map(|o| o.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "no_rule", "no_rule", "ok", "ok", "ok", "ok", "ok", "no_rule", "no_rule"
        ]
    );
    assert!(
        got[1].contains("in the catalog only from 2024-06-01 until 2025-01-01"),
        "{}",
        got[1]
    );
    assert!(got[1].contains("not yet at this time"), "{}", got[1]);
    assert!(got[7].contains("no longer at this time"), "{}", got[7]);
    assert!(
        got[4].contains("sdxl10@1") && got[5].contains("sdxl10@2"),
        "{got:?}"
    );
    // A model without dates is not affected.
    let plain = cached_equals_fresh(&rs, "BrainDance", &times);
    assert!(plain[1].contains(" ok "), "{plain:?}");
}

#[test]
fn model_names_are_compared_in_nfc() {
    let loaded = load(overlay(
        "--- catalog.toml\n[models]\n\"Caf\\u00e9XL\" = \"sdxl10\"\nBrainDance = \"sd15\"\n",
    ));
    let rs = loaded.ruleset.expect("valid");
    // The job writes the name decomposed (e + combining acute accent).
    let job =
        serde_json::json!({"model": "Cafe\u{301}XL", "width": 512, "height": 512, "steps": 20});
    let s = score_record(&rs, &parse_job(1, job), ScoreOptions::default());
    assert_eq!(s.status(), Status::Ok, "{s:?}");
    assert_eq!(
        s.model(),
        Some("Cafe\u{301}XL"),
        "the result echoes the job"
    );
}

#[test]
fn diagnostics_are_deterministic() {
    let text = std::fs::read_to_string(fixture("rules/loader/catalog_entries.txt")).unwrap();
    let first: Vec<String> = load(overlay(&text))
        .diagnostics
        .iter()
        .map(|d| format!("{d} {:?}", d.line()))
        .collect();
    assert!(first.len() > 5, "{first:#?}");
    for _ in 0..5 {
        let again: Vec<String> = load(overlay(&text))
            .diagnostics
            .iter()
            .map(|d| format!("{d} {:?}", d.line()))
            .collect();
        assert_eq!(first, again);
    }
}

#[test]
fn an_openai_chat_completion_is_an_llm_job() {
    // The response carries no time; Mixtral 8x7b is priced (llm8x7b4b) from catalog 014 to 047.
    let out = jobpoints()
        .args(["eval", "--format", "jsonl", "--at", "2024-10-01"])
        .arg(fixture("jobs/openai_chat_completion.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["kind"], "llama");
    assert_eq!(v["points"], 1.052, "(812 + 240) / 1000: {v}");
    assert_eq!(v["id"], "chatcmpl-9d4a1c7e2b");
}

#[test]
fn explain_shows_the_formula_its_variables_notes_and_reasons() {
    let jobs = concat!(
        r#"{"id":"a","model":"BrainDance","width":1024,"height":1024,"steps":20,"inference_latency":3.5,"completed_at":"2024-10-20T00:00:00Z"}"#,
        "\n",
        r#"{"id":"b","model":"FLUX.1-dev","width":1024,"height":1024,"steps":20,"completed_at":"2024-11-01T00:00:00Z"}"#,
        "\n",
        r#"{"id":"c","model":"BrainDance","width":512,"height":512,"steps":20,"inference_latency":20,"completed_at":"2024-10-20T00:00:00Z"}"#,
        "\n",
    );
    let out = jobpoints()
        .args(["eval", "--format", "table", "--explain", "-"])
        .write_stdin(jobs)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "| let m = 1.0 + 5.0 * (pixels - 262144) / 786432.0;",
        "| m * steps / 20.0",
        "variables    m = 6",
        "ceiling      inference_latency = 3.5 ≤ 18 pass",
        "ceiling      request_latency ≤ 18: absent, not checked",
        "notes        Version 2's pricing",
        "reason       FLUX.1 [dev] is temporarily disabled",
        "ceiling      inference_latency = 20 ≤ 18 FAIL",
        "over limit: inference_latency 20 > max 18",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn the_table_totals_never_add_points_of_different_kinds() {
    let jobs = concat!(
        r#"{"id":"a","model":"BrainDance","width":512,"height":512,"steps":20}"#,
        "\n",
        r#"{"id":"b","model":"mistralai/mixtral-8x7b-instruct","input_tokens":500,"output_tokens":500,"completed_at":"2024-10-01T00:00:00Z"}"#,
        "\n",
        r#"{"id":"c","model":"FLUX.1-dev","width":512,"height":512,"steps":20}"#,
        "\n",
    );
    let out = jobpoints()
        .args(["eval", "--format", "table", "-"])
        .write_stdin(jobs)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let total = text
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = total.split_whitespace().collect();
    // total, jobs, ok, below, over, no_rule, disabled, unmeasured, invalid, error, points
    assert_eq!(
        cells,
        ["total", "3", "2", "0", "0", "0", "1", "0", "0", "0", "-"],
        "{text}"
    );
    assert!(text.contains("llama"), "{text}");
}

#[test]
fn models_at_honours_catalog_dates_and_shows_disabled_versions() {
    let out = jobpoints()
        .args(["models", "--format", "json", "--at", "2024-05-01"])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |m: &str| rows.iter().find(|r| r["model"] == m).unwrap().clone();
    let arch = row("ArchitectureRealMix");
    assert_eq!(arch["status"], "no_rule", "{arch}");
    assert!(
        arch["reason"].as_str().unwrap().contains("from 2024-05-11"),
        "{arch}"
    );
    assert_eq!(row("BrainDance")["status"], "priced");
    let out = jobpoints()
        .args(["models", "--at", "2024-11-01"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let flux = text.lines().find(|l| l.starts_with("FLUX.1-dev")).unwrap();
    assert!(
        flux.contains("disabled: FLUX.1 [dev] is temporarily disabled"),
        "{flux}"
    );
    assert!(
        flux.contains("Version B's date is inferred"),
        "notes: {flux}"
    );
}

#[test]
fn check_json_carries_the_help_of_each_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    copy_rules_to(&tmp.path().join("rules"));
    let catalog = tmp.path().join("rules/catalog.toml");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::write(
        &catalog,
        text.replace(
            "AnimagineXL = { family = \"sdxl10\"",
            "AnimagineXL = { family = \"sdxl1O\"",
        ),
    )
    .unwrap();
    let out = jobpoints_in(tmp.path())
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &doc["diagnostics"][0];
    assert_eq!(d["code"], "unknown-family", "{doc}");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `sdxl10`?"),
        "{d}"
    );
    assert!(d["help"].as_str().is_some_and(|h| !h.is_empty()), "{d}");
}

#[test]
fn tally_counts_over_limit_and_disabled_as_their_own_statuses() {
    let jobs = concat!(
        r#"{"id":"a","model":"FLUX.1-dev","width":512,"height":512,"steps":20,"miner":"m"}"#,
        "\n",
        r#"{"id":"b","model":"BrainDance","width":512,"height":512,"steps":20,"inference_latency":30,"miner":"m"}"#,
        "\n",
    );
    let out = jobpoints()
        .args(["tally", "--by", "miner", "--format", "json", "-"])
        .write_stdin(jobs)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let g = &doc["groups"][0];
    assert_eq!(
        (
            g["jobs"].as_u64(),
            g["disabled"].as_u64(),
            g["over_limit"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{doc}"
    );
    // The partial reads back (merge) with the new counts.
    let text = String::from_utf8(out.stdout).unwrap();
    let tally = jobpoints::internals::Tally::from_json(&text).unwrap();
    assert_eq!(tally.total().counts.disabled, 1);
}

#[test]
fn a_job_reader_reads_the_chat_completion_fixture_as_one_job() {
    let bytes = std::fs::read(fixture("jobs/openai_chat_completion.json")).unwrap();
    let records: Vec<_> = JobReader::new(&bytes[..]).collect();
    assert_eq!(records.len(), 1);
}
