//! Checks that need a built rule set: protocol floors, examples, the proof that each version
//! prices every job ([`crate::rules::prove`]), and, where that proof does not reach, a grid of
//! each formula's declared input ranges.

use std::cell::Cell;

use jiff::Timestamp;
use rhai::Engine;

use crate::engine::cancel::cancelled;
use crate::engine::formula::sandbox::hardened_engine;
use crate::engine::formula::{EvalContext, Outcome, evaluate};
use crate::engine::model::{
    InputSpec, JobKind, Place, PolicyCeilings, Pricing, Rule, RuleSet, RuleVersion, Value,
};
use crate::engine::points::Points;
use crate::engine::score::Status;
use crate::engine::time::utc_string;
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::prove::{Verdict, prove_version};
use crate::rules::schema::InputType;

/// Runs every check on a built rule set, within [`CHECK_BUDGET_OPERATIONS`].
pub fn validate(rs: &RuleSet) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut ctx = EvalContext::new();
    let budget = Budget::new(
        BUDGET_OVERRIDE
            .with(Cell::get)
            .unwrap_or(CHECK_BUDGET_OPERATIONS),
    );
    let mut grid = GridCheck::new(&budget);
    let mut unchecked = Vec::new();
    let mut broken_derived: Vec<String> = Vec::new();
    let mut in_rhai: Vec<String> = Vec::new();
    for rule in rs.rules() {
        let Some(kind) = rs.job_kinds.get(&rule.kind) else {
            continue;
        };
        let ceilings = rs.ceilings.get(&rule.kind);
        for version in &rule.versions {
            check_floors(rs, rule, version, &mut out);
            check_max_multiplier(rule, version, ceilings, &mut out);
            let examples = Examples {
                rule,
                kind,
                version,
            };
            if !examples.check(&budget, &mut ctx, &mut out) {
                unchecked.push((rule, version));
            }
            let max_points = ceilings.and_then(|c| c.max_points);
            let mut evaluate = |inputs: &[Value], at: Timestamp| {
                budget.evaluate(kind, version, inputs, at, &mut ctx)
            };
            match prove_version(rs, rule, kind, version, max_points, &mut evaluate) {
                Verdict::Proved => {}
                // A derived value is the kind's: the first version it breaks stands for all.
                Verdict::Refuted(d, Some(derived)) => {
                    if !broken_derived.contains(&derived) {
                        out.push(d);
                        broken_derived.push(derived);
                    }
                }
                Verdict::Refuted(d, None) => out.push(d),
                // What is not proved is still sampled: the grid may find a failing job.
                Verdict::NotProved(d) => {
                    out.push(d);
                    grid.add(rule, kind, version, max_points);
                }
                // A shared formula in rhai is reported once, with the first version using it.
                Verdict::NotAnalysable(d, script) => {
                    if !in_rhai.contains(&script) {
                        out.push(d);
                        in_rhai.push(script);
                    }
                    grid.add(rule, kind, version, max_points);
                }
            }
        }
    }
    check_required_inputs(rs, &mut out);
    if let Some(&(rule, version)) = unchecked.first() {
        let mut list: Vec<String> = unchecked
            .iter()
            .take(LISTED)
            .map(|(r, v)| label(r, v))
            .collect();
        if unchecked.len() > LISTED {
            list.push(format!("and {} more versions", unchecked.len() - LISTED));
        }
        let d = Diagnostic::error(
            Code::CheckBudget,
            format!(
                "checking the examples used up the budget of {} operations; not checked: the examples of {}",
                budget.limit,
                list.join(", ")
            ),
        )
        .with_help("examples are promises that check must verify: make the formulas cheaper (loops cost operations), or give fewer examples");
        out.push(at_version(rule, version, d));
    }
    grid.run(&mut ctx, &mut out);
    out
}

/// rhai operations (plus one per evaluation) that `check` may spend on a whole rule set:
/// the examples first, then the grid. A formula may cost up to 100,000 operations per job,
/// so without a total, `check` of a 1 MiB file of such versions would take over an hour, and
/// `serve` would pay it on every reload. With it, any rule set is checked in seconds (rhai
/// runs about 30 million operations a second here). The shipped rules use well under 1% of it.
pub const CHECK_BUDGET_OPERATIONS: u64 = 100_000_000;

