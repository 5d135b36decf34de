//! Building a [`RuleSet`] from files: parse, resolve references, compile, validate.
//!
//! Loading never stops at the first problem: every file is parsed and every check runs on
//! what could be built, so `jobpoints check` reports everything in one pass.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use jiff::Timestamp;
use rhai::{AST, Dynamic, Engine, Scope};
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::engine::formula::Program;
use crate::engine::formula::sandbox::hardened_engine;
use crate::engine::model::{
    CatalogEntry, DerivedSpec, Example, Formula, InputSpec, JobKind, PointKind, Pricing, Rule,
    RuleScope, RuleSet, RuleVersion, Threshold, Value,
};
use crate::engine::points::Points;
use crate::engine::time::parse_time;
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::files::RuleFiles;
use crate::rules::schema::{
    CatalogFile, InputType, JobKindToml, KindsFile, PolicyFile, RuleFile, VersionToml,
};
use crate::rules::validate;

/// Reserved file names at the root of `rules/`.
pub const KINDS_FILE: &str = "kinds.toml";
pub const POLICY_FILE: &str = "policy.toml";
pub const CATALOG_FILE: &str = "catalog.toml";
/// Shared formulas live here as `NAME.rhai`.
pub const FORMULAS_DIR: &str = "formulas/";
/// Largest rules file that is parsed. The shipped rules are about 20 KB in all; a hostile
/// pull request with a giant file is refused before the TOML parser or rhai spends time on it.
pub const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;

/// The result of loading: a rule set when there were no errors, and every diagnostic.
pub struct Loaded {
    pub ruleset: Option<RuleSet>,
    pub diagnostics: Vec<Diagnostic>,
    /// The files that were read (kept for rendering diagnostics).
    pub files: RuleFiles,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads, compiles and validates a rule set (the same checks as `jobpoints check`).
pub fn load(files: RuleFiles) -> Loaded {
    let mut b = Builder {
        files: &files,
        engine: hardened_engine(),
        diags: Vec::new(),
        formula_cache: HashMap::new(),
        used_formulas: Default::default(),
    };
    let ruleset = b.build();
    let Builder { mut diags, .. } = b;
    diags.extend(crate::rules::files::refusals(&files));
    let ruleset = ruleset.map(|mut rs| {
        rs.files = files.clone();
        diags.extend(validate::validate(&rs));
        rs
    });
    // Stable order: by file, then position, then code.
    diags.sort_by(|a, b| {
        (
            &a.file,
            a.span.as_ref().map(|s| s.start),
            a.code,
            &a.message,
        )
            .cmp(&(
                &b.file,
                b.span.as_ref().map(|s| s.start),
                b.code,
                &b.message,
            ))
    });
    diags.dedup();
    let has_errors = diags.iter().any(Diagnostic::is_error);
    Loaded {
        ruleset: if has_errors { None } else { ruleset },
        diagnostics: diags,
        files,
    }
}

struct Builder<'f> {
    files: &'f RuleFiles,
    engine: Engine,
    diags: Vec<Diagnostic>,
    /// Compiled formulas by (reference, job kind): a shared formula compiles once per kind.
    formula_cache: HashMap<(String, String), Option<Arc<Formula>>>,
    used_formulas: std::collections::BTreeSet<String>,
}

