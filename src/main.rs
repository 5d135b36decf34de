use std::process::ExitCode;

fn main() -> ExitCode {
    jobpoints::internals::cli_main()
}
