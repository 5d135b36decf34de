//! Building a [`RuleSet`] from files: parse, resolve references, compile, validate.
//!
//! Loading never stops at the first problem: every file is parsed and every check runs on
//! what could be built, so `jobpoints check` reports everything in one pass. Each kind of
//! rule file has a module that takes what it needs and returns its part of the rule set;
//! `build` puts the parts together in one step. Every module reports into one `Sink`.

mod catalog;
mod example;
mod formula;
mod kinds;
mod policy;
mod rule;
mod templates;
mod tokenizers;

pub(crate) use catalog::{CatalogParts, Declined};

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::engine::formula::sandbox::hardened_engine;
use crate::engine::model::{Place, RuleSet};
use crate::rules::diagnostic::{Code, Diagnostic, LineIndex};
use crate::rules::files::{
    CATALOG_FILE, FORMULAS_DIR, KINDS_FILE, MAX_RULE_FILE_BYTES, POLICY_FILE, RuleFiles,
};
use crate::rules::validate;

/// The result of loading: a rule set when there were no errors, and every diagnostic.
pub struct Loaded {
    pub ruleset: Option<RuleSet>,
    pub diagnostics: Vec<Diagnostic>,
    /// The files that were read (kept for rendering diagnostics).
    pub files: RuleFiles,
    /// With errors: whatever could still be built from the files (rules that parsed, the
    /// catalog, ...). Never for scoring in earnest: `jobpoints diff` lists its field-level
    /// changes, and `watch` previews it when only examples fail.
    pub partial: Option<RuleSet>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads, compiles and validates a rule set (the same checks as `jobpoints check`). Run
/// cancelled ([`crate::engine::cancel`]), it stops early with an incomplete check: throw it away.
pub fn load(files: RuleFiles) -> Loaded {
    let mut sink = Sink::new(&files);
    let ruleset = build(&files, &mut sink);
    let mut diagnostics = sink.diagnostics;
    // Entries of the directory that were not read at all (symlinks out, FIFOs, loops, ...).
    diagnostics.extend(crate::rules::files::refusals(&files));
    if let Some(rs) = &ruleset
        && !crate::engine::cancel::cancelled()
    {
        diagnostics.extend(validate::validate(rs));
    }
    sort_and_dedup(&mut diagnostics);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let (ruleset, partial) = if has_errors {
        (None, ruleset)
    } else {
        (ruleset, None)
    };
    Loaded {
        ruleset,
        diagnostics,
        files,
        partial,
    }
}

/// What `catalog.toml` of `files` declares, as the loader reads it (`catalog sync` keeps the
/// decisions recorded there), and the problems found reading it alone.
pub(crate) fn read_catalog(files: &RuleFiles) -> (CatalogParts, Vec<Diagnostic>) {
    let mut sink = Sink::new(files);
    let parts = catalog::read(&mut sink);
    (parts, sink.diagnostics)
}

/// Builds every part, then the rule set from them. `None` when kinds.toml gave no job kinds
/// and something failed: then nothing else could be checked either.
fn build(files: &RuleFiles, sink: &mut Sink) -> Option<RuleSet> {
    let engine = hardened_engine();
    let kinds = kinds::build(sink, &engine);
    let policy = policy::read_policy(sink, &kinds.jobs);
    let catalog = catalog::read(sink);
    let mut formulas = formula::Formulas::new(&engine);
    let rules = rule::read_all(sink, &kinds.jobs, &mut formulas);
    let models = catalog::with_model_rules(sink, catalog.models, &rules);
    let aliases = catalog::check_aliases(sink, &models, catalog.aliases, &rules);
    catalog::check_families(sink, &models, &catalog.unpriced, &rules);
    // A formula used only by a rule file that did not parse is not unused.
    if !sink.rules_incomplete() {
        formulas.report_unused(sink);
    }
    if sink.has_errors() && kinds.jobs.is_empty() {
        return None;
    }
    Some(RuleSet {
        origin: files.origin.clone(),
        hash: files.hash().into(),
        point_kinds: kinds.points,
        job_kinds: kinds.jobs,
        floors: policy.floors,
        ceilings: policy.ceilings,
        unpriced: (catalog.unpriced.into_iter())
            .map(|(family, (why, _))| (family, why))
            .collect(),
        catalog: models,
        aliases,
        family_rules: rules.family,
        model_rules: rules.model,
        engine: Arc::new(engine),
        files: files.clone(),
    })
}

/// Stable order: by file, then position, then code, then message; exact repeats (a shared
/// file reported by each rule that reads it) once.
fn sort_and_dedup(diagnostics: &mut Vec<Diagnostic>) {
    fn key(d: &Diagnostic) -> (&Option<String>, Option<usize>, Code, &String) {
        (
            &d.file,
            d.span.as_ref().map(|s| s.start),
            d.code,
            &d.message,
        )
    }
    diagnostics.sort_by(|a, b| key(a).cmp(&key(b)));
    diagnostics.dedup();
}

/// A rule version being built, for placing and wording its diagnostics.
pub(super) struct Site<'a> {
    /// The rule file.
    pub path: &'a str,
    /// Byte range of the `[[version]]` table in it.
    pub span: Range<usize>,
    /// `rule `ID` version N`, which starts the messages.
    pub label: String,
}

fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

/// The closest of `candidates` to `word` by edit distance, when it is close enough to be a
/// typo of it (at most a third of its letters differ); ties go to the first candidate.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let d = if c.eq_ignore_ascii_case(word) {
            0
        } else {
            strsim::damerau_levenshtein(word, c)
        };
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean `x`?` for a near miss among `candidates`.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Where every part of the loader reads files and reports problems.
pub(super) struct Sink<'f> {
    files: &'f RuleFiles,
    diagnostics: Vec<Diagnostic>,
    /// Line starts of each file a position was asked of, built once per file.
    lines: HashMap<String, LineIndex>,
    /// Rule files (not kinds, policy or catalog) that did not parse: what they would have
    /// declared is unknown, so checks across files (a family without a rule, an unused
    /// formula) would report consequences of that, not problems of their own.
    unparsed_rules: Vec<String>,
}

impl<'f> Sink<'f> {
    fn new(files: &'f RuleFiles) -> Self {
        Sink {
            files,
            diagnostics: Vec::new(),
            lines: HashMap::new(),
            unparsed_rules: Vec::new(),
        }
    }

    /// Whether some rule file did not parse (see `unparsed_rules`).
    fn rules_incomplete(&self) -> bool {
        !self.unparsed_rules.is_empty()
    }

    /// Where `span` of `rel` is, as a [`Place`].
    fn place_of(&mut self, rel: &str, span: Range<usize>) -> Place {
        let source = self.source(rel);
        let (line, column) = self.lines(rel).line_col(source, span.start);
        Place { line, column, span }
    }

    /// The line index of `rel` (built on first use).
    fn lines(&mut self, rel: &str) -> &LineIndex {
        let source = self.source(rel);
        self.lines
            .entry(rel.to_string())
            .or_insert_with(|| LineIndex::new(source))
    }

    /// 1-based line of byte `offset` in `rel`.
    fn line_of(&mut self, rel: &str, offset: usize) -> usize {
        let source = self.source(rel);
        self.lines(rel).line_col(source, offset).0
    }

    /// Byte offset where 1-based `line` of `rel` starts.
    fn line_start(&mut self, rel: &str, line: usize) -> usize {
        let source = self.source(rel);
        self.lines(rel).line_start(source, line)
    }

    fn files(&self) -> &'f RuleFiles {
        self.files
    }

    fn contains(&self, rel: &str) -> bool {
        self.files.files.contains_key(rel)
    }

    /// The text a diagnostic in `rel` is placed in ("" if absent or not UTF-8).
    fn source(&self, rel: &str) -> &'f str {
        self.files.text(rel).unwrap_or("")
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub(super) fn error(
        &mut self,
        code: Code,
        file: &str,
        span: Option<Range<usize>>,
        msg: String,
        help: Option<&str>,
    ) {
        self.place(Diagnostic::error(code, msg), file, span, help);
    }

    fn warning(
        &mut self,
        code: Code,
        file: &str,
        span: Option<Range<usize>>,
        msg: String,
        help: Option<&str>,
    ) {
        self.place(Diagnostic::warning(code, msg), file, span, help);
    }

    fn place(&mut self, d: Diagnostic, file: &str, span: Option<Range<usize>>, help: Option<&str>) {
        let source = self.source(file);
        let mut d = d.at_indexed(file, source, self.lines(file), span);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diagnostics.push(d);
    }

    /// The text of `rel`, or `None` (reported) when it is too large or not UTF-8.
    fn text(&mut self, rel: &str) -> Option<&'f str> {
        let bytes = self.files.files.get(rel)?;
        if bytes.len() > MAX_RULE_FILE_BYTES {
            let msg = format!(
                "file is {} bytes, more than the limit of {MAX_RULE_FILE_BYTES}",
                bytes.len()
            );
            self.push(
                Diagnostic::error(Code::FileTooLarge, msg)
                    .with_help(
                        "rule files are short; split the file or remove what it does not need",
                    )
                    .in_file(rel),
            );
            return None;
        }
        let utf8 = std::str::from_utf8(bytes);
        if let Err(e) = &utf8 {
            let msg = format!("file is not valid UTF-8: {e}");
            self.push(Diagnostic::error(Code::Io, msg).in_file(rel));
        }
        utf8.ok()
    }

    /// Parses a TOML file into `T`, reporting syntax and shape errors.
    fn parse<T: DeserializeOwned>(&mut self, rel: &str) -> Option<T> {
        let parsed = self.parse_inner(rel);
        if parsed.is_none()
            && !matches!(rel, KINDS_FILE | POLICY_FILE | CATALOG_FILE)
            && self.contains(rel)
        {
            self.unparsed_rules.push(rel.to_string());
        }
        parsed
    }

    fn parse_inner<T: DeserializeOwned>(&mut self, rel: &str) -> Option<T> {
        let text = self.text(rel)?;
        if let Err(e) = text.parse::<toml::Table>() {
            let msg = format!("invalid TOML: {}", e.message().trim());
            let help = Some("see https://toml.io for the syntax");
            self.error(Code::TomlSyntax, rel, e.span(), msg, help);
            return None;
        }
        let e = match toml::from_str::<T>(text) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let msg = plain_words(e.message().trim());
        let (code, help) = shape_error(&msg);
        self.error(code, rel, e.span(), msg, Some(&help));
        None
    }
}

/// serde's words for a value of the wrong type (`invalid type: string "1.8", expected f64`)
/// in an author's: `a number like 1.8, not the text "1.8"`.
fn plain_words(msg: &str) -> String {
    let number = |expected: &str| match expected {
        "f64" | "f32" => Some("a number"),
        "i64" | "i32" | "u64" | "u32" | "usize" | "isize" => Some("a whole number"),
        _ => None,
    };
    if let Some(rest) = msg.strip_prefix("invalid type: string \"")
        && let Some((text, expected)) = rest.rsplit_once("\", expected ")
        && let Some(what) = number(expected.trim())
    {
        return if text.trim().parse::<f64>().is_ok() {
            format!(
                "expected {what} like {text}, not the text \"{text}\" (write it without quotes)"
            )
        } else {
            format!("expected {what}, not the text \"{text}\"")
        };
    }
    if let Some((found, expected)) = msg.split_once(", expected ")
        && let Some(what) = number(expected.trim())
    {
        return format!(
            "{}, expected {what}",
            found.replace("invalid type", "wrong type")
        );
    }
    msg.to_string()
}

/// The code and help for TOML that parses but does not have the expected shape; an unknown
/// key close to a known one is named.
fn shape_error(msg: &str) -> (Code, String) {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let help = match did_you_mean(word, known) {
            Some(hint) => format!("{hint} (rules/README.md lists every key)"),
            None => "remove the key or fix its spelling; rules/README.md lists every key".into(),
        };
        (Code::UnknownField, help)
    } else if msg.starts_with("missing field") {
        (
            Code::MissingField,
            "add the key; rules/README.md lists what each table needs".into(),
        )
    } else {
        (
            Code::BadType,
            "rules/README.md gives the type of every key".into(),
        )
    }
}

#[cfg(test)]
mod suggestion_tests {
    use super::*;

    #[test]
    fn near_misses_are_named_and_far_ones_are_not() {
        let families = ["sd15", "sdxl10", "composite15", "llm8x7b4b"];
        assert_eq!(closest("sdxl1O", families), Some("sdxl10"));
        assert_eq!(closest("SDXL10", families), Some("sdxl10"));
        assert_eq!(closest("compsite15", families), Some("composite15"));
        assert_eq!(closest("flux-dev", families), None);
        assert_eq!(
            closest("sd15", families),
            None,
            "an exact name is not a typo"
        );
        let (code, help) = shape_error(
            "unknown field `multiplyer`, expected one of `version`, `multiplier`, `min`",
        );
        assert_eq!(code, Code::UnknownField);
        assert!(help.starts_with("did you mean `multiplier`?"), "{help}");
        assert_eq!(
            plain_words("invalid type: string \"1.8\", expected f64"),
            "expected a number like 1.8, not the text \"1.8\" (write it without quotes)"
        );
        assert_eq!(
            plain_words("invalid type: string \"many\", expected i64"),
            "expected a whole number, not the text \"many\""
        );
        assert_eq!(
            plain_words("invalid type: boolean `true`, expected f64"),
            "wrong type: boolean `true`, expected a number"
        );
    }
}
