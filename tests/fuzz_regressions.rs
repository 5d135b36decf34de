//! Replays the fuzzers' saved inputs (`tests/fixtures/fuzz/<target>/`) through the same code
//! the fuzz targets run (`fuzz/harness.rs`), so CI guards against every crash the fuzzers
//! found, and keeps exercising the interesting inputs they discovered, without running a fuzzer.

#[path = "../fuzz/harness.rs"]
mod harness;

use crate::util::fixture;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = fixture(&format!("fuzz/{target}"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        // A panic names the input, so a failure can be rerun with `cargo fuzz run TARGET FILE`.
        eprintln!("replaying {}", path.display());
        run(&data);
        count += 1;
    }
    assert!(count > 0, "no saved inputs in {}", dir.display());
}

#[test]
fn job_parsing_inputs() {
    replay("jobs", harness::jobs);
}

#[test]
fn rule_loading_inputs() {
    replay("rules", harness::rules);
}

#[test]
fn formula_inputs() {
    replay("formula", harness::formula);
}
