//! Reading a job: its envelope (id, model, time, miner) and the inputs its job kind declares.
//!
//! Two readers present the same JSON through [`JobSource`]:
//! - [`strict`]: a JSON tree that notes duplicate keys and integers beyond 64 bits. It decides
//!   every job, and gives the message for every invalid one.
//! - [`borrowed`]: the fields of a flat job borrowed from its line, without a tree. It decides
//!   the common, well-formed case and answers [`Undecided`] for anything else (an escaped
//!   string, a nested value, an invalid job), which the caller then reads strictly.
//!
//! What a job *means* — which keys hold the envelope, how an input is found, typed and
//! bounded, every message — is written once, below, for both.

pub mod borrowed;
pub mod strict;

use jiff::Timestamp;

use super::json::ReadPaths;
use super::model::{InputSpec, InputType, JobKind, Value};
use super::time::parse_time_exact;
use super::tokens::{CountError, TokensOf, ToolsCount};

/// A JSON value as a reader presents it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Null,
    Bool,
    Int(i64),
    /// An integer above `i64::MAX` (and at most `u64::MAX`).
    BigUint(u64),
    Float(f64),
    Str(&'a str),
    Array,
    Object,
}

/// The reader cannot decide this job exactly; read it with the strict reader instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecided;

/// A job as one of the readers sees it.
pub trait JobSource<'a> {
    /// The value under `key` at the top of the job; `Ok(None)` when absent.
    fn get(&self, key: &str) -> Result<Option<Field<'a>>, Undecided>;
    /// The value at a path of keys into nested objects; `Ok(None)` when absent.
    fn lookup(&self, path: &[String]) -> Result<Option<Field<'a>>, Undecided>;
    /// The value at `path` as JSON text for a message (only invalid jobs need it).
    fn show(&self, path: &[&str]) -> Result<String, Undecided>;
    /// What makes the whole job invalid before any field is read: not an object, a key
    /// given twice, an integer beyond 64 bits. `(field, message)`.
    fn problem(&self) -> Option<(Option<String>, String)>;
    /// Whether every string this reader gives is known to contain nothing JSON escapes (`"`,
    /// `\`, control characters), so that writers may copy it as is.
    fn verbatim(&self) -> bool {
        false
    }
    /// The JSON value at a path of keys as a tree, for an input counted from text
    /// (`tokens_of`); `Ok(None)` when absent. A reader that keeps no tree answers
    /// [`Undecided`] when the path is present.
    fn tree(&self, path: &[String]) -> Result<Option<&'a serde_json::Value>, Undecided>;
    /// When the value at `path` was too large to read (the strict reader keeps at most
    /// [`crate::engine::json::MAX_READ_VALUES`] values of the fields the rules read): the
    /// field, and the message that makes the job invalid.
    fn too_large(&self, _path: &[String]) -> Option<(String, String)> {
        None
    }
}

/// A job that cannot be scored as written.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    /// 1-based line where the job starts in its file.
    pub line: u64,
    pub id: Option<String>,
    pub model: Option<String>,
    /// The offending field, when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A job's id as written: a string, or an integer (shown in decimal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobId<'a> {
    Str(&'a str),
    Int(i64),
    BigUint(u64),
}

impl JobId<'_> {
    /// The id as results show it, using `buf` for integers.
    pub fn text<'b>(&'b self, buf: &'b mut itoa::Buffer) -> &'b str {
        match self {
            JobId::Str(s) => s,
            JobId::Int(i) => buf.format(*i),
            JobId::BigUint(u) => buf.format(*u),
        }
    }
}

/// The envelope of a job: what identifies it and picks its rule version.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub id: Option<JobId<'a>>,
    pub model: &'a str,
    /// The time, and its text when that is already the canonical `YYYY-MM-DDTHH:MM:SSZ`.
    pub completed_at: Option<(Timestamp, Option<&'a str>)>,
    pub miner: Option<&'a str>,
}

/// The keys of the envelope, in both shapes [`read_envelope`] accepts.
const ENVELOPE_KEYS: [&str; 7] = [
    "id",
    "job_id",
    "model",
    "model_id",
    "completed_at",
    "miner",
    "miner_id",
];

