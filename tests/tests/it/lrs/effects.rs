//! What the hub does with statements it accepts (issue 16): a 2xx never leaves a dead letter —
//! a statement is stored with its effect (none, for verbs that credit nothing; parked until
//! its account is linked), or refused with 400 and the reason — and the xAPI source has its
//! status, counters and metrics like every other source, its statements ending the partner's
//! silence.

use super::{new_id, statement, Lrs};
use crate::fixtures::{self, rec, HR, ONLINE};
use crate::xapi::{as_partner, online_hours, persons_and_links, HR_TOKEN, MOOC_TOKEN};
use serde_json::json;
use std::time::Duration;
use trainhub_proto::v1 as pb;
use trainhub_tests::{count, Backend, TestStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_statement_is_stored_with_its_effect_and_nothing_is_dead_lettered() {
    let Some(lrs) = Lrs::start(Backend::Postgres).await else {
        return;
    };
    let hub = &lrs.hub;
    let (ada, bo) = (fixtures::id(1), fixtures::id(2));
    persons_and_links(hub, &[&ada, &bo], &[(&ada, "u1")]).await;
    let mut ingest = hub.ingest().await;

    // No timestamp: it is stored, and the time the hub stored it is when the study ended.
    let mut untimed = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c1",
        45,
    );
    untimed.as_object_mut().unwrap().remove("timestamp");
    let answer = lrs.post(&untimed).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        (online_hours(hub, &ada).await - 1.0).abs() < 0.01,
        "45 minutes, one 学时"
    );

    // A duration the mapping cannot use: refused, with the reason.
    let mut unusable = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c2",
        45,
    );
    unusable["result"]["duration"] = json!("PT1X");
    let answer = lrs.post(&unusable).await;
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("duration"), "{}", answer.text());

    // Verbs that credit nothing: stored, no hours.
    let mut no_duration = statement(
        &new_id(),
        "u1",
        "attended",
        "https://mooc.example.cn/live",
        0,
    );
    no_duration["result"]
        .as_object_mut()
        .unwrap()
        .remove("duration");
    let mut zero = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c3",
        0,
    );
    zero["result"]["duration"] = json!("PT0S");
    let quiet = [
        statement(
            &new_id(),
            "u1",
            "experienced",
            "https://mooc.example.cn/c4",
            60,
        ),
        statement(&new_id(), "u1", "failed", "https://mooc.example.cn/c5", 60),
        no_duration,
        zero,
    ];
    for s in &quiet {
        let answer = lrs.post(s).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let id = s["id"].as_str().unwrap();
        assert_eq!(
            lrs.get(&format!("?statementId={id}")).await.status,
            200,
            "stored"
        );
    }
    assert!(
        (online_hours(hub, &ada).await - 1.0).abs() < 0.01,
        "no hours from them"
    );

    // An account not linked yet: stored and parked (waiting, not refused) until its link
    // arrives; then its hours count.
    let answer = lrs
        .post(&statement(
            &new_id(),
            "u2",
            "completed",
            "https://mooc.example.cn/c1",
            90,
        ))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(online_hours(hub, &bo).await, 0.0);
    let link = vec![rec(ONLINE, "L2", 1, fixtures::link(&bo, "u2"))];
    ingest.submit(as_partner(MOOC_TOKEN, link)).await.unwrap();
    assert!(
        (online_hours(hub, &bo).await - 2.0).abs() < 0.01,
        "90 minutes once linked"
    );

    assert_eq!(lrs.stored().await, 6, "every 2xx statement is stored");
    assert_eq!(lrs.letters().await, 0, "and none is a dead letter");
    lrs.hub.stop().await;
}

