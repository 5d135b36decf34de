//! Hostile rule sets: rules come from pull requests by outsiders. Each fixture in
//! `tests/fixtures/rules/hostile/` is an overlay (the format of `rule_errors.rs`) adding a
//! model `Hostile` whose formula misbehaves where it says `ARMED`. Its header states:
//!
//! - `# check: SEVERITY [CODE] TEXT`: what `check` reports when the attack is armed for every
//!   input (`ARMED` = `true`): `ok`, or an `error`/`warning` with that code and text;
//! - `# eval: STATUS TEXT`: what one job gets when only that job arms it (`ARMED` =
//!   `steps == 47`, a value the check's input grid never runs (nor the miner's limits make
//!   of a value it tries: they cap steps at 50), so the rule set loads and the
//!   attack reaches `eval`): a status and text in its result, or `rejected` when the attack
//!   cannot even be written down (it does not compile, so `eval` refuses the rule set).
//!
//! Loading, checking and scoring each one must stay within a time bound, and the binary
//! within a memory bound. Generated attacks (a 10 MB TOML file, a thousand models) are built
//! here rather than committed.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::score_record;
use jobpoints::internals::{JobReader, RuleFiles, ScoreOptions, load, render_human};
use jobpoints::{Severity, Status};

use crate::rule_errors::overlay;
use crate::util::{fixture, with_snapshots};

/// Generous bounds for this machine's debug build (measured: well under a second for every
/// committed fixture); the point is that nothing runs away, not how fast it is.
const LOAD_BOUND: Duration = Duration::from_secs(30);
const EVAL_BOUND: Duration = Duration::from_secs(10);
/// Address-space limit for the binary (`ulimit -v`, KiB): about ten times what `check`
/// needs on the 10 MB rule file.
const MEMORY_BOUND_KIB: u64 = 1024 * 1024;

const JOBS: &str = concat!(
    r#"{"id":"before","model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-06-01T00:00:00Z"}"#,
    "\n",
    r#"{"id":"armed","model":"Hostile","width":512,"height":512,"steps":47,"completed_at":"2024-06-01T00:00:00Z"}"#,
    "\n",
    r#"{"id":"disarmed","model":"Hostile","width":512,"height":512,"steps":20,"completed_at":"2024-06-01T00:00:00Z"}"#,
    "\n",
);

struct Header {
    check_severity: String,
    check_code: Option<String>,
    check_text: String,
    eval_status: String,
    eval_text: String,
}

fn header(input: &str) -> Header {
    let line = |key: &str| {
        input
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .unwrap_or_else(|| panic!("missing `# {key}:` line"))
            .trim()
            .to_string()
    };
    let check = line("check");
    let mut words = check.splitn(3, ' ');
    let check_severity = words.next().unwrap_or_default().to_string();
    let (check_code, check_text) = if check_severity == "ok" {
        (None, String::new())
    } else {
        (
            words.next().map(String::from),
            words.next().unwrap_or_default().to_string(),
        )
    };
    let eval = line("eval");
    let (eval_status, eval_text) = eval.split_once(' ').unwrap_or((&eval, ""));
    Header {
        check_severity,
        check_code,
        check_text,
        eval_status: eval_status.to_string(),
        eval_text: eval_text.to_string(),
    }
}

/// One line per job: `id status printed=N rule points error`.
fn score_all(rules: &jobpoints::internals::RuleSet, jobs: &str) -> Vec<(String, Status, String)> {
    JobReader::new(jobs.as_bytes())
        .map(|record| {
            let opts = ScoreOptions {
                at: None,
                explain: true,
            };
            let s = score_record(rules, &record, opts);
            let json = serde_json::to_value(&s).unwrap();
            let printed = json["trace"]["printed"].as_array().map_or(0, Vec::len);
            let summary = format!(
                "{} printed={printed} {} {} {}",
                s.status(),
                s.rule().unwrap_or("-"),
                s.points(),
                s.error().unwrap_or("")
            );
            (
                s.id().unwrap_or_default().to_string(),
                s.status(),
                summary.trim_end().to_string(),
            )
        })
        .collect()
}

