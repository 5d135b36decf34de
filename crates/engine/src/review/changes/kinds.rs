//! Changes of point kinds, job kinds (their inputs and execution limits) and policy floors.

use super::*;

impl Differ<'_> {
    pub(super) fn point_kinds(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let kinds = Some(crate::rules::files::KINDS_FILE);
        for (name, p) in &new.point_kinds {
            let subject = format!("point kind `{name}`");
            let line = self.table_key(
                crate::rules::files::KINDS_FILE,
                &format!("[points.{name}]"),
                Some("description"),
            );
            match old.point_kinds.get(name) {
                None => out.push(
                    RuleSetChange::new(Entity::PointKind, Op::Added, subject, kinds)
                        .at(line)
                        .field("description", None, p.description.clone()),
                ),
                Some(o) if o.description != p.description => out.push(
                    RuleSetChange::new(Entity::PointKind, Op::Changed, subject, kinds)
                        .at(line)
                        .field("description", o.description.clone(), p.description.clone()),
                ),
                Some(_) => {}
            }
        }
        for name in old.point_kinds.keys() {
            if !new.point_kinds.contains_key(name) {
                let users: Vec<String> = (old.job_kinds.values())
                    .filter(|k| &k.points == name)
                    .map(|k| k.name.clone())
                    .collect();
                out.push(
                    RuleSetChange::new(
                        Entity::PointKind,
                        Op::Removed,
                        format!("point kind `{name}`"),
                        None,
                    )
                    .scope(Scope::Kinds(users))
                    .flag("a point kind that miners already earned disappears"),
                );
            }
        }
    }

    pub(super) fn job_kinds(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let file = Some(crate::rules::files::KINDS_FILE);
        for (name, n) in &new.job_kinds {
            let line = |key: Option<&str>| {
                self.table_key(
                    crate::rules::files::KINDS_FILE,
                    &format!("[jobs.{name}]"),
                    key,
                )
            };
            let Some(o) = old.job_kinds.get(name) else {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Added,
                        format!("job kind `{name}`"),
                        file,
                    )
                    .at(line(Some("points")))
                    .field("points", None, Some(n.points.clone())),
                );
                continue;
            };
            if o.points != n.points {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Changed,
                        format!("job kind `{name}`"),
                        file,
                    )
                    .at(line(Some("points")))
                    .scope(Scope::Kinds(vec![name.clone()]))
                    .field("points", Some(o.points.clone()), Some(n.points.clone()))
                    .flag("jobs of this kind already earned the old point kind"),
                );
            }
            self.inputs(name, o, n, out);
            self.execution_limits(name, o, n, out);
        }
        for name in old.job_kinds.keys() {
            if !new.job_kinds.contains_key(name) {
                out.push(
                    RuleSetChange::new(
                        Entity::JobKind,
                        Op::Removed,
                        format!("job kind `{name}`"),
                        None,
                    )
                    .scope(Scope::Kinds(vec![name.clone()]))
                    .flag("every job of this kind loses its rule"),
                );
            }
        }
    }

    /// Inputs and derived values of job kind `kind`. Any change to them can change how a job
    /// of the kind is read under every version, so each is scoped to the whole kind; the
    /// replay shows whether a job actually moves.
    pub(super) fn inputs(
        &self,
        kind: &str,
        o: &JobKind,
        n: &JobKind,
        out: &mut Vec<RuleSetChange>,
    ) {
        let file = Some(crate::rules::files::KINDS_FILE);
        let scope = || Scope::Kinds(vec![kind.to_string()]);
        let kinds_text = self.text(crate::rules::files::KINDS_FILE);
        for ni in &n.inputs {
            let subject = format!("input `{kind}.{}`", ni.name);
            let line =
                ni.place.as_ref().map(|p| p.line).or_else(|| {
                    table_line(kinds_text, &format!("[jobs.{kind}.inputs.{}]", ni.name))
                });
            match o.inputs.iter().find(|i| i.name == ni.name) {
                None => {
                    let mut c = RuleSetChange::new(Entity::Input, Op::Added, subject, file)
                        .at(line)
                        .scope(scope())
                        .field("spec", None, Some(input_bounds(ni)));
                    if ni.required() {
                        c = c.flag(format!(
                            "a required input: every job without `{}` becomes invalid, also under existing versions; give it a `default`",
                            ni.name
                        ));
                    }
                    out.push(c);
                }
                Some(oi) => {
                    let (a, b) = (input_bounds(oi), input_bounds(ni));
                    if a != b {
                        let mut c = RuleSetChange::new(Entity::Input, Op::Changed, subject, file)
                            .at(line)
                            .scope(scope())
                            .field("spec", Some(a), Some(b));
                        if ni.required() && !oi.required() {
                            c = c.flag(format!(
                                "now required: every job without `{}` becomes invalid",
                                ni.name
                            ));
                        } else if oi.default != ni.default && oi.default.is_some() {
                            c = c.flag("re-prices every existing job that relies on the default");
                        } else if oi.tokens_of.is_some() {
                            c = c.flag(
                                "re-prices every existing job whose tokens are counted from its text",
                            );
                        }
                        out.push(c);
                    }
                }
            }
        }
        for oi in &o.inputs {
            if !n.inputs.iter().any(|i| i.name == oi.name) {
                out.push(
                    RuleSetChange::new(
                        Entity::Input,
                        Op::Removed,
                        format!("input `{kind}.{}`", oi.name),
                        file,
                    )
                    .scope(scope())
                    .field("spec", Some(input_bounds(oi)), None)
                    .flag("formulas and thresholds that read it stop working"),
                );
            }
        }
        let derived_line = |name: &str| {
            self.table_key(
                crate::rules::files::KINDS_FILE,
                &format!("[jobs.{kind}.derived]"),
                Some(name),
            )
        };
        for nd in &n.derived {
            let subject = format!("derived value `{kind}.{}`", nd.name);
            match o.derived.iter().find(|d| d.name == nd.name) {
                None => out.push(
                    RuleSetChange::new(Entity::Derived, Op::Added, subject, file)
                        .at(derived_line(&nd.name))
                        .scope(scope())
                        .field("expr", None, Some(nd.expr.clone())),
                ),
                Some(od) if od.expr != nd.expr => out.push(
                    RuleSetChange::new(Entity::Derived, Op::Changed, subject, file)
                        .at(derived_line(&nd.name))
                        .scope(scope())
                        .field("expr", Some(od.expr.clone()), Some(nd.expr.clone()))
                        .flag("re-prices every existing version that uses it"),
                ),
                Some(_) => {}
            }
        }
        for od in &o.derived {
            if !n.derived.iter().any(|d| d.name == od.name) {
                out.push(
                    RuleSetChange::new(
                        Entity::Derived,
                        Op::Removed,
                        format!("derived value `{kind}.{}`", od.name),
                        file,
                    )
                    .scope(scope())
                    .field("expr", Some(od.expr.clone()), None)
                    .flag("formulas and thresholds that read it stop working"),
                );
            }
        }
    }

    /// Execution limits of job kind `kind`, entry by entry (matched by `effective_from`).
    /// What a job ran decides its points, so each change is scoped to where the two sides'
    /// limits differ; the windows tell whether it rewrites the past.
    pub(super) fn execution_limits(
        &self,
        kind: &str,
        o: &JobKind,
        n: &JobKind,
        out: &mut Vec<RuleSetChange>,
    ) {
        let file = Some(crate::rules::files::KINDS_FILE);
        let scope = |l: &ExecutionLimits| Scope::Limits(kind.to_string(), l.effective_from);
        let subject = |l: &ExecutionLimits| {
            format!(
                "execution limits of job kind `{kind}` from {}",
                utc_string(l.effective_from)
            )
        };
        for nl in &n.execution_limits {
            let line = Some(nl.place.line);
            match (o.execution_limits.iter()).find(|l| l.effective_from == nl.effective_from) {
                None => out.push(
                    RuleSetChange::new(Entity::ExecutionLimits, Op::Added, subject(nl), file)
                        .at(line)
                        .scope(scope(nl))
                        .field("inputs", None, Some(nl.describe())),
                ),
                Some(ol) => {
                    if ol.describe() != nl.describe() {
                        out.push(
                            RuleSetChange::new(Entity::ExecutionLimits, Op::Changed, subject(nl), file)
                                .at(line)
                                .scope(scope(nl))
                                .field("inputs", Some(ol.describe()), Some(nl.describe()))
                                .flag("changes the limits that jobs already priced ran under, so they are re-priced; add an entry from a new time instead"),
                        );
                    }
                    if ol.source != nl.source {
                        out.push(
                            RuleSetChange::new(
                                Entity::ExecutionLimits,
                                Op::Changed,
                                subject(nl),
                                file,
                            )
                            .at(line)
                            .field(
                                "source",
                                Some(ol.source.clone()),
                                Some(nl.source.clone()),
                            ),
                        );
                    }
                }
            }
        }
        for ol in &o.execution_limits {
            if !(n.execution_limits.iter()).any(|l| l.effective_from == ol.effective_from) {
                out.push(
                    RuleSetChange::new(Entity::ExecutionLimits, Op::Removed, subject(ol), file)
                        .scope(scope(ol))
                        .field("inputs", Some(ol.describe()), None)
                        .flag("jobs that ran under these limits are re-priced as the entry before (or as requested)"),
                );
            }
        }
    }

    /// Floors and ceilings of policy.toml. They decide whether rules load, never what a job
    /// earns, so they re-price nothing by themselves.
    pub(super) fn floors(&self, out: &mut Vec<RuleSetChange>) {
        let (old, new) = (self.old, self.new);
        let flat = |rs: &RuleSet| -> BTreeMap<String, f64> {
            rs.floors
                .iter()
                .flat_map(|(k, ts)| ts.iter().map(move |t| (format!("{k}.{}", t.name), t.min)))
                .collect()
        };
        let policy = crate::rules::files::POLICY_FILE;
        // `image.steps` → the `steps` key of `[floors.image]`.
        let line = |table: &str, name: &str| {
            let (kind, key) = name.split_once('.').unwrap_or((name, name));
            self.table_key(policy, &format!("[{table}.{kind}]"), Some(key))
        };
        let (o, n) = (flat(old), flat(new));
        let file = Some(policy);
        for (name, nv) in &n {
            let subject = format!("floor `{name}`");
            match o.get(name) {
                None => out.push(
                    RuleSetChange::new(Entity::Floor, Op::Added, subject, file)
                        .at(line("floors", name))
                        .field("min", None, Some(number(*nv)))
                        .flag("adds a protocol invariant; every rule version must now respect it"),
                ),
                Some(ov) if ov != nv => {
                    let why = if nv < ov {
                        "lowers a protocol invariant"
                    } else {
                        "raises a protocol invariant; versions below it stop loading"
                    };
                    out.push(
                        RuleSetChange::new(Entity::Floor, Op::Changed, subject, file)
                            .at(line("floors", name))
                            .field("min", Some(number(*ov)), Some(number(*nv)))
                            .flag(why),
                    );
                }
                Some(_) => {}
            }
        }
        for (name, ov) in &o {
            if !n.contains_key(name) {
                out.push(
                    RuleSetChange::new(Entity::Floor, Op::Removed, format!("floor `{name}`"), file)
                        .field("min", Some(number(*ov)), None)
                        .flag("removes a protocol invariant"),
                );
            }
        }
        // Ceilings of policy.toml: any move of one is a change to the protocol's bounds.
        let flat = |rs: &RuleSet| -> BTreeMap<String, f64> {
            let mut m = BTreeMap::new();
            for (k, c) in &rs.ceilings {
                m.extend(c.max_multiplier.map(|v| (format!("{k}.max_multiplier"), v)));
                m.extend(c.max_points.map(|v| (format!("{k}.max_points"), v)));
            }
            m
        };
        let (o, n) = (flat(old), flat(new));
        let names: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
        for name in names {
            let (a, b) = (o.get(name).copied(), n.get(name).copied());
            let (op, why) = match (a, b) {
                (None, Some(_)) => (Op::Added, "adds a protocol bound"),
                (Some(_), None) => (Op::Removed, "removes a protocol bound against inflation"),
                (Some(x), Some(y)) if x < y => {
                    (Op::Changed, "raises a protocol bound against inflation")
                }
                (Some(x), Some(y)) if x > y => (
                    Op::Changed,
                    "lowers a protocol bound; versions above it stop loading",
                ),
                _ => continue,
            };
            out.push(
                RuleSetChange::new(Entity::Floor, op, format!("ceiling `{name}`"), file)
                    .at(b.and_then(|_| line("ceilings", name)))
                    .field("max", a.map(number), b.map(number))
                    .flag(why),
            );
        }
    }
}
