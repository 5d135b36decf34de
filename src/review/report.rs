//! The report of `jobpoints diff`: rule changes plus their impact on a corpus, rendered for
//! a terminal, as a pull-request comment (markdown), or as stable JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::engine::time::utc_string;
use crate::ledger::output::terminal_safe;
use crate::ledger::reader::{Ledger, RawItem};
use crate::review::changes::{diff_files, diff_formula_files, diff_rules};
use crate::review::impact::{ImpactBuilder, ImpactOptions};

use crate::engine::points::PointsSum;
use crate::review::changes::{FileChanges, RuleSetChange};
use crate::review::impact::{Group, Impact, ModelGroup, Mover};
use crate::rules::diagnostic::{Diagnostic, render_human as render_diagnostics};
use crate::rules::load::Loaded;

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
    /// Rule-level changes (only formula text when a side is invalid).
    pub changes: Vec<RuleSetChange>,
    /// How many changes carry a flag.
    pub flagged: usize,
    /// The corpus scored with both rule sets; `null` when a side is invalid.
    pub impact: Option<Impact>,
}

impl DiffReport {
    /// Whether any job's points or status differ.
    pub fn jobs_changed(&self) -> bool {
        self.impact.as_ref().is_some_and(|i| i.total.changed > 0)
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
    let n = r.changes.len() as u64;
    let invalid = !r.old.valid || !r.new.valid;
    let files = (r.files.added.len() + r.files.removed.len() + r.files.modified.len()) as u64;
    parts.push(if invalid {
        plural(files, "rule file changed", "rule files changed")
    } else if n == 0 {
        "no rule changes".to_string()
    } else if r.flagged > 0 {
        format!(
            "{} ({} flagged)",
            plural(n, "rule change", "rule changes"),
            r.flagged
        )
    } else {
        plural(n, "rule change", "rule changes")
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
    }
    parts.join("; ")
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
        // Cells come from rule files and job files (untrusted): no table breaks, no HTML.
        let esc = |s: &str| {
            s.replace('|', "\\|")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\n', " ")
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
            "#", "job", "model", "inputs", "points", "Δ", "status", "rule", "note",
        ],
        right: vec![true, false, false, false, true, true, false, false, false],
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
    if !r.files.is_empty() {
        let _ = writeln!(out, "Rule files");
        for (sign, f) in labelled_files(&r.files, ['+', '-', '~']) {
            let _ = writeln!(out, "  {sign} {f}");
        }
        out.push('\n');
    }
    if !r.changes.is_empty() {
        let _ = writeln!(
            out,
            "Rule changes ({}, {} flagged)",
            r.changes.len(),
            r.flagged
        );
        for c in &r.changes {
            let _ = writeln!(out, "  {}", c.summary());
            if let Some(f) = &c.flag {
                let _ = writeln!(out, "      ! {f}");
            }
            if let Some(d) = &c.diff {
                for l in d.lines() {
                    let _ = writeln!(out, "      {l}");
                }
            }
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
            let _ = writeln!(out, "No model's points or statuses change.");
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
        if !i.total.status_changes.is_empty() {
            let _ = writeln!(out, "\nStatus changes: {}", status_changes(&i.total));
        }
        if !i.movers.is_empty() {
            let _ = writeln!(out, "\nBiggest movers ({})", i.movers.len());
            out.push_str(&movers_table(&i.movers).text("  "));
        }
    }
    out
}

/// For a pull-request comment: a summary line, the tables that matter, the rest folded.
pub fn render_markdown(r: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKDOWN_MARKER}");
    let _ = writeln!(out, "### Rules diff: {}\n", summary_line(r));
    let _ = writeln!(out, "`{}` → `{}`\n", r.old.rules, r.new.rules);
    for (name, side) in invalid_sides(r) {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **The {name} rules are invalid** ({}): no job was scored. `jobpoints check` says:\n",
            plural(side.errors as u64, "error", "errors")
        );
        let fence = fence_for(&side.rendered);
        let _ = writeln!(out, "{fence}text\n{}{fence}\n", side.rendered);
    }
    let flagged: Vec<&RuleSetChange> = r.changes.iter().filter(|c| c.flag.is_some()).collect();
    if !flagged.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {} history or {} an invariant instead of adding a new version:",
            plural(flagged.len() as u64, "change rewrites", "changes rewrite"),
            if flagged.len() == 1 { "moves" } else { "move" }
        );
        for c in &flagged {
            let _ = writeln!(
                out,
                "> - {} — {}",
                code_span(&c.summary()),
                c.flag.as_deref().unwrap_or_default()
            );
        }
        out.push('\n');
    }
    if let Some(i) = &r.impact {
        let _ = writeln!(
            out,
            "**Impact on {}** ({}):\n",
            plural(i.total.jobs, "job", "jobs"),
            versions_at(r)
        );
        out.push_str(&kinds_table(i).markdown());
        out.push('\n');
        let changed = changed_models(i);
        if changed.is_empty() {
            let _ = writeln!(out, "No model's points or statuses change.\n");
        } else {
            let _ = writeln!(out, "**Models that change** (gains first, losses last):\n");
            out.push_str(&models_table(changed.iter().copied()).markdown());
            out.push('\n');
        }
    }
    if !r.changes.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Rule changes ({})</summary>\n",
            r.changes.len()
        );
        for c in &r.changes {
            let mark = if c.flag.is_some() { " ⚠" } else { "" };
            let file = c
                .file
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            let _ = writeln!(out, "- {}{mark}{file}", code_span(&c.summary()));
            if let Some(d) = &c.diff {
                let fence = fence_for(d);
                let _ = writeln!(out, "\n  {fence}diff");
                for l in d.lines() {
                    let _ = writeln!(out, "  {l}");
                }
                let _ = writeln!(out, "  {fence}\n");
            }
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    if let Some(i) = &r.impact {
        if !i.movers.is_empty() {
            let _ = writeln!(
                out,
                "<details><summary>Biggest movers ({})</summary>\n",
                i.movers.len()
            );
            out.push_str(&movers_table(&i.movers).markdown());
            let _ = writeln!(out, "\n</details>\n");
        }
        let _ = writeln!(
            out,
            "<details><summary>All {} (corpus: {})</summary>\n",
            plural(i.models.len() as u64, "model", "models"),
            corpus_text(i)
        );
        out.push_str(&models_table(i.models.iter()).markdown());
        let _ = writeln!(out, "\n</details>\n");
    }
    if !r.files.is_empty() {
        let _ = writeln!(out, "<details><summary>Rule files</summary>\n");
        for (change, f) in labelled_files(&r.files, ["added", "removed", "modified"]) {
            let _ = writeln!(out, "- {change} `{f}`");
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    let _ = writeln!(
        out,
        "<sub>old ruleset `{}` · new ruleset `{}` · generated by `jobpoints diff`</sub>",
        r.old.ruleset, r.new.ruleset
    );
    out
}

/// A code fence longer than any run of backticks in `text` (rule files are untrusted: a
/// fence inside them must not end the block early).
fn fence_for(text: &str) -> String {
    "`".repeat(longest_backtick_run(text).max(2) + 1)
}

/// Wraps text in a markdown code span that survives backticks inside it.
fn code_span(s: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// The length of the longest run of backticks in `s` (0 when it has none).
fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Job files to score, each with its name in the report.
pub type Corpus = Vec<(String, Ledger)>;

/// Diffs the rules and, when both sides are valid, scores the corpus with both.
pub fn build_report(old: &Loaded, new: &Loaded, corpus: Corpus, opts: ImpactOptions) -> DiffReport {
    let files = diff_files(&old.files, &new.files);
    let (changes, impact) = match (&old.ruleset, &new.ruleset) {
        (Some(o), Some(n)) => {
            let mut builder = ImpactBuilder::new(o, n, opts);
            for (name, mut reader) in corpus {
                builder.start_file(&name);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.next_raw(&mut buf) {
                        Some(RawItem::Line(line)) => builder.add_line(line, &buf),
                        Some(RawItem::Record(record)) => builder.add_record(&record),
                        None => break,
                    }
                }
                if let Some(e) = reader.take_io_error() {
                    builder.file_error(e.to_string());
                }
            }
            (diff_rules(o, n), Some(builder.finish()))
        }
        // Without both rule sets, show what can be shown: which files and formulas changed.
        _ => (diff_formula_files(&old.files, &new.files), None),
    };
    let flagged = changes.iter().filter(|c| c.flag.is_some()).count();
    DiffReport {
        old: RuleSide::of(old),
        new: RuleSide::of(new),
        at: opts.at.map(utc_string),
        files,
        changes,
        flagged,
        impact,
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
    }
}
