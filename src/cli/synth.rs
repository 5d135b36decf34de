//! `jobpoints synth` (hidden): writes the benchmark's synthetic ledger.

use crate::cli::{CliError, Exit, Stdout};

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

pub fn run(args: SynthArgs) -> Result<Exit, CliError> {
    let mut out = Stdout::new();
    jobpoints::ledger::synth::write_ledger(&mut out, args.jobs, args.seed)
        .map_err(CliError::Output)?;
    out.flush_checked()?;
    Ok(Exit::Ok)
}
