//! Crash safety of the AMQP source (issue 4): the hub process is SIGKILLed while consuming
//! 50,000 messages and started again; no valid record is missing and none is stored twice —
//! messages that were committed but not yet acknowledged come back and are `DUPLICATE`.

use crate::amqp::{key, stored_keys};
use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use trainhub_connectors::synthetic;
use trainhub_store::read::Table;
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{Backend, TestHub, TestStore};

fn start_hub(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the hub starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_consume_loses_nothing_and_stores_nothing_twice() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let feed = Feed::new(500);
    let dir = test_store.dir.path().to_owned();
    let config = dir.join("trainhub.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
             [store]\nurl = {:?}\n\n{}",
            dir.display().to_string(),
            test_store.url,
            feed.toml()
        ),
    )
    .unwrap();
    let log = dir.join("hub.log");
    // A hub must have run once to create the secret and the schema the test inspects.
    let inspect = TestHub::config_for(&test_store);
    let pipeline = trainhub::startup::open_pipeline(&inspect, true)
        .await
        .unwrap();
    let store = pipeline.store().clone();

    let population = synthetic::population(43, 4_000);
    let records = &population.records[..50_000];
    feed.declare(&broker).await.unwrap();
    broker
        .publish_all("trainhub.in", &feed.messages(records))
        .await
        .unwrap();

    let mut hub = start_hub(&config, &log);
    let stored = || async { store.table_count(Table::SourceRecords).await.unwrap() };
    let midway = wait_for(Duration::from_secs(300), || async {
        stored().await >= 15_000
    })
    .await;
    assert!(
        midway,
        "the hub consumes: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    hub.start_kill().expect("SIGKILL");
    hub.wait().await.unwrap();
    let at_kill = stored().await;
    assert!(at_kill < 50_000, "killed mid-way ({at_kill} stored)");

    let mut hub = start_hub(&config, &log);
    let all = wait_for(Duration::from_secs(300), || async {
        stored().await >= 50_000
    })
    .await;
    assert!(
        all,
        "the restarted hub consumes the rest: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    // A graceful stop: in-flight batches commit and are acknowledged.
    let pid = hub.id().expect("running");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), hub.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let expected: HashSet<_> = records.iter().map(key).collect();
    assert_eq!(
        stored_keys(&store).await,
        expected,
        "none missing, none extra"
    );
    for c in &feed.connectors {
        assert_eq!(
            broker.ready(&c.queue()).await.unwrap(),
            0,
            "queue {} drained",
            c.queue()
        );
        assert_eq!(broker.ready(&c.dead_queue()).await.unwrap(), 0);
    }
    // The raw log, old rows and packed batches alike, read back record by record.
    let mut identities = Vec::new();
    store
        .received_each("0000", "9999", |r| {
            identities.push((r.system, r.kind, r.record_id))
        })
        .await
        .unwrap();
    let received = identities.len() as i64;
    assert_eq!(received, store.table_count(Table::RawLog).await.unwrap());
    let distinct = identities.iter().collect::<HashSet<_>>().len();
    assert_eq!(distinct, 50_000);
    assert_eq!(
        store.table_count(Table::DeadLetters).await.unwrap(),
        0,
        "a redelivery is never an error"
    );
    // Each receipt beyond the first was a redelivery of a committed message: DUPLICATE.
    println!(
        "killed at {at_kill} stored; {received} receipts of 50000 records: {} redelivered as DUPLICATE",
        received - distinct as i64
    );
    broker.delete(&feed.queues()).await;
    store.close().await;
}
