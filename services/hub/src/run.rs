//! Running a parsed command line: what the `trainhub` binary does, in the library so tests can
//! build the same program.

use crate::cli::{Cli, Command, DlqCommand, StoreArgs};
use crate::config::{Config, ConnectorConfig};
use crate::{bench, demo, dlq, report, startup};
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

/// Logs to stderr, filtered by `TRAINHUB_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAINHUB_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,h2=warn,tower=warn,lapin=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
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
            println!("  ops HTTP http://{}/healthz", app.http_addr());
            println!("  store    {}", startup::redact(&config.store_url()));
            for c in &config.connectors {
                match c {
                    ConnectorConfig::Amqp(a) => println!(
                        "  amqp     {} ← queue {} (system {}, {})",
                        a.name,
                        a.queue(),
                        a.system,
                        a.format
                    ),
                }
            }
            if let Some(url) = &config.events.url {
                println!(
                    "  events   dossier.changed → exchange {} on {}",
                    config.events.exchange,
                    startup::redact(url)
                );
            }
            if args.demo {
                tokio::spawn(demo::run(app.grpc_addr()));
            }
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate(args) => {
            let config = load_config(&args)?;
            std::fs::create_dir_all(&config.server.data_dir)?;
            let store = trainhub_store::Store::connect(&config.store_url()).await?;
            store.migrate().await?;
            println!("migrated {}", startup::redact(&config.store_url()));
            Ok(())
        }
        Command::Bench(args) => bench::run(args).await,
        Command::Dossier(args) => report::dossier(&load_config(&args.store)?, &args).await,
        Command::Coverage(args) => report::coverage(&load_config(&args.store)?, &args).await,
        Command::Dlq(DlqCommand::List(args)) => dlq::list(&load_config(&args.store)?, &args).await,
        Command::Dlq(DlqCommand::Replay(args)) => {
            dlq::replay(&load_config(&args.store)?, &args).await
        }
    }
}