thread_local! {
    /// Operations spent by this thread's current check (one check runs on one thread).
    static SPENT: Cell<u64> = const { Cell::new(0) };
    /// A smaller budget for tests of what happens when it runs out.
    static BUDGET_OVERRIDE: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` (which loads rules on this thread) with a check budget of `operations` instead of
/// [`CHECK_BUDGET_OPERATIONS`]: for tests, which run unoptimised, where the real budget would
/// take a minute to use up.
pub fn with_check_budget<R>(operations: u64, f: impl FnOnce() -> R) -> R {
    let before = BUDGET_OVERRIDE.with(|b| b.replace(Some(operations)));
    let result = f();
    BUDGET_OVERRIDE.with(|b| b.set(before));
    result
}

/// The operation budget of one check, and the engine that counts against it.
struct Budget {
    limit: u64,
    engine: Engine,
}

impl Budget {
    fn new(limit: u64) -> Self {
        SPENT.with(|s| s.set(0));
        let mut engine = hardened_engine();
        // Every operation counts; past the limit, the run stops.
        engine.on_progress(move |_| {
            let spent = SPENT.with(|s| {
                let n = s.get() + 1;
                s.set(n);
                n
            });
            // A cancelled check (the playground's deadline passed) stops within a few
            // thousand operations; looking at the flag costs a little, so not at every one.
            let stop = spent > limit || (spent.is_multiple_of(4096) && cancelled());
            stop.then_some(rhai::Dynamic::UNIT)
        });
        Budget { limit, engine }
    }

    /// Out of operations, or cancelled: no more evaluations.
    fn exhausted(&self) -> bool {
        self.spent() >= self.limit || cancelled()
    }

    fn spent(&self) -> u64 {
        SPENT.with(Cell::get)
    }

    /// Evaluates `inputs` as a job priced at `at`; `None` when the budget ran out (before or
    /// during it).
    fn evaluate(
        &self,
        kind: &JobKind,
        version: &RuleVersion,
        inputs: &[Value],
        at: Timestamp,
        ctx: &mut EvalContext,
    ) -> Option<Outcome> {
        if self.exhausted() {
            return None;
        }
        // Compiled programs spend no rhai operations; each evaluation still counts one.
        SPENT.with(|s| s.set(s.get() + 1));
        let outcome = evaluate(&self.engine, kind, version, inputs, Some(at), ctx, None);
        (!self.exhausted()).then_some(outcome)
    }
}

fn at_version(rule: &Rule, version: &RuleVersion, d: Diagnostic) -> Diagnostic {
    // The `[[version]]` line without its line end; its place was found when loading.
    let start = version.header.start;
    let end = version.header.end.saturating_sub(1).max(start);
    d.at_line(&rule.file, version.line, start..end)
}

fn label(rule: &Rule, version: &RuleVersion) -> String {
    format!("rule `{}` version {}", rule.id, version.version)
}

/// `d` at `place` of the rule's file when there is one, else at the version's header.
fn at(rule: &Rule, version: &RuleVersion, place: Option<&Place>, d: Diagnostic) -> Diagnostic {
    match place {
        Some(p) => d.at_place(&rule.file, p),
        None => at_version(rule, version, d),
    }
}

/// The `max_multiplier` of policy.toml.
fn check_max_multiplier(
    rule: &Rule,
    version: &RuleVersion,
    ceilings: Option<&PolicyCeilings>,
    out: &mut Vec<Diagnostic>,
) {
    let (Pricing::Priced { multiplier, .. }, Some(max)) =
        (&version.pricing, ceilings.and_then(|c| c.max_multiplier))
    else {
        return;
    };
    if *multiplier <= max {
        return;
    }
    let d = Diagnostic::error(
        Code::PolicyCeiling,
        format!(
            "{} sets multiplier {multiplier}, above the ceiling `max_multiplier` = {max} of policy.toml for job kind `{}`",
            label(rule, version),
            rule.kind
        ),
    )
    .with_help(format!(
        "set the multiplier to {max} or less; ceilings change only through policy.toml"
    ));
    out.push(at(rule, version, version.multiplier_place.as_ref(), d));
}

/// Required inputs that some priced versions never read: a job without one is `invalid`
/// whatever version prices it, so adding a required input to a job kind breaks every
/// existing job of the kind and every released example (a `default` would not).
fn check_required_inputs(rs: &RuleSet, out: &mut Vec<Diagnostic>) {
    for kind in rs.job_kinds.values() {
        // Inputs each derived value reads, through the derived values it reads.
        let mut derived_reads: Vec<(&str, Vec<&str>)> = Vec::new();
        for d in &kind.derived {
            let ids = identifiers(&d.expr);
            let mut reads: Vec<&str> = (kind.inputs.iter())
                .map(|i| i.name.as_str())
                .filter(|n| ids.contains(n))
                .collect();
            for (name, inner) in &derived_reads {
                if ids.contains(name) {
                    reads.extend(inner.iter().copied());
                }
            }
            derived_reads.push((d.name.as_str(), reads));
        }
        for input in kind.inputs.iter().filter(|i| i.required()) {
            let mut unread: Vec<String> = Vec::new();
            for rule in rs.rules().filter(|r| r.kind == kind.name) {
                for v in &rule.versions {
                    let Pricing::Priced {
                        formula,
                        thresholds,
                        ceilings,
                        ..
                    } = &v.pricing
                    else {
                        continue;
                    };
                    let mut names = identifiers(&formula.source);
                    names.extend(thresholds.iter().map(|t| t.name.as_str()));
                    names.extend(ceilings.iter().map(|c| c.name.as_str()));
                    let reads = names.contains(input.name.as_str())
                        || derived_reads.iter().any(|(d, inner)| {
                            names.contains(d) && inner.contains(&input.name.as_str())
                        });
                    if !reads {
                        unread.push(v.label.clone());
                    }
                }
            }
            if unread.is_empty() {
                continue;
            }
            let count = unread.len();
            if count > LISTED {
                unread.truncate(LISTED);
                unread.push(format!("and {} more", count - LISTED));
            }
            let mut d = Diagnostic::warning(
                Code::RequiredInput,
                format!(
                    "input `{}.{}` is required, but {count} priced version(s) never read it ({}): every job without it becomes `invalid`, also under those versions",
                    kind.name,
                    input.name,
                    unread.join(", ")
                ),
            )
            .with_help(
                "give the input a `default` (jobs without it then take that value) or `optional = true`, so existing jobs and examples keep their results",
            );
            d = match &input.place {
                Some(p) => d.at_place(crate::rules::files::KINDS_FILE, p),
                None => d.in_file(crate::rules::files::KINDS_FILE),
            };
            out.push(d);
        }
    }
}

/// The identifiers in a rhai text, skipping comments and string literals (enough to tell
/// whether an expression names a value; a false "reads" only silences a warning).
fn identifiers(text: &str) -> std::collections::BTreeSet<&str> {
    let mut out = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + n + 4);
        } else if c == b'"' || c == b'`' || c == b'\'' {
            let end = text[i + 1..]
                .find(c as char)
                .map_or(bytes.len(), |n| i + n + 2);
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.insert(&text[start..i]);
        } else if c.is_ascii_digit() {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
            {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
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
            let place = set
                .and_then(|t| t.place.as_ref())
                .or(version.min_place.as_ref());
            out.push(at(rule, version, place, d));
        }
    }
}