/// POSTs `body` to the hub's statements with `headers`.
async fn post(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> super::Answer {
    let bytes = serde_json::to_vec(body).unwrap();
    super::raw(
        addr,
        "POST",
        "/xapi/statements",
        headers,
        "application/json",
        &bytes,
    )
    .await
}

const OPS_TOKEN: &str = "0badc0de00112233445566778899aabbccddeeff00112233445566778899aabb";

/// A sync-health request with the ops reader's token.
fn as_ops(name: String) -> tonic::Request<pb::GetConnectorRequest> {
    let mut request = tonic::Request::new(pb::GetConnectorRequest { name });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {OPS_TOKEN}").parse().unwrap(),
    );
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xapi_source_counts_statements_and_records_and_ends_the_silence() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let silent_after = 1;
    let hub = trainhub_tests::TestHub::start_with(test_store, |c| {
        let mut mooc = trainhub_tests::partner("mooc", ONLINE, MOOC_TOKEN);
        mooc.max_silence_seconds = Some(silent_after);
        c.partners = vec![trainhub_tests::partner("hr", HR, HR_TOKEN), mooc];
        c.readers = vec![trainhub::config::ReaderConfig {
            name: "ops".into(),
            token_sha256: Some(trainhub::config::Digests::One(
                trainhub_api::auth::token_digest(OPS_TOKEN),
            )),
            token_file: None,
            roles: vec!["health:read".into()],
            authorities: Vec::new(),
        }];
    })
    .await;
    let ada = fixtures::id(1);
    persons_and_links(&hub, &[&ada], &[(&ada, "u1")]).await;
    let basic = format!(
        "Basic {}",
        crate::xapi::base64_encode(&format!("mooc:{MOOC_TOKEN}"))
    );
    let headers = [
        ("Authorization", basic.as_str()),
        ("X-Experience-API-Version", "1.0.3"),
    ];
    let mut health = hub.sync_health().await;
    let partner = format!("grpc/{ONLINE}");

    // Twelve statements over three seconds, three times the silence limit: two per request,
    // one crediting time (one record), one crediting nothing (no record).
    let rounds = 6;
    for _ in 0..rounds {
        let pair = json!([
            statement(
                &new_id(),
                "u1",
                "completed",
                "https://mooc.example.cn/c1",
                45
            ),
            statement(
                &new_id(),
                "u1",
                "experienced",
                "https://mooc.example.cn/c2",
                45
            ),
        ]);
        let answer = post(hub.http_addr, &headers, &pair).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let p = health
            .get_connector(as_ops(partner.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            p.state, "running",
            "statements end the silence: {:?}",
            p.last_error
        );
    }
    let source = health
        .get_connector(as_ops(format!("xapi/{ONLINE}")))
        .await
        .expect("the xAPI source is listed")
        .into_inner();
    assert_eq!(source.kind, "xapi");
    assert_eq!(source.state, "running");
    let counters = source.counters.unwrap();
    assert_eq!(counters.statements, 2 * rounds, "per statement");
    assert_eq!(counters.received, rounds, "per record");
    assert_eq!(counters.accepted, rounds);
    assert!(!source.last_success.is_empty());
    assert!(source.silence_seconds >= 0.0, "lag is reported");

    // A refused request is the source's last error; the source keeps running.
    let mut bad = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c1",
        45,
    );
    bad["actor"] = json!({"mbox": "should.fail.com"});
    let answer = post(hub.http_addr, &headers, &bad).await;
    assert_eq!(answer.status, 400);
    let source = health
        .get_connector(as_ops(format!("xapi/{ONLINE}")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(source.state, "running");
    let error = source.last_error.expect("the refusal is noted");
    assert_eq!(
        (error.stage.as_str(), error.reason.as_str()),
        ("validate", "INVALID_STATEMENT")
    );
    assert!(error.message.contains("actor.mbox"), "{}", error.message);

    let metrics = crate::lrs::raw(hub.http_addr, "GET", "/metrics", &[], "text/plain", b"")
        .await
        .text();
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("connector=\"xapi/{ONLINE}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(
        line("trainhub_component_received_statements"),
        Some((2 * rounds) as f64),
        "{metrics}"
    );
    assert_eq!(
        line("trainhub_component_received_records"),
        Some(rounds as f64)
    );
    assert_eq!(
        line("trainhub_component_refused_requests"),
        Some(1.0),
        "the refused request is counted: {metrics}"
    );
    // The dashboard's data.
    let bearer = format!("Bearer {OPS_TOKEN}");
    let ops = [("Authorization", bearer.as_str())];
    let status = crate::lrs::raw(
        hub.http_addr,
        "GET",
        "/api/status",
        &ops,
        "application/json",
        b"",
    )
    .await;
    let listed = status.json()["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("xapi/{ONLINE}"))
        .cloned()
        .expect("on the dashboard");
    assert_eq!(listed["statements"], 2 * rounds);
    assert_eq!(listed["received"], rounds);
    let sent = count(&hub.store, "SELECT COUNT(*) AS n FROM xapi_statements").await;
    assert_eq!(sent, (2 * rounds) as i64);
    hub.stop().await;
}
