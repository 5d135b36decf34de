//! `jobpoints catalog sync`: `catalog.toml` from the network's catalog history plus the
//! decisions governance recorded in it.
//!
//! The history (every version of `models.json`, read offline from a git clone or a directory
//! of versions: [`history`]) is parsed strictly ([`strict`]) and followed name by name into
//! windows, redirects and rename candidates ([`timeline`]). Facts become rule data as the
//! catalog gives them: each model priced inside its windows, in the family of the time, and a
//! removal ends pricing. What only governance can decide is read from the current
//! `catalog.toml` and kept: which rename candidates and redirects are aliases (`[aliases]`,
//! with their `source`) or not (`[declined]`), which families are left unpriced and why
//! (`[unpriced]`), and a family without either is reported, never guessed. The shipped
//! `catalog.toml` is exactly what this produces from the full history; `--check` says when
//! it is not.

pub mod history;
pub mod strict;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::catalog::{Alias, AliasKind, Dated};
use crate::engine::model::RuleFiles;
use crate::engine::time::{utc_date, utc_string};
use crate::rules::diagnostic::Diagnostic;
use crate::rules::files::CATALOG_FILE;
use crate::rules::load::{CatalogParts, Declined, load, read_catalog};
use timeline::{FamilyWindow, Timeline};

pub use history::{
    GitSource, HistoryError, RawVersion, default_commits_file, read_directory, read_git,
};

/// Why sync cannot run on these rules.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The decisions cannot be read: catalog.toml (or the rules) do not load far enough.
    #[error("{message}")]
    Rules {
        message: String,
        diagnostics: Vec<Diagnostic>,
    },
}

/// What kind of decision the history asks of governance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A family of the catalog that no rule prices: price it (a rule file) or say why not
    /// (`[unpriced]`).
    NewFamily,
    /// A model left the catalog: its pricing ends then (informational).
    Removal,
    /// One name removed and another added in the same version, same family: an alias
    /// (`[aliases]`, kind `rename`) or not (`[declined]`).
    Rename,
    /// A model moved to another family: it is priced under the new one from then on
    /// (informational).
    FamilyChange,
    /// The catalog redirected a model's jobs to another name: an alias of that name
    /// (`[aliases]`, kind `redirect`) or not (`[declined]`).
    Redirect,
}

impl DecisionKind {
    fn as_str(self) -> &'static str {
        match self {
            DecisionKind::NewFamily => "new family",
            DecisionKind::Removal => "removal",
            DecisionKind::Rename => "rename",
            DecisionKind::FamilyChange => "family change",
            DecisionKind::Redirect => "redirect",
        }
    }
}

/// Where a decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionStatus {
    /// Governance has not decided: sync does not guess.
    Missing,
    /// Decided, and recorded in the rules (`detail` says where).
    Recorded,
    /// Decided against (`[declined]`).
    Declined,
    /// Nothing to decide: the rules follow the catalog (a removal ends pricing, a family
    /// change re-prices under the new family).
    Info,
}

/// One thing the history asks of governance, and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kind: DecisionKind,
    pub status: DecisionStatus,
    /// What it is about: ``family `llm70b` ``, `` `A` → `B` ``.
    pub subject: String,
    /// The catalog version it comes from.
    pub catalog: String,
    /// That version's commit time (UTC).
    pub at: String,
    /// What governance decides, or what was decided.
    pub detail: String,
    /// Whether it is news: not yet in the current catalog.toml.
    pub new: bool,
}

/// What sync proposes: the catalog.toml the history gives, and what governance must look at.
#[derive(Debug)]
pub struct Proposal {
    pub timeline: Timeline,
    pub decisions: Vec<Decision>,
    /// Recorded aliases that match nothing in the history (kept as written).
    pub notes: Vec<String>,
    /// The current catalog.toml ("" when there is none).
    pub current: String,
    pub proposed: String,
}

impl Proposal {
    /// Whether the current catalog.toml differs from what the history gives.
    pub fn drift(&self) -> bool {
        self.current != self.proposed
    }

    /// The decisions governance has not taken.
    pub fn missing(&self) -> impl Iterator<Item = &Decision> {
        self.decisions
            .iter()
            .filter(|d| d.status == DecisionStatus::Missing)
    }

