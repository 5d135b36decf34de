//! Changes of the catalog: models, their windows and families, and aliases.

use super::*;

impl Differ<'_> {
    pub(super) fn catalog_line(&self, file: &str, span: &std::ops::Range<usize>) -> Option<usize> {
        let text = self.text(file);
        (!text.is_empty()).then(|| line_of(text, span.start))
    }

    pub(super) fn catalog(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        for (model, n) in &new.catalog {
            let subject = format!("model `{model}`");
            let change = |op| {
                RuleSetChange::new(Entity::Model, op, subject.clone(), Some(n.file()))
                    .at(self.catalog_line(n.file(), &n.span()))
                    .scope(Scope::Model(model.clone()))
            };
            let families = |e: &CatalogEntry| -> Vec<String> {
                e.windows.iter().map(|w| w.family.clone()).collect()
            };
            let bounds =
                |e: &CatalogEntry| -> Vec<(Option<jiff::Timestamp>, Option<jiff::Timestamp>)> {
                    e.windows
                        .iter()
                        .map(|w| (w.when.since, w.when.until))
                        .collect()
                };
            match old.catalog.get(model) {
                None => out.push(change(Op::Added).field("family", None, Some(n.text()))),
                Some(o) if families(o) != families(n) => out.push(
                    change(Op::Changed)
                        .field("family", Some(o.text()), Some(n.text()))
                        .flag("re-prices past jobs of this model under another family's rule"),
                ),
                Some(o) if bounds(o) != bounds(n) => out.push(
                    change(Op::Changed)
                        .field("window", Some(o.text()), Some(n.text()))
                        .flag("moves when this model is priced, so past jobs may change between `no_rule` and priced"),
                ),
                // The same windows, other provenance (catalog versions named or not).
                Some(o) if o.text() != n.text() => {
                    out.push(change(Op::Changed).field("window", Some(o.text()), Some(n.text())))
                }
                Some(_) => {}
            }
        }
        self.aliases(out);
        // Families left unpriced on purpose: their reason is what their models' jobs say.
        let file = Some(crate::rules::files::CATALOG_FILE);
        for (family, why) in &new.unpriced {
            let subject = format!("unpriced family `{family}`");
            let line = self.table_key(
                crate::rules::files::CATALOG_FILE,
                "[unpriced]",
                Some(family),
            );
            match old.unpriced.get(family) {
                None => out.push(
                    RuleSetChange::new(Entity::Model, Op::Added, subject, file)
                        .at(line)
                        .field("reason", None, Some(why.clone())),
                ),
                Some(o) if o != why => out.push(
                    RuleSetChange::new(Entity::Model, Op::Changed, subject, file)
                        .at(line)
                        .field("reason", Some(o.clone()), Some(why.clone())),
                ),
                Some(_) => {}
            }
        }
        for (family, why) in &old.unpriced {
            if !new.unpriced.contains_key(family) {
                out.push(
                    RuleSetChange::new(
                        Entity::Model,
                        Op::Removed,
                        format!("unpriced family `{family}`"),
                        None,
                    )
                    .field("reason", Some(why.clone()), None),
                );
            }
        }
        for (model, o) in &old.catalog {
            if !new.catalog.contains_key(model) {
                out.push(
                    RuleSetChange::new(Entity::Model, Op::Removed, format!("model `{model}`"), None)
                        .scope(Scope::Model(model.clone()))
                        .field("family", Some(o.text()), None)
                        .flag("its past jobs lose their rule; to stop pricing a model, add a version with `no_rule = \"why\"`"),
                );
            }
        }
    }

    /// Aliases added, removed or changed: each can move the price of jobs carrying the name.
    pub(super) fn aliases(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let text = |aliases: &[crate::engine::catalog::Alias]| -> String {
            let parts: Vec<String> = aliases.iter().map(|a| a.text()).collect();
            parts.join("; ")
        };
        let pricing = |aliases: &[crate::engine::catalog::Alias]| -> Vec<_> {
            (aliases.iter())
                .map(|a| (a.model.clone(), a.when.since, a.when.until))
                .collect()
        };
        let names: BTreeSet<&String> = old.aliases.keys().chain(new.aliases.keys()).collect();
        for name in names {
            let (o, n) = (old.aliases_of(name), new.aliases_of(name));
            let subject = format!("alias `{name}`");
            let file = n.first().map(|a| a.file.as_str());
            let line = n.first().and_then(|a| self.catalog_line(&a.file, &a.span));
            let change = |op| {
                RuleSetChange::new(Entity::Alias, op, subject.clone(), file)
                    .at(line)
                    .scope(Scope::Model(name.clone()))
            };
            let field = |c: RuleSetChange| {
                c.field(
                    "alias",
                    (!o.is_empty()).then(|| text(o)),
                    (!n.is_empty()).then(|| text(n)),
                )
            };
            if o.is_empty() {
                out.push(field(change(Op::Added)).flag(
                    "prices the jobs that carry this name as another model inside its window",
                ));
            } else if n.is_empty() {
                out.push(
                    field(change(Op::Removed))
                        .flag("the jobs that carry this name lose the model they were priced as"),
                );
            } else if pricing(o) != pricing(n) {
                out.push(
                    field(change(Op::Changed))
                        .flag("re-prices the jobs that carry this name in the time that moved"),
                );
            } else if text(o) != text(n) || o.iter().zip(n).any(|(a, b)| a.source != b.source) {
                out.push(field(change(Op::Changed)));
            }
        }
    }
}
