//! Which rule version prices a model at a time: through the alias its name is then (if any),
//! inside the model's catalog windows, in the family of that window: the model rule first
//! (while the catalog puts the model in the rule's family), then the family's rule; and a
//! per-worker cache of those answers.

use jiff::Timestamp;

use super::catalog::{Alias, CatalogEntry};
use super::model::{JobKind, Pricing, Rule, RuleSet, RuleVersion, nfc};
use super::time::{day_or_time, utc_date};

/// How a model resolved at a time. `alias` is set when the job's name is an alias of the
/// model that priced it (its result keeps its own name).
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Priced {
        rule: &'a Rule,
        version: &'a RuleVersion,
        kind: &'a JobKind,
        alias: Option<&'a Alias>,
    },
    NoRule {
        family: Option<String>,
        rule: Option<(&'a Rule, &'a RuleVersion)>,
        kind: Option<&'a JobKind>,
        reason: String,
        alias: Option<&'a Alias>,
    },
    /// The version in force is disabled (`disabled = "why"`).
    Disabled {
        rule: &'a Rule,
        version: &'a RuleVersion,
        kind: &'a JobKind,
        reason: String,
        alias: Option<&'a Alias>,
    },
}

impl<'a> Resolution<'a> {
    pub fn is_no_rule(&self) -> bool {
        matches!(self, Resolution::NoRule { .. })
    }

    /// Whether the result names the exact time it was resolved for (a job before a rule's
    /// first version), so it cannot be reused for another time in the same version segment.
    fn depends_on_exact_time(&self) -> bool {
        matches!(self, Resolution::NoRule { rule: None, reason, .. } if reason.contains(NOT_YET_IN_FORCE))
    }

    /// The job kind whose inputs the job is read with, when the model has one.
    pub fn kind(&self) -> Option<&JobKind> {
        match self {
            Resolution::Priced { kind, .. } | Resolution::Disabled { kind, .. } => Some(kind),
            Resolution::NoRule { kind, .. } => *kind,
        }
    }

    /// The alias the job's name resolved through, if any.
    pub fn alias(&self) -> Option<&'a Alias> {
        match self {
            Resolution::Priced { alias, .. }
            | Resolution::Disabled { alias, .. }
            | Resolution::NoRule { alias, .. } => *alias,
        }
    }

    /// The same resolution, reached through `via`; a `no_rule` reason says so first.
    fn via(mut self, via: &'a Alias) -> Self {
        match &mut self {
            Resolution::Priced { alias, .. } | Resolution::Disabled { alias, .. } => {
                *alias = Some(via);
            }
            Resolution::NoRule { alias, reason, .. } => {
                *alias = Some(via);
                *reason = format!("`{}` is an {}: {reason}", via.name, via.text());
            }
        }
        self
    }
}

const NOT_YET_IN_FORCE: &str = "no version of rule";

/// The texts of the windows of `sorted` nearest `at` (the last that started at or before it
/// and the first after it; the last for `None`), all of them when there are at most three,
/// joined by `, and `, and how many others there are: a reason names what matters to its job
/// and stays short however many windows a name has.
fn nearest<T>(
    sorted: &[T],
    at: Option<Timestamp>,
    when: impl Fn(&T) -> &super::catalog::Dated,
    text: impl Fn(&T) -> String,
) -> String {
    let shown: Vec<&T> = if sorted.len() <= 3 {
        sorted.iter().collect()
    } else {
        let after = match at {
            None => sorted.len(),
            Some(t) => sorted.partition_point(|x| when(x).since.is_none_or(|s| s <= t)),
        };
        let from = after.saturating_sub(1);
        sorted[from..(after + 1).min(sorted.len())].iter().collect()
    };
    let parts: Vec<String> = shown.iter().map(|x| text(x)).collect();
    let mut out = parts.join(", and ");
    let others = sorted.len() - shown.len();
    if others > 0 {
        out.push_str(&format!(" (and {others} other windows)"));
    }
    out
}

