//! `jobpoints eval`: score job files.

use crate::cli::parse_at_arg;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::cli::{RulesArg, exit, open_inputs};
use crate::evaluate::EvalContext;
use crate::ledger::{RulesScorer, run_ledger};
use crate::output::{EvalFormat, ScoreWriter, write_jsonl};
use crate::reader::open_jobs;
use crate::score::{ScoreOptions, Status, score_record};

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
    /// Worker threads for JSONL output (default: one per core). Results are always written
    /// in input order and are identical for any thread count.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Job files: one JSON job, a JSON array of jobs, or JSONL. `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What each batch of the parallel path hands back: its output and its failures.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    failed: u64,
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
    let rules = &rules;
    // Open every input before writing anything, so a typo in a path produces no partial output.
    let mut readers = Vec::new();
    for path in &args.files {
        match open_jobs(path) {
            Ok(r) => readers.push((path, r)),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                return exit::USAGE;
            }
        }
    }
    let opts = ScoreOptions {
        at,
        explain: args.explain,
    };
    if args.format == EvalFormat::Jsonl && !args.explain {
        drop(readers);
        return eval_parallel(rules, &args.files, opts, args.threads);
    }
    let stdout = io::stdout().lock();
    let mut writer = ScoreWriter::new(
        BufWriter::with_capacity(1 << 16, stdout),
        args.format,
        args.explain,
    );
    let mut ctx = EvalContext::new();
    let mut failed = false;
    let many = args.files.len() > 1;
    for (path, mut reader) in readers {
        for record in reader.by_ref() {
            let mut score = score_record(rules, record, opts, &mut ctx);
            if many {
                score.file = Some(path.display().to_string());
            }
            failed |= matches!(score.status, Status::Invalid | Status::Error);
            if let Err(e) = writer.write(score) {
                return write_failed(e);
            }
        }
        if let Some(e) = reader.io_error.take() {
            eprintln!("error: reading `{}` stopped: {e}", path.display());
            failed = true;
        }
    }
    if let Err(e) = writer.finish() {
        return write_failed(e);
    }
    if failed { exit::JOBS_FAILED } else { exit::OK }
}

/// JSONL scoring on every core: streamed, in input order, in constant memory.
fn eval_parallel(
    rules: &crate::model::RuleSet,
    files: &[PathBuf],
    opts: ScoreOptions,
    threads: Option<usize>,
) -> u8 {
    let many = files.len() > 1;
    let readers = match open_inputs(files) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut failed = 0u64;
    for (path, reader, bar) in readers {
        let scorer = RulesScorer {
            rules,
            opts,
            file: many.then(|| path.display().to_string()),
            fast: true,
        };
        let result = run_ledger(
            reader,
            &scorer,
            threads,
            |s, chunk: &mut Chunk| {
                if chunk.bytes.capacity() == 0 {
                    // About one batch of output: avoids regrowing the buffer line by line.
                    chunk.bytes.reserve(1 << 20);
                }
                write_jsonl(&mut chunk.bytes, s);
                chunk.failed += u64::from(matches!(s.status, Status::Invalid | Status::Error));
            },
            |chunk| {
                failed += chunk.failed;
                out.write_all(&chunk.bytes)
            },
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return exit::OK,
            Err(e) => {
                // Output already written stays valid; say where reading or writing stopped.
                eprintln!("error: `{}`: {e}", path.display());
                let _ = out.flush();
                return exit::USAGE;
            }
        }
    }
    if let Err(e) = out.flush() {
        return write_failed(e);
    }
    if failed > 0 {
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