    /// The proposed change as a unified diff of `path` (empty without drift).
    pub fn patch(&self, path: &str) -> String {
        if !self.drift() {
            return String::new();
        }
        similar::TextDiff::from_lines(&self.current, &self.proposed)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string()
    }
}

/// What the current rules decided, as sync needs it.
struct Recorded {
    catalog: CatalogParts,
    /// Families some rule file prices.
    families: BTreeSet<String>,
    /// Model rules: model → its family.
    model_rules: BTreeMap<String, String>,
}

fn recorded(files: &RuleFiles) -> Result<Recorded, SyncError> {
    let (catalog, diagnostics) = read_catalog(files);
    let errors: Vec<Diagnostic> = diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    if !errors.is_empty() {
        return Err(SyncError::Rules {
            message: format!(
                "{CATALOG_FILE} in {} has errors, so the decisions it records cannot be read; fix them first",
                files.origin
            ),
            diagnostics: errors,
        });
    }
    let loaded = load(files.clone());
    let Some(rs) = loaded.ruleset.as_ref().or(loaded.partial.as_ref()) else {
        return Err(SyncError::Rules {
            message: format!("the rules in {} do not load", files.origin),
            diagnostics: loaded.diagnostics,
        });
    };
    Ok(Recorded {
        families: rs.family_rules.keys().cloned().collect(),
        model_rules: (rs.model_rules.iter())
            .map(|(m, r)| (m.clone(), r.family.clone()))
            .collect(),
        catalog,
    })
}

/// Runs sync: the history in `raw`, the decisions in `files`' catalog.toml.
pub fn sync(raw: Vec<RawVersion>, files: &RuleFiles) -> Result<Proposal, SyncError> {
    let rec = recorded(files)?;
    let timeline = Timeline::build(raw);
    let current = files.text(CATALOG_FILE).unwrap_or_default().to_string();
    let mut decisions = Vec::new();
    let mut notes = Vec::new();
    let (aliases, declined) = aliases(&timeline, &rec, &mut decisions, &mut notes);
    families(&timeline, &rec, &mut decisions);
    events(&timeline, &rec, &mut decisions);
    // By version (numbers are zero-padded to three digits, so a longer one is later), kind
    // and subject.
    let key = |d: &Decision| {
        (
            d.catalog.len(),
            d.catalog.clone(),
            d.kind,
            d.subject.clone(),
        )
    };
    decisions.sort_by_key(key);
    let proposed = render(&timeline, &rec.catalog, &aliases, &declined);
    Ok(Proposal {
        timeline,
        decisions,
        notes,
        current,
        proposed,
    })
}

/// A window of the history as rule data.
fn dated(t: &Timeline, since: usize, until: Option<usize>) -> Dated {
    let version = |i: usize| {
        let v = &t.versions[i];
        crate::engine::catalog::CatalogVersion {
            number: v.number.clone(),
            commit: v.commit.clone(),
            at: v.at,
            subject: v.subject.clone(),
        }
    };
    Dated {
        since: Some(t.at(since)),
        until: until.map(|u| t.at(u)),
        since_catalog: Some(version(since)),
        until_catalog: until.map(version),
    }
}

fn decision(
    t: &Timeline,
    kind: DecisionKind,
    status: DecisionStatus,
    version: usize,
    subject: String,
    detail: String,
) -> Decision {
    Decision {
        kind,
        status,
        subject,
        catalog: t.versions[version].number.clone(),
        at: utc_string(t.at(version)),
        detail,
        new: status == DecisionStatus::Missing,
    }
}

