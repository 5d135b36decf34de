//! `jobpoints diff`: what a rule change does, in the rules and to real jobs.

use std::path::{Path, PathBuf};

use crate::cli::formats::GroupBy;
use crate::cli::formats::InputFormat;
use crate::cli::output::note;
use crate::cli::{CliError, Exit, Stdout, ThreadsArg, parse_at};
use jobpoints::ledger::formats::open_ledger;
use jobpoints::ledger::reader::Ledger;
use jobpoints::review::impact::ImpactOptions;
use jobpoints::review::report::{Corpus, build_report, render_human, render_markdown};
use jobpoints::rules::files::RuleFiles;
use jobpoints::rules::git::rule_files_at;
use jobpoints::rules::load::load;

/// Where the corpus of `rules/` lives in the repository, and where rules are read in a revision.
const CORPUS_DIR: &str = "corpus";
const RULES_DIR: &str = "rules";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// For a terminal.
    Human,
    /// A pull-request comment: summary line, per-model table, collapsible details.
    Markdown,
    /// Stable JSON for machines.
    Json,
}

const DIFF_AFTER_HELP: &str = "\
Examples:
  jobpoints diff old-rules/ rules/
  jobpoints diff --base origin/main                 # rules/ at origin/main vs the working tree
  jobpoints diff --base v1 --head v2 --format markdown
  jobpoints diff --base main --jobs ledger.jsonl --top 20
  jobpoints diff --base origin/main --effective-after 2027-01-01 --fail-on-retroactive

Exit codes:
  0  the report was written (with --fail-on-change: and no job's points or status changed)
  1  a job file could not be read to its end (the report covers the jobs read before)
  2  usage error, an unreadable job file or rules directory, or a git revision that cannot be read
  3  the new rules are invalid (the report, with their diagnostics, is still written)
  4  with --fail-on-change: some job's points or status changed (as priced today or in an
     affected window)
  7  with --fail-on-retroactive: some change alters jobs dated before the cut-off (now, or
     --effective-after)";

/// Arguments of `jobpoints diff` (its help text is on `Command::Diff`).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = DIFF_AFTER_HELP)]
pub struct DiffArgs {
    /// The old rules directory.
    #[arg(value_name = "OLD", conflicts_with = "base", requires = "new")]
    pub old: Option<PathBuf>,
    /// The new rules directory.
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    /// Read the old rules from `rules/` at this git revision (branch, tag, commit).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Read the new rules from `rules/` at this git revision. Default with --base: the
    /// working tree's `rules/`.
    #[arg(long, value_name = "REV", requires = "base")]
    pub head: Option<String>,
    /// Job files to score instead of the default corpus (JSON in any shape, CSV, Parquet; `-` is
    /// stdin).
    #[arg(long = "jobs", value_name = "FILE", num_args = 1..)]
    pub jobs: Vec<PathBuf>,
    /// How to read the `--jobs` files: by extension (`.parquet`, `.pq`, `.csv`; anything else
    /// is JSON), or as given for every file.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "auto")]
    pub input_format: InputFormat,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: DiffFormat,
    /// How many of the biggest movers to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    #[command(flatten)]
    pub threads: ThreadsArg,
    /// Pick rule versions as of this time (`2024-05-01` or RFC 3339) instead of each job's
    /// `completed_at` (undated jobs use the latest version).
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Exit with code 4 when any job's points or status change (for CI gates).
    #[arg(long)]
    pub fail_on_change: bool,
    /// The planned release time: a change that alters jobs dated before it is flagged
    /// `retroactive` (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub effective_after: Option<jiff::Timestamp>,
    /// Exit with code 7 when any change is retroactive (for CI gates), unless each window it
    /// rewrites is acknowledged with --acknowledge-retroactive.
    #[arg(long)]
    pub fail_on_retroactive: bool,
    /// With --fail-on-retroactive: a rule version whose retroactive windows are rewritten on
    /// purpose (`sdxl10@1`; repeat or comma-separate), or `all`. A window is acknowledged when
    /// the version in force in it on either side is listed; every other retroactive window is
    /// named on stderr and still fails.
    #[arg(
        long,
        value_name = "RULE@VERSION",
        value_delimiter = ',',
        requires = "fail_on_retroactive"
    )]
    pub acknowledge_retroactive: Vec<String>,
    /// Also sum points before → after per group of these dimensions (repeat or
    /// comma-separate, as `tally --by`), at the jobs' own times, and list the top gainers and
    /// losers.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "DIM")]
    pub by: Vec<GroupBy>,
    /// In markdown, link each change to its line under this URL of the new rules directory
    /// (`https://github.com/OWNER/REPO/blob/SHA/rules`).
    #[arg(long, value_name = "URL")]
    pub link_base: Option<String>,
}