/// Every path at which a job's fields are read — the envelope's, and each input's of every
/// job kind in `kinds` (its claims, the text it is counted from, its `unmeasured` condition) —
/// for the strict reader to build only those ([`crate::engine::json::ReadPaths`]).
pub fn read_paths<'k>(kinds: impl IntoIterator<Item = &'k JobKind>) -> ReadPaths {
    let mut reads = ReadPaths::default();
    for key in ENVELOPE_KEYS {
        reads.add(&[key]);
    }
    for kind in kinds {
        for spec in &kind.inputs {
            for path in &spec.from {
                reads.add(path);
            }
            if let Some(t) = &spec.tokens_of {
                for path in t.paths.iter().chain(&t.tools) {
                    reads.add(&path.lead);
                }
            }
            if let Some(u) = &spec.unmeasured {
                reads.add(&u.when);
            }
        }
    }
    reads
}

/// The first of `keys` that is present, with its value.
fn first_present<'a, 'k, S: JobSource<'a>>(
    src: &S,
    keys: &[&'k str],
) -> Result<Option<(&'k str, Field<'a>)>, Undecided> {
    for k in keys {
        if let Some(v) = src.get(k)? {
            return Ok(Some((k, v)));
        }
    }
    Ok(None)
}

/// Reads the envelope. Accepts the jobpoints shape (`id`, `model`, `completed_at`, `miner`)
/// and the network's assignment shape (`job_id`, `model_id`, `miner_id`). `Ok(Err(..))` is an
/// invalid job, with what could be read of its id and model.
pub fn read_envelope<'a, S: JobSource<'a>>(
    src: &S,
    line: u64,
) -> Result<Result<Envelope<'a>, JobError>, Undecided> {
    // The error is built only when there is one: reading a valid job does not allocate.
    let fail = |id: Option<JobId<'_>>, model: Option<&str>, field: &str, message: String| {
        Ok(Err(JobError {
            line,
            id: id.map(|id| id.text(&mut itoa::Buffer::new()).to_string()),
            model: model.map(str::to_string),
            field: Some(field.to_string()),
            message,
        }))
    };
    let id = match first_present(src, &["id", "job_id"])? {
        None | Some((_, Field::Null)) => None,
        Some((_, Field::Str(s))) => Some(JobId::Str(s)),
        Some((_, Field::Int(i))) => Some(JobId::Int(i)),
        Some((_, Field::BigUint(u))) => Some(JobId::BigUint(u)),
        Some((k, _)) => {
            let message = format!(
                "`{k}` must be a string or an integer, got {}",
                src.show(&[k])?
            );
            return fail(None, None, k, message);
        }
    };
    let model = match first_present(src, &["model", "model_id"])? {
        Some((_, Field::Str(s))) if !s.trim().is_empty() => s,
        Some((k, Field::Str(_))) => return fail(id, None, k, format!("`{k}` is empty")),
        Some((k, _)) => {
            let message = format!("`{k}` must be a string, got {}", src.show(&[k])?);
            return fail(id, None, k, message);
        }
        None => return fail(id, None, "model", "missing field `model`".into()),
    };
    let completed_at = match src.get("completed_at")? {
        None | Some(Field::Null) => None,
        Some(Field::Str(s)) => match parse_time_exact(s) {
            Ok((t, canonical)) => Some((t, canonical.then_some(s))),
            Err(e) => {
                let message = format!("`completed_at`: {e}");
                return fail(id, Some(model), "completed_at", message);
            }
        },
        Some(_) => {
            let message = format!(
                "`completed_at` must be an RFC 3339 string, got {}",
                src.show(&["completed_at"])?
            );
            return fail(id, Some(model), "completed_at", message);
        }
    };
    let miner = match first_present(src, &["miner", "miner_id"])? {
        None | Some((_, Field::Null)) => None,
        Some((_, Field::Str(s))) => Some(s),
        Some((k, _)) => {
            let message = format!("`{k}` must be a string, got {}", src.show(&[k])?);
            return fail(id, Some(model), k, message);
        }
    };
    Ok(Ok(Envelope {
        id,
        model,
        completed_at,
        miner,
    }))
}

/// What stops a job at its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFailure {
    /// The job is malformed: status `invalid`.
    Invalid,
    /// The engine failed, not the job (a tokenizer error): status `error`.
    Failed,
    /// The job carries neither the input nor its text, for a reason its job kind declares
    /// (`unmeasured`, e.g. a streamed answer): status `unmeasured`.
    Unmeasured,
}

/// Why an input cannot be read: the field (the JSON path found, else the input's name) and
/// a message (for [`InputFailure::Unmeasured`], the declared reason).
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub field: String,
    pub message: String,
    pub failure: InputFailure,
}

impl InputError {
    fn invalid(field: String, message: String) -> InputError {
        InputError {
            field,
            message,
            failure: InputFailure::Invalid,
        }
    }
}

