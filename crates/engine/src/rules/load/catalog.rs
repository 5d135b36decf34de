//! `catalog.toml`: model names, their windows (when each was listed, in which family), the
//! catalog versions those windows name, aliases, declined aliases and unpriced families; and
//! the checks that join it with the rules: model rules agree with it, aliases point at models
//! and shadow nothing, and every family it names is priced or deliberately unpriced.

use std::collections::BTreeMap;
use std::ops::Range;

use jiff::Timestamp;
use toml::Spanned;

use super::rule::Rules;
use super::{CATALOG_FILE, Sink, closest};
use crate::engine::catalog::{Alias, AliasKind, CatalogVersion, CatalogWindow, Dated, overlapping};
use crate::engine::model::{CatalogEntry, Rule, nfc};
use crate::engine::time::parse_time;
use crate::rules::diagnostic::Code;
use crate::rules::schema::{CatalogFile, OneOrMany};

pub(super) type Catalog = BTreeMap<String, CatalogEntry>;

/// A rename or redirect governance decided is not an alias (`[declined]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declined {
    pub name: String,
    pub model: String,
    pub kind: AliasKind,
    /// The catalog version where the candidate appeared.
    pub catalog: Option<String>,
    pub reason: String,
}

/// A version listed in `[versions]`, and why it was skipped if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub version: CatalogVersion,
    pub skipped: Option<String>,
}

/// What `catalog.toml` declares.
#[derive(Default)]
pub struct CatalogParts {
    pub models: Catalog,
    /// Alias name → its windows, in time order (checked against the models later).
    pub aliases: BTreeMap<String, Vec<Alias>>,
    /// Families left unpriced on purpose, with why, and where that is written.
    pub unpriced: BTreeMap<String, (String, Range<usize>)>,
    pub versions: BTreeMap<String, ListedVersion>,
    pub declined: Vec<Declined>,
    /// The file's `source` and `notes`, for people (kept by `catalog sync`).
    pub source: Option<String>,
    pub notes: Option<String>,
}

/// The parts of `catalog.toml` (none when it is missing or broken).
pub(super) fn read(sink: &mut Sink) -> CatalogParts {
    if !sink.contains(CATALOG_FILE) {
        return CatalogParts::default();
    }
    let Some(file) = sink.parse::<CatalogFile>(CATALOG_FILE) else {
        return CatalogParts::default();
    };
    let mut out = CatalogParts {
        source: file.source,
        notes: file.notes,
        ..CatalogParts::default()
    };
    for (number, value) in &file.versions {
        if let Some(v) = listed_version(sink, number, value) {
            out.versions.insert(number.clone(), v);
        }
    }
    for (name, value) in &file.models {
        let mut windows = Vec::new();
        for (span, v) in entries(sink, &format!("model `{name}`"), value) {
            if let Some(w) = window(sink, &out.versions, name, span, v) {
                windows.push(w);
            }
        }
        check_model_name(sink, CATALOG_FILE, value.span(), name);
        let model = nfc(name).into_owned();
        if let Some(prev) = out.models.get(&model) {
            let msg = format!(
                "model `{}` is listed twice (the same name once normalized to Unicode NFC)",
                name.escape_default()
            );
            let help = Some("keep one entry; names that look the same must be the same");
            let (span, prev) = (value.span(), prev.span());
            let at = Some(span.start.max(prev.start)..span.end.max(prev.end));
            sink.error(Code::DuplicateModel, CATALOG_FILE, at, msg, help);
            continue;
        }
        let windows = in_order(sink, &format!("model `{model}`"), windows, |w| {
            (&w.when, &w.span)
        });
        if !windows.is_empty() {
            out.models.insert(model, CatalogEntry { windows });
        }
    }
    for (name, value) in &file.aliases {
        let mut windows = Vec::new();
        for (span, v) in entries(sink, &format!("alias `{name}`"), value) {
            if let Some(a) = alias(sink, &out.versions, name, span, v) {
                windows.push(a);
            }
        }
        check_model_name(sink, CATALOG_FILE, value.span(), name);
        let windows = in_order(sink, &format!("alias `{name}`"), windows, |a| {
            (&a.when, &a.span)
        });
        if !windows.is_empty() {
            out.aliases.insert(nfc(name).into_owned(), windows);
        }
    }
    for (name, value) in &file.declined {
        for (span, v) in entries(sink, &format!("declined `{name}`"), value) {
            out.declined
                .extend(declined(sink, &out.versions, name, span, v));
        }
    }
    for (family, why) in file.unpriced {
        let span = why.span();
        out.unpriced.insert(family, (why.into_inner(), span));
    }
    out
}

