//! `check`'s proof, for every priced version, over every job its job kind allows: the derived
//! values and the formula never divide by zero and stay finite, and the points are never
//! below 0 nor above `max_points` of policy.toml (nor the engine's per-job ceiling).
//!
//! The domain of a version is the box of its job kind's inputs (type, `min`/`max`, default;
//! an unbounded input is the whole of `i64` or of the finite floats), run through the
//! execution limits in force, narrowed by the version's thresholds (`min`) and ceilings
//! (`max`) where they apply: derived values are computed before thresholds, so they are
//! proved on the whole box. The compiled programs run on it in interval arithmetic
//! ([`crate::engine::interval`]). Where a property does not follow for the whole box, the box
//! is split (branch and bound, on the input whose split helps most) and each part is tried at
//! concrete jobs (its corners and centre): a job that breaks the property is a counterexample,
//! reported with the job itself. What is neither proved nor refuted within the search is a
//! warning that names the property and the part of the domain left, never an "ok".
//! Formulas that run in rhai (anything beyond numbers, variables, `let` and `+ - * / %`) are
//! not analysed: they get a `formula-not-proved` warning and the sampled grid of `validate`.

use jiff::Timestamp;

use crate::engine::formula::Outcome;
use crate::engine::interval::{self, Hazard, Range};
use crate::engine::model::{InputSpec, JobKind, Pricing, Rule, RuleScope, RuleSet, RuleVersion};
use crate::engine::points::MAX_POINTS_PER_JOB;
use crate::engine::time::utc_string;
use crate::engine::value::Value;
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::schema::InputType;

/// Boxes examined per version and execution-limits era before giving up ("not proved").
const MAX_NODES: usize = 1_000;

/// Example jobs a counterexample is carried over to, to show it among familiar values.
const TYPICAL_JOBS: usize = 3;

/// Inputs whose subsets are tried when carrying a counterexample over (2^n jobs each).
const MAX_SHRUNK_INPUTS: usize = 6;

/// What the proof made of one version.
pub(crate) enum Verdict {
    /// Every property holds for every job.
    Proved,
    /// A job breaks a property: the error, and the derived value that breaks it when it is
    /// one (every version of the kind shares it, so it is reported once).
    Refuted(Diagnostic, Option<String>),
    /// Neither proved nor refuted: the warning. The sampled grid still runs on such a
    /// version.
    NotProved(Diagnostic),
    /// Not analysable (a formula or derived value that runs in rhai): the warning, and what
    /// runs in rhai (`formulas/x.rhai`, or `kind.derived`), which many versions may share
    /// and is reported once. The sampled grid runs instead.
    NotAnalysable(Diagnostic, String),
}

/// A property a priced job must have.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Property {
    DivideByZero,
    Finite,
    NotNegative,
    /// Within `max_points` of policy.toml (or the engine's own per-job ceiling).
    WithinMax(f64),
}

impl Property {
    fn code(self) -> Code {
        match self {
            Property::DivideByZero => Code::FormulaMayDivideByZero,
            Property::Finite => Code::FormulaMayOverflow,
            Property::NotNegative => Code::FormulaMayGoNegative,
            Property::WithinMax(_) => Code::FormulaMayExceedMax,
        }
    }

    /// What went wrong, in words: `formula `x` (f) divides by zero`.
    fn broken(self, step: &str) -> String {
        match self {
            Property::DivideByZero => format!("divides by zero in {step}"),
            Property::Finite => format!("overflows in {step} (integer overflow, infinity or NaN)"),
            Property::NotNegative => "pays a negative amount".to_string(),
            Property::WithinMax(max) => format!("pays above {max} points"),
        }
    }

    /// What must hold, in words.
    fn holds(self, step: &str) -> String {
        match self {
            Property::DivideByZero => format!("{step} never divides by zero"),
            Property::Finite => {
                format!("{step} stays finite (no integer overflow, no infinity or NaN)")
            }
            Property::NotNegative => "the points are never below 0".to_string(),
            Property::WithinMax(max) => format!("the points never exceed {max}"),
        }
    }
}

