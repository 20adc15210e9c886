//! The xAPI statement resource with a real third-party client (issue 7): `@xapi/xapi` from npm
//! sends statements as a learning platform would; the study time lands in the dossiers of the
//! linked persons, a cmi5 session counts once, a voiding statement removes the hours, and the
//! resource refuses what xAPI says it must (no version header, a reused id, bad credentials).

use crate::fixtures::{self, rec, ACCOUNTS, HR, ONLINE};
use trainhub::config::Digests;
use trainhub_api::auth::token_digest;
use trainhub_proto::v1 as pb;
use trainhub_tests::{Backend, TestHub, TestStore};

pub(crate) const HR_TOKEN: &str =
    "b1d2c3e4f5a60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a";
pub(crate) const MOOC_TOKEN: &str =
    "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";
const READER_TOKEN: &str = "d00dfeed00112233445566778899aabbccddeeff00112233445566778899aabb";

use trainhub_tests::partner;

/// A hub with the HR partner, the learning platform `mooc` and a dossier reader.
pub(crate) async fn xapi_hub(test_store: TestStore) -> TestHub {
    TestHub::start_with(test_store, |c| {
        c.partners = vec![
            partner("hr", HR, HR_TOKEN),
            partner("mooc", ONLINE, MOOC_TOKEN),
        ];
        c.readers = vec![trainhub::config::ReaderConfig {
            name: "appointments".into(),
            token_sha256: Some(Digests::One(token_digest(READER_TOKEN))),
            token_file: None,
            roles: vec!["dossier:read".into()],
            authorities: Vec::new(),
        }];
    })
    .await
}

/// The HR partner's person records for `persons` (`P1`, `P2` …), then the platform's `link`s
/// of `(national ID, account)` (`L1`, `L2` …).
pub(crate) async fn persons_and_links(hub: &TestHub, persons: &[&str], links: &[(&str, &str)]) {
    const NAMES: [&str; 3] = ["甲", "乙", "丙"];
    let mut ingest = hub.ingest().await;
    let persons = persons
        .iter()
        .enumerate()
        .map(|(i, id)| {
            rec(
                HR,
                &format!("P{}", i + 1),
                1,
                fixtures::person(id, NAMES[i], "county"),
            )
        })
        .collect();
    ingest.submit(as_partner(HR_TOKEN, persons)).await.unwrap();
    let links = links
        .iter()
        .enumerate()
        .map(|(i, (id, account))| {
            rec(
                ONLINE,
                &format!("L{}", i + 1),
                1,
                fixtures::link(id, account),
            )
        })
        .collect();
    ingest.submit(as_partner(MOOC_TOKEN, links)).await.unwrap();
}