impl RuleSet {
    /// Finds the rule version that prices `model` at `at` (latest when `None`): through the
    /// alias in force at `at` when `model` is one, else the model itself.
    pub fn resolve(&self, model: &str, at: Option<Timestamp>) -> Resolution<'_> {
        let model = nfc(model);
        let model = model.as_ref();
        match self.alias_at(model, at) {
            Some(alias) => self.resolve_model(&alias.model, at).via(alias),
            None => self.resolve_model(model, at),
        }
    }

    /// The alias window of `name` (NFC) in force at `at` (`None`: the latest, open one).
    pub fn alias_at(&self, name: &str, at: Option<Timestamp>) -> Option<&Alias> {
        super::catalog::in_force(self.aliases.get(name)?, at, |a| &a.when)
    }

    /// Every instant at which the resolution of `model` may change: the bounds of its
    /// catalog windows and alias windows (and those of the models it is an alias of), and
    /// the `effective_from` of every rule that can price it. Between two of them, resolving
    /// gives the same answer; the resolution cache and `diff`'s windows cut time there.
    pub fn pricing_breaks(&self, model: &str, out: &mut Vec<Timestamp>) {
        let model = nfc(model);
        let model = model.as_ref();
        let aliases = self.aliases.get(model).map_or(&[][..], Vec::as_slice);
        let mut targets = std::collections::BTreeSet::new();
        for alias in aliases {
            out.extend(alias.when.bounds());
            targets.insert(alias.model.as_str());
        }
        // Each model once, however many windows point at it.
        for target in targets {
            self.model_breaks(target, out);
        }
        self.model_breaks(model, out);
    }

    fn model_breaks(&self, model: &str, out: &mut Vec<Timestamp>) {
        let entry = self.catalog.get(model);
        let model_rule = self.model_rules.get(model);
        let mut families: Vec<&str> = Vec::new();
        for w in entry.into_iter().flat_map(|e| &e.windows) {
            out.extend(w.when.bounds());
            families.push(&w.family);
        }
        families.extend(model_rule.map(|r| r.family.as_str()));
        families.sort_unstable();
        families.dedup();
        for rule in model_rule
            .into_iter()
            .chain(families.iter().filter_map(|f| self.family_rules.get(*f)))
        {
            out.extend(rule.versions.iter().map(|v| v.effective_from));
        }
    }

    /// Resolves a catalog model (or a model rule's model) by its own name.
    fn resolve_model(&self, model: &str, at: Option<Timestamp>) -> Resolution<'_> {
        let model_rule = self.model_rules.get(model);
        // Model rules are in the catalog too (the loader adds them), so no entry is no model.
        let Some(entry) = self.catalog.get(model) else {
            return self.not_in_catalog(model, at);
        };
        // The catalog's windows bound when the model is priced at all, and give its family.
        let Some(window) = entry.window_at(at) else {
            let first = entry.windows.first().and_then(|w| w.when.since);
            let last = entry.windows.last().and_then(|w| w.when.until);
            let when = match at {
                None => "not in the latest rules (a job without a time takes the latest)",
                Some(t) if first.is_some_and(|s| t < s) => "not yet at this time",
                Some(t) if last.is_some_and(|u| u <= t) => "no longer at this time",
                Some(_) => "not at this time (between two of its windows)",
            };
            return Resolution::NoRule {
                family: Some(family_near(entry, at).to_string()),
                rule: None,
                kind: None,
                reason: format!(
                    "model `{model}` is in the catalog only {} ({}): {when}",
                    nearest(&entry.windows, at, |w| &w.when, |w| w.when.text()),
                    entry.file()
                ),
                alias: None,
            };
        };
        let family = window.family.clone();
        // A model rule prices its model while the catalog puts it in the rule's family: a
        // family change is a change of pricing, as the catalog says.
        if let Some(rule) = model_rule.filter(|r| r.family == family)
            && let Some(version) = rule.version_at(at)
        {
            return self.decide(rule, version, Some(family));
        }
        let Some(rule) = self.family_rules.get(&family) else {
            let reason = match self.unpriced.get(&family) {
                Some(why) => format!("family `{family}` is deliberately unpriced: {why}"),
                None => format!("family `{family}` of model `{model}` has no rule"),
            };
            return Resolution::NoRule {
                reason,
                family: Some(family),
                rule: None,
                kind: None,
                alias: None,
            };
        };
        match rule.version_at(at) {
            Some(version) => self.decide(rule, version, Some(family)),
            None => {
                let first = rule
                    .versions
                    .first()
                    // To the second: a version dated at a commit starts within its day.
                    .map(|v| day_or_time(v.effective_from))
                    .unwrap_or_default();
                let at = at.map(utc_date).unwrap_or_default();
                Resolution::NoRule {
                    reason: format!(
                        "{NOT_YET_IN_FORCE} `{}` is in force at {at}; the first takes effect {first}",
                        rule.id
                    ),
                    family: Some(family),
                    rule: None,
                    kind: self.job_kinds.get(&rule.kind),
                    alias: None,
                }
            }
        }
    }

    /// A name no catalog entry and no model rule has: say so, and when it is an alias.
    fn not_in_catalog(&self, model: &str, at: Option<Timestamp>) -> Resolution<'_> {
        let reason = match self.aliases.get(model) {
            Some(aliases) => {
                let windows = nearest(
                    aliases,
                    at,
                    |a| &a.when,
                    |a| format!("of `{}` ({} {})", a.model, a.kind, a.when.text()),
                );
                let when = match at {
                    None => "not in the latest rules (a job without a time takes the latest)",
                    Some(_) => "not at this time",
                };
                format!(
                    "model `{model}` is not in the catalog; it is an alias only {windows} ({}): {when}",
                    aliases[0].file
                )
            }
            None => format!("model `{model}` is not in the catalog and no rule names it"),
        };
        Resolution::NoRule {
            family: None,
            rule: None,
            kind: None,
            reason,
            alias: None,
        }
    }

    fn decide<'a>(
        &'a self,
        rule: &'a Rule,
        version: &'a RuleVersion,
        family: Option<String>,
    ) -> Resolution<'a> {
        let kind = self.job_kinds.get(&rule.kind);
        match (&version.pricing, kind) {
            (Pricing::Priced { .. }, Some(kind)) => Resolution::Priced {
                rule,
                version,
                kind,
                alias: None,
            },
            (Pricing::Disabled { reason }, Some(kind)) => Resolution::Disabled {
                rule,
                version,
                kind,
                reason: reason.clone(),
                alias: None,
            },
            (Pricing::NoRule { reason }, _) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind,
                reason: reason.clone(),
                alias: None,
            },
            // Loading rejects rules with unknown kinds; kept total for safety.
            (Pricing::Priced { .. } | Pricing::Disabled { .. }, None) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind: None,
                reason: format!("rule `{}` names unknown job kind `{}`", rule.id, rule.kind),
                alias: None,
            },
        }
    }
}

