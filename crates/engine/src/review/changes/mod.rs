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
use crate::review::describe::{number, tokens_of_text};
use crate::review::windows::{Scope, Span};
use crate::rules::files::RuleFiles;

mod catalog;
mod kinds;
mod rules;

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

/// A multiplier always shows a decimal point, so `1.8 → 2.0` reads as a multiplier.
fn multiplier_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

const UNLISTED: &str = "a key review does not know the meaning of, compared as written: it may re-price jobs already scored";

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
