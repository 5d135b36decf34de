//! The TOML shapes of the files in `rules/`, as written by governance authors.
//!
//! Every table denies unknown fields so a typo (`multiplyer = 2`) is an error, not a silently
//! ignored line. Values that later checks point at are `Spanned` so diagnostics can name the
//! line and column.
//!
//! The same types give the JSON Schemas editors validate against (`jobpoints schema`,
//! [`json_schema`](crate::rules::json_schema)): each doc comment on a key is its description
//! there, so write it for rule authors. `#[schemars(with = ...)]` names the shape a `Spanned`
//! or hand-read `toml::Value` has in the file.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::rules::json_schema::{
    CatalogEntryShape, ExampleShape, FloorsShape, TomlDate, one_pricing,
};

/// `rules/kinds.toml`: point kinds, job kinds, their inputs and derived values.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jobpoints kinds.toml")]
pub struct KindsFile {
    /// The kinds of points jobs earn (`[points.waifu]`); points of different kinds are never
    /// added together.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, PointKindToml>", extend("default" = {}))]
    pub points: IndexMap<String, Spanned<PointKindToml>>,
    /// The kinds of jobs (`[jobs.image]`): the point kind each earns, its inputs and derived
    /// values.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, JobKindToml>", extend("default" = {}))]
    pub jobs: IndexMap<String, Spanned<JobKindToml>>,
    /// Tokenizers that inputs may count a job's text with (`tokens_of`), by name.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, TokenizerToml>", extend("default" = {}))]
    pub tokenizers: IndexMap<String, Spanned<TokenizerToml>>,
}

pub use crate::engine::tokens::{ChatTemplate, TokenizerFormat};

/// A tokenizer model file the rule set ships (`[tokenizers.NAME]`), pinned by its SHA-256.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizerToml {
    /// The model file's format: `"sentencepiece"`.
    #[schemars(with = "TokenizerFormat")]
    pub format: Spanned<TokenizerFormat>,
    /// The model file, relative to the rules directory: `tokenizers/NAME.model`. Files there
    /// have their own size limit (4 MiB) and must each be declared by a tokenizer.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// SHA-256 of the file, 64 hex digits: a rule set whose file does not match is refused
    /// (`tokenizer-hash`).
    #[schemars(with = "String", regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Spanned<String>,
    /// How a list of chat messages becomes the tokens the model processes (`"mistral-v1"`);
    /// needed by inputs that count a chat prompt (`tokens_of.chat`).
    #[schemars(with = "Option<ChatTemplate>")]
    pub chat_template: Option<Spanned<ChatTemplate>>,
    /// Prose for people: what the model is and where it comes from.
    #[allow(dead_code)] // read by people, not by the engine
    pub description: Option<String>,
}

/// A point kind.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointKindToml {
    /// What one point of this kind is, for people.
    pub description: Option<String>,
}

/// A job kind.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobKindToml {
    /// The point kind this job kind earns.
    #[schemars(with = "String")]
    pub points: Spanned<String>,
    /// What these jobs are, for people.
    pub description: Option<String>,
    /// The values a job of this kind carries (`[jobs.image.inputs.width]`): type, bounds and
    /// where the job has them. A job without a required input, or with one of the wrong type
    /// or out of bounds, is `invalid`.
    #[schemars(with = "IndexMap<String, InputToml>")]
    pub inputs: IndexMap<String, Spanned<InputToml>>,
    /// Named rhai expressions over the inputs (and earlier derived values), in order.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub derived: IndexMap<String, Spanned<String>>,
    /// What the network's workers actually ran, over time (`[[jobs.image.execution_limits]]`),
    /// oldest first: from each entry's `effective_from` until the next, a job's limited inputs
    /// are rounded down and capped as the worker did, and the job is priced as it ran. Before
    /// the first entry jobs run as requested.
    #[serde(default)]
    #[schemars(with = "Vec<ExecutionLimitsToml>", extend("default" = []))]
    pub execution_limits: Vec<Spanned<ExecutionLimitsToml>>,
}

