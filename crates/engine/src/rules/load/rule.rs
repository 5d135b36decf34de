//! Rule files (every other `*.toml`): a family's or a model's rule, its versions, their
//! dates, thresholds and pricing, and the order of the versions.

use std::collections::BTreeMap;
use std::ops::Range;

use indexmap::IndexMap;
use jiff::Timestamp;
use toml::Spanned;

use super::formula::Formulas;
use super::{CATALOG_FILE, KINDS_FILE, POLICY_FILE, Sink, Site, did_you_mean, example, span_of};
use crate::engine::model::{
    Ceiling, JobKind, Place, Pricing, Rule, RuleScope, RuleVersion, Threshold, nfc,
};
use crate::engine::score::Status;
use crate::engine::time::{parse_time, utc_string};
use crate::rules::diagnostic::Code;
use crate::rules::schema::{RuleFile, RuleHeader, VersionToml};

/// Family rules by family, model rules by model.
#[derive(Default)]
pub(super) struct Rules {
    pub family: BTreeMap<String, Rule>,
    pub model: BTreeMap<String, Rule>,
}

impl Rules {
    /// Adds `rule` unless its family or model already has one (the first file in path
    /// order keeps it).
    fn add(&mut self, sink: &mut Sink, rule: Rule) {
        let (map, what, code) = match rule.scope {
            RuleScope::Family => (&mut self.family, "family", Code::DuplicateRule),
            RuleScope::Model => (&mut self.model, "model", Code::DuplicateModel),
        };
        if let Some(prev) = map.get(&rule.id) {
            let msg = format!("{what} `{}` already has a rule in `{}`", rule.id, prev.file);
            let help = Some("merge the versions into one file");
            sink.error(code, &rule.file, Some(rule.span.clone()), msg, help);
            return;
        }
        map.insert(rule.id.clone(), rule);
    }
}

/// Reads every rule file, in path order.
pub(super) fn read_all(
    sink: &mut Sink,
    job_kinds: &IndexMap<String, JobKind>,
    formulas: &mut Formulas,
) -> Rules {
    let files = sink.files();
    let paths = (files.files.keys()).filter(|p| {
        p.ends_with(".toml") && !matches!(p.as_str(), KINDS_FILE | POLICY_FILE | CATALOG_FILE)
    });
    let mut rules = Rules::default();
    for path in paths {
        // A file can take a second or more to read (a cancelled playground request sent
        // several large ones): stop between them.
        if crate::engine::cancel::cancelled() {
            break;
        }
        if let Some(rule) = read(sink, formulas, job_kinds, path) {
            rules.add(sink, rule);
        }
    }
    rules
}

fn read(
    sink: &mut Sink,
    formulas: &mut Formulas,
    job_kinds: &IndexMap<String, JobKind>,
    path: &str,
) -> Option<Rule> {
    let file: RuleFile = sink.parse(path)?;
    let span = file.rule.span();
    let header = file.rule.into_inner();
    let kind = job_kind(sink, path, job_kinds, &header.kind);
    let (scope, id, family) = identity(sink, path, &header, &span)?;
    if file.versions.is_empty() {
        let msg = format!("rule `{id}` has no `[[version]]`");
        let help = Some("add at least one [[version]] table");
        sink.error(Code::EmptyRule, path, Some(span.clone()), msg, help);
    }
    let versions = versions(sink, formulas, path, &id, kind, file.versions);
    Some(Rule {
        id,
        scope,
        family,
        kind: header.kind.into_inner(),
        file: path.to_string(),
        span,
        description: header.description,
        versions,
    })
}

/// The job kind the rule prices; `None` (reported unless kinds.toml gave no kinds at all)
/// when kinds.toml does not declare it.
fn job_kind<'k>(
    sink: &mut Sink,
    path: &str,
    job_kinds: &'k IndexMap<String, JobKind>,
    name: &Spanned<String>,
) -> Option<&'k JobKind> {
    let kind = job_kinds.get(name.get_ref());
    if kind.is_none() && !job_kinds.is_empty() {
        let declared: Vec<String> = job_kinds.keys().map(|k| format!("`{k}`")).collect();
        let msg = format!(
            "job kind `{}` is not declared in kinds.toml (declared: {})",
            name.get_ref(),
            declared.join(", ")
        );
        let help = did_you_mean(name.get_ref(), job_kinds.keys().map(String::as_str));
        sink.error(
            Code::UnknownJobKind,
            path,
            span_of(name),
            msg,
            help.as_deref(),
        );
    }
    kind
}

