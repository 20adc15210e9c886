//! xAPI 1.0.3 statements from online learning platforms (DESIGN §7), normalised into
//! `learning` records: the `xapi` mapping (profile `xapi@1.1.0`), and the Statements resource
//! ([`resource`]) that online learning platforms post to.
//!
//! - `completed`, `passed` and `attended` credit study time: `result.duration` (ISO 8601) in
//!   minutes, the activity as the course, the statement's timestamp as the completion time —
//!   or, as xAPI has it when the statement has none, the time the hub stored it (1.1.0; 1.0.0
//!   refused such a statement, and its dead letters replay under 1.1.0).
//!   `failed` and other verbs credit nothing (the statement is still stored).
//! - The actor is an `account { homePage, name }` (resolved through a link whose
//!   `account_system` is the homePage) or an `mbox` (`account_system` `mbox`).
//! - A cmi5 session's statements (`completed`, then `passed`) are one record, keyed by the
//!   registration and the activity, so its time counts once.
//! - `voided` removes the voided statement's record (a tombstone under that statement's key).

pub mod attachments;
pub mod lrs;
pub mod query;
pub mod receive;
pub mod resource;
pub mod validate;

use serde_json::Value;
use std::sync::Arc;
use trainhub_model::{ReasonCode, Rejection, Stage};
use trainhub_pipeline::native::Letter;
use trainhub_pipeline::{Inbound, Native};
use trainhub_proto::v1 as pb;
use trainhub_proto::Format;

/// The mapping's name and version, kept as provenance.
pub const PROFILE: &str = "xapi@1.1.0";

const VERBS: &str = "http://adlnet.gov/expapi/verbs/";
pub(crate) const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";
const CMI5: &str = "https://w3id.org/xapi/cmi5/context/categories/cmi5";

/// What one statement means for the records.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    /// Study time: a learning record.
    Learning(Box<pb::Record>),
    /// Voids the statement with this id: its record (found by the caller) is removed.
    Voids(String),
    /// Nothing to record (another verb, or `failed`).
    Nothing,
}

