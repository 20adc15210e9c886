//! Database outages (issue 17): while partners ingest over gRPC and AMQP, the hub's PostgreSQL
//! connections are killed again and again (`pg_terminate_backend`), then PostgreSQL itself is
//! stopped for 15 s and started again. Afterwards every record is stored exactly once, every
//! outcome the hub answered was true, no AMQP message was acknowledged before its commit (none
//! is missing and none was dead-lettered), and `/readyz` said 503 while the store was down.
//!
//! It stops the machine's PostgreSQL cluster, which is why it is a test binary of its own (no
//! other test runs meanwhile), and it starts it again even when it fails midway.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trainhub_connectors::status::State;
use trainhub_connectors::synthetic::{self, HR};
use trainhub_proto::v1 as pb;
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{http_get, key, postgres_admin_url, stored_keys, Backend, TestHub, TestStore};

/// `pg_ctlcluster <version> main <action>` for the machine's cluster.
fn pg_ctl(action: &str) -> bool {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a PostgreSQL cluster under /etc/postgresql");
    let mut command = std::process::Command::new("pg_ctlcluster");
    command.args(["--skip-systemctl-redirect", &version, "main", action]);
    if action == "stop" {
        command.args(["-m", "fast"]);
    }
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts PostgreSQL again even when the test fails midway.
struct StartOnDrop;

impl Drop for StartOnDrop {
    fn drop(&mut self) {
        let _ = pg_ctl("start");
    }
}

/// Submits `records` in batches of `batch`, each retried until the hub answers it; every
/// answer the hub gave (`ACCEPTED`, `DUPLICATE`, …) per record key, and how often a batch was
/// refused as unavailable.
async fn submit_through(
    hub: std::net::SocketAddr,
    records: Vec<pb::Record>,
    batch: usize,
    refused: Arc<AtomicU32>,
) -> Vec<((String, String, String), String)> {
    let mut answers = Vec::new();
    for chunk in records.chunks(batch) {
        loop {
            let client =
                pb::ingest_service_client::IngestServiceClient::connect(format!("http://{hub}"));
            let reply = match client.await {
                Ok(mut c) => {
                    c.submit(pb::SubmitRequest {
                        records: chunk.to_vec(),
                    })
                    .await
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            match reply {
                Ok(r) => {
                    for (record, o) in chunk.iter().zip(r.into_inner().outcomes) {
                        let status = o.status().as_str_name().to_owned();
                        answers.push((key(record), status));
                    }
                    break;
                }
                Err(status) => {
                    assert_eq!(
                        status.code(),
                        tonic::Code::Unavailable,
                        "a store outage is answered as unavailable: {status:?}"
                    );
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    answers
}

/// Kills every connection to `db` but its own, every 300 ms, until `stop`.
async fn terminate_backends(db: String, stop: Arc<AtomicBool>) -> u32 {
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_admin_url())
        .await
        .expect("admin connection");
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        let killed = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db)
        .fetch_all(&admin)
        .await;
        if killed.is_ok_and(|rows| !rows.is_empty()) {
            rounds += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_rides_out_killed_connections_and_a_postgres_restart() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let db = test_store
        .url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mut feed = Feed::new(100);
    feed.connectors.truncate(1);
    feed.connectors[0].fail_after_seconds = 3;
    feed.declare(&broker).await.unwrap();
    let configs = feed.configs();
    let hub = TestHub::start_with(test_store, |c| c.connectors = configs).await;
    let records: Vec<pb::Record> = synthetic::population(53, 600)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .collect();
    let (over_amqp, over_grpc) = records.split_at(records.len() / 2);
    let (grpc_killed, grpc_restart) = over_grpc.split_at(over_grpc.len() / 2);
    let (amqp_killed, amqp_restart) = over_amqp.split_at(over_amqp.len() / 2);
    let refused = Arc::new(AtomicU32::new(0));

    // 1. Connections killed again and again while both paths ingest.
    let stop = Arc::new(AtomicBool::new(false));
    let killer = tokio::spawn(terminate_backends(db.clone(), stop.clone()));
    broker
        .publish_all("trainhub.in", &feed.messages(amqp_killed))
        .await
        .unwrap();
    let mut answers =
        submit_through(hub.grpc_addr, grpc_killed.to_vec(), 20, refused.clone()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = killer.await.unwrap();
    assert!(rounds > 0, "connections were killed");

    // 2. PostgreSQL stopped for 15 s while records keep coming over both paths.
    let restart = StartOnDrop;
    assert!(pg_ctl("stop"), "PostgreSQL stops");
    let down = std::time::Instant::now();
    broker
        .publish_all("trainhub.in", &feed.messages(amqp_restart))
        .await
        .unwrap();
    let grpc = tokio::spawn(submit_through(
        hub.grpc_addr,
        grpc_restart.to_vec(),
        20,
        refused.clone(),
    ));
    let (mut not_ready, mut degraded) = (0, false);
    while down.elapsed() < Duration::from_secs(15) {
        if let Ok((503, _)) = http_get(hub.http_addr, "/readyz").await {
            not_ready += 1;
        }
        degraded |= matches!(hub.statuses[0].state(), State::Degraded | State::Failed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(not_ready > 0, "/readyz says 503 while the store is down");
    assert!(degraded, "the AMQP connector knows its store is away");
    assert!(pg_ctl("start"), "PostgreSQL starts again");
    drop(restart);
    answers.extend(grpc.await.unwrap());
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "gRPC answered the outage as unavailable, never OK"
    );

    // Everything lands once the store is back, each record once.
    let want: HashSet<_> = records.iter().map(key).collect();
    let landed = wait_for(Duration::from_secs(120), || async {
        stored_keys(&hub.store).await.len() >= want.len()
    })
    .await;
    let stored = stored_keys(&hub.store).await;
    assert!(landed, "{} of {} records stored", stored.len(), want.len());
    assert_eq!(
        stored, want,
        "every record stored, none twice, nothing else"
    );
    // Every answer was true: what the hub said it stored is there.
    for (k, status) in &answers {
        assert_ne!(status, "RECORD_STATUS_REJECTED", "{k:?} refused");
        assert!(stored.contains(k), "{k:?} answered {status} but missing");
    }
    assert_eq!(answers.len(), over_grpc.len(), "every gRPC record answered");
    // No AMQP message was acknowledged before its commit: none is missing (above) and none was
    // refused; the queue is drained.
    let dead = trainhub_tests::count(&hub.store, "SELECT COUNT(*) AS n FROM dead_letters").await;
    assert_eq!(dead, 0, "nothing dead-lettered");
    let drained = wait_for(Duration::from_secs(30), || async {
        broker.ready(&feed.connectors[0].queue()).await.unwrap() == 0
    })
    .await;
    assert!(drained);
    assert_eq!(
        broker
            .ready(&feed.connectors[0].dead_queue())
            .await
            .unwrap(),
        0
    );
    let ready = wait_for(Duration::from_secs(30), || async {
        matches!(http_get(hub.http_addr, "/readyz").await, Ok((200, _)))
    })
    .await;
    assert!(ready, "ready again by itself");
    println!(
        "killed connections {rounds} times; {} gRPC batches refused as unavailable; /readyz 503 \
         {not_ready} times during the stop",
        refused.load(Ordering::Relaxed)
    );
    hub.stop().await;
    broker.delete(&feed.queues()).await;
}
