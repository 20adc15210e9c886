//! `trainhub-bench`: performance figures, printed — never a test. Each benchmark measures the
//! hub against the plain limit of the same work (the raw store, a bare consumer, `COPY`).
//!
//! Layout: [`ingest`] (gRPC streaming ingest against the raw store), [`dossier`] (GetDossier
//! and GetCoverage over a large population), [`amqp`] (the AMQP connector against a bare
//! consumer), [`import`] (`trainhub import` against `COPY`), [`xapi`] (statements posted to
//! the LRS endpoint against gRPC `Submit` of the same records), [`ceiling`] (the database
//! alone doing the contract's writes, step by step from the plain limit).

#![forbid(unsafe_code)]

mod amqp;
mod ceiling;
mod dossier;
mod import;
mod ingest;
mod load;
mod plain;
mod xapi;

use clap::{Args, Parser};

/// trainhub's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "trainhub-bench", version)]
enum Cli {
    /// Ingest throughput end to end against the raw store limit (SQLite and PostgreSQL).
    Ingest(IngestBenchArgs),
    /// GetDossier latency and GetCoverage time over a large population on PostgreSQL.
    Dossier(DossierBenchArgs),
    /// AMQP consume → normalise → commit → ack into PostgreSQL against a bare consumer that
    /// only acknowledges (the broker's limit), on the same queue.
    Amqp(AmqpBenchArgs),
    /// `trainhub import` of a generated A01 CSV into PostgreSQL (rows/s, memory over the run)
    /// against PostgreSQL's own `COPY` of the same file into an equivalent table.
    Import(ImportBenchArgs),
    /// Statements POSTed to `/xapi/statements` in batches (committed) against gRPC `Submit`
    /// of the same records, SQLite and PostgreSQL.
    Xapi(XapiBenchArgs),
    /// What the database alone does for the contract's writes, step by step from the plain
    /// limit: the ceiling of any hub storing that much (SQLite and PostgreSQL).
    Ceiling(CeilingBenchArgs),
}

/// `bench ceiling`.
#[derive(Debug, Args)]
pub struct CeilingBenchArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 200_000)]
    pub records: i64,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
}

/// `bench xapi`.
#[derive(Debug, Args)]
pub struct XapiBenchArgs {
    /// Statements to post.
    #[arg(long, default_value_t = 50_000)]
    pub statements: usize,
    /// Statements per POST, records per `SubmitRequest`.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
}

/// `bench import`.
#[derive(Debug, Args)]
pub struct ImportBenchArgs {
    /// Rows of the generated A01 CSV.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Records per transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Keep the imported database afterwards (its URL is printed), to look at where its bytes
    /// are; drop it with `DROP DATABASE`.
    #[arg(long)]
    pub keep_database: bool,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
}

/// `bench amqp`.
#[derive(Debug, Args)]
pub struct AmqpBenchArgs {
    /// Valid JSON records to publish.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Prefetch of both consumers (the connector's default).
    #[arg(long, default_value_t = 4000)]
    pub prefetch: u16,
    /// The broker.
    #[arg(
        long,
        env = "TRAINHUB_BENCH_AMQP",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp: String,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
}

/// The PostgreSQL server a benchmark uses; it creates a fresh database there and drops it.
#[derive(Debug, Args)]
pub struct BenchPostgres {
    /// Admin URL of the PostgreSQL server.
    #[arg(
        long,
        env = "TRAINHUB_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres: String,
}

/// `bench dossier`.
#[derive(Debug, Args)]
pub struct DossierBenchArgs {
    /// People to generate.
    #[arg(long, default_value_t = 100_000)]
    pub people: usize,
    /// Records per person, on average.
    #[arg(long, default_value_t = 20)]
    pub records_per_person: usize,
    /// GetDossier requests to time.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Also load the same people with this many records each, first, on a fresh database,
    /// and report both ingest rates (criterion: the larger at least 80% of the smaller).
    #[arg(long)]
    pub compare_records_per_person: Option<usize>,
    /// Keep the loaded database afterwards, and the data folder with the key it is sealed
    /// under (both are printed), to look into it or to measure its reads again with
    /// `--reads-on`; drop it with `DROP DATABASE`.
    #[arg(long)]
    pub keep_database: bool,
    /// Load nothing: measure the reads again on the database a run with `--keep-database`
    /// left, given the data folder it printed (the same `--people`).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["keep_database", "compare_records_per_person"])]
    pub reads_on: Option<std::path::PathBuf>,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
}

/// `bench ingest`.
#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Records to generate.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Records per `SubmitRequest` / per raw transaction.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// The PostgreSQL server to measure.
    #[command(flatten)]
    pub server: BenchPostgres,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
    /// Keep the hub leg's PostgreSQL database afterwards (its URL is printed), to look at
    /// where its bytes are; drop it with `DROP DATABASE`.
    #[arg(long, conflicts_with = "no_postgres")]
    pub keep_database: bool,
}

// The same allocator as the `trainhub` binary: the benchmarks run the hub in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Ingest(args) => ingest::run(args).await,
        Cli::Dossier(args) => dossier::run(args).await,
        Cli::Amqp(args) => amqp::run(args).await,
        Cli::Import(args) => import::run(args).await,
        Cli::Xapi(args) => xapi::run(args).await,
        Cli::Ceiling(args) => ceiling::run(args).await,
    }
}
