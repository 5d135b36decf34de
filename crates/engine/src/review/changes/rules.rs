//! Changes of rules, their versions (field by field) and examples, and of the formulas in use.

use super::*;

impl Differ<'_> {
    /// Formula files whose text changed, with the existing versions they re-price.
    pub(super) fn formulas_in_use(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        for mut change in diff_formula_files(&old.files, &new.files) {
            let path = change
                .subject
                .trim_start_matches("formula `")
                .trim_end_matches('`')
                .to_string();
            if change.op == Op::Changed {
                // Existing versions (in both rule sets) that price with this file.
                let users: Vec<String> = old
                    .rules()
                    .flat_map(|r| r.versions.iter().map(move |v| (r, v)))
                    .filter(|(_, v)| formula_file(v) == Some(path.as_str()))
                    .filter(|(r, v)| {
                        find_rule(new, r).is_some_and(|nr| find_version(nr, v).is_some())
                    })
                    .map(|(r, v)| format!("{}@{}", r.id, v.version))
                    .collect();
                if !users.is_empty() {
                    change = change.flag(format!(
                        "changes the meaning of existing versions {}; put the new formula in a new file and a new version",
                        users.join(", ")
                    ));
                }
                change.scope = Scope::Versions(users);
            }
            out.push(change);
        }
    }

    pub(super) fn all_rules(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        // Family rules then model rules, each by id; a rule present on one side only is added
        // or removed as a whole.
        for (olds, news) in [
            (&old.family_rules, &new.family_rules),
            (&old.model_rules, &new.model_rules),
        ] {
            let ids: BTreeSet<&String> = olds.keys().chain(news.keys()).collect();
            for id in ids {
                match (olds.get(id), news.get(id)) {
                    (None, Some(n)) => {
                        // Its versions carry what it re-prices, each with its own time.
                        out.push(
                            RuleSetChange::new(Entity::Rule, Op::Added, rule_subject(n), Some(&n.file))
                                .at(self.rule_line(n))
                                .field("prices", None, Some(format!("family `{}`, job kind `{}`", n.family, n.kind))),
                        );
                        for v in &n.versions {
                            out.push(
                                RuleSetChange::new(Entity::Version, Op::Added, version_subject(n, v), Some(&n.file))
                                    .at(Some(v.line).filter(|l| *l > 0))
                                    .scope(Scope::Versions(vec![v.label.clone()]))
                                    .field("version", None, Some(describe_version(v))),
                            );
                        }
                    }
                    (Some(o), None) => out.push(
                        RuleSetChange::new(Entity::Rule, Op::Removed, rule_subject(o), None)
                            .scope(Scope::Rule(o.id.clone()))
                            .field("file", Some(o.file.clone()), None)
                            .flag(format!(
                                "its {} version(s) disappear, so past jobs are re-priced; to stop pricing, add a version with `no_rule = \"why\"`",
                                o.versions.len()
                            )),
                    ),
                    (Some(o), Some(n)) => self.rule(o, n, out),
                    (None, None) => {}
                }
            }
        }
    }

    pub(super) fn rule(&self, o: &Rule, n: &Rule, out: &mut Vec<RuleSetChange>) {
        let file = Some(n.file.as_str());
        let subject = rule_subject(n);
        let at = self.rule_line(n);
        let whole = || Scope::Rule(n.id.clone());
        let text = self.text(&n.file);
        let key = |k: &str| at.and_then(|h| key_line(text, h, k)).or(at);
        if o.kind != n.kind {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(key("kind"))
                    .scope(whole())
                    .field("kind", Some(o.kind.clone()), Some(n.kind.clone()))
                    .flag("changes what its existing versions price"),
            );
        }
        if o.family != n.family {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(key("family"))
                    .scope(whole())
                    .field("family", Some(o.family.clone()), Some(n.family.clone()))
                    .flag("moves a model to another family for all of its history"),
            );
        }
        if o.file != n.file {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject.clone(), file)
                    .at(at)
                    .field("file", Some(o.file.clone()), Some(n.file.clone())),
            );
        }
        if o.description != n.description {
            out.push(
                RuleSetChange::new(Entity::Rule, Op::Changed, subject, file)
                    .at(key("description"))
                    .field("description", o.description.clone(), n.description.clone()),
            );
        }
        let latest_old = o.versions.iter().map(|v| v.effective_from).max();
        for nv in &n.versions {
            match find_version(o, nv) {
                None => {
                    // What it takes over from: the version in force just before it.
                    let previous = n
                        .versions
                        .iter()
                        .rev()
                        .find(|p| p.effective_from < nv.effective_from)
                        .map(|p| format!("version {} {}", p.version, describe_version(p)));
                    let mut c = RuleSetChange::new(
                        Entity::Version,
                        Op::Added,
                        version_subject(n, nv),
                        file,
                    )
                    .at(Some(nv.line).filter(|l| *l > 0))
                    .scope(Scope::Versions(vec![nv.label.clone()]))
                    .field("version", previous, Some(describe_version(nv)));
                    if latest_old.is_some_and(|t| nv.effective_from <= t) {
                        c = c.flag(format!(
                            "takes effect {}, before an existing version ends, so it re-prices jobs already scored",
                            day_or_time(nv.effective_from)
                        ));
                    }
                    out.push(c);
                }
                Some(ov) => {
                    self.version(n, ov, nv, out);
                    self.examples(o, n, ov, nv, out);
                }
            }
        }
        for ov in &o.versions {
            if find_version(n, ov).is_none() {
                out.push(
                    RuleSetChange::new(Entity::Version, Op::Removed, version_subject(o, ov), file)
                        .at(at)
                        .scope(Scope::Versions(vec![ov.label.clone()]))
                        .field("version", Some(describe_version(ov)), None)
                        .flag("jobs it priced are re-priced by another version; rules change by adding versions"),
                );
            }
        }
    }

    pub(super) fn version(
        &self,
        rule: &Rule,
        o: &RuleVersion,
        n: &RuleVersion,
        out: &mut Vec<RuleSetChange>,
    ) {
        let subject = version_subject(rule, n);
        let file = Some(rule.file.as_str());
        let pricing = || Scope::Versions(vec![n.label.clone()]);
        let change = |field: &str, key: &str, a: String, b: String| {
            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                .at(self.version_key(rule, n, key))
                .field(field, Some(a), Some(b))
        };
        if o.effective_from != n.effective_from {
            out.push(
                change(
                    "effective_from",
                    "effective_from",
                    day_or_time(o.effective_from),
                    day_or_time(n.effective_from),
                )
                .scope(pricing())
                .flag(REWRITES),
            );
        }
        match (&o.pricing, &n.pricing) {
            (Pricing::NoRule { reason: a }, Pricing::NoRule { reason: b }) => {
                if a != b {
                    out.push(change("no_rule", "no_rule", a.clone(), b.clone()));
                }
            }
            (Pricing::Disabled { reason: a }, Pricing::Disabled { reason: b }) => {
                if a != b {
                    out.push(change("disabled", "disabled", a.clone(), b.clone()));
                }
            }
            (
                Pricing::Priced {
                    formula: fa,
                    multiplier: ma,
                    thresholds: ta,
                    ceilings: ca,
                },
                Pricing::Priced {
                    formula: fb,
                    multiplier: mb,
                    thresholds: tb,
                    ceilings: cb,
                },
            ) => {
                let names: BTreeSet<&str> = ca.iter().chain(cb).map(|c| c.name.as_str()).collect();
                for name in names {
                    let a = ca.iter().find(|c| c.name == name).map(|c| number(c.max));
                    let b = cb.iter().find(|c| c.name == name);
                    let line = b
                        .and_then(|c| c.place.as_ref().map(|p| p.line))
                        .or_else(|| self.version_key(rule, n, "max"));
                    let b = b.map(|c| number(c.max));
                    if a != b {
                        out.push(
                            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                                .at(line)
                                .scope(pricing())
                                .field(&format!("max.{name}"), a, b)
                                .flag(REWRITES),
                        );
                    }
                }
                if ma.to_bits() != mb.to_bits() {
                    out.push(
                        change(
                            "multiplier",
                            "multiplier",
                            multiplier_text(*ma),
                            multiplier_text(*mb),
                        )
                        .at(n
                            .multiplier_place
                            .as_ref()
                            .map(|p| p.line)
                            .or_else(|| self.version_key(rule, n, "multiplier")))
                        .scope(pricing())
                        .flag(REWRITES),
                    );
                }
                let names: BTreeSet<&str> = ta.iter().chain(tb).map(|t| t.name.as_str()).collect();
                for name in names {
                    let a = ta.iter().find(|t| t.name == name).map(|t| number(t.min));
                    let b = tb.iter().find(|t| t.name == name);
                    let line = b
                        .and_then(|t| t.place.as_ref().map(|p| p.line))
                        .or_else(|| self.version_key(rule, n, "min"));
                    let b = b.map(|t| number(t.min));
                    if a != b {
                        out.push(
                            RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                                .at(line)
                                .scope(pricing())
                                .field(&format!("min.{name}"), a, b)
                                .flag(REWRITES),
                        );
                    }
                }
                let formula_line = n.formula_place.as_ref().map(|p| p.line);
                if fa.file != fb.file || fa.name != fb.name {
                    out.push(
                        change("formula", "formula", formula_ref(fa), formula_ref(fb))
                            .at(formula_line.or_else(|| self.version_key(rule, n, "formula")))
                            .scope(pricing())
                            .flag(REWRITES),
                    );
                } else if fa.name == "inline" && fa.source != fb.source {
                    // Shared formula files are diffed once, as files; inline ones here.
                    let mut c = change("expr", "expr", fa.source.clone(), fb.source.clone())
                        .at(formula_line.or_else(|| self.version_key(rule, n, "expr")))
                        .scope(pricing())
                        .flag(REWRITES);
                    c.diff = unified_diff(&fa.file, &fa.source, &fb.file, &fb.source);
                    out.push(c);
                }
            }
            (a, b) => {
                let key = match b {
                    Pricing::NoRule { .. } => "no_rule",
                    Pricing::Disabled { .. } => "disabled",
                    Pricing::Priced { .. } => "formula",
                };
                out.push(
                    change("pricing", key, pricing_text(a), pricing_text(b))
                        .scope(pricing())
                        .flag(REWRITES),
                );
            }
        }
        if o.source != n.source {
            out.push(change(
                "source",
                "source",
                o.source.clone(),
                n.source.clone(),
            ));
        }
        if o.notes != n.notes {
            out.push(
                RuleSetChange::new(Entity::Version, Op::Changed, subject.clone(), file)
                    .at(self.version_key(rule, n, "notes"))
                    .field("notes", o.notes.clone(), n.notes.clone()),
            );
        }
        if o.assumptions != n.assumptions {
            out.push(change(
                "assumptions",
                "assumptions",
                o.assumptions.join(" / "),
                n.assumptions.join(" / "),
            ));
        }
    }

    /// Examples of a version on both sides, matched by their inputs (those both sides' job
    /// kinds read, so an input added with a default does not make every example new):
    /// added, removed, and expected points or status changed.
    pub(super) fn examples(
        &self,
        or: &Rule,
        nr: &Rule,
        o: &RuleVersion,
        n: &RuleVersion,
        out: &mut Vec<RuleSetChange>,
    ) {
        let names = |rs: &RuleSet, r: &Rule| -> BTreeSet<String> {
            rs.job_kinds
                .get(&r.kind)
                .map(|k| k.inputs.iter().map(|i| i.name.clone()).collect())
                .unwrap_or_default()
        };
        let common: BTreeSet<String> = names(self.old, or)
            .intersection(&names(self.new, nr))
            .cloned()
            .collect();
        let key = |e: &Example| -> String {
            let inputs = e
                .inputs
                .iter()
                .filter(|(name, v)| common.contains(name) && !v.is_absent())
                .map(|(name, v)| format!("{name}={v}"));
            // Its time is part of what it is (it picks the execution limits).
            let at = e.at.map(|t| format!("at {}", utc_string(t)));
            inputs.chain(at).collect::<Vec<_>>().join(", ")
        };
        let olds: Vec<(String, &Example)> = o.examples.iter().map(|e| (key(e), e)).collect();
        let news: Vec<(String, &Example)> = n.examples.iter().map(|e| (key(e), e)).collect();
        let file = Some(nr.file.as_str());
        let subject = |k: &str| format!("{} example ({k})", version_subject(nr, n));
        for (k, ne) in &news {
            let line = Some(ne.place.line).filter(|l| *l > 0);
            match olds.iter().find(|(ok, _)| ok == k) {
                None => out.push(
                    RuleSetChange::new(Entity::Example, Op::Added, subject(k), file)
                        .at(line)
                        .field("expects", None, Some(expected(ne))),
                ),
                Some((_, oe)) if (oe.points, oe.status) != (ne.points, ne.status) => out.push(
                    RuleSetChange::new(Entity::Example, Op::Changed, subject(k), file)
                        .at(line)
                        .field("expects", Some(expected(oe)), Some(expected(ne))),
                ),
                Some(_) => {}
            }
        }
        for (k, oe) in &olds {
            if !news.iter().any(|(nk, _)| nk == k) {
                out.push(
                    RuleSetChange::new(Entity::Example, Op::Removed, subject(k), file)
                        .at(Some(n.line).filter(|l| *l > 0))
                        .field("expects", Some(expected(oe)), None),
                );
            }
        }
    }
}
