//! The `trainhub` binary. Thin: parses the command line, sets up logging, hands over to the
//! library.

#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = trainhub::run::main(trainhub::cli::Cli::parse()).await;
    trainhub::run::exit_code(&result)
}
