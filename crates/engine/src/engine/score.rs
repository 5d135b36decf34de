//! Scoring: one job in, one result out, whatever happened to it.
//!
//! [`Scorer::score_job`] is the only way a result is made, for a job in any form
//! ([`JobInput`]). It ends in one function, generic over the reader that presents the job: the
//! borrowed reader first (when it can decide the job exactly), else the strict reader. Envelope,
//! resolution, inputs, thresholds, formula and the result are each written once.

use std::borrow::Cow;
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use super::explain::Explain;
pub use super::explain::{AliasTrace, Trace};
use super::formula::{EvalContext, Outcome, evaluate};
use super::identity::{ENGINE, SCHEMA_VERSION, engine_verbatim};
use super::job::borrowed::{BorrowedJob, Fields};
use super::job::strict::{JobRecord, StrictJob, parse_line, parse_line_reading};
use super::job::{
    Envelope, InputFailure, JobError, JobSource, Undecided, read_envelope, read_inputs_noting,
    read_paths,
};
use super::json::ReadPaths;
use super::model::{RuleSet, Value};
use super::points::Points;
use super::resolve::{Resolution, ResolutionCache};
pub use super::status::Status;
use super::time::utc_string;

/// The `schema_version` of a result object: always [`SCHEMA_VERSION`]. A field of its own so
/// that serde writes it in its place among the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(SCHEMA_VERSION)
    }
}

/// Which time picked a job's rule version, when it was not the job's own `completed_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PricedBy {
    /// `--at` / `?at=`: one time given for every job.
    At,
    /// The time the request carrying the job was received (`serve`, whose clients' own
    /// `completed_at` is not trusted to pick the version).
    Received,
}

/// The result for one job, borrowed from the job, the rules and the scorer's buffers: what
/// scoring produces, without allocating. Field order is the JSON output order.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ScoreRef<'a> {
    /// The input file, when several were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<&'a str>,
    pub line: u64,
    pub id: Option<&'a str>,
    pub model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miner: Option<&'a str>,
    pub status: Status,
    /// The point kind (`llama`, `waifu`), when the model resolved to a job kind.
    pub kind: Option<&'a str>,
    pub family: Option<&'a str>,
    /// `RULE@VERSION`, e.g. `sd15@1`.
    pub rule: Option<&'a str>,
    pub points: Points,
    pub ruleset: &'a str,
    /// The engine that made the result ([`ENGINE`]: `jobpoints 0.1.0 (commit)`).
    pub engine: &'a str,
    /// The version of this object's contract ([`SCHEMA_VERSION`]).
    pub schema_version: SchemaVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    /// The job's `completed_at` (UTC, to the second), when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<&'a str>,
    /// The time that picked the version (UTC, to the second), shown only when the scorer
    /// names it ([`Scorer::name_pricing_time`]) and it was not the job's `completed_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priced_at: Option<&'a str>,
    /// Where `priced_at` came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priced_by: Option<PricedBy>,
    /// Counts the job claims that its own text contradicts (beyond the tolerance its job kind
    /// declares): the text was counted, and the claim is reported here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disputed_claim: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<&'a Trace>,
    /// `id`, `model`, `miner`, `completed_at`, `ruleset` and `engine` are known to contain nothing JSON
    /// escapes (they were borrowed from a line the scanner read, or checked once), so writers
    /// may copy them as they are. Not part of the result.
    #[serde(skip)]
    pub verbatim: bool,
}

/// The result for one job, owned.
#[derive(Debug, Clone)]
pub struct Score {
    pub(crate) file: Option<String>,
    pub(crate) line: u64,
    pub(crate) id: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) miner: Option<String>,
    pub(crate) status: Status,
    pub(crate) kind: Option<String>,
    pub(crate) family: Option<String>,
    pub(crate) rule: Option<String>,
    pub(crate) points: Points,
    pub(crate) ruleset: Arc<str>,
    pub(crate) engine: Cow<'static, str>,
    pub(crate) reason: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) field: Option<String>,
    pub(crate) completed_at: Option<String>,
    pub(crate) priced_at: Option<String>,
    pub(crate) priced_by: Option<PricedBy>,
    pub(crate) disputed_claim: Option<String>,
    pub(crate) trace: Option<Box<Trace>>,
}

