//! Running a rule version on a job's inputs: derived values, thresholds, formula, points.
//!
//! Each expression (a derived value or the formula) runs as its compiled [`Program`] when it
//! has one and the arithmetic stays exact, else in the sandboxed rhai engine; both give the
//! same bits (the compiled subset mirrors rhai's semantics and is tested against it). Every
//! other step — thresholds, the multiplier, rounding to points, every message — exists once.

pub mod sandbox;

use std::fmt::Write as _;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};

pub use super::program::Program;

use jiff::Timestamp;

use super::execution::AppliedLimits;
use super::model::{Ceiling, JobKind, Pricing, RuleVersion, Threshold, Value};
use super::points::Points;

/// Per-thread evaluation state, reused across jobs so that scoring does not allocate.
#[derive(Default)]
pub struct EvalContext {
    scope: Scope<'static>,
    slots: Vec<Value>,
    stack: Vec<Value>,
    /// The reason of the last `BelowThreshold` or `OverLimit` outcome.
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

    /// Why the last evaluation was below a threshold (`below threshold: steps 19 < min 20`)
    /// or above a ceiling (`over limit: inference_latency 25.1 > max 22`).
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
    /// Valid, but above a ceiling; the reason is [`EvalContext::reason`].
    OverLimit,
    /// The formula or a derived value failed; the job is not scored.
    Failed { error: String },
}

/// The values an evaluation saw, for `--explain`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Observed {
    /// The execution limits in force, and each limited input as requested and as executed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<AppliedLimits>,
    pub derived: Vec<(String, Value)>,
    pub thresholds: Vec<ThresholdCheck>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ceilings: Vec<CeilingCheck>,
    /// The formula's own variables (`let m = ...`) at the end of its evaluation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locals: Vec<(String, Value)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub printed: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ThresholdCheck {
    pub name: String,
    pub min: f64,
    /// `None` when the value is an optional input the job left out (not checked).
    pub value: Option<f64>,
    pub passed: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CeilingCheck {
    pub name: String,
    pub max: f64,
    /// `None` when the value is an optional input the job left out (not checked).
    pub value: Option<f64>,
    pub passed: bool,
}

/// Why an expression gave no number.
enum RunError {
    Failed(Box<EvalAltResult>),
    NotANumber(&'static str),
}

/// Evaluates `version` (which must be priced) on `inputs`, the job's requested values in the
/// order of `kind.inputs`, as the job ran at `at` (the pricing time; `None`: the latest): the
/// execution limits of `kind` in force then clamp them before anything else reads them.
/// `observe` collects the trace.
pub fn evaluate(
    engine: &Engine,
    kind: &JobKind,
    version: &RuleVersion,
    inputs: &[Value],
    at: Option<Timestamp>,
    ctx: &mut EvalContext,
    mut observe: Option<&mut Observed>,
) -> Outcome {
    let Pricing::Priced {
        formula,
        multiplier,
        thresholds,
        ceilings,
    } = &version.pricing
    else {
        return Outcome::Failed {
            error: "internal: evaluate called on a version that does not price".into(),
        };
    };
    if observe.is_some() {
        sandbox::reset_captured();
    }
    ctx.slots.clear();
    ctx.slots.extend_from_slice(inputs);
    if let Some(limits) = kind.limits_at(at) {
        match observe.as_deref_mut() {
            Some(o) => o.execution = Some(limits.apply_observed(&kind.name, &mut ctx.slots)),
            None => limits.apply(&mut ctx.slots),
        }
    }
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
    if !check_ceilings(ceilings, ctx, observe.as_deref_mut()) {
        return Outcome::OverLimit;
    }
    // Explaining runs the formula in rhai, whose scope then holds its variables.
    let program = if observe.is_some() {
        None
    } else {
        formula.compiled.as_ref()
    };
    let outcome = match run(engine, program, &formula.ast, kind, ctx) {
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
        // What `run` pushed (the job's values) comes first; the formula's own `let`s follow.
        let pushed = ctx.slots.len().min(kind.value_names().count());
        o.locals = (ctx.scope.iter())
            .skip(pushed)
            .filter_map(|(name, _, v)| Value::from_dynamic(&v).map(|v| (name.to_string(), v)))
            .collect();
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
    if let (Some(p), false) = (program, ctx.interpret_only)
        && let Ok(v) = p.eval(&mut ctx.slots, &mut ctx.stack)
    {
        return Ok(v);
    }
    let scope = &mut ctx.scope;
    scope.clear();
    // An absent input is pushed too (as `()`), under a name no expression can spell, so the
    // scope's length is the number of values (see `evaluate`'s locals).
    for (name, value) in kind.readable_names().into_iter().zip(&ctx.slots) {
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
        let slot = ctx.slots.get(t.slot).copied();
        // A threshold on an optional input the job left out does not apply.
        let value = slot.filter(|v| !v.is_absent()).map(Value::as_f64);
        let passed = slot.is_some_and(Value::is_absent) || value.is_some_and(|v| v >= t.min);
        if let Some(o) = observe.as_deref_mut() {
            o.thresholds.push(ThresholdCheck {
                name: t.name.clone(),
                min: t.min,
                value,
                passed,
            });
        }
        let value = value.unwrap_or(f64::NAN);
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

/// Checks every ceiling on the values in `ctx.slots`; false (with `ctx.reason` naming each
/// one exceeded) when the job is above any of them. A value equal to its ceiling passes.
fn check_ceilings(
    ceilings: &[Ceiling],
    ctx: &mut EvalContext,
    mut observe: Option<&mut Observed>,
) -> bool {
    ctx.reason.clear();
    for c in ceilings {
        let slot = ctx.slots.get(c.slot).copied();
        // A job without the value (an optional input, e.g. a latency) is not over it.
        let value = slot.filter(|v| !v.is_absent()).map(Value::as_f64);
        let passed = value.is_none_or(|v| v <= c.max);
        if let Some(o) = observe.as_deref_mut() {
            o.ceilings.push(CeilingCheck {
                name: c.name.clone(),
                max: c.max,
                value,
                passed,
            });
        }
        if !passed {
            let sep = if ctx.reason.is_empty() {
                "over limit: "
            } else {
                ", "
            };
            let value = value.unwrap_or(f64::NAN);
            let _ = write!(ctx.reason, "{sep}{} {value} > max {}", c.name, c.max);
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
