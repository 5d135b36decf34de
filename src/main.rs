//! The `jobpoints` command line: a thin layer over the `jobpoints` engine crate
//! (crates/engine/) — argument parsing, output to terminals and files, the HTTP server, the
//! playground and calibration.

#![forbid(unsafe_code)]

mod calibrate;
mod cli;
mod playground;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