impl ScoreRef<'_> {
    /// An owned copy.
    pub fn to_score(&self) -> Score {
        Score {
            file: self.file.map(String::from),
            line: self.line,
            id: self.id.map(String::from),
            model: self.model.map(String::from),
            miner: self.miner.map(String::from),
            status: self.status,
            kind: self.kind.map(String::from),
            family: self.family.map(String::from),
            rule: self.rule.map(String::from),
            points: self.points,
            ruleset: self.ruleset.into(),
            engine: if self.engine == ENGINE {
                Cow::Borrowed(ENGINE)
            } else {
                Cow::Owned(self.engine.to_string())
            },
            reason: self.reason.map(String::from),
            error: self.error.map(String::from),
            field: self.field.map(String::from),
            completed_at: self.completed_at.map(String::from),
            priced_at: self.priced_at.map(String::from),
            priced_by: self.priced_by,
            disputed_claim: self.disputed_claim.map(String::from),
            trace: self.trace.map(|t| Box::new(t.clone())),
        }
    }
}

impl Score {
    /// Borrows this score.
    pub fn as_ref(&self) -> ScoreRef<'_> {
        ScoreRef {
            file: self.file.as_deref(),
            line: self.line,
            id: self.id.as_deref(),
            model: self.model.as_deref(),
            miner: self.miner.as_deref(),
            status: self.status,
            kind: self.kind.as_deref(),
            family: self.family.as_deref(),
            rule: self.rule.as_deref(),
            points: self.points,
            ruleset: &self.ruleset,
            engine: &self.engine,
            schema_version: SchemaVersion,
            reason: self.reason.as_deref(),
            error: self.error.as_deref(),
            field: self.field.as_deref(),
            completed_at: self.completed_at.as_deref(),
            priced_at: self.priced_at.as_deref(),
            priced_by: self.priced_by,
            disputed_claim: self.disputed_claim.as_deref(),
            trace: self.trace.as_deref(),
            verbatim: false,
        }
    }
}

impl Serialize for Score {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

/// Options for scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Overrides every job's `completed_at` when picking rule versions.
    pub at: Option<Timestamp>,
    /// Record how each job was priced ([`Trace`]).
    pub explain: bool,
}

/// A job as it reaches [`Scorer::score_job`].
#[derive(Debug, Clone, Copy)]
pub enum JobInput<'a> {
    /// A JSONL line's bytes, without its line end, and its line number.
    Line { line: u64, bytes: &'a [u8] },
    /// A line already checked to be UTF-8 (the ledger pipeline checks a whole block at once).
    Text { line: u64, text: &'a str },
    /// A record a reader parsed: an array element, a document, a CSV or Parquet row.
    Record(&'a JobRecord),
}

impl JobInput<'_> {
    /// The job read strictly, to keep (e.g. as a sample of a change).
    pub fn to_record(&self) -> JobRecord {
        match *self {
            JobInput::Line { line, bytes } => parse_line(line, bytes),
            JobInput::Text { line, text } => parse_line(line, text.as_bytes()),
            JobInput::Record(record) => record.clone(),
        }
    }
}

/// Scores jobs against one rule set. Cheap to build; each thread scoring with it needs its own
/// [`ScoreContext`].
#[derive(Debug, Clone)]
pub struct Scorer<'rs> {
    pub rules: &'rs RuleSet,
    pub opts: ScoreOptions,
    /// Shown as `file` in every result (when several files are scored).
    pub file: Option<String>,
    /// Score every job the reference way: the strict reader and the rhai interpreter, never
    /// the borrowed reader or compiled programs (for equivalence tests and benchmarks).
    pub reference: bool,
    /// When the jobs were received. If set, this time (not the job's own `completed_at`, which
    /// is the client's word) picks each job's rule version, unless `opts.at` is set: `serve`
    /// without `--trust-job-time`, so a job cannot be backdated into a better-paying version.
    pub received: Option<Timestamp>,
    /// Results name the time that picked the version (`priced_at`, `priced_by`) when it was not
    /// the job's own `completed_at` (`serve`, and `eval --at`), so `verify` can price the job
    /// again the same way.
    pub name_pricing_time: bool,
}

