//! The `trainhub` program, for tests that run the hub as a separate process.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trainhub::run::main(trainhub::cli::Cli::parse()).await
}
