//! `kinds.toml`: point kinds, job kinds, their inputs and derived values.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use rhai::Engine;
use toml::Spanned;

use super::formula::{scope_of, undefined_variable};
use super::templates;
use super::tokenizers::{self, PendingWhen, Tokenizers};
use super::{KINDS_FILE, Sink, Site, did_you_mean, span_of};
use crate::engine::formula::Program;
use crate::engine::model::{
    DerivedSpec, ExecutionLimits, InputLimit, InputSpec, JobKind, PointKind, UNREADABLE,
    Unmeasured, Value,
};
use crate::engine::time::utc_string;
use crate::engine::tokens::{PromptTemplate, When};
use crate::rules::diagnostic::{Code, Diagnostic};
use crate::rules::schema::{
    ExecutionLimitsToml, InputLimitToml, InputToml, InputType, JobKindToml, KindsFile,
    UnmeasuredToml,
};

/// The point kinds and job kinds of `kinds.toml` (none when it is missing or broken).
#[derive(Default)]
pub(super) struct Kinds {
    pub points: IndexMap<String, PointKind>,
    pub jobs: IndexMap<String, JobKind>,
}

/// Reads `kinds.toml`, loads its tokenizers and compiles its derived values with `engine`.
pub(super) fn build(sink: &mut Sink, engine: &Engine) -> Kinds {
    let Some(file) = read(sink) else {
        return Kinds::default();
    };
    let tokenizers = tokenizers::build(sink, file.tokenizers);
    let templates = templates::build(sink, file.prompt_templates);
    let points: IndexMap<String, PointKind> = file
        .points
        .into_iter()
        .map(|(name, p)| {
            let description = p.into_inner().description;
            (name.clone(), PointKind { name, description })
        })
        .collect();
    let jobs = file
        .jobs
        .into_iter()
        .map(|(name, jk)| {
            let kind = job_kind(
                sink,
                engine,
                &points,
                &tokenizers,
                &templates,
                name.clone(),
                jk,
            );
            (name, kind)
        })
        .collect();
    Kinds { points, jobs }
}

fn read(sink: &mut Sink) -> Option<KindsFile> {
    if !sink.contains(KINDS_FILE) {
        sink.push(
            Diagnostic::error(
                Code::MissingFile,
                format!("the rule set has no `{KINDS_FILE}`"),
            )
            .with_help(
                "every rule set declares its point kinds and job kinds in kinds.toml at its root",
            )
            .in_file(KINDS_FILE),
        );
        return None;
    }
    sink.parse(KINDS_FILE)
}

fn job_kind(
    sink: &mut Sink,
    engine: &Engine,
    points: &IndexMap<String, PointKind>,
    tokenizers: &Tokenizers,
    templates: &Arc<[PromptTemplate]>,
    name: String,
    spanned: Spanned<JobKindToml>,
) -> JobKind {
    let span = spanned.span();
    let jk = spanned.into_inner();
    if !points.contains_key(jk.points.get_ref()) {
        let msg = format!(
            "job kind `{name}` earns point kind `{}`, which `[points]` does not declare",
            jk.points.get_ref()
        );
        let help = match did_you_mean(jk.points.get_ref(), points.keys().map(String::as_str)) {
            Some(hint) => format!("{hint} (or declare it under [points])"),
            None => "declare it under [points] or fix the name".to_string(),
        };
        sink.error(
            Code::UnknownPointKind,
            KINDS_FILE,
            span_of(&jk.points),
            msg,
            Some(&help),
        );
    }
    let (mut inputs, pending): (Vec<InputSpec>, Vec<Vec<PendingWhen>>) = (jk.inputs.into_iter())
        .map(|(iname, ispec)| input(sink, tokenizers, templates, iname, ispec))
        .unzip();
    resolve_whens(sink, &mut inputs, pending);
    if inputs.is_empty() {
        let msg = format!("job kind `{name}` declares no inputs");
        sink.error(Code::MissingField, KINDS_FILE, Some(span), msg, None);
    }
    let derived = derived_values(sink, engine, &inputs, jk.derived);
    let execution_limits = execution_limits(sink, &name, &inputs, jk.execution_limits);
    JobKind {
        name,
        points: jk.points.into_inner(),
        description: jk.description,
        inputs,
        derived,
        execution_limits,
    }
}

