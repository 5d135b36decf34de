//! When a rule change matters, in time. For every model either rule set knows, its history
//! is cut at every date where either side could price it differently (versions' dates, the
//! catalog's `since`/`until`, the dates of its job kind's execution limits); each piece where
//! the two sides resolve the model to pricing that differs, or run its jobs under different
//! execution limits, is an *affected segment*. Segments are grouped into *windows*: the old and
//! the new rule version over the time both are in force (`sdxl10@1 (2024-04-01 →
//! 2024-09-18T16:17:11Z)`), and where the limits differ, over the time each side's entry of
//! limits is too.
//!
//! `jobpoints diff` replays corpus jobs in each window (priced at the segment's start, whatever
//! their own date), and flags a change `retroactive` when one of the segments it causes starts
//! before the cut-off. Everything here comes from the rules alone, never from the jobs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::catalog::AliasKind;
use crate::engine::model::{JobKind, Pricing, Rule, RuleSet, RuleVersion, nfc};
use crate::engine::resolve::Resolution;
use crate::engine::time::{day_or_time, utc_string};

/// A time range `[from, until)`; `None` is unbounded on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Span {
    /// The smallest span covering both.
    pub fn hull(self, o: Span) -> Span {
        Span {
            from: self.from.zip(o.from).map(|(a, b)| a.min(b)),
            until: self.until.zip(o.until).map(|(a, b)| a.max(b)),
        }
    }

    /// Where both are in force.
    fn intersect(self, o: Span) -> Span {
        let from = match (self.from, o.from) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let until = match (self.until, o.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Span { from, until }
    }

    /// Whether it starts before `t` (an unbounded start does).
    pub fn starts_before(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| f < t)
    }

    /// `2024-04-01 → 2024-09-18T16:17:11Z`, `since 2024-10-17T02:46:23Z`,
    /// `until 2024-09-18T16:17:11Z`, `always`.
    pub fn text(&self) -> String {
        match (self.from, self.until) {
            (Some(a), Some(b)) => format!("{} → {}", day_or_time(a), day_or_time(b)),
            (Some(a), None) => format!("since {}", day_or_time(a)),
            (None, Some(b)) => format!("until {}", day_or_time(b)),
            (None, None) => "always".to_string(),
        }
    }
}

/// JSON: `{"from": "2024-04-01T00:00:00Z", "until": null}`.
impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Span", 2)?;
        st.serialize_field("from", &self.from.map(utc_string))?;
        st.serialize_field("until", &self.until.map(utc_string))?;
        st.end()
    }
}

/// One side's rule version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct VersionRef {
    /// `RULE@VERSION`.
    pub label: String,
    #[serde(skip)]
    pub rule: String,
    /// The job kind its rule prices.
    #[serde(skip)]
    pub kind: String,
}

impl VersionRef {
    fn of(rule: &Rule, v: &RuleVersion) -> Self {
        VersionRef {
            label: v.label.clone(),
            rule: rule.id.clone(),
            kind: rule.kind.clone(),
        }
    }
}

/// One side's execution limits (`[[jobs.KIND.execution_limits]]`): the entry in force, by
/// its job kind and start, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LimitsRef {
    pub kind: String,
    pub from: Timestamp,
    /// [`ExecutionLimits::describe`](crate::engine::execution): what decides prices.
    pub text: String,
}

impl LimitsRef {
    fn of(kind: &JobKind, at: Timestamp) -> Option<(Self, Span)> {
        let l = kind.limits_at(Some(at))?;
        let r = LimitsRef {
            kind: kind.name.clone(),
            from: l.effective_from,
            text: l.describe(),
        };
        let span = Span {
            from: Some(l.effective_from),
            until: kind.limits_until(l),
        };
        Some((r, span))
    }
}

/// What identifies a window: the version in force on each side (`None`: no version, as
/// before a rule starts or outside a catalog window), the execution limits on each side when
/// they differ (so that each entry of limits is a window of its own), and when all are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowKey {
    pub old: Option<VersionRef>,
    pub new: Option<VersionRef>,
    /// `Some` when the two sides' execution limits differ: each side's entry (`None`: no
    /// limits, the job runs as requested).
    pub limits: Option<[Option<LimitsRef>; 2]>,
    pub span: Span,
}

