//! jobpoints: a rules engine that turns completed AI compute jobs into reward points.
//!
//! Rules are data: TOML files with short rhai formulas in a `rules/` directory. They are
//! loaded and validated as a whole into a [`RuleSet`], which scores [`Job`]s into
//! [`Score`]s with exact 6-decimal [`Points`].
//!
//! ```
//! use jobpoints::{EvalContext, RuleFiles, ScoreOptions, load, parse_job, score_record};
//!
//! // The rules built into the binary (the repository's `rules/`).
//! let loaded = load(RuleFiles::embedded());
//! let rules = loaded.ruleset.expect("the shipped rules are valid");
//!
//! let job = serde_json::json!({
//!     "id": "j1", "model": "BrainDance", "width": 1024, "height": 1024, "steps": 20,
//!     "completed_at": "2024-05-15T12:00:00Z"
//! });
//! let mut ctx = EvalContext::new();
//! let score = score_record(&rules, parse_job(1, job), ScoreOptions::default(), &mut ctx);
//! assert_eq!(score.points.to_string(), "6.000000");
//! assert_eq!(score.rule.as_deref(), Some("sd15@1"));
//! ```

#![forbid(unsafe_code)]

pub mod calibrate;
mod compiled;
mod diagnostic;
mod diff_report;
mod evaluate;
mod files;
mod git;
mod impact;
mod job;
mod ledger;
mod load;
mod model;
mod output;
mod points;
mod reader;
mod reload;
mod rulediff;
mod sandbox;
mod schema;
mod score;
mod strict_json;
mod tally;
mod time;
mod validate;
mod watcher;

pub mod cli;
pub mod synth;

pub use compiled::Program;
pub use diagnostic::{Code, Diagnostic, Severity, render_human};
pub use diff_report::{
    DiffReport, MARKDOWN_MARKER, RuleSide, render_human as render_diff_human,
    render_markdown as render_diff_markdown, summary_line,
};
pub use evaluate::{EvalContext, Observed, Outcome, evaluate};
pub use files::{RuleFiles, RulesDirError, RulesOrigin, is_rule_file};
pub use git::{GitRulesError, rule_files_at};
pub use impact::{
    CorpusFile, Group, Impact, ImpactBuilder, ImpactOptions, ModelGroup, Mover, transition,
};
pub use job::{Job, JobError, JobRecord, parse_job, read_inputs};
pub use ledger::{
    Envelope, FastJob, FastVal, LineScorer, RulesContext, RulesScorer, is_canonical_utc, run_ledger,
};
pub use load::{CATALOG_FILE, KINDS_FILE, Loaded, MAX_RULE_FILE_BYTES, POLICY_FILE, load};
pub use model::{
    CatalogEntry, Example, Formula, InputSpec, JobKind, PointKind, Pricing, Resolution, Rule,
    RuleScope, RuleSet, RuleVersion, Threshold, Value,
};
pub use output::{
    EvalFormat, ScoreRef, ScoreWriter, Totals, render_table, totals_by_kind, write_jsonl,
};
pub use points::{Points, PointsError, PointsSum};
pub use reader::{JobReader, MAX_LINE_BYTES, RawItem, open_jobs, parse_line};
pub use reload::{
    OpenError, ReloadFailure, ReloadOutcome, ReloadStatus, RuleChange, RulesHandle, changes,
};
pub use rulediff::{
    Entity, FileChanges, Op, RuleSetChange, describe_version, diff_files, diff_formula_files,
    diff_rules, unified_diff,
};
pub use sandbox::{Limits, hardened_engine};
pub use schema::InputType;
pub use score::{Score, ScoreOptions, Status, Trace, score_record};
pub use tally::{GroupBy, GroupTotals, PartialTally, Tally};
pub use time::{parse_time, utc_date, utc_string};
pub use watcher::{DEBOUNCE, RulesWatcher, WatchError};
