//! The state table's indexes are rebuilt once new states and rewrites have left their pages
//! part empty (`Store::rebuild_state_indexes`, PostgreSQL): after row versions were written
//! for half the table's rows, the projector's tidy rebuilds them without blocking, drops what
//! an interrupted rebuild left, and every dossier reads the same.

use std::time::Duration;
use trainhub_store::Store;
use trainhub_tests::{count, Backend, TestHub};

/// The oid of each index of the state table, by name, and whether each is valid.
async fn state_indexes(store: &Store) -> Vec<(String, i64, bool)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS name, CAST(c.oid AS BIGINT) AS oid, i.indisvalid \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = CAST('dossier_state' AS regclass) ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("name"), r.get("oid"), r.get("indisvalid")))
    .collect()
}

/// Waits until the database's statistics count `rows` state rows written, inserted or updated
/// (they reach it up to some seconds after the writes).
async fn counted(store: &Store, rows: i64) {
    let sql = "SELECT n_tup_ins + n_tup_upd AS n FROM pg_stat_user_tables \
               WHERE schemaname = current_schema() AND relname = 'dossier_state'";
    for _ in 0..300 {
        if count(store, sql).await >= rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the statistics did not count {rows} state rows within 30 s");
}

/// The invalid indexes of the state table and of its TOAST table.
async fn invalid(store: &Store) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(
        "SELECT CAST(c.relname AS TEXT) AS name FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid IN (CAST('dossier_state' AS regclass), (SELECT reltoastrelid \
           FROM pg_class WHERE oid = CAST('dossier_state' AS regclass))) \
         AND NOT i.indisvalid ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_indexes_are_rebuilt_after_a_load_postgres() {
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
    counted(&hub.store, persons).await;
    let before = state_indexes(&hub.store).await;
    let p = &population.persons[0].national_id;
    let dossier = hub.dossier(p, "").await.unwrap();

    // A transaction older than the new indexes holds the rebuild up: it gives up after its
    // wait, leaving invalid indexes (the state's and its TOAST table's), and the tidy goes on.
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
    let left = invalid(&hub.store).await;
    assert!(
        left.len() > before.len(),
        "each index and the TOAST index left: {left:?}"
    );
    assert!(left.iter().all(|n| n.ends_with("_ccnew")), "{left:?}");
    // What a failed build leaves, besides.
    let failed = sqlx::query(
        "CREATE UNIQUE INDEX CONCURRENTLY dossier_state_lights_ccnew ON dossier_state (light)",
    )
    .execute(hub.store.pool())
    .await;
    assert!(failed.is_err(), "the lights repeat");

    // No rebuild without more writes; after every state is written again (projected for
    // tomorrow, then for today), the next tidy drops the leftovers and rebuilds.
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(invalid(&hub.store).await.len(), left.len() + 1);
    let tomorrow = today.succ_opt().unwrap();
    for day in [tomorrow, today] {
        hub.store.mark_other_days(day).await.unwrap();
        hub.store.project_all(&policy, day).await.unwrap();
    }
    counted(&hub.store, persons * 3).await;
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(invalid(&hub.store).await, Vec::<String>::new());
    let after = state_indexes(&hub.store).await;
    assert_eq!(after.len(), before.len(), "the same indexes: {after:?}");
    for ((name, old, _), (new_name, new, valid)) in before.iter().zip(&after) {
        assert_eq!(name, new_name);
        assert!(valid, "{name} valid");
        assert_ne!(old, new, "{name} rebuilt");
    }
    assert_eq!(hub.dossier(p, "").await.unwrap(), dossier);

    // No rewrite since: the next tidy leaves them as they are.
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(state_indexes(&hub.store).await, after);
    hub.stop().await;
}