/// A version's examples, checked with its formula.
struct Examples<'r> {
    rule: &'r Rule,
    kind: &'r JobKind,
    version: &'r RuleVersion,
}

impl Examples<'_> {
    /// Checks every example; false when the budget ran out before all were checked.
    fn check(&self, budget: &Budget, ctx: &mut EvalContext, out: &mut Vec<Diagnostic>) -> bool {
        let (rule, kind, version) = (self.rule, self.kind, self.version);
        for ex in &version.examples {
            let inputs: Vec<Value> = ex.inputs.iter().map(|(_, v)| *v).collect();
            let mut shown = ex
                .inputs
                .iter()
                .filter(|(_, v)| !v.is_absent())
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let at = ex.priced_at(version);
            if let Some(t) = ex.at {
                shown.push_str(&format!(", at {}", utc_string(t)));
                let until = rule.next_after(version);
                if t < version.effective_from || until.is_some_and(|u| t >= u) {
                    let d = Diagnostic::error(
                        Code::ExampleInvalid,
                        format!(
                            "{}: example ({shown}): priced at {}, when the version is not in force ({} .. {})",
                            label(rule, version),
                            utc_string(t),
                            utc_string(version.effective_from),
                            until.map_or("latest".to_string(), utc_string)
                        ),
                    )
                    .with_help("an example's `at` must fall within its version's time in force, from its `effective_from` until the next version's");
                    out.push(d.at_place(&rule.file, &ex.place));
                    continue;
                }
            }
            // What the version makes of the example: a status, its points, and why.
            let (status, points, why) = match &version.pricing {
                Pricing::NoRule { reason } => (Status::NoRule, Points::ZERO, reason.clone()),
                Pricing::Disabled { reason } => (Status::Disabled, Points::ZERO, reason.clone()),
                Pricing::Priced { .. } => {
                    let Some(outcome) = budget.evaluate(kind, version, &inputs, at, ctx) else {
                        return false;
                    };
                    match outcome {
                        Outcome::Ok { points, .. } => (Status::Ok, points, String::new()),
                        Outcome::BelowThreshold => (
                            Status::BelowThreshold,
                            Points::ZERO,
                            ctx.reason().to_string(),
                        ),
                        Outcome::OverLimit => {
                            (Status::OverLimit, Points::ZERO, ctx.reason().to_string())
                        }
                        Outcome::Failed { error } => (Status::Error, Points::ZERO, error),
                    }
                }
            };
            let problem = match (status, ex.status) {
                (Status::Error, _) => Some(why),
                (got, want) if got == want && points == ex.points => None,
                (Status::Ok, Status::Ok) => {
                    Some(format!("expected {} points, got {points}", ex.points))
                }
                (Status::Ok, want) => Some(format!("expected {want}, got {points} points")),
                (got, Status::Ok) => Some(format!(
                    "expected {} points, got {}",
                    ex.points,
                    if got == Status::BelowThreshold {
                        why
                    } else {
                        format!("{got}: {why}")
                    }
                )),
                (got, want) => Some(format!("expected {want}, got {got}: {why}")),
            };
            if let Some(problem) = problem {
                let d = Diagnostic::error(
                    Code::ExampleFailed,
                    format!("{}: example ({shown}): {problem}", label(rule, version)),
                )
                .with_help("fix the formula, the multiplier, or the example's expected points");
                out.push(d.at_place(&rule.file, &ex.place));
            }
        }
        true
    }
}

