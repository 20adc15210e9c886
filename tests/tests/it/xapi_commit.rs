//! An xAPI statement and the records it makes commit together (issue 15): when that commit
//! fails the platform is answered 5xx and nothing is kept, so its retry lands the hours. A
//! PostgreSQL trigger makes the first insert of a learning record fail, once.

use crate::fixtures::{self, ACCOUNTS};
use crate::xapi::{base64_encode, http, online_hours, xapi_hub, MOOC_TOKEN};
use trainhub_tests::{count, Backend, TestStore};

/// Fails the first insert of a learning record into `source_records` (a sequence, so the
/// count survives the rollback it causes).
const FAIL_ONCE: &[&str] = &[
    "CREATE SEQUENCE learning_inserts",
    "CREATE FUNCTION fail_first_learning() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN IF nextval('learning_inserts') = 1 THEN \
     RAISE EXCEPTION 'injected: the first learning record does not commit'; END IF; \
     RETURN NEW; END $$",
    "CREATE TRIGGER fail_first_learning BEFORE INSERT ON source_records FOR EACH ROW \
     WHEN (NEW.kind = 'learning') EXECUTE FUNCTION fail_first_learning()",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_answered_5xx_and_the_retry_lands_the_hours() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = xapi_hub(test_store).await;
    let ada = fixtures::id(1);
    crate::xapi::persons_and_links(&hub, &[&ada], &[(&ada, "u1")]).await;
    for sql in FAIL_ONCE {
        sqlx::query(sql).execute(hub.store.pool()).await.unwrap();
    }

    let statement = format!(
        r#"{{"id":"0b6c1a5e-2d3f-4a5b-8c7d-9e0f1a2b3c4d",
        "actor":{{"account":{{"homePage":"{ACCOUNTS}","name":"u1"}}}},
        "verb":{{"id":"http://adlnet.gov/expapi/verbs/completed"}},
        "object":{{"id":"https://mooc.example.cn/courses/c1"}},
        "result":{{"duration":"PT90M"}},"timestamp":"2026-03-01T10:00:00+08:00"}}"#
    );
    let basic = format!("Basic {}", base64_encode(&format!("mooc:{MOOC_TOKEN}")));
    let headers = [
        ("Authorization", basic.as_str()),
        ("X-Experience-API-Version", "1.0.3"),
    ];
    let post = || {
        http(
            hub.http_addr,
            "POST",
            "/xapi/statements",
            &headers,
            &statement,
        )
    };

    let (status, body) = post().await;
    assert!((500..600).contains(&status), "first POST: {status} {body}");
    let statements = count(&hub.store, "SELECT COUNT(*) AS n FROM xapi_statements").await;
    assert_eq!(statements, 0, "no statement kept without its records");
    assert_eq!(online_hours(&hub, &ada).await, 0.0);

    let (status, body) = post().await;
    assert_eq!(status, 200, "retried POST: {body}");
    assert!(
        body.contains("0b6c1a5e-2d3f-4a5b-8c7d-9e0f1a2b3c4d"),
        "{body}"
    );
    assert_eq!(
        online_hours(&hub, &ada).await,
        2.0,
        "90 minutes at 45 per 学时"
    );
    let statements = count(&hub.store, "SELECT COUNT(*) AS n FROM xapi_statements").await;
    assert_eq!(statements, 1);

    // Posted a third time it is the same statement: 200, nothing changes.
    let (status, _) = post().await;
    assert_eq!(status, 200);
    assert_eq!(online_hours(&hub, &ada).await, 2.0);
    hub.stop().await;
}