/// The aliases the history and the recorded decisions give: every rename candidate and
/// redirect governance accepted (windows from the history, `source` from the decision), then
/// every other recorded alias as written.
fn aliases(
    t: &Timeline,
    rec: &Recorded,
    out: &mut Vec<Decision>,
    notes: &mut Vec<String>,
) -> (Vec<Alias>, Vec<Declined>) {
    let recorded: Vec<&Alias> = rec.catalog.aliases.values().flatten().collect();
    let mut used = vec![false; recorded.len()];
    let mut accept = |kind: AliasKind, name: &str, model: &str| -> Option<String> {
        let i = recorded
            .iter()
            .position(|a| a.kind == kind && a.name == name && a.model == model)?;
        // Every recorded window of the pair is this decision.
        for (j, a) in recorded.iter().enumerate() {
            used[j] |= a.kind == kind && a.name == name && a.model == model;
        }
        Some(recorded[i].source.clone())
    };
    // Each recorded decline, with the catalog version of the candidate it matched (a fact).
    let mut declines: Vec<Declined> = rec.catalog.declined.clone();
    let mut declined =
        |kind: AliasKind, name: &str, model: &str, version: usize| -> Option<String> {
            let d = (declines.iter_mut())
                .find(|d| d.kind == kind && d.name == name && d.model == model)?;
            d.catalog = Some(t.versions[version].number.clone());
            Some(d.reason.clone())
        };
    let mut made = Vec::new();
    for c in &t.renames {
        let subject = format!("`{}` → `{}` ({})", c.from, c.to, c.family);
        let (status, detail) = if let Some(source) = accept(AliasKind::Rename, &c.from, &c.to) {
            // Until the old name is listed again, if it ever is.
            let back = t
                .models
                .get(&c.from)
                .and_then(|ws| ws.iter().find(|w| w.since > c.version))
                .map(|w| w.since);
            made.push(Alias {
                name: c.from.clone(),
                model: c.to.clone(),
                kind: AliasKind::Rename,
                when: dated(t, c.version, back),
                source,
                file: CATALOG_FILE.to_string(),
                span: 0..0,
            });
            (
                DecisionStatus::Recorded,
                format!(
                    "an alias: jobs carrying `{}` are priced as `{}` ([aliases])",
                    c.from, c.to
                ),
            )
        } else if let Some(reason) = declined(AliasKind::Rename, &c.from, &c.to, c.version) {
            (
                DecisionStatus::Declined,
                format!("not an alias ([declined]): {reason}"),
            )
        } else {
            (
                DecisionStatus::Missing,
                format!(
                    "the same model renamed? Record an alias (`\"{}\" = {{ model = \"{}\", kind = \"rename\", source = \"...\" }}` under [aliases]) or decline it under [declined]",
                    c.from, c.to
                ),
            )
        };
        out.push(decision(
            t,
            DecisionKind::Rename,
            status,
            c.version,
            subject,
            detail,
        ));
    }
    for r in &t.redirects {
        let subject = format!("`{}` redirected to `{}`", r.model, r.target);
        let (status, detail) = if let Some(source) =
            accept(AliasKind::Redirect, &r.target, &r.model)
        {
            made.push(Alias {
                name: r.target.clone(),
                model: r.model.clone(),
                kind: AliasKind::Redirect,
                when: dated(t, r.since, r.until),
                source,
                file: CATALOG_FILE.to_string(),
                span: 0..0,
            });
            (
                DecisionStatus::Recorded,
                format!(
                    "an alias: jobs carrying `{}` in the window are priced as `{}` ([aliases])",
                    r.target, r.model
                ),
            )
        } else if let Some(reason) = declined(AliasKind::Redirect, &r.target, &r.model, r.since) {
            (
                DecisionStatus::Declined,
                format!("not an alias ([declined]): {reason}"),
            )
        } else {
            (
                DecisionStatus::Missing,
                format!(
                    "jobs of `{}` were submitted as `{}`: price them as `{}` (an alias of kind `redirect` under [aliases]) or decline it under [declined]",
                    r.model, r.target, r.model
                ),
            )
        };
        out.push(decision(
            t,
            DecisionKind::Redirect,
            status,
            r.since,
            subject,
            detail,
        ));
    }
    for (a, used) in recorded.iter().zip(used) {
        if used {
            continue;
        }
        if a.kind != AliasKind::Gateway {
            notes.push(format!(
                "alias `{}` → `{}` ({}) matches no {} in the history; kept as written",
                a.name, a.model, a.kind, a.kind
            ));
        }
        made.push((*a).clone());
    }
    (made, declines)
}