/// The values of an entry, each with its place; an empty array is reported (it would list
/// nothing without a word).
fn entries<'v>(
    sink: &mut Sink,
    what: &str,
    value: &'v Spanned<OneOrMany>,
) -> Vec<(Range<usize>, &'v toml::Value)> {
    let each = value.get_ref().each(value.span());
    if each.is_empty() {
        let msg = format!("{what}: an empty array lists nothing");
        let help = Some("give it at least one value, or remove the entry");
        sink.error(Code::BadType, CATALOG_FILE, Some(value.span()), msg, help);
    }
    each
}

/// How a window reads in a message: its bounds, or `that is always open`.
fn described(d: &Dated) -> String {
    match (d.since, d.until) {
        (None, None) => "that is always open".to_string(),
        _ => d.text(),
    }
}

/// The windows sorted by start; two that share an instant are an error (the later one is
/// dropped, so the rest still loads for the other checks).
fn in_order<T>(
    sink: &mut Sink,
    what: &str,
    mut items: Vec<T>,
    key: impl Fn(&T) -> (&Dated, &Range<usize>),
) -> Vec<T> {
    items.sort_by_key(|t| key(t).0.since);
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        let (when, span) = key(&item);
        // Sorted and disjoint so far: only the last kept can overlap a later start.
        if let Some(prev) = out.last().filter(|p| key(p).0.overlaps(when)) {
            let (prev_when, prev_span) = key(prev);
            let msg = format!(
                "{what}: the window {} overlaps the window {}",
                described(when),
                described(prev_when)
            );
            let help = "windows of one name are disjoint: end the earlier one (`until`) at or before the later one's `since`";
            let at = if span.start > prev_span.start {
                span
            } else {
                prev_span
            };
            sink.error(
                Code::OverlappingWindows,
                CATALOG_FILE,
                Some(at.clone()),
                msg,
                Some(help),
            );
            continue;
        }
        out.push(item);
    }
    out
}

/// `a string`, `an integer`: a value's TOML type with its article.
fn a_type(v: &toml::Value) -> String {
    let t = v.type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {t}")
}

/// A table's keys, checked against `known`: an unknown key (a typo) is reported, with the
/// closest known key.
fn known_keys(
    sink: &mut Sink,
    what: &str,
    table: &toml::Table,
    known: &[&str],
    span: &Range<usize>,
) -> bool {
    let Some(key) = table.keys().find(|k| !known.contains(&k.as_str())) else {
        return true;
    };
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    let msg = format!(
        "{what}: unknown field `{key}`, expected one of {}",
        list.join(", ")
    );
    let help = match closest(key, known.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => "remove the key or fix its spelling; rules/README.md lists every key".into(),
    };
    sink.error(
        Code::UnknownField,
        CATALOG_FILE,
        Some(span.clone()),
        msg,
        Some(&help),
    );
    false
}

/// A required string field of `table`.
fn string_field(
    sink: &mut Sink,
    what: &str,
    table: &toml::Table,
    key: &str,
    example: &str,
    span: &Range<usize>,
) -> Option<String> {
    match table.get(key) {
        Some(toml::Value::String(s)) => Some(s.clone()),
        Some(other) => {
            let msg = format!("{what}: `{key}` must be a string, got {}", a_type(other));
            let help = format!("e.g. {example}");
            sink.error(
                Code::BadType,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                Some(&help),
            );
            None
        }
        None => {
            let msg = format!("{what}: missing field `{key}`");
            let help = format!("add it, e.g. {example}");
            sink.error(
                Code::MissingField,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                Some(&help),
            );
            None
        }
    }
}

