//! Reads scoped by cadre-management authority (issue 19, criterion 1): a reader configured
//! with `authorities` sees its own cadres' dossiers and is refused anyone else's — a cadre of
//! another county, a provincial cadre, and a person who does not exist, all alike; its
//! listings and coverage count its scope only; audit rows name the scope; events carry the
//! authority, and a queue bound to one authority's routing key receives only its persons.

use crate::fixtures::{self, rec, HR};
use crate::map::{reader, with_token};
use crate::xapi::{as_partner, HR_TOKEN};
use std::collections::BTreeSet;
use std::time::Duration;
use trainhub::config::AuthorityConfig;
use trainhub_proto::v1 as pb;
use trainhub_tests::broker::{random_name, wait_for, Broker};
use trainhub_tests::{partner, Backend, TestHub, TestStore};

const COUNTY: &str = "js-nanjing";
const COUNTY_TOKEN: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";
const PROVINCE_TOKEN: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";

/// A person record of `authority` (empty: none recorded).
fn person(id: &str, record: &str, authority: &str) -> pb::Record {
    let mut r = rec(HR, record, 1, fixtures::person(id, "某", "county"));
    if let Some(pb::record::Body::Person(p)) = &mut r.body {
        p.authority = authority.into();
    }
    r
}

async fn dossier(hub: &TestHub, token: &str, id: &str) -> Result<pb::Dossier, tonic::Status> {
    let request = pb::GetDossierRequest {
        national_id: id.into(),
        purpose: "任免审查".into(),
        ..Default::default()
    };
    let mut client = hub.dossiers().await;
    client
        .get_dossier(with_token(token, request))
        .await
        .map(|r| r.into_inner())
}

