//! Rule data dated from a commit is dated at that commit's UTC time (#21), never at a
//! calendar day of it: a committer's local date is up to a day off (catalog 034 was committed
//! on 2024-10-16 in its committer's zone, 2024-10-17T02:46:23Z), and even the UTC day's
//! midnight prices hours of jobs under a version not yet in force.
//!
//! The guard reads every rule version and every execution-limits entry of a rule set and the
//! commits their `source`, `notes` and `assumptions` cite: a hash prefix of a catalog version
//! (catalog.toml `[versions]`) or of a miner-release commit (the table below), or `catalog NNN`.
//! Its checks:
//! - an entry dated within 36 hours of a commit it cites (where any time zone's calendar day of
//!   the commit falls) is dated exactly at the UTC time of one of the commits it cites;
//! - an entry that says its date is inferred cites what it is inferred from and is dated at it;
//! - every hash it cites is known, so a new citation is checked too (add it to the table).
//!
//! An entry dated far from what it cites (a later version citing an old commit for a number)
//! is not constrained; a published date (Season 1's 2024-04-01) cites no commit.

use crate::util::score_record;
use jiff::{SignedDuration, Timestamp};
use jobpoints::internals::{
    RuleFiles, RuleSet, ScoreOptions, load, parse_job, parse_time, utc_string,
};

use crate::rule_errors::overlay;
use crate::util::shipped_rules;

/// How far a calendar day of a commit (its date in any zone, UTC-12 to UTC+14, read as that
/// date's UTC midnight) can be from its UTC time.
const CALENDAR_DAY_REACH: SignedDuration = SignedDuration::from_hours(36);

/// The heurist-network/miner-release commits the rules cite, with their UTC commit times. Source:
/// `TZ=UTC git log -1 --date=iso-strict-local --format=%cd HASH` in a clone of
/// github.com/heurist-network/miner-release (the committer's own zone in the comment).
const MINER_RELEASE: &[(&str, &str, &str)] = &[
    // 2024-02-10 07:52:55 -0800
    (
        "e475d32a542e4b6599313b9ebbda9c1804294285",
        "2024-02-10T15:52:55Z",
        "feat: add max iterations, width, height",
    ),
    // 2024-02-19 13:20:21 +0100
    (
        "bd1a2c68b86ac5c5e4516b743c71066a96cdab6e",
        "2024-02-19T12:20:21Z",
        "Rounding the width and height",
    ),
    // 2024-02-19 04:29:00 -0800
    (
        "9ca67d1f8cbec67ac7f82c4315f3e61161118074",
        "2024-02-19T12:29:00Z",
        "Merge pull request #3 from Dereek69/main",
    ),
    // 2024-03-30 17:57:19 -0700
    (
        "9ab6d779ed1f572ab09fc9c012716785520c745d",
        "2024-03-31T00:57:19Z",
        "release sd v1.1.0 and llm v1.0.0",
    ),
    // 2024-04-15 02:54:13 +0000: `sd_timeout_seconds = 22`, `llm_timeout_seconds = 210`
    (
        "75e0c76557b491a5e7959fec016c173fa6d75603",
        "2024-04-15T02:54:13Z",
        "chore: add warning message if job processing takes longer than timeout thresholds",
    ),
    // 2024-09-15 21:49:10 -0400
    (
        "1dcaa7a7089710ac44833ec1574a8062d4c09ac5",
        "2024-09-16T01:49:10Z",
        "Feature/containerize sd miner and support Flux (#62)",
    ),
    // 2024-09-16 20:53:14 -0400: timeouts 22 → 18 s (SD) and 210 → 180 s (LLM)
    (
        "821dc379ce86f3e1e16a247f58390000fbb52898",
        "2024-09-17T00:53:14Z",
        "update SD version to 1.4.0",
    ),
    // 2024-10-19 18:14:49 -0400
    (
        "2eea7cf154459a768327c3e272cd4b98411da635",
        "2024-10-19T22:14:49Z",
        "LLM v1.2.0: update prompt decoding methods and support tools (#64)",
    ),
    // 2025-02-26 19:58:14 +0530
    (
        "3501085c586c21490b413957e367e370878d7610",
        "2025-02-26T14:28:14Z",
        "Merge pull request #67 from heurist-network/stat-collect",
    ),
];

