//! The validated, compiled rule set: kinds, rules, versions, formulas and the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use rhai::{AST, Engine};

pub use super::catalog::{Alias, CatalogEntry};
use super::points::Points;
use super::program::Program;
pub use super::value::Value;

/// A kind of reward point (`llama`, `waifu`, ...), declared in `kinds.toml`.
#[derive(Debug, Clone)]
pub struct PointKind {
    pub name: String,
    pub description: Option<String>,
}

/// The type of a job input. (`Serialize` lets the rule files' JSON Schema show its default.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    Int,
    Float,
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
    /// The value a job without this input takes (`default = VALUE`).
    pub default: Option<Value>,
    /// A job may leave it out: `optional = true`, or a `default`. With no default it is then
    /// absent ([`Value::ABSENT`]): thresholds and ceilings on it do not apply, and formulas
    /// cannot read it (they do not compile with it).
    pub optional: bool,
    /// Where it is declared in kinds.toml.
    pub place: Option<Place>,
    /// Count it from the job's text (`tokens_of`): the text, when the job carries it,
    /// outranks a value the job claims at a `from` path.
    pub tokens_of: Option<super::tokens::TokensOf>,
    /// When the job carries neither a value nor its text: the condition under which that is
    /// expected, and the job is `unmeasured` rather than `invalid`.
    pub unmeasured: Option<Unmeasured>,
}

/// `unmeasured = { when = PATH, reason = "..." }` of an input: a job that carries neither the
/// input nor its text, and holds `true` at `when`, gets status `unmeasured` with `reason`
/// (e.g. a streamed LLM job, whose answer is not in its record).
#[derive(Debug, Clone, PartialEq)]
pub struct Unmeasured {
    /// The path's keys.
    pub when: Vec<String>,
    pub reason: String,
}

impl InputSpec {
    /// Whether a job without this input is invalid.
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.optional
    }

    /// Whether a job may leave it out with nothing in its place (optional, no default).
    pub fn may_be_absent(&self) -> bool {
        self.default.is_none() && self.optional
    }
}

/// A named value computed from the inputs before thresholds and formula.
#[derive(Debug, Clone)]
pub struct DerivedSpec {
    pub name: String,
    pub expr: String,
    pub ast: AST,
    /// The same expression compiled for speed, when it is simple arithmetic.
    pub compiled: Option<Program>,
}

/// A kind of job (`image`, `llm`, ...): its inputs, derived values and point kind.
#[derive(Debug, Clone)]
pub struct JobKind {
    pub name: String,
    pub points: String,
    pub description: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub derived: Vec<DerivedSpec>,
    /// What the workers actually run, over time (`[[jobs.KIND.execution_limits]]`), sorted by
    /// `effective_from`. Before the first entry a job runs as requested.
    pub execution_limits: Vec<ExecutionLimits>,
}

/// The limits a worker applied to the jobs of a kind from `effective_from` until the next
/// entry: each limited input is rounded down to a multiple and capped, and the job is priced
/// as it ran. The whole set in force, not a change to the one before.
#[derive(Debug, Clone)]
pub struct ExecutionLimits {
    pub effective_from: Timestamp,
    pub source: String,
    pub notes: Option<String>,
    pub assumptions: Vec<String>,
    pub inputs: Vec<InputLimit>,
    /// Where the `[[jobs.KIND.execution_limits]]` entry is written in kinds.toml.
    pub place: Place,
}

/// How a worker clamps one input: `executed = min(value - value % multiple_of, max)`, as the
/// network's miner does (heurist-network/miner-release, `execute_model`).
#[derive(Debug, Clone, PartialEq)]
pub struct InputLimit {
    pub name: String,
    /// Index of the input among the job kind's inputs.
    pub slot: usize,
    /// An integer input is rounded down to a multiple of this (≥ 1).
    pub multiple_of: Option<i64>,
    /// Then capped at this.
    pub max: Option<f64>,
}

impl JobKind {
    /// The execution limits in force at `at` (the latest when `None`), if any.
    pub fn limits_at(&self, at: Option<Timestamp>) -> Option<&ExecutionLimits> {
        match at {
            None => self.execution_limits.last(),
            Some(t) => {
                let n = (self.execution_limits).partition_point(|l| l.effective_from <= t);
                n.checked_sub(1).map(|i| &self.execution_limits[i])
            }
        }
    }

    /// When the entry after `l` takes effect, if any.
    pub fn limits_until(&self, l: &ExecutionLimits) -> Option<Timestamp> {
        (self.execution_limits.iter())
            .map(|n| n.effective_from)
            .find(|t| *t > l.effective_from)
    }

