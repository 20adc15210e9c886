//! SQLite's write-ahead log goes back into the database file by the store's own task, not in
//! a writer's commit (`services/store/src/checkpoint.rs`).

use std::time::{Duration, Instant};
use trainhub_store::{Keyring, Store};
use trainhub_tests::{Backend, TestStore};

/// Two MiB committed: fewer pages than make any connection checkpoint itself (SQLite's default
/// 1,000, the store's backstop 16,000), so only the task can bring them into the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reaches_the_database_file_without_a_writer_checkpointing() {
    let test_store = TestStore::new(Backend::Sqlite).await.expect("SQLite");
    let store = Store::connect(&test_store.url, Keyring::generate("test"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let file = test_store.dir.path().join("test.db");
    sqlx::query("CREATE TABLE filler (b BLOB NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    // Whatever the migrations left in the log reaches the file first.
    let before = settled_length(&file).await;
    sqlx::query(
        "INSERT INTO filler WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 2048) SELECT randomblob(1024) FROM n",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let after = settled_length(&file).await;
    assert!(
        after >= before + (2 << 20),
        "the database file went from {before} to {after} bytes: the log did not reach it"
    );
    store.close().await;
}

/// The database file's length once it has stopped changing for a second (at most 30 s).
async fn settled_length(file: &std::path::Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = std::fs::metadata(file).unwrap().len();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = std::fs::metadata(file).unwrap().len();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    last
}