/// Scope, id and family: a family rule names its family; a model rule its model and family.
fn identity(
    sink: &mut Sink,
    path: &str,
    header: &RuleHeader,
    span: &Range<usize>,
) -> Option<(RuleScope, String, String)> {
    match (&header.family, &header.model) {
        (Some(f), None) => Some((RuleScope::Family, f.get_ref().clone(), f.get_ref().clone())),
        (Some(f), Some(m)) => {
            super::catalog::check_model_name(sink, path, m.span(), m.get_ref());
            let model = nfc(m.get_ref()).into_owned();
            Some((RuleScope::Model, model, f.get_ref().clone()))
        }
        (None, _) => {
            let msg =
                "`[rule]` needs `family` (a family rule) or `family` and `model` (a model rule)";
            let help = Some("add `family = \"sd15\"`");
            sink.error(
                Code::MissingField,
                path,
                Some(span.clone()),
                msg.into(),
                help,
            );
            None
        }
    }
}

/// The versions that could be built, checked in file order, then sorted by date.
fn versions(
    sink: &mut Sink,
    formulas: &mut Formulas,
    path: &str,
    id: &str,
    kind: Option<&JobKind>,
    list: Vec<Spanned<VersionToml>>,
) -> Vec<RuleVersion> {
    let mut versions: Vec<RuleVersion> = (list.into_iter())
        .filter_map(|v| version(sink, formulas, path, id, kind, v))
        .collect();
    check_order(sink, path, id, &versions);
    versions.sort_by_key(|v| v.effective_from);
    versions
}

fn version(
    sink: &mut Sink,
    formulas: &mut Formulas,
    path: &str,
    id: &str,
    kind: Option<&JobKind>,
    spanned: Spanned<VersionToml>,
) -> Option<RuleVersion> {
    let span = spanned.span();
    let line = sink.line_of(path, span.start);
    let header = sink.line_start(path, line)..sink.line_start(path, line + 1);
    let v = spanned.into_inner();
    let number = *v.version.get_ref();
    let label = format!("rule `{id}` version {number}");
    let site = Site { path, span, label };
    let effective_from = effective_from(sink, &site, &v.effective_from)?;
    let thresholds = limits(sink, &site, v.min.as_ref(), kind, "threshold")
        .into_iter()
        .map(|(name, min, slot, place)| Threshold {
            name,
            min,
            slot,
            place: Some(place),
        })
        .collect();
    let ceilings = limits(sink, &site, v.max.as_ref(), kind, "ceiling")
        .into_iter()
        .map(|(name, max, slot, place)| Ceiling {
            name,
            max,
            slot,
            place: Some(place),
        })
        .collect();
    let pricing = pricing(sink, formulas, &site, &v, kind, thresholds, ceilings)?;
    let status = match &pricing {
        Pricing::NoRule { .. } => Status::NoRule,
        Pricing::Disabled { .. } => Status::Disabled,
        Pricing::Priced { .. } => Status::Ok,
    };
    let examples = (v.examples.iter())
        .take_while(|_| !crate::engine::cancel::cancelled())
        .filter_map(|ex| example::build(sink, &site, ex, kind, status))
        .collect();
    let formula_place = [&v.formula, &v.formula_file, &v.expr]
        .into_iter()
        .flatten()
        .next()
        .map(|f| sink.place_of(path, f.span()));
    let multiplier_place = v.multiplier.as_ref().map(|m| sink.place_of(path, m.span()));
    let min_place = v.min.as_ref().map(|m| sink.place_of(path, m.span()));
    Some(RuleVersion {
        version: number,
        label: format!("{id}@{number}"),
        effective_from,
        source: v.source,
        notes: v.notes,
        assumptions: v.assumptions,
        pricing,
        examples,
        formula_place,
        multiplier_place,
        min_place,
        line,
        header,
    })
}

