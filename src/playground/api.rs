//! The work behind `POST /v1/check`, `/v1/eval` and `/v1/diff`: rule files sent in the body
//! (`{"files": {"PATH": "TEXT", ...}}`), loaded in memory by [`load`] exactly as a rules
//! directory is (same sandbox, file size limit and check budget), never read from or written
//! to disk. Each function returns the response body as JSON bytes.
//!
//! Tokenizer models (`tokenizers/*.model`) are binary rule data that the page cannot edit:
//! they are never sent, and every sent rule set holds the served rule set's models
//! ([`Served`]), so that it loads, hashes and scores as the same files in a directory do.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Read};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use jobpoints::engine::cancel::cancelled;
use jobpoints::engine::model::{Refusal, RuleFiles, RuleSet, RulesOrigin};
use jobpoints::engine::points::Points;
use jobpoints::engine::score::{ScoreOptions, ScoreRef, Scorer, Status};
use jobpoints::engine::time::parse_time;
use jobpoints::ledger::output::render_trace;
use jobpoints::ledger::reader::{JobReader, Ledger};
use jobpoints::review::impact::ImpactOptions;
use jobpoints::review::report::{Corpus, DiffReport, build_report, render_markdown, summary_line};
use jobpoints::rules::diagnostic::LineIndex;
use jobpoints::rules::files::MAX_RULE_FILE_BYTES;
use jobpoints::rules::files::{is_rule_file, is_tokenizer_file};
use jobpoints::rules::load::{Loaded, load};

/// Rule files by path relative to the rules directory (`families/sdxl10.toml`).
pub type Files = BTreeMap<String, String>;

/// The served rule set's tokenizer models, by path: part of every rule set a request sends.
pub type Served = BTreeMap<String, Vec<u8>>;

/// The tokenizer models among `files`.
pub fn served_models(files: &BTreeMap<String, Vec<u8>>) -> Served {
    (files.iter())
        .filter(|(path, _)| is_tokenizer_file(path))
        .map(|(path, bytes)| (path.clone(), bytes.clone()))
        .collect()
}

/// Most rule files in one rule set of a request (the shipped rules have about 20).
pub const MAX_FILES: usize = 256;
/// Longest path of a rule file, in bytes.
pub const MAX_PATH_BYTES: usize = 200;
/// Directories a path may nest, as for a rules directory on disk.
const MAX_DEPTH: usize = 16;
/// Most jobs one `/v1/eval` scores (each is a row of the jobs panel, maybe with its trace).
pub const MAX_JOBS: u64 = 1_000;
/// Most of the biggest movers a diff report lists.
const MAX_TOP: usize = 100;
/// Where the patch's paths point: the repository's rules directory.
pub const PATCH_DIR: &str = "rules";
/// How the two rule sets of a request are named in reports.
const EDITED: &str = "rules (edited)";
const ORIGINAL: &str = "rules (original)";

/// A flag that stops a request's work: set when its client goes away or its time is up.
pub type Cancel = jobpoints::engine::cancel::CancelFlag;

/// `POST /v1/check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub files: Files,
}

/// `POST /v1/eval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    pub files: Files,
    /// The rules to compare with: each result then says its points `before`.
    #[serde(default)]
    pub base: Option<Files>,
    /// A job file's text (one JSON job, a JSON array, or JSONL), or the jobs as JSON.
    pub jobs: Box<RawValue>,
    /// `--at`: pick rule versions as of this time instead of each job's `completed_at`.
    #[serde(default)]
    pub at: Option<String>,
    /// `--explain`: each result gets its `trace`, and `explain` as `eval --explain` prints it.
    #[serde(default)]
    pub explain: bool,
}

/// `POST /v1/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// The new rules.
    pub files: Files,
    /// The old rules.
    pub base: Files,
    #[serde(default)]
    pub at: Option<String>,
    /// How many of the biggest movers to list (at most 100).
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_top() -> usize {
    10
}

/// Why a request was not answered with its result.
#[derive(Debug)]
pub enum ApiError {
    /// A malformed request (400).
    Bad(String),
    /// Over a count limit (413).
    TooLarge(String),
    /// The rules cannot score (422): the body says why, with every diagnostic.
    RulesInvalid(Value),
    /// Stopped: the client went away or the time limit passed.
    Cancelled,
}

/// `POST /v1/check`: what `jobpoints check --format json` prints for these files, each
/// diagnostic also with `end_line` and `end_column` where it has a span.
pub fn check(req: CheckRequest, served: &Served) -> Result<Vec<u8>, ApiError> {
    let loaded = load(rule_files(req.files, served, EDITED, "files")?);
    Ok(check_json(&loaded)?.to_string().into_bytes())
}