fn reject(field: &str, message: impl Into<String>) -> Rejection {
    Rejection {
        stage: Stage::Map,
        code: ReasonCode::MissingField,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The record key of a statement: its id, or for a cmi5 session the registration and the
/// activity (so its `completed` and `passed` are one record).
pub fn record_key(statement: &Value) -> String {
    let cmi5 = statement
        .pointer("/context/contextActivities/category")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|a| a.get("id").and_then(Value::as_str) == Some(CMI5))
        });
    let registration = statement
        .pointer("/context/registration")
        .and_then(Value::as_str);
    let activity = statement.pointer("/object/id").and_then(Value::as_str);
    match (cmi5, registration, activity) {
        (true, Some(r), Some(a)) => format!("cmi5:{r}:{a}"),
        _ => statement
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The version of records made from a statement: its timestamp (or stored time) in
/// milliseconds, so a later statement supersedes an earlier one.
pub fn version(statement: &Value) -> i64 {
    ["timestamp", "stored"]
        .iter()
        .filter_map(|k| statement.get(*k).and_then(Value::as_str))
        .find_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(1, |t| t.timestamp_millis())
}

/// Minutes of an ISO 8601 duration (`PT1H30M`, `PT2700S`, `P1DT2H`, `PT0.5H`).
pub fn duration_minutes(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut minutes = 0.0;
    let mut parse = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
            } else {
                let factor = units.iter().find(|(u, _)| *u == c)?.1;
                minutes += number.parse::<f64>().ok()? * factor;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    parse(
        days,
        &[
            ('Y', 525_600.0),
            ('M', 43_200.0),
            ('W', 10_080.0),
            ('D', 1_440.0),
        ],
    )?;
    parse(time, &[('H', 60.0), ('M', 1.0), ('S', 1.0 / 60.0)])?;
    (minutes.is_finite() && (rest != "T")).then_some((minutes * 100.0).round() / 100.0)
}

/// The person a statement's actor names: an `account` (its homePage is the account system),
/// or another identifier under its own name (`mbox`, `mbox_sha1sum`, `openid`), resolved
/// through the links the hub holds (parked until one exists).
fn person(statement: &Value) -> Result<pb::PersonRef, Rejection> {
    let actor = statement.get("actor").unwrap_or(&Value::Null);
    if let (Some(home), Some(name)) = (
        actor.pointer("/account/homePage").and_then(Value::as_str),
        actor.pointer("/account/name").and_then(Value::as_str),
    ) {
        return Ok(pb::PersonRef {
            account_system: home.to_owned(),
            account_id: name.to_owned(),
            ..Default::default()
        });
    }
    for ifi in ["mbox", "mbox_sha1sum", "openid"] {
        if let Some(id) = actor.get(ifi).and_then(Value::as_str) {
            return Ok(pb::PersonRef {
                account_system: ifi.into(),
                account_id: id.to_owned(),
                ..Default::default()
            });
        }
    }
    Err(reject(
        "actor",
        "the actor has no account, mbox, mbox_sha1sum or openid",
    ))
}

/// What `statement` (already checked, with its id) means for the records of `system`;
/// `stored` (RFC 3339) is when the hub stored it, the completion time when it has no
/// timestamp.
pub fn meaning(system: &str, statement: &Value, stored: &str) -> Result<Meaning, Rejection> {
    let verb = statement
        .pointer("/verb/id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if verb == VOIDED {
        let target = statement
            .pointer("/object/id")
            .and_then(Value::as_str)
            .filter(|_| {
                statement
                    .pointer("/object/objectType")
                    .and_then(Value::as_str)
                    == Some("StatementRef")
            })
            .ok_or_else(|| reject("object", "a voiding statement's object is a StatementRef"))?;
        return Ok(Meaning::Voids(target.to_owned()));
    }
    let credited = ["completed", "passed", "attended"]
        .iter()
        .any(|v| verb == format!("{VERBS}{v}"));
    let group = statement
        .pointer("/actor/objectType")
        .and_then(Value::as_str)
        == Some("Group");
    // Study time is a person's: a group's statement, or one without a duration, credits
    // nothing (it is still stored).
    if !credited || group || statement.pointer("/result/duration").is_none() {
        return Ok(Meaning::Nothing);
    }
    let course = statement
        .pointer("/object/id")
        .and_then(Value::as_str)
        .ok_or_else(|| reject("object.id", "the statement's object has no id"))?;
    let minutes = match statement
        .pointer("/result/duration")
        .and_then(Value::as_str)
    {
        Some(d) => duration_minutes(d).ok_or_else(|| Rejection {
            stage: Stage::Map,
            code: ReasonCode::OutOfRange,
            field: "result.duration".into(),
            message: "`result.duration` is not an ISO 8601 duration".into(),
        })?,
        None => 0.0,
    };
    if minutes <= 0.0 {
        return Ok(Meaning::Nothing);
    }
    let title = statement
        .pointer("/object/definition/name")
        .and_then(Value::as_object)
        .and_then(|names| {
            ["zh-CN", "zh", "en-US", "en"]
                .iter()
                .find_map(|l| names.get(*l))
                .or_else(|| names.values().next())
        })
        .and_then(Value::as_str)
        .unwrap_or_default();
    let completed_at = ["timestamp", "stored"]
        .iter()
        .find_map(|k| statement.get(*k).and_then(Value::as_str))
        .unwrap_or(stored);
    Ok(Meaning::Learning(Box::new(pb::Record {
        source: Some(pb::SourceRef {
            system: system.to_owned(),
            kind: "learning".into(),
            record_id: record_key(statement),
            version: version(statement),
        }),
        deleted: false,
        body: Some(pb::record::Body::Learning(pb::Learning {
            person_ref: Some(person(statement)?),
            course_id: course.to_owned(),
            course_title: title.to_owned(),
            themes: Vec::new(),
            minutes,
            hours: 0.0,
            completed_at: completed_at.to_owned(),
        })),
    })))
}

/// The tombstone that removes the record made from `voided` (a stored statement), issued by
/// the voiding statement `by`.
pub fn tombstone(system: &str, voided: &Value, by: &Value) -> pb::Record {
    pb::Record {
        source: Some(pb::SourceRef {
            system: system.to_owned(),
            kind: "learning".into(),
            record_id: record_key(voided),
            version: version(by).max(version(voided) + 1),
        }),
        deleted: true,
        body: None,
    }
}

/// A statement's envelope: its record (or why it has none) with the statement's bytes.
pub fn envelope(record: Result<pb::Record, Rejection>, bytes: Vec<u8>, id: &str) -> Inbound {
    Inbound {
        record,
        payload: bytes,
        format: Format::Json,
        headers: serde_json::json!({ "statement": id }).to_string(),
        replay_of: None,
        native: Some(Native {
            profile: PROFILE.to_owned(),
            format: "xapi",
            origin: Arc::default(),
            file: None,
        }),
    }
}

/// A statement's dead letter, mapped again by today's mapping (replay).
pub fn replayed(letter: Letter<'_>) -> Inbound {
    let record = match serde_json::from_slice::<Value>(letter.payload) {
        Ok(statement) => match meaning(letter.system, &statement, letter.received_at) {
            Ok(Meaning::Learning(record)) => Ok(*record),
            Ok(Meaning::Voids(_)) => Err(reject(
                "verb",
                "a voiding statement is applied when posted; post it again",
            )),
            Ok(Meaning::Nothing) => Err(reject("verb", "the statement credits nothing")),
            Err(rejection) => Err(rejection),
        },
        Err(e) => Err(Rejection {
            stage: Stage::Decode,
            code: ReasonCode::MalformedPayload,
            field: String::new(),
            message: format!("not a JSON statement: {e}"),
        }),
    };
    let id: String = serde_json::from_str::<Value>(letter.headers)
        .ok()
        .and_then(|h| h.get("statement")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    envelope(record, letter.payload.to_vec(), &id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STORED: &str = "2026-01-02T03:04:05Z";

    fn statement(verb: &str, duration: &str) -> Value {
        json!({
            "id": "6a4f0a1e-3b2c-4d5e-8f90-0123456789ab",
            "actor": {"objectType": "Agent", "account": {"homePage": "https://mooc.example.cn", "name": "u42"}},
            "verb": {"id": format!("{VERBS}{verb}")},
            "object": {"id": "https://mooc.example.cn/courses/c1", "definition": {"name": {"zh-CN": "党史专题", "en-US": "Party history"}}},
            "result": {"duration": duration, "score": {"scaled": 0.9}},
            "timestamp": "2026-05-01T20:00:00+08:00"
        })
    }

    #[test]
    fn completion_credits_minutes_to_the_account() {
        let Meaning::Learning(r) =
            meaning("mooc", &statement("completed", "PT1H30M"), STORED).unwrap()
        else {
            panic!()
        };
        let Some(pb::record::Body::Learning(l)) = &r.body else {
            panic!()
        };
        assert_eq!(l.minutes, 90.0);
        assert_eq!(l.course_title, "党史专题");
        let who = l.person_ref.as_ref().unwrap();
        assert_eq!(
            (who.account_system.as_str(), who.account_id.as_str()),
            ("https://mooc.example.cn", "u42")
        );
        assert_eq!(
            r.source.unwrap().record_id,
            "6a4f0a1e-3b2c-4d5e-8f90-0123456789ab"
        );
        assert_eq!(
            meaning("mooc", &statement("failed", "PT1H"), STORED).unwrap(),
            Meaning::Nothing
        );
        assert_eq!(
            meaning("mooc", &statement("experienced", "PT1H"), STORED).unwrap(),
            Meaning::Nothing
        );
    }

    #[test]
    fn durations() {
        for (text, minutes) in [
            ("PT1H30M", 90.0),
            ("PT2700S", 45.0),
            ("P1DT2H", 1560.0),
            ("PT0.5H", 30.0),
            ("PT0S", 0.0),
        ] {
            assert_eq!(duration_minutes(text), Some(minutes), "{text}");
        }
        for bad in ["", "1H", "PT", "PTxH", "PT1X", "P1H"] {
            assert_eq!(duration_minutes(bad), None, "{bad}");
        }
    }

    #[test]
    fn cmi5_sessions_are_one_record_and_voiding_names_its_target() {
        let mut completed = statement("completed", "PT30M");
        let mut passed = statement("passed", "PT30M");
        for (s, id) in [
            (&mut completed, "11111111-1111-4111-8111-111111111111"),
            (&mut passed, "22222222-2222-4222-8222-222222222222"),
        ] {
            s["id"] = json!(id);
            s["context"] = json!({"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
                "contextActivities": {"category": [{"id": CMI5}]}});
        }
        assert_eq!(record_key(&completed), record_key(&passed));
        let voiding = json!({"actor": {"mbox": "mailto:a@b.cn"}, "verb": {"id": VOIDED},
            "object": {"objectType": "StatementRef", "id": "11111111-1111-4111-8111-111111111111"},
            "timestamp": "2026-05-02T08:00:00Z"});
        assert_eq!(
            meaning("mooc", &voiding, STORED).unwrap(),
            Meaning::Voids("11111111-1111-4111-8111-111111111111".into())
        );
        let t = tombstone("mooc", &completed, &voiding);
        assert!(t.deleted);
        assert!(t.source.as_ref().unwrap().version > version(&completed));
    }
}
