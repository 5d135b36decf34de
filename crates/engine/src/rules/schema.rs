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

use crate::rules::shapes::{
    AliasEntryShape, CatalogEntryShape, CatalogVersionShape, DeclinedEntryShape, ExampleShape,
    FloorsShape, TomlDate, one_pricing,
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
    /// Templates a prompt may have been written into one string with (`[prompt_templates.NAME]`),
    /// read back into its messages by the `@template` step of a text path: the first, in this
    /// order, that reads the whole string.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, PromptTemplateToml>", extend("default" = {}))]
    pub prompt_templates: IndexMap<String, Spanned<PromptTemplateToml>>,
}

/// A prompt template: the markers its writer put around each message of a conversation.
/// A message of a role is `before` + content + `after`; its content ends at the first place
/// one of its `after` markers starts.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplateToml {
    /// Where the markers come from: the code that wrote such prompts, with its commit.
    pub source: String,
    /// Prose for people.
    #[allow(dead_code)] // read by people, not by the engine
    pub description: Option<String>,
    /// Markers written between messages that belong to none (a BOS, an extra EOS): skipped.
    #[serde(default)]
    pub between: Vec<String>,
    /// How a system message is written.
    #[schemars(with = "Option<RoleMarksToml>")]
    pub system: Option<Spanned<RoleMarksToml>>,
    /// How a user message is written.
    #[schemars(with = "Option<RoleMarksToml>")]
    pub user: Option<Spanned<RoleMarksToml>>,
    /// How an assistant message is written.
    #[schemars(with = "Option<RoleMarksToml>")]
    pub assistant: Option<Spanned<RoleMarksToml>>,
}

/// How one role's messages are written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleMarksToml {
    /// Written before the content (may be empty for one role: the role of a message that
    /// starts where no other role's `before` does).
    pub before: String,
    /// Written after the content: a marker, or a list of them (the content ends at the first
    /// one found).
    pub after: MarkersToml,
}

/// One marker, or several.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "a marker (a string) or a list of markers")]
pub enum MarkersToml {
    One(String),
    Many(Vec<String>),
}

impl MarkersToml {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            MarkersToml::One(m) => vec![m],
            MarkersToml::Many(ms) => ms,
        }
    }
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
    /// The number of tokens of the job's text, counted with a declared tokenizer. When the
    /// job carries the text, its count is the input's value, whatever the job claims at a
    /// `from` path; a claim is used only when there is no text. Integer inputs only.
    #[schemars(with = "Option<TokensOfToml>")]
    pub tokens_of: Option<Spanned<TokensOfToml>>,
    /// When a job carries neither the input nor its text for a known reason: the job is
    /// `unmeasured` (earns 0, says why) instead of `invalid`.
    #[schemars(with = "Option<UnmeasuredToml>")]
    pub unmeasured: Option<Spanned<UnmeasuredToml>>,
}

/// `unmeasured = { when = "PATH", reason = "..." }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmeasuredToml {
    /// A JSON path (dot-separated) that holds `true` in such jobs (`model_input.LLM.use_stream`).
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// Why such a job is not measured: the result's `reason`.
    pub reason: String,
}

/// `tokens_of = { tokenizer = "NAME", chat = [PATH, ...] }` or `{ tokenizer, text = [...] }`:
/// where a job's text is, and how it is counted. Paths are tried in order, the first that reads
/// is counted; a path is dot-separated keys, with `*` for every element of an array, `@json`
/// for the JSON inside a string and `@template` for a prompt written with one of the
/// `[prompt_templates]` (`result.Text.@json.*.message`). A path whose string is not in the form
/// of its `@json` or `@template` step is passed over for the next one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokensOfToml {
    /// A tokenizer declared under `[tokenizers]`.
    #[schemars(with = "String")]
    pub tokenizer: Spanned<String>,
    /// Paths to a list of chat messages (`{"role", "content"}`): the tokens of the prompt as
    /// the tokenizer's `chat_template` builds it.
    #[schemars(with = "Option<Vec<PathToml>>")]
    pub chat: Option<Spanned<Vec<Spanned<PathToml>>>>,
    /// Paths to strings (`null` is no text) or answer messages (`{"content", "tool_calls"}`):
    /// the sum of their tokens, without BOS or EOS.
    #[schemars(with = "Option<Vec<PathToml>>")]
    pub text: Option<Spanned<Vec<Spanned<PathToml>>>>,
    /// With `chat`: paths to the prompt's tool definitions (a list), counted with it as their
    /// JSON text; the first present one is counted.
    #[schemars(with = "Option<Vec<String>>")]
    pub tools: Option<Spanned<Vec<Spanned<String>>>>,
    /// When a count the job claims at a `from` path is reported as disagreeing with its text
    /// (`disputed_claim`): more than `tokens + ratio × count` apart. Default: any difference.
    #[schemars(with = "Option<ToleranceToml>")]
    pub claim_tolerance: Option<Spanned<ToleranceToml>>,
    /// What the count assumes (which text, BOS/EOS), written down: `--explain` shows it.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Where the counting rule comes from.
    pub source: Option<String>,
}

