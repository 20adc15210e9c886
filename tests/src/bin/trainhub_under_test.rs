//! The `trainhub` program, for tests that run the hub as a separate process.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trainhub::run::init_logging();
    trainhub::run::run(trainhub::cli::Cli::parse()).await
}
