//! The `trainhub` binary. Thin: everything is in the library's `run::entry`.

#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trainhub::run::entry().await
}
