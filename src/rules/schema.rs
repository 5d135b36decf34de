//! The TOML shapes of the files in `rules/`, as written by governance authors.
//!
//! Every table denies unknown fields so a typo (`multiplyer = 2`) is an error, not a silently
//! ignored line. Values that later checks point at are `Spanned` so diagnostics can name the
//! line and column.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// `rules/kinds.toml`: point kinds and job kinds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindsFile {
    #[serde(default)]
    pub points: IndexMap<String, Spanned<PointKindToml>>,
    #[serde(default)]
    pub jobs: IndexMap<String, Spanned<JobKindToml>>,
    /// Tokenizers that inputs may count a job's text with (`tokens_of`), by name.
    #[serde(default)]
    pub tokenizers: IndexMap<String, Spanned<TokenizerToml>>,
}

pub use crate::engine::tokens::{ChatTemplate, TokenizerFormat};

/// A tokenizer model file the rule set ships (`[tokenizers.NAME]`), pinned by its SHA-256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerToml {
    /// The model file's format: `"sentencepiece"`.
    pub format: Spanned<TokenizerFormat>,
    /// The model file, relative to the rules directory: `tokenizers/NAME.model`. Files there
    /// have their own size limit (4 MiB) and must each be declared by a tokenizer.
    pub file: Spanned<String>,
    /// SHA-256 of the file, 64 hex digits: a rule set whose file does not match is refused
    /// (`tokenizer-hash`).
    pub sha256: Spanned<String>,
    /// How a list of chat messages becomes the tokens the model processes (`"mistral-v1"`);
    /// needed by inputs that count a chat prompt (`tokens_of.chat`).
    pub chat_template: Option<Spanned<ChatTemplate>>,
    /// Prose for people: what the model is and where it comes from.
    #[allow(dead_code)] // read by people, not by the engine
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointKindToml {
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobKindToml {
    /// The point kind this job kind earns.
    pub points: Spanned<String>,
    pub description: Option<String>,
    pub inputs: IndexMap<String, Spanned<InputToml>>,
    /// Named rhai expressions over the inputs (and earlier derived values), in order.
    #[serde(default)]
    pub derived: IndexMap<String, Spanned<String>>,
}

pub use crate::engine::model::InputType;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputToml {
    #[serde(rename = "type", default = "default_input_type")]
    pub ty: InputType,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    /// JSON paths (dot-separated) a job may carry this input under, first match wins.
    /// Defaults to the input's own name.
    #[serde(default)]
    pub from: Vec<String>,
    pub description: Option<String>,
    /// The value a job without this input takes; a job without it is then valid.
    pub default: Option<Spanned<toml::Value>>,
    /// A job may leave the input out (with no default: it is absent, see rules/README.md).
    #[serde(default)]
    pub optional: bool,
    /// For a job that carries no value (no path of `from` is present): the number of tokens
    /// of the job's text, counted with a declared tokenizer. Integer inputs only.
    pub tokens_of: Option<Spanned<TokensOfToml>>,
}

/// `tokens_of = { tokenizer = "NAME", chat = [PATH, ...] }` or `{ tokenizer, text = [...] }`:
/// where a job's text is, and how it is counted. Paths are tried in order, the first present
/// one is counted; a path is dot-separated keys, with `*` for every element of an array and
/// `@json` for the JSON inside a string (`result.Text.@json.*.message.content`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensOfToml {
    /// A tokenizer declared under `[tokenizers]`.
    pub tokenizer: Spanned<String>,
    /// Paths to a list of chat messages (`{"role", "content"}`): the tokens of the prompt as
    /// the tokenizer's `chat_template` builds it.
    pub chat: Option<Spanned<Vec<Spanned<String>>>>,
    /// Paths to strings: the sum of their tokens, without BOS or EOS (`null` is no text).
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Prose for people; accepted, not used.
    #[allow(dead_code)]
    pub description: Option<String>,
    /// Per job kind: the smallest threshold every priced rule must set on each named value.
    #[serde(default)]
    pub floors: IndexMap<String, Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Per job kind: bounds on what any version may pay.
    #[serde(default)]
    pub ceilings: IndexMap<String, Spanned<CeilingsToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeilingsToml {
    /// No version of the kind may set a larger multiplier.
    pub max_multiplier: Option<Spanned<f64>>,
    /// No job of the kind may earn more points (proved on the input grid by `check`).
    pub max_points: Option<Spanned<f64>>,
}

/// `rules/catalog.toml`: the network's model names and their families.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Provenance for people; accepted, not used.
    #[allow(dead_code)]
    pub source: Option<String>,
    #[allow(dead_code)]
    pub notes: Option<String>,
    /// `Model = "family"`, or `Model = { family = "...", since = DATE, until = DATE }`; read
    /// by the loader, which names what is wrong with an entry.
    pub models: IndexMap<String, Spanned<toml::Value>>,
    /// Families deliberately left without a rule: family = "why". Their models get `no_rule`
    /// with that reason, and no rule file is expected for them.
    #[serde(default)]
    pub unpriced: IndexMap<String, Spanned<String>>,
}

/// Any other `*.toml` under `rules/`: one rule (a family's, or one model's) with versions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub rule: Spanned<RuleHeader>,
    #[serde(rename = "version", default)]
    pub versions: Vec<Spanned<VersionToml>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleHeader {
    /// Set for a family rule; for a model rule, the family the model belongs to.
    pub family: Option<Spanned<String>>,
    /// Set for a per-model rule, which overrides its family's rule for that one model.
    pub model: Option<Spanned<String>>,
    /// The job kind (`image`, `llm`, ...) the rule prices.
    pub kind: Spanned<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionToml {
    pub version: Spanned<i64>,
    /// A TOML date (`2024-04-01`), datetime, or a string holding one; UTC when no offset.
    pub effective_from: Spanned<toml::Value>,
    /// Where the numbers come from (a document, a benchmark, a governance vote).
    pub source: String,
    pub notes: Option<String>,
    /// Anything the version relies on that its source does not state.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Name of a shared formula in `rules/formulas/NAME.rhai`.
    pub formula: Option<Spanned<String>>,
    /// A `.rhai` file relative to this TOML file.
    pub formula_file: Option<Spanned<String>>,
    /// An inline rhai formula.
    pub expr: Option<Spanned<String>>,
    /// Points = formula × multiplier. Defaults to 1.
    pub multiplier: Option<Spanned<f64>>,
    /// Thresholds: a job whose value is below one earns 0 with status `below_threshold`.
    pub min: Option<Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Ceilings: a job whose value is above one earns 0 with status `over_limit`.
    pub max: Option<Spanned<IndexMap<String, Spanned<f64>>>>,
    /// Makes this version an explicit "no rule": jobs get status `no_rule` with this reason.
    pub no_rule: Option<Spanned<String>>,
    /// Disables this version: jobs get status `disabled`, 0 points and this reason.
    pub disabled: Option<Spanned<String>>,
    /// Example jobs (input values plus `points`, optionally `status`) that `check` verifies.
    #[serde(default)]
    pub examples: Vec<Spanned<IndexMap<String, Spanned<toml::Value>>>>,
}