/// How one box fares.
#[derive(Debug, Clone, PartialEq)]
enum Assessment {
    /// No job in it passes the thresholds and ceilings, and no derived value fails on it.
    Infeasible,
    Holds,
    /// `property` may fail at `step` (`None`: the formula; `Some(i)`: derived value `i`);
    /// `excess` says by how much (larger is worse), to steer the search.
    Fails {
        property: Property,
        step: Option<usize>,
        excess: f64,
    },
}

impl Assessment {
    fn fails(&self) -> bool {
        matches!(self, Assessment::Fails { .. })
    }

    /// Worse boxes sort last: (failing, excess).
    fn badness(&self) -> (u8, f64) {
        match self {
            Assessment::Fails { excess, .. } => (1, *excess),
            _ => (0, 0.0),
        }
    }
}

/// One version under one entry of execution limits.
struct Problem<'r> {
    rule: &'r Rule,
    kind: &'r JobKind,
    version: &'r RuleVersion,
    at: Timestamp,
    multiplier: f64,
    max_points: Option<f64>,
}

/// Proves `version` of `rule`; `evaluate` prices one job (requested inputs, at a time) as
/// `check` does, `None` when the check's budget ran out.
pub(crate) fn prove_version(
    rs: &RuleSet,
    rule: &Rule,
    kind: &JobKind,
    version: &RuleVersion,
    max_points: Option<f64>,
    evaluate: &mut dyn FnMut(&[Value], Timestamp) -> Option<Outcome>,
) -> Verdict {
    let Pricing::Priced {
        formula,
        multiplier,
        ..
    } = &version.pricing
    else {
        return Verdict::Proved;
    };
    // Only compiled programs can be analysed.
    // Versions that share a script (a shared formula, or one text inline) share the warning.
    let formula_key = format!("{}#{}", formula.file, formula.source);
    let uncompiled = std::iter::once((
        formula.compiled.is_none(),
        format!("formula `{}` ({})", formula.name, formula.file),
        formula_key,
    ))
    .chain(kind.derived.iter().map(|d| {
        (
            d.compiled.is_none(),
            format!("derived value `{}` = `{}` (kinds.toml)", d.name, d.expr),
            format!("{}.{}", kind.name, d.name),
        )
    }))
    .find(|(missing, ..)| *missing);
    if let Some((_, what, key)) = uncompiled {
        let d = Diagnostic::warning(
            Code::FormulaNotProved,
            format!(
                "{what} runs in rhai (it uses more than numbers, variables, `let`, parentheses and + - * / %), which check cannot reason about: it is not proved to give a finite number ≥ 0 within the ceilings for every job, and every version that uses it (first {}) was only tried on a grid of sample jobs",
                label(rule, version)
            ),
        )
        .with_help("write it with arithmetic only (numbers, the job's values, `let`, + - * / %) to have it proved for every job; a threshold (`min`) or ceiling (`max`) in the version replaces most `if`s");
        return Verdict::NotAnalysable(place_formula(rule, version, d), key);
    }
    let until = rule.next_after(version);
    let eras = std::iter::once(version.effective_from).chain(
        (kind.execution_limits.iter())
            .map(|l| l.effective_from)
            .filter(|t| *t > version.effective_from && until.is_none_or(|u| *t < u)),
    );
    let mut unproved = None;
    for at in eras {
        let problem = Problem {
            rule,
            kind,
            version,
            at,
            multiplier: *multiplier,
            max_points,
        };
        match problem.search(rs, evaluate) {
            Verdict::Proved => {}
            refuted @ Verdict::Refuted(..) => return refuted,
            not_proved @ (Verdict::NotProved(_) | Verdict::NotAnalysable(..)) => {
                unproved.get_or_insert(not_proved);
            }
        }
    }
    unproved.unwrap_or(Verdict::Proved)
}

fn label(rule: &Rule, version: &RuleVersion) -> String {
    format!("rule `{}` version {}", rule.id, version.version)
}

