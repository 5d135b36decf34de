//! `jobpoints tally`: exact totals per miner, model, point kind or day.

use std::path::PathBuf;

use crate::cli::formats::InputFormat;
use crate::cli::formats::{GroupBy, TallyFormat};
use crate::cli::{
    CliError, Exit, FailedExitArg, RulesArg, Stdout, ThreadsArg, open_inputs, parse_at,
};
use jobpoints::engine::score::{ScoreOptions, Scorer};
use jobpoints::engine::time::utc_string;
use jobpoints::ledger::pipeline::run_ledger;
use jobpoints::ledger::tally::{PartialTally, Tally};

/// Arguments of `jobpoints tally` (its help text is on `Command::Tally`).
#[derive(Debug, Clone, clap::Args)]
pub struct TallyArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Group by these dimensions, in this order (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "miner")]
    pub by: Vec<GroupBy>,
    /// Pick rule versions as of this time instead of each job's `completed_at`.
    #[arg(long, value_name = "TIME", value_parser = parse_at)]
    pub at: Option<jiff::Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TallyFormat,
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

pub fn run(args: TallyArgs) -> Result<Exit, CliError> {
    let rules = &args.rules.load_valid()?;
    let readers = open_inputs(&args.files, args.input_format.into())?;
    let mut by = crate::cli::formats::group_by(&args.by);
    by.dedup();
    let threads = args.threads.get();
    let scorer = Scorer {
        opts: ScoreOptions {
            at: args.at,
            explain: false,
        },
        ..Scorer::new(rules)
    };
    let mut tally = Tally::new(by.clone(), args.at.map(utc_string), &rules.hash);
    for (path, reader, bar) in readers {
        let result = run_ledger(
            reader,
            &scorer,
            threads,
            |s, part: &mut PartialTally| part.add(&by, s),
            |part| {
                tally.merge(part);
                Ok(())
            },
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(0) => crate::cli::eval::no_jobs(&path),
            Ok(_) => {}
            Err(source) => return Err(CliError::Read { path, source }),
        }
    }
    let mut out = Stdout::new();
    tally
        .write(args.format.into(), &mut out)
        .map_err(CliError::Output)?;
    out.flush_checked()?;
    Ok(args.failed.exit(tally.total().counts.failed()))
}
