//! Which rule version prices a model at a time: model rule first, then the family's rule
//! through the catalog; and a per-worker cache of those answers.

use jiff::Timestamp;

use super::model::{CatalogEntry, JobKind, Pricing, Rule, RuleSet, RuleVersion, nfc};
use super::time::{utc_date, utc_string};

/// How a model resolved at a time.
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Priced {
        rule: &'a Rule,
        version: &'a RuleVersion,
        kind: &'a JobKind,
    },
    NoRule {
        family: Option<String>,
        rule: Option<(&'a Rule, &'a RuleVersion)>,
        kind: Option<&'a JobKind>,
        reason: String,
    },
    /// The version in force is disabled (`disabled = "why"`).
    Disabled {
        rule: &'a Rule,
        version: &'a RuleVersion,
        kind: &'a JobKind,
        reason: String,
    },
}

impl Resolution<'_> {
    pub fn is_no_rule(&self) -> bool {
        matches!(self, Resolution::NoRule { .. })
    }

    /// Whether the result names the exact time it was resolved for (a job before a rule's
    /// first version), so it cannot be reused for another time in the same version segment.
    fn depends_on_exact_time(&self) -> bool {
        matches!(self, Resolution::NoRule { rule: None, reason, .. } if reason.starts_with(NOT_YET_IN_FORCE))
    }

    /// The job kind whose inputs the job is read with, when the model has one.
    pub fn kind(&self) -> Option<&JobKind> {
        match self {
            Resolution::Priced { kind, .. } | Resolution::Disabled { kind, .. } => Some(kind),
            Resolution::NoRule { kind, .. } => *kind,
        }
    }
}

const NOT_YET_IN_FORCE: &str = "no version of rule";

/// A time as rule files write it: the date alone at midnight UTC.
fn day_or_time(t: Timestamp) -> String {
    let full = utc_string(t);
    if full.ends_with("T00:00:00Z") {
        utc_date(t)
    } else {
        full
    }
}

impl CatalogEntry {
    /// Whether the entry prices jobs at `at` (`None`: the latest, which is inside unless the
    /// entry has an end).
    pub fn in_window(&self, at: Option<Timestamp>) -> bool {
        match at {
            None => self.until.is_none(),
            Some(t) => self.since.is_none_or(|s| s <= t) && self.until.is_none_or(|u| t < u),
        }
    }

    /// `from 2024-06-01 until 2025-01-16`, or `None` for an entry without dates.
    pub fn window(&self) -> Option<String> {
        match (self.since, self.until) {
            (None, None) => None,
            (Some(s), None) => Some(format!("from {}", day_or_time(s))),
            (None, Some(u)) => Some(format!("until {}", day_or_time(u))),
            (Some(s), Some(u)) => Some(format!("from {} until {}", day_or_time(s), day_or_time(u))),
        }
    }
}

impl RuleSet {
    /// Finds the rule version that prices `model` at `at` (latest when `None`).
    pub fn resolve(&self, model: &str, at: Option<Timestamp>) -> Resolution<'_> {
        let model = nfc(model);
        let model = model.as_ref();
        let entry = self.catalog.get(model);
        let model_rule = self.model_rules.get(model);
        let family = model_rule
            .map(|r| r.family.clone())
            .or_else(|| entry.map(|c| c.family.clone()));
        // A dated catalog entry bounds when the model is priced at all.
        if let Some(e) = entry.filter(|e| !e.in_window(at)) {
            let window = e.window().unwrap_or_default();
            let when = match at {
                None => "not in the latest rules (a job without a time takes the latest)",
                Some(t) if e.since.is_some_and(|s| t < s) => "not yet at this time",
                Some(_) => "no longer at this time",
            };
            return Resolution::NoRule {
                family,
                rule: None,
                kind: None,
                reason: format!(
                    "model `{model}` is priced only {window} ({}): {when}",
                    e.file
                ),
            };
        }
        if let Some(rule) = model_rule
            && let Some(version) = rule.version_at(at)
        {
            return self.decide(rule, version, Some(family.clone().unwrap_or_default()));
        }
        let Some(family) = family else {
            return Resolution::NoRule {
                family: None,
                rule: None,
                kind: None,
                reason: format!("model `{model}` is not in the catalog and no rule names it"),
            };
        };
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
            };
        };
        match rule.version_at(at) {
            Some(version) => self.decide(rule, version, Some(family)),
            None => {
                let first = rule
                    .versions
                    .first()
                    .map(|v| utc_date(v.effective_from))
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
                }
            }
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
            },
            (Pricing::Disabled { reason }, Some(kind)) => Resolution::Disabled {
                rule,
                version,
                kind,
                reason: reason.clone(),
            },
            (Pricing::NoRule { reason }, _) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind,
                reason: reason.clone(),
            },
            // Loading rejects rules with unknown kinds; kept total for safety.
            (Pricing::Priced { .. } | Pricing::Disabled { .. }, None) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind: None,
                reason: format!("rule `{}` names unknown job kind `{}`", rule.id, rule.kind),
            },
        }
    }
}

/// Resolutions per model, cached per time segment: between two consecutive boundaries of a
/// model (the `effective_from` dates of its rules, and the `since`/`until` of its catalog
/// entry), the resolution cannot change. One per worker.
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
        let model = nfc(model);
        let model = model.as_ref();
        let model_rule = rules.model_rules.get(model);
        let entry = rules.catalog.get(model);
        let family = model_rule
            .map(|r| r.family.as_str())
            .or_else(|| entry.map(|c| c.family.as_str()));
        if let Some(e) = entry {
            breaks.extend(e.since);
            breaks.extend(e.until);
        }
        for rule in model_rule
            .into_iter()
            .chain(family.and_then(|f| rules.family_rules.get(f)))
        {
            breaks.extend(rule.versions.iter().map(|v| v.effective_from));
        }
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
