//! Operators' mistakes that would corrupt data are refused at start (issue 17): a hub with
//! another secret, or another key under a known id, on a shared store; a second hub on one
//! SQLite store; the demo on a store with real records. Key ids made on one day never collide.
//! Reads on the command line state a purpose and are audited like gRPC reads.

use crate::fixtures::{self, rec, HR};
use std::path::Path;
use std::process::Output;
use trainhub::startup::Application;
use trainhub_tests::{count, Backend, TestHub, TestStore};

fn program() -> &'static str {
    env!("CARGO_BIN_EXE_trainhub-under-test")
}

async fn run(args: &[&str]) -> Output {
    tokio::process::Command::new(program())
        .args(args)
        .env_remove("TRAINHUB_LOG")
        .output()
        .await
        .expect("the trainhub program runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What the identity check may change: every table's row count.
async fn footprint(hub: &TestHub) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "hub_identity",
        "source_records",
        "raw_log",
        "raw_batches",
        "dead_letters",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        out.push(count(&hub.store, &sql).await);
    }
    out
}

/// Builds a hub on `store` after `change` altered its folder; the error it refuses with.
async fn refused(store: &TestStore, change: impl FnOnce(&Path)) -> String {
    change(store.dir.path());
    match Application::build(&TestHub::config_for(store)).await {
        Ok(_) => panic!("the hub was allowed to start"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_another_secret_or_key_is_refused_and_the_store_unchanged() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let (other_secret, other_key, rotated) =
        (test_store.alias(), test_store.alias(), test_store.alias());
    let hub = TestHub::start_on(test_store).await;
    let id = fixtures::id(7);
    hub.submit(vec![rec(
        HR,
        "P-7",
        1,
        fixtures::person(&id, "甲", "county"),
    )])
    .await;
    let before = footprint(&hub).await;
    assert_eq!(before[0], 2, "the secret and the one data key are recorded");

    let secret = refused(&other_secret, |dir| {
        std::fs::write(dir.join("hub.secret"), "ab".repeat(32)).unwrap();
    })
    .await;
    assert!(secret.contains("hub secret"), "{secret}");
    assert!(
        secret.contains("copy hub.secret"),
        "the fix is named: {secret}"
    );
    let key = refused(&other_key, |dir| {
        let entry = trainhub_store::Keyring::new_entry("test");
        std::fs::write(dir.join("data.keys"), entry).unwrap();
    })
    .await;
    assert!(key.contains("data key `test`"), "{key}");
    assert!(!key.contains("hub secret"), "only the key differs: {key}");
    assert_eq!(footprint(&hub).await, before, "nothing was written");

    // Rotation step 1 (a new key below the current one) is not a mistake.
    let keys = std::fs::read_to_string(rotated.dir.path().join("data.keys")).unwrap();
    let next = trainhub_store::Keyring::new_entry(&trainhub::startup::new_key_id());
    std::fs::write(
        rotated.dir.path().join("data.keys"),
        format!("{keys}\n{next}"),
    )
    .unwrap();
    let second = TestHub::start_on(rotated).await;
    assert_eq!(footprint(&hub).await[0], 3, "the new key is recorded");
    second.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_twice_on_one_day_gives_two_ids_that_load() {
    let (first, second) = (run(&["key"]).await, run(&["key"]).await);
    assert!(first.status.success() && second.status.success());
    let entries: Vec<String> = [&first, &second]
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .collect();
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "{entries:?}");
    let keyring = trainhub_store::Keyring::parse(&entries.join("\n")).expect("the keyring loads");
    assert_eq!(keyring.ids().count(), 2);
    let advice = stderr(&first);
    assert!(
        advice.contains("BELOW"),
        "the safe first step is named: {advice}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hub_on_one_sqlite_store_is_refused() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let config = TestHub::config_for(&test_store);
    let hub = TestHub::start_on(test_store).await;
    let second = Application::build(&config).await.err().expect("refused");
    let message = format!("{second:#}");
    assert!(message.contains("another hub already serves"), "{message}");
    let store = hub.stop_keeping_store().await;
    // Once the first has stopped, a hub may serve the folder again.
    let again = TestHub::start_on(store).await;
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_refuses_a_store_with_records_it_did_not_make() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let id = fixtures::id(8);
    hub.submit(vec![rec(
        HR,
        "P-8",
        1,
        fixtures::person(&id, "乙", "county"),
    )])
    .await;
    let store = hub.stop_keeping_store().await;
    let out = run(&[
        "serve",
        "--demo",
        "--store",
        &store.url,
        "--data-dir",
        &store.dir.path().display().to_string(),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ])
    .await;
    assert!(!out.status.success(), "the demo must not run");
    let message = stderr(&out);
    assert!(message.contains("refusing --demo"), "{message}");
    assert!(
        message.contains("--data-dir"),
        "the fix is named: {message}"
    );
    let again = TestHub::start_on(store).await;
    let people = count(&again.store, "SELECT COUNT(*) AS n FROM source_records").await;
    assert_eq!(people, 1, "no synthetic person was added");
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_the_command_line_state_a_purpose_and_are_audited() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let id = fixtures::id(9);
    hub.submit(vec![rec(
        HR,
        "P-9",
        1,
        fixtures::person(&id, "丙", "county"),
    )])
    .await;
    let store = hub.stop_keeping_store().await;
    let dir = store.dir.path().display().to_string();
    let base = ["--store", store.url.as_str(), "--data-dir", dir.as_str()];
    let audited = |principal: &'static str| {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE principal LIKE '{principal}%' \
             AND purpose = 'appointment-review'"
        );
        sql
    };

    let refused = run(&[&["dossier", id.as_str()][..], &base].concat()).await;
    assert!(!refused.status.success(), "no purpose, no read");
    assert!(
        stderr(&refused).contains("--purpose"),
        "{}",
        stderr(&refused)
    );
    let refused = run(&[&["coverage"][..], &base].concat()).await;
    assert!(!refused.status.success());

    let purpose = ["--purpose", "appointment-review"];
    let read = run(&[&["dossier", id.as_str()][..], &base, &purpose].concat()).await;
    assert!(read.status.success(), "{}", stderr(&read));
    assert!(String::from_utf8_lossy(&read.stdout).contains("丙"));
    let read = run(&[&["coverage"][..], &base, &purpose].concat()).await;
    assert!(read.status.success(), "{}", stderr(&read));

    let again = TestHub::start_on(store).await;
    let rows = count(&again.store, &audited("cli:")).await;
    assert_eq!(
        rows, 2,
        "one row for the dossier, one for the coverage report"
    );
    let methods = count(
        &again.store,
        "SELECT COUNT(*) AS n FROM audit_log WHERE principal LIKE 'cli:%' \
         AND method IN ('GetDossier', 'GetCoverage')",
    )
    .await;
    assert_eq!(methods, 2, "the rows their gRPC counterparts write");
    again.stop().await;
}
