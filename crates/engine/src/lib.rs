//! jobpoints: a rules engine that turns completed AI compute jobs into reward points.
//!
//! Rules are data: TOML files with short rhai formulas in a `rules/` directory, loaded and
//! validated as a whole into [`Rules`], which score jobs into [`Score`]s with exact
//! 6-decimal [`Points`].
//!
//! ```
//! let rules = jobpoints::Rules::builtin(); // the rules compiled into the binary
//! let score = rules.score_json(
//!     r#"{"model":"BrainDance","width":512,"height":512,"steps":20,"completed_at":"2024-05-15T12:00:00Z"}"#);
//! assert_eq!(score.status().to_string(), "ok");
//! assert_eq!(score.points().to_string(), "1.000000");
//! assert_eq!(score.rule(), Some("sd15@1"));
//! println!("{}", rules.hash());
//! ```
//!
//! The command line (`jobpoints eval`, `check`, `diff`, `serve`, ...) is a thin layer over the
//! same engine. Everything under [`internals`] exists for the project's own benchmarks, fuzz
//! targets and tests, and may change in any release.

#![forbid(unsafe_code)]

// The manual's Rust examples (docs/library.md, "Use as a library") are compiled and run as
// doctests.
#[doc = include_str!("../../../docs/library.md")]
#[cfg(doctest)]
pub struct LibraryChapterDoctests;

mod api;

// The version stamp's logic lives beside build.rs, which uses it; its tests run here.
#[cfg(test)]
#[path = "../build/stamp.rs"]
mod build_stamp;

// The layers, bottom up (engine < rules < ledger < review, audit, live). Public for the
// `jobpoints` command line, which is built on them, but not yet a curated, documented
// interface: hidden from the docs, and they may change in any release.
#[doc(hidden)]
pub mod audit;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod ledger;
#[doc(hidden)]
pub mod live;
#[doc(hidden)]
pub mod review;
#[doc(hidden)]
pub mod rules;

pub use api::{LedgerOptions, LedgerSummary, Rules, RulesError};
pub use engine::points::Points;
pub use engine::score::{Score, Status};
pub use rules::diagnostic::{Diagnostic, Severity};

/// The engine's inner workings that the project's benchmarks, fuzz targets and tests use (and
/// nothing else: a name none of them uses is not here). Not a stable interface.
#[doc(hidden)]
pub mod internals {
    pub use crate::engine::formula::{EvalContext, Observed, Outcome, Program, evaluate};
    pub use crate::engine::identity::{ENGINE, engine_verbatim};
    pub use crate::engine::job::borrowed::{BorrowedJob, BorrowedValue, Fields};
    pub use crate::engine::job::strict::{JobRecord, MAX_LINE_BYTES, parse_line};
    pub use crate::engine::model::{
        Formula, JobKind, Pricing, RuleFiles, RuleSet, RuleVersion, RulesOrigin, Value,
    };
    pub use crate::engine::points::PointsSum;
    pub use crate::engine::resolve::Resolution;
    pub use crate::engine::score::{
        JobInput, SchemaVersion, ScoreContext, ScoreOptions, ScoreRef, Scorer, parse_job,
    };
    pub use crate::engine::time::{parse_time, parse_time_exact, utc_date, utc_string};
    pub use crate::engine::tokens::{
        MAX_COUNTED_TEXT_BYTES, Message, PromptTemplate, Role, Tokenizer,
    };
    pub use crate::ledger::formats::{InputFormat, open_ledger};
    pub use crate::ledger::output::{BATCH_OUTPUT_BYTES, write_jsonl};
    pub use crate::ledger::pipeline::{JobScorer, run_ledger};
    pub use crate::ledger::reader::JobReader;
    pub use crate::ledger::synth;
    pub use crate::ledger::tally::{GroupBy, PartialTally, Tally, TallyFormat};
    pub use crate::live::handle::{ReloadOutcome, RulesHandle};
    #[cfg(feature = "watch")]
    pub use crate::live::watcher::{DEBOUNCE, QUIET, RulesWatcher};
    pub use crate::review::changes::{Entity, Op, diff_rules};
    pub use crate::rules::diagnostic::render_human;
    pub use crate::rules::files::MAX_RULE_FILE_BYTES;
    pub use crate::rules::load::{Loaded, load};
    pub use crate::rules::validate::with_check_budget;
}
