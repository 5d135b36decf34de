//! The report of `jobpoints diff`: rule changes plus their impact on a corpus, rendered for
//! a terminal, as a pull-request comment (markdown), or as stable JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::engine::time::utc_string;
use crate::ledger::reader::Ledger;
use crate::ledger::safe::terminal_safe;
use crate::review::changes::{
    Entity, Op, diff_files, diff_formula_files, diff_rules, diff_rules_as_of,
};
use crate::review::impact::{ImpactBuilder, ImpactOptions};

use crate::engine::points::PointsSum;
use crate::review::changes::{FileChanges, RuleSetChange};
use crate::review::impact::{
    Group, GroupImpact, Impact, KeyedGroup, ModelGroup, Mover, WindowImpact,
};
use crate::rules::diagnostic::{Diagnostic, render_human as render_diagnostics};
use crate::rules::load::Loaded;

mod markdown;
pub use markdown::render_markdown;
use markdown::{code_span, one_line};

/// The marker that lets a CI job find and update its own earlier comment.
pub const MARKDOWN_MARKER: &str = "<!-- jobpoints-diff -->";

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSide {
    /// Where the rules came from (`rules`, `rules/ at origin/main`).
    pub rules: String,
    /// SHA-256 of the rule files.
    pub ruleset: String,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Diagnostic>,
    /// The diagnostics as `jobpoints check` prints them.
    #[serde(skip)]
    pub rendered: String,
}

impl RuleSide {
    pub fn of(loaded: &Loaded) -> Self {
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let files = &loaded.files;
        RuleSide {
            rules: files.origin.to_string(),
            ruleset: files.hash(),
            valid: loaded.ruleset.is_some(),
            errors,
            warnings: loaded.diagnostics.len() - errors,
            diagnostics: loaded.diagnostics.clone(),
            rendered: render_diagnostics(&loaded.diagnostics, &|f| files.text(f).map(String::from)),
        }
    }
}

/// Everything `jobpoints diff` found. Field order is the JSON order.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub old: RuleSide,
    pub new: RuleSide,
    /// The time rule versions were picked at; `null`: each job's `completed_at`, and the
    /// latest version for jobs without one.
    pub at: Option<String>,
    /// Rule files added, removed or modified.
    pub files: FileChanges,
    /// Rule-level changes. With invalid new rules: those of whatever still loaded, without
    /// removals; with invalid old rules: formula text only.
    pub changes: Vec<RuleSetChange>,
    /// How many changes carry a flag or are retroactive.
    pub flagged: usize,
    /// How many changes alter jobs dated before the cut-off.
    pub retroactive: usize,
    /// Before this time, a change that alters a job's result is retroactive.
    pub cutoff: Cutoff,
    /// The corpus scored with both rule sets; `null` when a side is invalid.
    pub impact: Option<Impact>,
    /// With `--link-base URL`: the markdown links each change to `URL/FILE#LLINE`.
    #[serde(skip)]
    pub link_base: Option<String>,
}

/// The time before which a change is retroactive.
#[derive(Debug, Clone, Serialize)]
pub struct Cutoff {
    pub time: String,
    /// `true`: `--effective-after`; `false`: the time the diff ran.
    pub given: bool,
}

impl Cutoff {
    /// `now` or `2026-12-15` (a time is printed only when given, so reports are stable).
    fn text(&self) -> String {
        if self.given {
            self.time.trim_end_matches("T00:00:00Z").to_string()
        } else {
            "now".to_string()
        }
    }
}

impl DiffReport {
    /// Whether any job's points or status differ, as priced today or replayed in a window.
    pub fn jobs_changed(&self) -> bool {
        self.impact
            .as_ref()
            .is_some_and(|i| i.total.changed > 0 || i.windows.iter().any(|w| w.total.changed > 0))
    }
}

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `+100.000000`, `-3.500000`, `0.000000`.
fn signed(p: PointsSum) -> String {
    if p.micros() > 0 {
        format!("+{p}")
    } else {
        p.to_string()
    }
}

