//! Sync health (issue 5): gRPC partners' status and silence, `SyncHealthService` listings and
//! the watch stream, partner reconciliation, `/metrics` adding up exactly, and the dashboard in
//! a real browser.

use std::time::Duration;
use trainhub_connectors::synthetic;
use trainhub_proto::v1 as pb;
use trainhub_tests::broker::{random_name, wait_for};
use trainhub_tests::{http_get, metric, statuses, Backend, TestHub, TestStore};

/// Records of the synthetic HR system, renamed to `system` so that counters are the test's
/// own.
fn records_of(system: &str, persons: usize, seed: u64) -> Vec<pb::Record> {
    synthetic::population(seed, persons)
        .records
        .into_iter()
        .filter(|r| r.source.as_ref().unwrap().system == synthetic::HR)
        .map(|mut r| {
            r.source.as_mut().unwrap().system = system.to_owned();
            r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partner_turns_degraded_and_recovers() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let system = random_name("p");
    let name = format!("grpc/{system}");
    let hub = TestHub::start_with(test_store, |c| {
        c.partners = vec![trainhub::config::PartnerConfig {
            name: "a partner".into(),
            system: system.clone(),
            max_silence_seconds: Some(2),
            token_sha256: None,
            token_file: None,
            roles: vec!["ingest".into()],
            records_per_second: None,
            cert_subject: None,
        }];
    })
    .await;
    let mut health = hub.sync_health().await;
    let get = |mut h: pb::sync_health_service_client::SyncHealthServiceClient<_>| {
        let name = name.clone();
        async move {
            h.get_connector(pb::GetConnectorRequest { name })
                .await
                .expect("configured partners are listed")
                .into_inner()
        }
    };
    // Configured, nothing sent yet.
    assert_eq!(get(health.clone()).await.state, "starting");
    let mut watch = health
        .watch_connectors(pb::WatchConnectorsRequest {})
        .await
        .unwrap()
        .into_inner();

    let records = records_of(&system, 20, 61);
    let out = hub.submit(records.clone()).await;
    assert!(statuses(&out)
        .iter()
        .all(|s| s == "ACCEPTED" || s == "PARKED"));
    let s = get(health.clone()).await;
    assert_eq!(s.state, "running");
    assert_eq!(s.counters.unwrap().received, records.len() as u64);
    assert!(!s.last_success.is_empty());

    // Silent past its limit: degraded, with the reason.
    let silent = wait_for(Duration::from_secs(10), || async {
        get(health.clone()).await.state == "degraded"
    })
    .await;
    assert!(silent);
    let s = get(health.clone()).await;
    let e = s.last_error.unwrap();
    assert_eq!(
        (e.stage.as_str(), e.reason.as_str()),
        ("silence", "PARTNER_SILENT")
    );
    assert!(s.silence_seconds >= 2.0);

    // The watch stream told of the changes.
    let mut seen = Vec::new();
    while let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::from_secs(3), watch.message()).await
    {
        if c.name == name {
            seen.push(c.state.clone());
            if c.state == "degraded" {
                break;
            }
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("starting"),
        "{seen:?}"
    );
    assert!(seen.contains(&"running".to_owned()) && seen.contains(&"degraded".to_owned()));

    // It speaks again: running.
    hub.submit(records[..1].to_vec()).await;
    assert_eq!(get(health.clone()).await.state, "running");

    // Its own count for a period against what the hub received.
    let now = chrono::Utc::now();
    let report = health
        .report_counts(pb::ReportCountsRequest {
            system: system.clone(),
            kind: String::new(),
            period_start: (now - chrono::Duration::hours(1)).to_rfc3339(),
            period_end: (now + chrono::Duration::minutes(1)).to_rfc3339(),
            count: records.len() as i64 + 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (report.stored, report.difference),
        (records.len() as i64, 3)
    );
    let s = get(health.clone()).await;
    assert_eq!(s.reconciliation.len(), 1);
    assert_eq!(s.reconciliation[0].reported - s.reconciliation[0].stored, 3);
    let bad = health
        .report_counts(pb::ReportCountsRequest {
            system: system.clone(),
            period_start: "yesterday".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let missing = health
        .get_connector(pb::GetConnectorRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let listed = health
        .list_connectors(pb::ListConnectorsRequest {})
        .await
        .unwrap()
        .into_inner()
        .connectors;
    assert!(listed
        .iter()
        .any(|c| c.name == name && !c.instance.is_empty()));
    hub.stop().await;
}

/// `/metrics` counts every record exactly once, by outcome, and the totals add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_add_up_to_what_was_sent() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let system = random_name("m");
    let connector = format!("grpc/{system}");
    let mut records = records_of(&system, 30, 63);
    // Results and the like of persons that are not sent: PARKED.
    let persons: Vec<pb::Record> = records
        .iter()
        .filter(|r| r.source.as_ref().unwrap().kind == "person")
        .cloned()
        .collect();
    let absent = &persons[..3];
    records.retain(|r| !absent.contains(r));
    let mut bad = synthetic::bad_records(&synthetic::population(63, 1).persons[0].national_id);
    bad.retain(|r| r.source.as_ref().unwrap().system == synthetic::HR);
    for r in &mut bad {
        r.source.as_mut().unwrap().system = system.clone();
    }
    let mut sent = Vec::new();
    for batch in [records.clone(), bad.clone(), records[..10].to_vec()] {
        sent.extend(hub.submit(batch).await);
    }
    // An older version of a stored record: SUPERSEDED.
    let mut older = records[0].clone();
    older.source.as_mut().unwrap().version -= 1;
    sent.extend(hub.submit(vec![older]).await);

    let mut expected = std::collections::BTreeMap::new();
    for s in statuses(&sent) {
        *expected.entry(s).or_insert(0.0) += 1.0;
    }
    assert!(expected.len() >= 4, "{expected:?}");
    let (code, text) = http_get(hub.http_addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let at = [("connector", connector.as_str())];
    let received = metric(&text, "trainhub_component_received_records_total", &at);
    let accepted = metric(&text, "trainhub_component_accepted_records_total", &at);
    let duplicate = metric(&text, "trainhub_component_duplicate_records_total", &at);
    let superseded = metric(&text, "trainhub_component_superseded_records_total", &at);
    let parked = metric(&text, "trainhub_component_parked_records_total", &at);
    let rejected = metric(&text, "trainhub_component_rejected_records_total", &at);
    let dead = metric(&text, "trainhub_component_dead_lettered_total", &at);
    assert_eq!(received, sent.len() as f64, "{text}");
    assert_eq!(accepted, expected.get("ACCEPTED").copied().unwrap_or(0.0));
    assert_eq!(duplicate, expected.get("DUPLICATE").copied().unwrap_or(0.0));
    assert_eq!(
        superseded,
        expected.get("SUPERSEDED").copied().unwrap_or(0.0)
    );
    assert_eq!(parked, expected.get("PARKED").copied().unwrap_or(0.0));
    assert_eq!(rejected, expected.get("REJECTED").copied().unwrap_or(0.0));
    assert_eq!(dead, rejected);
    assert_eq!(
        accepted + duplicate + superseded + parked + rejected,
        received
    );
    // Rejections by stage and reason, each one.
    for r in &bad {
        let outcome = sent
            .iter()
            .find(|o| o.record_id == r.source.as_ref().unwrap().record_id)
            .unwrap();
        let n = metric(
            &text,
            "trainhub_component_rejected_records_total",
            &[
                ("connector", connector.as_str()),
                ("reason", outcome.reason_code.as_str()),
            ],
        );
        assert!(n >= 1.0, "{}", outcome.reason_code);
    }
    assert!(text.contains("trainhub_commit_latency_seconds_bucket"));
    assert!(text.contains("trainhub_connector_state{"));
    for p in absent {
        let id = match &p.body {
            Some(pb::record::Body::Person(p)) => p.national_id.clone(),
            _ => unreachable!(),
        };
        assert!(!text.contains(&id), "no national ID in metrics");
    }
    hub.stop().await;
}

/// The dashboard in headless Chromium while records flow: connector rows, counters that grow,
/// a dead letter's reason; the screenshot is kept in `target/test-artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_browser() {
    let Some(browser_dir) = trainhub_tests::browser_dir() else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = TestHub::start_on(test_store).await;
    let system = random_name("d");
    let records = records_of(&system, 60, 65);
    let mut bad = synthetic::bad_records(&synthetic::population(65, 1).persons[0].national_id);
    bad.truncate(2);
    for r in &mut bad {
        r.source.as_mut().unwrap().system = system.clone();
    }
    hub.submit(bad).await;
    // A learning platform's statements: its xAPI source shows them (the hub is open, so any
    // name is a partner: the statements are filed under it).
    let statements: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            serde_json::json!({
                "actor": {"mbox": format!("mailto:learner{i}@mooc.example.cn")},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
                "object": {"id": "https://mooc.example.cn/courses/c1"}
            })
        })
        .collect();
    let posted = crate::lrs::raw(
        hub.http_addr,
        "POST",
        "/xapi/statements",
        &[
            ("Authorization", "Basic bW9vYzpvcGVu"),
            ("X-Experience-API-Version", "1.0.3"),
        ],
        "application/json",
        &serde_json::to_vec(&statements).unwrap(),
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    // Records keep flowing while the browser looks.
    let addr = hub.grpc_addr;
    let flow = tokio::spawn(async move {
        let mut client =
            pb::ingest_service_client::IngestServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        for chunk in records.chunks(10).cycle().take(200) {
            let _ = client
                .submit(pb::SubmitRequest {
                    records: chunk.to_vec(),
                })
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let output = tokio::process::Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(format!("http://{}/", hub.http_addr))
        .arg(format!("grpc/{system}"))
        .arg("INVALID_NATIONAL_ID")
        .arg(&shot)
        .args(["xapi/mooc", "7"])
        .output()
        .await
        .expect("node runs");
    flow.abort();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot"
    );
    hub.stop().await;
}

/// The Grafana dashboard in `deploy/grafana/` is valid JSON and only queries metrics the hub
/// defines.
#[test]
fn grafana_dashboard_queries_the_hub_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("deploy/grafana/trainhub-sync-health.json"))
        .expect("the dashboard file");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    // Where the hub names its instruments and gauges.
    let defined: String = std::fs::read_dir(root.join("services/hub/src/health"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(name) = word.strip_prefix("trainhub_") {
                    let base = name.trim_end_matches("_total").trim_end_matches("_bucket");
                    assert!(
                        defined.contains(&format!("\"trainhub_{base}\"")),
                        "the dashboard queries trainhub_{name}, which the hub does not export"
                    );
                    queried += 1;
                }
            }
        }
    }
    assert!(queried >= 10);
}
