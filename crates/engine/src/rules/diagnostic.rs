//! Problems found in a rule set, each with a stable code, a place and a hint.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How bad a problem is: errors make a rule set unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// Stable diagnostic codes. The string form is part of the public interface: tools and
/// reviewers match on it, so a code is never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// A rules file could not be read or is not UTF-8.
    Io,
    /// A required file (`kinds.toml`) is missing.
    MissingFile,
    /// TOML that does not parse.
    TomlSyntax,
    /// A key the format does not know (usually a typo).
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong type or shape.
    BadType,
    /// A point kind that `kinds.toml` does not declare.
    UnknownPointKind,
    /// A job kind that `kinds.toml` does not declare.
    UnknownJobKind,
    /// A reference to a formula that does not exist.
    UnknownFormula,
    /// A threshold, floor or example names an input that the job kind does not have.
    UnknownInput,
    /// An input whose bounds are empty or malformed.
    BadBounds,
    /// A rhai formula or derived value that does not compile.
    FormulaCompile,
    /// A version gives no formula, or more than one way to find it.
    FormulaChoice,
    /// A multiplier that is negative or not finite.
    BadMultiplier,
    /// Two rule files claim the same family.
    DuplicateRule,
    /// Two rule files claim the same model.
    DuplicateModel,
    /// A model rule disagrees with the catalog about the model's family.
    CatalogConflict,
    /// A date that does not parse.
    BadDate,
    /// Versions out of order, or two versions with the same number.
    VersionOrder,
    /// Two versions of one rule take effect at the same time.
    DuplicateEffectiveDate,
    /// A rule with no versions.
    EmptyRule,
    /// An example job whose points differ from what the rule computes.
    ExampleFailed,
    /// An example job that cannot be evaluated as written.
    ExampleInvalid,
    /// A rule that undercuts a floor of `policy.toml`.
    InvariantViolated,
    /// A formula that fails, or returns NaN, infinity, a negative or a non-number, somewhere
    /// on the grid of its inputs' declared ranges.
    FormulaGrid,
    /// A version that takes effect far in the future.
    FutureDate,
    /// The formula grid check ran out of its operation budget before covering every grid.
    GridIncomplete,
    /// `check` ran out of its operation budget before checking every example.
    CheckBudget,
    /// A catalog family that no rule prices and that `[unpriced]` does not name.
    FamilyWithoutRule,
    /// A catalog family that no rule prices, close to one that a rule does (a typo).
    UnknownFamily,
    /// A version above a ceiling of `policy.toml` (`max_multiplier`, or `max_points` somewhere
    /// on its input grid).
    PolicyCeiling,
    /// A job kind with no floors and no ceilings in `policy.toml`.
    UnboundedJobKind,
    /// A required input that some priced versions never read: every job without it becomes
    /// `invalid`, also under those versions.
    RequiredInput,
    /// A model name with an invisible character (zero-width, direction marks, ...).
    InvisibleCharacter,
    /// A model name mixing scripts (Latin and a Cyrillic look-alike, ...).
    MixedScript,
    /// A formula file no rule uses.
    UnusedFormula,
    /// No `policy.toml`, so no floors are enforced.
    NoPolicy,
    /// A rules file larger than `MAX_RULE_FILE_BYTES`; it is not parsed.
    FileTooLarge,
    /// An entry of the rules directory that is not a regular file inside it (a symlink out of
    /// it, a FIFO, socket or device, a loop); it is not read.
    RefusedFile,
    /// A tokenizer model file whose SHA-256 is not the one its declaration pins.
    TokenizerHash,
    /// A tokenizer model file that is missing, not where tokenizers live, not a model this
    /// engine reads, or not declared by any tokenizer.
    TokenizerFile,
    /// An input counted with a tokenizer that `[tokenizers]` does not declare.
    UnknownTokenizer,
    /// A prompt template whose markers cannot be read back unambiguously, or a text path that
    /// reads templated prompts (`@template`) in a rule set that declares none.
    PromptTemplate,
    /// Two catalog windows of one model, or two windows of one alias, share an instant.
    OverlappingWindows,
    /// An alias of a model that is neither in the catalog nor named by a model rule.
    UnknownAliasTarget,
    /// An alias of a name that is itself an alias at the same time (a chain, or a loop).
    AliasChain,
    /// An alias over a time when its own name is a catalog model (other than by `redirect`)
    /// or priced by a model rule: one of the two would silently be ignored.
    AliasShadows,
    /// With `--trusted-keys`: the rule set is not signed by a trusted key.
    UntrustedRules,
    /// A catalog version that `[versions]` does not list (or lists as skipped), or a bound
    /// that is not that version's commit time.
    CatalogVersion,
    /// An execution limit that cannot apply: `multiple_of` not an integer ≥ 1 or on a float
    /// input, a `max` that is not finite (or not an integer for an integer input).
    BadLimit,
    /// A job kind's execution limits out of time order, or two at the same time.
    LimitOrder,
    /// A formula or derived value that divides by zero for some job the version prices
    /// (found by `check`'s proof, with the job).
    FormulaMayDivideByZero,
    /// A formula or derived value that overflows (integers) or gives infinity or NaN for
    /// some job the version prices.
    FormulaMayOverflow,
    /// A version that pays a negative amount for some job.
    FormulaMayGoNegative,
    /// A version that pays above `max_points` of policy.toml (or the per-job ceiling) for
    /// some job.
    FormulaMayExceedMax,
    /// A property `check` could neither prove for every job nor refute with a job (or a
    /// formula it cannot analyse: one that runs in rhai).
    FormulaNotProved,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Io => "io",
            Code::MissingFile => "missing-file",
            Code::TomlSyntax => "toml-syntax",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::BadType => "bad-type",
            Code::UnknownPointKind => "unknown-point-kind",
            Code::UnknownJobKind => "unknown-job-kind",
            Code::UnknownFormula => "unknown-formula",
            Code::UnknownInput => "unknown-input",
            Code::BadBounds => "bad-bounds",
            Code::FormulaCompile => "formula-compile",
            Code::FormulaChoice => "formula-choice",
            Code::BadMultiplier => "bad-multiplier",
            Code::DuplicateRule => "duplicate-rule",
            Code::DuplicateModel => "duplicate-model",
            Code::CatalogConflict => "catalog-conflict",
            Code::BadDate => "bad-date",
            Code::VersionOrder => "version-order",
            Code::DuplicateEffectiveDate => "duplicate-effective-date",
            Code::EmptyRule => "empty-rule",
            Code::ExampleFailed => "example-failed",
            Code::ExampleInvalid => "example-invalid",
            Code::InvariantViolated => "invariant-violated",
            Code::FormulaGrid => "formula-grid",
            Code::FutureDate => "future-date",
            Code::GridIncomplete => "grid-incomplete",
            Code::CheckBudget => "check-budget",
            Code::FamilyWithoutRule => "family-without-rule",
            Code::UnknownFamily => "unknown-family",
            Code::PolicyCeiling => "policy-ceiling",
            Code::UnboundedJobKind => "unbounded-job-kind",
            Code::RequiredInput => "required-input",
            Code::InvisibleCharacter => "invisible-character",
            Code::MixedScript => "mixed-script",
            Code::UnusedFormula => "unused-formula",
            Code::NoPolicy => "no-policy",
            Code::FileTooLarge => "file-too-large",
            Code::RefusedFile => "refused-file",
            Code::TokenizerHash => "tokenizer-hash",
            Code::TokenizerFile => "tokenizer-file",
            Code::UnknownTokenizer => "unknown-tokenizer",
            Code::PromptTemplate => "prompt-template",
            Code::OverlappingWindows => "overlapping-windows",
            Code::UnknownAliasTarget => "unknown-alias-target",
            Code::AliasChain => "alias-chain",
            Code::AliasShadows => "alias-shadows",
            Code::UntrustedRules => "untrusted-rules",
            Code::CatalogVersion => "catalog-version",
            Code::BadLimit => "bad-limit",
            Code::LimitOrder => "limit-order",
            Code::FormulaMayDivideByZero => "formula-may-divide-by-zero",
            Code::FormulaMayOverflow => "formula-may-overflow",
            Code::FormulaMayGoNegative => "formula-may-go-negative",
            Code::FormulaMayExceedMax => "formula-may-exceed-max",
            Code::FormulaNotProved => "formula-not-proved",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem in a rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub(crate) severity: Severity,
    pub(crate) code: Code,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) help: Option<String>,
    /// Path relative to the rules directory, with `/` separators.
    pub(crate) file: Option<String>,
    /// 1-based line and column of the start of `span`.
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    /// Byte range in `file`.
    #[serde(skip)]
    pub(crate) span: Option<Range<usize>>,
    /// A job that shows the problem, as a JSON line `eval` reads (a counterexample of
    /// `check`'s proof). Printed on a line of its own, never wrapped, so it can be pasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            help: None,
            file: None,
            line: None,
            column: None,
            span: None,
            job: None,
        }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Attaches the job that shows the problem (a JSON line).
    pub fn with_job(mut self, job: impl Into<String>) -> Self {
        self.job = Some(job.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Places the diagnostic in `file` at `span`, computing line and column from `source`.
    pub fn at(mut self, file: &str, source: &str, span: Option<Range<usize>>) -> Self {
        self.file = Some(file.to_string());
        if let Some(span) = span {
            let start = span.start.min(source.len());
            let (line, column) = line_col(source, start);
            self.line = Some(line);
            self.column = Some(column);
            self.span = Some(start..span.end.clamp(start, source.len()));
        }
        self
    }

    /// [`Diagnostic::at`] with the lines of `source` already indexed: for a loader that
    /// places many diagnostics in one large file.
    pub fn at_indexed(
        mut self,
        file: &str,
        source: &str,
        lines: &LineIndex,
        span: Option<Range<usize>>,
    ) -> Self {
        self.file = Some(file.to_string());
        if let Some(span) = span {
            let start = span.start.min(source.len());
            let (line, column) = lines.line_col(source, start);
            self.line = Some(line);
            self.column = Some(column);
            self.span = Some(start..span.end.clamp(start, source.len()));
        }
        self
    }

    /// Places the diagnostic in `file` at the start of 1-based `line`, spanning `span`
    /// (known from loading, so nothing is scanned).
    pub fn at_line(mut self, file: &str, line: usize, span: Range<usize>) -> Self {
        self.file = Some(file.to_string());
        self.line = Some(line);
        self.column = Some(1);
        self.span = Some(span);
        self
    }

    /// Places the diagnostic at a [`Place`] of `file` found when loading.
    pub fn at_place(mut self, file: &str, place: &crate::engine::model::Place) -> Self {
        self.file = Some(file.to_string());
        self.line = Some(place.line);
        self.column = Some(place.column);
        self.span = Some(place.span.clone());
        self
    }

    /// Places the diagnostic in `file` without a position.
    pub fn in_file(mut self, file: &str) -> Self {
        self.file = Some(file.to_string());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column` or as much of it as is known.
    pub fn location(&self) -> String {
        match (&self.file, self.line, self.column) {
            (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
            (Some(f), _, _) => f.clone(),
            _ => "<rules>".to_string(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{sev}[{}]: {}: {}",
            self.code,
            self.location(),
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        if let Some(job) = &self.job {
            write!(f, "\n  job: {job}")?;
        }
        Ok(())
    }
}

/// 1-based line and character column of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

pub use crate::rules::lines::LineIndex;

/// Byte offset of 1-based `line` and `column` in `source` (clamped).
pub fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            return offset + col;
        }
        offset += l.len();
    }
    source.len()
}

/// A diagnostic together with the excerpt of its file that it shows, for miette.
#[cfg(feature = "fancy")]
#[derive(Debug)]
struct SourcedDiagnostic<'a> {
    diagnostic: &'a Diagnostic,
    excerpt: crate::rules::excerpt::Excerpt,
}

#[cfg(feature = "fancy")]
impl fmt::Display for SourcedDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diagnostic.message)
    }
}

#[cfg(feature = "fancy")]
impl std::error::Error for SourcedDiagnostic<'_> {}

#[cfg(feature = "fancy")]
impl miette::Diagnostic for SourcedDiagnostic<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.excerpt as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.excerpt.label();
        let len = span.end.saturating_sub(span.start).max(1);
        Some(Box::new(std::iter::once(miette::LabeledSpan::new(
            Some("here".to_string()),
            span.start,
            len,
        ))))
    }
}

/// Renders diagnostics for people: the code, the file, line and column, the offending source
/// lines and the help. Without colour, so output is stable in logs and snapshots.
///
/// Linear in the files' sizes and the number of diagnostics: `sources` is asked once per
/// file, each file is indexed once, and miette only ever sees a few (cut) lines of it. Never
/// panics: a diagnostic miette cannot draw is written in its plain form.
#[cfg(feature = "fancy")]
pub fn render_human(
    diagnostics: &[Diagnostic],
    sources: &dyn Fn(&str) -> Option<String>,
) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    use std::collections::HashMap;
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut files: HashMap<&str, Option<(String, LineIndex)>> = HashMap::new();
    let mut out = String::new();
    for d in diagnostics {
        let file = d.file.as_deref().zip(d.span.clone());
        let excerpt = file.and_then(|(name, span)| {
            let indexed = files.entry(name).or_insert_with(|| {
                sources(name).map(|text| {
                    let lines = LineIndex::new(&text);
                    (text, lines)
                })
            });
            let (text, lines) = indexed.as_ref()?;
            Some(crate::rules::excerpt::Excerpt::new(name, text, lines, span))
        });
        out.push_str(&render_one(&handler, d, excerpt));
        out.push('\n');
    }
    out
}

// One diagnostic with its excerpt, or in the plain form without one or if miette fails (or
// panics: a renderer bug must cost a snippet, never the command, the reload or the request).
#[cfg(feature = "fancy")]
fn render_one(
    handler: &miette::GraphicalReportHandler,
    d: &Diagnostic,
    excerpt: Option<crate::rules::excerpt::Excerpt>,
) -> String {
    let drawn = excerpt.and_then(|excerpt| {
        let sourced = SourcedDiagnostic {
            diagnostic: d,
            excerpt,
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut buf = String::new();
            handler.render_report(&mut buf, &sourced).ok().map(|()| buf)
        }))
        .ok()
        .flatten()
    });
    match drawn {
        Some(mut buf) => {
            if let Some(job) = &d.job {
                // Outside miette's report, which would wrap it: a line to paste as it is.
                buf.push_str(&format!("  job: {job}\n"));
            }
            buf
        }
        None => format!("{d}\n"),
    }
}

/// Renders diagnostics for people, each in its plain form (code, file, line and column,
/// message, help), one per paragraph. The `fancy` feature adds the offending source lines.
#[cfg(not(feature = "fancy"))]
pub fn render_human(
    diagnostics: &[Diagnostic],
    _sources: &dyn Fn(&str) -> Option<String>,
) -> String {
    diagnostics.iter().map(|d| format!("{d}\n\n")).collect()
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn the_index_agrees_with_scanning() {
        let text = "ab\nçd\n\nlast é line\nx";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.line_col(text, offset),
                line_col(text, offset),
                "{offset}"
            );
        }
        for line in 1..=7 {
            assert_eq!(
                index.line_start(text, line),
                offset_of(text, line, 1),
                "{line}"
            );
        }
    }
}
