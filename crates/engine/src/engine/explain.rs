//! `--explain`: how a job was priced, step by step, recorded beside the score.
//!
//! Scoring tells an [`Explain`] what it decides at each step. The plain path's recorder, `()`,
//! does nothing and compiles away; [`Trace`] keeps every step for `--explain`. So the scorer
//! carries no explain branches of its own, and the trace's content is defined here alone.

use jiff::Timestamp;
use serde::Serialize;

use super::catalog::{Alias, AliasKind};
use super::formula::Observed;
use super::job::{CountedInput, Undecided};
use super::model::{JobKind, Pricing, Rule, RuleVersion, Value};
use super::points::Points;
use super::time::utc_string;

/// What scoring tells `--explain`, step by step. Every method defaults to doing nothing.
pub(crate) trait Explain {
    /// The job's model, the time that picks its version, and (computed only when recorded)
    /// the alias it priced through and its catalog window.
    fn begin(
        &mut self,
        _model: &str,
        _at: Option<Timestamp>,
        _alias: Option<&Alias>,
        _catalog: impl FnOnce() -> Option<String>,
    ) {
    }
    /// No version prices the job: the rule version that said so, if any, and why.
    fn no_rule(
        &mut self,
        _family: Option<&String>,
        _rule: Option<(&Rule, &RuleVersion)>,
        _reason: &str,
    ) {
    }
    /// The job's version is disabled.
    fn disabled(&mut self, _rule: &Rule, _version: &RuleVersion, _kind: &JobKind) {}
    /// The version that prices the job.
    fn priced(&mut self, _rule: &Rule, _version: &RuleVersion, _kind: &JobKind) {}
    /// Where reading the inputs notes the counts it took from the job's text.
    fn counted(&mut self) -> Option<&mut Vec<CountedInput>> {
        None
    }
    /// An input could not be measured: why the job earns nothing.
    fn unmeasured(&mut self, _reason: &str) {}
    /// The inputs read, and (computed only when recorded) those that took their default.
    fn inputs(
        &mut self,
        _kind: &JobKind,
        _inputs: &[Value],
        _defaulted: impl FnOnce() -> Result<Vec<String>, Undecided>,
    ) -> Result<(), Undecided> {
        Ok(())
    }
    /// Where evaluating the formula notes what it observed (thresholds, derived values).
    fn observed(&mut self) -> Option<&mut Observed> {
        None
    }
    /// The formula's base value and the points.
    fn points(&mut self, _base: f64, _points: Points) {}
    /// The record, for the result.
    fn trace(&self) -> Option<&Trace> {
        None
    }
}

/// Scoring without `--explain`.
impl Explain for () {}

/// How a job was priced, step by step (`--explain`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub model: String,
    /// The alias the job's model name was priced through (rename, gateway or redirect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasTrace>,
    pub family: Option<String>,
    /// The catalog window of the priced model in force at the job's time (its family then,
    /// and the catalog versions that bound it), when the catalog dates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    pub rule: Option<String>,
    pub rule_file: Option<String>,
    pub version: Option<i64>,
    pub effective_from: Option<String>,
    pub effective_until: Option<String>,
    /// The time that picked the version: `--at`, else the job's `completed_at`, or in `serve`
    /// the time the request was received (unless `--trust-job-time`); `null` means "latest
    /// version".
    pub at: Option<String>,
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    /// Why the job earns nothing when its version does not price (`no_rule`, `disabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub job_kind: Option<String>,
    pub inputs: Vec<(String, Value)>,
    /// Inputs the job left out that took their `default`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub defaulted: Vec<String>,
    /// Inputs counted from the job's text (`tokens_of`): the field, the tokenizer, the count.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counted: Vec<CountedInput>,
    #[serde(flatten)]
    pub observed: Observed,
    pub formula: Option<String>,
    pub formula_file: Option<String>,
    /// The formula's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula_text: Option<String>,
    pub base: Option<f64>,
    pub multiplier: Option<f64>,
    pub points: Points,
}

impl Explain for Trace {
    fn begin(
        &mut self,
        model: &str,
        at: Option<Timestamp>,
        alias: Option<&Alias>,
        catalog: impl FnOnce() -> Option<String>,
    ) {
        *self = Trace {
            model: model.to_string(),
            at: at.map(utc_string),
            alias: alias.map(AliasTrace::of),
            catalog: catalog(),
            ..Trace::default()
        };
    }

    fn no_rule(
        &mut self,
        family: Option<&String>,
        rule: Option<(&Rule, &RuleVersion)>,
        reason: &str,
    ) {
        if let Some((r, v)) = rule {
            self.version(r, v);
        }
        self.family = family.cloned();
        self.reason = Some(reason.to_string());
    }

    fn disabled(&mut self, rule: &Rule, version: &RuleVersion, kind: &JobKind) {
        self.version(rule, version);
        self.family = Some(rule.family.clone());
        self.job_kind = Some(kind.name.clone());
    }

    fn priced(&mut self, rule: &Rule, version: &RuleVersion, kind: &JobKind) {
        self.family = Some(rule.family.clone());
        self.version(rule, version);
        self.job_kind = Some(kind.name.clone());
        if let Pricing::Priced {
            formula,
            multiplier,
            ..
        } = &version.pricing
        {
            self.formula = Some(formula.name.clone());
            self.formula_file = Some(formula.file.clone());
            self.formula_text = Some(formula.source.clone());
            self.multiplier = Some(*multiplier);
        }
    }

    fn counted(&mut self) -> Option<&mut Vec<CountedInput>> {
        Some(&mut self.counted)
    }

    fn unmeasured(&mut self, reason: &str) {
        self.reason = Some(reason.to_string());
    }

    fn inputs(
        &mut self,
        kind: &JobKind,
        inputs: &[Value],
        defaulted: impl FnOnce() -> Result<Vec<String>, Undecided>,
    ) -> Result<(), Undecided> {
        self.inputs = (kind.inputs.iter())
            .map(|i| i.name.clone())
            .zip(inputs.iter().copied())
            .collect();
        self.defaulted = defaulted()?;
        Ok(())
    }

    fn observed(&mut self) -> Option<&mut Observed> {
        Some(&mut self.observed)
    }

    fn points(&mut self, base: f64, points: Points) {
        self.base = Some(base);
        self.points = points;
    }

    fn trace(&self) -> Option<&Trace> {
        Some(self)
    }
}

impl Trace {
    fn version(&mut self, rule: &Rule, version: &RuleVersion) {
        self.rule = Some(rule.id.clone());
        self.rule_file = Some(rule.file.clone());
        self.version = Some(version.version);
        self.effective_from = Some(utc_string(version.effective_from));
        self.effective_until = rule.next_after(version).map(utc_string);
        self.source = Some(version.source.clone());
        self.notes = version.notes.clone();
        self.assumptions = version.assumptions.clone();
        self.reason = version.pricing.reason().map(String::from);
    }
}

/// How `--explain` shows an alias: the model the name priced as, why, and when.
#[derive(Debug, Clone, Serialize)]
pub struct AliasTrace {
    pub model: String,
    pub kind: AliasKind,
    /// The alias's window (`from ... until ...`, with the catalog versions that bound it).
    pub window: String,
    pub source: String,
}

impl AliasTrace {
    fn of(a: &Alias) -> Self {
        AliasTrace {
            model: a.model.clone(),
            kind: a.kind,
            window: a.when.text(),
            source: a.source.clone(),
        }
    }
}
