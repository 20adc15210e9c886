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

/// Waits until the database's statistics count the state rows written (they reach it a few
/// seconds after the writes).
async fn counted(store: &Store, rows: i64) {
    let sql = "SELECT n_tup_ins + n_tup_upd - n_tup_hot_upd AS n FROM pg_stat_user_tables \
               WHERE schemaname = current_schema() AND relname = 'dossier_state'";
    for _ in 0..300 {
        if count(store, sql).await >= rows {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the statistics did not count {rows} state rows within 30 s");
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
    // What a rebuild interrupted by a crash leaves: an invalid index named `…_ccnew`.
    let failed = sqlx::query(
        "CREATE UNIQUE INDEX CONCURRENTLY dossier_state_light_ccnew ON dossier_state (light)",
    )
    .execute(hub.store.pool())
    .await;
    assert!(failed.is_err(), "the lights repeat");
    let before = state_indexes(&hub.store).await;
    assert!(before
        .iter()
        .any(|(n, _, valid)| n == "dossier_state_light_ccnew" && !valid));
    let p = &population.persons[0].national_id;
    let dossier = hub.dossier(p, "").await.unwrap();

    hub.store.tidy_projection().await.unwrap();
    let after = state_indexes(&hub.store).await;
    let names = |v: &[(String, i64, bool)]| -> Vec<String> {
        v.iter()
            .filter(|(n, _, _)| !n.ends_with("_ccnew"))
            .map(|(n, _, _)| n.clone())
            .collect()
    };
    assert_eq!(names(&after), names(&before), "the same indexes");
    assert_eq!(
        after.len(),
        before.len() - 1,
        "the leftover dropped: {after:?}"
    );
    for ((name, old, _), (_, new, valid)) in before
        .iter()
        .filter(|i| !i.0.ends_with("_ccnew"))
        .zip(&after)
    {
        assert!(valid, "{name} valid");
        assert_ne!(old, new, "{name} rebuilt");
    }
    assert_eq!(hub.dossier(p, "").await.unwrap(), dossier);

    // No rewrite since: the next tidy leaves them as they are.
    hub.store.tidy_projection().await.unwrap();
    assert_eq!(state_indexes(&hub.store).await, after);
    hub.stop().await;
}
