//! `trainhub-bench ingest`: end-to-end ingest through `IngestService.Stream` (acknowledged =
//! committed) against two limits, for SQLite and PostgreSQL: the plain limit (the same records
//! once in one plain table, [`crate::plain`]) and the hub-layout limit (the same rows written
//! straight into the hub's own tables with batched multi-row `INSERT … ON CONFLICT`); with the
//! bytes the store holds per record once the projection has settled.

use crate::plain::{plain_limit, BenchStore};
use crate::IngestBenchArgs;
use anyhow::Result;
use futures::StreamExt;
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
    let mut backends = vec!["sqlite"];
    if !args.no_postgres {
        backends.push("postgres");
    }
    let mut rows = Vec::new();
    for backend in backends {
        rows.push(measure(backend, &args, &records, &dir.join(backend)).await?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "{:<9} {:>10} {:>12} {:>10} {:>9} {:>9} {:>11} {:>11}",
        "store",
        "hub rec/s",
        "layout rec/s",
        "plain r/s",
        "vs plain",
        "vs layout",
        "hub B/rec",
        "plain B/rec"
    );
    for m in &rows {
        println!(
            "{:<9} {:>10.0} {:>12.0} {:>10.0} {:>8.1}% {:>8.1}% {:>11.0} {:>11.0}",
            m.store,
            m.hub,
            m.layout,
            m.plain,
            100.0 * m.hub / m.plain,
            100.0 * m.hub / m.layout,
            m.hub_bytes,
            m.plain_bytes
        );
    }
    println!(
        "(hub: end to end through IngestService.Stream, acknowledged = committed, bytes after \
         the projection settled; layout: the same rows written straight into the hub's own \
         tables; plain: the same records once in one plain table; both limits write three \
         batches at once on PostgreSQL, as a hub stream commits)"
    );
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

/// One store's figures.
struct Measured {
    store: String,
    hub: f64,
    layout: f64,
    plain: f64,
    hub_bytes: f64,
    plain_bytes: f64,
}

/// The three legs on one backend, each on a fresh store.
async fn measure(
    backend: &str,
    args: &IngestBenchArgs,
    records: &[pb::Record],
    dir: &std::path::Path,
) -> Result<Measured> {
    let admin = &args.server.postgres;
    let store = BenchStore::fresh(backend, admin, dir.join("hub")).await?;
    let hub = through_hub(&store, records, args.batch).await;
    let hub_bytes = store.bytes().await.map(|b| b as f64 / records.len() as f64);
    if hub.is_ok() {
        store.print_tables(records.len()).await?;
    }
    if args.keep_database && store.is_postgres() {
        println!("  kept the database {}", store.url);
    } else {
        store.drop().await;
    }
    let (hub, hub_bytes) = (hub?, hub_bytes?);
    println!("{backend}: hub end to end {hub:.0} records/s, {hub_bytes:.0} B stored per record");
    let store = BenchStore::fresh(backend, admin, dir.join("layout")).await?;
    let layout = layout_limit(&store.url, records, args.batch).await;
    store.drop().await;
    let layout = layout?;
    println!("{backend}: hub layout written directly {layout:.0} records/s");
    let store = BenchStore::fresh(backend, admin, dir.join("plain")).await?;
    let plain = plain_limit(&store, records, args.batch).await;
    store.drop().await;
    let (plain, plain_bytes) = plain?;
    println!("{backend}: plain table {plain:.0} rows/s, {plain_bytes:.0} B stored per row");
    Ok(Measured {
        store: backend.to_owned(),
        hub,
        layout,
        plain,
        hub_bytes,
        plain_bytes,
    })
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

/// Streams `records` through a hub on `store`; records/s. The hub runs on until its
/// projection has settled (nothing waits for the projector), so the store's bytes afterwards
/// are those of a settled store.
async fn through_hub(store: &BenchStore, records: &[pb::Record], batch: usize) -> Result<f64> {
    let (addr, (stop_tx, server)) = start_hub(&store.url, store.dir()).await?;
    let tidies = store.tidies().await?;
    let rate = stream_all(addr, records, batch).await?;
    let watch = Store::connect(&store.url, trainhub_store::Keyring::generate("bench")).await?;
    let started = Instant::now();
    while watch.dirty_count().await? > 0 {
        anyhow::ensure!(
            started.elapsed().as_secs() < 1800,
            "the projection did not settle within 30 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    println!(
        "  projection settled {:.1} s after the last acknowledgement",
        started.elapsed().as_secs_f64()
    );
    watch.close().await;
    // The projector tidies its tables once the burst is over.
    if store.is_postgres() {
        crate::dossier::tidied(store, tidies).await?;
    } else {
        let settled = Instant::now();
        while store.free_pages().await? > 1024 && settled.elapsed().as_secs() < 30 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        println!(
            "  {} free pages in the database file {:.1} s after the settling",
            store.free_pages().await?,
            settled.elapsed().as_secs_f64()
        );
    }
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
    let requests: Vec<pb::SubmitRequest> = records
        .chunks(batch)
        .map(|c| pb::SubmitRequest {
            records: c.to_vec(),
        })
        .collect();
    stream_requests(addr, tokio_stream::iter(requests), records.len()).await
}

/// Streams `requests` over one `IngestService.Stream` call and waits for every outcome;
/// records/s from the first request to the last acknowledgement.
pub(crate) async fn stream_requests(
    addr: std::net::SocketAddr,
    requests: impl tokio_stream::Stream<Item = pb::SubmitRequest> + Send + 'static,
    expected: usize,
) -> Result<f64> {
    let mut client = IngestServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let started = Instant::now();
    let mut responses = client.stream(requests).await?.into_inner();
    let mut acknowledged = 0usize;
    while let Some(resp) = responses.message().await? {
        acknowledged += resp.outcomes.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        acknowledged == expected,
        "only {acknowledged} of {expected} acknowledged"
    );
    Ok(expected as f64 / elapsed)
}

/// The hub's own layout written directly: the same rows into the same tables with batched
/// multi-row `INSERT … ON CONFLICT`, sealing included; records/s.
async fn layout_limit(url: &str, records: &[pb::Record], batch: usize) -> Result<f64> {
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
    // As many batches at once as a hub stream commits.
    let unique: Vec<Vec<PreparedRecord>> = prepared
        .chunks(batch)
        .map(|chunk| {
            // Within one statement a key may appear once; a batch of the shuffled set rarely
            // repeats one, and when it does the first occurrence stands for it.
            let mut seen = std::collections::HashSet::new();
            chunk
                .iter()
                .filter(|r| seen.insert((&r.source.system, r.source.kind, &r.source.record_id)))
                .cloned()
                .collect()
        })
        .collect();
    let mut writes = futures::stream::iter(unique.iter())
        .map(|chunk| store.insert_direct("bench", chunk))
        .buffer_unordered(crate::plain::AT_ONCE);
    while let Some(written) = writes.next().await {
        written?;
    }
    drop(writes);
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