/// `POST /v1/eval`: the jobs scored as `eval --format json` scores them; with `base`, each
/// result also has `before` (`status`, `points`, `rule` under the base rules).
pub fn eval(
    req: EvalRequest,
    served: &Served,
    max_jobs: u64,
    cancel: &Cancel,
) -> Result<Vec<u8>, ApiError> {
    let at = parse_at(req.at.as_deref())?;
    let jobs = jobs_text(&req.jobs)?;
    let new = valid(req.files, served, EDITED, "files")?;
    let base = (req.base)
        .map(|b| valid(b, served, ORIGINAL, "base"))
        .transpose()?;
    let opts = ScoreOptions {
        at,
        explain: req.explain,
    };
    let mut results = score_all(&new, &jobs, opts, max_jobs, cancel, full_result)?;
    if let Some(base) = &base {
        let opts = ScoreOptions {
            explain: false,
            ..opts
        };
        let before = score_all(base, &jobs, opts, max_jobs, cancel, |s| {
            serde_json::to_string(&Before {
                status: s.status,
                points: s.points,
                rule: s.rule,
                reason: s.reason.or(s.error),
            })
        })?;
        // The same bytes read by the same reader: one result per job on each side, in order.
        for (after, before) in results.iter_mut().zip(before) {
            splice(after, "before", &before);
        }
    }
    #[derive(Serialize)]
    struct Response<'a> {
        ruleset: &'a str,
        base_ruleset: Option<&'a str>,
        jobs: usize,
        results: Vec<Box<RawValue>>,
    }
    let results = results
        .into_iter()
        .map(RawValue::from_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Bad(format!("cannot write a result: {e}")))?;
    let response = Response {
        ruleset: &new.hash,
        base_ruleset: base.as_ref().map(|b| &*b.hash),
        jobs: results.len(),
        results,
    };
    Ok(serde_json::to_vec(&response).expect("strings and raw JSON serialize"))
}

/// `POST /v1/diff`: `jobpoints diff` of `base` → `files` on the built-in reference corpus:
/// its JSON report, its markdown, that markdown as HTML, and the patch of every changed file.
pub fn diff(req: DiffRequest, served: &Served, cancel: &Cancel) -> Result<Vec<u8>, ApiError> {
    let at = parse_at(req.at.as_deref())?;
    let patch = crate::playground::patch::unified(&req.base, &req.files, PATCH_DIR);
    let old = load(rule_files(req.base, served, ORIGINAL, "base")?);
    let new = load(rule_files(req.files, served, EDITED, "files")?);
    let corpus: Corpus = jobpoints::review::corpus::builtin_files()
        .into_iter()
        .map(|(name, bytes)| {
            let input: Box<dyn BufRead + Send> = Box::new(Cancellable {
                inner: bytes,
                cancel: cancel.clone(),
            });
            (name, Ledger::new(JobReader::new(input)))
        })
        .collect();
    let report = build_report(
        &old,
        &new,
        corpus,
        ImpactOptions {
            at,
            top: req.top.min(MAX_TOP),
            cutoff: None,
            by: Vec::new(),
            // One request, one scoring slot: the server bounds its threads.
            threads: 1,
        },
    );
    if cancel.load(Ordering::Relaxed) {
        return Err(ApiError::Cancelled);
    }
    let markdown = render_markdown(&report);
    #[derive(Serialize)]
    struct Response<'a> {
        summary: String,
        changed: bool,
        markdown: &'a str,
        html: String,
        patch: &'a str,
        report: &'a DiffReport,
    }
    let response = Response {
        summary: summary_line(&report),
        changed: report.jobs_changed() || !report.changes.is_empty() || !report.files.is_empty(),
        html: crate::playground::markdown::to_html(&markdown),
        markdown: &markdown,
        patch: &patch,
        report: &report,
    };
    Ok(serde_json::to_vec(&response).expect("the report serializes"))
}

