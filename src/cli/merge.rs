//! `jobpoints merge`: partial tallies (from `tally --format json`) summed into exactly the
//! tally of all their jobs.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use crate::cli::formats::TallyFormat;
use crate::cli::{CliError, Exit, FailedExitArg, Stdout};
use jobpoints::ledger::tally::Tally;

/// Arguments of `jobpoints merge` (its help text is on `Command::Merge`).
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Partial tallies written by `jobpoints tally --format json` (or by `merge --format
    /// json`). `-` reads one from stdin.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TallyFormat,
    /// Merge partials made with different rule sets, keeping one row per rule set hash
    /// (without it, they are refused: their points are not comparable).
    #[arg(long)]
    pub allow_mixed_rules: bool,
    #[command(flatten)]
    pub failed: FailedExitArg,
}

pub fn run(args: MergeArgs) -> Result<Exit, CliError> {
    let mut merged: Option<(PathBuf, Tally)> = None;
    let mut partials = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in &args.parts {
        let mut text = String::new();
        let read = if path.as_os_str() == "-" {
            std::io::stdin().read_to_string(&mut text)
        } else {
            std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
        };
        read.map_err(|source| CliError::Open {
            path: path.clone(),
            source,
        })?;
        let tally = Tally::from_json(&text).map_err(|e| {
            CliError::Usage(format!(
                "`{}` is not a partial tally of `jobpoints tally --format json`: {e}",
                path.display()
            ))
        })?;
        // The same partial twice counts its jobs twice: refused, by content (a copy under
        // another name too). Partials without jobs (empty partitions) add nothing either way.
        let jobs = tally.total().counts.jobs;
        if jobs > 0 {
            let content = tally.render(jobpoints::ledger::tally::TallyFormat::Json);
            if let Some(first) = seen.insert(content, path.clone()) {
                return Err(CliError::Usage(format!(
                    "`{}` is the same partial as `{}` (every group, count and point equal): \
                     merging both would count its {jobs} jobs twice",
                    path.display(),
                    first.display()
                )));
            }
        }
        partials.push((path.clone(), tally));
    }
    let mixed = {
        let first = &partials[0].1.rulesets;
        partials.iter().any(|(_, t)| &t.rulesets != first)
    };
    if mixed && !args.allow_mixed_rules {
        let list: Vec<String> = partials
            .iter()
            .map(|(p, t)| {
                let hashes: Vec<&str> = t.rulesets.iter().map(|h| &h[..h.len().min(12)]).collect();
                format!("{} ({})", p.display(), hashes.join(", "))
            })
            .collect();
        return Err(CliError::Usage(format!(
            "the partials were made with different rule sets, so their points are not \
             comparable: {}; pass --allow-mixed-rules to keep one row per rule set",
            list.join("; ")
        )));
    }
    for (path, mut tally) in partials {
        if mixed {
            tally.split_by_ruleset();
        }
        let Some((first_path, acc)) = merged.as_mut() else {
            merged = Some((path, tally));
            continue;
        };
        let differ = |what: &str, a: String, b: String| {
            CliError::Usage(format!(
                "`{}` and `{}` differ in {what} ({a} vs {b}); only partials made the same way \
                 add up",
                first_path.display(),
                path.display()
            ))
        };
        if acc.by != tally.by {
            let show = |t: &Tally| {
                t.by.iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            return Err(differ("grouping (--by)", show(acc), show(&tally)));
        }
        if acc.at != tally.at {
            let show = |t: &Tally| t.at.clone().unwrap_or_else(|| "no --at".into());
            return Err(differ("--at", show(acc), show(&tally)));
        }
        acc.absorb(tally);
    }
    let (_, tally) = merged.expect("at least one part");
    let mut out = Stdout::new();
    tally
        .write(args.format.into(), &mut out)
        .map_err(CliError::Output)?;
    out.flush_checked()?;
    Ok(args.failed.exit(tally.total().counts.failed()))
}
