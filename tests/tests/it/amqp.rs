//! The AMQP source connector against the real RabbitMQ (DESIGN §6.3, §7; issue 4): valid
//! records stored exactly once, invalid ones dead-lettered in the store and by the broker,
//! every message accounted for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use trainhub_connectors::registry::{ConnectorConfig, Context};
use trainhub_connectors::synthetic::{self, HR};
use trainhub_pipeline::sink::SinkFuture;
use trainhub_pipeline::{Envelopes, ErrorKind, RecordSink, SinkError, Verdict};
use trainhub_proto::v1 as pb;
use trainhub_store::read::LetterFilter;
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{Backend, TestHub, TestStore};

pub use trainhub_tests::{count, key, stored_keys};

/// 500 invalid messages of every kind: undecodable bytes, unknown JSON fields, records that fail
/// validation, and records of a system the connector does not speak for. Returns the messages
/// and the reason code each must be dead-lettered with.
fn invalid_messages(feed: &Feed, good: &pb::Record) -> Vec<((String, Vec<u8>), &'static str)> {
    let hr = feed.routing_key(HR, "person");
    let good_json = trainhub_proto::encode_json(good);
    let good_id = match &good.body {
        Some(pb::record::Body::Person(p)) => p.national_id.clone(),
        _ => panic!("a person"),
    };
    let mut out = Vec::new();
    for i in 0..500 {
        let (payload, reason) = match i % 10 {
            0 => (format!("not json {i}").into_bytes(), "MALFORMED_PAYLOAD"),
            1 => (
                good_json[..good_json.len() / 2].to_vec(),
                "MALFORMED_PAYLOAD",
            ),
            2 => {
                let text = String::from_utf8(good_json.clone()).unwrap();
                let text = text.replacen(
                    "\"record_id\"",
                    &format!("\"recordid{i}\":1,\"record_id\""),
                    1,
                );
                (text.into_bytes(), "MALFORMED_PAYLOAD")
            }
            3..=6 => {
                // A validation failure from the synthetic bad records, under its own id.
                let bad = synthetic::bad_records(&good_id);
                let mut r = bad[i % bad.len()].clone();
                let s = r.source.as_mut().unwrap();
                s.record_id = format!("BAD-{i}");
                let reason = match s.record_id.as_str() {
                    _ if i % bad.len() == 0 => "INVALID_NATIONAL_ID",
                    _ if i % bad.len() == 1 => "UNKNOWN_CODE",
                    _ if i % bad.len() == 2 => "BAD_DATE",
                    _ if i % bad.len() == 3 => "MISSING_FIELD",
                    _ if i % bad.len() == 4 => "NEGATIVE_HOURS",
                    _ => "KIND_MISMATCH",
                };
                let routing = feed.routing_key(&s.system, &s.kind);
                out.push(((routing, trainhub_proto::encode_json(&r)), reason));
                continue;
            }
            _ => {
                // A well-formed record of another system, sent on the HR partner's queue.
                let mut r = good.clone();
                let s = r.source.as_mut().unwrap();
                s.system = "intruder".into();
                s.record_id = format!("X-{i}");
                (trainhub_proto::encode_json(&r), "SYSTEM_MISMATCH")
            }
        };
        out.push(((hr.clone(), payload), reason));
    }
    out
}

/// The reason of the broker's first `x-death` entry of a dead-lettered message.
fn death_reason(d: &lapin::message::Delivery) -> Option<String> {
    use lapin::types::AMQPValue;
    let headers = d.properties.headers().as_ref()?;
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return None;
    };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else {
        return None;
    };
    match first.inner().get("reason") {
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
        _ => None,
    }
}