impl WindowKey {
    /// `sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z)`, or
    /// `flux-dev@2 → FLUX.1-dev@1 (since 2024-10-17T02:46:23Z)`: the versions, and `span` (when
    /// they re-price something).
    pub fn label(&self, span: Span) -> String {
        let side = |v: &Option<VersionRef>| {
            v.as_ref()
                .map_or("no rule".to_string(), |v| v.label.clone())
        };
        let who = if self.old == self.new {
            side(&self.new)
        } else {
            format!("{} → {}", side(&self.old), side(&self.new))
        };
        match &self.limits {
            None => format!("{who} ({})", span.text()),
            Some([o, n]) => {
                let limits = |l: &Option<LimitsRef>| {
                    l.as_ref().map_or("none".to_string(), |l| {
                        format!("of {}", day_or_time(l.from))
                    })
                };
                format!(
                    "{who} ({}), execution limits {} → {}",
                    span.text(),
                    limits(o),
                    limits(n)
                )
            }
        }
    }

    /// Whether either side is one of `labels`.
    fn involves(&self, pred: &dyn Fn(&VersionRef) -> bool) -> bool {
        self.old.as_ref().is_some_and(pred) || self.new.as_ref().is_some_and(pred)
    }
}

/// A window and the models of the catalogs it re-prices.
#[derive(Debug, Clone)]
pub struct Window {
    pub key: WindowKey,
    /// The hull of its segments: the part of the versions' common time that re-prices
    /// some model (all of it for a version edit; three days for a catalog date moved).
    pub span: Span,
    /// Catalog models (NFC names) with an affected segment in it.
    pub models: BTreeSet<String>,
    /// The earliest start of its segments: when it first re-prices a job.
    pub first: Timestamp,
}

/// A piece of one model's history where the two rule sets price it differently.
#[derive(Debug, Clone)]
pub struct Segment {
    pub window: usize,
    pub span: Span,
    /// Whether the model's catalog entry (presence, family or window) differs here.
    pub catalog_differs: bool,
}

/// Every window of a rule change, and each model's affected segments.
#[derive(Debug, Default)]
pub struct Timelines {
    pub windows: Vec<Window>,
    /// By NFC model name, in time order.
    pub models: BTreeMap<String, Vec<Segment>>,
    /// The work budget ran out before every model was cut (rule sets built to be huge): the
    /// windows are partial, and every change that can re-price is treated as retroactive.
    pub incomplete: bool,
}

/// How much cutting one diff may do, in resolutions × versions scanned: the shipped rules
/// take about two thousand, a catalog of thousands of models tens of thousands; a hostile
/// pull request (thousands of versions × thousands of dated models) must not stall `diff`,
/// `serve`'s reload or the playground.
const WORK_BUDGET: u64 = 20_000_000;

/// What a model's segments depend on when no model rule names it and it is no alias: its
/// catalog windows on each side (family and bounds). Models that share them share their
/// segments.
type Signature = [Option<Vec<(String, Option<Timestamp>, Option<Timestamp>)>>; 2];

fn signature(old: &RuleSet, new: &RuleSet, model: &str) -> Option<Signature> {
    let special =
        |rs: &RuleSet| rs.model_rules.contains_key(model) || rs.aliases.contains_key(model);
    if special(old) || special(new) {
        return None;
    }
    let entry = |rs: &RuleSet| {
        rs.catalog.get(model).map(|e| {
            (e.windows.iter())
                .map(|w| (w.family.clone(), w.when.since, w.when.until))
                .collect()
        })
    };
    Some([entry(old), entry(new)])
}

/// What a rule-level change can re-price, to find the segments it causes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scope {
    /// Nothing a job's status, kind, rule or points depends on (wording, sources, examples,
    /// policy bounds, which only decide whether rules load).
    #[default]
    None,
    /// These rule versions (`sdxl10@1`), on either side.
    Versions(Vec<String>),
    /// Every version of this rule.
    Rule(String),
    /// Every version of rules of these job kinds.
    Kinds(Vec<String>),
    /// This model (NFC), where its catalog entry differs.
    Model(String),
    /// Where the entry of execution limits of this job kind that takes effect at this time is
    /// in force on either side, and the two sides' limits differ.
    Limits(String, Timestamp),
}

impl Timelines {
    /// Cuts the history of every model either side knows (catalogs, with model rules).
    pub fn build(old: &RuleSet, new: &RuleSet) -> Self {
        Self::build_within(old, new, WORK_BUDGET)
    }

