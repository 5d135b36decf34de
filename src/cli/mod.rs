//! The `jobpoints` command line: one file per subcommand, each an `Args` struct and a `run`
//! function returning an exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::diagnostic::render_human;
use crate::files::RuleFiles;
use crate::load::{Loaded, load};

mod calibrate;
mod check;
mod eval;
mod models;
mod synth;

pub use calibrate::{CalibrateArgs, CalibrateFormat};
pub use check::{CheckArgs, CheckFormat};
pub use eval::EvalArgs;
pub use models::ModelsArgs;
pub use synth::SynthArgs;

/// Exit codes, documented in the README and in `--help`.
pub mod exit {
    /// Everything was scored (or the rules are clean).
    pub const OK: u8 = 0;
    /// At least one job was `invalid` or its rule failed (`error`); all others were scored.
    pub const JOBS_FAILED: u8 = 1;
    /// Bad command line, or an input file or rules directory that cannot be read.
    pub const USAGE: u8 = 2;
    /// The rule set itself is invalid (see `jobpoints check`).
    pub const RULES_INVALID: u8 = 3;
}

const AFTER_HELP: &str = "\
Exit codes:
  0  success: every job scored (ok, below_threshold or no_rule); rules clean
  1  some jobs were invalid or their rule failed; every other job was still scored
  2  usage error, or an input file / rules directory that cannot be read
  3  the rule set is invalid (run `jobpoints check` for every problem)

Rules: --rules DIR, else ./rules if it exists, else the rules built into the binary.";

/// Turns completed AI compute jobs into reward points, by rules written as TOML + rhai.
#[derive(Debug, Parser)]
#[command(name = "jobpoints", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score job files (one JSON job, a JSON array, or JSONL; `-` for stdin).
    Eval(EvalArgs),
    /// Validate a rule set and report every problem with its file, line and code.
    Check(CheckArgs),
    /// List the catalog's models with the rule version that prices each.
    Models(ModelsArgs),
    /// Calibrate points from GPU benchmark timings and propose a checked rule version.
    Calibrate(CalibrateArgs),
    /// Write the benchmark's synthetic ledger (JSONL) to stdout.
    #[command(hide = true)]
    Synth(SynthArgs),
}

/// Where the rules come from; shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct RulesArg {
    /// Rules directory. Default: ./rules if it exists, else the rules built into the binary.
    #[arg(long, value_name = "DIR", env = "JOBPOINTS_RULES")]
    pub rules: Option<PathBuf>,
}

impl RulesArg {
    /// Reads and loads the rules, or prints why not and returns the exit code.
    pub fn load(&self) -> Result<Loaded, u8> {
        match RuleFiles::locate(self.rules.as_deref()) {
            Ok(files) => Ok(load(files)),
            Err(e) => {
                eprintln!("error: {e}");
                Err(exit::USAGE)
            }
        }
    }
}

/// Prints a rule set's diagnostics to stderr for people.
pub fn print_diagnostics(loaded: &Loaded) {
    let files = &loaded.files;
    let text = render_human(&loaded.diagnostics, &|f| files.text(f).map(String::from));
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Check(args) => check::run(args),
        Command::Models(args) => models::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Synth(args) => synth::run(args),
    };
    if std::env::var_os("JOBPOINTS_REPORT_PEAK_RSS").is_some() {
        // For the benchmark: peak resident memory of this process, from the kernel.
        if let Some(line) = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(String::from)
            })
        {
            eprintln!("peak_rss {}", line.trim_start_matches("VmHWM:").trim());
        }
    }
    ExitCode::from(code)
}