/// The entries of `[[jobs.KIND.execution_limits]]` that could be built, oldest first; each
/// problem is reported (`bad-date`, `unknown-input`, `bad-limit`, `limit-order`).
fn execution_limits(
    sink: &mut Sink,
    kind: &str,
    inputs: &[InputSpec],
    list: Vec<Spanned<ExecutionLimitsToml>>,
) -> Vec<ExecutionLimits> {
    let mut out: Vec<ExecutionLimits> = Vec::new();
    for (n, spanned) in list.into_iter().enumerate() {
        let span = spanned.span();
        let entry = spanned.into_inner();
        let site = Site {
            path: KINDS_FILE,
            span: span.clone(),
            label: format!("execution limits #{} of job kind `{kind}`", n + 1),
        };
        let at = super::rule::effective_from(sink, &site, &entry.effective_from);
        let limits: Vec<InputLimit> = (entry.inputs.iter())
            .filter_map(|(name, l)| input_limit(sink, &site, inputs, name, l))
            .collect();
        let Some(effective_from) = at else { continue };
        if let Some(prev) = out.last()
            && prev.effective_from >= effective_from
        {
            let msg = if prev.effective_from == effective_from {
                format!(
                    "{} takes effect at {}, as the entry before it does",
                    site.label,
                    utc_string(effective_from)
                )
            } else {
                format!(
                    "{} takes effect at {}, before the entry above it ({})",
                    site.label,
                    utc_string(effective_from),
                    utc_string(prev.effective_from)
                )
            };
            let help = Some(
                "list execution limits oldest first, each at its own time: a job's time must pick exactly one entry",
            );
            sink.error(
                Code::LimitOrder,
                KINDS_FILE,
                span_of(&entry.effective_from),
                msg,
                help,
            );
            continue;
        }
        out.push(ExecutionLimits {
            effective_from,
            source: entry.source,
            notes: entry.notes,
            assumptions: entry.assumptions,
            inputs: limits,
            place: sink.place_of(KINDS_FILE, span),
        });
    }
    out
}

/// One input's limit of an entry, or `None` (reported): it must name an input of the kind,
/// round only integers, by an integer ≥ 1, and cap an integer input at an integer.
fn input_limit(
    sink: &mut Sink,
    site: &Site,
    inputs: &[InputSpec],
    name: &str,
    spanned: &Spanned<InputLimitToml>,
) -> Option<InputLimit> {
    let Some(slot) = inputs.iter().position(|i| i.name == name) else {
        let msg = format!("{}: `{name}` is not an input of the job kind", site.label);
        let help = match did_you_mean(name, inputs.iter().map(|i| i.name.as_str())) {
            Some(hint) => hint,
            None => "execution limits clamp the job kind's own inputs (not derived values)".into(),
        };
        sink.error(
            Code::UnknownInput,
            KINDS_FILE,
            Some(spanned.span()),
            msg,
            Some(&help),
        );
        return None;
    };
    let spec = &inputs[slot];
    let l = spanned.get_ref();
    let mut bad = |what: String, span: std::ops::Range<usize>, help: &str| {
        let msg = format!("{}: input `{name}`: {what}", site.label);
        sink.error(Code::BadLimit, KINDS_FILE, Some(span), msg, Some(help));
    };
    let multiple_of = match &l.multiple_of {
        None => None,
        Some(m) => match (m.get_ref(), spec.ty) {
            (_, InputType::Float) => {
                let what = "`multiple_of` rounds integers, and this input is a float".to_string();
                bad(what, m.span(), "give a float input only a `max`");
                return None;
            }
            (toml::Value::Integer(i), _) if *i >= 1 => Some(*i),
            (other, _) => {
                let what = format!("`multiple_of` must be an integer ≥ 1, got {other}");
                bad(
                    what,
                    m.span(),
                    "e.g. `multiple_of = 8`: the value is rounded down to a multiple of 8",
                );
                return None;
            }
        },
    };
    let max = match &l.max {
        None => None,
        Some(m) => {
            let v = *m.get_ref();
            let integer = v.fract() == 0.0 && v.abs() <= 9.0e15;
            if !v.is_finite() || (spec.ty == InputType::Int && !integer) {
                let what = format!(
                    "`max` must be a finite number (an integer for an integer input), got {v}"
                );
                bad(what, m.span(), "e.g. `max = 1024`");
                return None;
            }
            Some(v)
        }
    };
    Some(InputLimit {
        name: name.to_string(),
        slot,
        multiple_of,
        max,
    })
}

