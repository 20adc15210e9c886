//! The base statement and the cases about the statement itself, its actor and its verb.

use super::super::new_id;
use crate::fixtures::ACCOUNTS;
use serde_json::{json, Value};

/// What a case does to the base statement at a JSON pointer.
pub(super) enum Op {
    Set(Value),
    Remove,
}

pub(super) struct Case {
    pub rule: &'static str,
    pub pointer: &'static str,
    pub op: Op,
}

pub(super) fn set(rule: &'static str, pointer: &'static str, value: Value) -> Case {
    Case {
        rule,
        pointer,
        op: Op::Set(value),
    }
}

pub(super) fn remove(rule: &'static str, pointer: &'static str) -> Case {
    Case {
        rule,
        pointer,
        op: Op::Remove,
    }
}

/// A statement using most of what Part Two allows: each case breaks one rule of it.
pub(super) fn base() -> Value {
    json!({
        "id": new_id(),
        "actor": {"objectType": "Agent", "name": "学员", "account": {"homePage": ACCOUNTS, "name": "u9"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"zh-CN": "学习", "en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": "https://mooc.example.cn/courses/c9",
            "definition": {"name": {"zh-CN": "课程"}, "description": {"en-US": "A course"},
                "type": "http://adlnet.gov/expapi/activities/course", "moreInfo": "https://mooc.example.cn/c9",
                "extensions": {"https://mooc.example.cn/ext/level": null}}},
        "result": {"score": {"scaled": 0.5, "raw": 50, "min": 0, "max": 100}, "success": true,
            "completion": true, "response": "ok", "duration": "PT10M",
            "extensions": {"https://mooc.example.cn/ext/tries": 2}},
        "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
            "instructor": {"mbox": "mailto:teacher@mooc.example.cn"},
            "team": {"objectType": "Group", "name": "一班", "member": [{"mbox": "mailto:a@mooc.example.cn"}]},
            "contextActivities": {"parent": [{"id": "https://mooc.example.cn/programmes/p1"}]},
            "revision": "r1", "platform": "mooc", "language": "zh-CN",
            "statement": {"objectType": "StatementRef", "id": "6a4f0a1e-3b2c-4d5e-8f90-0123456789ab"},
            "extensions": {"https://mooc.example.cn/ext/term": "2026"}},
        "timestamp": "2026-03-01T10:00:00+08:00",
        "version": "1.0.3",
        "attachments": [{"usageType": "https://mooc.example.cn/usage/certificate",
            "display": {"zh-CN": "证书"}, "contentType": "application/pdf", "length": 1024,
            "sha2": "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a",
            "fileUrl": "https://mooc.example.cn/certs/9.pdf"}]
    })
}

pub(super) fn agent_with(extra: Value) -> Value {
    let mut a = json!({"objectType": "Agent"});
    a.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    a
}

