//! Changes of rules, their versions (field by field) and examples, and of the formulas in use.

use super::*;

/// The keys of `[rule]` (rule.schema.json) that [`Differ::rule`] compares by what they mean
/// (`model` and, for a family rule, `family` name the rule: a rule with another name is another
/// rule). Any other key a `[rule]` table writes is compared as written ([`Differ::unlisted`]).
const RULE_KEYS: &[&str] = &["family", "model", "kind", "description"];

/// The keys of `[[version]]` that [`Differ::version`] and [`Differ::examples`] compare by what
/// they mean (`version` names the version). Any other key is compared as written, so a key
/// added to the schema shows in review before its own comparison is written.
const VERSION_KEYS: &[&str] = &[
    "version",
    "effective_from",
    "source",
    "notes",
    "assumptions",
    "formula",
    "formula_file",
    "expr",
    "multiplier",
    "min",
    "max",
    "no_rule",
    "disabled",
    "examples",
];

/// The `[rule]` table (`version` `None`) or the `[[version]]` numbered `version` of a rule
/// file, as written; `None` when the file does not have it (or does not parse).
fn written_table(text: &str, version: Option<i64>) -> Option<toml::Table> {
    let mut file: toml::Table = toml::from_str(text).ok()?;
    match version {
        None => match file.remove("rule")? {
            toml::Value::Table(t) => Some(t),
            _ => None,
        },
        Some(number) => match file.remove("version")? {
            toml::Value::Array(versions) => versions.into_iter().find_map(|v| match v {
                toml::Value::Table(t)
                    if t.get("version").and_then(toml::Value::as_integer) == Some(number) =>
                {
                    Some(t)
                }
                _ => None,
            }),
            _ => None,
        },
    }
}