/// Values to try for one input: its bounds, the thresholds on it, and points spread in
/// between on a roughly logarithmic scale.
fn grid_values(spec: &InputSpec, thresholds: &[f64]) -> Vec<Value> {
    // Formulas cannot read an input that may be absent: it changes a job's points only
    // through its thresholds and ceilings, to zero. Absent, it passes them all, so that one
    // value covers everything the formula can compute.
    if spec.may_be_absent() {
        return vec![Value::ABSENT];
    }
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

/// Points of a grid, spread over every axis, that measure what its formula costs.
const PROBE_POINTS: usize = 8;

/// A formula that costs at most this many operations per point is cheap: its whole grid
/// (4,096 points at most) costs under 5% of the budget, so it is checked at once.
const CHEAP_POINT_OPERATIONS: u64 = 1_000;

/// Versions a budget diagnostic names one by one (the rest are counted).
const LISTED: usize = 8;

/// One version's grid: its axes and how far the check got.
struct Grid<'r> {
    rule: &'r Rule,
    kind: &'r JobKind,
    version: &'r RuleVersion,
    /// `max_points` of policy.toml for the version's job kind.
    max_points: Option<f64>,
    /// The time the grid's jobs are priced at: the version's start, or the start of a later
    /// entry of the kind's execution limits while the version is in force (one grid each).
    at: Timestamp,
    axes: Vec<Vec<Value>>,
    total: usize,
    /// Points `0..next` have been checked, in order.
    next: usize,
    /// Probe points: (index, failed) for each checked.
    probed: Vec<(usize, Option<Diagnostic>)>,
    /// A failure was reported: nothing more to check.
    done: bool,
}

impl Grid<'_> {
    /// Distinct points checked.
    fn checked(&self) -> usize {
        self.next + self.probed.iter().filter(|(i, _)| *i >= self.next).count()
    }

    /// The inputs at point `index` (the first axis varies fastest).
    fn point(&self, index: usize) -> Vec<Value> {
        let mut rest = index;
        self.axes
            .iter()
            .map(|axis| {
                let v = axis[rest % axis.len()];
                rest /= axis.len();
                v
            })
            .collect()
    }
}