/// Every family of the history that no rule prices: recorded under [unpriced], or missing.
fn families(t: &Timeline, rec: &Recorded, out: &mut Vec<Decision>) {
    // family → (first version it appears in, its models)
    let mut seen: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
    for (model, windows) in &t.models {
        for w in windows {
            // A model rule of the family prices its model itself.
            if rec.families.contains(&w.family) || rec.model_rules.get(model) == Some(&w.family) {
                continue;
            }
            let e = seen.entry(&w.family).or_insert((w.since, Vec::new()));
            e.0 = e.0.min(w.since);
            if !e.1.contains(&model.as_str()) {
                e.1.push(model);
            }
        }
    }
    for (family, (since, models)) in seen {
        let subject = format!("family `{family}` ({})", models.join(", "));
        let (status, detail) = match rec.catalog.unpriced.get(family) {
            Some((why, _)) => (
                DecisionStatus::Recorded,
                format!("unpriced ([unpriced]): {why}"),
            ),
            None => (
                DecisionStatus::Missing,
                format!(
                    "no rule prices it: add `families/{family}.toml`, or list it under [unpriced] with the reason its jobs get"
                ),
            ),
        };
        out.push(decision(
            t,
            DecisionKind::NewFamily,
            status,
            since,
            subject,
            detail,
        ));
    }
}

/// A model's windows as pricing sees them: family, `since`, `until`.
type Windows = Vec<(String, Option<Timestamp>, Option<Timestamp>)>;

/// Removals and family changes: the rules follow the catalog; each is listed, and marked new
/// when the current catalog.toml does not have it yet.
fn events(t: &Timeline, rec: &Recorded, out: &mut Vec<Decision>) {
    for (model, windows) in &t.models {
        let current: Option<Windows> = rec
            .catalog
            .models
            .get(crate::engine::model::nfc(model).as_ref())
            .map(|e| {
                (e.windows.iter())
                    .map(|w| (w.family.clone(), w.when.since, w.when.until))
                    .collect()
            });
        let ours: Windows = (windows.iter())
            .map(|w| {
                (
                    w.family.clone(),
                    Some(t.at(w.since)),
                    w.until.map(|u| t.at(u)),
                )
            })
            .collect();
        let new = current.as_ref() != Some(&ours);
        for (i, w) in windows.iter().enumerate() {
            let Some(until) = w.until else { continue };
            let next: Option<&FamilyWindow> = windows.get(i + 1).filter(|n| n.since == until);
            let (kind, subject, detail) = match next {
                Some(n) => (
                    DecisionKind::FamilyChange,
                    format!("`{model}`: `{}` → `{}`", w.family, n.family),
                    format!(
                        "priced under `{}` from {} on, as the catalog says",
                        n.family,
                        utc_string(t.at(until))
                    ),
                ),
                None => (
                    DecisionKind::Removal,
                    format!("`{model}` ({})", w.family),
                    format!(
                        "pricing ends at {}, as the catalog says",
                        utc_string(t.at(until))
                    ),
                ),
            };
            let mut d = decision(t, kind, DecisionStatus::Info, until, subject, detail);
            d.new = new;
            out.push(d);
        }
    }
}

/// A TOML key: bare when it can be, else a quoted string.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        s.to_string()
    } else {
        string(s)
    }
}

/// A TOML basic string.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `since = …, until = …, catalog = { since = "…", until = "…" }` (what is set).
fn dated_fields(d: &Dated) -> String {
    let mut parts = Vec::new();
    if let Some(s) = d.since {
        parts.push(format!("since = {}", utc_string(s)));
    }
    if let Some(u) = d.until {
        parts.push(format!("until = {}", utc_string(u)));
    }
    let mut refs = Vec::new();
    if let Some(v) = &d.since_catalog {
        refs.push(format!("since = {}", string(&v.number)));
    }
    if let Some(v) = &d.until_catalog {
        refs.push(format!("until = {}", string(&v.number)));
    }
    if !refs.is_empty() {
        parts.push(format!("catalog = {{ {} }}", refs.join(", ")));
    }
    parts.join(", ")
}