fn input(
    sink: &mut Sink,
    tokenizers: &Tokenizers,
    templates: &Arc<[PromptTemplate]>,
    name: String,
    spanned: Spanned<InputToml>,
) -> (InputSpec, Vec<PendingWhen>) {
    let span = spanned.span();
    let i = spanned.into_inner();
    let (tokens_of, pending) = match (i.tokens_of.as_ref())
        .and_then(|t| tokenizers::tokens_of(sink, tokenizers, templates, &name, i.ty, t))
    {
        Some((t, pending)) => (Some(t), pending),
        None => (None, Vec::new()),
    };
    let unmeasured = i
        .unmeasured
        .as_ref()
        .and_then(|u| unmeasured(sink, &name, u));
    let min = i.min.as_ref().map(|m| *m.get_ref());
    let max = i.max.as_ref().map(|m| *m.get_ref());
    check_bounds(sink, &name, i.ty, (min, max), &span);
    let from = if i.from.is_empty() {
        vec![vec![name.clone()]]
    } else {
        (i.from.iter())
            .map(|p| p.split('.').map(String::from).collect())
            .collect()
    };
    let default = i
        .default
        .as_ref()
        .and_then(|d| default_value(sink, &name, i.ty, (min, max), d));
    let spec = InputSpec {
        name,
        ty: i.ty,
        min,
        max,
        from,
        description: i.description,
        // A default that is not valid (reported) leaves the input required, so that nothing
        // else fails because of it.
        optional: i.optional || default.is_some(),
        default,
        place: Some(sink.place_of(KINDS_FILE, span.clone())),
        tokens_of,
        unmeasured,
    };
    (spec, pending)
}

/// An input's `unmeasured`: its path parsed, or `None` (reported).
fn unmeasured(sink: &mut Sink, input: &str, u: &Spanned<UnmeasuredToml>) -> Option<Unmeasured> {
    let u = u.get_ref();
    let when: Vec<String> = u.when.get_ref().split('.').map(String::from).collect();
    if when.iter().any(String::is_empty) {
        let msg = format!(
            "input `{input}`: `unmeasured.when` must be a path of keys separated by `.`, got `{}`",
            u.when.get_ref()
        );
        sink.error(Code::BadType, KINDS_FILE, span_of(&u.when), msg, None);
        return None;
    }
    Some(Unmeasured {
        when,
        reason: u.reason.clone(),
    })
}

/// Resolves each path's `when` to an earlier input of the job kind counted from text and one
/// of its paths; one that names anything else is reported (and the path is left without it,
/// in a rule set that is not usable anyway).
fn resolve_whens(sink: &mut Sink, inputs: &mut [InputSpec], pending: Vec<Vec<PendingWhen>>) {
    for (index, list) in pending.into_iter().enumerate() {
        for w in list {
            let target = (inputs[..index].iter().enumerate()).find(|(_, i)| i.name == w.input);
            let path_index = target.and_then(|(_, i)| {
                let t = i.tokens_of.as_ref()?;
                t.paths.iter().position(|p| p.text == w.path)
            });
            let (Some((input_index, _)), Some(path_index)) = (target, path_index) else {
                let me = &inputs[index].name;
                let msg = match target {
                    None => format!(
                        "input `{me}`: `when` names input `{}`, which is not an input declared before it",
                        w.input
                    ),
                    Some(_) => format!(
                        "input `{me}`: `when` names path `{}` of input `{}`, which its `tokens_of` does not list",
                        w.path, w.input
                    ),
                };
                let help = "a path's `when` names an earlier input counted from text and one of its `tokens_of` paths, exactly as written there";
                sink.error(Code::UnknownInput, KINDS_FILE, w.span, msg, Some(help));
                continue;
            };
            if let Some(t) = inputs[index].tokens_of.as_mut() {
                t.paths[w.path_index].when = Some(When {
                    input: w.input,
                    input_index,
                    path: w.path,
                    path_index,
                });
            }
        }
    }
}

