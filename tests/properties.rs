//! Properties of every shipped rule version (proptest): points never decrease when a job's
//! inputs (pixels, steps, tokens) grow, are never negative, never fail inside the declared
//! input ranges, and are the same on every run and with any number of threads.

use std::sync::OnceLock;

use crate::util::score_record;
use jobpoints::Points;
use jobpoints::internals::{
    EvalContext, JobKind, Outcome, Pricing, RuleSet, ScoreOptions, Value, evaluate, parse_job,
};
use proptest::prelude::*;

use crate::util::shipped_rules;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

/// Kept modest so the whole suite stays fast; each case runs every priced rule version.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Two points `low <= high` (input by input) inside `kind`'s declared bounds, from fractions.
fn input_pair(kind: &JobKind, fractions: &[(f64, f64)]) -> (Vec<Value>, Vec<Value>) {
    let mut low = Vec::new();
    let mut high = Vec::new();
    let mut fractions = fractions.iter();
    for spec in &kind.inputs {
        // An optional input with no default (a latency) is left out: it only zeroes a job
        // through a ceiling, and the property is about the inputs that grow a job.
        if spec.may_be_absent() {
            low.push(Value::ABSENT);
            high.push(Value::ABSENT);
            continue;
        }
        let (a, b) = fractions.next().expect("a fraction per input");
        let lo = spec.min.unwrap_or(0.0);
        let hi = spec.max.unwrap_or(lo + 1.0e6);
        // Square the fraction so small values (near the thresholds) come up often too.
        let x = (lo + a * a * (hi - lo)).floor();
        let y = (x + b * b * (hi - x)).floor().min(hi);
        low.push(Value::Int(x as i64));
        high.push(Value::Int(y as i64));
    }
    (low, high)
}

/// Points of an outcome: below a threshold earns 0; a failure inside the ranges is a bug.
fn points_of(outcome: Outcome, what: &str) -> Result<Points, TestCaseError> {
    match outcome {
        Outcome::Ok { points, .. } => Ok(points),
        Outcome::BelowThreshold | Outcome::OverLimit => Ok(Points::from_micros(0)),
        Outcome::Failed { error } => Err(TestCaseError::fail(format!("{what}: {error}"))),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn points_never_decrease_as_inputs_grow_and_are_never_negative(
        fractions in prop::collection::vec((0.0f64..=1.0, 0.0f64..=1.0), 4)
    ) {
        let rs = rules();
        let mut ctx = EvalContext::new();
        let mut priced = 0;
        for rule in rs.rules() {
            let kind = &rs.job_kinds[&rule.kind];
            let grown = kind.inputs.iter().filter(|i| !i.may_be_absent()).count();
            prop_assert!(grown <= fractions.len(), "more inputs than generated");
            let (low, high) = input_pair(kind, &fractions);
            for version in &rule.versions {
                if !matches!(version.pricing, Pricing::Priced { .. }) {
                    continue;
                }
                priced += 1;
                let what = format!("{}@{} at {low:?} and {high:?}", rule.id, version.version);
                // At the version's start, under the execution limits then (clamping never
                // makes a larger request run smaller).
                let at = Some(version.effective_from);
                let a = points_of(evaluate(&rs.engine, kind, version, &low, at, &mut ctx, None), &what)?;
                let b = points_of(evaluate(&rs.engine, kind, version, &high, at, &mut ctx, None), &what)?;
                prop_assert!(a.micros() >= 0 && b.micros() >= 0, "{what}: negative");
                prop_assert!(b >= a, "{what}: {a} then {b}: points went down as inputs grew");
            }
        }
        prop_assert!(priced > 10, "every shipped priced version is covered");
    }

    #[test]
    fn scores_are_the_same_on_every_run_and_any_thread_count(
        jobs in prop::collection::vec(
            (0usize..1000, 1i64..=4096, 1i64..=4096, 1i64..=200, 0i64..=100_000, 0i64..=100_000, 0u8..3),
            1..40,
        )
    ) {
        let rs = rules();
        let models: Vec<&String> = rs.catalog.keys().collect();
        let dates = ["2024-04-15T00:00:00Z", "2024-10-01T00:00:00Z", "2025-06-01T00:00:00Z"];
        let jobs: Vec<serde_json::Value> = jobs
            .into_iter()
            .map(|(m, w, h, s, i, o, d)| {
                serde_json::json!({
                    "model": models[m % models.len()], "width": w, "height": h, "steps": s,
                    "input_tokens": i, "output_tokens": o, "completed_at": dates[d as usize],
                })
            })
            .collect();
        let score_all = |jobs: &[serde_json::Value]| -> Vec<(String, String)> {
            jobs.iter()
                .map(|j| score_record(rs, &parse_job(1, j.clone()), ScoreOptions::default()))
                .map(|s| (s.status().to_string(), s.points().to_string()))
                .collect()
        };
        let once = score_all(&jobs);
        prop_assert_eq!(&once, &score_all(&jobs), "a second run");
        for threads in [2, 4] {
            let chunk = jobs.len().div_ceil(threads);
            let parallel: Vec<(String, String)> = std::thread::scope(|s| {
                let handles: Vec<_> = jobs.chunks(chunk).map(|c| s.spawn(move || score_all(c))).collect();
                handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
            });
            prop_assert_eq!(&once, &parallel, "{} threads", threads);
        }
    }
}
