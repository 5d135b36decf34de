//! Checks that need a built rule set: protocol floors, examples, and a grid of each formula's
//! declared input ranges.

use std::cell::Cell;

use rhai::Engine;

use crate::engine::formula::sandbox::hardened_engine;
use crate::engine::formula::{EvalContext, Outcome, evaluate};
use crate::engine::model::{InputSpec, JobKind, Pricing, Rule, RuleSet, RuleVersion, Value};
use crate::rules::diagnostic::{Code, Diagnostic};
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
    for rule in rs.rules() {
        let Some(kind) = rs.job_kinds.get(&rule.kind) else {
            continue;
        };
        for version in &rule.versions {
            check_floors(rs, rule, version, &mut out);
            let examples = Examples {
                rule,
                kind,
                version,
            };
            if !examples.check(&budget, &mut ctx, &mut out) {
                unchecked.push((rule, version));
            }
            grid.add(rule, kind, version);
        }
    }
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
            (spent > limit).then_some(rhai::Dynamic::UNIT)
        });
        Budget { limit, engine }
    }

    fn exhausted(&self) -> bool {
        self.spent() >= self.limit
    }

    fn spent(&self) -> u64 {
        SPENT.with(Cell::get)
    }

    /// Evaluates `inputs`; `None` when the budget ran out (before or during it).
    fn evaluate(
        &self,
        kind: &JobKind,
        version: &RuleVersion,
        inputs: &[Value],
        ctx: &mut EvalContext,
    ) -> Option<Outcome> {
        if self.exhausted() {
            return None;
        }
        // Compiled programs spend no rhai operations; each evaluation still counts one.
        SPENT.with(|s| s.set(s.get() + 1));
        let outcome = evaluate(&self.engine, kind, version, inputs, ctx, None);
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
            out.push(at_version(rule, version, d));
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
        if matches!(version.pricing, Pricing::NoRule { .. }) {
            return true;
        }
        for ex in &version.examples {
            let inputs: Vec<Value> = ex.inputs.iter().map(|(_, v)| *v).collect();
            let shown = ex
                .inputs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let Some(outcome) = budget.evaluate(kind, version, &inputs, ctx) else {
                return false;
            };
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
                out.push(at_version(rule, version, d));
            }
        }
        true
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

    fn add(&mut self, rule: &'r Rule, kind: &'r JobKind, version: &'r RuleVersion) {
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
        let total = axes.iter().map(Vec::len).product();
        self.grids.push(Grid {
            rule,
            kind,
            version,
            axes,
            total,
            next: 0,
            probed: Vec::new(),
            done: false,
        });
    }

    fn run(mut self, ctx: &mut EvalContext, out: &mut Vec<Diagnostic>) {
        let mut grids = std::mem::take(&mut self.grids);
        let mut deferred: Vec<(u64, usize)> = Vec::new();
        for (i, g) in grids.iter_mut().enumerate() {
            let cost = self.probe(g, ctx);
            if cost <= CHEAP_POINT_OPERATIONS {
                self.complete(g, ctx, out);
            } else {
                deferred.push((cost, i));
            }
        }
        deferred.sort_by_key(|&(cost, _)| cost);
        for (_, i) in deferred {
            self.complete(&mut grids[i], ctx, out);
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
        if !g.done && g.next < g.total {
            if let Some(d) = g.probed.iter().find_map(|(_, f)| f.clone()) {
                out.push(d);
                g.done = true;
            }
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
        let outcome = self.budget.evaluate(g.kind, g.version, &point, ctx)?;
        let Outcome::Failed { error } = outcome else {
            return Some(None);
        };
        let shown = g
            .kind
            .inputs
            .iter()
            .zip(&point)
            .map(|(s, v)| format!("{}={v}", s.name))
            .collect::<Vec<_>>()
            .join(", ");
        let d = Diagnostic::error(
            Code::FormulaGrid,
            format!("{} fails for {shown}: {error}", label(g.rule, g.version)),
        )
        .with_help("a formula must return a finite number ≥ 0 for every input the job kind allows (kinds.toml bounds) that passes the thresholds");
        Some(Some(at_version(g.rule, g.version, d)))
    }

    fn incomplete(&self, first: &Grid<'_>, all: &[&Grid<'_>]) -> Diagnostic {
        let mut listed: Vec<String> = all
            .iter()
            .take(LISTED)
            .map(|g| {
                format!(
                    "{} on {} of {} points",
                    label(g.rule, g.version),
                    g.checked(),
                    g.total
                )
            })
            .collect();
        if all.len() > LISTED {
            listed.push(format!("and {} more versions", all.len() - LISTED));
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