/// Resolutions per model, cached per time segment: between two consecutive boundaries of a
/// model ([`RuleSet::pricing_breaks`]: its rules' `effective_from` dates, its catalog and
/// alias windows), the resolution cannot change. One per worker.
pub struct ResolutionCache<'rs> {
    rules: &'rs RuleSet,
    // aHash: the cache is hit once per job, and SipHash showed in profiles.
    models: ahash::AHashMap<String, Timeline<'rs>>,
    /// Resolutions kept in all `Timeline::dated`.
    dated: usize,
}

struct Timeline<'rs> {
    breaks: Vec<Timestamp>,
    segments: Vec<Option<Resolution<'rs>>>,
    latest: Option<Resolution<'rs>>,
    /// Resolutions that name the day they were made for (a time before a rule's first
    /// version), by segment and day, so that such jobs are not resolved (and their reason
    /// formatted) one by one.
    dated: ahash::AHashMap<(usize, jiff::civil::Date), Resolution<'rs>>,
}

/// Distinct models remembered; a hostile ledger of endless model names must not grow memory
/// without bound, so the cache starts over beyond this.
const MAX_CACHED_MODELS: usize = 100_000;
/// Dated resolutions remembered (see `Timeline::dated`), for the same reason.
const MAX_DATED: usize = 65_536;

/// A resolution, borrowed from the cache or computed for this one job.
pub enum Resolved<'c, 'rs> {
    Cached(&'c Resolution<'rs>),
    Fresh(Resolution<'rs>),
}

impl<'rs> std::ops::Deref for Resolved<'_, 'rs> {
    type Target = Resolution<'rs>;
    fn deref(&self) -> &Resolution<'rs> {
        match self {
            Resolved::Cached(r) => r,
            Resolved::Fresh(r) => r,
        }
    }
}

impl<'rs> ResolutionCache<'rs> {
    pub fn new(rules: &'rs RuleSet) -> Self {
        ResolutionCache {
            rules,
            models: ahash::AHashMap::new(),
            dated: 0,
        }
    }

    /// The resolution of `model` at `at`, from the cache when it can be reused.
    pub fn get(&mut self, model: &str, at: Option<Timestamp>) -> Resolved<'_, 'rs> {
        let rules = self.rules;
        if self.dated >= MAX_DATED {
            self.models.clear();
            self.dated = 0;
        }
        if !self.models.contains_key(model) {
            if self.models.len() >= MAX_CACHED_MODELS {
                self.models.clear();
                self.dated = 0;
            }
            self.models
                .insert(model.to_string(), Timeline::new(rules, model));
        }
        let tl = self.models.get_mut(model).expect("inserted above");
        let (slot, dated) = match at {
            None => (&mut tl.latest, None),
            Some(t) => {
                let i = tl.breaks.partition_point(|b| *b <= t);
                (&mut tl.segments[i], Some(i))
            }
        };
        if slot.is_none() {
            // Within a segment, such a resolution changes only with the day it names (the
            // day `utc_date` prints).
            let day = dated.zip(at.map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).date()));
            if let Some(k) = day.filter(|k| tl.dated.contains_key(k)) {
                return Resolved::Cached(&tl.dated[&k]);
            }
            let r = rules.resolve(model, at);
            if r.depends_on_exact_time() {
                return match day {
                    Some(k) => {
                        self.dated += 1;
                        Resolved::Cached(tl.dated.entry(k).or_insert(r))
                    }
                    None => Resolved::Fresh(r),
                };
            }
            *slot = Some(r);
        }
        Resolved::Cached(slot.as_ref().expect("filled above"))
    }
}

impl<'rs> Timeline<'rs> {
    fn new(rules: &'rs RuleSet, model: &str) -> Self {
        let mut breaks = Vec::new();
        rules.pricing_breaks(model, &mut breaks);
        breaks.sort();
        breaks.dedup();
        Timeline {
            segments: vec![None; breaks.len() + 1],
            breaks,
            latest: None,
            dated: ahash::AHashMap::new(),
        }
    }
}

/// The family to report for a job outside every window of `e`: of the last window that
/// started before `at`, else of the first (the latest window for a job without a time).
fn family_near(e: &CatalogEntry, at: Option<Timestamp>) -> &str {
    let before = match at {
        None => e.windows.last(),
        Some(t) => (e.windows.iter().rev()).find(|w| w.when.since.is_none_or(|s| s <= t)),
    };
    before
        .or(e.windows.first())
        .map_or("", |w| w.family.as_str())
}