/// Per-thread scoring state: the resolution cache and reused buffers.
pub struct ScoreContext<'rs> {
    eval: EvalContext,
    cache: ResolutionCache<'rs>,
    inputs: Vec<Value>,
    /// Integer ids as text.
    id: itoa::Buffer,
    /// Times that are not already canonical, as `utc_string` prints them.
    when: String,
    /// The scorer's own pricing time (`opts.at`, else `received`) as `utc_string` prints it.
    priced_at: String,
    trace: Trace,
    /// Where the borrowed reader found the fields of the current line.
    fields: Fields,
    /// The paths the rule set reads: all the strict reader builds of a job.
    reads: ReadPaths,
    /// The current job's claims its text contradicts (`disputed_claim`).
    disputed: String,
    /// The rule set's hash and the engine need no JSON escaping (hex, and a version; checked
    /// once).
    hash_verbatim: bool,
}

impl<'rs> Scorer<'rs> {
    /// A scorer with default options.
    pub fn new(rules: &'rs RuleSet) -> Self {
        Scorer {
            rules,
            opts: ScoreOptions::default(),
            file: None,
            reference: false,
            received: None,
            name_pricing_time: false,
        }
    }

    pub fn context(&self) -> ScoreContext<'rs> {
        ScoreContext {
            eval: if self.reference {
                EvalContext::interpreter_only()
            } else {
                EvalContext::new()
            },
            cache: ResolutionCache::new(self.rules),
            inputs: Vec::with_capacity(8),
            id: itoa::Buffer::new(),
            when: String::with_capacity(24),
            priced_at: self
                .opts
                .at
                .or(self.received)
                .map(utc_string)
                .unwrap_or_default(),
            trace: Trace::default(),
            fields: Fields::default(),
            reads: read_paths(self.rules.job_kinds.values()),
            disputed: String::new(),
            hash_verbatim: self
                .rules
                .hash
                .bytes()
                .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\\')
                && engine_verbatim(),
        }
    }

    /// Scores one job, in whichever form it reached the engine: the one way a result is
    /// made. `emit` receives exactly one result for it (a borrowed view: copy what you keep).
    ///
    /// A line is read by the borrowed reader when it can decide the job exactly, else (and
    /// for every record) by the strict reader; both end in the same pricing code.
    pub fn score_job(
        &self,
        ctx: &mut ScoreContext<'rs>,
        job: JobInput<'_>,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        match job {
            JobInput::Line { line, bytes } => match std::str::from_utf8(bytes) {
                Ok(text) => self.score_text(ctx, line, text, emit),
                // The strict reader says where the bytes stop being UTF-8.
                Err(_) => {
                    let record = parse_line_reading(line, bytes, &ctx.reads);
                    self.score_strict(ctx, &record, emit);
                }
            },
            JobInput::Text { line, text } => self.score_text(ctx, line, text, emit),
            JobInput::Record(record) => self.score_strict(ctx, record, emit),
        }
    }

    /// [`Self::score_job`], returning the owned result.
    pub fn score_owned(&self, ctx: &mut ScoreContext<'rs>, job: JobInput<'_>) -> Score {
        let mut out = None;
        self.score_job(ctx, job, &mut |s| out = Some(s.to_score()));
        out.expect("every job gets a result")
    }

    fn score_text(
        &self,
        ctx: &mut ScoreContext<'rs>,
        line: u64,
        text: &str,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        if !self.reference {
            // The field buffer is lent to the reader for this line, then kept for the next.
            let mut fields = std::mem::take(&mut ctx.fields);
            let decided = BorrowedJob::parse(text, &mut fields)
                .is_some_and(|job| self.score(ctx, line, &job, emit).is_ok());
            ctx.fields = fields;
            if decided {
                return;
            }
        }
        // Only what the rules read is built: a job's other fields may be MiBs of nested
        // values, and their tree ~50× that.
        let record = parse_line_reading(line, text.as_bytes(), &ctx.reads);
        self.score_strict(ctx, &record, emit);
    }

    fn score_strict(
        &self,
        ctx: &mut ScoreContext<'rs>,
        record: &JobRecord,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) {
        match record {
            Ok(job) => {
                let decided = self.score(ctx, job.line, &job, emit);
                debug_assert!(decided.is_ok(), "the strict reader decides every job");
            }
            Err(e) => emit(&self.invalid(e)),
        }
    }

    fn invalid<'a>(&'a self, e: &'a JobError) -> ScoreRef<'a> {
        ScoreRef {
            file: self.file.as_deref(),
            line: e.line,
            id: e.id.as_deref(),
            model: e.model.as_deref(),
            miner: None,
            status: Status::Invalid,
            kind: None,
            family: None,
            rule: None,
            points: Points::ZERO,
            ruleset: &self.rules.hash,
            engine: ENGINE,
            schema_version: SchemaVersion,
            reason: None,
            error: Some(&e.message),
            field: e.field.as_deref(),
            completed_at: None,
            priced_at: None,
            priced_by: None,
            disputed_claim: None,
            trace: None,
            verbatim: false,
        }
    }

    /// The one function that turns a job into a result. `Err(Undecided)` (only from the
    /// borrowed reader, and always before anything was emitted) sends the job to the strict
    /// reader.
    fn score<'j, S: JobSource<'j>>(
        &self,
        ctx: &mut ScoreContext<'rs>,
        line: u64,
        src: &S,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) -> Result<(), Undecided> {
        let envelope = read_envelope(src, line)?;
        if let Some((field, message)) = src.problem() {
            let (id, model) = match envelope {
                Ok(env) => (
                    env.id.map(|id| id.text(&mut ctx.id).to_string()),
                    Some(env.model.to_string()),
                ),
                Err(e) => (e.id, e.model),
            };
            let e = JobError {
                line,
                id,
                model,
                field,
                message,
            };
            emit(&self.invalid(&e));
            return Ok(());
        }
        let env: Envelope<'j> = match envelope {
            Ok(env) => env,
            Err(e) => {
                emit(&self.invalid(&e));
                return Ok(());
            }
        };
        if self.opts.explain {
            // The trace is lent to this job, then kept (with its buffers) for the next.
            let mut trace = std::mem::take(&mut ctx.trace);
            let priced = self.price(ctx, line, src, env, &mut trace, emit);
            ctx.trace = trace;
            priced
        } else {
            self.price(ctx, line, src, env, &mut (), emit)
        }
    }

    /// Resolves the job's rule version, reads its inputs, evaluates the formula and emits the
    /// result, telling `explain` each step.
    fn price<'j, S: JobSource<'j>, E: Explain>(
        &self,
        ctx: &mut ScoreContext<'rs>,
        line: u64,
        src: &S,
        env: Envelope<'j>,
        explain: &mut E,
        emit: &mut dyn FnMut(&ScoreRef<'_>),
    ) -> Result<(), Undecided> {
        let ScoreContext {
            eval,
            cache,
            inputs,
            id: id_buf,
            when,
            priced_at,
            trace: _,
            fields: _,
            reads: _,
            disputed,
            hash_verbatim,
        } = ctx;
        disputed.clear();
        let (at, priced_by) = match (self.opts.at, self.received) {
            (Some(at), _) => (Some(at), Some(PricedBy::At)),
            (None, Some(received)) => (Some(received), Some(PricedBy::Received)),
            (None, None) => (env.completed_at.map(|(t, _)| t), None),
        };
        let resolution = cache.get(env.model, at);
        let mut s = ScoreRef {
            file: self.file.as_deref(),
            line,
            id: None,
            model: Some(env.model),
            miner: env.miner,
            status: Status::NoRule,
            kind: None,
            family: None,
            rule: None,
            points: Points::ZERO,
            ruleset: &self.rules.hash,
            engine: ENGINE,
            schema_version: SchemaVersion,
            reason: None,
            error: None,
            field: None,
            completed_at: None,
            priced_at: None,
            priced_by: None,
            disputed_claim: None,
            trace: None,
            verbatim: src.verbatim() && *hash_verbatim,
        };
        // What decides the outcome first (inputs may still be undecided), then the result.
        let mut error = None;
        let mut field = None;
        let mut unmeasured = None;
        let alias = resolution.alias();
        explain.begin(env.model, at, alias, || {
            let priced_model = alias.map_or(env.model, |a| a.model.as_str());
            (self.rules.catalog_entry(priced_model))
                .and_then(|e| e.window_at(at))
                .filter(|w| w.when != Default::default())
                .map(|w| format!("{} {}", w.family, w.when.text()))
        });
        match &*resolution {
            Resolution::NoRule {
                family,
                rule,
                kind,
                reason,
                ..
            } => {
                s.family = family.as_deref();
                s.kind = kind.map(|k| k.points.as_str());
                s.rule = rule.map(|(_, v)| v.label.as_str());
                s.reason = Some(reason);
                explain.no_rule(family.as_ref(), *rule, reason);
            }
            Resolution::Disabled {
                rule,
                version,
                kind,
                reason,
                ..
            } => {
                s.status = Status::Disabled;
                s.family = Some(&rule.family);
                s.kind = Some(&kind.points);
                s.rule = Some(&version.label);
                s.reason = Some(reason);
                explain.disabled(rule, version, kind);
            }
            Resolution::Priced {
                rule,
                version,
                kind,
                ..
            } => {
                // The only step that can still be undecided: reading the inputs.
                let counted = explain.counted();
                let read = read_inputs_noting(src, kind, inputs, counted, Some(disputed))?;
                s.family = Some(&rule.family);
                s.kind = Some(&kind.points);
                s.rule = Some(&version.label);
                explain.priced(rule, version, kind);
                match read {
                    Err(e) => match e.failure {
                        InputFailure::Unmeasured => {
                            s.status = Status::Unmeasured;
                            explain.unmeasured(&e.message);
                            unmeasured = Some(e.message);
                        }
                        InputFailure::Invalid | InputFailure::Failed => {
                            s.status = if e.failure == InputFailure::Failed {
                                Status::Error
                            } else {
                                Status::Invalid
                            };
                            error = Some(e.message);
                            field = Some(e.field);
                        }
                    },
                    Ok(()) => {
                        explain.inputs(kind, inputs, || defaulted_inputs(src, kind))?;
                        let observed = explain.observed();
                        match evaluate(
                            &self.rules.engine,
                            kind,
                            version,
                            inputs,
                            at,
                            eval,
                            observed,
                        ) {
                            Outcome::Ok { base, points } => {
                                s.status = Status::Ok;
                                s.points = points;
                                explain.points(base, points);
                            }
                            Outcome::BelowThreshold => {
                                s.status = Status::BelowThreshold;
                            }
                            Outcome::OverLimit => {
                                s.status = Status::OverLimit;
                            }
                            Outcome::Failed { error: e } => {
                                s.status = Status::Error;
                                error = Some(format!(
                                    "rule `{}` version {} ({}): {e}",
                                    rule.id, version.version, rule.file
                                ));
                            }
                        }
                    }
                }
            }
        }
        if matches!(s.status, Status::BelowThreshold | Status::OverLimit) {
            s.reason = Some(eval.reason());
        }
        if unmeasured.is_some() {
            s.reason = unmeasured.as_deref();
        }
        s.error = error.as_deref();
        s.field = field.as_deref();
        s.disputed_claim = (!disputed.is_empty()).then_some(disputed.as_str());
        s.id = env.id.as_ref().map(|id| id.text(id_buf));
        s.completed_at = match env.completed_at {
            None => None,
            Some((_, Some(canonical))) => Some(canonical),
            Some((t, None)) => {
                when.clear();
                use std::fmt::Write as _;
                let _ = write!(when, "{}", t.strftime("%Y-%m-%dT%H:%M:%SZ"));
                Some(when.as_str())
            }
        };
        if self.name_pricing_time && priced_by.is_some() {
            s.priced_at = Some(priced_at.as_str());
            s.priced_by = priced_by;
        }
        s.trace = explain.trace();
        emit(&s);
        Ok(())
    }
}

/// Inputs of `kind` that `src` leaves out and that took their default (for `--explain`).
fn defaulted_inputs<'j, S: JobSource<'j>>(
    src: &S,
    kind: &super::model::JobKind,
) -> Result<Vec<String>, Undecided> {
    let mut out = Vec::new();
    for spec in kind.inputs.iter().filter(|i| i.default.is_some()) {
        let mut present = false;
        for path in &spec.from {
            present |= !matches!(src.lookup(path)?, None | Some(super::job::Field::Null));
        }
        if !present {
            out.push(spec.name.clone());
        }
    }
    Ok(out)
}

/// A job from a JSON value built in memory, e.g. in a test.
pub fn parse_job(line: u64, value: serde_json::Value) -> JobRecord {
    Ok(StrictJob::from_value(line, value))
}
