//! The `trainhub` binary. Thin: parses the command line, sets up logging, hands over to the
//! library.

#![forbid(unsafe_code)]

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trainhub::run::main(trainhub::cli::Cli::parse()).await
}
