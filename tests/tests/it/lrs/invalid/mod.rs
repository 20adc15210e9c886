//! Every statement rule an LRS must enforce (xAPI 1.0.3 Part Two), one case per rule, from a
//! table: each case changes one property of a valid statement, is posted alone and inside a
//! batch with valid statements, and must be refused with 400 naming the section — with
//! nothing stored and nothing dead-lettered.

mod objects;
mod table;

use super::Lrs;
use objects::*;
use serde_json::{json, Value};
use table::*;
use trainhub_tests::Backend;

fn cases() -> Vec<Case> {
    let mut all = statement_cases();
    all.extend(group_and_verb_cases());
    all.extend(definition_cases());
    all.extend(interaction_cases());
    all.extend(sub_statement_cases());
    all.extend(result_cases());
    all.extend(context_cases());
    all.extend(other_cases());
    all
}

/// `base` with `case` applied.
fn broken(base: &Value, case: &Case) -> Value {
    let mut s = base.clone();
    let (parent, key) = case.pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut s
    } else {
        s.pointer_mut(parent)
            .unwrap_or_else(|| panic!("{}: no {parent}", case.rule))
    };
    match (&case.op, target) {
        (Op::Set(v), Value::Object(map)) => {
            map.insert(key.to_owned(), v.clone());
        }
        (Op::Set(v), Value::Array(items)) => items[key.parse::<usize>().unwrap()] = v.clone(),
        (Op::Remove, Value::Object(map)) => {
            assert!(
                map.remove(key).is_some(),
                "{}: nothing at {}",
                case.rule,
                case.pointer
            );
        }
        _ => panic!("{}: {} is not in an object", case.rule, case.pointer),
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_statement_is_refused_whole_and_nothing_is_kept() {
    let Some(lrs) = Lrs::start(Backend::Sqlite).await else {
        return;
    };
    let cases = cases();
    assert!(cases.len() >= 150, "{} cases", cases.len());
    // The base statement is valid: each case breaks exactly one rule of it.
    let answer = lrs.post(&base()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(lrs.stored().await, 1);

    for case in &cases {
        let bad = broken(&base(), case);
        let alone = lrs.post(&bad).await;
        assert_eq!(
            alone.status,
            400,
            "{}: {} {}",
            case.rule,
            alone.status,
            alone.text()
        );
        let why = alone.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let section = case.rule.split(' ').next().unwrap();
        assert!(
            why.contains("xAPI 1.0.3") || why.contains("statement"),
            "{}: {why}",
            case.rule
        );
        assert!(
            why.contains(section),
            "{}: the refusal names §{section}: {why}",
            case.rule
        );
        // In a batch: the valid statements around it are not stored either.
        let batch = json!([base(), bad, base()]);
        let together = lrs.post(&batch).await;
        assert_eq!(
            together.status,
            400,
            "{} in a batch: {}",
            case.rule,
            together.text()
        );
        assert!(
            together.text().contains("statement 2"),
            "{}: {}",
            case.rule,
            together.text()
        );
    }
    // Bodies that are not statements at all.
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let multipart = "multipart/mixed; boundary=b";
    for (content_type, body) in [
        ("application/json", b"not json".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"42".to_vec()),
        ("application/json", vec![0xff, 0xfe, b'{']),
        ("application/json", deep.into_bytes()),
        (
            multipart,
            b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--".to_vec(),
        ),
        (multipart, b"no parts at all".to_vec()),
    ] {
        let answer = lrs
            .call("POST", "/xapi/statements", &[], content_type, &body)
            .await;
        assert_eq!(answer.status, 400, "{content_type}: {}", answer.text());
        assert!(answer.json()["error"].is_string());
    }
    assert_eq!(
        lrs.stored().await,
        1,
        "nothing of a refused request is kept"
    );
    assert_eq!(
        lrs.letters().await,
        0,
        "a refused statement is answered, not dead-lettered"
    );
    lrs.hub.stop().await;
}
