//! Every rule version on a fixed job matrix, pinned as snapshots: any change to a rule, a
//! formula or the engine's arithmetic shows up as a snapshot diff in its pull request.

use std::fmt::Write;

use jobpoints::internals::{EvalContext, Outcome, Pricing, Value, evaluate};

use crate::util::{shipped_rules, with_snapshots};

/// Resolutions from 256² to 2048², non-square sizes, and both sides of the 512x512 threshold.
const SIZES: &[(i64, i64)] = &[
    (256, 256),
    (511, 512),
    (512, 511),
    (512, 512),
    (512, 513),
    (512, 768),
    (768, 512),
    (680, 1024),
    (768, 768),
    (1024, 1024),
    (1024, 1536),
    (1536, 1536),
    (2048, 2048),
];
const STEPS: &[i64] = &[10, 19, 20, 21, 25, 30, 40, 50, 60];
/// Token counts from 0 to 100k, input and output alone and mixed.
const TOKENS: &[(i64, i64)] = &[
    (0, 0),
    (1, 0),
    (0, 1),
    (999, 0),
    (500, 500),
    (812, 240),
    (1000, 0),
    (0, 1000),
    (4096, 4096),
    (12345, 678),
    (50000, 50000),
    (100000, 0),
];

fn outcome_text(o: &Outcome, ctx: &EvalContext) -> String {
    match o {
        Outcome::Ok { points, .. } => points.to_string(),
        Outcome::BelowThreshold => format!("below_threshold ({})", ctx.reason()),
        Outcome::OverLimit => format!("over_limit ({})", ctx.reason()),
        Outcome::Failed { error } => format!("ERROR {error}"),
    }
}

#[test]
fn every_rule_version_on_the_job_matrix() {
    let rs = shipped_rules();
    let mut ctx = EvalContext::new();
    let mut count = 0;
    for rule in rs.rules() {
        let kind = &rs.job_kinds[&rule.kind];
        for version in &rule.versions {
            count += 1;
            let mut out = String::new();
            writeln!(
                out,
                "rule {} version {} ({})",
                rule.id, version.version, rule.file
            )
            .unwrap();
            writeln!(
                out,
                "effective_from {}",
                jobpoints::internals::utc_string(version.effective_from)
            )
            .unwrap();
            // The matrix is priced at the version's start, as the jobs ran then.
            if let Some(l) = (rs.job_kinds.get(&rule.kind))
                .and_then(|k| k.limits_at(Some(version.effective_from)))
            {
                writeln!(
                    out,
                    "execution limits from {}: {}",
                    jobpoints::internals::utc_string(l.effective_from),
                    l.describe()
                )
                .unwrap();
            }
            match &version.pricing {
                Pricing::NoRule { reason } => {
                    writeln!(out, "no_rule: {reason}").unwrap();
                }
                Pricing::Disabled { reason } => {
                    writeln!(out, "disabled: {reason}").unwrap();
                }
                Pricing::Priced {
                    formula,
                    multiplier,
                    thresholds,
                    ceilings,
                } => {
                    writeln!(out, "formula {} × {multiplier}", formula.name).unwrap();
                    for t in thresholds {
                        writeln!(out, "min {} = {}", t.name, t.min).unwrap();
                    }
                    for c in ceilings {
                        writeln!(out, "max {} = {}", c.name, c.max).unwrap();
                    }
                    // The matrix grows the inputs formulas read; optional ones (latencies)
                    // are left out, so no ceiling applies.
                    let names: Vec<&str> = (kind.inputs.iter())
                        .filter(|i| !i.may_be_absent())
                        .map(|i| i.name.as_str())
                        .collect();
                    let jobs: Vec<Vec<i64>> = match names.as_slice() {
                        ["width", "height", "steps"] => SIZES
                            .iter()
                            .flat_map(|&(w, h)| STEPS.iter().map(move |&s| vec![w, h, s]))
                            .collect(),
                        ["input_tokens", "output_tokens"] => {
                            TOKENS.iter().map(|&(i, o)| vec![i, o]).collect()
                        }
                        other => panic!("no matrix for inputs {other:?}"),
                    };
                    for job in jobs {
                        let mut given = job.iter();
                        let inputs: Vec<Value> = (kind.inputs.iter())
                            .map(|i| match i.may_be_absent() {
                                true => Value::ABSENT,
                                false => Value::Int(*given.next().expect("a value per input")),
                            })
                            .collect();
                        let at = Some(version.effective_from);
                        let o = evaluate(&rs.engine, kind, version, &inputs, at, &mut ctx, None);
                        let shown: Vec<String> = names
                            .iter()
                            .zip(&job)
                            .map(|(n, v)| format!("{n}={v}"))
                            .collect();
                        writeln!(out, "{:<42} {}", shown.join(" "), outcome_text(&o, &ctx))
                            .unwrap();
                        assert!(
                            !matches!(o, Outcome::Failed { .. }),
                            "{}: {}",
                            rule.id,
                            outcome_text(&o, &ctx)
                        );
                    }
                }
            }
            let name = format!(
                "matrix__{}@{}",
                rule.id.replace(['/', '.'], "_"),
                version.version
            );
            with_snapshots(|| insta::assert_snapshot!(name, out));
        }
    }
    assert!(count >= 20, "expected every shipped version, saw {count}");
}
