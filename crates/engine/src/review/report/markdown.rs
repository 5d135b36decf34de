//! The report as markdown, for a pull-request comment: a summary line, the tables that
//! matter, the rest folded.

use std::borrow::Cow;

use super::*;

/// For a pull-request comment: a summary line, the tables that matter, the rest folded.
pub fn render_markdown(r: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKDOWN_MARKER}");
    let _ = writeln!(out, "### Rules diff: {}\n", summary_line(r));
    let _ = writeln!(
        out,
        "{} → {}\n",
        code_span(&r.old.rules),
        code_span(&r.new.rules)
    );
    for (name, side) in invalid_sides(r) {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **The {name} rules are invalid** ({}): no job was scored. `jobpoints check` says:\n",
            plural(side.errors as u64, "error", "errors")
        );
        let fence = fence_for(&side.rendered);
        let _ = writeln!(out, "{fence}text\n{}{fence}\n", side.rendered);
    }
    let retro: Vec<&RuleSetChange> = r
        .changes
        .iter()
        .filter(|c| c.retroactive.is_some())
        .collect();
    if !retro.is_empty() {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **{} retroactive**: {} jobs dated before the cut-off ({}):",
            plural(retro.len() as u64, "change is", "changes are"),
            if retro.len() == 1 {
                "it alters"
            } else {
                "they alter"
            },
            r.cutoff.text()
        );
        for c in &retro {
            let place = c
                .location()
                .map(|l| format!(" ({})", linked(r, c, &l)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "> - {} rewrites {}{place}",
                code_span(&c.summary()),
                rewritten(c),
            );
        }
        out.push('\n');
    }
    if let Some(i) = r.impact.as_ref().filter(|i| !i.windows.is_empty()) {
        let _ = writeln!(
            out,
            "**Affected windows** (the corpus jobs that can reach each, priced at its start with both rule sets):\n"
        );
        out.push_str(&windows_table(&i.windows).markdown());
        out.push('\n');
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
            let _ = writeln!(out, "No model's points or statuses change{}.\n", today(i));
        } else {
            let _ = writeln!(out, "**Models that change** (gains first, losses last):\n");
            out.push_str(&models_table(changed.iter().copied()).markdown());
            out.push('\n');
        }
        if let Some(g) = &i.groups {
            out.push_str(&groups_section(g, true));
        }
        if !i.not_exercised.is_empty() {
            let names: Vec<String> = i.not_exercised.iter().map(|m| code_span(m)).collect();
            let _ = writeln!(
                out,
                "**Not exercised** (re-priced, but no corpus job runs them): {}\n",
                names.join(", ")
            );
        }
    }
    if !r.changes.is_empty() {
        let partial = if r.new.valid {
            ""
        } else {
            ", as far as the new rules load"
        };
        let _ = writeln!(
            out,
            "<details><summary>Rule changes ({}{partial})</summary>\n",
            r.changes.len(),
        );
        for c in &r.changes {
            let mark = if c.flag.is_some() || c.retroactive.is_some() {
                " ⚠"
            } else {
                ""
            };
            let file = c
                .location()
                .map(|l| format!(" ({})", linked(r, c, &l)))
                .unwrap_or_default();
            let _ = writeln!(out, "- {}{mark}{file}", code_span(&c.summary()));
            if let Some(d) = &c.diff {
                let fence = fence_for(d);
                let _ = writeln!(out, "\n  {fence}diff");
                for l in d.lines() {
                    // A lone `\r` would end the line, and the list item with the fence.
                    let _ = writeln!(out, "  {}", one_line(l));
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
            html_text(&corpus_text(i))
        );
        out.push_str(&models_table(i.models.iter()).markdown());
        let _ = writeln!(out, "\n</details>\n");
    }
    if !r.files.is_empty() {
        let _ = writeln!(out, "<details><summary>Rule files</summary>\n");
        for (change, f) in labelled_files(&r.files, ["added", "removed", "modified"]) {
            let _ = writeln!(out, "- {change} {}", code_span(f));
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
pub(super) fn fence_for(text: &str) -> String {
    "`".repeat(longest_backtick_run(text).max(2) + 1)
}

/// Untrusted text (rule files, job files, paths) as one markdown code span, on one line: the
/// one escaping of such text in the markdown report, which the PR comment posts and the
/// playground renders. Inside a code span markdown and HTML are literal, backticks are
/// outrun by the fence, and a line break is shown as `⏎` (a blank line would end the span
/// and its paragraph, letting a `</details>`, a heading or an image through: #22).
pub(super) fn code_span(s: &str) -> String {
    let s = one_line(s);
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// `s` with every markdown line ending (`\r\n`, `\n`, `\r`) shown as `⏎`, so it cannot end
/// the line, list item, table row or HTML block it is written in.
pub(super) fn one_line(s: &str) -> Cow<'_, str> {
    if !s.contains(['\n', '\r']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("\r\n", "⏎").replace(['\n', '\r'], "⏎"))
}

/// Untrusted text inside an HTML block line (`<summary>…</summary>`), where markdown is not
/// parsed: escaped as HTML text, on one line.
pub(super) fn html_text(s: &str) -> String {
    one_line(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The length of the longest run of backticks in `s` (0 when it has none).
pub(super) fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
