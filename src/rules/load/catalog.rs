//! `catalog.toml` (model names, their families and when they are priced), and the checks that
//! join it with the rules: model rules agree with it, and every family it names is priced or
//! deliberately unpriced.

use std::collections::BTreeMap;
use std::ops::Range;

use jiff::Timestamp;
use toml::Spanned;

use super::rule::Rules;
use super::{CATALOG_FILE, Sink, closest};
use crate::engine::model::{CatalogEntry, Rule, nfc};
use crate::engine::time::parse_time;
use crate::rules::diagnostic::Code;
use crate::rules::schema::CatalogFile;

pub(super) type Catalog = BTreeMap<String, CatalogEntry>;

/// What `catalog.toml` declares.
#[derive(Default)]
pub(super) struct CatalogParts {
    pub models: Catalog,
    /// Families left unpriced on purpose, with why, and where that is written.
    pub unpriced: BTreeMap<String, (String, Range<usize>)>,
}

/// The models of `catalog.toml` (none when it is missing or broken).
pub(super) fn read(sink: &mut Sink) -> CatalogParts {
    if !sink.contains(CATALOG_FILE) {
        return CatalogParts::default();
    }
    let Some(file) = sink.parse::<CatalogFile>(CATALOG_FILE) else {
        return CatalogParts::default();
    };
    let mut out = CatalogParts::default();
    for (name, value) in file.models {
        let span = value.span();
        let Some(entry) = entry(sink, &name, &value) else {
            continue;
        };
        check_model_name(sink, CATALOG_FILE, span.clone(), &name);
        let model = nfc(&name).into_owned();
        if let Some(prev) = out.models.get(&model) {
            let msg = format!(
                "model `{}` is listed twice (the same name once normalized to Unicode NFC)",
                name.escape_default()
            );
            let help = Some("keep one entry; names that look the same must be the same");
            let at = Some(span.start.max(prev.span.start)..span.end.max(prev.span.end));
            sink.error(Code::DuplicateModel, CATALOG_FILE, at, msg, help);
            continue;
        }
        out.models.insert(model, entry);
    }
    for (family, why) in file.unpriced {
        let span = why.span();
        out.unpriced.insert(family, (why.into_inner(), span));
    }
    out
}

/// One entry: `"family"` or `{ family = "...", since = DATE, until = DATE }`.
fn entry(sink: &mut Sink, model: &str, value: &Spanned<toml::Value>) -> Option<CatalogEntry> {
    let span = value.span();
    let bad = |sink: &mut Sink, code: Code, msg: String, help: &str| {
        sink.error(code, CATALOG_FILE, Some(span.clone()), msg, Some(help));
        None
    };
    let table = match value.get_ref() {
        toml::Value::String(family) => {
            return Some(CatalogEntry {
                family: family.clone(),
                since: None,
                until: None,
                file: CATALOG_FILE.to_string(),
                span,
            });
        }
        toml::Value::Table(t) => t,
        other => {
            let msg = format!(
                "model `{model}`: expected a family name or a table, got `{other}` ({})",
                other.type_str()
            );
            return bad(
                sink,
                Code::BadType,
                msg,
                "write `Model = \"family\"` or `Model = { family = \"family\", since = 2024-06-01 }`",
            );
        }
    };
    const KEYS: [&str; 3] = ["family", "since", "until"];
    if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        let msg = format!(
            "model `{model}`: unknown field `{key}`, expected one of `family`, `since`, `until`"
        );
        let help = match closest(key, KEYS) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "a catalog entry has `family`, and optionally `since` and `until`".into(),
        };
        return bad(sink, Code::UnknownField, msg, &help);
    }
    let Some(family) = table.get("family") else {
        let msg = format!("model `{model}`: missing field `family`");
        return bad(sink, Code::MissingField, msg, "add `family = \"...\"`");
    };
    let Some(family) = family.as_str() else {
        let msg = format!("model `{model}`: `family` must be a string");
        return bad(sink, Code::BadType, msg, "e.g. `family = \"sdxl10\"`");
    };
    let date = |sink: &mut Sink, key: &str| -> Result<Option<Timestamp>, ()> {
        let parsed = match table.get(key) {
            None => return Ok(None),
            Some(toml::Value::Datetime(dt)) => parse_time(&dt.to_string()),
            Some(toml::Value::String(s)) => parse_time(s),
            Some(other) => Err(format!("expected a date, got a {}", other.type_str())),
        };
        parsed.map(Some).map_err(|e| {
            let msg = format!("model `{model}`: {key}: {e}");
            sink.error(
                Code::BadDate,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                Some("write a date like 2024-06-01 or 2024-06-01T00:00:00Z"),
            );
        })
    };
    let since = date(sink, "since").ok()?;
    let until = date(sink, "until").ok()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        let msg = format!("model `{model}`: `since` is not before `until`, so it is never priced");
        return bad(
            sink,
            Code::BadDate,
            msg,
            "`since` is the first instant it is priced, `until` the first it is not",
        );
    }
    Some(CatalogEntry {
        family: family.to_string(),
        since,
        until,
        file: CATALOG_FILE.to_string(),
        span,
    })
}

