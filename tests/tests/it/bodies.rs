//! One stored copy of each record's body (issue 18, migration 0022): a record that names a
//! person keeps its body in `pending_bodies` until its person's state holds it unchanged, then
//! only there. Checked through every way a body moves: new records and new versions, a record
//! held for review and then changed by a decision, a person whose state goes (its records'
//! bodies go back to `pending_bodies`) and comes back.

use crate::fixtures::*;
use sqlx::Row;
use std::collections::BTreeMap;
use trainhub_model::dossier::StoredRecord;
use trainhub_proto::v1::review_service_client::ReviewServiceClient;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_store::seal::column;
use trainhub_store::Store;
use trainhub_tests::{count, projected, statuses, Backend, TestHub};

type Id = (String, String, String);

/// For every current record, how many copies of its body the store keeps:
/// in `source_records`, in `pending_bodies`, and unchanged inside its person's state.
async fn copies(store: &Store) -> BTreeMap<Id, usize> {
    let keys = store.keys();
    let mut states: BTreeMap<String, Vec<StoredRecord>> = BTreeMap::new();
    for r in sqlx::query("SELECT person_key, packed FROM dossier_state")
        .fetch_all(store.pool())
        .await
        .unwrap()
    {
        let facts = keys.open_packed(column::PACKED, &r.get::<Vec<u8>, _>("packed"));
        states.insert(
            r.get("person_key"),
            serde_json::from_slice(&facts.unwrap()).unwrap(),
        );
    }
    let mut pending: BTreeMap<(String, Id), (i64, Vec<u8>)> = BTreeMap::new();
    for r in sqlx::query("SELECT * FROM pending_bodies")
        .fetch_all(store.pool())
        .await
        .unwrap()
    {
        let id = (r.get("system"), r.get("kind"), r.get("record_id"));
        let body = keys.open_packed(column::PENDING, &r.get::<Vec<u8>, _>("content"));
        pending.insert((r.get("person_key"), id), (r.get("version"), body.unwrap()));
    }
    let mut out = BTreeMap::new();
    let rows = "SELECT system, kind, record_id, version, person, person_key, content \
                FROM source_records WHERE deleted = 0";
    for r in sqlx::query(rows).fetch_all(store.pool()).await.unwrap() {
        let id: Id = (r.get("system"), r.get("kind"), r.get("record_id"));
        let version: i64 = r.get("version");
        // As bytes since migration 0027, as hex text before.
        let person: Option<String> = r
            .get::<Option<Vec<u8>>, _>("person")
            .map(hex::encode)
            .or_else(|| r.get("person_key"));
        let content = r.get::<Option<Vec<u8>>, _>("content");
        let mut n = usize::from(content.is_some());
        let waiting = person
            .as_ref()
            .and_then(|p| pending.get(&(p.clone(), id.clone())))
            .filter(|(v, _)| *v == version);
        n += usize::from(waiting.is_some());
        let in_state = person
            .as_ref()
            .and_then(|p| states.get(p))
            .into_iter()
            .flatten()
            .find(|f| f.source.record_id == id.2 && f.source.version == version);
        if let Some(fact) = in_state {
            // The state's copy counts when it is the body itself, not a reviewer's change.
            let source = match (&content, waiting) {
                (Some(c), _) => Some(keys.open_packed(column::CONTENT, c).unwrap()),
                (None, Some((_, body))) => Some(body.clone()),
                (None, None) => None,
            };
            let body = serde_json::to_vec(&fact.body).unwrap();
            n += usize::from(source.is_none_or(|s| s == body));
        }
        out.insert(id, n);
    }
    out
}

/// Every current record's body is kept exactly once.
async fn once(store: &Store) {
    projected(store).await;
    let copies = copies(store).await;
    let wrong: Vec<_> = copies.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "bodies not kept exactly once: {wrong:?}");
}

async fn pending(store: &Store) -> i64 {
    count(store, "SELECT COUNT(*) AS n FROM pending_bodies").await
}

fn versions(d: &pb::Dossier) -> BTreeMap<String, i64> {
    d.provenance
        .iter()
        .map(|p| (p.record_id.clone(), p.version))
        .collect()
}

