//! Command-line interface (docs/reference/cli.md).

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
    /// Import partners' export files (CSV, JSON lines; a folder of them) through a mapping
    /// profile into the store, with progress, a summary and a report of rejected rows. Safe
    /// to re-run: records already stored come back `DUPLICATE`.
    Import(ImportArgs),
    /// Apply store migrations and exit; with `--rewrite`, also move rows an earlier release
    /// stored in the text layout into the current one (online, resumable).
    Migrate(MigrateArgs),
    /// Show one person's dossier.
    Dossier(DossierArgs),
    /// Coverage per unit, rank, category or region (`--xlsx`/`--csv` export it, with each year
    /// of the window and the RED list).
    Coverage(CoverageArgs),
    /// A warning list (red, behind, remedial, long-training): who to follow up, and why.
    Warnings(WarningsArgs),
    /// The off-job trainings of one person's annual assessment form (年度考核登记表) for a year.
    AnnualForm(AnnualFormArgs),
    /// Fill an appointment approval form (.lrmx) with its person's training lines (off-job
    /// training of 60 days or more) in the résumé, keeping the rest of the file as it was.
    LrmxFill(LrmxFillArgs),
    /// Dead letters: list them, or replay them through the pipeline after a fix.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Connector status of a running hub; exits 1 when a connector has failed.
    Status(StatusArgs),
    /// The audit trail of reads: who read whose data, why and when (newest first).
    Audit(AuditArgs),
    /// Make a new bearer token: prints the token (give it to the partner or reader) and the
    /// `token_sha256` line for the configuration (the hub keeps only that).
    Token,
    /// Make a new data key: prints an `id:hex` entry for the data keyring. To rotate, put it
    /// first in the key file (keep the old entries), restart the hubs, then run `rekey`.
    Key(KeyArgs),
    /// Reseal every stored national ID, name and received record under the keyring's first
    /// key; afterwards the older keys can be removed. Safe while hubs run; resumable.
    Rekey(StoreArgs),
    /// The identity review queue of a running hub: conflicts to decide, records waiting.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Send canonical records from a JSON file to a running hub (`IngestService.Submit`), as a
    /// partner would; prints every record not simply accepted, and exits 2 (some refused) or
    /// 3 (all refused) like `import`.
    Submit(SubmitArgs),
}

/// `review`.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List the conflicts (open ones; `--all` for every one).
    List(ReviewListArgs),
    /// Show one conflict: its sides, and the command that decides for each.
    Show(ReviewShowArgs),
    /// Decide a conflict for one side (the side's choice, as `show` prints it).
    Resolve(ReviewResolveArgs),
    /// List the records in no dossier yet, and why (NO_LINK, NO_PERSON, IN_REVIEW).
    Unmatched(ReviewListArgs),
}

/// `review list`, `review unmatched`.
#[derive(Debug, Args)]
pub struct ReviewListArgs {
    /// Config (for the hub's gRPC address).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub and a token with `review:write`.
    #[command(flatten)]
    pub hub: crate::remote::HubArgs,
    /// Also resolved and cleared conflicts.
    #[arg(long)]
    pub all: bool,
}

/// `review show`.
#[derive(Debug, Args)]
pub struct ReviewShowArgs {
    /// Config (for the hub's gRPC address).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub and a token with `review:write`.
    #[command(flatten)]
    pub hub: crate::remote::HubArgs,
    /// The conflict's id (`review list` prints it).
    pub id: String,
}

/// `review resolve`.
#[derive(Debug, Args)]
pub struct ReviewResolveArgs {
    /// Config (for the hub's gRPC address).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub and a token with `review:write`.
    #[command(flatten)]
    pub hub: crate::remote::HubArgs,
    /// The conflict's id.
    pub id: String,
    /// The side to decide for: its choice as `review show` prints it.
    pub choice: String,
    /// Why (kept with the decision, e.g. the HR file that settles it).
    #[arg(long)]
    pub note: String,
}

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Config (for the hub's gRPC address).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub and a partner token with `ingest`.
    #[command(flatten)]
    pub hub: crate::remote::HubArgs,
    /// A JSON file: one record, an array of them, or `{"records": [...]}`.
    pub file: PathBuf,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Store and config (the same flags and defaults as `serve`; no running hub needed).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The partner system the files come from (`source.system` of every record).
    #[arg(long)]
    pub system: String,
    /// Mapping profile: a shipped one by name (`cadre-a01`) or a profile file.
    #[arg(long)]
    pub profile: String,
    /// Where to write the rejected rows (CSV: file, row, kind, record_id, field, reason, stage,
    /// message); default `<first file or folder name>.rejects.csv` in the current folder.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Records per transaction (rows per call with `--hub`).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Send to a running hub's `SubmitNative` (e.g. `http://127.0.0.1:50051`) instead of
    /// writing to the store; `--profile` must then be a profile the hub ships.
    #[arg(long)]
    pub hub: Option<String>,
    /// Bearer token of a partner with `ingest`, for `--hub`.
    #[arg(long, env = "TRAINHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Files, or folders of files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The new key's id (letters, digits, `-`, `_`); default `k<today>-<4 random hex digits>`, so two made on one day never collide.
    #[arg(long)]
    pub id: Option<String>,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Config (for the hub's gRPC address).
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub's gRPC URL; default `http://` + the configured `grpc_addr`.
    #[arg(long)]
    pub hub: Option<String>,
    /// Bearer token of a reader with `health:read`, when the hub has principals.
    #[arg(long, env = "TRAINHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only reads about this person (a national ID or a person_key).
    #[arg(long)]
    pub person: Option<String>,
    /// Only reads by this principal.
    #[arg(long)]
    pub principal: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `dlq`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first.
    List(DlqListArgs),
    /// Run dead letters through the pipeline again and print the new outcomes.
    Replay(DlqReplayArgs),
}

/// Which letters a `dlq` command takes.
#[derive(Debug, Args)]
pub struct LetterArgs {
    /// Only letters of this connector (`grpc` or a `[[connectors]]` name).
    #[arg(long)]
    pub connector: Option<String>,
    /// Only letters with this reason code, e.g. UNKNOWN_CODE.
    #[arg(long)]
    pub reason: Option<String>,
    /// At most this many letters.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
}

/// `dlq list`.
#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Filters.
    #[command(flatten)]
    pub letters: LetterArgs,
    /// Also letters a replay has already stored.
    #[arg(long)]
    pub all: bool,
    /// Print each letter's payload too (it may hold personal data).
    #[arg(long)]
    pub payload: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `dlq replay`.
#[derive(Debug, Args)]
pub struct DlqReplayArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Letter ids; without ids, every unreplayed letter matching the filters.
    pub ids: Vec<i64>,
    /// Filters.
    #[command(flatten)]
    pub letters: LetterArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Output formats of the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Text,
    /// JSON, for scripts.
    Json,
}

