//! DESIGN §1 on both stores: every kind accepted, duplicates, superseded versions, tombstones,
//! parking and re-linking.

use crate::fixtures::*;
use trainhub_proto::v1 as pb;
use trainhub_tests::{statuses, Backend, TestHub};

const AS_OF: &str = "2025-06-30";

async fn lifecycle(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let nid = id(1);

    // All nine kinds are accepted.
    let batch = nine_kinds(&nid);
    let out = hub.submit(batch.clone()).await;
    assert_eq!(statuses(&out), vec!["ACCEPTED"; 9], "{out:?}");
    let kinds: Vec<_> = out.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "person",
            "person_event",
            "link",
            "training_class",
            "enrollment",
            "attendance",
            "learning",
            "result",
            "evaluation"
        ]
    );
    let before = hub.dossier(&nid, AS_OF).await.unwrap();
    assert_eq!(before.name, "张伟");
    assert_eq!(before.rank, "county");
    // 150 present hours of a 160-hour class, plus 90 minutes online = 2 学时.
    assert_eq!(before.credited_hours, 152.0);
    assert_eq!(before.trainings.len(), 2);
    let c1 = before
        .trainings
        .iter()
        .find(|t| t.class_id == "C1")
        .unwrap();
    assert_eq!((c1.credited_hours, c1.outcome.as_str()), (150.0, "pass"));
    assert_eq!(before.provenance.len(), 9, "every record is traced");

    // The same batch again: nothing changes.
    let out = hub.submit(batch).await;
    assert_eq!(statuses(&out), vec!["DUPLICATE"; 9]);

    // Version 2 of the attendance, then version 1 again with other content: superseded.
    let v2 = rec(SCHOOL, "A1", 2, attendance(&nid, "C1", 120.0, "present"));
    assert_eq!(statuses(&hub.submit(vec![v2]).await), ["ACCEPTED"]);
    let after_v2 = hub.dossier(&nid, AS_OF).await.unwrap();
    assert_eq!(after_v2.credited_hours, 122.0);
    let old = rec(SCHOOL, "A1", 1, attendance(&nid, "C1", 10.0, "present"));
    assert_eq!(statuses(&hub.submit(vec![old]).await), ["SUPERSEDED"]);
    assert_eq!(
        hub.dossier(&nid, AS_OF).await.unwrap(),
        after_v2,
        "an older version changes nothing"
    );

    // A tombstone removes the attendance: the class credits its planned hours again.
    let out = hub
        .submit(vec![tombstone(SCHOOL, "attendance", "A1", 3)])
        .await;
    assert_eq!(statuses(&out), ["ACCEPTED"]);
    assert_eq!(
        hub.dossier(&nid, AS_OF).await.unwrap().credited_hours,
        162.0
    );
    // Tombstoning the enrollment removes the training.
    hub.submit(vec![tombstone(SCHOOL, "enrollment", "N1", 2)])
        .await;
    let d = hub.dossier(&nid, AS_OF).await.unwrap();
    assert!(
        d.trainings.iter().all(|t| t.class_id != "C1"),
        "{:?}",
        d.trainings
    );

    // A result before its person is parked, and joins once the person arrives.
    let late = id(2);
    let out = hub
        .submit(vec![
            rec(
                SCHOOL,
                "C2",
                1,
                class("C2", "2024-04-01", "2024-04-05", 40.0, &["party_spirit"]),
            ),
            rec(SCHOOL, "N2", 1, enrollment(&late, "C2", "completed")),
            rec(SCHOOL, "R2", 1, result(&late, "C2", "excellent")),
        ])
        .await;
    assert_eq!(statuses(&out), ["ACCEPTED", "PARKED", "PARKED"]);
    assert_eq!(
        hub.dossier(&late, AS_OF).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        statuses(
            &hub.submit(vec![rec(HR, "P2", 1, person(&late, "李娜", "township"))])
                .await
        ),
        ["ACCEPTED"]
    );
    let d = hub.dossier(&late, AS_OF).await.unwrap();
    assert_eq!(d.trainings.len(), 1);
    assert_eq!(
        (d.trainings[0].outcome.as_str(), d.credited_hours),
        ("excellent", 40.0)
    );

    // Learning by account is parked until the link arrives.
    let out = hub
        .submit(vec![rec(
            ONLINE,
            "M2",
            1,
            learning_by_account("acct-2", "MOOC-2", 450.0),
        )])
        .await;
    assert_eq!(statuses(&out), ["PARKED"]);
    assert_eq!(
        hub.dossier(&late, AS_OF).await.unwrap().credited_hours,
        40.0
    );
    assert_eq!(
        statuses(
            &hub.submit(vec![rec(HR, "L2", 1, link(&late, "acct-2"))])
                .await
        ),
        ["ACCEPTED"]
    );
    // 450 minutes at the default 45 minutes per 学时.
    assert_eq!(
        hub.dossier(&late, AS_OF).await.unwrap().credited_hours,
        50.0
    );

    hub.stop().await;
}

#[tokio::test]
async fn lifecycle_sqlite() {
    lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn lifecycle_postgres() {
    lifecycle(Backend::Postgres).await;
}

async fn stream_acks_every_batch(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let population = trainhub_connectors::synthetic::population(5, 40);
    let total = population.records.len();
    let batches = total.div_ceil(50);
    let responses = hub.stream(&population.records, 50).await;
    let acked: usize = responses.iter().map(|r| r.outcomes.len()).sum();
    assert_eq!((responses.len(), acked), (batches, total));
    let stored = hub
        .store
        .table_count(trainhub_store::read::Table::SourceRecords)
        .await
        .unwrap();
    assert_eq!(
        stored as usize, total,
        "every acknowledged record is stored"
    );
    hub.stop().await;
}

#[tokio::test]
async fn stream_acks_every_batch_sqlite() {
    stream_acks_every_batch(Backend::Sqlite).await;
}

#[tokio::test]
async fn stream_acks_every_batch_postgres() {
    stream_acks_every_batch(Backend::Postgres).await;
}

/// A stream's batches commit several at once, yet each is answered as if it had committed
/// after the ones sent before it: a person's records sent in the batches right after the
/// person's are `ACCEPTED`, not `PARKED` for a person still committing alongside them.
async fn stream_answers_in_sending_order(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let population = trainhub_connectors::synthetic::population(6, 15);
    let responses = hub.stream(&population.records, 1).await;
    assert_eq!(responses.len(), population.records.len());
    let statuses: Vec<i32> = responses
        .iter()
        .flat_map(|r| r.outcomes.iter().map(|o| o.status))
        .collect();
    let accepted = pb::RecordStatus::Accepted as i32;
    assert!(
        statuses.iter().all(|s| *s == accepted),
        "every record follows its person in the stream: {} of {} accepted",
        statuses.iter().filter(|s| **s == accepted).count(),
        statuses.len()
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_in_sending_order_sqlite() {
    stream_answers_in_sending_order(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_answers_in_sending_order_postgres() {
    stream_answers_in_sending_order(Backend::Postgres).await;
}