pub(super) fn sub(extra: Value) -> Value {
    let mut s = json!({"objectType": "SubStatement",
        "actor": {"mbox": "mailto:s@mooc.example.cn"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": "https://mooc.example.cn/c1"}});
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

pub(super) const MBOX: &str = "mailto:x@mooc.example.cn";

pub(super) fn statement_cases() -> Vec<Case> {
    vec![
        set("2.2 unknown property", "/foo", json!(1)),
        set(
            "2.2 keys are case sensitive",
            "/Actor",
            json!({"mbox": MBOX}),
        ),
        set(
            "2.2 no objectType on a statement",
            "/objectType",
            json!("Statement"),
        ),
        set("2.2 null id", "/id", Value::Null),
        set("2.4.1 id not a UUID", "/id", json!("not-a-uuid")),
        set("2.4.1 id empty", "/id", json!("")),
        set("2.4.1 id a number", "/id", json!(123)),
        set(
            "2.4.1 id without hyphens",
            "/id",
            json!("6a4f0a1e3b2c4d5e8f900123456789ab"),
        ),
        set(
            "2.4.1 id in braces",
            "/id",
            json!("{6a4f0a1e-3b2c-4d5e-8f90-0123456789ab}"),
        ),
        set(
            "2.4.1 id of another variant",
            "/id",
            json!("6a4f0a1e-3b2c-4d5e-cf90-0123456789ab"),
        ),
        remove("2.4.2 actor required", "/actor"),
        set("2.2 actor null", "/actor", Value::Null),
        set("2.4.2 actor a string", "/actor", json!("u9")),
        set("2.4.2 actor an array", "/actor", json!([{"mbox": MBOX}])),
        set(
            "2.4.2.3 mbox without mailto",
            "/actor",
            json!({"mbox": "should.fail.com"}),
        ),
        set(
            "2.4.2.3 mbox mailto only",
            "/actor",
            json!({"mbox": "mailto:"}),
        ),
        set(
            "2.4.2.3 mbox without domain",
            "/actor",
            json!({"mbox": "mailto:a"}),
        ),
        set(
            "2.4.2.3 mbox an address only",
            "/actor",
            json!({"mbox": "a@b.cn"}),
        ),
        set("2.4.2.3 mbox a number", "/actor", json!({"mbox": 42})),
        set(
            "2.4.2.3 mbox with two @",
            "/actor",
            json!({"mbox": "mailto:a@b@c"}),
        ),
        set(
            "2.4.2.3 mbox and openid",
            "/actor",
            json!({"mbox": MBOX, "openid": "https://id.example.cn/a"}),
        ),
        set("2.4.2.3 mbox and account", "/actor/mbox", json!(MBOX)),
        set(
            "2.4.2.3 sha1 and mbox",
            "/actor",
            json!({"mbox": MBOX, "mbox_sha1sum": "a".repeat(40)}),
        ),
        set(
            "2.4.2.3 openid and account",
            "/actor/openid",
            json!("https://id.example.cn/a"),
        ),
        set(
            "2.4.2.1 agent without identifier",
            "/actor",
            json!({"name": "x"}),
        ),
        set(
            "2.4.2.1 agent type only",
            "/actor",
            json!({"objectType": "Agent"}),
        ),
        set(
            "2.4.2 objectType in lower case",
            "/actor/objectType",
            json!("agent"),
        ),
        set(
            "2.4.2 objectType Person",
            "/actor/objectType",
            json!("Person"),
        ),
        set("2.4.2 objectType a number", "/actor/objectType", json!(1)),
        set("2.4.2.1 name a number", "/actor/name", json!(42)),
        set(
            "2.4.2.1 unknown agent property",
            "/actor/role",
            json!("student"),
        ),
        set(
            "2.4.2.3 sha1 not hex",
            "/actor",
            json!({"mbox_sha1sum": "xyz"}),
        ),
        set(
            "2.4.2.3 sha1 40 non-hex",
            "/actor",
            json!({"mbox_sha1sum": "z".repeat(40)}),
        ),
        set(
            "2.4.2.3 sha1 39 hex",
            "/actor",
            json!({"mbox_sha1sum": "a".repeat(39)}),
        ),
        set(
            "2.4.2.3 openid not an IRI",
            "/actor",
            json!({"openid": "not an iri"}),
        ),
        set("2.4.2.3 openid a number", "/actor", json!({"openid": 3})),
        remove(
            "2.4.2.4 account without homePage",
            "/actor/account/homePage",
        ),
        remove("2.4.2.4 account without name", "/actor/account/name"),
        set(
            "2.4.2.4 homePage not an IRI",
            "/actor/account/homePage",
            json!("mooc"),
        ),
        set(
            "2.4.2.4 account name a number",
            "/actor/account/name",
            json!(42),
        ),
        set("2.4.2.4 account a string", "/actor/account", json!("u9")),
        set(
            "2.4.2.4 unknown account property",
            "/actor/account/id",
            json!("u9"),
        ),
        set("2.2 homePage null", "/actor/account/homePage", Value::Null),
    ]
}

pub(super) fn group_and_verb_cases() -> Vec<Case> {
    vec![
        set(
            "2.4.2.2 anonymous group without members",
            "/actor",
            json!({"objectType": "Group"}),
        ),
        set(
            "2.4.2.2 members not an array",
            "/actor",
            json!({"objectType": "Group", "member": {"mbox": MBOX}}),
        ),
        set(
            "2.4.2.2 anonymous group, no members",
            "/actor",
            json!({"objectType": "Group", "member": []}),
        ),
        set(
            "2.4.2.2 a group in a group",
            "/actor",
            json!({"objectType": "Group", "member": [{"objectType": "Group", "mbox": MBOX}]}),
        ),
        set(
            "2.4.2.1 group member without identifier",
            "/actor",
            json!({"objectType": "Group", "member": [{"name": "x"}]}),
        ),
        set(
            "2.4.2.3 group with two identifiers",
            "/actor",
            json!({"objectType": "Group", "mbox": MBOX, "openid": "https://id.example.cn/g"}),
        ),
        set(
            "2.4.2.2 unknown group property",
            "/actor",
            json!({"objectType": "Group", "mbox": MBOX, "size": 3}),
        ),
        remove("2.4.3 verb required", "/verb"),
        set("2.4.3 verb a string", "/verb", json!("completed")),
        remove("2.4.3 verb id required", "/verb/id"),
        set("2.4.3 verb id not an IRI", "/verb/id", json!("completed")),
        set("2.4.3 verb id a number", "/verb/id", json!(5)),
        set("2.4.3 verb id empty", "/verb/id", json!("")),
        set("4.2 display not a map", "/verb/display", json!("completed")),
        set(
            "4.2 display with a bad tag",
            "/verb/display",
            json!({"not a tag!": "x"}),
        ),
        set(
            "4.2 display value a number",
            "/verb/display",
            json!({"en-US": 5}),
        ),
        set("2.4.3 unknown verb property", "/verb/name", json!("x")),
        remove("2.4.4 object required", "/object"),
        set(
            "2.4.4 object a string",
            "/object",
            json!("https://mooc.example.cn/c9"),
        ),
        remove("2.4.4.1 activity id required", "/object/id"),
        set(
            "2.4.4.1 activity id not an IRI",
            "/object/id",
            json!("course 9"),
        ),
        set(
            "2.4.4 objectType in lower case",
            "/object/objectType",
            json!("activity"),
        ),
        set(
            "2.4.4 unknown objectType",
            "/object/objectType",
            json!("Course"),
        ),
        set(
            "2.4.4.1 unknown activity property",
            "/object/title",
            json!("x"),
        ),
        set(
            "2.4.2.1 agent object without identifier",
            "/object",
            json!({"objectType": "Agent", "name": "x"}),
        ),
        set(
            "2.4.2.2 anonymous group object without members",
            "/object",
            json!({"objectType": "Group"}),
        ),
        set(
            "2.4.4.3 StatementRef without id",
            "/object",
            json!({"objectType": "StatementRef"}),
        ),
        set(
            "2.4.4.3 StatementRef id not a UUID",
            "/object",
            json!({"objectType": "StatementRef", "id": "x"}),
        ),
        set(
            "2.4.4.3 StatementRef with a definition",
            "/object",
            json!({"objectType": "StatementRef", "id": new_id(), "definition": {}}),
        ),
        set(
            "2.4.4.3 voiding needs a StatementRef",
            "/verb/id",
            json!("http://adlnet.gov/expapi/verbs/voided"),
        ),
    ]
}