async fn ten_thousand(backend: Backend) {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(backend).await else {
        return;
    };
    let feed = Feed::new(500);
    let hub = TestHub::start_with(test_store, |c| c.connectors = feed.configs()).await;

    let population = synthetic::population(41, 750);
    let valid: Vec<pb::Record> = population.records[..9_500].to_vec();
    let good = population
        .records
        .iter()
        .find(|r| matches!(r.body, Some(pb::record::Body::Person(_))))
        .unwrap();
    let invalid = invalid_messages(&feed, good);
    let mut messages = feed.messages(&valid);
    messages.extend(invalid.iter().map(|(m, _)| m.clone()));
    // Interleave the invalid messages with the valid ones.
    let mut order: Vec<usize> = (0..messages.len()).collect();
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let shuffled: Vec<_> = order.iter().map(|&i| messages[i].clone()).collect();
    assert_eq!(shuffled.len(), 10_000);
    feed.declare(&broker).await.unwrap();
    broker.publish_all("trainhub.in", &shuffled).await.unwrap();

    // 451 letters: the 50 copies of one truncated record are one letter (see below).
    let done = wait_for(Duration::from_secs(240), || async {
        hub.store
            .table_count(trainhub_store::read::Table::SourceRecords)
            .await
            .unwrap()
            == 9_500
            && hub
                .store
                .table_count(trainhub_store::read::Table::DeadLetters)
                .await
                .unwrap()
                == 451
    })
    .await;
    let stored = hub
        .store
        .table_count(trainhub_store::read::Table::SourceRecords)
        .await
        .unwrap();
    let letters = hub
        .store
        .table_count(trainhub_store::read::Table::DeadLetters)
        .await
        .unwrap();
    let waiting = count(&hub.store, "SELECT COUNT(*) AS n FROM dossier_dirty").await;
    assert!(
        done,
        "all 10,000 messages are accounted for: {stored} of 9,500 records stored, {letters} of \
         451 letters, {waiting} persons waiting for the projector"
    );

    // Every valid record stored exactly once: each key is there, and the raw log received
    // each once.
    let expected: HashSet<_> = valid.iter().map(key).collect();
    assert_eq!(stored_keys(&hub.store).await, expected);
    assert_eq!(
        hub.store
            .table_count(trainhub_store::read::Table::RawLog)
            .await
            .unwrap(),
        9_500
    );
    let mut statuses = BTreeMap::new();
    for c in &feed.connectors {
        let s = hub.status(&c.name);
        assert_eq!(s.state().as_str(), "running");
        use std::sync::atomic::Ordering::Relaxed;
        for (name, n) in [
            ("accepted", &s.counters.accepted),
            ("parked", &s.counters.parked),
            ("rejected", &s.counters.rejected),
            ("duplicate", &s.counters.duplicate),
        ] {
            *statuses.entry(name).or_insert(0) += n.load(Relaxed);
        }
    }
    assert_eq!(
        statuses["accepted"] + statuses["parked"],
        9_500,
        "{statuses:?}"
    );
    assert_eq!(statuses["rejected"], 500, "{statuses:?}");
    assert_eq!(statuses["duplicate"], 0, "{statuses:?}");

    // Every invalid input is a dead letter with its reason, its bytes and its AMQP headers;
    // the same bytes again (the 50 copies of one truncated record) are one letter while it
    // waits, and the broker's dead queue below still holds every copy.
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 1_000)
        .await
        .unwrap();
    let mut want: HashMap<(Vec<u8>, &str), usize> = HashMap::new();
    for ((_, payload), reason) in &invalid {
        want.insert((payload.clone(), *reason), 1);
    }
    assert_eq!(letters.len(), want.len());
    assert_eq!(want.len(), 451, "500 inputs, 50 of them the same bytes");
    let mut got: HashMap<(Vec<u8>, &str), usize> = HashMap::new();
    for l in &letters {
        assert!(feed.connectors.iter().any(|c| c.name == l.connector));
        assert_eq!(l.format, "json");
        let headers: serde_json::Value = serde_json::from_str(&l.headers).unwrap();
        assert!(headers["routing_key"]
            .as_str()
            .unwrap()
            .starts_with(&feed.prefix));
        assert!(!l.message.is_empty());
        let reason = invalid
            .iter()
            .map(|(_, r)| *r)
            .find(|r| *r == l.reason_code)
            .unwrap_or_else(|| panic!("unexpected reason {}", l.reason_code));
        *got.entry((l.payload.clone(), reason)).or_default() += 1;
    }
    assert_eq!(
        got, want,
        "each invalid input dead-lettered once with its reason"
    );

    // The broker's dead-letter queues hold a copy of each, rejected by the hub.
    hub.stop().await;
    let mut dead = Vec::new();
    for c in &feed.connectors {
        dead.extend(
            broker
                .drain(&c.dead_queue(), Duration::from_secs(2))
                .await
                .unwrap(),
        );
    }
    assert_eq!(dead.len(), 500);
    let mut copies: HashMap<Vec<u8>, usize> = HashMap::new();
    for d in &dead {
        assert_eq!(death_reason(d).as_deref(), Some("rejected"));
        *copies.entry(d.data.clone()).or_default() += 1;
    }
    let mut published: HashMap<Vec<u8>, usize> = HashMap::new();
    for ((_, payload), _) in &invalid {
        *published.entry(payload.clone()).or_default() += 1;
    }
    assert_eq!(copies, published);
    // Accounted for: stored + refused = published; nothing is left in the queues.
    assert_eq!(
        expected.len() as u64 + statuses["rejected"],
        shuffled.len() as u64
    );
    for c in &feed.connectors {
        assert_eq!(broker.ready(&c.queue()).await.unwrap(), 0);
    }
    broker.delete(&feed.queues()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_postgres() {
    ten_thousand(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_sqlite() {
    ten_thousand(Backend::Sqlite).await;
}

/// Commits through the real pipeline, but reports the first batch as failed after it committed:
/// what a connector sees when a commit's answer is lost (the database committed, the
/// connection dropped before it said so).
struct LostAnswer {
    inner: std::sync::Arc<trainhub_pipeline::sink::PipelineSink>,
    lost: std::sync::atomic::AtomicBool,
}

impl RecordSink for LostAnswer {
    fn commit(&self, batch: Envelopes) -> SinkFuture<'_, Vec<Verdict>> {
        Box::pin(async move {
            let statuses = self.inner.commit(batch).await?;
            if !self.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(SinkError {
                    kind: ErrorKind::Transient,
                    message: "connection reset after COMMIT".into(),
                });
            }
            Ok(statuses)
        })
    }

    fn refuse(
        &self,
        connector: &str,
        system: &str,
        message: Vec<trainhub_pipeline::Inbound>,
        cause: &SinkError,
    ) -> SinkFuture<'_, Verdict> {
        self.inner.refuse(connector, system, message, cause)
    }
}

