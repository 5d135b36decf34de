//! What changed between two rule sets, at the level a reviewer reads: point and job kinds,
//! floors, catalog models, rules, and each rule version's fields, with formula text as a
//! unified diff.
//!
//! Rules are meant to change by *adding* versions; a change that rewrites an existing version
//! (same rule and version number, different pricing or date), removes one, or moves a policy
//! floor re-prices jobs that were already scored. Such changes carry a `flag` saying why a
//! reviewer must look twice.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use similar::TextDiff;

use crate::engine::model::{
    CatalogEntry, Example, ExecutionLimits, InputSpec, JobKind, Pricing, Rule, RuleScope, RuleSet,
    RuleVersion, Threshold,
};
use crate::engine::time::{day_or_time, utc_string};
use crate::review::windows::{Scope, Span};
use crate::rules::files::RuleFiles;

/// What kind of thing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    PointKind,
    JobKind,
    Input,
    Derived,
    Floor,
    Model,
    /// Another name for a model, inside a window (`[aliases]` of catalog.toml).
    Alias,
    Rule,
    Version,
    Formula,
    /// An example of a rule version (`examples = [...]`): what `check` verifies it pays.
    Example,
    /// An entry of a job kind's execution limits (`[[jobs.KIND.execution_limits]]`).
    ExecutionLimits,
}

/// How it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Added,
    Removed,
    Changed,
}

impl Op {
    /// `+`, `-` or `~`, as in a diff.
    pub fn sign(self) -> char {
        match self {
            Op::Added => '+',
            Op::Removed => '-',
            Op::Changed => '~',
        }
    }
}

/// One change between two rule sets. Field order is the JSON order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSetChange {
    pub entity: Entity,
    pub op: Op,
    /// What it is about, for people: ``rule `sdxl10` version 2``, ``model `PepeXL` ``.
    pub subject: String,
    /// The rule file (or `kinds.toml`, `policy.toml`, ...) it lives in, in the new rule set
    /// when it still exists there.
    pub file: Option<String>,
    /// The line of `file` it is on (1-based), when it can be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The field that changed (`multiplier`, `min.steps`, `effective_from`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    /// A unified diff of formula text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why this change deserves a second look (it rewrites history or moves an invariant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// Set by `jobpoints diff` when the change alters the result of jobs dated before its
    /// cut-off: the time it rewrites.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retroactive: Option<Span>,
    /// What it can re-price, to tell when (see [`crate::review::windows`]).
    #[serde(skip)]
    pub scope: Scope,
}

impl RuleSetChange {
    fn new(entity: Entity, op: Op, subject: String, file: Option<&str>) -> Self {
        RuleSetChange {
            entity,
            op,
            subject,
            file: file.map(String::from),
            line: None,
            field: None,
            old: None,
            new: None,
            diff: None,
            flag: None,
            retroactive: None,
            scope: Scope::None,
        }
    }

    fn at(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// `families/sdxl10.toml:12`, `families/sdxl10.toml`, or nothing.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match self.line {
            Some(l) => format!("{file}:{l}"),
            None => file.to_string(),
        })
    }

    fn field(mut self, field: &str, old: Option<String>, new: Option<String>) -> Self {
        self.field = Some(field.to_string());
        self.old = old;
        self.new = new;
        self
    }

    fn flag(mut self, why: impl Into<String>) -> Self {
        self.flag = Some(why.into());
        self
    }

    /// One line for people: `~ rule `sdxl10` version 2: multiplier 1.8 → 2.0`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.op.sign(), self.subject);
        if self.op == Op::Added && self.entity == Entity::Version {
            s.push_str(&format!(": {}", self.new.as_deref().unwrap_or_default()));
            if let Some(o) = &self.old {
                s.push_str(&format!(" (until then: {o})"));
            }
            return s;
        }
        match (&self.field, &self.old, &self.new) {
            (Some(f), Some(o), Some(n)) => s.push_str(&format!(": {f} {o} → {n}")),
            (Some(f), None, Some(n)) => s.push_str(&format!(": {f} {n} (new)")),
            (Some(f), Some(o), None) => s.push_str(&format!(": {f} {o} (removed)")),
            (Some(f), None, None) => s.push_str(&format!(": {f}")),
            (None, _, Some(n)) => s.push_str(&format!(": {n}")),
            (None, Some(o), None) => s.push_str(&format!(": was {o}")),
            (None, None, None) => {}
        }
        s
    }
}

/// Which rule files were added, removed or modified (by path), whatever their content.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

impl FileChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    /// One line for people, signed as in `jobpoints diff`: `+ a.toml, - b.toml, ~ c.rhai`.
    pub fn summary(&self) -> String {
        let signed = |sign: char, files: &[String]| {
            files
                .iter()
                .map(move |f| format!("{sign} {f}"))
                .collect::<Vec<_>>()
        };
        [
            signed('+', &self.added),
            signed('-', &self.removed),
            signed('~', &self.modified),
        ]
        .concat()
        .join(", ")
    }
}

/// Compares the files of two rule sets; works even when one of them does not load.
pub fn diff_files(old: &RuleFiles, new: &RuleFiles) -> FileChanges {
    let mut out = FileChanges::default();
    for (path, bytes) in &new.files {
        match old.files.get(path) {
            None => out.added.push(path.clone()),
            Some(b) if b != bytes => out.modified.push(path.clone()),
            Some(_) => {}
        }
    }
    out.removed = old
        .files
        .keys()
        .filter(|p| !new.files.contains_key(*p))
        .cloned()
        .collect();
    out
}

/// A unified diff of two texts, labelled with their paths; `None` when they are equal.
pub fn unified_diff(old_name: &str, old: &str, new_name: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let diff = TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{old_name}"), &format!("b/{new_name}"))
        .to_string();
    Some(text)
}