async fn listed(hub: &TestHub, token: &str, authority: &str) -> BTreeSet<String> {
    let request = pb::ListDossiersRequest {
        purpose: "年度培训计划".into(),
        filter: Some(pb::DossierFilter {
            authority: authority.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut client = hub.dossiers().await;
    let mut stream = client
        .list_dossiers(with_token(token, request))
        .await
        .unwrap()
        .into_inner();
    let mut keys = BTreeSet::new();
    while let Some(d) = stream.message().await.unwrap() {
        keys.insert(d.person_key);
    }
    keys
}

async fn in_scope(hub: &TestHub, token: &str) -> i64 {
    let request = pb::CoverageRequest {
        group_by: "unit".into(),
        purpose: "年度培训计划".into(),
        ..Default::default()
    };
    let mut client = hub.dossiers().await;
    let report = client
        .get_coverage(with_token(token, request))
        .await
        .unwrap()
        .into_inner();
    report.groups.iter().map(|g| g.in_scope).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_scoped_to_a_county_sees_its_cadres_only() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let exchange = random_name("trainhub.dossier.a");
    let (county_queue, all_queue) = (random_name("county-"), random_name("all-"));
    broker
        .watch(
            &county_queue,
            &exchange,
            &format!("dossier.changed.{COUNTY}.#"),
        )
        .await
        .unwrap();
    broker.watch(&all_queue, &exchange, "#").await.unwrap();
    let hub = TestHub::start_with(test_store, |c| {
        c.partners = vec![partner("hr", HR, HR_TOKEN)];
        c.readers = vec![
            reader("county-reader", COUNTY_TOKEN, &[COUNTY]),
            reader("province-reader", PROVINCE_TOKEN, &[]),
        ];
        c.events.url = Some(trainhub_tests::broker::amqp_url());
        c.events.exchange = exchange.clone();
    })
    .await;
    let ids: Vec<String> = (1..=5).map(fixtures::id).collect();
    let records = vec![
        person(&ids[0], "P1", COUNTY),
        person(&ids[1], "P2", COUNTY),
        person(&ids[2], "P3", "js-suzhou"),
        person(&ids[3], "P4", "js-prov"),
        person(&ids[4], "P5", ""),
    ];
    let mut ingest = hub.ingest().await;
    let out = ingest
        .submit(as_partner(HR_TOKEN, records))
        .await
        .unwrap()
        .into_inner();
    assert!(
        out.outcomes.iter().all(|o| o.reason_code.is_empty()),
        "{out:?}"
    );
    let projected = wait_for(Duration::from_secs(30), || async {
        hub.store.dirty_count().await.unwrap() == 0 && hub.store.outbox_depth().await.unwrap() == 0
    })
    .await;
    assert!(projected);

    // Its own cadres, with their authority; anyone else is refused alike.
    let own = dossier(&hub, COUNTY_TOKEN, &ids[0])
        .await
        .expect("its own cadre");
    assert_eq!(own.authority, COUNTY);
    let unknown = fixtures::id(99);
    let mut refusals = Vec::new();
    for other in [&ids[2], &ids[3], &ids[4], &unknown] {
        let e = dossier(&hub, COUNTY_TOKEN, other).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{other}: {e:?}");
        refusals.push(e.message().to_owned());
    }
    assert!(
        refusals.iter().all(|m| m == &refusals[0]),
        "the same refusal whether the person exists or not: {refusals:?}"
    );
    // The unscoped reader reads everyone, and is told when nobody is there.
    assert_eq!(
        dossier(&hub, PROVINCE_TOKEN, &ids[3])
            .await
            .unwrap()
            .authority,
        "js-prov"
    );
    let e = dossier(&hub, PROVINCE_TOKEN, &unknown).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Listings and coverage count the scope only.
    let county_keys = listed(&hub, COUNTY_TOKEN, "").await;
    assert_eq!(county_keys.len(), 2, "{county_keys:?}");
    assert!(listed(&hub, COUNTY_TOKEN, "js-suzhou").await.is_empty());
    assert_eq!(listed(&hub, PROVINCE_TOKEN, "").await.len(), 5);
    assert_eq!(listed(&hub, PROVINCE_TOKEN, "js-suzhou").await.len(), 1);
    assert_eq!(in_scope(&hub, COUNTY_TOKEN).await, 2);
    assert_eq!(in_scope(&hub, PROVINCE_TOKEN).await, 5);

    // The audit trail names the scope.
    let scoped = trainhub_tests::count(
        &hub.store,
        &format!("SELECT COUNT(*) AS n FROM audit_log WHERE principal = 'county-reader[{COUNTY}]'"),
    )
    .await;
    assert!(scoped >= 3, "{scoped} audit rows name the scope");

    // Events carry the authority; the county's queue gets its own persons' only.
    let county_events = broker
        .drain(&county_queue, Duration::from_secs(2))
        .await
        .unwrap();
    let all_events = broker
        .drain(&all_queue, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(all_events.len(), 5);
    let bodies: Vec<serde_json::Value> = county_events
        .iter()
        .map(|d| serde_json::from_slice(&d.data).unwrap())
        .collect();
    let keys: BTreeSet<String> = bodies
        .iter()
        .map(|b| b["person_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, county_keys, "the county's queue: its two cadres");
    assert!(
        bodies.iter().all(|b| b["authority"] == COUNTY),
        "{bodies:?}"
    );
    broker.delete(&[county_queue, all_queue]).await;
    broker.delete_exchange(&exchange).await;
    hub.stop().await;
}

/// An authority code that could not route (a dot, a wildcard) is refused with the field named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authority_that_cannot_route_is_refused() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let out = hub
        .submit(vec![person(&fixtures::id(1), "P1", "js.nanjing#")])
        .await;
    assert_eq!(out[0].reason_code, "UNKNOWN_CODE", "{out:?}");
    assert!(out[0].message.contains("person.authority"), "{out:?}");
    hub.stop().await;
}

/// A person whose HR record names no authority gets its unit's from `[[authorities]] units`
/// (an exact unit before a prefix); one that names its authority keeps it. A mapping that
/// names one unit for two authorities stops the hub at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_an_authority_gets_its_units() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let authority = |code: &str, parent: Option<&str>, units: &[&str]| AuthorityConfig {
        code: code.into(),
        parent: parent.map(str::to_owned),
        units: units.iter().map(|u| u.to_string()).collect(),
    };
    let mut bad = TestHub::config_for(&test_store);
    bad.authorities = vec![
        authority("js-nanjing", None, &["U00*"]),
        authority("js-suzhou", None, &["U00*"]),
    ];
    let refused = trainhub::startup::Application::build(&bad).await.err();
    let message = format!("{:#}", refused.expect("refused"));
    assert!(
        message.contains("[[authorities]]") && message.contains("U00*"),
        "{message}"
    );

    let hub = TestHub::start_with(test_store, |c| {
        c.authorities = vec![
            authority("js-prov", None, &[]),
            authority("js-nanjing", Some("js-prov"), &["U00*"]),
            authority("js-suzhou", Some("js-prov"), &["U001"]),
        ];
    })
    .await;
    let ids: Vec<String> = (1..=3).map(fixtures::id).collect();
    let mut other_unit = person(&ids[1], "P2", "");
    if let Some(pb::record::Body::Person(p)) = &mut other_unit.body {
        p.unit_code = "U002".into();
    }
    let out = hub
        .submit(vec![
            person(&ids[0], "P1", ""),
            other_unit,
            person(&ids[2], "P3", "js-prov"),
        ])
        .await;
    assert!(out.iter().all(|o| o.reason_code.is_empty()), "{out:?}");
    let mut got = Vec::new();
    for id in &ids {
        got.push(hub.dossier(id, "").await.unwrap().authority);
    }
    assert_eq!(got, ["js-suzhou", "js-nanjing", "js-prov"]);
    hub.stop().await;
}
