//! `jobpoints eval`: score job files.

use std::io::{self, BufWriter};
use std::path::PathBuf;

use crate::cli::parse_at_arg;
use crate::cli::{RulesArg, exit, open_inputs};
use crate::engine::score::{ScoreOptions, Scorer};
use crate::ledger::output::{EvalFormat, Formatted, ResultsWriter};
use crate::ledger::pipeline::{LedgerError, run_ledger};

/// Arguments of `jobpoints eval` (its help text is on `Command::Eval`).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Pick rule versions as of this time (`2024-05-01` or RFC 3339) instead of each job's
    /// `completed_at`.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: EvalFormat,
    /// Show how each job was priced: model → family → rule version, inputs, derived values,
    /// thresholds, formula, points.
    #[arg(long)]
    pub explain: bool,
    /// Worker threads (default: one per core). Results are always written in input order and
    /// are identical for any thread count.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Job files: one JSON job, a JSON array of jobs, or JSONL. `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: EvalArgs) -> u8 {
    let at = match parse_at_arg(args.at.as_deref()) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let rules = match args.rules.load_valid() {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Open every input before writing anything, so a typo in a path produces no partial output.
    let inputs = match open_inputs(&args.files) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let opts = ScoreOptions {
        at,
        explain: args.explain,
    };
    let out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut writer = match ResultsWriter::new(out, args.format, args.explain) {
        Ok(w) => w,
        Err(e) => return write_failed(e),
    };
    let many = args.files.len() > 1;
    let mut failed = 0u64;
    let mut unreadable = false;
    for (path, reader, bar) in inputs {
        let scorer = Scorer {
            opts,
            file: many.then(|| path.display().to_string()),
            ..Scorer::new(&rules)
        };
        let result = run_ledger(
            reader,
            &scorer,
            threads,
            |s, batch: &mut Formatted| args.format.format(batch, s),
            |batch| {
                failed += batch.failed;
                writer.write(batch)
            },
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(_) => {}
            Err(LedgerError::Write(e)) => return write_failed(e),
            Err(e @ LedgerError::Read { .. }) => {
                // Results already written stay valid; say where reading stopped.
                eprintln!("error: `{}`: {e}", path.display());
                unreadable = true;
            }
        }
    }
    if let Err(e) = writer.finish() {
        return write_failed(e);
    }
    if failed > 0 || unreadable {
        exit::JOBS_FAILED
    } else {
        exit::OK
    }
}

fn write_failed(e: io::Error) -> u8 {
    // A closed pipe (`| head`) is the reader's choice, not an error.
    if e.kind() == io::ErrorKind::BrokenPipe {
        return exit::OK;
    }
    eprintln!("error: cannot write output: {e}");
    exit::USAGE
}
