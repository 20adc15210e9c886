//! GET /xapi/statements as an LRS client uses it: every filter and their combinations, `more`
//! paging to the end (raw and through `@xapi/xapi`), the formats, voiding and
//! `voidedStatementId`, the consistency and modification headers, HEAD, the alternate request
//! syntax, `stored` and `authority`, `/xapi/about` and the resources the hub does not offer.

use super::{new_id, statement, Answer, Lrs};
use crate::fixtures::ACCOUNTS;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use trainhub_tests::Backend;

const C1: &str = "https://mooc.example.cn/courses/c1";
const C2: &str = "https://mooc.example.cn/courses/c2";
const PROGRAMME: &str = "https://mooc.example.cn/programmes/p1";
const REGISTRATION: &str = "ec531277-b57b-4c15-8d91-d292c5b2b8f7";
const TEACHER: &str = "mailto:teacher@mooc.example.cn";

fn ids(answer: &Answer) -> BTreeSet<String> {
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn agent(name: &str) -> String {
    let a = json!({"objectType": "Agent", "account": {"homePage": ACCOUNTS, "name": name}});
    url(&a.to_string())
}

fn url(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Six statements in six requests (so six stored times): u1 and u2, two verbs, two courses,
/// one with a registration and a parent programme, one with an instructor.
async fn seed(lrs: &Lrs) -> Vec<String> {
    let mut made = Vec::new();
    let plan = [
        ("u1", "completed", C1),
        ("u1", "experienced", C2),
        ("u2", "completed", C1),
        ("u2", "experienced", C1),
        ("u1", "completed", C2),
        ("u2", "attended", C2),
    ];
    for (i, (who, verb, course)) in plan.into_iter().enumerate() {
        let id = new_id();
        let mut s = statement(&id, who, verb, course, 30);
        if i == 2 {
            s["context"] = json!({"registration": REGISTRATION,
                "contextActivities": {"parent": {"id": PROGRAMME}}});
        }
        if i == 3 {
            s["context"] = json!({"instructor": {"mbox": TEACHER}});
        }
        let answer = lrs.post(&s).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        made.push(id);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    made
}

/// A statement voiding statement `target`, by the platform's administrator.
fn voiding_of(target: &str) -> Value {
    json!({"actor": {"mbox": "mailto:admin@mooc.example.cn"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
        "object": {"objectType": "StatementRef", "id": target}})
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_paging_and_format_of_a_statement_query() {
    let Some(lrs) = Lrs::start(Backend::Postgres).await else {
        return;
    };
    let s = seed(&lrs).await;
    let all = set(&s.iter().collect::<Vec<_>>());
    assert_eq!(ids(&lrs.get("").await), all);
    let (u1, completed) = (
        agent("u1"),
        "http%3A%2F%2Fadlnet.gov%2Fexpapi%2Fverbs%2Fcompleted",
    );
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        (format!("?agent={u1}"), set(&[&s[0], &s[1], &s[4]])),
        (format!("?verb={completed}"), set(&[&s[0], &s[2], &s[4]])),
        (
            format!("?activity={}", url(C1)),
            set(&[&s[0], &s[2], &s[3]]),
        ),
        (format!("?activity={}", url(PROGRAMME)), set(&[])),
        (
            format!("?activity={}&related_activities=true", url(PROGRAMME)),
            set(&[&s[2]]),
        ),
        (format!("?registration={REGISTRATION}"), set(&[&s[2]])),
        (
            format!("?agent={}", url(&json!({"mbox": TEACHER}).to_string())),
            set(&[]),
        ),
        (
            format!(
                "?agent={}&related_agents=true",
                url(&json!({"mbox": TEACHER}).to_string())
            ),
            set(&[&s[3]]),
        ),
        (
            format!("?agent={u1}&verb={completed}"),
            set(&[&s[0], &s[4]]),
        ),
        (
            format!("?agent={u1}&activity={}", url(C2)),
            set(&[&s[1], &s[4]]),
        ),
        (
            format!("?verb={completed}&activity={}", url(C1)),
            set(&[&s[0], &s[2]]),
        ),
        (
            format!(
                "?agent={}&verb={completed}&activity={}",
                agent("u2"),
                url(C1)
            ),
            set(&[&s[2]]),
        ),
    ];
    for (query, want) in &cases {
        assert_eq!(&ids(&lrs.get(query).await), want, "{query}");
    }
    // since (exclusive) and until (inclusive), by the stored times the hub set.
    let stored: Vec<String> = {
        let answer = lrs.get("?ascending=true").await;
        let list = answer.json()["statements"].as_array().unwrap().clone();
        let order: Vec<String> = list
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(order, s, "ascending is the order stored");
        list.iter()
            .map(|x| x["stored"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest_first = lrs.get("").await.json()["statements"][0]["id"].clone();
    assert_eq!(newest_first, json!(s[5]), "newest first by default");
    let since = lrs.get(&format!("?since={}", url(&stored[2]))).await;
    assert_eq!(ids(&since), set(&[&s[3], &s[4], &s[5]]));
    let until = lrs.get(&format!("?until={}", url(&stored[2]))).await;
    assert_eq!(ids(&until), set(&[&s[0], &s[1], &s[2]]));
    let both = lrs
        .get(&format!(
            "?since={}&until={}&agent={u1}",
            url(&stored[0]),
            url(&stored[4])
        ))
        .await;
    assert_eq!(ids(&both), set(&[&s[1], &s[4]]));

    // `more` to the end: pages of two, each statement once.
    let mut page = lrs.get("?limit=2").await;
    let mut seen = Vec::new();
    loop {
        let body = page.json();
        let list = body["statements"].as_array().unwrap();
        assert!(list.len() <= 2);
        seen.extend(list.iter().map(|x| x["id"].as_str().unwrap().to_owned()));
        let more = body["more"].as_str().unwrap().to_owned();
        if more.is_empty() {
            break;
        }
        page = lrs.call("GET", &more, &[], "application/json", b"").await;
        assert_eq!(page.status, 200, "{}", page.text());
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);

    // Formats.
    let exact = lrs.get(&format!("?statementId={}", s[0])).await.json();
    assert_eq!(exact["actor"]["name"], "学员");
    let by_ids = lrs
        .get(&format!("?statementId={}&format=ids", s[0]))
        .await
        .json();
    assert!(by_ids["actor"].get("name").is_none(), "{by_ids}");
    assert_eq!(
        by_ids["object"],
        json!({"objectType": "Activity", "id": C1})
    );
    let canonical = lrs
        .call(
            "GET",
            &format!("/xapi/statements?statementId={}&format=canonical", s[0]),
            &[("Accept-Language", "en-US")],
            "application/json",
            b"",
        )
        .await
        .json();
    assert_eq!(
        canonical["object"]["definition"]["name"],
        json!({"en-US": "Course"})
    );
    // Single context activities come back as arrays.
    let third = lrs.get(&format!("?statementId={}", s[2])).await.json();
    assert_eq!(
        third["context"]["contextActivities"]["parent"],
        json!([{"id": PROGRAMME}])
    );

    // What a query may not combine or name.
    for bad in [
        format!("?statementId={}&agent={u1}", s[0]),
        format!("?statementId={}&voidedStatementId={}", s[0], s[1]),
        "?colour=red".to_owned(),
        "?limit=-1".to_owned(),
        "?format=full".to_owned(),
        "?since=yesterday".to_owned(),
        "?agent=%7B%22name%22%3A%22x%22%7D".to_owned(),
        "?ascending=maybe".to_owned(),
    ] {
        assert_eq!(lrs.get(&bad).await.status, 400, "{bad}");
    }
    lrs.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_headers_head_alternate_syntax_and_about() {
    let Some(lrs) = Lrs::start(Backend::Sqlite).await else {
        return;
    };
    let s = seed(&lrs).await;
    // stored and authority are the hub's, whatever the client sent.
    let id = new_id();
    let mut own = statement(&id, "u3", "experienced", C1, 5);
    own["stored"] = json!("2000-01-01T00:00:00Z");
    own["authority"] = json!({"mbox": "mailto:someone@else.cn"});
    let posted = lrs.post(&own).await;
    assert_eq!(posted.status, 200);
    assert!(posted
        .header("X-Experience-API-Consistent-Through")
        .is_some());
    let got = lrs.get(&format!("?statementId={id}")).await;
    assert_eq!(got.status, 200);
    let body = got.json();
    assert_ne!(body["stored"], "2000-01-01T00:00:00Z");
    assert_eq!(
        body["authority"]["account"]["name"],
        crate::fixtures::ONLINE
    );
    assert_eq!(body["version"], "1.0.0");
    let consistent = got
        .header("X-Experience-API-Consistent-Through")
        .expect("consistent-through");
    chrono::DateTime::parse_from_rfc3339(consistent).expect("an ISO 8601 time");
    let modified = got
        .header("Last-Modified")
        .expect("last-modified")
        .to_owned();
    chrono::DateTime::parse_from_rfc2822(&modified.replace("GMT", "+0000")).expect("an HTTP date");
    assert!(lrs
        .get("")
        .await
        .header("X-Experience-API-Consistent-Through")
        .is_some());

    // HEAD: the same headers, no body.
    let head = lrs
        .call(
            "HEAD",
            &format!("/xapi/statements?statementId={id}"),
            &[],
            "application/json",
            b"",
        )
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("Last-Modified"), Some(modified.as_str()));

    // Voiding: gone from statementId and from lists, found by voidedStatementId; the voiding
    // statement itself is listed, also under the voided statement's agent.
    let voiding_id = new_id();
    let mut voiding = voiding_of(&s[0]);
    voiding["id"] = json!(voiding_id);
    assert_eq!(lrs.post(&voiding).await.status, 200);
    assert_eq!(lrs.get(&format!("?statementId={}", s[0])).await.status, 404);
    let back = lrs.get(&format!("?voidedStatementId={}", s[0])).await;
    assert_eq!(back.status, 200);
    assert_eq!(back.json()["id"], s[0].as_str());
    assert_eq!(
        lrs.get(&format!("?voidedStatementId={}", s[1]))
            .await
            .status,
        404
    );
    let u1 = ids(&lrs.get(&format!("?agent={}", agent("u1"))).await);
    assert!(!u1.contains(&s[0]) && u1.contains(&voiding_id), "{u1:?}");
    let again = voiding_of(&voiding_id);
    assert_eq!(
        lrs.post(&again).await.status,
        400,
        "a voiding statement cannot be voided"
    );

    // The alternate request syntax: PUT and GET as a form.
    let form_id = new_id();
    let content = statement(&form_id, "u4", "experienced", C2, 5).to_string();
    let basic = format!(
        "Basic {}",
        crate::xapi::base64_encode(&format!("mooc:{}", crate::xapi::MOOC_TOKEN))
    );
    let form = |fields: &[(&str, &str)]| {
        fields
            .iter()
            .map(|(k, v)| format!("{k}={}", url(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let put = form(&[
        ("Authorization", &basic),
        ("X-Experience-API-Version", "1.0.3"),
        ("Content-Type", "application/json"),
        ("statementId", &form_id),
        ("content", &content),
    ]);
    let addr = lrs.hub.http_addr;
    let ct = "application/x-www-form-urlencoded";
    let answer = super::raw(
        addr,
        "POST",
        "/xapi/statements?method=PUT",
        &[],
        ct,
        put.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 204, "{}", answer.text());
    let get = form(&[
        ("Authorization", &basic),
        ("X-Experience-API-Version", "1.0.3"),
        ("statementId", &form_id),
    ]);
    let answer = super::raw(
        addr,
        "POST",
        "/xapi/statements?method=GET",
        &[],
        ct,
        get.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["id"], form_id.as_str());
    let extra = super::raw(
        addr,
        "POST",
        &format!("/xapi/statements?method=GET&statementId={form_id}"),
        &[],
        ct,
        get.as_bytes(),
    )
    .await;
    assert_eq!(extra.status, 400, "parameters go in the form");
    let unauthenticated = form(&[
        ("X-Experience-API-Version", "1.0.3"),
        ("statementId", &form_id),
    ]);
    let answer = super::raw(
        addr,
        "POST",
        "/xapi/statements?method=GET",
        &[],
        ct,
        unauthenticated.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 401);

    // About, and what the hub does not offer.
    let about = super::raw(addr, "GET", "/xapi/about", &[], "application/json", b"").await;
    assert_eq!(about.status, 200);
    let versions = about.json()["version"].clone();
    assert!(
        versions.as_array().unwrap().contains(&json!("1.0.3")),
        "{versions}"
    );
    for other in [
        "/xapi/activities/state",
        "/xapi/agents",
        "/xapi/activities",
        "/xapi/agents/profile",
    ] {
        let answer = lrs.call("GET", other, &[], "application/json", b"").await;
        assert_eq!(answer.status, 404, "{other}");
        let why = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            why.contains("Statements resource") && why.contains("About"),
            "{other}: {why}"
        );
    }
    lrs.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_client_pages_reads_voided_statements_and_about() {
    let Some(dir) = trainhub_tests::xapi_client_dir() else {
        return;
    };
    let Some(lrs) = Lrs::start(Backend::Sqlite).await else {
        return;
    };
    let s = seed(&lrs).await;
    let endpoint = format!("http://{}/xapi/", lrs.hub.http_addr);
    let client = |args: Vec<String>| {
        let (dir, endpoint) = (dir.clone(), endpoint.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::xapi::client(&dir, &endpoint, &args).await
        }
    };
    let paged = client(vec![
        "page".into(),
        ACCOUNTS.into(),
        "u1".into(),
        "1".into(),
    ])
    .await;
    assert_eq!(paged["ok"], true, "{paged}");
    let got: BTreeSet<String> = paged["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, set(&[&s[0], &s[1], &s[4]]));
    assert!(paged["pages"].as_u64().unwrap() >= 3, "{paged}");
    let voided = client(vec!["void".into(), s[1].clone()]).await;
    assert_eq!(voided["ok"], true, "{voided}");
    let back = client(vec!["voided".into(), s[1].clone()]).await;
    assert_eq!(back["statement"]["id"], s[1].as_str(), "{back}");
    let about = client(vec!["about".into()]).await;
    assert!(
        about["about"]["version"].to_string().contains("1.0.3"),
        "{about}"
    );
    let attached = client(vec![
        "attach".into(),
        ACCOUNTS.into(),
        "u1".into(),
        "学习心得：第一章".into(),
    ])
    .await;
    assert_eq!(attached["ok"], true, "{attached}");
    assert!(
        attached["back"]
            .as_str()
            .unwrap()
            .contains("学习心得：第一章"),
        "{attached}"
    );
    let _: Value = attached;
    lrs.hub.stop().await;
}

/// Statements an earlier release stored (no stored time, no query keys) are indexed when the
/// hub starts: found by queries, voided ones marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_of_an_earlier_release_are_indexed_at_start() {
    let Some(lrs) = Lrs::start(Backend::Sqlite).await else {
        return;
    };
    let s = seed(&lrs).await;
    let voiding = voiding_of(&s[0]);
    assert_eq!(lrs.post(&voiding).await.status, 200);
    // As the previous layout left them: no stored time, no keys, nothing marked voided.
    for sql in [
        "UPDATE xapi_statements SET stored_ms = NULL, voided = 0",
        "DELETE FROM xapi_statement_keys",
    ] {
        sqlx::query(sql)
            .execute(lrs.hub.store.pool())
            .await
            .unwrap();
    }
    let store = lrs.hub.stop_keeping_store().await;
    let hub = crate::xapi::xapi_hub(store).await;
    let lrs = Lrs {
        hub,
        basic: lrs.basic,
    };
    let u1 = ids(&lrs.get(&format!("?agent={}", agent("u1"))).await);
    assert!(u1.contains(&s[1]) && u1.contains(&s[4]), "{u1:?}");
    assert!(!u1.contains(&s[0]), "voided again after indexing: {u1:?}");
    assert_eq!(
        lrs.get(&format!("?voidedStatementId={}", s[0]))
            .await
            .status,
        200
    );
    let all = ids(&lrs.get("").await);
    assert_eq!(all.len(), 6, "five statements and the voiding one: {all:?}");
    lrs.hub.stop().await;
}