#[test]
fn hostile_rule_sets_produce_their_documented_outcome() {
    with_snapshots(|| {
        insta::glob!("fixtures/rules/hostile/*.txt", |path| {
            let input = std::fs::read_to_string(path).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let want = header(&input);

            // `check`, with the attack armed for every input.
            let started = Instant::now();
            let loaded = load(overlay(&input.replace("ARMED", "true")));
            let took = started.elapsed();
            assert!(took < LOAD_BOUND, "{name}: load + check took {took:?}");
            let found = loaded.diagnostics.iter().find(|d| {
                Some(d.code()) == want.check_code.as_deref()
                    && d.message().contains(&want.check_text)
            });
            match want.check_severity.as_str() {
                "ok" => assert!(
                    loaded.diagnostics.is_empty(),
                    "{name}: {:?}",
                    loaded.diagnostics
                ),
                "error" => {
                    assert!(loaded.ruleset.is_none(), "{name}: must be rejected");
                    let d = found.unwrap_or_else(|| panic!("{name}: {:#?}", loaded.diagnostics));
                    assert_eq!(d.severity(), Severity::Error);
                }
                "warning" => {
                    assert!(loaded.ruleset.is_some(), "{name}: {:?}", loaded.diagnostics);
                    let d = found.unwrap_or_else(|| panic!("{name}: {:#?}", loaded.diagnostics));
                    assert_eq!(d.severity(), Severity::Warning);
                }
                other => panic!("{name}: unknown check severity `{other}`"),
            }
            let files = &loaded.files;
            let report = render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from));

            // `eval`, with the attack armed by one job only.
            let gated = load(overlay(&input.replace("ARMED", "steps == 47")));
            let results = match &gated.ruleset {
                None => {
                    assert_eq!(
                        want.eval_status, "rejected",
                        "{name}: {:?}",
                        gated.diagnostics
                    );
                    "rejected: the rule set does not load, so no job is scored\n".to_string()
                }
                Some(rules) => {
                    assert_ne!(want.eval_status, "rejected", "{name}: the rule set loads");
                    let started = Instant::now();
                    let scored = score_all(rules, JOBS);
                    let took = started.elapsed();
                    assert!(took < EVAL_BOUND, "{name}: eval took {took:?}");
                    assert_eq!(scored.len(), 3, "results out = jobs in");
                    assert_eq!(
                        scored[0].1,
                        Status::Ok,
                        "{name}: other models are unaffected"
                    );
                    assert_eq!(scored[2].1, Status::Ok, "{name}: {}", scored[2].2);
                    let armed = &scored[1];
                    assert_eq!(armed.1.as_str(), want.eval_status, "{name}: {}", armed.2);
                    assert!(
                        armed.2.contains(&want.eval_text),
                        "{name}: `{}` must contain `{}`",
                        armed.2,
                        want.eval_text
                    );
                    scored
                        .iter()
                        .map(|(id, _, s)| format!("{id}: {s}\n"))
                        .collect()
                }
            };
            insta::assert_snapshot!(format!(
                "--- fixture ---\n{input}\n--- check (armed everywhere) ---\n{report}\n--- eval (armed by steps = 47) ---\n{results}"
            ));
        });
    });
}