/// Unified diffs of every formula file (`.rhai`) whose text changed, added or removed. Works
/// from files alone, so a formula edit shows even when a rule set does not load.
pub fn diff_formula_files(old: &RuleFiles, new: &RuleFiles) -> Vec<RuleSetChange> {
    let rhai = |f: &RuleFiles| -> BTreeSet<String> {
        f.files
            .keys()
            .filter(|p| p.ends_with(".rhai"))
            .cloned()
            .collect()
    };
    let paths: BTreeSet<String> = rhai(old).union(&rhai(new)).cloned().collect();
    let mut out = Vec::new();
    for path in paths {
        let o = old.text(&path);
        let n = new.text(&path);
        let subject = format!("formula `{path}`");
        let (op, file) = match (o, n) {
            (None, Some(_)) => (Op::Added, Some(path.as_str())),
            (Some(_), None) => (Op::Removed, None),
            (Some(a), Some(b)) if a != b => (Op::Changed, Some(path.as_str())),
            _ => continue,
        };
        let mut c = RuleSetChange::new(Entity::Formula, op, subject, file);
        c.diff = unified_diff(&path, o.unwrap_or(""), &path, n.unwrap_or(""));
        if file.is_some() {
            c.line = first_changed_line(o.unwrap_or(""), n.unwrap_or(""));
        }
        out.push(c);
    }
    out
}

/// Every rule-level change from `old` to `new`, in a stable order: kinds, floors, catalog,
/// formula files, then rules with their versions and examples by rule id. Each change says
/// where it is (file and line of the new side, when it still exists there).
pub fn diff_rules(old: &RuleSet, new: &RuleSet) -> Vec<RuleSetChange> {
    let mut out = Vec::new();
    let d = Differ { old, new };
    d.point_kinds(&mut out);
    d.job_kinds(&mut out);
    d.floors(&mut out);
    d.catalog(&mut out);
    d.formulas_in_use(&mut out);
    d.all_rules(&mut out);
    out
}

/// [`diff_rules`], with each change that alters jobs dated before `cutoff` marked
/// `retroactive` with the time it rewrites (`diff`, `watch` and `serve`'s reload log alike).
pub fn diff_rules_as_of(
    old: &RuleSet,
    new: &RuleSet,
    cutoff: jiff::Timestamp,
) -> Vec<RuleSetChange> {
    let mut changes = diff_rules(old, new);
    let t = crate::review::windows::Timelines::build(old, new);
    for c in &mut changes {
        c.retroactive = t.rewrites(&c.scope).filter(|s| s.starts_before(cutoff));
    }
    changes
}

/// The two rule sets being compared; lines are looked up in the new one's files.
struct Differ<'a> {
    old: &'a RuleSet,
    new: &'a RuleSet,
}

/// The 1-based line of byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    crate::rules::diagnostic::line_col(text, offset).0
}

/// Whether `line` assigns `key` (`key = ...`, `key.sub = ...`, `"key" = ...`).
fn assigns(line: &str, key: &str) -> bool {
    let t = line.trim_start();
    let rest = t
        .strip_prefix(key)
        .or_else(|| t.strip_prefix(&format!("\"{key}\"")));
    rest.is_some_and(|r| {
        let r = r.trim_start();
        r.starts_with('=') || r.starts_with('.')
    })
}

/// The line of `key` in the table whose header is on line `header` (1-based) of `text`.
fn key_line(text: &str, header: usize, key: &str) -> Option<usize> {
    for (i, line) in text.lines().enumerate().skip(header) {
        if line.starts_with('[') {
            return None;
        }
        if assigns(line, key) {
            return Some(i + 1);
        }
    }
    None
}

/// The line of table header `header` (`[points.waifu]`) in `text`.
fn table_line(text: &str, header: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_end() == header || l.starts_with(&format!("{header} ")))
        .map(|i| i + 1)
}

/// The first line of `new` that differs from `old` (1-based), for a link to a text change.
fn first_changed_line(old: &str, new: &str) -> Option<usize> {
    let mut n = 0;
    let mut olds = old.lines();
    for line in new.lines() {
        n += 1;
        if olds.next() != Some(line) {
            return Some(n);
        }
    }
    (olds.next().is_some() || n == 0).then_some(n.max(1))
}

