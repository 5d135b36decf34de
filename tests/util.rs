//! Helpers shared by every test module.

use std::path::{Path, PathBuf};

use jobpoints::Score;
use jobpoints::internals::{JobInput, JobRecord, RuleSet, ScoreOptions, Scorer};

/// Scores one record with a fresh scorer (through the engine's one entry point).
pub fn score_record(rules: &RuleSet, record: &JobRecord, opts: ScoreOptions) -> Score {
    let scorer = Scorer {
        opts,
        ..Scorer::new(rules)
    };
    scorer.score_owned(&mut scorer.context(), JobInput::Record(record))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/...`
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The repository's own `rules/`.
pub fn rules_dir() -> PathBuf {
    root().join("rules")
}

/// The `jobpoints` binary built for this test run, started in `dir`.
pub fn jobpoints_in(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("jobpoints"));
    cmd.current_dir(dir);
    cmd.env_remove("JOBPOINTS_RULES");
    cmd
}

/// The `jobpoints` binary, started at the repository root (so `./rules` is found).
pub fn jobpoints() -> assert_cmd::Command {
    jobpoints_in(&root())
}

/// insta settings shared by every snapshot: snapshots live in the top-level `snapshots/`.
pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    // The rule set hash changes with any rules edit; it is tested on its own, so snapshots
    // show a placeholder and only change when points or messages do.
    s.add_filter(r"\b[0-9a-f]{64}\b", "[ruleset-sha256]");
    // The engine names the commit it was built from, which every commit changes.
    s.add_filter(
        regex_escape(jobpoints::internals::ENGINE).as_str(),
        "[engine]",
    );
    s
}

/// `text` as a regex matching itself.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Runs `f` with the shared snapshot settings bound.
pub fn with_snapshots<R>(f: impl FnOnce() -> R) -> R {
    snapshot_settings().bind(f)
}

/// Loads the repository's rules, panicking with the diagnostics if they are invalid.
pub fn shipped_rules() -> jobpoints::internals::RuleSet {
    let loaded = jobpoints::internals::load(
        jobpoints::internals::RuleFiles::from_dir(&rules_dir()).expect("rules dir"),
    );
    if loaded.ruleset.is_none() {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        panic!("the shipped rules are invalid");
    }
    loaded.ruleset.unwrap()
}

/// Copies the repository's `rules/` into `dst` (created), for tests that edit rules.
pub fn copy_rules_to(dst: &Path) {
    copy_dir(&rules_dir(), dst);
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dir");
    for entry in std::fs::read_dir(src).expect("read dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// Replaces the first `from` with `to` in `dir/rel`, saving like an editor does: write a
/// temporary file next to it, then rename it over the original.
pub fn edit_rule(dir: &Path, rel: &str, from: &str, to: &str) {
    let path = dir.join(rel);
    let text = std::fs::read_to_string(&path).expect("read rule file");
    assert!(text.contains(from), "`{from}` is not in {rel}");
    let tmp = path.with_file_name(format!(
        ".{}.swp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, text.replacen(from, to, 1)).expect("write temp file");
    std::fs::rename(&tmp, &path).expect("rename over the original");
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds with `what`.
pub fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The multiplier of sd15's latest version (the one undated jobs take; the name is from when
/// that was version 2) edited from `current` to `m`, with its examples updated so the rule
/// set stays valid.
pub fn set_sd15_v2_multiplier(dir: &Path, current: &str, m: &str) {
    let f: f64 = m.parse().unwrap();
    let cur: f64 = current.parse().unwrap();
    let text = std::fs::read_to_string(dir.join("families/sd15.toml")).unwrap();
    let fmt = |x: f64| format!("{}", (x * 1e6).round() / 1e6);
    // The latest version (the one undated jobs take) is the last `[[version]]` table.
    let at = text.rfind("[[version]]").expect("a version");
    let (head, last) = text.split_at(at);
    let last = last.replacen(
        &format!("multiplier = {current}\n"),
        &format!("multiplier = {m}\n"),
        1,
    );
    // Every example's points scale with the multiplier (priced ones; a status other than
    // `ok` earns 0 either way).
    let mut scaled = String::with_capacity(last.len());
    let mut rest = last.as_str();
    while let Some(i) = rest.find("points = ") {
        let (before, after) = rest.split_at(i + "points = ".len());
        scaled.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        let value: f64 = after[..end].parse().expect("an example's points");
        scaled.push_str(&fmt(value * f / cur));
        rest = &after[end..];
    }
    scaled.push_str(rest);
    let last = scaled;
    let new = format!("{head}{last}");
    assert_ne!(new, text, "sd15 multiplier {current} not found");
    let path = dir.join("families/sd15.toml");
    let tmp = dir.join("families/.sd15.toml.tmp");
    std::fs::write(&tmp, new).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}