/// `+10.00%`; `new` when there were no points before; `0%` when nothing moved.
fn percent_text(g: &Group) -> String {
    match g.delta_percent {
        Some(p) if p > 0.0 => format!("+{p:.2}%"),
        Some(p) if p < 0.0 => format!("{p:.2}%"),
        Some(_) if g.delta.micros() != 0 => "±0.00%".into(),
        Some(_) => "0%".into(),
        None if g.after.micros() > 0 => "new".into(),
        None => "—".into(),
    }
}

/// The sides whose rules do not load, old first, named `old` / `new`.
fn invalid_sides(r: &DiffReport) -> impl Iterator<Item = (&'static str, &RuleSide)> {
    [("old", &r.old), ("new", &r.new)]
        .into_iter()
        .filter(|(_, side)| !side.valid)
}

/// Every changed rule file with its change's label from `[added, removed, modified]`: added
/// files first, then removed, then modified.
fn labelled_files<L: Copy>(
    files: &FileChanges,
    [added, removed, modified]: [L; 3],
) -> impl Iterator<Item = (L, &String)> {
    [
        (added, &files.added),
        (removed, &files.removed),
        (modified, &files.modified),
    ]
    .into_iter()
    .flat_map(|(label, list)| list.iter().map(move |f| (label, f)))
}

/// The one-line summary that heads every format.
pub fn summary_line(r: &DiffReport) -> String {
    let mut parts = Vec::new();
    if !r.old.valid || !r.new.valid {
        let which: Vec<&str> = invalid_sides(r).map(|(name, _)| name).collect();
        parts.push(format!(
            "the {} rules are invalid, so no job was scored",
            which.join(" and ")
        ));
    }
    // What rewrites history leads: "0 of 1047 jobs change" (as priced today) must not be the
    // first thing a reviewer reads about a change that re-prices Season 1.
    let retro_windows: Vec<_> = (r.impact.iter())
        .flat_map(|i| &i.windows)
        .filter(|w| w.retroactive)
        .collect();
    if r.retroactive > 0 {
        let mut s = format!(
            "REWRITES HISTORY: {} before the cut-off ({})",
            plural(
                r.retroactive as u64,
                "retroactive change",
                "retroactive changes"
            ),
            r.cutoff.text()
        );
        if !retro_windows.is_empty() {
            let replayed: u64 = retro_windows.iter().map(|w| w.total.jobs).sum();
            let changed: u64 = retro_windows.iter().map(|w| w.total.changed).sum();
            let windows = plural(retro_windows.len() as u64, "window", "windows");
            s.push_str(&if replayed == 0 {
                format!(" in {windows}, which no corpus job exercises")
            } else {
                format!(
                    " in {windows}, where {changed} of {} replayed change",
                    plural(replayed, "job", "jobs")
                )
            });
        }
        parts.push(s);
    }
    let n = r.changes.len() as u64;
    let invalid = !r.old.valid || !r.new.valid;
    let marks = match (r.flagged, r.retroactive) {
        (0, _) => String::new(),
        (f, 0) => format!(" ({f} flagged)"),
        (f, t) => format!(" ({f} flagged, {t} retroactive)"),
    };
    let files = (r.files.added.len() + r.files.removed.len() + r.files.modified.len()) as u64;
    parts.push(if invalid {
        plural(files, "rule file changed", "rule files changed")
    } else if n == 0 {
        "no rule changes".to_string()
    } else {
        format!("{}{marks}", plural(n, "rule change", "rule changes"))
    });
    if let Some(i) = &r.impact {
        let mut s = format!(
            "{} of {} change",
            i.total.changed,
            plural(i.total.jobs, "job", "jobs")
        );
        let kinds: Vec<String> = i
            .kinds
            .iter()
            .filter(|(k, _)| k.as_str() != crate::review::impact::NO_KIND)
            .map(|(k, g)| {
                if g.before == g.after {
                    format!("{k} unchanged")
                } else {
                    format!(
                        "{k} {} → {} ({}, {})",
                        g.before,
                        g.after,
                        signed(g.delta),
                        percent_text(g)
                    )
                }
            })
            .collect();
        if !kinds.is_empty() {
            s.push_str(": ");
            s.push_str(&kinds.join("; "));
        }
        parts.push(s);
        if i.windows_incomplete {
            parts.push(INCOMPLETE.to_string());
        }
        if !i.windows.is_empty() {
            let replayed: u64 = i.windows.iter().map(|w| w.total.jobs).sum();
            let changed: u64 = i.windows.iter().map(|w| w.total.changed).sum();
            let idle = i.windows.iter().filter(|w| w.total.jobs == 0).count() as u64;
            let mut s = format!(
                "replayed in {}: {changed} of {} change",
                plural(
                    i.windows.len() as u64,
                    "affected window",
                    "affected windows"
                ),
                plural(replayed, "job", "jobs")
            );
            if idle > 0 {
                s.push_str(&format!(" ({idle} not exercised by any corpus job)"));
            }
            parts.push(s);
        }
    }
    parts.join("; ")
}