fn place_formula(rule: &Rule, version: &RuleVersion, d: Diagnostic) -> Diagnostic {
    match &version.formula_place {
        Some(p) => d.at_place(&rule.file, p),
        None => {
            let start = version.header.start;
            let end = version.header.end.saturating_sub(1).max(start);
            d.at_line(&rule.file, version.line, start..end)
        }
    }
}

/// The requested values a job may carry for `spec`: `None` for an input that may be absent
/// (no program can read it, and thresholds and ceilings do not apply to it when absent).
fn domain(spec: &InputSpec) -> Option<Range> {
    if spec.may_be_absent() {
        return None;
    }
    let with_default = |r: Range| match (r, spec.default) {
        (Range::Int { lo, hi }, Some(Value::Int(d))) => Range::Int {
            lo: lo.min(d as i128),
            hi: hi.max(d as i128),
        },
        (Range::Float { lo, hi }, Some(d)) => Range::Float {
            lo: lo.min(d.as_f64()),
            hi: hi.max(d.as_f64()),
        },
        (r, _) => r,
    };
    Some(with_default(match spec.ty {
        InputType::Int => Range::Int {
            lo: spec
                .min
                .map_or(i64::MIN as i128, |m| m.ceil().max(i64::MIN as f64) as i128),
            hi: spec
                .max
                .map_or(i64::MAX as i128, |m| m.floor().min(i64::MAX as f64) as i128),
        },
        InputType::Float => Range::Float {
            lo: spec.min.unwrap_or(f64::MIN),
            hi: spec.max.unwrap_or(f64::MAX),
        },
    }))
}

/// A region of jobs (a box): for each input, its range of requested values (`None`: may be absent).
type Region = Vec<Option<Range>>;