/// A commit rule data may be dated from.
#[derive(Debug)]
struct Commit {
    /// `catalog 034 (f475cc93)` or `miner-release 821dc37`.
    label: String,
    /// The catalog version's number, for `catalog NNN` citations.
    catalog: Option<String>,
    hash: String,
    at: Timestamp,
}

/// The catalog's versions (the rule set's own catalog.toml) and the miner-release table.
fn known_commits(rules: &RuleSet) -> Vec<Commit> {
    let catalog: toml::Table =
        toml::from_str(rules.files_text("catalog.toml")).expect("catalog.toml parses");
    let versions = catalog["versions"]
        .as_table()
        .expect("catalog.toml has [versions]");
    let mut commits: Vec<Commit> = versions
        .iter()
        .map(|(number, v)| {
            let hash = v["commit"].as_str().expect("a commit").to_string();
            let at = v["at"].as_datetime().expect("an `at` datetime").to_string();
            Commit {
                label: format!("catalog {number} ({})", &hash[..8]),
                catalog: Some(number.clone()),
                at: parse_time(&at).expect("a UTC time"),
                hash,
            }
        })
        .collect();
    commits.extend(MINER_RELEASE.iter().map(|(hash, at, _subject)| Commit {
        label: format!("miner-release {}", &hash[..7]),
        catalog: None,
        hash: hash.to_string(),
        at: parse_time(at).unwrap(),
    }));
    commits
}

/// The commits `text` cites: hash prefixes (a word of 7 to 40 hex digits with a letter and a
/// digit) and `catalog NNN`. A citation that names no known commit, or more than one, is an error.
fn citations<'c>(text: &str, commits: &'c [Commit]) -> Result<Vec<&'c Commit>, String> {
    // Words split at spaces and brackets and punctuation, not inside paths and file names
    // (`shared/seed/000_af9c04d5232a26ac.txt` names no commit).
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || "()[]{},;:'\"`".contains(c))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut cited = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let found: Vec<&Commit> = if word.eq_ignore_ascii_case("catalog")
            && let Some(n) = words.get(i + 1)
            && n.len() == 3
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            let found: Vec<_> = commits
                .iter()
                .filter(|c| c.catalog.as_deref() == Some(n))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "cites catalog {n}, which catalog.toml does not list"
                ));
            }
            found
        } else if (7..=40).contains(&word.len())
            && word.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && word.bytes().any(|b| b.is_ascii_digit())
            && word.bytes().any(|b| b.is_ascii_alphabetic())
        {
            let found: Vec<_> = commits
                .iter()
                .filter(|c| c.hash.starts_with(word))
                .collect();
            match found.len() {
                1 => found,
                0 => {
                    return Err(format!(
                        "cites commit {word}, which is neither a catalog version nor in this \
                         test's miner-release table: add it with its UTC commit time"
                    ));
                }
                _ => return Err(format!("cites commit {word}, which is ambiguous")),
            }
        } else {
            continue;
        };
        for c in found {
            if !cited.iter().any(|d: &&Commit| d.hash == c.hash) {
                cited.push(c);
            }
        }
    }
    Ok(cited)
}

