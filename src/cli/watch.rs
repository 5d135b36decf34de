//! `jobpoints watch`: the rule author's loop. On every save, check the rules and show how
//! the points of some jobs moved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::cli::{CliError, Exit, RulesArg, Stdout, parse_at};
use jobpoints::engine::model::RuleSet;
use jobpoints::engine::score::{JobInput, Score, ScoreOptions, Scorer, Status};
use jobpoints::ledger::formats::open_jobs;
use jobpoints::ledger::safe::terminal_safe;
use jobpoints::live::handle::{ReloadFailure, ReloadOutcome, RulesHandle};
use jobpoints::live::watcher::RulesWatcher;
use jobpoints::review::changes::{FileChanges, RuleSetChange, diff_files, diff_rules_as_of};
use jobpoints::rules::diagnostic::{Diagnostic, render_human};

/// Options of `jobpoints watch`; its help text is on [`crate::cli::Command::Watch`].
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    #[command(flatten)]
    pub trust: crate::cli::sign::TrustedKeysArg,
    /// Jobs to re-score on every save (one JSON job, a JSON array, or JSONL); read again each
    /// time, so it can be edited too.
    #[arg(long, value_name = "FILE")]
    pub jobs: Option<PathBuf>,
    /// Pick rule versions as of this time instead of each job's `completed_at`.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
}

pub fn run(args: WatchArgs) -> Result<Exit, CliError> {
    let dir = match &args.rules.rules {
        Some(d) => d.clone(),
        None if Path::new("rules").is_dir() => PathBuf::from("rules"),
        None => {
            return Err(CliError::Usage(
                "no rules directory to watch: pass --rules DIR (the built-in rules cannot change)"
                    .into(),
            ));
        }
    };
    let opts = ScoreOptions {
        at: args.at,
        explain: false,
    };
    // Remembers a failed write, so the loop stops at the next flush (exit 0 for `| head`).
    let mut out = Stdout::new();
    let (tx, rx) = mpsc::channel::<()>();
    // Start watching before the first load, so a save during it is not missed.
    let _watcher = RulesWatcher::spawn(&dir, move || {
        let _ = tx.send(());
    })?;
    // The handle `serve` reloads through: the same validation, last good set and detection
    // of unchanged or still-rejected files. It starts empty, so broken rules at start are
    // reported like any broken save.
    let trusted = args.trust.load(Some(&dir))?;
    let handle = RulesHandle::empty(dir.clone()).with_trusted_keys(trusted);
    let report = Report {
        dir: &dir,
        jobs: args.jobs.as_deref(),
        opts,
    };
    // The warnings of the active set, shown again when a broken save is reverted.
    let mut active_warnings: Vec<Diagnostic> = Vec::new();
    let mut first = true;
    loop {
        let shown = match handle.reload() {
            // Same bytes (a temporary file came and went, or a save without changes): the
            // last report still stands.
            ReloadOutcome::Unchanged {
                recovered: false, ..
            }
            | ReloadOutcome::StillRejected { .. } => false,
            ReloadOutcome::Unchanged {
                recovered: true, ..
            } => {
                // `Unchanged` means there is an active set that the files match again.
                let active = handle.active();
                if let Some(active) = &active {
                    let _ = writeln!(out, "{}", header(first));
                    print_check(&mut out, active, &active_warnings);
                    let _ = writeln!(out, "back to the last valid rules");
                    report.jobs(&mut out, Some(active), active);
                    report.watching(&mut out);
                }
                active.is_some()
            }
            ReloadOutcome::Swapped {
                old,
                new,
                changes,
                files,
                diagnostics,
                ..
            } => {
                let _ = writeln!(out, "{}", header(first));
                print_check(&mut out, &new, &diagnostics);
                if old.is_some() {
                    print_changes(&mut out, &changes, &files);
                }
                report.jobs(&mut out, old.as_deref(), &new);
                report.watching(&mut out);
                active_warnings = diagnostics;
                true
            }
            ReloadOutcome::Rejected(f) => {
                let _ = writeln!(out, "{}", header(first));
                print_rejected(&mut out, &f);
                // Only examples fail: what the edit would do, while the author fixes them.
                if let (Some(preview), Some(active)) = (&f.preview, handle.active()) {
                    let _ = writeln!(
                        out,
                        "preview (not valid yet: the failing examples above must be fixed first):"
                    );
                    let changes = diff_rules_as_of(&active, preview, jiff::Timestamp::now());
                    print_changes(
                        &mut out,
                        &changes,
                        &diff_files(&active.files, &preview.files),
                    );
                    report.jobs_marked(&mut out, Some(&active), preview, " (not valid yet)");
                }
                if f.rejected_hash.is_some() {
                    report.watching(&mut out);
                }
                true
            }
        };
        if shown {
            out.flush_checked()?;
            first = false;
        }
        if rx.recv().is_err() {
            return Ok(Exit::Ok);
        }
        // Coalesce saves that arrived while this one was being reported.
        while rx.try_recv().is_ok() {}
    }
}

fn header(first: bool) -> String {
    let time = jiff::Timestamp::now().strftime("%H:%M:%S UTC");
    if first {
        format!("── {time} rules loaded")
    } else {
        format!("── {time} rules saved")
    }
}