/// A time field (`since`, `until`, `at`): a TOML date or date-time, or a string holding one.
fn time_field(
    sink: &mut Sink,
    what: &str,
    table: &toml::Table,
    key: &str,
    span: &Range<usize>,
) -> Result<Option<Timestamp>, ()> {
    let parsed = match table.get(key) {
        None => return Ok(None),
        Some(toml::Value::Datetime(dt)) => parse_time(&dt.to_string()),
        Some(toml::Value::String(s)) => parse_time(s),
        Some(other) => Err(format!("expected a date, got {}", a_type(other))),
    };
    parsed.map(Some).map_err(|e| {
        let msg = format!("{what}: {key}: {e}");
        let help = Some("write a date like 2024-06-01 or 2024-06-01T00:00:00Z");
        sink.error(Code::BadDate, CATALOG_FILE, Some(span.clone()), msg, help);
    })
}

/// `[versions]`: `NUMBER = { commit, at, subject, skipped }`.
fn listed_version(
    sink: &mut Sink,
    number: &str,
    value: &Spanned<toml::Value>,
) -> Option<ListedVersion> {
    let span = value.span();
    let what = format!("catalog version `{number}`");
    let Some(table) = value.get_ref().as_table() else {
        let msg = format!("{what}: expected a table, got {}", a_type(value.get_ref()));
        let help = Some("write `001 = { commit = \"45b77ad…\", at = 2024-01-02T01:28:46Z }`");
        sink.error(Code::BadType, CATALOG_FILE, Some(span), msg, help);
        return None;
    };
    if !known_keys(
        sink,
        &what,
        table,
        &["commit", "at", "subject", "skipped"],
        &span,
    ) {
        return None;
    }
    let commit = string_field(
        sink,
        &what,
        table,
        "commit",
        "`commit = \"45b77ad3bb…\"`",
        &span,
    )?;
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        let msg = format!("{what}: `commit` must be a commit id (hex digits), got `{commit}`");
        sink.error(
            Code::BadType,
            CATALOG_FILE,
            Some(span),
            msg,
            Some("the full commit id, as `git log` prints it"),
        );
        return None;
    }
    let Ok(Some(at)) = time_field(sink, &what, table, "at", &span) else {
        if !table.contains_key("at") {
            let msg = format!("{what}: missing field `at`");
            let help = Some("add the commit time, e.g. `at = 2024-01-02T01:28:46Z`");
            sink.error(Code::MissingField, CATALOG_FILE, Some(span), msg, help);
        }
        return None;
    };
    let optional = |sink: &mut Sink, key: &str| match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            let msg = format!("{what}: `{key}` must be a string, got {}", a_type(other));
            sink.error(Code::BadType, CATALOG_FILE, Some(span.clone()), msg, None);
            Err(())
        }
    };
    let subject = optional(sink, "subject").ok()?;
    let skipped = optional(sink, "skipped").ok()?;
    Some(ListedVersion {
        version: CatalogVersion {
            number: number.to_string(),
            commit,
            at,
            subject,
        },
        skipped,
    })
}