impl Differ<'_> {
    fn text(&self, file: &str) -> &str {
        self.new.files_text(file)
    }

    /// The line of `key` in table `header` of `file` (the table's line when the key is not
    /// written).
    fn table_key(&self, file: &str, header: &str, key: Option<&str>) -> Option<usize> {
        let text = self.text(file);
        let h = table_line(text, header)?;
        Some(key.and_then(|k| key_line(text, h, k)).unwrap_or(h))
    }

    /// The line of `key` in version `v` of `rule` (its `[[version]]` line otherwise).
    fn version_key(&self, rule: &Rule, v: &RuleVersion, key: &str) -> Option<usize> {
        let text = self.text(&rule.file);
        if v.line == 0 {
            return None;
        }
        Some(key_line(text, v.line, key).unwrap_or(v.line))
    }

    fn rule_line(&self, rule: &Rule) -> Option<usize> {
        let text = self.text(&rule.file);
        (!text.is_empty()).then(|| line_of(text, rule.span.start))
    }

    fn point_kinds(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let kinds = Some(crate::rules::load::KINDS_FILE);
        for (name, p) in &new.point_kinds {
            let subject = format!("point kind `{name}`");
            let line = self.table_key(
                crate::rules::load::KINDS_FILE,
                &format!("[points.{name}]"),
                Some("description"),
            );
            match old.point_kinds.get(name) {
                None => out.push(
                    RuleSetChange::new(Entity::PointKind, Op::Added, subject, kinds)
                        .at(line)
                        .field("description", None, p.description.clone()),
                ),
                Some(o) if o.description != p.description => out.push(
                    RuleSetChange::new(Entity::PointKind, Op::Changed, subject, kinds)
                        .at(line)
                        .field("description", o.description.clone(), p.description.clone()),
                ),
                Some(_) => {}
            }
        }
        for name in old.point_kinds.keys() {
            if !new.point_kinds.contains_key(name) {
                let users: Vec<String> = (old.job_kinds.values())
                    .filter(|k| &k.points == name)
                    .map(|k| k.name.clone())
                    .collect();
                out.push(
                    RuleSetChange::new(
                        Entity::PointKind,
                        Op::Removed,
                        format!("point kind `{name}`"),
                        None,
                    )
                    .scope(Scope::Kinds(users))
                    .flag("a point kind that miners already earned disappears"),
                );
            }
        }
    }

    fn job_kinds(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let file = Some(crate::rules::load::KINDS_FILE);
        for (name, n) in &new.job_kinds {
            let line = |key: Option<&str>| {
                self.table_key(
                    crate::rules::load::KINDS_FILE,
                    &format!("[jobs.{name}]"),
                    key,
                )
            };
            let Some(o) = old.job_kinds.get(name) else {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Added,
                        format!("job kind `{name}`"),
                        file,
                    )
                    .at(line(Some("points")))
                    .field("points", None, Some(n.points.clone())),
                );
                continue;
            };
            if o.points != n.points {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Changed,
                        format!("job kind `{name}`"),
                        file,
                    )
                    .at(line(Some("points")))
                    .scope(Scope::Kinds(vec![name.clone()]))
                    .field("points", Some(o.points.clone()), Some(n.points.clone()))
                    .flag("jobs of this kind already earned the old point kind"),
                );
            }
            self.inputs(name, o, n, out);
            self.execution_limits(name, o, n, out);
        }
        for name in old.job_kinds.keys() {
            if !new.job_kinds.contains_key(name) {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Removed,
                        format!("job kind `{name}`"),
                        None,
                    )
                    .scope(Scope::Kinds(vec![name.clone()]))
                    .flag("every job of this kind loses its rule"),
                );
            }
        }
    }

    /// Inputs and derived values of job kind `kind`. Any change to them can change how a job
    /// of the kind is read under every version, so each is scoped to the whole kind; the
    /// replay shows whether a job actually moves.
    fn inputs(&self, kind: &str, o: &JobKind, n: &JobKind, out: &mut Vec<RuleSetChange>) {
        let file = Some(crate::rules::load::KINDS_FILE);
        let scope = || Scope::Kinds(vec![kind.to_string()]);
        let kinds_text = self.text(crate::rules::load::KINDS_FILE);
        for ni in &n.inputs {
            let subject = format!("input `{kind}.{}`", ni.name);
            let line =
                ni.place.as_ref().map(|p| p.line).or_else(|| {
                    table_line(kinds_text, &format!("[jobs.{kind}.inputs.{}]", ni.name))
                });
            match o.inputs.iter().find(|i| i.name == ni.name) {
                None => {
                    let mut c = RuleSetChange::new(Entity::Input, Op::Added, subject, file)
                        .at(line)
                        .scope(scope())
                        .field("spec", None, Some(input_bounds(ni)));
                    if ni.required() {
                        c = c.flag(format!(
                            "a required input: every job without `{}` becomes invalid, also under existing versions; give it a `default`",
                            ni.name
                        ));
                    }
                    out.push(c);
                }
                Some(oi) => {
                    let (a, b) = (input_bounds(oi), input_bounds(ni));
                    if a != b {
                        let mut c = RuleSetChange::new(Entity::Input, Op::Changed, subject, file)
                            .at(line)
                            .scope(scope())
                            .field("spec", Some(a), Some(b));
                        if ni.required() && !oi.required() {
                            c = c.flag(format!(
                                "now required: every job without `{}` becomes invalid",
                                ni.name
                            ));
                        } else if oi.default != ni.default && oi.default.is_some() {
                            c = c.flag("re-prices every existing job that relies on the default");
                        } else if oi.tokens_of.is_some() {
                            c = c.flag(
                                "re-prices every existing job whose tokens are counted from its text",
                            );
                        }
                        out.push(c);
                    }
                }
            }
        }
        for oi in &o.inputs {
            if !n.inputs.iter().any(|i| i.name == oi.name) {
                out.push(
                    RuleSetChange::new(
                        Entity::Input,
                        Op::Removed,
                        format!("input `{kind}.{}`", oi.name),
                        file,
                    )
                    .scope(scope())
                    .field("spec", Some(input_bounds(oi)), None)
                    .flag("formulas and thresholds that read it stop working"),
                );
            }
        }
        let derived_line = |name: &str| {
            self.table_key(
                crate::rules::load::KINDS_FILE,
                &format!("[jobs.{kind}.derived]"),
                Some(name),
            )
        };
        for nd in &n.derived {
            let subject = format!("derived value `{kind}.{}`", nd.name);
            match o.derived.iter().find(|d| d.name == nd.name) {
                None => out.push(
                    RuleSetChange::new(Entity::Derived, Op::Added, subject, file)
                        .at(derived_line(&nd.name))
                        .scope(scope())
                        .field("expr", None, Some(nd.expr.clone())),
                ),
                Some(od) if od.expr != nd.expr => out.push(
                    RuleSetChange::new(Entity::Derived, Op::Changed, subject, file)
                        .at(derived_line(&nd.name))
                        .scope(scope())
                        .field("expr", Some(od.expr.clone()), Some(nd.expr.clone()))
                        .flag("re-prices every existing version that uses it"),
                ),
                Some(_) => {}
            }
        }
        for od in &o.derived {
            if !n.derived.iter().any(|d| d.name == od.name) {
                out.push(
                    RuleSetChange::new(
                        Entity::Derived,
                        Op::Removed,
                        format!("derived value `{kind}.{}`", od.name),
                        file,
                    )
                    .scope(scope())
                    .field("expr", Some(od.expr.clone()), None)
                    .flag("formulas and thresholds that read it stop working"),
                );
            }
        }
    }

    /// Execution limits of job kind `kind`, entry by entry (matched by `effective_from`).
    /// What a job ran decides its points, so each change is scoped to where the two sides'
    /// limits differ; the windows tell whether it rewrites the past.
    fn execution_limits(&self, kind: &str, o: &JobKind, n: &JobKind, out: &mut Vec<RuleSetChange>) {
        let file = Some(crate::rules::load::KINDS_FILE);
        let scope = |l: &ExecutionLimits| Scope::Limits(kind.to_string(), l.effective_from);
        let subject = |l: &ExecutionLimits| {
            format!(
                "execution limits of job kind `{kind}` from {}",
                utc_string(l.effective_from)
            )
        };
        for nl in &n.execution_limits {
            let line = Some(nl.place.line);
            match (o.execution_limits.iter()).find(|l| l.effective_from == nl.effective_from) {
                None => out.push(
                    RuleSetChange::new(Entity::ExecutionLimits, Op::Added, subject(nl), file)
                        .at(line)
                        .scope(scope(nl))
                        .field("inputs", None, Some(nl.describe())),
                ),
                Some(ol) => {
                    if ol.describe() != nl.describe() {
                        out.push(
                            RuleSetChange::new(Entity::ExecutionLimits, Op::Changed, subject(nl), file)
                                .at(line)
                                .scope(scope(nl))
                                .field("inputs", Some(ol.describe()), Some(nl.describe()))
                                .flag("changes the limits that jobs already priced ran under, so they are re-priced; add an entry from a new time instead"),
                        );
                    }
                    if ol.source != nl.source {
                        out.push(
                            RuleSetChange::new(
                                Entity::ExecutionLimits,
                                Op::Changed,
                                subject(nl),
                                file,
                            )
                            .at(line)
                            .field(
                                "source",
                                Some(ol.source.clone()),
                                Some(nl.source.clone()),
                            ),
                        );
                    }
                }
            }
        }
        for ol in &o.execution_limits {
            if !(n.execution_limits.iter()).any(|l| l.effective_from == ol.effective_from) {
                out.push(
                    RuleSetChange::new(Entity::ExecutionLimits, Op::Removed, subject(ol), file)
                        .scope(scope(ol))
                        .field("inputs", Some(ol.describe()), None)
                        .flag("jobs that ran under these limits are re-priced as the entry before (or as requested)"),
                );
            }
        }
    }

    /// Floors and ceilings of policy.toml. They decide whether rules load, never what a job
    /// earns, so they re-price nothing by themselves.
    fn floors(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let flat = |rs: &RuleSet| -> BTreeMap<String, f64> {
            rs.floors
                .iter()
                .flat_map(|(k, ts)| ts.iter().map(move |t| (format!("{k}.{}", t.name), t.min)))
                .collect()
        };
        let policy = crate::rules::load::POLICY_FILE;
        // `image.steps` → the `steps` key of `[floors.image]`.
        let line = |table: &str, name: &str| {
            let (kind, key) = name.split_once('.').unwrap_or((name, name));
            self.table_key(policy, &format!("[{table}.{kind}]"), Some(key))
        };
        let (o, n) = (flat(old), flat(new));
        let file = Some(policy);
        for (name, nv) in &n {
            let subject = format!("floor `{name}`");
            match o.get(name) {
                None => out.push(
                    RuleSetChange::new(Entity::Floor, Op::Added, subject, file)
                        .at(line("floors", name))
                        .field("min", None, Some(number(*nv)))
                        .flag("adds a protocol invariant; every rule version must now respect it"),
                ),
                Some(ov) if ov != nv => {
                    let why = if nv < ov {
                        "lowers a protocol invariant"
                    } else {
                        "raises a protocol invariant; versions below it stop loading"
                    };
                    out.push(
                        RuleSetChange::new(Entity::Floor, Op::Changed, subject, file)
                            .at(line("floors", name))
                            .field("min", Some(number(*ov)), Some(number(*nv)))
                            .flag(why),
                    );
                }
                Some(_) => {}
            }
        }
        for (name, ov) in &o {
            if !n.contains_key(name) {
                out.push(
                    RuleSetChange::new(Entity::Floor, Op::Removed, format!("floor `{name}`"), file)
                        .field("min", Some(number(*ov)), None)
                        .flag("removes a protocol invariant"),
                );
            }
        }
        // Ceilings of policy.toml: any move of one is a change to the protocol's bounds.
        let flat = |rs: &RuleSet| -> BTreeMap<String, f64> {
            let mut m = BTreeMap::new();
            for (k, c) in &rs.ceilings {
                m.extend(c.max_multiplier.map(|v| (format!("{k}.max_multiplier"), v)));
                m.extend(c.max_points.map(|v| (format!("{k}.max_points"), v)));
            }
            m
        };
        let (o, n) = (flat(old), flat(new));
        let names: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for name in names {
            let (a, b) = (o.get(name).copied(), n.get(name).copied());
            let (op, why) = match (a, b) {
                (None, Some(_)) => (Op::Added, "adds a protocol bound"),
                (Some(_), None) => (Op::Removed, "removes a protocol bound against inflation"),
                (Some(x), Some(y)) if x < y => {
                    (Op::Changed, "raises a protocol bound against inflation")
                }
                (Some(x), Some(y)) if x > y => (
                    Op::Changed,
                    "lowers a protocol bound; versions above it stop loading",
                ),
                _ => continue,
            };
            out.push(
                RuleSetChange::new(Entity::Floor, op, format!("ceiling `{name}`"), file)
                    .at(b.and_then(|_| line("ceilings", name)))
                    .field("max", a.map(number), b.map(number))
                    .flag(why),
            );
        }
    }

    fn catalog_line(&self, file: &str, span: &std::ops::Range<usize>) -> Option<usize> {
        let text = self.text(file);
        (!text.is_empty()).then(|| line_of(text, span.start))
    }

    fn catalog(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        for (model, n) in &new.catalog {
            let subject = format!("model `{model}`");
            let change = |op| {
                RuleSetChange::new(Entity::Model, op, subject.clone(), Some(n.file()))
                    .at(self.catalog_line(n.file(), &n.span()))
                    .scope(Scope::Model(model.clone()))
            };
            let families = |e: &CatalogEntry| -> Vec<String> {
                e.windows.iter().map(|w| w.family.clone()).collect()
            };
            let bounds =
                |e: &CatalogEntry| -> Vec<(Option<jiff::Timestamp>, Option<jiff::Timestamp>)> {
                    e.windows
                        .iter()
                        .map(|w| (w.when.since, w.when.until))
                        .collect()
                };
            match old.catalog.get(model) {
                None => out.push(change(Op::Added).field("family", None, Some(n.text()))),
                Some(o) if families(o) != families(n) => out.push(
                    change(Op::Changed)
                        .field("family", Some(o.text()), Some(n.text()))
                        .flag("re-prices past jobs of this model under another family's rule"),
                ),
                Some(o) if bounds(o) != bounds(n) => out.push(
                    change(Op::Changed)
                        .field("window", Some(o.text()), Some(n.text()))
                        .flag("moves when this model is priced, so past jobs may change between `no_rule` and priced"),
                ),
                // The same windows, other provenance (catalog versions named or not).
                Some(o) if o.text() != n.text() => {
                    out.push(change(Op::Changed).field("window", Some(o.text()), Some(n.text())))
                }
                Some(_) => {}
            }
        }
        self.aliases(out);
        // Families left unpriced on purpose: their reason is what their models' jobs say.
        let file = Some(crate::rules::load::CATALOG_FILE);
        for (family, why) in &new.unpriced {
            let subject = format!("unpriced family `{family}`");
            let line = self.table_key(crate::rules::load::CATALOG_FILE, "[unpriced]", Some(family));
            match old.unpriced.get(family) {
                None => out.push(
                    RuleSetChange::new(Entity::Model, Op::Added, subject, file)
                        .at(line)
                        .field("reason", None, Some(why.clone())),
                ),
                Some(o) if o != why => out.push(
                    RuleSetChange::new(Entity::Model, Op::Changed, subject, file)
                        .at(line)
                        .field("reason", Some(o.clone()), Some(why.clone())),
                ),
                Some(_) => {}
            }
        }
        for (family, why) in &old.unpriced {
            if !new.unpriced.contains_key(family) {
                out.push(
                    RuleSetChange::new(
                        Entity::Model,
                        Op::Removed,
                        format!("unpriced family `{family}`"),
                        None,
                    )
                    .field("reason", Some(why.clone()), None),
                );
            }
        }
        for (model, o) in &old.catalog {
            if !new.catalog.contains_key(model) {
                out.push(
                    RuleSetChange::new(Entity::Model, Op::Removed, format!("model `{model}`"), None)
                        .scope(Scope::Model(model.clone()))
                        .field("family", Some(o.text()), None)
                        .flag("its past jobs lose their rule; to stop pricing a model, add a version with `no_rule = \"why\"`"),
                );
            }
        }
    }

    /// Aliases added, removed or changed: each can move the price of jobs carrying the name.
    fn aliases(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let text = |aliases: &[crate::engine::catalog::Alias]| -> String {
            let parts: Vec<String> = aliases.iter().map(|a| a.text()).collect();
            parts.join("; ")
        };
        let pricing = |aliases: &[crate::engine::catalog::Alias]| -> Vec<_> {
            (aliases.iter())
                .map(|a| (a.model.clone(), a.when.since, a.when.until))
                .collect()
        };
        let names: BTreeSet<&String> = old.aliases.keys().chain(new.aliases.keys()).collect();
        for name in names {
            let (o, n) = (old.aliases_of(name), new.aliases_of(name));
            let subject = format!("alias `{name}`");
            let file = n.first().map(|a| a.file.as_str());
            let line = n.first().and_then(|a| self.catalog_line(&a.file, &a.span));
            let change = |op| {
                RuleSetChange::new(Entity::Alias, op, subject.clone(), file)
                    .at(line)
                    .scope(Scope::Model(name.clone()))
            };
            let field = |c: RuleSetChange| {
                c.field(
                    "alias",
                    (!o.is_empty()).then(|| text(o)),
                    (!n.is_empty()).then(|| text(n)),
                )
            };
            if o.is_empty() {
                out.push(field(change(Op::Added)).flag(
                    "prices the jobs that carry this name as another model inside its window",
                ));
            } else if n.is_empty() {
                out.push(
                    field(change(Op::Removed))
                        .flag("the jobs that carry this name lose the model they were priced as"),
                );
            } else if pricing(o) != pricing(n) {
                out.push(
                    field(change(Op::Changed))
                        .flag("re-prices the jobs that carry this name in the time that moved"),
                );
            } else if text(o) != text(n) || o.iter().zip(n).any(|(a, b)| a.source != b.source) {
                out.push(field(change(Op::Changed)));
            }
        }
    }

    /// Formula files whose text changed, with the existing versions they re-price.
    fn formulas_in_use(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        for mut change in diff_formula_files(&old.files, &new.files) {
            let path = change
                .subject
                .trim_start_matches("formula `")
                .trim_end_matches('`')
                .to_string();
            if change.op == Op::Changed {
                // Existing versions (in both rule sets) that price with this file.
                let users: Vec<String> = old
                    .rules()
                    .flat_map(|r| r.versions.iter().map(move |v| (r, v)))
                    .filter(|(_, v)| formula_file(v) == Some(path.as_str()))
                    .filter(|(r, v)| {
                        find_rule(new, r).is_some_and(|nr| find_version(nr, v).is_some())
                    })
                    .map(|(r, v)| format!("{}@{}", r.id, v.version))
                    .collect();
                if !users.is_empty() {
                    change = change.flag(format!(
                        "changes the meaning of existing versions {}; put the new formula in a new file and a new version",
                        users.join(", ")
                    ));
                }
                change.scope = Scope::Versions(users);
            }
            out.push(change);
        }
    }

    fn all_rules(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        // Family rules then model rules, each by id; a rule present on one side only is added
        // or removed as a whole.
        for (olds, news) in [
            (&old.family_rules, &new.family_rules),
            (&old.model_rules, &new.model_rules),
        ] {
            let ids: BTreeSet<&String> = olds.keys().chain(news.keys()).collect();
            for id in ids {
                match (olds.get(id), news.get(id)) {
                    (None, Some(n)) => {
                        // Its versions carry what it re-prices, each with its own time.
                        out.push(
                            RuleSetChange::new(Entity::Rule, Op::Added, rule_subject(n), Some(&n.file))
                                .at(self.rule_line(n))
                                .field("prices", None, Some(format!("family `{}`, job kind `{}`", n.family, n.kind))),
                        );
                        for v in &n.versions {
                            out.push(
                                RuleSetChange::new(Entity::Version, Op::Added, version_subject(n, v), Some(&n.file))
                                    .at(Some(v.line).filter(|l| *l > 0))
                                    .scope(Scope::Versions(vec![v.label.clone()]))
                                    .field("version", None, Some(describe_version(v))),
                            );
                        }
                    }
                    (Some(o), None) => out.push(
                        RuleSetChange::new(Entity::Rule, Op::Removed, rule_subject(o), None)
                            .scope(Scope::Rule(o.id.clone()))
                            .field("file", Some(o.file.clone()), None)
                            .flag(format!(
                                "its {} version(s) disappear, so past jobs are re-priced; to stop pricing, add a version with `no_rule = \"why\"`",
                                o.versions.len()
                            )),
                    ),
                    (Some(o), Some(n)) => self.rule(o, n, out),
                    (None, None) => {}
                }
            }
        }
    }

    fn rule(&self, o: &Rule, n: &Rule, out: &mut Vec<RuleSetChange>) {
        let file = Some(n.file.as_str());
        let subject = rule_subject(n);
        let at = self.rule_line(n);
        let whole = || Scope::Rule(n.id.clone());
        let text = self.text(&n.file);
        let key = |k: &str| at.and_then(|h| key_line(text, h, k)).or(at);
        if o.kind != n.kind {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(key("kind"))
                    .scope(whole())
                    .field("kind", Some(o.kind.clone()), Some(n.kind.clone()))
                    .flag("changes what its existing versions price"),
            );
        }
        if o.family != n.family {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(key("family"))
                    .scope(whole())
                    .field("family", Some(o.family.clone()), Some(n.family.clone()))
                    .flag("moves a model to another family for all of its history"),
            );
        }
        if o.file != n.file {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(at)
                    .field("file", Some(o.file.clone()), Some(n.file.clone())),
            );
        }
        if o.description != n.description {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject, file)
                    .at(key("description"))
                    .field("description", o.description.clone(), n.description.clone()),
            );
        }
        let latest_old = o.versions.iter().map(|v| v.effective_from).max();
        for nv in &n.versions {
            match find_version(o, nv) {
                None => {
                    // What it takes over from: the version in force just before it.
                    let previous = n
                        .versions
                        .iter()
                        .rev()
                        .find(|p| p.effective_from < nv.effective_from)
                        .map(|p| format!("version {} {}", p.version, describe_version(p)));
                    let mut c = RuleSetChange::new(
                        Entity::Version,
                        Op::Added,
                        version_subject(n, nv),
                        file,
                    )
                    .at(Some(nv.line).filter(|l| *l > 0))
                    .scope(Scope::Versions(vec![nv.label.clone()]))
                    .field("version", previous, Some(describe_version(nv)));
                    if latest_old.is_some_and(|t| nv.effective_from <= t) {
                        c = c.flag(format!(
                            "takes effect {}, before an existing version ends, so it re-prices jobs already scored",
                            day_or_time(nv.effective_from)
                        ));
                    }
                    out.push(c);
                }
                Some(ov) => {
                    self.version(n, ov, nv, out);
                    self.examples(o, n, ov, nv, out);
                }
            }
        }
        for ov in &o.versions {
            if find_version(n, ov).is_none() {
                out.push(
                    RuleSetChange::new(Entity::Version, Op::Removed, version_subject(o, ov), file)
                        .at(at)
                        .scope(Scope::Versions(vec![ov.label.clone()]))
                        .field("version", Some(describe_version(ov)), None)
                        .flag("jobs it priced are re-priced by another version; rules change by adding versions"),
                );
            }
        }
    }

    fn version(&self, rule: &Rule, o: &RuleVersion, n: &RuleVersion, out: &mut Vec<RuleSetChange>) {
        let subject = version_subject(rule, n);
        let file = Some(rule.file.as_str());
        let pricing = || Scope::Versions(vec![n.label.clone()]);
        let change = |field: &str, key: &str, a: String, b: String| {
            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                .at(self.version_key(rule, n, key))
                .field(field, Some(a), Some(b))
        };
        if o.effective_from != n.effective_from {
            out.push(
                change(
                    "effective_from",
                    "effective_from",
                    day_or_time(o.effective_from),
                    day_or_time(n.effective_from),
                )
                .scope(pricing())
                .flag(REWRITES),
            );
        }
        match (&o.pricing, &n.pricing) {
            (Pricing::NoRule { reason: a }, Pricing::NoRule { reason: b }) => {
                if a != b {
                    out.push(change("no_rule", "no_rule", a.clone(), b.clone()));
                }
            }
            (Pricing::Disabled { reason: a }, Pricing::Disabled { reason: b }) => {
                if a != b {
                    out.push(change("disabled", "disabled", a.clone(), b.clone()));
                }
            }
            (
                Pricing::Priced {
                    formula: fa,
                    multiplier: ma,
                    thresholds: ta,
                    ceilings: ca,
                },
                Pricing::Priced {
                    formula: fb,
                    multiplier: mb,
                    thresholds: tb,
                    ceilings: cb,
                },
            ) => {
                let names: BTreeSet<&str> = ca.iter().chain(cb).map(|c| c.name.as_str()).collect();
                for name in names {
                    let a = ca.iter().find(|c| c.name == name).map(|c| number(c.max));
                    let b = cb.iter().find(|c| c.name == name);
                    let line = b
                        .and_then(|c| c.place.as_ref().map(|p| p.line))
                        .or_else(|| self.version_key(rule, n, "max"));
                    let b = b.map(|c| number(c.max));
                    if a != b {
                        out.push(
                            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                                .at(line)
                                .scope(pricing())
                                .field(&format!("max.{name}"), a, b)
                                .flag(REWRITES),
                        );
                    }
                }
                if ma.to_bits() != mb.to_bits() {
                    out.push(
                        change(
                            "multiplier",
                            "multiplier",
                            multiplier_text(*ma),
                            multiplier_text(*mb),
                        )
                        .at(n
                            .multiplier_place
                            .as_ref()
                            .map(|p| p.line)
                            .or_else(|| self.version_key(rule, n, "multiplier")))
                        .scope(pricing())
                        .flag(REWRITES),
                    );
                }
                let names: BTreeSet<&str> = ta.iter().chain(tb).map(|t| t.name.as_str()).collect();
                for name in names {
                    let a = ta.iter().find(|t| t.name == name).map(|t| number(t.min));
                    let b = tb.iter().find(|t| t.name == name);
                    let line = b
                        .and_then(|t| t.place.as_ref().map(|p| p.line))
                        .or_else(|| self.version_key(rule, n, "min"));
                    let b = b.map(|t| number(t.min));
                    if a != b {
                        out.push(
                            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                                .at(line)
                                .scope(pricing())
                                .field(&format!("min.{name}"), a, b)
                                .flag(REWRITES),
                        );
                    }
                }
                let formula_line = n.formula_place.as_ref().map(|p| p.line);
                if fa.file != fb.file || fa.name != fb.name {
                    out.push(
                        change("formula", "formula", formula_ref(fa), formula_ref(fb))
                            .at(formula_line.or_else(|| self.version_key(rule, n, "formula")))
                            .scope(pricing())
                            .flag(REWRITES),
                    );
                } else if fa.name == "inline" && fa.source != fb.source {
                    // Shared formula files are diffed once, as files; inline ones here.
                    let mut c = change("expr", "expr", fa.source.clone(), fb.source.clone())
                        .at(formula_line.or_else(|| self.version_key(rule, n, "expr")))
                        .scope(pricing())
                        .flag(REWRITES);
                    c.diff = unified_diff(&fa.file, &fa.source, &fb.file, &fb.source);
                    out.push(c);
                }
            }
            (a, b) => {
                let key = match b {
                    Pricing::NoRule { .. } => "no_rule",
                    Pricing::Disabled { .. } => "disabled",
                    Pricing::Priced { .. } => "formula",
                };
                out.push(
                    change("pricing", key, pricing_text(a), pricing_text(b))
                        .scope(pricing())
                        .flag(REWRITES),
                );
            }
        }
        if o.source != n.source {
            out.push(change(
                "source",
                "source",
                o.source.clone(),
                n.source.clone(),
            ));
        }
        if o.notes != n.notes {
            out.push(
                RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                    .at(self.version_key(rule, n, "notes"))
                    .field("notes", o.notes.clone(), n.notes.clone()),
            );
        }
        if o.assumptions != n.assumptions {
            out.push(change(
                "assumptions",
                "assumptions",
                o.assumptions.join(" / "),
                n.assumptions.join(" / "),
            ));
        }
    }

    /// Examples of a version on both sides, matched by their inputs (those both sides' job
    /// kinds read, so an input added with a default does not make every example new):
    /// added, removed, and expected points or status changed.
    fn examples(
        &self,
        or: &Rule,
        nr: &Rule,
        o: &RuleVersion,
        n: &RuleVersion,
        out: &mut Vec<RuleSetChange>,
    ) {
        let names = |rs: &RuleSet, r: &Rule| -> BTreeSet<String> {
            rs.job_kinds
                .get(&r.kind)
                .map(|k| k.inputs.iter().map(|i| i.name.clone()).collect())
                .unwrap_or_default()
        };
        let common: BTreeSet<String> = names(self.old, or)
            .intersection(&names(self.new, nr))
            .cloned()
            .collect();
        let key = |e: &Example| -> String {
            let inputs = e
                .inputs
                .iter()
                .filter(|(name, v)| common.contains(name) && !v.is_absent())
                .map(|(name, v)| format!("{name}={v}"));
            // Its time is part of what it is (it picks the execution limits).
            let at = e.at.map(|t| format!("at {}", utc_string(t)));
            inputs.chain(at).collect::<Vec<_>>().join(", ")
        };
        let olds: Vec<(String, &Example)> = o.examples.iter().map(|e| (key(e), e)).collect();
        let news: Vec<(String, &Example)> = n.examples.iter().map(|e| (key(e), e)).collect();
        let file = Some(nr.file.as_str());
        let subject = |k: &str| format!("{} example ({k})", version_subject(nr, n));
        for (k, ne) in &news {
            let line = Some(ne.place.line).filter(|l| *l > 0);
            match olds.iter().find(|(ok, _)| ok == k) {
                None => out.push(
                    RuleSetChange::new(Entity::Example, Op::Added, subject(k), file)
                        .at(line)
                        .field("expects", None, Some(expected(ne))),
                ),
                Some((_, oe)) if (oe.points, oe.status) != (ne.points, ne.status) => out.push(
                    RuleSetChange::new(Entity::Example, Op::Changed, subject(k), file)
                        .at(line)
                        .field("expects", Some(expected(oe)), Some(expected(ne))),
                ),
                Some(_) => {}
            }
        }
        for (k, oe) in &olds {
            if !news.iter().any(|(nk, _)| nk == k) {
                out.push(
                    RuleSetChange::new(Entity::Example, Op::Removed, subject(k), file)
                        .at(Some(n.line).filter(|l| *l > 0))
                        .field("expects", Some(expected(oe)), None),
                );
            }
        }
    }
}

