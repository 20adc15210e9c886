//! Several hub instances on one store (issue 8): any instance lists every instance's
//! connectors, each with its instance id, and two replays at once never replay the same
//! dead letter.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use trainhub_connectors::synthetic::{self, HR};
use trainhub_model::policy::Policy;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::Inbound;
use trainhub_pipeline::Pipeline;
use trainhub_proto::Format;
use trainhub_store::read::{LetterFilter, Table};
use trainhub_store::Store;
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{Backend, TestHub, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_lists_every_instances_connectors() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let feed = Feed::new(10);
    let (a, b) = (feed.connectors[0].clone(), feed.connectors[1].clone());
    let alias = test_store.alias();
    let first = TestHub::start_with(test_store, |c| {
        c.server.instance = Some("hub-a".into());
        c.connectors = vec![trainhub::config::ConnectorConfig::Amqp(a.clone())];
    })
    .await;
    let second = TestHub::start_with(alias, |c| {
        c.server.instance = Some("hub-b".into());
        c.connectors = vec![trainhub::config::ConnectorConfig::Amqp(b.clone())];
    })
    .await;
    let listed = |hub: &TestHub| {
        let hub_addr = hub.grpc_addr;
        async move {
            let mut client =
                trainhub_proto::v1::sync_health_service_client::SyncHealthServiceClient::connect(
                    format!("http://{hub_addr}"),
                )
                .await
                .unwrap();
            client
                .list_connectors(trainhub_proto::v1::ListConnectorsRequest {})
                .await
                .unwrap()
                .into_inner()
                .connectors
                .into_iter()
                .map(|c| (c.instance, c.name))
                .collect::<HashSet<_>>()
        }
    };
    let both: HashSet<(String, String)> = [
        ("hub-a".to_owned(), a.name.clone()),
        ("hub-b".to_owned(), b.name.clone()),
    ]
    .into();
    for hub in [&first, &second] {
        let seen = wait_for(Duration::from_secs(30), || async {
            both.is_subset(&listed(hub).await)
        })
        .await;
        assert!(seen, "{:?} lists both instances' connectors", hub.grpc_addr);
    }
    // A stopped instance withdraws its status.
    second.stop().await;
    let gone = wait_for(Duration::from_secs(30), || async {
        !listed(&first)
            .await
            .contains(&("hub-b".to_owned(), b.name.clone()))
    })
    .await;
    assert!(gone, "a stopped instance drops out of the list");
    assert!(listed(&first)
        .await
        .contains(&("hub-a".to_owned(), a.name.clone())));
    first.stop().await;
    broker.delete(&feed.queues()).await;
}

/// The cluster's shared data keys, as every instance reads them from one key file.
static KEYS: std::sync::LazyLock<trainhub_store::Keyring> =
    std::sync::LazyLock::new(|| trainhub_store::Keyring::generate("cluster"));

async fn pipeline(url: &str, scope: &str) -> Pipeline {
    let store = Store::connect(url, KEYS.clone()).await.unwrap();
    store.migrate().await.unwrap();
    Pipeline::new(
        store,
        PersonKeyer::new(b"cluster secret"),
        Arc::new(Policy::default()),
    )
    .with_scopes(HashMap::from([("hr-queue".to_owned(), scope.to_owned())]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replays_at_once_replay_each_letter_once() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    // Letters: HR persons refused because the connector was set up for the wrong system.
    let misconfigured = pipeline(&test_store.url, "wrong-system").await;
    let persons: Vec<_> = synthetic::population(79, 1_500)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .take(1_500)
        .collect();
    for chunk in persons.chunks(300) {
        let inbound = chunk
            .iter()
            .map(|r| Inbound::decode(trainhub_proto::encode_json(r), Format::Json, String::new()));
        let batch = misconfigured.prepare_inbound("wrong-system", inbound);
        misconfigured.commit("hr-queue", batch).await.unwrap();
    }
    let letters = misconfigured
        .store()
        .table_count(Table::DeadLetters)
        .await
        .unwrap();
    assert_eq!(letters, persons.len() as i64);

    // The configuration is fixed. Another instance's replay holds the older half of the letters.
    let (one, two) = (
        pipeline(&test_store.url, HR).await,
        pipeline(&test_store.url, HR).await,
    );
    let all = LetterFilter::default();
    let mut ids: Vec<i64> = one
        .store()
        .dead_letters(&all, None, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    ids.sort_unstable();
    let (held, free) = ids.split_at(ids.len() / 2);
    let lease = Duration::from_secs(600);
    let elsewhere = two
        .store()
        .claim_letters(held, "elsewhere", lease)
        .await
        .unwrap();
    assert_eq!(elsewhere, held);
    assert!(
        one.store()
            .claim_letters(held, "third", lease)
            .await
            .unwrap()
            .is_empty(),
        "a held letter cannot be claimed again"
    );
    let replayed: Vec<i64> = one
        .replay(&all, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        replayed, free,
        "a replay leaves letters another replay holds"
    );

    // The other replay ends without storing them; two instances then replay at once.
    two.store().release_letters("elsewhere").await.unwrap();
    let (a, b) = tokio::join!(one.replay(&all, 10_000), two.replay(&all, 10_000));
    let (a, b) = (a.unwrap(), b.unwrap());
    let ids_a: HashSet<i64> = a.iter().map(|r| r.id).collect();
    let ids_b: HashSet<i64> = b.iter().map(|r| r.id).collect();
    assert!(ids_a.is_disjoint(&ids_b), "no letter replayed twice");
    assert_eq!(
        ids_a.union(&ids_b).copied().collect::<HashSet<_>>(),
        held.iter().copied().collect(),
        "every held letter replayed once"
    );
    let statuses: HashSet<&str> = a
        .iter()
        .chain(&b)
        .map(|r| r.outcome.status.as_str())
        .collect();
    assert!(!statuses.contains("duplicate"), "{statuses:?}");
    assert_eq!(
        one.store().table_count(Table::SourceRecords).await.unwrap(),
        persons.len() as i64
    );
    println!(
        "replays at once took {} and {} of {} letters",
        ids_a.len(),
        ids_b.len(),
        held.len()
    );
    // Every letter is now replayed; a later replay finds nothing, and no claim is left.
    assert!(one.replay(&all, 10_000).await.unwrap().is_empty());
    let claimed = crate::amqp::count(
        one.store(),
        "SELECT COUNT(*) AS n FROM dead_letters WHERE replay_claim IS NOT NULL",
    )
    .await;
    assert_eq!(claimed, 0);
    misconfigured.store().close().await;
    one.store().close().await;
    two.store().close().await;
}
