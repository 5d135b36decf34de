//! `jobpoints completions SHELL` and `jobpoints man`: shell completion scripts and man pages,
//! generated from the same clap definitions as the command line, so they cannot drift.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::cli::{Cli, CliError, Exit, Stdout};

/// Arguments of `jobpoints completions`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `jobpoints man`.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write one page per command into this directory (`jobpoints.1`, `jobpoints-eval.1`,
    /// ...); without it, print the main page to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<Exit, CliError> {
    let mut out = Stdout::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "jobpoints", &mut out);
    out.flush_checked()?;
    Ok(Exit::Ok)
}

pub fn man(args: ManArgs) -> Result<Exit, CliError> {
    let cmd = Cli::command();
    let Some(dir) = args.out else {
        let mut out = Stdout::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(CliError::Output)?;
        out.flush_checked()?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Create {
        path: dir.clone(),
        source,
    })?;
    // One page for the command and one per visible subcommand, named as `man` expects.
    clap_mangen::generate_to(cmd, &dir).map_err(|source| CliError::Create {
        path: dir.clone(),
        source,
    })?;
    Ok(Exit::Ok)
}