/// `files` as a rule set named `name`, after checking what a directory on disk guarantees:
/// at most [`MAX_FILES`], each path a relative path to a `.toml` or `.rhai` file, and a file
/// over [`MAX_RULE_FILE_BYTES`] refused unread (`file-too-large`); then the `served`
/// tokenizer models, which are never sent.
pub fn rule_files(
    files: Files,
    served: &Served,
    name: &str,
    field: &str,
) -> Result<RuleFiles, ApiError> {
    if files.len() > MAX_FILES {
        return Err(ApiError::TooLarge(format!(
            "`{field}` has {} files, more than the limit of {MAX_FILES}",
            files.len()
        )));
    }
    for path in files.keys() {
        if let Err(why) = check_path(path) {
            let shown: String = path.chars().take(80).collect();
            return Err(ApiError::Bad(format!("`{field}`: path {shown:?}: {why}")));
        }
    }
    let mut out = RuleFiles::new(RulesOrigin::Sent(name.to_string()), BTreeMap::new());
    for (path, text) in files {
        // As a rules directory refuses a file over the limit unread (even one no rule uses).
        if text.len() > MAX_RULE_FILE_BYTES {
            let refusal = Refusal::TooLarge {
                bytes: text.len() as u64,
                limit: MAX_RULE_FILE_BYTES as u64,
            };
            out.refused.insert(path, refusal);
        } else {
            out.files.insert(path, text.into_bytes());
        }
    }
    out.files
        .extend(served.iter().map(|(p, b)| (p.clone(), b.clone())));
    Ok(out)
}

/// A path as a rules directory could hold it: relative, `/`-separated, no `.`/`..` or hidden
/// parts, plain characters only (it ends up in a patch and in reports), a rule file's name.
fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("longer than {MAX_PATH_BYTES} bytes"));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if !path.chars().all(plain) {
        return Err("only letters, digits, `.`, `_`, `-` and `/` are allowed".into());
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || p.starts_with('.')) {
        return Err("must be relative, with no empty, `.`, `..` or hidden (`.name`) parts".into());
    }
    if parts.len() > MAX_DEPTH + 1 {
        return Err(format!("nested more than {MAX_DEPTH} directories deep"));
    }
    if is_tokenizer_file(path) {
        return Err("tokenizer models are not sent: the served rule set's are used".into());
    }
    if !is_rule_file(path) {
        return Err("not a rule file (`.toml` or `.rhai`, outside `schemas/`)".into());
    }
    Ok(())
}

/// The `check --format json` document of a load, with end positions; cancelled when the
/// request's deadline passes (a file of many thousand diagnostics takes long).
fn check_json(loaded: &Loaded) -> Result<Value, ApiError> {
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    // One line index per file, not a scan per diagnostic: linear in the file's size (#22).
    let mut indexes: HashMap<&str, Option<(&str, LineIndex)>> = HashMap::new();
    let diagnostics: Vec<Value> = loaded
        .diagnostics
        .iter()
        .map_while(|d| {
            if cancelled() {
                return None;
            }
            let mut v = serde_json::to_value(d).expect("a diagnostic serializes");
            let end = d.file().zip(d.span()).and_then(|(f, span)| {
                let indexed = indexes.entry(f).or_insert_with(|| {
                    let text = loaded.files.text(f)?;
                    Some((text, LineIndex::new(text)))
                });
                let (text, lines) = indexed.as_ref()?;
                Some(lines.line_col(text, span.end))
            });
            if let (Some((line, column)), Some(obj)) = (end, v.as_object_mut()) {
                obj.insert("end_line".into(), line.into());
                obj.insert("end_column".into(), column.into());
            }
            Some(v)
        })
        .collect();
    if cancelled() {
        return Err(ApiError::Cancelled);
    }
    Ok(json!({
        "ok": errors == 0,
        "rules": loaded.files.origin.to_string(),
        "ruleset": loaded.files.hash(),
        "errors": errors,
        "warnings": loaded.diagnostics.len() - errors,
        "diagnostics": diagnostics,
    }))
}

/// Loads `files`; invalid rules are [`ApiError::RulesInvalid`] with their check document.
fn valid(files: Files, served: &Served, name: &str, field: &str) -> Result<RuleSet, ApiError> {
    let mut loaded = load(rule_files(files, served, name, field)?);
    match loaded.ruleset.take() {
        Some(rs) => Ok(rs),
        None => {
            let mut doc = check_json(&loaded)?;
            let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
            doc["error"] = format!(
                "the rules in `{field}` are invalid: {errors} error{} (see `diagnostics`)",
                if errors == 1 { "" } else { "s" }
            )
            .into();
            Err(ApiError::RulesInvalid(doc))
        }
    }
}

fn parse_at(at: Option<&str>) -> Result<Option<jiff::Timestamp>, ApiError> {
    at.map(parse_time)
        .transpose()
        .map_err(|e| ApiError::Bad(format!("`at`: {e}")))
}

