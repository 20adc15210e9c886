//! Dead-letter listing and replay (issue 4): letters whose cause is fixed are accepted on
//! replay, the others stay dead with their new reason; over gRPC and on the command line.

use crate::amqp::key;
use std::collections::HashSet;
use std::time::Duration;
use trainhub_connectors::synthetic::{self, HR};
use trainhub_proto::v1 as pb;
use trainhub_store::read::Table;
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{statuses, Backend, TestHub, TestStore};

async fn list(hub: &TestHub, request: pb::ListDeadLettersRequest) -> Vec<pb::DeadLetter> {
    let mut client = hub.sync_health().await;
    let mut out = Vec::new();
    let mut request = request;
    loop {
        let page = client
            .list_dead_letters(request.clone())
            .await
            .expect("lists")
            .into_inner();
        out.extend(page.dead_letters);
        if page.next_page_token.is_empty() {
            return out;
        }
        request.page_token = page.next_page_token;
    }
}

async fn replay(hub: &TestHub, request: pb::ReplayDeadLettersRequest) -> Vec<pb::ReplayedLetter> {
    hub.sync_health()
        .await
        .replay_dead_letters(request)
        .await
        .expect("replays")
        .into_inner()
        .letters
}

fn outcome_statuses(letters: &[pb::ReplayedLetter]) -> Vec<String> {
    let outcomes: Vec<pb::RecordOutcome> =
        letters.iter().map(|l| l.outcome.clone().unwrap()).collect();
    statuses(&outcomes)
}