    /// [`Self::build`] with a given work budget.
    fn build_within(old: &RuleSet, new: &RuleSet, mut budget: u64) -> Self {
        let mut t = Timelines::default();
        let mut index: HashMap<WindowKey, usize> = HashMap::new();
        let mut memo: HashMap<Signature, Vec<(WindowKey, Span, bool)>> = HashMap::new();
        // Model rules may name models the catalog does not list; aliases are names of their own.
        let names: BTreeSet<&String> = (old.catalog.keys())
            .chain(new.catalog.keys())
            .chain(old.model_rules.keys())
            .chain(new.model_rules.keys())
            .chain(old.aliases.keys())
            .chain(new.aliases.keys())
            .collect();
        for model in names {
            let sig = signature(old, new, model);
            let known = sig.as_ref().and_then(|s| memo.get(s)).cloned();
            let segments = match known {
                Some(s) => s,
                None => match affected_segments(old, new, model, &mut budget) {
                    Some(s) => {
                        if let Some(sig) = sig {
                            memo.insert(sig, s.clone());
                        }
                        s
                    }
                    None => {
                        t.incomplete = true;
                        break;
                    }
                },
            };
            if segments.is_empty() {
                continue;
            }
            let mut out = Vec::with_capacity(segments.len());
            for (key, span, catalog_differs) in segments {
                let start = span.from.expect("segments start at a date");
                let i = *index.entry(key.clone()).or_insert_with(|| {
                    t.windows.push(Window {
                        key,
                        span,
                        models: BTreeSet::new(),
                        first: start,
                    });
                    t.windows.len() - 1
                });
                let w = &mut t.windows[i];
                w.span = w.span.hull(span);
                w.models.insert(model.clone());
                w.first = w.first.min(start);
                out.push(Segment {
                    window: i,
                    span,
                    catalog_differs,
                });
            }
            t.models.insert(model.clone(), out);
        }
        t
    }

    /// The windows a job of `model` is replayed in, each with the time it is priced at (its
    /// model's first affected segment in that window).
    pub fn plan(&self, model: &str) -> Vec<(usize, Timestamp)> {
        let model = nfc(model);
        let Some(segments) = self.models.get(model.as_ref()) else {
            return Vec::new();
        };
        let mut out: Vec<(usize, Timestamp)> = Vec::new();
        for s in segments {
            if !out.iter().any(|(w, _)| *w == s.window) {
                out.push((s.window, s.span.from.expect("segments start at a date")));
            }
        }
        out
    }

    /// The time a change of this scope rewrites: the hull of the segments it causes, or
    /// `None` when it re-prices no model at any time.
    pub fn rewrites(&self, scope: &Scope) -> Option<Span> {
        if self.incomplete && *scope != Scope::None {
            // Not every model was cut: assume the worst, all of history.
            return Some(Span::default());
        }
        let mut hull: Option<Span> = None;
        for (model, segments) in &self.models {
            for s in segments {
                let key = &self.windows[s.window].key;
                let hit = match scope {
                    Scope::None => false,
                    Scope::Versions(labels) => key.involves(&|v| labels.contains(&v.label)),
                    Scope::Rule(id) => key.involves(&|v| &v.rule == id),
                    Scope::Kinds(kinds) => key.involves(&|v| kinds.contains(&v.kind)),
                    Scope::Model(m) => m == model && s.catalog_differs,
                    Scope::Limits(kind, from) => key.limits.as_ref().is_some_and(|sides| {
                        (sides.iter().flatten()).any(|l| &l.kind == kind && l.from == *from)
                    }),
                };
                if hit {
                    hull = Some(hull.map_or(s.span, |h| h.hull(s.span)));
                }
            }
        }
        hull
    }
}

/// The version a resolution names, if any.
fn version_of<'a>(r: &Resolution<'a>) -> Option<(&'a Rule, &'a RuleVersion)> {
    match r {
        Resolution::Priced { rule, version, .. } | Resolution::Disabled { rule, version, .. } => {
            Some((rule, version))
        }
        Resolution::NoRule { rule, .. } => *rule,
    }
}

/// Everything of a resolution that a job's status, kind, rule or points can depend on. A
/// `no_rule` earns nothing whatever its kind, so only its version counts.
fn fingerprint(r: &Resolution<'_>) -> String {
    match r {
        Resolution::NoRule { rule, .. } => {
            format!("no_rule|{}", rule.map_or("-", |(_, v)| v.label.as_str()))
        }
        Resolution::Disabled { version, kind, .. } => {
            format!("disabled|{}|{}", version.label, kind.points)
        }
        Resolution::Priced { version, kind, .. } => format!(
            "priced|{}|{}|{}",
            version.label,
            kind_fingerprint(kind),
            pricing_fingerprint(&version.pricing)
        ),
    }
}

