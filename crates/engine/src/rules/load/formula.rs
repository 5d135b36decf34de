//! Formulas: finding a version's formula (shared in `formulas/`, a file beside the rule, or
//! inline) and compiling it for the job kind, once per formula and kind.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use rhai::{Dynamic, Engine, ParseError, Scope};
use toml::Spanned;

use super::{FORMULAS_DIR, Sink, Site, did_you_mean, span_of};
use crate::engine::formula::Program;
use crate::engine::formula::sandbox::FUNCTIONS;
use crate::engine::model::{Formula, JobKind, UNREADABLE};
use crate::rules::diagnostic::{Code, offset_of};
use crate::rules::schema::VersionToml;

/// A rhai scope declaring `names` (values unknown until a job is scored).
pub(super) fn scope_of(names: &[&str]) -> Scope<'static> {
    let mut scope = Scope::new();
    for n in names {
        scope.push(*n, Dynamic::UNIT);
    }
    scope
}

/// Finds and compiles formulas, remembering what it compiled and which files were used.
pub(super) struct Formulas<'e> {
    engine: &'e Engine,
    /// Compiled formulas by (reference, job kind): a shared formula compiles once per kind,
    /// and one that does not compile is reported once.
    cache: HashMap<(String, String), Option<Arc<Formula>>>,
    /// Formula files that some version names and that could be read.
    used: BTreeSet<String>,
}

/// A formula's text and where it is.
struct Source<'t> {
    /// Name shown to users: the shared formula's name, the file name, or `inline`.
    name: String,
    /// File holding the text.
    file: String,
    text: &'t str,
    /// Span of the reference (or of the inline text) in the rule file.
    span: Option<Range<usize>>,
}

impl<'e> Formulas<'e> {
    pub(super) fn new(engine: &'e Engine) -> Self {
        Formulas {
            engine,
            cache: HashMap::new(),
            used: BTreeSet::new(),
        }
    }

    /// The version's formula compiled for `kind`, or `None` (reported) when it cannot be
    /// found, read or compiled.
    pub(super) fn resolve(
        &mut self,
        sink: &mut Sink,
        site: &Site,
        v: &VersionToml,
        kind: &JobKind,
    ) -> Option<Arc<Formula>> {
        let (key, source) = self.locate(sink, site, v)?;
        let key = (key, kind.name.clone());
        if let Some(cached) = self.cache.get(&key) {
            return cached.clone();
        }
        let compiled = self.compile(sink, site, source, kind);
        self.cache.insert(key, compiled.clone());
        compiled
    }