    /// Names formulas and derived values may read, in slot order: inputs then derived
    /// values, with an input that may be absent replaced by a name no expression can spell,
    /// so that reading it is a compile error while every other slot keeps its index.
    pub fn readable_names(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .map(|i| {
                if i.may_be_absent() {
                    UNREADABLE
                } else {
                    i.name.as_str()
                }
            })
            .chain(self.derived.iter().map(|d| d.name.as_str()))
            .collect()
    }

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

/// Stands for an input that may be absent among the names an expression is compiled with:
/// not an identifier, so no expression can read it.
pub const UNREADABLE: &str = "<absent>";

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
    pub compiled: Option<Program>,
}

/// Where something is in a rule file, found when loading so that later checks can point at
/// it without scanning the file again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// 1-based line and column of the start of `span`.
    pub line: usize,
    pub column: usize,
    /// Byte range in the file.
    pub span: std::ops::Range<usize>,
}

/// A threshold: a job whose `name` is below `min` earns nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub name: String,
    pub min: f64,
    /// Index of `name` among the job kind's inputs then derived values.
    pub slot: usize,
    /// Where it is written (`None` for policy floors).
    pub place: Option<Place>,
}

/// A ceiling: a job whose `name` is above `max` earns nothing (`over_limit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Ceiling {
    pub name: String,
    pub max: f64,
    /// Index of `name` among the job kind's inputs then derived values.
    pub slot: usize,
    pub place: Option<Place>,
}

/// What a version does with a job.
#[derive(Debug, Clone)]
pub enum Pricing {
    /// An explicit decision not to price: jobs get `no_rule` with this reason.
    NoRule { reason: String },
    /// Priced at zero on purpose (`disabled = "why"`): jobs get `disabled` with this reason.
    Disabled { reason: String },
    Priced {
        formula: Arc<Formula>,
        multiplier: f64,
        thresholds: Vec<Threshold>,
        ceilings: Vec<Ceiling>,
    },
}

impl Pricing {
    /// The reason of a version that does not price (`no_rule` or `disabled`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Pricing::NoRule { reason } | Pricing::Disabled { reason } => Some(reason),
            Pricing::Priced { .. } => None,
        }
    }
}

/// An example job inside a rule version, checked by `jobpoints check`.
#[derive(Debug, Clone)]
pub struct Example {
    /// Every input of the job kind: given, its default, or absent.
    pub inputs: Vec<(String, Value)>,
    pub points: Points,
    /// The status it expects (`ok` unless it says otherwise).
    pub status: super::status::Status,
    /// The time it is priced at (`at = ...`), which picks the execution limits it runs
    /// under; `None`: its version's `effective_from`.
    pub at: Option<Timestamp>,
    /// Where the example is written.
    pub place: Place,
}

impl Example {
    /// The time the example is priced at: its own `at`, else its version's start.
    pub fn priced_at(&self, version: &RuleVersion) -> Timestamp {
        self.at.unwrap_or(version.effective_from)
    }
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
    /// Where the formula is named (`formula`, `formula_file` or `expr`), for diagnostics
    /// about what it computes.
    pub formula_place: Option<Place>,
    /// Where `multiplier` is written.
    pub multiplier_place: Option<Place>,
    /// Where the `min` table is written.
    pub min_place: Option<Place>,
    /// 1-based line of the `[[version]]` table in the rule file.
    pub line: usize,
    /// Byte range of that line (the `[[version]]` header), where its diagnostics point.
    pub header: std::ops::Range<usize>,
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

/// Bounds of `policy.toml` on what any version of a job kind may pay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyCeilings {
    /// No version's multiplier may be above it.
    pub max_multiplier: Option<f64>,
    /// No job may earn more points (checked on the grid of declared input ranges).
    pub max_points: Option<f64>,
}

/// Where a rule set came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesOrigin {
    Directory(std::path::PathBuf),
    Embedded,
    /// `path` (e.g. `rules`) at git revision `rev`, as `jobpoints diff --base REV` reads it.
    Git {
        rev: String,
        path: String,
    },
    /// Files sent in a request (the playground's JSON API), shown by this name. Never read
    /// from or written to disk.
    Sent(String),
}

impl std::fmt::Display for RulesOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RulesOrigin::Directory(p) => write!(f, "{}", p.display()),
            RulesOrigin::Embedded => f.write_str("<built-in rules>"),
            RulesOrigin::Git { rev, path } => write!(f, "{path}/ at {rev}"),
            RulesOrigin::Sent(name) => f.write_str(name),
        }
    }
}

/// The `.toml` and `.rhai` files of a rule set, keyed by path relative to the rules root
/// with `/` separators. (Reading them from a directory, the binary or git is `crate::rules`'
/// business; this is only the data.)
#[derive(Debug, Clone)]
pub struct RuleFiles {
    pub origin: RulesOrigin,
    pub files: BTreeMap<String, Vec<u8>>,
    /// Entries that look like rule files but were not read, and why (a symlink out of the
    /// directory, a FIFO, a device, a loop, a file over the size limit). Their bytes are never
    /// read, so nothing of them can reach a diagnostic or a report; each is an error.
    pub refused: BTreeMap<String, Refusal>,
}

