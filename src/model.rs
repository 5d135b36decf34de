//! The validated, compiled rule set and how a model finds its rule version.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use rhai::{AST, Dynamic, Engine};

use crate::files::{RuleFiles, RulesOrigin};
use crate::points::Points;
use crate::schema::InputType;
use crate::time::utc_date;

/// A kind of reward point (`llama`, `waifu`, ...), declared in `kinds.toml`.
#[derive(Debug, Clone)]
pub struct PointKind {
    pub name: String,
    pub description: Option<String>,
}

/// A value of a job input or derived value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }

    pub fn to_dynamic(self) -> Dynamic {
        match self {
            Value::Int(i) => Dynamic::from_int(i),
            Value::Float(f) => Dynamic::from_float(f),
        }
    }

    /// Converts a rhai result; `None` for anything but a number.
    pub fn from_dynamic(d: &Dynamic) -> Option<Value> {
        if let Ok(i) = d.as_int() {
            Some(Value::Int(i))
        } else {
            d.as_float().ok().map(Value::Float)
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(x) => s.serialize_f64(*x),
        }
    }
}

/// One declared input of a job kind.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub name: String,
    pub ty: InputType,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// JSON paths, each split on `.`; the first present one is used.
    pub from: Vec<Vec<String>>,
    pub description: Option<String>,
}

/// A named value computed from the inputs before thresholds and formula.
#[derive(Debug, Clone)]
pub struct DerivedSpec {
    pub name: String,
    pub expr: String,
    pub ast: AST,
    /// The same expression compiled for speed, when it is simple arithmetic.
    pub compiled: Option<crate::compiled::Program>,
}

/// A kind of job (`image`, `llm`, ...): its inputs, derived values and point kind.
#[derive(Debug, Clone)]
pub struct JobKind {
    pub name: String,
    pub points: String,
    pub description: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub derived: Vec<DerivedSpec>,
}

impl JobKind {
    /// Names of inputs then derived values, in evaluation order.
    pub fn value_names(&self) -> impl Iterator<Item = &str> {
        self.inputs
            .iter()
            .map(|i| i.name.as_str())
            .chain(self.derived.iter().map(|d| d.name.as_str()))
    }

    pub fn has_value(&self, name: &str) -> bool {
        self.value_names().any(|n| n == name)
    }
}

/// A compiled rhai formula.
#[derive(Debug, Clone)]
pub struct Formula {
    /// The shared formula's name, or `inline` / the file name for a rule's own formula.
    pub name: String,
    /// File the text lives in, relative to the rules root.
    pub file: String,
    pub source: String,
    pub ast: AST,
    /// The same formula compiled for speed, when it is simple arithmetic.
    pub compiled: Option<crate::compiled::Program>,
}

/// A threshold: a job whose `name` is below `min` earns nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub name: String,
    pub min: f64,
    /// Index of `name` among the job kind's inputs then derived values.
    pub slot: usize,
}

/// What a version does with a job.
#[derive(Debug, Clone)]
pub enum Pricing {
    /// An explicit decision not to price: jobs get `no_rule` with this reason.
    NoRule { reason: String },
    Priced {
        formula: Arc<Formula>,
        multiplier: f64,
        thresholds: Vec<Threshold>,
    },
}

/// An example job inside a rule version, checked by `jobpoints check`.
#[derive(Debug, Clone)]
pub struct Example {
    pub inputs: Vec<(String, Value)>,
    pub points: Points,
    pub below_threshold: bool,
}

/// One version of a rule, in force from `effective_from` until the next version.
#[derive(Debug, Clone)]
pub struct RuleVersion {
    pub version: i64,
    /// `RULE@VERSION`, e.g. `sd15@1`, as results show it.
    pub label: String,
    pub effective_from: Timestamp,
    pub source: String,
    pub notes: Option<String>,
    pub assumptions: Vec<String>,
    pub pricing: Pricing,
    pub examples: Vec<Example>,
    /// 1-based line of the `[[version]]` table in the rule file.
    pub line: usize,
}

/// Whether a rule prices a whole family or overrides one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleScope {
    Family,
    Model,
}

