//! Command-line interface (DESIGN §6.2).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// trainhub: the data-interchange hub for cadre education and training records.
#[derive(Debug, Parser)]
#[command(name = "trainhub", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: gRPC API and ops HTTP port.
    Serve(ServeArgs),
    /// Apply store migrations and exit.
    Migrate(StoreArgs),
    /// Measure throughput (prints figures; not a test).
    Bench(BenchArgs),
}

/// Where the hub keeps its data; shared by every command that opens the store.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Configuration file (TOML, DESIGN §6.3).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data folder for the embedded store and the generated secret.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Store URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long)]
    pub store: Option<String>,
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// gRPC listen address.
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,
    /// Ops HTTP listen address.
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// Also feed a synthetic data set from three simulated partners through the real ingest path.
    #[arg(long)]
    pub demo: bool,
}

/// `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Records per `SubmitRequest` / per raw transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// PostgreSQL server to measure (a fresh database is created and dropped there).
    #[arg(
        long,
        env = "TRAINHUB_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
}