/// The date a version takes effect; a date more than ten years out is likely a typo.
pub(super) fn effective_from(
    sink: &mut Sink,
    site: &Site,
    value: &Spanned<toml::Value>,
) -> Option<Timestamp> {
    let parsed = match value.get_ref() {
        toml::Value::Datetime(dt) => parse_time(&dt.to_string()),
        toml::Value::String(s) => parse_time(s),
        other => Err(format!("expected a date, got a {}", other.type_str())),
    };
    let at = match parsed {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("{}: effective_from: {e}", site.label);
            let help = Some("write a date like 2024-04-01 or 2024-04-01T00:00:00Z");
            sink.error(Code::BadDate, site.path, span_of(value), msg, help);
            return None;
        }
    };
    let ten_years = jiff::SignedDuration::from_hours(24 * 3653);
    let far = (Timestamp::now().saturating_add(ten_years)).unwrap_or(Timestamp::MAX);
    if at > far {
        let msg = format!("{} takes effect more than ten years from now", site.label);
        let help = Some("is the year a typo?");
        sink.warning(Code::FutureDate, site.path, span_of(value), msg, help);
    }
    Some(at)
}

/// A version's thresholds (`min`) or ceilings (`max`): name, bound, slot and place. One on
/// a value the job kind does not have is reported and left out.
fn limits(
    sink: &mut Sink,
    site: &Site,
    table: Option<&Spanned<IndexMap<String, Spanned<f64>>>>,
    kind: Option<&JobKind>,
    what: &str,
) -> Vec<(String, f64, usize, Place)> {
    let Some(table) = table else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in table.get_ref() {
        let slot = match kind {
            Some(k) => match value_slot(sink, site, k, name, value, what) {
                Some(slot) => slot,
                None => continue,
            },
            // The job kind is unknown (and reported): nothing to check the name against.
            None => 0,
        };
        let place = sink.place_of(site.path, value.span());
        out.push((name.to_string(), *value.get_ref(), slot, place));
    }
    out
}

/// Index of `name` among the kind's values, or `None` (reported) when it has no such value.
fn value_slot(
    sink: &mut Sink,
    site: &Site,
    kind: &JobKind,
    name: &str,
    value: &Spanned<f64>,
    what: &str,
) -> Option<usize> {
    let slot = kind.value_names().position(|n| n == name);
    if slot.is_none() {
        let msg = format!(
            "{}: {what} `{name}` is not an input or derived value of job kind `{}`",
            site.label, kind.name
        );
        let known: Vec<&str> = kind.value_names().collect();
        let help = match did_you_mean(name, known.iter().copied()) {
            Some(hint) => format!("{hint} (known: {})", known.join(", ")),
            None => format!("known: {}", known.join(", ")),
        };
        sink.error(
            Code::UnknownInput,
            site.path,
            span_of(value),
            msg,
            Some(&help),
        );
    }
    slot
}

/// What the version does with a job: an explicit `no_rule`, or a formula times a multiplier
/// behind the thresholds.
fn pricing(
    sink: &mut Sink,
    formulas: &mut Formulas,
    site: &Site,
    v: &VersionToml,
    kind: Option<&JobKind>,
    thresholds: Vec<Threshold>,
    ceilings: Vec<Ceiling>,
) -> Option<Pricing> {
    match (&v.no_rule, &v.disabled) {
        (Some(_), Some(_)) => {
            let msg = format!("{} says both `no_rule` and `disabled`", site.label);
            let help = Some(
                "`no_rule`: nothing prices these jobs; `disabled`: they are priced at zero on purpose. Pick one",
            );
            sink.error(
                Code::FormulaChoice,
                site.path,
                Some(site.span.clone()),
                msg,
                help,
            );
            return None;
        }
        (Some(reason), None) => {
            check_unpriced_alone(sink, site, v, "no_rule");
            let reason = reason.get_ref().clone();
            return Some(Pricing::NoRule { reason });
        }
        (None, Some(reason)) => {
            check_unpriced_alone(sink, site, v, "disabled");
            let reason = reason.get_ref().clone();
            return Some(Pricing::Disabled { reason });
        }
        (None, None) => {}
    }
    check_one_formula(sink, site, v)?;
    let multiplier = multiplier(sink, site, v.multiplier.as_ref())?;
    let formula = formulas.resolve(sink, site, v, kind?)?;
    Some(Pricing::Priced {
        formula,
        multiplier,
        thresholds,
        ceilings,
    })
}