/// `Name = { … }` for one value, `Name = [` one per line `]` for several.
fn entry(out: &mut String, name: &str, values: &[String]) {
    match values {
        [one] => {
            let _ = writeln!(out, "{} = {one}", key(name));
        }
        many => {
            let _ = writeln!(out, "{} = [", key(name));
            for v in many {
                let _ = writeln!(out, "  {v},");
            }
            out.push_str("]\n");
        }
    }
}

const HEADER: &str = "\
# The network's model catalog over time (rules/README.md, `catalog.toml`): every model name
# jobs carry (`model` / `model_id`), when the catalog listed it and in which family, the
# other names jobs carry for them, and governance's decisions about them.
#
# Written by `jobpoints catalog sync` from every version of the network's models.json
# (heurist-network/heurist-models; tests/fixtures/catalog/history/) and the decisions recorded
# here: [aliases], [declined], [unpriced], `source` and `notes`. [versions] and [models] are
# regenerated from the history and comments are not kept, so write reasons in the fields.
# `jobpoints catalog sync --check` fails when this file drifts from the history.
";

/// The catalog.toml text.
fn render(
    t: &Timeline,
    current: &CatalogParts,
    aliases: &[Alias],
    declined: &[Declined],
) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    if let Some(s) = &current.source {
        let _ = writeln!(out, "source = {}", string(s));
    }
    if let Some(n) = &current.notes {
        let _ = writeln!(out, "notes = {}", string(n));
    }
    out.push_str(
        "\n# Every version of the catalog's history: its commit and UTC commit time. A version that\n\
         # does not parse is `skipped`; what it changed shows in the next version.\n[versions]\n",
    );
    for v in &t.versions {
        let mut fields = vec![
            format!("commit = {}", string(&v.commit)),
            format!("at = {}", utc_string(v.at)),
        ];
        if let Some(s) = &v.subject {
            fields.push(format!("subject = {}", string(s)));
        }
        if let Some(why) = &v.skipped {
            fields.push(format!("skipped = {}", string(why)));
        }
        let _ = writeln!(out, "{} = {{ {} }}", key(&v.number), fields.join(", "));
    }
    out.push_str(
        "\n# Each model's windows, under the version that first listed it. Inside a window the model\n\
         # is priced in the window's family; outside every window its jobs get `no_rule` (a removal\n\
         # ends pricing, as the catalog says). `catalog` names the versions whose commits set\n\
         # `since` and `until`.\n[models]\n",
    );
    let mut by_version: BTreeMap<usize, Vec<(&String, &Vec<FamilyWindow>)>> = BTreeMap::new();
    for (model, windows) in &t.models {
        if let Some(first) = windows.first() {
            by_version
                .entry(first.since)
                .or_default()
                .push((model, windows));
        }
    }
    for (i, models) in by_version {
        let v = &t.versions[i];
        let _ = writeln!(
            out,
            "# catalog {}, {}: {}",
            v.number,
            utc_date(v.at),
            v.subject.as_deref().unwrap_or("-")
        );
        for (model, windows) in models {
            let values: Vec<String> = (windows.iter())
                .map(|w| {
                    format!(
                        "{{ family = {}, {} }}",
                        string(&w.family),
                        dated_fields(&dated(t, w.since, w.until))
                    )
                })
                .collect();
            entry(&mut out, model, &values);
        }
    }
    if !aliases.is_empty() {
        out.push_str(
            "\n# Other names jobs carry for catalog models: a job carrying the name inside the window is\n\
             # priced as `model` (and keeps its own name). `rename`: the catalog replaced the name\n\
             # (governance accepted the candidate); `redirect`: the catalog's `redirect`, under whose\n\
             # name the gateway submitted the model's jobs; `gateway`: a name the gateway rewrote.\n\
             # Sync regenerates the windows of renames and redirects from the history.\n[aliases]\n",
        );
        let mut names: Vec<&str> = Vec::new();
        let mut sorted: Vec<&Alias> = aliases.iter().collect();
        sorted.sort_by(|a, b| (a.when.since, &a.name).cmp(&(b.when.since, &b.name)));
        for a in &sorted {
            if !names.contains(&a.name.as_str()) {
                names.push(&a.name);
            }
        }
        for name in names {
            let values: Vec<String> = (sorted.iter())
                .filter(|a| a.name == name)
                .map(|a| {
                    let when = dated_fields(&a.when);
                    let when = if when.is_empty() {
                        String::new()
                    } else {
                        format!(", {when}")
                    };
                    format!(
                        "{{ model = {}, kind = {}{when}, source = {} }}",
                        string(&a.model),
                        string(a.kind.as_str()),
                        string(&a.source)
                    )
                })
                .collect();
            entry(&mut out, name, &values);
        }
    }
    if !declined.is_empty() {
        out.push_str(
            "\n# Renames and redirects of the history that governance decided are not aliases.\n[declined]\n",
        );
        let mut sorted: Vec<&Declined> = declined.iter().collect();
        sorted.sort_by_key(|d| {
            let n = d.catalog.as_deref().unwrap_or("");
            (n.len(), n.to_string(), d.name.clone(), d.model.clone())
        });
        let mut names: Vec<&str> = Vec::new();
        for d in &sorted {
            if !names.contains(&d.name.as_str()) {
                names.push(&d.name);
            }
        }
        for name in names {
            let values: Vec<String> = (sorted.iter())
                .filter(|d| d.name == name)
                .map(|d| {
                    let catalog = d
                        .catalog
                        .as_ref()
                        .map(|c| format!(", catalog = {}", string(c)))
                        .unwrap_or_default();
                    format!(
                        "{{ model = {}, kind = {}{catalog}, reason = {} }}",
                        string(&d.model),
                        string(d.kind.as_str()),
                        string(&d.reason)
                    )
                })
                .collect();
            entry(&mut out, name, &values);
        }
    }
    if !current.unpriced.is_empty() {
        out.push_str(
            "\n# Families no rule prices, on purpose: their models' jobs get `no_rule` with this reason.\n[unpriced]\n",
        );
        for (family, (why, _)) in &current.unpriced {
            let _ = writeln!(out, "{} = {}", key(family), string(why));
        }
    }
    out
}