/// A connector configured for the wrong system refuses a partner's records
/// (`SYSTEM_MISMATCH`); once the configuration is fixed, replay stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_causes_are_accepted_on_replay() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let mut feed = Feed::new(100);
    feed.connectors.truncate(1);
    let name = feed.connectors[0].name.clone();
    feed.connectors[0].system = "hr-legacy".into();
    let misconfigured = feed.configs();
    let hub = TestHub::start_with(test_store, |c| c.connectors = misconfigured).await;

    let records: Vec<pb::Record> = synthetic::population(49, 30)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == HR)
        .collect();
    let n = records.len();
    let mut messages = feed.messages(&records);
    messages.push((
        feed.routing_key(HR, "person"),
        b"{\"source\": oops}".to_vec(),
    ));
    feed.declare(&broker).await.unwrap();
    broker.publish_all("trainhub.in", &messages).await.unwrap();
    let dead = wait_for(Duration::from_secs(60), || async {
        hub.store.table_count(Table::DeadLetters).await.unwrap() == n as i64 + 1
    })
    .await;
    assert!(dead, "every message dead-lettered");
    assert_eq!(
        hub.store.table_count(Table::SourceRecords).await.unwrap(),
        0
    );

    // Listed by connector and reason, in pages, newest first.
    let all = list(
        &hub,
        pb::ListDeadLettersRequest {
            connector: name.clone(),
            page_size: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), n + 1);
    assert!(all
        .windows(2)
        .all(|w| w[0].id.parse::<i64>().unwrap() > w[1].id.parse::<i64>().unwrap()));
    let mismatched = list(
        &hub,
        pb::ListDeadLettersRequest {
            reason_code: "SYSTEM_MISMATCH".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(mismatched.len(), n);
    assert!(mismatched.iter().all(|l| l.stage == "identity"
        && l.format == "json"
        && l.message.contains("hr-legacy")
        && !l.payload.is_empty()));
    let bad_page = hub
        .sync_health()
        .await
        .list_dead_letters(pb::ListDeadLettersRequest {
            page_token: "nonsense".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_page.code(), tonic::Code::InvalidArgument);

    // Replayed before the fix: still refused, still listed, one attempt more.
    let again = replay(
        &hub,
        pb::ReplayDeadLettersRequest {
            connector: name.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome_statuses(&again), vec!["REJECTED"; n + 1]);
    let still = list(&hub, pb::ListDeadLettersRequest::default()).await;
    assert_eq!(still.len(), n + 1);
    assert!(still
        .iter()
        .all(|l| l.replay_attempts == 1 && l.replayed_at.is_empty()));

    // The operator fixes the connector's system and restarts the hub; replay stores them.
    let test_store = hub.stop_keeping_store().await;
    let fixed: Vec<_> = feed
        .configs()
        .into_iter()
        .map(|c| match c {
            trainhub::config::ConnectorConfig::Amqp(mut a) => {
                a.system = HR.into();
                trainhub::config::ConnectorConfig::Amqp(a)
            }
        })
        .collect();
    let hub = TestHub::start_with(test_store, |c| c.connectors = fixed).await;
    let replayed = replay(
        &hub,
        pb::ReplayDeadLettersRequest {
            reason_code: "SYSTEM_MISMATCH".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(replayed.len(), n);
    assert!(outcome_statuses(&replayed)
        .iter()
        .all(|s| s == "ACCEPTED" || s == "PARKED"));
    let stored: HashSet<_> = records.iter().map(key).collect();
    assert_eq!(crate::amqp::stored_keys(&hub.store).await, stored);

    // Replayed letters are kept, marked, and not listed by default; replaying again finds
    // nothing; the malformed one is still dead with its reason.
    let open = list(&hub, pb::ListDeadLettersRequest::default()).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].reason_code, "MALFORMED_PAYLOAD");
    let kept = list(
        &hub,
        pb::ListDeadLettersRequest {
            include_replayed: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kept.len(), n + 1);
    assert_eq!(kept.iter().filter(|l| !l.replayed_at.is_empty()).count(), n);
    let nothing = replay(
        &hub,
        pb::ReplayDeadLettersRequest {
            reason_code: "SYSTEM_MISMATCH".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(nothing.is_empty());
    let by_id = replay(
        &hub,
        pb::ReplayDeadLettersRequest {
            ids: vec![open[0].id.clone()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(outcome_statuses(&by_id), vec!["REJECTED"]);
    assert_eq!(
        by_id[0].outcome.as_ref().unwrap().reason_code,
        "MALFORMED_PAYLOAD"
    );
    let bad_id = hub
        .sync_health()
        .await
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            ids: vec!["x1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), tonic::Code::InvalidArgument);
    hub.stop().await;
    broker.delete(&feed.queues()).await;
}

/// `trainhub dlq list` and `trainhub dlq replay` on an embedded store with no hub running:
/// gRPC records refused for bad values are listed by reason, replayed (still refused, their
/// cause is in the data) and listed again with the attempt counted.
#[tokio::test]
async fn dlq_commands_list_and_replay() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let good = synthetic::population(51, 1).persons[0].national_id.clone();
    let bad = synthetic::bad_records(&good);
    let out = hub.submit(bad.clone()).await;
    assert_eq!(statuses(&out), vec!["REJECTED"; bad.len()]);
    let test_store = hub.stop_keeping_store().await;

    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
            .args(args)
            .arg("--data-dir")
            .arg(test_store.dir.path())
            .arg("--store")
            .arg(&test_store.url)
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = run(&["dlq", "list", "--reason", "UNKNOWN_CODE"]);
    assert!(
        listed.contains("UNKNOWN_CODE") && listed.contains("\n1 letter\n"),
        "{listed}"
    );
    assert!(!listed.contains(&good), "no national ID in the listing");
    let all = run(&["dlq", "list", "--format", "json"]);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all.as_array().unwrap().len(), bad.len());
    let replayed = run(&["dlq", "replay", "--connector", "grpc"]);
    assert!(
        replayed.contains(&format!("replayed {} letters", bad.len())),
        "{replayed}"
    );
    assert!(replayed.contains("REJECTED"), "{replayed}");
    let json = run(&["dlq", "list", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["replay_attempts"] == 1));
}
