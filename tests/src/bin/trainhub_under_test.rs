//! The `trainhub` program, for tests that run the hub as a separate process.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = trainhub::run::main(trainhub::cli::Cli::parse()).await;
    trainhub::run::exit_code(&result)
}