/// Whether `text` says a date is inferred (in one sentence), e.g. "The effective date is
/// inferred from the catalog history" or "2024-10-16 is inferred from ...".
fn says_date_is_inferred(text: &str) -> bool {
    let has_day = |s: &str| {
        (s.as_bytes().windows(10)).any(|w| {
            (w.iter().enumerate()).all(|(i, b)| {
                if i == 4 || i == 7 {
                    *b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
        })
    };
    text.split(". ").any(|sentence| {
        let s = sentence.to_lowercase();
        (s.contains("date") || has_day(&s)) && s.contains("inferred")
    })
}

/// One dated entry: a rule version or an execution-limits entry.
struct Dated<'r> {
    what: String,
    effective_from: Timestamp,
    prose: Vec<&'r str>,
}

fn dated_entries(rules: &RuleSet) -> Vec<Dated<'_>> {
    let mut out = Vec::new();
    for rule in rules.rules() {
        for v in &rule.versions {
            let mut prose = vec![v.source.as_str()];
            prose.extend(v.notes.as_deref());
            prose.extend(v.assumptions.iter().map(String::as_str));
            out.push(Dated {
                what: format!("{} ({}:{})", v.label, rule.file, v.line),
                effective_from: v.effective_from,
                prose,
            });
        }
    }
    for (kind, k) in &rules.job_kinds {
        for l in &k.execution_limits {
            let mut prose = vec![l.source.as_str()];
            prose.extend(l.notes.as_deref());
            prose.extend(l.assumptions.iter().map(String::as_str));
            out.push(Dated {
                what: format!("execution limits of `{kind}` (kinds.toml:{})", l.place.line),
                effective_from: l.effective_from,
                prose,
            });
        }
    }
    out
}

/// Every entry of `rules` dated off the commit it is dated from, one line each.
fn misdated(rules: &RuleSet) -> Vec<String> {
    let commits = known_commits(rules);
    let mut problems = Vec::new();
    for entry in dated_entries(rules) {
        let from = utc_string(entry.effective_from);
        let mut cited: Vec<&Commit> = Vec::new();
        for text in &entry.prose {
            match citations(text, &commits) {
                Ok(found) => cited.extend(found),
                Err(e) => problems.push(format!("{}: {e}", entry.what)),
            }
        }
        if cited.iter().any(|c| c.at == entry.effective_from) {
            continue;
        }
        let near = cited
            .iter()
            .find(|c| (entry.effective_from.duration_since(c.at)).abs() < CALENDAR_DAY_REACH);
        if let Some(c) = near {
            let off = entry.effective_from.duration_since(c.at);
            problems.push(format!(
                "{}: effective_from {from} is {:#} {} {}, which it cites: a calendar day of \
                 the commit, not its UTC time {}",
                entry.what,
                off.abs(),
                if off.is_negative() { "before" } else { "after" },
                c.label,
                utc_string(c.at),
            ));
        } else if entry.prose.iter().any(|t| says_date_is_inferred(t)) {
            let names: Vec<String> = cited
                .iter()
                .map(|c| format!("{} {}", c.label, utc_string(c.at)))
                .collect();
            problems.push(if names.is_empty() {
                format!(
                    "{}: says its date ({from}) is inferred but cites no commit or catalog \
                     version it is inferred from",
                    entry.what
                )
            } else {
                format!(
                    "{}: says its date is inferred, but {from} is the time of none of what it \
                     cites: {}",
                    entry.what,
                    names.join(", ")
                )
            });
        }
    }
    problems
}

fn loaded(files: RuleFiles) -> RuleSet {
    let loaded = load(files);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.ruleset.unwrap()
}

#[test]
fn every_rule_version_dated_from_a_commit_is_dated_at_its_utc_commit_time() {
    let problems = misdated(&shipped_rules());
    assert!(
        problems.is_empty(),
        "rule data dated off the commit it cites:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_miner_release_table_lists_each_commit_once_with_a_utc_time() {
    for (i, (hash, at, subject)) in MINER_RELEASE.iter().enumerate() {
        assert_eq!(hash.len(), 40, "{subject}: a full hash");
        assert!(at.ends_with('Z'), "{hash}: {at} is not a UTC time");
        assert_eq!(utc_string(parse_time(at).unwrap()), *at, "{hash}");
        assert!(
            MINER_RELEASE[..i].iter().all(|(h, ..)| h[..7] != hash[..7]),
            "{hash} is listed twice"
        );
    }
}

/// The shipped rules with every version dated from a commit moved back to its committer's
/// calendar day, as they were before #21's correction: that day's UTC midnight. Returns the
/// places (`file:line` of each moved `[[version]]`).
fn rules_dated_by_committer_day() -> (RuleSet, Vec<String>) {
    // Commits whose committer's day is not their UTC day (models_commits.csv and the
    // miner-release table above); every other moved version takes its UTC day.
    const LOCAL_DAY: &[(&str, &str)] = &[
        ("2024-10-17T02:46:23Z", "2024-10-16"), // catalog 034, -04:00
        ("2024-10-27T01:45:12Z", "2024-10-26"), // catalog 039, -04:00
        ("2024-09-17T00:53:14Z", "2024-09-16"), // miner-release 821dc37, -04:00
    ];
    let mut files = RuleFiles::from_dir(&crate::util::rules_dir()).unwrap();
    let mut moved = Vec::new();
    let paths: Vec<String> = files.files.keys().cloned().collect();
    for path in paths {
        if !(path.starts_with("families/") || path.starts_with("models/")) {
            continue;
        }
        let text = files.text(&path).unwrap().to_string();
        let mut out = String::new();
        let mut header = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if line.starts_with("[[version]]") {
                header = n + 1;
            }
            match line.strip_prefix("effective_from = ") {
                Some(t) if t.trim_end().len() == 20 => {
                    let t = t.trim_end();
                    let day = LOCAL_DAY
                        .iter()
                        .find(|(utc, _)| *utc == t)
                        .map_or(&t[..10], |(_, day)| day);
                    moved.push(format!("{path}:{header}"));
                    out.push_str(&format!("effective_from = {day}\n"));
                }
                _ => out.push_str(line),
            }
        }
        files.files.insert(path, out.into_bytes());
    }
    (loaded(files), moved)
}

/// A small dated ledger: jobs inside the hours the committer-day dates got wrong, and one at
/// each corrected time, which both datings price alike.
const GAPS_LEDGER: &str = "tests/fixtures/jobs/commit_time_gaps.jsonl";

/// Each job of the ledger, in order: its id and `status rule points`.
fn outcomes(rules: &RuleSet) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(crate::util::root().join(GAPS_LEDGER)).unwrap();
    (text.lines().enumerate())
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let job = parse_job(n as u64 + 1, serde_json::from_str(l).unwrap());
            let s = score_record(rules, &job, ScoreOptions::default());
            let id = s.id().unwrap_or("-").to_string();
            (
                id,
                format!("{} {} {}", s.status(), s.rule().unwrap_or("-"), s.points()),
            )
        })
        .collect()
}