/// Why an entry of a rules directory was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its size (from metadata) is over the limit for rule files.
    TooLarge { bytes: u64, limit: u64 },
    /// Anything else that is not a regular file inside the directory: the message says what.
    NotConfined(String),
}

/// [`RuleFiles::hash`] fed a file at a time, so a rule set can be hashed without holding its
/// files (the git history's trees are hashed as their blobs stream by). Files in path order,
/// each [`file`](Self::file) then exactly that many [`bytes`](Self::bytes); then the refused
/// entries in path order.
#[derive(Default)]
pub struct RuleFilesHasher(sha2::Sha256);

impl RuleFilesHasher {
    /// Starts a file of `len` bytes at `path`.
    pub fn file(&mut self, path: &str, len: u64) {
        use sha2::Digest;
        self.0.update((path.len() as u64).to_le_bytes());
        self.0.update(path.as_bytes());
        self.0.update(len.to_le_bytes());
    }

    /// Some of the current file's bytes.
    pub fn bytes(&mut self, chunk: &[u8]) {
        use sha2::Digest;
        self.0.update(chunk);
    }

    /// An entry that was not read: by its path and reason, never its content.
    pub fn refused(&mut self, path: &str, why: &Refusal) {
        use sha2::Digest;
        let why = format!("{why:?}");
        self.0.update(b"refused");
        self.0.update((path.len() as u64).to_le_bytes());
        self.0.update(path.as_bytes());
        self.0.update((why.len() as u64).to_le_bytes());
        self.0.update(why.as_bytes());
    }

    pub fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}

impl RuleFiles {
    /// Files from memory (tests, the embedded copy, git), with nothing refused.
    pub fn new(origin: RulesOrigin, files: BTreeMap<String, Vec<u8>>) -> Self {
        RuleFiles {
            origin,
            files,
            refused: BTreeMap::new(),
        }
    }

    /// SHA-256 over every file's relative path and bytes, in path order: two rule sets with
    /// the same hash score every job the same. A refused entry counts by its path and reason
    /// (never its content), so refusing a different thing is a different hash.
    pub fn hash(&self) -> String {
        let mut h = RuleFilesHasher::default();
        for (path, bytes) in &self.files {
            h.file(path, bytes.len() as u64);
            h.bytes(bytes);
        }
        for (path, why) in &self.refused {
            h.refused(path, why);
        }
        h.finish()
    }

    /// The text of a file, if it exists and is UTF-8.
    pub fn text(&self, rel: &str) -> Option<&str> {
        self.files
            .get(rel)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// A validated rule set, ready to score jobs. Immutable: a reload builds a new one.
pub struct RuleSet {
    pub origin: RulesOrigin,
    /// SHA-256 of every rule file; carried by every result.
    pub hash: Arc<str>,
    pub point_kinds: IndexMap<String, PointKind>,
    pub job_kinds: IndexMap<String, JobKind>,
    /// Per job kind, the floors of `policy.toml`.
    pub floors: IndexMap<String, Vec<Threshold>>,
    /// Per job kind, the ceilings of `policy.toml`.
    pub ceilings: IndexMap<String, PolicyCeilings>,
    /// Model name (NFC) → its catalog windows.
    pub catalog: BTreeMap<String, CatalogEntry>,
    /// Alias name (NFC) → its windows as an alias, in time order, never overlapping.
    pub aliases: BTreeMap<String, Vec<Alias>>,
    /// Families the catalog leaves unpriced on purpose (`[unpriced]`), with the reason their
    /// models get `no_rule`.
    pub unpriced: BTreeMap<String, String>,
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
    /// The text of one of the rule set's files ("" if absent).
    pub fn files_text(&self, rel: &str) -> &str {
        self.files.text(rel).unwrap_or("")
    }

    /// Every rule, family rules first, then model rules.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.family_rules.values().chain(self.model_rules.values())
    }

    /// The catalog entry of `model`, whose name is compared in NFC (as the catalog stores
    /// names), so `model` written decomposed finds it too.
    pub fn catalog_entry(&self, model: &str) -> Option<&CatalogEntry> {
        self.catalog.get(nfc(model).as_ref())
    }

    /// The alias windows of `name` (NFC-compared), if it is an alias at some time.
    pub fn aliases_of(&self, name: &str) -> &[Alias] {
        self.aliases
            .get(nfc(name).as_ref())
            .map_or(&[], Vec::as_slice)
    }
}

/// `name` in Unicode NFC. ASCII (every real model name) is returned as it is, at no cost.
pub fn nfc(name: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if name.is_ascii() || is_nfc_quick(name.chars()) == IsNormalized::Yes {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(name.nfc().collect())
    }
}
