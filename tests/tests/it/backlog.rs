//! Reads with a projection backlog (issue 18, criterion 4): no read does the projector's work.
//! A hub that does not project (`[server] project = false`) takes a population; its coverage
//! and listings answer at once from the projected state (nothing yet) and say how many
//! persons wait; `GetDossier` of a waiting person computes that person alone; a caller that
//! asks to wait gets `DEADLINE_EXCEEDED` within its deadline while nobody projects, and, once
//! a projecting hub has started on the same store, the exact report with nobody waiting.

use std::collections::BTreeMap;
use std::time::Duration;
use trainhub_connectors::synthetic;
use trainhub_proto::v1 as pb;
use trainhub_tests::{Backend, TestHub, TestStore};

const PURPOSE: &str = "年度培训计划";

fn coverage_request(wait: bool, timeout: Duration) -> tonic::Request<pb::CoverageRequest> {
    let mut request = tonic::Request::new(pb::CoverageRequest {
        group_by: "unit".into(),
        purpose: PURPOSE.into(),
        wait_for_projection: wait,
        ..Default::default()
    });
    request.set_timeout(timeout);
    request
}

/// `(in_scope, red, yellow, green)` per unit.
type Counts = BTreeMap<String, (i64, i64, i64, i64)>;

fn counts(report: &pb::CoverageReport) -> Counts {
    report
        .groups
        .iter()
        .map(|g| (g.key.clone(), (g.in_scope, g.red, g.yellow, g.green)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_at_once_with_a_backlog_and_wait_only_when_asked() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let alias = test_store.alias();
    let reader = TestHub::start_with(test_store, |c| c.server.project = false).await;
    let population = synthetic::population(18, 60);
    let answers = reader.stream(&population.records, 400).await;
    assert!(answers
        .iter()
        .flat_map(|a| &a.outcomes)
        .all(|o| o.status == pb::RecordStatus::Accepted as i32));
    let persons = population.persons.len() as i64;

    // Coverage answers at once: nothing is projected, and every person waits.
    let mut client = reader.dossiers().await;
    let report = client
        .get_coverage(coverage_request(false, Duration::from_secs(30)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.waiting, persons);
    assert!(report.groups.iter().all(|g| g.in_scope == 0));

    // A listing says the same in its header, and lists nobody yet.
    let unit = population.persons[0].unit_code.clone();
    let listing = client
        .list_dossiers(pb::ListDossiersRequest {
            purpose: PURPOSE.into(),
            filter: Some(pb::DossierFilter {
                unit_code: unit.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let header = listing.metadata().get("trainhub-waiting").unwrap().to_str();
    assert_eq!(header.unwrap(), persons.to_string());
    let mut stream = listing.into_inner();
    assert!(stream.message().await.unwrap().is_none());

    // Each person's dossier is computed alone, from its records; they make the exact counts.
    let mut exact = Counts::new();
    for p in &population.persons {
        let d = reader.dossier(&p.national_id, "").await.unwrap();
        assert_eq!(d.unit_code, p.unit_code);
        // Out of scope is EXEMPT; coverage counts the others.
        let light = pb::Light::try_from(d.light).unwrap();
        if light == pb::Light::Exempt {
            continue;
        }
        let entry = exact.entry(d.unit_code.clone()).or_default();
        entry.0 += 1;
        match light {
            pb::Light::Red => entry.1 += 1,
            pb::Light::Yellow => entry.2 += 1,
            pb::Light::Green => entry.3 += 1,
            other => panic!("light {other:?}"),
        }
    }
    assert!(exact.values().map(|c| c.0).sum::<i64>() > 0);

    // Asking to wait while nobody projects: refused within the caller's deadline.
    let refused = client
        .get_coverage(coverage_request(true, Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DeadlineExceeded, "{refused:?}");
    assert!(
        refused.message().contains("still wait for the projector"),
        "{refused:?}"
    );

    // A projecting hub on the same store catches up; the waiting reader then gets the exact
    // report, and a read without waiting has nobody waiting.
    let projector = TestHub::start_on(alias).await;
    let report = client
        .get_coverage(coverage_request(true, Duration::from_secs(60)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.waiting, 0);
    assert_eq!(counts(&report), exact);
    let at_once = client
        .get_coverage(coverage_request(false, Duration::from_secs(30)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((at_once.waiting, counts(&at_once)), (0, exact));
    projector.stop().await;
    reader.stop().await;
}

/// A load leaves the planner's statistics of empty tables behind (the test server runs without
/// autovacuum, as a store may): the projector's refresh gathers them for the tables a load
/// changed, and a second refresh leaves the records table alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_planner_statistics_are_refreshed_once() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = TestHub::start_with(test_store, |c| c.server.project = false).await;
    let population = synthetic::population(19, 150);
    hub.stream(&population.records, 500).await;
    let records = hub
        .store
        .table_count(trainhub_store::read::Table::SourceRecords)
        .await
        .unwrap();
    assert!(records >= 1000, "a load of {records} records");
    // The server publishes a connection's row counts a moment after its transactions: wait
    // until the records table's count is complete.
    let live = || async {
        trainhub_tests::count(
            &hub.store,
            "SELECT COALESCE(MAX(n_live_tup), 0) AS n FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = 'source_records'",
        )
        .await
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while live().await < records {
        assert!(
            std::time::Instant::now() < until,
            "row counts never published"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = hub.store.refresh_statistics().await.unwrap();
    assert!(first.iter().any(|t| t == "source_records"), "{first:?}");
    let second = hub.store.refresh_statistics().await.unwrap();
    assert!(!second.iter().any(|t| t == "source_records"), "{second:?}");
    hub.stop().await;
}

/// With more than `SHARED_COUNTED` shared marks waiting (a bulk load's classes and accounts),
/// the waiting count is the persons marked themselves, read without resolving the shared
/// marks; with fewer, it is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_shared_marks_are_not_resolved_to_count_the_waiting() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = TestHub::start_with(test_store, |c| c.server.project = false).await;
    let population = synthetic::population(20, 30);
    hub.stream(&population.records, 500).await;
    let store = &hub.store;
    let exact = store.waiting_count().await.unwrap();
    assert_eq!(exact, population.persons.len());
    // Persons projected since their own marks, but standing behind a class or account mark,
    // still wait: the count is what the readers' stale set holds.
    sqlx::query(
        "DELETE FROM dossier_dirty WHERE person_key IN (SELECT person_key FROM dossier_dirty \
         WHERE person_key NOT LIKE 'class:%' AND person_key NOT LIKE 'acct:%' \
         ORDER BY person_key LIMIT 10)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let stale = store.stale_persons().await.unwrap().len();
    assert_eq!(store.waiting_count().await.unwrap(), stale);
    let own = trainhub_tests::count(
        store,
        "SELECT COUNT(*) AS n FROM dossier_dirty \
         WHERE person_key NOT LIKE 'class:%' AND person_key NOT LIKE 'acct:%'",
    )
    .await;
    // Shared marks of classes nobody is enrolled in, beyond the exact count's limit.
    let extra = trainhub_store::read::SHARED_COUNTED + 1;
    sqlx::query(
        "INSERT INTO dossier_dirty (person_key) \
         SELECT 'class:none-' || g FROM generate_series(1, $1) g",
    )
    .bind(extra)
    .execute(store.pool())
    .await
    .unwrap();
    assert!(
        stale > own as usize,
        "{stale} stale, {own} marked themselves"
    );
    assert_eq!(store.waiting_count().await.unwrap(), own as usize);
    hub.stop().await;
}
