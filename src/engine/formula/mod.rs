//! Running a rule version on a job's inputs: derived values, thresholds, formula, points.
//!
//! Each expression (a derived value or the formula) runs as its compiled [`Program`] when it
//! has one and the arithmetic stays exact, else in the sandboxed rhai engine; both give the
//! same bits (the compiled subset mirrors rhai's semantics and is tested against it). Every
//! other step — thresholds, the multiplier, rounding to points, every message — exists once.

mod compiled;
pub mod sandbox;

use std::fmt::Write as _;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};

pub use compiled::Program;

use super::model::{JobKind, Pricing, RuleVersion, Threshold, Value};
use super::points::Points;

/// Per-thread evaluation state, reused across jobs so that scoring does not allocate.
#[derive(Default)]
pub struct EvalContext {
    scope: Scope<'static>,
    slots: Vec<Value>,
    stack: Vec<Value>,
    /// The reason of the last `BelowThreshold` outcome.
    reason: String,
    /// Always run rhai, never a compiled program (the reference behaviour, for equivalence
    /// tests and benchmarks).
    pub interpret_only: bool,
}

impl EvalContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// A context that never uses compiled programs.
    pub fn interpreter_only() -> Self {
        EvalContext {
            interpret_only: true,
            ..Self::default()
        }
    }

    /// Why the last evaluation was below a threshold (`below threshold: steps 19 < min 20`).
    pub fn reason(&self) -> &str {
        &self.reason
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
    /// Valid, but under a threshold; the reason is [`EvalContext::reason`].
    BelowThreshold,
    /// The formula or a derived value failed; the job is not scored.
    Failed { error: String },
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

/// Why an expression gave no number.
enum RunError {
    Failed(Box<EvalAltResult>),
    NotANumber(&'static str),
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
    if observe.is_some() {
        sandbox::reset_captured();
    }
    ctx.slots.clear();
    ctx.slots.extend_from_slice(inputs);
    for d in &kind.derived {
        let value = match run(engine, d.compiled.as_ref(), &d.ast, kind, ctx) {
            Ok(v) => v,
            Err(RunError::NotANumber(type_name)) => {
                return Outcome::Failed {
                    error: format!(
                        "derived value `{}` = `{}` returned a `{type_name}`, expected a number",
                        d.name, d.expr
                    ),
                };
            }
            Err(RunError::Failed(e)) => {
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
        ctx.slots.push(value);
    }
    if !check_thresholds(thresholds, ctx, observe.as_deref_mut()) {
        return Outcome::BelowThreshold;
    }
    let outcome = match run(engine, formula.compiled.as_ref(), &formula.ast, kind, ctx) {
        Err(RunError::Failed(e)) => Outcome::Failed {
            error: format!(
                "formula `{}` ({}) failed: {}",
                formula.name,
                formula.file,
                describe(&e)
            ),
        },
        Err(RunError::NotANumber(type_name)) => Outcome::Failed {
            error: format!(
                "formula `{}` ({}) returned a `{type_name}`, expected a number",
                formula.name, formula.file
            ),
        },
        Ok(v) => {
            let base = v.as_f64();
            match Points::from_f64(base * multiplier) {
                Ok(points) => Outcome::Ok { base, points },
                Err(e) => Outcome::Failed {
                    error: format!(
                        "formula `{}` ({}) gave {base} × multiplier {multiplier}: {e}",
                        formula.name, formula.file
                    ),
                },
            }
        }
    };
    if let Some(o) = observe {
        o.printed = sandbox::take_captured().0;
    }
    outcome
}

/// One expression over the values in `ctx.slots` (inputs, then the derived values so far):
/// its compiled program when it has one and the arithmetic stays exact, else rhai (which
/// also gives the canonical error for overflow or division by zero).
fn run(
    engine: &Engine,
    program: Option<&Program>,
    ast: &AST,
    kind: &JobKind,
    ctx: &mut EvalContext,
) -> Result<Value, RunError> {
    if let (Some(p), false) = (program, ctx.interpret_only) {
        if let Ok(v) = p.eval(&mut ctx.slots, &mut ctx.stack) {
            return Ok(v);
        }
    }
    let scope = &mut ctx.scope;
    scope.clear();
    for (name, value) in kind.value_names().zip(&ctx.slots) {
        scope.push_constant_dynamic(name.to_string(), value.to_dynamic());
    }
    let raw = engine
        .eval_ast_with_scope::<Dynamic>(scope, ast)
        .map_err(RunError::Failed)?;
    Value::from_dynamic(&raw).ok_or(RunError::NotANumber(raw.type_name()))
}

/// Checks every threshold on the values in `ctx.slots`; false (with `ctx.reason` naming
/// each one missed) when the job is below any of them.
fn check_thresholds(
    thresholds: &[Threshold],
    ctx: &mut EvalContext,
    mut observe: Option<&mut Observed>,
) -> bool {
    ctx.reason.clear();
    for t in thresholds {
        let value = ctx.slots.get(t.slot).map_or(f64::NAN, |v| v.as_f64());
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
            let sep = if ctx.reason.is_empty() {
                "below threshold: "
            } else {
                ", "
            };
            // Writing into a reused String does not allocate once it has grown.
            let _ = write!(ctx.reason, "{sep}{} {value} < min {}", t.name, t.min);
        }
    }
    ctx.reason.is_empty()
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
