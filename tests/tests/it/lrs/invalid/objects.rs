//! The cases about the object, the result, the context and the other properties.

use super::super::new_id;
use super::table::{agent_with, remove, set, sub, Case, MBOX};
use serde_json::{json, Value};

pub(super) fn definition_cases() -> Vec<Case> {
    vec![
        set(
            "4.2 name not a map",
            "/object/definition/name",
            json!("课程"),
        ),
        set(
            "4.2 name with a bad tag",
            "/object/definition/name",
            json!({"zh_CN!": "课程"}),
        ),
        set(
            "4.2 description value a number",
            "/object/definition/description",
            json!({"en-US": 1}),
        ),
        set(
            "2.4.4.1 type not an IRI",
            "/object/definition/type",
            json!("course"),
        ),
        set(
            "2.4.4.1 moreInfo not an IRI",
            "/object/definition/moreInfo",
            json!("see site"),
        ),
        set(
            "2.4.4.1 unknown interactionType",
            "/object/definition/interactionType",
            json!("essay"),
        ),
        set(
            "2.4.4.1 correctResponsesPattern not an array",
            "/object/definition/correctResponsesPattern",
            json!("a"),
        ),
        set(
            "2.4.4.1 correctResponsesPattern of numbers",
            "/object/definition/correctResponsesPattern",
            json!([1]),
        ),
        set(
            "2.4.4.1 choices without interactionType",
            "/object/definition/choices",
            json!([{"id": "a"}]),
        ),
        set(
            "2.4.4.1 unknown definition property",
            "/object/definition/title",
            json!("x"),
        ),
        set(
            "4.1 extension key not an IRI",
            "/object/definition/extensions",
            json!({"level": 1}),
        ),
        set(
            "4.1 extensions not an object",
            "/object/definition/extensions",
            json!([1]),
        ),
        set(
            "2.4.4.1 definition not an object",
            "/object/definition",
            json!("x"),
        ),
    ]
}

pub(super) fn interaction_cases() -> Vec<Case> {
    let def = |extra: Value| {
        let mut d = json!({"interactionType": "choice", "correctResponsesPattern": ["a"]});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    };
    vec![
        set(
            "2.4.4.1 choices not an array",
            "/object/definition",
            def(json!({"choices": {"id": "a"}})),
        ),
        set(
            "2.4.4.1 choice without id",
            "/object/definition",
            def(json!({"choices": [{"description": {"en-US": "A"}}]})),
        ),
        set(
            "2.4.4.1 choice ids twice",
            "/object/definition",
            def(json!({"choices": [{"id": "a"}, {"id": "a"}]})),
        ),
        set(
            "2.4.4.1 unknown choice property",
            "/object/definition",
            def(json!({"choices": [{"id": "a", "score": 1}]})),
        ),
        set(
            "4.2 choice description bad tag",
            "/object/definition",
            def(json!({"choices": [{"id": "a", "description": {"!": "A"}}]})),
        ),
        set(
            "2.4.4.1 scale id a number",
            "/object/definition",
            def(json!({"scale": [{"id": 1}]})),
        ),
        set(
            "2.4.4.1 interactionType a number",
            "/object/definition",
            json!({"interactionType": 3}),
        ),
    ]
}

pub(super) fn sub_statement_cases() -> Vec<Case> {
    vec![
        set(
            "2.4.4.3 sub-statement with id",
            "/object",
            sub(json!({"id": new_id()})),
        ),
        set(
            "2.4.4.3 sub-statement with stored",
            "/object",
            sub(json!({"stored": "2026-01-01T00:00:00Z"})),
        ),
        set(
            "2.4.4.3 sub-statement with version",
            "/object",
            sub(json!({"version": "1.0.0"})),
        ),
        set(
            "2.4.4.3 sub-statement with authority",
            "/object",
            sub(json!({"authority": {"mbox": MBOX}})),
        ),
        set(
            "2.4.4.3 sub-statement in a sub-statement",
            "/object",
            sub(json!({"object": sub(json!({}))})),
        ),
        set("2.4.2 sub-statement without actor", "/object", {
            let mut s = sub(json!({}));
            s.as_object_mut().unwrap().remove("actor");
            s
        }),
        set("2.4.3 sub-statement without verb", "/object", {
            let mut s = sub(json!({}));
            s.as_object_mut().unwrap().remove("verb");
            s
        }),
        set("2.4.4 sub-statement without object", "/object", {
            let mut s = sub(json!({}));
            s.as_object_mut().unwrap().remove("object");
            s
        }),
        set(
            "2.4.2.3 sub-statement actor bad mbox",
            "/object",
            sub(json!({"actor": {"mbox": "x"}})),
        ),
    ]
}