/// `since`, `until` and `catalog = { since = "N", until = "N" }` of a window or an alias:
/// the bounds, the versions they name, each version listed and its commit time the bound.
fn dated(
    sink: &mut Sink,
    versions: &BTreeMap<String, ListedVersion>,
    what: &str,
    table: &toml::Table,
    span: &Range<usize>,
) -> Option<Dated> {
    let since = time_field(sink, what, table, "since", span).ok()?;
    let until = time_field(sink, what, table, "until", span).ok()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        let msg = format!("{what}: `since` is not before `until`, so the window is empty");
        let help = Some("`since` is the first instant of the window, `until` the first after it");
        sink.error(Code::BadDate, CATALOG_FILE, Some(span.clone()), msg, help);
        return None;
    }
    let mut when = Dated {
        since,
        until,
        since_catalog: None,
        until_catalog: None,
    };
    let Some(refs) = table.get("catalog") else {
        return Some(when);
    };
    let Some(refs) = refs.as_table() else {
        let msg = format!("{what}: `catalog` must be a table, got {}", a_type(refs));
        let help = Some("e.g. `catalog = { since = \"014\", until = \"047\" }`");
        sink.error(Code::BadType, CATALOG_FILE, Some(span.clone()), msg, help);
        return None;
    };
    if !known_keys(
        sink,
        &format!("{what}: catalog"),
        refs,
        &["since", "until"],
        span,
    ) {
        return None;
    }
    for (key, bound) in [("since", since), ("until", until)] {
        let Some(number) = refs.get(key) else {
            continue;
        };
        let Some(number) = number.as_str() else {
            let msg = format!("{what}: `catalog.{key}` must be a version's number (a string)");
            sink.error(
                Code::BadType,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                Some("e.g. `\"014\"`"),
            );
            return None;
        };
        let problem = match (versions.get(number), bound) {
            (None, _) => Some((
                format!("{what}: `catalog.{key}` names version `{number}`, which [versions] does not list"),
                "list the version under [versions], or fix the number".to_string(),
            )),
            (Some(v), _) if v.skipped.is_some() => Some((
                format!("{what}: `catalog.{key}` names version `{number}`, which was skipped ({})", v.skipped.as_deref().unwrap_or_default()),
                "a skipped version changed nothing; name the version that did".to_string(),
            )),
            (Some(_), None) => Some((
                format!("{what}: `catalog.{key}` names version `{number}` but the window has no `{key}`"),
                format!("write `{key}` = the version's commit time"),
            )),
            (Some(v), Some(t)) if v.version.at != t => Some((
                format!(
                    "{what}: `{key}` is {} but version `{number}` was committed at {}",
                    crate::engine::time::utc_string(t),
                    crate::engine::time::utc_string(v.version.at)
                ),
                "a bound that comes from a catalog version is its UTC commit time (not the committer's local date)".to_string(),
            )),
            (Some(_), Some(_)) => None,
        };
        if let Some((msg, help)) = problem {
            sink.error(
                Code::CatalogVersion,
                CATALOG_FILE,
                Some(span.clone()),
                msg,
                Some(&help),
            );
            return None;
        }
        let v = versions[number].version.clone();
        match key {
            "since" => when.since_catalog = Some(v),
            _ => when.until_catalog = Some(v),
        }
    }
    Some(when)
}

/// One window of a model: `"family"` or `{ family = "...", since, until, catalog }`.
fn window(
    sink: &mut Sink,
    versions: &BTreeMap<String, ListedVersion>,
    model: &str,
    span: Range<usize>,
    value: &toml::Value,
) -> Option<CatalogWindow> {
    let what = format!("model `{model}`");
    let table = match value {
        toml::Value::String(family) => {
            return Some(CatalogWindow {
                family: family.clone(),
                when: Dated::default(),
                file: CATALOG_FILE.to_string(),
                span,
            });
        }
        toml::Value::Table(t) => t,
        other => {
            let msg = format!(
                "{what}: expected a family name, a window or an array of windows, got `{other}` ({})",
                other.type_str()
            );
            let help = Some(
                "write `Model = \"family\"` or `Model = { family = \"family\", since = 2024-06-01 }`",
            );
            sink.error(Code::BadType, CATALOG_FILE, Some(span), msg, help);
            return None;
        }
    };
    const KEYS: [&str; 4] = ["family", "since", "until", "catalog"];
    if !known_keys(sink, &what, table, &KEYS, &span) {
        return None;
    }
    let family = string_field(sink, &what, table, "family", "`family = \"sdxl10\"`", &span)?;
    let when = dated(sink, versions, &what, table, &span)?;
    Some(CatalogWindow {
        family,
        when,
        file: CATALOG_FILE.to_string(),
        span,
    })
}

/// One window of an alias: `{ model, kind, source, since, until, catalog }`.
fn alias(
    sink: &mut Sink,
    versions: &BTreeMap<String, ListedVersion>,
    name: &str,
    span: Range<usize>,
    value: &toml::Value,
) -> Option<Alias> {
    let what = format!("alias `{name}`");
    let Some(table) = value.as_table() else {
        let msg = format!(
            "{what}: expected a table or an array of tables, got {}",
            a_type(value)
        );
        let help = Some(
            "write `Old = { model = \"New\", kind = \"rename\", since = 2024-04-24T03:08:19Z, source = \"...\" }`",
        );
        sink.error(Code::BadType, CATALOG_FILE, Some(span), msg, help);
        return None;
    };
    const KEYS: [&str; 6] = ["model", "kind", "source", "since", "until", "catalog"];
    if !known_keys(sink, &what, table, &KEYS, &span) {
        return None;
    }
    let model = string_field(
        sink,
        &what,
        table,
        "model",
        "`model = \"BrainDance\"`",
        &span,
    )?;
    let kind = alias_kind(sink, &what, table, &span)?;
    let source = string_field(
        sink,
        &what,
        table,
        "source",
        "`source = \"catalog 014 replaced the name\"`",
        &span,
    )?;
    let when = dated(sink, versions, &what, table, &span)?;
    Some(Alias {
        name: nfc(name).into_owned(),
        model: nfc(&model).into_owned(),
        kind,
        when,
        source,
        file: CATALOG_FILE.to_string(),
        span,
    })
}

