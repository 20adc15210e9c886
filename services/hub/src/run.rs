//! Running a parsed command line: what the `trainhub` binary does, in the library so tests can
//! build the same program.

use crate::cli::{Cli, Command, DlqCommand, StoreArgs};
use crate::config::Config;
use crate::{demo, dlq, report, startup};
use anyhow::Result;

fn load_config(args: &StoreArgs) -> Result<Config> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &args.data_dir {
        config.server.data_dir = dir.clone();
    }
    if let Some(url) = &args.store {
        config.store.url = Some(url.clone());
    }
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Flushes exported spans when dropped at the end of the program.
pub struct Telemetry(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Logs to stderr, filtered by `TRAINHUB_LOG` (default `level`: `info` for `serve`, `warn` for
/// the commands whose output is the point, so log lines do not interleave with it), coloured
/// only on a terminal; with an OTLP endpoint, spans (one per batch and stage: decode,
/// validate, commit) are exported there too.
pub fn init_logging(otlp: Option<&str>, level: &str) -> Result<Telemetry> {
    use opentelemetry::trace::TracerProvider as _;
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAINHUB_LOG")
        .unwrap_or_else(|_| format!("{level},sqlx=warn,h2=warn,tower=warn,lapin=warn").into());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let provider = match otlp {
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("trainhub")
                .build();
            Some(
                opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("trainhub")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(Telemetry(provider))
}

/// A command line that does not parse (sysexits' EX_USAGE), so that it never reads as one of
/// `import`'s refusal codes (2 and 3).
const USAGE: u8 = 64;

/// The whole program, for the `trainhub` binary (and the tests' copy of it): parses the
/// command line, runs it, and turns the result into the exit code.
pub async fn entry() -> std::process::ExitCode {
    use clap::Parser;
    let cli = match Cli::try_parse() {
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
    exit_code(&main(cli).await)
}

/// The program: logging (with OTLP traces when `serve`'s configuration names an endpoint),
/// then the command.
pub async fn main(cli: Cli) -> Result<()> {
    let otlp = match &cli.command {
        Command::Serve(args) => load_config(&args.store)
            .ok()
            .and_then(|c| c.telemetry.otlp_endpoint),
        _ => None,
    };
    let level = match &cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let _telemetry = init_logging(otlp.as_deref(), level)?;
    run(cli).await
}

/// `import` finished, but refused some records (exit code 2) or every one (exit code 3); the
/// summary and the rejects report say which and why.
#[derive(Debug, thiserror::Error)]
#[error("{refused} of {records} records were refused (see the summary and the rejects report)")]
pub struct Refused {
    /// Records refused.
    pub refused: u64,
    /// Records read.
    pub records: u64,
}

/// The process exit code of a command's result: 0 done, 2 some records refused, 3 all of them
/// refused, 1 any other failure (printed).
pub fn exit_code(result: &Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(r) if r.refused >= r.records => std::process::ExitCode::from(3),
            Some(_) => std::process::ExitCode::from(2),
            None => {
                // The message and its causes, one a line, each said once (a cause whose text
                // the line above already holds adds nothing); no backtrace for an operator.
                let mut said = e.to_string();
                eprintln!("Error: {said}");
                for cause in e.chain().skip(1) {
                    let text = cause.to_string();
                    if !said.contains(&text) {
                        eprintln!("  caused by: {text}");
                        said = text;
                    }
                }
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// Runs one command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let mut config = load_config(&args.store)?;
            if let Some(addr) = args.grpc_addr {
                config.server.grpc_addr = addr;
            }
            if let Some(addr) = args.http_addr {
                config.server.http_addr = addr;
            }
            let app = startup::Application::build(&config).await?;
            println!("trainhub {} listening", env!("CARGO_PKG_VERSION"));
            println!("  gRPC     {}", app.grpc_addr());
            println!(
                "  ops HTTP {} (the dashboard; /readyz, /metrics)",
                app.dashboard_url()
            );
            println!("  store    {}", startup::redact(&config.store_url()));
            println!(
                "  sealed   national IDs, names, records at rest: key {} ({})",
                app.keys().active(),
                startup::data_key_source(&config)
            );
            for c in &config.connectors {
                println!("  {:<8} {}", c.kind(), c.describe());
            }
            if let Some(url) = &config.events.url {
                println!(
                    "  events   dossier.changed → exchange {} on {}",
                    config.events.exchange,
                    startup::redact(url)
                );
            }
            if args.demo {
                demo::claim_store(app.store(), &config).await?;
                tokio::spawn(demo::run(
                    app.grpc_addr(),
                    app.dashboard_url(),
                    app.store().clone(),
                ));
            }
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Import(args) => crate::import::run(&load_config(&args.store)?, &args).await,
        Command::Migrate(args) => {
            let config = load_config(&args.store)?;
            // Only an embedded store lives in the data folder.
            if config.store.url.is_none() {
                std::fs::create_dir_all(&config.server.data_dir)?;
            }
            // Migrations read and write no personal data: no keyring is needed.
            let keys = trainhub_store::Keyring::generate("migrate");
            let store = trainhub_store::Store::connect(&config.store_url(), keys).await?;
            store.migrate().await?;
            println!("migrated {}", startup::redact(&config.store_url()));
            if args.rewrite {
                crate::keys::rewrite(&config).await?;
            }
            Ok(())
        }
        Command::Dossier(args) => report::dossier(&load_config(&args.store)?, &args).await,
        Command::Coverage(args) => {
            crate::feedback_cmd::coverage(&load_config(&args.store)?, &args).await
        }
        Command::Warnings(args) => {
            crate::feedback_cmd::warnings(&load_config(&args.store)?, &args).await
        }
        Command::AnnualForm(args) => {
            crate::feedback_cmd::annual_form(&load_config(&args.store)?, &args).await
        }
        Command::LrmxFill(args) => {
            crate::feedback_cmd::lrmx_fill(&load_config(&args.store)?, &args).await
        }
        Command::Audit(args) => crate::audit::run(&load_config(&args.store)?, &args).await,
        Command::Token => {
            let token = hex::encode(rand::random::<[u8; 32]>());
            println!("token        {token}");
            println!(
                "token_sha256 = \"{}\"",
                trainhub_api::auth::token_digest(&token)
            );
            eprintln!(
                "Give the token to its holder over a safe channel; configure only the digest."
            );
            Ok(())
        }
        Command::Key(args) => crate::keys::new_key(&args),
        Command::Review(command) => {
            let store = match &command {
                crate::cli::ReviewCommand::List(a) | crate::cli::ReviewCommand::Unmatched(a) => {
                    &a.store
                }
                crate::cli::ReviewCommand::Show(a) => &a.store,
                crate::cli::ReviewCommand::Resolve(a) => &a.store,
            };
            crate::review::run(&load_config(store)?, &command).await
        }
        Command::Submit(args) => crate::submit::run(&load_config(&args.store)?, &args).await,
        Command::Rekey(args) => crate::keys::rekey(&load_config(&args)?).await,
        Command::Status(args) => {
            let healthy = crate::status_cmd::run(&load_config(&args.store)?, &args).await?;
            if !healthy {
                // Scripts and probes read the exit code.
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Dlq(DlqCommand::List(args)) => dlq::list(&load_config(&args.store)?, &args).await,
        Command::Dlq(DlqCommand::Replay(args)) => {
            dlq::replay(&load_config(&args.store)?, &args).await
        }
    }
}