pub fn run(args: DiffArgs) -> Result<Exit, CliError> {
    let (old_files, new_files) = rule_sides(&args)?;
    // Open every input before scoring, so a typo in a path fails fast and produces nothing.
    let corpus = open_corpus(&args.jobs, args.input_format)?;
    let mut by = crate::cli::formats::group_by(&args.by);
    by.dedup();
    let old = load(old_files);
    let new = load(new_files);
    let mut report = build_report(
        &old,
        &new,
        corpus,
        ImpactOptions {
            at: args.at,
            top: args.top,
            cutoff: args.effective_after,
            by: by.clone(),
            threads: args.threads.get(),
        },
    );
    report.link_base = args.link_base.clone();
    let text = match args.format {
        DiffFormat::Human => render_human(&report),
        DiffFormat::Markdown => render_markdown(&report),
        DiffFormat::Json => {
            /// The report, after the contract's version and the engine that made it.
            #[derive(serde::Serialize)]
            struct Doc<'r> {
                schema_version: u32,
                engine: &'static str,
                #[serde(flatten)]
                report: &'r jobpoints::review::report::DiffReport,
            }
            let doc = Doc {
                schema_version: jobpoints::engine::identity::SCHEMA_VERSION,
                engine: jobpoints::engine::identity::ENGINE,
                report: &report,
            };
            let mut s = serde_json::to_string_pretty(&doc).expect("report serializes");
            s.push('\n');
            s
        }
    };
    Stdout::new().write_text(&text)?;
    // A job file that could not be read to its end is in the report; say it where scripts look too.
    let mut unreadable = false;
    for f in report.impact.iter().flat_map(|i| &i.files) {
        if f.jobs == 0 && f.error.is_none() && !args.jobs.is_empty() {
            if f.file == "-" {
                note!("note: no jobs in standard input");
            } else {
                note!("note: no jobs in `{}`", f.file);
            }
        }
        if let Some(e) = &f.error {
            note!(
                "error: reading `{}` stopped after {} jobs: {e}",
                f.file,
                f.jobs
            );
            unreadable = true;
        }
    }
    Ok(if !report.new.valid {
        Exit::RulesInvalid
    } else if unreadable {
        Exit::JobsFailed
    } else if args.fail_on_retroactive
        && !unacknowledged(&report, &args.acknowledge_retroactive).is_empty()
    {
        for w in unacknowledged(&report, &args.acknowledge_retroactive) {
            note!(
                "error: retroactive and not acknowledged: {w} (if intended, acknowledge it with \
                 --acknowledge-retroactive, e.g. in the pull request: `retroactive-ok: RULE@VERSION`)"
            );
        }
        Exit::Retroactive
    } else if args.fail_on_change && report.jobs_changed() {
        Exit::Changed
    } else {
        Exit::Ok
    })
}

/// The retroactive windows no acknowledged version covers, as people read them; one entry
/// for retroactive changes that could not be cut into windows, unless `all` is acknowledged.
fn unacknowledged(report: &jobpoints::review::report::DiffReport, ack: &[String]) -> Vec<String> {
    if report.retroactive == 0 || ack.iter().any(|a| a == "all") {
        return Vec::new();
    }
    let listed = |label: &Option<String>| label.as_ref().is_some_and(|l| ack.contains(l));
    let windows: Vec<_> = report.impact.iter().flat_map(|i| &i.windows).collect();
    let mut out: Vec<String> = (windows.iter())
        .filter(|w| w.retroactive && !listed(&w.old) && !listed(&w.new))
        .map(|w| {
            let versions: Vec<&str> = [&w.old, &w.new]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            format!(
                "window {} ({} of {} replayed jobs change; versions {})",
                w.window,
                w.total.changed,
                w.total.jobs,
                versions.join(" → ")
            )
        })
        .collect();
    let incomplete = report.impact.as_ref().is_none_or(|i| i.windows_incomplete);
    if incomplete || !windows.iter().any(|w| w.retroactive) {
        out.push(format!(
            "{} retroactive change(s) whose windows could not be told apart (only \
             `--acknowledge-retroactive all` covers them)",
            report.retroactive
        ));
    }
    out
}

/// Reads both rule sets' files (not yet loaded: an invalid side is reported, not fatal).
fn rule_sides(args: &DiffArgs) -> Result<(RuleFiles, RuleFiles), CliError> {
    let here = Path::new(".");
    if let Some(base) = &args.base {
        let old = rule_files_at(here, base, RULES_DIR)?;
        let new = match &args.head {
            Some(head) => rule_files_at(here, head, RULES_DIR)?,
            None => RuleFiles::from_dir(Path::new(RULES_DIR))?,
        };
        return Ok((old, new));
    }
    match (&args.old, &args.new) {
        (Some(old), Some(new)) => Ok((RuleFiles::from_dir(old)?, RuleFiles::from_dir(new)?)),
        _ => Err(CliError::Usage(
            "give two rules directories (`jobpoints diff OLD NEW`) or a git revision (`--base REV`)"
                .into(),
        )),
    }
}

/// Opens a job file of the corpus.
fn open(path: &Path, format: InputFormat) -> Result<Ledger, CliError> {
    open_ledger(path, format.into()).map_err(|source| CliError::Open {
        path: path.to_path_buf(),
        source,
    })
}

fn open_corpus(jobs: &[PathBuf], format: InputFormat) -> Result<Corpus, CliError> {
    let mut out: Corpus = Vec::new();
    if !jobs.is_empty() {
        for path in jobs {
            out.push((path.display().to_string(), open(path, format)?));
        }
        return Ok(out);
    }
    let local = Path::new(CORPUS_DIR);
    if local.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(local)
            .map_err(|source| CliError::Open {
                path: local.to_path_buf(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        paths.sort();
        for path in paths {
            let reader = open(&path, InputFormat::Json)?;
            let name = format!(
                "{CORPUS_DIR}/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            out.push((name, reader));
        }
        return Ok(out);
    }
    Ok(jobpoints::review::corpus::builtin())
}