/// How a job kind reads and derives values (not where it is written).
fn kind_fingerprint(k: &JobKind) -> String {
    let mut s = format!("{}|", k.points);
    for i in &k.inputs {
        s.push_str(&format!(
            "{}:{:?}:{:?}:{:?}:{:?}:{:?}:{};",
            i.name,
            i.ty,
            i.min.map(f64::to_bits),
            i.max.map(f64::to_bits),
            i.from,
            i.default.map(|d| (
                d.as_f64().to_bits(),
                matches!(d, crate::engine::model::Value::Int(_))
            )),
            i.optional
        ));
        if let Some(t) = crate::review::describe::tokens_of_text(i) {
            s.push_str(&t);
        }
    }
    for d in &k.derived {
        s.push_str(&format!("{}={};", d.name, d.expr));
    }
    s
}

fn pricing_fingerprint(p: &Pricing) -> String {
    match p {
        Pricing::NoRule { .. } => "no_rule".into(),
        Pricing::Disabled { .. } => "disabled".into(),
        Pricing::Priced {
            formula,
            multiplier,
            thresholds,
            ceilings,
        } => {
            let mut s = format!("{}|{}|", formula.source, multiplier.to_bits());
            for t in thresholds {
                s.push_str(&format!("min {}={};", t.name, t.min.to_bits()));
            }
            for c in ceilings {
                s.push_str(&format!("max {}={};", c.name, c.max.to_bits()));
            }
            s
        }
    }
}

/// When `v` of `rule` is in force.
fn window_of(rule: &Rule, v: &RuleVersion) -> Span {
    Span {
        from: Some(v.effective_from),
        until: rule.next_after(v),
    }
}

/// The catalog's say on `model` at `t`: the alias it is priced through (model and kind), and
/// the priced model's family there and whether it is inside a window.
type CatalogState = (Option<(String, AliasKind)>, Option<(String, bool)>);

fn catalog_state(rs: &RuleSet, model: &str, t: Timestamp) -> CatalogState {
    let alias = rs.alias_at(model, Some(t));
    let priced = alias.map_or(model, |a| a.model.as_str());
    (
        alias.map(|a| (a.model.clone(), a.kind)),
        (rs.catalog.get(priced)).map(|e| (e.family_at(Some(t)).to_string(), e.in_window(Some(t)))),
    )
}

