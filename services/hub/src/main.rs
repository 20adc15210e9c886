//! The `trainhub` binary. Thin: everything is in the library's `run::entry`.

#![forbid(unsafe_code)]

// The hub allocates and frees many small values per record (rows, strings, JSON); glibc's
// allocator spent a fifth of the hub's time on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    trainhub::run::entry().await
}
