//! A message the store refuses for good does not block its queue (issue 15): after a bounded
//! number of tries it is dead-lettered — in the hub (stage `store`, `STORE_REFUSED`, bytes kept
//! for replay) and by the broker — and the messages behind it are consumed. A PostgreSQL
//! trigger refuses one record id, as a constraint added by a DBA would.

use std::time::Duration;
use trainhub_connectors::synthetic::{self, HR};
use trainhub_proto::v1 as pb;
use trainhub_store::read::{LetterFilter, Table};
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{count, Backend, TestHub, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_store_refuses_is_dead_lettered_and_the_queue_moves_on() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let mut feed = Feed::new(30);
    feed.connectors.truncate(1);
    let configs = feed.configs();
    let hub = TestHub::start_with(test_store, |c| c.connectors = configs).await;
    let name = feed.connectors[0].name.clone();

    let mut records: Vec<pb::Record> = synthetic::population(51, 40)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .collect();
    records.truncate(200);
    // The refused record sits in the middle of the queue, inside a batch.
    let poison = records[60].source.as_ref().unwrap().record_id.clone();
    for sql in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused by a rule of this database'; END $$"
            .to_owned(),
        format!(
            "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON source_records \
             FOR EACH ROW WHEN (NEW.record_id = '{poison}') EXECUTE FUNCTION refuse_poison()"
        ),
    ] {
        sqlx::query(&sql).execute(hub.store.pool()).await.unwrap();
    }
    feed.declare(&broker).await.unwrap();
    broker
        .publish_all("trainhub.in", &feed.messages(&records))
        .await
        .unwrap();

    let n = records.len() as i64;
    let stored = wait_for(Duration::from_secs(90), || async {
        hub.store.table_count(Table::SourceRecords).await.unwrap() == n - 1
            && hub.store.table_count(Table::DeadLetters).await.unwrap() == 1
    })
    .await;
    assert!(
        stored,
        "every other record stored, the refused one dead-lettered"
    );
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (letter.stage.as_str(), letter.reason_code.as_str()),
        ("store", "STORE_REFUSED")
    );
    assert_eq!(letter.record_id, poison);
    assert_eq!(letter.connector, name);
    assert!(
        letter.message.contains("refused by a rule"),
        "{}",
        letter.message
    );
    assert!(!letter.payload.is_empty(), "the bytes are kept for replay");

    // The broker dead-lettered it too, and the queue is empty.
    let dead = wait_for(Duration::from_secs(30), || async {
        broker
            .ready(&feed.connectors[0].dead_queue())
            .await
            .unwrap()
            == 1
    })
    .await;
    assert!(dead, "the broker's dead-letter queue holds the message");
    assert_eq!(broker.ready(&feed.connectors[0].queue()).await.unwrap(), 0);

    // Once the rule is gone, replay stores it.
    sqlx::query("DROP TRIGGER refuse_poison ON source_records")
        .execute(hub.store.pool())
        .await
        .unwrap();
    let replayed = hub
        .sync_health()
        .await
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            connector: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .letters;
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        count(&hub.store, "SELECT COUNT(*) AS n FROM source_records").await,
        n
    );
    let letter = &hub
        .store
        .dead_letters(
            &LetterFilter {
                include_replayed: true,
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap()[0];
    assert_eq!(
        letter.reason_code, "STORE_REFUSED",
        "the first refusal stays"
    );
    assert_eq!(letter.attempts.len(), 1);
    assert_eq!(letter.attempts[0].outcome, "ACCEPTED");
    hub.stop().await;
    broker.delete(&feed.queues()).await;
}