/// `dossier`.
#[derive(Debug, Args)]
pub struct DossierArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The person's national ID (or a 64-hex person key).
    pub person: String,
    /// Purpose, as-of date and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Ask a running hub (`GetDossier`, with a `dossier:read` token) instead of reading the
    /// store; the hub writes the audit row under the token's principal.
    #[command(flatten)]
    pub remote: crate::remote::HubArgs,
}

/// `coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// unit | rank | category | region.
    #[arg(long, default_value = "unit")]
    pub group_by: String,
    /// Purpose, as-of date and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Where to write the report (groups, RED list, each year of the window).
    #[command(flatten)]
    pub export: ExportArgs,
}

/// What a report read from the store states and how it prints.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Why the data is read (e.g. `annual-plan`): required, and written to the audit trail
    /// with the operating-system user before anything is printed or written.
    #[arg(long)]
    pub purpose: String,
    /// Reference date (YYYY-MM-DD); today by default.
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Where a report also goes as files.
#[derive(Debug, Args, Default)]
pub struct ExportArgs {
    /// Also write it as an XLSX workbook (as-of date, policy version and purpose on each sheet).
    #[arg(long, value_name = "FILE")]
    pub xlsx: Option<PathBuf>,
    /// Also write it as CSV (UTF-8 with a byte-order mark).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

impl ExportArgs {
    /// Whether any file is asked for.
    pub fn any(&self) -> bool {
        self.xlsx.is_some() || self.csv.is_some()
    }
}

/// `warnings`.
#[derive(Debug, Args)]
pub struct WarningsArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// red | behind | remedial | long-training.
    #[arg(long, default_value = "red")]
    pub list: String,
    /// unit | rank | category | region: what `--group` names.
    #[arg(long, default_value = "unit")]
    pub group_by: String,
    /// Only the persons of this group (e.g. a unit code).
    #[arg(long)]
    pub group: Option<String>,
    /// Only the persons of this cadre-management authority.
    #[arg(long)]
    pub authority: Option<String>,
    /// Purpose, as-of date and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Where to write the list.
    #[command(flatten)]
    pub export: ExportArgs,
}

/// `annual-form`.
#[derive(Debug, Args)]
pub struct AnnualFormArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// National ID or person_key.
    pub person: String,
    /// The assessment year; the as-of year by default.
    #[arg(long)]
    pub year: Option<i32>,
    /// Purpose, as-of date and output format.
    #[command(flatten)]
    pub read: ReadArgs,
    /// Where to write the rows.
    #[command(flatten)]
    pub export: ExportArgs,
}

/// `lrmx-fill`.
#[derive(Debug, Args)]
pub struct LrmxFillArgs {
    /// Store and config.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The form (.lrmx): UTF-8 or GB2312/GBK, as its editor wrote it.
    pub form: PathBuf,
    /// Write the filled form here instead of replacing FORM.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Why the data is read: required, and written to the audit trail.
    #[arg(long)]
    pub purpose: String,
    /// Reference date (YYYY-MM-DD); today by default.
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
}

/// `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to migrate.
    #[command(flatten)]
    pub store: StoreArgs,
    /// After the schema, rewrite the record bodies and persons' facts an earlier release stored
    /// as sealed text into bytes (migration 0015): page by page beside running hubs, with
    /// progress; safe to stop and run again. Needs the data keyring, like `rekey`.
    #[arg(long)]
    pub rewrite: bool,
}

/// Where the hub keeps its data; shared by every command that opens the store.
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Configuration file (TOML; every key in docs/reference/configuration.md).
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