/// One entry of a job kind's execution limits: the whole set a worker applied from
/// `effective_from` on (not a change to the entry before), with its source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionLimitsToml {
    /// When the worker started applying these limits: a TOML date (`2024-09-16`), datetime
    /// (`2024-09-16T01:49:10Z`), or a string holding one; UTC when no offset. A job priced at
    /// or after it (its `completed_at`, `--at`) runs under them; an undated job under the
    /// latest entry.
    #[schemars(with = "TomlDate")]
    pub effective_from: Spanned<toml::Value>,
    /// Where the limits come from (the worker's code or configuration, a commit).
    pub source: String,
    /// Anything a reader should know; shown by `eval --explain`.
    pub notes: Option<String>,
    /// Anything the entry relies on that its source does not state (shown by `--explain`).
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Per input (`inputs.width = { multiple_of = 8, max = 1024 }`): how the worker clamped
    /// it. An input not listed runs as requested.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, InputLimitToml>", extend("default" = {}))]
    pub inputs: IndexMap<String, Spanned<InputLimitToml>>,
}

/// How a worker clamps one input: `executed = min(value - value % multiple_of, max)`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputLimitToml {
    /// Round an integer input down to a multiple of this (an integer ≥ 1), first.
    #[schemars(with = "Option<i64>", range(min = 1))]
    pub multiple_of: Option<Spanned<toml::Value>>,
    /// Then cap it at this (an integer for an integer input).
    #[schemars(with = "Option<f64>")]
    pub max: Option<Spanned<f64>>,
}

pub use crate::engine::model::InputType;

/// An input of a job kind.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputToml {
    /// `int` or `float`: an `int` input takes only whole numbers.
    #[serde(rename = "type", default = "default_input_type")]
    pub ty: InputType,
    /// The smallest value a job may give (inclusive).
    #[schemars(with = "Option<f64>")]
    pub min: Option<Spanned<f64>>,
    /// The largest value a job may give (inclusive).
    #[schemars(with = "Option<f64>")]
    pub max: Option<Spanned<f64>>,
    /// JSON paths (dot-separated) a job may carry this input under, first match wins.
    /// Defaults to the input's own name.
    #[serde(default)]
    pub from: Vec<String>,
    /// What the input is, for people.
    pub description: Option<String>,
    /// The value a job without this input (or with `null` for it) takes; a job without it is
    /// then valid. A number of the input's type, within its bounds.
    #[schemars(with = "Option<f64>")]
    pub default: Option<Spanned<toml::Value>>,
    /// A job may leave the input out (with no default: it is absent, see rules/README.md).
    #[serde(default)]
    pub optional: bool,
    /// For a job that carries no value (no path of `from` is present): the number of tokens
    /// of the job's text, counted with a declared tokenizer. Integer inputs only.
    #[schemars(with = "Option<TokensOfToml>")]
    pub tokens_of: Option<Spanned<TokensOfToml>>,
}

/// `tokens_of = { tokenizer = "NAME", chat = [PATH, ...] }` or `{ tokenizer, text = [...] }`:
/// where a job's text is, and how it is counted. Paths are tried in order, the first present
/// one is counted; a path is dot-separated keys, with `*` for every element of an array and
/// `@json` for the JSON inside a string (`result.Text.@json.*.message.content`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokensOfToml {
    /// A tokenizer declared under `[tokenizers]`.
    #[schemars(with = "String")]
    pub tokenizer: Spanned<String>,
    /// Paths to a list of chat messages (`{"role", "content"}`): the tokens of the prompt as
    /// the tokenizer's `chat_template` builds it.
    #[schemars(with = "Option<Vec<String>>")]
    pub chat: Option<Spanned<Vec<Spanned<String>>>>,
    /// Paths to strings: the sum of their tokens, without BOS or EOS (`null` is no text).
    #[schemars(with = "Option<Vec<String>>")]
    pub text: Option<Spanned<Vec<Spanned<String>>>>,
    /// What the count assumes (which text, BOS/EOS), written down: `--explain` shows it.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Where the counting rule comes from.
    pub source: Option<String>,
}

fn default_input_type() -> InputType {
    InputType::Int
}

/// `rules/policy.toml`: protocol invariants no rule may undercut.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jobpoints policy.toml")]
pub struct PolicyFile {
    /// Prose for people; accepted, not used.
    #[allow(dead_code)]
    pub description: Option<String>,
    /// Per job kind: the smallest threshold every priced rule must set on each named value.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, FloorsShape>")]
    pub floors: IndexMap<String, Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Per job kind: bounds on what any version may pay.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, CeilingsToml>", extend("default" = {}))]
    pub ceilings: IndexMap<String, Spanned<CeilingsToml>>,
}

/// Bounds on what any version of a job kind may pay.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CeilingsToml {
    /// No version of the kind may set a larger multiplier.
    #[schemars(with = "Option<f64>")]
    pub max_multiplier: Option<Spanned<f64>>,
    /// No job of the kind may earn more points (proved on the input grid by `check`).
    #[schemars(with = "Option<f64>")]
    pub max_points: Option<Spanned<f64>>,
}

