//! Scoring jobs against a rule set: one [`Score`] per job read, whatever happened to it.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::evaluate::{EvalContext, Observed, Outcome, evaluate};
use crate::job::{JobRecord, read_inputs};
use crate::model::{Pricing, Resolution, RuleSet, Value};
use crate::points::Points;
use crate::time::utc_string;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Priced by a rule.
    Ok,
    /// Valid, but under a threshold: earns 0.
    BelowThreshold,
    /// No rule prices this model at this time: earns 0, explicitly.
    NoRule,
    /// The job itself is malformed.
    Invalid,
    /// The rule failed on this job (formula error, limit hit, bad result).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BelowThreshold => "below_threshold",
            Status::NoRule => "no_rule",
            Status::Invalid => "invalid",
            Status::Error => "error",
        }
    }

    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::BelowThreshold,
        Status::NoRule,
        Status::Invalid,
        Status::Error,
    ];
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job was priced, step by step (`--explain`).
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    pub model: String,
    pub family: Option<String>,
    pub rule: Option<String>,
    pub rule_file: Option<String>,
    pub version: Option<i64>,
    pub effective_from: Option<String>,
    pub effective_until: Option<String>,
    /// The time that picked the version; `null` means "latest version".
    pub at: Option<String>,
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    pub job_kind: Option<String>,
    pub inputs: Vec<(String, Value)>,
    #[serde(flatten)]
    pub observed: Observed,
    pub formula: Option<String>,
    pub formula_file: Option<String>,
    pub base: Option<f64>,
    pub multiplier: Option<f64>,
    pub points: Points,
}

/// The result for one job. Field order is the JSON output order.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// The input file, when several were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub line: u64,
    pub id: Option<String>,
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miner: Option<String>,
    pub status: Status,
    /// The point kind (`llama`, `waifu`), when the model resolved to a job kind.
    pub kind: Option<String>,
    pub family: Option<String>,
    /// `RULE@VERSION`, e.g. `sd15@1`.
    pub rule: Option<String>,
    pub points: Points,
    pub ruleset: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The job's `completed_at` (UTC), when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Box<Trace>>,
}

/// Options for scoring.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreOptions {
    /// Overrides every job's `completed_at` when picking rule versions.
    pub at: Option<Timestamp>,
    pub explain: bool,
}

/// Scores one record. Never panics on bad input: every record gets a `Score`.
pub fn score_record(
    rs: &RuleSet,
    record: JobRecord,
    opts: ScoreOptions,
    ctx: &mut EvalContext,
) -> Score {
    let job = match record {
        Ok(job) => job,
        Err(e) => {
            return Score {
                file: None,
                line: e.line,
                id: e.id,
                model: e.model,
                miner: None,
                status: Status::Invalid,
                kind: None,
                family: None,
                rule: None,
                points: Points::ZERO,
                ruleset: rs.hash.clone(),
                reason: None,
                error: Some(e.message),
                field: e.field,
                completed_at: None,
                trace: None,
            };
        }
    };
    let at = opts.at.or(job.completed_at);
    let mut score = Score {
        file: None,
        line: job.line,
        id: job.id.clone(),
        model: Some(job.model.clone()),
        miner: job.miner.clone(),
        status: Status::NoRule,
        kind: None,
        family: None,
        rule: None,
        points: Points::ZERO,
        ruleset: rs.hash.clone(),
        reason: None,
        error: None,
        field: None,
        completed_at: job.completed_at.map(utc_string),
        trace: None,
    };
    let mut trace = opts.explain.then(|| {
        Box::new(Trace {
            model: job.model.clone(),
            family: None,
            rule: None,
            rule_file: None,
            version: None,
            effective_from: None,
            effective_until: None,
            at: at.map(utc_string),
            source: None,
            assumptions: Vec::new(),
            job_kind: None,
            inputs: Vec::new(),
            observed: Observed::default(),
            formula: None,
            formula_file: None,
            base: None,
            multiplier: None,
            points: Points::ZERO,
        })
    });
    match rs.resolve(&job.model, at) {
        Resolution::NoRule {
            family,
            rule,
            kind,
            reason,
        } => {
            score.family = family;
            score.kind = kind.map(|k| k.points.clone());
            score.rule = rule.map(|(_, v)| v.label.clone());
            score.reason = Some(reason);
            if let (Some(t), Some((r, v))) = (trace.as_deref_mut(), rule) {
                t.rule = Some(r.id.clone());
                t.rule_file = Some(r.file.clone());
                t.version = Some(v.version);
                t.effective_from = Some(utc_string(v.effective_from));
                t.effective_until = r.next_after(v).map(utc_string);
                t.source = Some(v.source.clone());
            }
            if let Some(t) = trace.as_deref_mut() {
                t.family = score.family.clone();
            }
        }
        Resolution::Priced {
            rule,
            version,
            kind,
        } => {
            score.family = Some(rule.family.clone());
            score.kind = Some(kind.points.clone());
            score.rule = Some(version.label.clone());
            if let Some(t) = trace.as_deref_mut() {
                t.family = Some(rule.family.clone());
                t.rule = Some(rule.id.clone());
                t.rule_file = Some(rule.file.clone());
                t.version = Some(version.version);
                t.effective_from = Some(utc_string(version.effective_from));
                t.effective_until = rule.next_after(version).map(utc_string);
                t.source = Some(version.source.clone());
                t.assumptions = version.assumptions.clone();
                t.job_kind = Some(kind.name.clone());
                if let Pricing::Priced {
                    formula,
                    multiplier,
                    ..
                } = &version.pricing
                {
                    t.formula = Some(formula.name.clone());
                    t.formula_file = Some(formula.file.clone());
                    t.multiplier = Some(*multiplier);
                }
            }
            match read_inputs(&job, kind) {
                Err(e) => {
                    score.status = Status::Invalid;
                    score.error = Some(e.message);
                    score.field = e.field;
                }
                Ok(inputs) => {
                    if let Some(t) = trace.as_deref_mut() {
                        t.inputs = kind
                            .inputs
                            .iter()
                            .map(|s| s.name.clone())
                            .zip(inputs.iter().copied())
                            .collect();
                    }
                    let observed = trace.as_deref_mut().map(|t| &mut t.observed);
                    match evaluate(&rs.engine, kind, version, &inputs, ctx, observed) {
                        Outcome::Ok { base, points } => {
                            score.status = Status::Ok;
                            score.points = points;
                            if let Some(t) = trace.as_deref_mut() {
                                t.base = Some(base);
                                t.points = points;
                            }
                        }
                        Outcome::BelowThreshold { reason } => {
                            score.status = Status::BelowThreshold;
                            score.reason = Some(reason);
                        }
                        Outcome::Failed { error } => {
                            score.status = Status::Error;
                            score.error = Some(format!(
                                "rule `{}` version {} ({}): {error}",
                                rule.id, version.version, rule.file
                            ));
                        }
                    }
                }
            }
        }
    }
    score.trace = trace;
    score
}
