//! Partner and reader authentication (issue 6, DESIGN §6.3, §8): bearer tokens checked against
//! configured SHA-256 digests, roles per service, a partner only submits as its own system, and
//! the ops port guards everything but probes and metrics.

use std::collections::HashSet;
use tonic::{Code, Request};
use trainhub::config::{Digests, PartnerConfig, ReaderConfig};
use trainhub_api::auth::token_digest;
use trainhub_connectors::synthetic::{self, HR, SCHOOL};
use trainhub_proto::v1 as pb;
use trainhub_store::read::{LetterFilter, Table};
use trainhub_tests::{http_get_with, Backend, TestHub, TestStore};

const HR_TOKEN: &str = "3b0c6f1e9d2a4c8b7e5f0a1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7";
const READER_TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100";
const OPS_TOKEN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcdef";
const REVIEWER_TOKEN: &str = "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";
/// The ops team's next token, configured beside the current one during a rotation.
const OPS_TOKEN_NEXT: &str = "1122334455667788990011223344556677889900112233445566778899001122";

fn with<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

async fn secured_hub() -> Option<TestHub> {
    let test_store = TestStore::new(Backend::Sqlite).await?;
    Some(
        TestHub::start_with(test_store, |c| {
            c.partners = vec![PartnerConfig {
                name: "hr-system".into(),
                system: HR.into(),
                max_silence_seconds: None,
                token_sha256: Some(Digests::One(token_digest(HR_TOKEN))),
                token_file: None,
                roles: vec!["ingest".into()],
                records_per_second: None,
                cert_subject: None,
            }];
            c.readers = vec![
                ReaderConfig {
                    name: "appointments".into(),
                    token_sha256: Some(Digests::One(token_digest(READER_TOKEN))),
                    token_file: None,
                    roles: vec!["dossier:read".into()],
                    authorities: Vec::new(),
                },
                ReaderConfig {
                    name: "identity-desk".into(),
                    token_sha256: Some(Digests::One(token_digest(REVIEWER_TOKEN))),
                    token_file: None,
                    roles: vec!["review:write".into()],
                    authorities: Vec::new(),
                },
                ReaderConfig {
                    name: "ops".into(),
                    token_sha256: Some(Digests::Many(vec![
                        token_digest(OPS_TOKEN),
                        token_digest(OPS_TOKEN_NEXT),
                    ])),
                    token_file: None,
                    roles: vec!["health:read".into()],
                    authorities: Vec::new(),
                },
            ];
        })
        .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authenticated_scoped_and_held_to_their_roles() {
    let Some(hub) = secured_hub().await else {
        return;
    };
    let population = synthetic::population(89, 6);
    let of = |system| trainhub_tests::of_system(&population.records, system);
    let (hr, school) = (of(HR), of(SCHOOL));
    assert!(!hr.is_empty() && !school.is_empty());
    let mut ingest = hub.ingest().await;

    // No token, a malformed header, an unknown token: UNAUTHENTICATED, nothing stored.
    let request = || pb::SubmitRequest {
        records: hr.clone(),
    };
    let none = ingest.submit(request()).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let wrong = ingest
        .submit(with(request(), "not-a-configured-token"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    let mut basic = Request::new(request());
    basic
        .metadata_mut()
        .insert("authorization", "Basic aHI6aHI=".parse().unwrap());
    assert_eq!(
        ingest.submit(basic).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        hub.store.table_count(Table::RawLog).await.unwrap(),
        0,
        "a refused call leaves nothing"
    );

    // The HR partner submitting the party school's records: each refused, dead-lettered.
    let mut mixed = hr.clone();
    mixed.extend(school.iter().cloned());
    let outcomes = ingest
        .submit(with(pb::SubmitRequest { records: mixed }, HR_TOKEN))
        .await
        .expect("an authenticated partner submits")
        .into_inner()
        .outcomes;
    let (mine, others) = outcomes.split_at(hr.len());
    assert!(mine
        .iter()
        .all(|o| o.status() != pb::RecordStatus::Rejected));
    for o in others {
        assert_eq!(o.status(), pb::RecordStatus::Rejected);
        assert_eq!(o.reason_code, "SYSTEM_MISMATCH", "{o:?}");
    }
    let stored: HashSet<String> = trainhub_tests::stored_keys(&hub.store)
        .await
        .into_iter()
        .map(|(system, _, _)| system)
        .collect();
    assert_eq!(
        stored,
        HashSet::from([HR.to_owned()]),
        "no school record stored"
    );
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 1_000)
        .await
        .unwrap();
    assert_eq!(letters.len(), school.len());
    assert!(letters
        .iter()
        .all(|l| l.reason_code == "SYSTEM_MISMATCH" && l.scope == HR));

    // Roles: a partner may not read dossiers, a reader may not submit, and each reads only
    // what its roles allow.
    let national_id = hr
        .iter()
        .find_map(|r| match &r.body {
            Some(pb::record::Body::Person(p)) => Some(p.national_id.clone()),
            _ => None,
        })
        .expect("an HR person");
    let read = || pb::GetDossierRequest {
        national_id: national_id.clone(),
        purpose: "appointment-review".into(),
        ..Default::default()
    };
    let mut dossiers = hub.dossiers().await;
    let denied = dossiers
        .get_dossier(with(read(), HR_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        dossiers.get_dossier(read()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let audited =
        || async { trainhub_tests::count(&hub.store, "SELECT COUNT(*) AS n FROM audit_log").await };
    assert_eq!(audited().await, 0, "refused reads leave no audit row");
    let no_purpose = pb::GetDossierRequest {
        purpose: "  ".into(),
        ..read()
    };
    let invalid = dossiers
        .get_dossier(with(no_purpose, READER_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");
    assert!(invalid.message().contains("purpose"), "{invalid:?}");
    let dossier = dossiers
        .get_dossier(with(read(), READER_TOKEN))
        .await
        .expect("a reader reads")
        .into_inner();
    assert!(!dossier.person_key.is_empty());
    let trail = hub.store.audit_log(None, None, 10).await.unwrap();
    assert_eq!(trail.len(), 1, "one read, one audit row");
    let row = &trail[0].entry;
    assert_eq!(
        (
            row.principal.as_str(),
            row.method.as_str(),
            row.person_key.as_str(),
            row.purpose.as_str()
        ),
        (
            "appointments",
            "GetDossier",
            dossier.person_key.as_str(),
            "appointment-review"
        )
    );
    assert!(
        !row.returned.contains(&national_id),
        "the trail holds no national ID"
    );
    dossiers
        .get_dossier(with(read(), READER_TOKEN))
        .await
        .unwrap();
    assert_eq!(audited().await, 2, "each read its own row");

    // The trail cannot be changed, not even by someone holding the store's connection.
    for change in [
        "UPDATE audit_log SET purpose = 'x'",
        "DELETE FROM audit_log",
    ] {
        let refused = sqlx::query(change).execute(hub.store.pool()).await;
        assert!(refused.is_err(), "{change} must fail");
    }
    assert_eq!(audited().await, 2);

    // `trainhub audit` lists the reads about a person, found by national ID.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .args([
            "audit",
            "--format",
            "json",
            "--person",
            &national_id,
            "--store",
        ])
        .arg(&hub.test_store.url)
        .arg("--data-dir")
        .arg(hub.test_store.dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(
        |r| r["principal"] == "appointments" && r["person_key"] == dossier.person_key.as_str()
    ));
    let coverage = dossiers
        .get_coverage(with(
            pb::CoverageRequest {
                purpose: "test".into(),
                group_by: "unit".into(),
                ..Default::default()
            },
            READER_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(coverage.code(), Code::PermissionDenied, "no coverage:read");
    let submit = ingest
        .submit(with(request(), READER_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(submit.code(), Code::PermissionDenied);
    let mut health = hub.sync_health().await;
    assert_eq!(
        health
            .list_connectors(with(pb::ListConnectorsRequest {}, HR_TOKEN))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied,
        "a partner does not read sync health"
    );
    assert!(health
        .list_connectors(with(pb::ListConnectorsRequest {}, OPS_TOKEN))
        .await
        .is_ok());
    let replay = health
        .replay_dead_letters(with(pb::ReplayDeadLettersRequest::default(), OPS_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(replay.code(), Code::PermissionDenied, "no dlq:replay");

    // The review queue: reviewers only (it shows names and decides identities).
    let mut review = trainhub_proto::v1::review_service_client::ReviewServiceClient::connect(
        format!("http://{}", hub.grpc_addr),
    )
    .await
    .unwrap();
    let list = || pb::ListConflictsRequest::default();
    let anonymous = review.list_conflicts(list()).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    for token in [READER_TOKEN, OPS_TOKEN, HR_TOKEN] {
        let denied = review
            .list_conflicts(with(list(), token))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        let resolve = review
            .resolve_conflict(with(pb::ResolveConflictRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(resolve.code(), Code::PermissionDenied, "{resolve:?}");
    }
    assert!(review
        .list_conflicts(with(list(), REVIEWER_TOKEN))
        .await
        .is_ok());
    let unmatched = review
        .list_unmatched(with(pb::ListUnmatchedRequest::default(), REVIEWER_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert!(unmatched.next_page_token.is_empty());

    // The ops port: probes, metrics and the (data-free) dashboard page open, the data behind
    // health:read.
    let http = hub.http_addr;
    for open in ["/healthz", "/readyz", "/metrics", "/"] {
        assert_eq!(
            http_get_with(http, open, &[]).await.unwrap().0,
            200,
            "{open}"
        );
    }
    for guarded in ["/api/status"] {
        assert_eq!(http_get_with(http, guarded, &[]).await.unwrap().0, 401);
        let reader = format!("Bearer {READER_TOKEN}");
        let ops = format!("Bearer {OPS_TOKEN}");
        let next = format!("Bearer {OPS_TOKEN_NEXT}");
        assert_eq!(
            http_get_with(http, guarded, &[("Authorization", &next)])
                .await
                .unwrap()
                .0,
            200,
            "both tokens work during a rotation"
        );
        assert_eq!(
            http_get_with(http, guarded, &[("Authorization", &reader)])
                .await
                .unwrap()
                .0,
            403
        );
        assert_eq!(
            http_get_with(http, guarded, &[("Authorization", &ops)])
                .await
                .unwrap()
                .0,
            200
        );
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_is_append_only_on_postgres() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let keys = trainhub_store::Keyring::generate("test");
    let store = trainhub_store::Store::connect(&test_store.url, keys)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let entry = trainhub_store::audit::AuditEntry {
        principal: "appointments".into(),
        method: "GetDossier".into(),
        person_key: "k".repeat(64),
        purpose: "appointment-review".into(),
        returned: "dossier".into(),
    };
    store.audit(&[entry.clone(), entry]).await.unwrap();
    for change in [
        "UPDATE audit_log SET purpose = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(change).execute(store.pool()).await;
        assert!(refused.is_err(), "{change} must fail");
    }
    assert_eq!(
        store
            .audit_log(None, Some("appointments"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await;
}

/// A partner over its rate gets `RESOURCE_EXHAUSTED` with a retry hint, while another partner's
/// stream, sending at the same time, is never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_over_its_rate_is_refused_while_another_flows() {
    const SCHOOL_TOKEN: &str = "5566778899aabbccddeeff00112233445566778899aabbccddeeff0011223344";
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let partner = |name: &str, system: &str, token: &str, rate: Option<u32>| PartnerConfig {
        name: name.into(),
        system: system.into(),
        max_silence_seconds: None,
        token_sha256: Some(Digests::One(token_digest(token))),
        token_file: None,
        roles: vec!["ingest".into()],
        records_per_second: rate,
        cert_subject: None,
    };
    let hub = TestHub::start_with(test_store, |c| {
        c.partners = vec![
            partner("hr-system", HR, HR_TOKEN, Some(300)),
            partner("school", SCHOOL, SCHOOL_TOKEN, None),
        ];
    })
    .await;
    let population = synthetic::population(91, 700);
    let of = |system| trainhub_tests::of_system(&population.records, system);
    let (hr, school) = (of(HR), of(SCHOOL));
    assert!(
        hr.len() >= 1_200 && school.len() >= 500,
        "{} {}",
        hr.len(),
        school.len()
    );

    // The school streams 20 batches while HR sends 1,200 records as fast as it can.
    let mut ingest = hub.ingest().await;
    let batches: Vec<pb::SubmitRequest> = (0..20)
        .map(|i| pb::SubmitRequest {
            records: school[(i * 25) % (school.len() - 250)..][..250].to_vec(),
        })
        .collect();
    let school_stream = {
        let mut client = hub.ingest().await;
        tokio::spawn(async move {
            let requests = with(tokio_stream::iter(batches), SCHOOL_TOKEN);
            let mut replies = client.stream(requests).await.unwrap().into_inner();
            let mut answered = 0;
            while let Some(reply) = replies.message().await.expect("never refused") {
                assert_eq!(reply.outcomes.len(), 250);
                answered += 1;
            }
            answered
        })
    };
    let (mut accepted, mut refused, mut hint) = (0, 0, None);
    for chunk in hr[..1_200].chunks(150) {
        let request = with(
            pb::SubmitRequest {
                records: chunk.to_vec(),
            },
            HR_TOKEN,
        );
        match ingest.submit(request).await {
            Ok(_) => accepted += chunk.len(),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                refused += 1;
                hint = status
                    .metadata()
                    .get("grpc-retry-pushback-ms")
                    .map(|v| v.to_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        school_stream.await.unwrap(),
        20,
        "every school batch answered"
    );
    assert!(refused > 0, "HR went over 300 records a second");
    assert!(hint.is_some(), "a refusal says when to retry");
    assert!(accepted >= 300, "HR's first second went through");
    println!("HR: {accepted} accepted, {refused} calls refused (retry hint {hint:?} ms); school: 20 of 20 batches");

    // An oversized batch is refused outright, naming the limit.
    let oversized = ingest
        .submit(with(
            pb::SubmitRequest {
                records: vec![hr[0].clone(); 10_001],
            },
            SCHOOL_TOKEN,
        ))
        .await
        .unwrap_err();
    assert_eq!(oversized.code(), Code::InvalidArgument);
    assert!(oversized.message().contains("10000"), "{oversized:?}");
    hub.stop().await;
}

/// The dashboard of a hub with principals asks for a token in the browser and shows its data
/// once given one with `health:read`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_a_token() {
    let Some(browser_dir) = trainhub_tests::browser_dir() else {
        return;
    };
    let Some(hub) = secured_hub().await else {
        return;
    };
    let output = tokio::process::Command::new("node")
        .arg(browser_dir.join("dashboard_token.mjs"))
        .arg(format!("http://{}/", hub.http_addr))
        .arg(READER_TOKEN)
        .arg(OPS_TOKEN)
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    hub.stop().await;
}
