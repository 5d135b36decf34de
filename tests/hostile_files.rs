//! Hardening III, the files half (#22): diagnostics of huge or long-lined rule files,
//! `verify` of tampered results, CSV and Parquet bombs, markdown injection, `merge`.

use std::path::Path;
use std::time::{Duration, Instant};

use jobpoints::internals::render_human;
use jobpoints::rules::diagnostic::{Code, Diagnostic, LineIndex};

use crate::util::{copy_rules_to, fixture, jobpoints_in};

/// A copy of the shipped rules whose sd15 description is 70,000 `x` and a stray token: a
/// TOML error on column 70,018 (#22, item 1).
fn rules_with_a_long_line(dir: &Path) {
    copy_rules_to(dir);
    let sd15 = dir.join("families/sd15.toml");
    let text = std::fs::read_to_string(&sd15).unwrap().replacen(
        "description = \"Stable Diffusion 1.5 checkpoint models.\"",
        &format!("description = \"{}\" stray", "x".repeat(70_000)),
        1,
    );
    std::fs::write(&sd15, text).unwrap();
}

#[test]
fn a_diagnostic_on_a_line_past_65535_columns_is_cut_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    rules_with_a_long_line(&bad);
    copy_rules_to(&tmp.path().join("good"));
    std::fs::copy(fixture("jobs/single.json"), tmp.path().join("jobs.jsonl")).unwrap();
    let runs: [&[&str]; 3] = [
        &["check", "--rules", "bad"],
        &["eval", "--rules", "bad", "jobs.jsonl"],
        &["diff", "good", "bad", "--jobs", "jobs.jsonl"],
    ];
    for args in runs {
        let out = jobpoints_in(tmp.path()).args(args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {all}");
        // The snippet shows the stray token, cut around it, with the true column.
        assert!(
            all.contains("families/sd15.toml:5:70018"),
            "{args:?}: {all}"
        );
        let snippet = all.lines().find(|l| l.contains("\" stray")).expect(&all);
        assert!(
            snippet.contains('…') && snippet.len() < 400,
            "{args:?}: {snippet}"
        );
    }
}

/// `n` diagnostics spread over a `bytes`-long file of short lines, one per line.
fn many_diagnostics(bytes: usize, n: usize) -> (String, Vec<Diagnostic>) {
    let line = "  { width = 512, height = 512, steps = 20, points = 7 },\n";
    let text = line.repeat(bytes / line.len());
    let lines = LineIndex::new(&text);
    let every = (bytes / line.len() / n).max(1);
    let diagnostics = (0..n)
        .map(|i| {
            let at = (i * every * line.len()).min(text.len());
            Diagnostic::error(Code::ExampleFailed, "expected 7 points, got 1").at_indexed(
                "families/big.toml",
                &text,
                &lines,
                Some(at + 2..at + line.len() - 2),
            )
        })
        .collect();
    (text, diagnostics)
}

#[test]
fn rendering_diagnostics_is_linear_in_the_file_size() {
    // 4,000 diagnostics in a 1 MiB file: quadratic rendering (a copy and a scan of the file
    // per diagnostic) took minutes; one index per file and an excerpt per diagnostic, ~1 s.
    let (text, diagnostics) = many_diagnostics(1 << 20, 4_000);
    let started = Instant::now();
    let report = render_human(&diagnostics, &|_| Some(text.clone()));
    let took = started.elapsed();
    assert_eq!(report.matches("example-failed").count(), 4_000);
    let last = diagnostics.last().unwrap().location();
    assert!(
        report.contains(&format!("[{last}]")),
        "{last}: line numbers are the file's"
    );
    assert!(took < Duration::from_secs(20), "rendering took {took:?}");
}