/// The grid check of every priced version within the budget. Each version is first probed
/// at a few points spread over every axis, which measures what its formula costs: a cheap
/// one is then checked in full at once, an expensive one after all the others, cheapest
/// first, so a few costly formulas cannot starve the rest. A full check walks the grid in
/// order and reports its first failing point, so the report does not depend on the budget.
struct GridCheck<'r, 'b> {
    grids: Vec<Grid<'r>>,
    budget: &'b Budget,
}

impl<'r, 'b> GridCheck<'r, 'b> {
    fn new(budget: &'b Budget) -> Self {
        GridCheck {
            grids: Vec::new(),
            budget,
        }
    }

    fn add(
        &mut self,
        rule: &'r Rule,
        kind: &'r JobKind,
        version: &'r RuleVersion,
        max_points: Option<f64>,
    ) {
        let Pricing::Priced {
            thresholds,
            ceilings,
            ..
        } = &version.pricing
        else {
            return;
        };
        let mut axes: Vec<Vec<Value>> = kind
            .inputs
            .iter()
            .map(|spec| {
                let ts: Vec<f64> = (thresholds.iter())
                    .filter(|t| t.name == spec.name)
                    .map(|t| t.min)
                    .chain(
                        ceilings
                            .iter()
                            .filter(|c| c.name == spec.name)
                            .map(|c| c.max),
                    )
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
        let total = axes.iter().map(Vec::len).product();
        // Jobs run under every entry of the execution limits in force during the version.
        let until = rule.next_after(version);
        let eras = std::iter::once(version.effective_from).chain(
            (kind.execution_limits.iter())
                .map(|l| l.effective_from)
                .filter(|t| *t > version.effective_from && until.is_none_or(|u| *t < u)),
        );
        for at in eras {
            self.grids.push(Grid {
                rule,
                kind,
                version,
                max_points,
                at,
                axes: axes.clone(),
                total,
                next: 0,
                probed: Vec::new(),
                done: false,
            });
        }
    }

    fn run(mut self, ctx: &mut EvalContext, out: &mut Vec<Diagnostic>) {
        let mut grids = std::mem::take(&mut self.grids);
        let mut deferred: Vec<(u64, usize)> = Vec::new();
        // A version fails once: its grids under later execution limits add nothing to say.
        let mut failed: Vec<*const RuleVersion> = Vec::new();
        let mut complete = |g: &mut Grid<'_>, ctx: &mut EvalContext, out: &mut Vec<Diagnostic>| {
            let version: *const RuleVersion = g.version;
            if failed.contains(&version) {
                g.done = true;
                return;
            }
            self.complete(g, ctx, out);
            if g.done {
                failed.push(version);
            }
        };
        for (i, g) in grids.iter_mut().enumerate() {
            let cost = self.probe(g, ctx);
            if cost <= CHEAP_POINT_OPERATIONS {
                complete(g, ctx, out);
            } else {
                deferred.push((cost, i));
            }
        }
        deferred.sort_by_key(|&(cost, _)| cost);
        for (_, i) in deferred {
            complete(&mut grids[i], ctx, out);
        }
        let incomplete: Vec<&Grid> = grids
            .iter()
            .filter(|g| !g.done && g.checked() < g.total)
            .collect();
        if let Some(first) = incomplete.first() {
            out.push(self.incomplete(first, &incomplete));
        }
    }

    /// Checks a few points spread over `g` (a golden-ratio stride, coprime with the size, so
    /// each step moves every axis); returns the most operations one of them cost.
    fn probe(&self, g: &mut Grid<'_>, ctx: &mut EvalContext) -> u64 {
        let total = g.total;
        let gcd = |mut a: usize, mut b: usize| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        let mut stride = (total * 618 / 1000).max(1);
        while total > 1 && gcd(stride, total) != 1 {
            stride -= 1;
        }
        let mut cost = 0;
        for i in 0..total.min(PROBE_POINTS) {
            let index = i * stride % total;
            let before = self.budget.spent();
            let Some(failure) = self.check(g, index, ctx) else {
                break;
            };
            cost = cost.max(self.budget.spent() - before);
            g.probed.push((index, failure));
        }
        cost
    }

    /// Checks `g` in order from where it stopped, until a point fails or the budget runs
    /// out; a failure the probe found but the walk did not reach is reported then.
    fn complete(&self, g: &mut Grid<'_>, ctx: &mut EvalContext, out: &mut Vec<Diagnostic>) {
        while !g.done && g.next < g.total {
            let index = g.next;
            let failure = match g.probed.iter().find(|(i, _)| *i == index) {
                Some((_, f)) => f.clone(),
                None => match self.check(g, index, ctx) {
                    Some(f) => f,
                    None => break,
                },
            };
            g.next += 1;
            if let Some(d) = failure {
                out.push(d);
                g.done = true;
            }
        }
        if !g.done
            && g.next < g.total
            && let Some(d) = g.probed.iter().find_map(|(_, f)| f.clone())
        {
            out.push(d);
            g.done = true;
        }
    }

    /// Evaluates point `index` of `g`: `None` when the budget ran out first, else the
    /// diagnostic when it fails.
    fn check(
        &self,
        g: &Grid<'_>,
        index: usize,
        ctx: &mut EvalContext,
    ) -> Option<Option<Diagnostic>> {
        let point = g.point(index);
        let outcome = self.budget.evaluate(g.kind, g.version, &point, g.at, ctx)?;
        let shown = || {
            let list = |values: &[Value]| {
                g.kind
                    .inputs
                    .iter()
                    .zip(values)
                    .filter(|(_, v)| !v.is_absent())
                    .map(|(s, v)| format!("{}={v}", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let requested = list(&point);
            // What evaluate priced: the job as it ran under the limits of `g.at`.
            match g.kind.limits_at(Some(g.at)) {
                Some(limits) => {
                    let mut executed = point.clone();
                    limits.apply(&mut executed);
                    if executed == point {
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
        };
        let d = match outcome {
            Outcome::Failed { error } => Diagnostic::error(
                Code::FormulaGrid,
                format!("{} fails for {}: {error}", label(g.rule, g.version), shown()),
            )
            .with_help("a formula must return a finite number ≥ 0 for every input the job kind allows (kinds.toml bounds) that passes the thresholds"),
            Outcome::Ok { points, .. }
                if g.max_points.is_some_and(|max| points.to_f64() > max) =>
            {
                let max = g.max_points.unwrap_or_default();
                Diagnostic::error(
                    Code::PolicyCeiling,
                    format!(
                        "{} pays {points} points for {}, above the ceiling `max_points` = {max} of policy.toml for job kind `{}`",
                        label(g.rule, g.version),
                        shown(),
                        g.rule.kind
                    ),
                )
                .with_help("lower the multiplier, or bound the inputs with `max` ceilings in the version; ceilings change only through policy.toml")
            }
            _ => return Some(None),
        };
        let place = g
            .version
            .formula_place
            .as_ref()
            .filter(|_| d.code == Code::FormulaGrid)
            .or(g.version.multiplier_place.as_ref())
            .or(g.version.formula_place.as_ref());
        Some(Some(at(g.rule, g.version, place, d)))
    }

    fn incomplete(&self, first: &Grid<'_>, all: &[&Grid<'_>]) -> Diagnostic {
        // A version has one grid per entry of execution limits it spans: counted together.
        let mut versions: Vec<(&Rule, &RuleVersion, usize, usize)> = Vec::new();
        for g in all {
            match (versions.iter_mut())
                .find(|(r, v, ..)| std::ptr::eq(*r, g.rule) && std::ptr::eq(*v, g.version))
            {
                Some((.., checked, total)) => {
                    *checked += g.checked();
                    *total += g.total;
                }
                None => versions.push((g.rule, g.version, g.checked(), g.total)),
            }
        }
        let mut listed: Vec<String> = versions
            .iter()
            .take(LISTED)
            .map(|(rule, version, checked, total)| {
                format!("{} on {checked} of {total} points", label(rule, version))
            })
            .collect();
        if versions.len() > LISTED {
            listed.push(format!("and {} more versions", versions.len() - LISTED));
        }
        let d = Diagnostic::warning(
            Code::GridIncomplete,
            format!(
                "the formula grid check stopped at the budget of {} operations; checked {}",
                self.budget.limit,
                listed.join("; ")
            ),
        )
        .with_help("the rest was not checked for NaN, infinite, negative or failing results: make the formulas cheaper (loops cost operations), or split the rule set");
        at_version(first.rule, first.version, d)
    }
}
