//! `trainhub-bench dossier`: a large population on PostgreSQL. Reports the load (ingest rate,
//! the projection backlog it leaves and how fast that drains), the database size, coverage
//! at once and after the drain, `GetDossier` latency (p50/p99 over random requests), one
//! unit's `ListDossiers`, and peak RSS; with `--compare-records-per-person`, the ingest rate of
//! the same people at another number of records each.

use crate::ingest::{peak_rss_kib, start_hub, stream_requests, tempfile_dir};
use crate::load;
use crate::plain::BenchStore;
use crate::DossierBenchArgs;
use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::time::{Duration, Instant};
use trainhub_connectors::synthetic;
use trainhub_proto::v1::{self as pb, dossier_service_client::DossierServiceClient};

type Client = DossierServiceClient<tonic::transport::Channel>;

/// Runs the benchmark and prints its figures.
pub async fn run(args: DossierBenchArgs) -> Result<()> {
    if let Some(dir) = &args.reads_on {
        return reads_again(dir, &args).await;
    }
    let compared = match args.compare_records_per_person {
        Some(per_person) => Some((per_person, load_only(&args, per_person).await?)),
        None => None,
    };
    let store = BenchStore::fresh("postgres", &args.server.postgres, tempfile_dir()?).await?;
    let result = async {
        let file = store.dir().join("load.bin");
        let load = load::write(&file, args.people, args.records_per_person, 1000)?;
        println!(
            "bench dossier: {} people, {} records ({} per person) on PostgreSQL",
            args.people, load.records, args.records_per_person
        );
        measure(&store, &file, &load, &args).await
    }
    .await;
    if args.keep_database {
        let _ = std::fs::remove_file(store.dir().join("load.bin"));
        std::fs::write(store.dir().join(KEPT_URL), &store.url)?;
        println!(
            "kept the database {} and its data folder (finish or measure it again with \
             --reads-on {})",
            store.url,
            store.dir().display()
        );
    } else {
        let _ = std::fs::remove_dir_all(store.dir());
        store.drop().await;
    }
    let rate = result?;
    if let Some((per_person, other)) = compared {
        println!(
            "ingest at {} records per person: {rate:.0} records/s; at {per_person}: {other:.0} \
             records/s; ratio {:.1}%",
            args.records_per_person,
            100.0 * rate / other
        );
    }
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

/// The file in a kept data folder that names its database.
const KEPT_URL: &str = "database.url";

/// The rest of [`measure`] on a database a run with `--keep-database` left in `dir`: a hub on
/// it drains what still waits for the projector, then the sizes and the reads.
async fn reads_again(dir: &std::path::Path, args: &DossierBenchArgs) -> Result<()> {
    let url = std::fs::read_to_string(dir.join(KEPT_URL)).with_context(|| {
        format!(
            "{} holds no {KEPT_URL}: give the data folder a run with --keep-database printed",
            dir.display()
        )
    })?;
    let store = BenchStore::kept(url.trim(), dir.to_owned());
    let persons = load::sample(args.people);
    // The hub applies the release's migrations before the raw log is counted.
    let (addr, (stop, server)) = start_hub(&store.url, dir).await?;
    let records = store.records().await?;
    println!(
        "bench dossier on the kept database: {} people, {records} records",
        args.people
    );
    let mut client = DossierServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(256 << 20);
    settle(&store, &mut client, records, args.people).await?;
    reads(&mut client, &persons, args).await?;
    let _ = stop.send(());
    server.await??;
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

/// Loads the people with `n` records each on a fresh database; records/s.
async fn load_only(args: &DossierBenchArgs, n: usize) -> Result<f64> {
    let store = BenchStore::fresh("postgres", &args.server.postgres, tempfile_dir()?).await?;
    let leg = async {
        let file = store.dir().join("load.bin");
        let load = load::write(&file, args.people, n, 1000)?;
        let (addr, (stop, server)) = start_hub(&store.url, store.dir()).await?;
        let rate = stream_requests(addr, load::read(&file)?, load.records).await?;
        println!(
            "load at {n} records per person: {} records, {rate:.0} records/s",
            load.records
        );
        let _ = stop.send(());
        server.await??;
        anyhow::Ok(rate)
    };
    let result = leg.await;
    let _ = std::fs::remove_dir_all(store.dir());
    store.drop().await;
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn coverage_request(wait: bool) -> tonic::Request<pb::CoverageRequest> {
    let mut request = tonic::Request::new(pb::CoverageRequest {
        purpose: "benchmark".into(),
        group_by: "unit".into(),
        wait_for_projection: wait,
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(80));
    request
}

/// Loads the records and measures the reads; the ingest rate.
async fn measure(
    store: &BenchStore,
    file: &std::path::Path,
    load: &load::Load,
    args: &DossierBenchArgs,
) -> Result<f64> {
    let (records, persons) = (load.records, &load.sample);
    let (addr, (stop, server)) = start_hub(&store.url, store.dir()).await?;
    let started = Instant::now();
    let rate = stream_requests(addr, load::read(file)?, records).await?;
    let load = started.elapsed();
    println!(
        "load: {:.1} s, {rate:.0} records/s (acknowledged = committed)",
        load.as_secs_f64()
    );
    // The RED list of a large population is several MiB.
    let mut client = DossierServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(256 << 20);
    let asked = Instant::now();
    let report = client
        .get_coverage(coverage_request(false))
        .await?
        .into_inner();
    println!(
        "GetCoverage by unit right after the load (answers at once): {:.2} s, {} persons waiting",
        asked.elapsed().as_secs_f64(),
        report.waiting
    );
    settle(store, &mut client, records, args.people).await?;
    reads(&mut client, persons, args).await?;
    let _ = stop.send(());
    server.await??;
    Ok(rate)
}

/// Drains the projection backlog, waits for the tidy after it, and prints the sizes.
async fn settle(
    store: &BenchStore,
    client: &mut Client,
    records: usize,
    people: usize,
) -> Result<()> {
    let waiting = client
        .get_coverage(coverage_request(false))
        .await?
        .into_inner()
        .waiting;
    let tidies = store.tidies().await?;
    drain(client, waiting, records, people).await?;
    // The projector tidies after a burst it drained; with nothing waiting there is none.
    if waiting > 0 {
        tidied(store, tidies).await?;
    }
    let bytes = store.bytes().await?;
    println!(
        "database size: {:.1} MiB, {:.0} B per record",
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / records as f64
    );
    store.print_tables(records).await
}

/// Waits up to five minutes for the state and mark tables to be vacuumed after the drain (the
/// projector tidies them once a burst is over), so the sizes printed next are the settled ones
/// and the reads measured after do not share the server with a vacuum of a burst's marks.
pub(crate) async fn tidied(store: &BenchStore, before: i64) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(300) {
        if store.tidies().await? > before {
            println!(
                "state and mark tables vacuumed {:.1} s after the drain",
                started.elapsed().as_secs_f64()
            );
            // The emptied mark table is truncated right after its vacuum, unless in use.
            let vacuumed = Instant::now();
            while vacuumed.elapsed() < std::time::Duration::from_secs(5)
                && store.mark_index_bytes().await? > 1 << 20
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    println!("state and mark tables not vacuumed within 300 s of the drain");
    Ok(())
}

/// Waits (calls that wait for the projector) until nobody waits; prints the drain rate.
async fn drain(client: &mut Client, backlog: i64, records: usize, people: usize) -> Result<()> {
    let started = Instant::now();
    let mut unavailable = 0;
    loop {
        match client.get_coverage(coverage_request(true)).await {
            Ok(_) => break,
            Err(s) if s.code() == tonic::Code::DeadlineExceeded => {
                unavailable = 0;
                println!("  … {}", s.message());
            }
            // The hub's answer for "busy, try again": its pool had no connection free in time.
            // Two minutes of it in a row is a hub that is down, not busy.
            Err(s) if s.code() == tonic::Code::Unavailable && unavailable < 120 => {
                unavailable += 1;
                println!("  … unavailable, retrying in 1 s: {}", s.message());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(s) => return Err(s.into()),
        }
    }
    let took = started.elapsed().as_secs_f64().max(1e-3);
    let per_person = records as f64 / people as f64;
    println!(
        "projection backlog of {backlog} persons drained in {took:.1} s: {:.0} persons/s \
         (≈ {:.0} records/s at {per_person:.1} records per person)",
        backlog as f64 / took,
        backlog as f64 * per_person / took
    );
    Ok(())
}

/// Coverage, `GetDossier` and one unit's listing, once the projection has caught up.
async fn reads(
    client: &mut Client,
    persons: &[synthetic::SynthPerson],
    args: &DossierBenchArgs,
) -> Result<()> {
    let mut coverage = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        client.get_coverage(coverage_request(false)).await?;
        coverage.push(started.elapsed());
    }
    coverage.sort();
    println!(
        "GetCoverage by unit over {} people: median {:.1} ms (5 calls)",
        args.people,
        percentile(&coverage, 0.5).as_secs_f64() * 1e3
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut latencies = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let p = persons.choose(&mut rng).expect("people");
        let started = Instant::now();
        client
            .get_dossier(pb::GetDossierRequest {
                national_id: p.national_id.clone(),
                purpose: "benchmark".into(),
                ..Default::default()
            })
            .await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "GetDossier over {} random requests: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.requests,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().expect("requests").as_secs_f64() * 1e3
    );
    let unit = persons[0].unit_code.clone();
    let started = Instant::now();
    let mut stream = client
        .list_dossiers(pb::ListDossiersRequest {
            purpose: "benchmark".into(),
            filter: Some(pb::DossierFilter {
                unit_code: unit.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut listed = 0;
    while stream.message().await?.is_some() {
        listed += 1;
    }
    println!(
        "ListDossiers of unit {unit}: {listed} dossiers in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