    /// The cache key and source of the formula the version names.
    fn locate<'f: 't, 't>(
        &mut self,
        sink: &mut Sink<'f>,
        site: &Site,
        v: &'t VersionToml,
    ) -> Option<(String, Source<'t>)> {
        if let Some(f) = &v.formula {
            return self.shared(sink, site, f);
        }
        if let Some(f) = &v.formula_file {
            return self.own_file(sink, site, f);
        }
        let e = v.expr.as_ref()?;
        let source = Source {
            name: "inline".to_string(),
            file: site.path.to_string(),
            text: e.get_ref(),
            span: span_of(e),
        };
        Some((format!("{}#{}", site.path, e.span().start), source))
    }

    /// `formula = "NAME"`: `formulas/NAME.rhai`.
    fn shared<'f>(
        &mut self,
        sink: &mut Sink<'f>,
        site: &Site,
        reference: &Spanned<String>,
    ) -> Option<(String, Source<'f>)> {
        let name = reference.get_ref();
        let file = format!("{FORMULAS_DIR}{name}.rhai");
        let Some(text) = sink.text(&file) else {
            // Present but unreadable (too large, not UTF-8) is already reported.
            if !sink.contains(&file) {
                report_unknown_shared(sink, site, reference, &file);
            }
            return None;
        };
        self.used.insert(file.clone());
        let source = Source {
            name: name.clone(),
            file: file.clone(),
            text,
            span: span_of(reference),
        };
        Some((file, source))
    }

    /// `formula_file = "PATH"`: relative to the rule file.
    fn own_file<'f>(
        &mut self,
        sink: &mut Sink<'f>,
        site: &Site,
        reference: &Spanned<String>,
    ) -> Option<(String, Source<'f>)> {
        let rel = reference.get_ref();
        let dir = site.path.rsplit_once('/').map_or("", |(d, _)| d);
        let file = normalize(&if dir.is_empty() {
            rel.clone()
        } else {
            format!("{dir}/{rel}")
        });
        let Some(text) = sink.text(&file) else {
            if !sink.contains(&file) {
                let msg = format!(
                    "{}: formula file `{rel}` does not exist (looked for `{file}`)",
                    site.label
                );
                let help = Some("formula_file is relative to the TOML file");
                sink.error(
                    Code::UnknownFormula,
                    site.path,
                    span_of(reference),
                    msg,
                    help,
                );
            }
            return None;
        };
        self.used.insert(file.clone());
        let source = Source {
            name: rel.rsplit('/').next().unwrap_or("").to_string(),
            file: file.clone(),
            text,
            span: span_of(reference),
        };
        Some((file, source))
    }

    fn compile(
        &self,
        sink: &mut Sink,
        site: &Site,
        source: Source,
        kind: &JobKind,
    ) -> Option<Arc<Formula>> {
        let names: Vec<&str> = kind.readable_names();
        let ast = match self
            .engine
            .compile_with_scope(&scope_of(&names), source.text)
        {
            Ok(ast) => ast,
            Err(e) => {
                report_compile_error(sink, site, &source, kind, &e);
                return None;
            }
        };
        // rhai finds an unknown function only when a job calls it: name it now, as such.
        let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_string()).collect();
        if let Some((name, at)) = unknown_call(source.text, &own) {
            report_unknown_function(sink, site, &source, name, at, &own);
            return None;
        }
        Some(Arc::new(Formula {
            compiled: Program::compile(source.text, &names),
            name: source.name,
            file: source.file,
            source: source.text.to_string(),
            ast,
        }))
    }

    /// Shared formulas that no version uses (or that could not be read).
    pub(super) fn report_unused(self, sink: &mut Sink) {
        let files = sink.files();
        let unused = (files.files.keys())
            .filter(|p| p.starts_with(FORMULAS_DIR) && p.ends_with(".rhai"))
            .filter(|p| !self.used.contains(*p));
        for p in unused {
            let help = Some("delete it, or name it in a version with `formula = \"NAME\"`");
            let msg = "no rule uses this formula".to_string();
            sink.warning(Code::UnusedFormula, p, Some(0..0), msg, help);
        }
    }
}

fn report_unknown_shared(sink: &mut Sink, site: &Site, reference: &Spanned<String>, file: &str) {
    let names: Vec<&str> = (sink.files().files.keys())
        .filter_map(|p| p.strip_prefix(FORMULAS_DIR)?.strip_suffix(".rhai"))
        .collect();
    let known: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let msg = format!(
        "{}: formula `{}` does not exist (no `{file}`)",
        site.label,
        reference.get_ref()
    );
    let help = match did_you_mean(reference.get_ref(), names.iter().copied()) {
        Some(hint) => format!("{hint} (shared formulas: {})", known.join(", ")),
        None => format!("shared formulas: {}", known.join(", ")),
    };
    sink.error(
        Code::UnknownFormula,
        site.path,
        span_of(reference),
        msg,
        Some(&help),
    );
}

/// The first call in `text` (outside comments and strings) of a function that is neither
/// one formulas have ([`FUNCTIONS`]) nor one the script defines (`own`), with its offset. A
/// method call (`x.len()`) is rhai's to judge.
fn unknown_call<'t>(text: &'t str, own: &[String]) -> Option<(&'t str, usize)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut previous: Option<&str> = None;
    let mut after_dot = false;
    while i < bytes.len() {
        let c = bytes[i];
        if text[i..].starts_with("//") {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(bytes.len(), |n| i + n + 4);
        } else if c == b'"' || c == b'`' || c == b'\'' {
            i = (text[i + 1..].find(c as char)).map_or(bytes.len(), |n| i + n + 2);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            let rest = text[i..].trim_start();
            let call = rest.starts_with('(') && !after_dot && previous != Some("fn");
            if call && !FUNCTIONS.contains(&word) && !own.iter().any(|f| f == word) {
                return Some((word, start));
            }
            previous = Some(word);
            after_dot = false;
        } else {
            if !c.is_ascii_whitespace() {
                after_dot = c == b'.';
                previous = None;
            }
            i += 1;
        }
    }
    None
}

