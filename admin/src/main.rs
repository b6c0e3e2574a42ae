//! `lakehouse`: the admin CLI of the streaming lakehouse.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
