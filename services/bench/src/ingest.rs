//! `trainhub-bench ingest`: end-to-end ingest through `IngestService.Stream` (acknowledged =
//! committed) against the raw store limit (the same rows written straight into the same tables
//! with batched multi-row `INSERT … ON CONFLICT`), for SQLite and PostgreSQL.

use crate::IngestBenchArgs;
use anyhow::{Context, Result};
use std::time::Instant;
use trainhub::config::Config;
use trainhub::startup::Application;
use trainhub_connectors::synthetic;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::convert;
use trainhub_proto::v1::{self as pb, ingest_service_client::IngestServiceClient};
use trainhub_store::{PreparedRecord, Store};

/// Runs the ingest benchmark and prints its figures.
pub async fn run(args: IngestBenchArgs) -> Result<()> {
    let records = generate(args.records);
    println!(
        "bench: {} synthetic records (persons, events, links, classes, enrollments, attendance, \
         results, evaluations, online learning), batches of {}",
        records.len(),
        args.batch
    );
    let dir = tempfile_dir()?;
    let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
    let sqlite_raw = format!("sqlite://{}", dir.join("bench-raw.db").display());
    let mut rows = vec![measure("sqlite", &sqlite, &sqlite_raw, &records, args.batch, &dir).await?];
    if !args.no_postgres {
        let suffix = format!("{:08x}", rand::random::<u32>());
        let (hub_db, raw_db) = (
            format!("trainhub_bench_{suffix}"),
            format!("trainhub_bench_raw_{suffix}"),
        );
        let hub_url = trainhub_store::create_postgres_database(&args.server.postgres, &hub_db)
            .await
            .context("creating the benchmark database (use --no-postgres to skip)")?;
        let raw_url =
            trainhub_store::create_postgres_database(&args.server.postgres, &raw_db).await?;
        let result = measure("postgres", &hub_url, &raw_url, &records, args.batch, &dir).await;
        for db in [&hub_db, &raw_db] {
            let _ = trainhub_store::drop_postgres_database(&args.server.postgres, db).await;
        }
        rows.push(result?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "{:<10} {:>14} {:>14} {:>8}",
        "store", "hub rec/s", "raw rec/s", "ratio"
    );
    for (store, hub, raw) in &rows {
        println!(
            "{store:<10} {hub:>14.0} {raw:>14.0} {:>7.1}%",
            100.0 * hub / raw
        );
    }
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

pub(crate) fn generate(n: usize) -> Vec<pb::Record> {
    // About 14 records per person; generate a little more than needed and cut.
    let mut records = synthetic::population(42, n / 12 + 1).records;
    records.truncate(n);
    synthetic::shuffle(&mut records, 42);
    records
}

pub(crate) fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("trainhub-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn measure(
    label: &str,
    hub_url: &str,
    raw_url: &str,
    records: &[pb::Record],
    batch: usize,
    dir: &std::path::Path,
) -> Result<(String, f64, f64)> {
    let hub = through_hub(hub_url, records, batch, &dir.join(label)).await?;
    println!("{label}: hub end to end {hub:.0} records/s");
    let raw = raw_limit(raw_url, records, batch).await?;
    println!("{label}: raw store limit {raw:.0} records/s");
    Ok((label.to_owned(), hub, raw))
}

/// A stop switch and the join handle of a hub started for a benchmark.
pub(crate) type RunningHub = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<()>>,
);

/// Starts a hub on `url` with gRPC on a free loopback port.
pub(crate) async fn start_hub(
    url: &str,
    data_dir: &std::path::Path,
) -> Result<(std::net::SocketAddr, RunningHub)> {
    let (grpc, _, running) = start_hub_http(url, data_dir).await?;
    Ok((grpc, running))
}

/// Starts a hub on `url` with gRPC and ops HTTP on free loopback ports: (gRPC, HTTP, hub).
pub(crate) async fn start_hub_http(
    url: &str,
    data_dir: &std::path::Path,
) -> Result<(std::net::SocketAddr, std::net::SocketAddr, RunningHub)> {
    let mut config = Config::load(None, std::iter::empty())?;
    config.server.grpc_addr = "127.0.0.1:0".parse()?;
    config.server.http_addr = "127.0.0.1:0".parse()?;
    config.server.data_dir = data_dir.to_owned();
    config.store.url = Some(url.to_owned());
    let app = Application::build(&config).await?;
    let (grpc, http) = (app.grpc_addr(), app.http_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    Ok((grpc, http, (stop_tx, server)))
}

async fn through_hub(
    url: &str,
    records: &[pb::Record],
    batch: usize,
    data_dir: &std::path::Path,
) -> Result<f64> {
    let (addr, (stop_tx, server)) = start_hub(url, data_dir).await?;
    let rate = stream_all(addr, records, batch).await?;
    let _ = stop_tx.send(());
    server.await??;
    Ok(rate)
}

/// Streams `records` to a hub at `addr` in batches; returns records/s (acknowledged =
/// committed).
pub(crate) async fn stream_all(
    addr: std::net::SocketAddr,
    records: &[pb::Record],
    batch: usize,
) -> Result<f64> {
    let mut client = IngestServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let requests: Vec<pb::SubmitRequest> = records
        .chunks(batch)
        .map(|c| pb::SubmitRequest {
            records: c.to_vec(),
        })
        .collect();
    let started = Instant::now();
    let mut responses = client
        .stream(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut acknowledged = 0usize;
    while let Some(resp) = responses.message().await? {
        acknowledged += resp.outcomes.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        acknowledged == records.len(),
        "only {acknowledged} of {} acknowledged",
        records.len()
    );
    Ok(records.len() as f64 / elapsed)
}

async fn raw_limit(url: &str, records: &[pb::Record], batch: usize) -> Result<f64> {
    // Sealing stays in the measured work, as the hub seals too.
    let store = Store::connect(url, trainhub_store::Keyring::generate("bench")).await?;
    store.migrate().await?;
    let keyer = PersonKeyer::new(b"benchmark secret");
    // Rows are prepared before the clock starts: this measures the database alone.
    let prepared: Vec<PreparedRecord> = records
        .iter()
        .filter_map(|r| {
            let c = convert::canonical(r, &keyer).ok()?;
            Some(PreparedRecord::new(
                &c,
                prost::Message::encode_to_vec(r),
                "",
            ))
        })
        .collect();
    let started = Instant::now();
    for chunk in prepared.chunks(batch) {
        // Within one statement a key may appear once; a batch of the shuffled set rarely
        // repeats one, and when it does the first occurrence stands for it.
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<PreparedRecord> = chunk
            .iter()
            .filter(|r| seen.insert((&r.source.system, r.source.kind, &r.source.record_id)))
            .cloned()
            .collect();
        store.insert_direct("bench", &unique).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    store.close().await;
    Ok(prepared.len() as f64 / elapsed)
}

/// Peak resident set size of this process, in KiB (Linux `VmHWM`).
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
