#![allow(dead_code)] // each fuzz target uses one of these functions
//! What each fuzz target does with its input, shared by the fuzz targets (`fuzz_targets/`)
//! and by the regression test in the normal suite (`tests/fuzz_regressions.rs`), so CI replays
//! the saved inputs through exactly the code the fuzzer ran. Each function panics when an
//! invariant breaks; anything else is a bug the fuzzer found (a panic inside jobpoints).

use std::sync::{Arc, OnceLock};

use jobpoints::Score;
use jobpoints::Status;
use jobpoints::internals::{
    EvalContext, Formula, Observed, Outcome, Pricing, Program, RuleFiles, RuleSet, RuleVersion,
    ScoreOptions, Scorer, Value, evaluate, load, render_human, run_ledger, write_jsonl,
};
use jobpoints::internals::{JobInput, JobRecord};

fn score_record(rules: &RuleSet, record: &JobRecord, opts: ScoreOptions) -> Score {
    let scorer = Scorer {
        opts,
        ..Scorer::new(rules)
    };
    scorer.score_owned(&mut scorer.context(), JobInput::Record(record))
}

/// The rules built into jobpoints, loaded once per process.
fn shipped() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        load(RuleFiles::embedded())
            .ruleset
            .expect("the shipped rules are valid")
    })
}

/// Job parsing: any bytes, read as a job file (one JSON job, an array, or JSONL) and scored
/// with the shipped rules, then written as JSONL.
pub fn jobs(data: &[u8]) {
    let rules = shipped();
    let mut out = Vec::new();
    let mut last_line = 0;
    let mut results = 0usize;
    for record in jobpoints::internals::JobReader::new(data) {
        let score = score_record(rules, &record, ScoreOptions::default());
        assert!(score.line() >= 1, "lines are 1-based");
        assert!(score.line() >= last_line, "results come in input order");
        last_line = score.line();
        if score.status() == Status::Invalid {
            assert!(
                score.error().is_some_and(|e| !e.is_empty()),
                "an invalid job says why"
            );
        }
        write_jsonl(&mut out, &score.as_ref());
        results += 1;
    }
    // Every result is at least one byte of input: nothing is invented.
    assert!(results <= data.len());

    // The scorer behind `eval` and `tally`: the usual way (borrowed reader, cached
    // resolution, compiled formulas) must give byte-identical results to the reference way.
    let ledger = |fast: bool| {
        let scorer = Scorer {
            reference: !fast,
            ..Scorer::new(rules)
        };
        let mut out = Vec::new();
        let jobs = run_ledger(
            jobpoints::internals::JobReader::new(data),
            &scorer,
            1,
            |s, buf: &mut Vec<u8>| write_jsonl(buf, s),
            |buf| {
                out.extend_from_slice(&buf);
                Ok(())
            },
        )
        .expect("writing to memory");
        assert_eq!(jobs as usize, results, "one result per job");
        out
    };
    let plain = ledger(false);
    let fast = ledger(true);
    assert!(
        plain == fast,
        "fast path differs:\n{}\n{}",
        String::from_utf8_lossy(&plain),
        String::from_utf8_lossy(&fast)
    );
}

/// The files a rules input overwrites, in order; chunks are separated by a 0xFF byte (never
/// part of UTF-8 text). An empty chunk keeps the shipped file.
pub const RULE_SLOTS: [&str; 6] = [
    "kinds.toml",
    "families/sd15.toml",
    "formulas/waifu_season1.rhai",
    "catalog.toml",
    "models/fuzz.toml",
    "policy.toml",
];

