//! The library's front door: load rules, score a job, score a ledger.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;

use crate::engine::model::{RuleFiles, RuleSet};
use crate::engine::points::Points;
use crate::engine::score::{JobInput, Score, ScoreOptions, Scorer, Status};
use crate::ledger::output::write_jsonl;
use crate::ledger::pipeline::run_ledger;
use crate::ledger::reader::JobReader;
use crate::rules::diagnostic::{Diagnostic, render_human};
use crate::rules::load::load;

/// A validated rule set, ready to score jobs. Cheap to clone; immutable (a changed rules
/// directory is a new `Rules`).
#[derive(Clone)]
pub struct Rules {
    set: Arc<RuleSet>,
    warnings: Arc<[Diagnostic]>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("origin", &self.set.origin.to_string())
            .field("hash", &self.set.hash)
            .finish()
    }
}

/// Why a rule set could not be loaded: the directory could not be read, or the rules are
/// invalid. `Display` renders every diagnostic, with file, line, code and help.
#[derive(Debug)]
pub struct RulesError {
    diagnostics: Vec<Diagnostic>,
    rendered: String,
}

impl RulesError {
    /// Every problem found (errors and warnings), as `jobpoints check` reports them.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}

impl std::error::Error for RulesError {}

impl Rules {
    /// Reads, compiles and validates the rule set in `dir`, with every check of
    /// `jobpoints check`. The error carries every diagnostic.
    ///
    /// ```
    /// let rules = jobpoints::Rules::load(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))?;
    /// assert_eq!(rules.hash().len(), 64);
    /// assert!(jobpoints::Rules::load("/no/such/dir").is_err());
    /// # Ok::<(), jobpoints::RulesError>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> Result<Rules, RulesError> {
        let files = RuleFiles::from_dir(dir.as_ref()).map_err(|e| RulesError {
            diagnostics: Vec::new(),
            rendered: e.to_string(),
        })?;
        Rules::from_files(files)
    }

    /// The rules built into the binary (the repository's `rules/` when it was built).
    pub fn builtin() -> Rules {
        Rules::from_files(RuleFiles::embedded()).expect("the built-in rules are valid")
    }

    fn from_files(files: RuleFiles) -> Result<Rules, RulesError> {
        let loaded = load(files);
        match loaded.ruleset {
            Some(set) => Ok(Rules {
                set: Arc::new(set),
                warnings: loaded.diagnostics.into(),
            }),
            None => {
                let f = &loaded.files;
                let rendered = render_human(&loaded.diagnostics, &|p| f.text(p).map(String::from));
                Err(RulesError {
                    diagnostics: loaded.diagnostics,
                    rendered,
                })
            }
        }
    }

    /// The SHA-256 of every rule file: every result names the rule set that priced it.
    pub fn hash(&self) -> &str {
        &self.set.hash
    }

    /// What `jobpoints check` warns about in these (valid) rules.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Scores one job given as JSON text. Never fails: a malformed job is an `invalid`
    /// result saying what is wrong. The job's `completed_at` picks the rule version (the
    /// latest when it has none).
    ///
    /// ```
    /// let rules = jobpoints::Rules::builtin();
    /// let score = rules.score_json(r#"{"model":"AnimagineXL","width":1024,"height":1024,"steps":20}"#);
    /// assert_eq!(score.rule(), Some("sdxl10@3"));
    /// let bad = rules.score_json(r#"{"model":"AnimagineXL","width":"wide"}"#);
    /// assert_eq!(bad.status(), jobpoints::Status::Invalid);
    /// assert_eq!(bad.field(), Some("width"));
    /// ```
    pub fn score_json(&self, job: &str) -> Score {
        self.score_with(job, ScoreOptions::default())
    }

    /// [`Rules::score_json`], with the rule version in force at `at` whatever the job says.
    ///
    /// ```
    /// let rules = jobpoints::Rules::builtin();
    /// let at = "2024-06-01T00:00:00Z".parse().unwrap();
    /// let score = rules.score_json_at(r#"{"model":"AnimagineXL","width":512,"height":512,"steps":20}"#, at);
    /// assert_eq!(score.points().to_string(), "1.800000");
    /// ```
    pub fn score_json_at(&self, job: &str, at: Timestamp) -> Score {
        self.score_with(
            job,
            ScoreOptions {
                at: Some(at),
                explain: false,
            },
        )
    }

    fn score_with(&self, job: &str, opts: ScoreOptions) -> Score {
        let scorer = Scorer {
            opts,
            name_pricing_time: opts.at.is_some(),
            ..Scorer::new(&self.set)
        };
        let job = JobInput::Line {
            line: 1,
            bytes: job.trim().as_bytes(),
        };
        scorer.score_owned(&mut scorer.context(), job)
    }