/// A batch whose commit answer was lost is not acknowledged; it is committed again and comes
/// back `DUPLICATE`, then acknowledged. Stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_batch_whose_answer_was_lost_comes_back_duplicate() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let feed = Feed::new(100);
    let config = TestHub::config_for(&test_store);
    let pipeline = trainhub::startup::open_pipeline(&config, true)
        .await
        .unwrap();
    let hr = feed.connectors[0].clone();
    let records: Vec<pb::Record> = synthetic::population(45, 40)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .collect();
    feed.declare(&broker).await.unwrap();
    broker
        .publish_all("trainhub.in", &feed.messages(&records))
        .await
        .unwrap();

    let sink = std::sync::Arc::new(LostAnswer {
        inner: trainhub_pipeline::sink::PipelineSink::new(pipeline.clone()),
        lost: Default::default(),
    });
    let status = std::sync::Arc::new(trainhub_connectors::status::ConnectorStatus::new(
        hr.name.clone(),
        "amqp",
    ));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = ConnectorConfig::Amqp(hr.clone()).spawn(Context {
        sink,
        keyer: pipeline.keyer().clone(),
        status: status.clone(),
        stop,
    });
    use std::sync::atomic::Ordering::Relaxed;
    let n = records.len() as u64;
    let c = &status.counters;
    let done = wait_for(Duration::from_secs(60), || async {
        c.accepted.load(Relaxed) + c.parked.load(Relaxed) + c.duplicate.load(Relaxed) >= n
    })
    .await;
    assert!(done);
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let duplicate = c.duplicate.load(Relaxed);
    assert!(duplicate > 0, "the first batch came back DUPLICATE");
    assert_eq!(
        c.accepted.load(Relaxed) + c.parked.load(Relaxed) + duplicate,
        n,
        "each message counted once per commit that answered"
    );
    assert_eq!(
        stored_keys(pipeline.store()).await,
        records.iter().map(key).collect::<HashSet<_>>()
    );
    assert_eq!(
        broker.ready(&hr.queue()).await.unwrap(),
        0,
        "all acknowledged"
    );
    assert_eq!(status.state().as_str(), "stopped");
    broker.delete(&feed.queues()).await;
}