/// The report for people: skipped versions, decisions (missing and new ones, or all), notes.
pub fn report(s: &Proposal, all: bool) -> String {
    let mut out = String::new();
    let t = &s.timeline;
    let _ = writeln!(
        out,
        "catalog history: {} versions, {} to {}; {} models, {} redirects, {} rename candidates",
        t.versions.len(),
        t.versions.first().map_or("-".into(), |v| utc_string(v.at)),
        t.versions.last().map_or("-".into(), |v| utc_string(v.at)),
        t.models.len(),
        t.redirects.len(),
        t.renames.len()
    );
    for sk in &t.skipped {
        let v = &t.versions[sk.version];
        let _ = writeln!(
            out,
            "skipped: version {} ({}, {}): {}: {}",
            v.number,
            &v.commit[..v.commit.len().min(10)],
            utc_string(v.at),
            v.origin,
            sk.problem
        );
    }
    for w in &t.warnings {
        let v = &t.versions[w.version];
        let _ = writeln!(
            out,
            "warning: version {} ({}): {}: {}",
            v.number,
            &v.commit[..v.commit.len().min(10)],
            v.origin,
            w.problem
        );
    }
    for n in &s.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let shown: Vec<&Decision> = (s.decisions.iter())
        .filter(|d| all || d.status == DecisionStatus::Missing || d.new)
        .collect();
    let count = |st: DecisionStatus| s.decisions.iter().filter(|d| d.status == st).count();
    let _ = writeln!(
        out,
        "decisions: {} missing, {} recorded, {} declined, {} informational{}",
        count(DecisionStatus::Missing),
        count(DecisionStatus::Recorded),
        count(DecisionStatus::Declined),
        count(DecisionStatus::Info),
        if all { "" } else { " (--decisions lists all)" }
    );
    for d in shown {
        let status = match d.status {
            DecisionStatus::Missing => "MISSING",
            DecisionStatus::Recorded => "recorded",
            DecisionStatus::Declined => "declined",
            DecisionStatus::Info => "info",
        };
        let _ = writeln!(
            out,
            "  {status:<8} {:<13} catalog {} ({}): {}: {}",
            d.kind.as_str(),
            d.catalog,
            d.at,
            d.subject,
            d.detail
        );
    }
    out
}