impl Problem<'_> {
    fn search(
        &self,
        rs: &RuleSet,
        evaluate: &mut dyn FnMut(&[Value], Timestamp) -> Option<Outcome>,
    ) -> Verdict {
        let root: Region = self.kind.inputs.iter().map(domain).collect();
        let first = self.assess(&root);
        let mut stack = vec![(root, first)];
        let mut nodes = 0;
        let mut left: Option<(Region, Assessment)> = None;
        while let Some((node, assessment)) = stack.pop() {
            if !assessment.fails() {
                continue;
            }
            nodes += 1;
            if nodes > MAX_NODES {
                left = Some((node, assessment));
                break;
            }
            for point in candidates(&node) {
                let Some(outcome) = evaluate(&point, self.at) else {
                    // The check's budget ran out: what is left is not proved.
                    return self.not_proved(&node, &assessment);
                };
                let Some(result) = self.broken(outcome) else {
                    continue;
                };
                let (point, result) = self.simplest(rs, point, result, evaluate);
                return self.counterexample(rs, &point, result, &assessment);
            }
            match self.split(&node) {
                Some(children) => stack.extend(children),
                // A single job (or floats that cannot be split further) that the arithmetic
                // cannot clear and that does not fail when priced: left unresolved.
                None => {
                    left.get_or_insert((node, assessment));
                }
            }
        }
        match left {
            Some((node, assessment)) => self.not_proved(&node, &assessment),
            None => Verdict::Proved,
        }
    }

    /// The input ranges as the job ran (through the execution limits in force).
    fn executed(&self, node: &Region) -> Vec<Range> {
        let limits = self.kind.limits_at(Some(self.at));
        node.iter()
            .enumerate()
            .map(|(slot, r)| {
                let Some(r) = r else {
                    return Range::point(Value::ABSENT);
                };
                match limits.and_then(|l| l.inputs.iter().find(|i| i.slot == slot)) {
                    Some(limit) => r.map_monotone(|v| limit.apply(v)),
                    None => *r,
                }
            })
            .collect()
    }

    fn assess(&self, node: &Region) -> Assessment {
        let Pricing::Priced {
            formula,
            thresholds,
            ceilings,
            ..
        } = &self.version.pricing
        else {
            return Assessment::Holds;
        };
        let fail = |hazard: Hazard, step| Assessment::Fails {
            property: match hazard {
                Hazard::DivideByZero => Property::DivideByZero,
                Hazard::Overflow => Property::Finite,
            },
            step,
            excess: 1.0,
        };
        let inputs = self.executed(node);
        // Derived values run before thresholds: on every job of the box.
        let mut slots = inputs.clone();
        for (i, d) in self.kind.derived.iter().enumerate() {
            let Some(p) = &d.compiled else {
                return fail(Hazard::Overflow, Some(i));
            };
            match interval::eval(p, &slots) {
                Ok(r) => slots.push(r),
                Err(f) => return fail(f.hazard, Some(i)),
            }
        }
        // The formula runs on jobs that pass every threshold and ceiling.
        let present = |slot: usize| slot >= node.len() || node[slot].is_some();
        let narrow = |slots: &mut Vec<Range>, slot: usize| -> bool {
            if !present(slot) {
                return true;
            }
            let mut r = Some(slots[slot]);
            for t in thresholds.iter().filter(|t| t.slot == slot) {
                r = r.and_then(|r| r.at_least(t.min));
            }
            for c in ceilings.iter().filter(|c| c.slot == slot) {
                r = r.and_then(|r| r.at_most(c.max));
            }
            match r {
                Some(r) => {
                    slots[slot] = r;
                    true
                }
                None => false,
            }
        };
        let mut narrowed = inputs;
        for slot in 0..node.len() {
            if !narrow(&mut narrowed, slot) {
                return Assessment::Infeasible;
            }
        }
        for d in &self.kind.derived {
            let Some(p) = &d.compiled else {
                return Assessment::Holds;
            };
            // A subset of the box: it cannot fail where the whole box did not.
            let Ok(r) = interval::eval(p, &narrowed) else {
                return Assessment::Holds;
            };
            narrowed.push(r);
            let slot = narrowed.len() - 1;
            if !narrow(&mut narrowed, slot) {
                return Assessment::Infeasible;
            }
        }
        let Some(program) = &formula.compiled else {
            return Assessment::Holds;
        };
        let base = match interval::eval(program, &narrowed) {
            Ok(r) => r,
            Err(f) => return fail(f.hazard, None),
        };
        let (lo, hi) = (
            base.lo_f64() * self.multiplier,
            base.hi_f64() * self.multiplier,
        );
        if lo < 0.0 {
            return Assessment::Fails {
                property: Property::NotNegative,
                step: None,
                excess: -lo,
            };
        }
        let max = self
            .max_points
            .map_or(MAX_POINTS_PER_JOB, |m| m.min(MAX_POINTS_PER_JOB));
        if hi > max || hi.is_nan() {
            return Assessment::Fails {
                property: Property::WithinMax(max),
                step: None,
                excess: hi - max,
            };
        }
        Assessment::Holds
    }

    /// The two halves of `node` along the input whose split clears the most, each with its
    /// assessment, the worse one last (searched first); `None` when nothing can be split.
    fn split(&self, node: &Region) -> Option<[(Region, Assessment); 2]> {
        let mut best: Option<(SplitScore, [(Region, Assessment); 2])> = None;
        for (i, r) in node.iter().enumerate() {
            let Some((a, b)) = r.and_then(halves) else {
                continue;
            };
            let mut left = node.clone();
            left[i] = Some(a);
            let mut right = node.clone();
            right[i] = Some(b);
            let (la, ra) = (self.assess(&left), self.assess(&right));
            let (lb, rb) = (la.badness(), ra.badness());
            // Fewest failing halves, then least excess, then the widest input (relative).
            let width = match r {
                Some(Range::Int { lo, hi }) => -((hi - lo) as f64),
                Some(Range::Float { lo, hi }) => -(hi - lo).abs().min(f64::MAX),
                None => 0.0,
            };
            let score = (lb.0 + rb.0, lb.1 + rb.1, width);
            let better = best.as_ref().is_none_or(|(s, _)| {
                (score.0, score.1, score.2)
                    .partial_cmp(&(s.0, s.1, s.2))
                    .is_some_and(|o| o.is_lt())
            });
            if better {
                let pair = if lb <= rb {
                    [(left, la), (right, ra)]
                } else {
                    [(right, ra), (left, la)]
                };
                best = Some((score, pair));
            }
        }
        best.map(|(_, pair)| pair)
    }

    /// What is wrong with a priced job, if anything: it failed, or it pays above
    /// `max_points`.
    fn broken(&self, outcome: Outcome) -> Option<String> {
        match outcome {
            Outcome::Failed { error } => Some(error),
            Outcome::Ok { points, .. }
                if self.max_points.is_some_and(|max| points.to_f64() > max) =>
            {
                Some(format!(
                    "it pays {points} points, above the ceiling `max_points` = {} of policy.toml for job kind `{}`",
                    self.max_points.unwrap_or_default(),
                    self.rule.kind
                ))
            }
            _ => None,
        }
    }

    /// A job as plain as can be that still breaks a property: an example job of the job kind
    /// (this version's first, then its rule's, then any rule's of the kind) with as few of `point`'s values put in as break it, so the
    /// author sees `steps=37` among the values of a job they know; else `point` itself.
    fn simplest(
        &self,
        rs: &RuleSet,
        point: Vec<Value>,
        result: String,
        evaluate: &mut dyn FnMut(&[Value], Timestamp) -> Option<Outcome>,
    ) -> (Vec<Value>, String) {
        let kind = &self.rule.kind;
        let examples = (self.version.examples.iter())
            .chain(self.rule.versions.iter().flat_map(|v| &v.examples))
            .chain(
                (rs.rules().filter(|r| &r.kind == kind))
                    .flat_map(|r| r.versions.iter().flat_map(|v| &v.examples)),
            )
            .map(|e| e.inputs.iter().map(|(_, v)| *v).collect::<Vec<Value>>())
            .filter(|e| e.len() == point.len());
        let mut typical: Vec<Vec<Value>> = Vec::new();
        for e in examples {
            if !typical.contains(&e) && typical.len() < TYPICAL_JOBS {
                typical.push(e);
            }
        }
        let n = point.len().min(MAX_SHRUNK_INPUTS);
        let mut masks: Vec<u32> = (1..(1u32 << n) - 1).collect();
        masks.sort_by_key(|m| m.count_ones());
        for base in &typical {
            for &mask in &masks {
                let mut job = base.clone();
                for (i, v) in job.iter_mut().enumerate().take(n) {
                    if mask & (1 << i) != 0 {
                        *v = point[i];
                    }
                }
                if job == point {
                    continue;
                }
                let Some(outcome) = evaluate(&job, self.at) else {
                    return (point, result);
                };
                if let Some(r) = self.broken(outcome) {
                    return (job, r);
                }
            }
        }
        (point, result)
    }

    /// The error for the job `point`, which breaks a property (`result` says how).
    fn counterexample(
        &self,
        rs: &RuleSet,
        point: &[Value],
        result: String,
        searching: &Assessment,
    ) -> Verdict {
        // What the arithmetic makes of that one job names the property it breaks.
        let exact: Region = point
            .iter()
            .map(|v| (!v.is_absent()).then(|| Range::point(*v)))
            .collect();
        let (property, step) = match self.assess(&exact) {
            Assessment::Fails { property, step, .. } => (property, step),
            _ => match searching {
                Assessment::Fails { property, step, .. } => (*property, *step),
                _ => (Property::Finite, None),
            },
        };
        let d = Diagnostic::error(
            property.code(),
            format!(
                "{} {} for the job {}: {result}",
                label(self.rule, self.version),
                property.broken(&self.step_name(step)),
                self.shown(point),
            ),
        )
        .with_help(self.fix(property))
        .with_job(self.job_line(rs, point));
        let derived = (step.and_then(|i| self.kind.derived.get(i)))
            .map(|d| format!("{}.{}", self.kind.name, d.name));
        Verdict::Refuted(place_formula(self.rule, self.version, d), derived)
    }

    fn not_proved(&self, node: &Region, assessment: &Assessment) -> Verdict {
        let (property, step) = match assessment {
            Assessment::Fails { property, step, .. } => (*property, *step),
            _ => (Property::Finite, None),
        };
        let d = Diagnostic::warning(
            Code::FormulaNotProved,
            format!(
                "{}: not proved that {} for every job: check could neither prove it nor find a job that breaks it (jobs priced at {}); still open after its search, among others: {}",
                label(self.rule, self.version),
                property.holds(&self.step_name(step)),
                utc_string(self.at),
                self.describe(node)
            ),
        )
        .with_help(format!(
            "{}; check proves a property when interval arithmetic over the inputs' ranges shows it, so a formula that uses each value once proves most easily",
            self.fix(property)
        ));
        Verdict::NotProved(place_formula(self.rule, self.version, d))
    }

    fn step_name(&self, step: Option<usize>) -> String {
        match step.and_then(|i| self.kind.derived.get(i)) {
            Some(d) => format!("derived value `{}` = `{}`", d.name, d.expr),
            None => match &self.version.pricing {
                Pricing::Priced { formula, .. } => {
                    format!("formula `{}` ({})", formula.name, formula.file)
                }
                _ => "the formula".to_string(),
            },
        }
    }

    fn fix(&self, property: Property) -> String {
        match property {
            Property::DivideByZero => "keep every divisor away from zero for every job the job kind allows: bound the inputs (`min`/`max` in kinds.toml), add a threshold (`min`) or ceiling (`max`) to the version, or add a constant to the divisor".to_string(),
            Property::Finite => "bound the inputs (`min`/`max` in kinds.toml, or a `max` ceiling in the version) so that the arithmetic stays within range".to_string(),
            Property::NotNegative => "a formula must not go below 0 for any job that passes the thresholds: bound the input that drives it down (a `max` ceiling in the version or in kinds.toml), or rewrite the formula".to_string(),
            Property::WithinMax(_) => "lower the multiplier, or bound the inputs with `max` ceilings in the version; ceilings change only through policy.toml".to_string(),
        }
    }

    /// `width=512, height=512, steps=37` (and what ran, when the execution limits changed it).
    fn shown(&self, point: &[Value]) -> String {
        let list = |values: &[Value]| {
            (self.kind.inputs.iter())
                .zip(values)
                .filter(|(_, v)| !v.is_absent())
                .map(|(s, v)| format!("{}={v}", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let requested = list(point);
        match self.kind.limits_at(Some(self.at)) {
            Some(limits) => {
                let mut executed = point.to_vec();
                limits.apply(&mut executed);
                // An absent input is a NaN, unequal to itself: compared by what it stands for.
                let same = (executed.iter().zip(point))
                    .all(|(a, b)| a == b || (a.is_absent() && b.is_absent()));
                if same {
                    requested
                } else {
                    format!(
                        "{requested} (executed as {} under the execution limits from {})",
                        list(&executed),
                        utc_string(limits.effective_from)
                    )
                }
            }
            None => requested,
        }
    }

    /// `steps in 36..=38, width in 1..=16384`: the inputs of a box.
    fn describe(&self, node: &Region) -> String {
        (self.kind.inputs.iter())
            .zip(node)
            .filter_map(|(s, r)| {
                Some(match (*r)? {
                    Range::Int { lo, hi } if lo == hi => format!("{} = {lo}", s.name),
                    Range::Int { lo, hi } => format!("{} in {lo}..={hi}", s.name),
                    Range::Float { lo, hi } => format!("{} in [{lo}, {hi}]", s.name),
                })
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The job as a JSON line `eval` reads: a model this version prices at that time, the
    /// inputs as requested, and `completed_at`.
    fn job_line(&self, rs: &RuleSet, point: &[Value]) -> String {
        let json = |v: serde_json::Value| v.to_string();
        let mut fields = vec![format!("\"model\":{}", json(self.model(rs).into()))];
        let mut nested: Vec<(String, serde_json::Map<String, serde_json::Value>)> = Vec::new();
        for (spec, v) in self.kind.inputs.iter().zip(point) {
            if v.is_absent() {
                continue;
            }
            let value = serde_json::to_value(v).unwrap_or_default();
            // The first place a job may carry the input (`from`), nested as its path says.
            let path: Vec<&str> = match spec.from.first() {
                Some(p) if !p.is_empty() => p.iter().map(String::as_str).collect(),
                _ => vec![spec.name.as_str()],
            };
            if path.len() == 1 {
                fields.push(format!("{}:{}", json(path[0].into()), json(value)));
                continue;
            }
            let mut inner = value;
            for key in path[2..].iter().rev() {
                inner = serde_json::json!({ *key: inner });
            }
            match nested.iter_mut().find(|(k, _)| k == path[0]) {
                Some((_, m)) => {
                    m.insert(path[1].to_string(), inner);
                }
                None => {
                    let mut m = serde_json::Map::new();
                    m.insert(path[1].to_string(), inner);
                    nested.push((path[0].to_string(), m));
                }
            }
        }
        for (key, m) in nested {
            fields.push(format!("{}:{}", json(key.into()), json(m.into())));
        }
        fields.push(format!(
            "\"completed_at\":{}",
            json(utc_string(self.at).into())
        ));
        format!("{{{}}}", fields.join(","))
    }

    /// A model the version prices at `self.at`: the model of a model rule, else a catalog
    /// model in the family then that no model rule overrides.
    fn model(&self, rs: &RuleSet) -> String {
        if self.rule.scope == RuleScope::Model {
            return self.rule.id.clone();
        }
        let family = &self.rule.family;
        let in_family = |(name, entry): &(&String, &crate::engine::model::CatalogEntry)| {
            !rs.model_rules.contains_key(*name)
                && entry
                    .window_at(Some(self.at))
                    .is_some_and(|w| &w.family == family)
        };
        rs.catalog
            .iter()
            .find(in_family)
            .or_else(|| rs.catalog.iter().find(|(_, e)| e.has_family(family)))
            .map_or_else(
                || format!("<a model of family {family}>"),
                |(name, _)| name.clone(),
            )
    }
}

/// How good a split is, smaller is better: halves that fail, their excess, minus the width.
type SplitScore = (u8, f64, f64);

/// `r` in two halves, or `None` when it cannot be split.
fn halves(r: Range) -> Option<(Range, Range)> {
    match r {
        Range::Int { lo, hi } if lo < hi => {
            let mid = lo + (hi - lo) / 2;
            Some((Range::Int { lo, hi: mid }, Range::Int { lo: mid + 1, hi }))
        }
        Range::Float { lo, hi } => {
            let mid = lo / 2.0 + hi / 2.0;
            (lo < mid && mid < hi)
                .then_some((Range::Float { lo, hi: mid }, Range::Float { lo: mid, hi }))
        }
        _ => None,
    }
}

/// Jobs to price in a box: its lowest corner, its centre and its highest corner.
fn candidates(node: &Region) -> Vec<Vec<Value>> {
    let pick = |f: &dyn Fn(Range) -> Value| -> Vec<Value> {
        node.iter().map(|r| r.map_or(Value::ABSENT, f)).collect()
    };
    let low = pick(&|r| match r {
        Range::Int { lo, .. } => Value::Int(lo as i64),
        Range::Float { lo, .. } => Value::Float(lo),
    });
    let centre = pick(&|r| match r {
        Range::Int { lo, hi } => Value::Int((lo + (hi - lo) / 2) as i64),
        Range::Float { lo, hi } => Value::Float(lo / 2.0 + hi / 2.0),
    });
    let high = pick(&|r| match r {
        Range::Int { hi, .. } => Value::Int(hi as i64),
        Range::Float { hi, .. } => Value::Float(hi),
    });
    let mut out = vec![low];
    for p in [centre, high] {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}
