//! `jobpoints eval`: score job files.

use std::path::PathBuf;

use crate::cli::formats::EvalFormat;
use crate::cli::formats::InputFormat;
use crate::cli::output::note;
use crate::cli::{
    CliError, Exit, FailedExitArg, RulesArg, Stdout, ThreadsArg, open_inputs, parse_at,
};
use jobpoints::engine::score::{ScoreOptions, Scorer};
use jobpoints::ledger::output::{Formatted, ResultsWriter};
use jobpoints::ledger::pipeline::{LedgerError, run_ledger};

/// Arguments of `jobpoints eval` (its help text is on `Command::Eval`).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Pick rule versions as of this time (`2024-05-01` or RFC 3339) instead of each job's
    /// `completed_at`.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: EvalFormat,
    /// Write the results to FILE instead of stdout (needed for `--format parquet`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Show how each job was priced: model → family → rule version, inputs, derived values,
    /// thresholds, formula, points.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub threads: ThreadsArg,
    #[command(flatten)]
    pub failed: FailedExitArg,
    /// How to read the job files: by extension (`.parquet`, `.pq`, `.csv`; anything else is
    /// JSON), or as given for every file.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "auto")]
    pub input_format: InputFormat,
    /// Job files: JSONL, JSON arrays or pretty JSON, CSV with a header row, or Parquet. `-`
    /// reads stdin (JSON, or CSV with `--input-format csv`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: EvalArgs) -> Result<Exit, CliError> {
    let rules = args.rules.load_valid()?;
    #[cfg(feature = "parquet")]
    if args.format == EvalFormat::Parquet {
        if args.out.is_none() {
            return Err(CliError::Usage(
                "`--format parquet` writes a file: give it with `--out FILE`".into(),
            ));
        }
        if args.explain {
            return Err(CliError::Usage(
                "`--explain` is not available with `--format parquet` (use jsonl or json)".into(),
            ));
        }
    }
    // Open every input before writing anything, so a typo in a path produces no partial output.
    let inputs = open_inputs(&args.files, args.input_format.into())?;
    let create = |path: &PathBuf| {
        std::fs::File::create(path).map_err(|source| CliError::Create {
            path: path.clone(),
            source,
        })
    };
    match &args.out {
        #[cfg(feature = "parquet")]
        Some(path) if args.format == EvalFormat::Parquet => {
            let file = create(path)?;
            let writer = ResultsWriter::parquet(file).map_err(|source| CliError::Create {
                path: path.clone(),
                source,
            })?;
            score_all(&args, &rules, inputs, writer)
        }
        Some(path) => {
            let file = std::io::BufWriter::with_capacity(1 << 20, create(path)?);
            let writer = ResultsWriter::new(file, args.format.into(), args.explain)
                .map_err(CliError::Output)?;
            score_all(&args, &rules, inputs, writer)
        }
        None => {
            let writer = ResultsWriter::new(Stdout::new(), args.format.into(), args.explain)
                .map_err(CliError::Output)?;
            score_all(&args, &rules, inputs, writer)
        }
    }
}

/// Scores every input into `writer`, in order.
fn score_all<W: std::io::Write>(
    args: &EvalArgs,
    rules: &jobpoints::engine::model::RuleSet,
    inputs: Vec<crate::cli::Input>,
    mut writer: ResultsWriter<W>,
) -> Result<Exit, CliError> {
    let threads = args.threads.get();
    let format = jobpoints::ledger::output::EvalFormat::from(args.format);
    let opts = ScoreOptions {
        at: args.at,
        explain: args.explain,
    };
    let many = args.files.len() > 1;
    let mut failed = 0u64;
    let mut unreadable = false;
    for (path, reader, bar) in inputs {
        let scorer = Scorer {
            opts,
            file: many.then(|| path.display().to_string()),
            // `--at` results say so (`priced_at`, `priced_by: "at"`), so `verify` prices them
            // at the same time.
            name_pricing_time: args.at.is_some(),
            ..Scorer::new(rules)
        };
        let result = run_ledger(
            reader,
            &scorer,
            threads,
            |s, batch: &mut Formatted| format.format(batch, s),
            |batch| {
                failed += batch.failed;
                writer.write(batch)
            },
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(0) => no_jobs(&path),
            Ok(_) => {}
            Err(LedgerError::Write(e)) => return Err(CliError::Output(e)),
            Err(e @ LedgerError::Read { .. }) => {
                // Results already written stay valid; say where reading stopped, and go on.
                note!("error: `{}`: {e}", path.display());
                unreadable = true;
            }
        }
    }
    writer.finish().map_err(CliError::Output)?;
    // A file that could not be read to its end lost jobs: that fails whatever
    // `--invalid-exit-code` says about jobs that were read and found invalid.
    Ok(if unreadable {
        Exit::JobsFailed
    } else {
        args.failed.exit(failed)
    })
}

/// Says on stderr that a job file held no job at all (an empty file, a closed stdin, only
/// blank lines or `[]`): not an error, but easy to miss in a pipeline.
pub fn no_jobs(path: &std::path::Path) {
    if path.as_os_str() == "-" {
        note!("note: no jobs in standard input");
    } else {
        note!("note: no jobs in `{}`", path.display());
    }
}