pub(super) fn result_cases() -> Vec<Case> {
    vec![
        set("2.4.5 result not an object", "/result", json!("passed")),
        set("2.4.5.1 scaled above 1", "/result/score/scaled", json!(2)),
        set(
            "2.4.5.1 scaled below -1",
            "/result/score/scaled",
            json!(-1.5),
        ),
        set("2.4.5.1 raw above max", "/result/score/raw", json!(101)),
        set("2.4.5.1 raw below min", "/result/score/raw", json!(-1)),
        set("2.4.5.1 min not below max", "/result/score/min", json!(100)),
        set(
            "2.4.5.1 scaled a string",
            "/result/score/scaled",
            json!("0.5"),
        ),
        set(
            "2.4.5.1 unknown score property",
            "/result/score/percent",
            json!(50),
        ),
        set(
            "2.4.5 success not a boolean",
            "/result/success",
            json!("yes"),
        ),
        set(
            "2.4.5 completion not a boolean",
            "/result/completion",
            json!(1),
        ),
        set("2.4.5 response not a string", "/result/response", json!(5)),
        set("4.6 duration in words", "/result/duration", json!("1 hour")),
        set("4.6 duration PT alone", "/result/duration", json!("PT")),
        set(
            "4.6 duration hours before T",
            "/result/duration",
            json!("P1H"),
        ),
        set("4.6 duration a number", "/result/duration", json!(90)),
        set("2.4.5 unknown result property", "/result/grade", json!("A")),
        set(
            "4.1 result extension key not an IRI",
            "/result/extensions",
            json!({"tries": 2}),
        ),
    ]
}

pub(super) fn context_cases() -> Vec<Case> {
    vec![
        set("2.4.6 context not an object", "/context", json!("x")),
        set(
            "2.4.6 registration not a UUID",
            "/context/registration",
            json!("r-1"),
        ),
        set(
            "2.4.6 registration a number",
            "/context/registration",
            json!(5),
        ),
        set(
            "2.4.2.1 instructor without identifier",
            "/context/instructor",
            json!({"name": "x"}),
        ),
        set(
            "2.4.6 team an agent",
            "/context/team",
            json!({"mbox": MBOX}),
        ),
        set(
            "2.4.2.2 team anonymous without members",
            "/context/team",
            json!({"objectType": "Group"}),
        ),
        set(
            "2.4.6.2 contextActivities not an object",
            "/context/contextActivities",
            json!([]),
        ),
        set(
            "2.4.6.2 parent a string",
            "/context/contextActivities/parent",
            json!("https://x.cn"),
        ),
        set(
            "2.4.4.1 context parent without id",
            "/context/contextActivities/parent",
            json!([{"definition": {}}]),
        ),
        set(
            "2.4.6.2 unknown context activity kind",
            "/context/contextActivities/grandparent",
            json!([{"id": "https://x.cn"}]),
        ),
        set(
            "2.4.6.2 category an agent",
            "/context/contextActivities/category",
            json!([{"objectType": "Agent", "mbox": MBOX}]),
        ),
        set("2.4.6 revision a number", "/context/revision", json!(5)),
        set("2.4.6 platform a number", "/context/platform", json!(5)),
        set(
            "2.4.6 revision with an agent object",
            "/object",
            agent_with(json!({"mbox": MBOX})),
        ),
        set(
            "2.4.6 language not a tag",
            "/context/language",
            json!("not a tag!"),
        ),
        set("2.4.6 language a number", "/context/language", json!(5)),
        set(
            "2.4.6 statement an activity",
            "/context/statement",
            json!({"id": "https://x.cn"}),
        ),
        set(
            "2.4.4.3 context statement id not a UUID",
            "/context/statement/id",
            json!("x"),
        ),
        set(
            "2.4.6 unknown context property",
            "/context/course",
            json!("x"),
        ),
        set(
            "4.1 context extension key not an IRI",
            "/context/extensions",
            json!({"term": 1}),
        ),
        set("2.2 context null", "/context", Value::Null),
    ]
}