/// An input counted from the job's text (`tokens_of`), as `--explain` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CountedInput {
    pub input: String,
    /// The path counted, as kinds.toml writes it (`model_input.LLM.prompt.@json`).
    pub field: String,
    /// The tokenizer's name in kinds.toml.
    pub tokenizer: String,
    /// `chat` (a prompt, with the tokenizer's chat template) or `text`.
    pub counted: &'static str,
    /// Messages (chat) or strings (text) counted.
    pub texts: u64,
    /// Bytes of text counted.
    pub bytes: u64,
    /// The input's value: the tokens of the text, and of its tool definitions.
    pub tokens: u64,
    /// Tool calls counted with the text (as their JSON).
    #[serde(skip_serializing_if = "is_zero")]
    pub tool_calls: u64,
    /// The prompt template that read a templated prompt (`@template`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The prompt's tool definitions, counted with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<CountedTools>,
    /// A count the job claims for this input, which its text outranks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// What the count assumes, and its source (kinds.toml).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Tool definitions counted with a prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CountedTools {
    /// The path counted, as kinds.toml writes it.
    pub field: String,
    pub definitions: u64,
    /// Bytes of their JSON text.
    pub bytes: u64,
    pub tokens: u64,
}

/// A count the job claims (at a `from` path) for an input counted from its text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Claim {
    /// Where the job claims it.
    pub field: String,
    pub value: Value,
    /// Whether it disagrees with the count beyond the declared tolerance (then the result
    /// reports it as `disputed_claim`).
    pub disputed: bool,
}

/// Reads the inputs `kind` declares into `out`, in its order, checking type and bounds.
pub fn read_inputs<'a, S: JobSource<'a>>(
    src: &S,
    kind: &JobKind,
    out: &mut Vec<Value>,
) -> Result<Result<(), InputError>, Undecided> {
    read_inputs_noting(src, kind, out, None, None)
}

/// [`read_inputs`], noting in `counted` each input counted from text, and appending to
/// `disputed` each claimed count its text contradicts (for the result's `disputed_claim`).
pub fn read_inputs_noting<'a, S: JobSource<'a>>(
    src: &S,
    kind: &JobKind,
    out: &mut Vec<Value>,
    counted: Option<&mut Vec<CountedInput>>,
    disputed: Option<&mut String>,
) -> Result<Result<(), InputError>, Undecided> {
    out.clear();
    let mut notes = Notes {
        counted,
        disputed,
        counted_from: Vec::new(),
    };
    for (index, spec) in kind.inputs.iter().enumerate() {
        match read_input(src, spec, index, &mut notes)? {
            Ok(v) => out.push(v),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(()))
}

/// What reading one job's inputs notes as it goes.
struct Notes<'n> {
    counted: Option<&'n mut Vec<CountedInput>>,
    disputed: Option<&'n mut String>,
    /// (input, path) of each input counted from text so far, for paths with a `when`.
    counted_from: Vec<(usize, usize)>,
}

fn read_input<'a, S: JobSource<'a>>(
    src: &S,
    spec: &InputSpec,
    index: usize,
    notes: &mut Notes<'_>,
) -> Result<Result<Value, InputError>, Undecided> {
    // What the job claims at a `from` path, read strictly even when its text outranks it: a
    // malformed claim is a malformed job.
    let claim = match read_claim(src, spec)? {
        Some((_, Err(e))) => return Ok(Err(e)),
        Some((path, Ok(v))) => Some((path, v)),
        None => None,
    };
    // A job that carries its text is counted from it, whatever it claims.
    if let Some(tokens_of) = &spec.tokens_of
        && let Some(read) = count_input(src, spec, index, tokens_of, claim, notes)?
    {
        return Ok(read);
    }
    if let Some((_, v)) = claim {
        return Ok(Ok(v));
    }
    if let Some(u) = &spec.unmeasured
        && let Some((field, message)) = src.too_large(&u.when)
    {
        return Ok(Err(InputError::invalid(field, message)));
    }
    if let Some(u) = &spec.unmeasured
        && src
            .tree(&u.when)?
            .is_some_and(|v| v.as_bool() == Some(true))
    {
        return Ok(Err(InputError {
            field: spec.name.clone(),
            message: u.reason.clone(),
            failure: InputFailure::Unmeasured,
        }));
    }
    if let Some(v) = spec.default {
        return Ok(Ok(v));
    }
    if spec.optional {
        return Ok(Ok(Value::ABSENT));
    }
    // Only the `from` paths: the message of a job without counts or text is unchanged by
    // `tokens_of` (kinds.toml and `--explain` say where text is counted from).
    let names: Vec<String> = spec
        .from
        .iter()
        .map(|p| format!("`{}`", p.join(".")))
        .collect();
    Ok(Err(InputError::invalid(
        spec.name.clone(),
        format!(
            "missing field `{}` (looked for {})",
            spec.name,
            names.join(", ")
        ),
    )))
}

