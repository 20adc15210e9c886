//! A RabbitMQ cluster node going away (issue 8): connectors and the outbox relay given the
//! cluster's addresses move to the next node and carry on; nothing is lost and nothing is
//! stored twice. The nodes are TCP stand-ins in front of the test broker, so that one can be
//! cut without stopping the broker for everyone else.

use crate::amqp::{key, stored_keys};
use std::collections::HashSet;
use std::time::Duration;
use trainhub_connectors::synthetic;
use trainhub_store::read::Table;
use trainhub_tests::broker::{random_name, wait_for, Broker, Feed};
use trainhub_tests::proxy::{broker_addr, Node};
use trainhub_tests::{Backend, TestHub, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_and_relay_move_to_the_next_node_when_one_goes_away() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let target = broker_addr().await;
    let (first, second) = (Node::start(target).await, Node::start(target).await);
    let mut feed = Feed::new(100);
    for c in &mut feed.connectors {
        c.url = first.amqp_url();
        c.fallback_urls = vec![second.amqp_url()];
        c.queue_type = Some("quorum".into());
    }
    let exchange = random_name("trainhub.dossier.t");
    let watch = random_name("watch-");
    broker.watch(&watch, &exchange, "#").await.unwrap();

    let records = synthetic::population(67, 2_000).records;
    let records = &records[..24_000];
    feed.declare(&broker).await.unwrap();
    broker
        .publish_all("trainhub.in", &feed.messages(records))
        .await
        .unwrap();

    let configs = feed.configs();
    let (events_first, events_second) = (first.amqp_url(), second.amqp_url());
    let hub = TestHub::start_with(test_store, |c| {
        c.connectors = configs;
        c.events.url = Some(events_first);
        c.events.fallback_urls = vec![events_second];
        c.events.exchange = exchange.clone();
    })
    .await;
    let stored = || async { hub.store.table_count(Table::SourceRecords).await.unwrap() };
    assert!(
        wait_for(Duration::from_secs(120), || async {
            stored().await >= 4_000
        })
        .await,
        "consumption starts on the first node"
    );
    first.cut();
    let at_cut = stored().await;
    assert!(at_cut < 24_000, "cut mid-way ({at_cut} stored)");

    let all = wait_for(Duration::from_secs(240), || async {
        // Every person projected and every event out: a person still marked would add
        // changes after the events are drained.
        stored().await == 24_000
            && hub.store.dirty_count().await.unwrap() == 0
            && hub.store.outbox_depth().await.unwrap() == 0
    })
    .await;
    assert!(all, "the rest arrives through the second node, events too");
    let expected: HashSet<_> = records.iter().map(key).collect();
    assert_eq!(stored_keys(&hub.store).await, expected, "none missing");
    assert_eq!(hub.store.table_count(Table::DeadLetters).await.unwrap(), 0);
    for c in &feed.connectors {
        assert_eq!(hub.status(&c.name).state().as_str(), "running");
        assert_eq!(
            broker.ready(&c.queue()).await.unwrap(),
            0,
            "{} drained",
            c.queue()
        );
    }
    assert_eq!(
        hub.status(trainhub_connectors::amqp::relay::NAME)
            .state()
            .as_str(),
        "running"
    );
    let events = broker.drain(&watch, Duration::from_secs(2)).await.unwrap();
    let ids: HashSet<String> = events
        .iter()
        .filter_map(|d| d.properties.message_id().as_ref().map(|m| m.to_string()))
        .collect();
    // Each person's changes are numbered 1..=seq.
    let changes = crate::amqp::count(
        &hub.store,
        "SELECT CAST(COALESCE(SUM(seq), 0) AS BIGINT) AS n FROM dossier_events",
    )
    .await;
    assert_eq!(
        ids.len() as i64,
        changes,
        "every change went out as an event"
    );
    println!(
        "cut the first node at {at_cut} of 24000 stored; {} events for {changes} changes",
        events.len()
    );
    hub.stop().await;
    let mut queues = feed.queues();
    queues.push(watch);
    broker.delete(&queues).await;
    broker.delete_exchange(&exchange).await;
}