/// `waifu +11.11% (100.000000 → 111.111111)` for each point kind that moves, else
/// `unchanged`.
fn window_effect(w: &WindowImpact) -> String {
    let moved: Vec<String> = (w.kinds.iter())
        .filter(|(k, g)| k.as_str() != crate::review::impact::NO_KIND || g.changed > 0)
        .filter(|(_, g)| g.changed > 0)
        .map(|(k, g)| {
            let mut s = format!("{k} {} ({} → {})", percent_text(g), g.before, g.after);
            if !g.status_changes.is_empty() {
                s.push_str(&format!(", {}", status_changes(g)));
            }
            s
        })
        .collect();
    if moved.is_empty() {
        "unchanged".into()
    } else {
        moved.join("; ")
    }
}

/// `sdxl10@1 (2024-04-01 → 2024-09-18T16:17:11Z): 47 jobs, 47 change, waifu +11.11% (…)`, or
/// the warning that no corpus job reaches it.
fn window_line(w: &WindowImpact) -> String {
    if w.total.jobs == 0 {
        return format!(
            "{}: changed; no corpus job exercises it (models: {})",
            w.window,
            w.models.join(", ")
        );
    }
    format!(
        "{}: {}, {} change, {}",
        w.window,
        plural(w.total.jobs, "job", "jobs"),
        w.total.changed,
        window_effect(w)
    )
}

