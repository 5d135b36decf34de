//! The catalog as the network had it (#21): a model is priced only inside its catalog windows,
//! under the family of that time; renames and redirects price as their model; the LLMs of
//! families nobody prices say why; and `jobpoints catalog sync` keeps `catalog.toml` exactly
//! what the catalog's history (tests/fixtures/catalog/history/) and the recorded decisions
//! give.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::score_record;
use jobpoints::Status;
use jobpoints::internals::{RuleSet, ScoreOptions, parse_job, parse_time};

use crate::util::{copy_rules_to, fixture, jobpoints, jobpoints_in, shipped_rules};

/// The committed copy of the network's catalog history.
fn history() -> PathBuf {
    fixture("catalog/history/models")
}

/// An LLM job of `model` done at `at`, scored with `rs`.
fn llm(rs: &RuleSet, model: &str, at: &str) -> jobpoints::Score {
    let job = serde_json::json!({
        "model": model, "input_tokens": 1000, "output_tokens": 1000, "completed_at": at,
    });
    score_record(rs, &parse_job(1, job), ScoreOptions::default())
}

/// An image job of `model` done at `at`, scored with `rs`.
fn image(rs: &RuleSet, model: &str, at: &str) -> jobpoints::Score {
    let job = serde_json::json!({
        "model": model, "width": 512, "height": 512, "steps": 20, "completed_at": at,
    });
    score_record(rs, &parse_job(1, job), ScoreOptions::default())
}

/// One version of the history: its number, UTC commit time and models (name → type), or
/// `None` for a version that does not parse (007).
struct Version {
    number: String,
    at: String,
    models: Option<BTreeMap<String, String>>,
}