async fn decide_birth_dates(hub: &TestHub) {
    let mut review = ReviewServiceClient::connect(format!("http://{}", hub.grpc_addr))
        .await
        .unwrap();
    let conflicts = review
        .list_conflicts(pb::ListConflictsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .conflicts;
    let birth = conflicts
        .iter()
        .find(|c| c.kind() == pb::ConflictKind::BirthDateMismatch)
        .expect("a birth date conflict");
    review
        .resolve_conflict(pb::ResolveConflictRequest {
            conflict_id: birth.id.clone(),
            choice: "id".into(),
            note: "as in the ID".into(),
        })
        .await
        .unwrap();
}

async fn each_body_is_kept_once(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let (a, c) = (id(1), id(3));
    let Body::Person(mut c_person) = person(&c, "丙三", "county") else {
        unreachable!()
    };
    c_person.birth_date = "1960-01-15".into();
    let first = hub
        .submit(vec![
            rec(
                SCHOOL,
                "C1",
                1,
                class("C1", "2024-03-04", "2024-03-08", 40.0, &[]),
            ),
            rec(HR, "A01-a", 1, person(&a, "甲一", "county")),
            rec(SCHOOL, "enr-a", 1, enrollment(&a, "C1", "completed")),
            rec(SCHOOL, "att-a", 1, attendance(&a, "C1", 8.0, "present")),
            rec(SCHOOL, "res-a", 1, result(&a, "C1", "pass")),
            rec(ONLINE, "link-a", 1, link(&a, "u-a")),
            rec(ONLINE, "s-a", 1, learning_by_account("u-a", "c1", 90.0)),
            rec(HR, "A01-c", 1, Body::Person(c_person)),
            rec(SCHOOL, "enr-c", 1, enrollment(&c, "C1", "completed")),
        ])
        .await;
    assert_eq!(statuses(&first)[7], "PARKED", "{first:?}");
    once(&hub.store).await;
    // Only the class and the account's record, which several persons may share, keep theirs
    // in the records' table.
    let in_records = "SELECT COUNT(*) AS n FROM source_records WHERE content IS NOT NULL";
    assert_eq!(count(&hub.store, in_records).await, 2);
    // C's records wait: its person record for a reviewer, its enrollment for a dossier.
    assert_eq!(pending(&hub.store).await, 2);
    let d = hub.dossier(&a, "2026-06-30").await.unwrap();
    assert_eq!(versions(&d).get("att-a"), Some(&1), "{d:?}");
    assert!(versions(&d).contains_key("s-a"), "{d:?}");

    // A new version replaces the body in the state.
    hub.submit(vec![rec(
        SCHOOL,
        "att-a",
        2,
        attendance(&a, "C1", 16.0, "present"),
    )])
    .await;
    once(&hub.store).await;
    let d2 = hub.dossier(&a, "2026-06-30").await.unwrap();
    assert_eq!(versions(&d2).get("att-a"), Some(&2));
    assert_ne!(d2.trainings, d.trainings, "the new hours count");

    // Decided for the ID's birth date, C's person record counts changed: the state holds the
    // change, so the record's own body stays pending; the enrollment's moves into the state.
    decide_birth_dates(&hub).await;
    once(&hub.store).await;
    assert_eq!(pending(&hub.store).await, 1);
    let c_dossier = || async { hub.dossier(&c, "2026-06-30").await.unwrap() };
    let before = c_dossier().await;
    hub.submit(vec![rec(
        SCHOOL,
        "att-c",
        1,
        attendance(&c, "C1", 8.0, "present"),
    )])
    .await;
    once(&hub.store).await;
    let after = c_dossier().await;
    assert_eq!(pending(&hub.store).await, 1);
    assert_eq!(after.name, before.name);
    assert!(versions(&after).contains_key("A01-c"), "{after:?}");

    // A's person record deleted: no dossier, and the bodies its state held go back to
    // `pending_bodies`; sent again, they are all in its dossier once more.
    hub.submit(vec![tombstone(HR, "person", "A01-a", 2)]).await;
    once(&hub.store).await;
    assert!(hub.dossier(&a, "2026-06-30").await.is_err());
    assert_eq!(
        pending(&hub.store).await,
        1 + 4,
        "enr-a, att-a, res-a, link-a"
    );
    hub.submit(vec![rec(HR, "A01-a", 3, person(&a, "甲一", "county"))])
        .await;
    once(&hub.store).await;
    assert_eq!(pending(&hub.store).await, 1);
    let back = hub.dossier(&a, "2026-06-30").await.unwrap();
    assert_eq!(back.trainings, d2.trainings);
    let mut want = versions(&d2);
    want.insert("A01-a".into(), 3);
    assert_eq!(versions(&back), want);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_body_is_kept_once_sqlite() {
    each_body_is_kept_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_body_is_kept_once_postgres() {
    each_body_is_kept_once(Backend::Postgres).await;
}

/// A burst's bodies pass through `pending_bodies`: once the projector has folded them in and
/// tidied, the space they took goes back. On PostgreSQL the emptied table is truncated and
/// its index keeps none of the burst's size; on SQLite (incremental auto-vacuum) the freed
/// pages leave the database file.
async fn a_drained_burst_leaves_no_space_behind(backend: Backend) {
    let Some(test_store) = trainhub_tests::TestStore::new(backend).await else {
        return;
    };
    let hub = TestHub::start_with(test_store, |c| c.server.project = false).await;
    let population = trainhub_connectors::synthetic::population(23, 1500);
    hub.stream(&population.records, 1000).await;
    let today = chrono::Utc::now().date_naive();
    let policy = trainhub_model::policy::Policy::default();
    let spare = || async {
        match backend {
            Backend::Postgres => {
                let sql = "SELECT pg_indexes_size('pending_bodies') AS n";
                count(&hub.store, sql).await
            }
            Backend::Sqlite => {
                let row = sqlx::query("PRAGMA freelist_count")
                    .fetch_one(hub.store.pool())
                    .await
                    .unwrap();
                row.get::<i64, _>(0) * 4096
            }
        }
    };
    hub.store.project_all(&policy, today).await.unwrap();
    assert_eq!(pending(&hub.store).await, 0);
    // More than what a tidy leaves alone: 1 MiB of index, 4 MiB of free pages.
    let before = spare().await;
    let floor = if backend == Backend::Postgres { 1 } else { 4 } << 20;
    assert!(before > floor, "{before} bytes to give back");
    hub.store.tidy_projection().await.unwrap();
    let left = spare().await;
    assert!(left < 64 << 10, "{left} bytes left of {before}");
    once(&hub.store).await;
    let p = &population.persons[0];
    assert!(hub.dossier(&p.national_id, "").await.is_ok());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_burst_leaves_no_space_behind_postgres() {
    a_drained_burst_leaves_no_space_behind(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_burst_leaves_no_space_behind_sqlite() {
    a_drained_burst_leaves_no_space_behind(Backend::Sqlite).await;
}