/// `format = "protobuf"` on a quorum queue: encoded `trainhub.v1.Record`s are stored; bytes
/// that are not one are dead-lettered as `MALFORMED_PAYLOAD` at stage `decode` (and by the
/// broker into the quorum dead-letter queue), on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_messages() {
    use prost::Message as _;
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let mut feed = Feed::new(50);
    feed.connectors.truncate(1);
    feed.connectors[0].format = "protobuf".into();
    feed.connectors[0].queue_type = Some("quorum".into());
    let configs = feed.configs();
    let hub = TestHub::start_with(test_store, |c| c.connectors = configs).await;
    let records: Vec<pb::Record> = synthetic::population(53, 10)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .collect();
    let mut messages: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| (feed.routing_key(HR, "person"), r.encode_to_vec()))
        .collect();
    messages.push((feed.routing_key(HR, "person"), vec![0xff, 0x01, 0x02]));
    feed.declare(&broker).await.unwrap();
    broker.publish_all("trainhub.in", &messages).await.unwrap();
    let done = wait_for(Duration::from_secs(60), || async {
        hub.store
            .table_count(trainhub_store::read::Table::DeadLetters)
            .await
            .unwrap()
            == 1
            && hub
                .store
                .table_count(trainhub_store::read::Table::SourceRecords)
                .await
                .unwrap()
                == records.len() as i64
    })
    .await;
    assert!(done);
    let letter = &hub
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap()[0];
    assert_eq!(
        (
            letter.stage.as_str(),
            letter.reason_code.as_str(),
            letter.format.as_str()
        ),
        ("decode", "MALFORMED_PAYLOAD", "protobuf")
    );
    assert_eq!(letter.payload, vec![0xff, 0x01, 0x02]);
    hub.stop().await;
    let dead = broker
        .drain(&feed.connectors[0].dead_queue(), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].data, vec![0xff, 0x01, 0x02]);
    broker.delete(&feed.queues()).await;
}

/// A connector with `format = <profile>` (DESIGN §6.3): a party school publishes its own term
/// document; one message maps to every record in it. Unreadable messages and messages that
/// hold no record are dead-lettered, by the hub and by the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_publishes_its_own_format_through_a_profile() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let mut feed = Feed::new(20);
    feed.connectors.truncate(1);
    feed.connectors[0].format = "party-school-json".into();
    let configs = feed.configs();
    let hub = TestHub::start_with(test_store, |c| c.connectors = configs).await;
    let term = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../connectors/profiles/party-school-json/samples/term-2026-spring.json"),
    )
    .unwrap();
    let key = feed.routing_key(HR, "term");
    let messages = vec![
        (key.clone(), term.clone()),
        (key.clone(), b"\xff not json".to_vec()),
        (key.clone(), b"[]".to_vec()),
    ];
    feed.declare(&broker).await.unwrap();
    broker.publish_all("trainhub.in", &messages).await.unwrap();
    let count = |table| {
        let store = &hub.store;
        async move { store.table_count(table).await.unwrap() }
    };
    use trainhub_store::read::Table;
    let done = wait_for(Duration::from_secs(60), || async {
        count(Table::SourceRecords).await == 22 && count(Table::DeadLetters).await == 2
    })
    .await;
    assert!(
        done,
        "{} records, {} letters",
        count(Table::SourceRecords).await,
        count(Table::DeadLetters).await
    );
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    for l in &letters {
        assert_eq!(
            (
                l.stage.as_str(),
                l.reason_code.as_str(),
                l.connector.as_str()
            ),
            (
                "decode",
                "MALFORMED_PAYLOAD",
                feed.connectors[0].name.as_str()
            ),
            "{l:?}"
        );
        assert!(l.format.contains("party-school-json@"), "{}", l.format);
    }
    assert!(letters
        .iter()
        .any(|l| l.message.contains("holds no record")));
    // The same document again: stored once, logged twice.
    broker
        .publish_all("trainhub.in", &[(key, term)])
        .await
        .unwrap();
    let again = wait_for(Duration::from_secs(60), || async {
        count(Table::RawLog).await == 44
    })
    .await;
    assert!(again, "raw log holds {}", count(Table::RawLog).await);
    assert_eq!(count(Table::SourceRecords).await, 22);
    assert_eq!(
        hub.status(&feed.connectors[0].name).state().as_str(),
        "running"
    );
    hub.stop().await;
    let dead = broker
        .drain(&feed.connectors[0].dead_queue(), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        dead.len(),
        2,
        "the broker dead-letters both refused messages"
    );
    broker.delete(&feed.queues()).await;
}
