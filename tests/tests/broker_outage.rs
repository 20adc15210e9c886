//! Broker outage (issues 4 and 5): RabbitMQ is stopped while records flow in over AMQP and
//! gRPC and dossiers change. The connectors turn `degraded`, then `failed` (with the error),
//! `/readyz` and `trainhub status` say so; when the broker is back the hub reconnects by
//! itself, everything returns to `running`, inbound resumes, and every dossier change is
//! published, in per-person sequence order. Delivery is at least once: an event the broker
//! took just as it stopped, before its confirm reached the hub, goes out again — the same
//! event, same `message_id`, which consumers drop; the test counts such repeats.
//!
//! It stops the machine's RabbitMQ application (`rabbitmqctl stop_app`) for a few seconds,
//! which is why it is a test binary of its own.

use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use trainhub_connectors::status::State;
use trainhub_connectors::synthetic;
use trainhub_store::outbox::DossierChanged;
use trainhub_store::read::Table;
use trainhub_tests::broker::{amqp_url, random_name, wait_for, Broker, Feed};
use trainhub_tests::{http_get, Backend, TestHub, TestStore};

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?}");
}

/// Starts the broker again even when the test fails midway.
struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .arg("start_app")
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// Publishes until the broker takes every message, reconnecting while it is away.
async fn publish_through_outage(messages: Vec<(String, Vec<u8>)>) {
    loop {
        if let Ok(broker) = Broker::try_connect().await {
            if broker.publish_all("trainhub.in", &messages).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_rides_out_a_broker_outage() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let mut feed = Feed::new(200);
    for c in &mut feed.connectors {
        c.fail_after_seconds = 3;
    }
    let exchange = random_name("trainhub.dossier.t");
    let watch = random_name("watch-");
    broker
        .watch(&watch, &exchange, "dossier.changed.#")
        .await
        .unwrap();
    feed.declare(&broker).await.unwrap();
    let hub = TestHub::start_with(test_store, |c| {
        c.connectors = feed.configs();
        c.events.url = Some(amqp_url());
        c.events.exchange = exchange.clone();
        c.events.fail_after_seconds = 3;
    })
    .await;
    let status_cli = |hub: &TestHub| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
            .args(["status", "--hub", &format!("http://{}", hub.grpc_addr)])
            .output()
            .expect("trainhub status runs")
    };
    assert_eq!(http_get(hub.http_addr, "/readyz").await.unwrap().0, 200);
    let store = hub.store.clone();

    let population = synthetic::population(47, 1_200);
    let records = &population.records;
    let (a, rest) = records.split_at(5_000);
    let (b, c) = rest.split_at(5_000);

    // Before: records in over AMQP, their dossier changes out as events.
    broker
        .publish_all("trainhub.in", &feed.messages(a))
        .await
        .unwrap();
    let stored = || async { store.table_count(Table::SourceRecords).await.unwrap() };
    assert!(
        wait_for(Duration::from_secs(120), || async {
            stored().await >= 5_000
        })
        .await
    );
    let published_some = wait_for(Duration::from_secs(60), || async {
        broker.ready(&watch).await.unwrap() > 0
    })
    .await;
    assert!(published_some, "events flow before the outage");

    // The outage, with records still arriving: over AMQP (the publisher retries until the
    // broker is back) and over gRPC (their dossier changes wait in the outbox).
    let inbound = tokio::spawn(publish_through_outage(feed.messages(c)));
    let restart = RestartOnDrop;
    rabbitmqctl(&["stop_app"]);
    let outcomes = hub.stream(b, 500).await;
    assert_eq!(outcomes.len(), b.len().div_ceil(500));
    let waiting = wait_for(Duration::from_secs(30), || async {
        store.outbox_depth().await.unwrap() > 0
    })
    .await;
    assert!(
        waiting,
        "dossier changes wait in the outbox while the broker is away"
    );
    for s in &hub.statuses {
        // Degraded first; it may already have gone on to failed.
        let noticed = wait_for(Duration::from_secs(10), || async {
            matches!(s.state(), State::Degraded | State::Failed)
        })
        .await;
        assert!(
            noticed,
            "{} knows its broker is away: {:?}",
            s.name,
            s.state()
        );
        assert!(s.last_error().is_some());
    }
    // Away past the limit: failed, not ready, and `trainhub status` exits 1.
    for s in &hub.statuses {
        let failed = wait_for(Duration::from_secs(30), || async {
            s.state() == State::Failed
        })
        .await;
        assert!(failed, "{} failed: {:?}", s.name, s.state());
        assert_eq!(s.last_error().unwrap().reason, "BROKER_UNREACHABLE");
    }
    let (code, body) = http_get(hub.http_addr, "/readyz").await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("failed connectors"), "{body}");
    let out = status_cli(&hub);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed"));
    let depth_during = store.outbox_depth().await.unwrap();
    rabbitmqctl(&["start_app"]);
    drop(restart);

    // After: reconnected without a restart; everything in, every change out.
    inbound.await.unwrap();
    let all_in = wait_for(Duration::from_secs(180), || async {
        stored().await == records.len() as i64
    })
    .await;
    assert!(
        all_in,
        "inbound resumed: {} of {}",
        stored().await,
        records.len()
    );
    let drained = wait_for(Duration::from_secs(120), || async {
        store.dirty_count().await.unwrap() == 0 && store.outbox_depth().await.unwrap() == 0
    })
    .await;
    assert!(drained, "the outbox empties once the broker is back");
    for s in &hub.statuses {
        let back = wait_for(Duration::from_secs(60), || async {
            s.state() == State::Running
        })
        .await;
        assert!(back, "{} reconnected: {:?}", s.name, s.state());
    }
    // An idle queue is no fault: still running past the failure limit.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for s in &hub.statuses {
        assert_eq!(s.state(), State::Running, "{} idle", s.name);
    }
    assert_eq!(http_get(hub.http_addr, "/readyz").await.unwrap().0, 200);
    let out = status_cli(&hub);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = sqlx::query("SELECT person_key, seq FROM dossier_events")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let changes: i64 = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("seq").unwrap())
        .sum();
    let states: Vec<(String, String)> = sqlx::query("SELECT person_key, light FROM dossier_state")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get("person_key").unwrap(),
                r.try_get("light").unwrap(),
            )
        })
        .collect();
    hub.stop().await;

    let broker = Broker::connect().await.expect("broker back");
    let events = broker.drain(&watch, Duration::from_secs(2)).await.unwrap();
    let mut per_person: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut last: BTreeMap<String, DossierChanged> = BTreeMap::new();
    let mut first: HashMap<String, Vec<u8>> = HashMap::new();
    let mut repeats = 0;
    for d in &events {
        let e: DossierChanged = serde_json::from_slice(&d.data).expect("an event body");
        let id = d.properties.message_id().as_ref().unwrap().to_string();
        assert_eq!(id, format!("{}:{}", e.person_key, e.sequence));
        if let Some(body) = first.get(&id) {
            assert_eq!(body, &d.data, "a repeat of {id} is the same event");
            repeats += 1;
            continue;
        }
        first.insert(id, d.data.clone());
        assert!(d.routing_key.as_str().starts_with("dossier.changed."));
        per_person
            .entry(e.person_key.clone())
            .or_default()
            .push(e.sequence);
        last.insert(e.person_key.clone(), e);
    }
    for (person, seqs) in &per_person {
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(
            seqs, &expected,
            "events of {person} in sequence, none missing"
        );
    }
    // Exactly one event per change the store recorded, and the last one tells the final state.
    assert_eq!(first.len() as i64, changes, "one event per change");
    assert!(
        repeats <= 500,
        "repeats come only from the batch in flight at the outage: {repeats}"
    );
    for (key, light) in &states {
        assert_eq!(
            &last[key].light, light,
            "the last event of {key} has its light"
        );
    }
    println!(
        "{} records; {} events ({repeats} repeated across the outage) for {} persons; {} waited \
         in the outbox during the outage",
        records.len(),
        events.len(),
        per_person.len(),
        depth_during
    );
    broker.delete(std::slice::from_ref(&watch)).await;
    broker.delete_exchange(&exchange).await;
    broker.delete(&feed.queues()).await;
}
