use std::process::ExitCode;

fn main() -> ExitCode {
    jobpoints::cli::main()
}
