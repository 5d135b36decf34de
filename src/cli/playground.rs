//! `jobpoints playground`: `serve --playground` with a playground's defaults.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, FromArgMatches};

use crate::cli::serve::{self, ServeArgs, parse_secs};
use crate::cli::{CliError, Exit, RulesArg};

/// Arguments of `jobpoints playground` (its help text is on `Command::Playground`).
#[derive(Debug, Clone, clap::Args)]
pub struct PlaygroundArgs {
    #[command(flatten)]
    pub rules: RulesArg,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Seconds one API request may work (loading its rules, scoring its jobs); then 503.
    #[arg(long = "timeout", value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub timeout: Duration,
}

pub fn run(args: PlaygroundArgs) -> Result<Exit, CliError> {
    // Every other setting is `serve`'s default, taken from its own definition.
    let defaults = ServeArgs::augment_args(clap::Command::new("serve"))
        .try_get_matches_from(["serve"])
        .and_then(|m| ServeArgs::from_arg_matches(&m))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    serve::run(ServeArgs {
        rules: args.rules,
        listen: args.listen,
        playground: true,
        playground_timeout: args.timeout,
        ..defaults
    })
}
