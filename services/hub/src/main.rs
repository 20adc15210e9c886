//! The `trainhub` binary. Thin: parses the command line, sets up logging, hands over to the
//! library.

#![forbid(unsafe_code)]

use clap::Parser;

/// A command line that does not parse (sysexits' EX_USAGE), so that it never reads as one of
/// `import`'s refusal codes (2 and 3).
const USAGE: u8 = 64;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match trainhub::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::from(USAGE)
            } else {
                // --help and --version
                std::process::ExitCode::SUCCESS
            };
        }
    };
    let result = trainhub::run::main(cli).await;
    trainhub::run::exit_code(&result)
}
