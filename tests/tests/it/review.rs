//! The identity review queue (DESIGN §4) end to end: each conflict kind is created by real
//! submissions, listed with its sides, resolved through `ReviewService`, and the records that
//! waited then appear in the dossier.

use crate::fixtures::*;
use tonic::Code;
use trainhub_proto::v1::review_service_client::ReviewServiceClient;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_tests::{statuses, Backend, TestHub};

const OTHER_HR: &str = "hr-other";

async fn review(hub: &TestHub) -> ReviewServiceClient<tonic::transport::Channel> {
    ReviewServiceClient::connect(format!("http://{}", hub.grpc_addr))
        .await
        .expect("connect")
}

/// The review queue is kept by the projector (reads never project): waits until it has
/// caught up with what was submitted.
async fn projected(hub: &TestHub) {
    let caught_up =
        trainhub_tests::broker::wait_for(std::time::Duration::from_secs(30), || async {
            hub.store.dirty_count().await.unwrap() == 0
        })
        .await;
    assert!(caught_up, "the projector drains the marks");
}

async fn open_conflicts(hub: &TestHub) -> Vec<pb::Conflict> {
    projected(hub).await;
    review(hub)
        .await
        .list_conflicts(pb::ListConflictsRequest::default())
        .await
        .expect("list conflicts")
        .into_inner()
        .conflicts
}

