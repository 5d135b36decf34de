//! Helpers shared by every test module.

use std::path::{Path, PathBuf};

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
    s
}

/// Runs `f` with the shared snapshot settings bound.
pub fn with_snapshots<R>(f: impl FnOnce() -> R) -> R {
    snapshot_settings().bind(f)
}

/// Loads the repository's rules, panicking with the diagnostics if they are invalid.
pub fn shipped_rules() -> jobpoints::RuleSet {
    let loaded = jobpoints::load(jobpoints::RuleFiles::from_dir(&rules_dir()).expect("rules dir"));
    if loaded.ruleset.is_none() {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        panic!("the shipped rules are invalid");
    }
    loaded.ruleset.unwrap()
}