/// `12.000000 points`, or `0.000000 points, below_threshold`.
fn expected(e: &Example) -> String {
    if e.status == crate::engine::score::Status::Ok {
        format!("{} points", e.points)
    } else {
        format!("{} points, {}", e.points, e.status)
    }
}

fn input_bounds(i: &InputSpec) -> String {
    let b = |v: Option<f64>| v.map_or("-".to_string(), number);
    let from: Vec<String> = i.from.iter().map(|p| p.join(".")).collect();
    let presence = match (i.default, i.optional) {
        (Some(d), _) => format!(", default {d}"),
        (None, true) => ", optional".to_string(),
        (None, false) => String::new(),
    };
    let tokens_of = tokens_of_text(i).map_or(String::new(), |t| format!(", outranked by {t}"));
    let unmeasured = i.unmeasured.as_ref().map_or(String::new(), |u| {
        format!(", unmeasured when {} ({})", u.when.join("."), u.reason)
    });
    format!(
        "{} [{}, {}]{presence} from {}{tokens_of}{unmeasured}",
        format!("{:?}", i.ty).to_lowercase(),
        b(i.min),
        b(i.max),
        from.join(", ")
    )
}

/// How an input is counted from a job's text, when it is: its paths, what is counted, the
/// tokenizer and its model file (by hash), so swapping a tokenizer model is a change of every
/// input that counts with it (in the change list and in the windows' fingerprints alike).
pub(crate) fn tokens_of_text(i: &InputSpec) -> Option<String> {
    let t = i.tokens_of.as_ref()?;
    let counted = match t.counted {
        crate::engine::tokens::Counted::Chat(c) => format!("chat ({})", c.name()),
        crate::engine::tokens::Counted::Text => "text".to_string(),
    };
    let paths: Vec<String> = (t.paths.iter())
        .map(|p| match &p.when {
            Some(w) => format!("{} (when {} from {})", p.text, w.input, w.path),
            None => p.text.clone(),
        })
        .collect();
    let sha = t.model.sha256();
    let mut text = format!(
        "tokens of {counted} {} by `{}` (sha256 {})",
        paths.join(", "),
        t.tokenizer,
        &sha[..sha.len().min(12)]
    );
    if !t.tools.is_empty() {
        let tools: Vec<&str> = t.tools.iter().map(|p| p.text.as_str()).collect();
        text.push_str(&format!(", with tools {}", tools.join(", ")));
    }
    // The templates decide what a templated prompt's messages are: a change of their markers
    // re-prices every job counted through them.
    if t.paths.iter().any(|p| p.uses_templates()) {
        let names: Vec<&str> = t.templates.iter().map(|t| t.name.as_str()).collect();
        text.push_str(&format!(
            ", templates {} (markers {})",
            names.join(", "),
            templates_digest(&t.templates)
        ));
    }
    let tol = t.tolerance;
    if tol.tokens != 0 || tol.ratio != 0.0 {
        text.push_str(&format!(
            ", claims disputed beyond {} tokens + {}",
            tol.tokens,
            number(tol.ratio)
        ));
    }
    Some(text)
}

