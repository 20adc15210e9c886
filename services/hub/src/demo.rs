//! `serve --demo`: three simulated partner systems stream a synthetic population, with a few
//! deliberately bad records and one case of each identity conflict, through the real gRPC
//! ingest path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use trainhub_connectors::synthetic;
use trainhub_proto::v1::{
    self as pb, dossier_service_client::DossierServiceClient,
    ingest_service_client::IngestServiceClient,
};

const PEOPLE: usize = 300;

/// Lets the demo run only on an empty store or one the demo made (marked so), never into a
/// store holding other records: it writes 300 synthetic people into whatever it is given.
pub async fn claim_store(
    store: &trainhub_store::Store,
    config: &crate::config::Config,
) -> anyhow::Result<()> {
    if !store.demo_allowed().await? {
        anyhow::bail!(
            "refusing --demo: store {} holds records the demo did not make, and the demo would \
             add 300 synthetic people to them. Run the demo on a data folder of its own, e.g. \
             `trainhub serve --demo --data-dir ./trainhub-demo` (with no --config or --store).",
            crate::startup::redact(&config.store_url())
        );
    }
    store.mark_demo().await?;
    Ok(())
}

/// Feeds the demo data set to the hub at `addr` and prints what happened; `dashboard` is the
/// ops port's address.
pub async fn run(addr: SocketAddr, dashboard: String, store: trainhub_store::Store) {
    if let Err(e) = feed(addr, &dashboard, &store).await {
        tracing::error!(error = %e, "Demo feed failed.");
    }
}

async fn feed(
    addr: SocketAddr,
    dashboard: &str,
    store: &trainhub_store::Store,
) -> anyhow::Result<()> {
    let population = synthetic::population(2026, PEOPLE);
    let mut records = population.records.clone();
    records.extend(synthetic::bad_records(&population.persons[0].national_id));
    // The persons of the sample appointment forms, so `lrmx-fill` has lines to write.
    records.extend(synthetic::form_people());
    let review = synthetic::review_cases(&population);
    let planted = review.len();
    records.extend(review);
    synthetic::shuffle(&mut records, 7);
    let total = records.len();
    let mut client = IngestServiceClient::connect(format!("http://{addr}")).await?;
    let requests: Vec<pb::SubmitRequest> = records
        .chunks(200)
        .map(|c| pb::SubmitRequest {
            records: c.to_vec(),
        })
        .collect();
    let mut responses = client
        .stream(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    while let Some(resp) = responses.message().await? {
        for o in resp.outcomes {
            let status = pb::RecordStatus::try_from(o.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("RECORD_STATUS_")
                        .to_owned()
                })
                .unwrap_or_default();
            *by_status.entry(status).or_default() += 1;
            if !o.reason_code.is_empty() {
                *reasons.entry(o.reason_code).or_default() += 1;
            }
        }
    }
    println!(
        "demo: {PEOPLE} people, {total} records from {}, {}, {}; as they arrived:",
        synthetic::HR,
        synthetic::SCHOOL,
        synthetic::ELEARNING
    );
    for (status, n) in &by_status {
        println!("  {status:<11} {n}");
    }
    for (reason, n) in &reasons {
        println!("  rejected: {reason} × {n}");
    }
    let (open, waiting) = review_queue(addr, store).await?;
    if by_status.contains_key("PARKED") {
        println!(
            "demo: {waiting} records still wait for their person or account link (the others \
             parked on arrival have joined their dossiers)"
        );
    }
    println!(
        "demo: {open} identity conflicts wait for review (planted: {planted}, one of each kind, \
         from a second HR system {}): trainhub review list",
        synthetic::CITY_HR
    );
    let mut dossiers = DossierServiceClient::connect(format!("http://{addr}")).await?;
    let national_id = population.persons[1].national_id.clone();
    let sample = dossiers
        .get_dossier(pb::GetDossierRequest {
            national_id: national_id.clone(),
            purpose: "demo".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    println!("demo: dashboard    {dashboard}");
    println!(
        "demo: coverage map {dashboard}coverage?purpose=demo  (数字图谱: persons of {} \
         cadre-management authorities, {})",
        synthetic::AUTHORITIES.len(),
        synthetic::AUTHORITIES.join(", ")
    );
    println!(
        "demo: sample dossier ({} trainings, {} 学时 credited), in a second terminal:",
        sample.trainings.len(),
        sample.credited_hours
    );
    println!("  trainhub dossier {national_id} --purpose demo");
    Ok(())
}

/// The review queue once the projector has caught up with the feed (at most a minute): open
/// conflicts and records still waiting.
async fn review_queue(
    addr: SocketAddr,
    store: &trainhub_store::Store,
) -> anyhow::Result<(usize, usize)> {
    use pb::review_service_client::ReviewServiceClient;
    for _ in 0..120 {
        if store.dirty_count().await? == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let mut review = ReviewServiceClient::connect(format!("http://{addr}")).await?;
    let open = review
        .list_conflicts(pb::ListConflictsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .conflicts
        .len();
    let waiting = crate::review::all_unmatched(&mut review, None).await?.len();
    Ok((open, waiting))
}