/// `rules/catalog.toml`: the network's model names and their families.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jobpoints catalog.toml")]
pub struct CatalogFile {
    /// Provenance for people; accepted, not used.
    #[allow(dead_code)]
    pub source: Option<String>,
    /// Anything a reader should know, for people; accepted, not used.
    #[allow(dead_code)]
    pub notes: Option<String>,
    /// `Model = "family"`, or `Model = { family = "...", since = DATE, until = DATE }`; read
    /// by the loader, which names what is wrong with an entry.
    #[schemars(with = "IndexMap<String, CatalogEntryShape>")]
    pub models: IndexMap<String, Spanned<toml::Value>>,
    /// Families deliberately left without a rule: family = "why". Their models get `no_rule`
    /// with that reason, and no rule file is expected for them.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub unpriced: IndexMap<String, Spanned<String>>,
}

/// Any other `*.toml` under `rules/`: one rule (a family's, or one model's) with versions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "jobpoints rule file (families/*.toml, models/*.toml)")]
pub struct RuleFile {
    /// Whose rule this is and which job kind it prices.
    #[schemars(with = "RuleHeader")]
    pub rule: Spanned<RuleHeader>,
    /// The rule's versions (`[[version]]`), in order: increasing numbers and dates, never
    /// reused. A job is priced by the version in force at its `completed_at`.
    #[serde(rename = "version", default)]
    #[schemars(with = "Vec<VersionToml>", extend("default" = []))]
    pub versions: Vec<Spanned<VersionToml>>,
}

/// The `[rule]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleHeader {
    /// Set for a family rule; for a model rule, the family the model belongs to.
    #[schemars(with = "Option<String>", required)]
    pub family: Option<Spanned<String>>,
    /// Set for a per-model rule, which overrides its family's rule for that one model.
    #[schemars(with = "Option<String>")]
    pub model: Option<Spanned<String>>,
    /// The job kind (`image`, `llm`, ...) the rule prices.
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    /// What the rule prices, for people.
    pub description: Option<String>,
}

/// A `[[version]]` of a rule. It gives exactly one of `formula`, `formula_file`, `expr` (it
/// prices), `no_rule` or `disabled` (it does not, and then gives no `multiplier`, `min` or
/// `max`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = one_pricing)]
pub struct VersionToml {
    /// The version's number: increasing integers, never reused.
    #[schemars(with = "i64")]
    pub version: Spanned<i64>,
    /// A TOML date (`2024-04-01`), datetime, or a string holding one; UTC when no offset.
    #[schemars(with = "TomlDate")]
    pub effective_from: Spanned<toml::Value>,
    /// Where the numbers come from (a document, a benchmark, a governance vote).
    pub source: String,
    /// Anything a reader should know; shown by `eval --explain` and `models`.
    pub notes: Option<String>,
    /// Anything the version relies on that its source does not state.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Name of a shared formula in `rules/formulas/NAME.rhai`.
    #[schemars(with = "Option<String>")]
    pub formula: Option<Spanned<String>>,
    /// A `.rhai` file relative to this TOML file.
    #[schemars(with = "Option<String>")]
    pub formula_file: Option<Spanned<String>>,
    /// An inline rhai formula.
    #[schemars(with = "Option<String>")]
    pub expr: Option<Spanned<String>>,
    /// Points = formula × multiplier: a finite number ≥ 0, at most `max_multiplier` of
    /// policy.toml. Defaults to 1.
    #[schemars(with = "Option<f64>", range(min = 0), extend("default" = 1))]
    pub multiplier: Option<Spanned<f64>>,
    /// Thresholds: a job whose value is below one earns 0 with status `below_threshold`.
    #[schemars(with = "Option<IndexMap<String, f64>>")]
    pub min: Option<Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Ceilings: a job whose value is above one earns 0 with status `over_limit`.
    #[schemars(with = "Option<IndexMap<String, f64>>")]
    pub max: Option<Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Makes this version an explicit "no rule": jobs get status `no_rule` with this reason.
    #[schemars(with = "Option<String>")]
    pub no_rule: Option<Spanned<String>>,
    /// Disables this version: jobs get status `disabled`, 0 points and this reason.
    #[schemars(with = "Option<String>")]
    pub disabled: Option<Spanned<String>>,
    /// Example jobs (input values plus `points`, optionally `status`) that `check` verifies.
    #[serde(default)]
    #[schemars(with = "Vec<ExampleShape>")]
    pub examples: Vec<Spanned<IndexMap<String, Spanned<toml::Value>>>>,
}
