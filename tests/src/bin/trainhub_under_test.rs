//! The `trainhub` program, for tests that run the hub as a separate process.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trainhub::run::entry().await
}
