//! `catalog.toml` (model names and their families), and the checks that join it with the
//! rules: model rules agree with it, and every family it names is priced.

use std::collections::BTreeMap;

use super::rule::Rules;
use super::{CATALOG_FILE, Sink};
use crate::engine::model::{CatalogEntry, Rule};
use crate::rules::diagnostic::Code;
use crate::rules::schema::CatalogFile;

pub(super) type Catalog = BTreeMap<String, CatalogEntry>;

/// The models of `catalog.toml` (none when it is missing or broken).
pub(super) fn read(sink: &mut Sink) -> Catalog {
    if !sink.contains(CATALOG_FILE) {
        return Catalog::new();
    }
    let Some(file) = sink.parse::<CatalogFile>(CATALOG_FILE) else {
        return Catalog::new();
    };
    (file.models.into_iter())
        .map(|(model, family)| {
            let entry = CatalogEntry {
                span: family.span(),
                family: family.into_inner(),
                file: CATALOG_FILE.to_string(),
            };
            (model, entry)
        })
        .collect()
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

/// Catalog families nobody prices: their models will get `no_rule`; say so, once per
/// family, at its first model in catalog.toml.
pub(super) fn report_unpriced_families(sink: &mut Sink, catalog: &Catalog, rules: &Rules) {
    let mut unpriced: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    for (model, entry) in catalog {
        if rules.family.contains_key(&entry.family) || rules.model.contains_key(model) {
            continue;
        }
        let (models, at) =
            (unpriced.entry(entry.family.as_str())).or_insert((Vec::new(), usize::MAX));
        models.push(model);
        *at = (*at).min(entry.span.start);
    }
    for (family, (models, at)) in unpriced {
        let msg = format!(
            "family `{family}` has no rule, so its models ({}) will get `no_rule`",
            models.join(", ")
        );
        let help = Some(
            "add a rule file for the family; a version with `no_rule = \"why\"` records a deliberate decision",
        );
        sink.warning(
            Code::FamilyWithoutRule,
            CATALOG_FILE,
            Some(at..at),
            msg,
            help,
        );
    }
}