/// A rule: a family's or a model's versions.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The family name for a family rule, the model name for a model rule.
    pub id: String,
    pub scope: RuleScope,
    pub family: String,
    /// The job kind it prices.
    pub kind: String,
    pub file: String,
    /// Byte range of the `[rule]` table in `file`.
    pub span: std::ops::Range<usize>,
    pub description: Option<String>,
    /// Sorted by `effective_from`.
    pub versions: Vec<RuleVersion>,
}

impl Rule {
    /// The version in force at `at`, or the latest when `at` is `None`.
    pub fn version_at(&self, at: Option<Timestamp>) -> Option<&RuleVersion> {
        match at {
            None => self.versions.last(),
            Some(t) => self.versions.iter().rev().find(|v| v.effective_from <= t),
        }
    }

    /// When the version after `v` takes effect, if any.
    pub fn next_after(&self, v: &RuleVersion) -> Option<Timestamp> {
        self.versions
            .iter()
            .find(|n| n.effective_from > v.effective_from)
            .map(|n| n.effective_from)
    }
}

/// A catalog entry: a model name the network uses and its family.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub family: String,
    /// The file that declared it (`catalog.toml` or a model rule file).
    pub file: String,
    /// Byte range of the declaration in `file`.
    pub span: std::ops::Range<usize>,
}

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
}

impl Resolution<'_> {
    pub fn is_no_rule(&self) -> bool {
        matches!(self, Resolution::NoRule { .. })
    }

    /// Whether the result names the exact time it was resolved for (a job before a rule's
    /// first version), so it cannot be reused for another time in the same version segment.
    pub fn depends_on_exact_time(&self) -> bool {
        matches!(self, Resolution::NoRule { rule: None, reason, .. } if reason.starts_with(NOT_YET_IN_FORCE))
    }
}

const NOT_YET_IN_FORCE: &str = "no version of rule";

/// A validated rule set, ready to score jobs. Immutable: a reload builds a new one.
pub struct RuleSet {
    pub origin: RulesOrigin,
    /// SHA-256 of every rule file; carried by every result.
    pub hash: Arc<str>,
    pub point_kinds: IndexMap<String, PointKind>,
    pub job_kinds: IndexMap<String, JobKind>,
    /// Per job kind, the floors of `policy.toml`.
    pub floors: IndexMap<String, Vec<Threshold>>,
    pub catalog: BTreeMap<String, CatalogEntry>,
    pub family_rules: BTreeMap<String, Rule>,
    pub model_rules: BTreeMap<String, Rule>,
    pub engine: Arc<Engine>,
    pub files: RuleFiles,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("origin", &self.origin)
            .field("hash", &self.hash)
            .field("families", &self.family_rules.keys().collect::<Vec<_>>())
            .field("models", &self.model_rules.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RuleSet {
    /// Finds the rule version that prices `model` at `at` (latest when `None`).
    pub fn resolve(&self, model: &str, at: Option<Timestamp>) -> Resolution<'_> {
        let model_rule = self.model_rules.get(model);
        let family = model_rule
            .map(|r| r.family.clone())
            .or_else(|| self.catalog.get(model).map(|c| c.family.clone()));
        if let Some(rule) = model_rule {
            if let Some(version) = rule.version_at(at) {
                return self.decide(rule, version, Some(family.clone().unwrap_or_default()));
            }
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
            return Resolution::NoRule {
                reason: format!("family `{family}` of model `{model}` has no rule"),
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
            (Pricing::NoRule { reason }, _) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind,
                reason: reason.clone(),
            },
            // Loading rejects rules with unknown kinds; kept total for safety.
            (Pricing::Priced { .. }, None) => Resolution::NoRule {
                family,
                rule: Some((rule, version)),
                kind: None,
                reason: format!("rule `{}` names unknown job kind `{}`", rule.id, rule.kind),
            },
        }
    }

    /// The text of one of the rule set's files ("" if absent).
    pub fn files_text(&self, rel: &str) -> &str {
        self.files.text(rel).unwrap_or("")
    }

    /// Every rule, family rules first, then model rules.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.family_rules.values().chain(self.model_rules.values())
    }
}