/// Characters no one can see in a name: controls, non-ASCII spaces and Unicode's default
/// ignorable code points (zero-width spaces and joiners, direction marks, variation
/// selectors, the BOM, ...; DerivedCoreProperties.txt, Default_Ignorable_Code_Point).
fn invisible(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A model name must be what it looks like: an invisible character is an error (a job
/// naming the visible name would not match, or a look-alike entry would price it), a mix of
/// scripts (a Cyrillic `В` among Latin letters) a warning.
pub(super) fn check_model_name(sink: &mut Sink, file: &str, span: Range<usize>, name: &str) {
    if let Some(c) = name.chars().find(|c| invisible(*c)) {
        let msg = format!(
            "model name `{}` contains the invisible character U+{:04X}",
            name.escape_default(),
            u32::from(c)
        );
        let help = Some("type the name again; jobs carry the visible name only");
        sink.error(Code::InvisibleCharacter, file, Some(span), msg, help);
        return;
    }
    use unicode_security::MixedScript;
    if !name.is_single_script() {
        let odd: Vec<String> = {
            let mut seen: Vec<String> = Vec::new();
            for c in name.chars().filter(|c| !c.is_ascii()) {
                let shown = format!("`{c}` (U+{:04X})", u32::from(c));
                if !seen.contains(&shown) {
                    seen.push(shown);
                }
            }
            seen
        };
        let msg = format!(
            "model name `{name}` mixes scripts: {} among its other letters",
            odd.join(", ")
        );
        let help = Some(
            "a look-alike letter from another script makes a different name; write it in one script",
        );
        sink.warning(Code::MixedScript, file, Some(span), msg, help);
    }
}

/// The catalog with every model rule's model added. A model rule must agree with
/// catalog.toml about its family, and price the job kind its family's rule prices.
pub(super) fn with_model_rules(sink: &mut Sink, mut catalog: Catalog, rules: &Rules) -> Catalog {
    for rule in rules.model.values() {
        match catalog.get(&rule.id) {
            Some(entry) => check_family(sink, entry, rule),
            None => {
                catalog.insert(rule.id.clone(), entry_of(rule));
            }
        }
        if let Some(family_rule) = rules.family.get(&rule.family) {
            check_kind(sink, family_rule, rule);
        }
    }
    catalog
}

/// The catalog entry a model rule declares: its model, in its family, at its `[rule]`.
fn entry_of(rule: &Rule) -> CatalogEntry {
    CatalogEntry {
        family: rule.family.clone(),
        since: None,
        until: None,
        file: rule.file.clone(),
        span: rule.span.clone(),
    }
}

fn check_family(sink: &mut Sink, entry: &CatalogEntry, rule: &Rule) {
    if entry.family == rule.family {
        return;
    }
    let msg = format!(
        "model `{}` is in family `{}` here but `{}` in {}",
        rule.id, rule.family, entry.family, entry.file
    );
    let help = Some("make the two agree");
    let span = Some(rule.span.clone());
    sink.error(Code::CatalogConflict, &rule.file, span, msg, help);
}

fn check_kind(sink: &mut Sink, family_rule: &Rule, rule: &Rule) {
    if family_rule.kind == rule.kind {
        return;
    }
    let msg = format!(
        "model rule `{}` prices job kind `{}` but its family `{}` prices `{}`",
        rule.id, rule.kind, rule.family, family_rule.kind
    );
    let span = Some(rule.span.clone());
    sink.error(Code::CatalogConflict, &rule.file, span, msg, None);
}

/// Every catalog family must have a rule, or be named in `[unpriced]` with a reason: a
/// family without either is a typo (`sdxl1O`) or a deleted rule file, and would silently
/// turn its models' jobs into `no_rule`. Reported once per family, at its first model. Not
/// checked when some rule file did not parse: the family's rule may be in it.
pub(super) fn check_families(
    sink: &mut Sink,
    catalog: &Catalog,
    unpriced: &BTreeMap<String, (String, Range<usize>)>,
    rules: &Rules,
) {
    for (family, (_, span)) in unpriced {
        if rules.family.contains_key(family) {
            let msg = format!(
                "family `{family}` is listed under [unpriced] but has a rule ({})",
                rules.family[family].file
            );
            let help = Some("remove it from [unpriced], or remove the rule");
            sink.error(
                Code::CatalogConflict,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                help,
            );
        }
    }
    if sink.rules_incomplete() {
        return;
    }
    let mut unpriced_models: BTreeMap<&str, (Vec<&str>, Range<usize>)> = BTreeMap::new();
    for (model, entry) in catalog {
        if rules.family.contains_key(&entry.family)
            || rules.model.contains_key(model)
            || unpriced.contains_key(&entry.family)
        {
            continue;
        }
        let (models, at) = (unpriced_models.entry(entry.family.as_str()))
            .or_insert((Vec::new(), entry.span.clone()));
        models.push(model);
        if entry.span.start < at.start {
            *at = entry.span.clone();
        }
    }
    let known: Vec<&str> = (rules.family.keys().map(String::as_str))
        .chain(unpriced.keys().map(String::as_str))
        .collect();
    // A model rule may name a family nobody prices (it prices its model itself), but not one
    // that is a near miss of a priced family: that is a typo.
    for rule in rules.model.values() {
        if rules.family.contains_key(&rule.family) || unpriced.contains_key(&rule.family) {
            continue;
        }
        if let Some(near) = closest(&rule.family, known.iter().copied()) {
            let msg = format!(
                "model rule `{}`: unknown family `{}`; did you mean `{near}`?",
                rule.id, rule.family
            );
            let help = format!("no rule prices `{}`: fix the name to `{near}`", rule.family);
            sink.error(
                Code::UnknownFamily,
                &rule.file,
                Some(rule.span.clone()),
                msg,
                Some(&help),
            );
        }
    }
    for (family, (models, at)) in unpriced_models {
        let shown = models.join(", ");
        match closest(family, known.iter().copied()) {
            Some(near) => {
                let msg =
                    format!("unknown family `{family}`; did you mean `{near}`? (models: {shown})");
                let help = format!("no rule prices `{family}`: fix the name to `{near}`");
                sink.error(
                    Code::UnknownFamily,
                    CATALOG_FILE,
                    Some(at),
                    msg,
                    Some(&help),
                );
            }
            None => {
                let msg = format!(
                    "family `{family}` has no rule, so its models ({shown}) would get `no_rule`"
                );
                let help = format!(
                    "add a rule file for the family (a version with `no_rule = \"why\"` records a decision per date), or list it under [unpriced] in catalog.toml: `{family} = \"why\"`"
                );
                sink.error(
                    Code::FamilyWithoutRule,
                    CATALOG_FILE,
                    Some(at),
                    msg,
                    Some(&help),
                );
            }
        }
    }
}
