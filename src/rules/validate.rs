//! Checks that need a built rule set: protocol floors, examples, and a grid of each formula's
//! declared input ranges.

use crate::engine::formula::{EvalContext, Outcome, evaluate};
use crate::engine::model::{InputSpec, JobKind, Pricing, Rule, RuleSet, RuleVersion, Value};
use crate::rules::diagnostic::{Code, Diagnostic, offset_of};
use crate::rules::schema::InputType;

/// Runs every check on a built rule set.
pub fn validate(rs: &RuleSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut ctx = EvalContext::new();
    for rule in rs.rules() {
        let Some(kind) = rs.job_kinds.get(&rule.kind) else {
            continue;
        };
        for version in &rule.versions {
            check_floors(rs, rule, version, &mut out);
            check_examples(rs, rule, kind, version, &mut ctx, &mut out);
            check_grid(rs, rule, kind, version, &mut ctx, &mut out);
        }
    }
    out
}

fn at_version(rs: &RuleSet, rule: &Rule, version: &RuleVersion, d: Diagnostic) -> Diagnostic {
    let src = rs.files_text(&rule.file);
    let start = offset_of(src, version.line, 1);
    let end = offset_of(src, version.line + 1, 1)
        .saturating_sub(1)
        .max(start);
    d.at(&rule.file, src, Some(start..end))
}

fn label(rule: &Rule, version: &RuleVersion) -> String {
    format!("rule `{}` version {}", rule.id, version.version)
}

fn check_floors(rs: &RuleSet, rule: &Rule, version: &RuleVersion, out: &mut Vec<Diagnostic>) {
    let Pricing::Priced { thresholds, .. } = &version.pricing else {
        return;
    };
    let Some(floors) = rs.floors.get(&rule.kind) else {
        return;
    };
    for floor in floors {
        let set = thresholds.iter().find(|t| t.name == floor.name);
        let problem = match set {
            None => Some(format!("sets no `min.{}`", floor.name)),
            Some(t) if t.min < floor.min => Some(format!("sets `min.{} = {}`", floor.name, t.min)),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            let d = Diagnostic::error(
                Code::InvariantViolated,
                format!(
                    "{} {problem}, below the protocol floor `{}` = {} of policy.toml",
                    label(rule, version),
                    floor.name,
                    floor.min
                ),
            )
            .with_help(format!(
                "set `min.{} = {}` or higher; floors change only through policy.toml",
                floor.name, floor.min
            ));
            out.push(at_version(rs, rule, version, d));
        }
    }
}

fn check_examples(
    rs: &RuleSet,
    rule: &Rule,
    kind: &JobKind,
    version: &RuleVersion,
    ctx: &mut EvalContext,
    out: &mut Vec<Diagnostic>,
) {
    if matches!(version.pricing, Pricing::NoRule { .. }) {
        return;
    }
    for ex in &version.examples {
        let inputs: Vec<Value> = ex.inputs.iter().map(|(_, v)| *v).collect();
        let shown = ex
            .inputs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let outcome = evaluate(&rs.engine, kind, version, &inputs, ctx, None);
        let problem = match (&outcome, ex.below_threshold) {
            (Outcome::Ok { points, .. }, false) if *points == ex.points => None,
            (Outcome::Ok { points, .. }, false) => {
                Some(format!("expected {} points, got {points}", ex.points))
            }
            (Outcome::Ok { points, .. }, true) => {
                Some(format!("expected below_threshold, got {points} points"))
            }
            (Outcome::BelowThreshold, true) => None,
            (Outcome::BelowThreshold, false) => Some(format!(
                "expected {} points, got {}",
                ex.points,
                ctx.reason()
            )),
            (Outcome::Failed { error }, _) => Some(error.clone()),
        };
        if let Some(problem) = problem {
            let d = Diagnostic::error(
                Code::ExampleFailed,
                format!("{}: example ({shown}): {problem}", label(rule, version)),
            )
            .with_help("fix the formula, the multiplier, or the example's expected points");
            out.push(at_version(rs, rule, version, d));
        }
    }
}

/// Values to try for one input: its bounds, the thresholds on it, and points spread in
/// between on a roughly logarithmic scale.
fn grid_values(spec: &InputSpec, thresholds: &[f64]) -> Vec<Value> {
    let lo = spec.min.unwrap_or(0.0);
    let hi = spec.max.unwrap_or(lo + 1.0e6).max(lo);
    let mut xs = vec![lo, hi, (lo + hi) / 2.0];
    let mut p = 1.0f64;
    while p < hi {
        if p > lo {
            xs.push(p);
            xs.push(p * 3.0);
        }
        p *= 10.0;
    }
    for &t in thresholds {
        xs.extend([t - 1.0, t, t + 1.0]);
    }
    let mut vals: Vec<Value> = xs
        .into_iter()
        .filter(|x| *x >= lo && *x <= hi)
        .map(|x| match spec.ty {
            InputType::Int => Value::Int(x.round() as i64),
            InputType::Float => Value::Float(x),
        })
        .collect();
    vals.sort_by(|a, b| a.as_f64().total_cmp(&b.as_f64()));
    vals.dedup();
    vals
}

/// Largest grid evaluated per version.
const MAX_GRID: usize = 4096;

fn check_grid(
    rs: &RuleSet,
    rule: &Rule,
    kind: &JobKind,
    version: &RuleVersion,
    ctx: &mut EvalContext,
    out: &mut Vec<Diagnostic>,
) {
    let Pricing::Priced { thresholds, .. } = &version.pricing else {
        return;
    };
    let mut axes: Vec<Vec<Value>> = kind
        .inputs
        .iter()
        .map(|spec| {
            let ts: Vec<f64> = thresholds
                .iter()
                .filter(|t| t.name == spec.name)
                .map(|t| t.min)
                .collect();
            grid_values(spec, &ts)
        })
        .collect();
    // Thin the axes evenly until the product fits.
    while axes.iter().map(Vec::len).product::<usize>() > MAX_GRID {
        let longest = axes.iter_mut().max_by_key(|a| a.len()).expect("axes");
        let keep: Vec<Value> = longest
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0 || *i == longest.len() - 1)
            .map(|(_, v)| *v)
            .collect();
        *longest = keep;
    }
    let total: usize = axes.iter().map(Vec::len).product();
    let mut point = vec![Value::Int(0); axes.len()];
    for n in 0..total {
        let mut rest = n;
        for (i, axis) in axes.iter().enumerate() {
            point[i] = axis[rest % axis.len()];
            rest /= axis.len();
        }
        if let Outcome::Failed { error } = evaluate(&rs.engine, kind, version, &point, ctx, None) {
            let shown = kind
                .inputs
                .iter()
                .zip(&point)
                .map(|(s, v)| format!("{}={v}", s.name))
                .collect::<Vec<_>>()
                .join(", ");
            let d = Diagnostic::error(
                Code::FormulaGrid,
                format!("{} fails for {shown}: {error}", label(rule, version)),
            )
            .with_help("a formula must return a finite number ≥ 0 for every input the job kind allows (kinds.toml bounds) that passes the thresholds");
            out.push(at_version(rs, rule, version, d));
            // One failing point per version is enough to act on.
            return;
        }
    }
}