/// Writes a rule set to a directory, as a pull request would.
fn write_rules(files: &RuleFiles, dir: &Path) {
    for (rel, bytes) in &files.files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Runs the binary under an address-space limit and a timeout; returns exit code and stderr.
fn run_bounded(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let bin = assert_cmd::cargo::cargo_bin!("jobpoints");
    let script = format!("ulimit -v {MEMORY_BOUND_KIB} && exec \"$0\" \"$@\"");
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.arg("-c").arg(&script).arg(bin).args(args);
    cmd.current_dir(dir).env_remove("JOBPOINTS_RULES");
    let out = cmd
        .timeout(LOAD_BOUND + EVAL_BOUND)
        .write_stdin(stdin)
        .output()
        .expect("run jobpoints");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(target_os = "linux")]
#[test]
fn every_hostile_fixture_stays_within_the_memory_bound() {
    let dir = std::fs::read_dir(fixture("rules/hostile")).unwrap();
    std::thread::scope(|s| {
        for entry in dir {
            let path = entry.unwrap().path();
            s.spawn(move || {
                let input = std::fs::read_to_string(&path).unwrap();
                let want = header(&input);
                let tmp = tempfile::tempdir().unwrap();
                write_rules(&overlay(&input.replace("ARMED", "true")), tmp.path());
                let (code, _, stderr) = run_bounded(tmp.path(), &["check", "--rules", "."], "");
                let expected = if want.check_severity == "error" { 3 } else { 0 };
                assert_eq!(code, expected, "{}: {stderr}", path.display());
            });
        }
    });
}

#[cfg(target_os = "linux")]
#[test]
fn rejected_rule_sets_score_nothing() {
    // The hostile fixtures that cannot compile, and the broken-rules fixtures for dates and
    // duplicates (tests/fixtures/rules/err_*): `eval` refuses them whole (exit 3, no output).
    for name in [
        "rules/hostile/eval.txt",
        "rules/err_bad_date.txt",
        "rules/err_duplicate_effective_date.txt",
        "rules/err_duplicate_model.txt",
    ] {
        let input = std::fs::read_to_string(fixture(name)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        write_rules(&overlay(&input.replace("ARMED", "true")), tmp.path());
        let (code, stdout, stderr) = run_bounded(tmp.path(), &["eval", "--rules", ".", "-"], JOBS);
        assert_eq!(code, 3, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: no job is scored: {stdout}");
        assert!(stderr.contains("are invalid"), "{name}: {stderr}");
    }
}

/// The shipped catalog padded with generated models (family `sd15`) to `size` bytes.
fn padded_catalog(size: usize) -> RuleFiles {
    let mut files = overlay("");
    let catalog = files.text("catalog.toml").unwrap().to_string();
    // The generated models go first in [models] (later tables follow it).
    let (head, tail) = catalog.split_once("\n[models]\n").unwrap();
    let mut models = String::new();
    let mut i = 0;
    loop {
        let line = format!("\"generated-model-{i:07}\" = \"sd15\"\n");
        if catalog.len() + models.len() + line.len() > size {
            break;
        }
        models.push_str(&line);
        i += 1;
    }
    let catalog = format!("{head}\n[models]\n{models}{tail}");
    assert_eq!(catalog.len(), catalog.len().min(size));
    files
        .files
        .insert("catalog.toml".into(), catalog.into_bytes());
    files
}

/// A thousand model rules, each with its own inline formula.
fn thousand_models() -> RuleFiles {
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!(
            "--- models/generated-{i:04}.toml\n[rule]\nmodel = \"Generated{i}\"\nfamily = \"sd15\"\nkind = \"image\"\n\n[[version]]\nversion = 1\neffective_from = 2024-04-01\nsource = \"generated\"\nexpr = \"{}.0 * steps / 20\"\nmin = {{ pixels = 262144, steps = 20 }}\n",
            i + 1
        ));
    }
    overlay(&text)
}

#[test]
fn a_ten_megabyte_rule_file_is_refused_without_parsing_it() {
    let files = padded_catalog(10 * 1024 * 1024);
    let started = Instant::now();
    let loaded = load(files.clone());
    let took = started.elapsed();
    assert!(took < LOAD_BOUND, "load + check took {took:?}");
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code() == "file-too-large")
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    assert_eq!(d.file(), Some("catalog.toml"));
    assert!(loaded.ruleset.is_none());

    #[cfg(target_os = "linux")]
    {
        let tmp = tempfile::tempdir().unwrap();
        write_rules(&files, tmp.path());
        let (code, stdout, stderr) = run_bounded(tmp.path(), &["check", "--rules", "."], "");
        assert_eq!(code, 3, "exit code {code}: {stderr}");
        assert!(
            stdout.contains("error[file-too-large]: catalog.toml"),
            "{stdout}"
        );
    }
}

#[test]
fn the_largest_allowed_catalog_and_a_thousand_models_load_within_bounds() {
    let largest = jobpoints::internals::MAX_RULE_FILE_BYTES;
    for (what, files, model, points) in [
        (
            "a catalog at the size limit",
            padded_catalog(largest),
            "generated-model-0000042",
            "1.000000",
        ),
        (
            "a thousand models",
            thousand_models(),
            "Generated999",
            "1000.000000",
        ),
    ] {
        let bytes: usize = files.files.values().map(Vec::len).sum();
        let started = Instant::now();
        let loaded = load(files.clone());
        let took = started.elapsed();
        assert!(took < LOAD_BOUND, "{what}: load + check took {took:?}");
        let rules = loaded
            .ruleset
            .unwrap_or_else(|| panic!("{what}: {:?}", loaded.diagnostics));
        let job = format!(
            r#"{{"id":"x","model":"{model}","width":512,"height":512,"steps":20,"completed_at":"2024-06-01"}}"#
        );
        let scored = score_all(&rules, &job);
        assert_eq!(scored[0].1, Status::Ok, "{what}: {}", scored[0].2);
        assert!(scored[0].2.contains(points), "{what}: {}", scored[0].2);
        eprintln!("{what}: {bytes} bytes of rules, load + check in {took:?}");

        #[cfg(target_os = "linux")]
        {
            let tmp = tempfile::tempdir().unwrap();
            write_rules(&files, tmp.path());
            let (code, stdout, stderr) =
                run_bounded(tmp.path(), &["eval", "--rules", ".", "-"], &job);
            assert_eq!(code, 0, "{what}: {stderr}");
            assert!(stdout.contains("\"status\":\"ok\""), "{what}: {stdout}");
        }
    }
}

