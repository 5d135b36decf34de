//! Exit codes and the one error type of the command line: every subcommand's `run` returns
//! `Result<Exit, CliError>`, and `cli::main` prints the error once and exits with its code.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::calibrate::bench::BenchError;
use jobpoints::ledger::pipeline::LedgerError;
use jobpoints::live::watcher::WatchError;
use jobpoints::rules::files::RulesDirError;
use jobpoints::rules::git::GitRulesError;

/// The exit codes, documented in docs/exit-codes.md and in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything was scored (or the rules are clean).
    Ok,
    /// At least one job was `invalid` or its rule failed (`error`); all others were scored.
    JobsFailed,
    /// Bad command line, an input that cannot be read, or output that cannot be written.
    Usage,
    /// The rule set itself is invalid (see `jobpoints check`).
    RulesInvalid,
    /// `diff --fail-on-change`: some job's points or status changed.
    Changed,
    /// `verify`: some result does not match its job scored again (or its job is missing, or
    /// it is not a result).
    Mismatch,
    /// `verify`: no mismatch, but the rule set some results name was not found.
    UnknownRules,
    /// `diff --fail-on-retroactive`: some change alters jobs dated before the cut-off.
    Retroactive,
    /// `catalog sync --check`: catalog.toml differs from what the catalog history gives, or
    /// decisions are missing.
    CatalogDrift,
    /// `--invalid-exit-code N`: jobs failed, and the caller chose this code for it.
    Code(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::JobsFailed => 1,
            Exit::Usage => 2,
            Exit::RulesInvalid => 3,
            Exit::Changed => 4,
            Exit::Mismatch => 5,
            Exit::UnknownRules => 6,
            Exit::Retroactive => 7,
            Exit::CatalogDrift => 8,
            Exit::Code(c) => c,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// Why a subcommand stopped. Each variant knows its exit code ([`CliError::exit`]); the
/// message is printed once, by `cli::main`, as `error: {message}`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A command line that parses but asks for something impossible (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A job file or other input cannot be opened (exit 2).
    #[error("cannot read `{}`: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading a job file stopped part-way, for a command whose output would be wrong without
    /// the rest (exit 2).
    #[error("reading `{}` stopped: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: LedgerError,
    },
    /// A file named on the command line (`--out`, `--chart`) cannot be written (exit 2).
    #[error("cannot write `{}`: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Standard output cannot be written (exit 2). A closed pipe (`| head`) is not reported
    /// and exits 0: the reader chose to stop.
    #[error("cannot write output: {0}")]
    Output(#[source] io::Error),
    /// The rules directory cannot be read (exit 2).
    #[error(transparent)]
    RulesDir(#[from] RulesDirError),
    /// The rules at a git revision cannot be read (exit 2).
    #[error(transparent)]
    Git(#[from] GitRulesError),
    /// A benchmark CSV cannot be used at all (exit 2).
    #[error(transparent)]
    Bench(#[from] BenchError),
    /// The rules directory cannot be watched (exit 2).
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// `serve` cannot start or keep running: runtime, signals, listening (exit 2).
    #[error("{what}: {source}")]
    Serve {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The rule set is invalid (exit 3). `diagnostics` (rendered for people) are printed
    /// before the message.
    #[error("{message}")]
    RulesInvalid {
        diagnostics: String,
        message: String,
    },
}

impl CliError {
    /// The documented exit code of this error.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::RulesInvalid { .. } => Exit::RulesInvalid,
            _ if self.is_silent() => Exit::Ok,
            _ => Exit::Usage,
        }
    }

    /// Whether the error is not worth a message: the one place a closed output pipe (the
    /// reader of `| head` left) is told from other write errors.
    pub fn is_silent(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_documented_code() {
        let io = || io::Error::other("x");
        assert_eq!(CliError::Usage("u".into()).exit(), Exit::Usage);
        assert_eq!(CliError::Output(io()).exit(), Exit::Usage);
        assert_eq!(
            CliError::RulesInvalid {
                diagnostics: String::new(),
                message: "m".into()
            }
            .exit(),
            Exit::RulesInvalid
        );
        let closed = CliError::Output(io::ErrorKind::BrokenPipe.into());
        assert_eq!(closed.exit(), Exit::Ok);
        assert!(closed.is_silent());
        assert!(!CliError::Output(io()).is_silent());
        assert_eq!(CliError::Output(io()).to_string(), "cannot write output: x");
    }
}