/// How many of `formula`, `formula_file` and `expr` the version gives.
fn formula_keys(v: &VersionToml) -> usize {
    [
        v.formula.is_some(),
        v.formula_file.is_some(),
        v.expr.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

/// A `no_rule` or `disabled` version prices nothing, so it gives no formula, multiplier,
/// thresholds or ceilings.
fn check_unpriced_alone(sink: &mut Sink, site: &Site, v: &VersionToml, key: &str) {
    if formula_keys(v) == 0 && v.multiplier.is_none() && v.min.is_none() && v.max.is_none() {
        return;
    }
    let msg = format!(
        "{} says `{key}` but also gives a formula, multiplier, `min` or `max`",
        site.label
    );
    let help = Some(
        "a version either prices (formula, multiplier, min, max) or records why it does not (no_rule, disabled)",
    );
    sink.error(
        Code::FormulaChoice,
        site.path,
        Some(site.span.clone()),
        msg,
        help,
    );
}

/// A priced version gives exactly one way to find its formula; `None` (reported) otherwise.
fn check_one_formula(sink: &mut Sink, site: &Site, v: &VersionToml) -> Option<()> {
    let msg = match formula_keys(v) {
        1 => return Some(()),
        0 => format!("{} gives no formula", site.label),
        _ => format!(
            "{} gives more than one of `formula`, `formula_file`, `expr`",
            site.label
        ),
    };
    let help = Some(
        "give exactly one: formula = \"waifu_season1\" (shared), formula_file = \"x.rhai\", or expr = \"...\"; or no_rule = \"reason\" or disabled = \"reason\"",
    );
    sink.error(
        Code::FormulaChoice,
        site.path,
        Some(site.span.clone()),
        msg,
        help,
    );
    None
}

/// The multiplier (1 when absent), or `None` (reported) when it is negative or not finite.
fn multiplier(sink: &mut Sink, site: &Site, value: Option<&Spanned<f64>>) -> Option<f64> {
    let multiplier = value.map_or(1.0, |m| *m.get_ref());
    if multiplier.is_finite() && multiplier >= 0.0 {
        return Some(multiplier);
    }
    let msg = format!(
        "{}: multiplier `{multiplier}` must be a finite number ≥ 0",
        site.label
    );
    sink.error(
        Code::BadMultiplier,
        site.path,
        value.and_then(span_of),
        msg,
        Some("points = formula × multiplier: write a number such as 1.8; to pay nothing on purpose, use `disabled = \"why\"`"),
    );
    None
}

/// Versions in file order must have increasing numbers and strictly later dates.
fn check_order(sink: &mut Sink, path: &str, id: &str, versions: &[RuleVersion]) {
    for pair in versions.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let Some((code, msg, help)) = order_problem(id, a, b) else {
            continue;
        };
        sink.error(code, path, Some(b.header.clone()), msg, Some(help));
    }
}

/// What is wrong with version `b` following version `a`, if anything.
fn order_problem(
    id: &str,
    a: &RuleVersion,
    b: &RuleVersion,
) -> Option<(Code, String, &'static str)> {
    if b.version <= a.version {
        let msg = format!(
            "rule `{id}`: version {} follows version {}; versions must increase",
            b.version, a.version
        );
        let help = "list versions oldest first with increasing numbers; never reuse a number";
        return Some((Code::VersionOrder, msg, help));
    }
    if b.effective_from == a.effective_from {
        let msg = format!(
            "rule `{id}`: versions {} and {} both take effect at {}",
            a.version,
            b.version,
            utc_string(a.effective_from)
        );
        let help = "a job's time must pick exactly one version";
        return Some((Code::DuplicateEffectiveDate, msg, help));
    }
    if b.effective_from < a.effective_from {
        let msg = format!(
            "rule `{id}`: version {} takes effect before version {}",
            b.version, a.version
        );
        let help = "a later version must take effect later";
        return Some((Code::VersionOrder, msg, help));
    }
    None
}