/// A value a job claims for an input: the `from` path it is at, and the value typed and
/// bounded (or why it is not).
type ClaimRead<'s> = (&'s [String], Result<Value, InputError>);

/// The value the job gives at the first present `from` path; `None` when it gives none.
fn read_claim<'a, 's, S: JobSource<'a>>(
    src: &S,
    spec: &'s InputSpec,
) -> Result<Option<ClaimRead<'s>>, Undecided> {
    let mut found = None;
    for path in &spec.from {
        match src.lookup(path)? {
            // `null` leaves out an input that may be left out (`"loading_latency": null`).
            Some(Field::Null) if !spec.required() => {}
            Some(v) => {
                found = Some((path, v));
                break;
            }
            None => {}
        }
    }
    let Some((path, raw)) = found else {
        return Ok(None);
    };
    if let Some((field, message)) = src.too_large(path) {
        return Ok(Some((
            path.as_slice(),
            Err(InputError::invalid(field, message)),
        )));
    }
    // Messages are rare; only then is the path joined and the value shown.
    let fail = |message: String| {
        Ok(Some((
            path.as_slice(),
            Err(InputError::invalid(path.join("."), message)),
        )))
    };
    let shown = || -> Result<String, Undecided> {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        src.show(&keys)
    };
    let name = || path.join(".");
    let value = match (spec.ty, raw) {
        (_, Field::Float(f)) if f.is_infinite() => {
            return fail(format!(
                "`{}` = {} is too large to be a number",
                name(),
                shown()?
            ));
        }
        (InputType::Int, Field::Int(i)) => Value::Int(i),
        (InputType::Int, Field::BigUint(_)) => {
            return fail(format!(
                "`{}` = {} is an integer outside the signed 64-bit range",
                name(),
                shown()?
            ));
        }
        (InputType::Int, Field::Float(f)) => {
            if f.fract() == 0.0 && f.abs() >= 9.2e18 {
                return fail(format!(
                    "`{}` = {} is too large for an integer",
                    name(),
                    shown()?
                ));
            }
            return fail(format!("`{}` must be an integer, got {}", name(), shown()?));
        }
        (InputType::Float, Field::Int(i)) => Value::Float(i as f64),
        (InputType::Float, Field::BigUint(u)) => Value::Float(u as f64),
        (InputType::Float, Field::Float(f)) if f.is_finite() => Value::Float(f),
        (InputType::Float, Field::Float(_)) => {
            return fail(format!(
                "`{}` = {} is not a finite number",
                name(),
                shown()?
            ));
        }
        (ty, _) => {
            let want = if ty == InputType::Int {
                "an integer"
            } else {
                "a number"
            };
            return fail(format!("`{}` must be {want}, got {}", name(), shown()?));
        }
    };
    let x = value.as_f64();
    if let Some(min) = spec.min
        && x < min
    {
        return fail(format!("`{}` = {value} is below the minimum {min}", name()));
    }
    if let Some(max) = spec.max
        && x > max
    {
        return fail(format!("`{}` = {value} is above the maximum {max}", name()));
    }
    Ok(Some((path.as_slice(), Ok(value))))
}