/// Every unmatched record as `(system, kind, record_id, reason)`, read page by page.
async fn unmatched(hub: &TestHub) -> Vec<(String, String, String, String)> {
    projected(hub).await;
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = review(hub)
            .await
            .list_unmatched(pb::ListUnmatchedRequest {
                page_size: 2,
                page_token: token,
            })
            .await
            .expect("list unmatched")
            .into_inner();
        for r in page.records {
            let s = r.source.unwrap();
            out.push((s.system, s.kind, s.record_id, r.reason));
        }
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

fn unmatched_row(
    system: &str,
    kind: &str,
    id: &str,
    reason: &str,
) -> (String, String, String, String) {
    (system.into(), kind.into(), id.into(), reason.into())
}

fn online_hours(d: &pb::Dossier) -> f64 {
    d.years.iter().map(|y| y.online_hours).sum()
}

fn has_source(d: &pb::Dossier, system: &str, record_id: &str) -> bool {
    d.provenance
        .iter()
        .any(|p| p.system == system && p.record_id == record_id)
}

fn of_kind(conflicts: &[pb::Conflict], kind: pb::ConflictKind) -> pb::Conflict {
    conflicts
        .iter()
        .find(|c| c.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind:?} among {conflicts:?}"))
        .clone()
}

/// Whom a dispatch check takes the shared account for (empty: nobody yet).
async fn dispatch_owner(hub: &TestHub) -> String {
    let Body::TrainingClass(class) = class("C-review", "2026-12-07", "2026-12-11", 40.0, &[])
    else {
        unreachable!()
    };
    let check = hub
        .dossiers()
        .await
        .check_dispatch(pb::DispatchPlan {
            class: Some(class),
            persons: vec![account("u-shared").unwrap()],
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    check.persons[0].person_key.clone()
}

async fn resolve(hub: &TestHub, id: &str, choice: &str) -> Result<pb::Conflict, tonic::Status> {
    review(hub)
        .await
        .resolve_conflict(pb::ResolveConflictRequest {
            conflict_id: id.into(),
            choice: choice.into(),
            note: "checked against the personnel file".into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn each_conflict_is_resolved_and_parked_records_join(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let (a, b, c, d) = (id(1), id(2), id(3), id(4));
    // C's HR record gives a birth date that is not the one in C's ID.
    let Body::Person(mut c_person) = person(&c, "丙三", "county") else {
        unreachable!()
    };
    c_person.birth_date = "1960-01-15".into();
    let first = hub
        .submit(vec![
            rec(HR, "A01-a", 1, person(&a, "甲一", "county")),
            rec(HR, "A01-b", 1, person(&b, "乙二", "county")),
            rec(HR, "A01-c", 1, Body::Person(c_person)),
            rec(HR, "A01-d", 1, person(&d, "张三", "county")),
            // One account claimed by A and by B.
            rec(ONLINE, "link-a", 1, link(&a, "u-shared")),
            rec(ONLINE, "link-b", 1, link(&b, "u-shared")),
            rec(
                ONLINE,
                "s-shared",
                1,
                learning_by_account("u-shared", "c1", 90.0),
            ),
            rec(ONLINE, "link-c", 1, link(&c, "u-c")),
            rec(ONLINE, "s-c", 1, learning_by_account("u-c", "c2", 45.0)),
            // An account linked to nobody: unmatched, and it stays so.
            rec(
                ONLINE,
                "s-nobody",
                1,
                learning_by_account("u-nobody", "c3", 45.0),
            ),
        ])
        .await;
    // What ingest can tell at once: C's record and the shared account's record wait for a
    // reviewer, and the unlinked account's record waits for a link.
    assert_eq!(
        statuses(&first),
        [
            "ACCEPTED", "ACCEPTED", "PARKED", "ACCEPTED", "ACCEPTED", "ACCEPTED", "PARKED",
            "ACCEPTED", "ACCEPTED", "PARKED"
        ],
        "{first:?}"
    );
    // D again, from a second HR system, under another name (and another unit).
    let Body::Person(mut d_other) = person(&d, "张叁", "county") else {
        unreachable!()
    };
    d_other.unit_code = "U777".into();
    hub.submit(vec![rec(OTHER_HR, "P-0004", 1, Body::Person(d_other))])
        .await;

    // Before any decision: three conflicts, with their sides.
    let conflicts = open_conflicts(&hub).await;
    assert_eq!(conflicts.len(), 3, "{conflicts:#?}");
    let key_a = hub.dossier(&a, "").await.unwrap().person_key;
    let key_b = hub.dossier(&b, "").await.unwrap().person_key;
    let account = of_kind(&conflicts, pb::ConflictKind::AccountLinkedTwice);
    assert_eq!(account.status, "open");
    assert_eq!(
        (account.account_system.as_str(), account.account_id.as_str()),
        (ACCOUNTS, "u-shared")
    );
    let mut claimed: Vec<(String, String)> = account
        .sides
        .iter()
        .map(|s| (s.choice.clone(), s.name.clone()))
        .collect();
    claimed.sort();
    let mut want = vec![
        (key_a.clone(), "甲一".to_owned()),
        (key_b.clone(), "乙二".to_owned()),
    ];
    want.sort();
    assert_eq!(claimed, want, "each side names its person");
    let birth = of_kind(&conflicts, pb::ConflictKind::BirthDateMismatch);
    let dates: Vec<(&str, &str)> = birth
        .sides
        .iter()
        .map(|s| (s.choice.as_str(), s.birth_date.as_str()))
        .collect();
    let c_birth = format!("{}-{}-{}", &c[6..10], &c[10..12], &c[12..14]);
    assert_eq!(
        dates,
        vec![("record", "1960-01-15"), ("id", c_birth.as_str())]
    );
    let name = of_kind(&conflicts, pb::ConflictKind::NameMismatch);
    let names: Vec<(&str, &str)> = name
        .sides
        .iter()
        .map(|s| (s.choice.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("hr-test/A01-d", "张三"), ("hr-other/P-0004", "张叁")]
    );

    // Ops see the queue's size in the metrics (counted once a second).
    let gauge = || async {
        let (_, text) = trainhub_tests::http_get(hub.http_addr, "/metrics")
            .await
            .unwrap();
        text.contains("trainhub_review_open_conflicts")
            .then(|| trainhub_tests::metric(&text, "trainhub_review_open_conflicts", &[]))
    };
    let seen = trainhub_tests::broker::wait_for(std::time::Duration::from_secs(10), || async {
        gauge().await == Some(3.0)
    })
    .await;
    assert!(seen, "gauge: {:?}", gauge().await);

    // Conflicts hold names and birth dates: sealed at rest like every personal-data column.
    let plain = trainhub_tests::count(
        &hub.store,
        "SELECT COUNT(*) AS n FROM review_conflicts WHERE sides NOT LIKE 'th1:%' \
         OR sides LIKE '%1960-01-15%'",
    )
    .await;
    assert_eq!(plain, 0, "every conflict's sides are sealed");

    // What waits, and why.
    let waiting = unmatched(&hub).await;
    let want = vec![
        unmatched_row(HR, "person", "A01-c", "IN_REVIEW"),
        unmatched_row(OTHER_HR, "person", "P-0004", "IN_REVIEW"),
        unmatched_row(ONLINE, "learning", "s-c", "NO_PERSON"),
        unmatched_row(ONLINE, "learning", "s-nobody", "NO_LINK"),
        unmatched_row(ONLINE, "learning", "s-shared", "IN_REVIEW"),
        unmatched_row(ONLINE, "link", "link-a", "IN_REVIEW"),
        unmatched_row(ONLINE, "link", "link-b", "IN_REVIEW"),
        unmatched_row(ONLINE, "link", "link-c", "NO_PERSON"),
    ];
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(waiting, sorted);

    // The dossiers meanwhile: the shared account's hours count for nobody, C has none, D keeps
    // the name received first.
    for key in [&a, &b] {
        let dossier = hub.dossier(key, "").await.unwrap();
        assert_eq!(online_hours(&dossier), 0.0, "{dossier:?}");
        assert!(!has_source(&dossier, ONLINE, "s-shared"));
    }
    let missing = hub.dossier(&c, "").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let before = hub.dossier(&d, "").await.unwrap();
    assert_eq!(
        (before.name.as_str(), before.unit_code.as_str()),
        ("张三", "U001")
    );
    assert!(!has_source(&before, OTHER_HR, "P-0004"));

    assert_eq!(
        dispatch_owner(&hub).await,
        "",
        "a contested account is nobody's yet"
    );

    // Bad decisions are refused, naming what is valid.
    let bad = resolve(&hub, &account.id, "somebody-else")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(
        bad.message().contains(&key_a) && bad.message().contains(&key_b),
        "{bad:?}"
    );
    let unknown = resolve(&hub, "account-0000", &key_a).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let nothing = resolve(&hub, " ", &key_a).await.unwrap_err();
    assert_eq!(nothing.code(), Code::InvalidArgument, "{nothing:?}");
    let mut client = review(&hub).await;
    let token = client
        .list_unmatched(pb::ListUnmatchedRequest {
            page_size: 1,
            page_token: "zz".into(),
        })
        .await
        .unwrap_err();
    assert!(token.message().contains("page_token"), "{token:?}");
    let size = client
        .list_conflicts(pb::ListConflictsRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(size.message().contains("page_size"), "{size:?}");

    // The decisions.
    let done = resolve(&hub, &account.id, &key_a).await.unwrap();
    assert_eq!(
        (done.status.as_str(), done.choice.as_str()),
        ("resolved", key_a.as_str())
    );
    assert_eq!(done.resolved_by, "open");
    resolve(&hub, &birth.id, "id").await.unwrap();
    resolve(&hub, &name.id, "hr-other/P-0004").await.unwrap();

    // The records that waited are in the dossiers now, and the account is A's.
    assert_eq!(dispatch_owner(&hub).await, key_a);
    let dossier_a = hub.dossier(&a, "").await.unwrap();
    assert!(
        (online_hours(&dossier_a) - 2.0).abs() < 1e-9,
        "{dossier_a:?}"
    );
    assert!(has_source(&dossier_a, ONLINE, "s-shared"));
    assert!(has_source(&dossier_a, ONLINE, "link-a"));
    let dossier_b = hub.dossier(&b, "").await.unwrap();
    assert_eq!(
        online_hours(&dossier_b),
        0.0,
        "only the chosen owner gets the hours"
    );
    assert!(!has_source(&dossier_b, ONLINE, "link-b"));
    let dossier_c = hub.dossier(&c, "").await.unwrap();
    assert_eq!(dossier_c.name, "丙三");
    assert!(
        (online_hours(&dossier_c) - 1.0).abs() < 1e-9,
        "{dossier_c:?}"
    );
    assert!(has_source(&dossier_c, HR, "A01-c") && has_source(&dossier_c, ONLINE, "s-c"));
    let dossier_d = hub.dossier(&d, "").await.unwrap();
    assert_eq!(dossier_d.name, "张叁");
    assert!(has_source(&dossier_d, OTHER_HR, "P-0004") && has_source(&dossier_d, HR, "A01-d"));

    let zero = trainhub_tests::broker::wait_for(std::time::Duration::from_secs(10), || async {
        gauge().await == Some(0.0)
    })
    .await;
    assert!(zero, "gauge: {:?}", gauge().await);

    // The queue is empty but for the account nobody claims; closed conflicts stay listed.
    assert!(open_conflicts(&hub).await.is_empty());
    assert_eq!(
        unmatched(&hub).await,
        vec![unmatched_row(ONLINE, "learning", "s-nobody", "NO_LINK")]
    );
    let closed = review(&hub)
        .await
        .list_conflicts(pb::ListConflictsRequest {
            include_closed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .conflicts;
    assert_eq!(closed.len(), 3);
    assert!(closed
        .iter()
        .all(|c| c.status == "resolved" && !c.resolved_at.is_empty()));

    // The decision stays with the conflict: a new version of the account's record counts for
    // the chosen owner too.
    let later = hub
        .submit(vec![rec(
            ONLINE,
            "s-shared",
            2,
            learning_by_account("u-shared", "c1", 135.0),
        )])
        .await;
    assert_eq!(
        statuses(&later),
        ["ACCEPTED"],
        "decided: the account is the owner's"
    );
    let again = hub.dossier(&a, "").await.unwrap();
    assert!((online_hours(&again) - 3.0).abs() < 1e-9, "{again:?}");

    // Corrected data clears an open conflict: nothing left to decide.
    let e = id(5);
    let Body::Person(mut wrong) = person(&e, "戊五", "county") else {
        unreachable!()
    };
    wrong.birth_date = "1950-05-05".into();
    let parked = hub
        .submit(vec![rec(HR, "A01-e", 1, Body::Person(wrong))])
        .await;
    assert_eq!(statuses(&parked), ["PARKED"]);
    let open = open_conflicts(&hub).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let fixed = hub
        .submit(vec![rec(HR, "A01-e", 2, person(&e, "戊五", "county"))])
        .await;
    assert_eq!(statuses(&fixed), ["ACCEPTED"]);
    assert!(open_conflicts(&hub).await.is_empty());
    let cleared = resolve(&hub, &open[0].id, "id").await.unwrap_err();
    assert_eq!(cleared.code(), Code::FailedPrecondition, "{cleared:?}");
    assert_eq!(hub.dossier(&e, "").await.unwrap().name, "戊五");

    // Every call that showed a conflict is in the audit trail, for each person it named.
    let trail = hub.store.audit_log(Some(&key_b), None, 100).await.unwrap();
    let methods: Vec<&str> = trail.iter().map(|r| r.entry.method.as_str()).collect();
    assert!(methods.contains(&"ListConflicts"), "{methods:?}");
    assert!(methods.contains(&"ResolveConflict"), "{methods:?}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conflict_is_resolved_and_parked_records_join_sqlite() {
    each_conflict_is_resolved_and_parked_records_join(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_conflict_is_resolved_and_parked_records_join_postgres() {
    each_conflict_is_resolved_and_parked_records_join(Backend::Postgres).await;
}