/// (id, priced with the committer's days, priced with the UTC commit times)
const GAP_OUTCOMES: &[(&str, &str, &str)] = &[
    // 2024-09-18T08:00Z, before catalog 029 (16:17:11Z): table A was not yet in force.
    ("g01", "ok sd15@2 0.300000", "ok sd15@1 1.000000"),
    ("g02", "ok sdxl10@2 6.000000", "ok sdxl10@1 10.800000"),
    (
        "g03",
        "ok compositexl@2 7.200000",
        "no_rule compositexl@1 0.000000",
    ),
    (
        "g04",
        "ok dolphin-2.9-llama3-8b@1 0.240000",
        "no_rule llm8b16b@1 0.000000",
    ),
    // FLUX.1-dev is not in the catalog before 029 either way; from 029 on, 10x.
    ("g05", "no_rule - 0.000000", "no_rule - 0.000000"),
    ("g06", "ok flux-dev@1 60.000000", "ok flux-dev@1 60.000000"),
    // 195 s on 2024-09-16 (UTC), before 821dc37 (2024-09-17T00:53:14Z) lowered 210 s to 180 s.
    (
        "g07",
        "over_limit llm8x7b4b@3 0.000000",
        "ok llm8x7b4b@2 1.000000",
    ),
    (
        "g08",
        "over_limit llm8x7b4b@3 0.000000",
        "over_limit llm8x7b4b@3 0.000000",
    ),
    // 300 s at 01:00Z, before 75e0c76 (02:54:13Z) set the first timeout.
    (
        "g09",
        "over_limit llm8x7b4b@2 0.000000",
        "ok llm8x7b4b@1 1.000000",
    ),
    (
        "g10",
        "over_limit llm8x7b4b@2 0.000000",
        "over_limit llm8x7b4b@2 0.000000",
    ),
    // 2024-10-16T12:00Z, before catalog 034 (2024-10-17T02:46:23Z): table A still in force, no
    // image timeout, FLUX not yet disabled, dolphin at 0.24x, openhermes-mixtral by its family.
    (
        "g11",
        "over_limit sdxl10@3 0.000000",
        "ok sdxl10@2 6.000000",
    ),
    (
        "g12",
        "over_limit sdxl10@3 0.000000",
        "over_limit sdxl10@3 0.000000",
    ),
    (
        "g13",
        "disabled flux-dev@2 0.000000",
        "ok flux-dev@1 60.000000",
    ),
    (
        "g14",
        "ok dolphin-2.9-llama3-8b@2 0.500000",
        "ok dolphin-2.9-llama3-8b@1 0.240000",
    ),
    ("g15", "no_rule - 0.000000", "no_rule - 0.000000"),
    (
        "g16",
        "ok openhermes-mixtral-8x7b-gptq@1 1.000000",
        "ok llm8x7b4b@3 1.000000",
    ),
    // HeuristLogo is not in the catalog before 039 (2024-10-27T01:45:12Z) either way.
    ("g17", "no_rule - 0.000000", "no_rule - 0.000000"),
    // Removals: still listed until 032 (2024-10-08T22:28:57Z) and 044 (2025-01-16T19:59:26Z).
    (
        "g18",
        "no_rule openhermes-2-pro-mistral-7b@2 0.000000",
        "ok openhermes-2-pro-mistral-7b@1 0.400000",
    ),
    (
        "g19",
        "no_rule openhermes-mixtral-8x7b-gptq@2 0.000000",
        "ok openhermes-mixtral-8x7b-gptq@1 1.000000",
    ),
    ("g20", "no_rule - 0.000000", "no_rule - 0.000000"),
];