/// `n` versions of a model whose formula burns about 90,000 rhai operations on every input
/// (just under the per-job limit), each with one example.
fn burners(n: usize) -> RuleFiles {
    let mut text = String::from(
        "--- models/burner.toml\n[rule]\nmodel = \"Burner\"\nfamily = \"sd15\"\nkind = \"image\"\n",
    );
    for v in 1..=n {
        text.push_str(&format!(
            "\n[[version]]\nversion = {v}\neffective_from = 2024-04-{v:02}\nsource = \"burns operations\"\nexpr = \"let i = 0; while i < 9000 {{ i += 1; }} steps * 0.0 + 1.0\"\nmin = {{ pixels = 262144, steps = 20 }}\nexamples = [{{ width = 512, height = 512, steps = 20, points = 1.0 }}]\n"
        ));
    }
    overlay(&text)
}

#[test]
fn the_check_spends_a_fixed_budget_and_says_what_it_did_not_cover() {
    use jobpoints::internals::with_check_budget;
    // Before #11, every version's 4,096-point grid ran in full: 100 such versions took 88 s,
    // a 1 MiB file of them would take about 1.5 hours, and `serve` paid it on every reload.
    // Now the whole check has one operation budget (examples first, then an even sample of
    // every version's grid, then the rest), and reports what it did not reach. The real
    // budget is exercised on a release build by `cargo bench --bench reload`; here a small
    // one shows the mechanism (rhai is far slower unoptimised).
    let files = burners(20);
    let codes = |loaded: &jobpoints::internals::Loaded| -> Vec<(String, String)> {
        loaded
            .diagnostics
            .iter()
            .map(|d| (d.code().to_string(), d.message().to_string()))
            .collect()
    };
    // Enough for the 20 examples (about 1.8M operations), not for the grids.
    let loaded = with_check_budget(2_500_000, || load(files.clone()));
    let got = codes(&loaded);
    assert!(loaded.ruleset.is_some(), "only warnings: {got:?}");
    // The burners loop, so they run in rhai: not proved, said once for their file (#23).
    let (not_proved, got): (Vec<_>, Vec<_>) = got
        .into_iter()
        .partition(|(code, _)| code == "formula-not-proved");
    assert_eq!(not_proved.len(), 1, "{not_proved:?}");
    assert!(not_proved[0].1.contains("runs in rhai"), "{not_proved:?}");
    assert_eq!(got[0].0, "grid-incomplete");
    assert!(
        got[0].1.contains("rule `Burner` version 1 on ")
            && got[0].1.contains("and 12 more versions"),
        "{}",
        got[0].1
    );
    assert_eq!(
        got,
        codes(&with_check_budget(2_500_000, || load(files.clone())))
            .into_iter()
            .filter(|(code, _)| code != "formula-not-proved")
            .collect::<Vec<_>>(),
        "the same rules always get the same report"
    );
    // Not enough for the examples: they are promises, so that is an error.
    let loaded = with_check_budget(900_000, || load(files.clone()));
    let got = codes(&loaded);
    assert!(loaded.ruleset.is_none(), "{got:?}");
    assert!(
        got.iter().any(|(code, message)| code == "check-budget"
            && message.contains("not checked: the examples of rule `Burner` version 1")),
        "{got:?}"
    );
    // The shipped rules are far inside the real budget.
    let shipped = load(RuleFiles::from_dir(&crate::util::rules_dir()).unwrap());
    assert!(shipped.diagnostics.is_empty(), "{:?}", shipped.diagnostics);
}
