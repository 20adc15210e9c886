//! The state's and the records' indexes are rebuilt once new rows and rewrites have left their
//! pages part empty (`Store::rebuild_indexes`, PostgreSQL): after row versions were written
//! for half a table's rows, the projector's tidy rebuilds its indexes without blocking, drops
//! what an interrupted rebuild left, and every dossier reads the same.

use std::time::Duration;
use trainhub_store::Store;
use trainhub_tests::{count, Backend, TestHub};

/// The oid of each index of `table`, by name, and whether each is valid.
async fn indexes(store: &Store, table: &str) -> Vec<(String, i64, bool)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS name, CAST(c.oid AS BIGINT) AS oid, i.indisvalid \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = CAST($1 AS regclass) ORDER BY 1",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("name"), r.get("oid"), r.get("indisvalid")))
    .collect()
}

/// Waits until the database's statistics count `rows` rows of `table` written, inserted or
/// updated (they reach it up to some seconds after the writes).
async fn counted(store: &Store, table: &str, rows: i64) {
    let sql = format!(
        "SELECT n_tup_ins + n_tup_upd AS n FROM pg_stat_user_tables \
         WHERE schemaname = current_schema() AND relname = '{table}'"
    );
    for _ in 0..300 {
        if count(store, &sql).await >= rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the statistics did not count {rows} rows of {table} within 30 s");
}

/// The invalid indexes of `table` and of its TOAST table.
async fn invalid(store: &Store, table: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS name FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid IN (CAST($1 AS regclass), (SELECT reltoastrelid \
           FROM pg_class WHERE oid = CAST($1 AS regclass))) \
         AND NOT i.indisvalid ORDER BY 1",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect()
}

/// Every index of `table` valid, each with an oid other than in `before`.
async fn rebuilt(
    store: &Store,
    table: &str,
    before: &[(String, i64, bool)],
) -> Vec<(String, i64, bool)> {
    let after = indexes(store, table).await;
    assert_eq!(after.len(), before.len(), "the same indexes: {after:?}");
    for ((name, old, _), (new_name, new, valid)) in before.iter().zip(&after) {
        assert_eq!(name, new_name);
        assert!(valid, "{name} valid");
        assert_ne!(old, new, "{name} rebuilt");
    }
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_are_rebuilt_after_a_load_postgres() {
    const STATE: &str = "dossier_state";
    const RECORDS: &str = "source_records";
    let Some(test_store) = trainhub_tests::TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = TestHub::start_with(test_store, |c| c.server.project = false).await;
    let population = trainhub_connectors::synthetic::population(29, 1200);
    hub.stream(&population.records, 1000).await;
    let today = chrono::Utc::now().date_naive();
    let policy = trainhub_model::policy::Policy::default();
    hub.store.project_all(&policy, today).await.unwrap();
    let persons = count(&hub.store, "SELECT COUNT(*) AS n FROM dossier_state").await;
    assert!(persons >= 1000, "{persons} states");
    let records = count(&hub.store, "SELECT COUNT(*) AS n FROM source_records").await;
    counted(&hub.store, STATE, persons).await;
    counted(&hub.store, RECORDS, records).await;
    let before = indexes(&hub.store, STATE).await;
    let records_before = indexes(&hub.store, RECORDS).await;
    let p = &population.persons[0].national_id;
    let dossier = hub.dossier(p, "").await.unwrap();

    // A transaction older than the new indexes holds the rebuilds up: each gives up after its
    // wait, leaving invalid indexes (the table's and its TOAST table's), and the tidy goes on.
    let mut old = hub.store.pool().begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *old)
        .await
        .unwrap();
    sqlx::query("SELECT COUNT(*) FROM raw_batches")
        .execute(&mut *old)
        .await
        .unwrap();
    hub.store.tidy_projection().await.unwrap();
    old.rollback().await.unwrap();
    let left = invalid(&hub.store, STATE).await;
    assert!(
        left.len() > before.len(),
        "each index and the TOAST index left: {left:?}"
    );
    assert!(left.iter().all(|n| n.ends_with("_ccnew")), "{left:?}");
    let records_left = invalid(&hub.store, RECORDS).await;
    assert!(!records_left.is_empty(), "the records' rebuild gave up too");
    assert!(
        records_left.iter().all(|n| n.ends_with("_ccnew")),
        "{records_left:?}"
    );
    // What a failed build leaves, besides.
    let failed = sqlx::query(
        "CREATE UNIQUE INDEX CONCURRENTLY dossier_state_lights_ccnew ON dossier_state (light)",
    )
    .execute(hub.store.pool())
    .await;
    assert!(failed.is_err(), "the lights repeat");

    // No rebuild without more writes; after every state is written again (projected for
    // tomorrow, then for today), the next tidy drops the state's leftovers and rebuilds its
    // indexes. The records were not written since: theirs wait.
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(invalid(&hub.store, STATE).await.len(), left.len() + 1);
    let tomorrow = today.succ_opt().unwrap();
    for day in [tomorrow, today] {
        hub.store.mark_other_days(day).await.unwrap();
        hub.store.project_all(&policy, day).await.unwrap();
    }
    counted(&hub.store, STATE, persons * 3).await;
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(invalid(&hub.store, STATE).await, Vec::<String>::new());
    rebuilt(&hub.store, STATE, &before).await;
    assert_eq!(hub.dossier(p, "").await.unwrap(), dossier);
    assert_eq!(invalid(&hub.store, RECORDS).await, records_left);

    // A new version of every record (the same content): the records' indexes are rebuilt,
    // their leftovers dropped.
    let mut again = population.records.clone();
    for r in &mut again {
        r.source.as_mut().unwrap().version += 1;
    }
    hub.stream(&again, 1000).await;
    hub.store.project_all(&policy, today).await.unwrap();
    counted(&hub.store, RECORDS, records * 2).await;
    // Every state written once more, counted before the tidy: a count still on its way would
    // make the tidy after it rebuild the state's indexes (the statistics arrive within seconds
    // of the writes, later under load).
    counted(&hub.store, STATE, persons * 4).await;
    let dossier = hub.dossier(p, "").await.unwrap();
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(invalid(&hub.store, RECORDS).await, Vec::<String>::new());
    rebuilt(&hub.store, RECORDS, &records_before).await;
    assert_eq!(hub.dossier(p, "").await.unwrap(), dossier);

    // No write since: the next tidy leaves every index as it is.
    let now = [
        indexes(&hub.store, STATE).await,
        indexes(&hub.store, RECORDS).await,
    ];
    hub.store.tidy_projection().await.unwrap();
    let then = [
        indexes(&hub.store, STATE).await,
        indexes(&hub.store, RECORDS).await,
    ];
    assert_eq!(then, now);
    hub.stop().await;
}