pub(super) fn other_cases() -> Vec<Case> {
    vec![
        set(
            "2.4.7 timestamp without a time zone",
            "/timestamp",
            json!("2026-05-01T20:00:00"),
        ),
        set("2.4.7 timestamp a date", "/timestamp", json!("2026-05-01")),
        set("2.4.7 timestamp in words", "/timestamp", json!("yesterday")),
        set("2.4.7 timestamp a number", "/timestamp", json!(5)),
        set(
            "2.4.7 timestamp offset -00:00",
            "/timestamp",
            json!("2026-05-01T20:00:00-00:00"),
        ),
        set(
            "2.4.7 timestamp month 13",
            "/timestamp",
            json!("2026-13-01T00:00:00Z"),
        ),
        set("2.4.8 stored not a time", "/stored", json!("not a time")),
        set("2.4.8 stored a number", "/stored", json!(5)),
        set(
            "2.4.2.1 authority without identifier",
            "/authority",
            json!({"name": "x"}),
        ),
        set(
            "2.4.2.3 authority bad mbox",
            "/authority",
            json!({"mbox": "x"}),
        ),
        set("2.4.10 version 2.0.0", "/version", json!("2.0.0")),
        set("2.4.10 version 1.1.0", "/version", json!("1.1.0")),
        set("2.4.10 version 0.95", "/version", json!("0.95")),
        set("2.4.10 version a number", "/version", json!(1.0)),
        set("2.4.10 version 1.0.x", "/version", json!("1.0.x")),
        set("2.4.11 attachments not an array", "/attachments", json!({})),
        remove("2.4.11 usageType required", "/attachments/0/usageType"),
        set(
            "2.4.11 usageType not an IRI",
            "/attachments/0/usageType",
            json!("certificate"),
        ),
        remove("2.4.11 display required", "/attachments/0/display"),
        set(
            "4.2 attachment display bad tag",
            "/attachments/0/display",
            json!({"!!": "x"}),
        ),
        remove("2.4.11 contentType required", "/attachments/0/contentType"),
        set(
            "2.4.11 contentType not a media type",
            "/attachments/0/contentType",
            json!("pdf file"),
        ),
        remove("2.4.11 length required", "/attachments/0/length"),
        set("2.4.11 length negative", "/attachments/0/length", json!(-1)),
        set(
            "2.4.11 length a string",
            "/attachments/0/length",
            json!("10"),
        ),
        remove("2.4.11 sha2 required", "/attachments/0/sha2"),
        set(
            "2.4.11 sha2 not a hash",
            "/attachments/0/sha2",
            json!("xyz"),
        ),
        set(
            "2.4.11 fileUrl not an IRI",
            "/attachments/0/fileUrl",
            json!("cert 9"),
        ),
        set(
            "2.4.11 unknown attachment property",
            "/attachments/0/name",
            json!("x"),
        ),
        set("2.2 result success null", "/result/success", Value::Null),
        set(
            "2.2 registration null",
            "/context/registration",
            Value::Null,
        ),
        set(
            "2.2 activity name null",
            "/object/definition/name",
            Value::Null,
        ),
        set("2.2 verb display null", "/verb/display", Value::Null),
        set("2.2 timestamp null", "/timestamp", Value::Null),
    ]
}
