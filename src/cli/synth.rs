//! `jobpoints synth` (hidden): writes the benchmark's synthetic ledger.

use std::io::{self, BufWriter};

use crate::cli::exit;

/// Writes a synthetic JSONL ledger with the benchmark's realistic mix to stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Number of jobs.
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: u64,
    /// Seed; the same seed gives the same ledger on every machine.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(args: SynthArgs) -> u8 {
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    match crate::ledger::synth::write_ledger(&mut out, args.jobs, args.seed) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write: {e}");
            exit::USAGE
        }
    }
}