/// Rule-set loading: the shipped files named in [`RULE_SLOTS`] (only those, so `check`'s
/// input grid runs over a few versions, not every shipped one, and the fuzzer stays fast),
/// some replaced by fuzz bytes, loaded and checked like `jobpoints check`, diagnostics
/// rendered, and a few jobs scored when the rule set is valid.
pub fn rules(data: &[u8]) {
    let mut files = RuleFiles::embedded();
    files
        .files
        .retain(|path, _| RULE_SLOTS.contains(&path.as_str()));
    for (slot, chunk) in RULE_SLOTS.iter().zip(data.split(|&b| b == 0xFF)) {
        if !chunk.is_empty() {
            files.files.insert((*slot).to_string(), chunk.to_vec());
        }
    }
    let loaded = load(files);
    let text = &loaded.files;
    let report = render_human(&loaded.diagnostics, &|f| text.text(f).map(String::from));
    assert_eq!(loaded.ruleset.is_some(), !loaded.has_errors());
    if loaded.has_errors() {
        assert!(!report.is_empty(), "a rejected rule set says why");
    }
    if let Some(rules) = &loaded.ruleset {
        let jobs = concat!(
            r#"{"model":"BrainDance","width":512,"height":512,"steps":20}"#,
            "\n",
            r#"{"model":"mistralai/mixtral-8x7b-instruct","input_tokens":1000,"output_tokens":5}"#,
            "\n",
            r#"{"model":"fuzz","width":1024,"height":1024,"steps":30,"completed_at":"2024-06-01"}"#,
            "\n"
        );
        for record in jobpoints::internals::JobReader::new(jobs.as_bytes()) {
            let opts = ScoreOptions {
                at: None,
                explain: true,
            };
            let _ = score_record(rules, &record, opts);
        }
    }
}

/// Formula evaluation: the first 24 bytes are the image job's width, height and steps (any
/// i64, not only the declared ranges); the rest is the formula's text. The formula is
/// compiled by the hardened engine, and by the compiled fast path when it is in its subset,
/// and run through the real `evaluate` three ways: the fast path (twice) and rhai alone. All
/// must give the same outcome, bit for bit.
pub fn formula(data: &[u8]) {
    let rules = shipped();
    let kind = &rules.job_kinds["image"];
    let mut inputs = Vec::new();
    let mut i = 0;
    for spec in &kind.inputs {
        // Inputs a job may leave out (latencies) cannot be read by formulas: absent here.
        if spec.may_be_absent() {
            inputs.push(Value::ABSENT);
            continue;
        }
        let mut word = [0u8; 8];
        if let Some(bytes) = data.get(i * 8..i * 8 + 8) {
            word.copy_from_slice(bytes);
        }
        inputs.push(Value::Int(i64::from_le_bytes(word)));
        i += 1;
    }
    assert_eq!(i, 3, "width, height, steps");
    let source = String::from_utf8_lossy(data.get(24..).unwrap_or_default()).into_owned();
    let names: Vec<&str> = kind.readable_names();
    let mut scope = rhai::Scope::new();
    for name in &names {
        scope.push(name.to_string(), rhai::Dynamic::UNIT);
    }
    let Ok(ast) = rules.engine.compile_with_scope(&scope, &source) else {
        return;
    };
    let compiled = Program::compile(&source, &names);
    let version = RuleVersion {
        version: 1,
        label: "fuzz@1".into(),
        effective_from: jobpoints::internals::parse_time("2024-01-01").expect("a date"),
        source: "fuzz".into(),
        notes: None,
        assumptions: Vec::new(),
        pricing: Pricing::Priced {
            formula: Arc::new(Formula {
                name: "fuzz".into(),
                file: "fuzz.rhai".into(),
                source,
                ast,
                compiled,
            }),
            multiplier: 1.0,
            thresholds: Vec::new(),
            ceilings: Vec::new(),
        },
        examples: Vec::new(),
        formula_place: None,
        multiplier_place: None,
        min_place: None,
        line: 1,
        header: 0..0,
    };
    let mut fast = EvalContext::new();
    let mut rhai_only = EvalContext::interpreter_only();
    let mut observed = Observed::default();
    // Priced as of the latest rules: under the latest execution limits.
    let first = evaluate(
        &rules.engine,
        kind,
        &version,
        &inputs,
        None,
        &mut fast,
        None,
    );
    let again = evaluate(
        &rules.engine,
        kind,
        &version,
        &inputs,
        None,
        &mut fast,
        None,
    );
    let interpreted = evaluate(
        &rules.engine,
        kind,
        &version,
        &inputs,
        None,
        &mut rhai_only,
        Some(&mut observed),
    );
    assert_eq!(first, again, "evaluation is deterministic");
    assert_eq!(
        first, interpreted,
        "the compiled fast path agrees with rhai"
    );
    if let Outcome::Ok { points, .. } = first {
        assert!(points.micros() >= 0, "points are never negative");
    }
}
