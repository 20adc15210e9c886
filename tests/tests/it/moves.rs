//! A record whose new version names another person leaves the first person's dossier: the
//! upsert marks the person (or the account) the replaced version named as well as the new one,
//! so the first person's state is projected again without it. Checked on the states the
//! projector wrote (the persons are not waiting when the dossiers are read).

use crate::fixtures::*;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_tests::{count, projected, Backend, TestHub};

/// The record ids in a dossier's provenance, with their versions.
fn records(d: &pb::Dossier) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = d
        .provenance
        .iter()
        .map(|p| (p.record_id.clone(), p.version))
        .collect();
    out.sort();
    out
}

fn has(d: &pb::Dossier, record_id: &str) -> bool {
    d.provenance.iter().any(|p| p.record_id == record_id)
}

/// Learning that names the person directly rather than by account.
fn learning_by_person(national_id: &str, minutes: f64) -> Body {
    let Body::Learning(mut l) = learning_by_account("unused", "c1", minutes) else {
        unreachable!()
    };
    l.person_ref = who(national_id);
    Body::Learning(l)
}

async fn a_moved_record_leaves_the_first_persons_dossier(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let (a, b) = (id(21), id(22));
    hub.submit(vec![
        rec(
            SCHOOL,
            "C1",
            1,
            class("C1", "2024-03-04", "2024-03-08", 40.0, &[]),
        ),
        rec(HR, "A01-a", 1, person(&a, "甲一", "county")),
        rec(HR, "A01-b", 1, person(&b, "乙二", "county")),
        rec(SCHOOL, "enr-a", 1, enrollment(&a, "C1", "completed")),
        rec(SCHOOL, "att-1", 1, attendance(&a, "C1", 8.0, "present")),
        rec(ONLINE, "link-a", 1, link(&a, "u-a")),
        rec(ONLINE, "s-1", 1, learning_by_account("u-a", "c1", 90.0)),
    ])
    .await;
    projected(&hub.store).await;
    let before = hub.dossier(&a, "2026-06-30").await.unwrap();
    assert!(has(&before, "att-1") && has(&before, "s-1"), "{before:?}");

    // Corrected by their sources: the attendance was B's, and so was the online study the
    // account A is linked to reported.
    hub.submit(vec![
        rec(SCHOOL, "att-1", 2, attendance(&b, "C1", 8.0, "present")),
        rec(ONLINE, "s-1", 2, learning_by_person(&b, 90.0)),
    ])
    .await;
    projected(&hub.store).await;
    let waiting = count(&hub.store, "SELECT COUNT(*) AS n FROM dossier_dirty").await;
    assert_eq!(waiting, 0, "read from the projected states");
    let a_after = hub.dossier(&a, "2026-06-30").await.unwrap();
    let b_after = hub.dossier(&b, "2026-06-30").await.unwrap();
    let mut kept = records(&before);
    kept.retain(|(r, _)| r != "att-1" && r != "s-1");
    assert_eq!(
        records(&a_after),
        kept,
        "A keeps only its own records: {a_after:?}"
    );
    assert!(
        has(&b_after, "att-1") && has(&b_after, "s-1"),
        "B has both: {b_after:?}"
    );
    assert!(
        records(&b_after).contains(&("att-1".to_string(), 2)),
        "{b_after:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_record_leaves_the_first_persons_dossier_sqlite() {
    a_moved_record_leaves_the_first_persons_dossier(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_record_leaves_the_first_persons_dossier_postgres() {
    a_moved_record_leaves_the_first_persons_dossier(Backend::Postgres).await;
}