/// A short digest of the templates' markers, in order.
fn templates_digest(templates: &[crate::engine::tokens::PromptTemplate]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for t in templates {
        h.update(t.markers().as_bytes());
    }
    hex::encode(h.finalize())[..12].to_string()
}

fn formula_file(v: &RuleVersion) -> Option<&str> {
    match &v.pricing {
        Pricing::Priced { formula, .. } => Some(formula.file.as_str()),
        Pricing::NoRule { .. } | Pricing::Disabled { .. } => None,
    }
}

fn find_rule<'a>(rs: &'a RuleSet, r: &Rule) -> Option<&'a Rule> {
    match r.scope {
        RuleScope::Family => rs.family_rules.get(&r.id),
        RuleScope::Model => rs.model_rules.get(&r.id),
    }
}

fn find_version<'a>(r: &'a Rule, v: &RuleVersion) -> Option<&'a RuleVersion> {
    r.versions.iter().find(|n| n.version == v.version)
}

fn rule_subject(r: &Rule) -> String {
    match r.scope {
        RuleScope::Family => format!("family rule `{}`", r.id),
        RuleScope::Model => format!("model rule `{}`", r.id),
    }
}

fn version_subject(r: &Rule, v: &RuleVersion) -> String {
    format!("rule `{}` version {}", r.id, v.version)
}