/// An input's `default`: a number of the input's type within its bounds, or `None`
/// (reported).
fn default_value(
    sink: &mut Sink,
    name: &str,
    ty: InputType,
    (min, max): (Option<f64>, Option<f64>),
    d: &Spanned<toml::Value>,
) -> Option<Value> {
    let value = match (ty, d.get_ref()) {
        (InputType::Int, toml::Value::Integer(i)) => Some(Value::Int(*i)),
        (InputType::Float, toml::Value::Integer(i)) => Some(Value::Float(*i as f64)),
        (InputType::Float, toml::Value::Float(f)) if f.is_finite() => Some(Value::Float(*f)),
        _ => None,
    };
    let Some(value) = value else {
        let want = if ty == InputType::Int {
            "an integer"
        } else {
            "a finite number"
        };
        let msg = format!(
            "input `{name}` has default `{}`, which is not {want}",
            d.get_ref()
        );
        let help = Some("a default is a number of the input's type, e.g. `default = 1`");
        sink.error(Code::BadType, KINDS_FILE, span_of(d), msg, help);
        return None;
    };
    let x = value.as_f64();
    if min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m) {
        let msg = format!("input `{name}` has default {value}, outside its bounds");
        let help = Some("a default must be a value a job could give: within min and max");
        sink.error(Code::BadBounds, KINDS_FILE, span_of(d), msg, help);
        return None;
    }
    Some(value)
}

/// Bounds must be ordered, and an integer input's bounds integers that an f64 holds exactly.
fn check_bounds(
    sink: &mut Sink,
    name: &str,
    ty: InputType,
    (min, max): (Option<f64>, Option<f64>),
    span: &Range<usize>,
) {
    if let (Some(lo), Some(hi)) = (min, max)
        && (lo > hi || lo.is_nan() || hi.is_nan())
    {
        let msg = format!("input `{name}` has min {lo} above max {hi}");
        sink.error(Code::BadBounds, KINDS_FILE, Some(span.clone()), msg, None);
    }
    if ty != InputType::Int {
        return;
    }
    for (bound, v) in [("min", min), ("max", max)] {
        let Some(v) = v else { continue };
        if v.fract() != 0.0 || v.abs() > 9.0e15 {
            let msg = format!("integer input `{name}` has a non-integer {bound} `{v}`");
            sink.error(Code::BadBounds, KINDS_FILE, Some(span.clone()), msg, None);
        }
    }
}

/// Compiles each derived value over the inputs and the derived values before it; one that
/// does not compile is reported and left out.
fn derived_values(
    sink: &mut Sink,
    engine: &Engine,
    inputs: &[InputSpec],
    exprs: IndexMap<String, Spanned<String>>,
) -> Vec<DerivedSpec> {
    let mut derived: Vec<DerivedSpec> = Vec::new();
    for (name, expr) in exprs {
        if let Some(d) = derived_value(sink, engine, inputs, &derived, name, expr) {
            derived.push(d);
        }
    }
    derived
}

fn derived_value(
    sink: &mut Sink,
    engine: &Engine,
    inputs: &[InputSpec],
    before: &[DerivedSpec],
    name: String,
    expr: Spanned<String>,
) -> Option<DerivedSpec> {
    // An input that may be absent cannot be read (see `JobKind::readable_names`).
    let names: Vec<&str> = (inputs.iter())
        .map(|i| {
            if i.may_be_absent() {
                UNREADABLE
            } else {
                i.name.as_str()
            }
        })
        .chain(before.iter().map(|d| d.name.as_str()))
        .collect();
    match engine.compile_expression_with_scope(&scope_of(&names), expr.get_ref()) {
        Ok(ast) => Some(DerivedSpec {
            compiled: Program::compile(expr.get_ref(), &names),
            name,
            expr: expr.into_inner(),
            ast,
        }),
        Err(e) => {
            let msg = format!("derived value `{name}` does not compile: {e}");
            let text = e.to_string();
            let absent = (inputs.iter())
                .find(|i| i.may_be_absent() && undefined_variable(&text) == Some(i.name.as_str()));
            let help = match absent {
                Some(i) => format!(
                    "input `{}` is optional with no default, so a job may leave it out: derived values cannot read it; give it a `default`",
                    i.name
                ),
                None => {
                    "derived values are rhai expressions over the inputs, e.g. \"width * height\""
                        .into()
                }
            };
            sink.error(
                Code::FormulaCompile,
                KINDS_FILE,
                span_of(&expr),
                msg,
                Some(&help),
            );
            None
        }
    }
}