/// The keys of two tables outside `listed` whose values differ, with both values as written,
/// in key order.
fn unlisted_differences(
    old: &toml::Table,
    new: &toml::Table,
    listed: &[&str],
) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| !listed.contains(&k.as_str()))
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let text = |t: &toml::Table| t.get(k).map(toml::Value::to_string);
            (k.clone(), text(old), text(new))
        })
        .collect()
}

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
        self.unlisted(o, n, None, out);
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
                    self.unlisted(o, n, Some(nv), out);
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

    /// Keys of rule `o` → `n` (its `[rule]` table, or with `version` that `[[version]]`) that
    /// no comparison of this module reads (outside [`RULE_KEYS`], [`VERSION_KEYS`]), compared
    /// as written: what they do is not known here, so each is flagged as possibly re-pricing.
    fn unlisted(
        &self,
        o: &Rule,
        n: &Rule,
        version: Option<&RuleVersion>,
        out: &mut Vec<RuleSetChange>,
    ) {
        let number = version.map(|v| v.version);
        let (Some(old), Some(new)) = (
            written_table(self.old.files_text(&o.file), number),
            written_table(self.text(&n.file), number),
        ) else {
            return;
        };
        let listed = if version.is_some() {
            VERSION_KEYS
        } else {
            RULE_KEYS
        };
        for (key, a, b) in unlisted_differences(&old, &new, listed) {
            let change = match version {
                Some(v) => RuleSetChange::new(
                    Entity::Version,
                    Op::Changed,
                    version_subject(n, v),
                    Some(&n.file),
                )
                .at(self.version_key(n, v, &key))
                .scope(Scope::Versions(vec![v.label.clone()])),
                None => {
                    let at = self.rule_line(n);
                    RuleSetChange::new(Entity::Rule, Op::Changed, rule_subject(n), Some(&n.file))
                        .at(at
                            .and_then(|h| key_line(self.text(&n.file), h, &key))
                            .or(at))
                        .scope(Scope::Rule(n.id.clone()))
                }
            };
            out.push(change.field(&key, a, b).flag(UNLISTED));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::files::{CATALOG_FILE, RuleFiles};
    use crate::rules::load::load;

    /// A model rule that writes every key of `[rule]` and `[[version]]` it can at once.
    const BASE: &str = r#"[rule]
model = "BrainDance"
family = "sd15"
kind = "image"
description = "base"

[[version]]
version = 1
effective_from = 2024-04-01
source = "base"
notes = "base"
assumptions = ["base"]
formula = "waifu_season1"
multiplier = 1.0
min = { pixels = 262144, steps = 20 }
max = { inference_latency = 18 }
examples = [{ width = 512, height = 512, steps = 20, points = 1 }]
"#;

    const FILE: &str = "models/BrainDance.toml";

    /// The model's entry in catalog.toml; a replacement of it edits catalog.toml.
    const CATALOG_ENTRY: &str = "BrainDance = { family = \"sd15\"";

    /// How review must show an edit: as a change of this `field`, or (for the keys that name
    /// a rule or a version) as a rule or version added.
    #[derive(Debug, Clone, Copy)]
    enum Shown {
        Field(&'static str),
        Added(Entity),
    }

    /// Text replacements (from, to), in order.
    type Replacements = Vec<(&'static str, &'static str)>;

    /// For every key of the rule schema (`table.key`), an edit of [`BASE`] (text replaced,
    /// in order) that changes only it, and how review shows it.
    fn edits() -> Vec<(&'static str, Replacements, Shown)> {
        use Shown::*;
        let priced = "formula = \"waifu_season1\"\nmultiplier = 1.0\nmin = { pixels = 262144, steps = 20 }\nmax = { inference_latency = 18 }\nexamples = [{ width = 512, height = 512, steps = 20, points = 1 }]";
        vec![
            (
                "rule.model",
                vec![("\"BrainDance\"", "\"BlazingDrive\"")],
                Added(Entity::Rule),
            ),
            // With the catalog, which must put the model in the rule's family.
            (
                "rule.family",
                vec![
                    ("family = \"sd15\"", "family = \"sdxl10\""),
                    (CATALOG_ENTRY, "BrainDance = { family = \"sdxl10\""),
                ],
                Field("family"),
            ),
            (
                "rule.kind",
                // A model rule prices its family's kind: the family (and catalog) move too.
                vec![
                    ("kind = \"image\"", "kind = \"llm\""),
                    ("family = \"sd15\"", "family = \"llm8x7b4b\""),
                    (CATALOG_ENTRY, "BrainDance = { family = \"llm8x7b4b\""),
                    (
                        priced,
                        "formula = \"llama_season1\"\nexamples = [{ input_tokens = 1000, output_tokens = 1000, points = 2 }]",
                    ),
                ],
                Field("kind"),
            ),
            (
                "rule.description",
                vec![("\"base\"", "\"edited\"")],
                Field("description"),
            ),
            (
                "version.version",
                vec![("version = 1", "version = 2")],
                Added(Entity::Version),
            ),
            (
                "version.effective_from",
                vec![("2024-04-01", "2024-04-02")],
                Field("effective_from"),
            ),
            (
                "version.source",
                vec![("source = \"base\"", "source = \"edited\"")],
                Field("source"),
            ),
            (
                "version.notes",
                vec![("notes = \"base\"", "notes = \"edited\"")],
                Field("notes"),
            ),
            (
                "version.assumptions",
                vec![("[\"base\"]", "[\"edited\"]")],
                Field("assumptions"),
            ),
            (
                "version.formula",
                vec![("formula = \"waifu_season1\"", "formula = \"waifu_copy\"")],
                Field("formula"),
            ),
            (
                "version.formula_file",
                vec![(
                    "formula = \"waifu_season1\"",
                    "formula_file = \"waifu.rhai\"",
                )],
                Field("formula"),
            ),
            (
                "version.expr",
                vec![(
                    "formula = \"waifu_season1\"",
                    "expr = \"(1.0 + 5.0 * (pixels - 262144) / 786432.0) * steps / 20.0\"",
                )],
                Field("formula"),
            ),
            (
                "version.multiplier",
                vec![
                    ("multiplier = 1.0", "multiplier = 2.0"),
                    ("points = 1 }", "points = 2 }"),
                ],
                Field("multiplier"),
            ),
            (
                "version.min",
                vec![("steps = 20 }", "steps = 20, width = 256 }")],
                Field("min.width"),
            ),
            (
                "version.max",
                vec![("inference_latency = 18", "inference_latency = 20")],
                Field("max.inference_latency"),
            ),
            (
                "version.no_rule",
                vec![(priced, "no_rule = \"none\"")],
                Field("pricing"),
            ),
            (
                "version.disabled",
                vec![(priced, "disabled = \"off\"")],
                Field("pricing"),
            ),
            (
                "version.examples.points",
                vec![
                    ("multiplier = 1.0", "multiplier = 2.0"),
                    ("points = 1 }", "points = 2 }"),
                ],
                Field("expects"),
            ),
            (
                "version.examples.status",
                vec![
                    ("steps = 20 }", "steps = 30 }"),
                    ("points = 1 }", "points = 0, status = \"below_threshold\" }"),
                ],
                Field("expects"),
            ),
            (
                "version.examples.at",
                vec![("points = 1 }", "points = 1, at = 2024-05-01 }")],
                Added(Entity::Example),
            ),
            (
                "version.examples",
                vec![(
                    "points = 1 }",
                    "points = 1 }, { width = 1024, height = 1024, steps = 20, points = 6 }",
                )],
                Added(Entity::Example),
            ),
        ]
    }

    fn loaded(text: &str, catalog_entry: &str) -> RuleSet {
        let mut files = RuleFiles::embedded();
        files
            .files
            .insert(FILE.to_string(), text.as_bytes().to_vec());
        let catalog = files
            .text(CATALOG_FILE)
            .unwrap()
            .replacen(CATALOG_ENTRY, catalog_entry, 1);
        files
            .files
            .insert(CATALOG_FILE.to_string(), catalog.into_bytes());
        // The same formula as `waifu_season1` under another name, and in a file of its own
        // (`formula_file`).
        let waifu = files
            .text("formulas/waifu_season1.rhai")
            .unwrap()
            .to_string();
        files.files.insert(
            "formulas/waifu_copy.rhai".to_string(),
            waifu.clone().into_bytes(),
        );
        files
            .files
            .insert("models/waifu.rhai".to_string(), waifu.into_bytes());
        let loaded = load(files);
        let errors: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        loaded
            .ruleset
            .unwrap_or_else(|| panic!("does not load: {errors:#?}\n{text}"))
    }

    /// The keys of the rule file's `[rule]` and `[[version]]` tables, from its JSON Schema
    /// (derived from the types that parse the files).
    fn schema_keys() -> Vec<String> {
        let file = crate::rules::json_schema::schema_files()
            .into_iter()
            .find(|f| f.name == "rule.schema.json")
            .expect("a rule file schema");
        let schema: serde_json::Value = serde_json::from_str(&file.text).unwrap();
        let keys = |table: &str, properties: &serde_json::Value| -> Vec<String> {
            let properties = properties
                .as_object()
                .unwrap_or_else(|| panic!("{table} has no properties"));
            properties.keys().map(|k| format!("{table}.{k}")).collect()
        };
        let mut out = keys("rule", &schema["properties"]["rule"]["properties"]);
        let version = &schema["properties"]["version"]["items"]["properties"];
        out.extend(keys("version", version));
        out.extend(keys(
            "version.examples",
            &version["examples"]["items"]["properties"],
        ));
        assert!(out.len() > 10, "{out:?}");
        out
    }

    #[test]
    fn every_key_of_the_rule_schema_is_compared() {
        let edits = edits();
        let missing: Vec<String> = (schema_keys().into_iter())
            .filter(|k| !edits.iter().any(|(key, _, _)| key == k))
            .collect();
        assert!(
            missing.is_empty(),
            "keys of the rule schema this test does not edit (add an edit, and make review compare them): {missing:?}"
        );
        let old = loaded(BASE, CATALOG_ENTRY);
        for (key, replacements, shown) in edits {
            let mut text = BASE.to_string();
            let mut catalog_entry = CATALOG_ENTRY;
            for (from, to) in replacements {
                if from == CATALOG_ENTRY {
                    catalog_entry = to;
                    continue;
                }
                assert!(text.contains(from), "{key}: {from:?} not in {text}");
                text = text.replacen(from, to, 1);
            }
            let new = loaded(&text, catalog_entry);
            assert_ne!(old.hash, new.hash, "{key}");
            let changes = diff_rules(&old, &new);
            let found = changes.iter().any(|c| match shown {
                Shown::Field(f) => {
                    c.field.as_deref() == Some(f) && c.flag.as_deref() != Some(UNLISTED)
                }
                Shown::Added(e) => c.entity == e && c.op == Op::Added,
            });
            assert!(
                found,
                "{key}: review does not show the edit as {shown:?} (compared by its meaning, not only as written): {changes:#?}"
            );
        }
    }

    #[test]
    fn a_key_no_comparison_reads_is_compared_as_written() {
        let table = |s: &str| -> toml::Table { toml::from_str(s).unwrap() };
        let (old, new) = (
            table("a = 1\nb = [1]\nc = 1"),
            table("a = 2\nb = [1, 2]\nd = \"x\""),
        );
        assert_eq!(
            unlisted_differences(&old, &new, &["a"]),
            vec![
                (
                    "b".to_string(),
                    Some("[1]".to_string()),
                    Some("[1, 2]".to_string())
                ),
                ("c".to_string(), Some("1".to_string()), None),
                ("d".to_string(), None, Some("\"x\"".to_string())),
            ]
        );
        let text = "[rule]\nkind = \"image\"\n[[version]]\nversion = 1\nx = 1\n[[version]]\nversion = 2\nx = 2\n";
        assert_eq!(
            written_table(text, Some(2)).unwrap()["x"].as_integer(),
            Some(2)
        );
        assert_eq!(
            written_table(text, None).unwrap()["kind"].as_str(),
            Some("image")
        );
        assert_eq!(written_table(text, Some(3)), None);
        assert_eq!(written_table("not toml [", None), None);
    }
}