/// `from 2024-04-01: waifu_season1 × 1.8, min pixels 262144, steps 20`.
pub fn describe_version(v: &RuleVersion) -> String {
    let from = day_or_time(v.effective_from);
    match &v.pricing {
        Pricing::NoRule { reason } => format!("from {from}: no_rule ({reason})"),
        Pricing::Disabled { reason } => format!("from {from}: disabled ({reason})"),
        Pricing::Priced {
            formula,
            multiplier,
            thresholds,
            ceilings,
        } => {
            let mut s = format!(
                "from {from}: {} × {}",
                formula_label(formula),
                multiplier_text(*multiplier)
            );
            if !thresholds.is_empty() {
                s.push_str(&format!(", min {}", thresholds_text(thresholds)));
            }
            if !ceilings.is_empty() {
                s.push_str(&format!(", max {}", ceilings_text(ceilings)));
            }
            s
        }
    }
}

fn formula_label(f: &crate::engine::model::Formula) -> String {
    if f.name == "inline" {
        format!("`{}`", f.source.trim())
    } else {
        f.name.clone()
    }
}

fn thresholds_text(ts: &[Threshold]) -> String {
    ts.iter()
        .map(|t| format!("{} {}", t.name, number(t.min)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ceilings_text(cs: &[crate::engine::model::Ceiling]) -> String {
    cs.iter()
        .map(|c| format!("{} {}", c.name, number(c.max)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number as people write it: `262144`, `0.3`.
fn number(x: f64) -> String {
    format!("{x}")
}

/// A multiplier always shows a decimal point, so `1.8 → 2.0` reads as a multiplier.
fn multiplier_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

const REWRITES: &str = "changes an existing version, so jobs it already priced are re-priced; add a new version instead";

fn formula_ref(f: &crate::engine::model::Formula) -> String {
    if f.name == "inline" {
        format!("inline `{}`", f.source.trim())
    } else {
        format!("{} ({})", f.name, f.file)
    }
}

fn pricing_text(p: &Pricing) -> String {
    match p {
        Pricing::NoRule { reason } => format!("no_rule ({reason})"),
        Pricing::Disabled { reason } => format!("disabled ({reason})"),
        Pricing::Priced {
            formula,
            multiplier,
            ..
        } => format!(
            "{} × {}",
            formula_label(formula),
            multiplier_text(*multiplier)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_names_both_sides_and_skips_equal_text() {
        assert_eq!(unified_diff("a", "x\n", "a", "x\n"), None);
        let d = unified_diff("f.rhai", "a\nb\n", "f.rhai", "a\nc\n").unwrap();
        assert!(d.starts_with("--- a/f.rhai\n+++ b/f.rhai\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
    }

    #[test]
    fn file_changes_read_as_one_signed_line() {
        assert_eq!(FileChanges::default().summary(), "");
        let f = FileChanges {
            added: vec!["models/a.toml".into()],
            removed: vec!["models/b.toml".into()],
            modified: vec!["kinds.toml".into(), "formulas/c.rhai".into()],
        };
        assert_eq!(
            f.summary(),
            "+ models/a.toml, - models/b.toml, ~ kinds.toml, ~ formulas/c.rhai"
        );
    }

    #[test]
    fn multipliers_keep_a_decimal_point() {
        assert_eq!(multiplier_text(2.0), "2.0");
        assert_eq!(multiplier_text(1.8), "1.8");
        assert_eq!(multiplier_text(0.24), "0.24");
    }
}