/// The jobs as a job file's bytes: a JSON string is the file's text; any other JSON value
/// (a job, an array of jobs) is read as that JSON.
fn jobs_text(jobs: &RawValue) -> Result<Vec<u8>, ApiError> {
    let raw = jobs.get();
    if raw.starts_with('"') {
        let text: String =
            serde_json::from_str(raw).map_err(|e| ApiError::Bad(format!("`jobs`: {e}")))?;
        Ok(text.into_bytes())
    } else {
        Ok(raw.as_bytes().to_vec())
    }
}

/// One result as `eval --format json` writes it, plus `explain` (the trace as text) when
/// there is a trace.
fn full_result(s: &ScoreRef<'_>) -> serde_json::Result<String> {
    let mut text = serde_json::to_string(s)?;
    if let Some(trace) = s.trace {
        splice(
            &mut text,
            "explain",
            &serde_json::to_string(&render_trace(trace))?,
        );
    }
    Ok(text)
}

/// What a job got under the base rules.
#[derive(Serialize)]
struct Before<'a> {
    status: Status,
    points: Points,
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Adds `"key": value` (JSON text) to the JSON object `object` (text ending in `}`).
fn splice(object: &mut String, key: &str, value: &str) {
    debug_assert!(object.ends_with('}'));
    object.pop();
    if !object.ends_with('{') {
        object.push(',');
    }
    object.push_str(&serde_json::to_string(key).expect("a key serializes"));
    object.push(':');
    object.push_str(value);
    object.push('}');
}

/// Scores every job of `bytes` (read as `eval` reads a file), each result written by `write`;
/// stops past `max_jobs` or when cancelled.
fn score_all(
    rules: &RuleSet,
    bytes: &[u8],
    opts: ScoreOptions,
    max_jobs: u64,
    cancel: &Cancel,
    write: impl Fn(&ScoreRef<'_>) -> serde_json::Result<String>,
) -> Result<Vec<String>, ApiError> {
    let scorer = Scorer {
        opts,
        ..Scorer::new(rules)
    };
    let mut ctx = scorer.context();
    let mut out = Vec::new();
    let mut failed = None;
    let mut reader = JobReader::new(bytes);
    let mut buf = Vec::new();
    let mut jobs = 0u64;
    {
        let mut emit = |s: &ScoreRef<'_>| match write(s) {
            Ok(text) => out.push(text),
            Err(e) => failed = Some(e),
        };
        loop {
            buf.clear();
            let Some(item) = reader.next_raw(&mut buf) else {
                break;
            };
            jobs += 1;
            if jobs > max_jobs {
                return Err(ApiError::TooLarge(format!(
                    "more than {max_jobs} jobs; the playground scores at most {max_jobs} at once"
                )));
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(ApiError::Cancelled);
            }
            scorer.score_job(&mut ctx, item.job(&buf), &mut emit);
        }
    }
    match failed {
        Some(e) => Err(ApiError::Bad(format!("cannot write a result: {e}"))),
        None => Ok(out),
    }
}

/// A corpus file that stops reading once its request is cancelled, so an abandoned diff
/// stops scoring at the next line.
struct Cancellable {
    inner: &'static [u8],
    cancel: Cancel,
}

impl Cancellable {
    fn stopped(&self) -> io::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("the request was cancelled"));
        }
        Ok(())
    }
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stopped()?;
        self.inner.read(buf)
    }
}

impl BufRead for Cancellable {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.stopped()?;
        Ok(self.inner)
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_those_a_rules_directory_could_hold() {
        for ok in ["kinds.toml", "families/sdxl10.toml", "formulas/a_b-1.rhai"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/etc/x.toml",
            "../x.toml",
            "a/../x.toml",
            "./x.toml",
            "a//x.toml",
            ".hidden.toml",
            "a/.git/x.toml",
            "README.md",
            "x.toml/",
            "a b.toml",
            "a\\b.toml",
            "é.toml",
            "",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path(&format!("{}.toml", "a/".repeat(17))).is_err());
        assert!(check_path(&format!("{}.toml", "a".repeat(200))).is_err());
    }

    #[test]
    fn splice_adds_a_key_to_an_object() {
        let mut o = "{\"a\":1}".to_string();
        splice(&mut o, "b", "[2]");
        assert_eq!(o, "{\"a\":1,\"b\":[2]}");
        let mut e = "{}".to_string();
        splice(&mut e, "k\"", "null");
        assert_eq!(e, "{\"k\\\"\":null}");
    }
}