/// A submission of `records` under a partner's bearer `token`.
pub(crate) fn as_partner(
    token: &str,
    records: Vec<pb::Record>,
) -> tonic::Request<pb::SubmitRequest> {
    let mut request = tonic::Request::new(pb::SubmitRequest { records });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Runs one step of `tests/xapi/send.mjs`; its JSON answer.
pub(crate) async fn client(
    dir: &std::path::Path,
    endpoint: &str,
    args: &[&str],
) -> serde_json::Value {
    let out = tokio::process::Command::new("node")
        .arg(dir.join("send.mjs"))
        .arg(args[0])
        .args([endpoint, "mooc", MOOC_TOKEN])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .await
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "{}: {text} {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A raw HTTP request to the ops port: status and body.
pub(crate) async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Online hours of `national_id`'s dossier, all years.
pub(crate) async fn online_hours(hub: &TestHub, national_id: &str) -> f64 {
    let mut request = tonic::Request::new(pb::GetDossierRequest {
        national_id: national_id.into(),
        as_of: "2026-12-31".into(),
        purpose: "test".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {READER_TOKEN}").parse().unwrap(),
    );
    let d = hub
        .dossiers()
        .await
        .get_dossier(request)
        .await
        .unwrap()
        .into_inner();
    d.years.iter().map(|y| y.online_hours).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_xapi_client_sends_and_voids_study_time() {
    let Some(dir) = trainhub_tests::xapi_client_dir() else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = xapi_hub(test_store).await;
    // Two persons, and the platform's accounts linked to them.
    let (ada, bo) = (fixtures::id(1), fixtures::id(2));
    persons_and_links(&hub, &[&ada, &bo], &[(&ada, "u1"), (&bo, "u2")]).await;
    assert_eq!(online_hours(&hub, &ada).await, 0.0);

    let endpoint = format!("http://{}/xapi/", hub.http_addr);
    let learned = client(
        &dir,
        &endpoint,
        &[
            "learn",
            ACCOUNTS,
            "u1",
            "90",
            "https://mooc.example.cn/courses/c1",
        ],
    )
    .await;
    assert_eq!(learned["ok"], true, "{learned}");
    let learned_id = learned["id"].as_str().unwrap().to_owned();
    let attended = client(&dir, &endpoint, &["attend", ACCOUNTS, "u2", "45"]).await;
    assert_eq!(attended["ok"], true, "{attended}");
    assert_eq!(
        attended["ids"].as_array().unwrap().len(),
        1,
        "an id was assigned"
    );
    let session = client(&dir, &endpoint, &["cmi5", ACCOUNTS, "u1", "30"]).await;
    assert_eq!(session["ok"], true, "{session}");

    // The hours are in the linked persons' dossiers; the cmi5 session's two statements are one
    // record, so u1 has 90 + 30 minutes, not 90 + 30 + 30.
    let ada_hours = online_hours(&hub, &ada).await;
    let bo_hours = online_hours(&hub, &bo).await;
    assert!(bo_hours > 0.0, "attended time counts");
    assert!(
        (ada_hours - bo_hours * 120.0 / 45.0).abs() < 0.01,
        "u1: 120 minutes ({ada_hours} 学时), u2: 45 minutes ({bo_hours} 学时)"
    );
    let learning = trainhub_tests::count(
        &hub.store,
        "SELECT COUNT(*) AS n FROM source_records WHERE kind = 'learning' AND deleted = 0",
    )
    .await;
    assert_eq!(
        learning, 3,
        "u1's course, u1's cmi5 session, u2's live lesson"
    );

    // The statement reads back as sent.
    let got = client(&dir, &endpoint, &["get", &learned_id]).await;
    assert_eq!(got["statement"]["id"], learned_id.as_str(), "{got}");
    assert_eq!(got["statement"]["result"]["duration"], "PT90M");

    // Voiding removes the voided statement's hours, and only those.
    let voided = client(&dir, &endpoint, &["void", &learned_id]).await;
    assert_eq!(voided["ok"], true, "{voided}");
    let after = online_hours(&hub, &ada).await;
    assert!(
        (after - bo_hours * 30.0 / 45.0).abs() < 0.01,
        "30 minutes left ({after} 学时)"
    );
    assert_eq!(online_hours(&hub, &bo).await, bo_hours);

    // What the resource refuses.
    let basic = format!("Basic {}", base64_encode(&format!("mooc:{MOOC_TOKEN}")));
    let statement = format!(
        r#"{{"id":"{learned_id}","actor":{{"account":{{"homePage":"{ACCOUNTS}","name":"u1"}}}},
        "verb":{{"id":"http://adlnet.gov/expapi/verbs/completed"}},"object":{{"id":"https://x"}}}}"#
    );
    let (status, body) = http(
        hub.http_addr,
        "POST",
        "/xapi/statements",
        &[("Authorization", &basic)],
        &statement,
    )
    .await;
    assert_eq!(status, 400, "no version header: {body}");
    assert!(body.contains("X-Experience-API-Version"));
    let v = ("X-Experience-API-Version", "1.0.3");
    let path = format!("/xapi/statements?statementId={learned_id}");
    let (status, body) = http(
        hub.http_addr,
        "PUT",
        &path,
        &[("Authorization", &basic), v],
        &statement,
    )
    .await;
    assert_eq!(status, 409, "the same id with other content: {body}");
    let wrong = format!("Basic {}", base64_encode("mooc:not-the-token"));
    let (status, _) = http(
        hub.http_addr,
        "GET",
        &path,
        &[("Authorization", &wrong), v],
        "",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(
        hub.http_addr,
        "GET",
        &path,
        &[("Authorization", &basic), v],
        "",
    )
    .await;
    assert_eq!(
        status, 404,
        "a voided statement is not found by statementId"
    );
    let voided_path = format!("/xapi/statements?voidedStatementId={learned_id}");
    let (status, _) = http(
        hub.http_addr,
        "GET",
        &voided_path,
        &[("Authorization", &basic), v],
        "",
    )
    .await;
    assert_eq!(status, 200, "but by voidedStatementId");
    hub.stop().await;
}

pub(crate) fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The shipped xAPI sample (`connectors/profiles/xapi/samples/statements.json`, seven
/// statements as a learning record store exported them) posted as a platform would: four records of
/// study time land in three dossiers (`failed` and `experienced` credit nothing, a cmi5
/// session's `completed` and `passed` count once); posting the same export again changes
/// nothing — the xAPI form of "all duplicate".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_lrs_export_lands_once() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let hub = xapi_hub(test_store).await;
    let statements = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../connectors/profiles/xapi/samples/statements.json"),
    )
    .unwrap();
    let people = [
        (fixtures::id(11), "zwd1974"),
        (fixtures::id(12), "lxy1975"),
        (fixtures::id(13), "wjg1968"),
    ];
    let mut ingest = hub.ingest().await;
    for (n, (id, account)) in people.iter().enumerate() {
        let person = rec(
            HR,
            &format!("P{n}"),
            1,
            fixtures::person(id, "某", "county"),
        );
        let link = rec(ONLINE, &format!("L{n}"), 1, fixtures::link(id, account));
        ingest
            .submit(as_partner(HR_TOKEN, vec![person]))
            .await
            .unwrap();
        ingest
            .submit(as_partner(MOOC_TOKEN, vec![link]))
            .await
            .unwrap();
    }
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("mooc:{MOOC_TOKEN}")
        )
    );
    let headers = [
        ("Authorization", basic.as_str()),
        ("X-Experience-API-Version", "1.0.3"),
    ];
    let (status, body) = http(
        hub.http_addr,
        "POST",
        "/xapi/statements",
        &headers,
        &statements,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let learning = || async {
        trainhub_tests::count(
            &hub.store,
            "SELECT COUNT(*) AS n FROM source_records WHERE kind = 'learning'",
        )
        .await
    };
    assert_eq!(learning().await, 4);
    // 45 minutes make one 学时: 90 + 120 minutes, 45 minutes, one 30-minute session.
    let want = [210.0 / 45.0, 1.0, 30.0 / 45.0];
    for ((id, account), want) in people.iter().zip(want) {
        let got = online_hours(&hub, id).await;
        assert!(
            (got - want).abs() < 0.01,
            "{account}: {got} 学时, want {want}"
        );
    }
    let raw = || async {
        hub.store
            .table_count(trainhub_store::read::Table::RawLog)
            .await
            .unwrap()
    };
    let logged = raw().await;
    let (again, body) = http(
        hub.http_addr,
        "POST",
        "/xapi/statements",
        &headers,
        &statements,
    )
    .await;
    assert_eq!(again, 200, "{body}");
    assert_eq!(
        raw().await,
        logged,
        "the same statements again change nothing"
    );
    assert_eq!(learning().await, 4);
    let got = online_hours(&hub, &people[0].0).await;
    assert!((got - want[0]).abs() < 0.01);
    hub.stop().await;
}