/// The diagnostics as `check` prints them, then one verdict line.
fn check_lines(out: &mut impl Write, rendered: &str, diagnostics: &[Diagnostic], hash: &str) {
    let _ = write!(out, "{rendered}");
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(
        out,
        "check: {errors} error{}, {warnings} warning{}{} (ruleset {hash})",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
        if errors == 0 { ": ok" } else { "" },
    );
}

fn print_check(out: &mut impl Write, rules: &RuleSet, warnings: &[Diagnostic]) {
    let files = &rules.files;
    let rendered = render_human(warnings, &|f| files.text(f).map(String::from));
    check_lines(out, &rendered, warnings, &rules.hash);
}

fn print_rejected(out: &mut impl Write, f: &ReloadFailure) {
    let Some(hash) = &f.rejected_hash else {
        // The directory could not be read: there are no diagnostics, only why.
        let _ = writeln!(out, "error: {}", f.message);
        return;
    };
    check_lines(out, &f.rendered, &f.diagnostics, hash);
    if let Some(active) = &f.active_hash {
        let _ = writeln!(
            out,
            "not applied: the last valid rules ({active}) stay in effect"
        );
    }
}

/// The changes as `jobpoints diff` shows them: a summary line, its flag, a formula's diff.
fn print_changes(out: &mut impl Write, changes: &[RuleSetChange], files: &FileChanges) {
    if changes.is_empty() {
        if files.is_empty() {
            let _ = writeln!(out, "no rule changes");
        } else {
            let _ = writeln!(out, "no rule changes; files changed: {}", files.summary());
        }
    }
    for c in changes {
        let _ = writeln!(out, "change: {}", c.summary());
        if let Some(flag) = &c.flag {
            let _ = writeln!(out, "        ! {flag}");
        }
        if let Some(span) = &c.retroactive {
            let _ = writeln!(out, "        ! retroactive: rewrites {}", span.text());
        }
        for l in c.diff.iter().flat_map(|d| d.lines()) {
            let _ = writeln!(out, "        {l}");
        }
    }
}

/// What every report ends with: the jobs re-scored, and what is being watched.
struct Report<'a> {
    dir: &'a Path,
    jobs: Option<&'a Path>,
    opts: ScoreOptions,
}

impl Report<'_> {
    fn watching(&self, out: &mut impl Write) {
        let _ = writeln!(
            out,
            "watching {} for changes (Ctrl-C to stop)",
            self.dir.display()
        );
    }

    /// Each job's points under `after`, and how they moved from `before`.
    fn jobs(&self, out: &mut impl Write, before: Option<&RuleSet>, after: &RuleSet) {
        self.jobs_marked(out, before, after, "");
    }

    /// [`Self::jobs`], with `mark` after the heading (`(not valid yet)` for a preview).
    fn jobs_marked(
        &self,
        out: &mut impl Write,
        before: Option<&RuleSet>,
        after: &RuleSet,
        mark: &str,
    ) {
        let Some(path) = self.jobs else { return };
        let reader = match open_jobs(path) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "error: cannot read `{}`: {e}", path.display());
                return;
            }
        };
        let records: Vec<_> = reader.collect();
        let scorer = |rules| Scorer {
            opts: self.opts,
            ..Scorer::new(rules)
        };
        let after_scorer = scorer(after);
        let before_scorer = before.map(scorer);
        let mut after_ctx = after_scorer.context();
        let mut before_ctx = before_scorer.as_ref().map(Scorer::context);
        let _ = writeln!(out, "jobs in {}{mark}:", path.display());
        let mut moved = 0usize;
        for record in records {
            let new = after_scorer.score_owned(&mut after_ctx, JobInput::Record(&record));
            let old = before_scorer
                .as_ref()
                .zip(before_ctx.as_mut())
                .map(|(s, ctx)| s.score_owned(ctx, JobInput::Record(&record)));
            let line = job_line(old.as_ref(), &new);
            if old.as_ref().is_some_and(|o| differs(o, &new)) {
                moved += 1;
            }
            let _ = writeln!(out, "  {line}");
        }
        if before.is_some() {
            let _ = writeln!(out, "{moved} job(s) changed");
        }
    }
}

fn differs(a: &Score, b: &Score) -> bool {
    a.points() != b.points() || a.status() != b.status() || a.rule() != b.rule()
}

fn outcome(s: &Score) -> String {
    match s.status() {
        Status::Ok => format!("{} {}", s.points(), s.rule().unwrap_or("-")),
        other => format!("{other} {}", s.rule().unwrap_or("-")),
    }
}

fn job_line(old: Option<&Score>, new: &Score) -> String {
    let who = format!(
        "line {} {} {}",
        new.line(),
        terminal_safe(new.id().unwrap_or("-")),
        terminal_safe(new.model().unwrap_or("-"))
    );
    match old {
        None => format!("{who}: {}", outcome(new)),
        Some(o) if !differs(o, new) => format!("{who}: {} (unchanged)", outcome(new)),
        Some(o) => {
            let delta = new.points().micros() - o.points().micros();
            let sign = if delta < 0 { "-" } else { "+" };
            let abs = delta.unsigned_abs();
            format!(
                "{who}: {} → {} ({sign}{}.{:06})",
                outcome(o),
                outcome(new),
                abs / 1_000_000,
                abs % 1_000_000
            )
        }
    }
}