/// Counts `spec` from the text at the first of its `tokens_of` paths that reads (its
/// leading keys present, its `when` met, its `@json`/`@template` steps finding their form);
/// `None` when the job has none of them. A path passed over because its string is not in its
/// form makes the job invalid when no later path reads.
fn count_input<'a, S: JobSource<'a>>(
    src: &S,
    spec: &InputSpec,
    index: usize,
    tokens_of: &TokensOf,
    claim: Option<(&[String], Value)>,
    notes: &mut Notes<'_>,
) -> Result<Option<Result<Value, InputError>>, Undecided> {
    let failed = |path: &str, e: String| {
        Ok(Some(Err(InputError {
            field: path.to_string(),
            message: format!(
                "counting `{path}` with tokenizer `{}` failed: {e}",
                tokens_of.tokenizer
            ),
            failure: InputFailure::Failed,
        })))
    };
    let mut unread: Vec<(String, String)> = Vec::new();
    for (path_index, path) in tokens_of.paths.iter().enumerate() {
        if let Some(w) = &path.when
            && !notes.counted_from.contains(&(w.input_index, w.path_index))
        {
            continue;
        }
        if let Some((field, message)) = src.too_large(&path.lead) {
            return Ok(Some(Err(InputError::invalid(field, message))));
        }
        let value = match src.tree(&path.lead)? {
            None | Some(serde_json::Value::Null) => continue,
            Some(v) => v,
        };
        let count = match tokens_of.count(path, value) {
            Ok(c) => c,
            Err(CountError::Unread { field, message }) => {
                unread.push((field, message));
                continue;
            }
            Err(CountError::Invalid { field, message }) => {
                return Ok(Some(Err(InputError::invalid(field, message))));
            }
            Err(CountError::Failed(e)) => return failed(&path.text, e),
        };
        let tools = match count_tools(src, tokens_of, count.bytes)? {
            Ok(t) => t,
            Err(CountError::Failed(e)) => return failed(&path.text, e),
            Err(CountError::Invalid { field, message } | CountError::Unread { field, message }) => {
                return Ok(Some(Err(InputError::invalid(field, message))));
            }
        };
        notes.counted_from.push((index, path_index));
        let tokens = count.tokens + tools.as_ref().map_or(0, |(_, t)| t.tokens);
        let claim = claim.map(|(at, value)| Claim {
            field: at.join("."),
            value,
            disputed: tokens_of.tolerance.disagrees(value.as_f64(), tokens),
        });
        if let (Some(c), Some(out)) = (
            claim.as_ref().filter(|c| c.disputed),
            notes.disputed.as_deref_mut(),
        ) {
            use std::fmt::Write as _;
            if !out.is_empty() {
                out.push_str("; ");
            }
            let _ = write!(
                out,
                "{}: the job claims {} (`{}`), its text counts {tokens} (`{}`)",
                spec.name, c.value, c.field, path.text
            );
        }
        if let Some(out) = notes.counted.as_deref_mut() {
            out.push(CountedInput {
                input: spec.name.clone(),
                field: path.text.clone(),
                tokenizer: tokens_of.tokenizer.clone(),
                counted: tokens_of.counted.name(),
                texts: count.texts,
                bytes: count.bytes,
                tokens,
                tool_calls: count.tool_calls,
                template: count.template,
                tools: tools.map(|(field, t)| CountedTools {
                    field,
                    definitions: t.definitions,
                    bytes: t.bytes,
                    tokens: t.tokens,
                }),
                claim,
                assumptions: tokens_of.assumptions.clone(),
                source: tokens_of.source.clone(),
            });
        }
        let n = tokens as f64;
        if let Some(max) = spec.max.filter(|max| n > *max) {
            return Ok(Some(Err(InputError::invalid(
                path.text.clone(),
                format!(
                    "the text at `{}` counts {tokens} tokens, above the maximum {max} of `{}`",
                    path.text, spec.name
                ),
            ))));
        }
        if let Some(min) = spec.min.filter(|min| n < *min) {
            return Ok(Some(Err(InputError::invalid(
                path.text.clone(),
                format!(
                    "the text at `{}` counts {tokens} tokens, below the minimum {min} of `{}`",
                    path.text, spec.name
                ),
            ))));
        }
        // Counts are far below i64::MAX (the text is at most MAX_COUNTED_TEXT_BYTES).
        return Ok(Some(Ok(Value::Int(tokens as i64))));
    }
    if let Some((field, _)) = unread.first() {
        let messages: Vec<&str> = unread.iter().map(|(_, m)| m.as_str()).collect();
        return Ok(Some(Err(InputError::invalid(
            field.clone(),
            messages.join(", and "),
        ))));
    }
    Ok(None)
}

/// Tool definitions counted, with the path they were counted at.
type ToolsRead = Option<(String, ToolsCount)>;

/// The tool definitions at the first of `tokens_of.tools` present in the job; `None` when it
/// has none.
fn count_tools<'a, S: JobSource<'a>>(
    src: &S,
    tokens_of: &TokensOf,
    prompt_bytes: u64,
) -> Result<Result<ToolsRead, CountError>, Undecided> {
    for path in &tokens_of.tools {
        if let Some((field, message)) = src.too_large(&path.lead) {
            return Ok(Err(CountError::Invalid { field, message }));
        }
        let value = match src.tree(&path.lead)? {
            None | Some(serde_json::Value::Null) => continue,
            Some(v) => v,
        };
        return Ok(tokens_of
            .count_tools(path, value, prompt_bytes)
            .map(|t| Some((path.text.clone(), t))));
    }
    Ok(Ok(None))
}