#[test]
fn jobs_in_the_corrected_hours_are_priced_by_the_version_then_in_force() {
    let (by_day, _) = rules_dated_by_committer_day();
    let before = outcomes(&by_day);
    let after = outcomes(&shipped_rules());
    let expected = |after: bool| -> Vec<(String, String)> {
        (GAP_OUTCOMES.iter())
            .map(|&(id, b, a)| (id.to_string(), if after { a } else { b }.to_string()))
            .collect()
    };
    assert_eq!(before, expected(false));
    assert_eq!(after, expected(true));
}

#[test]
fn diff_flags_the_corrected_versions_retroactive_and_reprices_the_gaps() {
    let (by_day, places) = rules_dated_by_committer_day();
    let dir = tempfile::tempdir().unwrap();
    for (rel, bytes) in &by_day.files.files {
        let path = dir.path().join("old").join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let out = crate::util::jobpoints()
        .args(["diff"])
        .arg(dir.path().join("old"))
        .arg(crate::util::rules_dir())
        .args(["--format", "json", "--jobs", GAPS_LEDGER])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A job changes when its status or points do (g16 only changes the rule that prices it).
    let status_and_points = |o: &str| {
        let w: Vec<&str> = o.split(' ').collect();
        (w[0].to_string(), w[2].to_string())
    };
    let changed = (GAP_OUTCOMES.iter())
        .filter(|o| status_and_points(o.1) != status_and_points(o.2))
        .count();
    assert_eq!(changed, 11);
    assert_eq!(report["impact"]["total"]["jobs"], GAP_OUTCOMES.len());
    assert_eq!(report["impact"]["total"]["changed"], changed);
    // Every moved `effective_from` is an edit of a released version, flagged; those whose
    // hours a listed model could be priced in rewrite the past.
    let moved: Vec<&serde_json::Value> = (report["changes"].as_array().unwrap().iter())
        .filter(|c| c["field"] == "effective_from")
        .collect();
    assert_eq!(moved.len(), places.len(), "{moved:#?}");
    assert!(moved.iter().all(|c| c["flag"].is_string()), "{moved:#?}");
    let unlisted = [
        "flux-dev-lora",
        "hermes-3-llama3.1-8b",
        "theia-llama-3.1-8b",
    ];
    for c in &moved {
        let subject = c["subject"].as_str().unwrap();
        let listed = !unlisted
            .iter()
            .any(|r| subject == format!("rule `{r}` version 1"));
        assert_eq!(c["retroactive"].is_object(), listed, "{c:#}");
    }
}

/// The guard's own checks: what it must catch, and what it must let pass.
mod guard {
    use super::*;

    #[test]
    fn it_names_every_version_dated_at_a_calendar_day_of_its_commit() {
        let (rules, moved) = rules_dated_by_committer_day();
        assert!(moved.len() >= 20, "{moved:?}");
        let problems = misdated(&rules);
        for place in &moved {
            assert!(
                problems.iter().any(|p| p.contains(&format!("({place})"))),
                "{place} is dated at a calendar day but not reported:\n{}",
                problems.join("\n")
            );
        }
        assert_eq!(problems.len(), moved.len(), "{}", problems.join("\n"));
        let table_b = problems
            .iter()
            .find(|p| p.contains("sdxl10@3"))
            .expect("sdxl10@3 is reported");
        assert!(
            table_b.contains(
                "effective_from 2024-10-16T00:00:00Z is 26h 46m 23s before catalog 034 (f475cc93)"
            ),
            "{table_b}"
        );
    }

    fn version(effective_from: &str, prose: &str) -> RuleSet {
        loaded(overlay(&format!(
            "--- families/flux-dev-lora.toml\n[rule]\nfamily = \"flux-dev-lora\"\nkind = \
             \"image\"\n\n[[version]]\nversion = 1\neffective_from = {effective_from}\n{prose}\n\
             no_rule = \"test\"\n"
        )))
    }

    fn problems_of_flux_dev_lora(rules: &RuleSet) -> Vec<String> {
        (misdated(rules).into_iter())
            .filter(|p| p.contains("flux-dev-lora"))
            .collect()
    }

    #[test]
    fn a_version_at_the_commit_time_of_what_it_cites_passes() {
        let rules = version(
            "2024-10-27T01:45:12Z",
            "source = \"catalog 039 added HeuristLogo\"",
        );
        assert_eq!(problems_of_flux_dev_lora(&rules), Vec::<String>::new());
        // By hash prefix too, and among other citations.
        let rules = version(
            "2024-09-17T00:53:14Z",
            "source = \"timeout of 821dc379 (2024-09-17T00:53:14Z), after 1dcaa7a\"",
        );
        assert_eq!(problems_of_flux_dev_lora(&rules), Vec::<String>::new());
    }

    #[test]
    fn a_version_far_from_what_it_cites_is_not_constrained() {
        // A governance date, with a number sourced from an old commit.
        let rules = version(
            "2026-12-01",
            "source = \"multiplier as in catalog 039; governance vote\"",
        );
        assert_eq!(problems_of_flux_dev_lora(&rules), Vec::<String>::new());
    }

    #[test]
    fn a_local_day_or_a_utc_midnight_near_a_cited_commit_fails() {
        for day in ["2024-10-26", "2024-10-27", "2024-10-27T00:00:00Z"] {
            let rules = version(day, "source = \"catalog 039 (5df8e9f5)\"");
            let problems = problems_of_flux_dev_lora(&rules);
            assert_eq!(problems.len(), 1, "{day}: {problems:?}");
            assert!(problems[0].contains("2024-10-27T01:45:12Z"), "{problems:?}");
        }
        // A miner-release commit: its committer's day, 2024-09-16.
        let rules = version("2024-09-16", "source = \"miner-release 821dc37\"");
        assert_eq!(problems_of_flux_dev_lora(&rules).len(), 1);
    }

    #[test]
    fn an_inferred_date_must_cite_what_it_is_inferred_from() {
        let rules = version(
            "2024-10-27T01:45:12Z",
            "source = \"docs\"\nassumptions = [\"The effective date is inferred from the \
             catalog history, not published.\"]",
        );
        let problems = problems_of_flux_dev_lora(&rules);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("cites no commit"), "{problems:?}");
        // Citing a version it is not dated at, far from it.
        let rules = version(
            "2024-12-01",
            "source = \"docs\"\nassumptions = [\"The date is inferred from catalog 039.\"]",
        );
        let problems = problems_of_flux_dev_lora(&rules);
        assert!(
            problems[0].contains("none of what it cites"),
            "{problems:?}"
        );
        // A day said to be inferred is a date said to be inferred.
        let rules = version(
            "2024-12-01",
            "source = \"docs\"\nassumptions = [\"2024-12-01 is inferred from the catalog.\"]",
        );
        let problems = problems_of_flux_dev_lora(&rules);
        assert!(problems[0].contains("cites no commit"), "{problems:?}");
    }

    #[test]
    fn an_unknown_or_unlisted_citation_fails() {
        let rules = version("2024-12-01", "source = \"miner-release commit abc1234\"");
        let problems = problems_of_flux_dev_lora(&rules);
        assert!(problems[0].contains("abc1234"), "{problems:?}");
        let rules = version("2024-12-01", "source = \"catalog 999\"");
        let problems = problems_of_flux_dev_lora(&rules);
        assert!(problems[0].contains("catalog 999"), "{problems:?}");
        // Words and numbers are not hashes.
        let rules = version(
            "2024-12-01",
            "source = \"defaced 1234567 effaced, catalog.toml, seed/000_af9c04d5232a26ac.txt\"",
        );
        assert_eq!(problems_of_flux_dev_lora(&rules), Vec::<String>::new());
    }
}
