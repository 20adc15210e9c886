//! `trainhub-bench dossier`: a large population on PostgreSQL, then `GetDossier` latency
//! (p50/p99 over random requests) and `GetCoverage` time grouped by unit.

use crate::ingest::{peak_rss_kib, start_hub, stream_all, tempfile_dir};
use crate::DossierBenchArgs;
use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::time::{Duration, Instant};
use trainhub_connectors::synthetic;
use trainhub_proto::v1::{self as pb, dossier_service_client::DossierServiceClient};

/// Runs the benchmark and prints its figures.
pub async fn run(args: DossierBenchArgs) -> Result<()> {
    let population = synthetic::population(7, args.people);
    let mut records = population.records;
    pad(
        &mut records,
        &population.persons,
        args.people * args.records_per_person,
    );
    synthetic::shuffle(&mut records, 7);
    println!(
        "bench dossier: {} people, {} records ({:.1} per person) on PostgreSQL",
        args.people,
        records.len(),
        records.len() as f64 / args.people as f64
    );
    let db = format!("trainhub_bench_dossier_{:08x}", rand::random::<u32>());
    let url = trainhub_store::create_postgres_database(&args.server.postgres, &db)
        .await
        .context("creating the benchmark database")?;
    let dir = tempfile_dir()?;
    let result = measure(&url, &records, &population.persons, &args, &dir).await;
    let _ = trainhub_store::drop_postgres_database(&args.server.postgres, &db).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

/// Adds online study by national ID until `target` records exist.
fn pad(records: &mut Vec<pb::Record>, persons: &[synthetic::SynthPerson], target: usize) {
    let mut n = 0;
    while records.len() < target {
        let p = &persons[n % persons.len()];
        records.push(pb::Record {
            source: Some(pb::SourceRef {
                system: synthetic::ELEARNING.into(),
                kind: "learning".into(),
                record_id: format!("PAD-{n}"),
                version: 1,
            }),
            deleted: false,
            body: Some(pb::record::Body::Learning(pb::Learning {
                person_ref: Some(pb::PersonRef {
                    national_id: p.national_id.clone(),
                    ..Default::default()
                }),
                course_id: format!("PAD-{}", n % 300),
                course_title: "专题网课".into(),
                themes: vec!["knowledge".into()],
                minutes: 90.0,
                hours: 0.0,
                completed_at: format!("2025-0{}-15T20:00:00+08:00", 1 + n % 9),
            })),
        });
        n += 1;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(
    url: &str,
    records: &[pb::Record],
    persons: &[synthetic::SynthPerson],
    args: &DossierBenchArgs,
    dir: &std::path::Path,
) -> Result<()> {
    let (addr, (stop, server)) = start_hub(url, dir).await?;
    let rate = stream_all(addr, records, 1000).await?;
    println!("ingest: {rate:.0} records/s (acknowledged = committed)");
    // The RED list of a large population is several MiB.
    let mut client = DossierServiceClient::connect(format!("http://{addr}"))
        .await?
        .max_decoding_message_size(256 << 20);

    // The first coverage call waits for the projection to catch up with ingest.
    let started = Instant::now();
    let report = client
        .get_coverage(pb::CoverageRequest {
            purpose: "benchmark".into(),
            group_by: "unit".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!(
        "GetCoverage by unit, first call (drains the projection backlog): {:.2} s, {} groups",
        started.elapsed().as_secs_f64(),
        report.groups.len()
    );
    let mut coverage = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        client
            .get_coverage(pb::CoverageRequest {
                purpose: "benchmark".into(),
                group_by: "unit".into(),
                ..Default::default()
            })
            .await?;
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
    let _ = stop.send(());
    server.await??;
    Ok(())
}