fn span_of<T>(s: &Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

impl<'f> Builder<'f> {
    fn text(&mut self, rel: &str) -> Option<&'f str> {
        let bytes = self.files.files.get(rel)?;
        if bytes.len() > MAX_RULE_FILE_BYTES {
            self.diags.push(
                Diagnostic::error(
                    Code::FileTooLarge,
                    format!(
                        "file is {} bytes, more than the limit of {MAX_RULE_FILE_BYTES}",
                        bytes.len()
                    ),
                )
                .with_help("rule files are short; split the file or remove what it does not need")
                .in_file(rel),
            );
            return None;
        }
        match std::str::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(Code::Io, format!("file is not valid UTF-8: {e}"))
                        .in_file(rel),
                );
                None
            }
        }
    }

    fn err(
        &mut self,
        code: Code,
        file: &str,
        span: Option<Range<usize>>,
        msg: String,
        help: Option<&str>,
    ) {
        let src = self.files.text(file).unwrap_or("");
        let mut d = Diagnostic::error(code, msg).at(file, src, span);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.push(d);
    }

    fn warn(
        &mut self,
        code: Code,
        file: &str,
        span: Option<Range<usize>>,
        msg: String,
        help: Option<&str>,
    ) {
        let src = self.files.text(file).unwrap_or("");
        let mut d = Diagnostic::warning(code, msg).at(file, src, span);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.push(d);
    }

    /// Parses a TOML file into `T`, reporting syntax and shape errors.
    fn parse<T: DeserializeOwned>(&mut self, rel: &str) -> Option<T> {
        let text = self.text(rel)?;
        if let Err(e) = text.parse::<toml::Table>() {
            self.err(
                Code::TomlSyntax,
                rel,
                e.span(),
                format!("invalid TOML: {}", e.message().trim()),
                Some("see https://toml.io for the syntax"),
            );
            return None;
        }
        match toml::from_str::<T>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = e.message().trim().to_string();
                let (code, help) = if msg.starts_with("unknown field") {
                    (
                        Code::UnknownField,
                        "remove the key or fix its spelling; rules/README.md lists every key",
                    )
                } else if msg.starts_with("missing field") {
                    (
                        Code::MissingField,
                        "add the key; rules/README.md lists what each table needs",
                    )
                } else {
                    (Code::BadType, "rules/README.md gives the type of every key")
                };
                self.err(code, rel, e.span(), msg, Some(help));
                None
            }
        }
    }

    fn build(&mut self) -> Option<RuleSet> {
        let files = self.files;
        if !files.files.contains_key(KINDS_FILE) {
            self.diags.push(
                Diagnostic::error(
                    Code::MissingFile,
                    format!("the rule set has no `{KINDS_FILE}`"),
                )
                .with_help("every rule set declares its point kinds and job kinds in kinds.toml at its root")
                .in_file(KINDS_FILE),
            );
        }
        let kinds: Option<KindsFile> = if files.files.contains_key(KINDS_FILE) {
            self.parse(KINDS_FILE)
        } else {
            None
        };
        let (point_kinds, job_kinds) = match kinds {
            Some(k) => self.build_kinds(k),
            None => (IndexMap::new(), IndexMap::new()),
        };

        let floors = self.build_policy(&job_kinds);
        let mut catalog = self.build_catalog();

        let mut family_rules: BTreeMap<String, Rule> = BTreeMap::new();
        let mut model_rules: BTreeMap<String, Rule> = BTreeMap::new();
        let rule_paths: Vec<String> = files
            .files
            .keys()
            .filter(|p| {
                p.ends_with(".toml")
                    && !matches!(p.as_str(), KINDS_FILE | POLICY_FILE | CATALOG_FILE)
            })
            .cloned()
            .collect();
        for path in rule_paths {
            let Some(rule) = self.build_rule(&path, &job_kinds) else {
                continue;
            };
            let (map, what, code) = match rule.scope {
                RuleScope::Family => (&mut family_rules, "family", Code::DuplicateRule),
                RuleScope::Model => (&mut model_rules, "model", Code::DuplicateModel),
            };
            if let Some(prev) = map.get(&rule.id) {
                let msg = format!("{what} `{}` already has a rule in `{}`", rule.id, prev.file);
                self.err(
                    code,
                    &path,
                    Some(rule.span.clone()),
                    msg,
                    Some("merge the versions into one file"),
                );
                continue;
            }
            map.insert(rule.id.clone(), rule);
        }

        // A model rule adds its model to the catalog; it must agree with catalog.toml.
        for rule in model_rules.values() {
            match catalog.get(&rule.id) {
                Some(entry) if entry.family != rule.family => {
                    let msg = format!(
                        "model `{}` is in family `{}` here but `{}` in {}",
                        rule.id, rule.family, entry.family, entry.file
                    );
                    self.err(
                        Code::CatalogConflict,
                        &rule.file.clone(),
                        Some(rule.span.clone()),
                        msg,
                        Some("make the two agree"),
                    );
                }
                Some(_) => {}
                None => {
                    catalog.insert(
                        rule.id.clone(),
                        CatalogEntry {
                            family: rule.family.clone(),
                            file: rule.file.clone(),
                            span: rule.span.clone(),
                        },
                    );
                }
            }
            if let Some(fr) = family_rules.get(&rule.family) {
                if fr.kind != rule.kind {
                    let msg = format!(
                        "model rule `{}` prices job kind `{}` but its family `{}` prices `{}`",
                        rule.id, rule.kind, rule.family, fr.kind
                    );
                    self.err(
                        Code::CatalogConflict,
                        &rule.file.clone(),
                        Some(rule.span.clone()),
                        msg,
                        None,
                    );
                }
            }
        }

        // Catalog families nobody prices: their models will get `no_rule`; say so.
        let mut unpriced: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
        for (model, entry) in &catalog {
            if !family_rules.contains_key(&entry.family) && !model_rules.contains_key(model) {
                let e = unpriced
                    .entry(entry.family.as_str())
                    .or_insert((Vec::new(), usize::MAX));
                e.0.push(model);
                e.1 = e.1.min(entry.span.start);
            }
        }
        let unpriced: Vec<(String, Vec<String>, usize)> = unpriced
            .into_iter()
            .map(|(f, (ms, at))| {
                (
                    f.to_string(),
                    ms.into_iter().map(String::from).collect(),
                    at,
                )
            })
            .collect();
        for (family, models, at) in unpriced {
            let msg = format!(
                "family `{family}` has no rule, so its models ({}) will get `no_rule`",
                models.join(", ")
            );
            self.warn(
                Code::FamilyWithoutRule,
                CATALOG_FILE,
                Some(at..at),
                msg,
                Some("add a rule file for the family; a version with `no_rule = \"why\"` records a deliberate decision"),
            );
        }

        // Shared formulas nobody uses.
        let unused: Vec<String> = files
            .files
            .keys()
            .filter(|p| p.starts_with(FORMULAS_DIR) && p.ends_with(".rhai"))
            .filter(|p| !self.used_formulas.contains(*p))
            .cloned()
            .collect();
        for p in unused {
            self.warn(
                Code::UnusedFormula,
                &p,
                Some(0..0),
                "no rule uses this formula".into(),
                Some("delete it, or name it in a version with `formula = \"NAME\"`"),
            );
        }

        if self.diags.iter().any(Diagnostic::is_error) && job_kinds.is_empty() {
            return None;
        }
        let engine = std::mem::replace(&mut self.engine, hardened_engine());
        Some(RuleSet {
            origin: files.origin.clone(),
            hash: files.hash().into(),
            point_kinds,
            job_kinds,
            floors,
            catalog,
            family_rules,
            model_rules,
            engine: Arc::new(engine),
            files: RuleFiles::new(files.origin.clone(), BTreeMap::new()),
        })
    }

    fn build_kinds(
        &mut self,
        k: KindsFile,
    ) -> (IndexMap<String, PointKind>, IndexMap<String, JobKind>) {
        let mut points = IndexMap::new();
        for (name, p) in k.points {
            points.insert(
                name.clone(),
                PointKind {
                    name,
                    description: p.into_inner().description,
                },
            );
        }
        let mut jobs = IndexMap::new();
        for (name, spanned) in k.jobs {
            let span = spanned.span();
            let jk: JobKindToml = spanned.into_inner();
            if !points.contains_key(jk.points.get_ref()) {
                let msg = format!(
                    "job kind `{name}` earns point kind `{}`, which `[points]` does not declare",
                    jk.points.get_ref()
                );
                self.err(
                    Code::UnknownPointKind,
                    KINDS_FILE,
                    span_of(&jk.points),
                    msg,
                    Some("declare it under [points] or fix the name"),
                );
            }
            let mut inputs = Vec::new();
            for (iname, ispec) in jk.inputs {
                let ispan = ispec.span();
                let i = ispec.into_inner();
                let min = i.min.as_ref().map(|m| *m.get_ref());
                let max = i.max.as_ref().map(|m| *m.get_ref());
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi || lo.is_nan() || hi.is_nan() {
                        let msg = format!("input `{iname}` has min {lo} above max {hi}");
                        self.err(Code::BadBounds, KINDS_FILE, Some(ispan.clone()), msg, None);
                    }
                }
                if i.ty == InputType::Int {
                    for (bound, v) in [("min", min), ("max", max)] {
                        if let Some(v) = v {
                            if v.fract() != 0.0 || v.abs() > 9.0e15 {
                                let msg = format!(
                                    "integer input `{iname}` has a non-integer {bound} `{v}`"
                                );
                                self.err(
                                    Code::BadBounds,
                                    KINDS_FILE,
                                    Some(ispan.clone()),
                                    msg,
                                    None,
                                );
                            }
                        }
                    }
                }
                let from = if i.from.is_empty() {
                    vec![vec![iname.clone()]]
                } else {
                    i.from
                        .iter()
                        .map(|p| p.split('.').map(String::from).collect())
                        .collect()
                };
                inputs.push(InputSpec {
                    name: iname,
                    ty: i.ty,
                    min,
                    max,
                    from,
                    description: i.description,
                });
            }
            if inputs.is_empty() {
                let msg = format!("job kind `{name}` declares no inputs");
                self.err(
                    Code::MissingField,
                    KINDS_FILE,
                    Some(span.clone()),
                    msg,
                    None,
                );
            }
            let mut derived: Vec<DerivedSpec> = Vec::new();
            for (dname, expr) in jk.derived {
                let mut scope = Scope::new();
                for n in inputs
                    .iter()
                    .map(|i| &i.name)
                    .chain(derived.iter().map(|d| &d.name))
                {
                    scope.push(n.clone(), Dynamic::UNIT);
                }
                match self
                    .engine
                    .compile_expression_with_scope(&scope, expr.get_ref())
                {
                    Ok(ast) => {
                        let names: Vec<&str> = inputs
                            .iter()
                            .map(|i| i.name.as_str())
                            .chain(derived.iter().map(|d| d.name.as_str()))
                            .collect();
                        let compiled = Program::compile(expr.get_ref(), &names);
                        derived.push(DerivedSpec {
                            name: dname,
                            expr: expr.get_ref().clone(),
                            ast,
                            compiled,
                        })
                    }
                    Err(e) => {
                        let msg = format!("derived value `{dname}` does not compile: {e}");
                        self.err(Code::FormulaCompile, KINDS_FILE, span_of(&expr), msg, Some("derived values are rhai expressions over the inputs, e.g. \"width * height\""));
                    }
                }
            }
            jobs.insert(
                name.clone(),
                JobKind {
                    name,
                    points: jk.points.into_inner(),
                    description: jk.description,
                    inputs,
                    derived,
                },
            );
        }
        (points, jobs)
    }

    fn build_policy(
        &mut self,
        job_kinds: &IndexMap<String, JobKind>,
    ) -> IndexMap<String, Vec<Threshold>> {
        let mut floors = IndexMap::new();
        if !self.files.files.contains_key(POLICY_FILE) {
            self.diags.push(
                Diagnostic::warning(
                    Code::NoPolicy,
                    format!("the rule set has no `{POLICY_FILE}`: no protocol floors are enforced"),
                )
                .in_file(POLICY_FILE),
            );
            return floors;
        }
        let Some(policy) = self.parse::<PolicyFile>(POLICY_FILE) else {
            return floors;
        };
        for (kind, table) in policy.floors {
            if job_kinds.is_empty() {
                // kinds.toml is missing or broken and already reported; do not cascade.
                break;
            }
            let Some(jk) = job_kinds.get(&kind) else {
                let msg =
                    format!("floors name job kind `{kind}`, which kinds.toml does not declare");
                self.err(
                    Code::UnknownJobKind,
                    POLICY_FILE,
                    span_of(&table),
                    msg,
                    None,
                );
                continue;
            };
            let mut list = Vec::new();
            for (name, v) in table.into_inner() {
                if !jk.has_value(&name) {
                    let msg = format!(
                        "floor `{name}` is not an input or derived value of job kind `{kind}`"
                    );
                    self.err(Code::UnknownInput, POLICY_FILE, span_of(&v), msg, None);
                    continue;
                }
                let slot = jk.value_names().position(|n| n == name).unwrap_or(0);
                list.push(Threshold {
                    name,
                    min: v.into_inner(),
                    slot,
                });
            }
            floors.insert(kind, list);
        }
        floors
    }

    fn build_catalog(&mut self) -> BTreeMap<String, CatalogEntry> {
        let mut catalog = BTreeMap::new();
        if !self.files.files.contains_key(CATALOG_FILE) {
            return catalog;
        }
        if let Some(c) = self.parse::<CatalogFile>(CATALOG_FILE) {
            for (model, family) in c.models {
                catalog.insert(
                    model,
                    CatalogEntry {
                        span: family.span(),
                        family: family.into_inner(),
                        file: CATALOG_FILE.to_string(),
                    },
                );
            }
        }
        catalog
    }

    fn build_rule(&mut self, path: &str, job_kinds: &IndexMap<String, JobKind>) -> Option<Rule> {
        let file: RuleFile = self.parse(path)?;
        let header_span = file.rule.span();
        let header = file.rule.into_inner();
        let kind_name = header.kind.get_ref().clone();
        let kind = job_kinds.get(&kind_name);
        if kind.is_none() && !job_kinds.is_empty() {
            let msg = format!(
                "job kind `{kind_name}` is not declared in kinds.toml (declared: {})",
                job_kinds
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.err(Code::UnknownJobKind, path, span_of(&header.kind), msg, None);
        }
        let (scope, id, family) = match (&header.family, &header.model) {
            (Some(f), None) => (RuleScope::Family, f.get_ref().clone(), f.get_ref().clone()),
            (Some(f), Some(m)) => (RuleScope::Model, m.get_ref().clone(), f.get_ref().clone()),
            (None, _) => {
                self.err(
                    Code::MissingField,
                    path,
                    Some(header_span.clone()),
                    "`[rule]` needs `family` (a family rule) or `family` and `model` (a model rule)".into(),
                    Some("add `family = \"sd15\"`"),
                );
                return None;
            }
        };
        if file.versions.is_empty() {
            self.err(
                Code::EmptyRule,
                path,
                Some(header_span.clone()),
                format!("rule `{id}` has no `[[version]]`"),
                Some("add at least one [[version]] table"),
            );
        }
        let mut versions: Vec<RuleVersion> = Vec::new();
        for v in file.versions {
            if let Some(rv) = self.build_version(path, &id, v, kind) {
                versions.push(rv);
            }
        }
        self.check_version_order(path, &id, &versions);
        versions.sort_by_key(|v| v.effective_from);
        for v in &mut versions {
            v.label = format!("{id}@{}", v.version);
        }
        Some(Rule {
            id,
            scope,
            family,
            kind: kind_name,
            file: path.to_string(),
            span: header_span,
            description: header.description,
            versions,
        })
    }

    fn check_version_order(&mut self, path: &str, id: &str, versions: &[RuleVersion]) {
        let src = self.files.text(path).unwrap_or("");
        for pair in versions.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let span = Some(
                crate::rules::diagnostic::offset_of(src, b.line, 1)
                    ..crate::rules::diagnostic::offset_of(src, b.line + 1, 1),
            );
            if b.version <= a.version {
                let msg = format!(
                    "rule `{id}`: version {} follows version {}; versions must increase",
                    b.version, a.version
                );
                self.err(
                    Code::VersionOrder,
                    path,
                    span,
                    msg,
                    Some(
                        "list versions oldest first with increasing numbers; never reuse a number",
                    ),
                );
            } else if b.effective_from == a.effective_from {
                let msg = format!(
                    "rule `{id}`: versions {} and {} both take effect at {}",
                    a.version,
                    b.version,
                    crate::engine::time::utc_string(a.effective_from)
                );
                self.err(
                    Code::DuplicateEffectiveDate,
                    path,
                    span,
                    msg,
                    Some("a job's time must pick exactly one version"),
                );
            } else if b.effective_from < a.effective_from {
                let msg = format!(
                    "rule `{id}`: version {} takes effect before version {}",
                    b.version, a.version
                );
                self.err(
                    Code::VersionOrder,
                    path,
                    span,
                    msg,
                    Some("a later version must take effect later"),
                );
            }
        }
    }

    fn build_version(
        &mut self,
        path: &str,
        id: &str,
        spanned: Spanned<VersionToml>,
        kind: Option<&JobKind>,
    ) -> Option<RuleVersion> {
        let vspan = spanned.span();
        let src = self.files.text(path).unwrap_or("");
        let line = crate::rules::diagnostic::line_col(src, vspan.start).0;
        let v = spanned.into_inner();
        let number = *v.version.get_ref();
        let label = format!("rule `{id}` version {number}");

        let effective_from = match v.effective_from.get_ref() {
            toml::Value::Datetime(dt) => parse_time(&dt.to_string()),
            toml::Value::String(s) => parse_time(s),
            other => Err(format!("expected a date, got a {}", other.type_str())),
        };
        let effective_from = match effective_from {
            Ok(t) => t,
            Err(e) => {
                self.err(
                    Code::BadDate,
                    path,
                    span_of(&v.effective_from),
                    format!("{label}: effective_from: {e}"),
                    Some("write a date like 2024-04-01 or 2024-04-01T00:00:00Z"),
                );
                return None;
            }
        };
        let ten_years = jiff::SignedDuration::from_hours(24 * 3653);
        if effective_from
            > Timestamp::now()
                .saturating_add(ten_years)
                .unwrap_or(Timestamp::MAX)
        {
            self.warn(
                Code::FutureDate,
                path,
                span_of(&v.effective_from),
                format!("{label} takes effect more than ten years from now"),
                Some("is the year a typo?"),
            );
        }

        let mut thresholds = Vec::new();
        if let Some(min) = &v.min {
            for (name, value) in min.get_ref() {
                if let Some(k) = kind {
                    if !k.has_value(name) {
                        let msg = format!(
                            "{label}: threshold `{name}` is not an input or derived value of job kind `{}`",
                            k.name
                        );
                        self.err(
                            Code::UnknownInput,
                            path,
                            span_of(value),
                            msg,
                            Some(&format!(
                                "known: {}",
                                k.value_names().collect::<Vec<_>>().join(", ")
                            )),
                        );
                        continue;
                    }
                }
                let slot = kind
                    .and_then(|k| k.value_names().position(|n| n == name))
                    .unwrap_or(0);
                thresholds.push(Threshold {
                    name: name.clone(),
                    min: *value.get_ref(),
                    slot,
                });
            }
        }

        let formula_keys = [
            v.formula.is_some(),
            v.formula_file.is_some(),
            v.expr.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let pricing = if let Some(reason) = &v.no_rule {
            if formula_keys > 0 || v.multiplier.is_some() {
                self.err(Code::FormulaChoice, path, Some(vspan.clone()), format!("{label} says `no_rule` but also gives a formula or multiplier"), Some("a version either prices (formula, multiplier) or records why it does not (no_rule)"));
            }
            Pricing::NoRule {
                reason: reason.get_ref().clone(),
            }
        } else {
            if formula_keys != 1 {
                let msg = if formula_keys == 0 {
                    format!("{label} gives no formula")
                } else {
                    format!("{label} gives more than one of `formula`, `formula_file`, `expr`")
                };
                self.err(Code::FormulaChoice, path, Some(vspan.clone()), msg, Some("give exactly one: formula = \"waifu_season1\" (shared), formula_file = \"x.rhai\", or expr = \"...\"; or no_rule = \"reason\""));
                return None;
            }
            let multiplier = v.multiplier.as_ref().map_or(1.0, |m| *m.get_ref());
            if !multiplier.is_finite() || multiplier < 0.0 {
                self.err(
                    Code::BadMultiplier,
                    path,
                    v.multiplier.as_ref().and_then(span_of),
                    format!("{label}: multiplier `{multiplier}` must be a finite number ≥ 0"),
                    None,
                );
                return None;
            }
            let kind = kind?;
            let formula = self.resolve_formula(path, &label, &v, kind)?;
            Pricing::Priced {
                formula,
                multiplier,
                thresholds,
            }
        };

        let mut examples = Vec::new();
        for ex in &v.examples {
            if let Some(e) = self.build_example(path, &label, ex, kind) {
                examples.push(e);
            }
        }

        Some(RuleVersion {
            version: number,
            label: String::new(),
            effective_from,
            source: v.source,
            notes: v.notes,
            assumptions: v.assumptions,
            pricing,
            examples,
            line,
        })
    }

    fn resolve_formula(
        &mut self,
        path: &str,
        label: &str,
        v: &VersionToml,
        kind: &JobKind,
    ) -> Option<Arc<Formula>> {
        // (cache key, name shown to users, file holding the text, text, span of the reference)
        let (key, name, file, text, span): (String, String, String, String, Option<Range<usize>>) =
            if let Some(f) = &v.formula {
                let file = format!("{FORMULAS_DIR}{}.rhai", f.get_ref());
                let Some(text) = self.text(&file) else {
                    if self.files.files.contains_key(&file) {
                        // Present but unreadable (too large, not UTF-8): already reported.
                        return None;
                    }
                    let known: Vec<String> = self
                        .files
                        .files
                        .keys()
                        .filter_map(|p| {
                            p.strip_prefix(FORMULAS_DIR)
                                .and_then(|n| n.strip_suffix(".rhai"))
                        })
                        .map(|n| format!("`{n}`"))
                        .collect();
                    let msg = format!(
                        "{label}: formula `{}` does not exist (no `{file}`)",
                        f.get_ref()
                    );
                    self.err(
                        Code::UnknownFormula,
                        path,
                        span_of(f),
                        msg,
                        Some(&format!("shared formulas: {}", known.join(", "))),
                    );
                    return None;
                };
                self.used_formulas.insert(file.clone());
                (
                    file.clone(),
                    f.get_ref().clone(),
                    file,
                    text.to_string(),
                    span_of(f),
                )
            } else if let Some(f) = &v.formula_file {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let file = normalize(&if dir.is_empty() {
                    f.get_ref().clone()
                } else {
                    format!("{dir}/{}", f.get_ref())
                });
                let Some(text) = self.text(&file) else {
                    if self.files.files.contains_key(&file) {
                        return None;
                    }
                    let msg = format!(
                        "{label}: formula file `{}` does not exist (looked for `{file}`)",
                        f.get_ref()
                    );
                    self.err(
                        Code::UnknownFormula,
                        path,
                        span_of(f),
                        msg,
                        Some("formula_file is relative to the TOML file"),
                    );
                    return None;
                };
                self.used_formulas.insert(file.clone());
                (
                    file.clone(),
                    f.get_ref().rsplit('/').next().unwrap_or("").to_string(),
                    file,
                    text.to_string(),
                    span_of(f),
                )
            } else {
                let e = v.expr.as_ref()?;
                (
                    format!("{path}#{}", e.span().start),
                    "inline".to_string(),
                    path.to_string(),
                    e.get_ref().clone(),
                    span_of(e),
                )
            };
        let cache_key = (key, kind.name.clone());
        if let Some(cached) = self.formula_cache.get(&cache_key) {
            return cached.clone();
        }
        let mut scope = Scope::new();
        for n in kind.value_names() {
            scope.push(n.to_string(), Dynamic::UNIT);
        }
        let compiled: Result<AST, _> = self.engine.compile_with_scope(&scope, &text);
        let result = match compiled {
            Ok(ast) => {
                let names: Vec<&str> = kind.value_names().collect();
                let compiled = Program::compile(&text, &names);
                Some(Arc::new(Formula {
                    name,
                    file: file.clone(),
                    source: text,
                    ast,
                    compiled,
                }))
            }
            Err(e) => {
                let pos = e.position();
                let help = format!(
                    "formulas are rhai; they may use {} and must end in a number",
                    kind.value_names()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if file == path {
                    // Inline: point at the string, name the position inside it.
                    let msg = format!(
                        "{label}: formula does not compile: {} (formula {pos})",
                        e.err_type()
                    );
                    self.err(Code::FormulaCompile, path, span, msg, Some(&help));
                } else {
                    let src = self.files.text(&file).unwrap_or("");
                    let off = match (pos.line(), pos.position()) {
                        (Some(l), Some(c)) => Some(crate::rules::diagnostic::offset_of(src, l, c)),
                        (Some(l), None) => Some(crate::rules::diagnostic::offset_of(src, l, 1)),
                        _ => None,
                    };
                    let msg = format!(
                        "formula `{file}` does not compile: {} (used by {label})",
                        e.err_type()
                    );
                    self.err(
                        Code::FormulaCompile,
                        &file,
                        off.map(|o| o..o + 1),
                        msg,
                        Some(&help),
                    );
                }
                None
            }
        };
        self.formula_cache.insert(cache_key, result.clone());
        result
    }

    fn build_example(
        &mut self,
        path: &str,
        label: &str,
        ex: &Spanned<IndexMap<String, Spanned<toml::Value>>>,
        kind: Option<&JobKind>,
    ) -> Option<Example> {
        let kind = kind?;
        let table = ex.get_ref();
        let span = span_of(ex);
        let fail = |b: &mut Self, msg: String| {
            b.err(Code::ExampleInvalid, path, span.clone(), format!("{label}: example: {msg}"), Some("an example lists every input of the job kind, `points`, and optionally `status = \"below_threshold\"`"));
        };
        let points = match table.get("points").map(|p| p.get_ref()) {
            Some(toml::Value::Integer(i)) if *i >= 0 => {
                Points::from_micros(i.saturating_mul(1_000_000))
            }
            Some(toml::Value::Float(f)) => match Points::from_f64(*f) {
                Ok(p) => p,
                Err(e) => {
                    fail(self, format!("`points`: {e}"));
                    return None;
                }
            },
            Some(toml::Value::String(s)) => match s.parse::<Points>() {
                Ok(p) => p,
                Err(e) => {
                    fail(self, e.to_string());
                    return None;
                }
            },
            Some(other) => {
                fail(self, format!("`points` must be a number, got {other}"));
                return None;
            }
            None => {
                fail(self, "missing `points`".into());
                return None;
            }
        };
        let below_threshold = match table.get("status").map(|s| s.get_ref()) {
            None => false,
            Some(toml::Value::String(s)) if s == "ok" => false,
            Some(toml::Value::String(s)) if s == "below_threshold" => true,
            Some(other) => {
                fail(
                    self,
                    format!("`status` must be \"ok\" or \"below_threshold\", got {other}"),
                );
                return None;
            }
        };
        for key in table.keys() {
            if key != "points" && key != "status" && !kind.inputs.iter().any(|i| &i.name == key) {
                fail(
                    self,
                    format!("`{key}` is not an input of job kind `{}`", kind.name),
                );
                return None;
            }
        }
        let mut inputs = Vec::new();
        for spec in &kind.inputs {
            let value = match table.get(&spec.name).map(|v| v.get_ref()) {
                Some(toml::Value::Integer(i)) => Value::Int(*i),
                Some(toml::Value::Float(f)) if spec.ty == InputType::Float => Value::Float(*f),
                Some(other) => {
                    fail(
                        self,
                        format!(
                            "input `{}` must be a number of type {:?}, got {other}",
                            spec.name, spec.ty
                        ),
                    );
                    return None;
                }
                None => {
                    fail(self, format!("missing input `{}`", spec.name));
                    return None;
                }
            };
            inputs.push((spec.name.clone(), value));
        }
        Some(Example {
            inputs,
            points,
            below_threshold,
        })
    }
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
