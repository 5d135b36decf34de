//! `jobpoints watch`: the rule author's loop. On every save, check the rules and show how
//! the points of some jobs moved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use crate::cli::{CliError, Exit, RulesArg, Stdout, parse_at};
use crate::engine::model::RuleSet;
use crate::engine::score::{Score, ScoreOptions, Scorer, Status};
use crate::ledger::reader::open_jobs;
use crate::live::handle::changes;
use crate::live::watcher::RulesWatcher;
use crate::rules::diagnostic::render_human;
use crate::rules::files::RuleFiles;
use crate::rules::load::{Loaded, load};

/// Options of `jobpoints watch`; its help text is on [`crate::cli::Command::Watch`].
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub rules: RulesArg,
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
    let mut last_good: Option<Arc<RuleSet>> = None;
    let mut last_hash = String::new();
    let mut first = true;
    loop {
        let loaded = match RuleFiles::from_dir(&dir) {
            Ok(files) => load(files),
            Err(e) => {
                let _ = writeln!(out, "{}", header(first));
                let _ = writeln!(out, "error: {e}");
                out.flush_checked()?;
                first = false;
                if rx.recv().is_err() {
                    return Ok(Exit::Ok);
                }
                continue;
            }
        };
        let hash = loaded.files.hash();
        if !first && hash == last_hash {
            // Same bytes (a temporary file came and went, or a save without changes): the
            // last report still stands.
            if rx.recv().is_err() {
                return Ok(Exit::Ok);
            }
            continue;
        }
        let _ = writeln!(out, "{}", header(first));
        print_check(&mut out, &loaded, &hash);
        report(
            &mut out,
            &loaded,
            last_good.as_deref(),
            args.jobs.as_deref(),
            opts,
        );
        if let Some(rs) = loaded.ruleset {
            last_good = Some(Arc::new(rs));
        } else if let Some(good) = &last_good {
            let _ = writeln!(
                out,
                "not applied: the last valid rules ({}) stay in effect",
                good.hash
            );
        }
        let _ = writeln!(
            out,
            "watching {} for changes (Ctrl-C to stop)",
            dir.display()
        );
        out.flush_checked()?;
        last_hash = hash;
        first = false;
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

fn print_check(out: &mut impl Write, loaded: &Loaded, hash: &str) {
    let files = &loaded.files;
    let _ = write!(
        out,
        "{}",
        render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from))
    );
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let _ = writeln!(
        out,
        "check: {errors} error{}, {warnings} warning{}{} (ruleset {hash})",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" },
        if errors == 0 { ": ok" } else { "" },
    );
}

fn report(
    out: &mut impl Write,
    loaded: &Loaded,
    before: Option<&RuleSet>,
    jobs: Option<&Path>,
    opts: ScoreOptions,
) {
    let Some(after) = loaded.ruleset.as_ref() else {
        return;
    };
    if let Some(before) = before {
        let changed = changes(before, after);
        if before.hash == after.hash {
            let _ = writeln!(out, "back to the last valid rules");
        } else if changed.is_empty() {
            let _ = writeln!(out, "no rule version or catalog change");
        }
        for c in changed {
            let _ = writeln!(out, "change: {c}");
        }
    }
    let Some(path) = jobs else { return };
    let reader = match open_jobs(path) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "error: cannot read `{}`: {e}", path.display());
            return;
        }
    };
    let records: Vec<_> = reader.collect();
    let scorer = |rules| Scorer {
        opts,
        ..Scorer::new(rules)
    };
    let after_scorer = scorer(after);
    let before_scorer = before.map(scorer);
    let mut after_ctx = after_scorer.context();
    let mut before_ctx = before_scorer.as_ref().map(Scorer::context);
    let _ = writeln!(out, "jobs in {}:", path.display());
    let mut moved = 0usize;
    for record in records {
        let new = after_scorer.score_owned(&mut after_ctx, &record);
        let old = before_scorer
            .as_ref()
            .zip(before_ctx.as_mut())
            .map(|(s, ctx)| s.score_owned(ctx, &record));
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

fn differs(a: &Score, b: &Score) -> bool {
    a.points != b.points || a.status != b.status || a.rule != b.rule
}

fn outcome(s: &Score) -> String {
    match s.status {
        Status::Ok => format!("{} {}", s.points, s.rule.as_deref().unwrap_or("-")),
        other => format!("{other} {}", s.rule.as_deref().unwrap_or("-")),
    }
}

fn job_line(old: Option<&Score>, new: &Score) -> String {
    let who = format!(
        "line {} {} {}",
        new.line,
        new.id.as_deref().unwrap_or("-"),
        new.model.as_deref().unwrap_or("-")
    );
    match old {
        None => format!("{who}: {}", outcome(new)),
        Some(o) if !differs(o, new) => format!("{who}: {} (unchanged)", outcome(new)),
        Some(o) => {
            let delta = new.points.micros() - o.points.micros();
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