fn report_unknown_function(
    sink: &mut Sink,
    site: &Site,
    source: &Source,
    name: &str,
    at: usize,
    own: &[String],
) {
    let known = FUNCTIONS
        .iter()
        .copied()
        .chain(own.iter().map(String::as_str));
    let mut help = format!(
        "formulas may call {} and the functions they define with `fn`",
        FUNCTIONS[..13]
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(hint) = did_you_mean(name, known) {
        help = format!("{hint} ({help})");
    }
    let msg = format!(
        "{}: formula calls `{name}`, which is not a function formulas have",
        site.label
    );
    // An inline formula points at its string; a file at the call.
    let (file, span) = if source.file == site.path {
        (site.path, source.span.clone())
    } else {
        (source.file.as_str(), Some(at..at + name.len()))
    };
    sink.error(Code::FormulaCompile, file, span, msg, Some(&help));
}

/// An inline formula's error points at the string in the rule file; a file's at the
/// position in that file.
fn report_compile_error(
    sink: &mut Sink,
    site: &Site,
    source: &Source,
    kind: &JobKind,
    e: &ParseError,
) {
    let help = compile_help(kind, &kind.readable_names(), &e.err_type().to_string());
    let pos = e.position();
    if source.file == site.path {
        let msg = format!(
            "{}: formula does not compile: {} (formula {pos})",
            site.label,
            e.err_type()
        );
        sink.error(
            Code::FormulaCompile,
            site.path,
            source.span.clone(),
            msg,
            Some(&help),
        );
        return;
    }
    let src = sink.source(&source.file);
    let offset = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => Some(offset_of(src, l, c)),
        (Some(l), None) => Some(offset_of(src, l, 1)),
        _ => None,
    };
    let msg = format!(
        "formula `{}` does not compile: {} (used by {})",
        source.file,
        e.err_type(),
        site.label
    );
    let span = offset.map(|o| o..o + 1);
    sink.error(Code::FormulaCompile, &source.file, span, msg, Some(&help));
}

/// The variable a rhai compile error says is undefined (`Undefined variable: NAME`).
pub(super) fn undefined_variable(error: &str) -> Option<&str> {
    let (_, rest) = error.split_once("Undefined variable: ")?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The help for an expression that does not compile over `names` (the readable values): the
/// names it may use, and what to do about a name it may not.
pub(super) fn compile_help(kind: &JobKind, names: &[&str], error: &str) -> String {
    let readable: Vec<&str> = names.iter().copied().filter(|n| *n != UNREADABLE).collect();
    let shown: Vec<String> = readable.iter().map(|n| format!("`{n}`")).collect();
    let mut help = format!(
        "formulas are rhai; they may use {} and must end in a number",
        shown.join(", ")
    );
    if error.contains("'**'") {
        // rhai's own words are "Unknown operator": say what to write instead.
        return "`**` (a power) is not available in formulas: its float result differs between machines, and points must be the same on every one; multiply instead (`x * x` for a square, `x * x * x` for a cube), or use `sqrt(x)` for a square root".to_string();
    }
    if let Some(name) = undefined_variable(error) {
        if kind
            .inputs
            .iter()
            .any(|i| i.name == name && i.may_be_absent())
        {
            return format!(
                "input `{name}` is optional with no default, so a job may leave it out: formulas and derived values cannot read it; give it a `default` in kinds.toml, or use it only in `min`/`max`"
            );
        }
        if let Some(hint) = super::did_you_mean(name, readable.iter().copied()) {
            help = format!("{hint} ({help})");
        }
    }
    help
}

/// Resolves `.` and `..` in a `/`-separated relative path.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}