/// A text path: `"PATH"`, or `{ path = "PATH", when = { INPUT = "ITS PATH" } }`, tried only
/// when an earlier input of the job kind was counted from the text at that path of its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a path (a string), or a table { path = \"...\", when = { INPUT = \"PATH\" } }"
)]
pub enum PathToml {
    Plain(String),
    When(WhenPathToml),
}

/// `{ path = "PATH", when = { INPUT = "ITS PATH" } }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenPathToml {
    /// The path, written as a plain entry would be.
    pub path: String,
    /// One earlier input of the job kind and one of its `tokens_of` paths: this path is tried
    /// only for a job whose input was counted from the text at that path.
    pub when: IndexMap<String, String>,
}

impl PathToml {
    pub fn path(&self) -> &str {
        match self {
            PathToml::Plain(p) => p,
            PathToml::When(w) => &w.path,
        }
    }
}

/// `claim_tolerance = { tokens = 16, ratio = 0.25 }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToleranceToml {
    /// Tokens a claim may be off by (at least 0).
    #[serde(default)]
    pub tokens: u64,
    /// Fraction of the count a claim may be off by, on top of `tokens` (at least 0).
    #[serde(default)]
    pub ratio: f64,
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

/// `rules/catalog.toml`: the network's model names, when each was listed and in which family,
/// the other names jobs carry for them, and governance's decisions about the catalog.
/// `jobpoints catalog sync` writes it from the network's catalog history plus the decisions
/// recorded here (`[aliases]`, `[declined]`, `[unpriced]`).
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
    /// The versions of the network's catalog that windows name (`catalog = { since = "014" }`):
    /// number = { commit, at (its UTC commit time), subject, skipped (why a version that does
    /// not parse was left out) }.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, CatalogVersionShape>", extend("default" = {}))]
    pub versions: IndexMap<String, Spanned<toml::Value>>,
    /// `Model = "family"` (always), `Model = { family = "...", since = TIME, until = TIME }`,
    /// or an array of such windows (removed and re-added, or a family change); read by the
    /// loader, which names what is wrong with an entry.
    #[schemars(with = "IndexMap<String, CatalogEntryShape>")]
    pub models: IndexMap<String, Spanned<OneOrMany>>,
    /// Other names for catalog models, each inside a window: `Name = { model = "...", kind =
    /// "rename" | "gateway" | "redirect", since = TIME, until = TIME, source = "..." }`, or an
    /// array of such windows. A job carrying the name is priced as the model at its time.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, AliasEntryShape>", extend("default" = {}))]
    pub aliases: IndexMap<String, Spanned<OneOrMany>>,
    /// Renames and redirects the catalog history suggests that governance decided not to
    /// alias: `Name = { model = "...", kind = "rename" | "redirect", catalog = "037", reason =
    /// "..." }` (or an array). `catalog sync` stops asking about them.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, DeclinedEntryShape>", extend("default" = {}))]
    pub declined: IndexMap<String, Spanned<OneOrMany>>,
    /// Families deliberately left without a rule: family = "why". Their models get `no_rule`
    /// with that reason, and no rule file is expected for them.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub unpriced: IndexMap<String, Spanned<String>>,
}

/// A TOML value written alone, or an array of such values each with its own place (so a
/// diagnostic about the third window of a model points at that window's line).
#[derive(Debug)]
pub enum OneOrMany {
    One(toml::Value),
    Many(Vec<Spanned<toml::Value>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::MapAccessDeserializer;
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value or an array of values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<toml::Value>>()? {
                    out.push(v);
                }
                Ok(OneOrMany::Many(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<OneOrMany, A::Error> {
                toml::Value::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(toml::Value::String(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(toml::Value::String(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(toml::Value::Integer(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<OneOrMany, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("integer out of range"))?;
                Ok(OneOrMany::One(toml::Value::Integer(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(toml::Value::Float(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(toml::Value::Boolean(v)))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl OneOrMany {
    /// Each value with its place; `span` is where the whole value is written.
    pub fn each(
        &self,
        span: std::ops::Range<usize>,
    ) -> Vec<(std::ops::Range<usize>, &toml::Value)> {
        match self {
            OneOrMany::One(v) => vec![(span, v)],
            OneOrMany::Many(vs) => vs.iter().map(|v| (v.span(), v.get_ref())).collect(),
        }
    }
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