fn versions() -> Vec<Version> {
    let csv = std::fs::read_to_string(fixture("catalog/history/models_commits.csv")).unwrap();
    csv.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').collect();
            let text = std::fs::read_to_string(history().join(cols[0])).unwrap();
            let models = serde_json::from_str::<Vec<serde_json::Value>>(&text)
                .ok()
                .map(|ms| {
                    ms.iter()
                        .map(|m| {
                            let s = |k: &str| m[k].as_str().unwrap().to_string();
                            (s("name"), s("type"))
                        })
                        .collect()
                });
            Version {
                number: format!("{:03}", i + 1),
                at: cols[2].to_string(),
                models,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The defects of #21, part 2, each as it was reported.

#[test]
fn a_model_is_not_priced_before_the_utc_commit_that_listed_it() {
    // catalog 014 was committed 2024-04-23T20:08:19-07:00, i.e. 2024-04-24T03:08:19Z; the old
    // catalog.toml dated it by the committer's local day and paid 2.0 from 2024-04-23.
    let rs = shipped_rules();
    let s = llm(
        &rs,
        "mistralai/mixtral-8x7b-instruct",
        "2024-04-23T12:00:00Z",
    );
    assert_eq!(s.status(), Status::NoRule);
    assert_eq!(s.points().to_string(), "0.000000");
    let reason = s.reason().unwrap();
    assert!(
        reason.contains("from 2024-04-24T03:08:19Z (catalog 014, commit 2e6665a1ee)"),
        "{reason}"
    );
    assert!(reason.ends_with("not yet at this time"), "{reason}");
    let s = llm(
        &rs,
        "mistralai/mixtral-8x7b-instruct",
        "2024-04-24T03:08:19Z",
    );
    assert_eq!(
        (s.status(), s.points().to_string()),
        (Status::Ok, "2.000000".into())
    );
    // Its old name is an alias from that instant, so the job under it is priced instead.
    let s = llm(
        &rs,
        "mistralai/mixtral-8x7b-instruct-v0.1",
        "2024-04-23T12:00:00Z",
    );
    assert_eq!((s.status(), s.rule()), (Status::Ok, Some("llm8x7b4b@2")));
}

#[test]
fn removed_models_stop_being_priced_when_the_catalog_removed_them() {
    // ChosenChineseStyle left the catalog at 2024-03-31T16:29:35Z (catalog 012), before
    // Season 1 began: it never earned a point.
    let rs = shipped_rules();
    let s = image(&rs, "ChosenChineseStyle", "2024-04-01T00:00:00Z");
    assert_eq!(s.status(), Status::NoRule);
    let reason = s.reason().unwrap();
    assert!(
        reason.contains("until 2024-03-31T16:29:35Z (catalog 012, commit e0facfc126)"),
        "{reason}"
    );
    assert!(reason.ends_with("no longer at this time"), "{reason}");
    // Every model the history removes (and does not list again): `no_rule` from the removal
    // on, and for undated jobs (the latest rules); unless a rename made its name an alias
    // from that instant, and then it is priced as the new name.
    let versions = versions();
    let (mut removed, mut renamed) = (0, 0);
    for (i, v) in versions.iter().enumerate() {
        let Some(models) = &v.models else { continue };
        let next = versions[i + 1..]
            .iter()
            .find_map(|n| n.models.as_ref().map(|m| (n, m)));
        let Some((next, next_models)) = next else {
            continue;
        };
        for name in models.keys().filter(|n| !next_models.contains_key(*n)) {
            let listed_again = versions
                .iter()
                .skip(i + 1)
                .any(|l| l.models.as_ref().is_some_and(|m| m.contains_key(name)));
            if listed_again {
                continue;
            }
            let score = |at: &str| match models[name].starts_with("llm") {
                true => llm(&rs, name, at),
                false => image(&rs, name, at),
            };
            let after = score(&next.at);
            let removal = Some(parse_time(&next.at).unwrap());
            match rs.aliases_of(name).iter().find(|a| a.when.since == removal) {
                Some(a) => {
                    assert_eq!(a.kind.to_string(), "rename", "{name}");
                    assert_ne!(after.reason().map(|r| r.contains("no longer")), Some(true));
                    renamed += 1;
                }
                None => {
                    assert_eq!(
                        after.status(),
                        Status::NoRule,
                        "{name} after catalog {}",
                        next.number
                    );
                    let reason = after.reason().unwrap();
                    assert!(
                        reason.contains("no longer at this time"),
                        "{name}: {reason}"
                    );
                    removed += 1;
                }
            }
        }
    }
    assert_eq!((removed, renamed), (29, 6));
}

#[test]
fn the_sixteen_models_priced_forever_are_priced_no_more() {
    // The models the catalog removed that the old catalog.toml priced for all time: an undated
    // job (priced by the latest rules) of each earned points. The latest catalog lists none
    // of them (three are renames whose new name is gone or unpriced too).
    let rs = shipped_rules();
    let removed = [
        ("ArchitectureRealMix", false),
        ("ArthemyReal", false),
        ("Aurora#MagusDevon", false),
        ("BlazingDrive", false),
        ("BluePencilRealistic", false),
        ("ChilloutMix", false),
        ("ChosenChineseStyle", false),
        ("DreamShaperXL", false),
        ("HelloWorldFilmGrain", false),
        ("MagusDevon", false),
        ("Zeek", false),
        ("dolphin-2.9-llama3-8b", true),
        ("hermes-3-llama3.1-8b", true),
        ("mistralai/mixtral-8x7b-instruct", true),
        ("mistralai/mixtral-8x7b-instruct-v0.1", true),
        ("theia-llama-3.1-8b", true),
    ];
    for (model, is_llm) in removed {
        let job = if is_llm {
            serde_json::json!({"model": model, "input_tokens": 1000, "output_tokens": 1000})
        } else {
            serde_json::json!({"model": model, "width": 512, "height": 512, "steps": 20})
        };
        let s = score_record(&rs, &parse_job(1, job), ScoreOptions::default());
        assert_eq!(s.status(), Status::NoRule, "{model}: {:?}", s.reason());
    }
}

#[test]
fn a_family_change_reprices_under_the_family_of_that_time() {
    let rs = shipped_rules();
    // Catalog 047 (2025-01-28T04:20:36Z) moved Mixtral from llm8x7b4b to llm8x7b and
    // hermes-3 from llm8b16b to llm8b: neither new family has a published multiplier.
    for (model, before_rule, old, new) in [
        (
            "mistralai/mixtral-8x7b-instruct",
            "llm8x7b4b@3",
            "llm8x7b4b",
            "llm8x7b",
        ),
        (
            "hermes-3-llama3.1-8b",
            "hermes-3-llama3.1-8b@1",
            "llm8b16b",
            "llm8b",
        ),
    ] {
        let s = llm(&rs, model, "2025-01-28T04:20:35Z");
        assert_eq!(
            (s.status(), s.rule(), s.family()),
            (Status::Ok, Some(before_rule), Some(old))
        );
        let s = llm(&rs, model, "2025-01-28T04:20:36Z");
        assert_eq!(
            (s.status(), s.family()),
            (Status::NoRule, Some(new)),
            "{model}"
        );
        let reason = s.reason().unwrap();
        assert!(
            reason.starts_with(&format!("family `{new}` is deliberately unpriced: ")),
            "{reason}"
        );
    }
}

#[test]
fn every_llm_of_a_family_nobody_prices_says_why() {
    // Models whose families never have a rule: every job of them, at any time they are
    // listed, gets the [unpriced] reason of its family (never "not in the catalog").
    let rs = shipped_rules();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for v in versions() {
        for (name, family) in v.models.iter().flatten() {
            seen.insert(name.clone(), family.clone());
        }
    }
    let never_priced: Vec<&String> = seen
        .keys()
        .filter(|name| {
            let entry = rs.catalog.get(*name).unwrap();
            entry
                .windows
                .iter()
                .all(|w| !rs.family_rules.contains_key(&w.family))
                && !rs.model_rules.contains_key(*name)
        })
        .collect();
    let llms: Vec<&&String> = never_priced
        .iter()
        .filter(|n| seen[**n].starts_with("llm"))
        .collect();
    assert_eq!(llms.len(), 26, "{llms:?}");
    for name in llms {
        let w = rs.catalog[*name].windows.last().unwrap();
        let at = jobpoints::internals::utc_string(w.when.since.unwrap());
        let s = llm(&rs, name, &at);
        assert_eq!(s.status(), Status::NoRule);
        assert_eq!(s.family(), Some(w.family.as_str()));
        let reason = s.reason().unwrap();
        assert!(
            reason.contains("is deliberately unpriced: "),
            "{name}: {reason}"
        );
        assert!(reason.contains(&rs.unpriced[&w.family]), "{name}: {reason}");
    }
}

#[test]
fn redirects_and_renames_price_as_their_model_inside_their_windows() {
    let rs = shipped_rules();
    // dolphin-2.9-llama3-8b's jobs were submitted under its redirect's name: from catalog 034
    // (2024-10-17T02:46:23Z) to 037, then under another until 038.
    for (name, at) in [
        ("dolphin-2.9.4-llama3.1-8b", "2024-10-17T02:46:23Z"),
        ("dolphin-2.9.4-llama3.1-8b", "2024-10-20T02:48:42Z"),
        ("dolphin-2.9.1-llama-3-8b", "2024-10-20T02:48:43Z"),
        ("dolphin-2.9.1-llama-3-8b", "2024-10-20T12:08:32Z"),
    ] {
        let s = llm(&rs, name, at);
        assert_eq!(
            (s.status(), s.rule(), s.points().to_string(), s.model()),
            (
                Status::Ok,
                Some("dolphin-2.9-llama3-8b@2"),
                "1.000000".into(),
                Some(name)
            ),
            "{name} at {at}"
        );
    }
    // Outside the redirect's window the name is its own model again (no published price).
    let s = llm(&rs, "dolphin-2.9.1-llama-3-8b", "2024-10-20T12:08:33Z");
    assert_eq!(s.status(), Status::NoRule);
    // A rename: the old name after the new one took over prices as the new one, and says so
    // when the new one is gone too.
    let s = image(&rs, "Aurora#MagusDevon", "2024-10-01T00:00:00Z");
    assert_eq!((s.status(), s.rule()), (Status::Ok, Some("composite15@2")));
    let s = image(&rs, "Aurora#MagusDevon", "2025-02-01T00:00:00Z");
    assert_eq!(s.status(), Status::NoRule);
    let reason = s.reason().unwrap();
    assert!(reason.starts_with("`Aurora#MagusDevon` is an alias of `MagusDevon` (rename from 2024-05-04T01:20:37Z (catalog 017, commit 6c2f28124d))"), "{reason}");
}

#[test]
fn explain_shows_the_alias_its_source_and_the_catalog_window() {
    let job = r#"{"id":"r","model":"dolphin-2.9.4-llama3.1-8b","input_tokens":600,"output_tokens":400,"completed_at":"2024-10-18T00:00:00Z"}"#;
    let out = jobpoints()
        .args(["eval", "-", "--explain", "--format", "json"])
        .write_stdin(job)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v[0];
    assert_eq!(
        r["model"], "dolphin-2.9.4-llama3.1-8b",
        "the job keeps its own name"
    );
    assert_eq!(r["family"], "llm8b16b");
    let alias = &r["trace"]["alias"];
    assert_eq!(alias["model"], "dolphin-2.9-llama3-8b");
    assert_eq!(alias["kind"], "redirect");
    assert!(
        alias["window"]
            .as_str()
            .unwrap()
            .contains("(catalog 034, commit f475cc93c8)")
    );
    assert!(alias["source"].as_str().unwrap().contains("redirect"));
    let catalog = r["trace"]["catalog"].as_str().unwrap();
    assert!(
        catalog.starts_with("llm8b16b from 2024-04-22T17:14:28Z (catalog 013"),
        "{catalog}"
    );
    let table = jobpoints()
        .args(["eval", "-", "--explain", "--format", "table"])
        .write_stdin(job)
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains(
            "dolphin-2.9.4-llama3.1-8b → dolphin-2.9-llama3-8b (redirect) → family llm8b16b"
        ),
        "{text}"
    );
    assert!(
        text.contains("alias        redirect of `dolphin-2.9-llama3-8b` from 2024-10-17T02:46:23Z"),
        "{text}"
    );
}

#[test]
fn every_model_of_every_version_resolves_to_its_family_of_that_time() {
    // From Season 1 on, each version's models, at the version's commit time, resolve in the
    // family the version gives them: priced, or an explicit `no_rule` of that family (a
    // rule's own decision, or [unpriced]); never "not in the catalog" or outside a window.
    let rs = shipped_rules();
    let season = parse_time("2024-04-01T00:00:00Z").unwrap();
    let mut checked = 0;
    let versions = versions();
    for (i, v) in versions.iter().enumerate() {
        let Some(models) = &v.models else { continue };
        let at = parse_time(&v.at).unwrap();
        let next = versions.get(i + 1).map(|n| parse_time(&n.at).unwrap());
        // A version before Season 1 counts only if still in force when it began.
        let at = match next {
            _ if at >= season => at,
            Some(n) if n > season => season,
            _ => continue,
        };
        for (name, family) in models {
            let s = llm(&rs, name, &jobpoints::internals::utc_string(at));
            assert_eq!(
                s.family(),
                Some(family.as_str()),
                "{name} at catalog {}",
                v.number
            );
            if s.status() == Status::NoRule {
                let reason = s.reason().unwrap();
                assert!(
                    !reason.contains("not in the catalog")
                        && !reason.contains("in the catalog only"),
                    "{name} at catalog {}: {reason}",
                    v.number
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1300, "{checked} model × version pairs");
}

// ---------------------------------------------------------------------------------------------
// `jobpoints catalog sync`.

#[test]
fn sync_on_the_full_history_reports_no_drift_for_the_shipped_rules() {
    let out = jobpoints()
        .args(["catalog", "sync", "--versions"])
        .arg(history())
        .args(["--check", "--rules", "rules"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no patch: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // 007 is genuinely invalid JSON: reported with its place, and skipped.
    assert!(
        stderr.contains("skipped: version 007 (bf00a20307, 2024-03-20T21:32:13Z): ")
            && stderr.contains("007_20240320_bf00a20307.json: line 142, column 1: trailing comma"),
        "{stderr}"
    );
    assert!(
        stderr.contains("decisions: 0 missing, 21 recorded, 2 declined"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rules/catalog.toml is what the history gives"),
        "{stderr}"
    );
    // The skipped version is recorded in the rule data too.
    let shipped = std::fs::read_to_string(crate::util::rules_dir().join("catalog.toml")).unwrap();
    assert!(shipped.contains("skipped = \"line 142, column 1: trailing comma\""));
}

#[test]
fn sync_proposes_the_catalog_and_writes_it_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules");
    copy_rules_to(&rules);
    let catalog = rules.join("catalog.toml");
    let shipped = std::fs::read_to_string(&catalog).unwrap();
    // The catalog as it was before #21: a day early, and missing the removal.
    let edited = shipped.replace(
        "\"mistralai/mistral-7b-instruct\" = { family = \"llm7b16b\", since = 2024-04-24T03:08:19Z, until = 2024-09-28T22:32:55Z, catalog = { since = \"014\", until = \"030\" } }",
        "\"mistralai/mistral-7b-instruct\" = { family = \"llm7b16b\", since = 2024-04-23 }",
    );
    assert_ne!(edited, shipped);
    std::fs::write(&catalog, &edited).unwrap();
    let sync = |extra: &[&str]| {
        jobpoints_in(tmp.path())
            .args(["catalog", "sync", "--versions"])
            .arg(history())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = sync(&["--check"]);
    assert_eq!(out.status.code(), Some(8));
    let patch = String::from_utf8(out.stdout).unwrap();
    assert!(
        patch.starts_with("--- a/rules/catalog.toml\n+++ b/rules/catalog.toml\n"),
        "{patch}"
    );
    assert!(
        patch.contains(
            "-\"mistralai/mistral-7b-instruct\" = { family = \"llm7b16b\", since = 2024-04-23 }"
        ),
        "{patch}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("info     removal       catalog 030 (2024-09-28T22:32:55Z): `mistralai/mistral-7b-instruct` (llm7b16b)"), "{stderr}");
    // Neither a dry run nor --check writes.
    assert_eq!(sync(&[]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&catalog).unwrap(), edited);
    let out = sync(&["--write"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&catalog).unwrap(), shipped);
    assert_eq!(sync(&["--check"]).status.code(), Some(0));
}

/// `git` in `dir` with a fixed identity; `date` sets both author and committer date.
fn git(dir: &Path, args: &[&str], date: Option<&str>) {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args);
    if let Some(d) = date {
        cmd.env("GIT_AUTHOR_DATE", d).env("GIT_COMMITTER_DATE", d);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small catalog repository: five commits of models.json, one of them invalid, dated in a
/// US evening (the next UTC day), and with every kind of decision in its history.
fn catalog_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"], None);
    let commits = [
        (
            "2024-05-01T20:00:00-07:00",
            "first",
            r#"[{"name": "BrainDance", "type": "sd15"}, {"name": "OldXL", "type": "sdxl10"}, {"name": "dolphin-2.9-llama3-8b", "type": "llm8b16b"}]"#,
        ),
        (
            "2024-05-02T20:00:00-07:00",
            "broken",
            r#"[{"name": "BrainDance", "type": "sd15"},]"#,
        ),
        (
            "2024-05-03T20:00:00-07:00",
            "rename OldXL, add a family",
            r#"[{"name": "BrainDance", "type": "sd15"}, {"name": "NewXL", "type": "sdxl10"}, {"name": "dolphin-2.9-llama3-8b", "type": "llm8b16b", "redirect": "dolphin-next"}, {"name": "dolphin-next", "type": "llm8b16b"}, {"name": "Big", "type": "llm99b"}]"#,
        ),
        (
            "2024-05-04T20:00:00-07:00",
            "retype Big, drop BrainDance",
            r#"[{"name": "NewXL", "type": "sdxl10"}, {"name": "dolphin-2.9-llama3-8b", "type": "llm8b16b"}, {"name": "Big", "type": "llm8x7b4b"}]"#,
        ),
    ];
    for (date, subject, json) in commits {
        std::fs::write(dir.join("models.json"), json).unwrap();
        std::fs::write(dir.join("README.md"), subject).unwrap();
        git(dir, &["add", "-A"], None);
        git(dir, &["commit", "-q", "-m", subject], Some(date));
    }
    // A commit that does not touch the catalog is not a version.
    std::fs::write(dir.join("README.md"), "docs").unwrap();
    git(
        dir,
        &["commit", "-q", "-am", "docs"],
        Some("2024-05-05T10:00:00Z"),
    );
    repo
}

fn sync_json(repo: &Path, rules: &Path) -> serde_json::Value {
    let out = jobpoints()
        .args([
            "catalog",
            "sync",
            "--format",
            "json",
            "--decisions",
            "--repo",
        ])
        .arg(repo)
        .arg("--rules")
        .arg(rules)
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

#[test]
fn sync_reads_a_git_clone_bare_or_not_and_lists_every_kind_of_decision() {
    let repo = catalog_repo();
    let rules = tempfile::tempdir().unwrap();
    copy_rules_to(rules.path());
    let v = sync_json(repo.path(), rules.path());
    assert_eq!(v["versions"], 4, "the docs commit is not a version");
    // The invalid version: reported with its place, and skipped.
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["version"], "002");
    assert_eq!(
        skipped[0]["at"], "2024-05-03T03:00:00Z",
        "UTC, not the committer's day"
    );
    assert_eq!(
        (skipped[0]["line"].as_u64(), skipped[0]["column"].as_u64()),
        (Some(1), Some(41))
    );
    assert_eq!(skipped[0]["problem"], "trailing comma");
    let decisions = v["decisions"].as_array().unwrap();
    let find = |kind: &str, status: &str| {
        decisions
            .iter()
            .filter(|d| d["kind"] == kind && d["status"] == status)
            .map(|d| d["subject"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(find("new_family", "missing"), ["family `llm99b` (Big)"]);
    assert_eq!(find("rename", "missing"), ["`OldXL` → `NewXL` (sdxl10)"]);
    assert_eq!(
        find("redirect", "missing"),
        ["`dolphin-2.9-llama3-8b` redirected to `dolphin-next`"]
    );
    assert_eq!(
        find("family_change", "info"),
        ["`Big`: `llm99b` → `llm8x7b4b`"]
    );
    let removals = find("removal", "info");
    assert_eq!(
        removals,
        [
            "`OldXL` (sdxl10)",
            "`BrainDance` (sd15)",
            "`dolphin-next` (llm8b16b)"
        ]
    );
    assert_eq!(v["missing"], 3);
    assert_eq!(v["drift"], true);
    let patch = v["patch"].as_str().unwrap();
    assert!(patch.contains("+BrainDance = { family = \"sd15\", since = 2024-05-02T03:00:00Z, until = 2024-05-05T03:00:00Z, catalog = { since = \"001\", until = \"004\" } }"), "{patch}");
    assert!(patch.contains("+002 = { commit = "), "{patch}");
    assert!(
        patch.contains(", subject = \"broken\", skipped = \"line 1, column 41: trailing comma\" }"),
        "{patch}"
    );
    // --check fails on drift and on missing decisions.
    let check = jobpoints()
        .args(["catalog", "sync", "--check", "--repo"])
        .arg(repo.path())
        .arg("--rules")
        .arg(rules.path())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(8));
    // A bare clone gives the same.
    let bare = tempfile::tempdir().unwrap();
    git(
        bare.path(),
        &[
            "clone",
            "-q",
            "--bare",
            repo.path().to_str().unwrap(),
            "clone.git",
        ],
        None,
    );
    let from_bare = sync_json(&bare.path().join("clone.git"), rules.path());
    assert_eq!(from_bare, v);
}

#[test]
fn recorded_decisions_are_kept_and_the_missing_ones_only_reported() {
    let repo = catalog_repo();
    let rules = tempfile::tempdir().unwrap();
    copy_rules_to(rules.path());
    std::fs::write(
        rules.path().join("catalog.toml"),
        r#"
source = "a test repository"

[models]

[aliases]
OldXL = { model = "NewXL", kind = "rename", source = "the same checkpoint, renamed" }
"gateway-name" = { model = "BrainDance", kind = "gateway", since = 2024-05-02, source = "the gateway rewrites it" }

[declined]
dolphin-next = { model = "dolphin-2.9-llama3-8b", kind = "redirect", reason = "not priced as the requested model" }

[unpriced]
llm99b = "no published multiplier"
"#,
    )
    .unwrap();
    let write = jobpoints()
        .args(["catalog", "sync", "--write", "--repo"])
        .arg(repo.path())
        .arg("--rules")
        .arg(rules.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&write.stderr);
    assert_eq!(write.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("decisions: 0 missing, 2 recorded, 1 declined"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(rules.path().join("catalog.toml")).unwrap();
    assert!(text.contains("OldXL = { model = \"NewXL\", kind = \"rename\", since = 2024-05-04T03:00:00Z, catalog = { since = \"003\" }, source = \"the same checkpoint, renamed\" }"), "{text}");
    assert!(text.contains("gateway-name = { model = \"BrainDance\", kind = \"gateway\", since = 2024-05-02T00:00:00Z, source = \"the gateway rewrites it\" }"), "{text}");
    assert!(text.contains("dolphin-next = { model = \"dolphin-2.9-llama3-8b\", kind = \"redirect\", catalog = \"003\", reason = \"not priced as the requested model\" }"), "{text}");
    assert!(
        text.contains("llm99b = \"no published multiplier\""),
        "{text}"
    );
    // The written catalog loads, and sync then finds nothing to change.
    let check = jobpoints()
        .args(["check", "--rules"])
        .arg(rules.path())
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let again = jobpoints()
        .args(["catalog", "sync", "--check", "--repo"])
        .arg(repo.path())
        .arg("--rules")
        .arg(rules.path())
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Jobs of the renamed model's old name are priced as the new one.
    let rs = jobpoints::internals::load(
        jobpoints::internals::RuleFiles::from_dir(rules.path()).unwrap(),
    )
    .ruleset
    .unwrap();
    let s = image(&rs, "OldXL", "2024-06-01T00:00:00Z");
    assert_eq!((s.status(), s.rule()), (Status::Ok, Some("sdxl10@1")));
}

#[test]
fn unreadable_histories_are_usage_errors_that_say_where() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("models_commits.csv"),
        "version_file,commit,committed_at_utc\na.json,abc,yesterday\n",
    )
    .unwrap();
    let out = jobpoints()
        .args(["catalog", "sync", "--versions"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("models_commits.csv:2: `committed_at_utc`"),
        "{stderr}"
    );
    // A file name that leaves the directory is refused.
    std::fs::write(
        tmp.path().join("models_commits.csv"),
        "version_file,commit,committed_at_utc\n../x.json,abc,2024-01-01T00:00:00Z\n",
    )
    .unwrap();
    let out = jobpoints()
        .args(["catalog", "sync", "--versions"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a file name"));
    // Not a git repository.
    let out = jobpoints()
        .args(["catalog", "sync", "--repo"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Neither source.
    let out = jobpoints().args(["catalog", "sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Scores each of `names` at every bound of its windows and aliases (a second either side,
/// forward then backward) through one scorer (one cache, as a ledger worker does) and
/// through a fresh resolution per job: the cache must never change an answer. Returns how
/// many jobs were compared.
fn cache_agrees(rs: &RuleSet, names: &[&str]) -> usize {
    use jobpoints::internals::{Scorer, utc_string};
    let mut times = Vec::new();
    for name in names {
        let bounds = (rs.catalog.get(*name).into_iter())
            .flat_map(|e| e.windows.iter().map(|w| &w.when))
            .chain(rs.aliases_of(name).iter().map(|a| &a.when));
        for when in bounds {
            for t in when.since.into_iter().chain(when.until) {
                for d in [-1, 0, 1] {
                    times.push(utc_string(t + jiff::SignedDuration::from_secs(d)));
                }
            }
        }
    }
    times.sort();
    times.dedup();
    let order: Vec<&String> = times.iter().chain(times.iter().rev()).collect();
    let scorer = Scorer::new(rs);
    let mut ctx = scorer.context();
    let mut compared = 0;
    for name in names {
        for at in &order {
            let job = serde_json::json!({
                "model": name, "input_tokens": 1000, "output_tokens": 1000,
                "width": 512, "height": 512, "steps": 20, "completed_at": at,
            });
            let record = parse_job(1, job);
            let cached =
                scorer.score_owned(&mut ctx, jobpoints::internals::JobInput::Record(&record));
            let fresh = score_record(rs, &record, ScoreOptions::default());
            let show = |s: &jobpoints::Score| {
                format!(
                    "{} {:?} {:?} {} {:?}",
                    s.status(),
                    s.family(),
                    s.rule(),
                    s.points(),
                    s.reason()
                )
            };
            assert_eq!(show(&cached), show(&fresh), "{name} at {at}");
            compared += 1;
        }
    }
    compared
}

#[test]
fn the_resolution_cache_agrees_with_fresh_resolution_across_windows_and_aliases() {
    let rs = shipped_rules();
    let names = [
        "mistralai/mixtral-8x7b-instruct",
        "mistralai/mixtral-8x7b-instruct-v0.1",
        "hermes-3-llama3.1-8b",
        "dolphin-2.9-llama3-8b",
        "dolphin-2.9.4-llama3.1-8b",
        "dolphin-2.9.1-llama-3-8b",
        "Aurora#MagusDevon",
        "deepseek/deepseek-chat",
    ];
    assert!(cache_agrees(&rs, &names) > 500);
    // An alias whose bounds are no other bound of its name or its model: only the alias's
    // own window cuts the cache there.
    let loaded = jobpoints::internals::load(crate::rule_errors::overlay(
        "--- catalog.toml\n!after [aliases]\n\"gw/sdxl\" = [\n  { model = \"AnimagineXL\", kind = \"gateway\", since = 2024-06-01T12:00:00Z, until = 2024-07-01T06:00:00Z, source = \"test\" },\n  { model = \"SDXL\", kind = \"gateway\", since = 2024-08-01T12:00:00Z, source = \"test\" },\n]\n",
    ));
    let rs = loaded
        .ruleset
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    assert_eq!(cache_agrees(&rs, &["gw/sdxl"]), 18);
}

#[test]
fn models_lists_windows_and_aliases_as_of_a_time() {
    let out = jobpoints()
        .args(["models", "--format", "json", "--at", "2024-10-18"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |m: &str| rows.iter().find(|r| r["model"] == m).unwrap().clone();
    // The redirect's name, priced as its model then.
    let r = row("dolphin-2.9.4-llama3.1-8b");
    assert_eq!(
        (&r["status"], &r["rule"]),
        (
            &serde_json::json!("priced"),
            &serde_json::json!("dolphin-2.9-llama3-8b@2")
        ),
        "{r}"
    );
    assert!(
        r["alias"]
            .as_str()
            .unwrap()
            .starts_with("alias of `dolphin-2.9-llama3-8b` (redirect from 2024-10-17T02:46:23Z"),
        "{r}"
    );
    // Every window with its catalog versions.
    let m = row("mistralai/mixtral-8x7b-instruct");
    let w = m["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{m}");
    assert_eq!(
        (&w[0]["family"], &w[0]["since_catalog"]["commit"]),
        (
            &serde_json::json!("llm8x7b4b"),
            &serde_json::json!("2e6665a1eeddbeb1a5d5bb87799e607c8b07590b")
        )
    );
    assert_eq!(w[1]["until_catalog"]["number"], "059");
    // A renamed name: a model until catalog 056, an alias from then.
    let a = row("fetch-ai/ASI1-mini");
    assert!(a["alias"].as_str().unwrap().contains("rename"), "{a}");
}

#[test]
fn thousands_of_windows_and_alias_windows_load_and_resolve_quickly() {
    // A hostile catalog.toml near the size limit: one model listed for one hour a day on
    // 4,000 days, and an alias of it with 4,000 windows of its own. The loader checks them
    // (overlaps, chains, shadowing) by binary search, not pair by pair.
    let n = 4_000;
    let start = parse_time("2020-01-01T00:00:00Z").unwrap();
    let day = |i: i64, h: i64| {
        jobpoints::internals::utc_string(start + jiff::SignedDuration::from_hours(24 * i + h))
    };
    let mut text = String::from("[models]\nBrainDance = \"sd15\"\nMany = [\n");
    for i in 0..n {
        text.push_str(&format!(
            "  {{ family = \"sdxl10\", since = {}, until = {} }},\n",
            day(i, 0),
            day(i, 1)
        ));
    }
    text.push_str("]\n\n[aliases]\nOften = [\n");
    for i in 0..n {
        text.push_str(&format!(
            "  {{ model = \"Many\", kind = \"gateway\", since = {}, until = {}, source = \"t\" }},\n",
            day(i, 2),
            day(i, 3)
        ));
    }
    text.push_str("]\n");
    assert!(
        text.len() < jobpoints::internals::MAX_RULE_FILE_BYTES,
        "{}",
        text.len()
    );
    let started = std::time::Instant::now();
    let loaded = jobpoints::internals::load(crate::rule_errors::overlay(&format!(
        "--- catalog.toml\n{text}"
    )));
    let took = started.elapsed();
    let rs = loaded.ruleset.unwrap_or_else(|| {
        panic!(
            "{:?}",
            &loaded.diagnostics[..3.min(loaded.diagnostics.len())]
        )
    });
    assert!(
        took < std::time::Duration::from_secs(10),
        "load took {took:?}"
    );
    assert_eq!(rs.catalog["Many"].windows.len(), n as usize);
    // Inside a window of the model, of the alias, and in neither.
    let s = image(&rs, "Many", &day(2_000, 0));
    assert_eq!((s.status(), s.rule()), (Status::Ok, Some("sdxl10@3")));
    let s = image(&rs, "Often", &day(2_000, 2));
    assert_eq!(
        (s.status(), s.rule()),
        (Status::NoRule, None),
        "the alias's window is outside the model's: {:?}",
        s.reason()
    );
    assert!(
        s.reason().unwrap().contains("is an alias of `Many`"),
        "{:?}",
        s.reason()
    );
    // A reason names the windows around the job's time, not all 4,000.
    let s = image(&rs, "Many", &day(2_000, 1));
    assert_eq!(s.status(), Status::NoRule);
    let reason = s.reason().unwrap();
    assert!(
        reason.contains(&format!("until {}, and from", day(2_000, 1)))
            && reason.contains("(and 3998 other windows)")
            && reason.len() < 400,
        "{reason}"
    );
}