/// Columns of a table, for both renderings.
struct Table {
    headers: Vec<&'static str>,
    /// Columns aligned right in text (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn text(&self, indent: &str) -> String {
        // Model names, ids and notes come from job files: no terminal control codes.
        let rows: Vec<Vec<std::borrow::Cow<'_, str>>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| terminal_safe(c)).collect())
            .collect();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: Vec<&str>| {
            let mut l = indent.to_string();
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i] - c.chars().count();
                if self.right[i] {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                } else {
                    l.push_str(c);
                    l.push_str(&" ".repeat(pad));
                }
                l.push_str("  ");
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(self.headers.clone());
        for r in &rows {
            line(r.iter().map(|c| c.as_ref()).collect());
        }
        out
    }

    fn markdown(&self) -> String {
        // Cells come from rule files and job files (untrusted): no table breaks, no HTML, and
        // no code span, link or image (`![](https://…)` would load in a PR comment).
        let esc = |s: &str| {
            let mut out = String::with_capacity(s.len());
            for c in one_line(s).chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '|' | '\\' | '`' | '[' | ']' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out
        };
        let mut out = String::new();
        out.push_str(&format!("| {} |\n", self.headers.join(" | ")));
        let seps: Vec<&str> = self
            .right
            .iter()
            .map(|r| if *r { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", seps.join("|")));
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

fn group_cells(g: &Group) -> Vec<String> {
    vec![
        g.jobs.to_string(),
        g.changed.to_string(),
        g.before.to_string(),
        g.after.to_string(),
        signed(g.delta),
        percent_text(g),
    ]
}

fn status_changes(g: &Group) -> String {
    g.status_changes
        .iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kinds_table(i: &Impact) -> Table {
    let mut rows: Vec<Vec<String>> = i
        .kinds
        .iter()
        .map(|(k, g)| {
            let mut r = vec![k.clone()];
            r.extend(group_cells(g));
            r
        })
        .collect();
    // Points of different kinds do not add up: the total row counts jobs only.
    let mut total = vec!["all jobs".to_string()];
    let cells = group_cells(&i.total);
    total.extend(cells[..2].iter().cloned());
    total.extend(std::iter::repeat_n(String::new(), 4));
    rows.push(total);
    Table {
        headers: vec![
            "point kind",
            "jobs",
            "changed",
            "before",
            "after",
            "Δ",
            "Δ%",
        ],
        right: vec![false, true, true, true, true, true, true],
        rows,
    }
}

fn models_table<'a>(models: impl Iterator<Item = &'a ModelGroup>) -> Table {
    let rows = models
        .map(|m| {
            let mut r = vec![
                m.model.clone(),
                m.kind.clone().unwrap_or_else(|| "-".into()),
                m.rules
                    .iter()
                    .map(|pair| match pair.split_once(" → ") {
                        Some((a, b)) if a == b => a.to_string(),
                        _ => pair.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ];
            r.extend(group_cells(&m.totals));
            r.push(status_changes(&m.totals));
            r
        })
        .collect();
    Table {
        headers: vec![
            "model",
            "kind",
            "rule before → after",
            "jobs",
            "changed",
            "before",
            "after",
            "Δ",
            "Δ%",
            "status changes",
        ],
        right: vec![
            false, false, false, true, true, true, true, true, true, false,
        ],
        rows,
    }
}

fn movers_table(movers: &[Mover]) -> Table {
    let rows = movers
        .iter()
        .enumerate()
        .map(|(n, m)| {
            let status = if m.status_before == m.status_after {
                m.status_after.to_string()
            } else {
                format!("{} → {}", m.status_before, m.status_after)
            };
            vec![
                (n + 1).to_string(),
                format!("{}:{}", m.file, m.line),
                m.model.clone().unwrap_or_default(),
                m.inputs.clone(),
                format!("{} → {}", m.before, m.after),
                signed(m.delta),
                m.priced_at.as_deref().map_or("latest".into(), |t| {
                    t.trim_end_matches("T00:00:00Z").to_string()
                }),
                status,
                if m.rule_before == m.rule_after {
                    m.rule_after.clone().unwrap_or_else(|| "-".into())
                } else {
                    format!(
                        "{} → {}",
                        m.rule_before.as_deref().unwrap_or("-"),
                        m.rule_after.as_deref().unwrap_or("-")
                    )
                },
                m.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Table {
        headers: vec![
            "#",
            "job",
            "model",
            "inputs",
            "points",
            "Δ",
            "priced at",
            "status",
            "rule",
            "note",
        ],
        right: vec![
            true, false, false, false, true, true, false, false, false, false,
        ],
        rows,
    }
}

/// The models whose jobs changed, biggest gains first and biggest losses last, by point
/// kind (points of different kinds are not compared), then by name.
fn changed_models(i: &Impact) -> Vec<&ModelGroup> {
    let mut changed: Vec<&ModelGroup> = i.models.iter().filter(|m| m.totals.changed > 0).collect();
    changed.sort_by(|a, b| {
        (&a.kind, std::cmp::Reverse(a.totals.delta), &a.model).cmp(&(
            &b.kind,
            std::cmp::Reverse(b.totals.delta),
            &b.model,
        ))
    });
    changed
}

fn versions_at(r: &DiffReport) -> String {
    match &r.at {
        Some(t) => format!("every job priced by the rule versions in force at {t}"),
        None => "each job priced by the rule version in force at its `completed_at`; undated jobs by the latest".to_string(),
    }
}

fn corpus_text(i: &Impact) -> String {
    i.files
        .iter()
        .map(|f| match &f.error {
            Some(e) => format!("{} ({} jobs; reading stopped: {e})", f.file, f.jobs),
            None => format!("{} ({})", f.file, f.jobs),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The time a retroactive change rewrites: `2024-04-01 → 2024-09-18T16:17:11Z`.
fn rewritten(c: &RuleSetChange) -> String {
    c.retroactive.map(|s| s.text()).unwrap_or_default()
}

/// `families/sdxl10.toml:12` as markdown: a link to the line under `--link-base`, else the
/// text (in a code span: rule file names are untrusted).
fn linked(r: &DiffReport, c: &RuleSetChange, location: &str) -> String {
    let text = code_span(location);
    match (&r.link_base, &c.file) {
        (Some(base), Some(file)) => {
            let anchor = c.line.map(|l| format!("#L{l}")).unwrap_or_default();
            format!(
                "[{text}]({}/{}{anchor})",
                base.trim_end_matches('/'),
                url_path(file)
            )
        }
        _ => text,
    }
}

/// A relative path for a URL: every byte but unreserved ones and `/` percent-encoded, so a
/// file name cannot end the link or inject markdown.
fn url_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Said when the time-window analysis ran out of budget.
const INCOMPLETE: &str = "time windows only partly analysed (the rule sets are too large): every change that can re-price is treated as retroactive";

/// When windows were replayed, an unchanged corpus says nothing about them.
fn today(i: &Impact) -> &'static str {
    if i.windows.is_empty() {
        ""
    } else {
        " at the jobs' own times (the affected windows replay the times the change re-prices)"
    }
}

/// `  (families/sdxl10.toml:14)`, or nothing.
fn at_location(c: &RuleSetChange) -> String {
    c.location().map(|l| format!("  ({l})")).unwrap_or_default()
}

fn keyed_table(g: &GroupImpact, rows: &[KeyedGroup]) -> Table {
    let mut headers: Vec<&'static str> = g.by.iter().map(|b| b.as_str()).collect();
    let dims = headers.len();
    headers.extend(["kind", "jobs", "changed", "before", "after", "Δ", "Δ%"]);
    let mut right = vec![false; dims + 1];
    right.extend([true; 6]);
    let rows = rows
        .iter()
        .map(|k| {
            let mut r = k.group.clone();
            r.push(k.kind.clone());
            r.extend(group_cells(&k.totals));
            r
        })
        .collect();
    Table {
        headers,
        right,
        rows,
    }
}

/// `By miner: 12 groups, 3 change` and the top gainers and losers, for a terminal or markdown.
fn groups_section(g: &GroupImpact, markdown: bool) -> String {
    let dims: Vec<&str> = g.by.iter().map(|b| b.as_str()).collect();
    let mut out = String::new();
    let head = format!(
        "By {} and point kind, each job at its own time: {}, {} change",
        dims.join(", "),
        plural(g.groups, "group", "groups"),
        g.changed
    );
    if markdown {
        let _ = writeln!(out, "**{head}**\n");
    } else {
        let _ = writeln!(out, "{head}");
    }
    for (title, rows) in [("Top gainers", &g.gainers), ("Top losers", &g.losers)] {
        let table = keyed_table(g, rows);
        match (rows.is_empty(), markdown) {
            (true, true) => {
                let _ = writeln!(out, "{title}: none\n");
            }
            (true, false) => {
                let _ = writeln!(out, "  {title}: none");
            }
            (false, true) => {
                let _ = writeln!(out, "{title}:\n");
                out.push_str(&table.markdown());
                out.push('\n');
            }
            (false, false) => {
                let _ = writeln!(out, "  {title}");
                out.push_str(&table.text("    "));
            }
        }
    }
    out
}

fn windows_table(windows: &[WindowImpact]) -> Table {
    let rows = windows
        .iter()
        .map(|w| {
            let (jobs, changed, effect) = if w.total.jobs == 0 {
                (
                    "0".into(),
                    "—".into(),
                    "⚠ no corpus job exercises it".into(),
                )
            } else {
                (
                    w.total.jobs.to_string(),
                    w.total.changed.to_string(),
                    window_effect(w),
                )
            };
            vec![
                w.window.clone(),
                if w.retroactive { "yes" } else { "no" }.into(),
                w.models.join(", "),
                jobs,
                changed,
                effect,
            ]
        })
        .collect();
    Table {
        headers: vec![
            "window",
            "retroactive",
            "models",
            "jobs",
            "changed",
            "impact",
        ],
        right: vec![false, false, false, true, true, false],
        rows,
    }
}

/// For a terminal.
pub fn render_human(r: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "jobpoints diff");
    let _ = writeln!(out, "  old: {}  ruleset {}", r.old.rules, r.old.ruleset);
    let _ = writeln!(out, "  new: {}  ruleset {}", r.new.rules, r.new.ruleset);
    let _ = writeln!(out, "\n{}\n", summary_line(r));
    for (name, side) in invalid_sides(r) {
        let _ = writeln!(
            out,
            "The {name} rules ({}) are invalid: {}, {}.",
            side.rules,
            plural(side.errors as u64, "error", "errors"),
            plural(side.warnings as u64, "warning", "warnings")
        );
        for l in side.rendered.lines() {
            let _ = writeln!(out, "  {l}");
        }
    }
    let retro: Vec<&RuleSetChange> = r
        .changes
        .iter()
        .filter(|c| c.retroactive.is_some())
        .collect();
    if !retro.is_empty() {
        let _ = writeln!(
            out,
            "Retroactive changes ({}): they alter jobs dated before the cut-off ({})",
            retro.len(),
            r.cutoff.text()
        );
        for c in &retro {
            let _ = writeln!(out, "  {}{}", c.summary(), at_location(c));
            let _ = writeln!(out, "      rewrites {}", rewritten(c));
        }
        out.push('\n');
    }
    if !r.files.is_empty() {
        let _ = writeln!(out, "Rule files");
        for (sign, f) in labelled_files(&r.files, ['+', '-', '~']) {
            let _ = writeln!(out, "  {sign} {f}");
        }
        out.push('\n');
    }
    if !r.changes.is_empty() {
        if !r.new.valid {
            let _ = writeln!(
                out,
                "As far as the new rules load (removals are not listed):"
            );
        }
        let _ = writeln!(
            out,
            "Rule changes ({}, {} flagged)",
            r.changes.len(),
            r.flagged
        );
        for c in &r.changes {
            let _ = writeln!(out, "  {}{}", c.summary(), at_location(c));
            if let Some(f) = &c.flag {
                let _ = writeln!(out, "      ! {f}");
            }
            if c.retroactive.is_some() {
                let _ = writeln!(out, "      ! retroactive: rewrites {}", rewritten(c));
            }
            if let Some(d) = &c.diff {
                for l in d.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        out.push('\n');
    }
    if let Some(i) = r.impact.as_ref().filter(|i| !i.windows.is_empty()) {
        let _ = writeln!(
            out,
            "Affected windows ({}): the corpus jobs that can reach each, priced at its start with both rule sets",
            i.windows.len()
        );
        for w in &i.windows {
            let mark = if w.total.jobs == 0 { "!" } else { " " };
            let retro = if w.retroactive { "  [retroactive]" } else { "" };
            let _ = writeln!(out, "{mark} {}{retro}", window_line(w));
        }
        out.push('\n');
    }
    if let Some(i) = &r.impact {
        let _ = writeln!(
            out,
            "Impact on {} ({})",
            plural(i.total.jobs, "job", "jobs"),
            versions_at(r)
        );
        let _ = writeln!(out, "  corpus: {}\n", corpus_text(i));
        out.push_str(&kinds_table(i).text("  "));
        out.push('\n');
        let changed = changed_models(i);
        if changed.is_empty() {
            let _ = writeln!(out, "No model's points or statuses change{}.", today(i));
        } else {
            let _ = writeln!(out, "Models that change (gains first, losses last)");
            out.push_str(&models_table(changed.iter().copied()).text("  "));
        }
        let unchanged = i.models.len() - changed.len();
        if unchanged > 0 {
            let _ = writeln!(
                out,
                "  ({} unchanged)",
                plural(unchanged as u64, "other model", "other models")
            );
        }
        if !i.not_exercised.is_empty() {
            let _ = writeln!(
                out,
                "Not exercised (re-priced, but no corpus job runs them): {}",
                i.not_exercised.join(", ")
            );
        }
        if !i.total.status_changes.is_empty() {
            let _ = writeln!(out, "\nStatus changes: {}", status_changes(&i.total));
        }
        if let Some(g) = &i.groups {
            out.push('\n');
            out.push_str(&groups_section(g, false));
        }
        if !i.movers.is_empty() {
            let _ = writeln!(out, "\nBiggest movers ({})", i.movers.len());
            out.push_str(&movers_table(&i.movers).text("  "));
        }
    }
    out
}

/// Job files to score, each with its name in the report.
pub type Corpus = Vec<(String, Ledger)>;

/// Diffs the rules and, when both sides are valid, scores the corpus with both.
pub fn build_report(old: &Loaded, new: &Loaded, corpus: Corpus, opts: ImpactOptions) -> DiffReport {
    let files = diff_files(&old.files, &new.files);
    // One cut-off for the changes and the windows alike.
    let cut = opts.cutoff.unwrap_or_else(jiff::Timestamp::now);
    let cutoff = Cutoff {
        time: utc_string(cut),
        given: opts.cutoff.is_some(),
    };
    let opts = ImpactOptions {
        cutoff: Some(cut),
        ..opts
    };
    let (changes, impact) = match (&old.ruleset, &new.ruleset) {
        (Some(o), Some(n)) => {
            let mut builder = ImpactBuilder::new(o, n, opts.clone());
            builder.add_corpus(corpus);
            (diff_rules_as_of(o, n, cut), Some(builder.finish()))
        }
        // Valid old rules and new ones with errors: the changes of whatever the new files
        // still built. Something that failed to build would read as removed, so removals
        // are left to the list of rule files.
        (Some(o), None) if new.partial.is_some() => {
            let n = new.partial.as_ref().expect("checked");
            let mut changes = diff_rules(o, n);
            changes.retain(|c| c.op != Op::Removed || c.entity == Entity::Formula);
            (changes, None)
        }
        // Otherwise, show what can be shown: which files and formulas changed.
        _ => (diff_formula_files(&old.files, &new.files), None),
    };
    let flagged = (changes.iter())
        .filter(|c| c.flag.is_some() || c.retroactive.is_some())
        .count();
    let retroactive = changes.iter().filter(|c| c.retroactive.is_some()).count();
    DiffReport {
        old: RuleSide::of(old),
        new: RuleSide::of(new),
        at: opts.at.map(utc_string),
        files,
        changes,
        flagged,
        retroactive,
        cutoff,
        impact,
        link_base: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(code_span("rule `x` v1"), "``rule `x` v1``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        // Nothing ends the span: line breaks are shown, not kept (#22).
        assert_eq!(code_span("a\n\nb\r\nc\rd"), "`a⏎⏎b⏎c⏎d`");
    }

    #[test]
    fn table_cells_are_text() {
        // A model name from a job file: no image, link, code span, HTML or new row (#22).
        let t = Table {
            headers: vec!["model"],
            right: vec![false],
            rows: vec![vec!["![p](https://e.example/p.png) `x` <b>|\r\n| y".into()]],
        };
        assert_eq!(
            t.markdown().lines().nth(2),
            Some("| !\\[p\\](https://e.example/p.png) \\`x\\` &lt;b&gt;\\|⏎\\| y |")
        );
    }

    #[test]
    fn link_paths_are_percent_encoded() {
        assert_eq!(url_path("families/sdxl10.toml"), "families/sdxl10.toml");
        assert_eq!(url_path("models/a b).toml"), "models/a%20b%29.toml");
        assert_eq!(url_path("models/é"), "models/%C3%A9");
    }
}