    /// Scores a job file of any size (JSONL, a JSON array, or one job) from `input` on
    /// `options.threads` threads, writing one JSONL result per job to `output`, in input order
    /// and in constant memory.
    ///
    /// ```
    /// let rules = jobpoints::Rules::builtin();
    /// let jobs = "{\"model\":\"BrainDance\",\"width\":512,\"height\":512,\"steps\":20}\n{\"broken\n";
    /// let mut out = Vec::new();
    /// let summary = rules.score_ledger(jobs.as_bytes(), &mut out, &jobpoints::LedgerOptions::new().threads(2))?;
    /// assert_eq!((summary.jobs(), summary.failed()), (2, 1));
    /// assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn score_ledger(
        &self,
        input: impl BufRead + Send,
        mut output: impl Write,
        options: &LedgerOptions,
    ) -> io::Result<LedgerSummary> {
        let scorer = Scorer {
            opts: ScoreOptions {
                at: options.at,
                explain: false,
            },
            name_pricing_time: options.at.is_some(),
            ..Scorer::new(&self.set)
        };
        let mut failed = 0;
        let jobs = run_ledger(
            JobReader::new(input),
            &scorer,
            options.threads,
            |s, chunk: &mut (Vec<u8>, u64)| {
                write_jsonl(&mut chunk.0, s);
                chunk.1 += u64::from(s.status.is_failure());
            },
            |(bytes, f)| {
                failed += f;
                output.write_all(&bytes)
            },
        )?;
        output.flush()?;
        Ok(LedgerSummary { jobs, failed })
    }
}

/// How [`Rules::score_ledger`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    threads: usize,
    at: Option<Timestamp>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions::new()
    }
}

impl LedgerOptions {
    /// One thread per core; each job priced at its own `completed_at`.
    pub fn new() -> Self {
        LedgerOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            at: None,
        }
    }

    /// Worker threads (at least 1). Results are identical for any count.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Price every job with the rule versions in force at `at`.
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = Some(at);
        self
    }
}

/// What [`Rules::score_ledger`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSummary {
    jobs: u64,
    failed: u64,
}

impl LedgerSummary {
    /// Jobs read, which is also the number of results written.
    pub fn jobs(&self) -> u64 {
        self.jobs
    }

    /// Jobs that were `invalid` or whose rule failed (`error`).
    pub fn failed(&self) -> u64 {
        self.failed
    }
}

impl Score {
    /// 1-based line where the job starts in its file.
    pub fn line(&self) -> u64 {
        self.line
    }
    /// The job's `id` (or `job_id`), as text.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    /// The model the job names.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// The job's `miner` (or `miner_id`).
    pub fn miner(&self) -> Option<&str> {
        self.miner.as_deref()
    }
    pub fn status(&self) -> Status {
        self.status
    }
    /// The point kind earned (`waifu`, `llama`, ...), when the model has a rule.
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
    /// The model's family.
    pub fn family(&self) -> Option<&str> {
        self.family.as_deref()
    }
    /// The rule version used, as `RULE@VERSION` (`sd15@1`).
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }
    /// The points earned: exact, 6 decimals; 0 unless the status is `ok`.
    pub fn points(&self) -> Points {
        self.points
    }
    /// SHA-256 of the rule set that priced the job.
    pub fn ruleset(&self) -> &str {
        &self.ruleset
    }
    /// The engine that made the result: `jobpoints VERSION (COMMIT)`.
    pub fn engine(&self) -> &str {
        &self.engine
    }
    /// Why the job earns nothing (`below_threshold`, `over_limit`, `no_rule`, `disabled`).
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    /// What is wrong (`invalid`, `error`).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    /// The offending field of an `invalid` job, when there is one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
    /// The job's `completed_at`, in UTC to the second.
    pub fn completed_at(&self) -> Option<&str> {
        self.completed_at.as_deref()
    }
    /// The time that picked the rule version, when it was not the job's `completed_at`
    /// (`--at`, or the time `serve` received the job).
    pub fn priced_at(&self) -> Option<&str> {
        self.priced_at.as_deref()
    }
}

impl Diagnostic {
    pub fn severity(&self) -> crate::Severity {
        self.severity
    }
    /// The stable code (`example-failed`, `toml-syntax`, ...).
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }
    /// A job that shows the problem, as a JSON line `eval` reads (the counterexample of a
    /// property `check` could not prove).
    pub fn job(&self) -> Option<&str> {
        self.job.as_deref()
    }
    /// The rule file, relative to the rules directory.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }
    /// 1-based line in `file`.
    pub fn line(&self) -> Option<usize> {
        self.line
    }
    /// 1-based column in `file`.
    pub fn column(&self) -> Option<usize> {
        self.column
    }
    /// Byte range in `file` of the text it is about.
    pub fn span(&self) -> Option<std::ops::Range<usize>> {
        self.span.clone()
    }
}