/// `model`'s affected segments, each with its window's key and whether the catalog differs;
/// `None` when they would cost more than what is left of `budget`, or the work was cancelled.
fn affected_segments(
    old: &RuleSet,
    new: &RuleSet,
    model: &str,
    budget: &mut u64,
) -> Option<Vec<(WindowKey, Span, bool)>> {
    let mut breaks = Vec::new();
    for rs in [old, new] {
        rs.pricing_breaks(model, &mut breaks);
        // The execution limits a job runs under may differ between the sides too (few dates;
        // segments of one window that they cut needlessly are joined again below).
        for kind in rs.job_kinds.values() {
            breaks.extend(kind.execution_limits.iter().map(|l| l.effective_from));
        }
    }
    // Each date resolves on both sides, scanning up to every version: about n² for n dates.
    let cost = (breaks.len() as u64 + 1).pow(2);
    if crate::engine::cancel::cancelled() {
        return None;
    }
    *budget = budget.checked_sub(cost)?;
    breaks.sort();
    breaks.dedup();
    // Before the first date nothing is in force on either side: no version prices anything.
    let mut out: Vec<(WindowKey, Span, bool)> = Vec::new();
    for (i, &start) in breaks.iter().enumerate() {
        let span = Span {
            from: Some(start),
            until: breaks.get(i + 1).copied(),
        };
        let (o, n) = (
            old.resolve(model, Some(start)),
            new.resolve(model, Some(start)),
        );
        // The limits a job runs under on each side, when both price it (otherwise the
        // resolutions already differ, and what ran is not what decides).
        let (ol, nl) = match (&o, &n) {
            (Resolution::Priced { kind: ok, .. }, Resolution::Priced { kind: nk, .. }) => {
                (LimitsRef::of(ok, start), LimitsRef::of(nk, start))
            }
            _ => (None, None),
        };
        let text = |l: &Option<(LimitsRef, Span)>| l.as_ref().map(|(l, _)| l.text.clone());
        if fingerprint(&o) == fingerprint(&n) && text(&ol) == text(&nl) {
            continue;
        }
        let (ov, nv) = (version_of(&o), version_of(&n));
        let rule_span =
            |v: Option<(&Rule, &RuleVersion)>| v.map_or(Span::default(), |(r, v)| window_of(r, v));
        let mut span_of_key = rule_span(ov).intersect(rule_span(nv));
        let limits = if text(&ol) == text(&nl) {
            None
        } else {
            for (_, s) in ol.iter().chain(&nl) {
                span_of_key = span_of_key.intersect(*s);
            }
            Some([ol.map(|(l, _)| l), nl.map(|(l, _)| l)])
        };
        let key = WindowKey {
            old: ov.map(|(r, v)| VersionRef::of(r, v)),
            new: nv.map(|(r, v)| VersionRef::of(r, v)),
            limits,
            span: span_of_key,
        };
        let catalog_differs = catalog_state(old, model, start) != catalog_state(new, model, start);
        // Adjacent pieces of one window (cut by a date of an unrelated rule) are one segment.
        match out.last_mut() {
            Some((k, s, c)) if *k == key && s.until == span.from => {
                s.until = span.until;
                *c |= catalog_differs;
            }
            _ => out.push((key, span, catalog_differs)),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::files::RuleFiles;
    use crate::rules::load::load;

    fn t(s: &str) -> Timestamp {
        crate::engine::time::parse_time(s).unwrap()
    }

    /// The built-in rules with each `from` replaced by its `to` (once) in `file`.
    fn edited(file: &str, edits: &[(&str, &str)]) -> RuleSet {
        let mut files = RuleFiles::embedded();
        let mut text = files.text(file).unwrap().to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{file} lacks {from:?}");
            text = text.replacen(from, to, 1);
        }
        files.files.insert(file.into(), text.into_bytes());
        let loaded = load(files);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.ruleset.unwrap()
    }

    fn shipped() -> RuleSet {
        load(RuleFiles::embedded()).ruleset.unwrap()
    }

    fn labels(t: &Timelines) -> Vec<String> {
        t.windows.iter().map(|w| w.key.label(w.span)).collect()
    }

    #[test]
    fn the_same_rules_have_no_window() {
        let tl = Timelines::build(&shipped(), &shipped());
        assert!(tl.windows.is_empty() && tl.models.is_empty());
    }

    #[test]
    fn an_old_version_edited_in_place_rewrites_its_own_window_only() {
        let new = edited(
            "families/sdxl10.toml",
            &[
                ("multiplier = 1.8", "multiplier = 2.0"),
                ("points = 1.8 }", "points = 2 }"),
                ("points = 10.8 }", "points = 12 }"),
            ],
        );
        let tl = Timelines::build(&shipped(), &new);
        assert_eq!(
            labels(&tl),
            ["sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z)"]
        );
        // A model listed since 2024-07-29 is replayed from then, the others from the start.
        assert_eq!(tl.plan("SDXL"), [(0, t("2024-07-29T20:12:10Z"))]);
        assert_eq!(tl.plan("AnimagineXL"), [(0, t("2024-04-01"))]);
        assert!(tl.plan("BrainDance").is_empty());
        let scope = Scope::Versions(vec!["sdxl10@1".into()]);
        let span = tl.rewrites(&scope).unwrap();
        assert_eq!(span.text(), "2024-04-01 → 2024-09-18T16:17:11Z");
        assert!(span.starts_before(t("2026-12-01")));
        // Another version's scope rewrites nothing.
        assert_eq!(tl.rewrites(&Scope::Versions(vec!["sdxl10@3".into()])), None);
    }

    #[test]
    fn out_of_budget_every_pricing_change_is_assumed_to_rewrite_all_history() {
        let new = edited(
            "families/sdxl10.toml",
            &[
                ("multiplier = 1.8", "multiplier = 2.0"),
                ("points = 1.8 }", "points = 2 }"),
                ("points = 10.8 }", "points = 12 }"),
            ],
        );
        let v1 = Scope::Versions(vec!["sdxl10@1".into()]);
        let full = Timelines::build(&shipped(), &new);
        assert!(!full.incomplete);
        // The shipped rules need a small fraction of the budget.
        assert!(
            Timelines::build_within(&shipped(), &new, 2_000)
                .windows
                .len()
                == 1
        );
        let starved = Timelines::build_within(&shipped(), &new, 10);
        assert!(starved.incomplete);
        assert_eq!(starved.rewrites(&v1), Some(Span::default()));
        // Another version's change too: nothing can be ruled out.
        let v3 = Scope::Versions(vec!["sdxl10@3".into()]);
        assert_eq!(starved.rewrites(&v3), Some(Span::default()));
        assert_eq!(full.rewrites(&v3), None);
        assert_eq!(starved.rewrites(&Scope::None), None);
    }

    #[test]
    fn a_catalog_entry_moved_later_rewrites_the_time_it_leaves() {
        // SDXL priced from 2024-08-01 instead of its catalog commit: jobs of those days lose
        // their price; nothing else moves.
        let new = edited(
            "catalog.toml",
            &[(
                "SDXL = { family = \"sdxl10\", since = 2024-07-29T20:12:10Z, catalog = { since = \"026\" } }",
                "SDXL = { family = \"sdxl10\", since = 2024-08-01 }",
            )],
        );
        let tl = Timelines::build(&shipped(), &new);
        assert_eq!(
            labels(&tl),
            ["sdxl10@1 → no rule (2024-07-29T20:12:10Z → 2024-08-01)"]
        );
        let span = tl.rewrites(&Scope::Model("SDXL".into())).unwrap();
        assert_eq!(span.text(), "2024-07-29T20:12:10Z → 2024-08-01");
        assert_eq!(tl.plan("SDXL"), [(0, t("2024-07-29T20:12:10Z"))]);
    }

    #[test]
    fn a_family_change_is_an_affected_window() {
        // Mixtral kept in llm8x7b4b after catalog 047 instead of moving to the unpriced llm8x7b.
        let new = edited(
            "catalog.toml",
            &[(
                "{ family = \"llm8x7b\", since = 2025-01-28T04:20:36Z",
                "{ family = \"llm8x7b4b\", since = 2025-01-28T04:20:36Z",
            )],
        );
        let tl = Timelines::build(&shipped(), &new);
        assert_eq!(
            labels(&tl),
            ["no rule → llm8x7b4b@3 (2025-01-28T04:20:36Z → 2025-08-13T15:26:38Z)"]
        );
        let model = "mistralai/mixtral-8x7b-instruct";
        assert_eq!(tl.plan(model), [(0, t("2025-01-28T04:20:36Z"))]);
        // Its rename alias prices as it: the old name's jobs move in the same window.
        assert_eq!(
            tl.plan("mistralai/mixtral-8x7b-instruct-v0.1"),
            [(0, t("2025-01-28T04:20:36Z"))]
        );
        assert!(tl.rewrites(&Scope::Model(model.into())).is_some());
    }

    #[test]
    fn an_alias_added_is_an_affected_window() {
        let new = edited(
            "catalog.toml",
            &[(
                "[aliases]\n",
                "[aliases]\nOldBrain = { model = \"BrainDance\", kind = \"gateway\", since = 2024-06-01, until = 2024-07-01, source = \"a test\" }\n",
            )],
        );
        let tl = Timelines::build(&shipped(), &new);
        assert_eq!(labels(&tl), ["no rule → sd15@1 (2024-06-01 → 2024-07-01)"]);
        assert_eq!(tl.plan("OldBrain"), [(0, t("2024-06-01"))]);
        let span = tl.rewrites(&Scope::Model("OldBrain".into())).unwrap();
        assert_eq!(span.text(), "2024-06-01 → 2024-07-01");
        assert!(tl.plan("BrainDance").is_empty());
    }

    #[test]
    fn spans_read_as_dates_and_combine() {
        let a = Span {
            from: Some(t("2024-04-01")),
            until: Some(t("2024-09-18")),
        };
        let b = Span {
            from: Some(t("2024-07-29T12:00:00Z")),
            until: None,
        };
        assert_eq!(a.text(), "2024-04-01 → 2024-09-18");
        assert_eq!(b.text(), "since 2024-07-29T12:00:00Z");
        assert_eq!(a.hull(b).text(), "since 2024-04-01");
        assert_eq!(a.intersect(b).text(), "2024-07-29T12:00:00Z → 2024-09-18");
        assert!(a.starts_before(t("2024-04-02")));
        assert!(!a.starts_before(t("2024-04-01")));
        assert_eq!(Span::default().text(), "always");
    }
}