fn alias_kind(
    sink: &mut Sink,
    what: &str,
    table: &toml::Table,
    span: &Range<usize>,
) -> Option<AliasKind> {
    let kind = string_field(sink, what, table, "kind", "`kind = \"rename\"`", span)?;
    let parsed = AliasKind::from_name(&kind);
    if parsed.is_none() {
        let names = AliasKind::ALL.map(AliasKind::as_str);
        let msg = format!(
            "{what}: unknown kind `{kind}`, expected one of `rename`, `gateway`, `redirect`"
        );
        let help = match closest(&kind, names) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "`rename` (the catalog replaced the name), `gateway` (the gateway rewrote it) or `redirect` (the catalog's `redirect`)".into(),
        };
        sink.error(
            Code::BadType,
            CATALOG_FILE,
            Some(span.clone()),
            msg,
            Some(&help),
        );
    }
    parsed
}

/// One `[declined]` entry: `{ model, kind, catalog, reason }`.
fn declined(
    sink: &mut Sink,
    versions: &BTreeMap<String, ListedVersion>,
    name: &str,
    span: Range<usize>,
    value: &toml::Value,
) -> Option<Declined> {
    let what = format!("declined `{name}`");
    let Some(table) = value.as_table() else {
        let msg = format!(
            "{what}: expected a table or an array of tables, got {}",
            a_type(value)
        );
        let help = Some(
            "write `Name = { model = \"Other\", kind = \"rename\", catalog = \"037\", reason = \"...\" }`",
        );
        sink.error(Code::BadType, CATALOG_FILE, Some(span), msg, help);
        return None;
    };
    if !known_keys(
        sink,
        &what,
        table,
        &["model", "kind", "catalog", "reason"],
        &span,
    ) {
        return None;
    }
    let model = string_field(
        sink,
        &what,
        table,
        "model",
        "`model = \"BrainDance\"`",
        &span,
    )?;
    let kind = alias_kind(sink, &what, table, &span)?;
    let reason = string_field(
        sink,
        &what,
        table,
        "reason",
        "`reason = \"a different model\"`",
        &span,
    )?;
    let catalog = match table.get("catalog") {
        None => None,
        Some(toml::Value::String(n)) if versions.contains_key(n) => Some(n.clone()),
        Some(other) => {
            let msg = format!(
                "{what}: `catalog` names version `{}`, which [versions] does not list",
                other.as_str().unwrap_or(&other.to_string())
            );
            sink.error(
                Code::CatalogVersion,
                CATALOG_FILE,
                Some(span),
                msg,
                Some("name the version where the candidate appeared, e.g. `catalog = \"037\"`"),
            );
            return None;
        }
    };
    Some(Declined {
        name: nfc(name).into_owned(),
        model: nfc(&model).into_owned(),
        kind,
        catalog,
        reason,
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
/// catalog.toml about its family (in one of the model's windows), and price the job kind its
/// family's rule prices.
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

/// The catalog entry a model rule declares: its model, always, in its family, at its `[rule]`.
fn entry_of(rule: &Rule) -> CatalogEntry {
    CatalogEntry {
        windows: vec![CatalogWindow {
            family: rule.family.clone(),
            when: Dated::default(),
            file: rule.file.clone(),
            span: rule.span.clone(),
        }],
    }
}

fn check_family(sink: &mut Sink, entry: &CatalogEntry, rule: &Rule) {
    if entry.has_family(&rule.family) {
        return;
    }
    let mut families: Vec<&str> = entry.windows.iter().map(|w| w.family.as_str()).collect();
    families.dedup();
    let msg = format!(
        "model `{}` is in family `{}` here but `{}` in {}",
        rule.id,
        rule.family,
        families.join("`, then `"),
        entry.file()
    );
    let help = Some(
        "make the two agree: a model rule prices its model while the catalog puts it in the rule's family",
    );
    let span = Some(rule.span.clone());
    sink.error(Code::CatalogConflict, &rule.file, span, msg, help);
}

/// Aliases must point at a model (in the catalog or named by a model rule), never at another
/// alias in force at the same time (a chain or a loop), and never hide a catalog entry of
/// their own name (except a `redirect`, which by definition names a listed model) or a model
/// rule that would price the name. The aliases that break none of this are kept.
pub(super) fn check_aliases(
    sink: &mut Sink,
    catalog: &Catalog,
    aliases: BTreeMap<String, Vec<Alias>>,
    rules: &Rules,
) -> BTreeMap<String, Vec<Alias>> {
    let mut out = BTreeMap::new();
    for (name, windows) in &aliases {
        let mut kept = Vec::new();
        for a in windows {
            let at = Some(a.span.clone());
            // A self-alias is a loop of one.
            if a.model == *name {
                let msg = format!("alias `{name}` → `{name}` is a loop");
                let help = Some("point the alias at the model that prices it directly");
                sink.error(Code::AliasChain, CATALOG_FILE, at, msg, help);
                continue;
            }
            let targets = aliases.get(&a.model).map_or(&[][..], Vec::as_slice);
            if let Some(b) = overlapping(targets, &a.when, |b| &b.when).next() {
                let msg = if b.model == *name || a.model == *name {
                    format!("alias `{name}` → `{}` → `{}` is a loop", a.model, b.model)
                } else {
                    format!(
                        "alias `{name}` → `{}` is a chain: `{}` is itself an alias of `{}` {}",
                        a.model,
                        a.model,
                        b.model,
                        b.when.text()
                    )
                };
                let help = Some("point the alias at the model that prices it directly");
                sink.error(Code::AliasChain, CATALOG_FILE, at, msg, help);
                continue;
            }
            if !catalog.contains_key(&a.model) {
                let msg = format!(
                    "alias `{name}`: model `{}` is not in the catalog and no rule names it",
                    a.model
                );
                let names = catalog.keys().map(String::as_str);
                let help = match closest(&a.model, names) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "an alias prices its name as a catalog model: name one".to_string(),
                };
                sink.error(Code::UnknownAliasTarget, CATALOG_FILE, at, msg, Some(&help));
                continue;
            }
            if let Some(rule) = rules.model.get(name) {
                // Where the rule would price the name: its catalog windows in the rule's family
                // (always, for a model only the rule names).
                let shadowed = catalog.get(name).is_some_and(|e| {
                    overlapping(&e.windows, &a.when, |w| &w.when).any(|w| w.family == rule.family)
                });
                if shadowed {
                    let msg = format!(
                        "alias `{name}` {} hides the model rule `{}` ({}) that prices the name then",
                        a.when.text(),
                        rule.id,
                        rule.file
                    );
                    let help = Some(
                        "move the alias out of the time the rule prices the name, or remove the rule",
                    );
                    sink.error(Code::AliasShadows, CATALOG_FILE, at, msg, help);
                    continue;
                }
            } else if a.kind != AliasKind::Redirect
                && let Some(w) = (catalog.get(name))
                    .and_then(|e| overlapping(&e.windows, &a.when, |w| &w.when).next())
            {
                let msg = format!(
                    "alias `{name}` {} overlaps its own catalog window {}",
                    a.when.text(),
                    w.when.text()
                );
                let help = Some(
                    "a name is a model or an alias at any one time: end the alias where the window starts (only a `redirect` may name a listed model)",
                );
                sink.error(Code::AliasShadows, CATALOG_FILE, at, msg, help);
                continue;
            }
            kept.push(a.clone());
        }
        if !kept.is_empty() {
            out.insert(name.clone(), kept);
        }
    }
    out
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
        for w in &entry.windows {
            let model_rule = rules.model.get(model).is_some_and(|r| r.family == w.family);
            if rules.family.contains_key(&w.family)
                || model_rule
                || unpriced.contains_key(&w.family)
            {
                continue;
            }
            let (models, at) =
                (unpriced_models.entry(w.family.as_str())).or_insert((Vec::new(), w.span.clone()));
            if !models.contains(&model.as_str()) {
                models.push(model);
            }
            if w.span.start < at.start {
                *at = w.span.clone();
            }
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
