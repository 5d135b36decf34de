//! Running a rule version on a job's inputs: derived values, thresholds, formula, points.

use rhai::{Dynamic, Engine, EvalAltResult, Scope};

use crate::model::{Formula, JobKind, Pricing, RuleVersion, Threshold, Value};
use crate::points::Points;
use crate::sandbox;

/// Per-thread evaluation state, reused across jobs to avoid allocating per job.
#[derive(Default)]
pub struct EvalContext {
    scope: Scope<'static>,
    slots: Vec<Value>,
    stack: Vec<Value>,
    /// Always run formulas in rhai, never the compiled fast path (for equivalence tests and
    /// benchmarks).
    pub interpret_only: bool,
}

impl EvalContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// A context that never uses the compiled fast path.
    pub fn interpreter_only() -> Self {
        EvalContext {
            interpret_only: true,
            ..Self::default()
        }
    }
}

/// What a priced version made of one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok {
        /// The formula's raw value, before the multiplier.
        base: f64,
        points: Points,
    },
    BelowThreshold {
        reason: String,
    },
    /// The formula or a derived value failed; the job is not scored.
    Failed {
        error: String,
    },
}

/// The values an evaluation saw, for `--explain`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Observed {
    pub derived: Vec<(String, Value)>,
    pub thresholds: Vec<ThresholdCheck>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub printed: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThresholdCheck {
    pub name: String,
    pub min: f64,
    pub value: f64,
    pub passed: bool,
}

/// Evaluates `version` (which must be priced) on `inputs`, given in the order of
/// `kind.inputs`. `observe` collects the trace.
pub fn evaluate(
    engine: &Engine,
    kind: &JobKind,
    version: &RuleVersion,
    inputs: &[Value],
    ctx: &mut EvalContext,
    mut observe: Option<&mut Observed>,
) -> Outcome {
    let Pricing::Priced {
        formula,
        multiplier,
        thresholds,
    } = &version.pricing
    else {
        return Outcome::Failed {
            error: "internal: evaluate called on a no_rule version".into(),
        };
    };
    if observe.is_none() && !ctx.interpret_only {
        if let Some(outcome) =
            evaluate_compiled(kind, formula, *multiplier, thresholds, inputs, ctx)
        {
            return outcome;
        }
    }
    if observe.is_some() {
        sandbox::reset_captured();
    }
    let scope = &mut ctx.scope;
    scope.clear();
    for (spec, value) in kind.inputs.iter().zip(inputs) {
        scope.push_constant_dynamic(spec.name.clone(), value.to_dynamic());
    }
    for d in &kind.derived {
        let result = engine.eval_ast_with_scope::<Dynamic>(scope, &d.ast);
        let value = match result.map(|r| Value::from_dynamic(&r).ok_or(r)) {
            Ok(Ok(v)) => v,
            Ok(Err(other)) => {
                return Outcome::Failed {
                    error: format!(
                        "derived value `{}` = `{}` returned a `{}`, expected a number",
                        d.name,
                        d.expr,
                        other.type_name()
                    ),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!(
                        "derived value `{}` = `{}` failed: {}",
                        d.name,
                        d.expr,
                        describe(&e)
                    ),
                };
            }
        };
        if let Some(o) = observe.as_deref_mut() {
            o.derived.push((d.name.clone(), value));
        }
        scope.push_constant_dynamic(d.name.clone(), value.to_dynamic());
    }
    if let Some(reason) = check_thresholds(thresholds, scope, observe.as_deref_mut()) {
        return Outcome::BelowThreshold { reason };
    }
    let outcome = run_formula(engine, formula, *multiplier, scope);
    if let Some(o) = observe {
        o.printed = sandbox::take_captured().0;
    }
    outcome
}

/// The fast path: every step compiled. `None` when something is not compiled or the
/// arithmetic gave up, so the caller runs rhai and gets rhai's exact result or error.
fn evaluate_compiled(
    kind: &JobKind,
    formula: &Formula,
    multiplier: f64,
    thresholds: &[Threshold],
    inputs: &[Value],
    ctx: &mut EvalContext,
) -> Option<Outcome> {
    let program = formula.compiled.as_ref()?;
    let slots = &mut ctx.slots;
    slots.clear();
    slots.extend_from_slice(inputs);
    for d in &kind.derived {
        let v = d.compiled.as_ref()?.eval(slots, &mut ctx.stack).ok()?;
        slots.push(v);
    }
    let mut missed = Vec::new();
    for t in thresholds {
        let value = slots.get(t.slot)?.as_f64();
        // Same test as the interpreted path (`passed = value >= min`).
        let passed = value >= t.min;
        if !passed {
            missed.push(format!("{} {} < min {}", t.name, value, t.min));
        }
    }
    if !missed.is_empty() {
        return Some(Outcome::BelowThreshold {
            reason: format!("below threshold: {}", missed.join(", ")),
        });
    }
    let base = program.eval(slots, &mut ctx.stack).ok()?.as_f64();
    let value = base * multiplier;
    Some(match Points::from_f64(value) {
        Ok(points) => Outcome::Ok { base, points },
        // Errors are rare: let rhai's path produce the one canonical message.
        Err(_) => return None,
    })
}

fn check_thresholds(
    thresholds: &[Threshold],
    scope: &Scope<'_>,
    mut observe: Option<&mut Observed>,
) -> Option<String> {
    let mut missed = Vec::new();
    for t in thresholds {
        let value = scope
            .get(&t.name)
            .and_then(Value::from_dynamic)
            .map_or(f64::NAN, Value::as_f64);
        let passed = value >= t.min;
        if let Some(o) = observe.as_deref_mut() {
            o.thresholds.push(ThresholdCheck {
                name: t.name.clone(),
                min: t.min,
                value,
                passed,
            });
        }
        if !passed {
            missed.push(format!("{} {} < min {}", t.name, value, t.min));
        }
    }
    (!missed.is_empty()).then(|| format!("below threshold: {}", missed.join(", ")))
}

fn run_formula(
    engine: &Engine,
    formula: &Formula,
    multiplier: f64,
    scope: &mut Scope<'_>,
) -> Outcome {
    let fail = |error: String| Outcome::Failed { error };
    let raw = match engine.eval_ast_with_scope::<Dynamic>(scope, &formula.ast) {
        Ok(r) => r,
        Err(e) => {
            return fail(format!(
                "formula `{}` ({}) failed: {}",
                formula.name,
                formula.file,
                describe(&e)
            ));
        }
    };
    let base = match Value::from_dynamic(&raw) {
        Some(v) => v.as_f64(),
        None => {
            return fail(format!(
                "formula `{}` ({}) returned a `{}`, expected a number",
                formula.name,
                formula.file,
                raw.type_name()
            ));
        }
    };
    let value = base * multiplier;
    match Points::from_f64(value) {
        Ok(points) => Outcome::Ok { base, points },
        Err(e) => fail(format!(
            "formula `{}` ({}) gave {base} × multiplier {multiplier}: {e}",
            formula.name, formula.file
        )),
    }
}

/// A rhai error in words a rule author can act on.
pub fn describe(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorTooManyOperations(pos) => {
            format!(
                "hit the limit of {} operations at {pos} (an endless loop?)",
                sandbox::Limits::DEFAULT.max_operations
            )
        }
        EvalAltResult::ErrorStackOverflow(pos) => {
            format!("call depth limit reached at {pos} (endless recursion?)")
        }
        other => other.to_string(),
    }
}
