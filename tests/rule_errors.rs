//! Broken rule sets: each `tests/fixtures/rules/err_*.txt` is an overlay written over a copy
//! of `rules/`; its snapshot shows the overlay and every diagnostic `check` reports.
//! `ok_*.txt` overlays are valid rules-only changes; their snapshots show jobs scored with them.

use std::path::Path;

use jobpoints::internals::{RuleFiles, RulesOrigin, load, render_human};

use crate::util::{rules_dir, with_snapshots};

/// Applies an overlay (`--- path` starts a file; a body of `!delete` removes it; a body
/// whose first line is `!after LINE` is inserted into the file after its first line equal
/// to LINE, so a fixture can add to a long generated file such as catalog.toml).
pub fn overlay(text: &str) -> RuleFiles {
    let mut files = RuleFiles::from_dir(&rules_dir()).unwrap();
    files.origin = RulesOrigin::Directory("rules+overlay".into());
    let mut current: Option<(String, String)> = None;
    let flush = |cur: Option<(String, String)>, files: &mut RuleFiles| {
        if let Some((path, body)) = cur {
            if body.trim() == "!delete" {
                files.files.remove(&path);
            } else if let Some(rest) = body.strip_prefix("!after ") {
                let (anchor, insert) = rest.split_once('\n').unwrap_or((rest, ""));
                let text = files.text(&path).expect("!after edits an existing file");
                // The end of the first line equal to `anchor` (its newline included).
                let mut end = None;
                let mut start = 0;
                for line in text.split_inclusive('\n') {
                    if line.trim_end_matches('\n') == anchor {
                        end = Some(start + line.len());
                        break;
                    }
                    start += line.len();
                }
                let end = end.unwrap_or_else(|| panic!("{path} has no line `{anchor}`"));
                let edited = format!("{}{insert}{}", &text[..end], &text[end..]);
                files.files.insert(path, edited.into_bytes());
            } else {
                files.files.insert(path, body.into_bytes());
            }
        }
    };
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("--- ") {
            flush(current.take(), &mut files);
            current = Some((path.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    flush(current, &mut files);
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn broken_rule_sets_report_their_diagnostics() {
    with_snapshots(|| {
        insta::glob!("fixtures/rules/err_*.txt", |path| {
            let input = read(path);
            let loaded = load(overlay(&input));
            let name = path.file_stem().unwrap().to_str().unwrap();
            let expected_code = name.trim_start_matches("err_").replace('_', "-");
            assert!(loaded.has_errors(), "{name} must be rejected");
            assert!(
                loaded.ruleset.is_none(),
                "{name}: an invalid rule set is not usable"
            );
            assert!(
                loaded.diagnostics.iter().any(|d| d.code() == expected_code),
                "{name} must report `{expected_code}`, got {:?}",
                loaded
                    .diagnostics
                    .iter()
                    .map(|d| d.code())
                    .collect::<Vec<_>>()
            );
            let files = &loaded.files;
            let report = render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from));
            insta::assert_snapshot!(format!("--- overlay ---\n{input}\n--- check ---\n{report}"));
        });
    });
}

#[test]
fn warnings_do_not_block_the_rule_set() {
    with_snapshots(|| {
        insta::glob!("fixtures/rules/warn_*.txt", |path| {
            let input = read(path);
            let loaded = load(overlay(&input));
            let name = path.file_stem().unwrap().to_str().unwrap();
            let expected_code = name.trim_start_matches("warn_").replace('_', "-");
            assert!(!loaded.has_errors(), "{name}: {:?}", loaded.diagnostics);
            assert!(loaded.ruleset.is_some());
            assert!(
                loaded
                    .diagnostics
                    .iter()
                    .any(|d| d.code() == expected_code && !d.is_error()),
                "{name} must warn `{expected_code}`"
            );
            let files = &loaded.files;
            let report = render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from));
            insta::assert_snapshot!(format!("--- overlay ---\n{input}\n--- check ---\n{report}"));
        });
    });
}

#[test]
fn rules_only_changes_load_and_score() {
    with_snapshots(|| {
        insta::glob!("fixtures/rules/ok_*.txt", |path| {
            let input = read(path);
            let (rules, jobs) = input
                .split_once("=== jobs\n")
                .expect("ok_ fixtures end with `=== jobs` and JSONL jobs");
            let loaded = load(overlay(rules));
            let diags: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
            let rs = loaded
                .ruleset
                .unwrap_or_else(|| panic!("{}: {diags:#?}", path.display()));
            let mut out = String::new();
            for record in jobpoints::internals::JobReader::new(jobs.as_bytes()) {
                let s = crate::util::score_record(&rs, &record, Default::default());
                // Why a job earns nothing (a threshold, a ceiling, a catalog window, a
                // disabled version) or why it is invalid, after `|`.
                let why = s.reason().or(s.error()).map(|r| format!(" | {r}"));
                out.push_str(&format!(
                    "{} {} {} {} {}{}\n",
                    s.id().unwrap_or("-"),
                    s.status(),
                    s.kind().unwrap_or("-"),
                    s.rule().unwrap_or("-"),
                    s.points(),
                    why.unwrap_or_default()
                ));
            }
            insta::assert_snapshot!(format!(
                "--- overlay ---\n{input}\n--- warnings ---\n{}\n--- scores ---\n{out}",
                diags.join("\n")
            ));
        });
    });
}

/// [`overlay`], plus two bodies that a text fixture cannot hold: `!bytes` (invalid UTF-8)
/// and `!large` (one byte over the size limit).
fn overlay_with_bytes(text: &str) -> RuleFiles {
    let mut files = overlay(text);
    for bytes in files.files.values_mut() {
        match bytes.as_slice() {
            b"!bytes\n" => *bytes = vec![0xFF, 0xFE],
            b"!large\n" => *bytes = vec![b' '; jobpoints::internals::MAX_RULE_FILE_BYTES + 1],
            _ => {}
        }
    }
    files
}

/// Every path through the loader that reports something, several per rule set
/// (`tests/fixtures/rules/loader/`): the message, place, help and order of each diagnostic,
/// and whether the rule set is usable.
#[test]
fn every_loader_branch_reports_its_diagnostics() {
    with_snapshots(|| {
        insta::glob!("fixtures/rules/loader/*.txt", |path| {
            let input = read(path);
            let loaded = load(overlay_with_bytes(&input));
            assert_eq!(loaded.ruleset.is_some(), !loaded.has_errors());
            let files = &loaded.files;
            let report = render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from));
            let lines: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
            insta::assert_snapshot!(format!(
                "--- overlay ---\n{input}\n--- usable: {} ---\n{}\n--- check ---\n{report}",
                loaded.ruleset.is_some(),
                lines.join("\n")
            ));
        });
    });
}
